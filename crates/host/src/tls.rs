//! TLS for the API: a configured certificate, or a generated self-signed one.

use crate::fsutil::{write_private, Existing};
use axum_server::tls_rustls::RustlsConfig;
use std::path::{Path, PathBuf};

/// Installs aws-lc-rs as the process's rustls provider (idempotent).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// TLS sessions the server remembers for clients that resume by session id (TLS 1.2);
/// TLS 1.3 clients resume with stateless tickets and cost the server no memory.
const SESSION_CACHE: usize = 4096;

/// Loads `cert` and `key` (PEM): HTTP/2 and HTTP/1.1 by ALPN, with session resumption
/// (TLS 1.3 tickets and a TLS 1.2 session cache).
///
/// # Errors
/// When the files cannot be read or parsed.
pub async fn load(cert: &Path, key: &Path) -> std::io::Result<RustlsConfig> {
    install_crypto_provider();
    let (cert, key) = (cert.to_owned(), key.to_owned());
    let config = tokio::task::spawn_blocking(move || server_config(&cert, &key))
        .await
        .map_err(std::io::Error::other)??;
    Ok(RustlsConfig::from_config(std::sync::Arc::new(config)))
}

fn server_config(cert: &Path, key: &Path) -> std::io::Result<rustls::ServerConfig> {
    use rustls::pki_types::{pem::PemObject as _, CertificateDer, PrivateKeyDer};
    // The messages name the files and the PEM error, never their contents.
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| std::io::Error::other(format!("TLS certificate {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| std::io::Error::other(format!("TLS key {}: {e}", key.display())))?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| std::io::Error::other(format!("TLS certificate and key: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    enable_resumption(&mut config)?;
    Ok(config)
}

/// Lets returning clients skip the certificate and key exchange's signature: TLS 1.3 tickets
/// (sealed with a key made in this process and rotated by rustls; resumption always runs a
/// fresh ECDHE exchange, and 0-RTT stays off) and a bounded session-id cache for TLS 1.2.
/// CLI calls, `cast` and scripts that open a connection per request pay the full handshake
/// once.
fn enable_resumption(config: &mut rustls::ServerConfig) -> std::io::Result<()> {
    config.session_storage = rustls::server::ServerSessionMemoryCache::new(SESSION_CACHE);
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()
        .map_err(|e| std::io::Error::other(format!("TLS session tickets: {e}")))?;
    Ok(())
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
    // The same ticket key and cache: a session resumes with its client certificate.
    server.session_storage = base.session_storage.clone();
    server.ticketer = base.ticketer.clone();
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
pub struct ClientCertAcceptor(
    axum_server::tls_rustls::RustlsAcceptor<axum_server::accept::NoDelayAcceptor>,
);

impl ClientCertAcceptor {
    /// Terminates TLS with `config` on connections with `TCP_NODELAY` set: an answer is sent
    /// when it is ready. Without it, Nagle's algorithm held a small write back until the
    /// client acknowledged the previous one, and clients delay acknowledgements by up to
    /// 40 ms: that was the p99 of the HTTP/2 benchmark.
    pub fn new(config: RustlsConfig) -> ClientCertAcceptor {
        ClientCertAcceptor(
            axum_server::tls_rustls::RustlsAcceptor::new(config)
                .acceptor(axum_server::accept::NoDelayAcceptor::new()),
        )
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
    #![allow(clippy::unwrap_used)]
    use super::ClientCert;
    use rustls::{pki_types::ServerName, ClientConfig, HandshakeKind};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    /// One connection to `server` with `client`: how its handshake went.
    async fn handshake(
        server: &Arc<rustls::ServerConfig>,
        client: &Arc<ClientConfig>,
    ) -> HandshakeKind {
        let (near, far) = tokio::io::duplex(64 * 1024);
        let acceptor = tokio_rustls::TlsAcceptor::from(server.clone());
        let serving = tokio::spawn(async move {
            let mut tls = acceptor.accept(far).await.unwrap();
            tls.write_all(b"ok").await.unwrap();
            tls.shutdown().await.unwrap();
        });
        let tls = read_to_end(client, near, b"ok").await;
        serving.await.unwrap();
        tls.get_ref().1.handshake_kind().unwrap()
    }

    /// Connects to "localhost" over `stream` with `client` and reads until the server closes,
    /// expecting `expected`; reading to the end takes in the TLS 1.3 tickets sent after the
    /// handshake.
    async fn read_to_end<S>(
        client: &Arc<ClientConfig>,
        stream: S,
        expected: &[u8],
    ) -> tokio_rustls::client::TlsStream<S>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let name = ServerName::try_from("localhost").unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(client.clone())
            .connect(name, stream)
            .await
            .unwrap();
        let mut answer = Vec::new();
        tls.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer, expected);
        tls
    }

    /// A client (with its own session store) trusting `roots`, speaking only `version`.
    fn client(
        roots: &rustls::RootCertStore,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> Arc<ClientConfig> {
        Arc::new(
            ClientConfig::builder_with_protocol_versions(&[version])
                .with_root_certificates(roots.clone())
                .with_no_client_auth(),
        )
    }

    #[tokio::test]
    async fn accepted_connections_send_without_delay() {
        use axum_server::accept::Accept as _;
        let dir = tempfile::tempdir().unwrap();
        let (config, cert) = super::self_signed(dir.path()).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = client(&roots(&cert), &rustls::version::TLS13);
        let connecting = tokio::spawn(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            read_to_end(&client, tcp, b"").await;
        });
        let (tcp, _) = listener.accept().await.unwrap();
        assert!(!tcp.nodelay().unwrap(), "off until the acceptor sets it");
        let (mut tls, _service) = super::ClientCertAcceptor::new(config)
            .accept(tcp, ())
            .await
            .unwrap();
        assert!(tls.get_ref().0.nodelay().unwrap());
        tls.shutdown().await.unwrap();
        connecting.await.unwrap();
    }

    fn roots(cert: &std::path::Path) -> rustls::RootCertStore {
        use rustls::pki_types::{pem::PemObject as _, CertificateDer};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(cert).unwrap())
            .unwrap();
        roots
    }

    #[tokio::test]
    async fn returning_clients_resume_their_session() {
        let dir = tempfile::tempdir().unwrap();
        let (config, cert) = super::self_signed(dir.path()).await.unwrap();
        let server = config.get_inner();
        assert!(server.ticketer.enabled(), "TLS 1.3 stateless tickets");
        let roots = roots(&cert);
        for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
            let returning = client(&roots, version);
            assert_eq!(handshake(&server, &returning).await, HandshakeKind::Full);
            for _ in 0..3 {
                assert_eq!(
                    handshake(&server, &returning).await,
                    HandshakeKind::Resumed,
                    "{version:?}"
                );
            }
            // A client without the ticket (another process) gets a full handshake.
            assert_eq!(
                handshake(&server, &client(&roots, version)).await,
                HandshakeKind::Full
            );
        }
    }

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
