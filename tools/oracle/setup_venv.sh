#!/bin/sh
# Creates (or checks) the oracle virtual environment in <repo>/.venv.
#
# Why a venv at all: Debian ships torch 1.13 / torchvision 0.14 / numpy as system packages for
# /usr/bin/python3, but not timm, which we need for the TF-ported variants (SAME padding, eps 1e-3,
# B8, L2, Lite). The venv sees the system packages (--system-site-packages) and adds only timm.
#
# Why --no-deps: timm declares huggingface_hub, safetensors and pyyaml, but `import timm`,
# model creation and `save_config_for_hf` (all we use) import none of them in the pinned version
# (checked: none of the three appear in sys.modules). Installing with deps would also pull a
# newer torch from PyPI over the system one. Our safetensors writer is tools/oracle/common.py.
#
# Idempotent: does nothing when .venv already has the pinned timm and sees torch/torchvision.
# Usage: sh tools/oracle/setup_venv.sh        (from anywhere; the repo root is found from $0)
set -eu

TIMM_VERSION=1.0.31
SYS_PY=${SYS_PY:-/usr/bin/python3}

root=$(cd "$(dirname "$0")/../.." && pwd)
venv="$root/.venv"

if ! "$SYS_PY" -c 'import torch, torchvision, numpy' 2>/dev/null; then
    echo "setup_venv: $SYS_PY lacks torch/torchvision/numpy." >&2
    echo "  install them with: apt-get install -y python3-torch python3-torchvision python3-numpy python3-venv" >&2
    exit 1
fi

check() {
    "$venv/bin/python" - "$TIMM_VERSION" <<'PY' 2>/dev/null
import sys, torch, torchvision, numpy, timm
sys.exit(0 if timm.__version__ == sys.argv[1] else 1)
PY
}

if [ -x "$venv/bin/python" ] && check; then
    echo "setup_venv: $venv ready (timm $TIMM_VERSION)"
    exit 0
fi

if [ ! -x "$venv/bin/python" ]; then
    "$SYS_PY" -m venv --system-site-packages "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "timm==$TIMM_VERSION"

if ! check; then
    echo "setup_venv: $venv does not import torch/torchvision/timm $TIMM_VERSION after install" >&2
    exit 1
fi
echo "setup_venv: $venv ready (timm $TIMM_VERSION)"
