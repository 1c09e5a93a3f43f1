#!/bin/sh
# effnet train as a user meets it: a tiny model on a small IDX dataset cut from Fashion-MNIST
# and on an image folder; resume after a stop and after kill -9 must continue with exactly the
# losses of an uninterrupted run; every kind of bad input gets one clear error line.
# Usage: sh tests/test_train.sh BUILD
build=${1:-build}
effnet="$build/effnet"
fm=/usr/share/datasets/fashion-mnist
tmp=$(mktemp -d)
trap 'chmod -R u+rwx "$tmp"; rm -rf "$tmp"' EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# 512 training and 128 test images of the real dataset, as IDX files (gzip)
/usr/bin/python3 - "$fm" "$tmp/idx" <<'PY' || { echo "FAIL: cannot cut the IDX subset"; echo "0 passed, 1 failed"; exit 1; }
import gzip, os, struct, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
for split, n in (("train", 512), ("t10k", 128)):
    with gzip.open(f"{src}/{split}-images-idx3-ubyte.gz") as f:
        magic, count, rows, cols = struct.unpack(">IIII", f.read(16))
        pixels = f.read(n * rows * cols)
    with gzip.open(f"{dst}/{split}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", magic, n, rows, cols) + pixels)
    with gzip.open(f"{src}/{split}-labels-idx1-ubyte.gz") as f:
        magic, count = struct.unpack(">II", f.read(8))
        labels = f.read(n)
    with open(f"{dst}/{split}-labels-idx1-ubyte", "wb") as f:  # plain: both forms are read
        f.write(struct.pack(">II", magic, n) + labels)
PY

# warm-up and EMA given explicitly: their defaults follow the run's length, which a
# --max-steps budget shortens (tested below as a stop-and-resume)
tiny="--width 0.1 --depth 0.2 --resolution 32 --batch 32 --warmup 0.2 --ema 0.99 --threads ${EFFNET_TEST_THREADS:-2}"
run() { "$effnet" train --data "$tmp/idx" $tiny "$@"; }
field() { sed -E "s/.*\"$2\": ([^,}]*).*/\1/" "$1"; }

# 1. an uninterrupted run: 2 epochs of 16 steps, a checkpoint every 5 steps
run --epochs 2 --checkpoint-every 5 --out "$tmp/a" >"$tmp/a.out" 2>"$tmp/a.err"
[ $? -eq 0 ] && ok || bad "training run failed: $(cat "$tmp/a.err")"
[ "$(wc -l <"$tmp/a/log.jsonl")" -eq 2 ] && ok || bad "log.jsonl lines: $(cat "$tmp/a/log.jsonl")"
for k in epoch train_loss test_acc img_per_s seconds; do
  grep -q "\"$k\": " "$tmp/a/log.jsonl" && ok || bad "log.jsonl lacks $k"
done
[ "$(grep -c '^epoch [12]: train_loss' "$tmp/a.out")" -eq 2 ] && ok || bad "epoch lines: $(cat "$tmp/a.out")"
# its outputs load for inference: classify, run, info, eval on the IDX test split
"$effnet" classify --weights "$tmp/a/model.safetensors" --size 32 samples/cat.png >/dev/null 2>"$tmp/err" && ok || bad "classify with the trained model: $(cat "$tmp/err")"
"$effnet" classify --weights "$tmp/a/checkpoint.safetensors" --size 32 samples/cat.png >/dev/null 2>"$tmp/err" && ok || bad "classify with the checkpoint: $(cat "$tmp/err")"
"$effnet" eval --weights "$tmp/a/model.safetensors" --data "$tmp/idx" >"$tmp/eval" 2>"$tmp/err" && grep -q "top-1" "$tmp/eval" && ok || bad "eval --data: $(cat "$tmp/eval" "$tmp/err")"
acc_log=$(tail -1 "$tmp/a/log.jsonl" | field /dev/stdin test_acc)
acc_eval=$(sed -E 's/.*top-1 ([0-9.]+)%.*/\1/' "$tmp/eval")
awk -v a="$acc_log" -v b="$acc_eval" 'BEGIN { exit !((a * 100 - b) < 0.01 && (b - a * 100) < 0.01) }' && ok || bad "eval top-1 $acc_eval% != training's $acc_log"

# 2. stopped by a step budget, then resumed: the same losses and accuracies, to the digit
run --epochs 2 --checkpoint-every 5 --max-steps 7 --out "$tmp/b" >/dev/null 2>&1 && ok || bad "budget run"
run --resume --out "$tmp/b" >/dev/null 2>"$tmp/err" && ok || bad "resume: $(cat "$tmp/err")"
grep -q "resumed .* at epoch 1, step 7 of 16" "$tmp/err" && ok || bad "resume note: $(cat "$tmp/err")"
cut -d, -f1-5 "$tmp/a/log.jsonl" >"$tmp/a.cmp"
cut -d, -f1-5 "$tmp/b/log.jsonl" >"$tmp/b.cmp"
cmp -s "$tmp/a.cmp" "$tmp/b.cmp" && ok || bad "resumed curve differs: $(cat "$tmp/a.cmp" "$tmp/b.cmp")"

# 3. kill -9 at some moment, resume: still the same curve
# started directly (not through the shell function) so that $! is effnet itself
"$effnet" train --data "$tmp/idx" $tiny --epochs 2 --checkpoint-every 1 --out "$tmp/c" >/dev/null 2>&1 &
pid=$!
# wait for the first checkpoint however long the step takes (no deadline: a busy machine must
# not fail this), or for the run to end; then let it go on a little before the kill
while [ ! -f "$tmp/c/checkpoint.safetensors" ] && kill -0 $pid 2>/dev/null; do sleep 0.05; done
sleep 0.3
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
[ -f "$tmp/c/checkpoint.safetensors" ] && ok || bad "no checkpoint before the kill"
kill -0 $pid 2>/dev/null && bad "the killed run is still alive" || ok
# a bare resume: data, model and options come from the checkpoint
"$effnet" train --resume --threads "${EFFNET_TEST_THREADS:-2}" --out "$tmp/c" >/dev/null 2>"$tmp/err" && ok || bad "resume after kill -9: $(cat "$tmp/err")"
ls "$tmp/c" | grep -q '\.tmp\.' && bad "stale temp file after resume: $(ls "$tmp/c")" || ok
cut -d, -f1-5 "$tmp/c/log.jsonl" >"$tmp/c.cmp"
cmp -s "$tmp/a.cmp" "$tmp/c.cmp" && ok || bad "curve after kill -9 differs: $(cat "$tmp/a.cmp" "$tmp/c.cmp")"

# 4. an image folder with unreadable images: skipped with a warning and a count
for c in cat coffee; do
  mkdir -p "$tmp/img/$c"
  for i in 1 2 3 4 5 6 7 8 9 10; do cp "samples/$c.png" "$tmp/img/$c/$i.png"; done
done
: >"$tmp/img/cat/zero.png"
echo "not a jpeg" >"$tmp/img/coffee/text.jpg"
"$effnet" train --data "$tmp/img" --width 0.1 --depth 0.2 --resolution 32 --batch 4 --epochs 1 --val-fraction 0.2 --out "$tmp/d" >/dev/null 2>"$tmp/err"
[ $? -eq 0 ] && ok || bad "image folder training: $(cat "$tmp/err")"
grep -q "skipped 2 unreadable images" "$tmp/err" && ok || bad "skip warning: $(cat "$tmp/err")"
# fine-tuning from a checkpoint with another class count replaces the classifier
"$effnet" train --data "$tmp/img" --init "$tmp/a/model.safetensors" --resolution 32 --batch 4 --epochs 1 --out "$tmp/e" >/dev/null 2>"$tmp/err"
[ $? -eq 0 ] && grep -q "classifier replaced (10 -> 2 classes)" "$tmp/err" && ok || bad "fine-tune --init: $(cat "$tmp/err")"

# 5. bad input: one line naming the problem, exit status 1 (2 for bad usage)
expect() { # expect STATUS PATTERN ARGS...
  want=$1 pat=$2
  shift 2
  "$effnet" train "$@" >/dev/null 2>"$tmp/err"
  rc=$?
  [ $rc -eq "$want" ] && grep -q "$pat" "$tmp/err" && ok || bad "train $* -> exit $rc, $(cat "$tmp/err") (want $want, /$pat/)"
}
expect 1 "not a folder" --data "$tmp/nope" --model b0 --out "$tmp/x"
mkdir -p "$tmp/trunc" && cp "$tmp/idx/"* "$tmp/trunc/" && head -c 5000 "$tmp/idx/train-images-idx3-ubyte.gz" >"$tmp/trunc/train-images-idx3-ubyte.gz"
expect 1 "train-images-idx3-ubyte.gz" --data "$tmp/trunc" $tiny --out "$tmp/x"
expect 1 "disagrees with the data" --data "$tmp/idx" $tiny --classes 7 --out "$tmp/x"
expect 1 "not the requested" --data "$tmp/idx" --model b1 --resume --out "$tmp/a"
expect 1 "trained with --batch 32" --data "$tmp/idx" --resume --batch 64 --out "$tmp/a"
expect 1 "checkpoint.safetensors" --data "$tmp/idx" --resume --out "$tmp/empty"
expect 2 "unknown train option" --data "$tmp/idx" --model b0 --out "$tmp/x" --bogus
expect 1 "unknown optimizer" --data "$tmp/idx" $tiny --optimizer lion --out "$tmp/x"
expect 2 "needs --data and --out" --model b0
# a diverging run stops with a clear message before applying the bad step; the last
# checkpoint stays loadable
expect 1 "diverged" --data "$tmp/idx" $tiny --lr 100 --warmup 0 --optimizer sgd --checkpoint-every 1 --out "$tmp/nan"
"$effnet" info --json >/dev/null 2>&1
[ -f "$tmp/nan/checkpoint.safetensors" ] && "$effnet" classify --weights "$tmp/nan/checkpoint.safetensors" --size 32 samples/cat.png >/dev/null 2>&1 && ok || bad "checkpoint before divergence not loadable"
# disk full while checkpointing (a file-size limit makes the write fail): the previous
# checkpoint survives and still resumes
cp -r "$tmp/b" "$tmp/f"
before=$(sha256sum "$tmp/f/checkpoint.safetensors" | cut -d' ' -f1)
( ulimit -f 64; "$effnet" train --data "$tmp/idx" --resume --epochs 3 --out "$tmp/f" >/dev/null 2>"$tmp/err" )
rc=$?
[ $rc -ne 0 ] && grep -q "checkpoint.safetensors" "$tmp/err" && ok || bad "disk full: exit $rc, $(cat "$tmp/err")"
[ "$(sha256sum "$tmp/f/checkpoint.safetensors" | cut -d' ' -f1)" = "$before" ] && ok || bad "checkpoint changed by a failed write"
ls "$tmp/f" | grep -q tmp && bad "temp file left: $(ls "$tmp/f")" || ok
"$effnet" train --data "$tmp/idx" --resume --epochs 3 --out "$tmp/f" >/dev/null 2>"$tmp/err" && ok || bad "resume after disk full: $(cat "$tmp/err")"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
