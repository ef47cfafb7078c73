#!/usr/bin/env bash
# Build nginx VERSION from its repository archive (TARBALLS/nginx-VERSION.tar.gz,
# a "git archive" of github.com/nginx/nginx at release-VERSION) with ngx_sip
# into DIR, the module dynamic (with --with-compat, next to a dynamic stream
# module) or static (built into the binary):
#
#   tools/nginx-build.sh VERSION dynamic|static DIR TARBALLS
#
# Incremental: the archive is extracted and configured once (again when
# "config" changes); nginx's own Makefile rebuilds what our sources touch.
# -Werror as in every build of ours.  No HTTP: a stream module does not
# need it and the build is shorter.

set -eu

version=$1 kind=$2 dir=$3 tarballs=$4
top=$(cd "$(dirname "$0")/.." && pwd)
tarball=$tarballs/nginx-$version.tar.gz

case $kind in
dynamic)
    mod=(--with-compat --with-stream=dynamic --add-dynamic-module="$top") ;;
static)
    mod=(--with-stream --add-module="$top") ;;
*)
    echo "$0: dynamic or static, not \"$kind\"" >&2; exit 1 ;;
esac

args=(--prefix="$dir" --without-http --with-stream_ssl_module "${mod[@]}"
      --with-cc-opt="-g -O2 -Werror")

if [ ! -x "$dir/auto/configure" ]; then
    [ -f "$tarball" ] || { echo "$0: no $tarball" >&2; exit 1; }
    rm -rf "$dir"
    mkdir -p "$dir"
    tar -xzf "$tarball" -C "$dir" --strip-components=1
fi

cd "$dir"

if [ ! -f objs/Makefile ] || [ "$top/config" -nt objs/Makefile ] \
   || [ "$(cat objs/args 2>/dev/null)" != "${args[*]}" ]
then
    auto/configure "${args[@]}" >configure.log 2>&1 \
        || { tail -30 configure.log; exit 1; }
    echo "${args[*]}" >objs/args
fi

make -s -f objs/Makefile -j"${JOBS:-2}"
