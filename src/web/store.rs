//! The IndexedDB weight store. A model file is kept as numbered chunk records (16 MiB by
//! default) plus one metadata record listing, per chunk, the SHA-256 recorded when it was
//! downloaded. A chunk and the metadata that marks it present are written in one transaction,
//! so an interrupted download leaves only whole, recorded chunks, and the next download resumes
//! from the first missing one. Every chunk is hashed again before use; a mismatch is re-fetched.

use js_sys::Uint8Array;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen::JsValue;
use web_sys::{IdbDatabase, IdbFactory, IdbOpenDbRequest, IdbTransactionMode};

use super::js;
use super::WebError;

const DB: &str = "wisp";
const FILES: &str = "files";
const CHUNKS: &str = "chunks";
/// Small records other than models, as JSON text by key (the measured kernel family per adapter).
const SETTINGS: &str = "settings";
/// Version 2 added `settings`; an upgrade from 1 keeps the stored models.
const DB_VERSION: u32 = 2;

/// Default chunk size: one HTTP Range request and one IndexedDB record.
pub const CHUNK_SIZE: u64 = 16 << 20;

/// What the store knows about one model file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FileMeta {
    pub url: String,
    pub size: u64,
    pub chunk_size: u64,
    /// SHA-256 (hex) of each chunk as downloaded; `None`: not stored yet.
    pub hashes: Vec<Option<String>>,
}

impl FileMeta {
    pub fn new(url: &str, size: u64, chunk_size: u64) -> FileMeta {
        FileMeta {
            url: url.to_string(),
            size,
            chunk_size,
            hashes: vec![None; size.div_ceil(chunk_size) as usize],
        }
    }

    /// Byte range `[start, end)` of chunk `i`.
    pub fn range(&self, i: usize) -> (u64, u64) {
        let start = i as u64 * self.chunk_size;
        (start, (start + self.chunk_size).min(self.size))
    }

    /// Bytes of the chunks stored.
    pub fn stored_bytes(&self) -> u64 {
        (0..self.hashes.len())
            .filter(|&i| self.hashes[i].is_some())
            .map(|i| {
                let (a, b) = self.range(i);
                b - a
            })
            .sum()
    }

    pub fn complete(&self) -> bool {
        self.hashes.iter().all(Option::is_some)
    }
}

fn chunk_key(url: &str, i: usize) -> JsValue {
    JsValue::from_str(&format!("{url}#{i}"))
}

/// Maps IndexedDB's quota error to its own variant.
fn put_error(e: WebError) -> WebError {
    match e {
        WebError::Js { message, .. } if message.contains("QuotaExceeded") => WebError::Quota,
        e => e,
    }
}

/// An open IndexedDB database with the files and chunks stores.
pub struct Store {
    db: IdbDatabase,
}

impl Store {
    /// Opens (creating on first use) the database; `Unavailable` when the browser has none.
    pub async fn open() -> Result<Store, WebError> {
        let factory: IdbFactory = js::global_get("indexedDB")?.unchecked_into();
        let req: IdbOpenDbRequest = factory
            .open_with_u32(DB, DB_VERSION)
            .map_err(|e| WebError::from_js("indexedDB.open", e))?;
        let upgrade = wasm_bindgen::closure::Closure::once_into_js(
            move |e: web_sys::IdbVersionChangeEvent| {
                let Some(target) = e.target() else { return };
                let Ok(req) = target.dyn_into::<IdbOpenDbRequest>() else {
                    return;
                };
                let Ok(db) = req.result().and_then(|r| r.dyn_into::<IdbDatabase>()) else {
                    return;
                };
                // Stores that exist already fail to be created again; that is fine.
                let _ = db.create_object_store(FILES);
                let _ = db.create_object_store(CHUNKS);
                let _ = db.create_object_store(SETTINGS);
            },
        );
        req.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
        let db: IdbDatabase = js::request(&req).await?.unchecked_into();
        Ok(Store { db })
    }

    fn store(
        &self,
        names: &[&str],
        name: &str,
        write: bool,
    ) -> Result<web_sys::IdbObjectStore, WebError> {
        let list = js_sys::Array::new();
        for n in names {
            list.push(&JsValue::from_str(n));
        }
        let mode = if write {
            IdbTransactionMode::Readwrite
        } else {
            IdbTransactionMode::Readonly
        };
        let tx = self
            .db
            .transaction_with_str_sequence_and_mode(&list, mode)
            .map_err(|e| WebError::from_js("IndexedDB transaction", e))?;
        tx.object_store(name)
            .map_err(|e| WebError::from_js("IndexedDB store", e))
    }

    /// The metadata of `url`, if any.
    pub async fn meta(&self, url: &str) -> Result<Option<FileMeta>, WebError> {
        let s = self.store(&[FILES], FILES, false)?;
        let req = s
            .get(&JsValue::from_str(url))
            .map_err(|e| WebError::from_js("IndexedDB get", e))?;
        let v = js::request(&req).await?;
        match v.as_string() {
            None => Ok(None),
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| WebError::Corrupt(format!("metadata of {url}: {e}"))),
        }
    }

    /// Writes metadata alone (a new file, or a chunk found corrupt).
    pub async fn put_meta(&self, meta: &FileMeta) -> Result<(), WebError> {
        let s = self.store(&[FILES], FILES, true)?;
        let text = serde_json::to_string(meta).map_err(|e| WebError::Corrupt(e.to_string()))?;
        let req = s
            .put_with_key(&JsValue::from_str(&text), &JsValue::from_str(&meta.url))
            .map_err(|e| put_error(WebError::from_js("IndexedDB put", e)))?;
        js::request(&req).await.map_err(put_error)?;
        Ok(())
    }

    /// Stores chunk `i` and the metadata that records its hash, in one transaction.
    pub async fn put_chunk(
        &self,
        meta: &FileMeta,
        i: usize,
        bytes: &Uint8Array,
    ) -> Result<(), WebError> {
        let names = [FILES, CHUNKS];
        let list = js_sys::Array::new();
        for n in names {
            list.push(&JsValue::from_str(n));
        }
        let tx = self
            .db
            .transaction_with_str_sequence_and_mode(&list, IdbTransactionMode::Readwrite)
            .map_err(|e| WebError::from_js("IndexedDB transaction", e))?;
        let done = js::transaction_done(&tx);
        let chunks = tx
            .object_store(CHUNKS)
            .map_err(|e| WebError::from_js("IndexedDB store", e))?;
        let files = tx
            .object_store(FILES)
            .map_err(|e| WebError::from_js("IndexedDB store", e))?;
        let text = serde_json::to_string(meta).map_err(|e| WebError::Corrupt(e.to_string()))?;
        let r1 = chunks
            .put_with_key(bytes, &chunk_key(&meta.url, i))
            .map_err(|e| put_error(WebError::from_js("IndexedDB put", e)))?;
        let r2 = files
            .put_with_key(&JsValue::from_str(&text), &JsValue::from_str(&meta.url))
            .map_err(|e| put_error(WebError::from_js("IndexedDB put", e)))?;
        js::request(&r1).await.map_err(put_error)?;
        js::request(&r2).await.map_err(put_error)?;
        // Stored only once committed: the quota is enforced at commit.
        done.await.map_err(put_error)
    }

    /// Chunk `i` of `url`, if stored.
    pub async fn chunk(&self, url: &str, i: usize) -> Result<Option<Uint8Array>, WebError> {
        let s = self.store(&[CHUNKS], CHUNKS, false)?;
        let req = s
            .get(&chunk_key(url, i))
            .map_err(|e| WebError::from_js("IndexedDB get", e))?;
        let v = js::request(&req).await?;
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        Ok(v.dyn_into::<Uint8Array>().ok())
    }

    /// Every file the store knows.
    pub async fn list(&self) -> Result<Vec<FileMeta>, WebError> {
        let s = self.store(&[FILES], FILES, false)?;
        let req = s
            .get_all()
            .map_err(|e| WebError::from_js("IndexedDB getAll", e))?;
        let v = js::request(&req).await?;
        let arr: js_sys::Array = v.unchecked_into();
        Ok(arr
            .iter()
            .filter_map(|x| x.as_string())
            .filter_map(|t| serde_json::from_str(&t).ok())
            .collect())
    }

    /// Deletes `url`'s chunks and metadata.
    pub async fn delete(&self, url: &str) -> Result<(), WebError> {
        let chunks = self.store(&[CHUNKS], CHUNKS, true)?;
        let range = web_sys::IdbKeyRange::bound(
            &JsValue::from_str(&format!("{url}#")),
            &JsValue::from_str(&format!("{url}#\u{ffff}")),
        )
        .map_err(|e| WebError::from_js("IndexedDB key range", e))?;
        let req = chunks
            .delete(&range)
            .map_err(|e| WebError::from_js("IndexedDB delete", e))?;
        js::request(&req).await?;
        let files = self.store(&[FILES], FILES, true)?;
        let req = files
            .delete(&JsValue::from_str(url))
            .map_err(|e| WebError::from_js("IndexedDB delete", e))?;
        js::request(&req).await?;
        Ok(())
    }

    /// The setting `key` (JSON text), if any.
    pub async fn setting(&self, key: &str) -> Result<Option<String>, WebError> {
        let s = self.store(&[SETTINGS], SETTINGS, false)?;
        let req = s
            .get(&JsValue::from_str(key))
            .map_err(|e| WebError::from_js("IndexedDB get", e))?;
        Ok(js::request(&req).await?.as_string())
    }

    /// Writes the setting `key`.
    pub async fn put_setting(&self, key: &str, value: &str) -> Result<(), WebError> {
        let s = self.store(&[SETTINGS], SETTINGS, true)?;
        let req = s
            .put_with_key(&JsValue::from_str(value), &JsValue::from_str(key))
            .map_err(|e| put_error(WebError::from_js("IndexedDB put", e)))?;
        js::request(&req).await.map_err(put_error)?;
        Ok(())
    }
}
