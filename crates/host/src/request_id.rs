//! Request ids (`x-request-id`): one per HTTP request, from the caller or made here, returned
//! in the response header, recorded on every log line of the request (a tracing span) and
//! sent to the enclave in the request frame, whose log lines for the request carry it too.
//!
//! A caller's id is kept when it is well formed (1 to 64 characters among letters, digits and
//! `-_.:`, see [`is_valid_request_id`]); anything else is replaced, never echoed or logged, so
//! an id cannot inject text into logs. Made ids are this process's random 32-bit prefix and a
//! counter: unique across restarts in practice, and cheap (no system call per request).
//!
//! Like the audit log's caller, the id is request context, held in a task-local for the
//! request's future ([`scope`]) and read where an enclave request is encoded ([`current`]).

use axum::http::{HeaderMap, HeaderValue};
use nitro_wallet_protocol::is_valid_request_id;
use std::{
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        OnceLock,
    },
};

/// The header that carries request ids, both ways.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: HeaderValue;
}

/// The caller's id when it is well formed, else a new one.
pub fn from_headers(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(HEADER)
        .filter(|v| v.to_str().is_ok_and(is_valid_request_id))
        .cloned()
        .unwrap_or_else(generate)
}

/// A new id: `<process prefix>-<counter>`, both hex.
pub fn generate() -> HeaderValue {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let prefix = *PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 4];
        // Without randomness ids are still unique within this process.
        let _ = getrandom::fill(&mut bytes);
        u32::from_be_bytes(bytes)
    });
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let id = format!("{prefix:08x}-{n:x}");
    // Hex digits and a dash: always a valid header value.
    HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// Runs `f` with `id` as the current request id.
pub async fn scope<F: Future>(id: HeaderValue, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    REQUEST_ID
        .try_with(|id| id.to_str().ok().map(str::to_owned))
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn headers(value: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_bytes(value).unwrap());
        h
    }

    #[test]
    fn well_formed_caller_ids_are_kept_and_others_replaced() {
        let uuid = b"0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(from_headers(&headers(uuid)).as_bytes(), uuid);
        for bad in [
            &b"has space"[..],
            b"quote\"d",
            b"semi;colon",
            &[b'a'; 65],
            b"\xc3\xa9t\xc3\xa9",
        ] {
            let id = from_headers(&headers(bad));
            assert_ne!(id.as_bytes(), bad);
            assert!(is_valid_request_id(id.to_str().unwrap()), "{id:?}");
        }
        let made = from_headers(&HeaderMap::new());
        assert!(is_valid_request_id(made.to_str().unwrap()), "{made:?}");
    }

    #[test]
    fn made_ids_are_unique_and_share_the_process_prefix() {
        let (a, b) = (generate(), generate());
        assert_ne!(a, b);
        let prefix = |v: &HeaderValue| v.to_str().unwrap().split('-').next().unwrap().to_owned();
        assert_eq!(prefix(&a), prefix(&b));
    }

    #[tokio::test]
    async fn the_id_is_current_inside_its_scope_only() {
        assert_eq!(current(), None);
        let inside = scope(HeaderValue::from_static("abc"), async { current() }).await;
        assert_eq!(inside.as_deref(), Some("abc"));
        assert_eq!(current(), None);
    }
}
