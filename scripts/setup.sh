#!/bin/sh
# Set up effnet on a fresh Debian 12 machine and build it.
#   scripts/setup.sh          build dependencies (compiler, BLAS, image codecs), `make`, and the
#                             default pretrained model (EfficientNet-Lite0, scripts/fetch_weights.sh)
#   scripts/setup.sh --test   also the test oracles (PyTorch, torchvision, NumPy, PIL, sample
#                             photos) and the timm virtualenv used for TF-ported variants
# Packages are installed with apt-get only when missing (root, or sudo when available).
set -eu
cd "$(dirname "$0")/.."

runtime="build-essential pkg-config libopenblas-openmp-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev dataset-fashion-mnist python3 python3-pip"
oracle="python3 python3-numpy python3-torch python3-torchvision python3-pil python3-venv python3-skimage"
want="$runtime"
tests=0
for arg in "$@"; do
  case "$arg" in
    --test) tests=1; want="$want $oracle" ;;
    *) echo "usage: scripts/setup.sh [--test]" >&2; exit 2 ;;
  esac
done

missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing$missing"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q $missing
fi

if [ $tests -eq 1 ]; then
  sh tools/oracle/setup_venv.sh
fi
make -j2
sh scripts/fetch_weights.sh 0
