#!/usr/bin/env bash
# REGISTER load against ngx_sip: N distinct phones registered by SIPp over
# UDP, CPU of the nginx processes (user+system from /proc) per REGISTER,
# and shared memory per binding from the zone's own report.  Loopback only;
# run inside "unshare -n" (make bench-registrar does).
#
#   bench/registrar.sh [N] [RATE] [WORKERS]

set -eu

N=${1:-100000}
RATE=${2:-5000}
WORKERS=${3:-2}
TOP=$(cd "$(dirname "$0")/.." && pwd)
MODULE=${NGX_SIP_MODULE:-$TOP/objs/ngx_stream_sip_module.so}
PORT=15090
DIR=$(mktemp -d /tmp/ngx-sip-bench-XXXXXX)
chmod 755 "$DIR"
mkdir -m 777 "$DIR/state" "$DIR/logs"

cat > "$DIR/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $MODULE;
worker_processes $WORKERS;
pid $DIR/nginx.pid;
error_log $DIR/logs/error.log info;
events { worker_connections 4096; }
stream {
    sip_location_zone phones:64m state=$DIR/state/phones.state;
    server {
        listen 127.0.0.1:$PORT udp;
        sip on;
        sip_domain example.com;
        sip_registrar phones;
    }
}
CONF

cat > "$DIR/register.xml" <<'XML'
<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="REGISTER">
  <send retrans="500">
    <![CDATA[

      REGISTER sip:example.com SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:phone[call_number]@example.com>;tag=[call_number]
      To: <sip:phone[call_number]@example.com>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:phone[call_number]@[local_ip]:[local_port]>
      Max-Forwards: 70
      Expires: 3600
      User-Agent: bench
      Content-Length: 0

    ]]>
  </send>
  <recv response="200"/>
</scenario>
XML

cpu() {
    # user+system clock ticks of the master and its workers
    local total=0 p
    for p in $(cat "$DIR/nginx.pid") $(pgrep -P "$(cat "$DIR/nginx.pid")"); do
        set -- $(cut -d' ' -f14,15 "/proc/$p/stat")
        total=$((total + $1 + $2))
    done
    echo $total
}

/usr/sbin/nginx -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/logs/error.log"
sleep 0.5

before=$(cpu)
start=$(date +%s.%N)
sipp -sf "$DIR/register.xml" -i 127.0.0.1 -p 15091 -m "$N" -r "$RATE" \
    -l 2000 -timeout 600s -nostdin -trace_stat -stf "$DIR/sipp.csv" \
    127.0.0.1:$PORT > "$DIR/sipp.out" 2>&1 || true
end=$(date +%s.%N)
after=$(cpu)

kill "$(cat "$DIR/nginx.pid")"
for i in $(seq 1 100); do
    [ -e "$DIR/nginx.pid" ] || break
    sleep 0.1
done

hz=$(getconf CLK_TCK)
ok=$(grep -a "Successful call" "$DIR/sipp.out" | tail -1 | awk -F'|' '{print $3+0}')
failed=$(grep -a "Failed call" "$DIR/sipp.out" | tail -1 | awk -F'|' '{print $3+0}')
zone=$(grep -a 'sip_location_zone "phones"' "$DIR/logs/error.log" | tail -1)
bindings=$(echo "$zone" | sed -n 's/.*: \([0-9]*\) bindings.*/\1/p')
used=$(echo "$zone" | sed -n 's/.* \([0-9]*\) of [0-9]* bytes in use.*/\1/p')

awk -v n="$N" -v ok="${ok:-0}" -v failed="${failed:-0}" \
    -v t0="$start" -v t1="$end" -v c0="$before" -v c1="$after" -v hz="$hz" \
    -v b="${bindings:-0}" -v used="${used:-0}" -v w="$WORKERS" 'BEGIN {
    secs = t1 - t0; cpu = (c1 - c0) / hz;
    printf "workers                      %d\n", w;
    printf "REGISTERs sent / 200 OK      %d / %d (failed %d)\n", n, ok, failed;
    printf "wall time                    %.1f s (%.0f REGISTER/s)\n", secs, ok / secs;
    printf "nginx CPU (user+sys)         %.2f s\n", cpu;
    printf "CPU per REGISTER             %.1f us\n", ok ? cpu / ok * 1e6 : 0;
    printf "bindings in the zone         %d\n", b;
    printf "shared memory in use         %d bytes (%.0f bytes per binding)\n", used, b ? used / b : 0;
}'

[ -n "${KEEP:-}" ] || rm -rf "$DIR"
