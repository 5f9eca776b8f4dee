//! Where key records live.
//!
//! A record holds a key's KMS ciphertext (never the plaintext), its address, label and the
//! encryption context that binds the ciphertext to the address, so records cannot be swapped
//! between keys. Backends implement [`KeyStore`]: a directory of files for local use
//! ([`file::FileKeyStore`]); AWS Secrets Manager in production
//! ([`secrets_manager::SecretsManagerKeyStore`]).

pub mod file;
pub mod secrets_manager;

use alloy_primitives::Address;
use nitro_wallet_protocol::message::{base64_bytes, WrappedKey};
use serde::{Deserialize, Serialize};
use std::{collections::BTreeMap, sync::Arc};

/// Version of the record format.
pub const RECORD_VERSION: u32 = 1;

/// A stored key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Record format version.
    pub version: u32,
    /// EIP-55 address: the key's id.
    #[serde(with = "nitro_wallet_eth::checksummed")]
    pub address: Address,
    /// KMS ciphertext of the private key (base64).
    #[serde(with = "base64_bytes")]
    pub ciphertext: Vec<u8>,
    /// KMS key that wrapped it.
    pub kms_key_id: String,
    /// Encryption context the ciphertext is bound to.
    pub encryption_context: BTreeMap<String, String>,
    /// Signing policy, enforced in the enclave; its digest is in `encryption_context`, so an
    /// edited policy makes the record unusable.
    #[serde(default)]
    pub policy: Option<serde_json::Value>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Free-form label.
    #[serde(default)]
    pub label: Option<String>,
    /// Uncompressed SEC1 public key (`0x04…`), as the enclave reported it when it wrapped the
    /// key (absent in records made before it did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<alloy_primitives::Bytes>,
    /// The latest rolling-window state the enclave sealed, for keys whose policy has a window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<nitro_wallet_protocol::SealedWindow>,
    /// The reference sample's secret this key was migrated from, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migrated_from: Option<MigratedFrom>,
}

/// Where a migrated key came from: the reference sample's Secrets Manager secret. Clients of
/// the sample keep naming the key by this secret (`secret_id` in `POST /`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigratedFrom {
    /// The secret's ARN.
    pub secret_arn: String,
    /// The secret's name.
    pub secret_name: String,
}

impl KeyRecord {
    /// A record for a key the enclave just wrapped.
    pub fn new(wrapped: WrappedKey, label: Option<String>) -> Self {
        let created_at = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        let policy: Option<serde_json::Value> = wrapped
            .policy
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok());
        let digest = wrapped
            .policy
            .as_deref()
            .and_then(|p| nitro_wallet_policy::Policy::from_json(p.as_bytes()).ok())
            .map(|p| p.digest());
        Self {
            version: RECORD_VERSION,
            encryption_context: WrappedKey::encryption_context(&wrapped.address, digest.as_deref()),
            address: wrapped.address,
            ciphertext: wrapped.ciphertext,
            kms_key_id: wrapped.kms_key_id,
            public_key: wrapped.public_key,
            policy,
            window: None,
            created_at,
            label,
            migrated_from: None,
        }
    }

    /// Whether the key's policy has a rolling window (whose state the host keeps).
    pub fn has_window(&self) -> bool {
        self.policy
            .as_ref()
            .is_some_and(|p| p.get("window").is_some())
    }

    /// What the enclave needs to unwrap the key.
    pub fn wrapped(&self) -> WrappedKey {
        WrappedKey {
            address: self.address,
            kms_key_id: self.kms_key_id.clone(),
            ciphertext: self.ciphertext.clone(),
            public_key: self.public_key.clone(),
            policy: self.policy.as_ref().map(serde_json::Value::to_string),
        }
    }
}

/// Key store failures.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A record for this address exists already.
    #[error("a key with address {0} exists already")]
    Exists(Address),
    /// The store could not be read or written.
    #[error("key store unavailable: {0}")]
    Unavailable(String),
    /// The record changed (or vanished) since it was read.
    #[error("the record of {0} changed meanwhile; read it again and retry")]
    Changed(Address),
    /// A stored record is unreadable.
    #[error("key record {name} is corrupt: {reason}")]
    Corrupt {
        /// Which record.
        name: String,
        /// Why.
        reason: String,
    },
}

/// A place to keep key records.
#[async_trait::async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// Stores a new record; never overwrites.
    ///
    /// # Errors
    /// [`StoreError::Exists`] when the address is taken.
    async fn create(&self, record: KeyRecord) -> Result<Arc<KeyRecord>, StoreError>;

    /// The record of `address`, if any.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn get(&self, address: &Address) -> Result<Option<Arc<KeyRecord>>, StoreError>;

    /// Like [`KeyStore::get`], bypassing any cache: for records another host may have changed.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn reload(&self, address: &Address) -> Result<Option<Arc<KeyRecord>>, StoreError>;

    /// Every record, ordered by creation time then address.
    ///
    /// # Errors
    /// When the store cannot be read.
    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, StoreError>;

    /// Replaces `current` by `new` (same address), only if the stored record still is
    /// `current`: a concurrent change is reported, not overwritten.
    ///
    /// # Errors
    /// [`StoreError::Changed`] when the stored record is not `current` (or is gone).
    async fn replace(
        &self,
        current: &KeyRecord,
        new: KeyRecord,
    ) -> Result<Arc<KeyRecord>, StoreError>;
}
