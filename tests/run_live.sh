#!/bin/sh
# Live oracle tier: regenerate fixtures from torchvision/timm and check effnet against them.
#
#   sh tests/run_live.sh BUILD [PYTHON]
#
# 1. tools/oracle/setup_venv.sh makes .venv (system torch/torchvision + pinned timm; PYTHON is the
#    interpreter that has the Debian torch, default /usr/bin/python3).
# 2. The full parity tier (torchvision B0..B7 at native resolution, timm tf_/lite/non-tf B0, HF-hub
#    folder, batches, odd and non-square sizes) goes to BUILD/fixtures/full. It takes minutes and
#    ~1 GB, so it is regenerated only when the stamp (a hash of the generator scripts and the
#    library versions) changes; EFFNET_LIVE_REGEN=1 forces it.
# 3. sh tests/run_parity.sh BUILD BUILD/fixtures/full
# 4. The counts of every variant (incl. B8, L2: ~1 min) go to BUILD/fixtures/counts_live.json
#    (same stamp rule) and BUILD/tests/test_counts checks them.
# Exit status: non-zero when any step fails; both checks run even if the first fails.
set -u

if [ $# -lt 1 ]; then
    echo "usage: sh tests/run_live.sh BUILD [PYTHON]" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 2
build=$1
sys_py=${2:-/usr/bin/python3}
venv_py="$root/.venv/bin/python"
oracle=tools/oracle

SYS_PY="$sys_py" sh "$oracle/setup_venv.sh" || exit 1

# stamp of a generator: its sources, the venv's library versions and the arguments
stamp_of() {
    {
        cat "$oracle/common.py" "$oracle/setup_venv.sh" "$@"
        "$venv_py" -c 'import torch, torchvision, numpy, timm; print(torch.__version__, torchvision.__version__, numpy.__version__, timm.__version__)'
    } | sha256sum | cut -d' ' -f1
}

fixtures="$build/fixtures"
full="$fixtures/full"
mkdir -p "$fixtures"

stamp=$(stamp_of "$oracle/gen_parity.py")
if [ "${EFFNET_LIVE_REGEN:-0}" != 1 ] && [ -f "$full/.stamp" ] && [ "$(cat "$full/.stamp")" = "$stamp" ]; then
    echo "live: $full up to date (stamp $stamp)"
else
    echo "live: generating the full parity tier into $full"
    rm -rf "$full"
    start=$(date +%s)
    if ! "$venv_py" "$oracle/gen_parity.py" --tier full "$full"; then
        echo "live: fixture generation FAILED" >&2
        exit 1
    fi
    echo "$stamp" > "$full/.stamp"
    echo "live: full tier generated in $(( $(date +%s) - start )) s, $(du -sh "$full" | cut -f1)"
fi

counts="$fixtures/counts_live.json"
cstamp=$(stamp_of "$oracle/gen_counts.py")
if [ "${EFFNET_LIVE_REGEN:-0}" != 1 ] && [ -f "$counts.stamp" ] && [ -f "$counts" ] \
   && [ "$(cat "$counts.stamp")" = "$cstamp" ]; then
    echo "live: $counts up to date"
else
    echo "live: generating $counts"
    if ! "$venv_py" "$oracle/gen_counts.py" "$counts"; then
        echo "live: counts generation FAILED" >&2
        exit 1
    fi
    echo "$cstamp" > "$counts.stamp"
fi

# 5. Training parity (tools/oracle/gen_train_parity.py --tier full: timm and TF-SAME members,
#    Lite (ReLU6), B0 at 64 px; one step's loss, logits, every gradient, BN statistics, and
#    three steps of each optimizer) into BUILD/fixtures/train_full (same stamp rule).
train_full="$fixtures/train_full"
tstamp=$(stamp_of "$oracle/gen_train_parity.py")
if [ "${EFFNET_LIVE_REGEN:-0}" != 1 ] && [ -f "$train_full/.stamp" ] && [ "$(cat "$train_full/.stamp")" = "$tstamp" ]; then
    echo "live: $train_full up to date"
else
    echo "live: generating $train_full"
    rm -rf "$train_full"
    if ! "$venv_py" "$oracle/gen_train_parity.py" --tier full "$train_full"; then
        echo "live: training fixture generation FAILED" >&2
        exit 1
    fi
    echo "$tstamp" > "$train_full/.stamp"
fi

status=0
if [ -x "$build/tests/test_train" ]; then
    "$build/tests/test_train" "$train_full" || { echo "live: training parity FAILED" >&2; status=1; }
else
    echo "live: $build/tests/test_train missing" >&2
    status=1
fi
if [ -f tests/run_parity.sh ]; then
    sh tests/run_parity.sh "$build" "$full" || { echo "live: parity FAILED" >&2; status=1; }
else
    echo "live: tests/run_parity.sh missing" >&2
    status=1
fi
if [ -x "$build/tests/test_counts" ]; then
    "$build/tests/test_counts" "$counts" || { echo "live: counts FAILED" >&2; status=1; }
else
    echo "live: $build/tests/test_counts missing (build it first: make)" >&2
    status=1
fi
[ $status -eq 0 ] && echo "live: all checks passed"
exit $status
