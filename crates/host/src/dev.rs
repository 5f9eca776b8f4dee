//! `nitro-wallet dev`: the whole system on one machine, no cloud, no Docker.
//!
//! It creates a data directory, starts the local KMS emulator, starts the enclave binary as
//! separate OS processes (`--enclaves N`, one by default) on Unix sockets, kept running by the
//! same supervisor as production (`supervise`, with its process backend: a dead or hung enclave
//! is restarted with backoff), and serves the HTTPS API over the enclave pool. Everything it
//! trusts is insecure by design: the KMS emulator's master key sits in the data directory and
//! the enclave is an ordinary process.

use crate::{
    api::auth::Tokens,
    config::{
        AuditConfig, Config, CredentialsConfig, EnclaveConfig, KeyStoreConfig, KmsConfig,
        RpcConfig, ServerConfig, TokenConfig,
    },
    fsutil::{write_private, Existing},
    server,
    supervise::{BackoffSettings, ProcessBackend, ProcessSpec, Settings, Supervisor, Watched},
};
use nitro_wallet_attestation::{pcr0_of_file, DevCa};
use nitro_wallet_kms::emulator::{AttestationPolicy, Emulator};
use nitro_wallet_protocol::Endpoint;
use std::{
    net::SocketAddr,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

/// Options of `nitro-wallet dev`.
#[derive(Debug, Clone, clap::Args)]
pub struct DevArgs {
    /// Data directory (keys, KMS emulator state, TLS certificate, API token).
    #[arg(
        long,
        env = "NITRO_WALLET_DEV_DIR",
        default_value = ".nitro-wallet-dev"
    )]
    pub data_dir: PathBuf,
    /// HTTPS listen address (127.0.0.1:0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// Enclave binary to start (for example `target/release/nitro-wallet-enclave`); by default
    /// this executable's own `enclave` subcommand, which runs the same server code.
    #[arg(long)]
    pub enclave_bin: Option<PathBuf>,
    /// Make the local KMS key policy trust this build's measurement (PCR0), as an operator
    /// updates the real key policy for a new enclave image. Without it, a rebuilt enclave is
    /// refused by the policy written on first start, exactly as KMS would refuse it.
    #[arg(long)]
    pub trust_current_build: bool,
    /// Ethereum node for JSON-RPC (`POST /rpc`): `eth_sendTransaction` fills from and sends to
    /// it, and other methods are proxied to it (for example anvil's `http://127.0.0.1:8545`).
    #[arg(
        long,
        value_name = "URL",
        env = "NITRO_WALLET_UPSTREAM_RPC",
        hide_env_values = true
    )]
    pub upstream_rpc: Option<String>,
    /// Enclave processes to run, balanced by the host: the first listens on
    /// DATA_DIR/enclave.sock (pid in enclave.pid), the others on enclave-1.sock, enclave-2.sock,
    /// … (enclave-1.pid, …).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub enclaves: u16,
}

/// How dev mode supervises its enclave processes: a process that exits is noticed at once and
/// restarted after 100 ms (doubling to 5 s while restarts do not last 10 s); one that stops
/// answering is restarted after three failed pings half a second apart.
const DEV_SUPERVISION: Settings = Settings {
    check_interval: Duration::from_millis(500),
    ping_timeout: Duration::from_secs(2),
    failures_before_restart: 3,
    start_grace: Duration::from_secs(10),
    backoff: BackoffSettings {
        min: Duration::from_millis(100),
        max: Duration::from_secs(5),
        reset_after: Duration::from_secs(10),
    },
};

/// Runs dev mode until Ctrl-C / SIGTERM.
///
/// # Errors
/// When any part cannot start.
pub async fn run(args: DevArgs) -> crate::Result<()> {
    let rpc = RpcConfig {
        upstream: args.upstream_rpc.clone(),
        ..RpcConfig::default()
    };
    rpc.validate()?;
    let dir = &args.data_dir;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let dir = dir.canonicalize()?;

    // 1. The enclave binary's measurement, the dev CA of the simulated NSM, and the KMS
    //    emulator with a key policy that admits that measurement only.
    let (enclave_bin, enclave_args) = match args.enclave_bin {
        Some(p) => (p, Vec::new()),
        None => (std::env::current_exe()?, vec!["enclave".to_owned()]),
    };
    let ca_dir = dir.join("attestation");
    let ca = DevCa::load_or_create(&ca_dir)?;
    let pcr0 = hex::encode(pcr0_of_file(&enclave_bin)?);
    let emulator = Emulator::open(&dir.join("kms"))?;
    apply_key_policy(&emulator, &ca, &pcr0, args.trust_current_build)?;
    let kms_key_id = "alias/nitro-wallet".to_owned();
    let kms_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let kms_url = format!("http://{}", kms_listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = emulator.serve(kms_listener).await {
            tracing::error!(error = %e, "KMS emulator stopped");
        }
    });

    // 2. The enclaves, as separate processes, kept running by the supervisor.
    let specs: Vec<ProcessSpec> = (0..args.enclaves)
        .map(|i| {
            let name = match i {
                0 => "enclave".to_owned(),
                i => format!("enclave-{i}"),
            };
            let mut args = enclave_args.clone();
            args.extend([
                "--listen".to_owned(),
                format!("unix://{}", dir.join(format!("{name}.sock")).display()),
                "--kms-endpoint".to_owned(),
                kms_url.clone(),
                "--dev-nsm-dir".to_owned(),
                ca_dir.display().to_string(),
            ]);
            ProcessSpec {
                pid_file: Some(dir.join(format!("{name}.pid"))),
                name,
                program: enclave_bin.clone(),
                args,
            }
        })
        .collect();
    let sockets: Vec<PathBuf> = specs
        .iter()
        .map(|s| dir.join(format!("{}.sock", s.name)))
        .collect();
    let watched = specs
        .iter()
        .zip(&sockets)
        .map(|(s, socket)| Watched {
            name: s.name.clone(),
            endpoint: Endpoint::Unix(socket.clone()),
        })
        .collect();
    let (stop_supervisor, supervisor_stopped) = tokio::sync::oneshot::channel::<()>();
    // The server's metrics count the supervisor's restarts.
    let restarts = crate::metrics::Restarts::default();
    let supervisor = tokio::spawn(
        Supervisor::new(
            Arc::new(ProcessBackend::new(specs)),
            watched,
            DEV_SUPERVISION,
        )
        .with_restarts(restarts.clone())
        .run(async move {
            let _ = supervisor_stopped.await;
        }),
    );
    for socket in &sockets {
        wait_for_socket(socket, Duration::from_secs(10)).await?;
    }

    // 3. The API token (kept across restarts) and the configuration.
    let token = load_or_create_token(&dir.join("api-token"))?;
    let config = Config {
        server: ServerConfig {
            listen: args.listen,
            tls_cert: None,
            tls_key: None,
            state_dir: dir.clone(),
            body_limit_bytes: 256 * 1024,
            request_timeout_secs: 30,
            max_concurrent_requests: 1024,
        },
        enclave: EnclaveConfig {
            health_interval_ms: 500,
            ..EnclaveConfig::new(sockets.into_iter().map(Endpoint::Unix).collect())
        },
        kms: KmsConfig { key_id: kms_key_id },
        key_store: KeyStoreConfig::File {
            dir: dir.join("keys"),
        },
        // The dev token may do everything.
        tokens: vec![TokenConfig::full_access("dev", &Tokens::hash(&token))],
        auth: Default::default(),
        credentials: CredentialsConfig::InsecureDev,
        rpc,
        audit: AuditConfig {
            path: Some(dir.join("audit.jsonl")),
        },
        metrics: Default::default(),
    };

    let listener = std::net::TcpListener::bind(config.server.listen)?;
    let token_path = dir.join("api-token");
    let result = server::run_with_restarts(
        &config,
        restarts,
        listener,
        |addr, cert| print_banner(addr, cert, &token, &token_path),
        crate::shutdown_signal(),
    )
    .await;
    // The supervisor kills the enclave processes and removes their pid files.
    let _ = stop_supervisor.send(());
    let _ = supervisor.await;
    result
}

/// Writes the key policy on first start (or when asked to trust this build); otherwise warns
/// when the policy names another measurement, because keys will then not unwrap.
fn apply_key_policy(emulator: &Emulator, ca: &DevCa, pcr0: &str, trust: bool) -> crate::Result<()> {
    let current = emulator.policy();
    let fresh = current.root_pem.is_empty();
    if fresh || trust {
        emulator.set_policy(AttestationPolicy {
            require_attestation: true,
            root_pem: ca.root_pem(),
            image_sha384: Some(pcr0.to_owned()),
            pcrs: Default::default(),
        })?;
        tracing::info!(pcr0, "local KMS key policy admits this enclave build");
    } else if !current
        .image_sha384
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case(pcr0))
    {
        tracing::warn!(
            this_build = pcr0,
            policy = current.image_sha384.as_deref().unwrap_or("none"),
            "the local KMS key policy names another enclave measurement: existing keys will \
             not unwrap. Restart with --trust-current-build to update the policy, as you would \
             update the KMS key policy for a new enclave image"
        );
    }
    Ok(())
}

fn print_banner(addr: SocketAddr, cert: Option<&Path>, token: &str, token_path: &Path) {
    let url = format!("https://{addr}");
    let cacert = cert
        .map(|c| format!("--cacert {} ", c.display()))
        .unwrap_or_default();
    println!("nitro-wallet dev is listening on {url}");
    println!("  API token: {token}  (also in {})", token_path.display());
    println!("  INSECURE: local KMS emulator and an enclave without Nitro isolation; never use real funds");
    println!("  try:");
    println!("    curl {cacert}-H 'Authorization: Bearer {token}' -X POST {url}/v1/keys");
    println!("    curl {cacert}-H 'Authorization: Bearer {token}' {url}/v1/keys");
    println!(
        "  JSON-RPC: {url}/rpc (bearer token), or {url}/rpc/<token> for clients without headers"
    );
    println!("  press Ctrl-C to stop");
}

async fn wait_for_socket(path: &Path, limit: Duration) -> crate::Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(format!(
        "the enclave did not start listening on {} within {limit:?}",
        path.display()
    )
    .into())
}

fn load_or_create_token(path: &Path) -> crate::Result<String> {
    if let Ok(t) = std::fs::read_to_string(path) {
        let t = t.trim().to_owned();
        if !t.is_empty() {
            return Ok(t);
        }
    }
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)?;
    let token = format!("nw_dev_{}", hex::encode(bytes));
    write_private(path, format!("{token}\n").as_bytes(), Existing::Replace)?;
    Ok(token)
}
