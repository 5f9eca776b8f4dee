//! The SDK's HTTP transport through a byte-forwarding proxy, with TLS ending **here**.
//!
//! An enclave has no network. It reaches KMS through AWS's `vsock-proxy` on the parent
//! instance (`vsock://3:8000`), which forwards raw TCP bytes to `kms.<region>.amazonaws.com:443`
//! and nothing else. The parent is untrusted for confidentiality, so TLS must run inside the
//! enclave: the parent must see only ciphertext, and must not be able to pose as KMS.
//!
//! [`http_client`] builds an SDK [`HttpClient`](aws_sdk_kms::config::HttpClient) whose every connection
//! 1. dials the proxy [`Endpoint`] (vsock in production, TCP or a Unix socket in tests), never
//!    the request URI's host, which the enclave could not resolve anyway;
//! 2. runs a rustls handshake with SNI = the request URI's host and verifies the certificate
//!    against the compiled-in Mozilla roots (`webpki-roots`; an enclave image has no system
//!    trust store), plus any extra roots given for tests or a private CA. Verification cannot
//!    be turned off;
//! 3. speaks HTTP/1.1 (ALPN `http/1.1`) through a pooling hyper client, so requests reuse
//!    connections and a signature does not pay a TLS handshake.
//!
//! Only `https` URIs are accepted: plain HTTP through the proxy would hand the parent the
//! request (credentials' signatures, plaintext of `Encrypt`). Dialing and the handshake are
//! each bounded by the connect timeout. Nothing reaches the stream handed to hyper before the
//! handshake has completed and the certificate was verified, so a failed verification sends
//! nothing but the ClientHello (and an alert).
//!
//! Errors are classified for the SDK's retry policy: dial failures and timeouts are transient
//! (retried), TLS and certificate failures are not (an attacker answering in KMS's place does
//! not go away by retrying); both surface as `KmsError::Unavailable` with the cause in the
//! message.

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use aws_sdk_kms::config::SharedHttpClient;
use aws_smithy_runtime_api::client::http::{
    http_client_fn, HttpConnector, HttpConnectorFuture, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_types::body::SdkBody;
use http::uri::{Scheme, Uri};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use nitro_wallet_protocol::transport::{self, BoxStream};
use nitro_wallet_protocol::Endpoint;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Idle pooled connections are closed after this long (KMS and the proxy close idle
/// connections on their own; a shorter idle time avoids reusing a half-closed one).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many idle connections are kept.
const POOL_MAX_IDLE: usize = 16;

/// An SDK HTTP client that sends every request through `proxy` with TLS verified by `tls`
/// (from [`tls_config`]).
///
/// `connect_timeout` bounds dialing the proxy and, separately, the TLS handshake. When `tls`
/// is an error, every request fails with it (no fallback to any other transport).
pub(crate) fn http_client(
    proxy: Endpoint,
    connect_timeout: Duration,
    tls: Result<Arc<ClientConfig>, ProxyError>,
) -> SharedHttpClient {
    let connector = ProxyHttpConnector::new(proxy, connect_timeout, tls);
    let shared = SharedHttpConnector::new(connector);
    // One connector (one hyper pool) for every request, whatever the SDK's settings say: the
    // timeouts are fixed at construction.
    http_client_fn(move |_settings, _components| shared.clone())
}

/// What went wrong opening a proxied connection; decides how the SDK retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProxyErrorKind {
    /// The client is misconfigured (an extra root is not a certificate). Not retried.
    Config,
    /// The request cannot go through the proxy safely (not `https`, no host). Not retried.
    Refused,
    /// The proxy could not be reached, or closed the connection during the handshake.
    /// Retried.
    Io,
    /// Dialing the proxy or the TLS handshake took longer than the connect timeout. Retried.
    Timeout,
    /// TLS failed: the certificate is not valid for the host or not from a trusted root, or
    /// the handshake was refused. Not retried.
    Tls,
}

/// A proxied connection that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub(crate) struct ProxyError {
    kind: ProxyErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl ProxyError {
    fn new(kind: ProxyErrorKind, message: String) -> ProxyError {
        ProxyError {
            kind,
            message,
            source: None,
        }
    }

    fn with_source(mut self, source: impl Into<BoxError>) -> ProxyError {
        self.source = Some(source.into());
        self
    }

    pub(crate) fn kind(&self) -> ProxyErrorKind {
        self.kind
    }
}

/// The SDK-facing connector: a pooling HTTP/1.1 hyper client over [`Dialer`].
struct ProxyHttpConnector {
    client: Client<Dialer, SdkBody>,
    proxy: Arc<Endpoint>,
}

impl fmt::Debug for ProxyHttpConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyHttpConnector")
            .field("proxy", &self.proxy.to_string())
            .finish_non_exhaustive()
    }
}

impl ProxyHttpConnector {
    fn new(
        proxy: Endpoint,
        connect_timeout: Duration,
        tls: Result<Arc<ClientConfig>, ProxyError>,
    ) -> ProxyHttpConnector {
        let proxy = Arc::new(proxy);
        let tls = tls.map(TlsConnector::from).map_err(|err| {
            tracing::error!(error = %err, "the KMS proxy transport has no TLS configuration");
            Arc::<str>::from(crate::error::chain(&err))
        });
        let dialer = Dialer {
            proxy: Arc::clone(&proxy),
            tls,
            timeout: connect_timeout,
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE)
            .build(dialer);
        ProxyHttpConnector { client, proxy }
    }
}

impl HttpConnector for ProxyHttpConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(err) => return HttpConnectorFuture::ready(Err(ConnectorError::user(err.into()))),
        };
        let response = self.client.request(request);
        HttpConnectorFuture::new(async move {
            match response.await {
                Ok(response) => HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                    .map_err(|err| ConnectorError::other(err.into(), None)),
                Err(err) => Err(connector_error(err)),
            }
        })
    }
}

/// The TLS client configuration: Mozilla's roots plus `extra_roots` (DER), TLS 1.2/1.3 with
/// aws-lc-rs, ALPN `http/1.1`, SNI on. There is no way to skip verification.
///
/// # Errors
/// [`ProxyErrorKind::Config`] when an extra root is not a usable certificate.
pub(crate) fn tls_config(extra_roots: &[Vec<u8>]) -> Result<Arc<ClientConfig>, ProxyError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    for (i, der) in extra_roots.iter().enumerate() {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|err| {
                ProxyError::new(
                    ProxyErrorKind::Config,
                    format!("extra TLS root certificate #{i} is not usable"),
                )
                .with_source(err)
            })?;
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| {
            ProxyError::new(
                ProxyErrorKind::Config,
                "TLS configuration failed".to_owned(),
            )
            .with_source(err)
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Opens one connection: dial the proxy, then TLS to the URI's host. A `tower::Service<Uri>`
/// for hyper's client.
#[derive(Clone)]
struct Dialer {
    proxy: Arc<Endpoint>,
    /// The TLS connector, or why there is none (every connection then fails with it).
    tls: Result<TlsConnector, Arc<str>>,
    timeout: Duration,
}

impl tower::Service<Uri> for Dialer {
    type Response = TokioIo<ProxiedTls>;
    type Error = ProxyError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ProxyError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let dialer = self.clone();
        Box::pin(async move { dialer.connect(&uri).await.map(TokioIo::new) })
    }
}

impl Dialer {
    async fn connect(&self, uri: &Uri) -> Result<ProxiedTls, ProxyError> {
        let server_name = server_name(uri)?;
        let tls = self
            .tls
            .as_ref()
            .map_err(|message| ProxyError::new(ProxyErrorKind::Config, message.to_string()))?;
        let host = server_name.to_str();
        let proxy = &self.proxy;
        tracing::debug!(%proxy, %host, "opening a KMS connection through the proxy");
        let stream = transport::connect(proxy, self.timeout)
            .await
            .map_err(|err| {
                let kind = if err.kind() == io::ErrorKind::TimedOut {
                    ProxyErrorKind::Timeout
                } else {
                    ProxyErrorKind::Io
                };
                ProxyError::new(kind, format!("cannot reach the KMS proxy at {proxy}"))
                    .with_source(err)
            })?;
        let handshake = tls.connect(server_name.clone(), stream);
        match tokio::time::timeout(self.timeout, handshake).await {
            Ok(Ok(tls)) => Ok(ProxiedTls(tls)),
            Ok(Err(err)) => Err(handshake_error(&host, proxy, err)),
            Err(_) => Err(ProxyError::new(
                ProxyErrorKind::Timeout,
                format!(
                    "TLS handshake with {host} through the KMS proxy at {proxy} timed out after {:?}",
                    self.timeout
                ),
            )),
        }
    }
}

/// The TLS server name of `uri`: its host, which must be reached over `https`.
fn server_name(uri: &Uri) -> Result<ServerName<'static>, ProxyError> {
    if uri.scheme() != Some(&Scheme::HTTPS) {
        return Err(ProxyError::new(
            ProxyErrorKind::Refused,
            format!(
                "refusing to send `{}` requests through the KMS proxy: only https keeps the \
                 parent from reading them",
                uri.scheme_str().unwrap_or("scheme-less")
            ),
        ));
    }
    let host = uri
        .host()
        .map(|host| host.trim_start_matches('[').trim_end_matches(']'))
        .filter(|host| !host.is_empty())
        .ok_or_else(|| {
            ProxyError::new(
                ProxyErrorKind::Refused,
                "request URI without a host".to_owned(),
            )
        })?;
    ServerName::try_from(host.to_owned()).map_err(|err| {
        ProxyError::new(
            ProxyErrorKind::Refused,
            format!("`{host}` is not a valid TLS server name"),
        )
        .with_source(err)
    })
}

/// Classifies a failed handshake: rustls errors (certificate, protocol) are TLS failures, the
/// rest (the peer hung up) is I/O.
fn handshake_error(host: &str, proxy: &Endpoint, err: io::Error) -> ProxyError {
    let tls = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls {
        Some(rustls::Error::InvalidCertificate(_)) => {
            tracing::warn!(%proxy, %host, "KMS TLS certificate rejected");
            ProxyError::new(
                ProxyErrorKind::Tls,
                format!("TLS certificate verification failed for {host} (via {proxy})"),
            )
            .with_source(err)
        }
        Some(_) => ProxyError::new(
            ProxyErrorKind::Tls,
            format!("TLS handshake with {host} failed (via {proxy})"),
        )
        .with_source(err),
        None => ProxyError::new(
            ProxyErrorKind::Io,
            format!("TLS handshake with {host} failed: the KMS proxy at {proxy} hung up"),
        )
        .with_source(err),
    }
}

/// Folds a hyper client error into the SDK's [`ConnectorError`], which decides retries.
fn connector_error(err: hyper_util::client::legacy::Error) -> ConnectorError {
    let make: fn(BoxError) -> ConnectorError = if let Some(proxy) = find::<ProxyError>(&err) {
        match proxy.kind() {
            ProxyErrorKind::Timeout => ConnectorError::timeout,
            ProxyErrorKind::Io => ConnectorError::io,
            ProxyErrorKind::Refused | ProxyErrorKind::Config => ConnectorError::user,
            ProxyErrorKind::Tls => |err| ConnectorError::other(err, None),
        }
    } else if let Some(hyper) = find::<hyper::Error>(&err) {
        if hyper.is_timeout() {
            ConnectorError::timeout
        } else if hyper.is_closed()
            || hyper.is_canceled()
            || hyper.is_incomplete_message()
            || find::<io::Error>(hyper).is_some()
        {
            // A pooled connection the other side closed: safe to retry on a new one.
            ConnectorError::io
        } else if hyper.is_user() {
            ConnectorError::user
        } else {
            |err| ConnectorError::other(err, None)
        }
    } else if err.is_connect() {
        ConnectorError::io
    } else {
        |err| ConnectorError::other(err, None)
    };
    make(Box::new(err))
}

/// The first error of type `E` in `err`'s source chain.
fn find<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<E>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// A verified TLS stream over the proxy transport, as hyper's connection type.
struct ProxiedTls(TlsStream<BoxStream>);

impl Connection for ProxiedTls {
    fn connected(&self) -> Connected {
        // Not `proxy(true)`: the proxy forwards bytes, so requests keep the origin form.
        Connected::new()
    }
}

impl AsyncRead for ProxiedTls {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ProxiedTls {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::SocketAddr;
    use std::time::Instant;

    use tokio::net::TcpListener;

    fn dialer(proxy: Endpoint, timeout: Duration) -> Dialer {
        Dialer {
            proxy: Arc::new(proxy),
            tls: Ok(TlsConnector::from(tls_config(&[]).expect("tls config"))),
            timeout,
        }
    }

    fn uri(s: &str) -> Uri {
        s.parse().expect("uri")
    }

    #[test]
    fn server_name_is_the_https_host() {
        let name = server_name(&uri("https://kms.eu-west-1.amazonaws.com/")).expect("name");
        assert_eq!(name.to_str(), "kms.eu-west-1.amazonaws.com");
        let name = server_name(&uri("https://kms-fips.us-east-1.amazonaws.com:443/")).expect("n");
        assert_eq!(name.to_str(), "kms-fips.us-east-1.amazonaws.com");
        assert!(matches!(
            server_name(&uri("https://[::1]:8443/")).expect("ip"),
            ServerName::IpAddress(_)
        ));
        for refused in ["http://kms.us-east-1.amazonaws.com/", "/relative"] {
            let err = server_name(&uri(refused)).expect_err(refused);
            assert_eq!(err.kind(), ProxyErrorKind::Refused, "{refused}");
        }
    }

    #[test]
    fn extra_roots_must_be_certificates() {
        let err = tls_config(&[b"not a certificate".to_vec()]).expect_err("garbage root");
        assert_eq!(err.kind(), ProxyErrorKind::Config);
        assert!(err.to_string().contains("root certificate"), "{err}");
        let config = tls_config(&[]).expect("default");
        assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(config.enable_sni);
    }

    /// Plain HTTP is refused before anything is dialed.
    #[tokio::test]
    async fn http_is_refused_without_dialing() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let err = dialer(Endpoint::Tcp(addr), Duration::from_secs(1))
            .connect(&uri("http://kms.us-east-1.amazonaws.com/"))
            .await
            .err()
            .expect("refused");
        assert_eq!(err.kind(), ProxyErrorKind::Refused);
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "nothing may be dialed");
    }

    /// A proxy that accepts but never answers the ClientHello: the handshake is bounded.
    #[tokio::test]
    async fn silent_proxy_times_out_the_handshake() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let hold = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("accept");
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(socket);
        });
        let started = Instant::now();
        let err = dialer(Endpoint::Tcp(addr), Duration::from_millis(300))
            .connect(&uri("https://kms.us-east-1.amazonaws.com/"))
            .await
            .err()
            .expect("times out");
        assert_eq!(err.kind(), ProxyErrorKind::Timeout);
        assert!(err.to_string().contains("TLS handshake"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        hold.abort();
    }

    /// A proxy that hangs up at once: I/O (retried), not a certificate failure.
    #[tokio::test]
    async fn hang_up_is_io() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let (socket, _) = listener.accept().await.expect("accept");
            drop(socket);
        });
        let err = dialer(Endpoint::Tcp(addr), Duration::from_secs(2))
            .connect(&uri("https://kms.us-east-1.amazonaws.com/"))
            .await
            .err()
            .expect("hang up");
        assert_eq!(err.kind(), ProxyErrorKind::Io, "{err}");
    }

    #[tokio::test]
    async fn refused_proxy_is_io() {
        let addr: SocketAddr = {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listener.local_addr().expect("addr")
        };
        let err = dialer(Endpoint::Tcp(addr), Duration::from_secs(2))
            .connect(&uri("https://kms.us-east-1.amazonaws.com/"))
            .await
            .err()
            .expect("refused");
        assert_eq!(err.kind(), ProxyErrorKind::Io);
        assert!(
            err.to_string().contains("cannot reach the KMS proxy"),
            "{err}"
        );
    }

    /// The production path: the same code with a vsock dial. There is no AF_VSOCK loopback
    /// here, so it can only fail, but it must fail as a dial error, not panic.
    #[tokio::test]
    async fn vsock_proxy_uses_the_same_path() {
        let proxy = Endpoint::Vsock { cid: 3, port: 8000 };
        let err = dialer(proxy, Duration::from_millis(500))
            .connect(&uri("https://kms.us-east-1.amazonaws.com/"))
            .await
            .err()
            .expect("no vsock parent here");
        assert!(
            matches!(err.kind(), ProxyErrorKind::Io | ProxyErrorKind::Timeout),
            "{err:?}"
        );
        assert!(err.to_string().contains("vsock://3:8000"), "{err}");
    }

    /// Without a TLS configuration every connection fails, before anything is dialed.
    #[tokio::test]
    async fn no_tls_config_no_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let tls = tls_config(&[b"garbage".to_vec()]);
        let dialer = Dialer {
            proxy: Arc::new(Endpoint::Tcp(addr)),
            tls: tls
                .map(TlsConnector::from)
                .map_err(|e| Arc::from(e.to_string())),
            timeout: Duration::from_secs(1),
        };
        let err = dialer
            .connect(&uri("https://kms.us-east-1.amazonaws.com/"))
            .await
            .err()
            .expect("no tls");
        assert_eq!(err.kind(), ProxyErrorKind::Config);
        let accepted = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        assert!(accepted.is_err(), "nothing may be dialed");
    }

    #[test]
    fn debug_names_the_proxy_only() {
        let connector = ProxyHttpConnector::new(
            Endpoint::Vsock { cid: 3, port: 8000 },
            Duration::from_secs(1),
            tls_config(&[]),
        );
        assert_eq!(
            format!("{connector:?}"),
            "ProxyHttpConnector { proxy: \"vsock://3:8000\", .. }"
        );
    }
}
