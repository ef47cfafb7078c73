#!/usr/bin/env bash
# Memory per in-flight INVITE transaction: a SIPp callee that rings for
# HOLD seconds before it answers, a SIPp caller at RATE calls/s, so that
# about RATE * HOLD transactions are open at once; nginx workers' RSS
# (VmRSS from /proc) before the load and at its height.  Loopback only;
# run inside "unshare -n" (make bench-inflight does).
#
#   bench/inflight.sh [RATE] [HOLD] [WORKERS]

set -eu

RATE=${1:-500}
HOLD=${2:-8}
WORKERS=${3:-1}
TOP=$(cd "$(dirname "$0")/.." && pwd)
MODULE=${NGX_SIP_MODULE:-$TOP/objs/ngx_stream_sip_module.so}
PORT=15290
UAS=15291
UAC=15292
DIR=$(mktemp -d /tmp/ngx-sip-bench-XXXXXX)
chmod 755 "$DIR"
mkdir "$DIR/logs"
cp "$MODULE" "$DIR/module.so"
N=$((RATE * (HOLD + 4)))

cat > "$DIR/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $DIR/module.so;
worker_processes $WORKERS;
pid $DIR/nginx.pid;
error_log $DIR/logs/error.log notice;
events { worker_connections 8192; }
stream {
    server {
        listen 127.0.0.1:$PORT udp;
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
    my ($dir, $hold) = @ARGV;
    my $s = sipp_scenarios();
    my $uas = $s->{uas_call};
    # ring HOLD seconds before the 200
    $uas =~ s{(SIP/2\.0 200 OK)}{$1}; 
    $uas =~ s{(\s*<send>\s*<!\[CDATA\[\s*SIP/2\.0 200)}{\n  <pause milliseconds="@{[ $hold * 1000 ]}"/>$1};
    for my $n ("uac_call") {
        open my $fh, ">", "$dir/$n.xml" or die; print $fh $s->{$n};
    }
    open my $fh, ">", "$dir/uas_call.xml" or die; print $fh $uas;' \
    "$DIR" "$HOLD"

rss() {
    local total=0 p
    for p in $(pgrep -P "$(cat "$DIR/nginx.pid")"); do
        total=$((total + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status")))
    done
    echo $total
}

cleanup() {
    [ -n "${UAS_PID:-}" ] && kill "$UAS_PID" 2>/dev/null || true
    [ -n "${UAC_PID:-}" ] && kill "$UAC_PID" 2>/dev/null || true
    [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
    sleep 0.5
    [ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT

/usr/sbin/nginx -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/logs/error.log"
sleep 0.5

sipp -sf "$DIR/uas_call.xml" -i 127.0.0.1 -p $UAS -nostdin \
    -default_behaviors all,-abortunexp > "$DIR/uas.out" 2>&1 &
UAS_PID=$!
sleep 0.5

before=$(rss)

sipp -sf "$DIR/uac_call.xml" -s bob -i 127.0.0.1 -p $UAC -m "$N" \
    -r "$RATE" -l $((N + 100)) -timeout 120s -nostdin \
    -default_behaviors all,-abortunexp \
    127.0.0.1:$PORT > "$DIR/uac.out" 2>&1 &
UAC_PID=$!

sleep $((HOLD + 2))
during=$(rss)

echo "command:  bench/inflight.sh $RATE $HOLD $WORKERS"
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine:  $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "INVITEs in flight: about $((RATE * HOLD)) ($RATE calls/s, ringing $HOLD s)"
echo "nginx workers' RSS before: $before kB, in flight: $during kB"
echo "per in-flight INVITE transaction: $(( (during - before) * 1024 / (RATE * HOLD) )) bytes"
