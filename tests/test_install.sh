#!/bin/sh
# `make install` into a staging root, then build examples/simple.c against the installed
# header and library through pkg-config, as a user of the library would.
# Usage: sh tests/test_install.sh BUILD
build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
check() { if "$@" >"$tmp/log" 2>&1; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $*"; tail -5 "$tmp/log"; fi; }

san=0
[ "$build" = build-san ] && san=1
check make -s install BUILD="$build" SAN=$san DESTDIR="$tmp/root" PREFIX=/usr/local
check test -f "$tmp/root/usr/local/include/effnet.h"
check test -f "$tmp/root/usr/local/lib/pkgconfig/effnet.pc"
export PKG_CONFIG_PATH="$tmp/root/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
flags=$(pkg-config --cflags --libs --static effnet 2>/dev/null)
extra=""
[ $san -eq 1 ] && extra="-fsanitize=address,undefined"
check cc -std=c11 $extra examples/simple.c -o "$tmp/simple" $flags
check env LD_LIBRARY_PATH="$tmp/root/usr/local/lib" "$tmp/simple" tests/fixtures/small/tv_w0.25_d0.34_64x48_n2/weights.safetensors \
  tests/fixtures/small/tv_w0.25_d0.34_64x48_n2/input.npy
grep -q "top-1 class" "$tmp/log" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: example output"; }
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
