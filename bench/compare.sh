#!/usr/bin/env bash
# ngx_sip and Kamailio side by side, in one run, on the same machine, with
# the same number of worker processes, over UDP on loopback:
#
#   1. calls: a SIPp callee registers as bob, a SIPp caller makes CALLS
#      calls to sip:bob@example.com through the server at RATE calls/s
#      (INVITE/100/180/200/ACK/BYE/200, Record-Route, ACK and BYE along
#      the route set); server CPU per call, failed calls;
#   2. registrations: REGS distinct phones, one REGISTER each; server CPU
#      per REGISTER;
#   3. a short ramp of call rates (RAMP, RAMP_SECS seconds each): the
#      highest rate with less than 0.1% failed calls;
#   4. shared memory per binding: nginx from the zone's own report at
#      stop (as bench/registrar.sh), Kamailio from "kamcmd core.shmmem"
#      before and after the registrations.
#
# Server CPU is user+system time from /proc/PID/stat (fields 14 and 15)
# of every process of the server: nginx master and workers; Kamailio main
# process, UDP receivers, timers and ctl handler.
#
# Run it in a private network namespace:
#
#   unshare -n bash -c 'ip link set lo up; bench/compare.sh [CALLS] [RATE] [WORKERS]'
#
# Defaults: 5000 calls at 500/s, 2 workers, 20000 REGISTERs at 5000/s,
# ramp 200 ... 6000 calls/s; about 2 minutes.  Environment: SMOKE=1 (200
# calls, 500 REGISTERs, no ramp: under 10 s), REGS, REG_RATE, RAMP (e.g.
# "200 500 1000 2000", or "" for none), RAMP_SECS (3), KAM_MEM (Kamailio's
# memory manager, -x: tlsf; qm is its default), KEEP=1 (keep the temporary
# directory with every log, scenario, SIPp screen and statistics file, and
# results.txt), NGX_SIP_MODULE (the module .so, copied at start), PERF=1
# (profile the call workload of both servers with perf, Debian's
# linux-perf, and print where their CPU went).

set -eu

# the environment that changes the run, as given, for the command line
ENVS=
for v in SMOKE REGS REG_RATE RAMP RAMP_SECS KAM_MEM; do
    if [ -n "${!v+x}" ]; then
        ENVS="$ENVS$v=\"${!v}\" "
    fi
done

if [ "${SMOKE:-0}" = 1 ]; then
    CALLS=${1:-200}
    RATE=${2:-200}
    WORKERS=${3:-2}
    REGS=${REGS:-500}
    REG_RATE=${REG_RATE:-1000}
    RAMP=${RAMP-}
else
    CALLS=${1:-5000}
    RATE=${2:-500}
    WORKERS=${3:-2}
    REGS=${REGS:-20000}
    REG_RATE=${REG_RATE:-5000}
    RAMP=${RAMP-200 500 1000 2000 3000 4000 6000}
fi
RAMP_SECS=${RAMP_SECS:-3}

TOP=$(cd "$(dirname "$0")/.." && pwd)
MODULE=${NGX_SIP_MODULE:-$TOP/objs/ngx_stream_sip_module.so}
KAM_CFG=$TOP/bench/kamailio.cfg
KAM_SHM=2048    # -m, MB of shared memory (transactions, location): the
                # ramp peaks near 600 MB (tm keeps every transaction 5 s
                # after it ends); 512 ran out at 6000 calls/s
KAM_PKG=16      # -M, MB of private memory per process
# -x, Kamailio's memory manager: its default, qm, is the debugging one
# and costs 2 to 3 times the CPU per call and per REGISTER of tlsf here
KAM_MEM=${KAM_MEM:-tlsf}
HZ=$(getconf CLK_TCK)

# ports from 15290 (nginx) and 15390 (Kamailio): the server, +1 the callee,
# +2 the caller, +3 the phones, +5 ... the ramp's callers
NGX_PORT=15290
KAM_PORT=15390

for f in "$MODULE" "$KAM_CFG"; do
    [ -r "$f" ] || { echo "compare.sh: $f missing (make module?)" >&2; exit 1; }
done
for n in "$CALLS" "$RATE" "$WORKERS" "$REGS" "$REG_RATE" "$RAMP_SECS" $RAMP; do
    case $n in
        ''|*[!0-9]*|0) echo "compare.sh: \"$n\" is not a positive number" >&2
                       exit 1 ;;
    esac
done

DIR=$(mktemp -d /tmp/ngx-sip-compare-XXXXXX)
chmod 755 "$DIR"
mkdir -m 777 "$DIR/state"
mkdir "$DIR/kam"

# a copy: a "make module" during the run must not change the code under
# a running nginx (workers die with SIGSEGV when the .so is rewritten)
cp "$MODULE" "$DIR/ngx_stream_sip_module.so"
MODULE_SRC=$MODULE
MODULE=$DIR/ngx_stream_sip_module.so
module_desc="$MODULE_SRC, built $(date -u -r "$MODULE_SRC" '+%Y-%m-%d %H:%M UTC')"
if rev=$(git -C "$TOP" rev-parse --short HEAD 2>/dev/null); then
    git -C "$TOP" diff --quiet HEAD -- src config 2>/dev/null \
        || rev="$rev + uncommitted changes in src/"
    module_desc="$module_desc, tree at $rev"
fi

# every process we start, by pid; stopped by exactly these pids on exit
NGX_MASTER=
KAM_MAIN=
KAM_KIDS=
SIPP_PIDS=

forget() {
    local p l=
    for p in $SIPP_PIDS; do
        [ "$p" = "$1" ] || l="$l $p"
    done
    SIPP_PIDS=$l
}

alive() {
    [ -n "$1" ] && [ -d "/proc/$1" ] \
        && ! grep -qs '^State:.*Z' "/proc/$1/status"
}

# stop_pid PID: TERM, up to 10 s, then KILL; our children are reaped
stop_pid() {
    local p=$1 i
    alive "$p" || { wait "$p" 2>/dev/null || true; return 0; }
    kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 1 100); do
        alive "$p" || break
        sleep 0.1
    done
    if alive "$p"; then
        kill -KILL "$p" 2>/dev/null || true
    fi
    wait "$p" 2>/dev/null || true
}

cleanup() {
    local p
    set +e
    for p in $SIPP_PIDS; do stop_pid "$p"; done
    SIPP_PIDS=
    stop_nginx
    stop_kamailio
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept $DIR" >&2
    else
        rm -rf "$DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# cpu_ticks ROOT: utime+stime of ROOT and its children, in clock ticks
cpu_ticks() {
    local total=0 p t
    for p in "$1" $(pgrep -P "$1" || true); do
        t=$(cut -d' ' -f14,15 "/proc/$p/stat" 2>/dev/null) || continue
        set -- $t
        total=$((total + $1 + $2))
    done
    echo $total
}

# PERF=1: the call workload of each server under "perf record" (all its
# processes), reported by shared object and by symbol after the table
PERF_PID=
perf_start() {
    local pids
    case "${PERF:-0}.$2" in 1.calls.*) ;; *) return 0 ;; esac
    pids=$(echo "$1" $(pgrep -P "$1" || true) | tr ' ' ',')
    perf record -q -F 999 -g -p "$pids" -o "$DIR/$2.perf" \
        > "$DIR/$2.perf.out" 2>&1 &
    PERF_PID=$!
    sleep 0.3
}
perf_stop() {
    [ -n "$PERF_PID" ] || return 0
    kill -INT "$PERF_PID" 2>/dev/null || true
    wait "$PERF_PID" 2>/dev/null || true
    PERF_PID=
}

nprocs() {
    echo $((1 + $(pgrep -c -P "$1" || true)))
}

# ---------------------------------------------------------------- nginx

# nginx_conf LEVEL STATE: STATE "yes" keeps a state file, whose writing
# at stop reports the zone's memory
nginx_conf() {
    local state=
    [ "$2" = yes ] && state=" state=$DIR/state/loc.state"
    cat > "$DIR/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
load_module $MODULE;
worker_processes $WORKERS;
pid $DIR/nginx.pid;
error_log $DIR/nginx-error.log $1;
events { worker_connections 16384; }
stream {
    sip_location_zone loc:64m$state;
    server {
        listen 127.0.0.1:$NGX_PORT udp;
        sip on;
        sip_domain example.com 127.0.0.1;
        sip_registrar loc;
        sip_record_route on;
        # the load generator is one source, as a carrier trunk is
        sip_transactions_per_source 65536 bytes=1024m;
        sip_transactions 65536 bytes=1024m;
    }
}
CONF
}

start_nginx() {
    local i
    rm -f "$DIR/nginx.pid" "$DIR/state/loc.state"
    /usr/sbin/nginx -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/nginx-error.log"
    for i in $(seq 1 50); do
        [ -s "$DIR/nginx.pid" ] && break
        sleep 0.1
    done
    NGX_MASTER=$(cat "$DIR/nginx.pid")
    for i in $(seq 1 50); do
        [ "$(pgrep -c -P "$NGX_MASTER" || true)" -ge "$WORKERS" ] && break
        sleep 0.1
    done
    sleep 0.3
}

stop_nginx() {
    [ -n "$NGX_MASTER" ] || return 0
    stop_pid "$NGX_MASTER"
    NGX_MASTER=
}

# ------------------------------------------------------------- Kamailio

start_kamailio() {
    local i
    rm -f "$DIR/kam/ctl"
    kamailio -DD -E -f "$KAM_CFG" -m $KAM_SHM -M $KAM_PKG -x "$KAM_MEM" \
        -Y "$DIR/kam" -P "$DIR/kam/kamailio.pid" \
        -A SIP_PORT=$KAM_PORT -A WORKERS="$WORKERS" \
        -A "CTL_SOCK=\"unix:$DIR/kam/ctl\"" \
        >> "$DIR/kamailio.log" 2>&1 &
    KAM_MAIN=$!
    for i in $(seq 1 100); do
        [ -S "$DIR/kam/ctl" ] && break
        alive "$KAM_MAIN" || { echo "kamailio did not start:" >&2
                               tail -20 "$DIR/kamailio.log" >&2; exit 1; }
        sleep 0.1
    done
    sleep 0.3
    KAM_KIDS=$(pgrep -P "$KAM_MAIN" | tr '\n' ' ')
}

stop_kamailio() {
    local p
    [ -n "$KAM_MAIN" ] || return 0
    stop_pid "$KAM_MAIN"
    for p in $KAM_KIDS; do
        # only if still a kamailio: it was our main process's child
        if alive "$p" && grep -qs '^Name:.*kamailio' "/proc/$p/status"; then
            kill -KILL "$p" 2>/dev/null || true
        fi
    done
    KAM_MAIN=
    KAM_KIDS=
}

# shared memory in use: real_used (or another field) of core.shmmem
kam_shm() {
    kamcmd -s "unix:$DIR/kam/ctl" core.shmmem 2>/dev/null \
        | awk -v f="${1:-real_used}:" '$1 == f { print $2 }'
}

# ------------------------------------------------------------ scenarios

perl -I "$TOP/t/lib" -MNgxSipp -e '
    my $s = sipp_scenarios();
    for my $n ("uac_call", "uas_call") {
        open my $fh, ">", "$ARGV[0]/$n.xml" or die;
        print $fh $s->{$n};
    }' "$DIR"

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

# register_bob SERVER_PORT UAS_PORT: one REGISTER for bob, sent from the
# callee's port with the callee's port as Contact, before SIPp takes it
register_bob() {
    perl -MIO::Socket::INET -e '
        my ($srv, $port) = @ARGV;
        my $s = IO::Socket::INET->new(Proto => "udp",
            LocalAddr => "127.0.0.1", LocalPort => $port,
            PeerAddr => "127.0.0.1", PeerPort => $srv) or die "udp: $!\n";
        for my $try (1 .. 5) {
            $s->send("REGISTER sip:example.com SIP/2.0\r\n"
                . "Via: SIP/2.0/UDP 127.0.0.1:$port;branch=z9hG4bK-bob$$-$try\r\n"
                . "From: <sip:bob\@example.com>;tag=bob$$\r\n"
                . "To: <sip:bob\@example.com>\r\n"
                . "Call-ID: bob-$$\@127.0.0.1\r\n"
                . "CSeq: $try REGISTER\r\n"
                . "Contact: <sip:bob\@127.0.0.1:$port>\r\n"
                . "Max-Forwards: 70\r\nExpires: 3600\r\n"
                . "Content-Length: 0\r\n\r\n");
            my $rin = "";
            vec($rin, fileno($s), 1) = 1;
            next unless select(my $r = $rin, undef, undef, 1);
            $s->recv(my $buf, 65535);
            exit 0 if $buf =~ m{^SIP/2\.0 200 };
            die "REGISTER bob: $buf";
        }
        die "REGISTER bob: no answer\n";' "$1" "$2"
}

# sipp_stat CSV COLUMN: the last value of a column of SIPp's -stf file
sipp_stat() {
    [ -s "$1" ] || { echo 0; return; }
    awk -F';' -v col="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) if ($i == col) c = i; next }
        { v = $c }
        END { print (c && v != "") ? v + 0 : 0 }' "$1"
}

# run_sipp NAME LIMIT ARGS...: SIPp in the foreground, bounded, pid
# recorded; its CPU time by /usr/bin/time, when there is one
TIME=
[ -x /usr/bin/time ] && TIME=/usr/bin/time
run_sipp() {
    local name=$1 limit=$2 p
    shift 2
    timeout -k 5 "$limit" ${TIME:+$TIME -o "$DIR/$name.time" -f '%U %S'} \
        sipp "$@" -nostdin \
        -trace_stat -stf "$DIR/$name.csv" -fd 1 \
        > "$DIR/$name.out" 2>&1 &
    p=$!
    SIPP_PIDS="$SIPP_PIDS $p"
    wait "$p" || true
    forget "$p"
}

# results, by key: R[key.ngx], R[key.kam]
declare -A R

udp_rcvbuf_errors() {
    awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) n[$i] = i; h = 1 }
                   else v = $n["RcvbufErrors"] } END { print v + 0 }' \
        /proc/net/snmp
}

# datagrams dropped by the UDP sockets bound to 127.0.0.1:PORT (full
# receive buffer), from the last column of /proc/net/udp
sock_drops() {
    awk -v a="$(printf '0100007F:%04X' "$1")" \
        '$2 == a { d += $NF } END { print d + 0 }' /proc/net/udp
}

# measure ROOT NAME SERVER_PORT LIMIT SIPP_ARGS...: CPU ticks of ROOT and
# its children around one SIPp run, wall time, CPU of the SIPps (this
# one and the callee, UAS_PID, when it runs), UDP receive buffer drops at
# the server, at the callee (SERVER_PORT + 1) and elsewhere (the SIPp
# sending the load)
measure() {
    local root=$1 name=$2 port=$3 c0 c1 t0 t1 e0 s0 u0 e1 s1 u1 a0= a1=
    shift 3
    e0=$(udp_rcvbuf_errors)
    s0=$(sock_drops "$port")
    u0=$(sock_drops $((port + 1)))
    [ -z "${UAS_PID:-}" ] || a0=$(cpu_ticks "$UAS_PID")
    c0=$(cpu_ticks "$root")
    t0=$(date +%s.%N)
    perf_start "$root" "$name"
    run_sipp "$name" "$@"
    perf_stop
    t1=$(date +%s.%N)
    c1=$(cpu_ticks "$root")

    [ -z "${UAS_PID:-}" ] || a1=$(cpu_ticks "$UAS_PID")
    e1=$(udp_rcvbuf_errors)
    s1=$(sock_drops "$port")
    u1=$(sock_drops $((port + 1)))
    R[$name.ticks]=$((c1 - c0))
    R[$name.secs]=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
    # SIPp CPU in ticks: the load generator's from time(1), the callee's
    R[$name.sipp]=
    if [ -s "$DIR/$name.time" ]; then
        R[$name.sipp]=$(awk -v hz="$HZ" -v a="${a0:-0}" -v b="${a1:-0}" \
            'NF == 2 && $1 ~ /^[0-9.]+$/ { t = ($1 + $2) * hz }
             END { printf "%.0f", t + b - a }' "$DIR/$name.time")
    fi
    R[$name.drops]="$((s1 - s0))/$((u1 - u0))/$((e1 - e0 - (s1 - s0) - (u1 - u0)))"
}

# ----------------------------------------------------------- workloads

# registrations SRV PORT ROOT: REGS distinct phones
registrations() {
    local srv=$1 port=$2 root=$3 name=reg.$1 ok
    measure "$root" "$name" "$port" $((REGS / REG_RATE + 60)) \
        -sf "$DIR/register.xml" -i 127.0.0.1 -p $((port + 3)) \
        -m "$REGS" -r "$REG_RATE" -l 5000 -recv_timeout 10000 \
        -timeout $((REGS / REG_RATE + 50))s 127.0.0.1:$port
    ok=$(sipp_stat "$DIR/$name.csv" 'SuccessfulCall(C)')
    R[$name.ok]=$ok
    R[$name.failed]=$((REGS - ok))
    R[$name.retrans]=$(sipp_stat "$DIR/$name.csv" 'Retransmissions(C)')
}

# calls NAME SRV PORT ROOT N CPS UAC_PORT
calls() {
    local name=$1 srv=$2 port=$3 root=$4 n=$5 cps=$6 uac=$7 ok
    measure "$root" "$name" "$port" $((n / cps + 60)) \
        -sf "$DIR/uac_call.xml" -s bob -i 127.0.0.1 -p "$uac" \
        -m "$n" -r "$cps" -l 20000 -recv_timeout 10000 \
        -timeout $((n / cps + 50))s \
        -default_behaviors all,-abortunexp 127.0.0.1:$port
    ok=$(sipp_stat "$DIR/$name.csv" 'SuccessfulCall(C)')
    R[$name.ok]=$ok
    R[$name.failed]=$((n - ok))
    R[$name.retrans]=$(sipp_stat "$DIR/$name.csv" 'Retransmissions(C)')
    R[$name.warn]=$(sipp_stat "$DIR/$name.csv" 'Warnings(C)')
    R[$name.rate]=$(sipp_stat "$DIR/$name.csv" 'CallRate(C)')
}

UAS_PID=

# the callee: registers as bob, then SIPp answers every call
start_uas() {
    local port=$1 uas=$(($1 + 1)) p
    register_bob "$port" "$uas"
    sipp -sf "$DIR/uas_call.xml" -i 127.0.0.1 -p "$uas" -nostdin \
        -default_behaviors all,-abortunexp \
        -trace_stat -stf "$DIR/uas.$2.csv" -fd 1 \
        > "$DIR/uas.$2.out" 2>&1 &
    p=$!
    SIPP_PIDS="$SIPP_PIDS $p"
    UAS_PID=$p
    sleep 0.5
}

stop_uas() {
    stop_pid "$UAS_PID"
    forget "$UAS_PID"
    UAS_PID=
}

# call workloads against one server: calls, then the ramp
call_phase() {
    local srv=$1 port=$2 root=$3 step=0 r n failed
    start_uas "$port" "$srv"
    calls "calls.$srv" "$srv" "$port" "$root" "$CALLS" "$RATE" $((port + 2))
    R[ramp.$srv.max]=none
    for r in $RAMP; do
        step=$((step + 1))
        n=$((r * RAMP_SECS))
        calls "ramp$r.$srv" "$srv" "$port" "$root" "$n" "$r" \
            $((port + 4 + step))
        failed=${R[ramp$r.$srv.failed]}
        # less than 0.1% failed
        if [ $((failed * 1000)) -lt "$n" ]; then
            R[ramp.$srv.max]=$r
        else
            break
        fi
        sleep 1
    done
    stop_uas
}

# ----------------------------------------------------------------- run

netns=same
[ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net 2>/dev/null)" ] \
    || netns=private

cmd="${ENVS}bench/compare.sh${*:+ $*}"
if [ $netns = private ]; then
    cmd="unshare -n bash -c 'ip link set lo up; $cmd'"
fi

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
ngx_ver=$(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///')
kam_ver=$(kamailio -v | awk 'NR == 1 { print $3 }')
sipp_ver=$(sipp -v 2>&1 | awk '/SIPp/ { sub(/\.$/, "", $2); print $2; exit }')

ramp_desc=none
[ -z "$RAMP" ] || ramp_desc="$RAMP calls/s, $RAMP_SECS s each"

echo "## ngx_sip and Kamailio side by side"
echo
echo "Machine: $(nproc) CPUs, $cpu_model, $mem, Debian $(cat /etc/debian_version)," \
     "nginx $ngx_ver, Kamailio $kam_ver, SIPp $sipp_ver; servers and SIPp on the" \
     "same machine over loopback.  $(date -u '+%Y-%m-%d %H:%M UTC')."
echo
echo "    $cmd"
echo
[ $netns = private ] \
    || echo "(warning: not in a private network namespace; use unshare -n)"
echo "ngx_sip: ${module_desc#$TOP/}."
echo "Workers: nginx worker_processes $WORKERS; Kamailio children=$WORKERS" \
     "(UDP receivers), -m $KAM_SHM -M $KAM_PKG -x $KAM_MEM.  Calls: $CALLS at $RATE/s." \
     "Registrations: $REGS at $REG_RATE/s.  Ramp:" \
     "${ramp_desc}."
echo

nginx_conf notice no
/usr/sbin/nginx -t -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/nginx-error.log" \
    > "$DIR/nginx-t.out" 2>&1 || { cat "$DIR/nginx-t.out" >&2; exit 1; }
kamailio -c -f "$KAM_CFG" > "$DIR/kamailio-c.out" 2>&1 \
    || { cat "$DIR/kamailio-c.out" >&2; exit 1; }

progress() { echo "... $*" >&2; }

# 1. registrations and shared memory per binding, fresh servers

progress "registrations: nginx"
nginx_conf notice yes
start_nginx
R[procs.ngx]=$(nprocs "$NGX_MASTER")
registrations ngx $NGX_PORT "$NGX_MASTER"
# the zone reports its use when its state is written: at stop, at info
nginx_conf info yes
kill -HUP "$NGX_MASTER"
sleep 1
stop_nginx
zone=$(grep -a 'sip_location_zone "loc"' "$DIR/nginx-error.log" | tail -1)
R[bindings.ngx]=$(echo "$zone" | sed -n 's/.*: \([0-9]*\) bindings.*/\1/p')
R[shm.ngx]=$(echo "$zone" | sed -n 's/.* \([0-9]*\) of [0-9]* bytes in use.*/\1/p')

progress "registrations: kamailio"
start_kamailio
R[procs.kam]=$(nprocs "$KAM_MAIN")
R[procnames.kam]=$(kamcmd -s "unix:$DIR/kam/ctl" core.psx 2>/dev/null \
    | sed -n 's/^[[:space:]]*DSC: //p' \
    | sed 's/ child=.*//; s/ - attendant//' | sort | uniq -c \
    | awk '{ n = $1; $1 = ""; sub(/^ /, ""); printf "%s%s x%d", s, $0, n; s = ", " }')
shm0=$(kam_shm)
registrations kam $KAM_PORT "$KAM_MAIN"
sleep 0.5
shm1=$(kam_shm)
R[bindings.kam]=$(kamcmd -s "unix:$DIR/kam/ctl" stats.get_statistics \
    location_contacts 2>/dev/null | awk '{ print $3 }')
stop_kamailio
if [ -n "$shm0" ] && [ -n "$shm1" ]; then
    R[shm.kam]=$((shm1 - shm0))
fi

# 2. and 3. calls and the ramp, fresh servers

progress "calls: nginx"
nginx_conf notice no
start_nginx
call_phase ngx $NGX_PORT "$NGX_MASTER"
stop_nginx

progress "calls: kamailio"
start_kamailio
call_phase kam $KAM_PORT "$KAM_MAIN"
R[shmpeak.kam]=$(kam_shm max_used)
stop_kamailio

# ---------------------------------------------------------------- table

for k in "${!R[@]}"; do
    echo "$k ${R[$k]}"
done | sort > "$DIR/results.txt"

us() {  # us TICKS COUNT [DECIMALS]: microseconds per item
    awk -v t="$1" -v n="$2" -v hz="$HZ" -v d="${3:-0}" \
        'BEGIN { if (n > 0) printf "%.*f", d, t / hz / n * 1e6; else print "n/a" }'
}
pct() {  # pct TICKS SECONDS: CPU use in % of one CPU
    awk -v t="$1" -v s="$2" -v hz="$HZ" \
        'BEGIN { if (s > 0 && t != "") printf "%.0f%%", t / hz / s * 100;
                 else print "n/a" }'
}
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b;
        else print "" }'
}
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "${4-$(ratio "$2" "$3")}"; }
cpu_s() { awk -v t="$1" -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }'; }

for s in ngx kam; do
    R[cpu.call.$s]=$(us "${R[calls.$s.ticks]}" "${R[calls.$s.ok]}")
    R[cpu.reg.$s]=$(us "${R[reg.$s.ticks]}" "${R[reg.$s.ok]}" 1)
done
if [ -n "${R[shm.ngx]:-}" ] && [ "${R[bindings.ngx]:-0}" -gt 0 ]; then
    R[shmb.ngx]=$((R[shm.ngx] / R[bindings.ngx]))
fi
if [ -n "${R[shm.kam]:-}" ] && [ "${R[reg.kam.ok]}" -gt 0 ]; then
    R[shmb.kam]=$((R[shm.kam] / R[reg.kam.ok]))
fi

echo "| workload | ngx_sip | kamailio | ratio |"
echo "|---|---|---|---|"
row "processes (server total)" "${R[procs.ngx]} (master + $WORKERS workers)" \
    "${R[procs.kam]} (${R[procnames.kam]})" ""
row "calls: $CALLS at $RATE/s, successful / failed" \
    "${R[calls.ngx.ok]} / ${R[calls.ngx.failed]}" \
    "${R[calls.kam.ok]} / ${R[calls.kam.failed]}" ""
row "calls: server CPU, user+sys (s)" "$(cpu_s "${R[calls.ngx.ticks]}")" \
    "$(cpu_s "${R[calls.kam.ticks]}")"
row "calls: CPU per call (us)" "${R[cpu.call.ngx]}" "${R[cpu.call.kam]}"
row "calls: CPU use in % of one CPU: server; SIPp caller + callee" \
    "$(pct "${R[calls.ngx.ticks]}" "${R[calls.ngx.secs]}"); $(pct "${R[calls.ngx.sipp]}" "${R[calls.ngx.secs]}")" \
    "$(pct "${R[calls.kam.ticks]}" "${R[calls.kam.secs]}"); $(pct "${R[calls.kam.sipp]}" "${R[calls.kam.secs]}")" ""
row "calls: caller retransmissions" "${R[calls.ngx.retrans]}" \
    "${R[calls.kam.retrans]}" ""
row "calls: UDP receive buffer drops at server/callee/caller" \
    "${R[calls.ngx.drops]}" "${R[calls.kam.drops]}" ""
row "calls: caller warnings (unexpected messages, e.g. a 180 after the 200)" \
    "${R[calls.ngx.warn]}" "${R[calls.kam.warn]}" ""
row "registrations: $REGS at $REG_RATE/s, 200 OK / failed" \
    "${R[reg.ngx.ok]} / ${R[reg.ngx.failed]}" \
    "${R[reg.kam.ok]} / ${R[reg.kam.failed]}" ""
row "registrations: server CPU, user+sys (s)" "$(cpu_s "${R[reg.ngx.ticks]}")" \
    "$(cpu_s "${R[reg.kam.ticks]}")"
row "registrations: CPU per REGISTER (us)" "${R[cpu.reg.ngx]}" \
    "${R[cpu.reg.kam]}"
row "registrations: retransmissions; UDP drops at server/-/phones" \
    "${R[reg.ngx.retrans]}; ${R[reg.ngx.drops]}" \
    "${R[reg.kam.retrans]}; ${R[reg.kam.drops]}" ""
row "bindings after the registrations" "${R[bindings.ngx]:-n/a}" \
    "${R[bindings.kam]:-n/a}" ""
row "shm per binding (bytes)" "${R[shmb.ngx]:-n/a}" "${R[shmb.kam]:-n/a}"
row "shm peak over calls and ramp (MB)" "n/a (transactions live in worker memory)" \
    "$(awk -v b="${R[shmpeak.kam]:-}" 'BEGIN { if (b != "") printf "%.0f of '"$KAM_SHM"'", b / 1048576; else print "n/a" }')" ""
for r in $RAMP; do
    cell() {
        if [ -n "${R[ramp$r.$1.ok]:-}" ]; then
            local k=ramp$r.$1
            echo "${R[$k.failed]} failed of $((r * RAMP_SECS)); $(us "${R[$k.ticks]}" "${R[$k.ok]}") us/call; CPU server $(pct "${R[$k.ticks]}" "${R[$k.secs]}"), SIPp $(pct "${R[$k.sipp]}" "${R[$k.secs]}"); $(printf '%.0f' "${R[$k.rate]}") calls/s made; drops ${R[$k.drops]}"
        else
            echo "not run"
        fi
    }
    row "ramp $r calls/s for ${RAMP_SECS} s" "$(cell ngx)" "$(cell kam)" ""
done
if [ -n "$RAMP" ]; then
    last=${RAMP##* }
    for s in ngx kam; do
        [ "${R[ramp.$s.max]}" = "$last" ] \
            && R[ramp.$s.max]="$last (every step passed)"
    done
    row "ramp: highest rate with <0.1% failed calls" "${R[ramp.ngx.max]}" \
        "${R[ramp.kam.max]}" ""
fi
echo
echo "ratio = ngx_sip / kamailio (below 1: ngx_sip uses less)." \
     "CPU is user+system time of all the server's processes, from /proc," \
     "while SIPp ran; per call and per REGISTER it is divided by the" \
     "successful ones; clock ticks of 1/$HZ s, so small runs are coarse." \
     "SIPp CPU: the load generator (time(1)) and the callee (/proc):" \
     "servers and SIPp share $(nproc) CPUs, so the top of the ramp is" \
     "where the machine runs out, not only the server.  Drops: datagrams" \
     "lost to full UDP receive buffers (/proc/net/udp, /proc/net/snmp)." \
     "shm per binding: nginx, slab pages in use in the zone at stop" \
     "divided by its bindings (bench/registrar.sh); Kamailio, growth of" \
     "core.shmmem real_used over the registrations divided by the 200 OKs."

errs=$(grep -acE '\[(emerg|alert|crit|error)\]' "$DIR/nginx-error.log" || true)
kerrs=$(grep -acE '(ERROR|CRITICAL|ALERT|BUG):' "$DIR/kamailio.log" || true)
echo
echo "Errors logged: nginx error.log $errs, kamailio log $kerrs."
if [ "$errs" != 0 ]; then
    grep -aE '\[(emerg|alert|crit|error)\]' "$DIR/nginx-error.log" | tail -5
fi
if [ "$kerrs" != 0 ]; then
    grep -aE '(ERROR|CRITICAL|ALERT|BUG):' "$DIR/kamailio.log" | tail -5
fi

# where the CPU of the call workload went, by shared object, then the
# symbols over 1%
if [ "${PERF:-0}" = 1 ]; then
    for srv in ngx kam; do
        [ -s "$DIR/calls.$srv.perf" ] || continue
        echo
        echo "perf, calls, $srv: share of samples by object; symbols over 1%"
        echo
        perf report -i "$DIR/calls.$srv.perf" --no-children -g none \
            --sort dso --percent-limit 0.5 2>/dev/null \
            | grep -v '^#' | grep -v '^$' | sed 's/^/    /'
        echo
        perf report -i "$DIR/calls.$srv.perf" --no-children -g none \
            --sort dso,sym --percent-limit 1 2>/dev/null \
            | grep -v '^#' | grep -v '^$' | head -30 | sed 's/^/    /'
    done
fi
