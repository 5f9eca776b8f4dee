//! The HTTPS API (DESIGN.md §4).
//!
//! Routing, limits and error shape live here; handlers per resource live in submodules.
//! Every `/v1` route requires a bearer token whose scopes allow the operation and the key
//! ([`auth`]). Bodies are size-limited, every
//! request has a deadline, and concurrency is bounded; every error is JSON ([`error`]).

pub mod auth;
pub mod compat;
pub mod error;
pub mod keys;
pub mod observe;
pub mod openapi;
pub mod rpc;
pub mod web3signer;

use crate::{enclave_pool::EnclavePool, keystore::KeyStore};
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

/// Shared state of the handlers: one pointer, so that the extractors and middleware layers
/// that take it by value clone one `Arc` per use, not one per field.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The state of a server.
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] points to.
#[derive(Debug)]
pub struct Shared {
    /// The enclaves (one or several, balanced).
    pub enclave: Arc<EnclavePool>,
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
    /// Serializes the signatures of each key that has a rolling window.
    pub window_locks: Arc<KeyLocks>,
    /// JSON-RPC (`POST /rpc`): the upstream node and the per-address nonce locks.
    pub rpc: Arc<rpc::Rpc>,
    /// The audit log every signing decision is written to before it is released (see
    /// [`AppState::decide`]); `None` when `[audit] path` is not configured.
    pub audit: Option<Arc<crate::audit::AuditLog>>,
    /// Prometheus metrics: the API's, the enclave pool's and (in dev mode) the supervisor's.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Whether `GET /metrics` is served on this API (behind a token): `[metrics]` is enabled
    /// and has no listener of its own.
    pub metrics_on_api: bool,
}

/// One async mutex per address, made on first use.
#[derive(Debug, Default)]
pub struct KeyLocks(
    std::sync::Mutex<
        std::collections::HashMap<alloy_primitives::Address, Arc<tokio::sync::Mutex<()>>>,
    >,
);

impl KeyLocks {
    /// The mutex of `address`.
    pub fn lock_for(&self, address: alloy_primitives::Address) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(address).or_default().clone()
    }
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
            "/keys/{address}/policy",
            axum::routing::put(keys::set_policy),
        )
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
        // Inside the token check: the token's name is the audit log's caller.
        .route_layer(middleware::from_fn(crate::audit::record_caller))
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
        .route_layer(middleware::from_fn(crate::audit::record_caller))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ));
    let timeout = limits.request_timeout;
    let metrics = state.metrics.clone();
    let metrics_route = metrics_route(&state);
    Router::new()
        .merge(compatible)
        .merge(rpc::router())
        .route("/healthz", get(healthz))
        .route("/upcheck", get(web3signer::upcheck))
        .route("/readyz", get(readyz))
        .route("/openapi.json", get(openapi::serve))
        .nest("/v1", v1)
        .merge(metrics_route)
        // After every route: the request metrics label each one by its template.
        .route_layer(middleware::from_fn(observe::record_route))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(limits.body_bytes))
        // Load shedding: past `max_concurrent` requests in progress, answer 503 with
        // Retry-After at once instead of queueing, so that overload costs callers a fast
        // retry rather than a queue that grows until every request times out.
        .layer(middleware::from_fn({
            let permits = limits
                .max_concurrent
                .min(tokio::sync::Semaphore::MAX_PERMITS);
            let slots = Arc::new(tokio::sync::Semaphore::new(permits));
            move |req: Request, next: Next| {
                let slot = slots.clone().try_acquire_owned();
                async move {
                    match slot {
                        Ok(_slot) => next.run(req).await,
                        Err(_) => ApiError::unavailable(
                            "overloaded",
                            "the server is at its limit of requests in progress; retry shortly",
                        )
                        .into_response(),
                    }
                }
            }
        }))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            deadline(timeout, req, next)
        }))
        // Outermost: every answer, the deadline's and the load shedder's included, gets a
        // request id and is counted.
        .layer(middleware::from_fn_with_state(metrics, observe::observe))
}

/// `GET /metrics` on the API, unless metrics are off or have their own listener. Prometheus
/// scrapes with a bearer token; `keys:read` suffices (metrics show less than the keys list),
/// so a scraper's token need not be able to sign.
fn metrics_route(state: &AppState) -> Router<AppState> {
    if !state.metrics_on_api {
        return Router::new();
    }
    Router::new()
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
}

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "meta",
    operation_id = "metrics",
    summary = "Prometheus metrics",
    responses(
        (status = 200, description = "Prometheus metrics, in the text format", content_type = "text/plain", body = String),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 404, description = "`not_found`: metrics are off (`[metrics] enabled = false`) or on a listener of their own", body = openapi::ErrorBody),
        (status = 429, response = openapi::TooManyRequests),
        (status = 503, response = openapi::Unavailable),
    ),
)]
async fn metrics(
    State(state): State<AppState>,
    caller: auth::Caller,
) -> Result<Response, ApiError> {
    caller.authorize(crate::tokens::Operation::KeysRead, None)?;
    Ok(crate::metrics::exposition(&state.metrics))
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

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "meta",
    operation_id = "healthz",
    summary = "Liveness",
    security(()),
    responses((status = 200, description = "The process is alive", body = openapi::Alive)),
)]
async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "meta",
    operation_id = "readyz",
    summary = "Readiness",
    security(()),
    responses(
        (status = 200, description = "An enclave answers", body = openapi::Ready),
        (status = 503, description = "`not_ready`: no enclave answers", body = openapi::NotReady,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
    ),
)]
/// Ready when at least one enclave answers a ping (which runs a signing self-test), as last
/// probed by the pool (or probed now when none was up). The body lists every enclave's state
/// and load.
async fn readyz(State(state): State<AppState>) -> Response {
    let health = state.enclave.readiness().await;
    let first_up = health
        .enclaves
        .iter()
        .find(|e| e.state == crate::enclave_pool::MemberState::Up);
    match first_up {
        Some(up) => Json(serde_json::json!({
            "status": "ready",
            "enclave": { "version": up.version, "cached_keys": up.cached_keys },
            "enclaves": health.enclaves,
        }))
        .into_response(),
        None => {
            let message = format!("no enclave answers ({} configured)", health.enclaves.len());
            let mut response = ApiError::unavailable("not_ready", message.clone()).into_response();
            // The error shape (status, Retry-After) plus the per-enclave detail.
            *response.body_mut() = axum::body::Body::from(
                serde_json::json!({
                    "error": { "code": "not_ready", "message": message },
                    "enclaves": health.enclaves,
                })
                .to_string(),
            );
            response
        }
    }
}

#[derive(Debug, serde::Deserialize)]
struct AttestationQuery {
    nonce: Option<String>,
}

#[utoipa::path(
    get,
    path = "/v1/attestation",
    tag = "meta",
    operation_id = "attestation",
    summary = "Attestation document of a serving enclave",
    params(("nonce" = Option<String>, Query, description = "Hex (`0x` optional), at most 512 bytes, bound into the document")),
    responses(
        (status = 200, description = "A fresh attestation document of a serving enclave", body = openapi::Attestation),
        (status = 400, response = openapi::BadRequest),
        (status = 401, response = openapi::Unauthorized),
        (status = 403, response = openapi::Forbidden),
        (status = 429, response = openapi::TooManyRequests),
        (status = 503, response = openapi::Unavailable),
    ),
)]
/// `GET /v1/attestation?nonce=<hex>`: a fresh attestation document of a serving enclave,
/// binding the caller's nonce, for `nitro-wallet attestation verify`.
async fn attestation(
    State(state): State<AppState>,
    caller: auth::Caller,
    query: Result<axum::extract::Query<AttestationQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.authorize(crate::tokens::Operation::KeysRead, None)?;
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
