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
//! ```no_run
//! # async fn demo() -> Result<(), nitro_wallet_kms::KmsError> {
//! use aws_credential_types::Credentials;
//! use nitro_wallet_kms::{CredentialsCell, EncryptionContext, KmsClient, KmsConfig};
//!
//! let credentials = CredentialsCell::new();
//! credentials.set(Credentials::from_keys("AKIDEXAMPLE", "secret", None));
//! let config = KmsConfig { region: "us-east-1".into(), endpoint: None };
//! let kms = KmsClient::new(&config, credentials);
//! let context = EncryptionContext::from([("address".to_owned(), "0xabc".to_owned())]);
//! let blob = kms.encrypt("alias/nitro-wallet", b"secret key", &context).await?;
//! let plain = kms.decrypt("alias/nitro-wallet", &blob, &context).await?;
//! assert_eq!(&plain[..], b"secret key");
//! # Ok(()) }
//! ```

mod client;
pub mod cms;
mod credentials;
pub mod emulator;
mod error;

pub use client::{EncryptionContext, KmsClient, KmsConfig};
pub use credentials::CredentialsCell;
pub use error::KmsError;
