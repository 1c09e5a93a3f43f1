#!/bin/sh
# Every GEMM micro-kernel on any machine: tests/test_kernels again with the narrower ones forced
# (EFFNET_ISA=avx2 where the CPU has AVX-512, EFFNET_ISA=portable everywhere), at 1 and 3
# threads. Prints "N passed, N failed" like the other tests.
build=${1:-build}
passed=0
failed=0
for isa in avx2 portable; do
  for threads in 1 3; do
    out=$(EFFNET_ISA=$isa OMP_NUM_THREADS=$threads "$build/tests/test_kernels" 2>&1)
    rc=$?
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=$(printf '%s' "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
    if [ -z "$line" ] || [ $rc -ne 0 ]; then
      printf '%s\n' "$out" | tail -n 20
      echo "FAIL EFFNET_ISA=$isa threads=$threads (exit $rc)"
      failed=$((failed + 1))
    else
      passed=$((passed + p))
      failed=$((failed + f))
    fi
  done
done
echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
