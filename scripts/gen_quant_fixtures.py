#!/usr/bin/env python3
"""Generate the block-format fixtures in tests/data/quant/ (see the README written there).

For every block format Wisp supports this writes `<TYPE>.bin` (raw blocks) and `<TYPE>.f32`
(gguf-py's `gguf.quants.dequantize` of the whole .bin, little-endian f32). The Rust test
`tests/quant_fixtures.rs` checks `wisp::quant::dequantize` against them bit for bit.

Blocks per format, in this order:
  - coverage: every value of every quant field at every position (nibbles, 2-bit crumbs,
    single bits, Q5 5-bit values); for 6-bit K-quant scales/mins and 8-bit fields every value
    in every packing position class, with every bit toggling at every position;
  - scales: the f16 scale fields (d, dmin, Q4_1/Q5_1 m) set to extreme values
    (+-65504, +-min subnormal, max subnormal, min normal, +-0, +-inf, quiet/signaling/negative
    NaN with payloads) alone and in pairs, over quants that contain 0 and nonzero values;
  - random: uniformly random bytes.

Run from the repository root: python3 scripts/gen_quant_fixtures.py
Needs numpy and gguf (gguf-py). Deterministic: same versions, same bytes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "quant"
SEED = 0x5715_0001

# f16 bit patterns for scale fields: what each does through numpy's f16 -> f32 conversion is
# noted in the README (signaling NaNs stay signaling until the first arithmetic op).
F16_MAX, F16_NMAX = 0x7BFF, 0xFBFF
F16_SUB_MIN, F16_NSUB_MIN = 0x0001, 0x8001
F16_SUB_MAX, F16_NORM_MIN = 0x03FF, 0x0400
F16_ZERO, F16_NZERO = 0x0000, 0x8000
F16_INF, F16_NINF = 0x7C00, 0xFC00
F16_QNAN, F16_SNAN = 0x7E00, 0x7C01
F16_NQNAN_PAY, F16_QNAN_PAY = 0xFE01, 0x7F55
F16_ONE, F16_NEG = 0x3C00, 0xB555

SPECIAL = [
    F16_MAX, F16_NMAX, F16_SUB_MIN, F16_NSUB_MIN, F16_SUB_MAX, F16_NORM_MIN, F16_ZERO, F16_NZERO,
    F16_INF, F16_NINF, F16_QNAN, F16_SNAN, F16_NQNAN_PAY, F16_QNAN_PAY, F16_ONE, F16_NEG,
]
# Smaller set for 256-element blocks, to keep the fixtures small.
SPECIAL_K = [
    F16_MAX, F16_NMAX, F16_SUB_MIN, F16_NZERO, F16_ZERO, F16_INF, F16_NINF, F16_QNAN, F16_SNAN,
    F16_NQNAN_PAY,
]
# Both scale fields special at once: NaN payload order, inf - inf, signed zeros, ...
PAIRS = [
    (F16_QNAN, F16_QNAN_PAY), (F16_QNAN_PAY, F16_QNAN), (F16_SNAN, F16_NQNAN_PAY),
    (F16_NQNAN_PAY, F16_SNAN), (F16_INF, F16_INF), (F16_NINF, F16_NINF), (F16_INF, F16_NINF),
    (F16_MAX, F16_NMAX), (F16_NZERO, F16_NZERO), (F16_SUB_MIN, F16_NSUB_MIN),
]
PAIRS_K = PAIRS[:7]

rng = np.random.default_rng(SEED)


def h16(bits: int) -> bytes:
    return int(bits).to_bytes(2, "little")


def rand_scale() -> int:
    """A random normal f16 in +-[2^-12, 2^-2), as bits."""
    mag = rng.uniform(2.0**-12, 2.0**-2)
    sign = -1.0 if rng.random() < 0.25 else 1.0
    return int(np.array([sign * mag], dtype=np.float16).view(np.uint16)[0])


def rand_bytes(n: int) -> bytes:
    return rng.integers(0, 256, n, dtype=np.uint8).tobytes()


# ---- byte patterns over a coverage block index k -------------------------------------------

def nibbles(k: int, n: int) -> bytes:
    """n bytes; over k = 0..15 each nibble of each byte takes all 16 values, and every block
    holds every nibble value in both halves."""
    return bytes(((k ^ i) & 15) | (((k + 3 * i) & 15) << 4) for i in range(n))


def crumbs(k: int, n: int) -> bytes:
    """n bytes of four 2-bit fields; over k = 0..3 (mod 4) each takes all 4 values."""
    return bytes(sum(((k + i + c) & 3) << (2 * c) for c in range(4)) for i in range(n))


def bits(k: int, n: int) -> bytes:
    """n bytes of eight 1-bit fields; over k = 0..1 (mod 2) each takes both values."""
    return bytes(sum(((k + i + b) & 1) << b for b in range(8)) for i in range(n))


def bytes8(k: int, n: int) -> bytes:
    """n bytes; over k = 0..15 each position sees all 16 high nibbles and 16 low nibbles,
    and every byte value occurs exactly n / 16 times overall."""
    return bytes((k << 4) | ((i ^ k) & 15) for i in range(n))


def six(k: int, t: int) -> int:
    """6-bit value for coverage block k (0..15) at position t of a 4-position class: over
    (k, t) every 6-bit value exactly once, and at each t every bit takes both values."""
    return (k << 2) | ((t ^ k) & 3)


# ---- packers for the packed scale fields ----------------------------------------------------

def pack_scale_min_k4(sc: list[int], mn: list[int]) -> bytes:
    """Inverse of gguf-py's Q4_K.get_scale_min (ggml get_scale_min_k4): 8 six-bit scales and
    8 six-bit mins into 12 bytes."""
    b = [0] * 12
    for j in range(4):
        b[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6)
        b[j + 4] = (mn[j] & 63) | ((mn[j + 4] >> 4) << 6)
        b[j + 8] = (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4)
    return bytes(b)


def pack_scales_q3k(sc: list[int]) -> bytes:
    """Inverse of gguf-py's Q3_K scale unpacking: 16 six-bit (biased) scales into 12 bytes."""
    b = [0] * 12
    for j in range(16):
        b[j % 8] |= (sc[j] & 15) << (4 * (j // 8))
        b[8 + j % 4] |= (sc[j] >> 4) << (2 * (j // 4))
    return bytes(b)


def k4_coverage_scales(k: int) -> bytes:
    sc = [six(k, t) for t in range(4)] + [six((k + 5) & 15, t) for t in range(4)]
    mn = [six((k + 9) & 15, t) for t in range(4)] + [six((k + 13) & 15, t) for t in range(4)]
    return pack_scale_min_k4(sc, mn)


# Fixed scale fields for the special-scale blocks: sc and m both 0, either 0, extremes.
K4_SPECIAL_SCALES = pack_scale_min_k4([0, 0, 63, 1, 0, 63, 17, 32], [0, 63, 0, 1, 63, 0, 40, 2])
Q3K_SPECIAL_SCALES = pack_scales_q3k([0, 32, 63, 31, 33, 1, 32, 0, 63, 62, 32, 5, 40, 0, 20, 32])
Q2K_SPECIAL_SCALES = bytes([0x00, 0x0F, 0xF0, 0xFF, 0x10, 0x01, 0x00, 0x8F,
                            0xF8, 0x00, 0x11, 0xF0, 0x0F, 0x77, 0x00, 0xFF])
Q6K_SPECIAL_SCALES = bytes([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x00, 0x40, 0xC0,
                            0x00, 0x7F, 0x80, 0x01, 0x00, 0xFE, 0x00, 0x20])


# ---- the formats ----------------------------------------------------------------------------
# Each returns a list of blocks (bytes) in ggml's field order.

def one_scale(name, size, rest_cov, n_cov, rest_special, scales=SPECIAL, n_rand=16):
    """Formats with one f16 scale `d` in front (legacy) or at the back (K-quants)."""
    front = name in ("Q4_0", "Q5_0", "Q8_0")

    def blk(d: int, rest: bytes) -> bytes:
        b = h16(d) + rest if front else rest + h16(d)
        assert len(b) == size, (name, len(b))
        return b

    blocks = [blk(rand_scale(), rest_cov(k)) for k in range(n_cov)]
    blocks += [blk(s, rest_special) for s in scales]
    blocks += [rand_bytes(size) for _ in range(n_rand)]
    return blocks


def two_scales(name, size, rest_cov, n_cov, rest_special, scales, n_rand, scales_front=True,
               pairs=PAIRS):
    """Formats with two f16 scales (d and m / dmin)."""

    def blk(d: int, m: int, rest: bytes) -> bytes:
        b = h16(d) + h16(m) + rest if scales_front else rest + h16(d) + h16(m)
        assert len(b) == size, (name, len(b))
        return b

    blocks = [blk(rand_scale(), rand_scale(), rest_cov(k)) for k in range(n_cov)]
    blocks += [blk(s, F16_ONE, rest_special) for s in scales]
    blocks += [blk(F16_NEG, s, rest_special) for s in scales]
    blocks += [blk(d, m, rest_special) for d, m in pairs]
    blocks += [rand_bytes(size) for _ in range(n_rand)]
    return blocks


def q5_bits(k: int) -> tuple[bytes, bytes]:
    """qh (u32 LE) and qs for Q5_0/Q5_1 coverage block k: element j holds (k + j) % 32, so over
    k = 0..31 every 5-bit value is at every position."""
    q = [(k + j) % 32 for j in range(32)]
    qs = bytes((q[i] & 15) | ((q[i + 16] & 15) << 4) for i in range(16))
    qh = sum((q[j] >> 4) << j for j in range(32)).to_bytes(4, "little")
    return qh, qs


def q5_cov(k: int) -> bytes:
    qh, qs = q5_bits(k)
    return qh + qs


def build() -> dict[str, tuple[T, list[bytes]]]:
    fx: dict[str, tuple[T, list[bytes]]] = {}

    fx["Q4_0"] = (T.Q4_0, one_scale("Q4_0", 18, lambda k: nibbles(k, 16), 16, nibbles(0, 16)))
    fx["Q4_1"] = (T.Q4_1, two_scales("Q4_1", 20, lambda k: nibbles(k, 16), 16, nibbles(0, 16),
                                     SPECIAL, 16))
    fx["Q5_0"] = (T.Q5_0, one_scale("Q5_0", 22, q5_cov, 32, q5_cov(0)))
    fx["Q5_1"] = (T.Q5_1, two_scales("Q5_1", 24, q5_cov, 32, q5_cov(0), SPECIAL, 16))
    fx["Q8_0"] = (T.Q8_0, one_scale("Q8_0", 34, lambda k: bytes8(k, 32), 16,
                                    bytes(range(0, 256, 8))))

    # Q2_K: scales[16] (lo nibble scale, hi nibble min), qs[64], d, dmin.
    fx["Q2_K"] = (T.Q2_K, two_scales(
        "Q2_K", 84, lambda k: bytes8(k, 16) + crumbs(k, 64), 16,
        Q2K_SPECIAL_SCALES + crumbs(0, 64), SPECIAL_K, 4, scales_front=False, pairs=PAIRS_K))

    # Q3_K: hmask[32], qs[64], scales[12], d.
    def q3k_cov(k: int) -> bytes:
        sc = [six(k, j & 3) if j < 8 else six((k + 7) & 15, j & 3) for j in range(16)]
        return bits(k, 32) + crumbs(k, 64) + pack_scales_q3k(sc)

    fx["Q3_K"] = (T.Q3_K, one_scale("Q3_K", 110, q3k_cov, 16,
                                    bits(0, 32) + crumbs(0, 64) + Q3K_SPECIAL_SCALES,
                                    SPECIAL_K, n_rand=4))

    # Q4_K: d, dmin, scales[12], qs[128].
    fx["Q4_K"] = (T.Q4_K, two_scales(
        "Q4_K", 144, lambda k: k4_coverage_scales(k) + nibbles(k, 128), 16,
        K4_SPECIAL_SCALES + nibbles(0, 128), SPECIAL_K, 4, pairs=PAIRS_K))

    # Q5_K: d, dmin, scales[12], qh[32], qs[128].
    fx["Q5_K"] = (T.Q5_K, two_scales(
        "Q5_K", 176, lambda k: k4_coverage_scales(k) + bits(k, 32) + nibbles(k, 128), 16,
        K4_SPECIAL_SCALES + bits(0, 32) + nibbles(0, 128), SPECIAL_K, 4,
        pairs=PAIRS_K))

    # Q6_K: ql[128], qh[64], scales[16] (int8), d.
    fx["Q6_K"] = (T.Q6_K, one_scale(
        "Q6_K", 210, lambda k: nibbles(k, 128) + crumbs(k, 64) + bytes8(k, 16), 16,
        nibbles(0, 128) + crumbs(0, 64) + Q6K_SPECIAL_SCALES, SPECIAL_K, n_rand=4))

    # Floats: one "block" per element.
    f16 = [s << 15 | e << 10 | m for s in (0, 1) for e in range(32)
           for m in (0, 1, 2, 0x155, 0x1FF, 0x200, 0x2AA, 0x3FF)]
    f16 += [int(x) for x in rng.integers(0, 1 << 16, 512)]
    fx["F16"] = (T.F16, [h16(x) for x in f16])

    bf16 = [s << 15 | e << 7 | m for s in (0, 1) for e in range(256) for m in (0, 1, 0x40, 0x7F)]
    bf16 += [int(x) for x in rng.integers(0, 1 << 16, 256)]
    fx["BF16"] = (T.BF16, [h16(x) for x in bf16])

    f32 = [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF,
           0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFFBFFFFF, 0x7FFFFFFF,
           0x3F800000, 0xBF800000]
    f32 += [int(x) for x in rng.integers(0, 1 << 32, 240, dtype=np.uint64)]
    fx["F32"] = (T.F32, [x.to_bytes(4, "little") for x in f32])
    return fx


def check_coverage() -> None:
    """Asserts the coverage claims of the docstring, unpacking with gguf-py where it can."""
    from gguf.quants import Q4_K

    def per_position(pattern, n_k, n_bytes, width):
        for i in range(n_bytes):
            for f in range(8 // width):
                seen = {(pattern(k, n_bytes)[i] >> (f * width)) & ((1 << width) - 1)
                        for k in range(n_k)}
                assert len(seen) == 1 << width, (pattern.__name__, i, f, seen)

    per_position(nibbles, 16, 128, 4)
    per_position(crumbs, 4, 64, 2)
    per_position(bits, 2, 32, 1)
    per_position(bytes8, 16, 32, 4)
    assert sorted(b for k in range(16) for b in bytes8(k, 16)) == list(range(256))
    for j in range(32):
        assert {q5_coverage_value(k, j) for k in range(32)} == set(range(32))

    # K4 scales/mins: every 6-bit value in each packing class (j < 4, j >= 4), per gguf-py.
    raw = np.frombuffer(b"".join(k4_coverage_scales(k) for k in range(16)), dtype=np.uint8)
    sc, mn = Q4_K.get_scale_min(raw.reshape(16, 12))
    for arr in (sc, mn):
        assert set(arr[:, :4].ravel()) == set(range(64))
        assert set(arr[:, 4:].ravel()) == set(range(64))
    sc, mn = Q4_K.get_scale_min(np.frombuffer(K4_SPECIAL_SCALES, dtype=np.uint8).reshape(1, 12))
    assert list(sc[0]) == [0, 0, 63, 1, 0, 63, 17, 32] and list(mn[0]) == [0, 63, 0, 1, 63, 0, 40, 2]

    # Q3_K scales through gguf-py: d = 1, every q = 1 (hmask bits set, crumbs 1) -> scale - 32.
    want = [six(k, j & 3) if j < 8 else six((k + 7) & 15, j & 3) for k in range(16)
            for j in range(16)]
    blocks = b"".join(b"\xff" * 32 + b"\x55" * 64 + pack_scales_q3k(want[16 * k:16 * k + 16])
                      + h16(F16_ONE) for k in range(16))
    got = dequantize(np.frombuffer(blocks, dtype=np.uint8), T.Q3_K).reshape(256, 16)[:, 0]
    assert [int(x) + 32 for x in got] == want
    assert set(want) == set(range(64))


def q5_coverage_value(k: int, j: int) -> int:
    qh, qs = q5_bits(k)
    lo = (qs[j % 16] >> (4 * (j // 16))) & 15
    return lo | (((int.from_bytes(qh, "little") >> j) & 1) << 4)


def main() -> int:
    check_coverage()
    OUT.mkdir(parents=True, exist_ok=True)
    total = 0
    for name, (qtype, blocks) in build().items():
        data = b"".join(blocks)
        out = dequantize(np.frombuffer(data, dtype=np.uint8), qtype)
        assert out.dtype == np.float32
        # Through uint32 so that no float conversion can touch a NaN payload.
        out_bytes = np.ascontiguousarray(out).reshape(-1).view(np.uint32).astype("<u4").tobytes()
        (OUT / f"{name}.bin").write_bytes(data)
        (OUT / f"{name}.f32").write_bytes(out_bytes)
        total += len(data) + len(out_bytes)
        print(f"{name:5} {len(blocks):4} blocks {len(data):7} B in {len(out_bytes):7} B out")
    print(f"total {total} bytes")
    return 0


if __name__ == "__main__":
    with np.errstate(all="ignore"):
        sys.exit(main())
