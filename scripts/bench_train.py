#!/usr/bin/env python3
"""effnet vs PyTorch training speed and peak memory, in one run (issue #5).

Rows: the mini-B0 of the issue (width 0.25, depth 1.0, 32 px, batch 128, 10 classes) and B0 at
224 px, batch 8. For each row, thread count and repeat, the two engines run one after the
other in fresh processes (which goes first alternates), each on Fashion-MNIST:
  * PyTorch (Debian's torch 1.13, torchvision's EfficientNet built with the same width/depth):
    the images are resized to the input size and replicated to 3 channels once, before timing,
    so its loop does no data work at all; RMSprop, label smoothing 0.1, train mode; it reports
    the median step time over the timed steps and its own peak RSS (VmHWM).
  * effnet: `effnet train --data fashion-mnist --max-steps N` with its full input pipeline
    (decode of the IDX pixels, augmentation, resize) inside the timing, warm-up steps
    included; images/s from its log.jsonl; peak RSS from wait4() of that process.
The table gives medians over repeats and the ratio effnet/PyTorch in images per second.
Nothing here is asserted: the numbers go to stdout (Markdown) for README.

Usage (repo root, after `make`): /usr/bin/python3 scripts/bench_train.py [--threads 1,2]
  [--repeats 3] [--rows mini,b0]
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FM = "/usr/share/datasets/fashion-mnist"
# id, width, depth, resolution, batch, timed steps, warm-up steps
ROWS = {"mini": ("mini-B0 w0.25 32px b128", 0.25, 1.0, 32, 128, 40, 5),
        "b0": ("B0 224px b8", 1.0, 1.0, 224, 8, 8, 2)}


def vm_hwm_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def child_torch(row, threads):
    import gzip
    import numpy as np
    import torch
    import torch.nn.functional as F
    from torchvision.models import efficientnet as tve

    torch.set_num_threads(threads)
    _, width, depth, res, batch, steps, warm = ROWS[row]
    with gzip.open(f"{FM}/train-images-idx3-ubyte.gz") as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(f"{FM}/train-labels-idx1-ubyte.gz") as f:
        y = torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64))
    n = batch * (steps + warm)
    imgs = torch.from_numpy(x[:n].astype(np.float32) / 255.0)
    imgs = F.interpolate(imgs, size=(res, res), mode="bilinear", align_corners=False)
    imgs = ((imgs - 0.286) / 0.353).repeat(1, 3, 1, 1).contiguous()
    setting, last = tve._efficientnet_conf("efficientnet_b0", width_mult=width, depth_mult=depth)
    model = tve.EfficientNet(setting, 0.2, last_channel=last, num_classes=10)
    model.train()
    opt = torch.optim.RMSprop(model.parameters(), lr=0.008, alpha=0.9, eps=1e-3, momentum=0.9,
                              weight_decay=1e-5)
    times = []
    for s in range(steps + warm):
        xb, yb = imgs[s * batch:(s + 1) * batch], y[s * batch:(s + 1) * batch]
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb, label_smoothing=0.1)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    step = statistics.median(times[warm:])
    print(json.dumps({"img_per_s": batch / step, "step_ms": step * 1e3, "rss_mib": vm_hwm_mib(),
                      "torch": torch.__version__}))


def run_torch(row, threads):
    out = subprocess.run([sys.executable, __file__, "--child-torch", row, "--threads", str(threads)],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_effnet(row, threads, effnet):
    _, width, depth, res, batch, steps, warm = ROWS[row]
    out = tempfile.mkdtemp(prefix="effnet-bench-train-")
    try:
        cmd = [effnet, "train", "--data", "fashion-mnist", "--width", str(width), "--depth",
               str(depth), "--resolution", str(res), "--batch", str(batch), "--threads",
               str(threads), "--max-steps", str(steps + warm), "--eval-limit", "16", "--out", out]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        err = proc.stderr.read()
        if status != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed: {err}")
        with open(os.path.join(out, "log.jsonl")) as f:
            last = json.loads(f.read().strip().splitlines()[-1])
        return {"img_per_s": last["img_per_s"], "step_ms": batch / last["img_per_s"] * 1e3,
                "rss_mib": usage.ru_maxrss / 1024.0}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rows", default="mini,b0")
    ap.add_argument("--effnet", default=os.path.join(ROOT, "build", "effnet"))
    ap.add_argument("--child-torch")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    if args.child_torch:
        return child_torch(args.child_torch, threads[0])
    res = {}
    version = None
    for rep in range(args.repeats):
        for row in args.rows.split(","):
            for t in threads:
                order = ["effnet", "torch"] if (rep % 2 == 0) else ["torch", "effnet"]
                for engine in order:
                    r = run_effnet(row, t, args.effnet) if engine == "effnet" else run_torch(row, t)
                    version = r.get("torch", version)
                    res.setdefault((row, t, engine), []).append(r)
                    print(f"rep {rep} {row} {t}T {engine}: {r['img_per_s']:.1f} img/s, "
                          f"{r['rss_mib']:.0f} MiB", file=sys.stderr)
    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
          f"{time.strftime('%Y-%m-%d')}; torch {version}; medians of {args.repeats} runs\n")
    print("| model | threads | PyTorch img/s | effnet img/s | ratio | PyTorch peak RSS MiB | effnet peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for row in args.rows.split(","):
        for t in threads:
            med = {e: {k: statistics.median(r[k] for r in res[(row, t, e)]) for k in ("img_per_s", "rss_mib")}
                   for e in ("torch", "effnet")}
            print(f"| {ROWS[row][0]} | {t} | {med['torch']['img_per_s']:.1f} | "
                  f"{med['effnet']['img_per_s']:.1f} | "
                  f"{med['effnet']['img_per_s'] / med['torch']['img_per_s']:.2f} | "
                  f"{med['torch']['rss_mib']:.0f} | {med['effnet']['rss_mib']:.0f} |")


if __name__ == "__main__":
    sys.exit(main())
