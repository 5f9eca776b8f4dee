//! `/v1/keys`: generate, import, list, show, and sign with a key.
//!
//! Every handler takes the request's [`Caller`] and checks its scope first: the operation, and
//! the key of the path (through `find`) before the key is looked up.

use super::{auth::Caller, error::ApiError, AppState};
use crate::keystore::KeyRecord;
use crate::tokens::Operation;
use crate::{enclave_client::CallError, keystore::StoreError};
use alloy_primitives::Address;
use alloy_primitives::B256;
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, Path, State},
    http::StatusCode,
    Json,
};
use nitro_wallet_eth::{MessageSignature, PersonalMessage};
use nitro_wallet_protocol::ErrorCode;
use nitro_wallet_protocol::{
    message::{GenerateKey, ImportKey, SignTransaction},
    Request, Response, SecretString, SetPolicy, SignAuthorization, SignHash, SignMessage,
    SignTypedData,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::value::RawValue;

/// Longest label accepted.
const MAX_LABEL: usize = 128;

/// A key as the API shows it.
#[derive(Debug, Serialize)]
pub struct KeyView {
    /// EIP-55 checksummed.
    address: String,
    label: Option<String>,
    created_at: String,
    kms_key_id: String,
    policy: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key: Option<alloy_primitives::Bytes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    migrated_from: Option<crate::keystore::MigratedFrom>,
}

impl From<&KeyRecord> for KeyView {
    fn from(r: &KeyRecord) -> Self {
        Self {
            address: r.address.to_checksum(None),
            label: r.label.clone(),
            created_at: r.created_at.clone(),
            kms_key_id: r.kms_key_id.clone(),
            policy: r.policy.clone(),
            public_key: r.public_key.clone(),
            migrated_from: r.migrated_from.clone(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKey {
    label: Option<String>,
    policy: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Import {
    private_key: SecretString,
    label: Option<String>,
    policy: Option<Box<RawValue>>,
}

#[utoipa::path(
    post,
    path = "/v1/keys",
    tag = "keys",
    operation_id = "create_key",
    summary = "Generate a key in the enclave",
    request_body(content = Option<super::openapi::CreateKeySchema>, description = "Optional: an empty body is `{}`"),
    responses(
        (status = 201, description = "The new key", body = super::openapi::KeySchema),
        super::openapi::NewKeyErrors,
    ),
)]
/// `POST /v1/keys`: a key generated inside the enclave.
pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    caller.authorize(Operation::KeysCreate, None)?;
    let body = body_bytes(body)?;
    let req: CreateKey = if body.iter().all(u8::is_ascii_whitespace) {
        CreateKey::default()
    } else {
        parse_object(&body)?
    };
    check_label(req.label.as_deref())?;
    let response = state
        .decide(Request::GenerateKey(GenerateKey {
            kms_key_id: state.kms_key_id.to_string(),
            policy: policy_text(req.policy.as_deref()),
        }))
        .await?;
    store_wrapped(&state, response, req.label).await
}

#[utoipa::path(
    post,
    path = "/v1/keys/import",
    tag = "keys",
    operation_id = "import_key",
    summary = "Import a private key",
    request_body = super::openapi::ImportKeySchema,
    responses(
        (status = 201, description = "The imported key", body = super::openapi::KeySchema),
        super::openapi::NewKeyErrors,
    ),
)]
/// `POST /v1/keys/import`: wrap a caller's key.
pub(crate) async fn import(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    caller.authorize(Operation::KeysCreate, None)?;
    // serde's messages may quote a rejected value: never let that be a private key.
    let req: Import = parse_object(&body_bytes(body)?).map_err(|mut e| {
        e.message = "expected {\"private_key\": \"<64 hex characters>\", \"label\"?: \"…\", \
                     \"policy\"?: {…}}"
            .into();
        e
    })?;
    check_label(req.label.as_deref())?;
    let response = state
        .decide(Request::ImportKey(ImportKey {
            kms_key_id: state.kms_key_id.to_string(),
            private_key: req.private_key,
            policy: policy_text(req.policy.as_deref()),
        }))
        .await?;
    store_wrapped(&state, response, req.label).await
}

async fn store_wrapped(
    state: &AppState,
    response: Response,
    label: Option<String>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    let Response::Key(wrapped) = response else {
        return Err(unexpected());
    };
    let record = state.store.create(KeyRecord::new(wrapped, label)).await?;
    tracing::info!(address = %record.address, "key stored");
    Ok((StatusCode::CREATED, Json(KeyView::from(&*record))))
}

#[utoipa::path(
    get,
    path = "/v1/keys",
    tag = "keys",
    operation_id = "list_keys",
    summary = "List the keys the token may use",
    responses(
        (status = 200, description = "The keys the token may use", body = super::openapi::KeyList),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 403, response = super::openapi::Forbidden),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    ),
)]
/// `GET /v1/keys`: the keys the token may use.
pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.authorize(Operation::KeysRead, None)?;
    let records = state.store.list().await?;
    let keys: Vec<KeyView> = records
        .iter()
        .filter(|r| caller.may_use(&r.address))
        .map(|r| KeyView::from(&**r))
        .collect();
    Ok(Json(serde_json::json!({ "keys": keys })))
}

#[utoipa::path(
    get,
    path = "/v1/keys/{address}",
    tag = "keys",
    operation_id = "show_key",
    summary = "Show a key",
    params(super::openapi::KeyAddress),
    responses(
        (status = 200, description = "The key", body = super::openapi::KeySchema),
        (status = 400, response = super::openapi::BadRequest),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, response = super::openapi::NotFound),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    ),
)]
/// `GET /v1/keys/{address}`.
pub(crate) async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
) -> Result<Json<KeyView>, ApiError> {
    let record = find(&state, &caller, Operation::KeysRead, &address).await?;
    Ok(Json(KeyView::from(&*record)))
}

#[utoipa::path(
    post,
    path = "/v1/keys/{address}/sign/transaction",
    tag = "signing",
    operation_id = "sign_transaction",
    summary = "Sign a transaction",
    params(super::openapi::KeyAddress),
    request_body(content = super::openapi::TransactionSchema, description = "A JSON-RPC transaction object"),
    responses(
        (status = 200, description = "The signed transaction", body = super::openapi::SignedTransaction),
        super::openapi::KeyRouteErrors,
    ),
)]
/// `POST /v1/keys/{address}/sign/transaction`.
pub(crate) async fn sign_transaction(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<nitro_wallet_eth::SignedTransaction>, ApiError> {
    let record = find(&state, &caller, Operation::SignTransaction, &address).await?;
    let body = body_bytes(body)?;
    let transaction: Box<RawValue> = parse_json(&body)?;
    sign_with(&state, &record, transaction).await.map(Json)
}

/// Has the enclave sign `transaction` (JSON-RPC transaction object) with `record`'s key.
///
/// For a key whose policy has a rolling window, signatures of that key are serialized here, the
/// record's sealed window state goes along, and the new state the enclave returns is stored
/// before the signature is released. A stale record (another host moved the window on) is
/// read again from the store and the request retried once.
pub(super) async fn sign_with(
    state: &AppState,
    record: &KeyRecord,
    transaction: Box<RawValue>,
) -> Result<nitro_wallet_eth::SignedTransaction, ApiError> {
    if !record.has_window() {
        let request = Request::SignTransaction(SignTransaction {
            key: record.wrapped(),
            transaction,
            window: None,
        });
        return match state.decide(request).await? {
            Response::SignedTransaction(signed) => Ok(signed),
            _ => Err(unexpected()),
        };
    }
    let lock = state.window_locks.lock_for(record.address);
    let _serialized = lock.lock().await;
    let mut current = state
        .store
        .get(&record.address)
        .await?
        .ok_or_else(|| ApiError::key_not_found(record.address))?;
    for attempt in 0..2 {
        let request = Request::SignTransaction(SignTransaction {
            key: current.wrapped(),
            transaction: transaction.clone(),
            window: current.window.clone(),
        });
        let stale = match state.decide(request).await {
            Ok(Response::WindowedTransaction(w)) => {
                let mut next = (*current).clone();
                next.window = Some(w.window);
                match state.store.replace(&current, next).await {
                    Ok(_) => return Ok(w.signed),
                    Err(StoreError::Changed(_)) => true,
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(_) => return Err(unexpected()),
            Err(CallError::Enclave(e)) if e.code == ErrorCode::WindowStateRejected => {
                if attempt == 1 {
                    return Err(CallError::Enclave(e).into());
                }
                true
            }
            Err(e) => return Err(e.into()),
        };
        if stale && attempt == 0 {
            current = state
                .store
                .reload(&record.address)
                .await?
                .ok_or_else(|| ApiError::key_not_found(record.address))?;
        }
    }
    Err(StoreError::Changed(record.address).into())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageBody {
    message: serde_json::Value,
}

#[utoipa::path(
    post,
    path = "/v1/keys/{address}/sign/message",
    tag = "signing",
    operation_id = "sign_message",
    summary = "Sign an EIP-191 personal message",
    params(super::openapi::KeyAddress),
    request_body(content = super::openapi::MessageRequest, description = "An EIP-191 personal message"),
    responses(
        (status = 200, description = "The signature", body = super::openapi::MessageSignature),
        super::openapi::KeyRouteErrors,
    ),
)]
/// `POST /v1/keys/{address}/sign/message`: EIP-191 personal message. `message` is a string
/// (`0x`-hex means bytes, as in `personal_sign`), `{"text": "…"}` or `{"raw": "0x…"}`.
pub(crate) async fn sign_message(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MessageSignature>, ApiError> {
    let record = find(&state, &caller, Operation::SignMessage, &address).await?;
    let req: MessageBody = parse_object(&body_bytes(body)?)?;
    let message = PersonalMessage::from_value(&req.message).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            e.to_string(),
        )
        .with_field("message")
    })?;
    sign_message_with(&state, &record, message).await.map(Json)
}

#[utoipa::path(
    post,
    path = "/v1/keys/{address}/sign/typed-data",
    tag = "signing",
    operation_id = "sign_typed_data",
    summary = "Sign EIP-712 typed data",
    params(super::openapi::KeyAddress),
    request_body(content = super::openapi::TypedData, description = "An `eth_signTypedData_v4` document"),
    responses(
        (status = 200, description = "The signature", body = super::openapi::MessageSignature),
        super::openapi::KeyRouteErrors,
    ),
)]
/// `POST /v1/keys/{address}/sign/typed-data`: the body is an `eth_signTypedData_v4` document.
pub(crate) async fn sign_typed_data(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MessageSignature>, ApiError> {
    let record = find(&state, &caller, Operation::SignMessage, &address).await?;
    let typed_data: Box<RawValue> = parse_json(&body_bytes(body)?)?;
    sign_typed_data_with(&state, &record, typed_data)
        .await
        .map(Json)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HashBody {
    hash: String,
}

#[utoipa::path(
    post,
    path = "/v1/keys/{address}/sign/hash",
    tag = "signing",
    operation_id = "sign_hash",
    summary = "Sign a raw 32-byte digest",
    params(super::openapi::KeyAddress),
    request_body(content = super::openapi::HashRequest, description = "A 32-byte digest; only for keys whose policy allows `raw_hash`"),
    responses(
        (status = 200, description = "The signature", body = super::openapi::MessageSignature),
        super::openapi::KeyRouteErrors,
    ),
)]
/// `POST /v1/keys/{address}/sign/hash`: a raw 32-byte digest, for keys whose policy allows
/// `raw_hash` (the enclave decides).
pub(crate) async fn sign_hash(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<MessageSignature>, ApiError> {
    let record = find(&state, &caller, Operation::SignHash, &address).await?;
    let req: HashBody = parse_object(&body_bytes(body)?)?;
    let hash = req
        .hash
        .strip_prefix("0x")
        .and_then(|h| h.parse::<B256>().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "hash must be 0x followed by 64 hex digits",
            )
            .with_field("hash")
        })?;
    sign_hash_with(&state, &record, hash).await.map(Json)
}

#[utoipa::path(
    post,
    path = "/v1/keys/{address}/sign/authorization",
    tag = "signing",
    operation_id = "sign_authorization",
    summary = "Sign an EIP-7702 authorization",
    params(super::openapi::KeyAddress),
    request_body(content = super::openapi::AuthorizationRequest, description = "An EIP-7702 authorization"),
    responses(
        (status = 200, description = "The signed authorization", body = super::openapi::SignedAuthorization),
        super::openapi::KeyRouteErrors,
    ),
)]
/// `POST /v1/keys/{address}/sign/authorization`: an EIP-7702 authorization
/// `{chainId, address, nonce}`, answered in the shape of an `authorizationList` entry.
pub(crate) async fn sign_authorization(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<nitro_wallet_eth::SignedAuthorization>, ApiError> {
    let record = find(&state, &caller, Operation::SignAuthorization, &address).await?;
    let authorization: Box<RawValue> = parse_json(&body_bytes(body)?)?;
    match state
        .decide(Request::SignAuthorization(SignAuthorization {
            key: record.wrapped(),
            authorization,
        }))
        .await?
    {
        Response::SignedAuthorization(signed) => Ok(Json(signed)),
        _ => Err(unexpected()),
    }
}

/// Has the enclave sign an EIP-191 personal message with `record`'s key.
pub(super) async fn sign_message_with(
    state: &AppState,
    record: &KeyRecord,
    message: PersonalMessage,
) -> Result<MessageSignature, ApiError> {
    let request = Request::SignMessage(SignMessage {
        key: record.wrapped(),
        message,
    });
    message_signature(state.decide(request).await?)
}

/// Has the enclave sign an EIP-712 document (JSON) with `record`'s key.
pub(super) async fn sign_typed_data_with(
    state: &AppState,
    record: &KeyRecord,
    typed_data: Box<RawValue>,
) -> Result<MessageSignature, ApiError> {
    let request = Request::SignTypedData(SignTypedData {
        key: record.wrapped(),
        typed_data,
    });
    message_signature(state.decide(request).await?)
}

/// Has the enclave sign a raw digest with `record`'s key (its policy must allow `raw_hash`).
pub(super) async fn sign_hash_with(
    state: &AppState,
    record: &KeyRecord,
    hash: B256,
) -> Result<MessageSignature, ApiError> {
    let request = Request::SignHash(SignHash {
        key: record.wrapped(),
        hash,
    });
    message_signature(state.decide(request).await?)
}

fn message_signature(response: Response) -> Result<MessageSignature, ApiError> {
    match response {
        Response::MessageSignature(signature) => Ok(signature),
        _ => Err(unexpected()),
    }
}

#[utoipa::path(
    put,
    path = "/v1/keys/{address}/policy",
    tag = "keys",
    operation_id = "set_policy",
    summary = "Replace a key's policy",
    params(super::openapi::KeyAddress),
    request_body(content = super::openapi::PolicyUpdate, description = "The new policy; `null` or `{}` for none"),
    responses(
        (status = 200, description = "The key under its new policy", body = super::openapi::KeySchema),
        super::openapi::KeyRouteErrors,
    ),
)]
/// `PUT /v1/keys/{address}/policy`: the body is the new policy (`null` or `{}` for none).
/// The enclave unwraps the key under its current policy and wraps it again under the new one;
/// the record is replaced only if nobody changed it meanwhile.
pub(crate) async fn set_policy(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<KeyView>, ApiError> {
    let record = find(&state, &caller, Operation::Admin, &address).await?;
    let policy: Option<Box<RawValue>> = parse_json(&body_bytes(body)?)?;
    let response = state
        .decide(Request::SetPolicy(SetPolicy {
            key: record.wrapped(),
            policy: policy_text(policy.as_deref()),
        }))
        .await?;
    let Response::Key(wrapped) = response else {
        return Err(unexpected());
    };
    let mut new = KeyRecord::new(wrapped, record.label.clone());
    new.created_at.clone_from(&record.created_at);
    new.migrated_from.clone_from(&record.migrated_from);
    let stored = state.store.replace(&record, new).await?;
    tracing::info!(address = %stored.address, "key policy replaced");
    Ok(Json(KeyView::from(&*stored)))
}

/// A policy from a request body, as text for the enclave (`null` means none).
pub(super) fn policy_text(policy: Option<&RawValue>) -> Option<String> {
    policy
        .map(RawValue::get)
        .filter(|p| *p != "null")
        .map(str::to_owned)
}

/// The key of the path for `op`: 400 for a malformed address, 403 when the token may not
/// (before any lookup: a refusal says nothing of whether the key exists), 404 when there is no
/// such key.
pub(super) async fn find(
    state: &AppState,
    caller: &Caller,
    op: Operation,
    address: &str,
) -> Result<std::sync::Arc<KeyRecord>, ApiError> {
    let parsed = parse_address(address)?;
    caller.authorize(op, Some(&parsed))?;
    state
        .store
        .get(&parsed)
        .await?
        .ok_or_else(|| ApiError::key_not_found(parsed.to_checksum(None)))
}

/// An address in the path: 0x + 40 hex; mixed case must be a valid EIP-55 checksum.
pub(super) fn parse_address(s: &str) -> Result<Address, ApiError> {
    let bad = || {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_address",
            "the address must be 0x followed by 40 hex digits (EIP-55 checksum if mixed case)",
        )
        .with_field("address")
    };
    let hex = s.strip_prefix("0x").ok_or_else(bad)?;
    let mixed =
        hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    if mixed {
        Address::parse_checksummed(s, None).map_err(|_| bad())
    } else {
        s.parse().map_err(|_| bad())
    }
}

pub(super) fn check_label(label: Option<&str>) -> Result<(), ApiError> {
    match label {
        Some(l) if l.chars().count() > MAX_LABEL || l.chars().any(char::is_control) => {
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                format!("label must be at most {MAX_LABEL} characters without control characters"),
            )
            .with_field("label"))
        }
        _ => Ok(()),
    }
}

pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                "body_too_large",
                "the request body exceeds the limit",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "the request body could not be read",
            )
        }
    })
}

/// Parses a body that must be a JSON object into the request struct `T`: 400 when it is not
/// JSON, 422 when it is JSON but not an object. (serde alone would also read a struct from an
/// array of its fields in order, so `[null, null]` would pass as `{}`.)
pub(crate) fn parse_object<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        parse_json::<serde::de::IgnoredAny>(body)?;
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "the body must be a JSON object",
        ));
    }
    parse_json(body)
}

/// Parses a JSON body: syntax errors are 400, shape errors 422 (naming the field when serde
/// does).
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Data => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                e.to_string(),
            ),
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("the body is not valid JSON: {e}"),
            ),
        }
    })
}

pub(super) fn unexpected() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "unexpected answer from the enclave",
    )
}
