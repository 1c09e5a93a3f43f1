#!/usr/bin/env python3
"""Generate the image decoding and preprocessing fixtures checked by tests/test_image.c.

Why: users feed images through PIL + torchvision (or timm's transforms, which are the same
torchvision ops on a PIL image). effnet must give them the same tensor, so the oracle is
PIL's decoder (Image.open(...).convert("RGB")) and torchvision's
Compose([Resize, CenterCrop, ToTensor, Normalize]) on that PIL image. The TF reference
pipeline (crop S/(S+32) of the shorter side, then TF1 resize_bicubic) has no TensorFlow
here: tf_preprocess() below is a NumPy transcription of its definition (preprocessing.py of
tensorflow/tpu efficientnet + tensorflow/core/kernels/image/resize_bicubic_op.cc), float32
operation by operation.

Layout of OUTDIR (default tests/fixtures/images), small enough to commit:
  *.jpg, *.png        inputs, built here with PIL or the raw PNG writer below (16-bit,
                      sub-byte, interlaced and filtered PNGs PIL cannot write)
  *.rgb.npy           float32 (H, W, 3): the decoded pixels PIL gives
  *.pre.npy           float32 (3, H, W): a preprocessed tensor
  cases.txt           one case per line, '#' lines say why a tolerance is what it is:
    decode   IMAGE RGB_NPY TOL
    reject   FILE STATUS                            (status name: format, limit, ...)
    custom   IMAGE CROP_FIRST RESIZE FRACTION CROP_H CROP_W INTERP M0 M1 M2 S0 S1 S2 NPY TOL
    preset   IMAGE PRESET RES NPY TOL               (spec: effnet_spec_custom B, resolution RES)
    presetcfg PRESET MODEL CROP_FIRST RESIZE FRACTION CROP_H CROP_W INTERP M0 M1 M2 S0 S1 S2
    photo_decode PATH FILE_BYTES FILE_CRC W H RGB_CRC
    photo_pre    PATH PRESET MODEL CRC NPY_NAME
  INTERP is bilinear | bicubic | tf_bicubic; CRCs are zlib.crc32 of the raw bytes (RGB
  uint8, or the float32 tensor in C order). Photos are the scikit-image sample images
  (Debian python3-skimage); the test skips them when absent or when the file differs.

Usage:
  .venv/bin/python tools/oracle/gen_image_fixtures.py [OUTDIR] [--photo-npy DIR] [--fuzz-dir fuzz]
  (/usr/bin/python3 works too; with timm importable, the timm preset table is checked
  against timm's own pretrained configs.) --photo-npy writes the full photo tensors (large,
  not committed) so `build/tests/test_image --photos DIR` reports max differences instead of
CRCs; `--fixtures OUTDIR` points the test at fixtures written elsewhere (a live tier).
"""

import argparse
import io
import math
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import torch
import torchvision
from PIL import Image, ImageOps
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

SKIMAGE_DATA = "/usr/lib/python3/dist-packages/skimage/data"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)
LITE_MEAN = (127 / 255,) * 3
LITE_STD = (128 / 255,) * 3

# Tolerances, written into cases.txt next to the data.
TOL_EXACT = 0.0
WHY_DECODE = ("PNG: exact (same integer conversions). JPEG: exact, because libjpeg-turbo is "
              "the library PIL links, run with the same settings (islow IDCT, fancy "
              "upsampling); another JPEG library could differ by a few levels")
WHY_PIL = ("torchvision/timm geometry on PIL: the resize is Pillow's integer arithmetic "
           "reproduced exactly, then ToTensor/Normalize in float32 in torch's order, so the "
           "tensors are bit-identical: tolerance 0")
TOL_TF = 2e-6
WHY_TF = ("TF reference: resize_bicubic transcribed float32 op for op (no TF here), but TF "
          "normalises as (x - 255*mean) / (255*std) and effnet as (x/255 - mean) / std: "
          "a few float32 ulps of values up to ~2.7")


# ------------------------------------------------------------------ synthetic pictures

def synth_rgb(w, h, seed):
    """Smooth gradients, a hard-edged disc and stripes, plus noise: every resize path sees
    flat areas, edges and texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 128 + 100 * np.sin(x / 3.0) * np.cos(y / 5.0)
    disc = (x - 0.6 * w) ** 2 + (y - 0.4 * h) ** 2 < (0.25 * min(w, h)) ** 2
    img = np.stack([r, g, b], axis=-1)
    img[disc] = [250, 20, 60]
    img[:, ::7] = [0, 0, 0]
    img += rng.normal(0, 12, img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def synth_gray(w, h, seed, maxval=255):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    v = (x / max(w - 1, 1) * 0.7 + y / max(h - 1, 1) * 0.3) * maxval
    v += rng.normal(0, maxval / 20, v.shape)
    return np.clip(np.rint(v), 0, maxval).astype(np.int64)


def corners_rgb(w, h):
    """Distinct corners so every EXIF rotation/flip gives a different picture."""
    img = synth_rgb(w, h, 7)
    img[:3, :3] = [255, 0, 0]
    img[:3, -3:] = [0, 255, 0]
    img[-3:, :3] = [0, 0, 255]
    img[-3:, -3:] = [255, 255, 255]
    return img


# ------------------------------------------------------------------ raw PNG writer

ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2)]
CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}


def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def pack_row(samples, bit_depth):
    """One row of samples (already interleaved) to bytes, MSB first for sub-byte depths."""
    if bit_depth == 16:
        return b"".join(struct.pack(">H", int(v)) for v in samples)
    if bit_depth == 8:
        return bytes(int(v) for v in samples)
    per_byte = 8 // bit_depth
    out = bytearray()
    for i in range(0, len(samples), per_byte):
        byte = 0
        for j in range(per_byte):
            v = int(samples[i + j]) if i + j < len(samples) else 0
            byte |= v << (8 - bit_depth * (j + 1))
        out.append(byte)
    return bytes(out)


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def filter_row(ftype, row, prev, bpp):
    out = bytearray([ftype])
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = [0, a, b, (a + b) // 2, paeth(a, b, c)][ftype]
        out.append((x - pred) & 0xFF)
    return bytes(out)


def image_data(arr, bit_depth, channels, filters):
    """Filtered scanlines of arr (H, W, C) of samples; filter types cycle through `filters`."""
    h = arr.shape[0]
    bpp = max(1, bit_depth * channels // 8)
    rows = [pack_row(arr[y].reshape(-1), bit_depth) for y in range(h)]
    out, prev = bytearray(), bytes(len(rows[0])) if rows else b""
    for y, row in enumerate(rows):
        out += filter_row(filters[y % len(filters)], row, prev, bpp)
        prev = row
    return bytes(out)


def make_png(arr, bit_depth, color_type, interlace=False, filters=(0,), plte=None, trns=None,
             exif_before=None, exif_after=None, iend=True):
    arr = np.asarray(arr)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    h, w, c = arr.shape
    assert c == CHANNELS[color_type]
    if interlace:
        raw = b"".join(image_data(arr[ys::dy, xs::dx], bit_depth, c, filters)
                       for xs, ys, dx, dy in ADAM7 if arr[ys::dy, xs::dx].size)
    else:
        raw = image_data(arr, bit_depth, c, filters)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(
        b"IHDR", struct.pack(">IIBBBBB", w, h, bit_depth, color_type, 0, 0, int(interlace)))
    if plte is not None:
        out += png_chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).reshape(-1)))
    if trns is not None:
        out += png_chunk(b"tRNS", bytes(trns))
    if exif_before is not None:
        out += png_chunk(b"eXIf", exif_before)
    out += png_chunk(b"IDAT", zlib.compress(raw, 9))
    if exif_after is not None:
        out += png_chunk(b"eXIf", exif_after)
    if iend:
        out += png_chunk(b"IEND", b"")
    return out


# ------------------------------------------------------------------ EXIF / JPEG helpers

def tiff_block(orientation, big_endian, otype=3, count=1):
    """A TIFF header + IFD0 with Make (out-of-line ASCII), Orientation, XResolution."""
    e = ">" if big_endian else "<"
    entries = []
    make = b"effnet\0"
    n = 3
    data_off = 8 + 2 + 12 * n + 4
    entries.append(struct.pack(e + "HHII", 0x010F, 2, len(make), data_off))
    if otype == 3:
        val = struct.pack(e + "HH", orientation, 0)
    else:
        val = struct.pack(e + "I", orientation)
    entries.append(struct.pack(e + "HHI", 0x0112, otype, count) + val)
    entries.append(struct.pack(e + "HHII", 0x011A, 5, 1, data_off + len(make)))
    head = (b"MM" if big_endian else b"II") + struct.pack(e + "HI", 42, 8)
    body = struct.pack(e + "H", n) + b"".join(entries) + struct.pack(e + "I", 0)
    return head + body + make + struct.pack(e + "II", 72, 1)


def exif_app1(tiff):
    return b"Exif\0\0" + tiff


def insert_app1(jpeg, payloads):
    """APP1 segments right after SOI (before PIL's JFIF APP0; readers accept either order)."""
    segs = b"".join(b"\xff\xe1" + struct.pack(">H", len(p) + 2) + p for p in payloads)
    return jpeg[:2] + segs + jpeg[2:]


def jpeg_bytes(img, **kw):
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def set_sof_size(jpeg, w, h):
    """Patch the frame header's dimensions (for the over-the-cap rejects)."""
    i = 2
    while i < len(jpeg):
        marker, length = jpeg[i + 1], struct.unpack(">H", jpeg[i + 2:i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            return jpeg[:i + 5] + struct.pack(">HH", h, w) + jpeg[i + 9:]
        i += 2 + length
    raise ValueError("no SOF")


# ------------------------------------------------------------------ oracles

INTERP = {"bilinear": InterpolationMode.BILINEAR, "bicubic": InterpolationMode.BICUBIC}


def pil_rgb(path, exif=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # palette + tRNS notice, truncated EXIF
        im = Image.open(path)
        im.load()
        if exif:
            im = ImageOps.exif_transpose(im)
        return im.convert("RGB")


def torchvision_pipeline(img, resize, crop_h, crop_w, interp, mean, std):
    t = T.Compose([T.Resize(resize, interpolation=INTERP[interp]),
                   T.CenterCrop((crop_h, crop_w)), T.ToTensor(), T.Normalize(mean, std)])
    return t(img).numpy().astype(np.float32)


def tf_coeff_tables(a=-0.75):
    """resize_bicubic_op.cc InitCoeffsTable: double arithmetic from a float position, stored
    as float. near[i] weighs distance i/1024, far[i] distance 1 + i/1024."""
    i = np.arange(1025)
    x = (i * 1.0 / 1024).astype(np.float32).astype(np.float64)
    near = (((a + 2) * x - (a + 3)) * x * x + 1).astype(np.float32)
    x1 = (x + 1.0).astype(np.float32).astype(np.float64)
    far = (((a * x1 - 5 * a) * x1 + 8 * a) * x1 - 4 * a).astype(np.float32)
    return near, far


def tf_taps(in_size, out_size):
    """LegacyScaler + GetWeightsAndIndices (use_keys_cubic false): position out * scale in
    float32, table step lrintf(delta * 1024), indices clamped to the image."""
    near, far = tf_coeff_tables()
    scale = np.float32(in_size) / np.float32(out_size)
    pos = np.arange(out_size, dtype=np.float32) * scale
    base = np.floor(pos).astype(np.int64)
    delta = pos - base.astype(np.float32)
    step = np.rint(delta * np.float32(1024)).astype(np.int64)
    weights = [far[step], near[step], near[1024 - step], far[1024 - step]]
    index = [np.clip(base + k - 1, 0, in_size - 1) for k in range(4)]
    return index, weights


def tf_resize_bicubic(src_u8, out_h, out_w):
    """interpolate_with_caching: per output row, each of the 4 columns is interpolated
    vertically (w0*v0 + w1*v1 + w2*v2 + w3*v3, left to right, float32), then the 4 column
    values horizontally the same way."""
    src = src_u8.astype(np.float32)
    h, w = src.shape[:2]
    iy, wy = tf_taps(h, out_h)
    ix, wx = tf_taps(w, out_w)
    vert = src[iy[0]] * wy[0][:, None, None]
    for k in range(1, 4):
        vert = vert + src[iy[k]] * wy[k][:, None, None]
    out = vert[:, ix[0]] * wx[0][None, :, None]
    for k in range(1, 4):
        out = out + vert[:, ix[k]] * wx[k][None, :, None]
    return out.astype(np.float32)


def tf_crop_box(h, w, fraction):
    """_decode_and_center_crop: the Python-float fraction times a float32 tensor, cast to
    int32; offsets ((h - side) + 1) // 2. A side of 0 is raised to 1 (TF would fail)."""
    side = int(np.float32(fraction) * np.float32(min(h, w)))
    side = max(side, 1)
    return ((h - side) + 1) // 2, ((w - side) + 1) // 2, side


def tf_preprocess(rgb_u8, fraction, out_h, out_w, mean, std, torch_order=False):
    h, w = rgb_u8.shape[:2]
    oy, ox, side = tf_crop_box(h, w, fraction)
    res = tf_resize_bicubic(rgb_u8[oy:oy + side, ox:ox + side], out_h, out_w)
    if torch_order:  # effnet's (x/255 - mean)/std, for the bit-exact photo CRCs
        m, s = np.float32(mean), np.float32(std)
        out = (res / np.float32(255) - m) / s
    else:  # the TF model's (x - MEAN_RGB) / STDDEV_RGB with MEAN_RGB = 255 * mean
        m = np.array([v * 255 for v in mean], np.float32)
        s = np.array([v * 255 for v in std], np.float32)
        out = (res - m) / s
    return np.ascontiguousarray(out.transpose(2, 0, 1)).astype(np.float32)


# ------------------------------------------------------------------ presets

# torchvision.models weights (IMAGENET1K_V1) for b0..b7, read from torchvision itself below.
TV_WEIGHTS = {f"b{i}": f"EfficientNet_B{i}_Weights" for i in range(8)}

# timm tf_efficientnet_* crop_pct literals (efficientnet.py default_cfgs), keyed by input size.
TIMM_TF_CROP_PCT = {224: 0.875, 240: 0.882, 260: 0.890, 300: 0.904, 380: 0.922, 456: 0.934,
                    528: 0.942, 600: 0.949, 672: 0.954, 800: 0.96}

TF_PREFIX = "tf_efficientnet_"  # timm's TF ports; effnet_spec_from_name accepts the name
RESOLUTION = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380, "b5": 456, "b6": 528,
              "b7": 600, "b8": 672, "l2": 800, "lite0": 224, "lite1": 240, "lite2": 260,
              "lite3": 280, "lite4": 300}


def torchvision_sizes(variant):
    weights = getattr(torchvision.models, TV_WEIGHTS[variant]).IMAGENET1K_V1
    t = weights.transforms()
    assert t.interpolation == InterpolationMode.BICUBIC
    assert tuple(t.mean) == IMAGENET_MEAN and tuple(t.std) == IMAGENET_STD
    return t.resize_size[0], t.crop_size[0]


def check_timm_table():
    """With timm importable, its pretrained configs must give the literals above."""
    try:
        import timm
    except ImportError:
        return "timm not importable: crop_pct table taken as transcribed"
    for res, pct in TIMM_TF_CROP_PCT.items():
        variant = [v for v, r in RESOLUTION.items() if r == res and not v.startswith("lite")][0]
        found = None
        for tag in timm.list_pretrained(f"tf_efficientnet_{variant}.*"):
            cfg = timm.models.get_pretrained_cfg(tag)
            if cfg and cfg.input_size[-1] == res:
                found = cfg.crop_pct
        assert found is not None and abs(found - pct) < 1e-9, (variant, res, found, pct)
    return f"crop_pct table checked against timm {timm.__version__}"


def preset_config(preset, model):
    """The expected effnet_preprocess_preset result, from the references."""
    tf = model.startswith(TF_PREFIX)
    variant = model[len(TF_PREFIX):] if tf else model
    s = RESOLUTION[variant]
    cfg = dict(crop_first=0, resize=0, fraction=0.0, crop=s, interp="bicubic",
               mean=IMAGENET_MEAN, std=IMAGENET_STD)
    if preset == "torchvision":
        if variant in TV_WEIGHTS:
            cfg["resize"], cfg["crop"] = torchvision_sizes(variant)
        else:
            cfg["resize"] = math.floor(s / 0.875)
    elif preset in ("timm", "inception"):
        pct = (TIMM_TF_CROP_PCT.get(s, s / (s + 32)) if tf else 0.875)
        cfg["resize"] = math.floor(s / pct)  # timm transforms_imagenet_eval
        if preset == "inception":
            cfg["mean"], cfg["std"] = HALF, HALF
    elif preset == "tf":
        cfg.update(crop_first=1, fraction=s / (s + 32), interp="tf_bicubic")
    elif preset == "lite":
        cfg.update(resize=math.floor(s / 0.875), mean=LITE_MEAN, std=LITE_STD)
    return cfg


def timm_eval(img_pil, preset, model):
    """timm's own eval transform for a timm/inception case, or None without timm."""
    if preset not in ("timm", "inception"):
        return None
    try:
        from timm.data import create_transform
    except ImportError:
        return None
    cfg = preset_config(preset, model)
    s = cfg["crop"]
    tf = model.startswith(TF_PREFIX)
    pct = TIMM_TF_CROP_PCT.get(s, s / (s + 32)) if tf else 0.875
    t = create_transform(input_size=(3, s, s), interpolation="bicubic", mean=cfg["mean"],
                         std=cfg["std"], crop_pct=pct)
    return t(img_pil).numpy().astype(np.float32)


def run_preset(img_pil, preset, model, torch_order_tf=True):
    cfg = preset_config(preset, model)
    if cfg["crop_first"]:
        return tf_preprocess(np.asarray(img_pil), cfg["fraction"], cfg["crop"], cfg["crop"],
                             cfg["mean"], cfg["std"], torch_order=torch_order_tf)
    return torchvision_pipeline(img_pil, cfg["resize"], cfg["crop"], cfg["crop"],
                                cfg["interp"], cfg["mean"], cfg["std"])


# ------------------------------------------------------------------ writing

class Out:
    def __init__(self, root):
        self.root = root
        self.lines = []
        os.makedirs(root, exist_ok=True)

    def write(self, name, data):
        with open(os.path.join(self.root, name), "wb") as f:
            f.write(data)

    def npy(self, name, arr):
        np.save(os.path.join(self.root, name), np.ascontiguousarray(arr, dtype=np.float32))

    def path(self, name):
        return os.path.join(self.root, name)

    def line(self, *fields):
        self.lines.append(" ".join(str(f) for f in fields))


def fmt(v):
    return repr(float(v))


def add_decode(out, name, data, expect=None, exif=True):
    out.write(name, data)
    rgb = expect if expect is not None else np.asarray(pil_rgb(out.path(name), exif))
    base = name.rsplit(".", 1)[0]
    out.npy(base + ".rgb.npy", rgb.astype(np.float32))
    out.line("decode", name, base + ".rgb.npy", fmt(TOL_EXACT))


def gen_jpeg(out):
    out.line("#", WHY_DECODE)
    rgb = Image.fromarray(synth_rgb(61, 37, 1))
    add_decode(out, "jpeg_baseline_420.jpg", jpeg_bytes(rgb, quality=90))
    add_decode(out, "jpeg_baseline_444.jpg",
               jpeg_bytes(Image.fromarray(synth_rgb(45, 29, 2)), quality=92, subsampling=0))
    add_decode(out, "jpeg_baseline_422.jpg",
               jpeg_bytes(Image.fromarray(synth_rgb(39, 27, 3)), quality=80, subsampling=1))
    add_decode(out, "jpeg_progressive.jpg",
               jpeg_bytes(Image.fromarray(synth_rgb(53, 41, 4)), quality=85, progressive=True))
    add_decode(out, "jpeg_gray.jpg",
               jpeg_bytes(Image.fromarray(synth_gray(47, 31, 5).astype(np.uint8), "L"),
                          quality=90))
    cmyk = Image.fromarray(np.concatenate([synth_rgb(33, 21, 6),
                                           synth_gray(33, 21, 7)[:, :, None].astype(np.uint8)],
                                          axis=2), "CMYK")
    add_decode(out, "jpeg_cmyk.jpg", jpeg_bytes(cmyk, quality=90))
    # EXIF orientations 1..8, both byte orders; then the odd cases
    base = jpeg_bytes(Image.fromarray(corners_rgb(23, 15)), quality=95)
    for o in range(1, 9):
        big_endian = o % 2 == 0
        add_decode(out, f"jpeg_exif_{o}.jpg",
                   insert_app1(base, [exif_app1(tiff_block(o, big_endian))]))
    add_decode(out, "jpeg_exif_long.jpg",
               insert_app1(base, [exif_app1(tiff_block(6, True, otype=4))]))
    # Pillow keeps the first Exif APP1 only
    add_decode(out, "jpeg_exif_two_app1.jpg",
               insert_app1(base, [exif_app1(tiff_block(8, False)),
                                  exif_app1(tiff_block(3, False))]))
    # out of range value: exif_transpose leaves the image alone
    add_decode(out, "jpeg_exif_bad_value.jpg", insert_app1(base, [exif_app1(tiff_block(9, False))]))
    # IFD cut in the middle of the orientation entry: PIL warns "Truncated File Read", keeps
    # the entries before it and so leaves the image alone
    cut = exif_app1(tiff_block(6, False))[:6 + 8 + 2 + 12 + 6]
    add_decode(out, "jpeg_exif_truncated.jpg", insert_app1(base, [cut]))


def palette_image(w, h, bits, seed):
    rng = np.random.default_rng(seed)
    n = 1 << bits
    entries = max(2, n - 1) if bits < 8 else 200  # leave indices past the PLTE
    plte = rng.integers(0, 256, (entries, 3))
    idx = rng.integers(0, n, (h, w))
    return idx, plte


def gen_png(out):
    rgb = synth_rgb(41, 29, 10)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "PNG")
    add_decode(out, "png_rgb8.png", buf.getvalue())
    alpha = synth_gray(37, 23, 12)[:, :, None].astype(np.uint8)
    rgba = np.concatenate([synth_rgb(37, 23, 11), alpha], 2)
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, "PNG")
    add_decode(out, "png_rgba8.png", buf.getvalue())
    rgb16 = np.stack([synth_gray(29, 19, 13 + c, 65535) for c in range(3)], -1)
    add_decode(out, "png_rgb16.png", make_png(rgb16, 16, 2, filters=(0, 1, 2, 3, 4)))
    rgba16 = np.stack([synth_gray(27, 17, 16 + c, 65535) for c in range(4)], -1)
    add_decode(out, "png_rgba16.png", make_png(rgba16, 16, 6))
    for bits in (1, 2, 4, 8):
        g = synth_gray(43, 21, 20 + bits, (1 << bits) - 1)
        add_decode(out, f"png_gray{bits}.png", make_png(g, bits, 0, filters=(0, 1, 2, 3, 4)))
    # 16-bit gray: PIL's convert("RGB") clips the 16-bit value to 255; effnet keeps the
    # high byte like every other 16-bit type (documented difference), so the expectation
    # is written here rather than read from PIL.
    g16 = synth_gray(31, 19, 30, 65535)
    add_decode(out, "png_gray16.png", make_png(g16, 16, 0),
               expect=np.repeat((g16 >> 8)[:, :, None], 3, 2))
    add_decode(out, "png_gray16_trns.png", make_png(g16, 16, 0, trns=struct.pack(">H", 300)),
               expect=np.repeat((g16 >> 8)[:, :, None], 3, 2))
    ga = np.stack([synth_gray(35, 23, 31), synth_gray(35, 23, 32)], -1)
    add_decode(out, "png_ga8.png", make_png(ga, 8, 4, filters=(4, 3)))
    ga16 = np.stack([synth_gray(25, 17, 33, 65535), synth_gray(25, 17, 34, 65535)], -1)
    add_decode(out, "png_ga16.png", make_png(ga16, 16, 4))
    for bits in (1, 2, 4, 8):
        idx, plte = palette_image(37, 23, bits, 40 + bits)
        trns = bytes(range(0, 256, 37))[:len(plte)]
        add_decode(out, f"png_pal{bits}.png", make_png(idx, bits, 3, plte=plte, trns=trns,
                                                       filters=(0, 2)))
    add_decode(out, "png_rgb8_interlaced.png",
               make_png(synth_rgb(37, 29, 50), 8, 2, interlace=True, filters=(0, 1, 2, 3, 4)))
    idx, plte = palette_image(19, 13, 2, 51)
    add_decode(out, "png_pal2_interlaced.png", make_png(idx, 2, 3, plte=plte, interlace=True))
    add_decode(out, "png_ga16_interlaced.png", make_png(ga16, 16, 4, interlace=True))
    add_decode(out, "png_gray1_tiny_interlaced.png", make_png(synth_gray(3, 2, 52, 1), 1, 0,
                                                              interlace=True))
    corners = corners_rgb(23, 15)
    add_decode(out, "png_exif6.png", make_png(corners, 8, 2, exif_before=tiff_block(6, True)))
    add_decode(out, "png_exif8_after_idat.png", make_png(corners, 8, 2,
                                                         exif_after=tiff_block(8, False)))
    # a missing IEND does not stop PIL once the pixels are read
    add_decode(out, "png_no_iend.png", make_png(synth_rgb(17, 11, 53), 8, 2, iend=False))


def gen_rejects(out):
    out.line("# every rejection names the file in its message")
    base = jpeg_bytes(Image.fromarray(synth_rgb(61, 37, 60)), quality=90)
    prog = jpeg_bytes(Image.fromarray(synth_rgb(61, 37, 61)), quality=90, progressive=True)
    png = make_png(synth_rgb(41, 29, 62), 8, 2)
    ihdr_at = 8 + 8  # signature, chunk length + tag

    def png_with_size(w, h):
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
        return (png[:8] + png_chunk(b"IHDR", ihdr) + png[8 + 25:])

    cases = [
        ("reject_empty.jpg", b"", "format"),
        ("reject_text.png", b"this is a text file, not an image\n", "format"),
        ("reject_truncated.jpg", base[:len(base) * 6 // 10], "format"),
        ("reject_truncated_progressive.jpg", prog[:len(prog) * 7 // 10], "format"),
        ("reject_truncated.png", png[:len(png) * 6 // 10], "format"),
        ("reject_huge_side.png", png_with_size(100000, 100000), "limit"),
        ("reject_huge_area.png", png_with_size(20000, 20000), "limit"),
        ("reject_huge_side.jpg", set_sof_size(base, 65535, 65535), "limit"),
        ("reject_huge_area.jpg", set_sof_size(base, 20000, 20000), "limit"),
        ("reject_zero_width.png", png_with_size(0, 10), "format"),
        ("reject_bad_ihdr_crc.png",  # height 29 -> 28, CRC left as it was
         png[:ihdr_at + 7] + bytes([png[ihdr_at + 7] ^ 1]) + png[ihdr_at + 8:], "format"),
        ("reject_pal_no_plte.png", make_png(np.zeros((4, 4), np.int64), 8, 3), "format"),
        ("reject_jpeg_header_only.jpg", base[:200], "format"),
    ]
    for name, data, status in cases:
        out.write(name, data)
        out.line("reject", name, status)


def custom_line(out, image, name, crop_first, resize, fraction, crop_h, crop_w, interp, mean,
                std):
    img = pil_rgb(out.path(image))
    if crop_first:
        arr = tf_preprocess(np.asarray(img), fraction, crop_h, crop_w, mean, std)
        tol = TOL_TF
    else:
        arr = torchvision_pipeline(img, resize, crop_h, crop_w, interp, mean, std)
        tol = TOL_EXACT
    out.npy(name, arr)
    out.line("custom", image, crop_first, resize, fmt(fraction), crop_h, crop_w, interp,
             *[fmt(m) for m in mean], *[fmt(s) for s in std], name, fmt(tol))


def gen_preprocess(out):
    out.line("#", WHY_PIL)
    M, S = IMAGENET_MEAN, IMAGENET_STD
    for image, tag in (("jpeg_baseline_420.jpg", "j61x37"), ("png_rgb8.png", "p41x29"),
                       ("jpeg_gray.jpg", "g47x31"), ("png_exif6.png", "e15x23")):
        for interp in ("bicubic", "bilinear"):
            it = interp[2]  # 'c' / 'l'
            custom_line(out, image, f"pre_{tag}_{it}_up.pre.npy", 0, 50, 0.0, 26, 22, interp, M, S)
            custom_line(out, image, f"pre_{tag}_{it}_down.pre.npy", 0, 6, 0.0, 6, 5, interp, M, S)
        custom_line(out, image, f"pre_{tag}_c_mild.pre.npy", 0, 24, 0.0, 21, 22, "bicubic", M, S)
    img = "jpeg_baseline_420.jpg"  # resized to 33x20 from 61x37 by Resize(20)
    # odd leftovers: Python's round() halves to even (1.5 -> 2, 2.5 -> 2)
    custom_line(out, img, "pre_round_half_even.pre.npy", 0, 20, 0.0, 15, 28, "bicubic", M, S)
    custom_line(out, img, "pre_round_half_even2.pre.npy", 0, 20, 0.0, 17, 30, "bicubic", M, S)
    # crop larger than the resized image: torchvision pads with zeros (odd padding)
    custom_line(out, img, "pre_pad_both.pre.npy", 0, 12, 0.0, 17, 26, "bicubic", M, S)
    custom_line(out, img, "pre_pad_width.pre.npy", 0, 20, 0.0, 9, 40, "bilinear", M, S)
    # same size: no resize pass at all
    custom_line(out, img, "pre_no_resize.pre.npy", 0, 37, 0.0, 21, 40, "bicubic", HALF, HALF)
    out.line("#", WHY_TF)
    for image, tag in (("jpeg_baseline_420.jpg", "j61x37"), ("png_rgb8.png", "p41x29")):
        custom_line(out, image, f"tf_{tag}_down.pre.npy", 1, 0, 224 / 256, 13, 11, "tf_bicubic",
                    M, S)
        custom_line(out, image, f"tf_{tag}_up.pre.npy", 1, 0, 300 / 332, 28, 26, "tf_bicubic",
                    M, S)
    custom_line(out, "jpeg_gray.jpg", "tf_g47x31_odd.pre.npy", 1, 0, 0.61, 17, 23, "tf_bicubic",
                LITE_MEAN, LITE_STD)
    out.line("#", WHY_PIL, "(TF presets:", WHY_TF + ")")
    for preset in ("torchvision", "timm", "inception", "lite", "tf"):
        for image, res in (("png_rgb16.png", 28), ("jpeg_progressive.jpg", 12)):
            cfg_model = "custom"
            img_pil = pil_rgb(out.path(image))
            s = res
            if preset == "tf":
                arr = tf_preprocess(np.asarray(img_pil), s / (s + 32), s, s, M, S)
                tol = TOL_TF
            else:
                mean, std = {"inception": (HALF, HALF), "lite": (LITE_MEAN, LITE_STD)}.get(
                    preset, (M, S))
                arr = torchvision_pipeline(img_pil, math.floor(s / 0.875), s, s, "bicubic",
                                           mean, std)
                tol = TOL_EXACT
            name = f"preset_{preset}_{cfg_model}{res}_{image.split('.')[0]}.pre.npy"
            out.npy(name, arr)
            out.line("preset", image, preset, res, name, fmt(tol))


def gen_preset_configs(out):
    out.line("#", check_timm_table())
    plain = [f"b{i}" for i in range(9)] + ["l2"] + [f"lite{i}" for i in range(5)]
    models = plain + [TF_PREFIX + m for m in plain]
    for preset in ("torchvision", "timm", "tf", "inception", "lite"):
        for model in models:
            c = preset_config(preset, model)
            out.line("presetcfg", preset, model, c["crop_first"], c["resize"], fmt(c["fraction"]),
                     c["crop"], c["crop"], c["interp"], *[fmt(m) for m in c["mean"]],
                     *[fmt(s) for s in c["std"]])


PHOTOS = ["chelsea.png", "coffee.png", "astronaut.png", "rocket.jpg", "hubble_deep_field.jpg",
          "retina.jpg", "motorcycle_left.png", "horse.png", "logo.png", "camera.png",
          "green_palette.png", "checker_bilevel.png"]
PHOTO_PRESETS = [("torchvision", "b0"), ("torchvision", "b3"), ("timm", TF_PREFIX + "b3"),
                 ("timm", "b0"), ("inception", TF_PREFIX + "b1"), ("lite", "lite0"),
                 ("tf", "b0"), ("tf", "b4")]


def gen_photos(out, npy_dir):
    if not os.path.isdir(SKIMAGE_DATA):
        print("skimage data not installed: no photo checks", file=sys.stderr)
        return
    out.line("# photos: CRC32 of the bytes; tf presets use effnet's normalisation order "
             "(x/255 - mean)/std so the CRC tests the transcribed resize bit for bit")
    for photo in PHOTOS:
        path = os.path.join(SKIMAGE_DATA, photo)
        if not os.path.exists(path):
            continue
        raw = open(path, "rb").read()
        img = pil_rgb(path)
        rgb = np.ascontiguousarray(np.asarray(img))
        out.line("photo_decode", path, len(raw), zlib.crc32(raw), img.width, img.height,
                 zlib.crc32(rgb.tobytes()))
        if photo not in PHOTOS[:6]:
            continue
        for preset, model in PHOTO_PRESETS:
            arr = np.ascontiguousarray(run_preset(img, preset, model), dtype=np.float32)
            timm_arr = timm_eval(img, preset, model)
            assert timm_arr is None or np.array_equal(arr, timm_arr), (photo, preset, model)
            name = f"photo_{photo.split('.')[0]}_{preset}_{model}.npy"
            if npy_dir:
                os.makedirs(npy_dir, exist_ok=True)
                np.save(os.path.join(npy_dir, name), arr)
            out.line("photo_pre", path, preset, model, zlib.crc32(arr.tobytes()), name)


FUZZ_SEEDS = {
    "accept/jpeg": ["jpeg_baseline_420.jpg", "jpeg_baseline_444.jpg", "jpeg_progressive.jpg",
                    "jpeg_gray.jpg", "jpeg_cmyk.jpg", "jpeg_exif_6.jpg", "jpeg_exif_7.jpg",
                    "jpeg_exif_two_app1.jpg", "jpeg_exif_truncated.jpg"],
    "accept/png": ["png_rgb16.png", "png_gray1.png", "png_gray2.png", "png_pal4.png",
                   "png_pal8.png", "png_ga8.png", "png_pal2_interlaced.png",
                   "png_ga16_interlaced.png", "png_gray1_tiny_interlaced.png", "png_exif6.png",
                   "png_exif8_after_idat.png", "png_no_iend.png", "png_rgba8.png"],
    "reject/jpeg": ["reject_empty.jpg", "reject_text.png", "reject_truncated.jpg",
                    "reject_truncated_progressive.jpg", "reject_huge_side.jpg",
                    "reject_huge_area.jpg", "reject_jpeg_header_only.jpg", "png_gray1.png"],
    "reject/png": ["reject_empty.jpg", "reject_text.png", "reject_truncated.png",
                   "reject_huge_side.png", "reject_huge_area.png", "reject_zero_width.png",
                   "reject_bad_ihdr_crc.png", "reject_pal_no_plte.png", "jpeg_gray.jpg"],
}


def write_fuzz_seeds(out, fuzz_dir):
    """Seeds for fuzz/{accept,reject}/{jpeg,png} (replayed as tests, and fuzzing starts)."""
    for sub, names in FUZZ_SEEDS.items():
        d = os.path.join(fuzz_dir, sub)
        os.makedirs(d, exist_ok=True)
        for name in names:
            with open(out.path(name), "rb") as src, open(os.path.join(d, name), "wb") as dst:
                dst.write(src.read())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", nargs="?", default="tests/fixtures/images")
    ap.add_argument("--photo-npy", help="also write full photo tensors here (not committed)")
    ap.add_argument("--fuzz-dir", help="also write fuzz seeds to DIR/{accept,reject}/{jpeg,png}")
    args = ap.parse_args()
    out = Out(args.outdir)
    out.line(f"# generated by tools/oracle/gen_image_fixtures.py: PIL {Image.__version__}, "
             f"torch {torch.__version__}, torchvision {torchvision.__version__}")
    gen_jpeg(out)
    gen_png(out)
    gen_rejects(out)
    gen_preprocess(out)
    gen_preset_configs(out)
    gen_photos(out, args.photo_npy)
    with open(out.path("cases.txt"), "w") as f:
        f.write("\n".join(out.lines) + "\n")
    if args.fuzz_dir:
        write_fuzz_seeds(out, args.fuzz_dir)
    total = sum(os.path.getsize(out.path(n)) for n in os.listdir(args.outdir))
    print(f"{args.outdir}: {len(os.listdir(args.outdir))} files, {total} bytes")


if __name__ == "__main__":
    main()
