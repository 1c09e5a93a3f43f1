#!/bin/sh
# The whole suite (README's test command, via `make test`):
#   1. -O3 build: unit tests, fuzz-corpus replay, parity on the committed small fixtures
#      (fast and reference kernels), and the live oracle tier (torchvision/timm B0..B7,
#      non-square, batch > 1, Lite0, tf_ models, param/MAC tables regenerated) and the
#      pretrained Lite0 on real photos against PyTorch (logits, stages, classify top-5);
#   2. ASan + UBSan build: unit tests, replay, small parity.
# Each suite ends with "N passed, N failed"; this prints their sum last.
set -u
cd "$(dirname "$0")/.."
python=${PYTHON:-/usr/bin/python3}
total_p=0
total_f=0
log=$(mktemp)

suite() { # name, command...
  name=$1
  shift
  echo "== $name"
  "$@" >"$log" 2>&1
  rc=$?
  cat "$log"
  last=$(grep -E '[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
  p=$(printf '%s' "$last" | sed -nE 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\2/p')
  f=$(printf '%s' "$last" | sed -nE 's/^(.*[^0-9])?([0-9]+) passed, ([0-9]+) failed.*/\3/p')
  p=${p:-0}
  f=${f:-0}
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  total_p=$((total_p + p))
  total_f=$((total_f + f))
}

make -s all >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
suite "unit" sh tests/run_unit.sh build
suite "fuzz corpus replay" sh tests/run_replay.sh build
suite "parity (committed fixtures)" sh tests/run_parity.sh build tests/fixtures/small
if [ "${EFFNET_SKIP_LIVE:-0}" != 1 ]; then
  suite "parity (live PyTorch oracle)" sh tests/run_live.sh build "$python"
  suite "photos (pretrained Lite0 vs PyTorch)" sh tests/run_photos.sh build
fi
if [ "${EFFNET_SKIP_SAN:-0}" != 1 ]; then
  if make -s SAN=1 all >/dev/null; then
    suite "unit (ASan+UBSan)" sh tests/run_unit.sh build-san
    suite "fuzz corpus replay (ASan+UBSan)" sh tests/run_replay.sh build-san
    suite "parity (ASan+UBSan)" sh tests/run_parity.sh build-san tests/fixtures/small
  else
    echo "sanitizer build failed"
    total_f=$((total_f + 1))
  fi
fi
rm -f "$log"
echo "== total"
echo "$total_p passed, $total_f failed"
[ "$total_f" -eq 0 ]
