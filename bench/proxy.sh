#!/usr/bin/env bash
# Calls through the proxy: a SIPp caller, nginx with sip_pass, a SIPp
# callee (INVITE/100/180/200/ACK/BYE/200 with Record-Route), CPU of the
# nginx processes (user+system from /proc) per call.  Loopback only; run
# inside "unshare -n" (make bench-proxy does).
#
#   bench/proxy.sh [CALLS] [RATE] [WORKERS]
#
# TRANSPORT=tcp: the caller connects over TCP (one connection, SIPp's
# -t t1); the callee stays on UDP.

set -eu

N=${1:-10000}
RATE=${2:-500}
WORKERS=${3:-2}
TOP=$(cd "$(dirname "$0")/.." && pwd)
MODULE=${NGX_SIP_MODULE:-$TOP/objs/ngx_stream_sip_module.so}
PORT=15190
UAS=15191
UAC=15192
DIR=$(mktemp -d /tmp/ngx-sip-bench-XXXXXX)
chmod 755 "$DIR"
mkdir "$DIR/logs"

cat > "$DIR/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $MODULE;
worker_processes $WORKERS;
pid $DIR/nginx.pid;
error_log $DIR/logs/error.log notice;
events { worker_connections 8192; }
stream {
    server {
        listen 127.0.0.1:$PORT udp;
$([ "${TRANSPORT:-udp}" = tcp ] && echo "        listen 127.0.0.1:$PORT;")
        sip on;
        sip_domain example.com;
        sip_pass 127.0.0.1:$UAS;
        # the load generator is one source, as a carrier trunk is
        sip_transactions_per_source 65536 bytes=1024m;
        sip_transactions 65536 bytes=1024m;
    }
}
CONF

perl -I "$TOP/t/lib" -MNgxSipp -e '
    my $s = sipp_scenarios();
    for my $n ("uac_call", "uas_call") {
        open my $fh, ">", "$ARGV[0]/$n.xml" or die;
        print $fh $s->{$n};
    }' "$DIR"

cpu() {
    local total=0 p
    for p in $(cat "$DIR/nginx.pid") $(pgrep -P "$(cat "$DIR/nginx.pid")"); do
        set -- $(cut -d' ' -f14,15 "/proc/$p/stat")
        total=$((total + $1 + $2))
    done
    echo $total
}

/usr/sbin/nginx -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/logs/error.log"
sleep 0.5

sipp -sf "$DIR/uas_call.xml" -i 127.0.0.1 -p $UAS -nostdin \
    -default_behaviors all,-abortunexp > "$DIR/uas.out" 2>&1 &
uas_pid=$!
sleep 0.5

before=$(cpu)
start=$(date +%s.%N)
uac_transport=
[ "${TRANSPORT:-udp}" = tcp ] && uac_transport="-t t1"

sipp -sf "$DIR/uac_call.xml" -s bob -i 127.0.0.1 -p $UAC -m "$N" $uac_transport \
    -r "$RATE" -l 5000 -timeout 600s -nostdin \
    -default_behaviors all,-abortunexp \
    127.0.0.1:$PORT > "$DIR/uac.out" 2>&1 || true
end=$(date +%s.%N)
after=$(cpu)

kill "$uas_pid" 2>/dev/null || true
wait "$uas_pid" 2>/dev/null || true
kill "$(cat "$DIR/nginx.pid")"
sleep 0.5

hz=$(getconf CLK_TCK)
ok=$(grep -a "Successful call" "$DIR/uac.out" | tail -1 | awk -F'|' '{print $3+0}')
failed=$(grep -a "Failed call" "$DIR/uac.out" | tail -1 | awk -F'|' '{print $3+0}')

awk -v n="$N" -v ok="${ok:-0}" -v failed="${failed:-0}" \
    -v t0="$start" -v t1="$end" -v c0="$before" -v c1="$after" -v hz="$hz" \
    -v w="$WORKERS" -v r="$RATE" -v tr="${TRANSPORT:-udp}" 'BEGIN {
    secs = t1 - t0; cpu = (c1 - c0) / hz;
    printf "workers                      %d\n", w;
    printf "caller transport             %s\n", tr;
    printf "calls / successful / failed  %d / %d / %d at %d calls/s\n", n, ok, failed, r;
    printf "wall time                    %.1f s\n", secs;
    printf "nginx CPU (user+sys)         %.2f s\n", cpu;
    printf "CPU per call (7 messages in, 7 out) %.1f us\n", ok ? cpu / ok * 1e6 : 0;
}'

[ -n "${KEEP:-}" ] || rm -rf "$DIR"
