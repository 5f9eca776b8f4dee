//! The crate's error type and the mapping from AWS SDK errors to it.
//!
//! KMS error codes and messages carry key ids and ARNs at most, never key material, so they are
//! kept for diagnosis; request bodies (plaintext, ciphertext) and credentials never enter a
//! [`KmsError`].

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_kms::config::http::HttpResponse;
use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};

/// Why a KMS call failed, grouped by what the caller can do about it.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum KmsError {
    /// KMS refused: `AccessDeniedException`, `KMSInvalidStateException`, `DisabledException`,
    /// bad or missing credentials, and the like. Retrying will not help.
    #[error("KMS denied the request: {0}")]
    Denied(String),
    /// The ciphertext does not open under this key and encryption context
    /// (`InvalidCiphertextException`, `IncorrectKeyException`).
    #[error("the ciphertext does not open under this key and encryption context")]
    InvalidCiphertext,
    /// The key id, ARN or alias is unknown (`NotFoundException`).
    #[error("KMS key not found")]
    NotFound,
    /// Throttling, network failure, timeout or a 5xx from KMS: the call may be retried later.
    #[error("KMS unavailable: {0}")]
    Unavailable(String),
    /// An attested call (`Recipient`) did not yield key material only the enclave can read: the
    /// response carried plaintext instead of `CiphertextForRecipient`, carried no envelope, or
    /// the envelope did not open with the recipient key. Fails closed; the message is generic
    /// (no detail about why an envelope did not open, so no padding oracle).
    #[error("KMS attestation failure: {0}")]
    Attestation(String),
    /// Anything else (validation errors, unexpected responses).
    #[error("KMS error: {0}")]
    Other(String),
}

impl KmsError {
    /// A stable snake_case code for this error, for logs, metrics and the host↔enclave protocol.
    pub fn code(&self) -> &'static str {
        match self {
            KmsError::Denied(_) => "kms_denied",
            KmsError::InvalidCiphertext => "kms_invalid_ciphertext",
            KmsError::NotFound => "kms_key_not_found",
            KmsError::Unavailable(_) => "kms_unavailable",
            KmsError::Attestation(_) => "kms_attestation",
            KmsError::Other(_) => "kms_error",
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, KmsError::Unavailable(_))
    }
}

/// KMS (and AWS-wide) error codes meaning "refused, do not retry".
const DENIED_CODES: &[&str] = &[
    "AccessDeniedException",
    "AccessDenied",
    "KMSInvalidStateException",
    "DisabledException",
    "InvalidGrantTokenException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationTokenException",
    "MissingAuthenticationToken",
    "ExpiredTokenException",
    "ExpiredToken",
];

/// Error codes meaning "try again later".
const UNAVAILABLE_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "LimitExceededException",
    "RequestLimitExceeded",
    "KMSInternalException",
    "DependencyTimeoutException",
    "KeyUnavailableException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
];

/// Folds an SDK error of any KMS operation into a [`KmsError`].
pub(crate) fn from_sdk<E>(err: SdkError<E, HttpResponse>) -> KmsError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    if has_credentials_error(&err) {
        return KmsError::Denied("no usable AWS credentials".to_owned());
    }
    match &err {
        SdkError::TimeoutError(_) => KmsError::Unavailable("request timed out".to_owned()),
        SdkError::DispatchFailure(failure) => {
            let what = if failure.is_timeout() {
                "timed out"
            } else if failure.is_io() {
                "connection failed"
            } else {
                "request could not be sent"
            };
            KmsError::Unavailable(format!("{what}: {}", chain(&err)))
        }
        SdkError::ResponseError(response) => {
            let status = response.raw().status().as_u16();
            KmsError::Unavailable(format!("unreadable response (HTTP {status})"))
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let source = service.err();
            from_code(source.code(), source.message(), status)
        }
        SdkError::ConstructionFailure(_) => {
            KmsError::Other(format!("request construction failed: {}", chain(&err)))
        }
        _ => KmsError::Other(chain(&err)),
    }
}

/// Maps a KMS error code (plus message and HTTP status) to a [`KmsError`].
pub(crate) fn from_code(code: Option<&str>, message: Option<&str>, status: u16) -> KmsError {
    let message = message.unwrap_or("");
    let described = match code {
        Some(code) if message.is_empty() => code.to_owned(),
        Some(code) => format!("{code}: {message}"),
        None => format!("HTTP {status}: {message}"),
    };
    match code {
        Some("InvalidCiphertextException" | "IncorrectKeyException") => KmsError::InvalidCiphertext,
        Some("NotFoundException") => KmsError::NotFound,
        Some(code) if DENIED_CODES.contains(&code) => KmsError::Denied(described),
        Some(code) if UNAVAILABLE_CODES.contains(&code) => KmsError::Unavailable(described),
        _ if status >= 500 || status == 429 => KmsError::Unavailable(described),
        _ => KmsError::Other(described),
    }
}

/// Whether a credentials-provider failure is somewhere in the error's source chain.
fn has_credentials_error(err: &(dyn StdError + 'static)) -> bool {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        if e.is::<CredentialsError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// The error and its sources joined by ": " (SDK errors say little in `Display` alone).
/// These come from the SDK and the network stack and hold no request bodies or credentials.
pub(crate) fn chain(err: &(dyn StdError + 'static)) -> String {
    let mut out = err.to_string();
    let mut next = err.source();
    while let Some(e) = next {
        out.push_str(": ");
        out.push_str(&e.to_string());
        next = e.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        assert_eq!(KmsError::Denied(String::new()).code(), "kms_denied");
        assert_eq!(KmsError::InvalidCiphertext.code(), "kms_invalid_ciphertext");
        assert_eq!(KmsError::NotFound.code(), "kms_key_not_found");
        assert_eq!(
            KmsError::Unavailable(String::new()).code(),
            "kms_unavailable"
        );
        assert_eq!(
            KmsError::Attestation(String::new()).code(),
            "kms_attestation"
        );
        assert_eq!(KmsError::Other(String::new()).code(), "kms_error");
    }

    #[test]
    fn service_codes_map() {
        let m = |code: &str, status| from_code(Some(code), Some("msg"), status);
        assert!(
            matches!(m("AccessDeniedException", 400), KmsError::Denied(s) if s.contains("msg"))
        );
        assert!(matches!(
            m("KMSInvalidStateException", 400),
            KmsError::Denied(_)
        ));
        assert!(matches!(m("DisabledException", 400), KmsError::Denied(_)));
        assert!(matches!(
            m("InvalidCiphertextException", 400),
            KmsError::InvalidCiphertext
        ));
        assert!(matches!(
            m("IncorrectKeyException", 400),
            KmsError::InvalidCiphertext
        ));
        assert!(matches!(m("NotFoundException", 400), KmsError::NotFound));
        assert!(matches!(
            m("ThrottlingException", 400),
            KmsError::Unavailable(_)
        ));
        assert!(matches!(
            m("KMSInternalException", 500),
            KmsError::Unavailable(_)
        ));
        assert!(matches!(m("SomethingNew", 503), KmsError::Unavailable(_)));
        assert!(matches!(m("ValidationException", 400), KmsError::Other(_)));
        assert!(matches!(
            from_code(None, None, 502),
            KmsError::Unavailable(_)
        ));
    }
}
