// Shared by the weight kernels: the raw weight buffer and byte-addressed loads.
// The K-quants stay in GGUF's block layout (Q3_K's 110 and Q6_K's 210-byte blocks are not u32
// aligned, so their fields are read by byte address); the 32-value formats are repacked at upload
// into 16-byte-aligned groups of 8 blocks (gpu::buffer's Repack, `packed` below).
// Kernels read the weights only through w1 (u32 word i) and w4 (16-byte word i).

#if NO_LOADS
// Measurement only (`WISP_MEASURE=no-weight-loads`): the weight words are made up from their
// index, so a kernel does all its arithmetic and reads no weights. The results are meaningless;
// the time is the kernel's arithmetic, x's loads and its dispatch (ARCHITECTURE.md, "Mesa 25's
// lavapipe"). The mask keeps every f16 field finite.
fn w4(i: u32) -> vec4<u32> {
    let h = i * 2654435761u;
    return vec4<u32>(h, h ^ 0x9e3779b9u, h + 0x7f4a7c15u, h * 3u) & vec4<u32>(0x3bff3bffu);
}

fn w1(i: u32) -> u32 {
    return ((i >> 2u) * 2654435761u ^ (i & 3u)) & 0x3bff3bffu;
}
#else
#if TEX
// The weights held in an rgba32uint texture instead of a storage buffer (the adapters whose
// texture loads cost less than storage loads, measured: bench::FamilyProbe). Texel i holds the
// buffer's bytes [16i, 16i + 16), TEX_WIDTH texels per texture row (gpu::buffer::TEX_WIDTH).
@group(0) @binding(1) var WT: texture_2d<u32>;

fn w4(i: u32) -> vec4<u32> {
    return textureLoad(WT, vec2<u32>(i & (TEX_WIDTH - 1u), i / TEX_WIDTH), 0);
}

fn w1(i: u32) -> u32 {
    let v = w4(i >> 2u);
    let k = i & 3u;
    return select(select(v.x, v.y, k == 1u), select(v.z, v.w, k == 3u), k >= 2u);
}
#else
@group(0) @binding(1) var<storage, read> W: array<u32>;
// The same buffer as W again, as 16-byte words: one load for four aligned words.
@group(0) @binding(5) var<storage, read> W4: array<vec4<u32>>;

fn w1(i: u32) -> u32 {
    return W[i];
}

fn w4(i: u32) -> vec4<u32> {
    return W4[i];
}
#endif
#endif
#if WH
// The same buffer as W, bound a second time as pairs of f16 (T1+): half fields load natively.
@group(0) @binding(4) var<storage, read> WH: array<vec2<f16>>;
#endif

// 32 consecutive dequantized elements of a row.
alias V32 = array<vec4<f32>, 8>;

// b must be even (every f16 field of every block format is at an even offset).
fn ld16(b: u32) -> u32 {
    return (w1(b >> 2u) >> ((b & 2u) << 3u)) & 0xffffu;
}

// The f16 at even byte address b, as f32 (exact: every f16 is an f32).
fn half_at(b: u32) -> f32 {
#if WH
    return f32(WH[b >> 2u][(b >> 1u) & 1u]);
#else
    return unpack2x16float(ld16(b)).x;
#endif
}

// The two f16 at byte address b (a multiple of 4), as f32.
fn halves_at(b: u32) -> vec2<f32> {
#if WH
    return vec2<f32>(WH[b >> 2u]);
#else
    return unpack2x16float(w1(b >> 2u));
#endif
}

// The four bytes of w, low byte first.
fn bytes4(w: u32) -> vec4<u32> {
    return (vec4<u32>(w) >> vec4<u32>(0u, 8u, 16u, 24u)) & vec4<u32>(0xffu);
}

// The four bytes of w as signed 8-bit values.
fn sbytes4(w: u32) -> vec4<i32> {
    return (vec4<i32>(bitcast<i32>(w)) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
}

// Where block `blk` of row `row` of the binding is: byte address row_base(row) + blk · BLK_STRIDE,
// as the format files take it (GGUF's byte offset of the block, in the order the blocks are
// stored). With rows interleaved by eight (ROWS8, gpu::buffer::ROWS8) the blocks are stored
// octet by octet of rows: block blk of rows 8o..8o+7 side by side, so adjacent rows' blocks are
// adjacent.
fn row_base(row: u32) -> u32 {
#if ROWS8
    return (row >> 3u) * (8u * P.row_bytes) + (row & 7u) * BLOCK_BYTES;
#else
    return row * P.row_bytes;
#endif
}

#if ROWS8
const BLK_STRIDE: u32 = 8u * BLOCK_BYTES;
#else
const BLK_STRIDE: u32 = BLOCK_BYTES;
#endif

// A block of a repacked 32-value format (gpu::buffer's Repack): the block at GGUF byte offset b
// is block j of the 8-block group that starts at byte g (16-byte aligned). BLOCK_BYTES is the
// format's.
struct Packed {
    g: u32,
    j: u32,
}

fn packed(b: u32) -> Packed {
    let blk = b / BLOCK_BYTES;
    return Packed((blk >> 3u) * (8u * BLOCK_BYTES), blk & 7u);
}

// A Q5 block's 32 five-bit quants, four per u32 (word i: values 4i..4i+3), from its 16 quant
// bytes and its transposed high bits (gpu::buffer's transpose_qh: bit 8·b + k is value 4k + b's).
fn q5_words(qs: vec4<u32>, qh: u32) -> array<u32, 8> {
    var q: array<u32, 8>;
    for (var i = 0u; i < 4u; i++) {
        q[i] = (qs[i] & 0x0f0f0f0fu) | ((qh << (4u - i)) & 0x10101010u);
        q[i + 4u] = ((qs[i] >> 4u) & 0x0f0f0f0fu) | ((qh >> i) & 0x10101010u);
    }
    return q;
}

// The u32 starting `sh` bits into the 64-bit little-endian pair (lo, hi); sh in {0, 8, 16, 24}.
fn funnel(lo: u32, hi: u32, sh: u32) -> u32 {
    return select((lo >> sh) | (hi << (32u - sh)), lo, sh == 0u);
}

// (d * scale, dmin * min) of sub-block s of the Q4_K/Q5_K block at byte b (16-byte aligned):
// the two factors of x = (d * sc) * q - (dmin * m).
fn dl_ml_k4(b: u32, s: u32) -> vec2<f32> {
    let hdr = w4(b >> 4u);
    let dd = unpack2x16float(hdr.x);
    let sm = scale_min_k4(hdr, s);
    return vec2<f32>(dd.x * sm.x, dd.y * sm.y);
}

// (scale, min) of sub-block s of a Q4_K/Q5_K block whose first 16 bytes are hdr:
// hdr.x = d | dmin, hdr.y..w = the 12 bytes of 6-bit scales and mins. Branch-free.
fn scale_min_k4(hdr: vec4<u32>, s: u32) -> vec2<f32> {
    let t = (s & 3u) * 8u;
    let lo_sc = (hdr.y >> t) & 63u;
    let lo_m = (hdr.z >> t) & 63u;
    let hi_sc = ((hdr.w >> t) & 15u) | (((hdr.y >> (t + 6u)) & 3u) << 4u);
    let hi_m = ((hdr.w >> (t + 4u)) & 15u) | (((hdr.z >> (t + 6u)) & 3u) << 4u);
    let hi = s >= 4u;
    return vec2<f32>(f32(select(lo_sc, hi_sc, hi)), f32(select(lo_m, hi_m, hi)));
}

// Nine consecutive u32 words starting at word index w, with three 16-byte loads (software adapters
// pay per load instruction, not per byte). The word offset inside the first vec4 picks the words
// with selects, never with a dynamic array index.
fn words9(w: u32) -> array<u32, 9> {
    let q = w >> 2u;
    let a = w4(q);
    let b = w4(q + 1u);
    let c = w4(q + 2u);
    let t = array<u32, 12>(a.x, a.y, a.z, a.w, b.x, b.y, b.z, b.w, c.x, c.y, c.z, c.w);
    let o = w & 3u;
    var r: array<u32, 9>;
    for (var j = 0u; j < 9u; j++) {
        r[j] = select(select(t[j], t[j + 1u], o == 1u), select(t[j + 2u], t[j + 3u], o == 3u), o >= 2u);
    }
    return r;
}

// The 32 bytes at byte address p (any alignment) as eight u32 words.
fn run32(p: u32) -> array<u32, 8> {
    let w = words9(p >> 2u);
    let sh = (p & 3u) << 3u;
    var r: array<u32, 8>;
    for (var j = 0u; j < 8u; j++) {
        r[j] = funnel(w[j], w[j + 1u], sh);
    }
    return r;
}
