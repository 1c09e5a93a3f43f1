#!/bin/sh
# Parity against PyTorch fixtures: runs the parity runner over DIR/manifest.tsv with the fast
# kernels and (for the committed small fixtures, where it is quick, or with
# PARITY_REFERENCE=1) with the reference kernels too; prints the summed "N passed, N failed".
build=${1:-build}
dir=${2:-tests/fixtures/small}
if [ ! -f "$dir/manifest.tsv" ]; then
  echo "parity: no $dir/manifest.tsv"; echo "0 passed, 1 failed"; exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
"$build/tests/parity" "$dir" >"$log" 2>&1 || status=1
ref=${PARITY_REFERENCE:-auto}
if [ "$ref" = 1 ] || { [ "$ref" = auto ] && [ "$dir" = tests/fixtures/small ]; }; then
  "$build/tests/parity" "$dir" --reference >>"$log" 2>&1 || status=1
fi
cat "$log"
awk '/^[0-9]+ passed, [0-9]+ failed/ { p += $1; f += $3 } END { printf "parity: %d passed, %d failed\n", p, f }' "$log"
exit $status
