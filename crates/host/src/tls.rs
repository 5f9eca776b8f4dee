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

/// Mutual TLS: asks callers for a client certificate issued by the CAs in `ca_pem` and
/// verifies it, on top of the server certificate already in `config`. With `required`, a
/// handshake without a valid certificate fails; otherwise a caller without one is let through
/// to present a bearer token instead (a certificate that is there but invalid always fails).
///
/// # Errors
/// When the CA file cannot be read, holds no certificate, or one is not a usable trust anchor.
pub fn with_client_auth(
    config: &RustlsConfig,
    ca_pem: &Path,
    required: bool,
) -> std::io::Result<RustlsConfig> {
    use rustls::pki_types::{pem::PemObject as _, CertificateDer};
    install_crypto_provider();
    let shown = ca_pem.display();
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_pem)
        .map_err(|e| std::io::Error::other(format!("client CA {shown}: {e}")))?;
    for cert in certs {
        let cert = cert.map_err(|e| std::io::Error::other(format!("client CA {shown}: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| std::io::Error::other(format!("client CA {shown}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(std::io::Error::other(format!(
            "client CA {shown}: no PEM certificate in the file"
        )));
    }
    let builder = rustls::server::WebPkiClientVerifier::builder(roots.into());
    let verifier = if required {
        builder.build()
    } else {
        builder.allow_unauthenticated().build()
    }
    .map_err(|e| std::io::Error::other(format!("client CA {shown}: {e}")))?;
    let base = config.get_inner();
    let mut server = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(base.cert_resolver.clone());
    server.alpn_protocols = base.alpn_protocols.clone();
    Ok(RustlsConfig::from_config(std::sync::Arc::new(server)))
}

/// The verified client certificate of a connection, as handlers see it (a request extension
/// put there by [`ClientCertAcceptor`]; absent when the caller presented none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    /// The subject's common name, when it has one (what `[[auth.client_certs]]` maps).
    pub common_name: Option<std::sync::Arc<str>>,
}

impl ClientCert {
    /// Reads the subject common name of a DER certificate that rustls has already verified
    /// (anything else yields no name, never a panic: fuzzed by `client_certificate`).
    pub fn from_der(der: &[u8]) -> ClientCert {
        use x509_cert::der::{
            asn1::{PrintableStringRef, Utf8StringRef},
            oid::db::rfc4519::COMMON_NAME,
            Decode as _,
        };
        let common_name = x509_cert::Certificate::from_der(der).ok().and_then(|cert| {
            let names: Vec<String> = cert
                .tbs_certificate
                .subject
                .0
                .iter()
                .flat_map(|rdn| rdn.0.iter())
                .filter(|atv| atv.oid == COMMON_NAME)
                .filter_map(|atv| {
                    atv.value
                        .decode_as::<Utf8StringRef<'_>>()
                        .map(|s| s.as_str().to_owned())
                        .or_else(|_| {
                            atv.value
                                .decode_as::<PrintableStringRef<'_>>()
                                .map(|s| s.as_str().to_owned())
                        })
                        .ok()
                })
                .collect();
            // A subject with two common names names nobody: it maps to no token.
            match <[String; 1]>::try_from(names) {
                Ok([name]) => Some(name.into()),
                Err(_) => None,
            }
        });
        ClientCert { common_name }
    }
}

/// TLS acceptor that hands the verified client certificate, if any, to every request of the
/// connection as a [`ClientCert`] extension.
#[derive(Debug, Clone)]
pub struct ClientCertAcceptor(axum_server::tls_rustls::RustlsAcceptor);

impl ClientCertAcceptor {
    /// Terminates TLS with `config`.
    pub fn new(config: RustlsConfig) -> ClientCertAcceptor {
        ClientCertAcceptor(axum_server::tls_rustls::RustlsAcceptor::new(config))
    }
}

impl<S> axum_server::accept::Accept<tokio::net::TcpStream, S> for ClientCertAcceptor
where
    S: Send + 'static,
{
    type Stream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Service =
        axum::middleware::AddExtension<axum_server::tls::TlsService<S>, Option<ClientCert>>;
    type Future = std::pin::Pin<
        Box<
            dyn std::future::Future<Output = std::io::Result<(Self::Stream, Self::Service)>> + Send,
        >,
    >;

    fn accept(&self, stream: tokio::net::TcpStream, service: S) -> Self::Future {
        use tower::Layer as _;
        let handshake = self.0.accept(stream, service);
        Box::pin(async move {
            let (stream, service) = handshake.await?;
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| ClientCert::from_der(leaf));
            Ok((stream, axum::Extension(cert).layer(service)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ClientCert;

    fn name(der: &[u8]) -> Option<String> {
        ClientCert::from_der(der).common_name.map(|n| n.to_string())
    }

    #[test]
    fn the_single_subject_common_name_or_none() {
        // Made by OpenSSL (fuzz/seeds/client_certificate): CN=payments.internal with O=Acme,
        // CN=a and CN=b, and a subject without a CN.
        let seeds = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fuzz/seeds/client_certificate/"
        );
        let read = |f: &str| std::fs::read(format!("{seeds}{f}")).expect("seed");
        assert_eq!(
            name(&read("one_cn.der")).as_deref(),
            Some("payments.internal")
        );
        assert_eq!(name(&read("two_cns.der")), None, "two names name nobody");
        assert_eq!(name(&read("no_cn.der")), None);
        assert_eq!(name(b""), None);
        assert_eq!(name(&read("one_cn.der")[..100]), None, "truncated");
    }
}
