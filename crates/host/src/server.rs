//! Assembles the API from a [`Config`] and runs it over HTTPS until shutdown.

use crate::{
    api::{self, auth::Tokens, AppState, Limits},
    config::{Config, CredentialsConfig, KeyStoreConfig},
    enclave_client::{ClientTimeouts, EnclaveClient, OnConnect},
    keystore::{
        file::FileKeyStore,
        secrets_manager::{self, SecretsManagerKeyStore},
        KeyStore,
    },
    tls,
};
use nitro_wallet_protocol::{message::Credentials, Request, SecretString};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

/// Access key id of the insecure dev credentials (accepted by the local KMS emulator only).
pub const INSECURE_DEV_ACCESS_KEY_ID: &str = "NITROWALLETDEVINSECURE";

/// Builds the handlers' state.
///
/// # Errors
/// When the key store cannot be opened.
pub async fn state(config: &Config) -> crate::Result<AppState> {
    let store = key_store(&config.key_store).await?;
    let on_connect: OnConnect = match config.credentials {
        CredentialsConfig::InsecureDev => Arc::new(|| {
            Some(Request::SetCredentials(Credentials {
                access_key_id: INSECURE_DEV_ACCESS_KEY_ID.to_owned(),
                secret_access_key: SecretString::new("insecure-dev-secret".to_owned()),
                session_token: None,
                expires_at: None,
            }))
        }),
    };
    let enclave = EnclaveClient::new(
        config.enclave.endpoint.clone(),
        ClientTimeouts {
            call: Duration::from_secs(config.enclave.call_timeout_secs),
            ..ClientTimeouts::default()
        },
        Some(on_connect),
    );
    let tokens = Tokens::from_hashes(
        config
            .tokens
            .iter()
            .map(|t| (t.name.as_str(), t.sha256.as_str())),
    );
    Ok(AppState {
        enclave: Arc::new(enclave),
        store,
        tokens: Arc::new(tokens),
        kms_key_id: config.kms.key_id.as_str().into(),
    })
}

/// Opens the configured key store. For Secrets Manager, the host's own credentials come from
/// the standard chain (environment, profile, IMDSv2), resolved lazily at the first call.
async fn key_store(config: &KeyStoreConfig) -> crate::Result<Arc<dyn KeyStore>> {
    Ok(match config {
        KeyStoreConfig::File { dir } => Arc::new(FileKeyStore::open(dir)?),
        KeyStoreConfig::SecretsManager {
            prefix,
            region,
            endpoint,
        } => {
            let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
                .region(aws_config::Region::new(region.clone()))
                .load()
                .await;
            let credentials = shared
                .credentials_provider()
                .ok_or("no AWS credentials provider for the Secrets Manager key store")?;
            let sdk = secrets_manager::sdk_config(region, endpoint.as_deref(), credentials);
            Arc::new(SecretsManagerKeyStore::new(
                aws_sdk_secretsmanager::Client::from_conf(sdk),
                prefix.clone(),
            )?)
        }
    })
}

/// Serves the API on `listener` until `shutdown` completes, then drains for up to 10 s.
/// `on_listening` is told the bound address once TLS is ready.
///
/// # Errors
/// When TLS cannot be set up or the server fails.
pub async fn run(
    config: &Config,
    listener: std::net::TcpListener,
    on_listening: impl FnOnce(SocketAddr, Option<&std::path::Path>),
    shutdown: impl Future<Output = ()>,
) -> crate::Result<()> {
    let state = state(config).await?;
    let (rustls, generated_cert) = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => (tls::load(cert, key).await?, None),
        _ => {
            let (c, p) = tls::self_signed(&config.server.state_dir.join("tls")).await?;
            (c, Some(p))
        }
    };
    let limits = Limits {
        body_bytes: config.server.body_limit_bytes,
        request_timeout: Duration::from_secs(config.server.request_timeout_secs),
        max_concurrent: config.server.max_concurrent_requests,
    };
    let app = api::router(state, limits);
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let mut server = axum_server::from_tcp_rustls(listener, rustls);
    // Slowloris guard: a client gets 10 s to send its request head.
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let mut serving = tokio::spawn(server.handle(handle.clone()).serve(app.into_make_service()));
    on_listening(addr, generated_cert.as_deref());
    tokio::select! {
        r = &mut serving => return Ok(r??),
        () = shutdown => {}
    }
    tracing::info!("shutting down: draining requests");
    handle.graceful_shutdown(Some(Duration::from_secs(10)));
    serving.await??;
    Ok(())
}
