//! Fuzzes the local KMS emulator's HTTP API: JSON request bodies with base64 fields, the
//! encryption context and the ciphertext blob format. Its parsers are private, so requests go
//! through the real router (`Emulator::router()` with `tower::ServiceExt::oneshot`).
//!
//! Input layout: the first byte picks the request shape (low 3 bits) and whether the SigV4
//! `Authorization` header is left out (high bit); the rest is
//! - modes 0-3: the body of `Encrypt`, `Decrypt`, `GenerateRandom`, `DescribeKey`;
//! - mode 4: the body of an operation the emulator does not implement; mode 5: no target;
//! - mode 6: the raw bytes of a `CiphertextBlob`, sent in a well-formed `Decrypt`;
//! - mode 7: a genuine blob (made once at start-up) with the input written over it from the
//!   offset in the second byte, sent in a well-formed `Decrypt`: reaches the AEAD step.
//!
//! Checks: no panic; the status is never 5xx except an explicit `KMSInternalException`; every
//! response body is a JSON object; a successful `Decrypt` of an unmodified blob yields the
//! original plaintext.

#![no_main]

use axum::{
    body::Body,
    http::{Request, StatusCode},
    Router,
};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine as _};
use libfuzzer_sys::fuzz_target;
use nitro_wallet_kms::emulator::{Emulator, DEFAULT_ALIAS};
use serde_json::{json, Value};
use std::sync::OnceLock;
use tokio::runtime::Runtime;
use tower::ServiceExt as _;

const PLAINTEXT: [u8; 32] = [0x11; 32];
const CONTEXT_KEY: &str = "nitro-wallet:address";
const CONTEXT_VALUE: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

struct Fixture {
    rt: Runtime,
    router: Router,
    blob: Vec<u8>,
    _emulator: Emulator,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| match setup() {
        Ok(f) => f,
        Err(e) => panic!("fuzz fixture: {e}"),
    })
}

fn setup() -> Result<Fixture, Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let emulator = Emulator::open(&dir.path().join("kms"))?;
    let router = emulator.router();
    let body = json!({
        "KeyId": DEFAULT_ALIAS,
        "Plaintext": BASE64.encode(PLAINTEXT),
        "EncryptionContext": { CONTEXT_KEY: CONTEXT_VALUE },
    });
    let (status, value) = rt.block_on(call(
        &router,
        Some("Encrypt"),
        true,
        body.to_string().into_bytes(),
    ));
    if status != StatusCode::OK {
        return Err(format!("Encrypt: {status} {value}").into());
    }
    let blob = value["CiphertextBlob"]
        .as_str()
        .ok_or("Encrypt: no CiphertextBlob")?;
    let blob = BASE64.decode(blob)?;
    Ok(Fixture {
        rt,
        router,
        blob,
        _emulator: emulator,
        _dir: dir,
    })
}

/// Sends one request; checks and returns the status and the JSON body.
async fn call(
    router: &Router,
    operation: Option<&str>,
    authorized: bool,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let mut request = Request::post("/").header("content-type", "application/x-amz-json-1.1");
    if let Some(op) = operation {
        request = request.header("x-amz-target", format!("TrentService.{op}"));
    }
    if authorized {
        request = request.header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDFUZZ/20250101/us-east-1/kms/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        );
    }
    let request = match request.body(Body::from(body)) {
        Ok(r) => r,
        Err(e) => panic!("building the request: {e}"),
    };
    let response = match router.clone().oneshot(request).await {
        Ok(r) => r,
        Err(e) => match e {},
    };
    let status = response.status();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        !status.is_server_error() || error_type == "KMSInternalException",
        "status {status} with error type {error_type:?}"
    );
    let bytes = match axum::body::to_bytes(response.into_body(), 1 << 20).await {
        Ok(b) => b,
        Err(e) => panic!("reading the response body: {e}"),
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(v) => v,
        Err(e) => panic!("response body is not JSON ({e}): {bytes:?}"),
    };
    assert!(value.is_object(), "response body is not an object: {value}");
    (status, value)
}

fn decrypt_body(blob: &[u8]) -> Vec<u8> {
    json!({
        "CiphertextBlob": BASE64.encode(blob),
        "EncryptionContext": { CONTEXT_KEY: CONTEXT_VALUE },
    })
    .to_string()
    .into_bytes()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let fx = fixture();
    let authorized = selector & 0x80 == 0;
    let (operation, body, original) = match selector & 0x07 {
        0 => (Some("Encrypt"), rest.to_vec(), false),
        1 => (Some("Decrypt"), rest.to_vec(), false),
        2 => (Some("GenerateRandom"), rest.to_vec(), false),
        3 => (Some("DescribeKey"), rest.to_vec(), false),
        4 => (Some("CreateKey"), rest.to_vec(), false),
        5 => (None, rest.to_vec(), false),
        6 => (Some("Decrypt"), decrypt_body(rest), false),
        _ => {
            let mut blob = fx.blob.clone();
            let (offset, patch) = match rest.split_first() {
                Some((&o, p)) => (usize::from(o), p),
                None => (0, rest),
            };
            let offset = offset.min(blob.len());
            let end = offset.saturating_add(patch.len()).min(blob.len());
            blob[offset..end].copy_from_slice(&patch[..end - offset]);
            blob.extend_from_slice(&patch[end - offset..]);
            let original = blob == fx.blob;
            (Some("Decrypt"), decrypt_body(&blob), original)
        }
    };
    let (status, value) = fx
        .rt
        .block_on(call(&fx.router, operation, authorized, body));
    if original && authorized {
        assert_eq!(status, StatusCode::OK, "{value}");
        assert_eq!(value["Plaintext"], json!(BASE64.encode(PLAINTEXT)));
    }
});
