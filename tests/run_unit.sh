#!/bin/sh
# Runs every unit test binary of BUILD and the CLI tests; prints the total as
# "N passed, N failed" and exits non-zero on any failure.
build=${1:-build}
passed=0
failed=0
for t in "$build"/tests/test_* tests/test_*.sh; do
  [ -e "$t" ] || continue
  case "$t" in *.sh) cmd="sh $t $build" ;; *) cmd="$t" ;; esac
  out=$($cmd 2>&1)
  rc=$?
  last=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -n 1)
  p=$(printf '%s' "$last" | sed -E 's/^([0-9]+) passed.*/\1/')
  f=$(printf '%s' "$last" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  if [ -z "$last" ] || [ $rc -ne 0 ] && [ "${f:-0}" = 0 ]; then f=1; p=${p:-0}; fi
  passed=$((passed + p))
  failed=$((failed + f))
  if [ $rc -ne 0 ] || [ "$f" != 0 ]; then
    printf '%s\n' "$out" | tail -n 30
    echo "FAILED: $t (exit $rc)"
  else
    echo "ok   $t: $last"
  fi
done
echo "unit: $passed passed, $failed failed"
[ $failed -eq 0 ]
