//! Command-line entry of the enclave server, shared by the `nitro-wallet-enclave` binary (what
//! the enclave image runs) and `nitro-wallet enclave` (what dev mode starts as a child process).

use crate::{
    server::{self, ServerLimits},
    Enclave, EnclaveConfig,
};
use nitro_wallet_attestation::{DevCa, DevNsm, Nsm, RealNsm};
use nitro_wallet_kms::KmsConfig;
use nitro_wallet_protocol::{transport::Listener, Endpoint};
use std::process::ExitCode;
use std::sync::Arc;

/// Options of the enclave server.
#[derive(Debug, Clone, clap::Args)]
pub struct EnclaveArgs {
    /// Endpoint to listen on: vsock://any:5000 in an enclave, unix:///path in dev mode.
    #[arg(
        long,
        env = "NITRO_WALLET_ENCLAVE_LISTEN",
        default_value = "vsock://any:5000"
    )]
    pub listen: Endpoint,
    /// AWS region of the KMS key.
    #[arg(long, env = "NITRO_WALLET_KMS_REGION", default_value = "us-east-1")]
    pub kms_region: String,
    /// KMS endpoint URL; unset means the regional AWS endpoint.
    #[arg(long, env = "NITRO_WALLET_KMS_ENDPOINT")]
    pub kms_endpoint: Option<String>,
    /// Byte-forwarding proxy every KMS connection is dialled through, TLS to KMS ending in
    /// this process: vsock://3:8000 (AWS's vsock-proxy on the parent) in an enclave. Unset
    /// means direct TCP connections.
    #[arg(long, env = "NITRO_WALLET_KMS_PROXY")]
    pub kms_proxy: Option<Endpoint>,
    /// Most plaintext keys held in memory at once.
    #[arg(long, default_value_t = 10_000)]
    pub max_cached_keys: usize,
    /// Most requests handled at once over all connections.
    #[arg(long, default_value_t = 4096)]
    pub max_in_flight: usize,
    /// INSECURE, outside a Nitro Enclave only: simulate the NSM with the dev CA kept in this
    /// directory (created on first use); PCR0 is the SHA-384 of this executable. Without it
    /// the enclave uses /dev/nsm and refuses to start where there is none.
    #[arg(long, env = "NITRO_WALLET_DEV_NSM_DIR")]
    pub dev_nsm_dir: Option<std::path::PathBuf>,
    /// INSECURE, with --dev-nsm-dir only: accept KMS Decrypt responses that carry the
    /// plaintext instead of an envelope to the attested key, as AWS API emulators without
    /// attestation (moto) answer. Refused at start-up in any other configuration.
    #[arg(long, env = "NITRO_WALLET_INSECURE_UNATTESTED_KMS")]
    pub insecure_unattested_kms: bool,
}

/// The NSM: the real device, or the dev simulator when asked for explicitly.
fn open_nsm(dev_dir: Option<&std::path::Path>) -> Result<Arc<dyn Nsm>, String> {
    match dev_dir {
        None => RealNsm::open()
            .map(|n| Arc::new(n) as Arc<dyn Nsm>)
            .map_err(|e| format!("{e}; outside an enclave pass --dev-nsm-dir (insecure)")),
        Some(dir) => {
            let exe = std::env::current_exe()
                .map_err(|e| format!("cannot locate this executable: {e}"))?;
            let ca = DevCa::load_or_create(dir).map_err(|e| e.to_string())?;
            let nsm = DevNsm::for_binary(ca, &exe).map_err(|e| e.to_string())?;
            tracing::warn!(
                pcr0 = %nsm.pcrs().get(&0).map(hex::encode).unwrap_or_default(),
                "INSECURE: simulated NSM (dev CA in {}); its attestation proves nothing",
                dir.display()
            );
            Ok(Arc::new(nsm))
        }
    }
}

/// Runs the enclave server until Ctrl-C / SIGTERM; signing runs on one runtime worker per CPU,
/// which is the signing pool.
pub fn run(args: EnclaveArgs) -> ExitCode {
    let hardening = crate::harden::apply();
    if hardening.no_core_dumps {
        tracing::info!("core dumps disabled, process not dumpable");
    } else {
        tracing::warn!("could not disable core dumps");
    }
    match &hardening.memory_locked {
        Ok(()) => tracing::info!("memory locked (never swapped)"),
        Err(why) => tracing::warn!(reason = %why, "memory not locked"),
    }
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(serve(args))
}

async fn serve(args: EnclaveArgs) -> ExitCode {
    if args.insecure_unattested_kms && args.dev_nsm_dir.is_none() {
        tracing::error!(
            "--insecure-unattested-kms is a dev-only setting and needs --dev-nsm-dir; a \
             production enclave accepts only attested KMS responses"
        );
        return ExitCode::FAILURE;
    }
    let nsm = match open_nsm(args.dev_nsm_dir.as_deref()) {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "no NSM");
            return ExitCode::FAILURE;
        }
    };
    let config = EnclaveConfig {
        kms: KmsConfig {
            region: args.kms_region,
            endpoint: args.kms_endpoint,
            proxy: args.kms_proxy,
        },
        max_cached_keys: args.max_cached_keys,
        nsm,
        unattested_kms: args.insecure_unattested_kms,
    };
    let enclave = match Enclave::new(&config) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot initialise the enclave");
            return ExitCode::FAILURE;
        }
    };
    let listener = match Listener::bind(&args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(endpoint = %args.listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(endpoint = %args.listen, kms_region = %config.kms.region, "enclave serving");
    let limits = ServerLimits {
        max_in_flight: args.max_in_flight,
        ..ServerLimits::default()
    };
    tokio::select! {
        () = server::serve(listener, enclave, limits) => ExitCode::FAILURE,
        () = shutdown_signal() => ExitCode::SUCCESS,
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM); shared with the host.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
