#!/usr/bin/env python3
"""Recreate fuzz/accept/<target>/ and fuzz/reject/<target>/ (the seed sets replayed by
tests/run_replay.sh) deterministically. Standard library only.

  python3 tools/make_fuzz_seeds.py [REPO_ROOT]

Every file in fuzz/accept/X must be accepted by the parser and every file in fuzz/reject/X
rejected; both sets are also good starting points for fuzzing:
  build-fuzz/fuzz_X fuzz/corpus/X fuzz/accept/X fuzz/reject/X
fuzz/corpus/X (minimised libFuzzer output) is not touched here.
"""
import json
import os
import struct
import sys


def st_image(tensors, metadata=None, pad=True, extra_data=b"", trailing=b""):
    """A safetensors image from [(name, dtype, shape, data_bytes)], offsets laid out in order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name, dtype, shape, blob in tensors:
        header[name] = {"dtype": dtype, "shape": shape,
                        "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":")).encode() + trailing
    if pad:
        text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs) + extra_data


def st_raw(header_text, data=b"", length=None):
    """A safetensors image with a hand-written header (and optionally a lying length)."""
    if isinstance(header_text, str):
        header_text = header_text.encode()
    n = len(header_text) if length is None else length
    return struct.pack("<Q", n) + header_text + data


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def safetensors_sets():
    two_by_three = f32(1, 2, 3, 4, 5, 6)
    accept = {
        "empty_header.safetensors": st_image([]),
        "f32_2x3.safetensors": st_image([("w", "F32", [2, 3], two_by_three)]),
        "i64_scalar.safetensors": st_image([("n", "I64", [], struct.pack("<q", 12345))]),
        "f16.safetensors": st_image([("h", "F16", [4], struct.pack("<4H", 0x3C00, 0xC000,
                                                                     0x7BFF, 0x0001))]),
        "mixed_metadata.safetensors": st_image(
            [("a.weight", "F32", [2, 2], f32(1, -1, 0.5, 2)),
             ("a.num_batches_tracked", "I64", [], struct.pack("<q", 7)),
             ("b", "BF16", [2], struct.pack("<2H", 0x3F80, 0xC040)),
             ("c", "F64", [1], struct.pack("<d", 3.25)),
             ("mask", "BOOL", [3], b"\x01\x00\x01")],
            metadata={"format": "pt", "effnet.name": "b0"}),
        "zero_size.safetensors": st_image([("empty", "F32", [0, 3], b""),
                                           ("x", "F32", [1], f32(1))]),
        "unpadded_header.safetensors": st_image([("w", "F32", [1], f32(2))], pad=False),
        "wide_padding.safetensors": st_image([("w", "F32", [1], f32(2))], trailing=b" " * 37),
        "other_dtypes.safetensors": st_image([("f8", "F8_E4M3", [2], b"\x38\x40"),
                                              ("f4", "F4", [4], b"\x12\x34"),
                                              ("c", "C64", [1], b"\0" * 8)]),
        "unicode_name.safetensors": st_raw(
            '{"caf\\u00e9.\\ud83d\\ude00":{"data_offsets":[0,4],"shape":[1],"dtype":"F32"}}',
            f32(1)),
        "key_order.safetensors": st_raw(
            '{"b":{"shape":[1],"data_offsets":[4,8],"dtype":"F32"},'
            '"a":{"data_offsets":[0,4],"dtype":"F32","shape":[1]}}   ', f32(1, 2)),
    }
    good = st_image([("w", "F32", [2, 3], two_by_three)])
    reject = {
        "empty.safetensors": b"",
        "seven_bytes.safetensors": b"\x02\0\0\0\0\0\0",
        "header_beyond_file.safetensors": st_raw("{}", length=1000),
        "header_over_100mb.safetensors": st_raw("{}", length=100000001),
        "header_not_brace.safetensors": st_raw(' {"w":{"dtype":"F32","shape":[1],'
                                               '"data_offsets":[0,4]}}', f32(1)),
        "header_array.safetensors": st_raw("[]"),
        "header_empty.safetensors": st_raw(""),
        "invalid_json.safetensors": st_raw('{"w":}'),
        "json_trailing_garbage.safetensors": st_raw("{} x"),
        "offsets_beyond_data.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32(1)),
        "offsets_overlap.safetensors": st_raw(
            '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', f32(1, 2, 3)),
        "offsets_gap.safetensors": st_raw(
            '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', f32(1, 2, 3)),
        "offsets_backwards.safetensors": st_raw(
            '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}', f32(1)),
        "uncovered_tail.safetensors": good + b"\0\0\0\0",
        "size_mismatch.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}', f32(1, 2, 3)),
        "negative_dim.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}', f32(1)),
        "float_dim.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}}', f32(1)),
        "rank_9.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,4]}}', f32(1)),
        "shape_overflow.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,4]}}',
            f32(1)),
        "bytes_overflow.safetensors": st_raw(
            '{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}',
            b"\0" * 8),
        "unknown_dtype.safetensors": st_raw(
            '{"w":{"dtype":"F12","shape":[1],"data_offsets":[0,4]}}', f32(1)),
        "dtype_not_string.safetensors": st_raw(
            '{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}', f32(1)),
        "f4_partial_byte.safetensors": st_raw(
            '{"w":{"dtype":"F4","shape":[3],"data_offsets":[0,1]}}', b"\0"),
        "duplicate_name.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
            '"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', f32(1, 2)),
        "duplicate_key_in_entry.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"dtype":"F32"}}', f32(1)),
        "missing_offsets.safetensors": st_raw('{"w":{"dtype":"F32","shape":[1]}}', f32(1)),
        "extra_key.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}', f32(1)),
        "entry_not_object.safetensors": st_raw('{"w":[1,2]}'),
        "three_offsets.safetensors": st_raw(
            '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,4]}}', f32(1)),
        "metadata_value_number.safetensors": st_raw('{"__metadata__":{"format":1}}'),
        "metadata_not_object.safetensors": st_raw('{"__metadata__":"pt"}'),
        "metadata_duplicate_key.safetensors": st_raw(
            '{"__metadata__":{"a":"1","a":"2"}}'),
        "metadata_twice.safetensors": st_raw('{"__metadata__":{},"__metadata__":{}}'),
        "name_with_nul.safetensors": st_raw(
            '{"a\\u0000b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32(1)),
        "name_bad_utf8.safetensors": st_raw(
            b'{"\xc3\x28":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32(1)),
        "name_lone_surrogate.safetensors": st_raw(
            '{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32(1)),
        "control_char.safetensors": st_raw(
            '{"a\tb":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32(1)),
        "deep_nesting.safetensors": st_raw('{"__metadata__":' + "[" * 70 + "]" * 70 + "}"),
        "truncated_data.safetensors": good[:-4],
    }
    return accept, reject


def npy_image(descr="<f4", fortran=False, shape=(2, 3), data=None, version=(1, 0),
              header=None, pad_to=64):
    """A .npy image; header overrides the dict text, data defaults to zeros of the shape."""
    if header is None:
        dims = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
        header = "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }" % (
            descr, "True" if fortran else "False", dims)
    text = header.encode("latin-1")
    prefix = 10 if version[0] == 1 else 12
    total = prefix + len(text) + 1
    text += b" " * ((pad_to - total % pad_to) % pad_to) + b"\n"
    if data is None:
        n = 1
        for d in shape:
            n *= d
        data = struct.pack("<%df" % n, *([0.5] * n))
    lenfmt = "<H" if version[0] == 1 else "<I"
    return (b"\x93NUMPY" + bytes(version) + struct.pack(lenfmt, len(text)) + text + data)


def npy_sets():
    accept = {
        "f4_2x3.npy": npy_image(data=f32(1, 2, 3, 4, 5, 6)),
        "f8_3.npy": npy_image(descr="<f8", shape=(3,), data=struct.pack("<3d", 1, 2.5, -3)),
        "scalar.npy": npy_image(shape=(), data=f32(42)),
        "vector.npy": npy_image(shape=(5,)),
        "zero_size.npy": npy_image(shape=(0, 3), data=b""),
        "version_2.npy": npy_image(version=(2, 0)),
        "version_3.npy": npy_image(version=(3, 0)),
        "trailing_comma.npy": npy_image(
            header="{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3,), }"),
        "key_order_quotes.npy": npy_image(
            header='{"shape":(2,3),"fortran_order":False,"descr":"<f4"}'),
        "python2_long.npy": npy_image(
            header="{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }"),
        "unaligned_header.npy": npy_image(pad_to=1),
        "extra_trailing_data.npy": npy_image(shape=(2,), data=f32(1, 2, 3)),
    }
    good = npy_image(data=f32(1, 2, 3, 4, 5, 6))
    reject = {
        "empty.npy": b"",
        "bad_magic.npy": b"\x93NUMPX" + good[6:],
        "truncated_preamble.npy": good[:9],
        "truncated_header.npy": good[:40],
        "header_beyond_file.npy": good[:8] + struct.pack("<H", 4000) + good[10:],
        "header_beyond_file_v2.npy": b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0)
        + b"{}",
        "version_4.npy": npy_image(version=(4, 0)),
        "version_1_1.npy": npy_image(version=(1, 1)),
        "fortran_order.npy": npy_image(fortran=True),
        "big_endian.npy": npy_image(descr=">f4"),
        "int32.npy": npy_image(descr="<i4"),
        "float16.npy": npy_image(descr="<f2", data=b"\0" * 12),
        "object.npy": npy_image(descr="|O", data=b"\0" * 48),
        "structured.npy": npy_image(
            header="{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, "
                   "'shape': (2,), }", data=f32(1, 2, 3, 4)),
        "truncated_data.npy": good[:-4],
        "shape_overflow.npy": npy_image(shape=(2 ** 40, 2 ** 40), data=b""),
        "shape_huge.npy": npy_image(shape=(2 ** 31,), data=f32(1)),
        "dim_too_big.npy": npy_image(header="{'descr': '<f4', 'fortran_order': False, "
                                            "'shape': (99999999999999999999,), }", data=b""),
        "negative_dim.npy": npy_image(header="{'descr': '<f4', 'fortran_order': False, "
                                             "'shape': (-1,), }", data=b""),
        "shape_not_tuple.npy": npy_image(header="{'descr': '<f4', 'fortran_order': False, "
                                                "'shape': (5), }", data=f32(1, 2, 3, 4, 5)),
        "shape_list.npy": npy_image(header="{'descr': '<f4', 'fortran_order': False, "
                                           "'shape': [2, 3], }"),
        "nine_dims.npy": npy_image(shape=(1,) * 9, data=f32(1)),
        "missing_key.npy": npy_image(header="{'descr': '<f4', 'shape': (2, 3), }"),
        "extra_key.npy": npy_image(header="{'descr': '<f4', 'fortran_order': False, "
                                          "'shape': (2, 3), 'x': 1, }"),
        "repeated_key.npy": npy_image(header="{'descr': '<f4', 'descr': '<f4', "
                                             "'fortran_order': False, 'shape': (2, 3), }"),
        "fortran_not_bool.npy": npy_image(header="{'descr': '<f4', 'fortran_order': 0, "
                                                 "'shape': (2, 3), }"),
        "unterminated_dict.npy": npy_image(header="{'descr': '<f4', 'fortran_order': False, "
                                                  "'shape': (2, 3)"),
        "garbage_after_dict.npy": npy_image(header="{'descr': '<f4', 'fortran_order': False, "
                                                   "'shape': (2, 3), } x"),
        "escape_in_string.npy": npy_image(header="{'descr': '<f\\x34', 'fortran_order': False, "
                                                 "'shape': (2, 3), }"),
    }
    return accept, reject


def json_sets():
    accept = {
        "object.json": b'{"a": 1, "b": [true, false, null], "c": {"d": "e"}}',
        "config.json": json.dumps({
            "architecture": "tf_efficientnet_b0", "num_classes": 1000, "num_features": 1280,
            "pretrained_cfg": {"input_size": [3, 224, 224], "mean": [0.485, 0.456, 0.406],
                               "std": [0.229, 0.224, 0.225], "crop_pct": 0.875,
                               "interpolation": "bicubic", "license": "apache-2.0"}},
            indent=2).encode() + b"\n",
        "numbers.json": b"[0, -0, 1, -1, 9223372036854775807, -9223372036854775808, "
                        b"9223372036854775808, 1.5, -2.25e-3, 1E+2, 5e-400]",
        "strings.json": b'["", "\\"\\\\\\/\\b\\f\\n\\r\\t", "\\u00e9\\u4e2d\\ud83d\\ude00", '
                        b'"\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80", "\\u0000"]',
        "scalar.json": b"  42  ",
        "trailing_spaces.json": b'{"a":"b"}' + b" " * 30,
        "depth_64.json": b"[" * 64 + b"]" * 64,
        "duplicate_keys.json": b'{"a": 1, "a": 2}',
        "empty_containers.json": b'{"a": {}, "b": [], "c": [{}]}',
    }
    reject = {
        "empty.json": b"",
        "whitespace.json": b"   \n",
        "trailing_garbage.json": b'{"a": 1} x',
        "two_values.json": b"1 2",
        "depth_65.json": b"[" * 65 + b"]" * 65,
        "lone_high_surrogate.json": b'"\\ud800"',
        "lone_low_surrogate.json": b'"\\udc00"',
        "bad_escape.json": b'"\\x41"',
        "short_unicode_escape.json": b'"\\u12"',
        "control_char.json": b'"a\nb"',
        "bad_utf8_continuation.json": b'"\x80"',
        "bad_utf8_overlong.json": b'"\xc0\xaf"',
        "bad_utf8_surrogate.json": b'"\xed\xa0\x80"',
        "bad_utf8_too_big.json": b'"\xf4\x90\x80\x80"',
        "bad_utf8_truncated.json": b'"\xe4\xb8"',
        "leading_zero.json": b"01",
        "leading_plus.json": b"+1",
        "bare_dot.json": b"1.",
        "no_int_part.json": b".5",
        "bad_exponent.json": b"1e",
        "number_overflow.json": b"1e400",
        "nan.json": b"NaN",
        "single_quotes.json": b"{'a': 1}",
        "trailing_comma_array.json": b"[1,]",
        "trailing_comma_object.json": b'{"a":1,}',
        "unterminated_string.json": b'"abc',
        "unterminated_array.json": b"[1, 2",
        "unterminated_object.json": b'{"a": 1',
        "missing_colon.json": b'{"a" 1}',
        "key_not_string.json": b"{1: 2}",
        "comment.json": b"[1] // c",
        "bad_literal.json": b"tru",
        "nul_byte.json": b"[1]\x00",
    }
    return accept, reject


def write_set(root, kind, target, files):
    path = os.path.join(root, "fuzz", kind, target)
    os.makedirs(path, exist_ok=True)
    for old in os.listdir(path):  # the set is exactly what this script generates
        os.remove(os.path.join(path, old))
    for name in sorted(files):
        with open(os.path.join(path, name), "wb") as fp:
            fp.write(files[name])


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    for target, sets in (("safetensors", safetensors_sets), ("npy", npy_sets),
                         ("json", json_sets)):
        accept, reject = sets()
        write_set(root, "accept", target, accept)
        write_set(root, "reject", target, reject)
        print("%s: %d accept, %d reject" % (target, len(accept), len(reject)))


if __name__ == "__main__":
    main()
