// Shared by every kernel: the parameter block, the raw weight buffer and byte-addressed loads.
// Weights stay in GGUF's block layout; blocks of 18, 22, 34, 110 or 210 bytes are not u32
// aligned, so fields are read by byte address.

struct Params {
    rows: u32,      // rows of W in this dispatch (one chunk of the tensor)
    k: u32,         // elements per row of W (= length of each column of X)
    row_bytes: u32, // bytes per row of W
    cols: u32,      // columns of X and Y (1 for matvec)
    y_offset: u32,  // index in Y of this chunk's first row
    y_stride: u32,  // elements between two columns of Y (all rows of the tensor)
    grid_x: u32,    // workgroups along x, to linearize 2-D dispatches
    n_out: u32,     // dequant: elements to write in this dispatch
    row0: u32,      // dequant: first row of the W binding this dispatch reads
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<u32>;
#if F16
// The same buffer as W, bound a second time as pairs of f16 (T1+): half fields load natively.
@group(0) @binding(4) var<storage, read> WH: array<vec2<f16>>;
#endif

// 32 consecutive dequantized elements of a row.
alias V32 = array<vec4<f32>, 8>;

fn ld8(b: u32) -> u32 {
    return (W[b >> 2u] >> ((b & 3u) << 3u)) & 0xffu;
}

// b must be even (every f16 field of every block format is at an even offset).
fn ld16(b: u32) -> u32 {
    return (W[b >> 2u] >> ((b & 2u) << 3u)) & 0xffffu;
}

fn ld32(b: u32) -> u32 {
    let i = b >> 2u;
    let s = (b & 3u) << 3u;
    if (s == 0u) {
        return W[i];
    }
    return (W[i] >> s) | (W[i + 1u] << (32u - s));
}

// The f16 at even byte address b, as f32 (exact: every f16 is an f32).
fn half_at(b: u32) -> f32 {
#if F16
    return f32(WH[b >> 2u][(b >> 1u) & 1u]);
#else
    return unpack2x16float(ld16(b)).x;
#endif
}

// The two f16 at byte address b (a multiple of 4), as f32.
fn halves_at(b: u32) -> vec2<f32> {
#if F16
    return vec2<f32>(WH[b >> 2u]);
#else
    return unpack2x16float(W[b >> 2u]);
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
