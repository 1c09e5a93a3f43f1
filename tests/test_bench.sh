#!/bin/sh
# effnet bench as scripts use it: the last line ends in "median X ms", --json is one parseable
# line with the documented keys, --profile lists every op kind and every part of the network
# (stem, stages, head), bad arguments exit 2 with one
# line. Never asserts a time or a speed (the machine may be busy; see STYLE.md).
# Usage: sh tests/test_bench.sh BUILD
build=${1:-build}
effnet="$build/effnet"
tiny="--width 0.25 --depth 0.34 --resolution 64 --runs 2 --warmup 1"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# expect_usage NAME PATTERN ARGS...: exit 2, PATTERN in stderr, one error line, nothing on stdout
expect_usage() {
  name=$1 pattern=$2
  shift 2
  "$effnet" bench "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 2 ]; then bad "$name: exit $rc, expected 2"; return; fi
  if ! grep -q -- "$pattern" "$tmp/err"; then bad "$name: stderr lacks '$pattern': $(cat "$tmp/err")"; return; fi
  [ "$(wc -l <"$tmp/err")" -eq 1 ] || { bad "$name: not one error line: $(cat "$tmp/err")"; return; }
  [ ! -s "$tmp/out" ] || { bad "$name: wrote to stdout"; return; }
  ok
}

median_last='median [0-9][0-9]*\.[0-9]* ms$'

# text: runs, reports the input and MACs, ends with the median
# shellcheck disable=SC2086
if "$effnet" bench $tiny >"$tmp/out" 2>"$tmp/err"; then ok; else bad "bench tiny: exit $? $(cat "$tmp/err")"; fi
tail -n 1 "$tmp/out" | grep -q "$median_last" && ok || bad "last line lacks 'median X ms': $(tail -n 1 "$tmp/out")"
grep -q "input: 1x3x64x64" "$tmp/out" && ok || bad "text lacks the input shape"
grep -q "random weights" "$tmp/out" && ok || bad "text does not say the weights are random"
grep -q "peak RSS: " "$tmp/out" && ok || bad "text lacks peak RSS"
grep -q "GFLOP/s" "$tmp/out" && ok || bad "text lacks GFLOP/s"
for row in min median; do
  grep -q "^  $row " "$tmp/out" && ok || bad "text lacks the $row row"
done

# batch, threads and a non-square --size reach the report
# shellcheck disable=SC2086
"$effnet" bench $tiny --batch 3 --threads 1 --size 48x40 >"$tmp/out" 2>&1 \
  && grep -q "input: 3x3x48x40 (NCHW), threads: 1" "$tmp/out" \
  && tail -n 1 "$tmp/out" | grep -q "$median_last" && ok || bad "--batch/--threads/--size: $(cat "$tmp/out")"

# --profile: every op kind, and the median line still last
# shellcheck disable=SC2086
"$effnet" bench $tiny --profile >"$tmp/out" 2>&1 || bad "--profile: exit $?"
for kind in layout stem pointwise depthwise se add pool linear; do
  grep -q "^  $kind " "$tmp/out" && ok || bad "--profile lacks op kind $kind"
done
for part in stem stage1 stage2 stage3 stage4 stage5 stage6 stage7 head; do
  grep -q "^  $part " "$tmp/out" && ok || bad "--profile lacks part $part"
done
tail -n 1 "$tmp/out" | grep -q "$median_last" && ok || bad "--profile: last line lacks 'median X ms'"

# --json: exactly one line, valid JSON, with the documented keys (profile only when asked)
check_json() {
  name=$1 profile=$2
  [ "$(wc -l <"$tmp/out")" -eq 1 ] || { bad "$name: not one line"; return; }
  /usr/bin/python3 - "$tmp/out" "$profile" <<'PY' && ok || bad "$name: $(cat "$tmp/out")"
import json, sys
d = json.load(open(sys.argv[1]))
keys = ["model", "batch", "threads", "h", "w", "macs", "runs", "median_ms", "min_ms",
        "images_per_s", "gflops", "peak_rss_kib", "isa", "dense_isa", "runs_ms", "handoff_ns"]
missing = [k for k in keys if k not in d]
assert not missing, "missing keys %s" % missing
assert d["batch"] == 2 and d["h"] == 64 and d["w"] == 64 and d["runs"] == 2, d
assert d["macs"] == 2 * d["macs_per_image"] > 0, d
assert d["isa"] in ("avx512", "avx2", "portable"), d
# the dense kernels' set is the same or, on AVX-512 CPUs that split 512-bit operations, AVX2
assert d["dense_isa"] == d["isa"] or (d["isa"], d["dense_isa"]) == ("avx512", "avx2"), d
# the threads' hand-off: a round trip in ns with two threads or more (0: one CPU; -1: stalled),
# null with one
h = d["handoff_ns"]
assert (h is None) == (d["threads"] < 2), d
assert h is None or h > 0 or h in (0, -1), d
# the summary is the statistics of the reported runs (no time is compared with a bound)
t = d["runs_ms"]
assert len(t) == d["runs"] and all(v > 0 for v in t), d
s = sorted(t)
median = s[len(s) // 2] if len(s) % 2 else 0.5 * (s[len(s) // 2 - 1] + s[len(s) // 2])
assert d["min_ms"] == s[0], d
assert abs(d["median_ms"] - median) <= 2e-6, (median, d)
# median_ms is printed to 1e-6 ms: images/s recomputed from it agrees to 1e-6 / median_ms
ips = 1e3 * d["batch"] / d["median_ms"]
assert abs(d["images_per_s"] - ips) <= d["images_per_s"] * 1e-6 / d["median_ms"], (ips, d)
if sys.argv[2] == "1":
    kinds = ["layout", "stem", "pointwise", "depthwise", "se", "add", "pool", "linear"]
    assert all(k in d["profile"] for k in kinds), d["profile"]
    assert sum(d["profile"][k]["macs_per_run"] for k in kinds) == d["macs"], d["profile"]
    # the parts split the kinds' times: each part is the sum of its kinds, all parts the
    # kinds' total (each printed to 1e-6 ms)
    parts = ["stem"] + ["stage%d" % i for i in range(1, 8)] + ["head"]
    assert list(d["stages"]) == parts, d["stages"]
    for p in parts:
        got = sum(d["stages"][p]["kinds"].values())
        assert abs(d["stages"][p]["ms_per_run"] - got) <= 1e-5, (p, d["stages"][p])
    by_part = sum(d["stages"][p]["ms_per_run"] for p in parts)
    by_kind = sum(v["ms_per_run"] for k, v in d["profile"].items() if k != "other")
    assert abs(by_part - by_kind) <= 1e-4, (by_part, by_kind)
    assert "stem" in d["stages"]["stem"]["kinds"], d["stages"]
    assert "linear" in d["stages"]["head"]["kinds"], d["stages"]
else:
    assert "profile" not in d and "stages" not in d, d
PY
}
# shellcheck disable=SC2086
"$effnet" bench $tiny --batch 2 --json >"$tmp/out" 2>"$tmp/err" || bad "--json: exit $?"
check_json "--json" 0
# shellcheck disable=SC2086
"$effnet" bench $tiny --batch 2 --json --profile >"$tmp/out" 2>"$tmp/err" || bad "--json --profile: exit $?"
check_json "--json --profile" 1

# the threads' hand-off: a line with two threads, none with one; a process confined to one CPU
# gets 0 at once (the pair would take turns on it)
# shellcheck disable=SC2086
"$effnet" bench $tiny --threads 2 >"$tmp/out" 2>&1 && grep -q "^thread hand-off: [0-9]* ns" "$tmp/out" \
  && ok || bad "--threads 2: no hand-off line: $(cat "$tmp/out")"
# shellcheck disable=SC2086
"$effnet" bench $tiny --threads 1 >"$tmp/out" 2>&1 && ! grep -q "hand-off" "$tmp/out" \
  && ok || bad "--threads 1: a hand-off line: $(cat "$tmp/out")"
if command -v taskset >/dev/null 2>&1; then
  # shellcheck disable=SC2086
  h=$(taskset -c 0 "$effnet" bench $tiny --threads 2 --json |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["handoff_ns"])')
  [ "$h" = "0.0" ] && ok || bad "one CPU, two threads: hand-off '$h', expected 0.0"
fi

# the kernels' instruction set is reported, and EFFNET_ISA narrows it (the dense kernels' too)
json_isa() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["isa"])'; }
json_isas() {
  /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["isa"], d["dense_isa"])'
}
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null)
# shellcheck disable=SC2086
isa=$(EFFNET_ISA=portable "$effnet" bench $tiny --json | json_isas)
[ "$isa" = "portable portable" ] && ok || bad "EFFNET_ISA=portable: isa, dense '$isa'"
# shellcheck disable=SC2086
EFFNET_ISA=portable "$effnet" bench $tiny | grep -q "kernels: portable," && ok \
  || bad "text lacks 'kernels: portable'"
has_avx2=0
if [ "$(uname -m)" = x86_64 ] && grep -q '^flags.* avx2 ' /proc/cpuinfo &&
  grep -q '^flags.* fma ' /proc/cpuinfo; then
  has_avx2=1
fi
if [ $has_avx2 = 1 ]; then
  # shellcheck disable=SC2086
  isa=$(EFFNET_ISA=avx2 "$effnet" bench $tiny --json | json_isas)
  [ "$isa" = "avx2 avx2" ] && ok || bad "EFFNET_ISA=avx2 on an AVX2 CPU: isa, dense '$isa'"
  # EFFNET_DENSE_ISA picks the dense kernels' set, never wider than the kernels'
  # shellcheck disable=SC2086
  isa=$(EFFNET_DENSE_ISA=avx2 "$effnet" bench $tiny --json | json_isas)
  case "$isa" in
  "avx512 avx2" | "avx2 avx2") ok ;;
  *) bad "EFFNET_DENSE_ISA=avx2: isa, dense '$isa'" ;;
  esac
  # shellcheck disable=SC2086
  isa=$(EFFNET_ISA=avx2 EFFNET_DENSE_ISA=avx512 "$effnet" bench $tiny --json | json_isas)
  [ "$isa" = "avx2 avx2" ] && ok || bad "EFFNET_DENSE_ISA wider than EFFNET_ISA: '$isa'"
  # shellcheck disable=SC2086
  "$effnet" bench $tiny --json | json_isas >"$tmp/isas"
  # shellcheck disable=SC2086
  case "$(cat "$tmp/isas")" in
  "avx512 avx2")
    EFFNET_DENSE_ISA=avx2 "$effnet" bench $tiny | grep -q "kernels: avx512 (dense: avx2)," \
      && ok || bad "text lacks 'kernels: avx512 (dense: avx2)'" ;;
  esac
fi

# tools/bench/cpuid_avx2.c (scripts/bench_ort.py --cpu avx2) hides AVX-512 from a process,
# ifunc resolvers included: effnet under it must choose its AVX2 kernels. Only where the CPU
# has AVX2, FMA and CPUID faulting (a VM may not offer it: then nothing to check).
case "$has_avx2 $flags" in
"1 "*cpuid_fault*)
  if ${CC:-cc} -O2 -shared -fPIC -o "$tmp/cpuid_avx2.so" tools/bench/cpuid_avx2.c 2>"$tmp/err"; then
    # (ASan's own SIGSEGV handler would take the CPUID faults for crashes: off here)
    # shellcheck disable=SC2086
    isa=$(ASAN_OPTIONS=handle_segv=0 LD_AUDIT="$tmp/cpuid_avx2.so" LD_BIND_NOW=1 \
      "$effnet" bench $tiny --json | json_isa)
    [ "$isa" = avx2 ] && ok || bad "under cpuid_avx2.so: isa '$isa', expected avx2"
  else
    bad "cpuid_avx2.c does not build: $(cat "$tmp/err")"
  fi ;;
*) echo "note: no CPUID faulting on this CPU; cpuid_avx2.so not checked" ;;
esac

# --weights: the variant comes from the file
case_dir=tests/fixtures/small/tv_w0.25_d0.34_64x48_n2
"$effnet" bench --weights "$case_dir/weights.safetensors" --size 64x48 --runs 2 --warmup 0 >"$tmp/out" 2>&1 \
  && grep -q "input: 1x3x64x48" "$tmp/out" && ! grep -q "random weights" "$tmp/out" \
  && tail -n 1 "$tmp/out" | grep -q "$median_last" && ok || bad "--weights: $(cat "$tmp/out")"

# bad arguments: one line, exit 2
expect_usage "unknown model" "unknown model 'b9'" b9
expect_usage "no model" "no model" --runs 2
expect_usage "batch 0" "--batch" --model b0 --batch 0
expect_usage "runs not a number" "--runs" b0 --runs many
expect_usage "negative warmup" "--warmup" b0 --warmup -1
expect_usage "threads 0" "--threads" b0 --threads 0
expect_usage "bad size" "--size" b0 --size 12by3
expect_usage "bad width" "width" --width 0 --depth 1
expect_usage "unknown option" "unknown argument" b0 --fast
expect_usage "missing value" "--batch" b0 --batch
expect_usage "weights with --width" "--weights" --weights "$case_dir/weights.safetensors" --width 0.5

echo "$passed passed, $failed failed"
[ $failed -eq 0 ]
