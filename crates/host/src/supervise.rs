//! `nitro-wallet supervise`: keeps the enclaves running (the AWS sample's `watchdog.py`, fixed).
//!
//! For each configured enclave it starts the enclave, then every `health.interval_secs` asks
//! the backend whether it runs (`nitro-cli describe-enclaves`: our `EnclaveName`, our CID,
//! `State` `RUNNING`) **and** pings it over its endpoint with the host's protocol client (a
//! ping runs a signing self-test in the enclave). An enclave that is gone, or that failed
//! `failures_before_restart` pings in a row once it has answered (or once its boot grace is
//! over), is terminated and started again after an exponential backoff (doubling from
//! `backoff.min_secs` to `backoff.max_secs`, back to the minimum once an enclave stayed healthy
//! for `backoff.reset_after_secs`). Every transition is logged with the enclave's name.
//!
//! The sample's watchdog could never see a dead enclave (`and` for `or`, `"Running"` against
//! nitro-cli's `"RUNNING"`) and restarted without backoff; here each check is tested against a
//! stand-in nitro-cli (`crates/host/tests/it/supervise.rs`).
//!
//! Backends: [`NitroCli`] on an EC2 parent instance, [`ProcessBackend`] (the enclave as a
//! child process) for dev mode. An enclave already running under our name when the supervisor
//! starts is adopted, not restarted; on shutdown the supervisor stops its enclaves.

mod config;
mod nitro_cli;
mod process;

pub use config::{BackoffConfig, EnclaveSpec, HealthConfig, SuperviseConfig, SuperviseConfigError};
pub use nitro_cli::{parse_describe, EnclaveInfo, NitroCli};
pub use process::{ProcessBackend, ProcessSpec};

use crate::{
    enclave_client::{ClientTimeouts, EnclaveClient},
    metrics::Restarts,
};
use nitro_wallet_protocol::{Endpoint, Pong, Request, Response};
use std::{future::Future, path::PathBuf, sync::Arc, time::Duration};
use tokio::{sync::watch, time::Instant};

/// Options of `nitro-wallet supervise`.
#[derive(Debug, Clone, clap::Args)]
pub struct SuperviseArgs {
    /// TOML configuration (see supervise.toml.example).
    #[arg(
        long,
        short,
        env = "NITRO_WALLET_SUPERVISE_CONFIG",
        default_value = "/etc/nitro-wallet/supervise.toml"
    )]
    pub config: PathBuf,
    /// Serve the supervisor's metrics (`nitro_wallet_supervisor_restarts_total`) at
    /// `GET /metrics` over plain HTTP on this address, without a token: use a private
    /// interface (for example 127.0.0.1:9103). Not served by default.
    #[arg(
        long,
        env = "NITRO_WALLET_SUPERVISE_METRICS_LISTEN",
        value_name = "ADDR"
    )]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Runs the supervisor with the nitro-cli backend until Ctrl-C / SIGTERM, then terminates the
/// enclaves.
///
/// # Errors
/// When the configuration cannot be used.
pub async fn run(args: SuperviseArgs) -> crate::Result<()> {
    let config = SuperviseConfig::load(&args.config)?;
    for e in config.enclaves.iter().filter(|e| e.debug_mode) {
        tracing::warn!(
            enclave = %e.name,
            "DEBUG MODE is configured (debug_mode = true): the enclave's console is readable \
             from the parent and its PCR0 is zeros, so a correct KMS key policy refuses it. \
             Never in production"
        );
    }
    tracing::info!(
        config = %args.config.display(),
        nitro_cli = %config.nitro_cli.display(),
        enclaves = ?config.enclaves.iter().map(|e| format!("{} (cid {})", e.name, e.cid)).collect::<Vec<_>>(),
        "supervising enclaves"
    );
    let restarts = Restarts::default();
    // Stops with the supervisor.
    let _metrics = match args.metrics_listen {
        Some(addr) => Some(
            crate::metrics::MetricsListener::start(
                addr,
                Arc::new(crate::metrics::Metrics::for_supervisor(restarts.clone())),
            )
            .await
            .map_err(|e| format!("cannot listen for metrics on {addr} (--metrics-listen): {e}"))?,
        ),
        None => None,
    };
    let backend = Arc::new(NitroCli::new(config.nitro_cli.clone(), &config.enclaves));
    Supervisor::new(backend, config.watched(), config.settings())
        .with_restarts(restarts)
        .run(crate::shutdown_signal())
        .await;
    Ok(())
}

/// Whether an enclave runs, as its backend sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// It runs, under this id.
    Running {
        /// Backend id (EnclaveID, or the process id).
        id: String,
    },
    /// It exists but does not run as configured (terminating, exited, another CID, …).
    NotRunning {
        /// Why.
        detail: String,
    },
    /// There is no such enclave.
    Absent,
}

/// A backend operation that failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The command could not be started at all.
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// What was run.
        command: String,
        /// Why not.
        source: std::io::Error,
    },
    /// The command exited with a failure status.
    #[error("{command} failed (exit status {code:?}): {message}")]
    Failed {
        /// What was run.
        command: String,
        /// Exit status; `None` when killed by a signal.
        code: Option<i32>,
        /// Its error message.
        message: String,
    },
    /// The command did not finish in time (it was killed).
    #[error("{command} did not finish within {after:?}")]
    TimedOut {
        /// What was run.
        command: String,
        /// Time limit.
        after: Duration,
    },
    /// The command's output was not what nitro-cli documents.
    #[error("unexpected output of {command}: {detail}")]
    Output {
        /// What was run.
        command: String,
        /// What was wrong.
        detail: String,
    },
    /// Starting was refused by a check (the image's measurement).
    #[error("refused: {0}")]
    Refused(String),
    /// No enclave of that name is configured.
    #[error("no enclave named `{0}` is configured")]
    Unknown(String),
}

/// Starts, inspects and stops enclaves.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Starts enclave `name`; returns its id (for logs).
    async fn start(&self, name: &str) -> Result<String, BackendError>;
    /// Whether enclave `name` runs.
    async fn status(&self, name: &str) -> Result<Status, BackendError>;
    /// Stops enclave `name`.
    async fn stop(&self, name: &str) -> Result<(), BackendError>;
    /// Completes when enclave `name` is known to have stopped, for backends that learn it at
    /// once (a child process); by default never, and the periodic check notices instead.
    async fn exited(&self, name: &str) {
        let _ = name;
        std::future::pending::<()>().await;
    }
}

/// One enclave to watch.
#[derive(Debug, Clone)]
pub struct Watched {
    /// Its backend name.
    pub name: String,
    /// Where to ping it.
    pub endpoint: Endpoint,
}

/// Timing of the supervisor.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Time between two checks.
    pub check_interval: Duration,
    /// How long a ping may take.
    pub ping_timeout: Duration,
    /// Failed pings in a row that make a running enclave hung.
    pub failures_before_restart: u32,
    /// Boot time during which failed pings do not count (until one succeeds).
    pub start_grace: Duration,
    /// Restart delays.
    pub backoff: BackoffSettings,
}

/// Exponential backoff settings.
#[derive(Debug, Clone, Copy)]
pub struct BackoffSettings {
    /// First delay.
    pub min: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Healthy this long resets the delay to `min`.
    pub reset_after: Duration,
}

/// Delays between restarts: `min`, `2·min`, `4·min`, … capped at `max`, until [`reset`].
///
/// [`reset`]: Backoff::reset
#[derive(Debug, Clone)]
pub struct Backoff {
    settings: BackoffSettings,
    next: Duration,
    attempts: u32,
}

impl Backoff {
    /// A backoff at its minimum.
    pub fn new(settings: BackoffSettings) -> Backoff {
        Backoff {
            settings,
            next: settings.min,
            attempts: 0,
        }
    }

    /// The delay before the next restart; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let now = self.next.min(self.settings.max);
        self.next = now.saturating_mul(2).min(self.settings.max);
        self.attempts = self.attempts.saturating_add(1);
        now
    }

    /// Restarts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Back to the minimum (the enclave stayed healthy).
    pub fn reset(&mut self) {
        self.next = self.settings.min;
        self.attempts = 0;
    }
}

/// Keeps enclaves running through a [`Backend`].
#[derive(Debug)]
pub struct Supervisor<B> {
    backend: Arc<B>,
    enclaves: Vec<Watched>,
    settings: Settings,
    restarts: Restarts,
}

impl<B: Backend> Supervisor<B> {
    /// A supervisor of `enclaves`.
    pub fn new(backend: Arc<B>, enclaves: Vec<Watched>, settings: Settings) -> Self {
        Self {
            backend,
            enclaves,
            settings,
            restarts: Restarts::default(),
        }
    }

    /// Counts restarts into `restarts` (a server's metrics, or the supervisor's own).
    pub fn with_restarts(mut self, restarts: Restarts) -> Self {
        self.restarts = restarts;
        self
    }

    /// Watches every enclave until `shutdown` completes, then stops them.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let tasks: Vec<_> = self
            .enclaves
            .into_iter()
            .map(|e| {
                tokio::spawn(watch_one(
                    self.backend.clone(),
                    e,
                    self.settings,
                    self.restarts.clone(),
                    stopped.clone(),
                ))
            })
            .collect();
        shutdown.await;
        let _ = stop.send(true);
        for t in tasks {
            let _ = t.await;
        }
    }
}

/// Completes when the stop flag is set (or its sender is gone).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Sleeps for `delay`; `false` when stopped first.
async fn sleep_unless_stopped(delay: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => true,
        () = stop_requested(stop) => false,
    }
}

async fn ping(client: &EnclaveClient, limit: Duration) -> Result<Pong, String> {
    match tokio::time::timeout(limit, client.call(Request::Ping)).await {
        Ok(Ok(Response::Pong(p))) => Ok(p),
        Ok(Ok(_)) => Err("unexpected answer to a ping".into()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// The life of one enclave: start (or adopt), watch, terminate and restart with backoff;
/// stop it when asked.
async fn watch_one<B: Backend>(
    backend: Arc<B>,
    enclave: Watched,
    s: Settings,
    restarts: Restarts,
    mut stop: watch::Receiver<bool>,
) {
    let name = enclave.name.as_str();
    let endpoint = &enclave.endpoint;
    let mut backoff = Backoff::new(s.backoff);
    let mut first = true;
    'life: loop {
        if *stop.borrow() {
            break;
        }
        // 1. Start it, or adopt the one already running under our name.
        let status = backend.status(name).await;
        match (&status, first) {
            (Ok(Status::Running { id }), true) => {
                tracing::info!(enclave = name, %id, "adopting the enclave already running");
            }
            _ => {
                let leftover = match &status {
                    Ok(Status::Absent) => None,
                    Ok(Status::Running { id }) => Some(format!("{id} still running")),
                    Ok(Status::NotRunning { detail }) => Some(detail.clone()),
                    Err(e) => {
                        // Never terminate blindly: if it does run, run-enclave fails and the
                        // next round sees it.
                        tracing::warn!(enclave = name, error = %e, "cannot query the enclave's state before starting it");
                        None
                    }
                };
                if let Some(leftover) = leftover {
                    // Not running as configured, or not terminated after a failure: clear it.
                    tracing::info!(enclave = name, %leftover, "terminating the leftover enclave before starting");
                    if let Err(e) = backend.stop(name).await {
                        tracing::warn!(enclave = name, error = %e, "cannot terminate the leftover enclave");
                    }
                }
                tracing::info!(enclave = name, %endpoint, "starting enclave");
                match backend.start(name).await {
                    Ok(id) => tracing::info!(enclave = name, %id, "enclave started"),
                    Err(e) => {
                        let delay = backoff.next_delay();
                        tracing::error!(
                            enclave = name,
                            error = %e,
                            attempt = backoff.attempts(),
                            retry_in = ?delay,
                            "cannot start the enclave"
                        );
                        if !sleep_unless_stopped(delay, &mut stop).await {
                            break 'life;
                        }
                        continue;
                    }
                }
            }
        }
        first = false;

        // 2. Watch it.
        let started = Instant::now();
        let client = EnclaveClient::new(
            endpoint.clone(),
            ClientTimeouts {
                connect: s.ping_timeout,
                call: s.ping_timeout,
            },
            None,
        );
        let mut answered_once = false;
        let mut healthy_since: Option<Instant> = None;
        let mut failures = 0u32;
        let (reason, present) = loop {
            tokio::select! {
                () = tokio::time::sleep(s.check_interval) => {}
                () = backend.exited(name) => {}
                () = stop_requested(&mut stop) => break 'life,
            }
            match backend.status(name).await {
                Ok(Status::Running { .. }) => {}
                Ok(Status::NotRunning { detail }) => {
                    break (format!("not running: {detail}"), true)
                }
                Ok(Status::Absent) => {
                    break ("gone: the backend no longer lists it".to_owned(), false)
                }
                Err(e) => {
                    tracing::warn!(enclave = name, error = %e, "cannot query the enclave's state; judging by its ping");
                }
            }
            match ping(&client, s.ping_timeout).await {
                Ok(pong) => {
                    if healthy_since.is_none() {
                        tracing::info!(
                            enclave = name,
                            version = %pong.version,
                            after_failures = failures,
                            "enclave healthy"
                        );
                    }
                    answered_once = true;
                    failures = 0;
                    let since = *healthy_since.get_or_insert_with(Instant::now);
                    if backoff.attempts() > 0 && since.elapsed() >= s.backoff.reset_after {
                        tracing::info!(enclave = name, "enclave stable: restart backoff reset");
                        backoff.reset();
                    }
                }
                Err(why) => {
                    if !answered_once && started.elapsed() < s.start_grace {
                        tracing::debug!(enclave = name, error = %why, "enclave not answering yet (booting)");
                        continue;
                    }
                    healthy_since = None;
                    failures += 1;
                    tracing::warn!(
                        enclave = name,
                        failures,
                        limit = s.failures_before_restart,
                        error = %why,
                        "enclave failed its ping"
                    );
                    if failures >= s.failures_before_restart {
                        break (
                            format!("hung: {failures} pings in a row failed ({why})"),
                            true,
                        );
                    }
                }
            }
        };

        // 3. Terminate it and start again after the backoff.
        restarts.inc(name);
        let delay = backoff.next_delay();
        tracing::warn!(
            enclave = name,
            %reason,
            attempt = backoff.attempts(),
            restart_in = ?delay,
            "enclave unhealthy: terminating and restarting it"
        );
        if present {
            if let Err(e) = backend.stop(name).await {
                tracing::error!(enclave = name, error = %e, "cannot terminate the enclave");
            }
        }
        if !sleep_unless_stopped(delay, &mut stop).await {
            return;
        }
    }
    tracing::info!(enclave = name, "stopping enclave");
    match backend.status(name).await {
        Ok(Status::Absent) => {}
        _ => {
            if let Err(e) = backend.stop(name).await {
                tracing::warn!(enclave = name, error = %e, "cannot stop the enclave");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(BackoffSettings {
            min: ms(100),
            max: ms(1000),
            reset_after: ms(5000),
        });
        let seen: Vec<u128> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seen, [100, 200, 400, 800, 1000, 1000, 1000]);
        assert_eq!(b.attempts(), 7);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(), ms(100));
        // A maximum below the minimum caps from the start; huge values do not overflow.
        let mut b = Backoff::new(BackoffSettings {
            min: ms(500),
            max: ms(100),
            reset_after: ms(1),
        });
        assert_eq!(b.next_delay(), ms(100));
        let mut b = Backoff::new(BackoffSettings {
            min: Duration::MAX,
            max: Duration::MAX,
            reset_after: ms(1),
        });
        assert_eq!(b.next_delay(), Duration::MAX);
        assert_eq!(b.next_delay(), Duration::MAX);
    }
}
