//! Assembles the API from a [`Config`] and runs it over HTTPS until shutdown.

use crate::{
    api::{self, auth::Tokens, AppState, Limits},
    config::{Config, KeyStoreConfig},
    credentials::{self, CredentialsSource},
    enclave_client::{ClientTimeouts, OnConnect},
    enclave_pool::{EnclavePool, PoolOptions},
    keystore::{
        file::FileKeyStore,
        secrets_manager::{self, SecretsManagerKeyStore},
        KeyStore,
    },
    legacy::LegacySecrets,
    metrics::{Metrics, Restarts},
    tls,
};
use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

pub use crate::credentials::INSECURE_DEV_ACCESS_KEY_ID;

/// Builds the handlers' state. Its enclave pool sends credentials on every new connection;
/// refreshing them before they expire is [`run`]'s job.
///
/// # Errors
/// When the key store cannot be opened or the credentials chain cannot be built.
pub async fn state(config: &Config) -> crate::Result<AppState> {
    Ok(state_and_credentials(config, Restarts::default()).await?.0)
}

/// The handlers' state and the credentials source its enclave client uses; the metrics count
/// supervisor restarts into `restarts`.
async fn state_and_credentials(
    config: &Config,
    restarts: Restarts,
) -> crate::Result<(AppState, CredentialsSource)> {
    let (store, legacy) = key_store(&config.key_store).await?;
    let source = CredentialsSource::from_config(&config.credentials).await?;
    let on_connect: OnConnect = {
        let source = source.clone();
        Arc::new(move || {
            let source = source.clone();
            Box::pin(async move { source.on_connect_request().await })
        })
    };
    let enclave = Arc::new(EnclavePool::new(
        config.enclave.all_endpoints(),
        PoolOptions {
            timeouts: ClientTimeouts {
                call: Duration::from_secs(config.enclave.call_timeout_secs),
                ..ClientTimeouts::default()
            },
            health_interval: Duration::from_millis(config.enclave.health_interval_ms),
            health_timeout: Duration::from_millis(config.enclave.health_timeout_ms),
        },
        Some(on_connect),
    ));
    let mut metrics = Metrics::new(restarts);
    metrics.register_pool(enclave.clone(), config.metrics.per_key_labels);
    // The inline tokens and the tokens file, which a background task re-reads on change.
    let tokens = Arc::new(
        Tokens::new(config.tokens.clone(), config.auth.tokens_file.clone())?
            .with_client_certs(&config.auth.client_certs),
    );
    tokens.watch();
    let state = AppState::new(api::Shared {
        enclave,
        store,
        tokens,
        kms_key_id: config.kms.key_id.as_str().into(),
        legacy,
        secret_index: Arc::default(),
        window_locks: Arc::default(),
        rpc: Arc::new(api::rpc::Rpc::new(&config.rpc)?),
        audit: match &config.audit.path {
            Some(path) => Some(Arc::new(crate::audit::AuditLog::open(path)?)),
            None => {
                tracing::warn!(
                    "no [audit] path: signing decisions are chained inside the enclaves but not \
                     kept; configure an audit log"
                );
                None
            }
        },
        metrics: Arc::new(metrics),
        metrics_on_api: config.metrics.enabled && config.metrics.listen.is_none(),
    });
    Ok((state, source))
}

/// Opens the configured key store. For Secrets Manager, the host's own credentials come from
/// the standard chain (environment, profile, IMDSv2), resolved lazily at the first call, and
/// the same client reads the reference sample's secrets for migration.
async fn key_store(
    config: &KeyStoreConfig,
) -> crate::Result<(Arc<dyn KeyStore>, Option<Arc<LegacySecrets>>)> {
    Ok(match config {
        KeyStoreConfig::File { dir } => (Arc::new(FileKeyStore::open(dir)?), None),
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
            let client = aws_sdk_secretsmanager::Client::from_conf(sdk);
            (
                Arc::new(SecretsManagerKeyStore::new(client.clone(), prefix.clone())?),
                Some(Arc::new(LegacySecrets::new(client))),
            )
        }
    })
}

/// Serves the API on `listener` until `shutdown` completes, then drains for up to 10 s. With
/// expiring credentials (`source = "aws"`), a background task hands the enclave fresh ones
/// before they expire, until shutdown.
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
    run_with_restarts(
        config,
        Restarts::default(),
        listener,
        on_listening,
        shutdown,
    )
    .await
}

/// [`run`], with the restarts of a supervisor running in this process (dev mode) in its
/// metrics.
///
/// # Errors
/// As [`run`]; also when the metrics listener (`[metrics] listen`) cannot be bound.
pub async fn run_with_restarts(
    config: &Config,
    restarts: Restarts,
    listener: std::net::TcpListener,
    on_listening: impl FnOnce(SocketAddr, Option<&std::path::Path>),
    shutdown: impl Future<Output = ()>,
) -> crate::Result<()> {
    let (state, source) = state_and_credentials(config, restarts).await?;
    // Plain HTTP on its own (private) address; stops with `run`.
    let _metrics = match (config.metrics.enabled, config.metrics.listen) {
        (true, Some(addr)) => Some(
            crate::metrics::MetricsListener::start(addr, state.metrics.clone())
                .await
                .map_err(|e| {
                    format!("cannot listen for metrics on {addr} ([metrics] listen): {e}")
                })?,
        ),
        _ => None,
    };
    let (stop_refresh, refresh_stopped) = tokio::sync::oneshot::channel::<()>();
    let refresher = source.needs_refresh().then(|| {
        tokio::spawn(credentials::refresh(
            source,
            state.enclave.clone(),
            async move {
                let _ = refresh_stopped.await;
            },
        ))
    });
    let (rustls, generated_cert) = match (&config.server.tls_cert, &config.server.tls_key) {
        (Some(cert), Some(key)) => (tls::load(cert, key).await?, None),
        _ => {
            let (c, p) = tls::self_signed(&config.server.state_dir.join("tls")).await?;
            (c, Some(p))
        }
    };
    let rustls = match &config.auth.client_ca {
        Some(ca) => tls::with_client_auth(&rustls, ca, config.auth.client_cert_required)?,
        None => rustls,
    };
    let limits = Limits {
        body_bytes: config.server.body_limit_bytes,
        request_timeout: Duration::from_secs(config.server.request_timeout_secs),
        max_concurrent: config.server.max_concurrent_requests,
    };
    // Stops when `run` returns.
    let _warmup = crate::warmup::spawn(&state, &config.enclave);
    let app = api::router(state, limits);
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let handle = axum_server::Handle::new();
    let mut server =
        axum_server::from_tcp(listener)?.acceptor(tls::ClientCertAcceptor::new(rustls));
    // Slowloris guard: a client gets 10 s to send its request head.
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let mut serving = tokio::spawn(server.handle(handle.clone()).serve(app.into_make_service()));
    on_listening(addr, generated_cert.as_deref());
    let served = tokio::select! {
        r = &mut serving => Some(r),
        () = shutdown => None,
    };
    let _ = stop_refresh.send(());
    if let Some(task) = refresher {
        let _ = task.await;
    }
    if let Some(r) = served {
        return Ok(r??);
    }
    tracing::info!("shutting down: draining requests");
    handle.graceful_shutdown(Some(Duration::from_secs(10)));
    serving.await??;
    Ok(())
}
