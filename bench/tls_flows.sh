#!/usr/bin/env bash
# Memory of idle registered TLS phones: N TLS connections that each
# REGISTER once and then stay open, silent; the nginx workers' resident
# memory (VmRSS from /proc) before and after, per connection.  Loopback
# only; run inside "unshare -n" (make bench-tls does).
#
#   bench/tls_flows.sh [N] [WORKERS]

set -eu

N=${1:-2000}
WORKERS=${2:-1}
TOP=$(cd "$(dirname "$0")/.." && pwd)
MODULE=${NGX_SIP_MODULE:-$TOP/objs/ngx_stream_sip_module.so}
PORT=15260
DIR=$(mktemp -d /tmp/ngx-sip-bench-XXXXXX)
chmod 755 "$DIR"
mkdir "$DIR/logs"
cp "$MODULE" "$DIR/module.so"

ulimit -n $((N * 2 + 1024))

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$DIR/cert.key" -out "$DIR/cert.crt" >/dev/null 2>&1

cat > "$DIR/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $DIR/module.so;
worker_processes $WORKERS;
worker_rlimit_nofile $((N * 2 + 1024));
pid $DIR/nginx.pid;
error_log $DIR/logs/error.log notice;
events { worker_connections $((N + 1024)); }
stream {
    sip_location_zone loc:16m;
    server {
        listen 127.0.0.1:$PORT ssl;
        ssl_certificate     $DIR/cert.crt;
        ssl_certificate_key $DIR/cert.key;
        ssl_session_cache   off;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_connection_timeout 1h;
    }
}
CONF

rss() {
    local total=0 p
    for p in $(pgrep -P "$(cat "$DIR/nginx.pid")"); do
        total=$((total + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status")))
    done
    echo $total
}

cleanup() {
    [ -n "${CLIENT:-}" ] && kill "$CLIENT" 2>/dev/null || true
    [ -f "$DIR/nginx.pid" ] && kill "$(cat "$DIR/nginx.pid")" 2>/dev/null || true
    sleep 0.5
    [ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT

/usr/sbin/nginx -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/logs/error.log"
sleep 0.5

# one REGISTER per connection, then silence; a bounded wait
perl -I "$TOP/t/lib" -MNgxSip -e '
    my ($n, $port, $ready) = @ARGV;
    my @c;
    for my $i (1 .. $n) {
        my $s = tcp_connect(port => $port, ssl => 1);
        stream_send($s, sip_request(method => "REGISTER",
            uri => "sip:example.com", to => "sip:tls$i\@example.com",
            transport => "TLS", via_host => "10.9.9.9", via_port => 5999,
            call_id => "tlsflow-$i",
            headers => [["Contact", "<sip:tls$i\@10.9.9.9:5999;transport=tls>"],
                ["Expires", 3600]]));
        my ($m) = stream_recv($s, 1, 5);
        die "no 200 for $i" unless ($m->[0] // "") =~ /^SIP\/2\.0 200/;
        push @c, $s;
    }
    open my $fh, ">", $ready; close $fh;
    sleep 120;' "$N" "$PORT" "$DIR/ready" &
CLIENT=$!

before=$(rss)

for i in $(seq 1 600); do
    [ -f "$DIR/ready" ] && break
    sleep 0.2
done

[ -f "$DIR/ready" ] || { echo "the phones did not all register"; exit 1; }
sleep 1
after=$(rss)

echo "command:  bench/tls_flows.sh $N $WORKERS"
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine:  $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "idle registered TLS phones: $N"
echo "nginx workers' RSS before: $before kB, after: $after kB"
echo "per TLS flow: $(( (after - before) * 1024 / N )) bytes"
