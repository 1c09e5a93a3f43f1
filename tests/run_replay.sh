#!/bin/sh
# Replays the fuzz corpora through every BUILD/tests/replay_X: fuzz/corpus/X must not crash,
# fuzz/reject/X must be rejected, fuzz/accept/X accepted. Prints a total "N passed, N failed".
build=${1:-build}
total_pass=0
total_fail=0
found=0
for bin in "$build"/tests/replay_*; do
  [ -x "$bin" ] || continue
  found=1
  name=${bin##*/replay_}
  out=$("$bin" --any "fuzz/corpus/$name" --reject "fuzz/reject/$name" \
        --accept "fuzz/accept/$name" 2>&1)
  rc=$?
  summary=$(printf '%s\n' "$out" | tail -n 1)
  p=$(printf '%s\n' "$summary" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p')
  f=$(printf '%s\n' "$summary" | sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p')
  if [ -z "$p" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
    # crashed or died without its summary: count the whole target as one failure
    printf '%s\n' "$out"
    echo "FAIL replay_$name: exit status $rc"
    p=${p:-0}
    f=$((${f:-0} + 1))
  elif [ "$f" -ne 0 ]; then
    printf '%s\n' "$out" | grep '^FAIL'
  fi
  echo "replay_$name: $summary"
  total_pass=$((total_pass + p))
  total_fail=$((total_fail + f))
done
if [ "$found" -eq 0 ]; then
  echo "no replay binaries under $build/tests"
  total_fail=1
fi
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
