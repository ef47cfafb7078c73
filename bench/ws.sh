#!/usr/bin/env bash
# SIP over WebSocket, nginx against Kamailio 5.6 with its websocket module
# (bench/kamailio-ws.cfg) doing the same job: N registered idle WSS
# clients (bench/ws_load.mjs, one Node process), the resident memory of
# every server process but nginx's master (VmRSS, and PSS, which counts a
# page shared by k processes 1/k in each, from /proc) before the clients
# and after they registered, per flow; then MESSAGES client to client
# through the server, WINDOW outstanding, the rate of 200s and the CPU
# time the server's processes took for them.  No digest on either server
# (the clients' REGISTER and MESSAGE are not challenged), TLS 1.2+ with a
# 2048-bit RSA certificate on both, no session cache; nginx with the
# transaction caps of the other bench/ scripts (every client is
# 127.0.0.1).  Loopback only; run inside "unshare -n" (make bench-ws).
#
#   bench/ws.sh [N] [MESSAGES] [WORKERS]     SERVERS="nginx kamailio"

set -eu

N=${1:-2000}
MESSAGES=${2:-20000}
WORKERS=${3:-1}
WINDOW=${WINDOW:-100}
SERVERS=${SERVERS:-nginx kamailio}
TOP=$(cd "$(dirname "$0")/.." && pwd)
MODULE=${NGX_SIP_MODULE:-$TOP/objs/ngx_stream_sip_module.so}
NGINX=${NGX_SIP_NGINX:-/usr/sbin/nginx}
PORT=15510
DIR=$(mktemp -d /tmp/ngx-sip-bench-ws-XXXXXX)
chmod 755 "$DIR"
mkdir "$DIR/logs" "$DIR/kam"

[ "$N" -le 20000 ] || { echo "N at most 20000"; exit 1; }
ulimit -n $((N * 2 + 1024))

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$DIR/cert.key" -out "$DIR/cert.crt" >/dev/null 2>&1

SERVER_PID=
LOADER=

# KB of VmRSS and of Pss of the processes named
mem() {
    local rss=0 pss=0 p
    for p in "$@"; do
        [ -r "/proc/$p/smaps_rollup" ] || continue
        rss=$((rss + $(awk '/^VmRSS/ { print $2 }' "/proc/$p/status")))
        pss=$((pss + $(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup")))
    done
    echo "$rss $pss"
}

# CPU ticks (user + system) of the processes named
cpu() {
    local t=0 p
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 }')))
    done
    echo $t
}

# every process of the server but nginx's master (Kamailio's main
# process is a worker too: it holds no SIP state, its children do)
procs() {
    case $1 in
    nginx) pgrep -P "$(cat "$DIR/nginx.pid")" ;;
    kamailio) echo "$SERVER_PID"; pgrep -P "$SERVER_PID" ;;
    esac
}

cleanup() {
    [ -n "$LOADER" ] && kill "$LOADER" 2>/dev/null || true
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    sleep 1
    [ -n "${KEEP:-}" ] || rm -rf "$DIR"
}
trap cleanup EXIT

start_nginx() {
    cp "$MODULE" "$DIR/module.so"
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
        listen 127.0.0.1:$((PORT + 2)) ssl;
        ssl_certificate     $DIR/cert.crt;
        ssl_certificate_key $DIR/cert.key;
        ssl_session_cache   off;
        sip on;
        sip_domain example.com;
        sip_registrar loc;
        sip_connection_timeout 1h;
        # all the clients are 127.0.0.1, and a completed MESSAGE's
        # transaction stays 5 s (T4): the caps of the other bench/ scripts
        sip_transactions_per_source 65536 bytes=1024m;
        sip_transactions 65536 bytes=1024m;
    }
}
CONF
    "$NGINX" -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/logs/error.log"
    sleep 0.5
    SERVER_PID=$(cat "$DIR/nginx.pid")
}

start_kamailio() {
    cat > "$DIR/tls.cfg" <<CONF
[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = $DIR/cert.key
certificate = $DIR/cert.crt
CONF
    kamailio -DD -E -f "$TOP/bench/kamailio-ws.cfg" -Y "$DIR/kam" \
        -P "$DIR/kam/kamailio.pid" -m 512 -M 16 \
        -A UDP_PORT=$PORT -A WS_PORT=$((PORT + 1)) \
        -A WSS_PORT=$((PORT + 2)) -A WORKERS=$WORKERS \
        -A "TLS_CFG=\"$DIR/tls.cfg\"" -A "CTL_SOCK=\"unix:$DIR/kam/ctl\"" \
        -A NO_AUTH >"$DIR/kamailio.log" 2>&1 &
    SERVER_PID=$!
    sleep 3
}

for server in $SERVERS; do
    "start_$server"

    before=$(mem $(procs $server))

    coproc LOAD { exec node "$TOP/bench/ws_load.mjs" \
        --url "wss://127.0.0.1:$((PORT + 2))" --n "$N" \
        --messages "$MESSAGES" --window "$WINDOW" 2>"$DIR/load.err"; }
    LOADER=$LOAD_PID

    line=
    read -r -t 300 line <&"${LOAD[0]}" || true
    case $line in
    registered*) ;;
    *) echo "$server: the clients did not register: $line"
       tail -n 5 "$DIR/load.err"; exit 1 ;;
    esac
    sleep 2

    after=$(mem $(procs $server))
    cpu0=$(cpu $(procs $server))
    echo "go" >&"${LOAD[1]}"

    result=
    read -r -t 600 result <&"${LOAD[0]}" || true
    cpu1=$(cpu $(procs $server))
    echo "go" >&"${LOAD[1]}"
    wait "$LOADER" 2>/dev/null || true
    LOADER=

    set -- $line
    echo "$server, $WORKERS worker(s), $N idle WSS flows (registered in $3 s):"
    set -- $before $after
    echo "  RSS $1 -> $3 KB: $(( ($3 - $1) * 1024 / N )) bytes per flow;" \
        "PSS $2 -> $4 KB: $(( ($4 - $2) * 1024 / N )) bytes per flow"
    set -- $result
    echo "  $MESSAGES MESSAGE client to client, window $WINDOW:" \
        "${2:-?} answered 200, ${3:-?} failed, ${4:-?} s: ${5:-?} per second;" \
        "server CPU $(( (cpu1 - cpu0) * 1000 / $(getconf CLK_TCK) )) ms," \
        "$(( (cpu1 - cpu0) * 1000000 / $(getconf CLK_TCK) / ${2:-1} )) us" \
        "per MESSAGE; the clients' CPU ${6:-?} ms"

    kill "$SERVER_PID"
    wait "$SERVER_PID" 2>/dev/null || true
    for i in $(seq 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    SERVER_PID=
    sleep 1
done
