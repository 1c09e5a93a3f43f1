"""Write tests/fixtures/optim/optim.safetensors, the oracle of tests/test_optim.c.

  .venv/bin/python tools/oracle/gen_optim_fixtures.py [OUTDIR]     (default tests/fixtures/optim)

Optimizers: the reference implementations themselves run the updates, in float32 on CPU:
timm.optim.RMSpropTF (what timm trains EfficientNet with; TF's RMSProp semantics), and
torch.optim.SGD / AdamW. The parameter set is a miniature of an en_params table, in table order:

    conv.weight (4,3,3,3)  bn.weight (4)  bn.bias (4)  bn.running_mean (4, not trainable)
    fc.weight (5,7)        fc.bias (5)

Weight decay applies to ndim > 1 only (two param groups, as timm's param_groups_weight_decay
and the C optimizer). Each run takes 5 steps with a fixed sequence of random gradients and a
learning rate that changes every step (a schedule feeds the C optimizer a new lr each step, so a
stale or cached lr would show). Runs use weight decay 0.1 except "rmsprop_paper": at the
paper's 1e-5 decay a weight's decay term is 1e-7 of its update, below any float32 tolerance, so
decay applied to the wrong tensors or in the wrong place would pass unnoticed.

Gradients are given for the running mean too (the C step receives a full-size gradient block);
torch never sees them, so the C test checks that entry stays bit-identical.

Tensors written (F32; flattened per run, tensors concatenated in table order, no padding):
    init (160)               parameters before the first step
    grads (5, 160)           gradient of each step
    lr (5)                   learning rate of each step (float32 values, used as-is by torch)
    run.NAME (5, 160)        parameters after each step, NAME in rmsprop_paper, rmsprop, sgd,
                             nesterov, adamw
    sched.NAME.epoch (K), sched.NAME.lr (K)   schedule samples, NAME in exp, cosine, constant
    ema.w (T, 37), ema.NAME (T, 37)           EMA inputs and expected shadows after each update,
                                              NAME in slow (decay 0.9999), fast (decay 0.5)
Metadata holds every hyperparameter as "run.NAME.FIELD" / "sched.NAME.FIELD" strings (repr of
the Python value) so the C test configures itself from the file, and the library versions.

Schedules are transcribed from their definitions, independently of the C code:
    EXP      TF efficientnet utils.build_learning_rate: tf.train.exponential_decay(base,
             global_step, steps_per_epoch * decay_epochs, rate, staircase=True), counted from
             step 0, warm-up included; warm-up (linear from warmup_lr) overrides it while
             epoch < warmup_epochs, as tf.cond(global_step < warmup_steps, ...) does.
    COSINE   timm.scheduler.CosineLRScheduler(t_initial = total - warmup, lr_min, warmup_t,
             warmup_lr_init, warmup_prefix=True), evaluated by timm itself (_get_lr) and
             asserted equal to the closed form.
    CONSTANT base_lr after the same linear warm-up.
EMA: TF ExponentialMovingAverage(decay, num_updates=t): d = min(decay, (1 + t) / (10 + t)),
shadow -= (1 - d) * (shadow - value), in float32 (TF's variables); t = 1 at the first update
(TF passes global_step, already incremented by the train op the EMA depends on).
"""
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import read_safetensors, set_threads, versions, write_safetensors  # noqa: E402

SHAPES = [("conv.weight", (4, 3, 3, 3), True), ("bn.weight", (4,), True),
          ("bn.bias", (4,), True), ("bn.running_mean", (4,), False),
          ("fc.weight", (5, 7), True), ("fc.bias", (5,), True)]
STEPS = 5
LRS = [0.02, 0.05, 0.035, 0.01, 0.045]

RUNS = {
    # kind, hyperparameters (names as en_optim_config's fields)
    "rmsprop_paper": ("rmsprop", dict(momentum=0.9, rms_decay=0.9, eps=1e-3, weight_decay=1e-5)),
    "rmsprop": ("rmsprop", dict(momentum=0.9, rms_decay=0.9, eps=1e-3, weight_decay=0.1)),
    "sgd": ("sgd", dict(momentum=0.9, nesterov=0, weight_decay=0.1)),
    "nesterov": ("sgd", dict(momentum=0.9, nesterov=1, weight_decay=0.1)),
    "adamw": ("adamw", dict(beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.1)),
}


def make_params(rng):
    """Initial values and 5 gradients, scaled per tensor like a real network (small conv
    gradients, larger BN ones) so RMSProp's normalisation differs between tensors; a few
    gradient elements are exactly 0 (a dead unit) and one is large."""
    init, grads = [], []
    scale_w = {"conv.weight": 0.5, "bn.weight": None, "bn.bias": 0.2, "bn.running_mean": 1.0,
               "fc.weight": 0.3, "fc.bias": 0.1}
    scale_g = {"conv.weight": 0.05, "bn.weight": 1.0, "bn.bias": 0.5, "bn.running_mean": 1.0,
               "fc.weight": 0.2, "fc.bias": 2.0}
    for name, shape, _ in SHAPES:
        if scale_w[name] is None:
            w = rng.uniform(0.5, 1.5, shape)
        else:
            w = rng.normal(0.0, scale_w[name], shape)
        init.append(w.astype(np.float32).ravel())
        g = rng.normal(0.0, scale_g[name], (STEPS,) + shape).astype(np.float32)
        grads.append(g.reshape(STEPS, -1))
    init = np.concatenate(init)
    assert init.size == 160  # offsets: conv 0, bn.weight 108, bn.bias 112, mean 116, fc 120, 155
    grads = np.concatenate(grads, axis=1)
    grads[:, 3] = 0.0          # one conv element never receives a gradient
    grads[2, 110] = 0.0        # bn.weight[2] gets a zero gradient at step 3
    grads[1, 130] *= 50.0      # one large fc.weight gradient
    return init, grads


def torch_optimizer(kind, hp, decay, no_decay, lr):
    groups = [{"params": decay, "weight_decay": hp["weight_decay"]},
              {"params": no_decay, "weight_decay": 0.0}]
    if kind == "rmsprop":
        from timm.optim import RMSpropTF
        # single-tensor path: the documented op order the C code transcribes (the foreach path
        # is the same elementwise arithmetic)
        return RMSpropTF(groups, lr=lr, alpha=hp["rms_decay"], eps=hp["eps"],
                         momentum=hp["momentum"], decoupled_decay=False, lr_in_momentum=True,
                         foreach=False)
    if kind == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=hp["momentum"], dampening=0,
                               nesterov=bool(hp["nesterov"]), foreach=False)
    if kind == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                                 amsgrad=False, foreach=False)
    raise ValueError(kind)


def run_optimizer(kind, hp, init, grads, lrs):
    tensors, off = [], 0
    for name, shape, trainable in SHAPES:
        n = int(np.prod(shape))
        t = torch.tensor(init[off:off + n].reshape(shape), dtype=torch.float32)
        tensors.append((name, shape, trainable, off, n,
                        torch.nn.Parameter(t) if trainable else t))
        off += n
    decay = [p for _, shape, tr, _, _, p in tensors if tr and len(shape) > 1]
    no_decay = [p for _, shape, tr, _, _, p in tensors if tr and len(shape) <= 1]
    opt = torch_optimizer(kind, hp, decay, no_decay, lrs[0])
    out = np.zeros((STEPS, init.size), np.float32)
    for s in range(STEPS):
        for _, shape, tr, o, n, p in tensors:
            if tr:
                p.grad = torch.tensor(grads[s, o:o + n].reshape(shape))
        for g in opt.param_groups:
            g["lr"] = lrs[s]
        opt.step()
        for _, _, _, o, n, p in tensors:
            out[s, o:o + n] = p.detach().numpy().ravel()
    return out


# --------------------------------------------------------------------------------- schedules

SCHEDS = {
    # the paper's recipe at batch 256 (0.016 = 0.256 * 256 / 4096); warm-up from 0 as TF
    "exp": dict(kind="exp", base_lr=0.016, warmup_epochs=5.0, warmup_lr=0.0, decay_rate=0.97,
                decay_epochs=2.4, total_epochs=350.0, min_lr=0.0),
    "cosine": dict(kind="cosine", base_lr=0.1, warmup_epochs=3.0, warmup_lr=1e-4,
                   decay_rate=0.0, decay_epochs=0.0, total_epochs=50.0, min_lr=1e-5),
    "constant": dict(kind="constant", base_lr=0.05, warmup_epochs=2.0, warmup_lr=0.01,
                     decay_rate=0.0, decay_epochs=0.0, total_epochs=0.0, min_lr=0.0),
}
# Sampled epochs are float32 values (the file is float32) kept away from staircase edges: at
# 7.2 = 3 * 2.4 the floor depends on the last bit (7.2 / 2.4 is 3.0000000000000004 in double,
# float32(7.2) / 2.4 is 2.9999999), which no two implementations need to agree on. Warm-up ends
# and the cosine end are sampled exactly (5.0, 3.0, 50.0 are exact).
EPOCHS = {
    "exp": [0.0, 0.5, 2.5, 4.99, 5.0, 5.5, 7.1875, 7.25, 9.5, 9.75, 100.0, 349.9],
    "cosine": [0.0, 1.5, 2.999, 3.0, 3.5, 10.0, 26.5, 40.0, 49.9, 50.0, 60.0],
    "constant": [0.0, 0.4, 1.0, 1.999, 2.0, 3.0, 100.0],
}
EPOCHS = {k: [float(np.float32(e)) for e in v] for k, v in EPOCHS.items()}


def warmup(s, e):
    return s["warmup_lr"] + (s["base_lr"] - s["warmup_lr"]) * e / s["warmup_epochs"]


def sched_exp(s, e):
    if e < s["warmup_epochs"]:
        return warmup(s, e)
    return s["base_lr"] * s["decay_rate"] ** math.floor(e / s["decay_epochs"])


def sched_cosine(s, e):
    if e < s["warmup_epochs"]:
        return warmup(s, e)
    t = (e - s["warmup_epochs"]) / (s["total_epochs"] - s["warmup_epochs"])
    if t >= 1.0:
        return s["min_lr"]
    return s["min_lr"] + 0.5 * (s["base_lr"] - s["min_lr"]) * (1 + math.cos(math.pi * t))


def sched_constant(s, e):
    return warmup(s, e) if e < s["warmup_epochs"] else s["base_lr"]


def timm_cosine(s, epochs):
    from timm.scheduler import CosineLRScheduler
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=s["base_lr"])
    sch = CosineLRScheduler(opt, t_initial=s["total_epochs"] - s["warmup_epochs"],
                            lr_min=s["min_lr"], warmup_t=s["warmup_epochs"],
                            warmup_lr_init=s["warmup_lr"], warmup_prefix=True, cycle_limit=1)
    return [sch._get_lr(e)[0] for e in epochs]


# --------------------------------------------------------------------------------------- EMA

EMA_N, EMA_T = 37, 12
EMAS = {"slow": 0.9999, "fast": 0.5}


def ema_sequence(ws, decay):
    shadow = ws[0].copy()  # the shadow starts as a copy of the variable (TF initialises it so)
    out = np.zeros_like(ws)
    for k in range(ws.shape[0]):
        t = k + 1
        d = min(decay, (1.0 + t) / (10.0 + t))
        shadow = shadow - np.float32(1.0 - d) * (shadow - ws[k])
        out[k] = shadow
    return out


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/optim"
    set_threads(1)
    rng = np.random.default_rng(20240611)
    init, grads = make_params(rng)
    lrs = np.array(LRS, np.float32)
    lrs_py = [float(x) for x in lrs]  # the exact float32 values, as the C test passes them
    tensors = {"init": torch.from_numpy(init), "grads": torch.from_numpy(grads),
               "lr": torch.from_numpy(lrs)}
    meta = {"format": "effnet-optim-fixture", "steps": STEPS,
            "layout": ";".join("%s:%s:%d" % (n, "x".join(map(str, s)), int(tr))
                               for n, s, tr in SHAPES)}
    meta.update({"version." + k: v for k, v in versions().items()})
    for name, (kind, hp) in RUNS.items():
        out = run_optimizer(kind, hp, init, grads, lrs_py)
        rm = slice(116, 120)  # bn.running_mean: untouched by construction
        assert np.array_equal(out[:, rm], np.broadcast_to(init[rm], (STEPS, 4)))
        tensors["run." + name] = torch.from_numpy(out)
        meta["run.%s.kind" % name] = kind
        for k, v in hp.items():
            meta["run.%s.%s" % (name, k)] = repr(v)
        print("%-14s max|w5 - w0| = %.4g" % (name, float(np.max(np.abs(out[-1] - init)))))

    fns = {"exp": sched_exp, "cosine": sched_cosine, "constant": sched_constant}
    for name, s in SCHEDS.items():
        ep = EPOCHS[name]
        lr = [fns[name](s, e) for e in ep]
        if name == "cosine":
            ref = timm_cosine(s, ep)
            assert np.allclose(lr, ref, rtol=1e-12, atol=0), (lr, ref)
        # float32 in the file: the C test compares to 1e-6 relative
        tensors["sched.%s.epoch" % name] = torch.tensor(ep, dtype=torch.float64)
        tensors["sched.%s.lr" % name] = torch.tensor(lr, dtype=torch.float64)
        for k, v in s.items():
            meta["sched.%s.%s" % (name, k)] = v if isinstance(v, str) else repr(v)

    ws = rng.normal(0.0, 1.0, (EMA_T, EMA_N)).astype(np.float32)
    ws += np.linspace(0.0, 3.0, EMA_T, dtype=np.float32)[:, None]  # a drifting weight
    tensors["ema.w"] = torch.from_numpy(ws)
    for name, decay in EMAS.items():
        tensors["ema." + name] = torch.from_numpy(ema_sequence(ws, decay))
        meta["ema.%s.decay" % name] = repr(decay)

    os.makedirs(outdir, exist_ok=True)
    path = os.path.join(outdir, "optim.safetensors")
    write_safetensors(path, tensors, meta)
    back, _ = read_safetensors(path)
    for k, v in tensors.items():
        assert np.array_equal(back[k], v.numpy().astype(np.float32)), k
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))


if __name__ == "__main__":
    main()
