//! Owner-only files written durably and atomically: a reader sees the old content or the new,
//! never a torn file, and a crash never leaves a key record half written.

use std::{io::Write, os::unix::fs::OpenOptionsExt, path::Path};

/// What to do when the target exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Replace it atomically (`rename`).
    Replace,
    /// Leave it and report `Ok(false)` (`link` fails on an existing name, even under a race).
    Keep,
}

/// Writes `bytes` to a fresh mode-0600 temporary file beside `path`, syncs it, moves it into
/// place and syncs the directory. Returns whether `path` now holds `bytes`.
///
/// # Errors
/// When any step fails; the temporary file is removed.
pub fn write_private(path: &Path, bytes: &[u8], existing: Existing) -> std::io::Result<bool> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut rnd = [0u8; 8];
    getrandom::fill(&mut rnd)?;
    let tmp = dir.join(format!(".tmp-{}", hex::encode(rnd)));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        match existing {
            Existing::Replace => std::fs::rename(&tmp, path)?,
            Existing::Keep => match std::fs::hard_link(&tmp, path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e),
            },
        }
        std::fs::File::open(dir)?.sync_all()?;
        Ok(true)
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keep_never_overwrites_and_replace_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        assert!(write_private(&path, b"one", Existing::Keep).unwrap());
        assert!(!write_private(&path, b"two", Existing::Keep).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        assert!(write_private(&path, b"three", Existing::Replace).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
