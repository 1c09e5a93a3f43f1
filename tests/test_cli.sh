#!/bin/sh
# The CLI as a user meets it: correct output on good input, one clear error line and a
# non-zero exit on bad input (never a crash: exit codes >= 128 fail the test).
# Usage: sh tests/test_cli.sh BUILD
build=${1:-build}
effnet="$build/effnet"
case="tests/fixtures/small/tv_w0.25_d0.34_64x48_n2"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# expect_fail NAME PATTERN CMD...: non-zero exit below 128 and PATTERN in stderr
expect_fail() {
  name=$1 pattern=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 128 ]; then bad "$name: exit $rc"; return; fi
  if ! grep -q -- "$pattern" "$tmp/err"; then bad "$name: stderr lacks '$pattern': $(cat "$tmp/err")"; return; fi
  [ "$(wc -l <"$tmp/err")" -le 2 ] || { bad "$name: more than two error lines"; return; }
  ok
}

# info: the documented JSON keys and exact torchvision numbers
out=$("$effnet" info b0 --json)
for key in '"params": 5288548' '"macs": 385814752' '"resolution": 224' '"stem": 32' '"head": 1280' '"stages": [' '"expand": 6' '"kernel": 5' '"stride": 2' '"channels": 320' '"repeats": 4'; do
  case "$out" in *"$key"*) ok ;; *) bad "info b0 --json lacks $key" ;; esac
done
"$effnet" info b7 | grep -q "parameters: 66347960" && ok || bad "info b7 params"
"$effnet" info --phi 1 --json | grep -q '"resolution": 258' && ok || bad "info --phi 1"
"$effnet" info --width 0.5 --depth 0.5 --resolution 96 --lite --json | grep -q '"family": "lite"' && ok || bad "info custom lite"
"$effnet" info b0 --size 320x256 --json | grep -q '"input_w": 256' && ok || bad "info --size"
expect_fail "unknown model" "unknown model 'b9'" "$effnet" info b9
expect_fail "bad width" "width" "$effnet" info --width 0
expect_fail "bad size" "--size" "$effnet" info b0 --size 12by3
expect_fail "unknown command" "unknown command" "$effnet" frobnicate

# run: logits equal to the API path and to PyTorch
"$effnet" run --weights "$case/weights.safetensors" --input "$case/input.npy" --output "$tmp/y.npy" --threads 1 \
  && "$build/tests/parity" --compare "$tmp/y.npy" "$case/logits.npy" 1e-4 >/dev/null && ok || bad "run logits"
"$effnet" run --weights "$case/weights.safetensors" --input "$case/input.npy" --output "$tmp/y.npy" --dump-stages "$tmp" \
  && [ -f "$tmp/stage7.npy" ] && "$build/tests/parity" --compare "$tmp/stage3.npy" "$case/stages/stage3.npy" 1e-4 >/dev/null \
  && ok || bad "run --dump-stages"
expect_fail "missing weights" "nowhere.safetensors" "$effnet" run --weights "$tmp/nowhere.safetensors" --input "$case/input.npy" --output "$tmp/y.npy"
expect_fail "missing input" "nothing.npy" "$effnet" run --weights "$case/weights.safetensors" --input "$tmp/nothing.npy" --output "$tmp/y.npy"
expect_fail "input not npy" "input.npy" sh -c "printf 'hello' > '$tmp/input.npy'; '$effnet' run --weights '$case/weights.safetensors' --input '$tmp/input.npy' --output '$tmp/y.npy'"
expect_fail "input wrong rank" "(N, 3, H, W)" "$effnet" run --weights "$case/weights.safetensors" --input fuzz/accept/npy/f4_2x3.npy --output "$tmp/y.npy"
expect_fail "input wrong dtype" "int32.npy" "$effnet" run --weights "$case/weights.safetensors" --input fuzz/reject/npy/int32.npy --output "$tmp/y.npy"
head -c 5000 "$case/weights.safetensors" >"$tmp/trunc.safetensors"
expect_fail "truncated weights" "trunc.safetensors" "$effnet" run --weights "$tmp/trunc.safetensors" --input "$case/input.npy" --output "$tmp/y.npy"
expect_fail "weights not safetensors" "input.npy" "$effnet" run --weights "$case/input.npy" --input "$case/input.npy" --output "$tmp/y.npy"
expect_fail "wrong model for weights" "shape" "$effnet" run --model b0 --weights "$case/weights.safetensors" --input "$case/input.npy" --output "$tmp/y.npy"
expect_fail "unwritable output" "y.npy" "$effnet" run --weights "$case/weights.safetensors" --input "$case/input.npy" --output "$tmp/no/such/dir/y.npy"
expect_fail "bad padding flag" "--padding" "$effnet" run --padding diagonal --weights "$case/weights.safetensors" --input "$case/input.npy" --output "$tmp/y.npy"
expect_fail "run usage" "usage" "$effnet" run --weights "$case/weights.safetensors"

# convert: a TF port with no hints in the file; after conversion the metadata carries the
# padding and eps, so a later run needs no flags
tfcase=tests/fixtures/small/timm_tf_w0.25_d0.34_64x64
"$effnet" convert tests/fixtures/small/timm_tf_w0.25_d0.34_65x47_n2/weights.safetensors "$tmp/c.safetensors" --padding same >/dev/null \
  && "$effnet" run --weights "$tmp/c.safetensors" --input "$tfcase/input.npy" --output "$tmp/y.npy" \
  && "$build/tests/parity" --compare "$tmp/y.npy" "$tfcase/logits.npy" 1e-4 >/dev/null && ok || bad "convert keeps TF-SAME"
"$effnet" run --weights tests/fixtures/small/timm_tf_w0.25_d0.34_65x47_n2/weights.safetensors --input "$tfcase/input.npy" --output "$tmp/y.npy" \
  && ! "$build/tests/parity" --compare "$tmp/y.npy" "$tfcase/logits.npy" 1e-2 >/dev/null && ok || bad "unhinted timm file runs symmetric"
mkdir -p "$tmp/hub"
cp tests/fixtures/small/timm_tf_w0.25_d0.34_65x47_n2/weights.safetensors "$tmp/hub/model.safetensors"
printf '{"architecture": "tf_efficientnet_b0", "num_classes": 7}' >"$tmp/hub/config.json"
"$effnet" run --weights "$tmp/hub/model.safetensors" --input "$tfcase/input.npy" --output "$tmp/y.npy" \
  && "$build/tests/parity" --compare "$tmp/y.npy" "$tfcase/logits.npy" 1e-4 >/dev/null && ok || bad "config.json tf_ hint"
expect_fail "convert to unwritable" "c.safetensors" "$effnet" convert "$tmp/c.safetensors" "$tmp/none/c.safetensors"
expect_fail "convert usage" "usage" "$effnet" convert "$tmp/c.safetensors"

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
