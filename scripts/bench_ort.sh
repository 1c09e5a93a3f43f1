#!/bin/sh
# effnet vs ONNX Runtime (issue #4): installs the pinned onnxruntime into .venv
# (scripts/setup_bench.sh), builds the effnet CLI, then runs scripts/bench_ort.py with the
# given arguments, e.g.
#   scripts/bench_ort.sh                                  # all rows, 1 and 2 threads, 5 repeats
#   scripts/bench_ort.sh --rows b0 --repeats 1            # a quick check
#   scripts/bench_ort.sh --out bench.md --workdir /tmp/bench_models
#   scripts/bench_ort.sh --cpu avx2                      # both engines see an AVX2-only CPU
# Run it on a quiet machine: nothing else should hold a core while it measures.
set -eu
cd "$(dirname "$0")/.."
sh scripts/setup_bench.sh >&2
make -s build/effnet >&2
exec .venv/bin/python scripts/bench_ort.py "$@"
