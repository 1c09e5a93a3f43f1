#!/usr/bin/env python3
"""Write the parameter / multiply-add / shape counts of every EfficientNet variant as JSON.

Why: effnet generates every family member from the B0 stage table plus the scaling rules
(reference doc §1.3, §1.4, §2.1). These counts, taken from the reference implementations
themselves (torchvision for B0..B7 and custom width/depth members, timm's TF ports for B8, L2
and Lite0..4), pin down the rounding of channels and repeats, the fixed Lite stem/head and the
multiply-add accounting without any weights. tests/test_counts.c checks the C model against it.

Counting rules:
  params = sum(p.numel() for p in model.parameters())  (weights, biases, BN gamma/beta; no
           running statistics)
  macs   = multiply-adds of every Conv2d (incl. depthwise and SE convs: out_numel * in_ch/groups
           * kh * kw) and Linear (in * out), counted with forward hooks on one batch-1 forward
           pass at the entry's input size. BN, activations, pooling and the SE multiply are not
           counted (the convention of torchvision's `_ops` and the paper).

Usage: .venv/bin/python tools/oracle/gen_counts.py OUT.json [--exclude l2,b8] [--only b0,lite0]
"""

import argparse
import json
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

# (name, width, depth, native resolution, dropout): reference doc §1.4 and §2.1. Lite3/4 use
# TF's lite resolutions 280/300 (lite/README.md), not timm's default cfg (300/380).
B_TABLE = [
    ("b0", 1.0, 1.0, 224, 0.2), ("b1", 1.0, 1.1, 240, 0.2), ("b2", 1.1, 1.2, 260, 0.3),
    ("b3", 1.2, 1.4, 300, 0.3), ("b4", 1.4, 1.8, 380, 0.4), ("b5", 1.6, 2.2, 456, 0.4),
    ("b6", 1.8, 2.6, 528, 0.5), ("b7", 2.0, 3.1, 600, 0.5), ("b8", 2.2, 3.6, 672, 0.5),
    ("l2", 4.3, 5.3, 800, 0.5),
]
LITE_TABLE = [
    ("lite0", 1.0, 1.0, 224, 0.2), ("lite1", 1.0, 1.1, 240, 0.2), ("lite2", 1.1, 1.2, 260, 0.3),
    ("lite3", 1.2, 1.4, 280, 0.3), ("lite4", 1.4, 1.8, 300, 0.3),
]
# custom members (width, depth, square input side), built with torchvision's own builder,
# 10 classes: they exercise channel rounding (incl. the 8-channel floor and the +8 "90 %" rule)
# and ceil() of repeats away from the named table.
CUSTOM = [(0.25, 0.34, 64), (0.5, 0.5, 128), (1.3, 1.9, 256), (2.5, 4.1, 320)]


def entries():
    """Every entry as a dict of its identity plus a zero-argument model builder."""
    out = []
    for name, w, d, res, drop in B_TABLE:
        if name in ("b8", "l2"):
            src, ref = "timm", f"tf_efficientnet_{name}"
            build = (lambda ref=ref: common.build_timm(ref))
        else:
            src, ref = "torchvision", f"efficientnet_{name}"
            build = (lambda ref=ref: common.build_torchvision(ref))
        out.append(dict(id=name, name=name, family="efficientnet", source=src, reference=ref,
                        width=w, depth=d, resolution=res, input_h=res, input_w=res,
                        num_classes=1000, dropout=drop, build=build))
    for name, w, d, res, drop in LITE_TABLE:
        ref = f"tf_efficientnet_{name}"
        out.append(dict(id=name, name=name, family="lite", source="timm", reference=ref,
                        width=w, depth=d, resolution=res, input_h=res, input_w=res,
                        num_classes=1000, dropout=drop,
                        build=(lambda ref=ref: common.build_timm(ref))))
    # non-square input: only the MACs change
    out.append(dict(id="b0_h256_w320", name="b0", family="efficientnet", source="torchvision",
                    reference="efficientnet_b0", width=1.0, depth=1.0, resolution=224,
                    input_h=256, input_w=320, num_classes=1000, dropout=0.2,
                    build=lambda: common.build_torchvision("efficientnet_b0")))
    for w, d, res in CUSTOM:
        out.append(dict(id=f"custom_w{w:g}_d{d:g}_r{res}", name="custom", family="efficientnet",
                        source="torchvision",
                        reference=f"_efficientnet_conf('efficientnet_b0', width_mult={w:g}, "
                                  f"depth_mult={d:g}); EfficientNet(setting, 0.2, num_classes=10)",
                        width=w, depth=d, resolution=res, input_h=res, input_w=res,
                        num_classes=10, dropout=0.2,
                        build=(lambda w=w, d=d: common.build_torchvision(
                            width=w, depth=d, num_classes=10))))
    return out


def count_macs(model, h, w):
    """Multiply-adds of all Conv2d and Linear layers for one 3xHxW image (see module doc)."""
    total = [0]

    def conv_hook(m, _inp, out):
        kh, kw = m.kernel_size
        total[0] += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m, _inp, out):
        total[0] += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, h, w))
    finally:
        for hk in hooks:
            hk.remove()
    return total[0]


def measure(entry):
    """Build the entry's model (random init: counts do not depend on weights) and count."""
    torch.manual_seed(0)
    model = entry["build"]().eval()
    stem, head, stages = common.model_structure(model)
    rec = {k: v for k, v in entry.items() if k != "build"}
    rec.update(
        params=sum(p.numel() for p in model.parameters()),
        macs=count_macs(model, entry["input_h"], entry["input_w"]),
        stem=stem, head=head, blocks=sum(r for _, r in stages),
        stages=[{"out_channels": c, "repeats": r} for c, r in stages],
    )
    return rec


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="output JSON path")
    ap.add_argument("--exclude", default="", help="comma-separated ids to skip (e.g. l2)")
    ap.add_argument("--only", default="", help="comma-separated ids to keep")
    args = ap.parse_args()
    common.set_threads(2)
    exclude = set(filter(None, args.exclude.split(",")))
    only = set(filter(None, args.only.split(",")))
    records = []
    for e in entries():
        if e["id"] in exclude or (only and e["id"] not in only):
            continue
        t0 = time.time()
        rec = measure(e)
        records.append(rec)
        print(f"{rec['id']:22s} params {rec['params']:>11,d}  MACs {rec['macs'] / 1e9:9.4f} G"
              f"  ({time.time() - t0:.1f} s)", file=sys.stderr, flush=True)
    doc = {
        "generator": "tools/oracle/gen_counts.py",
        "versions": common.versions(),
        "variants": records,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
