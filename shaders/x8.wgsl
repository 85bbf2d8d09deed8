// `fast` precision in the weight kernels: x arrives quantized to 8 bits per 32 values
// (quantize_x8.wgsl), and each format's `xdot32` multiplies its integer quants with x's in
// integer arithmetic, four at a time, scaling once per piece.

alias Q32 = array<u32, 8>;

// The sum of the products of the four signed bytes of a and b: one instruction where the
// language extension packed_4x8_integer_dot_product exists (DOT4), plain integer math otherwise.
fn idot4(a: u32, b: u32) -> i32 {
#if DOT4
    return dot4I8Packed(a, b);
#else
    let p = sbytes4(a) * sbytes4(b);
    return (p.x + p.y) + (p.z + p.w);
#endif
}
