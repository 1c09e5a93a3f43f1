"""Shared helpers for the PyTorch oracle scripts (gen_counts.py, gen_parity.py).

Why this module exists:
  * The C library reads real checkpoints (torchvision `features.*`, timm `conv_stem`/`blocks.i.j.*`)
    from safetensors files. We write them ourselves (write_safetensors) so the oracle needs no PyPI
    package beyond timm, and so the files carry exactly the state_dict names and dtypes.
  * Model construction for every source (torchvision, timm tf_*, timm non-tf, timm lite, custom
    width/depth members) is done in one place so counts and parity fixtures agree on what a
    "variant" is.
  * Fresh BatchNorm layers (mean 0, var 1, gamma 1, beta 0) and zero biases make several bugs
    invisible (a missing BN, swapped mean/var, eps ignored, missing SE bias); randomise_model
    replaces them with random values so every parameter influences the logits.

Runs under /usr/bin/python3 for torchvision-only work and under .venv/bin/python (system torch +
timm) for everything.
"""

import copy
import json
import math
import struct

import numpy as np
import torch
import torch.nn as nn

# --------------------------------------------------------------------------------------------
# safetensors

_DTYPES = {
    torch.float32: ("F32", np.dtype("<f4")),
    torch.float64: ("F32", np.dtype("<f4")),  # exported as F32: the C library computes in float32
    torch.int64: ("I64", np.dtype("<i8")),
}
_NP_OF = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8"), "I64": np.dtype("<i8"),
          "I32": np.dtype("<i4"), "F16": np.dtype("<f2")}


def write_safetensors(path, tensors, metadata=None):
    """Write `tensors` (name -> torch.Tensor, in the given order) as a safetensors file.

    Format (huggingface/safetensors README): u64 little-endian header length N, N bytes of JSON
    {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, padded with
    spaces so the data section starts at a multiple of 8, then the raw little-endian row-major
    tensor bytes; offsets are relative to the start of the data section.
    """
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, t in tensors.items():
        t = t.detach().cpu().contiguous()
        if t.dtype not in _DTYPES:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        tag, npdt = _DTYPES[t.dtype]
        raw = np.ascontiguousarray(t.numpy().astype(npdt, copy=False)).tobytes()
        header[name] = {"dtype": tag, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - (8 + len(hjson)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    """Read a safetensors file into (dict name -> np.ndarray, metadata dict). Used to verify
    that what we wrote round-trips bit-exactly."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    if base % 8:
        raise ValueError(f"{path}: data section not 8-aligned")
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e], dtype=_NP_OF[info["dtype"]])
        out[name] = arr.reshape(info["shape"])
    return out, meta


def export_state_dict(model, path, metadata=None):
    """Export model.state_dict() as-is (real names; floats F32, num_batches_tracked I64) and
    check the file reads back identically."""
    sd = model.state_dict()
    write_safetensors(path, sd, metadata or {"format": "pt"})
    back, _ = read_safetensors(path)
    if list(back) != list(sd):
        raise RuntimeError(f"{path}: tensor names did not round-trip")
    for k, v in sd.items():
        ref = v.detach().cpu().numpy()
        if ref.dtype == np.float64:
            ref = ref.astype(np.float32)
        if not np.array_equal(back[k], ref):
            raise RuntimeError(f"{path}: tensor {k} did not round-trip")


# --------------------------------------------------------------------------------------------
# model construction

def round_filters(c, width, divisor=8):
    """TF round_filters / torchvision _make_divisible (reference doc §1.3)."""
    v = c * width
    r = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if r < 0.9 * v:
        r += divisor
    return int(r)


def import_timm():
    """Import timm with a clear message when run outside the venv."""
    try:
        import timm.models.efficientnet as tme
    except ImportError as e:
        raise SystemExit("timm is not importable: run tools/oracle/setup_venv.sh and use "
                         ".venv/bin/python (%s)" % e)
    return tme


def build_torchvision(name=None, width=None, depth=None, num_classes=1000, dropout=0.2):
    """torchvision EfficientNet: a named variant (efficientnet_b0..b7) or a custom member built
    with the same internal builder the named ones use (eps 1e-5: the builder's default norm)."""
    import torchvision
    from torchvision.models import efficientnet as tve
    if name is not None:
        return getattr(torchvision.models, name)(num_classes=num_classes)
    setting, last_channel = tve._efficientnet_conf("efficientnet_b0", width_mult=width,
                                                   depth_mult=depth)
    return tve.EfficientNet(setting, dropout, last_channel=last_channel, num_classes=num_classes)


def build_timm(name, width=None, depth=None, lite=False, tf_style=None, **kwargs):
    """timm EfficientNet: a registered name (tf_efficientnet_b8, efficientnet_b0, ...) or, when
    width/depth are given, a custom member from timm's generator functions.

    For custom members tf_style=True passes what timm's tf_* factories pass (bn_eps=1e-3,
    pad_type='same'; see `tf_efficientnet_b0` in timm/models/efficientnet.py); tf_style=False
    keeps timm's PyTorch defaults (eps 1e-5, symmetric padding) like `efficientnet_b0`.
    """
    tme = import_timm()
    import timm
    if width is None:
        return timm.create_model(name, pretrained=False, **kwargs)
    if tf_style:
        kwargs.setdefault("bn_eps", 1e-3)
        kwargs.setdefault("pad_type", "same")
    gen = tme._gen_efficientnet_lite if lite else tme._gen_efficientnet
    return gen(name, channel_multiplier=width, depth_multiplier=depth, pretrained=False, **kwargs)


def stage_modules(model):
    """The 9 modules whose outputs the per-stage fixtures record, in order:
    stem (conv+BN+act), stage1..stage7 (the MBConv stages), head (1x1 conv+BN+act, pre-pool).

    torchvision: features[0..8]. timm: bn1 (BatchNormAct2d: BN then act), blocks[0..6], bn2.
    """
    names = ["stem"] + [f"stage{i}" for i in range(1, 8)] + ["head"]
    if hasattr(model, "features"):
        mods = [model.features[i] for i in range(9)]
    else:
        if len(model.blocks) != 7:
            raise ValueError(f"expected 7 timm stages, got {len(model.blocks)}")
        mods = [model.bn1] + [model.blocks[i] for i in range(7)] + [model.bn2]
    return list(zip(names, mods))


def model_structure(model):
    """(stem_channels, head_channels, [(stage_out_channels, repeats)] * 7) read off the model."""
    stages = []
    if hasattr(model, "features"):
        stem = model.features[0][0].out_channels
        head = model.features[8][0].out_channels
        for i in range(1, 8):
            st = model.features[i]
            last = st[-1]
            proj = [m for m in last.modules() if isinstance(m, nn.Conv2d)][-1]
            stages.append((proj.out_channels, len(st)))
    else:
        stem = model.conv_stem.out_channels
        head = model.conv_head.out_channels
        for st in model.blocks:
            last = st[-1]
            proj = last.conv_pwl if hasattr(last, "conv_pwl") else last.conv_pw
            stages.append((proj.out_channels, len(st)))
    return stem, head, stages


def randomise_model(model, seed, calib_input):
    """Seeded BatchNorm statistics and affine parameters and biases that are neither trivial nor
    degenerate (see module docstring). Returns the model in eval mode.

    Purely random running statistics (mean ~ N(0, s), var ~ U(a, b)) do not work: they ignore the
    real scale of each conv output, so every BN shrinks the input-dependent signal while its bias
    adds a constant, and after ~50 layers the logits no longer depend on the input (measured: two
    different inputs gave logits equal to 1e-7 on B0/B7), which would hide any bug downstream
    of the stem. So the statistics are calibrated in one eval-mode pass over `calib_input` (a
    different draw from the test input): a pre-hook on each BN measures the per-channel mean m
    and variance v of what that BN actually receives (upstream BNs already final) and sets
      running_mean = m + N(0, 0.2) * sqrt(v),   running_var = v * U(0.5, 2.0),
    then weight ~ U(0.7, 1.3), bias ~ N(0, 0.2). Every BN output is then O(1) and input-dependent
    while the statistics are still off the identity. Conv/linear biases (SE convs, classifier)
    ~ N(0, 0.1).

    Conv/linear weights are redrawn as N(0, 1/fan_in), fan_in = in_ch/groups * kh * kw, instead of
    the libraries' own init: torchvision's kaiming fan_out counts out_ch * k * k even for depthwise
    convs, so a 3840-channel depthwise conv of B7 gets std sqrt(2/34560) and its outputs have
    variance ~1e-4, below BN eps (1e-3): the BN output would then be set by eps rather than by the
    data and the case would be ill-conditioned (a 1e-3 -> 1e-5 eps change moved B7 logits by 1e16).
    """
    g = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) / math.sqrt(fan_in))
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)

    def pre_hook(m, inputs):
        x = inputs[0]
        c = m.num_features
        mean = x.mean(dim=(0, 2, 3))
        var = x.var(dim=(0, 2, 3), unbiased=False)
        # late stages of tiny inputs have few pixels: floor the variance so no channel is
        # amplified by a noisy near-zero estimate (which would make the case ill-conditioned)
        var = torch.maximum(var, 0.05 * var.mean()).clamp_min(1e-4)
        m.running_mean.copy_(mean + torch.randn(c, generator=g, dtype=x.dtype) * 0.2 * var.sqrt())
        m.running_var.copy_(var * (torch.rand(c, generator=g, dtype=x.dtype) * 1.5 + 0.5))
        m.weight.copy_(torch.rand(c, generator=g, dtype=x.dtype) * 0.6 + 0.7)
        m.bias.copy_(torch.randn(c, generator=g, dtype=x.dtype) * 0.2)
        m.num_batches_tracked.fill_(int(torch.randint(1, 100000, (1,), generator=g)))

    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    hooks = [m.register_forward_pre_hook(pre_hook) for m in bns]
    try:
        with torch.no_grad():
            model(calib_input)
    finally:
        for h in hooks:
            h.remove()
    return model


def seeded_model(build, seed, calib_shape):
    """Build under a fixed global seed (the libraries' init draws from the global generator),
    then randomise BN and biases from a derived seed, calibrated on a seeded N(0,1) input of
    `calib_shape` (NCHW)."""
    torch.manual_seed(seed)
    model = build()
    calib = torch.randn(*calib_shape, generator=torch.Generator().manual_seed(seed + 2))
    return randomise_model(model, seed + 1, calib)


def run_with_stages(model, x):
    """Forward `x` through `model` (eval, no grad) recording the stage outputs.
    Returns (logits, {stage_name: tensor})."""
    acts = {}
    hooks = []
    for name, mod in stage_modules(model):
        def hook(_m, _inp, out, name=name):
            acts[name] = out.detach().clone()
        hooks.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            logits = model(x)
    finally:
        for h in hooks:
            h.remove()
    return logits, acts


def double_copy(model):
    """A float64 deep copy: its outputs are the exact answer the float32 C code is measured
    against (torch's own float32 error is reported next to it)."""
    return copy.deepcopy(model).double().eval()


def rel_err(a, ref):
    """max|a - ref| / max|ref|: the error metric used for every tolerance in the manifest."""
    a = np.asarray(a, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    denom = float(np.max(np.abs(ref)))
    return float(np.max(np.abs(a - ref))) / (denom if denom > 0 else 1.0)


class threads:
    """Context manager: run a block with `n` intra-op threads.

    The float64 forward uses torch's generic (non-MKLDNN) conv path, which scales poorly and,
    when another process holds a core, collapses with 2 threads (measured on B5 at 456: 4 s with
    1 thread, 150-230 s with 2 while the machine was busy; 8 s vs 10 s on B7 when idle)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.prev = torch.get_num_threads()
        torch.set_num_threads(self.n)

    def __exit__(self, *exc):
        torch.set_num_threads(self.prev)


def set_threads(n=2):
    """The build machine has 2 cores; more threads only add contention."""
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


def finite_std(t):
    s = float(torch.as_tensor(t, dtype=torch.float64).std())
    return s if math.isfinite(s) else float("nan")


def versions():
    """Library versions recorded in generated fixtures (the counts and random draws depend on
    them)."""
    import torchvision
    out = {"torch": torch.__version__, "torchvision": torchvision.__version__,
           "numpy": np.__version__}
    try:
        import timm
        out["timm"] = timm.__version__
    except ImportError:
        pass
    return out
