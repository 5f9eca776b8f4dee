//! TLS for the API: a configured certificate, or a generated self-signed one.

use crate::fsutil::{write_private, Existing};
use axum_server::tls_rustls::RustlsConfig;
use std::path::{Path, PathBuf};

/// Installs aws-lc-rs as the process's rustls provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Loads `cert` and `key` (PEM).
///
/// # Errors
/// When the files cannot be read or parsed.
pub async fn load(cert: &Path, key: &Path) -> std::io::Result<RustlsConfig> {
    install_crypto_provider();
    RustlsConfig::from_pem_file(cert, key).await
}

/// The self-signed certificate in `dir` (`cert.pem`, `key.pem`), generated for `localhost`
/// and `127.0.0.1` on first use. Returns the config and the certificate's path, which clients
/// can trust explicitly (`curl --cacert`).
///
/// # Errors
/// When the files cannot be written or read.
pub async fn self_signed(dir: &Path) -> std::io::Result<(RustlsConfig, PathBuf)> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if !cert_path.exists() || !key_path.exists() {
        std::fs::create_dir_all(dir)?;
        let names = vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ];
        let generated = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
        write_private(
            &key_path,
            generated.key_pair.serialize_pem().as_bytes(),
            Existing::Replace,
        )?;
        std::fs::write(&cert_path, generated.cert.pem())?;
        tracing::info!(cert = %cert_path.display(), "generated a self-signed TLS certificate");
    }
    Ok((load(&cert_path, &key_path).await?, cert_path))
}
