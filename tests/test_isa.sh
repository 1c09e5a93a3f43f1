#!/bin/sh
# Every GEMM micro-kernel on any machine: tests/test_kernels again with the narrower ones forced
# (EFFNET_ISA=avx2 where the CPU has AVX-512, EFFNET_ISA=portable everywhere), at 1 and 3
# threads, and tests/test_model, whose image-lane and batch-split checks want the same bits as
# the batch path from each ISA's kernels. Where the CPU has AVX-512, both dense kernel sets
# beside the AVX-512 depthwise ones as well (EFFNET_DENSE_ISA=avx512 and avx2: one of them is
# the default, AVX2's on Zen 4), and both ends of the AVX-512 swish (EFFNET_SWISH=divide, the
# default on Zen 4, and estimate). Prints "N passed, N failed" like the other tests.
build=${1:-build}
passed=0
failed=0

# run LABEL COMMAND...: adds the command's "N passed, N failed" line to the totals
run() {
  label=$1
  shift
  out=$("$@" 2>&1)
  rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  p=$(printf '%s' "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
  f=$(printf '%s' "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  if [ -z "$line" ] || [ $rc -ne 0 ]; then
    printf '%s\n' "$out" | tail -n 20
    echo "FAIL $label (exit $rc)"
    failed=$((failed + 1))
  else
    passed=$((passed + p))
    failed=$((failed + f))
  fi
}

for isa in avx2 portable; do
  for threads in 1 3; do
    run "EFFNET_ISA=$isa threads=$threads test_kernels" \
      env EFFNET_ISA=$isa OMP_NUM_THREADS=$threads "$build/tests/test_kernels"
  done
  run "EFFNET_ISA=$isa test_model" env EFFNET_ISA=$isa "$build/tests/test_model"
done
if [ "$(uname -m)" = x86_64 ] && grep -q '^flags.* avx512f ' /proc/cpuinfo; then
  for dense in avx512 avx2; do
    run "EFFNET_DENSE_ISA=$dense threads=3 test_kernels" \
      env EFFNET_DENSE_ISA=$dense OMP_NUM_THREADS=3 "$build/tests/test_kernels"
    run "EFFNET_DENSE_ISA=$dense test_model" env EFFNET_DENSE_ISA=$dense "$build/tests/test_model"
  done
  for swish in divide estimate; do
    run "EFFNET_SWISH=$swish test_model" env EFFNET_SWISH=$swish "$build/tests/test_model"
  done
fi
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
