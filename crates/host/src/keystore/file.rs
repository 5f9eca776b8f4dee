//! Key records as files: `<dir>/<EIP-55 address>.json`, mode 0600, written atomically.
//!
//! A record is written to a temporary file, synced, then hard-linked to its final name, which
//! fails if the name exists: creation can never overwrite a key, even with two writers racing.
//! Records are cached in memory after the first read; they change only through this store
//! (a policy change, a key's rolling-window state), or [`KeyStore::reload`] reads them afresh.

use super::{KeyRecord, KeyStore, StoreError};
use crate::fsutil::{write_private, Existing};
use alloy_primitives::Address;
use std::{
    collections::HashMap,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

/// A directory of key records.
#[derive(Debug)]
pub struct FileKeyStore {
    dir: PathBuf,
    cache: RwLock<HashMap<Address, Arc<KeyRecord>>>,
}

impl FileKeyStore {
    /// Opens (creating, mode 0700) the directory.
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| unavailable(&dir, e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| unavailable(&dir, e))?;
        Ok(Self {
            dir,
            cache: RwLock::default(),
        })
    }

    fn path_of(&self, address: &Address) -> PathBuf {
        self.dir.join(format!("{}.json", address.to_checksum(None)))
    }

    fn cached(&self, address: &Address) -> Option<Arc<KeyRecord>> {
        self.cache.read().ok()?.get(address).cloned()
    }

    fn remember(&self, record: KeyRecord) -> Arc<KeyRecord> {
        let record = Arc::new(record);
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(record.address, record.clone());
        }
        record
    }
}

fn unavailable(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

fn parse(path: &Path, bytes: &[u8]) -> Result<KeyRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        reason: e.to_string(),
    })
}

#[async_trait::async_trait]
impl KeyStore for FileKeyStore {
    async fn create(&self, record: KeyRecord) -> Result<Arc<KeyRecord>, StoreError> {
        let path = self.path_of(&record.address);
        let mut bytes = serde_json::to_vec_pretty(&record)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        bytes.push(b'\n');
        let target = path.clone();
        let created =
            tokio::task::spawn_blocking(move || write_private(&target, &bytes, Existing::Keep))
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))?
                .map_err(|e| unavailable(&path, e))?;
        if !created {
            return Err(StoreError::Exists(record.address));
        }
        Ok(self.remember(record))
    }

    async fn reload(&self, address: &Address) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(address);
        }
        self.get(address).await
    }

    async fn get(&self, address: &Address) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        if let Some(r) = self.cached(address) {
            return Ok(Some(r));
        }
        let path = self.path_of(address);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(unavailable(&path, e)),
        };
        let record = parse(&path, &bytes)?;
        if record.address != *address {
            return Err(StoreError::Corrupt {
                name: path.display().to_string(),
                reason: "the record's address does not match its file name".into(),
            });
        }
        Ok(Some(self.remember(record)))
    }

    async fn replace(
        &self,
        current: &KeyRecord,
        new: KeyRecord,
    ) -> Result<Arc<KeyRecord>, StoreError> {
        let path = self.path_of(&current.address);
        let stored = match tokio::fs::read(&path).await {
            Ok(b) => parse(&path, &b)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Changed(current.address))
            }
            Err(e) => return Err(unavailable(&path, e)),
        };
        if stored != *current || new.address != current.address {
            return Err(StoreError::Changed(current.address));
        }
        let mut bytes =
            serde_json::to_vec_pretty(&new).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        bytes.push(b'\n');
        let target = path.clone();
        tokio::task::spawn_blocking(move || write_private(&target, &bytes, Existing::Replace))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .map_err(|e| unavailable(&path, e))?;
        Ok(self.remember(new))
    }

    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, StoreError> {
        let mut entries = tokio::fs::read_dir(&self.dir)
            .await
            .map_err(|e| unavailable(&self.dir, e))?;
        let mut records = Vec::new();
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(|e| unavailable(&self.dir, e))?
        {
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let Ok(address) = stem.parse::<Address>() else {
                continue;
            };
            if let Some(record) = self.get(&address).await? {
                records.push(record);
            }
        }
        records.sort_by(|a, b| (&a.created_at, a.address).cmp(&(&b.created_at, b.address)));
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nitro_wallet_protocol::WrappedKey;

    fn record(byte: u8) -> KeyRecord {
        KeyRecord::new(
            WrappedKey {
                address: Address::repeat_byte(byte),
                kms_key_id: "alias/k".into(),
                ciphertext: vec![byte; 8],
                public_key: None,
                policy: None,
            },
            Some(format!("key {byte}")),
        )
    }

    #[tokio::test]
    async fn create_get_list_and_no_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileKeyStore::open(dir.path().join("keys")).unwrap();
        store.create(record(1)).await.unwrap();
        store.create(record(2)).await.unwrap();
        let err = store.create(record(1)).await.unwrap_err();
        assert!(matches!(err, StoreError::Exists(_)));

        // A second store over the same directory reads what the first wrote.
        let again = FileKeyStore::open(dir.path().join("keys")).unwrap();
        let got = again.get(&Address::repeat_byte(1)).await.unwrap().unwrap();
        assert_eq!(*got, record(1).clone_with_time(&got.created_at));
        assert!(again.get(&Address::repeat_byte(3)).await.unwrap().is_none());
        assert_eq!(again.list().await.unwrap().len(), 2);

        let path = dir.path().join("keys").join(format!(
            "{}.json",
            Address::repeat_byte(1).to_checksum(None)
        ));
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary files left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("keys"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    impl KeyRecord {
        fn clone_with_time(mut self, t: &str) -> Self {
            t.clone_into(&mut self.created_at);
            self
        }
    }
}
