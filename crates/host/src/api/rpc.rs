//! JSON-RPC at `POST /rpc`: the wallet interface Ethereum clients (cast, viem, ethers,
//! web3.py) speak to an unlocked node, with the keys in the enclave.
//!
//! Served here: `eth_accounts` and `eth_requestAccounts` (the keys the token may use),
//! `eth_chainId` (the upstream node's, cached), `eth_signTransaction` (a complete transaction
//! → the raw signed transaction), `eth_sendTransaction` (completed from the upstream node,
//! signed and sent by the `send` submodule, with per-address nonces from `nonce`), `eth_sign`,
//! `personal_sign` and `eth_signTypedData_v4`. Every other method is forwarded unchanged to
//! the configured upstream node ([`crate::upstream`]),
//! except the signing and account methods of other wallets (`personal_*`,
//! `eth_signTypedData`/`_v1`/`_v3`, `wallet_*`), which are refused rather than handed to a
//! node that might hold keys of its own.
//!
//! Authentication is the API's bearer token, in the `Authorization` header or, for clients
//! that cannot set headers, in the path (`POST /rpc/<token>`); either is checked in constant
//! time by [`super::auth::Tokens`]. No request path is ever logged, so the token in it is not
//! either. The token's scopes hold per method, as on the REST routes: `eth_signTransaction`
//! and `eth_sendTransaction` need `sign:transaction`, `eth_sign`, `personal_sign` and
//! `eth_signTypedData_v4` need `sign:message`, each with the key in the token's `keys`
//! (refused with 4100 and `data.code = "forbidden"`); `eth_accounts` needs `keys:read` or a
//! signing operation; `eth_chainId` and the proxied methods need a valid token only. A token's
//! rate limit is charged one unit per call (a batch of n calls costs n); when it is reached
//! the whole request is answered with HTTP 429, `Retry-After` and a -32005 error.
//! JSON-RPC errors are answered with HTTP 200; only authentication failures (401), rate
//! limits (429) and an oversized body (413) use the HTTP status. Framing and error codes:
//! [`wire`].

mod nonce;
mod send;
pub mod wire;

pub use wire::{parse_rpc_body, RpcBody, RpcError};

use super::{
    auth::{bearer, Caller, Throttled},
    error::ApiError,
    keys, AppState,
};
use crate::{config::RpcConfig, keystore::KeyRecord, tokens::Operation, upstream::Upstream};
use alloy_primitives::Address;
use axum::{
    body::{Body, Bytes},
    extract::{rejection::PathRejection, FromRequest, Path, Request, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
    Router,
};
use futures::StreamExt as _;
use nitro_wallet_eth::{MessageSignature, PersonalMessage};
use serde_json::{value::RawValue, Value};
use std::{sync::Arc, time::Duration};
use wire::{code, Call, Entry};

/// Requests of one batch handled at once.
const BATCH_CONCURRENCY: usize = 16;

/// State of the JSON-RPC endpoint: the upstream node, its chain id, the nonce locks.
#[derive(Debug, Default)]
pub struct Rpc {
    upstream: Option<Upstream>,
    chain_id: tokio::sync::OnceCell<u64>,
    nonces: nonce::Nonces,
}

impl Rpc {
    /// From the `[rpc]` configuration.
    ///
    /// # Errors
    /// When the upstream URL is unusable.
    pub fn new(config: &RpcConfig) -> crate::Result<Rpc> {
        let upstream = config
            .upstream
            .as_deref()
            .map(|url| Upstream::new(url, Duration::from_secs(config.upstream_timeout_secs)))
            .transpose()?;
        if let Some(u) = &upstream {
            tracing::info!(node = %u.display_name(), "JSON-RPC upstream node");
        }
        Ok(Rpc {
            upstream,
            ..Rpc::default()
        })
    }

    fn upstream(&self, method: &str) -> Result<&Upstream, RpcError> {
        self.upstream.as_ref().ok_or_else(|| no_upstream(method))
    }

    /// The upstream node's chain id, asked once.
    async fn chain_id(&self) -> Result<u64, RpcError> {
        let upstream = self.upstream("eth_chainId")?;
        self.chain_id
            .get_or_try_init(|| async {
                let v = upstream.call("eth_chainId", Value::Array(vec![])).await?;
                v.as_str()
                    .and_then(|s| s.strip_prefix("0x"))
                    .and_then(|h| u64::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        RpcError::new(
                            code::INTERNAL_ERROR,
                            "the upstream node's answer to eth_chainId is not usable",
                        )
                    })
            })
            .await
            .copied()
    }
}

fn no_upstream(method: &str) -> RpcError {
    RpcError::new(
        code::METHOD_NOT_FOUND,
        format!(
            "method {method} is not served here and no upstream node is configured \
             ([rpc] upstream, or `nitro-wallet dev --upstream-rpc <url>`)"
        ),
    )
    .with_code("no_upstream")
}

/// The routes: `POST /rpc` and `POST /rpc/{token}`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/rpc", post(header_token))
        .route("/rpc/{token}", post(path_token))
}

#[utoipa::path(
    post,
    path = "/rpc",
    tag = "json-rpc",
    operation_id = "json_rpc",
    summary = "Ethereum JSON-RPC",
    request_body = super::openapi::JsonRpcBody,
    responses(
        (status = 200, description = "The answer (JSON-RPC errors too are 200)", body = super::openapi::JsonRpcResponse),
        (status = 204, description = "Only notifications: nothing to answer"),
        (status = 400, description = "The body could not be read (a JSON-RPC error)", body = super::openapi::JsonRpcResponse),
        (status = 401, description = "No valid token (a JSON-RPC error)", body = super::openapi::JsonRpcResponse,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 413, description = "The body is over the limit (a JSON-RPC error)", body = super::openapi::JsonRpcResponse),
        (status = 429, description = "The token's rate limit is reached (JSON-RPC error -32005)", body = super::openapi::JsonRpcResponse,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, response = super::openapi::Unavailable),
    ),
)]
async fn header_token(State(state): State<AppState>, request: Request) -> Response {
    serve(state, None, request).await
}

#[utoipa::path(
    post,
    path = "/rpc/{token}",
    tag = "json-rpc",
    operation_id = "json_rpc_token_in_path",
    summary = "Ethereum JSON-RPC, token in the path",
    params(("token" = String, Path, description = "The API token, for clients that cannot set headers")),
    security(()),
    request_body = super::openapi::JsonRpcBody,
    responses(
        (status = 200, description = "The answer (JSON-RPC errors too are 200)", body = super::openapi::JsonRpcResponse),
        (status = 204, description = "Only notifications: nothing to answer"),
        (status = 400, description = "The body could not be read (a JSON-RPC error)", body = super::openapi::JsonRpcResponse),
        (status = 401, description = "No valid token (a JSON-RPC error)", body = super::openapi::JsonRpcResponse,
            headers(("WWW-Authenticate" = String, description = "`Bearer`"))),
        (status = 413, description = "The body is over the limit (a JSON-RPC error)", body = super::openapi::JsonRpcResponse),
        (status = 429, description = "The token's rate limit is reached (JSON-RPC error -32005)", body = super::openapi::JsonRpcResponse,
            headers(("Retry-After" = String, description = "Seconds to wait"))),
        (status = 503, response = super::openapi::Unavailable),
    ),
)]
async fn path_token(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    match token {
        Ok(Path(token)) => serve(state, Some(token), request).await,
        Err(_) => unauthorized("invalid token"),
    }
}

async fn serve(state: AppState, path_token: Option<String>, request: Request) -> Response {
    let authenticated = authenticate(
        &state,
        request.headers(),
        path_token.as_deref(),
        super::auth::client_cert(request.extensions()),
    );
    drop(path_token);
    // Read (within the API's body limit) even when refusing: an HTTP/2 answer sent before the
    // request body ends is followed by a stream reset, which some clients (curl 7.x) report
    // as a framing error instead of the 401.
    let body = Bytes::from_request(request, &state).await;
    let caller = match authenticated {
        Ok(caller) => caller,
        Err(why) => return unauthorized(&why),
    };
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let (status, message) = if status == StatusCode::PAYLOAD_TOO_LARGE {
                (status, "the request body exceeds the limit")
            } else {
                (
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                )
            };
            let error = RpcError::new(code::INVALID_REQUEST, message);
            return raw_reply(status, wire::response(RawValue::NULL, Err(error)));
        }
    };
    let parsed = parse_rpc_body(&body);
    // One unit of the token's rate limit per call; what does not parse costs one.
    let cost = match &parsed {
        Ok(RpcBody::Batch(entries)) => u32::try_from(entries.len()).unwrap_or(u32::MAX),
        _ => 1,
    };
    if let Err(throttled) = state.tokens.admit(&caller, cost) {
        return rate_limited(throttled);
    }
    match parsed {
        Err(error) => raw_reply(StatusCode::OK, wire::response(RawValue::NULL, Err(error))),
        Ok(RpcBody::Single(entry)) => match handle(&state, &caller, entry).await {
            Some(reply) => raw_reply(StatusCode::OK, reply),
            None => StatusCode::NO_CONTENT.into_response(),
        },
        Ok(RpcBody::Batch(entries)) => {
            let replies: Vec<Box<RawValue>> = futures::stream::iter(entries)
                .map(|entry| handle(&state, &caller, entry))
                .buffered(BATCH_CONCURRENCY)
                .filter_map(|reply| async move { reply })
                .collect()
                .await;
            if replies.is_empty() {
                // Only notifications: nothing to answer (never an empty array).
                StatusCode::NO_CONTENT.into_response()
            } else {
                json_reply(StatusCode::OK, wire::encode_batch(&replies))
            }
        }
    }
}

/// Every presented token (header, path) must be valid and two must be the same token; without
/// a token, a client certificate mapped to one will do.
fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    path_token: Option<&str>,
    cert: Option<&crate::tls::ClientCert>,
) -> Result<Caller, String> {
    let header_token = bearer(headers)?;
    let mut caller: Option<Caller> = None;
    for token in [header_token, path_token].into_iter().flatten() {
        let this = state.tokens.verify(token).ok_or("invalid token")?;
        if caller.as_ref().is_some_and(|c| c.name() != this.name()) {
            return Err("the header and the path carry two different tokens".to_owned());
        }
        caller = Some(this);
    }
    match (caller, cert) {
        (Some(caller), _) => Ok(caller),
        (None, Some(cert)) => state.tokens.authenticate(None, Some(cert)),
        (None, None) => {
            Err("missing token: `Authorization: Bearer <token>`, or POST /rpc/<token>".to_owned())
        }
    }
}

/// HTTP 429 with `Retry-After` and a -32005 error (clients retry on the status), or -32600 for
/// a batch larger than the token's burst, which no wait would let through.
fn rate_limited(throttled: Throttled) -> Response {
    match throttled {
        Throttled::RetryAfter(secs) => {
            let error = RpcError {
                code: code::LIMIT_EXCEEDED,
                message: format!("this token's rate limit is reached; retry in {secs} s"),
                data: Some(serde_json::json!({ "code": "rate_limited", "retry_after": secs })),
            };
            let mut response = raw_reply(
                StatusCode::TOO_MANY_REQUESTS,
                wire::response(RawValue::NULL, Err(error)),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            response
        }
        Throttled::OverBurst(burst) => {
            let error = RpcError::invalid_request(format!(
                "invalid request: the batch has more calls than this token's burst of {burst}; \
                 send at most {burst} per batch"
            ))
            .with_code("rate_limited");
            raw_reply(StatusCode::OK, wire::response(RawValue::NULL, Err(error)))
        }
    }
}

fn unauthorized(why: &str) -> Response {
    let error =
        RpcError::new(code::UNAUTHORIZED, format!("unauthorized: {why}")).with_code("unauthorized");
    let mut response = raw_reply(
        StatusCode::UNAUTHORIZED,
        wire::response(RawValue::NULL, Err(error)),
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

fn raw_reply(status: StatusCode, reply: Box<RawValue>) -> Response {
    json_reply(status, String::from(Box::<str>::from(reply)))
}

fn json_reply(status: StatusCode, body: impl Into<Body>) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.into(),
    )
        .into_response()
}

/// Answers one element; `None` for a notification.
async fn handle(state: &AppState, caller: &Caller, entry: Entry) -> Option<Box<RawValue>> {
    let call = match entry {
        Entry::Invalid { id, error } => return Some(wire::response(&id, Err(error))),
        Entry::Call(call) => call,
    };
    // The token's name is the audit log's caller for what this call has signed.
    let outcome = crate::audit::with_caller(
        Some(caller.name().to_owned()),
        dispatch(state, caller, &call),
    )
    .await;
    let id = call.id?;
    Some(match outcome {
        Outcome::Local(result) => {
            if let Err(e) = &result {
                tracing::debug!(method = ?call.method, code = e.code, "JSON-RPC error");
            }
            wire::response(&id, result)
        }
        Outcome::Proxied(Some(reply)) => reply,
        Outcome::Proxied(None) => wire::response(
            &id,
            Err(
                RpcError::new(code::INTERNAL_ERROR, "the upstream node sent no response")
                    .with_code("upstream_bad_answer"),
            ),
        ),
    })
}

enum Outcome {
    Local(Result<Value, RpcError>),
    /// The upstream node's response, as it is.
    Proxied(Option<Box<RawValue>>),
}

async fn dispatch(state: &AppState, caller: &Caller, call: &Call) -> Outcome {
    let params = call.params.as_deref();
    let local = Outcome::Local;
    tracing::debug!(method = ?call.method, "JSON-RPC call");
    match call.method.as_str() {
        "eth_accounts" | "eth_requestAccounts" => local(accounts(state, caller).await),
        "eth_chainId" => local(
            state
                .rpc
                .chain_id()
                .await
                .map(|id| Value::String(format!("{id:#x}"))),
        ),
        "eth_signTransaction" => local(sign_transaction(state, caller, params).await),
        "eth_sendTransaction" => local(send::send_transaction(state, caller, params).await),
        "eth_sign" => local(eth_sign(state, caller, params).await),
        "personal_sign" => local(personal_sign(state, caller, params).await),
        "eth_signTypedData_v4" => local(sign_typed_data(state, caller, params).await),
        method if refused(method) => local(Err(RpcError::new(
            code::METHOD_NOT_FOUND,
            format!(
                "method {method} is not supported: this signer serves eth_sign, personal_sign, \
                 eth_signTypedData_v4, eth_signTransaction and eth_sendTransaction"
            ),
        )
        .with_code("unsupported_method"))),
        method => match state.rpc.upstream(method) {
            Err(e) => local(Err(e)),
            Ok(upstream) => match upstream.forward(call.raw.get().as_bytes()).await {
                Ok(reply) => Outcome::Proxied(reply),
                Err(e) => local(Err(e.into())),
            },
        },
    }
}

/// Methods of other wallets that must not reach a node that may hold keys of its own.
fn refused(method: &str) -> bool {
    matches!(
        method,
        "eth_signTypedData" | "eth_signTypedData_v1" | "eth_signTypedData_v3"
    ) || method.starts_with("personal_")
        || method.starts_with("wallet_")
}

/// The keys the token may use; it needs `keys:read` or a signing operation.
async fn accounts(state: &AppState, caller: &Caller) -> Result<Value, RpcError> {
    let may_list = Operation::ALL
        .into_iter()
        .any(|op| (op == Operation::KeysRead || op.is_signing()) && caller.allows(op));
    if !may_list {
        // Lacking keys:read, this refuses naming it.
        caller
            .authorize(Operation::KeysRead, None)
            .map_err(ApiError::from)?;
    }
    let records = state.store.list().await.map_err(ApiError::from)?;
    Ok(Value::Array(
        records
            .iter()
            .filter(|r| caller.may_use(&r.address))
            .map(|r| Value::String(r.address.to_checksum(None)))
            .collect(),
    ))
}

/// `eth_signTransaction [transaction]`: the transaction must be complete (nothing is filled);
/// the result is the raw signed transaction.
async fn sign_transaction(
    state: &AppState,
    caller: &Caller,
    params: Option<&RawValue>,
) -> Result<Value, RpcError> {
    let [tx] = positional::<1>(params, "eth_signTransaction takes [transaction]")?;
    #[derive(serde::Deserialize)]
    struct From {
        #[serde(default)]
        from: Option<Box<RawValue>>,
    }
    let from = serde_json::from_str::<From>(tx.get())
        .ok()
        .and_then(|f| f.from)
        .filter(|f| f.get() != "null")
        .ok_or_else(|| {
            RpcError::invalid_params(
                "the transaction must be an object with `from`: the address of the signing key",
            )
        })?;
    let from = parse_address(&from, "from")?;
    let record = account(state, caller, Operation::SignTransaction, from).await?;
    let signed = keys::sign_with(state, &record, tx).await?;
    Ok(Value::String(signed.raw_transaction.to_string()))
}

/// `eth_sign [address, data]`: `data` is 0x hex, signed with the EIP-191 prefix (as geth).
async fn eth_sign(
    state: &AppState,
    caller: &Caller,
    params: Option<&RawValue>,
) -> Result<Value, RpcError> {
    let [address, data] = positional::<2>(params, "eth_sign takes [address, data]")?;
    let address = parse_address(&address, "address")?;
    let record = account(state, caller, Operation::SignMessage, address).await?;
    let bytes = serde_json::from_str::<String>(data.get())
        .ok()
        .and_then(|s| s.strip_prefix("0x").and_then(|h| hex::decode(h).ok()))
        .ok_or_else(|| {
            RpcError::invalid_params(
                "eth_sign: data must be 0x followed by an even number of hex digits",
            )
        })?;
    let signature = keys::sign_message_with(state, &record, PersonalMessage::Bytes(bytes)).await?;
    Ok(signature_result(&signature))
}

/// `personal_sign [message, address]`: a `0x` hex string is bytes, other strings are UTF-8
/// text ([`PersonalMessage`]'s rule, MetaMask's).
async fn personal_sign(
    state: &AppState,
    caller: &Caller,
    params: Option<&RawValue>,
) -> Result<Value, RpcError> {
    let [message, address] = positional::<2>(params, "personal_sign takes [message, address]")?;
    let message: Value = serde_json::from_str(message.get())
        .map_err(|_| RpcError::invalid_params("personal_sign: malformed message"))?;
    let message = PersonalMessage::from_value(&message)
        .map_err(|e| RpcError::invalid_params(format!("personal_sign: {e}")))?;
    let address = parse_address(&address, "address")?;
    let record = account(state, caller, Operation::SignMessage, address).await?;
    let signature = keys::sign_message_with(state, &record, message).await?;
    Ok(signature_result(&signature))
}

/// `eth_signTypedData_v4 [address, typedData]`: the document as a JSON string or an object.
async fn sign_typed_data(
    state: &AppState,
    caller: &Caller,
    params: Option<&RawValue>,
) -> Result<Value, RpcError> {
    let [address, document] =
        positional::<2>(params, "eth_signTypedData_v4 takes [address, typedData]")?;
    let address = parse_address(&address, "address")?;
    let record = account(state, caller, Operation::SignMessage, address).await?;
    let document = if document.get().starts_with('"') {
        let text: String = serde_json::from_str(document.get())
            .map_err(|_| RpcError::invalid_params("eth_signTypedData_v4: malformed typedData"))?;
        serde_json::from_str::<Box<RawValue>>(&text).map_err(|_| {
            RpcError::invalid_params("eth_signTypedData_v4: typedData is a string but not JSON")
        })?
    } else {
        document
    };
    let signature = keys::sign_typed_data_with(state, &record, document).await?;
    Ok(signature_result(&signature))
}

/// `0x` ‖ r ‖ s ‖ v (65 bytes, v = 27 or 28): what wallets return.
fn signature_result(signature: &MessageSignature) -> Value {
    Value::String(signature.signature.to_string())
}

/// The key of `address` for `op`: 4100 `forbidden` when the token may not (checked before
/// the key is looked up, so that the answer says nothing about keys outside the scope), 4100
/// `unknown_account` when it is not one of ours.
async fn account(
    state: &AppState,
    caller: &Caller,
    op: Operation,
    address: Address,
) -> Result<Arc<KeyRecord>, RpcError> {
    caller
        .authorize(op, Some(&address))
        .map_err(ApiError::from)?;
    state
        .store
        .get(&address)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| {
            RpcError::new(
                code::UNAUTHORIZED,
                format!(
                    "unknown account {}: not a key of this signer",
                    address.to_checksum(None)
                ),
            )
            .with_code("unknown_account")
        })
}

/// An address parameter: a JSON string, 0x + 40 hex digits; mixed case must be a valid EIP-55
/// checksum.
fn parse_address(raw: &RawValue, what: &str) -> Result<Address, RpcError> {
    let bad = || {
        RpcError::invalid_params(format!(
            "{what} must be 0x followed by 40 hex digits (EIP-55 checksum if mixed case)"
        ))
    };
    let s: String = serde_json::from_str(raw.get()).map_err(|_| bad())?;
    let hex = s.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mixed =
        hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    if mixed {
        Address::parse_checksummed(&s, None).map_err(|_| bad())
    } else {
        s.parse().map_err(|_| bad())
    }
}

/// Exactly `N` positional parameters.
fn positional<const N: usize>(
    params: Option<&RawValue>,
    usage: &str,
) -> Result<[Box<RawValue>; N], RpcError> {
    let values: Vec<Box<RawValue>> = match params {
        Some(p) if p.get().starts_with('[') => {
            serde_json::from_str(p.get()).map_err(|_| RpcError::invalid_params(usage.to_owned()))?
        }
        _ => Vec::new(),
    };
    <[Box<RawValue>; N]>::try_from(values).map_err(|_| RpcError::invalid_params(usage.to_owned()))
}

impl From<ApiError> for RpcError {
    /// The API's errors with their stable code in `data`: refused input is -32602, an unknown
    /// key or a refusal of the key's policy 4100, an overloaded enclave -32005, an unavailable
    /// one -32002, anything else -32603.
    fn from(e: ApiError) -> Self {
        let code = match e.status {
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => code::UNAUTHORIZED,
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => code::INVALID_PARAMS,
            StatusCode::TOO_MANY_REQUESTS => code::LIMIT_EXCEEDED,
            StatusCode::SERVICE_UNAVAILABLE => code::RESOURCE_UNAVAILABLE,
            _ => code::INTERNAL_ERROR,
        };
        let mut data = serde_json::json!({ "code": e.code });
        if let Some(field) = e.field {
            data["field"] = field.into();
        }
        RpcError {
            code,
            message: e.message,
            data: Some(data),
        }
    }
}

impl From<crate::upstream::UpstreamError> for RpcError {
    fn from(e: crate::upstream::UpstreamError) -> Self {
        match e {
            crate::upstream::UpstreamError::Rpc(error) => RpcError::from_upstream(error),
            other => RpcError::new(code::INTERNAL_ERROR, other.to_string())
                .with_code("upstream_unavailable"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn addresses() {
        let a = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
        assert_eq!(
            parse_address(&raw(&format!("\"{a}\"")), "x").unwrap(),
            a.parse::<Address>().unwrap()
        );
        assert!(parse_address(&raw(&format!("\"{}\"", a.to_lowercase())), "x").is_ok());
        assert!(parse_address(
            &raw(&format!("\"{}\"", a.to_uppercase().replace("0X", "0x"))),
            "x"
        )
        .is_ok());
        for bad in [
            "\"0x70997970c51812dc3a010c7d01b50e0d17dc79C8\"",
            "\"70997970c51812dc3a010c7d01b50e0d17dc79c8\"",
            "\"0x70997970c51812dc3a010c7d01b50e0d17dc79\"",
            "7",
            "null",
        ] {
            let e = parse_address(&raw(bad), "address").unwrap_err();
            assert_eq!(e.code, code::INVALID_PARAMS, "{bad}");
        }
    }

    #[test]
    fn positional_parameters() {
        let p = raw(r#"["a", {"b": 1}]"#);
        let [a, b] = positional::<2>(Some(&p), "usage").unwrap();
        assert_eq!(a.get(), r#""a""#);
        assert_eq!(b.get(), r#"{"b": 1}"#);
        assert!(positional::<1>(Some(&p), "usage").is_err());
        assert!(positional::<1>(Some(&raw(r#"{"a": 1}"#)), "usage").is_err());
        assert!(positional::<1>(None, "usage").is_err());
        assert!(positional::<0>(None, "usage").is_ok());
    }

    #[test]
    fn other_wallets_signing_methods_are_refused() {
        for m in [
            "eth_signTypedData",
            "eth_signTypedData_v3",
            "personal_unlockAccount",
            "personal_sendTransaction",
            "wallet_addEthereumChain",
        ] {
            assert!(refused(m), "{m}");
        }
        for m in [
            "eth_getBalance",
            "eth_call",
            "net_version",
            "eth_signTypedData_v4x",
        ] {
            assert!(!refused(m), "{m}");
        }
    }

    #[test]
    fn api_errors_map_to_json_rpc_codes() {
        let e: RpcError = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_transaction",
            "missing field `gas`",
        )
        .with_field("gas")
        .into();
        assert_eq!(e.code, code::INVALID_PARAMS);
        assert_eq!(
            e.data.unwrap(),
            serde_json::json!({"code": "invalid_transaction", "field": "gas"})
        );
        let e: RpcError = ApiError::new(
            StatusCode::FORBIDDEN,
            "policy_denied",
            "value over the limit",
        )
        .into();
        assert_eq!(e.code, code::UNAUTHORIZED);
        assert_eq!(e.data.unwrap()["code"], "policy_denied");
        let e: RpcError = ApiError::unavailable("enclave_unavailable", "retry").into();
        assert_eq!(e.code, code::RESOURCE_UNAVAILABLE);
        let e: RpcError = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", "busy").into();
        assert_eq!(e.code, code::LIMIT_EXCEEDED);
    }
}
