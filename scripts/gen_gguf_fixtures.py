#!/usr/bin/env python3
"""Writes tests/data/gguf/tiny.gguf with gguf-py (an independent GGUF writer) and, next to it,
tiny.json with every value the Rust parser must read back (tests/gguf_parser.rs).

The file has metadata of every value type (nested arrays and a string array included), a
custom alignment of 64, and four small tensors (Q8_0, Q4_K, F16, F32). The last tensor is
256 bytes, a multiple of the alignment, so the file ends exactly where its data ends and every
proper prefix of the file is invalid (the truncation test relies on it).

Usage: python3 scripts/gen_gguf_fixtures.py   (deterministic: fixed seed)
"""
import json
from pathlib import Path

import numpy as np
import gguf
from gguf import GGUFValueType as VT, GGMLQuantizationType as QT

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "gguf"
ALIGNMENT = 64

# key -> (value type name in tiny.json, gguf-py type, value, array element type or None)
SCALARS = [
    ("test.u8", "u8", VT.UINT8, 200),
    ("test.i8", "i8", VT.INT8, -100),
    ("test.u16", "u16", VT.UINT16, 60000),
    ("test.i16", "i16", VT.INT16, -30000),
    ("test.u32", "u32", VT.UINT32, 4000000000),
    ("test.i32", "i32", VT.INT32, -2000000000),
    ("test.u64", "u64", VT.UINT64, 18000000000000000000),
    ("test.i64", "i64", VT.INT64, -9000000000000000000),
    ("test.f32", "f32", VT.FLOAT32, -1.25),
    ("test.f64", "f64", VT.FLOAT64, 3.141592653589793),
    ("test.bool_true", "bool", VT.BOOL, True),
    ("test.bool_false", "bool", VT.BOOL, False),
    ("test.string", "string", VT.STRING, "héllo, wörld ✓"),
    ("wisptest.block_count", "u32", VT.UINT32, 2),
]

ARRAYS = [
    ("test.arr_u8", "u8", VT.UINT8, [0, 1, 255]),
    ("test.arr_i8", "i8", VT.INT8, [-128, 0, 127]),
    ("test.arr_u16", "u16", VT.UINT16, [1, 65535]),
    ("test.arr_i16", "i16", VT.INT16, [-32768, 32767]),
    ("test.arr_u32", "u32", VT.UINT32, [7, 4294967295]),
    ("test.arr_i32", "i32", VT.INT32, [-1, 2, -3]),
    ("test.arr_u64", "u64", VT.UINT64, [18446744073709551615, 0]),
    ("test.arr_i64", "i64", VT.INT64, [-9223372036854775808, 9223372036854775807]),
    ("test.arr_f32", "f32", VT.FLOAT32, [0.5, -2.0, 1e-3]),
    ("test.arr_f64", "f64", VT.FLOAT64, [0.1, -1e300]),
    ("test.arr_bool", "bool", VT.BOOL, [True, False, True]),
    ("tokenizer.ggml.tokens", "string", VT.STRING, ["<pad>", "<eos>", "a", "ab", "▁the", "🙂", ""]),
]

# Nested arrays: gguf-py infers inner element types (Python int -> i32, str -> string).
NESTED = [
    ("test.nested_i32", [[1, 2], [3, 4, 5], [6]]),
    ("test.nested_str", [["x", "yz"], ["", "w"]]),
    ("test.nested3", [[[1], [2, 3]], [[4, 5, 6]]]),
]


def json_nested(v):
    """Nested Python list -> {"elem": type, "value": [...]} as tiny.json describes arrays."""
    if isinstance(v[0], list):
        return {"elem": "array", "value": [json_nested(x) for x in v]}
    if isinstance(v[0], str):
        return {"elem": "string", "value": v}
    return {"elem": "i32", "value": v}


def main():
    rng = np.random.default_rng(1234)
    w = gguf.GGUFWriter(None, "wisptest")
    w.add_custom_alignment(ALIGNMENT)
    expected_meta = [
        ["general.architecture", {"type": "string", "value": "wisptest"}],
        ["general.alignment", {"type": "u32", "value": ALIGNMENT}],
    ]
    for key, name, vt, val in SCALARS:
        w.add_key_value(key, val, vt)
        expected_meta.append([key, {"type": name, "value": val}])
    for key, name, vt, val in ARRAYS:
        w.add_key_value(key, val, VT.ARRAY, sub_type=vt)
        expected_meta.append([key, {"type": "array", "elem": name, "value": val}])
    for key, val in NESTED:
        w.add_key_value(key, val, VT.ARRAY)
        expected_meta.append([key, {"type": "array", **json_nested(val)}])

    # Tensors, numpy shape (rows..., row_len); GGUF stores dims reversed (ggml order).
    q8_src = rng.standard_normal((2, 64)).astype(np.float32)
    q8 = gguf.quants.quantize(q8_src, QT.Q8_0)
    # gguf-py cannot quantize Q4_K: random blocks with small finite f16 d and dmin.
    q4k = rng.integers(0, 256, size=(2, 144), dtype=np.uint8)
    q4k[:, 0:4] = np.array([0.01, 0.002], dtype=np.float16).view(np.uint8)
    f16 = rng.standard_normal((4, 8)).astype(np.float16)
    f32 = rng.standard_normal((2, 2, 16)).astype(np.float32)
    w.add_tensor("blk.0.ffn_down.weight", q8, raw_dtype=QT.Q8_0)
    w.add_tensor("blk.0.attn_q.weight", q4k, raw_dtype=QT.Q4_K)  # byte shape (2, 144) -> (2, 256)
    w.add_tensor("output_norm.weight", f16)
    w.add_tensor("token_embd.weight", f32)  # last: 256 bytes, a multiple of ALIGNMENT

    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "tiny.gguf"
    w.write_header_to_file(path)
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    # Offsets and sizes from gguf-py's own reader, an implementation independent of Wisp's.
    r = gguf.GGUFReader(path)
    data = path.read_bytes()
    tensors = []
    for t in r.tensors:
        tensors.append({
            "name": t.name,
            "dims": [int(d) for d in t.shape],
            "type": int(t.tensor_type),
            "type_name": t.tensor_type.name,
            "offset": int(t.data_offset - r.data_offset),
            "n_elements": int(t.n_elements),
            "n_bytes": int(t.n_bytes),
            "data_hex": data[t.data_offset:t.data_offset + t.n_bytes].hex(),
        })
    last = r.tensors[-1]
    assert last.data_offset + last.n_bytes == len(data), "file must end at the last tensor's data"
    expected = {
        "version": 3,
        "alignment": ALIGNMENT,
        "data_offset": int(r.data_offset),
        "file_len": len(data),
        "metadata": expected_meta,
        "tensors": tensors,
    }
    (OUT / "tiny.json").write_text(json.dumps(expected, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {path} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
