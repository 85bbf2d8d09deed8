//! GGUF parser tests: a gguf-py fixture checked field by field, every truncation, streaming
//! in any chunk size, one test per malformed-header error, writer round trips, seeded random
//! mutations, and (when present) the default model.
//!
//! A counting allocator checks the "no huge allocation" promise: inside `limited`, any single
//! allocation over `ALLOC_LIMIT` on the current thread is recorded and fails the test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;

use serde_json::Value as Json;
use wisp::gguf::{
    Gguf, GgufError, GgufFile, GgufWriter, MetaArray, MetaValue, StreamParser, ValueType,
};
use wisp::quant::GgmlType;

// ---------------------------------------------------------------- allocation guard

struct Counting;

thread_local! {
    static TRACKING: Cell<bool> = const { Cell::new(false) };
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the bookkeeping touches const thread-locals only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn note(size: usize) {
    let _ = TRACKING.try_with(|t| {
        if t.get() {
            let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
        }
    });
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Largest single allocation allowed while parsing hostile input (the fixture is 2.5 KB).
const ALLOC_LIMIT: usize = 1 << 20;

/// Runs `f`, failing if it made any single allocation over `ALLOC_LIMIT`.
fn limited<T>(what: &str, f: impl FnOnce() -> T) -> T {
    LARGEST.with(|l| l.set(0));
    TRACKING.with(|t| t.set(true));
    let out = f();
    TRACKING.with(|t| t.set(false));
    let largest = LARGEST.with(|l| l.get());
    assert!(
        largest <= ALLOC_LIMIT,
        "{what}: allocated {largest} bytes at once"
    );
    out
}

// ---------------------------------------------------------------- helpers

fn fixture() -> (Vec<u8>, Json) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf");
    let bytes =
        std::fs::read(dir.join("tiny.gguf")).expect("fixture; run scripts/gen_gguf_fixtures.py");
    let json = std::fs::read_to_string(dir.join("tiny.json")).expect("fixture json");
    (bytes, serde_json::from_str(&json).expect("valid json"))
}

/// Feeds `bytes` in chunks of `chunk`; returns the header (checking it came exactly once),
/// or the first error, or the error `finish` reports.
fn stream(bytes: &[u8], chunk: usize, file_len: Option<u64>) -> Result<Gguf, GgufError> {
    let mut p = StreamParser::new();
    if let Some(len) = file_len {
        p = p.with_file_len(len);
    }
    let mut out = None;
    for c in bytes.chunks(chunk.max(1)) {
        if let Some(g) = p.feed(c)? {
            assert!(out.is_none(), "header returned twice");
            out = Some(g);
        }
    }
    p.finish()?;
    Ok(out.expect("finish Ok means the header was returned"))
}

fn expect_u64(j: &Json) -> u64 {
    j.as_u64()
        .unwrap_or_else(|| panic!("json {j} is not a u64"))
}

fn check_array(key: &str, a: &MetaArray, elem: &str, vals: &Json) {
    let vals = vals.as_array().expect("json array");
    assert_eq!(a.len(), vals.len(), "{key}: length");
    assert_eq!(a.elem_type().name(), elem, "{key}: element type");
    for (i, j) in vals.iter().enumerate() {
        let ok = match a {
            MetaArray::F32(v) => v[i] == j.as_f64().unwrap() as f32,
            MetaArray::F64(v) => v[i] == j.as_f64().unwrap(),
            MetaArray::Bool(v) => v[i] == j.as_bool().unwrap(),
            MetaArray::String(v) => v[i] == j.as_str().unwrap(),
            MetaArray::Array(v) => {
                check_array(key, &v[i], j["elem"].as_str().unwrap(), &j["value"]);
                true
            }
            int => {
                let want = j.as_i64().map(i128::from).or(j.as_u64().map(i128::from));
                int.int_at(i) == want
            }
        };
        assert!(ok, "{key}[{i}]: {a:?} vs {j}");
    }
}

fn check_value(key: &str, v: &MetaValue, j: &Json) {
    let ty = j["type"].as_str().unwrap();
    assert_eq!(v.type_name(), ty, "{key}: type");
    let val = &j["value"];
    let ok = match v {
        MetaValue::F32(x) => *x == val.as_f64().unwrap() as f32,
        MetaValue::F64(x) => *x == val.as_f64().unwrap(),
        MetaValue::Bool(x) => *x == val.as_bool().unwrap(),
        MetaValue::String(s) => s == val.as_str().unwrap(),
        MetaValue::Array(a) => {
            check_array(key, a, j["elem"].as_str().unwrap(), val);
            true
        }
        int => {
            int.as_i128()
                == val
                    .as_i64()
                    .map(i128::from)
                    .or(val.as_u64().map(i128::from))
        }
    };
    assert!(ok, "{key}: {v:?} vs {val}");
}

// ---------------------------------------------------------------- the fixture

#[test]
fn fixture_every_field_matches_gguf_py() {
    let (bytes, want) = fixture();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(u64::from(g.version), expect_u64(&want["version"]));
    assert_eq!(g.alignment, expect_u64(&want["alignment"]));
    assert_eq!(g.data_offset, expect_u64(&want["data_offset"]));
    assert_eq!(g.header_len(), g.data_offset);
    assert_eq!(bytes.len() as u64, expect_u64(&want["file_len"]));

    let meta = want["metadata"].as_array().unwrap();
    assert_eq!(g.metadata.len(), meta.len());
    for ((key, value), j) in g.metadata.iter().zip(meta) {
        assert_eq!(key, j[0].as_str().unwrap());
        check_value(key, value, &j[1]);
    }

    let tensors = want["tensors"].as_array().unwrap();
    assert_eq!(g.tensors.len(), tensors.len());
    for (t, j) in g.tensors.iter().zip(tensors) {
        assert_eq!(t.name, j["name"].as_str().unwrap());
        let dims: Vec<u64> = j["dims"]
            .as_array()
            .unwrap()
            .iter()
            .map(expect_u64)
            .collect();
        assert_eq!(t.dims, dims, "{}", t.name);
        assert_eq!(u64::from(t.ty.0), expect_u64(&j["type"]), "{}", t.name);
        assert_eq!(t.ty.name(), j["type_name"].as_str(), "{}", t.name);
        assert_eq!(t.offset, expect_u64(&j["offset"]), "{}", t.name);
        assert_eq!(t.n_elements, expect_u64(&j["n_elements"]), "{}", t.name);
        assert_eq!(t.n_bytes, expect_u64(&j["n_bytes"]), "{}", t.name);
        assert_eq!(t.row_len(), dims[0]);
        assert_eq!(t.rows(), dims[1..].iter().product::<u64>());
        assert_eq!(t.row_bytes() * t.rows(), t.n_bytes);
        let data = g.tensor_data(&bytes, t).unwrap();
        let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, j["data_hex"].as_str().unwrap(), "{} data", t.name);
    }
    let types: Vec<GgmlType> = g.tensors.iter().map(|t| t.ty).collect();
    assert_eq!(
        types,
        [GgmlType::Q8_0, GgmlType::Q4_K, GgmlType::F16, GgmlType::F32]
    );
}

#[test]
fn fixture_lookups() {
    let (bytes, _) = fixture();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.architecture(), Some("wisptest"));
    assert_eq!(g.get_u32("wisptest.block_count"), Some(2));
    // Typed getters take any integer type whose value fits.
    assert_eq!(g.get_u32("test.u8"), Some(200));
    assert_eq!(g.get_u32("test.u16"), Some(60000));
    assert_eq!(g.get_u32("test.i8"), None);
    assert_eq!(g.get_i32("test.i8"), Some(-100));
    assert_eq!(g.get_i64("test.i64"), Some(-9_000_000_000_000_000_000));
    assert_eq!(g.get_u64("test.u64"), Some(18_000_000_000_000_000_000));
    assert_eq!(g.get_u32("test.u64"), None);
    assert_eq!(g.get_f32("test.f32"), Some(-1.25));
    assert_eq!(g.get_f64("test.f64"), Some(std::f64::consts::PI));
    assert_eq!(g.get_bool("test.bool_true"), Some(true));
    assert_eq!(g.get_str("test.string"), Some("héllo, wörld ✓"));
    assert_eq!(g.get_str("test.u8"), None);
    let tokens = g
        .get_array("tokenizer.ggml.tokens")
        .unwrap()
        .as_strings()
        .unwrap();
    assert_eq!(tokens[4], "▁the");
    assert!(matches!(g.require_u32("nope"), Err(GgufError::MissingKey { key }) if key == "nope"));
    assert!(matches!(
        g.require_u32("test.string"),
        Err(GgufError::WrongType {
            found: "string",
            ..
        })
    ));
    assert!(matches!(g.require_str("test.string"), Ok("héllo, wörld ✓")));
    assert_eq!(g.tensor("output_norm.weight").unwrap().dims, [8, 4]);
    assert!(g.tensor("missing").is_none());
    assert!(matches!(
        g.require_tensor("missing"),
        Err(GgufError::NoSuchTensor { .. })
    ));
    let t = g.tensor("token_embd.weight").unwrap();
    assert_eq!(g.tensor_range(t).unwrap().end, bytes.len() as u64);
    assert!(matches!(
        g.tensor_data(&bytes[..bytes.len() - 1], t),
        Err(GgufError::BeyondEnd { .. })
    ));
}

#[test]
fn fixture_through_mmap() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/gguf/tiny.gguf");
    let f = GgufFile::open(&path).unwrap();
    let (bytes, _) = fixture();
    assert_eq!(f.gguf(), &Gguf::parse(&bytes).unwrap());
    let (t, data) = f.tensor_by_name("output_norm.weight").unwrap();
    assert_eq!(data.len() as u64, t.n_bytes);
    assert!(matches!(
        GgufFile::open(path.with_extension("absent")),
        Err(GgufError::Io { .. })
    ));
}

#[test]
fn every_truncation_is_an_error() {
    let (bytes, _) = fixture();
    let full = Gguf::parse(&bytes).unwrap();
    for n in 0..bytes.len() {
        let prefix = &bytes[..n];
        let err = limited("truncated parse", || Gguf::parse(prefix)).unwrap_err();
        match err {
            GgufError::Truncated { needed, have } => {
                assert!(needed > have && have == n as u64, "prefix {n}: {err}")
            }
            // Past the header, the tensor data is what is missing.
            GgufError::BeyondEnd { .. } => assert!(n as u64 >= full.data_offset - full.alignment),
            e => panic!("prefix {n}: unexpected {e:?}"),
        }
        // The streaming parser told the true length fails too; told nothing, it waits.
        assert!(
            stream(prefix, 7, Some(n as u64)).is_err(),
            "stream prefix {n}"
        );
        match stream(prefix, 7, None) {
            Ok(g) => assert!(g == full && n as u64 > full.data_offset - full.alignment),
            Err(e) => assert!(
                matches!(e, GgufError::Truncated { .. }),
                "stream prefix {n}: {e}"
            ),
        }
    }
}

#[test]
fn streaming_matches_parse_in_any_chunk_size() {
    let (bytes, _) = fixture();
    let full = Gguf::parse(&bytes).unwrap();
    for chunk in [1, 7, 4096] {
        assert_eq!(stream(&bytes, chunk, None).unwrap(), full, "chunk {chunk}");
        assert_eq!(
            stream(&bytes, chunk, Some(bytes.len() as u64)).unwrap(),
            full,
            "chunk {chunk}"
        );
    }
    // Byte by byte: the header arrives with the last byte of the last tensor info, before the
    // padding; the needed hint never goes backwards nor past the header.
    let mut p = StreamParser::new();
    let mut last_needed = 0;
    for (i, b) in bytes.iter().enumerate() {
        let needed = p.needed_bytes().unwrap();
        assert!(needed >= last_needed && needed > i as u64 && needed <= full.data_offset);
        last_needed = needed;
        if let Some(g) = p.feed(std::slice::from_ref(b)).unwrap() {
            assert_eq!(g, full);
            assert!(i as u64 + 1 > full.data_offset - full.alignment);
            break;
        }
    }
    assert!(p.is_complete() && p.needed_bytes().is_none());
    assert!(
        p.feed(&bytes).unwrap().is_none(),
        "tensor data is counted, not parsed"
    );
    assert_eq!(p.bytes_fed(), last_needed + bytes.len() as u64);
    p.finish().unwrap();
}

#[test]
fn streaming_needs_no_quadratic_work() {
    // 200k strings fed byte by byte: quadratic re-parsing would take minutes.
    let tokens: Vec<String> = (0..200_000).map(|i| format!("tok{i}")).collect();
    let mut w = GgufWriter::new();
    w.add(
        "tokenizer.ggml.tokens",
        MetaValue::Array(MetaArray::String(tokens)),
    );
    let bytes = w.to_bytes();
    let start = std::time::Instant::now();
    let g = stream(&bytes, 1, Some(bytes.len() as u64)).unwrap();
    assert_eq!(g, Gguf::parse(&bytes).unwrap());
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

// ---------------------------------------------------------------- hand-built headers

/// Little-endian byte builder for headers the writer refuses to produce.
#[derive(Default)]
struct Raw(Vec<u8>);

impl Raw {
    fn header(version: u32, n_tensors: u64, n_kvs: u64) -> Raw {
        Raw(Vec::new())
            .bytes(b"GGUF")
            .u32(version)
            .u64(n_tensors)
            .u64(n_kvs)
    }
    fn bytes(mut self, b: &[u8]) -> Raw {
        self.0.extend_from_slice(b);
        self
    }
    fn u32(self, v: u32) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn u64(self, v: u64) -> Raw {
        self.bytes(&v.to_le_bytes())
    }
    fn str(self, s: &[u8]) -> Raw {
        self.u64(s.len() as u64).bytes(s)
    }
    fn kv_u32(self, key: &str, v: u32) -> Raw {
        self.str(key.as_bytes()).u32(4).u32(v)
    }
    fn tensor(self, name: &[u8], dims: &[u64], ty: u32, offset: u64) -> Raw {
        let mut r = self.str(name).u32(dims.len() as u32);
        for &d in dims {
            r = r.u64(d);
        }
        r.u32(ty).u64(offset)
    }
    /// Pads to 32 and appends `n` bytes of tensor data.
    fn data(mut self, n: usize) -> Vec<u8> {
        self.0.resize(self.0.len().next_multiple_of(32) + n, 0);
        self.0
    }
}

/// Parses `bytes` every way (whole, streamed in 1- and 5-byte chunks with the file length
/// known, and whole again into a stream) and checks all agree; returns the error.
fn fails(case: &str, bytes: &[u8]) -> GgufError {
    let err = limited(case, || Gguf::parse(bytes)).expect_err(case);
    for chunk in [1, 5, bytes.len()] {
        let streamed = limited(case, || stream(bytes, chunk, Some(bytes.len() as u64)));
        let streamed = streamed.expect_err(case);
        assert_eq!(
            format!("{streamed:?}"),
            format!("{err:?}"),
            "{case}: chunk {chunk}"
        );
    }
    println!("{case}: {err}");
    err
}

/// `rejects!(case, bytes => Pattern)`: every way of parsing `bytes` fails with that error.
macro_rules! rejects {
    ($case:expr, $bytes:expr => $($pat:tt)+) => {{
        let e = fails($case, &$bytes);
        assert!(matches!(&e, $($pat)+), "{}: got {e:?}", $case);
        e
    }};
}

#[test]
fn malformed_headers_have_specific_errors() {
    use GgufError as E;
    let h = Raw::header;
    Gguf::parse(&h(3, 1, 1).kv_u32("a", 1).tensor(b"t", &[4], 0, 0).data(16)).unwrap();
    Gguf::parse(&h(2, 0, 0).0).unwrap();

    rejects!("bad magic", *b"GGUX\x03\0\0\0" => E::BadMagic { found } if found == b"GGUX");
    for v in [0, 1, 4] {
        rejects!("version", h(v, 0, 0).0 => E::UnsupportedVersion { version } if *version == v);
    }
    rejects!("tensor count", h(3, u64::MAX, 0).0 => E::TooManyTensors { .. });
    rejects!("kv count", h(3, 0, 1 << 40).0 => E::TooManyKvs { .. });
    for len in [u64::MAX, 1 << 40] {
        let key = h(3, 0, 1).u64(len).bytes(b"abc").0;
        rejects!("key length", key => E::StringTooLong { len: l, .. } if *l == len);
        let value = h(3, 0, 1).str(b"k").u32(8).u64(len).bytes(b"abc").0;
        rejects!("string value length", value => E::StringTooLong { .. });
        let name = h(3, 1, 0).u64(len).bytes(b"abc").0;
        rejects!("tensor name length", name => E::StringTooLong { .. });
        let strings = h(3, 0, 1).str(b"k").u32(9).u32(8).u64(len).0;
        rejects!("string array length", strings => E::ArrayTooLong { .. });
        let bytes = h(3, 0, 1).str(b"k").u32(9).u32(0).u64(len).0;
        rejects!("u8 array length", bytes => E::ArrayTooLong { .. });
    }
    // A plausible length with too few bytes behind it is just truncation.
    let short = h(3, 0, 1).str(b"k").u32(9).u32(8).u64(1000).str(b"abc").0;
    rejects!("short array", short => E::Truncated { .. });
    let mut deep = h(3, 0, 1).str(b"deep").u32(9);
    for _ in 0..1000 {
        deep = deep.u32(9).u64(1);
    }
    rejects!("nesting", deep.u32(4).u64(0).0 => E::NestingTooDeep { .. });

    let kv = |key: &[u8], ty: u32, value: &[u8]| h(3, 0, 1).str(key).u32(ty).bytes(value).0;
    rejects!("value type", kv(b"k", 13, &[0; 8]) => E::UnknownValueType { id: 13, .. });
    let elem = h(3, 0, 1).str(b"k").u32(9).u32(99).u64(1).0;
    rejects!("array element type", elem => E::UnknownValueType { id: 99, .. });
    rejects!("bool", kv(b"k", 7, &[2]) => E::InvalidBool { value: 2, .. });
    rejects!("utf-8 key", kv(b"k\xff", 4, &[0; 4]) => E::InvalidUtf8 { .. });
    let value = b"\x02\0\0\0\0\0\0\0\xc3\x28";
    rejects!("utf-8 value", kv(b"k", 8, value) => E::InvalidUtf8 { .. });
    let dup = h(3, 0, 2).kv_u32("k", 1).kv_u32("k", 2).0;
    rejects!("duplicate key", dup => E::DuplicateKey { key } if key == "k");
    // The first problem in file order wins, in streaming as in parsing.
    let dup_then_bad = h(3, 0, 3).kv_u32("k", 1).kv_u32("k", 2).str(b"z").u32(77).0;
    rejects!("duplicate, then unknown type", dup_then_bad => E::DuplicateKey { .. });
    for a in [0, 3] {
        let bytes = h(3, 0, 1).kv_u32("general.alignment", a).0;
        rejects!("alignment", bytes => E::BadAlignment { alignment } if *alignment == u64::from(a));
    }
    let bytes = h(3, 0, 1).str(b"general.alignment").u32(8).str(b"32").0;
    rejects!("alignment type", bytes => E::WrongType { .. });

    let one = |name: &str, dims: &[u64], ty: u32, offset: u64, data: usize| {
        h(3, 1, 0)
            .tensor(name.as_bytes(), dims, ty, offset)
            .data(data)
    };
    rejects!("5 dims", one("t", &[1; 5], 0, 0, 4) => E::BadDimCount { n_dims: 5, .. });
    rejects!("0 dims", one("t", &[], 0, 0, 4) => E::BadDimCount { n_dims: 0, .. });
    rejects!("zero dim", one("t", &[4, 0], 0, 0, 4) => E::ZeroDim { .. });
    let dims = [1 << 32, 1 << 32];
    rejects!("element overflow", one("t", &dims, 0, 0, 4) => E::ElementCountOverflow { .. });
    let dims = [1 << 31, 1 << 31, 2];
    rejects!("byte overflow", one("t", &dims, 0, 0, 4) => E::ByteSizeOverflow { ty: GgmlType::F32, .. });
    let e = rejects!("unknown type", one("weird", &[32], 4, 0, 4) => E::UnknownType { id: 4, .. });
    assert_eq!(e.to_string(), "tensor `weird` has unknown ggml type id 4");
    rejects!("unknown type", one("t", &[32], 1000, 0, 4) => E::UnknownType { id: 1000, .. });
    let q4k = one("t", &[100, 2], GgmlType::Q4_K.0, 0, 288);
    rejects!("row multiple", q4k => E::RowNotBlockMultiple { row_len: 100, block_elems: 256, .. });
    rejects!("beyond eof", one("t", &[8], 0, 0, 31) => E::BeyondEnd { end, .. } if *end % 32 == 0);
    let far = one("t", &[8], 0, u64::MAX - 31, 64);
    rejects!("offset beyond eof", far => E::BeyondEnd { end: u64::MAX, .. });
    rejects!("misaligned", one("t", &[8], 0, 16, 64) => E::Misaligned { offset: 16, .. });
    let name = h(3, 1, 0).tensor(b"\xfft", &[8], 0, 0).data(32);
    rejects!("utf-8 tensor name", name => E::InvalidUtf8 { .. });

    let two = |a: (&str, u64, u64), b: (&str, u64, u64)| {
        let r = h(3, 2, 0).tensor(a.0.as_bytes(), &[a.1], 0, a.2);
        r.tensor(b.0.as_bytes(), &[b.1], 0, b.2).data(128)
    };
    Gguf::parse(&two(("a", 8, 64), ("b", 16, 0))).unwrap();
    let dup = two(("a", 8, 0), ("a", 8, 32));
    rejects!("duplicate tensor", dup => E::DuplicateTensor { .. });
    let overlap = two(("a", 8, 32), ("b", 16, 0));
    rejects!("overlap", overlap => E::OverlappingTensors { first, second } if first == "b" && second == "a");
}

#[test]
fn streaming_header_cap() {
    let (bytes, _) = fixture();
    let mut p = StreamParser::new().with_max_header_len(1000);
    let e = bytes.chunks(100).find_map(|c| p.feed(c).err()).unwrap();
    assert!(matches!(e, GgufError::HeaderTooLarge { max: 1000, .. }));
    // Failed parsers stay failed.
    assert!(matches!(
        p.feed(b"more"),
        Err(GgufError::HeaderTooLarge { .. })
    ));
    assert!(p.finish().is_err());
    let mut p = StreamParser::new();
    p.feed(&bytes[..10]).unwrap();
    assert!(matches!(
        p.finish(),
        Err(GgufError::Truncated { have: 10, .. })
    ));
}

// ---------------------------------------------------------------- writer

#[test]
fn writer_reproduces_gguf_py_bytes() {
    let (bytes, _) = fixture();
    let g = Gguf::parse(&bytes).unwrap();
    let mut w = GgufWriter::new();
    for (k, v) in &g.metadata {
        w.add(k.clone(), v.clone());
    }
    w.alignment(g.alignment as u32).unwrap();
    for t in &g.tensors {
        w.add_tensor(
            t.name.clone(),
            t.ty,
            &t.dims,
            g.tensor_data(&bytes, t).unwrap(),
        )
        .unwrap();
    }
    assert!(
        w.to_bytes() == bytes,
        "writer output differs from gguf-py's"
    );
}

#[test]
fn writer_round_trip() {
    use MetaArray as A;
    use MetaValue as V;
    #[rustfmt::skip]
    let values = vec![
        V::U8(1), V::I8(-2), V::U16(3), V::I16(-4), V::U32(5), V::I32(-6), V::U64(u64::MAX),
        V::I64(i64::MIN), V::F32(0.25), V::F64(-1e-300), V::Bool(true), V::String("ünï".into()),
        V::String(String::new()), V::Array(A::U8(vec![])), V::Array(A::I8(vec![-1])),
        V::Array(A::U16(vec![2, 3])), V::Array(A::I16(vec![-4])), V::Array(A::U32(vec![5])),
        V::Array(A::I32(vec![-6])), V::Array(A::U64(vec![7])), V::Array(A::I64(vec![-8])),
        V::Array(A::F32(vec![9.5])), V::Array(A::F64(vec![-10.5])),
        V::Array(A::Bool(vec![false, true])), V::Array(A::String(vec!["a".into(), String::new()])),
        V::Array(A::Array(vec![])),
        V::Array(A::Array(vec![
            A::F32(vec![1.0]), A::String(vec!["x".into()]), A::Array(vec![A::Bool(vec![])]),
        ])),
    ];
    let tensors: [(&str, GgmlType, &[u64]); 5] = [
        ("f32", GgmlType::F32, &[3, 5]),
        ("f16", GgmlType::F16, &[7]),
        ("q8", GgmlType::Q8_0, &[64, 3, 2]),
        ("q4k", GgmlType::Q4_K, &[256, 1, 1, 2]),
        ("q6k", GgmlType::Q6_K, &[512]),
    ];
    for (version, alignment) in [(3, None), (2, Some(128)), (3, Some(1))] {
        let mut w = GgufWriter::new();
        w.version(version);
        for (i, v) in values.iter().enumerate() {
            w.add(format!("k{i}"), v.clone());
        }
        if let Some(a) = alignment {
            w.alignment(a).unwrap();
        }
        let mut datas = Vec::new();
        for (i, (name, ty, dims)) in tensors.iter().enumerate() {
            let g = ty.geometry().unwrap();
            let n =
                dims.iter().product::<u64>() / u64::from(g.block_elems) * u64::from(g.block_bytes);
            let data: Vec<u8> = (0..n)
                .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8))
                .collect();
            w.add_tensor(*name, *ty, dims, data.clone()).unwrap();
            datas.push(data);
        }
        let bytes = w.to_bytes();
        let g = Gguf::parse(&bytes).unwrap();
        assert_eq!(g.version, version);
        assert_eq!(g.alignment, alignment.map_or(32, u64::from));
        let got: Vec<&MetaValue> = g
            .metadata
            .iter()
            .map(|(_, v)| v)
            .take(values.len())
            .collect();
        assert_eq!(got, values.iter().collect::<Vec<_>>());
        for ((t, (name, ty, dims)), data) in g.tensors.iter().zip(&tensors).zip(&datas) {
            assert_eq!(
                (t.name.as_str(), t.ty, t.dims.as_slice()),
                (*name, *ty, *dims)
            );
            assert_eq!(g.tensor_data(&bytes, t).unwrap(), data.as_slice());
            assert_eq!(t.offset % g.alignment, 0);
        }
        assert_eq!(stream(&bytes, 3, None).unwrap(), g);
    }
    // The writer refuses what the parser would reject.
    use GgufError as E;
    let mut w = GgufWriter::new();
    assert!(matches!(
        w.alignment(3).unwrap_err(),
        E::BadAlignment { .. }
    ));
    let short = w.add_tensor("t", GgmlType::F32, &[4], vec![0; 15]);
    assert!(matches!(short.unwrap_err(), E::InvalidTensorData { .. }));
    let partial_block = w.add_tensor("t", GgmlType::Q8_0, &[16], vec![0; 17]);
    assert!(matches!(
        partial_block.unwrap_err(),
        E::RowNotBlockMultiple { .. }
    ));
    let unknown = w.add_tensor("t", GgmlType(77), &[16], vec![]);
    assert!(matches!(unknown.unwrap_err(), E::UnknownType { .. }));
    w.add_tensor("t", GgmlType::F32, &[4], vec![0; 16]).unwrap();
    let dup = w.add_tensor("t", GgmlType::F32, &[4], vec![0; 16]);
    assert!(matches!(dup.unwrap_err(), E::DuplicateTensor { .. }));
}

// ---------------------------------------------------------------- random mutations

/// xorshift64*: a tiny deterministic RNG, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_mutations_never_panic() {
    let (bytes, _) = fixture();
    let header_len = Gguf::parse(&bytes).unwrap().data_offset as usize;
    let interesting = [
        0,
        1,
        3,
        4,
        5,
        9,
        13,
        255,
        1 << 31,
        1 << 40,
        u64::MAX,
        u64::MAX - 7,
        1 << 26,
    ];
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (mut ok, mut errors) = (0, std::collections::BTreeMap::<String, usize>::new());
    for i in 0..2000 {
        let mut m = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            // Mostly in the header, where the structure is.
            let whole_file = rng.below(8) == 0;
            let at = rng.below(if whole_file {
                m.len()
            } else {
                header_len.min(m.len())
            });
            match rng.below(6) {
                0 => m[at] ^= 1 << rng.below(8),
                1 => m[at] = rng.next() as u8,
                2 => {
                    let v = interesting[rng.below(interesting.len())].to_le_bytes();
                    let n = if rng.below(2) == 0 { 4 } else { 8 };
                    let end = (at + n).min(m.len());
                    m[at..end].copy_from_slice(&v[..end - at]);
                }
                3 => m.truncate(at),
                4 => drop(m.splice(at..at, (0..1 + rng.below(16)).map(|_| rng.next() as u8))),
                _ => drop(m.drain(at..(at + 1 + rng.below(16)).min(m.len()))),
            }
            if m.is_empty() {
                break;
            }
        }
        let parsed = limited("mutation", || Gguf::parse(&m));
        let chunk = 1 + rng.below(64);
        let streamed = limited("mutation", || stream(&m, chunk, Some(m.len() as u64)));
        assert_eq!(
            format!("{streamed:?}"),
            format!("{parsed:?}"),
            "mutation {i}"
        );
        match parsed {
            Ok(_) => ok += 1,
            Err(e) => {
                *errors
                    .entry(
                        format!("{e:?}")
                            .split([' ', '{'])
                            .next()
                            .unwrap()
                            .to_owned(),
                    )
                    .or_default() += 1
            }
        }
    }
    println!("2000 mutations: {ok} still valid, errors {errors:?}");
}

// ---------------------------------------------------------------- the default model

#[test]
fn default_model_header() {
    let path = std::env::var_os("WISP_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root/.cache/wisp/gemma-3-270m-q4_k_m.gguf"));
    if !path.exists() {
        println!(
            "skipping: no model at {} (scripts/fetch-model.sh, or set WISP_MODEL)",
            path.display()
        );
        return;
    }
    let start = std::time::Instant::now();
    let f = GgufFile::open(&path).unwrap();
    let g = f.gguf();
    println!(
        "parsed {} in {:?}: {} keys, {} tensors, header {} bytes",
        path.display(),
        start.elapsed(),
        g.metadata.len(),
        g.tensors.len(),
        g.header_len()
    );
    assert_eq!(g.architecture(), Some("gemma3"));
    assert_eq!(g.get_u32("gemma3.block_count"), Some(18));
    let t = g.tensor("token_embd.weight").unwrap();
    assert_eq!(
        (t.ty, t.dims.as_slice()),
        (GgmlType::Q8_0, &[640u64, 262_144][..])
    );
    assert_eq!(f.tensor_data(t).unwrap().len() as u64, t.n_bytes);
    let tokens = g.get_array("tokenizer.ggml.tokens").unwrap();
    assert_eq!(
        (tokens.elem_type(), tokens.len()),
        (ValueType::String, 262_144)
    );

    // Streaming the header byte by byte gives the same result, in linear time.
    let header = &f.bytes()[..g.header_len() as usize];
    let start = std::time::Instant::now();
    let mut p = StreamParser::new().with_file_len(f.bytes().len() as u64);
    let streamed = header.chunks(1).find_map(|c| p.feed(c).unwrap()).unwrap();
    println!("streamed the header byte by byte in {:?}", start.elapsed());
    assert_eq!(&streamed, g);
}
