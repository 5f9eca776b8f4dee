//! Shared helpers: start the emulator on 127.0.0.1:0 and build clients for it.

use std::path::Path;

use aws_credential_types::Credentials;
use nitro_wallet_kms::emulator::Emulator;
use nitro_wallet_kms::{CredentialsCell, EncryptionContext, KmsClient, KmsConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running emulator; stops (gracefully) on drop or with [`Running::stop`].
pub(crate) struct Running {
    pub(crate) endpoint: String,
    pub(crate) key_id: String,
    pub(crate) key_arn: String,
    pub(crate) region: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Running {
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server result");
        }
    }

    pub(crate) fn client(&self) -> KmsClient {
        client_for(&self.endpoint, &self.region, Some(test_credentials()))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Opens the emulator in `dir` and serves it on a fresh local port.
pub(crate) async fn start_in(dir: &Path) -> Running {
    start(Emulator::open(dir).expect("open emulator")).await
}

/// Serves an already opened emulator on a fresh local port.
pub(crate) async fn start(emulator: Emulator) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    let (key_id, key_arn) = (emulator.key_id().to_owned(), emulator.key_arn());
    let region = emulator.region().to_owned();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(emulator.serve_with_shutdown(listener, async move {
        let _ = stopped.await;
    }));
    Running {
        endpoint,
        key_id,
        key_arn,
        region,
        stop: Some(stop),
        task: Some(task),
    }
}

pub(crate) fn test_credentials() -> Credentials {
    Credentials::from_keys(
        "AKIDTESTONLY",
        "test-secret-key",
        Some("test-session".to_owned()),
    )
}

pub(crate) fn client_for(
    endpoint: &str,
    region: &str,
    credentials: Option<Credentials>,
) -> KmsClient {
    let cell = CredentialsCell::new();
    if let Some(credentials) = credentials {
        cell.set(credentials);
    }
    let config = KmsConfig {
        region: region.to_owned(),
        endpoint: Some(endpoint.to_owned()),
        proxy: None,
    };
    KmsClient::new(&config, cell)
}

/// A plain SDK client, for operations `KmsClient` does not offer (DescribeKey, CreateKey).
pub(crate) fn sdk_client(endpoint: &str, region: &str) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(region.to_owned()))
        .endpoint_url(endpoint)
        .credentials_provider(test_credentials())
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

pub(crate) fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
