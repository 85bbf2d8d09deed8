//! The ggml tensor type ids as GGUF stores them, with their block geometry.

use std::fmt;

/// A ggml tensor type id as stored in a GGUF tensor info. Every id ggml defines parses (its
/// block geometry is known, so the file layout can be checked); only [`GgmlType::SUPPORTED`]
/// types can be dequantized or sent to the GPU, and using another is an error naming the type
/// and the tensor. Ids ggml does not define are rejected by the parser.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct GgmlType(pub u32);

/// Geometry of one ggml type: elements per block and bytes per block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockGeometry {
    pub block_elems: u32,
    pub block_bytes: u32,
}

macro_rules! ggml_types {
    ($( $name:ident = $id:expr, $text:expr, ($elems:expr, $bytes:expr) ;)*) => {
        impl GgmlType {
            $( pub const $name: GgmlType = GgmlType($id); )*

            /// ggml's name of the type (`Q4_K`, `F16`, ...), or `None` for an unknown id.
            pub fn name(self) -> Option<&'static str> {
                match self.0 { $( $id => Some($text), )* _ => None }
            }

            /// Block geometry of any type ggml knows, supported by Wisp or not.
            pub fn geometry(self) -> Option<BlockGeometry> {
                match self.0 {
                    $( $id => Some(BlockGeometry { block_elems: $elems, block_bytes: $bytes }), )*
                    _ => None,
                }
            }
        }
    };
}

const QK_K: u32 = 256;

ggml_types! {
    F32 = 0, "F32", (1, 4);
    F16 = 1, "F16", (1, 2);
    Q4_0 = 2, "Q4_0", (32, 2 + 16);
    Q4_1 = 3, "Q4_1", (32, 2 + 2 + 16);
    Q5_0 = 6, "Q5_0", (32, 2 + 4 + 16);
    Q5_1 = 7, "Q5_1", (32, 2 + 2 + 4 + 16);
    Q8_0 = 8, "Q8_0", (32, 2 + 32);
    Q8_1 = 9, "Q8_1", (32, 4 + 4 + 32);
    Q2_K = 10, "Q2_K", (QK_K, 2 + 2 + QK_K / 16 + QK_K / 4);
    Q3_K = 11, "Q3_K", (QK_K, 2 + QK_K / 4 + QK_K / 8 + 12);
    Q4_K = 12, "Q4_K", (QK_K, 2 + 2 + QK_K / 2 + 12);
    Q5_K = 13, "Q5_K", (QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12);
    Q6_K = 14, "Q6_K", (QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16);
    Q8_K = 15, "Q8_K", (QK_K, 4 + QK_K + QK_K / 8);
    IQ2_XXS = 16, "IQ2_XXS", (QK_K, 2 + QK_K / 4);
    IQ2_XS = 17, "IQ2_XS", (QK_K, 2 + QK_K / 4 + QK_K / 32);
    IQ3_XXS = 18, "IQ3_XXS", (QK_K, 2 + QK_K / 4 + QK_K / 8);
    IQ1_S = 19, "IQ1_S", (QK_K, 2 + QK_K / 8 + QK_K / 16);
    IQ4_NL = 20, "IQ4_NL", (32, 2 + 16);
    IQ3_S = 21, "IQ3_S", (QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4);
    IQ2_S = 22, "IQ2_S", (QK_K, 2 + QK_K / 4 + QK_K / 16);
    IQ4_XS = 23, "IQ4_XS", (QK_K, 2 + 2 + QK_K / 2 + QK_K / 64);
    I8 = 24, "I8", (1, 1);
    I16 = 25, "I16", (1, 2);
    I32 = 26, "I32", (1, 4);
    I64 = 27, "I64", (1, 8);
    F64 = 28, "F64", (1, 8);
    IQ1_M = 29, "IQ1_M", (QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32);
    BF16 = 30, "BF16", (1, 2);
    TQ1_0 = 34, "TQ1_0", (QK_K, 2 + 4 * 13);
    TQ2_0 = 35, "TQ2_0", (QK_K, 2 + 64);
    MXFP4 = 39, "MXFP4", (32, 1 + 16);
    NVFP4 = 40, "NVFP4", (64, 4 + 32);
    Q1_0 = 41, "Q1_0", (128, 2 + 16);
}

impl GgmlType {
    /// The block formats Wisp dequantizes on the CPU and runs in its GPU kernels.
    pub const SUPPORTED: [GgmlType; 13] = [
        GgmlType::F32,
        GgmlType::F16,
        GgmlType::BF16,
        GgmlType::Q4_0,
        GgmlType::Q4_1,
        GgmlType::Q5_0,
        GgmlType::Q5_1,
        GgmlType::Q8_0,
        GgmlType::Q2_K,
        GgmlType::Q3_K,
        GgmlType::Q4_K,
        GgmlType::Q5_K,
        GgmlType::Q6_K,
    ];

    /// Formats with an integer dot product against 8-bit x (`xdot32` in `shaders/formats/`), which
    /// `fast` precision uses in decode; the rest (F32, F16, BF16, Q2_K, Q3_K) stay on the exact
    /// kernels at every precision.
    pub fn has_x8_kernel(self) -> bool {
        matches!(
            self,
            GgmlType::Q4_0
                | GgmlType::Q4_1
                | GgmlType::Q5_0
                | GgmlType::Q5_1
                | GgmlType::Q8_0
                | GgmlType::Q4_K
                | GgmlType::Q5_K
                | GgmlType::Q6_K
        )
    }

    /// True for the types in [`GgmlType::SUPPORTED`].
    pub fn is_supported(self) -> bool {
        Self::SUPPORTED.contains(&self)
    }

    /// Parses ggml's name of a type (case-insensitive).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        (0..64u32)
            .map(GgmlType)
            .find(|t| t.name().is_some_and(|n| n.eq_ignore_ascii_case(name)))
    }
}

impl fmt::Display for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown type {}", self.0),
        }
    }
}

impl fmt::Debug for GgmlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
