//! The CPU dequantize against gguf-py, bit for bit, on the fixtures in `tests/data/quant/`
//! (made by `scripts/gen_quant_fixtures.py`), and its error cases.

use std::path::PathBuf;

use wisp::quant::{dequantize, dequantize_vec, GgmlType, QuantError};

fn fixture(name: &str, ext: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "data", "quant"]
        .iter()
        .collect::<PathBuf>()
        .join(format!("{name}.{ext}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Dequantizes `<ty>.bin` and compares the f32 bit patterns with `<ty>.f32`.
fn check(ty: GgmlType) {
    let name = ty.name().unwrap();
    let data = fixture(name, "bin");
    let want: Vec<u32> = fixture(name, "f32")
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let g = ty.geometry().unwrap();
    let block_elems = g.block_elems as usize;
    assert_eq!(
        data.len() / g.block_bytes as usize * block_elems,
        want.len(),
        "{name}: fixture sizes disagree"
    );
    let got = dequantize_vec(ty, &data, want.len()).unwrap();
    if let Some(i) = (0..want.len()).find(|&i| got[i].to_bits() != want[i]) {
        let mismatches = (0..want.len())
            .filter(|&i| got[i].to_bits() != want[i])
            .count();
        panic!(
            "{name}: {mismatches} mismatches; first at element {i} (block {}, element {} in it): \
             got {:#010x} ({}), gguf-py {:#010x} ({})",
            i / block_elems,
            i % block_elems,
            got[i].to_bits(),
            got[i],
            want[i],
            f32::from_bits(want[i]),
        );
    }
}

macro_rules! fixture_tests {
    ($($test:ident => $ty:ident,)*) => {
        $( #[test] fn $test() { check(GgmlType::$ty); } )*

        /// Every supported type has a fixture test above.
        #[test]
        fn every_supported_type_has_a_fixture() {
            let tested = [$(GgmlType::$ty),*];
            for ty in GgmlType::SUPPORTED {
                assert!(tested.contains(&ty), "no fixture test for {ty}");
            }
        }
    };
}

fixture_tests! {
    f32_matches_gguf_py => F32,
    f16_matches_gguf_py => F16,
    bf16_matches_gguf_py => BF16,
    q4_0_matches_gguf_py => Q4_0,
    q4_1_matches_gguf_py => Q4_1,
    q5_0_matches_gguf_py => Q5_0,
    q5_1_matches_gguf_py => Q5_1,
    q8_0_matches_gguf_py => Q8_0,
    q2_k_matches_gguf_py => Q2_K,
    q3_k_matches_gguf_py => Q3_K,
    q4_k_matches_gguf_py => Q4_K,
    q5_k_matches_gguf_py => Q5_K,
    q6_k_matches_gguf_py => Q6_K,
}

#[test]
fn unsupported_types_are_named() {
    for ty in [
        GgmlType::IQ2_XXS,
        GgmlType::TQ1_0,
        GgmlType::MXFP4,
        GgmlType::Q8_K,
    ] {
        let g = ty.geometry().unwrap();
        let data = vec![0u8; g.block_bytes as usize];
        let mut out = vec![0.0; g.block_elems as usize];
        let err = dequantize(ty, &data, &mut out).unwrap_err();
        assert_eq!(err, QuantError::Unsupported { ty });
        let name = ty.name().unwrap();
        assert_eq!(
            err.to_string(),
            format!("block type {name} is not supported")
        );
        assert!(dequantize_vec(ty, &data, out.len()).is_err());
    }
    let err = dequantize_vec(GgmlType(1000), &[], 0).unwrap_err();
    assert_eq!(err, QuantError::Unsupported { ty: GgmlType(1000) });
    assert!(err.to_string().contains("1000"), "{err}");
}

#[test]
fn wrong_lengths_are_length_errors() {
    let cases: [(GgmlType, usize, usize); 8] = [
        (GgmlType::Q4_0, 18, 31),   // not a whole block of elements
        (GgmlType::Q4_0, 17, 32),   // one byte short
        (GgmlType::Q4_0, 36, 32),   // two blocks of bytes, one of elements
        (GgmlType::Q4_K, 144, 255), // not a whole super-block
        (GgmlType::Q6_K, 209, 256), // one byte short
        (GgmlType::F32, 7, 2),      // not whole f32s
        (GgmlType::F16, 4, 3),      // elements with no bytes
        (GgmlType::Q8_0, 0, 32),    // no data at all
    ];
    for (ty, bytes, elems) in cases {
        let data = vec![0x55u8; bytes];
        let mut out = vec![7.0f32; elems];
        match dequantize(ty, &data, &mut out) {
            Err(QuantError::Length {
                ty: t,
                elems: e,
                bytes: b,
                ..
            }) => assert_eq!((t, e, b), (ty, elems, bytes)),
            other => panic!("{ty} {bytes} B {elems} elems: {other:?}"),
        }
        assert!(out.iter().all(|&x| x == 7.0), "{ty}: output written");
        let err = dequantize_vec(ty, &data, elems).unwrap_err();
        assert!(matches!(err, QuantError::Length { .. }), "{err}");
        assert!(err.to_string().contains(ty.name().unwrap()), "{err}");
    }
    // The message gives what was expected.
    let err = dequantize_vec(GgmlType::Q4_K, &[0; 100], 512).unwrap_err();
    assert_eq!(
        err,
        QuantError::Length {
            ty: GgmlType::Q4_K,
            elems: 512,
            bytes: 100,
            expected: 288,
            block_elems: 256,
        }
    );
    assert!(err.to_string().contains("288 bytes"), "{err}");
}

#[test]
fn empty_input_is_fine() {
    for ty in GgmlType::SUPPORTED {
        assert_eq!(dequantize(ty, &[], &mut []), Ok(()), "{ty}");
        assert_eq!(dequantize_vec(ty, &[], 0), Ok(Vec::new()), "{ty}");
    }
}

/// Arbitrary bytes never panic, whatever the type id and lengths.
#[test]
fn arbitrary_input_never_panics() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..2000 {
        let ty = GgmlType((next() % 48) as u32);
        let bytes = (next() % 600) as usize;
        let elems = match ty.geometry() {
            // Mostly consistent lengths, sometimes not.
            Some(g) if next() % 4 != 0 => bytes / g.block_bytes as usize * g.block_elems as usize,
            _ => (next() % 600) as usize,
        };
        let data: Vec<u8> = (0..bytes).map(|_| next() as u8).collect();
        let _ = dequantize_vec(ty, &data, elems);
        let _ = dequantize(ty, &data, &mut vec![0.0; elems]);
    }
}
