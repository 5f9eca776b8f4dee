//! The emulator's key file: KMS keys, their aliases and master keys, persisted in one JSON file.
//!
//! The file holds master keys in hex; it is written atomically (temporary file, fsync, rename,
//! fsync of the directory) with mode 0600. Master keys live in [`Zeroizing`] memory and are
//! never logged or printed.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Name of the key file inside the emulator's directory.
pub(crate) const KEY_FILE: &str = "kms-emulator-keys.json";
/// Format version of the key file.
const FILE_VERSION: u32 = 1;
/// Most aliases / keys the emulator keeps; it is a dev tool, not a key farm.
const MAX_KEYS: usize = 1000;

/// One symmetric KMS key.
pub(crate) struct Key {
    pub(crate) id: String,
    pub(crate) created: u64,
    pub(crate) master: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// All keys and aliases, as loaded from (and saved to) the key file.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    pub(crate) keys: BTreeMap<String, Key>,
    /// `alias/<name>` → key id.
    pub(crate) aliases: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    version: u32,
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    key_id: String,
    #[serde(default)]
    aliases: Vec<String>,
    created: u64,
    /// Hex of the 32-byte AES-256-GCM master key.
    master_key: String,
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        self.master_key.zeroize();
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

impl Keys {
    /// Loads the key file from `dir`, or creates `dir` (mode 0700) and a file with one fresh
    /// key under `default_alias`.
    pub(crate) fn load_or_create(dir: &Path, default_alias: &str) -> io::Result<(Keys, PathBuf)> {
        let path = dir.join(KEY_FILE);
        match fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let mode = fs::metadata(&path)?.permissions().mode();
                if mode & 0o077 != 0 {
                    tracing::warn!(path = %path.display(), mode = format_args!("{mode:o}"),
                        "KMS emulator key file is readable by others");
                }
                Ok((Keys::decode(&bytes)?, path))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(dir)?;
                let mut keys = Keys::default();
                keys.create(Some(default_alias))?;
                keys.save(&path)?;
                tracing::info!(path = %path.display(), "created KMS emulator key file");
                Ok((keys, path))
            }
            Err(err) => Err(err),
        }
    }

    fn decode(bytes: &[u8]) -> io::Result<Keys> {
        let file: KeyFile = serde_json::from_slice(bytes)
            .map_err(|err| invalid(format!("KMS emulator key file: {err}")))?;
        if file.version != FILE_VERSION {
            return Err(invalid(format!(
                "KMS emulator key file version {}",
                file.version
            )));
        }
        let mut keys = Keys::default();
        for entry in &file.keys {
            let mut master = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(&entry.master_key, master.as_mut_slice()).map_err(|_| {
                invalid(format!(
                    "key {}: master key is not 32 hex bytes",
                    entry.key_id
                ))
            })?;
            keys.insert(
                Key {
                    id: entry.key_id.clone(),
                    created: entry.created,
                    master,
                },
                &entry.aliases,
            )?;
        }
        Ok(keys)
    }

    fn insert(&mut self, key: Key, aliases: &[String]) -> io::Result<()> {
        if key.id.is_empty() || key.id.len() > 255 || !key.id.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(invalid("invalid key id"));
        }
        if self.keys.contains_key(&key.id) {
            return Err(invalid(format!("duplicate key id {}", key.id)));
        }
        for alias in aliases {
            check_alias(alias)?;
            if self.aliases.insert(alias.clone(), key.id.clone()).is_some() {
                return Err(invalid(format!("duplicate alias {alias}")));
            }
        }
        self.keys.insert(key.id.clone(), key);
        Ok(())
    }

    /// Adds a fresh random key, optionally under `alias`; returns its id. Does not save.
    pub(crate) fn create(&mut self, alias: Option<&str>) -> io::Result<String> {
        if self.keys.len() >= MAX_KEYS {
            return Err(invalid("too many keys"));
        }
        if let Some(alias) = alias {
            check_alias(alias)?;
            if self.aliases.contains_key(alias) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{alias} exists"),
                ));
            }
        }
        let mut master = Zeroizing::new([0u8; 32]);
        getrandom::fill(master.as_mut_slice()).map_err(|e| io::Error::other(e.to_string()))?;
        let id = new_key_id()?;
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let aliases: Vec<String> = alias.map(str::to_owned).into_iter().collect();
        self.insert(
            Key {
                id: id.clone(),
                created,
                master,
            },
            &aliases,
        )?;
        Ok(id)
    }

    /// Atomically writes all keys to `path` with mode 0600.
    pub(crate) fn save(&self, path: &Path) -> io::Result<()> {
        let mut by_key: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (alias, id) in &self.aliases {
            by_key.entry(id.as_str()).or_default().push(alias.clone());
        }
        let file = KeyFile {
            version: FILE_VERSION,
            keys: self
                .keys
                .values()
                .map(|key| KeyEntry {
                    key_id: key.id.clone(),
                    aliases: by_key.remove(key.id.as_str()).unwrap_or_default(),
                    created: key.created,
                    master_key: hex::encode(key.master.as_slice()),
                })
                .collect(),
        };
        let mut bytes = Zeroizing::new(serde_json::to_vec_pretty(&file).map_err(io::Error::other)?);
        bytes.push(b'\n');
        drop(file);

        write_private(path, &bytes)
    }
}

/// Atomically replaces `path` with `bytes`, mode 0600: temporary file beside it, fsync, rename,
/// fsync of the directory.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| invalid("file path has no directory"))?;
    let name = path
        .file_name()
        .ok_or_else(|| invalid("file path has no file name"))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    let result = (|| {
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        // An older temporary file may have other permissions; `mode` applies only on create.
        out.set_permissions(fs::Permissions::from_mode(0o600))?;
        out.write_all(bytes)?;
        out.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn check_alias(alias: &str) -> io::Result<()> {
    let name = alias.strip_prefix("alias/").unwrap_or("");
    let valid = !name.is_empty()
        && name.len() <= 250
        && !name.starts_with("aws/")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b));
    if valid {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid alias {alias:?} (want alias/<name>)"
        )))
    }
}

/// A random key id in the UUID v4 form KMS uses.
fn new_key_id() -> io::Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| io::Error::other(e.to_string()))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_save_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (keys, path) = Keys::load_or_create(dir.path(), "alias/test").expect("create");
        assert_eq!(keys.keys.len(), 1);
        let id = keys.aliases.get("alias/test").expect("alias").clone();
        assert_eq!(id.len(), 36);
        assert_eq!(
            fs::metadata(&path).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        let (again, _) = Keys::load_or_create(dir.path(), "alias/ignored").expect("load");
        assert_eq!(again.aliases.get("alias/test"), Some(&id));
        assert!(!again.aliases.contains_key("alias/ignored"));
        let (a, b) = (&keys.keys[&id], &again.keys[&id]);
        assert_eq!(a.master.as_slice(), b.master.as_slice());
        assert_eq!(a.created, b.created);
        assert!(!format!("{keys:?}").contains(&hex::encode(a.master.as_slice())));
    }

    #[test]
    fn rejects_bad_files_and_aliases() {
        assert!(Keys::decode(b"{").is_err());
        assert!(Keys::decode(br#"{"version":2,"keys":[]}"#).is_err());
        let short = br#"{"version":1,"keys":[{"key_id":"k","created":0,"master_key":"00"}]}"#;
        assert!(Keys::decode(short).is_err());
        let mut keys = Keys::default();
        assert!(keys.create(Some("nitro")).is_err());
        assert!(keys.create(Some("alias/aws/kms")).is_err());
        keys.create(Some("alias/x")).expect("create");
        assert!(keys.create(Some("alias/x")).is_err());
    }
}
