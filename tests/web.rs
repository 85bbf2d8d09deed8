//! Browser unit tests (wasm-bindgen-test in headless Chromium, inside a dedicated worker as the
//! engine runs): the IndexedDB store and the JS-facing option and result formats.
//! Run: scripts/test-wasm.sh (CI runs it from scripts/test.sh).
#![cfg(target_arch = "wasm32")]

use wasm_bindgen_test::*;
use wisp::web::store::{FileMeta, Store};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn bytes(n: u32, seed: u8) -> js_sys::Uint8Array {
    let v: Vec<u8> = (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect();
    js_sys::Uint8Array::from(&v[..])
}

#[wasm_bindgen_test]
fn file_meta_chunks() {
    let m = FileMeta::new("u", 40, 16);
    assert_eq!(m.hashes.len(), 3);
    assert_eq!((m.range(0), m.range(2)), ((0, 16), (32, 40)));
    assert_eq!((m.stored_bytes(), m.complete()), (0, false));
    let mut m = m;
    m.hashes[2] = Some("h".into());
    assert_eq!(m.stored_bytes(), 8);
    m.hashes[0] = Some("h".into());
    m.hashes[1] = Some("h".into());
    assert!(m.complete());
}

#[wasm_bindgen_test]
async fn store_round_trip_resume_state_and_delete() {
    let store = Store::open().await.expect("IndexedDB opens in a worker");
    let url = "test://model.gguf";
    store.delete(url).await.expect("delete of nothing is fine");
    assert_eq!(store.meta(url).await.expect("meta"), None);

    let mut m = FileMeta::new(url, 40, 16);
    store.put_meta(&m).await.expect("put meta");
    assert_eq!(store.meta(url).await.expect("meta"), Some(m.clone()));

    // A chunk and the hash recording it land together.
    m.hashes[1] = Some("abc".into());
    let b1 = bytes(16, 7);
    store.put_chunk(&m, 1, &b1).await.expect("put chunk");
    let got = store.chunk(url, 1).await.expect("get").expect("stored");
    assert_eq!(got.to_vec(), b1.to_vec());
    assert!(store.chunk(url, 0).await.expect("get").is_none());
    let back = store.meta(url).await.expect("meta").expect("present");
    assert_eq!(back.hashes, vec![None, Some("abc".to_string()), None]);
    // What a resumed download would fetch first: chunk 0, then 2.
    let missing: Vec<usize> = (0..3).filter(|&i| back.hashes[i].is_none()).collect();
    assert_eq!(missing, [0, 2]);

    let listed = store.list().await.expect("list");
    assert!(listed
        .iter()
        .any(|x| x.url == url && x.stored_bytes() == 16));

    // Another file's chunks are not touched by a delete ("test://model.gguf2" shares the prefix).
    let other = FileMeta::new("test://model.gguf2", 4, 16);
    store
        .put_chunk(&other, 0, &bytes(4, 1))
        .await
        .expect("put other");
    store.delete(url).await.expect("delete");
    assert_eq!(store.meta(url).await.expect("meta"), None);
    assert!(store.chunk(url, 1).await.expect("get").is_none());
    assert!(store
        .chunk("test://model.gguf2", 0)
        .await
        .expect("get")
        .is_some());
    store
        .delete("test://model.gguf2")
        .await
        .expect("delete other");
}

#[wasm_bindgen_test]
fn generation_options_use_openai_names() {
    let p = wisp::web::gen_params(
        r#"{"max_tokens": 16, "temperature": 0, "top_p": 0.5, "seed": 7, "stop": ["\n\n"], "repetition_penalty": 1.1}"#,
    )
    .expect("parses");
    assert_eq!(p.max_tokens, 16);
    assert_eq!(p.sampler.temperature, 0.0);
    assert_eq!(p.sampler.top_p, 0.5);
    assert_eq!(p.sampler.seed, 7);
    assert_eq!(p.sampler.repeat_penalty, 1.1);
    assert_eq!(p.stop, ["\n\n"]);
    let d = wisp::web::gen_params("").expect("defaults");
    assert_eq!(d.max_tokens, 128);
    let err = wisp::web::gen_params(r#"{"max_tokens": "many"}"#).expect_err("bad type");
    assert!(err.to_string().starts_with("bad options"), "{err}");
}
