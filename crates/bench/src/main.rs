//! `nitro-wallet-bench enclave`: signing throughput on the host↔enclave frame protocol alone,
//! straight on the enclave's Unix socket (no HTTP, no TLS, no host), to tell the enclave's
//! cost apart from the HTTPS path's. The HTTPS load generator is `nitro-wallet bench`; it is
//! also here as `nitro-wallet-bench http`, for scripts/bench.sh.

use clap::{Parser, Subcommand};
use nitro_wallet_bench::{enclave, BenchArgs};
use std::process::ExitCode;

/// Signing throughput benchmark of nitro-wallet.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Worker threads of the load generator (0: one per CPU). The load generator shares the
    /// machine with the server, so fewer threads leave more CPU to the server.
    #[arg(long, global = true, default_value_t = 0)]
    threads: usize,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign through the HTTPS API (the same as `nitro-wallet bench`).
    Http(BenchArgs),
    /// Sign transactions on the enclave protocol, directly on its Unix socket.
    Enclave(enclave::EnclaveArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if cli.threads > 0 {
        builder.worker_threads(cli.threads);
    }
    let runtime = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Http(args) => nitro_wallet_bench::run(args).await,
            Command::Enclave(args) => enclave::run(args).await.and_then(|report| {
                report.print(false);
                match report.errors() {
                    0 => Ok(()),
                    n => Err(format!("{n} request(s) failed").into()),
                }
            }),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
