#!/bin/sh
# Parity against PyTorch fixtures: runs the parity runner over DIR/manifest.tsv with the fast
# kernels, then (small fixtures only, where it is quick) with the reference kernels, and checks
# that the CLI's `effnet run` writes the same logits as the API for the first case.
build=${1:-build}
dir=${2:-tests/fixtures/small}
if [ ! -f "$dir/manifest.tsv" ]; then
  echo "parity: no $dir/manifest.tsv"; exit 1
fi
status=0
"$build/tests/parity" "$dir" || status=1
if [ "${PARITY_REFERENCE:-auto}" = 1 ] || { [ "${PARITY_REFERENCE:-auto}" = auto ] && [ "$dir" = tests/fixtures/small ]; }; then
  "$build/tests/parity" "$dir" --reference || status=1
fi
exit $status
