//! A local KMS emulator for dev mode and tests. **Insecure; for development only.**
//!
//! It speaks the subset of the AWS KMS JSON protocol (`awsJson1_1`) nitro-wallet uses —
//! `Encrypt`, `Decrypt`, `GenerateRandom` and `DescribeKey` — so the production
//! [`KmsClient`](crate::KmsClient) runs unchanged against it, and it enforces what matters for
//! correctness the way KMS does: AES-256-GCM under a per-key master key, the encryption context
//! bound as AAD (a different, missing or extra context fails with `InvalidCiphertextException`),
//! `IncorrectKeyException` for a `KeyId` other than the blob's, `NotFoundException` for unknown
//! keys, the 4096-byte plaintext limit.
//!
//! # Attestation
//!
//! It also enforces attestation like KMS, under one [`AttestationPolicy`] per emulator
//! (`key-policy.json` beside the key file, see [`Emulator::set_policy`]). `Decrypt` and
//! `GenerateRandom` accept a `Recipient`
//! (`{"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": "<base64>"}`): the
//! document must verify against the policy's root at the current time (COSE_Sign1 signature,
//! certificate chain and validity; debug-mode documents are refused) and satisfy its
//! `kms:RecipientAttestation:ImageSha384` / `PCR<n>` conditions; the answer then carries
//! `CiphertextForRecipient`, a BER CMS envelope of the KMS shape encrypted to the document's
//! `public_key`, and no `Plaintext`. A refused document gets `AccessDeniedException` with a
//! message starting "attestation policy:" that names the failed check. The verdict on an
//! accepted document is remembered by the SHA-256 of its bytes and reused while its
//! certificates are valid, the same answer a new verification would give (an enclave sends the
//! same document with many calls). With
//! [`AttestationPolicy::require_attestation`], calls without a `Recipient` are denied too, so
//! dev mode exercises the production path: a rebuilt enclave binary (new PCR0) is refused
//! until the policy names its new measurement.
//!
//! What it does **not** do, and why it must never stand in for KMS in production:
//! - master keys sit in a plain file (`kms-emulator-keys.json`, mode 0600) in the directory
//!   given to [`Emulator::open`];
//! - requests must carry a SigV4 `Authorization` header, but the signature is **not verified**
//!   and the only policy is the attestation policy above: without `require_attestation`, anyone
//!   who can reach the port can decrypt, and the trust anchor is typically the insecure dev CA;
//! - there is no TLS; bind it to 127.0.0.1 only.
//!
//! Ciphertext blobs use the emulator's own format (see `blob.rs`), not KMS's.

mod api;
mod blob;
mod policy;
mod store;

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use policy::Enforced;
pub use policy::{AttestationPolicy, POLICY_FILE};
use store::Keys;

/// Region used by [`Emulator::open`].
pub const DEFAULT_REGION: &str = "us-east-1";
/// The account id in the emulator's ARNs (AWS's documentation example account).
pub const ACCOUNT_ID: &str = "111122223333";
/// The alias of the key created with a new key file.
pub const DEFAULT_ALIAS: &str = "alias/nitro-wallet";

/// State shared by the emulator handle and its HTTP handlers.
#[derive(Debug)]
struct Shared {
    region: String,
    path: PathBuf,
    keys: RwLock<Keys>,
    policy_path: PathBuf,
    policy: RwLock<Enforced>,
    /// Distinct access key ids of the requests' `Authorization` headers, first seen first.
    access_key_ids: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    fn key_arn(&self, key_id: &str) -> String {
        format!("arn:aws:kms:{}:{ACCOUNT_ID}:key/{key_id}", self.region)
    }

    fn policy(&self) -> std::sync::RwLockReadGuard<'_, Enforced> {
        self.policy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The local KMS emulator (**insecure, dev only**): keys loaded from a directory, served over
/// plain HTTP.
pub struct Emulator {
    shared: Arc<Shared>,
    default_key_id: String,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("region", &self.shared.region)
            .field("path", &self.shared.path)
            .field("default_key_id", &self.default_key_id)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Loads the key file in `dir`, or creates it (and `dir`) with one key under
    /// [`DEFAULT_ALIAS`], and the attestation policy ([`POLICY_FILE`]) if there is one (else
    /// the default: attestation not required, no trust anchor). ARNs use [`DEFAULT_REGION`].
    ///
    /// # Errors
    /// I/O errors reading or writing the key file; `InvalidData` when it is malformed or has
    /// no key under [`DEFAULT_ALIAS`], or when the policy file is malformed.
    pub fn open(dir: &Path) -> io::Result<Emulator> {
        Emulator::open_in_region(dir, DEFAULT_REGION)
    }

    /// As [`Emulator::open`], with ARNs in `region` (match the client's region).
    ///
    /// # Errors
    /// As for [`Emulator::open`].
    pub fn open_in_region(dir: &Path, region: &str) -> io::Result<Emulator> {
        let (keys, path) = Keys::load_or_create(dir, DEFAULT_ALIAS)?;
        let default_key_id = keys.aliases.get(DEFAULT_ALIAS).cloned().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: no key under {DEFAULT_ALIAS}", path.display()),
            )
        })?;
        let policy_path = dir.join(POLICY_FILE);
        let policy = Enforced::load(&policy_path)?;
        tracing::warn!(path = %path.display(), "using the INSECURE local KMS emulator (dev only)");
        tracing::info!(
            path = %policy_path.display(),
            require_attestation = policy.requires_attestation(),
            "KMS emulator attestation policy loaded"
        );
        Ok(Emulator {
            shared: Arc::new(Shared {
                region: region.to_owned(),
                path,
                keys: RwLock::new(keys),
                policy_path,
                policy: RwLock::new(policy),
                access_key_ids: std::sync::Mutex::default(),
            }),
            default_key_id,
        })
    }

    /// The default key's id.
    pub fn key_id(&self) -> &str {
        &self.default_key_id
    }

    /// The default key's ARN, `arn:aws:kms:<region>:111122223333:key/<id>`.
    pub fn key_arn(&self) -> String {
        self.shared.key_arn(&self.default_key_id)
    }

    /// The ARN of any key id.
    pub fn arn_of(&self, key_id: &str) -> String {
        self.shared.key_arn(key_id)
    }

    /// The region in the emulator's ARNs.
    pub fn region(&self) -> &str {
        &self.shared.region
    }

    /// Creates and persists another key, optionally under `alias` (`alias/<name>`); returns its
    /// id. Takes effect on running servers too.
    ///
    /// # Errors
    /// `InvalidInput`-like errors for a malformed alias, `AlreadyExists` for a taken one, I/O
    /// errors writing the key file (the key is then not kept).
    pub fn create_key(&self, alias: Option<&str>) -> io::Result<String> {
        let mut keys = self
            .shared
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = keys.create(alias)?;
        if let Err(err) = keys.save(&self.shared.path) {
            keys.keys.remove(&id);
            keys.aliases.retain(|_, key| *key != id);
            return Err(err);
        }
        Ok(id)
    }

    /// The distinct access key ids that signed requests so far (from the SigV4
    /// `Authorization` header's `Credential=`; the signature itself is not verified), first
    /// seen first. For tests that check which credentials a client used.
    pub fn access_key_ids_seen(&self) -> Vec<String> {
        self.shared
            .access_key_ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The attestation policy in force.
    pub fn policy(&self) -> AttestationPolicy {
        self.shared.policy().policy().clone()
    }

    /// Replaces the attestation policy: checks it, writes it atomically to [`POLICY_FILE`]
    /// (mode 0600) and applies it, to running servers too. On error nothing changes.
    ///
    /// # Errors
    /// `InvalidInput` for a policy whose `root_pem` is not one PEM certificate, whose PCR values
    /// are not 48 bytes of hex or whose PCR indices exceed 31; I/O errors writing the file.
    pub fn set_policy(&self, policy: AttestationPolicy) -> io::Result<()> {
        let enforced = Enforced::new(policy)?;
        let mut current = self
            .shared
            .policy
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        enforced.save(&self.shared.policy_path)?;
        *current = enforced;
        Ok(())
    }

    /// The HTTP handler: `POST /` with `X-Amz-Target: TrentService.<Op>`, bodies limited to
    /// 64 KiB.
    pub fn router(&self) -> axum::Router {
        api::router(Arc::clone(&self.shared))
    }

    /// Serves on `listener` (bind it to 127.0.0.1) until the process ends.
    ///
    /// # Errors
    /// I/O errors of the listener.
    pub async fn serve(self, listener: tokio::net::TcpListener) -> io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Serves on `listener` until `shutdown` completes, then finishes in-flight requests.
    ///
    /// # Errors
    /// I/O errors of the listener.
    pub async fn serve_with_shutdown<F>(
        self,
        listener: tokio::net::TcpListener,
        shutdown: F,
    ) -> io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }
}
