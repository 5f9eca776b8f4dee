//! The HTTPS API (DESIGN.md §4).
//!
//! Routing, limits and error shape live here; handlers per resource live in submodules.
//! Every `/v1` route requires a bearer token ([`auth`]). Bodies are size-limited, every
//! request has a deadline, and concurrency is bounded; every error is JSON ([`error`]).

pub mod auth;
pub mod compat;
pub mod error;
pub mod keys;
pub mod web3signer;

use crate::{enclave_client::EnclaveClient, keystore::KeyStore};
use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use error::ApiError;
use nitro_wallet_protocol::{Request as EnclaveRequest, Response as EnclaveResponse};
use std::{sync::Arc, time::Duration};

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The enclave.
    pub enclave: Arc<EnclaveClient>,
    /// Key records.
    pub store: Arc<dyn KeyStore>,
    /// Accepted API tokens.
    pub tokens: Arc<auth::Tokens>,
    /// KMS key that wraps new keys.
    pub kms_key_id: Arc<str>,
    /// Reader of the reference sample's secrets, for migration (with the Secrets Manager key
    /// store only).
    pub legacy: Option<Arc<crate::legacy::LegacySecrets>>,
    /// Which key each migrated sample secret is, for `POST /`.
    pub secret_index: Arc<crate::legacy::SecretIndex>,
    /// Keys allowed to sign raw digests (`[signing] raw_hash_keys`).
    pub raw_hash_keys: Arc<std::collections::HashSet<alloy_primitives::Address>>,
}

/// Limits applied to every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest body.
    pub body_bytes: usize,
    /// Deadline of one request.
    pub request_timeout: Duration,
    /// Requests processed at once.
    pub max_concurrent: usize,
}

/// The whole API.
pub fn router(state: AppState, limits: Limits) -> Router {
    let v1 = Router::new()
        .route("/keys", post(keys::create).get(keys::list))
        .route("/keys/import", post(keys::import))
        .route("/keys/migrate", post(compat::migrate))
        .route("/keys/{address}", get(keys::show))
        .route(
            "/keys/{address}/sign/transaction",
            post(keys::sign_transaction),
        )
        .route("/keys/{address}/sign/message", post(keys::sign_message))
        .route(
            "/keys/{address}/sign/typed-data",
            post(keys::sign_typed_data),
        )
        .route("/keys/{address}/sign/hash", post(keys::sign_hash))
        .route(
            "/keys/{address}/sign/authorization",
            post(keys::sign_authorization),
        )
        .route("/attestation", get(attestation))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    // The reference sample's signing route and the Web3Signer eth1 surface, behind the same
    // tokens.
    let compatible = Router::new()
        .route("/", post(compat::sign))
        .route("/api/v1/eth1/publicKeys", get(web3signer::public_keys))
        .route("/api/v1/eth1/sign/{identifier}", post(web3signer::sign))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let timeout = limits.request_timeout;
    Router::new()
        .merge(compatible)
        .route("/healthz", get(healthz))
        .route("/upcheck", get(web3signer::upcheck))
        .route("/readyz", get(readyz))
        .nest("/v1", v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(limits.body_bytes))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent,
        ))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            deadline(timeout, req, next)
        }))
}

async fn deadline(timeout: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable(
            "timeout",
            format!("the request did not complete within {}s", timeout.as_secs()),
        )
        .into_response(),
    }
}

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when the enclave answers a ping (which runs a signing self-test).
async fn readyz(State(state): State<AppState>) -> Response {
    let probe = tokio::time::timeout(
        Duration::from_secs(2),
        state.enclave.call(EnclaveRequest::Ping),
    );
    match probe.await {
        Ok(Ok(EnclaveResponse::Pong(pong))) => Json(serde_json::json!({
            "status": "ready",
            "enclave": { "version": pong.version, "cached_keys": pong.cached_keys },
        }))
        .into_response(),
        Ok(Err(e)) => {
            ApiError::unavailable("not_ready", format!("enclave not ready: {e}")).into_response()
        }
        _ => ApiError::unavailable("not_ready", "enclave did not answer").into_response(),
    }
}

#[derive(Debug, serde::Deserialize)]
struct AttestationQuery {
    nonce: Option<String>,
}

/// `GET /v1/attestation?nonce=<hex>`: a fresh attestation document of a serving enclave,
/// binding the caller's nonce, for `nitro-wallet attestation verify`.
async fn attestation(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<AttestationQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let bad_nonce = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_nonce",
            "nonce must be hex, at most 512 bytes",
        )
        .with_field("nonce")
    };
    let query = query.map_err(|_| bad_nonce())?;
    let nonce = match query.nonce.as_deref() {
        None | Some("") => None,
        Some(h) => {
            let bytes = hex::decode(h.strip_prefix("0x").unwrap_or(h)).map_err(|_| bad_nonce())?;
            if bytes.len() > nitro_wallet_enclave::MAX_NONCE_LEN {
                return Err(bad_nonce());
            }
            Some(bytes)
        }
    };
    let request = EnclaveRequest::Attestation(nitro_wallet_protocol::AttestationRequest { nonce });
    match state.enclave.call(request).await? {
        EnclaveResponse::Attestation(doc) => {
            use base64::Engine as _;
            Ok(Json(serde_json::json!({
                "format": "COSE_Sign1",
                "document": base64::engine::general_purpose::STANDARD.encode(&doc.document),
                "dev": doc.dev,
            })))
        }
        _ => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "unexpected answer from the enclave",
        )),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
