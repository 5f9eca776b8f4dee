//! Why an attestation document was refused.
//!
//! Every check in [`crate::document`] and [`crate::verify`](mod@crate::verify) fails with its own
//! variant, so the CLI can print a precise reason ("certificate at depth 0 expired at …",
//! "PCR0 does not match") and the KMS emulator can map refusals to KMS-like errors. The enum
//! carries only public data: document bytes are public, nothing here is secret.
//!
//! Certificate *depth* counts from the leaf: depth 0 is the document's `certificate`, depth 1 the
//! last entry of `cabundle`, and so on up to the root (the first entry of `cabundle`).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A refused attestation document. See the module docs for how depth is counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttestationError {
    /// The document is larger than [`MAX_DOCUMENT_LEN`](crate::document::MAX_DOCUMENT_LEN).
    #[error("attestation document too large: {len} bytes, at most {max}")]
    TooLarge {
        /// Length of the input.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The bytes are not a well-formed NSM attestation document (COSE_Sign1 or payload
    /// structure, a field's type, size or a duplicate/unknown field).
    #[error("malformed attestation document: {0}")]
    Malformed(&'static str),
    /// The document or a certificate uses an algorithm other than ES384 / ECDSA P-384 with
    /// SHA-384 (the only one the NSM uses).
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(&'static str),
    /// A certificate cannot be decoded as X.509 DER, or has a feature this verifier refuses.
    #[error("bad certificate at depth {depth}: {reason}")]
    BadCertificate {
        /// Depth of the certificate (0 = leaf).
        depth: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The COSE_Sign1 signature does not verify with the leaf certificate's key: the payload
    /// or the signature was altered, or the certificate is not the signer.
    #[error("attestation document signature does not verify with its certificate")]
    BadSignature,
    /// The certificate at `depth` is not issued by the next certificate up the chain (issuer
    /// name or signature mismatch).
    #[error("certificate chain broken: certificate at depth {depth} is not signed by its issuer")]
    ChainBroken {
        /// Depth of the certificate whose signature fails (0 = leaf).
        depth: usize,
    },
    /// A certificate above the leaf is not allowed to issue certificates (basic constraints
    /// without `cA`, key usage without `keyCertSign`, or its path length constraint exceeded).
    #[error("certificate at depth {depth} is not a CA allowed to issue this chain")]
    NotCa {
        /// Depth of the certificate (≥ 1).
        depth: usize,
    },
    /// A certificate had expired at the verification time.
    #[error("certificate at depth {depth} expired at {}", format_unix(*.not_after))]
    Expired {
        /// Depth of the certificate (0 = leaf).
        depth: usize,
        /// Its `notAfter`, in seconds since the UNIX epoch.
        not_after: u64,
    },
    /// A certificate was not yet valid at the verification time.
    #[error("certificate at depth {depth} is not valid before {}", format_unix(*.not_before))]
    NotYetValid {
        /// Depth of the certificate (0 = leaf).
        depth: usize,
        /// Its `notBefore`, in seconds since the UNIX epoch.
        not_before: u64,
    },
    /// The chain does not end at the pinned root: the first `cabundle` certificate differs from
    /// the trust anchor.
    #[error("certificate chain does not end at the pinned root certificate")]
    UntrustedRoot,
    /// An expected PCR is absent from the document.
    #[error("PCR{index} is expected but absent from the document")]
    PcrMissing {
        /// The PCR index.
        index: u8,
    },
    /// A PCR differs from its expected value.
    #[error("PCR{index} does not match the expected value")]
    PcrMismatch {
        /// The PCR index.
        index: u8,
    },
    /// A nonce was expected and the document carries another one, or none.
    #[error("nonce does not match the expected nonce")]
    NonceMismatch,
    /// A public key was expected and the document binds another one, or none.
    #[error("public key does not match the expected public key")]
    PublicKeyMismatch,
    /// User data was expected and the document carries other data, or none.
    #[error("user data does not match the expected user data")]
    UserDataMismatch,
    /// PCR0, PCR1 and PCR2 are all zero: the enclave runs in debug mode, where the parent
    /// instance can read its memory. Refused unless debug documents are explicitly allowed.
    #[error("enclave runs in debug mode (PCR0, PCR1 and PCR2 are zero)")]
    DebugMode,
}

/// Formats UNIX seconds as RFC 3339 for error messages.
fn format_unix(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("unix time {secs}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_reason() {
        let e = AttestationError::Expired {
            depth: 0,
            not_after: 1_665_662_282,
        };
        assert_eq!(
            e.to_string(),
            "certificate at depth 0 expired at 2022-10-13T11:58:02Z"
        );
        let e = AttestationError::NotYetValid {
            depth: 2,
            not_before: u64::MAX,
        };
        assert!(e.to_string().ends_with(&format!("unix time {}", u64::MAX)));
        assert_eq!(
            AttestationError::PcrMismatch { index: 0 }.to_string(),
            "PCR0 does not match the expected value"
        );
    }
}
