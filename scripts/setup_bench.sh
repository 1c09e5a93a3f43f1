#!/bin/sh
# Installs what scripts/bench_ort.py needs: ONNX Runtime (PyPI) in the repo's .venv, beside the
# system torch/torchvision that export the models (Debian's python3-torch 1.13, installed by
# scripts/setup.sh --test).
#
# Pinned: onnxruntime 1.30.0, the version measured in issue #4. Installed with --no-deps: its
# declared dependencies (flatbuffers, packaging, protobuf, sympy for the `symbolic` extra) are
# not imported by `import onnxruntime`, InferenceSession or run() (checked: none of them is in
# sys.modules after a session has run), and numpy (>= 1.21.6) comes from the system (Debian's
# 1.24). Installing with deps would also pull a newer numpy from PyPI over the system one that
# torch was built against. torch.onnx.export in torch 1.13 needs no `onnx` package either.
#
# Idempotent: does nothing when .venv already imports the pinned onnxruntime and sees torch.
# Usage: sh scripts/setup_bench.sh        (from anywhere; the repo root is found from $0)
set -eu

ORT_VERSION=1.30.0
SYS_PY=${SYS_PY:-/usr/bin/python3}

root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.venv"

# The venv itself (system torch/torchvision + timm) is tools/oracle/setup_venv.sh's; this adds
# onnxruntime to it.
SYS_PY="$SYS_PY" sh "$root/tools/oracle/setup_venv.sh" >/dev/null || exit 1

check() {
    "$venv/bin/python" - "$ORT_VERSION" <<'PY' 2>/dev/null
import sys, torch, torchvision, numpy, onnxruntime
sys.exit(0 if onnxruntime.__version__ == sys.argv[1] else 1)
PY
}

if [ -x "$venv/bin/python" ] && check; then
    echo "setup_bench: $venv ready (onnxruntime $ORT_VERSION)"
    exit 0
fi

"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    "onnxruntime==$ORT_VERSION"

if ! check; then
    echo "setup_bench: $venv does not import torch/torchvision/onnxruntime $ORT_VERSION after install" >&2
    exit 1
fi
echo "setup_bench: $venv ready (onnxruntime $ORT_VERSION)"
