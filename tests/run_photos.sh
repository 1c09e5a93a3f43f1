#!/bin/sh
# Real photos, real weights: the pretrained Lite0 checkpoint (.pth read by effnet itself) against
# PyTorch (timm tf_efficientnet_lite0 with the same checkpoint, torchvision's PIL preprocessing).
#  1. logits and every stage from PyTorch-preprocessed inputs (tests/parity_main.c, tol 1e-4);
#  2. end to end: `effnet classify --json --top 5` (effnet's own decoding and preprocessing)
#     must give PyTorch's top-5 classes in order with probabilities within 1e-4.
# Usage: sh tests/run_photos.sh BUILD
build=${1:-build}
weights=models/efficientnet-lite0.pth
out="$build/fixtures/photos"
if [ ! -f "$weights" ]; then
  echo "photos: $weights missing (scripts/fetch_weights.sh)"; echo "0 passed, 1 failed"; exit 1
fi
set -- samples/cat.png samples/coffee.png samples/rocket.jpg
sk=/usr/lib/python3/dist-packages/skimage/data
for p in astronaut.png motorcycle_right.png hubble_deep_field.jpg; do [ -f "$sk/$p" ] && set -- "$@" "$sk/$p"; done
rm -rf "$out"
.venv/bin/python tools/oracle/gen_photo_parity.py "$weights" "$out" "$@" >/dev/null || {
  echo "photos: oracle failed"; echo "0 passed, 1 failed"; exit 1; }
"$build/tests/parity" "$out" >"$out/parity.log"
prc=$?
cat "$out/parity.log"
pp=$(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed/\1/p' "$out/parity.log")
pf=$(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed/\2/p' "$out/parity.log")
"$build/effnet" classify --json --top 5 "$@" >"$out/classify.json" 2>"$out/classify.err" || pf=$((pf + 1))
# expected: "photo<TAB>class<TAB>prob" x5 per photo; got: one JSON line per photo
awk -F'\t' -v got="$out/classify.json" '
  BEGIN {
    while ((getline line < got) > 0) {
      match(line, /"file": "[^"]*"/); file = substr(line, RSTART + 9, RLENGTH - 10)
      n = 0; rest = line
      while (match(rest, /"class": [0-9]+/)) {
        cls = substr(rest, RSTART + 9, RLENGTH - 9); rest = substr(rest, RSTART + RLENGTH)
        match(rest, /"prob": [0-9.]+/); pr = substr(rest, RSTART + 8, RLENGTH - 8)
        n++; gc[file, n] = cls; gp[file, n] = pr
      }
    }
  }
  { k[$1]++; i = k[$1]
    d = gp[$1, i] - $3; if (d < 0) d = -d
    if (gc[$1, i] != $2 || d > 1e-4) { bad++; printf "FAIL %s rank %d: effnet %s %s, torch %s %s\n", $1, i, gc[$1, i], gp[$1, i], $2, $3 }
    else good++ }
  END { printf "classify vs PyTorch top-5: %d ranks match, %d differ\n", good, bad; exit bad > 0 }
' "$out/expected_top5.tsv"
crc=$?
[ $crc -eq 0 ] && pp=$((pp + 1)) || pf=$((pf + 1))
echo "$pp passed, $pf failed"
[ $prc -eq 0 ] && [ $crc -eq 0 ]
