//! `nitro-wallet-enclave`: the signing server that runs inside the Nitro Enclave (or, in dev
//! mode, as a separate local process on a Unix socket).

use clap::Parser;
use nitro_wallet_enclave::{
    server::{self, ServerLimits},
    Enclave, EnclaveConfig,
};
use nitro_wallet_kms::KmsConfig;
use nitro_wallet_protocol::{transport::Listener, Endpoint};
use std::process::ExitCode;

/// The nitro-wallet enclave signing server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Endpoint to listen on: vsock://any:5000 in an enclave, unix:///path in dev mode.
    #[arg(
        long,
        env = "NITRO_WALLET_ENCLAVE_LISTEN",
        default_value = "vsock://any:5000"
    )]
    listen: Endpoint,
    /// AWS region of the KMS key.
    #[arg(long, env = "NITRO_WALLET_KMS_REGION", default_value = "us-east-1")]
    kms_region: String,
    /// KMS endpoint URL; unset means the regional AWS endpoint.
    #[arg(long, env = "NITRO_WALLET_KMS_ENDPOINT")]
    kms_endpoint: Option<String>,
    /// Most plaintext keys held in memory at once.
    #[arg(long, default_value_t = 10_000)]
    max_cached_keys: usize,
    /// Most requests handled at once over all connections.
    #[arg(long, default_value_t = 4096)]
    max_in_flight: usize,
    /// Log format.
    #[arg(long, value_enum, default_value = "human")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("NITRO_WALLET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }

    // Signing runs on the runtime's workers, one per CPU: that is the signing pool.
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
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let config = EnclaveConfig {
        kms: KmsConfig {
            region: args.kms_region,
            endpoint: args.kms_endpoint,
        },
        max_cached_keys: args.max_cached_keys,
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
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("shutting down");
            ExitCode::SUCCESS
        }
    }
}
