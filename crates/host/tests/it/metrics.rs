//! Observability: `/metrics` after a mixed workload, checked with an independent parser of
//! the Prometheus text format (Python's `prometheus_client`, `prometheus_parse.py`); the request id in `x-request-id` and in
//! the enclave's log line for that request; the metrics listener of its own.

use crate::support::{DevServer, InProcess, TOKEN};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use nitro_wallet::metrics::{Metrics, MetricsListener};
use std::{
    collections::HashMap,
    path::Path,
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};
use tower::ServiceExt;

const TX: &str = r#"{"chainId":"0x1","nonce":"0x0","gas":"21000","maxFeePerGas":"30000000000",
  "maxPriorityFeePerGas":"1000000000","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  "value":"0x1"}"#;

/// Sends a request; returns the status, the `x-request-id` header and the body.
async fn send(
    sys: &InProcess,
    method: &str,
    path: &str,
    token: Option<&str>,
    request_id: Option<&str>,
    body: &str,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(id) = request_id {
        req = req.header("x-request-id", id);
    }
    let response = sys
        .router
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, id, String::from_utf8(bytes.to_vec()).unwrap())
}

/// One sample as `prometheus_parse.py` (Python's `prometheus_client` parser) read it.
#[derive(Debug, serde::Deserialize)]
pub struct Sample {
    /// The metric family (`_total`, `_bucket`, … stripped) and its type.
    family: String,
    #[serde(rename = "type")]
    kind: String,
    name: String,
    labels: HashMap<String, String>,
    value: serde_json::Value,
}

/// Parses an exposition with an independent implementation of the text format: the parser of
/// Python's reference client, which refuses malformed input.
pub fn parse(text: &str) -> Vec<Sample> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/prometheus_parse.py");
    let out = crate::support::run_with_stdin(Command::new("python3").arg(script), text);
    assert!(
        out.status.success(),
        "prometheus_client refused the exposition: {}\n(run ./scripts/test.sh, which installs \
         prometheus-client)\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The sample named `name` whose labels include `labels`.
fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    samples.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).is_some_and(|got| got == v))
    })
}

/// A sample's value; 0 when absent.
pub fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    find(samples, name, labels).map_or(0.0, |s| {
        s.value
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: {:?}", s.value))
    })
}

/// A histogram's observations (`_count`), after checking that its buckets are cumulative and
/// end in `+Inf` with that count; 0 when absent.
fn observations(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let count = value(samples, &format!("{name}_count"), labels);
    let buckets: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.name == format!("{name}_bucket"))
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).is_some_and(|got| got == v))
        })
        .map(|s| {
            let le = s.labels["le"]
                .replace("+Inf", "inf")
                .parse::<f64>()
                .unwrap();
            (le, s.value.as_f64().unwrap())
        })
        .collect();
    if let Some(c) = find(samples, &format!("{name}_count"), labels) {
        assert_eq!((c.family.as_str(), c.kind.as_str()), (name, "histogram"));
        assert!(
            buckets
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{buckets:?}"
        );
        assert_eq!(buckets.last().copied(), Some((f64::INFINITY, count)));
    }
    count
}

async fn scrape(sys: &InProcess) -> (String, Vec<Sample>) {
    let req = Request::get("/metrics")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let response = sys.router.clone().oneshot(req).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    let parsed = parse(&text);
    (text, parsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_as_expected_after_a_mixed_workload() {
    let sys = InProcess::start().await;
    let (_, before) = scrape(&sys).await;
    let route_count = |s: &[Sample], method: &str, route: &str, status: &str| {
        value(
            s,
            "nitro_wallet_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    assert_eq!(route_count(&before, "POST", "/v1/keys", "201"), 0.0);

    // Create a key, sign a transaction and a message, be refused by the policy (no raw
    // digests by default), send an invalid body and an unknown route.
    let (status, _, key) = send(&sys, "POST", "/v1/keys", Some(TOKEN), None, "{}").await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key: serde_json::Value = serde_json::from_str(&key).unwrap();
    let address = key["address"].as_str().unwrap().to_owned();
    let sign = |what: &str| format!("/v1/keys/{address}/sign/{what}");
    let (status, _, body) = send(&sys, "POST", &sign("transaction"), Some(TOKEN), None, TX).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let message = r#"{"message": "hello"}"#;
    let (status, _, body) = send(&sys, "POST", &sign("message"), Some(TOKEN), None, message).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let hash = format!(r#"{{"hash": "0x{}"}}"#, "ab".repeat(32));
    let (status, _, body) = send(&sys, "POST", &sign("hash"), Some(TOKEN), None, &hash).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("raw_hash"), "{body}");
    let (status, _, _) = send(&sys, "POST", &sign("message"), Some(TOKEN), None, "{}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, _) = send(&sys, "GET", "/v1/nothing/here", Some(TOKEN), None, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The scrape itself needs a token.
    let (status, _, _) = send(&sys, "GET", "/metrics", None, None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The enclaves' own counters (key cache, KMS) arrive with the next health probe.
    let deadline = Instant::now() + Duration::from_secs(15);
    let (text, after) = loop {
        let (text, after) = scrape(&sys).await;
        let hits = value(&after, "nitro_wallet_enclave_key_cache_hits_total", &[]);
        if hits >= 2.0 {
            break (text, after);
        }
        assert!(
            Instant::now() < deadline,
            "no key-cache hits reported:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // HTTP requests, by route template and status; no address in any label.
    let tx_route = "/v1/keys/{address}/sign/transaction";
    assert_eq!(route_count(&after, "POST", "/v1/keys", "201"), 1.0);
    assert_eq!(route_count(&after, "POST", tx_route, "200"), 1.0);
    let message_route = "/v1/keys/{address}/sign/message";
    assert_eq!(route_count(&after, "POST", message_route, "200"), 1.0);
    assert_eq!(route_count(&after, "POST", message_route, "422"), 1.0);
    let hash_route = "/v1/keys/{address}/sign/hash";
    assert_eq!(route_count(&after, "POST", hash_route, "403"), 1.0);
    assert_eq!(route_count(&after, "GET", "unmatched", "404"), 1.0);
    assert_eq!(route_count(&after, "GET", "/metrics", "401"), 1.0);
    assert!(
        route_count(&after, "GET", "/metrics", "200") >= 2.0,
        "earlier scrapes are counted"
    );
    assert!(
        observations(
            &after,
            "nitro_wallet_http_request_duration_seconds",
            &[("route", tx_route)]
        ) >= 1.0
    );
    let lower = address.to_lowercase();
    for s in &after {
        for v in s.labels.values() {
            assert!(!v.to_lowercase().contains(&lower), "an address in {s:?}");
        }
    }

    // Enclave calls by operation and enclave, and the denial by its rule.
    let enclave = find(&after, "nitro_wallet_enclave_up", &[])
        .and_then(|s| s.labels.get("enclave"))
        .unwrap_or_else(|| panic!("no enclave_up:\n{text}"))
        .to_owned();
    assert!(enclave.starts_with("unix://"), "{enclave}");
    assert_eq!(value(&after, "nitro_wallet_enclave_up", &[]), 1.0);
    assert_eq!(value(&after, "nitro_wallet_enclaves_ready", &[]), 1.0);
    assert_eq!(value(&after, "nitro_wallet_enclave_in_flight", &[]), 0.0);
    let calls = |op: &str| {
        observations(
            &after,
            "nitro_wallet_enclave_call_duration_seconds",
            &[("operation", op), ("enclave", &enclave)],
        )
    };
    assert_eq!(calls("generate_key"), 1.0);
    assert_eq!(calls("sign_transaction"), 1.0);
    // The valid message, and the raw digest the policy refused (the invalid body never
    // reached the enclave).
    assert_eq!(calls("sign_message"), 1.0);
    assert_eq!(calls("sign_hash"), 1.0);
    assert_eq!(
        value(
            &after,
            "nitro_wallet_policy_denials_total",
            &[("rule", "raw_hash")]
        ),
        1.0
    );
    assert!(value(&after, "nitro_wallet_enclave_served_total", &[]) >= 4.0);

    // The enclave's own counters: the generated key was cached, so both signatures and the
    // refusal found it there; one KMS call wrapped it, none failed.
    assert!(
        value(&after, "nitro_wallet_enclave_key_cache_hits_total", &[]) >= 3.0,
        "{text}"
    );
    assert_eq!(
        value(&after, "nitro_wallet_enclave_key_cache_misses_total", &[]),
        0.0
    );
    assert_eq!(
        value(
            &after,
            "nitro_wallet_enclave_kms_calls_total",
            &[("operation", "encrypt")]
        ),
        1.0
    );
    assert!(find(&after, "nitro_wallet_enclave_kms_errors_total", &[]).is_none());
    assert_eq!(value(&after, "nitro_wallet_enclave_cached_keys", &[]), 1.0);
    // Nothing secret.
    assert!(!text.contains(TOKEN));
}

#[tokio::test]
async fn request_ids_come_back_and_bad_ones_are_replaced() {
    let sys = InProcess::start().await;
    let (status, id, _) = send(&sys, "GET", "/healthz", None, Some("caller-id.1:2_3"), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(id.as_deref(), Some("caller-id.1:2_3"));
    // Errors (here from the token check and the fallback) carry one too.
    for (path, token) in [("/v1/keys", None), ("/nowhere", Some(TOKEN))] {
        let (_, id, _) = send(&sys, "GET", path, token, Some("bad id"), "").await;
        let id = id.expect("x-request-id");
        assert_ne!(id, "bad id");
        assert!(nitro_wallet_protocol::is_valid_request_id(&id), "{id}");
    }
    let (_, a, _) = send(&sys, "GET", "/healthz", None, None, "").await;
    let (_, b, _) = send(&sys, "GET", "/healthz", None, None, "").await;
    assert_ne!(a.unwrap(), b.unwrap());
}

#[tokio::test]
async fn per_key_labels_add_addresses_only_when_asked() {
    let sys = InProcess::with_config(256 * 1024, |config, _| {
        config.metrics.per_key_labels = true;
    })
    .await;
    let (status, _, key) = send(&sys, "POST", "/v1/keys", Some(TOKEN), None, "{}").await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key: serde_json::Value = serde_json::from_str(&key).unwrap();
    let address = key["address"].as_str().unwrap();
    let path = format!("/v1/keys/{address}/sign/transaction");
    let (status, _, body) = send(&sys, "POST", &path, Some(TOKEN), None, TX).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, samples) = scrape(&sys).await;
    let labels = [("address", address), ("operation", "sign_transaction")];
    assert_eq!(
        value(&samples, "nitro_wallet_key_requests_total", &labels),
        1.0
    );
    // Generating a key names no key yet.
    assert_eq!(
        samples
            .iter()
            .filter(|s| s.name == "nitro_wallet_key_requests_total")
            .count(),
        1
    );
}

#[tokio::test]
async fn metrics_on_a_listener_of_their_own_leave_the_api() {
    let sys = InProcess::with_config(256 * 1024, |config, _| {
        config.metrics.listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let (status, _, _) = send(&sys, "GET", "/metrics", Some(TOKEN), None, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let metrics = Arc::new(Metrics::default());
    metrics.restarts().inc("enclave");
    let listener = MetricsListener::start("127.0.0.1:0".parse().unwrap(), metrics)
        .await
        .unwrap();
    let url = format!("http://{}/metrics", listener.local_addr());
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200);
    let scrape = parse(&response.text().await.unwrap());
    assert_eq!(
        value(
            &scrape,
            "nitro_wallet_supervisor_restarts_total",
            &[("enclave", "enclave")]
        ),
        1.0
    );
    drop(listener);
    // Stopped with its handle.
    let deadline = Instant::now() + Duration::from_secs(5);
    while reqwest::get(&url).await.is_ok() {
        assert!(Instant::now() < deadline, "the listener still answers");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The id a caller sends comes back in the header and is on the enclave's log line for the
/// request (the real binaries: host and enclave are separate processes).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_id_reaches_the_enclave_log() {
    let dev = DevServer::start_logging("info,nitro_wallet_enclave=debug");
    let client = dev.client();
    let id = format!("it-{}", std::process::id());
    let response = client
        .post(format!("{}/v1/keys", dev.url))
        .bearer_auth(&dev.token)
        .header("x-request-id", &id)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], id.as_str());

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = std::fs::read_to_string(dev.log_path()).unwrap_or_default();
        let enclave_line = log.lines().find(|l| {
            l.contains("nitro_wallet_enclave::server")
                && l.contains("request handled")
                && l.contains(&id)
        });
        if let Some(line) = enclave_line {
            assert!(line.contains("generate_key"), "{line}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no enclave log line with {id}:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
