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
//! What it does **not** do, and why it must never stand in for KMS in production:
//! - master keys sit in a plain file (`kms-emulator-keys.json`, mode 0600) in the directory
//!   given to [`Emulator::open`];
//! - requests must carry a SigV4 `Authorization` header, but the signature is **not verified**
//!   and there are no key policies: anyone who can reach the port can decrypt;
//! - there is no TLS; bind it to 127.0.0.1 only.
//!
//! Ciphertext blobs use the emulator's own format (see `blob.rs`), not KMS's.

mod api;
mod blob;
mod store;

use std::fmt;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

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
}

impl Shared {
    fn key_arn(&self, key_id: &str) -> String {
        format!("arn:aws:kms:{}:{ACCOUNT_ID}:key/{key_id}", self.region)
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
    /// [`DEFAULT_ALIAS`]. ARNs use [`DEFAULT_REGION`].
    ///
    /// # Errors
    /// I/O errors reading or writing the key file; `InvalidData` when it is malformed or has
    /// no key under [`DEFAULT_ALIAS`].
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
        tracing::warn!(path = %path.display(), "using the INSECURE local KMS emulator (dev only)");
        Ok(Emulator {
            shared: Arc::new(Shared {
                region: region.to_owned(),
                path,
                keys: RwLock::new(keys),
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
