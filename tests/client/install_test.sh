#!/bin/sh
# Installs the libmeridian component into a temporary prefix, then builds a
# program against it the way a user would (pkg-config), shared and static,
# runs both, and checks the shared library exports nothing but meridian_*.
# usage: install_test.sh CMAKE BUILD_DIR CC APP_SOURCE "EXTRA_CFLAGS"
set -eu
cmake_bin=$1 build=$2 cc=$3 src=$4 extra=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$cmake_bin" --install "$build" --component libmeridian --prefix "$tmp/prefix" >/dev/null
test -f "$tmp/prefix/include/meridian.h"
pc=$(find "$tmp/prefix" -name meridian.pc)
test -n "$pc"
libdir=$(dirname "$(dirname "$pc")")
test -f "$libdir/libmeridian.a"
test -L "$libdir/libmeridian.so"
test -f "$libdir/libmeridian.so.0"
export PKG_CONFIG_PATH="$(dirname "$pc")"
echo "pkg-config: $(pkg-config --cflags --libs meridian)"

# Only the public API is exported.
extra_syms=$(nm -D --defined-only "$libdir/libmeridian.so" | awk '{print $3}' |
    grep -v -e '^meridian_' -e '^_init$' -e '^_fini$' -e '^_edata$' -e '^_end$' \
        -e '^__bss_start$' || true)
if [ -n "$extra_syms" ]; then
    echo "libmeridian.so exports more than meridian_*:"; echo "$extra_syms" | head
    exit 1
fi

# shellcheck disable=SC2086
"$cc" $extra "$src" -o "$tmp/app" $(pkg-config --cflags --libs meridian)
LD_LIBRARY_PATH="$libdir" "$tmp/app"
# shellcheck disable=SC2086
"$cc" $extra "$src" -o "$tmp/app_static" $(pkg-config --cflags meridian) "$libdir/libmeridian.a" \
    $(pkg-config --static --libs meridian | sed 's/-lmeridian//')
"$tmp/app_static"
if ldd "$tmp/app_static" | grep -q libmeridian; then
    echo "the static build still needs libmeridian.so"; exit 1
fi
echo "install ok"
