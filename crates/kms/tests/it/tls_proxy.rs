//! `KmsClient` through a byte-forwarding proxy (`KmsConfig::proxy`), the way the enclave
//! reaches KMS through AWS's vsock-proxy, with TLS ending in the client.
//!
//! There is no AF_VSOCK loopback here, so the proxy is `tcp://127.0.0.1:…`: a TLS-terminating
//! forwarder that plays `kms.us-east-1.amazonaws.com` (a certificate from a test CA) in front
//! of the plain-HTTP emulator. No endpoint override is set, so the SDK targets
//! `https://kms.us-east-1.amazonaws.com` and only the dial goes elsewhere. The forwarder records
//! the SNI and every byte the client sent, to show that a certificate the client refuses gets
//! nothing but a ClientHello.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use nitro_wallet_kms::emulator::DEFAULT_ALIAS;
use nitro_wallet_kms::{CredentialsCell, KmsClient, KmsConfig, KmsError};
use nitro_wallet_protocol::Endpoint;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::Acceptor;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::LazyConfigAcceptor;

use crate::common::{ctx, start_in, test_credentials};

const KMS_HOST: &str = "kms.us-east-1.amazonaws.com";
const SECRET: &[u8] = b"proxied secret key material 0123";

/// A test certificate authority.
struct TestCa {
    cert: Certificate,
    key: KeyPair,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("ca key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("ca cert");
        TestCa { cert, key }
    }

    fn der(&self) -> Vec<u8> {
        self.cert.der().to_vec()
    }

    /// A TLS server configuration with a certificate for `dns_name` issued by this CA.
    fn server_config(&self, dns_name: &str) -> Arc<ServerConfig> {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec![dns_name.to_owned()]).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, dns_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("leaf cert");
        let chain = vec![leaf.der().clone(), self.cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// What the forwarder saw.
#[derive(Debug, Default)]
struct Seen {
    /// The SNI of every ClientHello.
    server_names: Vec<Option<String>>,
    /// Completed handshakes (connections forwarded to the emulator).
    handshakes: usize,
    /// Every byte each client connection sent, raw.
    raw: Vec<Arc<Mutex<Vec<u8>>>>,
}

/// A TLS-terminating forwarder to the emulator, standing in for vsock-proxy plus KMS's TLS.
struct Forwarder {
    addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Forwarder {
    async fn start(config: Arc<ServerConfig>, backend: SocketAddr) -> Forwarder {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(forward(
                    socket,
                    Arc::clone(&config),
                    backend,
                    Arc::clone(&shared),
                ));
            }
        });
        Forwarder { addr, seen, task }
    }

    fn proxy(&self) -> Endpoint {
        Endpoint::Tcp(self.addr)
    }

    fn server_names(&self) -> Vec<Option<String>> {
        self.seen.lock().expect("seen").server_names.clone()
    }

    fn handshakes(&self) -> usize {
        self.seen.lock().expect("seen").handshakes
    }

    fn raw(&self) -> Vec<Vec<u8>> {
        let seen = self.seen.lock().expect("seen");
        seen.raw
            .iter()
            .map(|bytes| bytes.lock().expect("raw").clone())
            .collect()
    }
}

async fn forward(
    socket: TcpStream,
    config: Arc<ServerConfig>,
    backend: SocketAddr,
    seen: Arc<Mutex<Seen>>,
) {
    let log = Arc::new(Mutex::new(Vec::new()));
    seen.lock().expect("seen").raw.push(Arc::clone(&log));
    let socket = Recording { inner: socket, log };
    let Ok(start) = LazyConfigAcceptor::new(Acceptor::default(), socket).await else {
        return;
    };
    let server_name = start.client_hello().server_name().map(str::to_owned);
    seen.lock().expect("seen").server_names.push(server_name);
    match start.into_stream(config).into_fallible().await {
        Ok(mut tls) => {
            seen.lock().expect("seen").handshakes += 1;
            let mut upstream = TcpStream::connect(backend).await.expect("emulator");
            let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
        }
        Err((_, mut socket)) => {
            // Keep reading (and recording) whatever else the client sends until it hangs up.
            let mut rest = Vec::new();
            let _ =
                tokio::time::timeout(Duration::from_secs(2), socket.read_to_end(&mut rest)).await;
        }
    }
}

/// A socket that records every byte read from it.
struct Recording {
    inner: TcpStream,
    log: Arc<Mutex<Vec<u8>>>,
}

impl AsyncRead for Recording {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if polled.is_ready() {
            let new = buf.filled()[before..].to_vec();
            self.log.lock().expect("log").extend_from_slice(&new);
        }
        polled
    }
}

impl AsyncWrite for Recording {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Asserts that `raw` (what a client sent on one connection) is a TLS ClientHello followed at
/// most by a ChangeCipherSpec and an alert: no room for any HTTP request.
fn assert_only_client_hello(raw: &[u8]) {
    let mut records = Vec::new();
    let mut rest = raw;
    while rest.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        assert!(rest.len() >= 5 + len, "truncated record in {raw:02x?}");
        records.push((rest[0], &rest[5..5 + len]));
        rest = &rest[5 + len..];
    }
    assert!(rest.is_empty(), "trailing bytes: {rest:02x?}");
    let ((content_type, hello), others) = records.split_first().expect("a ClientHello");
    assert_eq!(*content_type, 0x16, "first record is a handshake record");
    assert_eq!(hello.first(), Some(&0x01), "first message is a ClientHello");
    for (content_type, payload) in others {
        match content_type {
            // ChangeCipherSpec (TLS 1.3 middlebox compatibility).
            0x14 => assert_eq!(payload.len(), 1),
            // Plaintext alert (TLS 1.2).
            0x15 => assert_eq!(payload.len(), 2),
            // TLS 1.3 encrypted alert: 2 bytes, content type and a 16-byte tag.
            0x17 => assert!(payload.len() <= 32, "{} bytes of data", payload.len()),
            other => panic!("unexpected record type {other:#x} after the ClientHello"),
        }
    }
    for needle in [b"POST".as_slice(), b"amz", b"Authorization", SECRET] {
        assert!(
            !raw.windows(needle.len()).any(|w| w == needle),
            "plaintext on the wire"
        );
    }
}

fn proxied_config(proxy: Endpoint) -> KmsConfig {
    KmsConfig {
        region: "us-east-1".to_owned(),
        endpoint: None,
        proxy: Some(proxy),
    }
}

fn credentials() -> CredentialsCell {
    let cell = CredentialsCell::new();
    cell.set(test_credentials());
    cell
}

fn backend_addr(endpoint: &str) -> SocketAddr {
    endpoint
        .trim_start_matches("http://")
        .parse()
        .expect("emulator address")
}

#[tokio::test]
async fn round_trip_through_the_proxy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let ca = TestCa::new("nitro-wallet test CA");
    let forwarder =
        Forwarder::start(ca.server_config(KMS_HOST), backend_addr(&server.endpoint)).await;
    let kms = KmsClient::with_extra_roots(
        &proxied_config(forwarder.proxy()),
        credentials(),
        &[ca.der()],
    )
    .expect("client");

    let context = ctx(&[("address", "0x52908400098527886E0F7030069857D2E4169EE7")]);
    let blob = kms
        .encrypt(DEFAULT_ALIAS, SECRET, &context)
        .await
        .expect("encrypt through the proxy");
    let plain = kms
        .decrypt(Some(DEFAULT_ALIAS), &blob, &context)
        .await
        .expect("decrypt through the proxy");
    assert_eq!(&plain[..], SECRET);
    let random = kms.generate_random(32).await.expect("random");
    assert_eq!(random.len(), 32);

    // SNI is the real KMS host, and the three calls shared one pooled connection.
    assert_eq!(forwarder.server_names(), vec![Some(KMS_HOST.to_owned())]);
    assert_eq!(forwarder.handshakes(), 1);
    // The proxy saw only ciphertext.
    for raw in forwarder.raw() {
        for needle in [b"POST".as_slice(), b"Authorization", SECRET] {
            assert!(!raw.windows(needle.len()).any(|w| w == needle));
        }
    }
    server.stop().await;
}

/// A certificate for another name, from a trusted CA: refused, not retried, nothing sent.
#[tokio::test]
async fn certificate_for_another_name_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let ca = TestCa::new("nitro-wallet test CA");
    let forwarder = Forwarder::start(
        ca.server_config("kms.eu-west-1.amazonaws.com"),
        backend_addr(&server.endpoint),
    )
    .await;
    let kms = KmsClient::with_extra_roots(
        &proxied_config(forwarder.proxy()),
        credentials(),
        &[ca.der()],
    )
    .expect("client");

    let err = kms
        .encrypt(DEFAULT_ALIAS, SECRET, &ctx(&[]))
        .await
        .expect_err("wrong name");
    assert_tls_refusal(&err);
    assert_eq!(forwarder.server_names(), vec![Some(KMS_HOST.to_owned())]);
    assert_eq!(forwarder.handshakes(), 0);
    let raw = forwarder.raw();
    assert_eq!(raw.len(), 1, "a certificate failure is not retried");
    assert_only_client_hello(&raw[0]);
    server.stop().await;
}

/// A certificate for the right name from a CA that is not trusted: refused by the production
/// constructor (Mozilla roots only) and by a client trusting another CA.
#[tokio::test]
async fn certificate_from_an_untrusted_ca_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let rogue = TestCa::new("rogue CA");
    let trusted = TestCa::new("nitro-wallet test CA");
    let forwarder = Forwarder::start(
        rogue.server_config(KMS_HOST),
        backend_addr(&server.endpoint),
    )
    .await;
    let production = KmsClient::new(&proxied_config(forwarder.proxy()), credentials());
    let other_root = KmsClient::with_extra_roots(
        &proxied_config(forwarder.proxy()),
        credentials(),
        &[trusted.der()],
    )
    .expect("client");

    for kms in [production, other_root] {
        let err = kms
            .encrypt(DEFAULT_ALIAS, SECRET, &ctx(&[]))
            .await
            .expect_err("untrusted CA");
        assert_tls_refusal(&err);
    }
    assert_eq!(forwarder.handshakes(), 0);
    let raw = forwarder.raw();
    assert_eq!(raw.len(), 2);
    for raw in &raw {
        assert_only_client_hello(raw);
    }
    server.stop().await;
}

fn assert_tls_refusal(err: &KmsError) {
    assert!(matches!(err, KmsError::Unavailable(_)), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("TLS certificate verification failed") && message.contains(KMS_HOST),
        "{message}"
    );
}

/// A proxy that refuses connections: `Unavailable` within the operation timeout, retries
/// included.
#[tokio::test]
async fn refused_proxy_is_unavailable() {
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr")
    };
    let kms = KmsClient::new(&proxied_config(Endpoint::Tcp(addr)), credentials());
    let started = Instant::now();
    let err = kms
        .encrypt(DEFAULT_ALIAS, SECRET, &ctx(&[]))
        .await
        .expect_err("refused");
    assert!(
        started.elapsed() < Duration::from_secs(11),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(err, KmsError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains("cannot reach the KMS proxy"),
        "{err}"
    );
}

/// Plain HTTP through the proxy is refused: the parent would read every request.
#[tokio::test]
async fn http_endpoint_through_the_proxy_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let config = KmsConfig {
        region: "us-east-1".to_owned(),
        endpoint: Some("http://kms.us-east-1.amazonaws.com".to_owned()),
        proxy: Some(Endpoint::Tcp(listener.local_addr().expect("addr"))),
    };
    let kms = KmsClient::new(&config, credentials());
    let err = kms
        .encrypt(DEFAULT_ALIAS, SECRET, &ctx(&[]))
        .await
        .expect_err("plain http");
    assert!(err.to_string().contains("only https"), "{err}");
    let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
    assert!(accepted.is_err(), "nothing may be dialed");
}

/// An `https` endpoint override through the proxy: SNI and verification follow its host.
#[tokio::test]
async fn endpoint_override_sets_the_server_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let ca = TestCa::new("nitro-wallet test CA");
    let host = "kms-fips.us-east-1.amazonaws.com";
    let forwarder = Forwarder::start(ca.server_config(host), backend_addr(&server.endpoint)).await;
    let config = KmsConfig {
        region: "us-east-1".to_owned(),
        endpoint: Some(format!("https://{host}")),
        proxy: Some(forwarder.proxy()),
    };
    let kms = KmsClient::with_extra_roots(&config, credentials(), &[ca.der()]).expect("client");
    let random = kms.generate_random(16).await.expect("random");
    assert_eq!(random.len(), 16);
    assert_eq!(forwarder.server_names(), vec![Some(host.to_owned())]);
    server.stop().await;
}

#[test]
fn extra_roots_need_a_proxy_and_certificates() {
    let ca = TestCa::new("nitro-wallet test CA");
    let direct = KmsConfig {
        region: "us-east-1".to_owned(),
        endpoint: None,
        proxy: None,
    };
    let err =
        KmsClient::with_extra_roots(&direct, credentials(), &[ca.der()]).expect_err("no proxy");
    assert!(matches!(err, KmsError::Other(_)), "{err:?}");
    let proxied = proxied_config("vsock://3:8000".parse().expect("endpoint"));
    let err = KmsClient::with_extra_roots(&proxied, credentials(), &[b"junk".to_vec()])
        .expect_err("junk root");
    assert!(matches!(err, KmsError::Other(_)), "{err:?}");
    assert!(KmsClient::with_extra_roots(&proxied, credentials(), &[ca.der()]).is_ok());
}
