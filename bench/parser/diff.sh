#!/usr/bin/env bash
# Does a parser change keep what the parser says?  Builds
# bench/parser/parse_dump.c against the SIP core of a git revision
# (default HEAD) and against the working tree, runs both over a corpus
# (default: the torture messages and the fuzz corpus, objs/fuzz/corpus)
# and compares what they print, file by file.
#
#   bench/parser/diff.sh [REV [FILE_OR_DIR...]]
#
# NEW_CFLAGS are added to the working tree's build only, e.g.
# NEW_CFLAGS=-DNGX_SIP_NO_SSE2 compares the portable line scan with HEAD's.

set -eu

TOP=$(cd "$(dirname "$0")/../.." && pwd)
cd "$TOP"

REV=${1:-HEAD}
[ $# -gt 0 ] && shift

TORTURE=${SIP_TORTURE:-$TOP/../shared/sip-torture}
OUT=objs/bench/diff
CC=${CC:-cc}
CFLAGS=(-O1 -g -DNGX_SIP_STANDALONE -Itests -Isrc)

rm -rf "$OUT"
mkdir -p "$OUT/base/src"

git archive "$REV" src | tar -x -C "$OUT/base"

# the SIP core: every src/ngx_sip_*.c (the nginx glue is ngx_stream_*)

"$CC" "${CFLAGS[@]/#-Isrc/-I$OUT/base/src}" -o "$OUT/dump_base" \
    bench/parser/parse_dump.c "$OUT"/base/src/ngx_sip_*.c -lcrypto
"$CC" "${CFLAGS[@]}" ${NEW_CFLAGS:-} -o "$OUT/dump_new" \
    bench/parser/parse_dump.c src/ngx_sip_*.c -lcrypto

if [ $# -eq 0 ]; then
    set -- "$TORTURE" objs/fuzz/corpus
fi

find "$@" -type f ! -name '*.tsv' ! -name '*.md' | sort > "$OUT/files"

echo "files: $(wc -l < "$OUT/files") ($*)"

"$OUT/dump_base" < "$OUT/files" > "$OUT/base.txt"
"$OUT/dump_new" < "$OUT/files" > "$OUT/new.txt"

if cmp -s "$OUT/base.txt" "$OUT/new.txt"; then
    echo "same output as $REV ($(wc -l < "$OUT/new.txt") lines)"
    exit 0
fi

echo "output differs from $REV:"
diff "$OUT/base.txt" "$OUT/new.txt" | head -40
exit 1
