//! KMS key wrapping for nitro-wallet.
//!
//! Three parts live here:
//!
//! - [`KmsClient`]: the enclave's calls to AWS KMS (`Encrypt`, `Decrypt`, `GenerateRandom`)
//!   through the AWS SDK for Rust, with credentials handed over at run time by the host through a
//!   [`CredentialsCell`] and SDK errors folded into the stable [`KmsError`] codes. The attested
//!   variants ([`KmsClient::decrypt_for_recipient`],
//!   [`KmsClient::generate_random_for_recipient`]) send a `Recipient` with the enclave's
//!   attestation document and accept the key material only as a `CiphertextForRecipient`
//!   envelope, refusing a `Plaintext` answer ([`KmsError::Attestation`]).
//! - [`cms`]: the enclave's RSA [`cms::RecipientKey`] for KMS `Recipient`, decryption of the
//!   BER CMS `CiphertextForRecipient` envelopes KMS returns, and encryption of the same shape
//!   for the emulator.
//! - [`emulator`]: an **insecure, development-only** local emulator of the subset of the KMS
//!   JSON API the project uses, so dev mode and tests run the very same SDK code path as
//!   production without a cloud account. It enforces an attestation policy
//!   ([`emulator::AttestationPolicy`]: trust anchor, `ImageSha384` / `PCR<n>` conditions) the
//!   way a KMS key policy does.
//!
//! # Production routing
//!
//! A Nitro Enclave has no network. In production [`KmsConfig::proxy`] is `vsock://3:8000`: every
//! connection of the SDK dials AWS's `vsock-proxy` on the parent instance (CID 3), which
//! forwards raw bytes to `kms.<region>.amazonaws.com:443`. TLS runs inside the enclave, with SNI
//! and certificate verification for `kms.<region>.amazonaws.com` against Mozilla's roots
//! compiled into the image (an enclave has no system trust store), so the parent, untrusted for
//! confidentiality, relays only ciphertext and cannot stand in for KMS. Connections are pooled
//! (HTTP/1.1), dialing and the handshake are each bounded by the connect timeout, and a
//! certificate failure surfaces as [`KmsError::Unavailable`] naming TLS verification.
//!
//! ```no_run
//! # async fn demo() -> Result<(), nitro_wallet_kms::KmsError> {
//! use aws_credential_types::Credentials;
//! use nitro_wallet_kms::{CredentialsCell, EncryptionContext, KmsClient, KmsConfig};
//!
//! let credentials = CredentialsCell::new();
//! credentials.set(Credentials::from_keys("AKIDEXAMPLE", "secret", None));
//! let mut config = KmsConfig::new("us-east-1");
//! // In an enclave: through the parent's vsock-proxy, TLS verified here.
//! config.proxy = Some("vsock://3:8000".parse().expect("endpoint"));
//! let kms = KmsClient::new(&config, credentials);
//! let context = EncryptionContext::from([("address".to_owned(), "0xabc".to_owned())]);
//! let blob = kms.encrypt("alias/nitro-wallet", b"secret key", &context).await?;
//! let plain = kms.decrypt(Some("alias/nitro-wallet"), &blob, &context).await?;
//! assert_eq!(&plain[..], b"secret key");
//! # Ok(()) }
//! ```

mod client;
pub mod cms;
mod credentials;
pub mod emulator;
mod error;
mod proxy;

pub use client::{EncryptionContext, KmsClient, KmsConfig, RecipientEnvelope};
pub use credentials::CredentialsCell;
pub use error::KmsError;
