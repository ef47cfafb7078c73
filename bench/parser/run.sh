#!/usr/bin/env bash
# Parser micro-benchmark: ngx_sip's parser (parse + validate) against
# libosip2's (init + parse + free), messages per second on the same five
# messages, in the same run.  Builds with cc -O2 into objs/bench/.
#
#   bench/parser/run.sh [parser_bench options]
#   bench/parser/run.sh callgrind [ITERATIONS]
#
# parser_bench options: -n ngx_iters -o osip_iters -r rounds -w warmup
# (defaults 200000 200000 3 2000).  "callgrind" runs only our side under
# valgrind --tool=callgrind (ITERATIONS per message, default 5000) and
# prints callgrind_annotate's top functions.  Needs libosip2-dev (and
# valgrind for callgrind).

set -eu

TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"

CC=${CC:-cc}
OUT=objs/bench
BIN=$OUT/parser_bench
CORE_SRCS=(src/ngx_sip_chars.c src/ngx_sip_parse.c src/ngx_sip_parse_uri.c
           src/ngx_sip_parse_header.c src/ngx_sip_message.c
           src/ngx_sip_forward.c src/ngx_sip_hex.c src/ngx_sip_hash.c)
CFLAGS=(-O2 -g -Wall -Wextra -Wno-unused-parameter
        -DNGX_SIP_STANDALONE -Itests -Isrc)
SRCS=(bench/parser/parser_bench.c "${CORE_SRCS[@]}")
LIBS=(-losipparser2 -losip2)
BUILD=("$CC" "${CFLAGS[@]}" -o "$BIN" "${SRCS[@]}" "${LIBS[@]}")

if [ ! -f /usr/include/osipparser2/osip_parser.h ]; then
    echo "no libosip2 headers: apt-get install -y libosip2-dev" >&2
    exit 1
fi

args="$*"
mode=bench
if [ "${1:-}" = callgrind ]; then
    mode=callgrind
    shift
    if ! command -v valgrind >/dev/null; then
        echo "no valgrind: apt-get install -y valgrind" >&2
        exit 1
    fi
fi

mkdir -p "$OUT"

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
src_state=clean
if [ -n "$(git status --porcelain -- src 2>/dev/null)" ]; then
    src_state="modified (working tree differs from HEAD)"
fi

echo "command:  bench/parser/run.sh${args:+ $args}"
echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine:  ${cpu:-unknown CPU}, nproc $(nproc), $(uname -srm)"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg)"
echo "compiler: $("$CC" --version | head -1)"
echo "libosip2: $(dpkg-query -W -f '${Version}' libosip2-dev 2>/dev/null \
                  || echo unknown)"
echo "source:   $(git rev-parse --short HEAD 2>/dev/null || echo '?')," \
     "src/ $src_state"
echo "build:    ${BUILD[*]}"

"${BUILD[@]}"

if [ $mode = bench ]; then
    echo "run:      $BIN${*:+ $*}"
    echo
    exec "$BIN" "$@"
fi

n=${1:-5000}

# as benchmarked (-O2), then with -fno-inline: the static helpers gcc
# folds into ngx_sip_parse_message() get their own lines

"$CC" "${CFLAGS[@]}" -fno-inline -o "${BIN}_noinline" "${SRCS[@]}" "${LIBS[@]}"

for bin in "$BIN" "${BIN}_noinline"; do
    prof=$bin.callgrind

    echo
    echo "run:      valgrind --tool=callgrind --callgrind-out-file=$prof" \
         "--toggle-collect='bench_ngx*' $bin -n $n -o 0 -r 1 -w 10"

    valgrind --tool=callgrind --callgrind-out-file="$prof" \
        --toggle-collect='bench_ngx*' "$bin" -n "$n" -o 0 -r 1 -w 10 \
        >"$prof.stdout" 2>"$prof.log"

    refs=$(sed -n 's/.*Collected : *//p' "$prof.log")
    echo "collected: $refs instructions in bench_ngx()," \
         "$(((n + 10) * 5)) messages (warm-up included):" \
         "$((refs / ((n + 10) * 5))) per message"
    echo "callgrind_annotate --auto=no $prof (self cost, top 15):"
    callgrind_annotate --auto=no "$prof" | sed -n '/file:function/,$p' | \
        sed -n '3,17p' | sed "s| \[$TOP/$OUT/[^]]*\]||"
done
