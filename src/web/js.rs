//! Small bridges to the browser's APIs that work in a window and in a worker alike: the global
//! object's `fetch`, `indexedDB`, `crypto.subtle` and `navigator.storage`, and IndexedDB
//! requests as futures.

use js_sys::{Function, Object, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbRequest, IdbTransaction, Response};

use super::WebError;

/// A property of the global object (`self` in a worker, `window` in a page).
pub fn global_get(name: &str) -> Result<JsValue, WebError> {
    let v = Reflect::get(&js_sys::global(), &JsValue::from_str(name))
        .map_err(|e| WebError::from_js("reading the global scope", e))?;
    if v.is_undefined() || v.is_null() {
        return Err(WebError::Unavailable(name.to_string()));
    }
    Ok(v)
}

/// Message of a JS exception or value.
pub fn describe(e: &JsValue) -> String {
    // A DOMException is also an Error; its name (e.g. QuotaExceededError) matters more.
    if let Some(ex) = e.dyn_ref::<web_sys::DomException>() {
        return format!("{}: {}", ex.name(), ex.message());
    }
    if let Some(err) = e.dyn_ref::<js_sys::Error>() {
        return format!(
            "{}: {}",
            String::from(err.name()),
            String::from(err.message())
        );
    }
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

/// Resolves when an IndexedDB request succeeds, with its result.
pub async fn request(r: &IdbRequest) -> Result<JsValue, WebError> {
    let r2 = r.clone();
    let promise = Promise::new(&mut |resolve: Function, reject: Function| {
        let ok_req = r2.clone();
        let ok = Closure::once_into_js(move |_: JsValue| {
            let v = ok_req.result().unwrap_or(JsValue::UNDEFINED);
            let _ = resolve.call1(&JsValue::NULL, &v);
        });
        let err_req = r2.clone();
        let err = Closure::once_into_js(move |_: JsValue| {
            let e = err_req
                .error()
                .ok()
                .flatten()
                .map(JsValue::from)
                .unwrap_or_else(|| JsValue::from_str("IndexedDB request failed"));
            let _ = reject.call1(&JsValue::NULL, &e);
        });
        r2.set_onsuccess(Some(ok.unchecked_ref()));
        r2.set_onerror(Some(err.unchecked_ref()));
    });
    JsFuture::from(promise)
        .await
        .map_err(|e| WebError::from_js("IndexedDB", e))
}

/// `fetch(url, {headers: {Range: "bytes=a-b"}})` for bytes `[start, end)`.
pub async fn fetch_range(url: &str, start: u64, end: u64) -> Result<Response, WebError> {
    let fetch: Function = global_get("fetch")?.unchecked_into();
    let headers = Object::new();
    let range = format!("bytes={}-{}", start, end.saturating_sub(1));
    Reflect::set(&headers, &"Range".into(), &range.into())
        .map_err(|e| WebError::from_js("fetch", e))?;
    let init = Object::new();
    Reflect::set(&init, &"headers".into(), &headers).map_err(|e| WebError::from_js("fetch", e))?;
    let p: Promise = fetch
        .call2(&js_sys::global(), &JsValue::from_str(url), &init)
        .map_err(|e| WebError::from_js("fetch", e))?
        .unchecked_into();
    let resp: Response = JsFuture::from(p)
        .await
        .map_err(|e| WebError::Network {
            url: url.to_string(),
            message: describe(&e),
        })?
        .unchecked_into();
    Ok(resp)
}

/// The body of `resp` as bytes in JS memory (never copied into wasm memory).
pub async fn body(url: &str, resp: &Response) -> Result<Uint8Array, WebError> {
    let p = resp
        .array_buffer()
        .map_err(|e| WebError::from_js("reading a response", e))?;
    let buf = JsFuture::from(p).await.map_err(|e| WebError::Network {
        url: url.to_string(),
        message: describe(&e),
    })?;
    Ok(Uint8Array::new(&buf))
}

/// SHA-256 of `bytes` as hex, by the browser's `crypto.subtle` (no copy into wasm memory).
pub async fn sha256(bytes: &Uint8Array) -> Result<String, WebError> {
    let crypto: web_sys::Crypto = global_get("crypto")?.unchecked_into();
    let p = crypto
        .subtle()
        .digest_with_str_and_buffer_source("SHA-256", bytes)
        .map_err(|e| WebError::from_js("crypto.subtle.digest", e))?;
    let buf = JsFuture::from(p)
        .await
        .map_err(|e| WebError::from_js("crypto.subtle.digest", e))?;
    Ok(Uint8Array::new(&buf)
        .to_vec()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// Milliseconds on the page's clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A future of `tx`'s end: `Ok` when it commits, the abort's error (e.g. `QuotaExceededError`,
/// which Chromium reports at commit, after every request succeeded) otherwise. Call it right
/// after creating the transaction: the handlers are set at once.
pub fn transaction_done(
    tx: &IdbTransaction,
) -> impl std::future::Future<Output = Result<(), WebError>> {
    let tx2 = tx.clone();
    let promise = Promise::new(&mut |resolve: Function, reject: Function| {
        let ok = Closure::once_into_js(move |_: JsValue| {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let t = tx2.clone();
        let err = Closure::once_into_js(move |_: JsValue| {
            let e = t
                .error()
                .map(JsValue::from)
                .unwrap_or_else(|| JsValue::from_str("IndexedDB transaction aborted"));
            let _ = reject.call1(&JsValue::NULL, &e);
        });
        tx2.set_oncomplete(Some(ok.unchecked_ref()));
        tx2.set_onabort(Some(err.unchecked_ref()));
    });
    let fut = JsFuture::from(promise);
    async move {
        fut.await
            .map(|_| ())
            .map_err(|e| WebError::from_js("IndexedDB commit", e))
    }
}
