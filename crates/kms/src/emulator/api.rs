//! The emulator's HTTP face: the `awsJson1_1` protocol as the AWS SDK speaks it.
//!
//! Requests are `POST /` with `X-Amz-Target: TrentService.<Operation>` and a JSON body whose
//! blobs are base64 strings. Errors are `{"__type": "<Code>", "message": "…"}` with an HTTP
//! 4xx and the same code in `x-amzn-ErrorType`; the SDK reads the code from either (header
//! first) and turns it into the operation's typed error.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::blob;
use super::policy::{Refusal, MAX_ATTESTATION_DOCUMENT};
use super::store::{Key, Keys};
use super::{Shared, ACCOUNT_ID};
use crate::{cms, EncryptionContext};

/// Largest request body accepted (KMS's own requests are far smaller).
const BODY_LIMIT: usize = 64 * 1024;
/// KMS's limit on `Encrypt` plaintext.
const MAX_PLAINTEXT: usize = 4096;
/// KMS's limit on `CiphertextBlob`.
const MAX_CIPHERTEXT: usize = 6144;
/// KMS's limit on `GenerateRandom`.
const MAX_RANDOM: i64 = 1024;
/// Bound on the encryption context's total size (keys plus values).
const MAX_CONTEXT_BYTES: usize = 8192;
/// The protocol's content type.
const CONTENT_TYPE: &str = "application/x-amz-json-1.1";
/// The only encryption algorithm of symmetric keys.
const SYMMETRIC_DEFAULT: &str = "SYMMETRIC_DEFAULT";
/// The only `Recipient.KeyEncryptionAlgorithm` KMS knows.
const RSAES_OAEP_SHA_256: &str = "RSAES_OAEP_SHA_256";

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", post(handle))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

/// A KMS-shaped error response.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> Self {
        ApiError::new("ValidationException", message)
    }

    fn serialization(message: impl Into<String>) -> Self {
        ApiError::new("SerializationException", message)
    }

    fn internal(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "KMSInternalException",
            message: message.into(),
        }
    }

    fn invalid_ciphertext() -> Self {
        ApiError::new(
            "InvalidCiphertextException",
            "The ciphertext is invalid or does not match the key and encryption context",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "__type": self.code, "message": self.message }).to_string();
        (
            self.status,
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
                (
                    header::HeaderName::from_static("x-amzn-errortype"),
                    HeaderValue::from_static(self.code),
                ),
            ],
            body,
        )
            .into_response()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("TrentService."))
        .unwrap_or("")
        .to_owned();
    let result = match body {
        Ok(body) => dispatch(&shared, &headers, &operation, &body),
        Err(rejection) => Err(ApiError {
            status: rejection.status(),
            code: "ValidationException",
            message: format!("request body rejected: {}", rejection.body_text()),
        }),
    };
    match result {
        Ok(value) => {
            tracing::debug!(operation, "KMS emulator request served");
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], value.to_string()).into_response()
        }
        Err(err) => {
            tracing::debug!(operation, code = err.code, "KMS emulator request refused");
            err.into_response()
        }
    }
}

fn dispatch(
    shared: &Shared,
    headers: &HeaderMap,
    operation: &str,
    body: &[u8],
) -> Result<Value, ApiError> {
    let access_key_id = check_authorization(headers)?;
    let mut seen = shared
        .access_key_ids
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !seen.contains(&access_key_id) {
        seen.push(access_key_id);
    }
    drop(seen);
    match operation {
        "Encrypt" => encrypt(shared, parse(body)?),
        "Decrypt" => decrypt(shared, parse(body)?),
        "GenerateRandom" => generate_random(shared, parse(body)?),
        "DescribeKey" => describe_key(shared, parse(body)?),
        "" => Err(ApiError::new(
            "UnknownOperationException",
            "missing X-Amz-Target",
        )),
        _ => Err(ApiError::new(
            "UnknownOperationException",
            format!("the KMS emulator does not implement {operation}"),
        )),
    }
}

/// Requires a SigV4 `Authorization` header and returns its access key id. The signature itself
/// is NOT verified.
fn check_authorization(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let access_key_id = value
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .and_then(|v| v.split_once("Credential="))
        .map(|(_, scope)| scope.split('/').next().unwrap_or_default());
    if let Some(id) = access_key_id {
        Ok(id.to_owned())
    } else {
        Err(ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "MissingAuthenticationTokenException",
            message: "Request is missing Authentication Token".to_owned(),
        })
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| ApiError::serialization(format!("malformed JSON: {err}")))?;
    if !value.is_object() {
        return Err(ApiError::serialization(
            "the request body must be a JSON object",
        ));
    }
    serde_json::from_value(value).map_err(|err| ApiError::validation(err.to_string()))
}

fn decode_blob(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    BASE64
        .decode(value)
        .map_err(|_| ApiError::serialization(format!("{field} is not valid base64")))
}

fn check_context(context: &EncryptionContext) -> Result<(), ApiError> {
    let total: usize = context.iter().map(|(k, v)| k.len() + v.len()).sum();
    if total > MAX_CONTEXT_BYTES {
        return Err(ApiError::validation("the encryption context is too large"));
    }
    Ok(())
}

fn check_algorithm(algorithm: Option<&str>) -> Result<(), ApiError> {
    match algorithm {
        None | Some(SYMMETRIC_DEFAULT) => Ok(()),
        Some(other) => Err(ApiError::new(
            "InvalidKeyUsageException",
            format!("{other} is not supported by symmetric keys"),
        )),
    }
}

/// Finds the key a `KeyId` (id, key ARN, alias or alias ARN) names.
fn resolve<'k>(shared: &Shared, keys: &'k Keys, key_id: &str) -> Result<&'k Key, ApiError> {
    if key_id.is_empty() || key_id.len() > 2048 {
        return Err(ApiError::validation(
            "KeyId must have length between 1 and 2048",
        ));
    }
    let not_found = || {
        ApiError::new(
            "NotFoundException",
            format!("Key '{key_id}' does not exist"),
        )
    };
    let mut name = key_id;
    if let Some(rest) = key_id.strip_prefix("arn:aws:kms:") {
        let (region, rest) = rest.split_once(':').ok_or_else(not_found)?;
        let (account, resource) = rest.split_once(':').ok_or_else(not_found)?;
        if region != shared.region || account != ACCOUNT_ID {
            return Err(not_found());
        }
        name = match resource.strip_prefix("key/") {
            Some(id) => id,
            None if resource.starts_with("alias/") => resource,
            None => return Err(not_found()),
        };
    }
    let id = if name.starts_with("alias/") {
        keys.aliases
            .get(name)
            .map(String::as_str)
            .ok_or_else(not_found)?
    } else {
        name
    };
    keys.keys.get(id).ok_or_else(not_found)
}

fn read_keys(shared: &Shared) -> std::sync::RwLockReadGuard<'_, Keys> {
    shared
        .keys
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptRequest {
    key_id: String,
    plaintext: String,
    #[serde(default)]
    encryption_context: Option<EncryptionContext>,
    #[serde(default)]
    encryption_algorithm: Option<String>,
}

fn encrypt(shared: &Shared, request: EncryptRequest) -> Result<Value, ApiError> {
    check_algorithm(request.encryption_algorithm.as_deref())?;
    let context = request.encryption_context.unwrap_or_default();
    check_context(&context)?;
    let plaintext = zeroize::Zeroizing::new(decode_blob("Plaintext", &request.plaintext)?);
    if plaintext.is_empty() || plaintext.len() > MAX_PLAINTEXT {
        return Err(ApiError::validation(format!(
            "Plaintext must have length between 1 and {MAX_PLAINTEXT} bytes"
        )));
    }
    let keys = read_keys(shared);
    let key = resolve(shared, &keys, &request.key_id)?;
    let ciphertext = blob::seal(&key.id, &key.master, &plaintext, &context)
        .ok_or_else(|| ApiError::internal("encryption failed"))?;
    Ok(json!({
        "CiphertextBlob": BASE64.encode(ciphertext),
        "KeyId": shared.key_arn(&key.id),
        "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
    }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptRequest {
    ciphertext_blob: String,
    #[serde(default)]
    encryption_context: Option<EncryptionContext>,
    #[serde(default)]
    key_id: Option<String>,
    #[serde(default)]
    encryption_algorithm: Option<String>,
    #[serde(default)]
    recipient: Option<RecipientRequest>,
}

/// `Recipient` (KMS `RecipientInfo`): where an attested response is encrypted to.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RecipientRequest {
    #[serde(default)]
    key_encryption_algorithm: Option<String>,
    #[serde(default)]
    attestation_document: Option<String>,
}

/// Validates a request's `Recipient` and decodes its attestation document.
fn recipient_document(recipient: Option<RecipientRequest>) -> Result<Option<Vec<u8>>, ApiError> {
    let Some(recipient) = recipient else {
        return Ok(None);
    };
    match recipient.key_encryption_algorithm.as_deref() {
        None | Some(RSAES_OAEP_SHA_256) => {}
        Some(other) => {
            return Err(ApiError::validation(format!(
                "Recipient.KeyEncryptionAlgorithm {other:?} is not supported \
                 (only {RSAES_OAEP_SHA_256})"
            )))
        }
    }
    let encoded = recipient
        .attestation_document
        .ok_or_else(|| ApiError::validation("Recipient.AttestationDocument is required"))?;
    let too_long = || {
        ApiError::validation(format!(
            "Recipient.AttestationDocument must have length between 1 and {MAX_ATTESTATION_DOCUMENT} bytes"
        ))
    };
    if encoded.len() > MAX_ATTESTATION_DOCUMENT.div_ceil(3) * 4 {
        return Err(too_long());
    }
    let document = decode_blob("Recipient.AttestationDocument", &encoded)?;
    if document.is_empty() || document.len() > MAX_ATTESTATION_DOCUMENT {
        return Err(too_long());
    }
    Ok(Some(document))
}

/// Applies the attestation policy to a request's attestation document: `Some(public key)` to
/// encrypt the response to, `None` for a plain request the policy allows.
fn authorize(shared: &Shared, document: Option<Vec<u8>>) -> Result<Option<Vec<u8>>, ApiError> {
    let policy = shared.policy();
    let Some(document) = document else {
        if policy.requires_attestation() {
            return Err(ApiError::new(
                "AccessDeniedException",
                "attestation policy: this key requires a Recipient with an attestation \
                 document (kms:RecipientAttestation condition)",
            ));
        }
        return Ok(None);
    };
    match policy.check(&document, std::time::SystemTime::now()) {
        Ok(public_key) => Ok(Some(public_key)),
        Err(Refusal::Denied(message)) => {
            tracing::info!(%message, "KMS emulator refused an attestation document");
            Err(ApiError::new("AccessDeniedException", message))
        }
        Err(Refusal::Invalid(message)) => Err(ApiError::validation(message)),
    }
}

/// `CiphertextForRecipient`: `plaintext` in a CMS envelope to the attested public key.
fn envelope_for(public_key: &[u8], plaintext: &[u8]) -> Result<String, ApiError> {
    match cms::encrypt_envelope(public_key, plaintext) {
        Ok(envelope) => Ok(BASE64.encode(envelope)),
        Err(cms::CmsError::InvalidKey(reason)) => Err(ApiError::validation(format!(
            "the attestation document's public_key is unusable: {reason}"
        ))),
        Err(_) => Err(ApiError::internal("envelope encryption failed")),
    }
}

fn decrypt(shared: &Shared, request: DecryptRequest) -> Result<Value, ApiError> {
    let document = recipient_document(request.recipient)?;
    check_algorithm(request.encryption_algorithm.as_deref())?;
    let context = request.encryption_context.unwrap_or_default();
    check_context(&context)?;
    let bytes = decode_blob("CiphertextBlob", &request.ciphertext_blob)?;
    if bytes.is_empty() || bytes.len() > MAX_CIPHERTEXT {
        return Err(ApiError::validation(format!(
            "CiphertextBlob must have length between 1 and {MAX_CIPHERTEXT} bytes"
        )));
    }
    let parsed = blob::parse(&bytes).ok_or_else(ApiError::invalid_ciphertext)?;
    let keys = read_keys(shared);
    if let Some(requested) = request.key_id.as_deref() {
        let key = resolve(shared, &keys, requested)?;
        if key.id != parsed.key_id {
            return Err(ApiError::new(
                "IncorrectKeyException",
                "The key ID in the request does not identify a KMS key that can perform this operation",
            ));
        }
    }
    let key = keys
        .keys
        .get(parsed.key_id)
        .ok_or_else(ApiError::invalid_ciphertext)?;
    // The policy is checked before the blob is opened, as KMS authorizes before decrypting.
    let recipient = authorize(shared, document)?;
    let plaintext =
        blob::open(&parsed, &key.master, &context).ok_or_else(ApiError::invalid_ciphertext)?;
    let key_arn = shared.key_arn(&key.id);
    match recipient {
        Some(public_key) => Ok(json!({
            "CiphertextForRecipient": envelope_for(&public_key, &plaintext)?,
            "KeyId": key_arn,
            "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
        })),
        None => Ok(json!({
            "Plaintext": BASE64.encode(&*plaintext),
            "KeyId": key_arn,
            "EncryptionAlgorithm": SYMMETRIC_DEFAULT,
        })),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateRandomRequest {
    #[serde(default)]
    number_of_bytes: Option<i64>,
    #[serde(default)]
    recipient: Option<RecipientRequest>,
}

fn generate_random(shared: &Shared, request: GenerateRandomRequest) -> Result<Value, ApiError> {
    let n = request
        .number_of_bytes
        .filter(|n| (1..=MAX_RANDOM).contains(n))
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            ApiError::validation(format!("NumberOfBytes must be between 1 and {MAX_RANDOM}"))
        })?;
    let recipient = authorize(shared, recipient_document(request.recipient)?)?;
    let mut bytes = zeroize::Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut bytes).map_err(|_| ApiError::internal("random source failed"))?;
    match recipient {
        Some(public_key) => Ok(json!({
            "CiphertextForRecipient": envelope_for(&public_key, &bytes)?,
        })),
        None => Ok(json!({ "Plaintext": BASE64.encode(&*bytes) })),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescribeKeyRequest {
    key_id: String,
}

fn describe_key(shared: &Shared, request: DescribeKeyRequest) -> Result<Value, ApiError> {
    let keys = read_keys(shared);
    let key = resolve(shared, &keys, &request.key_id)?;
    Ok(json!({
        "KeyMetadata": {
            "AWSAccountId": ACCOUNT_ID,
            "KeyId": key.id,
            "Arn": shared.key_arn(&key.id),
            "CreationDate": key.created,
            "Enabled": true,
            "Description": "nitro-wallet KMS emulator key (INSECURE, dev only)",
            "KeyUsage": "ENCRYPT_DECRYPT",
            "KeyState": "Enabled",
            "Origin": "AWS_KMS",
            "KeyManager": "CUSTOMER",
            "CustomerMasterKeySpec": SYMMETRIC_DEFAULT,
            "KeySpec": SYMMETRIC_DEFAULT,
            "EncryptionAlgorithms": [SYMMETRIC_DEFAULT],
            "MultiRegion": false,
        }
    }))
}
