//! API errors: `{"error": {"code", "message", "field"?}}` with a proper status.
//!
//! Codes are stable snake_case strings; messages explain without internal detail, never a
//! stack trace, a key or a credential.

use crate::{enclave_client::CallError, keystore::StoreError};
use axum::{
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use nitro_wallet_protocol::ErrorCode;

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: String,
    /// Explanation.
    pub message: String,
    /// Offending request field.
    pub field: Option<String>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    /// 401.
    pub fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404 for an unknown key.
    pub fn key_not_found(address: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "key_not_found",
            format!("no key with address {address}"),
        )
    }

    /// 503 with a retry hint.
    pub fn unavailable(code: &str, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(1),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message)
        }
    }

    /// Names the offending field.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(field) = self.field {
            error["field"] = field.into();
        }
        let mut response =
            (self.status, Json(serde_json::json!({ "error": error }))).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Unavailable(why) => {
                tracing::warn!(error = %why, "enclave unavailable");
                ApiError::unavailable(
                    "enclave_unavailable",
                    "no enclave is available; retry shortly",
                )
            }
            CallError::Timeout(d) => ApiError::unavailable(
                "enclave_timeout",
                format!("the enclave did not answer within {}s", d.as_secs()),
            ),
            CallError::Enclave(body) => {
                let status = match body.code {
                    ErrorCode::InvalidTransaction | ErrorCode::InvalidRequest => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    ErrorCode::KeyMismatch
                    | ErrorCode::KmsInvalidCiphertext
                    | ErrorCode::WindowStateRejected => StatusCode::CONFLICT,
                    ErrorCode::Overloaded => StatusCode::TOO_MANY_REQUESTS,
                    ErrorCode::PolicyDenied => StatusCode::FORBIDDEN,
                    ErrorCode::KmsDenied
                    | ErrorCode::KmsAttestation
                    | ErrorCode::KmsKeyNotFound
                    | ErrorCode::KmsUnavailable
                    | ErrorCode::KmsError
                    | ErrorCode::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                if status.is_server_error() {
                    tracing::error!(code = %body.code, message = %body.message, "enclave error");
                }
                let retry_after = matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                )
                .then_some(1);
                ApiError {
                    status,
                    code: body.code.as_str().to_owned(),
                    message: body.message,
                    field: body.field,
                    retry_after,
                }
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Exists(a) => ApiError::new(
                StatusCode::CONFLICT,
                "key_exists",
                format!("a key with address {a} exists already"),
            ),
            StoreError::Changed(a) => ApiError::new(
                StatusCode::CONFLICT,
                "key_changed",
                format!("the record of {a} changed meanwhile; read it again and retry"),
            ),
            other => {
                tracing::error!(error = %other, "key store failure");
                ApiError::unavailable("key_store_unavailable", "the key store is unavailable")
            }
        }
    }
}
