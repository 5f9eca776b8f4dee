//! The Nitro Secure Module behind a trait.
//!
//! The enclave needs two things from the NSM: attestation documents binding its public key
//! (for KMS `Recipient` calls and for clients) and entropy. [`Nsm`] is that interface;
//! [`RealNsm`] talks to `/dev/nsm` through `aws-nitro-enclaves-nsm-api`, and
//! [`DevNsm`](crate::DevNsm) simulates it outside an enclave with a local, insecure CA. The
//! production configuration must refuse any implementation whose [`Nsm::is_dev`] is true.
//!
//! Calls are **blocking** (an `ioctl` on the device for [`RealNsm`], certificate issuing and
//! signing for the dev NSM): async callers run them with `tokio::task::spawn_blocking`.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use aws_nitro_enclaves_nsm_api::api::{ErrorCode, Request, Response};
use aws_nitro_enclaves_nsm_api::driver::nsm_process_request;
use serde_bytes::ByteBuf;

use crate::document::MAX_BOUND_DATA_LEN;

/// Largest number of random bytes one [`Nsm::random`] call returns.
pub const MAX_RANDOM_LEN: usize = 64 * 1024;

/// Access to a Nitro Secure Module (real or simulated).
pub trait Nsm: Send + Sync {
    /// Asks for a fresh attestation document (untagged COSE_Sign1, see
    /// [`crate::document`]) binding the given public key, user data and nonce (each at most
    /// 1024 bytes). Blocking.
    ///
    /// # Errors
    ///
    /// [`NsmError::InputTooLarge`] for an oversized field; a device or signing error otherwise.
    fn attestation(
        &self,
        public_key: Option<&[u8]>,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, NsmError>;

    /// Returns `n` (at most [`MAX_RANDOM_LEN`]) random bytes from the module's entropy source.
    /// Blocking.
    ///
    /// # Errors
    ///
    /// [`NsmError::InputTooLarge`] above the bound; a device or OS error otherwise.
    fn random(&self, n: usize) -> Result<Vec<u8>, NsmError>;

    /// True for a simulated module, whose documents prove nothing; production refuses it.
    fn is_dev(&self) -> bool;
}

/// Why the NSM (real or dev) could not serve a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NsmError {
    /// The NSM device cannot be opened: not running inside a Nitro Enclave (or no permission).
    #[error("NSM device {path} is unavailable (not inside a Nitro Enclave?): {source}")]
    Unavailable {
        /// The device path.
        path: PathBuf,
        /// The open error.
        #[source]
        source: std::io::Error,
    },
    /// The NSM refused the request with this error code.
    #[error("NSM returned an error: {0}")]
    Device(String),
    /// The NSM answered with a response of another kind than requested.
    #[error("NSM returned an unexpected response")]
    UnexpectedResponse,
    /// A request field exceeds its bound.
    #[error("{field} is {len} bytes, at most {max} allowed")]
    InputTooLarge {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The OS entropy source failed (dev NSM).
    #[error("OS random number generator failed: {0}")]
    Random(String),
    /// Reading or writing a dev CA or binary file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The dev CA files are unusable, or issuing a dev certificate failed.
    #[error("dev CA: {0}")]
    DevCa(String),
    /// Signing a dev document failed.
    #[error("dev NSM could not sign the document")]
    Signing,
}

/// Checks the NSM's own bounds on the data bound into a document.
pub(crate) fn check_bound(field: &'static str, value: Option<&[u8]>) -> Result<(), NsmError> {
    match value {
        Some(v) if v.len() > MAX_BOUND_DATA_LEN => Err(NsmError::InputTooLarge {
            field,
            len: v.len(),
            max: MAX_BOUND_DATA_LEN,
        }),
        _ => Ok(()),
    }
}

pub(crate) fn check_random_len(n: usize) -> Result<(), NsmError> {
    if n > MAX_RANDOM_LEN {
        return Err(NsmError::InputTooLarge {
            field: "random length",
            len: n,
            max: MAX_RANDOM_LEN,
        });
    }
    Ok(())
}

/// The Nitro Secure Module of the running enclave, through `/dev/nsm`.
///
/// One device handle is opened once and shared: the driver serializes concurrent requests.
/// Every call is a blocking `ioctl`; from async code, call it inside `spawn_blocking`
/// (the type is `Send + Sync`, share it in an `Arc`).
#[derive(Debug)]
pub struct RealNsm {
    device: File,
}

impl RealNsm {
    /// The NSM device inside a Nitro Enclave.
    pub const DEVICE: &'static str = "/dev/nsm";

    /// Opens [`RealNsm::DEVICE`].
    ///
    /// # Errors
    ///
    /// [`NsmError::Unavailable`] when the device does not exist (outside an enclave) or cannot
    /// be opened.
    pub fn open() -> Result<Self, NsmError> {
        Self::open_at(Path::new(Self::DEVICE))
    }

    /// Opens the NSM device at `path` (read-write, as the NSM library's `nsm_init` does; the
    /// handle is ours, so the open error is reported and the descriptor is closed on drop).
    ///
    /// # Errors
    ///
    /// [`NsmError::Unavailable`] when the device cannot be opened.
    pub fn open_at(path: &Path) -> Result<Self, NsmError> {
        let device = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|source| NsmError::Unavailable {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Self { device })
    }

    fn request(&self, request: Request) -> Result<Response, NsmError> {
        match nsm_process_request(self.device.as_raw_fd(), request) {
            Response::Error(code) => Err(NsmError::Device(describe(code))),
            response => Ok(response),
        }
    }
}

fn describe(code: ErrorCode) -> String {
    format!("{code:?}")
}

impl Nsm for RealNsm {
    fn attestation(
        &self,
        public_key: Option<&[u8]>,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, NsmError> {
        check_bound("public_key", public_key)?;
        check_bound("user_data", user_data)?;
        check_bound("nonce", nonce)?;
        let buf = |v: Option<&[u8]>| v.map(|v| ByteBuf::from(v.to_vec()));
        match self.request(Request::Attestation {
            user_data: buf(user_data),
            nonce: buf(nonce),
            public_key: buf(public_key),
        })? {
            Response::Attestation { document } => Ok(document),
            _ => Err(NsmError::UnexpectedResponse),
        }
    }

    fn random(&self, n: usize) -> Result<Vec<u8>, NsmError> {
        check_random_len(n)?;
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match self.request(Request::GetRandom)? {
                // An empty answer would loop forever: treat it as a device fault.
                Response::GetRandom { random } if !random.is_empty() => {
                    let take = random.len().min(n - out.len());
                    out.extend_from_slice(&random[..take]);
                }
                _ => return Err(NsmError::UnexpectedResponse),
            }
        }
        Ok(out)
    }

    fn is_dev(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_nsm_is_unavailable_outside_an_enclave() {
        if Path::new(RealNsm::DEVICE).exists() {
            return; // inside a Nitro Enclave: nothing to assert here
        }
        let err = RealNsm::open().expect_err("no /dev/nsm here");
        assert!(matches!(err, NsmError::Unavailable { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("/dev/nsm") && message.contains("Nitro Enclave"),
            "{message}"
        );
    }

    #[test]
    fn open_at_reports_the_path() {
        let err = RealNsm::open_at(Path::new("/nonexistent/nsm")).expect_err("absent");
        assert!(err.to_string().contains("/nonexistent/nsm"));
    }

    #[test]
    fn a_non_nsm_device_fails_cleanly() {
        // A regular file answers the NSM ioctl with ENOTTY: an error, not a panic or a hang.
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let nsm = RealNsm::open_at(file.path()).expect("opens");
        assert!(!nsm.is_dev());
        assert!(matches!(nsm.random(16), Err(NsmError::Device(_))));
        assert!(matches!(
            nsm.attestation(None, None, None),
            Err(NsmError::Device(_))
        ));
        assert!(matches!(
            nsm.attestation(Some(&[0; 1025]), None, None),
            Err(NsmError::InputTooLarge {
                field: "public_key",
                ..
            })
        ));
        assert!(matches!(
            nsm.random(MAX_RANDOM_LEN + 1),
            Err(NsmError::InputTooLarge { .. })
        ));
    }
}
