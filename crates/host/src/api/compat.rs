//! The reference sample's surface: `POST /` signs `{"transaction_payload", "secret_id"}` as the
//! sample's clients send it, and `POST /v1/keys/migrate` turns a secret written by the sample's
//! `set_key` into a key of ours (see [`crate::legacy`]).
//!
//! Unlike the sample, both need a bearer token: a signing service open to anyone who can reach
//! it is the sample's first defect, not a compatibility requirement.

use super::{
    auth::Caller,
    error::ApiError,
    keys::{body_bytes, check_label, parse_object, sign_with, unexpected, KeyView},
    AppState,
};
use crate::{
    keystore::{KeyRecord, StoreError},
    legacy::{payload_to_request, LegacyError},
    tokens::Operation,
};
use axum::{
    body::Bytes,
    extract::{rejection::BytesRejection, State},
    http::StatusCode,
    Json,
};
use nitro_wallet_protocol::{MigrateKey, Request, Response};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Longest secret id accepted (Secrets Manager ARNs are at most 2048 characters).
const MAX_SECRET_ID: usize = 2048;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SampleSign {
    transaction_payload: Box<RawValue>,
    secret_id: String,
}

#[utoipa::path(
    post,
    path = "/",
    tag = "compatibility",
    operation_id = "sample_sign",
    summary = "Sign as the AWS sample's POST /",
    request_body = super::openapi::SampleSignRequest,
    responses(
        (status = 200, description = "The signed transaction, as the AWS sample answers it", body = super::openapi::SampleSignResponse),
        (status = 400, response = super::openapi::BadRequest),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, description = "`key_not_found`: no key was migrated from this secret yet", body = super::openapi::ErrorBody),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 422, response = super::openapi::Unprocessable),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 503, response = super::openapi::Unavailable),
    ),
)]
/// `POST /`: the sample's signing request; answers
/// `{"transaction_signed": "0x…", "transaction_hash": "0x…"}`.
pub(crate) async fn sign(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.authorize(Operation::SignTransaction, None)?;
    let req: SampleSign = parse_object(&body_bytes(body)?)?;
    let secret_id = check_secret_id(&req.secret_id)?;
    let address = state
        .secret_index
        .resolve(&*state.store, secret_id)
        .await?
        .ok_or_else(|| not_migrated(secret_id))?;
    caller.authorize(Operation::SignTransaction, Some(&address))?;
    let record = state.store.get(&address).await?.ok_or_else(|| {
        ApiError::key_not_found(address.to_checksum(None)).with_field("secret_id")
    })?;
    let transaction = payload_to_request(&req.transaction_payload).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_transaction",
            e.message,
        )
        .with_field(e.field)
    })?;
    let signed = sign_with(&state, &record, transaction)
        .await
        .map_err(|mut e| {
            if let Some(field) = e.field.take() {
                e.field = Some(format!("transaction_payload.{field}"));
            }
            e
        })?;
    Ok(Json(serde_json::json!({
        "transaction_signed": signed.raw_transaction,
        "transaction_hash": signed.transaction_hash,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Migrate {
    secret_id: String,
    legacy_kms_key_id: Option<String>,
    label: Option<String>,
    policy: Option<Box<RawValue>>,
}

#[utoipa::path(
    post,
    path = "/v1/keys/migrate",
    tag = "compatibility",
    operation_id = "migrate_key",
    summary = "Migrate a key of the AWS sample",
    request_body = super::openapi::MigrateSchema,
    responses(
        (status = 200, description = "The key this secret was migrated to before", body = super::openapi::KeySchema),
        (status = 201, description = "The migrated key", body = super::openapi::KeySchema),
        (status = 400, response = super::openapi::BadRequest),
        (status = 401, response = super::openapi::Unauthorized),
        (status = 403, response = super::openapi::Forbidden),
        (status = 404, description = "`secret_not_found`: no such secret", body = super::openapi::ErrorBody),
        (status = 409, response = super::openapi::Conflict),
        (status = 413, response = super::openapi::PayloadTooLarge),
        (status = 422, description = "`invalid_request`: a malformed field; `not_a_legacy_secret`: the secret is not the AWS sample's", body = super::openapi::ErrorBody),
        (status = 429, response = super::openapi::TooManyRequests),
        (status = 501, description = "`migration_unavailable`: migration needs the Secrets Manager key store", body = super::openapi::ErrorBody),
        (status = 503, response = super::openapi::Unavailable),
    ),
)]
/// `POST /v1/keys/migrate`: reads the sample's secret, has the enclave unwrap it and wrap it
/// again bound to the key's address, and stores the record. Idempotent: migrating the same
/// secret again answers 200 with the key it became.
pub(crate) async fn migrate(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    caller.authorize(Operation::KeysCreate, None)?;
    let req: Migrate = parse_object(&body_bytes(body)?)?;
    let secret_id = check_secret_id(&req.secret_id)?;
    check_label(req.label.as_deref())?;
    let legacy = state.legacy.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "migration_unavailable",
            "migration reads the reference sample's secret from AWS Secrets Manager: configure \
             key_store.kind = \"secrets_manager\"",
        )
    })?;
    let secret = legacy.read(secret_id).await.map_err(legacy_error)?;
    let response = state
        .decide(Request::MigrateKey(MigrateKey {
            legacy_ciphertext: secret.ciphertext,
            legacy_kms_key_id: req.legacy_kms_key_id,
            kms_key_id: state.kms_key_id.to_string(),
            policy: super::keys::policy_text(req.policy.as_deref()),
        }))
        .await?;
    let Response::Key(wrapped) = response else {
        return Err(unexpected());
    };
    let mut record = KeyRecord::new(wrapped, req.label);
    record.migrated_from = Some(secret.source.clone());
    let (status, record) = match state.store.create(record).await {
        Ok(record) => (StatusCode::CREATED, record),
        Err(StoreError::Exists(address)) => match state.store.get(&address).await? {
            Some(existing) if existing.migrated_from.as_ref() == Some(&secret.source) => {
                (StatusCode::OK, existing)
            }
            _ => return Err(StoreError::Exists(address).into()),
        },
        Err(e) => return Err(e.into()),
    };
    state.secret_index.remember(&record);
    tracing::info!(
        address = %record.address,
        secret = %secret.source.secret_name,
        "key migrated from the reference sample's secret"
    );
    Ok((status, Json(KeyView::from(&*record))))
}

fn check_secret_id(id: &str) -> Result<&str, ApiError> {
    let id = id.trim();
    if id.is_empty() || id.len() > MAX_SECRET_ID || id.chars().any(char::is_control) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            format!("secret_id must be a secret name or ARN of 1 to {MAX_SECRET_ID} characters"),
        )
        .with_field("secret_id"));
    }
    Ok(id)
}

fn not_migrated(secret_id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "key_not_found",
        format!(
            "no key was migrated from secret `{secret_id}`; run `nitro-wallet keys migrate \
             --secret-id {secret_id}` once"
        ),
    )
    .with_field("secret_id")
}

fn legacy_error(e: LegacyError) -> ApiError {
    match e {
        LegacyError::NotFound(_) => {
            ApiError::new(StatusCode::NOT_FOUND, "secret_not_found", e.to_string())
                .with_field("secret_id")
        }
        LegacyError::NotLegacy(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_legacy_secret",
            e.to_string(),
        )
        .with_field("secret_id"),
        LegacyError::Store(StoreError::Unavailable(message)) => {
            tracing::warn!(error = %message, "reading the reference sample's secret failed");
            ApiError::unavailable("secrets_manager_unavailable", message)
        }
        LegacyError::Store(other) => other.into(),
    }
}
