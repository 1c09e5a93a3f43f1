#!/usr/bin/env python3
"""Generate training-parity fixtures: one PyTorch training step (loss, logits, every parameter
gradient, BN running statistics) and several optimizer steps, for effnet's C trainer to match.

Why: llm.c-style golden state. The C backward pass must equal autograd on the same model,
input and masks. The reference runs in float64 so effnet's float32 error is measured against
the exact answer. Dropout and stochastic-depth masks are not PyTorch's random ones: they are
drawn here with effnet's own counter-based generator (src/core/rng.h, transcribed below) and
applied to timm's model by hand, so both sides drop the same samples and features.

Each case directory holds:
  weights.safetensors   the model before the step (timm names: conv_stem, blocks.S.J.*, ...)
  expected.safetensors  input (N,H,W,3 NHWC), labels (N), loss (1), logits (N,K),
                        grad.<name> for each trainable tensor, running.<name> for BN statistics
                        after the step, and per optimizer <opt>: <opt>.losses (steps) and
                        <opt>.final.<name> (every trainable tensor after the steps)
  case.json             padding, eps, dropout, drop_path, label smoothing, bn momentum, seed,
                        step, the optimizers with their settings and per-step learning rates,
                        and the tolerances with their reasons

Usage: .venv/bin/python tools/oracle/gen_train_parity.py OUTDIR [--tier small|full]
"""

import argparse
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
STREAM_DROPOUT, STREAM_DROP_PATH = 4, 5
MAX_BLOCKS = 1024


def mix64(z):
    z = (z + GOLDEN) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


class Rng:
    """en_rng_make / en_rng_next_uniform of src/core/rng.h."""

    def __init__(self, seed, stream, counter):
        self.state = mix64(mix64(mix64(seed) ^ stream) ^ counter)

    def uniform(self):
        z = mix64(self.state)
        self.state = (self.state + GOLDEN) & M64
        return (z >> 40) / 16777216.0


def blocks_of(model):
    return [b for stage in model.blocks for b in stage]


def has_skip(block):
    return bool(getattr(block, "has_skip", getattr(block, "has_residual", False)))


def keep_masks(model, n, drop_path, seed, step):
    """Per-block per-sample multipliers, as draw_keep() in src/train/graph.c."""
    blocks = blocks_of(model)
    out = []
    for i, b in enumerate(blocks):
        rate = drop_path * i / len(blocks) if has_skip(b) else 0.0
        r = Rng(seed, STREAM_DROP_PATH, step * MAX_BLOCKS + i)
        keep = [1.0 if rate <= 0 else (0.0 if r.uniform() < rate else 1.0 / (1.0 - rate))
                for _ in range(n)]
        out.append(torch.tensor(keep, dtype=torch.float64).view(n, 1, 1, 1))
    return out


def dropout_mask(n, features, p, seed, step):
    p32 = float(np.float32(p))
    scale = float(np.float32(1.0) / (np.float32(1.0) - np.float32(p)))
    r = Rng(seed, STREAM_DROPOUT, step)
    vals = [1.0 if p32 <= 0 else (0.0 if r.uniform() < p32 else scale) for _ in range(n * features)]
    return torch.tensor(vals, dtype=torch.float64).view(n, features)


class Masked(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.keep = None

    def forward(self, x):
        return x if self.keep is None else x * self.keep.to(x.dtype)


def train_forward(model, x, cfg, step):
    """timm's forward in training mode with effnet's masks in place of its random ones."""
    n = x.shape[0]
    for b, keep in zip(blocks_of(model), keep_masks(model, n, cfg["drop_path"], cfg["seed"], step)):
        b.drop_path.keep = keep
    feats = model.forward_features(x)
    pooled = model.global_pool(feats)
    mask = dropout_mask(n, pooled.shape[1], cfg["dropout"], cfg["seed"], step)
    return model.classifier(pooled * mask.to(pooled.dtype))


def decay_groups(model, wd):
    """Weight decay on conv and linear weights only (ndim > 1), as src/train/optim.c."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    return [{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}]


def make_optimizer(model, spec):
    kind = spec["kind"]
    groups = decay_groups(model, spec["weight_decay"])
    if kind == "rmsprop":
        from timm.optim import RMSpropTF
        return RMSpropTF(groups, lr=spec["lrs"][0], alpha=spec["rms_decay"], eps=spec["eps"],
                         momentum=spec["momentum"])
    if kind in ("sgd", "nesterov"):
        return torch.optim.SGD(groups, lr=spec["lrs"][0], momentum=spec["momentum"],
                               nesterov=kind == "nesterov")
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=spec["lrs"][0], betas=(spec["beta1"], spec["beta2"]),
                                 eps=spec["eps"])
    raise ValueError(kind)


OPTIMIZERS = [
    {"kind": "rmsprop", "momentum": 0.9, "rms_decay": 0.9, "eps": 1e-3, "weight_decay": 1e-5,
     "lrs": [0.0004, 0.0006, 0.0005]},
    {"kind": "nesterov", "momentum": 0.9, "weight_decay": 1e-4, "lrs": [0.005, 0.008, 0.006]},
    {"kind": "adamw", "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.05,
     "lrs": [0.0002, 0.0003, 0.0001]},
]


def build(c):
    drop_path_module = {}
    model = common.seeded_model(
        lambda: common.build_timm("efficientnet_b0" if not c["lite"] else "efficientnet_lite0",
                                  width=c["width"], depth=c["depth"], lite=c["lite"],
                                  tf_style=c["tf_style"], num_classes=c["classes"]),
        c["seed"], (c["n"], 3, c["h"], c["w"]))
    for b in blocks_of(model):
        drop_path_module[id(b)] = b.drop_path
        b.drop_path = Masked()
    return model


def trainable_names(model):
    return [k for k, p in model.named_parameters()]


def one_step(model, x, y, cfg, step):
    model.train()
    model.zero_grad()
    logits = train_forward(model, x, cfg, step)
    loss = F.cross_entropy(logits, y, label_smoothing=cfg["label_smoothing"])
    loss.backward()
    return loss, logits


F32_RUNS = 3


def steps(model, state0, spec, x, y, cfg, dtype, perturb_seed):
    """The optimizer's steps from state0 in dtype: (losses as an array, final parameters);
    perturb_seed: every parameter first multiplied by 1 +- 2^-24 (random signs from it)."""
    model.load_state_dict(state0)
    m = model.to(dtype)
    if perturb_seed is not None:
        g = torch.Generator().manual_seed(perturb_seed)
        with torch.no_grad():
            for p in m.parameters():
                signs = torch.where(torch.rand(p.shape, generator=g) < 0.5, -1.0, 1.0)
                p.mul_(1 + signs.to(dtype) * 2.0 ** -24)
    opt = make_optimizer(m, spec)
    losses = []
    for t, lr in enumerate(spec["lrs"]):
        for group in opt.param_groups:
            group["lr"] = lr
        loss, _ = one_step(m, x.to(dtype), y, cfg, t)
        opt.step()
        losses.append(loss.item())
    return np.array(losses), {k: p.detach().clone() for k, p in m.named_parameters()}


def generate(c, outdir):
    case_dir = os.path.join(outdir, c["name"])
    os.makedirs(case_dir, exist_ok=True)
    torch.manual_seed(c["seed"])
    model = build(c)
    common.export_state_dict(model, os.path.join(case_dir, "weights.safetensors"))
    g = torch.Generator().manual_seed(c["seed"] + 7)
    x = torch.randn(c["n"], 3, c["h"], c["w"], generator=g)
    y = torch.randint(0, c["classes"], (c["n"],), generator=g)
    state0 = {k: v.clone() for k, v in model.state_dict().items()}
    m64 = model.double()
    loss, logits = one_step(m64, x.double(), y, c, c["step"])
    out = {"input": x.permute(0, 2, 3, 1).contiguous(), "labels": y.float(),
           "loss": loss.detach().view(1), "logits": logits.detach()}
    for k, p in m64.named_parameters():
        out["grad." + k] = p.grad.detach().clone()
    # Tensors whose gradient is zero in exact arithmetic (float64: ~1e-17 of the largest): the
    # bias of a BN that feeds a conv and another training-mode BN. Optimizers that normalise
    # the step (RMSProp, Adam) turn any rounding noise there into a full-size step of random
    # sign, so their final values are not comparable and the C test skips them.
    gmax = max(p.grad.abs().max().item() for p in m64.parameters())
    null_grads = [k for k, p in m64.named_parameters() if p.grad.abs().max().item() < 1e-10 * gmax]
    for k, v in m64.state_dict().items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            out["running." + k] = v.clone()
    # torch's own float32 gradient error: the yardstick for cases where float32 rounding moves
    # an activation across a ReLU6 kink (its gradient then differs by the full local slope)
    model.load_state_dict(state0)
    m32 = model.float()
    one_step(m32, x, y, c, c["step"])
    f32_grad = max(float((p.grad.double() - out["grad." + k]).abs().max())
                   / max(float(out["grad." + k].abs().max()), 1e-3 * gmax)
                   for k, p in m32.named_parameters())
    # several steps per optimizer from the same start, no masks (dropout/drop-path 0); run in
    # float64 (the expected values) and in float32 (torch's own error, the yardstick for the
    # tolerance: a few steps of training-mode BN on a tiny batch amplify rounding). float32 runs
    # F32_RUNS times, every weight of all but the first run moved by one float32 rounding
    # (x (1 +- 2^-24)): any float32 engine differs from torch by such roundings, and where the
    # steps amplify them one run's error says little (timm_b0_64_batch2, nesterov, step 2:
    # 1e-4 unperturbed, 3.3e-4 .. 1.1e-3 in three perturbed runs); the largest error counts.
    plain = dict(c, dropout=0.0, drop_path=0.0)
    f32_err, f32_loss_err = {}, {}
    for spec in OPTIMIZERS:
        ref_losses, ref_final = steps(model, state0, spec, x, y, plain, torch.float64, None)
        out[spec["kind"] + ".losses"] = torch.tensor(ref_losses)
        for k, v in ref_final.items():
            out[spec["kind"] + ".final." + k] = v
        loss_errs, final_errs = [], []
        for run in range(F32_RUNS):
            losses, final = steps(model, state0, spec, x, y, plain, torch.float32,
                                  None if run == 0 else c["seed"] * 31 + run)
            loss_errs.append(float(np.max(np.abs(losses - ref_losses) / np.abs(ref_losses))))
            final_errs.append(max(common.rel_err(final[k].numpy(), ref_final[k].numpy())
                                  for k in ref_final if k not in null_grads))
        f32_loss_err[spec["kind"]] = max(loss_errs)
        f32_err[spec["kind"]] = max(final_errs)
    out = {k: v.float() for k, v in out.items()}
    common.write_safetensors(os.path.join(case_dir, "expected.safetensors"), out)
    meta = {k: c[k] for k in ("padding", "eps", "dropout", "drop_path", "label_smoothing",
                              "bn_momentum", "seed", "step", "n", "h", "w", "classes")}
    meta["optimizers"] = OPTIMIZERS
    meta["null_gradients"] = null_grads
    meta["torch_f32_final_err"] = f32_err
    meta["torch_f32_loss_err"] = f32_loss_err
    meta["torch_f32_grad_err"] = f32_grad
    meta["tolerance"] = {
        "loss": 1e-5, "logits": 1e-4, "grad": 2e-3, "grad_floor": 1e-3, "running": 1e-5,
        "final": 1e-4, "steps_loss": 1e-3,
        "why": "float32 forward/backward vs a float64 reference; errors are relative to the "
               "largest magnitude of each tensor. Gradients pass through ~20 BN layers in "
               "training mode, each dividing by a batch standard deviation, so their float32 "
               "error is ~1e-4 of scale; 2e-3 leaves room for summation order while a wrong "
               "term (a missing path, a transposed kernel, a wrong mask) gives O(1). "
               "grad_floor: gradient errors are relative to max(the tensor's scale, 1e-3 x the "
               "largest gradient of the model), because some gradients are zero in exact "
               "arithmetic (the bias of a BN feeding a conv and another training-mode BN) "
               "and their float32 value is rounding noise of the other terms. "
               "steps_loss / final (several optimizer steps): max(value, 10 x torch's own "
               "float32 error on the same steps, the largest of its runs from weights one "
               "float32 rounding apart); each step feeds float32 rounding (~3e-5 of the "
               "gradients, torch float32 has the same) through training-mode BN on a batch "
               "of 4, so the curves drift apart by ~1e-4 after two steps, and by up to 1e-3 "
               "where a large step amplifies it."}
    with open(os.path.join(case_dir, "case.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{c['name']}: loss {loss.item():.6f}, {sum(p.numel() for p in model.parameters())} params")


def case(name, **kw):
    c = {"name": name, "width": 0.25, "depth": 0.5, "lite": False, "tf_style": False,
         "classes": 10, "n": 4, "h": 32, "w": 40, "padding": "symmetric", "eps": 1e-5,
         "dropout": 0.2, "drop_path": 0.3, "label_smoothing": 0.1, "bn_momentum": 0.1,
         "seed": 11, "step": 3}
    c.update(kw)
    return c


CASES = {
    "small": [case("timm_w01_d05_32x40", width=0.1, classes=5)],
    "full": [
        case("timm_w025_d05_32x40"),
        case("tf_same_w03_d06_33x29", width=0.3, depth=0.6, tf_style=True, padding="same",
             eps=1e-3, n=3, h=33, w=29, seed=23, step=0, label_smoothing=0.0),
        case("lite_w025_d05_40x40", lite=True, tf_style=True, padding="same", eps=1e-3,
             h=40, w=40, seed=31, dropout=0.0, drop_path=0.0),
        case("timm_b0_64_batch2", width=1.0, depth=1.0, n=2, h=64, w=64, seed=41,
             classes=7),
    ],
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("outdir")
    ap.add_argument("--tier", default="small", choices=sorted(CASES))
    args = ap.parse_args()
    common.set_threads(2)
    torch.use_deterministic_algorithms(True)
    for c in CASES[args.tier]:
        generate(c, args.outdir)


if __name__ == "__main__":
    main()
