//! Load generator of nitro-wallet: `nitro-wallet bench`, like pgbench or redis-benchmark.
//!
//! It signs a mix of operations (EIP-1559 and legacy transactions, personal messages, typed
//! data) over HTTPS keep-alive connections (HTTP/2 or HTTP/1.1), in closed loop (a fixed
//! number of requests in flight) or open loop (a fixed rate, latency measured from each
//! request's scheduled time), against nitro-wallet's REST routes, its `/rpc` endpoint, or any
//! Ethereum JSON-RPC node with unlocked accounts (anvil), so that both can be measured with
//! the same generator. Every answer is checked. It prints requests/s, latency percentiles,
//! errors by status and, measured in the same run, the in-process signing limit of the same
//! operations on all cores ([`limit`]) and the ratio of the two.
//!
//! Every run is bounded (by count or duration); a run with any failed request returns an
//! error, so that scripts and the test command can use it as a smoke test. Nothing here
//! asserts on timings: the numbers are for people to compare.
//!
//! [`enclave`] measures the host↔enclave protocol alone, on the enclave's socket (the
//! `nitro-wallet-bench enclave` binary).

pub mod cpu;
pub mod enclave;
pub mod limit;
mod load;
pub mod ops;
pub mod report;
mod target;

use cpu::{Sample, ServerPid, Usage};
use ops::Mix;
use report::Report;
use std::{path::PathBuf, str::FromStr, sync::Arc, time::Duration};
use target::Target;

/// Errors of a benchmark run that prevent a report (set-up failures) or that it found
/// (failed requests).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Where to send requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TargetKind {
    /// nitro-wallet's REST routes, `/v1/keys/{address}/sign/…`.
    Rest,
    /// nitro-wallet's JSON-RPC endpoint, `/rpc` (`eth_signTransaction`, `personal_sign`,
    /// `eth_signTypedData_v4`).
    Rpc,
    /// Any Ethereum JSON-RPC node at `--url` with unlocked accounts (`--from`, or the first
    /// `--keys` of `eth_accounts`), e.g. anvil; no token.
    Node,
}

impl TargetKind {
    fn name(self) -> &'static str {
        match self {
            TargetKind::Rest => "rest",
            TargetKind::Rpc => "rpc",
            TargetKind::Node => "node",
        }
    }
}

/// HTTP version of the connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum HttpVersion {
    /// HTTP/1.1 keep-alive, one connection per request in flight.
    #[value(name = "1.1")]
    Http1,
    /// HTTP/2, requests multiplexed on `--connections` connections.
    #[value(name = "2")]
    Http2,
}

/// A duration such as `10s`, `500ms`, `2m` or `1.5` (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

impl FromStr for DurationArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (number, unit) = s.split_at(split);
        let n: f64 = number
            .parse()
            .map_err(|_| format!("`{s}` is not a duration like 10s, 500ms or 2m"))?;
        let secs = match unit.trim() {
            "" | "s" => n,
            "ms" => n / 1e3,
            "m" | "min" => n * 60.0,
            other => return Err(format!("unknown unit `{other}` in `{s}`: use ms, s or m")),
        };
        Duration::try_from_secs_f64(secs)
            .map(DurationArg)
            .map_err(|_| format!("`{s}` is out of range"))
    }
}

/// Options of `nitro-wallet bench`. The defaults target the local `nitro-wallet dev`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = "Examples:\n  \
    nitro-wallet bench --duration 10s --concurrency 64\n  \
    nitro-wallet bench --mix eip1559=70,legacy=10,message=10,typed-data=10 --keys 100\n  \
    nitro-wallet bench --rate 3000 --duration 20s --concurrency 1024   # open loop\n  \
    nitro-wallet bench --target node --url http://127.0.0.1:8545 --http 1.1   # anvil")]
pub struct BenchArgs {
    /// Server URL (for `--target node`, the JSON-RPC endpoint itself).
    #[arg(
        long,
        env = "NITRO_WALLET_URL",
        default_value = "https://127.0.0.1:8443"
    )]
    pub url: String,
    /// API token (prefer NITRO_WALLET_TOKEN or --token-file: arguments show up in `ps`).
    #[arg(long, env = "NITRO_WALLET_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the API token [default: DEV_DIR/api-token].
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// PEM certificate to trust for the server [default: DEV_DIR/tls/cert.pem if present].
    #[arg(long, env = "NITRO_WALLET_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Data directory of `nitro-wallet dev`, for the defaults above.
    #[arg(
        long,
        env = "NITRO_WALLET_DEV_DIR",
        default_value = ".nitro-wallet-dev"
    )]
    pub dev_dir: PathBuf,
    /// What to send requests to.
    #[arg(long, value_enum, default_value = "rest")]
    pub target: TargetKind,
    /// Signing account of `--target node` (repeatable); default: its `eth_accounts`.
    #[arg(long)]
    pub from: Vec<String>,
    /// Operations and their weights.
    #[arg(long, default_value = "eip1559=100")]
    pub mix: Mix,
    /// Requests in flight (closed loop); in open loop, the most in flight at once (a request
    /// that finds none free waits, and the wait counts in its latency).
    #[arg(long, short = 'c', default_value_t = 64)]
    pub concurrency: usize,
    /// Open loop: send this many requests per second on a fixed schedule.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measure for this long (e.g. 10s); the default when --requests is absent.
    #[arg(long, conflicts_with = "requests")]
    pub duration: Option<DurationArg>,
    /// Measure this many requests.
    #[arg(long, short = 'n')]
    pub requests: Option<u64>,
    /// Requests sent before measuring (connections, caches), closed loop.
    #[arg(long, default_value_t = 200)]
    pub warmup: u64,
    /// Signing keys, requests spread over them; missing ones are created (`rest`, `rpc`).
    #[arg(long, default_value_t = 1)]
    pub keys: usize,
    /// HTTP version.
    #[arg(long, value_enum, default_value = "2")]
    pub http: HttpVersion,
    /// Same as `--http 1.1`.
    #[arg(long, hide = true)]
    pub http1: bool,
    /// Independent clients, each with its own connection(s); requests are spread over them.
    #[arg(long, default_value_t = 1)]
    pub connections: usize,
    /// Deadline of one request.
    #[arg(long, default_value = "30s")]
    pub timeout: DurationArg,
    /// How long to measure the in-process signing limit after the run (0 skips it).
    #[arg(long, default_value = "2s")]
    pub limit_duration: DurationArg,
    /// A server process whose CPU time to report, as `LABEL=PID` or `PID`; repeatable.
    #[arg(long = "server-pid", value_name = "LABEL=PID")]
    pub server_pids: Vec<ServerPid>,
    /// Show a progress line on standard error (the default when it is a terminal).
    #[arg(long)]
    pub progress: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

impl BenchArgs {
    fn token(&self) -> Result<String, Error> {
        if let Some(t) = &self.token {
            return Ok(t.clone());
        }
        let path = self
            .token_file
            .clone()
            .unwrap_or_else(|| self.dev_dir.join("api-token"));
        let token = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read the API token from {}: {e}; pass --token-file or set \
                 NITRO_WALLET_TOKEN (is `nitro-wallet dev` running?)",
                path.display()
            )
        })?;
        Ok(token.trim().to_owned())
    }

    fn ca_cert(&self) -> Option<PathBuf> {
        self.ca_cert.clone().or_else(|| {
            let dev = self.dev_dir.join("tls").join("cert.pem");
            dev.is_file().then_some(dev)
        })
    }
}

/// Runs a benchmark and prints its report.
///
/// # Errors
/// When the run cannot be set up, or when any request failed (after the report is printed).
pub async fn run(mut args: BenchArgs) -> Result<(), Error> {
    if args.http1 {
        args.http = HttpVersion::Http1;
    }
    if args.concurrency == 0 || args.connections == 0 || args.keys == 0 {
        return Err("--concurrency, --connections and --keys must be at least 1".into());
    }
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err("--rate must be a positive number of requests per second".into());
    }
    let progress = args.progress || std::io::IsTerminal::is_terminal(&std::io::stderr());
    let report = measure(&args, progress).await?;
    report.print(args.json);
    match report.errors() {
        0 => Ok(()),
        n => Err(format!("{n} request(s) failed; the first: {}", first_error(&report)).into()),
    }
}

fn first_error(report: &Report) -> String {
    report.outcome.first_error.clone().unwrap_or_default()
}

/// Warm-up, measured phase and in-process limit; the report.
async fn measure(args: &BenchArgs, progress: bool) -> Result<Report, Error> {
    let target = Arc::new(Target::connect(args).await?);
    let mix = Arc::new(args.mix.clone());
    if args.warmup > 0 {
        let stop = load::Stop {
            requests: Some(args.warmup),
            duration: None,
        };
        let warm = load::closed_loop(&target, &mix, args.concurrency, 0, stop, false).await;
        if warm.errors > 0 {
            return Err(format!(
                "{} of {} warm-up requests failed; the first: {}",
                warm.errors,
                args.warmup,
                warm.first_error.unwrap_or_default()
            )
            .into());
        }
    }
    let stop = load::Stop {
        requests: args.requests,
        duration: match (args.requests, args.duration) {
            (None, None) => Some(Duration::from_secs(10)),
            (_, d) => d.map(|d| d.0),
        },
    };
    let before = Sample::take(&args.server_pids);
    let outcome = match args.rate {
        None => {
            load::closed_loop(&target, &mix, args.concurrency, args.warmup, stop, progress).await
        }
        Some(rate) => {
            load::open_loop(
                &target,
                &mix,
                rate,
                args.concurrency,
                args.warmup,
                stop,
                progress,
            )
            .await
        }
    };
    let after = Sample::take(&args.server_pids);
    // After the run, so that it takes no CPU from it.
    let limit = if args.limit_duration.0.is_zero() {
        None
    } else {
        let (mix, d) = (args.mix.clone(), args.limit_duration.0);
        Some(tokio::task::spawn_blocking(move || limit::measure(&mix, d)).await??)
    };
    let http = match args.http {
        HttpVersion::Http1 => "HTTP/1.1",
        HttpVersion::Http2 => "HTTP/2",
    };
    let load = match args.rate {
        None => format!("closed loop, {} in flight", args.concurrency),
        Some(r) => format!(
            "open loop, {r} requests/s, at most {} in flight",
            args.concurrency
        ),
    };
    Ok(Report {
        title: format!("{} ({http})", target.describe()),
        params: vec![
            ("load", load),
            ("mix", args.mix.to_string()),
            ("keys", target.keys.len().to_string()),
            ("connections", args.connections.to_string()),
            ("warm-up requests", args.warmup.to_string()),
        ],
        outcome,
        cpu: Usage::between(&args.server_pids, &before, &after),
        limit,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_durations() {
        let d = |s: &str| s.parse::<DurationArg>().map(|d| d.0);
        assert_eq!(d("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(d("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(d("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(d("1.5"), Ok(Duration::from_millis(1500)));
        assert!(d("10h").is_err());
        assert!(d("s").is_err());
        assert!(d("-1s").is_err());
    }

    #[test]
    fn defaults_target_dev_mode() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        let cli = Cli::try_parse_from(["bench", "--dev-dir", "/nonexistent"]).unwrap();
        assert_eq!(cli.bench.url, "https://127.0.0.1:8443");
        assert_eq!(cli.bench.target, TargetKind::Rest);
        assert_eq!(cli.bench.http, HttpVersion::Http2);
        let e = cli.bench.token().unwrap_err().to_string();
        assert!(e.contains("/nonexistent/api-token"), "{e}");
        let cli = Cli::try_parse_from(["bench", "--duration", "1s", "--requests", "5"]);
        assert!(cli.is_err(), "--duration and --requests conflict");
    }
}
