//! `nitro-wallet-enclave`: the signing server that runs inside the Nitro Enclave.

use clap::Parser;
use nitro_wallet_enclave::cli::{self, EnclaveArgs};
use std::process::ExitCode;

// mimalloc: the request path allocates many small, short-lived buffers across threads;
// glibc malloc cost ~10 % of the server's CPU in the profile (README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The nitro-wallet enclave signing server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(flatten)]
    enclave: EnclaveArgs,
    /// Log format (on stderr); `json` writes one object per line, request ids included.
    #[arg(
        long,
        value_enum,
        default_value = "human",
        env = "NITRO_WALLET_LOG_FORMAT"
    )]
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
    cli::run(args.enclave)
}
