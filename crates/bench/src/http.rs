//! `http`: signing through the HTTPS API, as a client would.
//!
//! One shared `reqwest` client (several with `--connections`): over HTTP/2 every request is a
//! stream on one TLS connection, over HTTP/1.1 the pool holds one keep-alive connection per
//! request in flight. No TLS handshake happens in the measured phase: the warm-up opens every
//! connection first.

use crate::{
    cpu::{Sample, Usage},
    report::{Outcome, Report},
    Error, LoadArgs,
};
use reqwest::{header, Client, StatusCode, Version};
use std::{
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

/// Options of `nitro-wallet-bench http`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct HttpArgs {
    /// Base URL of the API, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    url: String,
    /// File holding the API token.
    #[arg(long)]
    token_file: PathBuf,
    /// PEM certificate to trust (dev mode's self-signed DIR/tls/cert.pem).
    #[arg(long)]
    ca_cert: PathBuf,
    /// Use HTTP/1.1 keep-alive instead of HTTP/2.
    #[arg(long)]
    http1: bool,
    /// Independent clients, each with its own connection(s); requests are spread over them.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    #[command(flatten)]
    load: LoadArgs,
}

/// What every sign request needs.
#[derive(Debug)]
struct Target {
    clients: Vec<Client>,
    sign_url: String,
    authorization: header::HeaderValue,
    address: String,
    version: Version,
}

/// Runs the benchmark.
///
/// # Errors
/// When the client cannot be built or the key cannot be created.
pub(crate) async fn run(args: HttpArgs) -> Result<Report, Error> {
    let load = &args.load;
    if load.concurrency == 0 || args.connections == 0 {
        return Err("--concurrency and --connections must be at least 1".into());
    }
    let token = std::fs::read_to_string(&args.token_file)
        .map_err(|e| format!("cannot read {}: {e}", args.token_file.display()))?;
    let mut authorization = header::HeaderValue::from_str(&format!("Bearer {}", token.trim()))?;
    authorization.set_sensitive(true);
    let pem = std::fs::read(&args.ca_cert)
        .map_err(|e| format!("cannot read {}: {e}", args.ca_cert.display()))?;
    let ca = reqwest::Certificate::from_pem(&pem)?;
    let version = if args.http1 {
        Version::HTTP_11
    } else {
        Version::HTTP_2
    };

    let clients = (0..args.connections)
        .map(|_| {
            let builder = Client::builder()
                .use_rustls_tls()
                .tls_built_in_root_certs(false)
                .add_root_certificate(ca.clone())
                .timeout(Duration::from_secs(args.timeout_secs))
                .pool_max_idle_per_host(load.concurrency);
            if args.http1 {
                builder.http1_only()
            } else {
                builder
            }
            .build()
        })
        .collect::<Result<Vec<_>, _>>()?;

    let base = args.url.trim_end_matches('/');
    let address = create_key(&clients[0], base, &authorization).await?;
    let target = Arc::new(Target {
        clients,
        sign_url: format!("{base}/v1/keys/{address}/sign/transaction"),
        authorization,
        address,
        version,
    });

    let warmup = phase(&target, load.concurrency, load.warmup, 0).await;
    if warmup.errors > 0 {
        return Err(format!(
            "{} of {} warm-up requests failed; first: {}",
            warmup.errors,
            load.warmup,
            warmup.first_error.unwrap_or_default()
        )
        .into());
    }
    let before = Sample::take(&load.server_pids);
    let outcome = phase(&target, load.concurrency, load.requests, load.warmup).await;
    let after = Sample::take(&load.server_pids);

    Ok(Report {
        title: format!("http ({})", if args.http1 { "HTTP/1.1" } else { "HTTP/2" }),
        params: vec![
            ("url", base.to_owned()),
            ("key", target.address.clone()),
            ("connections", connections_note(&args)),
            ("concurrency", load.concurrency.to_string()),
            ("warm-up requests", load.warmup.to_string()),
        ],
        outcome,
        cpu: Usage::between(&load.server_pids, &before, &after),
    })
}

fn connections_note(args: &HttpArgs) -> String {
    if args.http1 {
        format!(
            "up to {} (HTTP/1.1 keep-alive pool{})",
            args.load.concurrency,
            if args.connections > 1 {
                format!(", {} clients", args.connections)
            } else {
                String::new()
            }
        )
    } else {
        format!("{} (HTTP/2, multiplexed)", args.connections)
    }
}

/// `POST /v1/keys`, returning the new key's address.
async fn create_key(
    client: &Client,
    base: &str,
    authorization: &header::HeaderValue,
) -> Result<String, Error> {
    let response = client
        .post(format!("{base}/v1/keys"))
        .header(header::AUTHORIZATION, authorization.clone())
        .json(&serde_json::json!({ "label": "bench" }))
        .send()
        .await?;
    let status = response.status();
    let body = response.text().await?;
    if status != StatusCode::CREATED {
        return Err(format!("POST /v1/keys answered {status}: {body}").into());
    }
    let value: serde_json::Value = serde_json::from_str(&body)?;
    value["address"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("POST /v1/keys answered without an address: {body}").into())
}

/// Keeps `concurrency` sign requests in flight until `count` are done. Nonces start at
/// `first_nonce`, so every request of a run signs a different transaction.
async fn phase(target: &Arc<Target>, concurrency: usize, count: u64, first_nonce: u64) -> Outcome {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (target, next) = (target.clone(), next.clone());
            tokio::spawn(async move {
                let client = &target.clients[worker % target.clients.len()];
                let mut outcome = Outcome::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let body = crate::transaction_json(first_nonce + i);
                    let start = Instant::now();
                    match sign(client, &target, body).await {
                        Ok(()) => outcome.latencies.push(start.elapsed()),
                        Err(e) => outcome.fail(e),
                    }
                }
                outcome
            })
        })
        .collect();
    let mut total = Outcome::default();
    for worker in workers {
        match worker.await {
            Ok(o) => total.merge(o),
            Err(e) => total.fail(format!("worker failed: {e}")),
        }
    }
    total.elapsed = started.elapsed();
    total
}

/// One sign request, checked: 200, the expected HTTP version, a raw transaction, our address.
async fn sign(client: &Client, target: &Target, body: String) -> Result<(), String> {
    let response = client
        .post(&target.sign_url)
        .header(header::AUTHORIZATION, target.authorization.clone())
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let version = response.version();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("reading the body failed: {e}"))?;
    if status != StatusCode::OK {
        return Err(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&bytes)
        ));
    }
    if version != target.version {
        return Err(format!(
            "answered over {version:?}, expected {:?}",
            target.version
        ));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("reply is not JSON: {e}"))?;
    let raw_ok = value["raw_transaction"]
        .as_str()
        .is_some_and(|r| r.len() > 2 && r.starts_with("0x"));
    let from_ok = value["from"]
        .as_str()
        .is_some_and(|f| f.eq_ignore_ascii_case(&target.address));
    if raw_ok && from_ok {
        Ok(())
    } else {
        Err(format!(
            "reply lacks a raw_transaction from {}: {}",
            target.address,
            String::from_utf8_lossy(&bytes)
        ))
    }
}
