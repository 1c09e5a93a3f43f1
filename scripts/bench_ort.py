#!/usr/bin/env python3
"""effnet vs ONNX Runtime on the same torchvision model, weights and input (issue #4).

For each row (model, resolution, batch) the torchvision model (timm's for EfficientNet-Lite0,
which torchvision lacks) is built once, exported to ONNX
(static shapes) and its state_dict written as safetensors, so both engines run identical
weights. Then, for each repeat, each thread count and each row, one fresh process per engine
measures warm-up + R timed runs and reports its median: ONNX Runtime (a child of this script,
intra_op_num_threads=T, inter_op_num_threads=1, ORT_SEQUENTIAL, graph optimisation ALL) and
`effnet bench --weights ... --threads T --json`. The engines alternate, and which goes first
alternates between repeats, so a drift in machine load hits both alike. The table gives the
median of the per-process medians and each engine's peak RSS (VmHWM of its own process: see
vm_hwm_mib for why not ru_maxrss). Once per model the logits of both engines for the same
input are compared.

Weights: seeded random ones by default (tools/oracle/common.py's randomise_model: BN statistics
calibrated so activations stay O(1), as in trained networks; speed does not depend on the
values), or torchvision's pretrained ones with --pretrained where its checkpoint is cached.

Usage (from the repo root; scripts/bench_ort.sh installs ORT and builds effnet first):
  .venv/bin/python scripts/bench_ort.py [--rows b0,b0x8,b3,b7] [--threads 1,2] [--repeats 5]
                                        [--runs R] [--warmup W] [--out FILE] [--workdir DIR]
                                        [--cpu native|avx2]
--cpu avx2 hides AVX-512 (and AMX, AVX-VNNI) from both engines, through the kernel's CPUID
faulting (tools/bench/cpuid_avx2.c), so that an AVX-512 machine measures the AVX2 + FMA kernels
that issue #4's Zen2 runs.
A row selector is a row id (b0x1, b0x8, b3x1, b7x1, lite0x1) or a model (b0 = both B0 rows).
The report (Markdown) goes to stdout and --out; progress to stderr.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# id, model (torchvision's, or timm's where TIMM_MODELS has it), resolution, batch, default
# timed runs, default warm-up runs. Run counts keep one process to a few seconds on this 2-core
# machine. Lite0 (ReLU6, no SE) is not in issue #4's table: it shows the family's other
# activation path.
ROWS = [
    ("b0x1", "efficientnet_b0", 224, 1, 30, 3),
    ("b0x8", "efficientnet_b0", 224, 8, 10, 2),
    ("b3x1", "efficientnet_b3", 300, 1, 15, 2),
    ("b7x1", "efficientnet_b7", 600, 1, 5, 1),
    ("lite0x1", "efficientnet_lite0", 224, 1, 30, 3),
]
# timm's PyTorch-style Lite0 (symmetric padding, eps 1e-5), which effnet reads by its tensor names
TIMM_MODELS = {"efficientnet_lite0"}

SEED = 20240


# ------------------------------------------------------------------------------------------
# child: ONNX Runtime in its own process (imports neither torch nor the oracle helpers)

def vm_hwm_mib():
    """Peak RSS of this process (VmHWM). Not ru_maxrss: a child's ru_maxrss starts from the
    high-water mark of the process that spawned it (this script, holding the exported models),
    so every child would report at least the parent's size."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def ort_options(ort, threads):
    """The session options both ORT children use: T intra-op threads, sequential, graph
    optimisation ALL."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return so


def random_input(np, args):
    return np.random.default_rng(1).standard_normal((args.batch, 3, args.h, args.w),
                                                    dtype=np.float32)


def child_ort(args):
    import numpy as np
    import onnxruntime as ort

    if args.child_ort == "-":  # version, and the RSS of the interpreter + NumPy + ORT alone
        print(ort.__version__, vm_hwm_mib())
        return 0
    sess = ort.InferenceSession(args.child_ort, ort_options(ort, args.threads),
                                providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    if args.input:
        x = np.load(args.input).astype(np.float32)
        y = sess.run(None, {name: x})[0]
        np.save(args.output, y)
        return 0
    x = random_input(np, args)
    for _ in range(args.warmup):
        sess.run(None, {name: x})
    times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        sess.run(None, {name: x})
        times.append(time.perf_counter() - t0)
    rss_kib = 1024.0 * vm_hwm_mib()  # before libeffnet is loaded for the hand-off
    print(json.dumps({"median_ms": 1e3 * statistics.median(times), "min_ms": 1e3 * min(times),
                      "runs": args.runs, "version": ort.__version__, "peak_rss_kib": rss_kib,
                      "handoff_ns": handoff_ns(args.handoff_lib, args.threads)}))
    return 0


def handoff_ns(lib, threads):
    """effnet_thread_handoff_ns() from libeffnet.so in this (ORT's) process after its runs, as
    effnet's processes report it: the machine's state next to ORT's timings (None with one
    thread or without the library)."""
    if threads < 2 or not lib or not os.path.exists(lib):
        return None
    import ctypes
    f = ctypes.CDLL(lib).effnet_thread_handoff_ns
    f.restype = ctypes.c_double
    return f()


def ort_part(node_name):
    """The part of the network an ORT node belongs to, from the module path in its name:
    "stem" (torchvision's features.0, timm's conv_stem and bn1), "stage1".."stage7"
    (features.1-7, timm's blocks.0-6), "head" (features.8 or conv_head and bn2, the pooling,
    the classifier), or None (the layout reorders ORT inserts have no module)."""
    m = re.search(r"/features/features\.(\d+)/", node_name)
    if m:
        i = int(m.group(1))
        return "stem" if i == 0 else "stage%d" % i if i <= 7 else "head"
    m = re.search(r"^/blocks/blocks\.(\d+)/", node_name)
    if m:
        return "stage%d" % (int(m.group(1)) + 1)
    if node_name.startswith(("/conv_stem/", "/bn1/")):
        return "stem"
    if node_name.startswith(("/avgpool/", "/classifier/", "/Flatten", "/conv_head/", "/bn2/",
                             "/global_pool/")):
        return "head"
    return None


def child_ort_stages(args):
    """ORT's own profiler over the timed runs: ms per run of each part of the network, split
    into convolutions (Conv, FusedConv: every conv with what ORT fused into it) and the other
    nodes (activations, SE pooling and scaling); layout reorders apart."""
    import numpy as np
    import onnxruntime as ort

    so = ort_options(ort, args.threads)
    so.enable_profiling = True
    tmp = tempfile.mkdtemp(prefix="ort_prof_")
    so.profile_file_prefix = os.path.join(tmp, "ort")
    try:
        sess = ort.InferenceSession(args.child_ort_stages, so, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        x = random_input(np, args)
        for _ in range(args.warmup + args.runs):
            sess.run(None, {name: x})
        with open(sess.end_profiling()) as f:
            events = json.load(f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    timed = runs[-args.runs:]
    start = timed[0]["ts"]
    parts = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < start:
            continue
        part = ort_part(e["name"]) or "reorders"
        kind = "conv" if e["args"].get("op_name") in ("Conv", "FusedConv") else "other"
        d = parts.setdefault(part, {"conv": 0.0, "other": 0.0})
        d[kind] += e["dur"] / 1e3 / args.runs  # us -> ms per run
    wall = statistics.median(r["dur"] / 1e3 for r in timed)
    print(json.dumps({"parts": parts, "median_ms": wall}))
    return 0


# ------------------------------------------------------------------------------------------
# parent

def log(msg):
    print(msg, file=sys.stderr, flush=True)


# extra environment for every engine process (--cpu avx2 sets the CPUID mask here)
CPU_ENV = {}


def run_child(cmd, env=None):
    """Runs cmd with CPU_ENV added; returns its stdout. Raises on failure, with its stderr."""
    env = dict(os.environ if env is None else env)
    env.update(CPU_ENV)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d\n%s" % (" ".join(cmd), p.returncode,
                                                p.stderr.decode(errors="replace")))
    return p.stdout.decode()


def ort_env():
    # numpy's OpenBLAS is idle in the ORT child; keep it from starting spare threads
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = "1"
    return env


def cpu_mask_env(cpu):
    """Environment that makes both engines see an AVX2 + FMA CPU (issue #4's Zen2 class) on an
    AVX-512 one: tools/bench/cpuid_avx2.c, built here, loaded as an audit library."""
    if cpu == "native":
        return {}
    with open("/proc/cpuinfo") as f:
        flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    if "avx2" not in flags or "fma" not in flags:
        raise SystemExit("bench_ort: --cpu avx2 needs a CPU with AVX2 and FMA")
    if "cpuid_fault" not in flags:
        raise SystemExit("bench_ort: --cpu avx2 needs CPUID faulting (no 'cpuid_fault' in "
                         "/proc/cpuinfo): this CPU or hypervisor cannot hide AVX-512")
    src = os.path.join(ROOT, "tools", "bench", "cpuid_avx2.c")
    lib = os.path.join(ROOT, "build", "cpuid_avx2.so")
    if not os.path.exists(lib) or os.path.getmtime(lib) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(lib), exist_ok=True)
        run_child(["gcc", "-O2", "-Wall", "-Wextra", "-shared", "-fPIC", "-o", lib, src])
    return {"LD_AUDIT": lib, "LD_BIND_NOW": "1"}


def machine():
    model, cpus, tpc = platform.processor() or "?", str(os.cpu_count()), "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            v = v.strip()
            if k.strip() == "Model name":
                model = v
            elif k.strip() == "CPU(s)":
                cpus = v
            elif k.strip() == "Thread(s) per core":
                tpc = v
    except (OSError, subprocess.CalledProcessError):
        pass
    flags = ""
    try:
        with open("/proc/cpuinfo") as f:
            have = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
        flags = " ".join(x for x in ("avx2", "fma", "avx512f") if x in have)
    except OSError:
        pass
    return "%s, %s CPUs (%s threads per core), %s" % (model, cpus, tpc, flags or "?")


def git_head():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def select_rows(spec):
    if spec in ("all", ""):
        return list(ROWS)
    chosen = []
    for sel in spec.split(","):
        sel = sel.strip().lower()
        hit = [r for r in ROWS if r[0] == sel or r[1] == "efficientnet_" + sel]
        if not hit:
            raise SystemExit("bench_ort: unknown row '%s' (rows: %s, or a model: b0, b3, b7, "
                             "lite0)" % (sel, ", ".join(r[0] for r in ROWS)))
        chosen += [r for r in hit if r not in chosen]
    return [r for r in ROWS if r in chosen]


def prepare(rows, workdir, opset, pretrained):
    """Exports each model once as safetensors and per (model, batch) as ONNX; writes the parity
    input and torch's logits for it. Reuses files already in workdir."""
    import numpy as np
    import torch
    import torchvision
    sys.path.insert(0, os.path.join(ROOT, "tools", "oracle"))
    import common

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    files = {}
    for tv_name in sorted({r[1] for r in rows}):
        my_rows = [r for r in rows if r[1] == tv_name]
        res = my_rows[0][2]
        tag = "%s_%s" % (tv_name, "pretrained" if pretrained else "seed%d" % SEED)
        st = os.path.join(workdir, tag + ".safetensors")
        xin = os.path.join(workdir, tag + "_x.npy")
        tref = os.path.join(workdir, tag + "_torch64.npy")
        onnx = {b: os.path.join(workdir, "%s_b%d_%d_opset%d.onnx" % (tag, b, res, opset))
                for b in sorted({1} | {r[3] for r in my_rows})}  # batch 1 for the parity check
        files[tv_name] = {"safetensors": st, "x": xin, "torch": tref, "onnx": onnx}
        if all(os.path.exists(p) for p in [st, xin, tref, *onnx.values()]):
            log("reusing %s exports in %s" % (tv_name, workdir))
            continue
        log("exporting %s (%d px) ..." % (tv_name, res))
        timm_row = tv_name in TIMM_MODELS
        if pretrained and timm_row:
            raise SystemExit("bench_ort: --pretrained covers torchvision's models only, not %s"
                             % tv_name)
        if pretrained:
            model = getattr(torchvision.models, tv_name)(weights="DEFAULT").eval()
        else:
            # calibrate BN at a quarter of the pixels: statistics, not speed, depend on it
            build = ((lambda: common.build_timm(tv_name)) if timm_row else
                     (lambda: getattr(torchvision.models, tv_name)()))
            model = common.seeded_model(build, SEED, (1, 3, res // 2, res // 2))
        common.export_state_dict(model, st, {"format": "pt", "source": "%s %s" % (
            "timm" if timm_row else "torchvision", tv_name)})
        x = torch.randn(1, 3, res, res, generator=torch.Generator().manual_seed(SEED + 7))
        np.save(xin, x.numpy())
        # float64 torch: the exact answer both float32 engines are measured against
        with torch.no_grad():
            np.save(tref, common.double_copy(model)(x.double()).numpy())
        for b, path in onnx.items():
            dummy = torch.zeros(b, 3, res, res)
            with torch.no_grad():
                torch.onnx.export(model, dummy, path, opset_version=opset,
                                  input_names=["input"], output_names=["logits"],
                                  do_constant_folding=True)
        del model
    return files


def parity(effnet, files, workdir, tv_name):
    """Logits of both engines (1 thread) for one input: max |a - b| / max |b| between them and
    against float64 torch."""
    import numpy as np
    f = files[tv_name]
    y_ort = os.path.join(workdir, "parity_ort.npy")
    y_eff = os.path.join(workdir, "parity_effnet.npy")
    run_child([sys.executable, __file__, "--child-ort", f["onnx"][1], "--threads", "1",
               "--input", f["x"], "--output", y_ort], env=ort_env())
    run_child([effnet, "run", "--weights", f["safetensors"], "--input", f["x"], "--output",
               y_eff, "--threads", "1"])
    a, b, t = np.load(y_eff), np.load(y_ort), np.load(f["torch"])

    def rel(u, v):
        u, v = u.astype(np.float64), v.astype(np.float64)
        return float(np.max(np.abs(u - v)) / max(np.max(np.abs(v)), 1e-30))

    same_top1 = bool(np.all(a.argmax(1) == b.argmax(1)))
    return rel(a, b), rel(a, t), rel(b, t), same_top1


def profile(effnet, files, row, threads, runs, warmup):
    """effnet's time per op kind and per part of the network (bench --profile), one process,
    after the timed alternations."""
    rid, tv_name, res, batch = row[:4]
    out = run_child([effnet, "bench", "--weights", files[tv_name]["safetensors"], "--batch",
                     str(batch), "--threads", str(threads), "--size", str(res), "--runs",
                     str(runs), "--warmup", str(warmup), "--profile", "--json"])
    d = json.loads(out.strip().splitlines()[-1])
    return {"kinds": d["profile"], "stages": d["stages"], "median_ms": d["median_ms"]}


def ort_stages(files, row, threads, runs, warmup):
    """ORT's time per part of the network (child_ort_stages), one process."""
    rid, tv_name, res, batch = row[:4]
    out = run_child([sys.executable, __file__, "--child-ort-stages", files[tv_name]["onnx"][batch],
                     "--threads", str(threads), "--batch", str(batch), "--h", str(res), "--w",
                     str(res), "--runs", str(runs), "--warmup", str(warmup)], env=ort_env())
    return json.loads(out.strip().splitlines()[-1])


# (isa, dense_isa) that effnet's processes reported (`effnet bench --json`)
EFFNET_KERNELS = set()


def measure(effnet, files, row, threads, runs, warmup, engine):
    rid, tv_name, res, batch = row[:4]
    f = files[tv_name]
    if engine == "ort":
        lib = os.path.join(os.path.dirname(os.path.abspath(effnet)), "libeffnet.so")
        out = run_child([sys.executable, __file__, "--child-ort", f["onnx"][batch],
                              "--threads", str(threads), "--batch", str(batch), "--h", str(res),
                              "--w", str(res), "--runs", str(runs), "--warmup", str(warmup),
                              "--handoff-lib", lib], env=ort_env())
    else:
        out = run_child([effnet, "bench", "--weights", f["safetensors"], "--batch",
                              str(batch), "--threads", str(threads), "--size", str(res),
                              "--runs", str(runs), "--warmup", str(warmup), "--json"])
    d = json.loads(out.strip().splitlines()[-1])
    if engine == "effnet" and CPU_ENV and d.get("isa") != "avx2":
        raise SystemExit("bench_ort: --cpu avx2, but effnet ran its %s kernels" % d.get("isa"))
    if engine == "effnet":
        EFFNET_KERNELS.add((d.get("isa"), d.get("dense_isa", d.get("isa"))))
    d["rss_mib"] = d["peak_rss_kib"] / 1024.0  # both engines: VmHWM of their own process
    return d


def fmt_handoff(runs):
    """The hand-off times of a row's processes of one engine: median (range), or -."""
    ns = [d["handoff_ns"] for d in runs if d.get("handoff_ns") is not None]
    if not ns:
        return "-"
    return "%.0f (%.0f-%.0f)" % (statistics.median(ns), min(ns), max(ns))


def same_phase(effnet_runs, ort_runs):
    """The paired ratios of the repeats whose two processes saw hand-offs within a factor of
    two of each other (the machine in the same state for both): median (count), or -."""
    ratios = [e["median_ms"] / o["median_ms"] for e, o in zip(effnet_runs, ort_runs)
              if (e.get("handoff_ns") or 0) > 0 and (o.get("handoff_ns") or 0) > 0
              and max(e["handoff_ns"], o["handoff_ns"]) < 2 * min(e["handoff_ns"],
                                                                  o["handoff_ns"])]
    if not ratios:
        return "-"
    return "%.2f (%d of %d)" % (statistics.median(ratios), len(ratios), len(effnet_runs))


def fmt_ms(ms, batch):
    return "%.1f" % ms if batch == 1 else "%.1f (%.2f/img)" % (ms, ms / batch)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="all",
                    help="comma list: b0x1,b0x8,b3x1,b7x1,lite0x1 or b0,b3,b7,lite0")
    ap.add_argument("--threads", default="1,2", help="comma list of thread counts")
    ap.add_argument("--repeats", type=int, default=5, help="alternations (processes per engine)")
    ap.add_argument("--runs", type=int, help="timed runs per process (default: per row)")
    ap.add_argument("--warmup", type=int, help="warm-up runs per process (default: per row)")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--effnet", default=os.path.join(ROOT, "build", "effnet"))
    ap.add_argument("--workdir", help="keep (and reuse) the exported models here")
    ap.add_argument("--pretrained", action="store_true",
                    help="torchvision's pretrained weights (needs its cached checkpoint)")
    ap.add_argument("--out", help="also write the Markdown report here")
    ap.add_argument("--note", default="", help="a line added under the header")
    ap.add_argument("--cpu", default="native", choices=("native", "avx2"),
                    help="avx2: hide AVX-512/AMX/AVX-VNNI from both engines (CPUID faulting)")
    # child mode (internal)
    ap.add_argument("--child-ort", help=argparse.SUPPRESS)
    ap.add_argument("--child-ort-stages", help=argparse.SUPPRESS)
    ap.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--h", type=int, default=224, help=argparse.SUPPRESS)
    ap.add_argument("--w", type=int, default=224, help=argparse.SUPPRESS)
    ap.add_argument("--input", help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    ap.add_argument("--handoff-lib", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.child_ort or args.child_ort_stages:
        args.threads = int(args.threads) if args.child_ort != "-" else 1
        args.runs = args.runs or 10
        args.warmup = 2 if args.warmup is None else args.warmup
        return child_ort_stages(args) if args.child_ort_stages else child_ort(args)

    rows = select_rows(args.rows)
    try:
        thread_counts = [int(t) for t in args.threads.split(",")]
        assert thread_counts and all(t >= 1 for t in thread_counts)
    except (ValueError, AssertionError):
        raise SystemExit("bench_ort: --threads wants a comma list of positive integers")
    if args.repeats < 1 or (args.runs is not None and args.runs < 1) or \
            (args.warmup is not None and args.warmup < 0):
        raise SystemExit("bench_ort: --repeats and --runs must be >= 1, --warmup >= 0")
    if not os.access(args.effnet, os.X_OK):
        raise SystemExit("bench_ort: %s not found: run `make` first" % args.effnet)
    CPU_ENV.update(cpu_mask_env(args.cpu))
    # ORT is imported only in child processes; this one also gives the RSS that the Python
    # interpreter, NumPy and the ORT library take before any model is loaded
    try:
        out = run_child([sys.executable, __file__, "--child-ort", "-"], env=ort_env())
        ort_version, ort_base_rss = out.split()
        ort_base_rss = float(ort_base_rss)
    except RuntimeError:
        raise SystemExit("bench_ort: onnxruntime is not importable: run scripts/setup_bench.sh "
                         "and use .venv/bin/python")

    started = datetime.datetime.now(datetime.timezone.utc)
    tmp = None
    workdir = args.workdir
    if workdir:
        os.makedirs(workdir, exist_ok=True)
    else:
        tmp = workdir = tempfile.mkdtemp(prefix="bench_ort_")
    try:
        import torch
        import torchvision
        versions = "ONNX Runtime %s, torch %s (ONNX export, opset %d), torchvision %s, effnet %s" % (
            ort_version, torch.__version__, args.opset, torchvision.__version__, git_head())
        if any(r[1] in TIMM_MODELS for r in rows):
            import timm
            versions += ", timm %s" % timm.__version__
        files = prepare(rows, workdir, args.opset, args.pretrained)

        checks = []
        for tv_name in sorted({r[1] for r in rows}):
            log("parity %s ..." % tv_name)
            checks.append((tv_name,) + parity(args.effnet, files, workdir, tv_name))

        results = {}  # (row id, threads, engine) -> list of dicts
        for rep in range(args.repeats):
            for row in rows:
                for t in thread_counts:
                    runs = args.runs or row[4]
                    warmup = row[5] if args.warmup is None else args.warmup
                    order = ("ort", "effnet") if rep % 2 == 0 else ("effnet", "ort")
                    for engine in order:
                        d = measure(args.effnet, files, row, t, runs, warmup, engine)
                        results.setdefault((row[0], t, engine), []).append(d)
                        handoff = d.get("handoff_ns")
                        log("repeat %d/%d %s %dT %-6s median %.2f ms, RSS %.0f MiB%s" % (
                            rep + 1, args.repeats, row[0], t, engine, d["median_ms"],
                            d["rss_mib"], ", hand-off %.0f ns" % handoff if handoff else ""))
        profiles = {}
        for row in rows:
            for t in thread_counts:
                log("profile %s %dT ..." % (row[0], t))
                runs = args.runs or row[4]
                warmup = row[5] if args.warmup is None else args.warmup
                profiles[(row[0], t)] = profile(args.effnet, files, row, t, runs, warmup)
                profiles[(row[0], t)]["ort_stages"] = ort_stages(files, row, t, runs, warmup)
        report = render(rows, thread_counts, results, checks, args, started, versions,
                        ort_base_rss, profiles)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    sys.stdout.write(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    return 0


def render_profiles(rows, thread_counts, profiles):
    kinds = [k for k in ("stem", "stem+dw", "pointwise", "expand+dw", "depthwise", "se",
                         "linear") if any(k in p["kinds"] for p in profiles.values())]
    lines = ["effnet's time per op kind (`effnet bench --profile`, one process per row after the "
             "alternations; ms per batch and GFLOP/s, 2 x multiply-adds / time; expand+dw = "
             "expand 1x1 and depthwise fused; stem+dw = the stem and the first block's "
             "depthwise fused):", "",
             "| row | threads | " + " | ".join(kinds) + " | other |",
             "|---|---|" + "---|" * (len(kinds) + 1)]
    for row in rows:
        rid, tv_name, res, batch = row[:4]
        label = "%s %d, batch %d" % (tv_name.replace("efficientnet_", "").upper(), res, batch)
        for t in thread_counts:
            p = profiles[(rid, t)]["kinds"]
            cells = []
            for k in kinds:
                d = p.get(k, {})
                cells.append("%.2f ms, %.0f GF/s" % (d.get("ms_per_run", 0), d.get("gflops", 0))
                             if d.get("macs_per_run") else "%.2f ms" % d.get("ms_per_run", 0))
            rest = sum(d["ms_per_run"] for k, d in p.items() if k not in kinds)
            lines.append("| %s | %d | %s | %.2f ms |" % (label, t, " | ".join(cells), rest))
    lines.append("")
    return lines


def render(rows, thread_counts, results, checks, args, started, versions, ort_base_rss,
           profiles):
    lines = []
    lines.append("## effnet vs ONNX Runtime")
    lines.append("")
    lines.append("- machine: %s" % machine())
    if args.cpu == "avx2":
        lines.append("- CPU seen by both engines: AVX2 + FMA only (AVX-512, AVX-VNNI and AMX "
                     "hidden through CPUID faulting by tools/bench/cpuid_avx2.c, as on issue "
                     "#4's Zen2); effnet reported its avx2 kernels in every run")
    lines.append("- date: %s" % started.strftime("%Y-%m-%d %H:%M UTC"))
    lines.append("- %s" % versions)
    if EFFNET_KERNELS:
        lines.append("- effnet's kernels: %s" % "; ".join(
            isa if dense == isa else "%s (dense: %s)" % (isa, dense)
            for isa, dense in sorted(EFFNET_KERNELS, key=str)))
    lines.append("- weights: %s; identical in both engines (state_dict -> safetensors)" % (
        "torchvision pretrained" if args.pretrained else
        "torchvision models (timm's for Lite0), seeded random (BN calibrated)"))
    lines.append("- method: %d alternation(s), one process per engine per measurement, order "
                 "flipped every repeat; each process: warm-up, then timed runs of one batch; "
                 "table: median of the per-process medians (ms per batch); paired: each "
                 "repeat's effnet median over the ORT median measured next to it, their median "
                 "and range (the spread is this machine's noise); peak RSS (VmHWM) of "
                 "the process (max over repeats). ORT: intra_op_num_threads=T, inter_op 1, "
                 "sequential, graph optimisation ALL. ORT's process includes the Python "
                 "interpreter and NumPy: %.0f MiB after `import numpy, onnxruntime` alone. "
                 "hand-off: the round trip of a cache line between two threads, measured by "
                 "each process after its runs (`effnet_thread_handoff_ns`, in ORT's process "
                 "from libeffnet.so; median and range over the row's processes): tens of ns "
                 "where the CPUs share a die, several times that where they do not, and "
                 "multi-thread rows then slow down; paired, same phase: the paired ratios of "
                 "the repeats whose two hand-offs lie within a factor of two, their median "
                 "and count."
                 % (args.repeats, ort_base_rss))
    if args.note:
        lines.append("- %s" % args.note)
    lines.append("")
    lines.append("| row | threads | ORT ms | effnet ms | effnet / ORT | paired | ORT GFLOP/s | "
                 "effnet GFLOP/s | ORT RSS MiB | effnet RSS MiB | hand-off ns effnet; ORT | "
                 "paired, same phase |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        rid, tv_name, res, batch = row[:4]
        label = "%s %d, batch %d" % (tv_name.replace("efficientnet_", "").upper(), res, batch)
        for t in thread_counts:
            o = results[(rid, t, "ort")]
            e = results[(rid, t, "effnet")]
            om = statistics.median(d["median_ms"] for d in o)
            em = statistics.median(d["median_ms"] for d in e)
            pairs = [x["median_ms"] / y["median_ms"] for x, y in zip(e, o)]
            macs = e[0]["macs"]  # per batch, from effnet_spec_describe
            lines.append("| %s | %d | %s | %s | %.2f | %.2f (%.2f-%.2f) | %.1f | %.1f | %.0f "
                         "| %.0f | %s; %s | %s |" % (
                label, t, fmt_ms(om, batch), fmt_ms(em, batch), em / om,
                statistics.median(pairs), min(pairs), max(pairs),
                2e-6 * macs / om, 2e-6 * macs / em,
                max(d["rss_mib"] for d in o), max(d["rss_mib"] for d in e), fmt_handoff(e),
                fmt_handoff(o), same_phase(e, o)))
    lines.append("")
    lines.append("Logits for the same input (1 thread):")
    for tv_name, eff_ort, eff_64, ort_64, same in checks:
        lines.append("- %s: effnet vs ORT max rel diff %.2e; vs torch float64: effnet %.2e, "
                     "ORT %.2e; top-1 %s" % (tv_name, eff_ort, eff_64, ort_64,
                                             "equal" if same else "DIFFERENT"))
    lines.append("")
    lines.append("Relative differences are max|a - b| / max|b| over the logits.")
    lines.append("")
    lines += render_profiles(rows, thread_counts, profiles)
    lines += render_stages(rows, thread_counts, profiles)
    return "\n".join(lines)


def render_stages(rows, thread_counts, profiles):
    """Per row, ms per run of each part of the network in both engines, from one profiled
    process each: ORT's profiler (its convolutions apart from its other nodes: activations, SE
    pooling and scaling) and effnet bench --profile (convolutions with their activations,
    SE pooling and scaling fused)."""
    parts = [("stem",)] + [("stage%d" % i,) for i in range(1, 8)] + [("head",)]
    fused = any("stem+dw" in p["kinds"] for p in profiles.values())
    if fused:  # effnet's stem part holds the first block's depthwise conv (ORT's stage 1)
        parts[:2] = [("stem", "stage1")]
    lines = ["Time per part of the network, ms per batch (one profiled process per engine, row "
             "and thread count; ORT: its own profiler, `conv` its Conv/FusedConv nodes, `all` "
             "adds its activations, SE pooling and scaling; profiling adds overhead to both, "
             "so the parts sum to more than the table's medians%s):" % (
                 "; the stem and stage 1 in one row, as effnet runs the stem with the first "
                 "depthwise conv" if fused else ""), ""]
    head = "| part |" + "".join(" ORT conv %dT | ORT all %dT | effnet %dT |" % (t, t, t)
                               for t in thread_counts)
    for row in rows:
        rid, tv_name, res, batch = row[:4]
        label = "%s %d, batch %d" % (tv_name.replace("efficientnet_", "").upper(), res, batch)
        lines += ["%s:" % label, "", head, "|---|" + "---|---|---|" * len(thread_counts)]
        totals = {t: [0.0, 0.0, 0.0] for t in thread_counts}
        for group in parts + [("reorders",)]:
            cells = []
            for t in thread_counts:
                conv = every = e = 0.0
                for part in group:
                    o = profiles[(rid, t)]["ort_stages"]["parts"].get(part,
                                                                      {"conv": 0, "other": 0})
                    conv += o["conv"]
                    every += o["conv"] + o["other"]
                    e += profiles[(rid, t)]["stages"].get(part, {"ms_per_run": 0.0})["ms_per_run"]
                for i, v in enumerate((conv, every, e)):
                    totals[t][i] += v
                cells.append(" %.2f | %.2f | %s |" % (conv, every,
                                                    "%.2f" % e if group != ("reorders",) else "-"))
            name = " + ".join(group) if group != ("reorders",) else "ORT layout reorders"
            lines.append("| %s |%s" % (name, "".join(cells)))
        lines.append("| total |" + "".join(" %.2f | %.2f | %.2f |" % tuple(totals[t])
                                           for t in thread_counts))
        lines.append("")
    return lines


if __name__ == "__main__":
    sys.exit(main())
