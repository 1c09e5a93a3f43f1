#!/usr/bin/env python3
"""Generate forward-parity fixtures: weights, inputs, exact logits and per-stage activations.

Why: the C forward pass must reproduce torchvision's and timm's EfficientNets (both padding
conventions, both BN epsilons, SE and Lite variants, odd and non-square sizes, batches). Each
case is one model with seeded random weights and a seeded N(0,1) input; the expected outputs
are computed in float64 so the C float32 result is measured against the exact answer, and
torch's own float32 error is recorded next to it as a yardstick.

Layout of OUTDIR:
  manifest.tsv       header line, then one tab-separated row per case:
    case model padding eps weights input logits stages tol torch_f32_err note
      model     `-` (infer the architecture from the weights) or a timm/torchvision name
      padding   auto | symmetric | same      eps   BN epsilon, 0 = auto
      weights   a .safetensors file, or a folder holding model.safetensors + config.json
                (the Hugging Face hub layout timm uses)
      input     float32 NCHW .npy     logits   float32 (N, classes) .npy (float64 run)
      stages    folder with stem.npy, stage1..stage7.npy, head.npy (float64 run, float32,
                NCHW): stem = after stem conv+BN+act; stageK = output of MBConv stage K;
                head = after the 1x1 head conv+BN+act, before pooling
      tol       bound on max|effnet - expected| / max|expected| for logits and every stage
      torch_f32_err   the same metric for torch's own float32 run (logits)
  CASE/weights.safetensors, CASE/input.npy, CASE/logits.npy, CASE/stages/*.npy

Sizes in case names are HxW. Every path in the manifest is relative to OUTDIR.

Usage:
  .venv/bin/python tools/oracle/gen_parity.py --tier small tests/fixtures/small
  .venv/bin/python tools/oracle/gen_parity.py --tier full build/fixtures/full [--cases a,b]
"""

import argparse
import json
import os
import shutil
import sys
import time
import zlib

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

DEFAULT_TOL = 1e-4
MANIFEST_COLUMNS = ["case", "model", "padding", "eps", "weights", "input", "logits", "stages",
                    "tol", "torch_f32_err", "note"]


def _tv(name=None, width=None, depth=None, classes=1000):
    return lambda: common.build_torchvision(name, width=width, depth=depth, num_classes=classes)


class _timm:
    """Builder of a timm model; `with_(pad_type=...)` builds it with overrides (used by --verify
    to show that the other padding convention misses the fixture)."""

    def __init__(self, name, width=None, depth=None, lite=False, tf_style=None, classes=1000):
        self.args = (name, width, depth)
        self.kw = dict(lite=lite, tf_style=tf_style, num_classes=classes)
        self.padding = "same" if (tf_style or (width is None and name.startswith("tf_"))) else ""

    def __call__(self, **overrides):
        return common.build_timm(*self.args, **self.kw, **overrides)


def case(name, build, n, h, w, model="-", padding="auto", eps=0.0, note="", hub=None,
         share=None):
    """One fixture case. `hub` = timm architecture name: write the weights as a HF-hub folder
    (model.safetensors + config.json) instead of a single file. `share` = name of an earlier
    case of the same tier whose model (same builder) and weights file this case reuses, to keep
    the committed tier small; generating this case also generates that one."""
    return dict(name=name, build=build, shape=(n, 3, h, w), model=model, padding=padding,
                eps=eps, note=note, hub=hub, share=share)


# Small tier: committed under tests/fixtures/small (kept near 4 MB: weights dominate, so the
# members are narrow and the two TF-SAME cases share one model). Tiny custom members with few
# classes; depth 0.34/0.5 gives repeats 1,1,1,2,2,2,1 so in-stage residuals are exercised; sizes
# chosen so the stride-2 convs meet both odd and even sides, the only place TF-SAME and
# symmetric padding differ (reference doc §1.5).
SMALL = [
    case("tv_w0.25_d0.34_64x48_n2", _tv(width=0.25, depth=0.34, classes=10), 2, 64, 48,
         padding="symmetric", eps=1e-5,
         note="torchvision custom member (stem 8, first block 8->8 has a skip); builder eps 1e-5"),
    case("tv_w0.3_d0.5_33x47", _tv(width=0.3, depth=0.5, classes=5), 1, 33, 47,
         padding="symmetric", eps=1e-5,
         note="torchvision custom member, odd sides; rounding: stem 9.6->16 (+8 rule), "
              "stage6 57.6->56, stage5 33.6->32 (down)"),
    case("timm_tf_w0.25_d0.34_65x47_n2", _timm("tf_efficientnet_b0", 0.25, 0.34, tf_style=True,
                                               classes=7), 2, 65, 47,
         padding="same", eps=1e-3,
         note="timm tf_ member: TF-SAME; odd input, inner stride-2 convs see 24, 12, 6 (even)"),
    case("timm_tf_w0.25_d0.34_64x64", _timm("tf_efficientnet_b0", 0.25, 0.34, tf_style=True,
                                            classes=7), 1, 64, 64,
         padding="same", eps=1e-3, share="timm_tf_w0.25_d0.34_65x47_n2",
         note="same model as the 65x47 case; TF-SAME on all-even sides (pads 0/1 for k3, "
              "1/2 for k5)"),
    case("timm_lite_w0.2_d0.34_48x33_n2", _timm("tf_efficientnet_lite0", 0.2, 0.34, lite=True,
                                                tf_style=True, classes=6), 2, 48, 33,
         padding="same", eps=1e-3,
         note="timm tf lite member: ReLU6, no SE, stem 32 and head 1280 fixed, TF-SAME"),
    case("timm_w0.2_d0.34_57x40_n2", _timm("efficientnet_b0", 0.2, 0.34, tf_style=False,
                                           classes=4), 2, 57, 40,
         padding="symmetric", eps=1e-5,
         note="timm non-tf member: symmetric padding, eps 1e-5, timm tensor names"),
]

_TV_RES = {0: 224, 1: 240, 2: 260, 3: 300, 4: 380, 5: 456, 6: 528, 7: 600}

# Full tier: generated at test time into the build folder, never committed.
FULL = [
    case(f"tv_b{i}_{r}x{r}", _tv(f"efficientnet_b{i}"), 1, r, r,
         note=("torchvision B%d: auto must give symmetric padding, eps %s"
               % (i, "1e-3 (torchvision B5-B7 BN)" if i >= 5 else "1e-5")))
    for i, r in _TV_RES.items()
] + [
    case("tv_b0_192x256_n2", _tv("efficientnet_b0"), 2, 192, 256,
         note="torchvision B0 non-square, batch 2"),
    case("tv_b0_224x224_n3", _tv("efficientnet_b0"), 3, 224, 224,
         note="torchvision B0 batch 3"),
    case("timm_tf_b0_hub_224x224", _timm("tf_efficientnet_b0"), 1, 224, 224,
         hub="tf_efficientnet_b0",
         note="HF-hub folder; config.json architecture tf_efficientnet_b0 -> TF-SAME, eps 1e-3"),
    case("timm_tf_b0_225x199", _timm("tf_efficientnet_b0"), 1, 225, 199,
         model="tf_efficientnet_b0", note="TF-SAME with odd sides (113x100 after stem)"),
    case("timm_tf_lite0_224x224", _timm("tf_efficientnet_lite0"), 1, 224, 224,
         model="tf_efficientnet_lite0", note="timm Lite0: ReLU6, no SE, TF-SAME, eps 1e-3"),
    case("timm_b0_224x224", _timm("efficientnet_b0"), 1, 224, 224, model="efficientnet_b0",
         note="timm non-tf B0: symmetric padding, eps 1e-5, timm tensor names"),
]

TIERS = {"small": SMALL, "full": FULL}


def case_seed(name):
    """A stable per-case seed, so generating a subset (--cases) gives identical files."""
    return zlib.crc32(name.encode("utf-8")) & 0x7FFFFFFF


def write_weights(model, case_dir, hub):
    """Export the state_dict; returns the weights path relative to the case folder."""
    if hub is None:
        common.export_state_dict(model, os.path.join(case_dir, "weights.safetensors"))
        return "weights.safetensors"
    hub_dir = os.path.join(case_dir, "hub")
    os.makedirs(hub_dir, exist_ok=True)
    common.export_state_dict(model, os.path.join(hub_dir, "model.safetensors"))
    write_hub_config(model, hub, os.path.join(hub_dir, "config.json"))
    return "hub"


def write_hub_config(model, architecture, path):
    """config.json as timm writes it for the HF hub (timm.models._hub.save_config_for_hf), so
    the C loader meets the real field names; falls back to the minimal fields if that helper
    changes."""
    try:
        from timm.models._hub import save_config_for_hf
        save_config_for_hf(model, path)
        with open(path) as f:
            cfg = json.load(f)
        if cfg.get("architecture") == architecture:
            return
    except Exception as e:  # pragma: no cover - depends on the timm version
        print(f"warning: timm config writer failed ({e}); writing minimal config",
              file=sys.stderr)
    cfg = {"architecture": architecture, "num_classes": model.num_classes,
           "num_features": model.num_features,
           "pretrained_cfg": {"input_size": [3, 224, 224], "first_conv": "conv_stem",
                              "classifier": "classifier"}}
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2)


def generate_case(c, outdir, owner=None):
    """Build, export and run one case (`owner`: the case whose model it shares); returns its
    manifest row (dict)."""
    t0 = time.time()
    seed = case_seed(c["name"])
    n, ch, h, w = c["shape"]
    case_dir = os.path.join(outdir, c["name"])
    if os.path.isdir(case_dir):
        shutil.rmtree(case_dir)
    os.makedirs(os.path.join(case_dir, "stages"))

    # the model's identity (seed, calibration batch at the owner's size: see
    # common.randomise_model) comes from the owner when weights are shared; 4 calibration
    # images for tiny inputs (few pixels per channel in the last stages), 2 from 128x128 up
    src = owner or c
    _, _, oh, ow = src["shape"]
    calib_n = 4 if oh * ow < 128 * 128 else 2
    model = common.seeded_model(src["build"], case_seed(src["name"]), (calib_n, ch, oh, ow))
    if owner is None:
        weights = c["name"] + "/" + write_weights(model, case_dir, c["hub"])
    else:
        weights = owner["name"] + "/weights.safetensors"
        stored, _ = common.read_safetensors(os.path.join(outdir, weights))
        for k, v in model.state_dict().items():
            if not np.array_equal(stored[k], v.numpy()):
                raise RuntimeError(f"{c['name']}: shared weights differ from {weights} at {k}")

    x = np.random.default_rng(seed).standard_normal((n, ch, h, w)).astype(np.float32)
    np.save(os.path.join(case_dir, "input.npy"), x)
    xt = torch.from_numpy(x)

    logits32, stages32 = common.run_with_stages(model, xt)
    model64 = common.double_copy(model)
    with common.threads(1):
        logits64, stages64 = common.run_with_stages(model64, xt.double())
    del model64

    np.save(os.path.join(case_dir, "logits.npy"), logits64.numpy().astype(np.float32))
    for k, v in stages64.items():
        np.save(os.path.join(case_dir, "stages", k + ".npy"), v.numpy().astype(np.float32))

    f32_err = common.rel_err(logits32.numpy(), logits64.numpy())
    stage_errs = {k: common.rel_err(stages32[k].numpy(), v.numpy()) for k, v in stages64.items()}
    worst_stage = max(stage_errs, key=stage_errs.get)
    std = float(logits64.std())
    spread = float((logits64 - logits64.mean(0, keepdim=True)).abs().max()) if n > 1 else None
    if not (0.05 <= std <= 50.0):
        raise RuntimeError(f"{c['name']}: logit std {std:.3g} outside [0.05, 50]; "
                           "adjust the randomisation in common.randomise_model")
    tol = DEFAULT_TOL
    note = c["note"]
    worst = max(f32_err, stage_errs[worst_stage])
    if 10 * worst > tol:
        # keep a 10x margin over torch's own float32 error (logits or any stage): a correct
        # float32 implementation with another summation order lands near it, not below it
        tol = float(f"{10 * worst:.1g}")
        if tol < 10 * worst:
            tol = float(f"{tol * 1.5:.1g}")
        note += (f"; tol = 10x torch's own float32 error (worst: "
                 f"{'logits' if f32_err >= stage_errs[worst_stage] else worst_stage} {worst:.2g})")
    stage_info = " ".join(f"{k}:{float(v.std()):.2g}" for k, v in stages64.items())
    print(f"{c['name']:32s} logits {tuple(logits64.shape)} std {std:.3g} max {float(logits64.abs().max()):.3g}"
          + (f" batch-spread {spread:.3g}" if spread is not None else "")
          + f"  f32_err {f32_err:.2e} (stages: {worst_stage} {stage_errs[worst_stage]:.2e})"
          + f"  ({time.time() - t0:.1f} s)\n    stage std {stage_info}",
          file=sys.stderr, flush=True)
    return {
        "case": c["name"], "model": c["model"], "padding": c["padding"],
        "eps": "0" if not c["eps"] else f"{c['eps']:g}",
        "weights": weights, "input": f"{c['name']}/input.npy",
        "logits": f"{c['name']}/logits.npy", "stages": f"{c['name']}/stages",
        "tol": f"{tol:g}", "torch_f32_err": f"{f32_err:.3g}", "note": note,
    }


def _rebuilt(c, weights_path, **timm_overrides):
    """A fresh model of the case's architecture with the stored weights loaded (float64)."""
    model = c["build"](**timm_overrides)
    if os.path.isdir(weights_path):
        weights_path = os.path.join(weights_path, "model.safetensors")
    stored, _ = common.read_safetensors(weights_path)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in stored.items()})
    return model.double().eval()


def verify_case(c, row, outdir):
    """Check a generated case from its files alone: the stored weights, run in float64 on the
    stored input, must give the stored logits and stages; and the case must discriminate, i.e.
    the other BN eps (and, for timm, the other padding) must miss the tolerance by far.
    Returns a one-line report."""
    x = torch.from_numpy(np.load(os.path.join(outdir, row["input"]))).double()
    ref = np.load(os.path.join(outdir, row["logits"]))
    tol = float(row["tol"])
    model = _rebuilt(c, os.path.join(outdir, row["weights"]))
    with common.threads(1):
        logits, stages = common.run_with_stages(model, x)
    err = common.rel_err(logits.numpy(), ref)
    serr = max(common.rel_err(v.numpy(), np.load(os.path.join(outdir, row["stages"], k + ".npy")))
               for k, v in stages.items())
    if err > 1e-6 or serr > 1e-6:
        raise RuntimeError(f"{c['name']}: files inconsistent (logits {err:.2e}, stages {serr:.2e})")
    eps_now = {m.eps for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = 1e-5 if m.eps > 1e-4 else 1e-3
    with common.threads(1):
        eps_err = common.rel_err(common.run_with_stages(model, x)[0].numpy(), ref)
    report = f"{c['name']:32s} files ok; eps {sorted(eps_now)} swapped -> err {eps_err:.2e}"
    if eps_err < 10 * tol:
        raise RuntimeError(f"{c['name']}: does not discriminate BN eps ({eps_err:.2e})")
    if isinstance(c["build"], _timm):
        other = "" if c["build"].padding == "same" else "same"
        pmodel = _rebuilt(c, os.path.join(outdir, row["weights"]), pad_type=other)
        with common.threads(1):
            pad_err = common.rel_err(common.run_with_stages(pmodel, x)[0].numpy(), ref)
        report += f"; padding {'symmetric' if other == '' else 'same'} -> err {pad_err:.2e}"
        if pad_err < 10 * tol:
            raise RuntimeError(f"{c['name']}: does not discriminate padding ({pad_err:.2e})")
    return report


def read_manifest(path):
    if not os.path.exists(path):
        return {}
    rows = {}
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            vals = line.rstrip("\n").split("\t")
            rows[vals[0]] = dict(zip(header, vals))
    return rows


def write_manifest(path, rows, order):
    """Rows in the tier's canonical order; rows of cases not regenerated this run are kept
    when their folder still exists, so --cases can refresh a subset in place."""
    with open(path, "w") as f:
        f.write("\t".join(MANIFEST_COLUMNS) + "\n")
        for name in order:
            if name in rows:
                r = rows[name]
                f.write("\t".join(str(r[k]).replace("\t", " ") for k in MANIFEST_COLUMNS) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--tier", choices=sorted(TIERS), required=True)
    ap.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    ap.add_argument("--list", action="store_true", help="print the tier's case names and exit")
    ap.add_argument("--verify", action="store_true",
                    help="instead of generating, check OUTDIR's cases from their files alone "
                         "and show that the wrong eps/padding misses them")
    args = ap.parse_args()

    cases = TIERS[args.tier]
    order = [c["name"] for c in cases]
    if args.list:
        print("\n".join(order))
        return
    if args.outdir is None:
        ap.error("OUTDIR is required")
    wanted = [s for s in args.cases.split(",") if s]
    unknown = sorted(set(wanted) - set(order))
    if unknown:
        raise SystemExit(f"unknown case(s) for tier {args.tier}: {', '.join(unknown)}")
    owners = {c["share"] for c in cases if c["share"] and (not wanted or c["name"] in wanted)}
    todo = [c for c in cases if not wanted or c["name"] in wanted or c["name"] in owners]
    by_name = {c["name"]: c for c in cases}

    common.set_threads(2)
    torch.use_deterministic_algorithms(True)
    manifest = os.path.join(args.outdir, "manifest.tsv")
    if args.verify:
        rows = read_manifest(manifest)
        for c in todo:
            if c["name"] in rows:
                print(verify_case(c, rows[c["name"]], args.outdir), flush=True)
        return
    os.makedirs(args.outdir, exist_ok=True)
    rows = {k: v for k, v in read_manifest(manifest).items()
            if os.path.isdir(os.path.join(args.outdir, k))}
    t0 = time.time()
    for c in todo:
        owner = by_name[c["share"]] if c["share"] else None
        rows[c["name"]] = generate_case(c, args.outdir, owner)
        write_manifest(manifest, rows, order)  # after each case: a crash leaves a valid file
    print(f"{len(todo)} case(s) in {time.time() - t0:.1f} s -> {args.outdir}", file=sys.stderr)


if __name__ == "__main__":
    main()
