//! `nitro-wallet-bench`: how many signatures per second the system delivers end to end.
//!
//! Two layers are measured separately so that their costs can be told apart:
//! - `http`: the public HTTPS API (`POST /v1/keys/{address}/sign/transaction`) over one shared
//!   client, HTTP/2 through ALPN or HTTP/1.1 keep-alive;
//! - `enclave`: the host↔enclave frame protocol straight on the enclave's Unix socket, one
//!   connection with many requests in flight, which leaves out HTTP, TLS and the host.
//!
//! Both keep a fixed number of requests in flight until a fixed number are done (so a run is
//! bounded), check every reply, and print throughput, latency percentiles and, when given the
//! server's process ids, the CPU time the server spent (signatures per server CPU-second).
//! Nothing here asserts on timings: the numbers are printed for people to compare.

mod cpu;
mod enclave;
mod http;
mod report;

use clap::{Parser, Subcommand};
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
    /// Sign transactions through the HTTPS API.
    Http(http::HttpArgs),
    /// Sign transactions on the enclave protocol, directly on its Unix socket.
    Enclave(enclave::EnclaveArgs),
}

/// Load shape and measurement options shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LoadArgs {
    /// Requests kept in flight.
    #[arg(long, default_value_t = 64)]
    pub(crate) concurrency: usize,
    /// Sign requests measured (the run stops after this many).
    #[arg(long, default_value_t = 20_000)]
    pub(crate) requests: u64,
    /// Sign requests sent before measuring (connection set-up, key cache, allocator).
    #[arg(long, default_value_t = 1_000)]
    pub(crate) warmup: u64,
    /// A server process whose CPU time to report, as `LABEL=PID` or `PID`; repeatable.
    #[arg(long = "server-pid", value_name = "LABEL=PID")]
    pub(crate) server_pids: Vec<cpu::ServerPid>,
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
            Command::Http(args) => http::run(args).await,
            Command::Enclave(args) => enclave::run(args).await,
        }
    });
    match result {
        Ok(report) => {
            report.print();
            if report.outcome.errors == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Errors of a benchmark run that prevent a report (set-up failures); failed sign requests
/// are counted in the report instead.
pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// The JSON-RPC transaction object signed by every request; only the nonce varies.
pub(crate) fn transaction_json(nonce: u64) -> String {
    format!(
        r#"{{"chainId":"0x7a69","nonce":"{nonce:#x}","gas":"0x5208","maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x3b9aca00","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"0x1"}}"#
    )
}
