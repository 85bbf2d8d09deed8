//! Resumable download of a model into the store, and the store as a [`TensorSource`].

use std::cell::RefCell;

use js_sys::Uint8Array;

use super::js;
use super::store::{FileMeta, Store, CHUNK_SIZE};
use super::WebError;
use crate::gguf::{Gguf, StreamParser, TensorInfo};
use crate::model::weights::TensorSource;
use crate::model::ModelError;

/// Progress of a long step, reported to the page.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Progress {
    /// `download` (network to IndexedDB), `measure` (timing this GPU's kernels, once), `load`
    /// (IndexedDB to the GPU) or `notice` (see `message`).
    pub phase: &'static str,
    pub done: u64,
    pub total: u64,
    /// Bytes per second over this phase so far.
    pub rate: f64,
    /// Download: the first chunk fetched in this session (0 for a fresh download).
    pub resumed_from_chunk: usize,
    /// A notice for the user (e.g. "IndexedDB unavailable: streaming without caching").
    pub message: String,
}

/// `js::fetch_range`, with a failed `fetch` (no response at all) told apart from a failed body.
async fn fetch_range(url: &str, start: u64, end: u64) -> Result<web_sys::Response, WebError> {
    js::fetch_range(url, start, end).await.map_err(|e| match e {
        WebError::Network { url, message } => WebError::Fetch { url, message },
        e => e,
    })
}

/// Size of the file at `url`, from a one-byte Range request (which also proves the server
/// supports ranges).
pub async fn remote_size(url: &str) -> Result<u64, WebError> {
    let resp = fetch_range(url, 0, 1).await?;
    if resp.status() == 200 {
        return Err(WebError::NoRange(url.to_string()));
    }
    if resp.status() != 206 {
        return Err(WebError::Http {
            url: url.to_string(),
            status: resp.status(),
        });
    }
    let cr = resp
        .headers()
        .get("Content-Range")
        .ok()
        .flatten()
        .ok_or_else(|| WebError::NoRange(url.to_string()))?;
    cr.rsplit('/')
        .next()
        .and_then(|t| t.trim().parse::<u64>().ok())
        .ok_or_else(|| WebError::NoRange(url.to_string()))
}

/// Bytes `[start, end)` of `url` (checks the server answered with exactly those).
pub async fn fetch_bytes(url: &str, start: u64, end: u64) -> Result<Uint8Array, WebError> {
    let resp = fetch_range(url, start, end).await?;
    if resp.status() != 206 {
        return Err(if resp.status() == 200 {
            WebError::NoRange(url.to_string())
        } else {
            WebError::Http {
                url: url.to_string(),
                status: resp.status(),
            }
        });
    }
    let bytes = js::body(url, &resp).await?;
    if u64::from(bytes.length()) != end - start {
        return Err(WebError::Network {
            url: url.to_string(),
            message: format!(
                "asked for {} bytes at {start}, got {}",
                end - start,
                bytes.length()
            ),
        });
    }
    Ok(bytes)
}

/// Downloads every chunk of `url` the store lacks, first missing chunk first, each chunk stored
/// (with its hash) as it arrives. Returns the complete metadata.
pub async fn download(
    store: &Store,
    url: &str,
    progress: &mut dyn FnMut(&Progress),
    interrupted: &dyn Fn() -> bool,
) -> Result<FileMeta, WebError> {
    let size = remote_size(url).await?;
    let mut meta = match store.meta(url).await? {
        Some(m) if m.size == size => m,
        // New, or the file changed size on the server: start over.
        _ => {
            let m = FileMeta::new(url, size, CHUNK_SIZE);
            store.put_meta(&m).await?;
            m
        }
    };
    let first_missing = meta.hashes.iter().position(Option::is_none);
    let t0 = js::now_ms();
    let mut fetched = 0u64;
    for i in 0..meta.hashes.len() {
        if meta.hashes[i].is_some() {
            continue;
        }
        if interrupted() {
            return Err(WebError::Interrupted);
        }
        let (a, b) = meta.range(i);
        let bytes = fetch_bytes(url, a, b).await?;
        meta.hashes[i] = Some(js::sha256(&bytes).await?);
        store.put_chunk(&meta, i, &bytes).await?;
        fetched += b - a;
        let secs = ((js::now_ms() - t0) / 1e3).max(1e-3);
        progress(&Progress {
            phase: "download",
            done: meta.stored_bytes(),
            total: size,
            rate: fetched as f64 / secs,
            resumed_from_chunk: first_missing.unwrap_or(0),
            message: String::new(),
        });
    }
    Ok(meta)
}

/// Reads the GGUF header from the stored chunks with the incremental parser.
pub async fn header(store: Option<&Store>, meta: &FileMeta) -> Result<Gguf, WebError> {
    let mut parser = StreamParser::new().with_file_len(meta.size);
    for i in 0..meta.hashes.len() {
        let chunk = verified_chunk(store, meta, i).await?;
        // The header is usually a few MiB: feed 1 MiB at a time, stop when it is whole.
        let mut off = 0u32;
        while off < chunk.length() {
            let end = (off + (1 << 20)).min(chunk.length());
            let piece = chunk.subarray(off, end).to_vec();
            if let Some(g) = parser.feed(&piece)? {
                return Ok(g);
            }
            off = end;
        }
    }
    parser.finish()?;
    Err(WebError::Corrupt(format!(
        "{}: no complete GGUF header",
        meta.url
    )))
}

/// Chunk `i`, hashed again and compared with the hash recorded at download; a missing or
/// corrupt record is fetched again (and stored), never used. Without a store (IndexedDB
/// unavailable or full) the chunk comes straight from the network.
pub async fn verified_chunk(
    store: Option<&Store>,
    meta: &FileMeta,
    i: usize,
) -> Result<Uint8Array, WebError> {
    let (a, b) = meta.range(i);
    let Some(store) = store else {
        return fetch_bytes(&meta.url, a, b).await;
    };
    if let (Some(bytes), Some(want)) = (store.chunk(&meta.url, i).await?, &meta.hashes[i]) {
        if u64::from(bytes.length()) == b - a && &js::sha256(&bytes).await? == want {
            return Ok(bytes);
        }
        log::warn!(
            "chunk {i} of {} is corrupt in IndexedDB: fetching it again",
            meta.url
        );
    }
    let bytes = fetch_bytes(&meta.url, a, b).await?;
    let mut m = meta.clone();
    m.hashes[i] = Some(js::sha256(&bytes).await?);
    match store.put_chunk(&m, i, &bytes).await {
        Ok(()) | Err(WebError::Quota) => {}
        Err(e) => return Err(e),
    }
    REFETCHED.with(|r| r.borrow_mut().push(i));
    Ok(bytes)
}

thread_local! {
    /// Chunks re-fetched because their record was missing or corrupt (reported after a load).
    pub static REFETCHED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// The stored file as a [`TensorSource`]: tensors are read in file order, one chunk record at a
/// time, and copied into wasm memory at most 4 MiB at a time on their way to the GPU.
pub struct StoreSource<'a> {
    pub store: Option<&'a Store>,
    pub meta: FileMeta,
    pub gguf: Gguf,
    current: RefCell<Option<(usize, Uint8Array)>>,
}

impl<'a> StoreSource<'a> {
    pub fn new(store: Option<&'a Store>, meta: FileMeta, gguf: Gguf) -> StoreSource<'a> {
        StoreSource {
            store,
            meta,
            gguf,
            current: RefCell::new(None),
        }
    }

    async fn chunk(&self, i: usize) -> Result<Uint8Array, WebError> {
        if let Some((j, c)) = self.current.borrow().as_ref() {
            if *j == i {
                return Ok(c.clone());
            }
        }
        let c = verified_chunk(self.store, &self.meta, i).await?;
        *self.current.borrow_mut() = Some((i, c.clone()));
        Ok(c)
    }
}

impl TensorSource for StoreSource<'_> {
    fn gguf(&self) -> &Gguf {
        &self.gguf
    }

    async fn read_tensor(
        &self,
        t: &TensorInfo,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
        const PIECE: u64 = 4 << 20;
        let r = self
            .gguf
            .tensor_range(t)
            .ok_or_else(|| ModelError::Tensor {
                tensor: t.name.clone(),
                message: "its data lies outside the file".into(),
            })?;
        let cs = self.meta.chunk_size;
        let mut buf = Vec::new();
        let mut pos = r.start;
        while pos < r.end {
            let i = (pos / cs) as usize;
            let chunk = self.chunk(i).await.map_err(|e| ModelError::Tensor {
                tensor: t.name.clone(),
                message: e.to_string(),
            })?;
            let base = i as u64 * cs;
            let end = r.end.min(base + u64::from(chunk.length()));
            while pos < end {
                let n = (end - pos).min(PIECE);
                buf.resize(n as usize, 0);
                chunk
                    .subarray((pos - base) as u32, (pos - base + n) as u32)
                    .copy_to(&mut buf);
                sink(&buf)?;
                pos += n;
            }
        }
        Ok(())
    }
}
