//! Errors that cross the host ↔ enclave boundary.
//!
//! Each carries a stable snake_case [`ErrorCode`] that the host maps to an HTTP status, a
//! human message written by the enclave (never containing key material, ciphertext or
//! credentials) and, for request validation errors, the offending field.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Stable machine-readable error codes. New codes may be added; an unknown code from a newer
/// peer decodes as [`ErrorCode::Unknown`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame could not be decoded; the connection is closed after this reply.
    BadFrame,
    /// The peer speaks another protocol version.
    UnsupportedVersion,
    /// The request is well-formed but not valid (for example a malformed private key).
    InvalidRequest,
    /// The transaction object is missing a field or has a malformed one (`field` says which).
    InvalidTransaction,
    /// The key ciphertext opened, but to a key whose address is not the claimed one.
    KeyMismatch,
    /// The enclave has no AWS credentials yet, or KMS refused the call.
    KmsDenied,
    /// KMS could not open the ciphertext under this key and encryption context.
    KmsInvalidCiphertext,
    /// KMS does not know the key id.
    KmsKeyNotFound,
    /// KMS could not be reached or throttled us; retryable.
    KmsUnavailable,
    /// KMS refused the enclave's attestation (key policy PCRs, untrusted or expired
    /// document), or its answer was not an envelope for this enclave.
    KmsAttestation,
    /// Any other KMS failure.
    KmsError,
    /// The key's policy forbids this signature (`field` names the rule).
    PolicyDenied,
    /// The host presented an older (or no) rolling-window state than the enclave knows, or one
    /// whose seal does not verify.
    WindowStateRejected,
    /// The enclave is at its concurrency limit; retryable.
    Overloaded,
    /// The decision could not be recorded in the audit chain (or, on the host, written to the
    /// audit log); nothing was released. Retryable.
    AuditUnavailable,
    /// A bug or an unexpected condition inside the enclave.
    Internal,
    /// A code this build does not know (sent by a newer peer).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire and in HTTP error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidTransaction => "invalid_transaction",
            ErrorCode::KeyMismatch => "key_mismatch",
            ErrorCode::KmsDenied => "kms_denied",
            ErrorCode::KmsInvalidCiphertext => "kms_invalid_ciphertext",
            ErrorCode::KmsKeyNotFound => "kms_key_not_found",
            ErrorCode::KmsUnavailable => "kms_unavailable",
            ErrorCode::KmsAttestation => "kms_attestation",
            ErrorCode::KmsError => "kms_error",
            ErrorCode::PolicyDenied => "policy_denied",
            ErrorCode::WindowStateRejected => "window_state_rejected",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::AuditUnavailable => "audit_unavailable",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ErrorBody {
    /// Stable code.
    pub code: ErrorCode,
    /// Human-readable explanation; contains no secrets.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    /// An error without a field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn codes_are_stable_on_the_wire() {
        for code in [
            ErrorCode::BadFrame,
            ErrorCode::InvalidTransaction,
            ErrorCode::KmsInvalidCiphertext,
            ErrorCode::Overloaded,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
        let unknown: ErrorCode = serde_json::from_str("\"from_the_future\"").unwrap();
        assert_eq!(unknown, ErrorCode::Unknown);
    }
}
