//! Nitro Enclaves attestation for nitro-wallet.
//!
//! An enclave proves which code it runs with an *attestation document*: a COSE_Sign1 structure
//! signed by the Nitro Secure Module (NSM), whose payload names the image measurements (PCRs),
//! carries a certificate chain up to the AWS Nitro Enclaves root, and binds caller-chosen data
//! (a public key, user data, a nonce). AWS KMS releases key material only to a document whose
//! PCR0 its key policy names; clients check the same document to learn which code signs for them.
//!
//! This crate is the one place that understands those documents:
//!
//! - [`document`]: the document model and a strict, bounded parser (untrusted bytes);
//! - [`verify`](mod@verify): signature, chain to a pinned root at an injectable time, PCR,
//!   nonce and binding expectations, debug-mode detection;
//! - [`nsm`]: the [`Nsm`] trait the enclave asks for documents and entropy, with the real
//!   `/dev/nsm` driver ([`RealNsm`]);
//! - [`dev`]: a dev NSM ([`DevNsm`]) issuing documents in exactly the real format, signed by a
//!   local, **insecure** dev CA, so dev mode exercises the production verification path.
//!
//! ```
//! use nitro_wallet_attestation::{verify, AttestationError, VerifyOptions};
//!
//! // Garbage is refused with a reason, never a panic.
//! let err = verify(b"not a document", &VerifyOptions::default()).unwrap_err();
//! assert!(matches!(err, AttestationError::Malformed(_)));
//! ```

pub mod dev;
pub mod document;
pub mod error;
pub mod nsm;
pub mod verify;

mod cbor;

pub use dev::{pcr0_of_file, DevCa, DevNsm};
pub use document::{AttestationDocument, Pcr, SignedDocument, PCR_LEN};
pub use error::AttestationError;
pub use nsm::{Nsm, NsmError, RealNsm};
pub use verify::{
    verify, verify_signed, VerifiedDocument, VerifyOptions, AWS_NITRO_ROOT_G1_DER,
    AWS_NITRO_ROOT_G1_PEM, AWS_NITRO_ROOT_G1_SHA256,
};
