//! Prometheus metrics (`GET /metrics`, text exposition format 0.0.4).
//!
//! One [`Metrics`] per server, held in the handlers' state: no global registry, so tests and
//! dev mode can run several servers in one process. What is counted, and where:
//!
//! - HTTP requests by method, route **template** and status, and their latency by route
//!   ([`Metrics::observe_http`], from the API's outermost middleware). Routes are axum's
//!   `MatchedPath` (`/v1/keys/{address}/sign/message`), never the raw path, which holds
//!   addresses; requests that match no route count under `unmatched`.
//! - Enclave calls: latency by operation and enclave, policy denials by rule, and per-key
//!   signing counts when `per_key_labels` is on ([`crate::enclave_pool::PoolMetrics`], in the
//!   pool's call path).
//! - Enclave health and load, and each enclave's own counters (key cache, KMS calls and errors)
//!   from its last answered health probe: read from the pool at scrape time, so they cost the
//!   request path nothing.
//! - Supervisor restarts, when the supervisor runs in this process (dev mode), or on
//!   `nitro-wallet supervise --metrics-listen`.
//!
//! No metric carries key material, a token or (unless `per_key_labels`) an address.

use crate::enclave_pool::{EnclavePool, MemberState};
use axum::extract::MatchedPath;
use prometheus_client::{
    collector::Collector,
    encoding::{
        DescriptorEncoder, EncodeLabelSet, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
    },
    metrics::{
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::ConstGauge,
        histogram::{exponential_buckets, Histogram},
        MetricType,
    },
    registry::{Registry, Unit},
};
use std::{fmt::Write as _, sync::Arc, time::Duration};

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Latency buckets, seconds: 100 µs (a cached-key signature inside the enclave) doubling to
/// about 3.3 s (KMS under throttling), 16 buckets.
pub fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// A family of latency histograms with [`latency_histogram`]'s buckets.
pub type LatencyFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The metrics of one server.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: LatencyFamily<RouteLabel>,
    restarts: Restarts,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new(Restarts::default())
    }
}

impl Metrics {
    /// An empty registry with the HTTP and supervisor metrics; `restarts` is shared with an
    /// in-process supervisor (dev mode), or stays at zero.
    pub fn new(restarts: Restarts) -> Metrics {
        let mut registry = Registry::with_prefix("nitro_wallet");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            http_requests.clone(),
        );
        let http_duration: LatencyFamily<RouteLabel> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time to answer an HTTP request, by route template",
            Unit::Seconds,
            http_duration.clone(),
        );
        restarts.register(&mut registry);
        Metrics {
            registry,
            http_requests,
            http_duration,
            restarts,
        }
    }

    /// The metrics of `nitro-wallet supervise`: its restarts alone.
    pub fn for_supervisor(restarts: Restarts) -> Metrics {
        let mut registry = Registry::with_prefix("nitro_wallet");
        restarts.register(&mut registry);
        Metrics {
            registry,
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            restarts,
        }
    }

    /// Adds the enclave pool's metrics: call latency, policy denials (and per-key counts when
    /// `per_key_labels`), and its health and the enclaves' own counters, read at scrape time.
    pub fn register_pool(&mut self, pool: Arc<EnclavePool>, per_key_labels: bool) {
        pool.metrics().register(&mut self.registry, per_key_labels);
        self.registry
            .register_collector(Box::new(PoolCollector(pool)));
    }

    /// The supervisor restart counter.
    pub fn restarts(&self) -> &Restarts {
        &self.restarts
    }

    /// Counts one answered HTTP request.
    pub fn observe_http(
        &self,
        method: &axum::http::Method,
        route: Option<&MatchedPath>,
        status: u16,
        elapsed: Duration,
    ) {
        let route = Route(route.cloned());
        self.http_duration
            .get_or_create(&RouteLabel {
                route: route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method_label(method),
                route,
                status,
            })
            .inc();
    }

    /// Every metric in the Prometheus text format.
    ///
    /// # Errors
    /// Only if formatting fails, which writing to a `String` does not.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(16 * 1024);
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// `metrics` as an HTTP response in the text format (500 in the impossible case that
/// formatting fails).
pub fn exposition(metrics: &Metrics) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    match metrics.encode() {
        Ok(text) => ([(axum::http::header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        Err(_) => axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A plain-HTTP router serving `GET /metrics` (no token) for a listener of its own, which
/// belongs on a private interface.
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move { exposition(&metrics) }
        }),
    )
}

/// [`router`] on a plain-HTTP listener of its own, in the background; stops when dropped.
#[derive(Debug)]
pub struct MetricsListener {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsListener {
    /// Binds `addr` and serves `metrics` there.
    ///
    /// # Errors
    /// When `addr` cannot be bound.
    pub async fn start(
        addr: std::net::SocketAddr,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<MetricsListener> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        tracing::info!(%addr, "serving metrics over plain HTTP at /metrics");
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router(metrics)).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
        Ok(MetricsListener { addr, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Restarts of supervised enclaves, by enclave name. Clones count into the same series.
#[derive(Debug, Clone, Default)]
pub struct Restarts(Family<EnclaveNameLabel, Counter>);

impl Restarts {
    /// Counts one restart (or failed start) of `enclave`.
    pub fn inc(&self, enclave: &str) {
        self.0
            .get_or_create(&EnclaveNameLabel {
                enclave: enclave.to_owned(),
            })
            .inc();
    }

    /// Restarts of `enclave` so far.
    pub fn get(&self, enclave: &str) -> u64 {
        self.0
            .get(&EnclaveNameLabel {
                enclave: enclave.to_owned(),
            })
            .map_or(0, |c| c.get())
    }

    /// Adds the counter to `registry`.
    fn register(&self, registry: &mut Registry) {
        registry.register(
            "supervisor_restarts",
            "Enclaves the supervisor terminated and started again, by enclave name",
            self.0.clone(),
        );
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: Route,
    status: u16,
}

/// `enclave`: a supervised enclave's configured name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct EnclaveNameLabel {
    enclave: String,
}

/// `route`: the matched route template, or `unmatched`. Cloning a `MatchedPath` is a reference
/// count, so a request allocates nothing for its labels once its series exists.
#[derive(Debug, Clone, EncodeLabelSet, PartialEq, Eq, Hash)]
struct RouteLabel {
    route: Route,
}

#[derive(Debug, Clone)]
struct Route(Option<MatchedPath>);

impl Route {
    fn as_str(&self) -> &str {
        self.0.as_ref().map_or("unmatched", MatchedPath::as_str)
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl EncodeLabelValue for Route {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

fn method_label(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::OPTIONS => "OPTIONS",
        axum::http::Method::PATCH => "PATCH",
        // Arbitrary methods would make arbitrary series.
        _ => "other",
    }
}

/// The pool's health and the enclaves' own counters, read at each scrape.
#[derive(Debug)]
struct PoolCollector(Arc<EnclavePool>);

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EnclaveLabel {
    enclave: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EnclaveKindLabel {
    enclave: String,
    operation: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct EnclaveCodeLabel {
    enclave: String,
    code: String,
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let health = self.0.health();
        let members = &health.enclaves;
        let names: Vec<&str> = members.iter().map(|m| m.endpoint.as_str()).collect();

        let ready = ConstGauge::new(i64::from(health.ready));
        ready.encode(encoder.encode_descriptor(
            "enclaves_ready",
            "1 when at least one enclave answered its last health probe",
            None,
            MetricType::Gauge,
        )?)?;
        gauge(
            &mut encoder,
            "enclave_up",
            "1 when the enclave answered its last health probe (a ping that signs), else 0",
            members.iter().zip(&names).map(|(m, n)| {
                (
                    EnclaveLabel {
                        enclave: (*n).to_owned(),
                    },
                    i64::from(m.state == MemberState::Up),
                )
            }),
        )?;
        gauge(
            &mut encoder,
            "enclave_in_flight",
            "Requests sent to the enclave and not answered yet",
            members.iter().zip(&names).map(|(m, n)| {
                (
                    EnclaveLabel {
                        enclave: (*n).to_owned(),
                    },
                    i64::try_from(m.in_flight).unwrap_or(i64::MAX),
                )
            }),
        )?;
        counter(
            &mut encoder,
            "enclave_served",
            "Requests the enclave answered since this host started",
            members.iter().zip(&names).map(|(m, n)| {
                (
                    EnclaveLabel {
                        enclave: (*n).to_owned(),
                    },
                    m.served,
                )
            }),
        )?;
        counter(
            &mut encoder,
            "enclave_downs",
            "Times the enclave was marked down since this host started",
            members.iter().zip(&names).map(|(m, n)| {
                (
                    EnclaveLabel {
                        enclave: (*n).to_owned(),
                    },
                    m.downs,
                )
            }),
        )?;
        gauge(
            &mut encoder,
            "enclave_cached_keys",
            "Plaintext keys held in the enclave's cache, as of its last health probe",
            members.iter().zip(&names).filter_map(|(m, n)| {
                let keys = i64::try_from(m.cached_keys?).unwrap_or(i64::MAX);
                Some((
                    EnclaveLabel {
                        enclave: (*n).to_owned(),
                    },
                    keys,
                ))
            }),
        )?;

        // The enclaves' own counters (since each enclave process started; a restart resets
        // them, which Prometheus' rate() handles as a counter reset).
        let stats: Vec<_> = members
            .iter()
            .zip(&names)
            .filter_map(|(m, n)| Some((*n, m.stats.as_ref()?)))
            .collect();
        counter(
            &mut encoder,
            "enclave_key_cache_hits",
            "Signing requests whose key was in the enclave's cache (no KMS call)",
            stats.iter().map(|(n, s)| {
                (
                    EnclaveLabel {
                        enclave: (*n).to_owned(),
                    },
                    s.key_cache_hits,
                )
            }),
        )?;
        counter(
            &mut encoder,
            "enclave_key_cache_misses",
            "Signing requests whose key had to be unwrapped with KMS first",
            stats.iter().map(|(n, s)| {
                (
                    EnclaveLabel {
                        enclave: (*n).to_owned(),
                    },
                    s.key_cache_misses,
                )
            }),
        )?;
        counter(
            &mut encoder,
            "enclave_kms_calls",
            "KMS calls the enclave made, by operation (encrypt, decrypt)",
            stats.iter().flat_map(|(n, s)| {
                bounded(&s.kms_calls).map(|(op, v)| {
                    (
                        EnclaveKindLabel {
                            enclave: (*n).to_owned(),
                            operation: op.to_owned(),
                        },
                        v,
                    )
                })
            }),
        )?;
        counter(
            &mut encoder,
            "enclave_kms_errors",
            "KMS calls that failed, by error code (kms_denied, kms_unavailable, ...)",
            stats.iter().flat_map(|(n, s)| {
                bounded(&s.kms_errors).map(|(code, v)| {
                    (
                        EnclaveCodeLabel {
                            enclave: (*n).to_owned(),
                            code: code.to_owned(),
                        },
                        v,
                    )
                })
            }),
        )?;
        Ok(())
    }
}

/// Label values an enclave reported, kept to a few plain names: the enclave is trusted, but a
/// confused one must not be able to flood the scrape with series.
fn bounded(map: &std::collections::BTreeMap<String, u64>) -> impl Iterator<Item = (&str, u64)> {
    map.iter()
        .filter(|(k, _)| {
            (1..=32).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
        })
        .take(16)
        .map(|(k, v)| (k.as_str(), *v))
}

/// Writes one gauge metric with a sample per label set (no descriptor when there are none).
fn gauge<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, i64)>,
) -> Result<(), std::fmt::Error> {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in samples {
        ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes one counter metric (`<name>_total`) with a sample per label set.
fn counter<L: EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in samples {
        ConstCounter::new(value).encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_metrics_use_route_templates_and_bounded_methods() {
        let metrics = Metrics::default();
        metrics.observe_http(
            &axum::http::Method::POST,
            None,
            404,
            Duration::from_millis(3),
        );
        metrics.observe_http(
            &axum::http::Method::from_bytes(b"BREW").unwrap(),
            None,
            405,
            Duration::from_millis(1),
        );
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                r#"nitro_wallet_http_requests_total{method="POST",route="unmatched",status="404"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"method="other""#), "{text}");
        assert!(
            text.contains(
                r#"nitro_wallet_http_request_duration_seconds_count{route="unmatched"} 2"#
            ),
            "{text}"
        );
    }

    #[test]
    fn restarts_count_per_enclave_and_clones_share_them() {
        let restarts = Restarts::default();
        let metrics = Metrics::new(restarts.clone());
        restarts.inc("enclave-1");
        restarts.inc("enclave-1");
        assert_eq!(metrics.restarts().get("enclave-1"), 2);
        assert_eq!(metrics.restarts().get("enclave"), 0);
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(r#"nitro_wallet_supervisor_restarts_total{enclave="enclave-1"} 2"#),
            "{text}"
        );
    }

    #[test]
    fn enclave_reported_label_values_are_bounded() {
        let mut map = std::collections::BTreeMap::new();
        map.insert("decrypt".to_owned(), 3);
        map.insert("Bad Label\"".to_owned(), 1);
        map.insert("x".repeat(40), 1);
        for i in 0..40 {
            map.insert(format!("op_{}", "a".repeat(i % 26 + 1)), 1);
        }
        let kept: Vec<_> = bounded(&map).collect();
        assert!(kept.len() <= 16);
        assert!(kept.iter().all(|(k, _)| !k.contains(' ') && k.len() <= 32));
        assert!(kept.contains(&("decrypt", 3)), "{kept:?}");
    }
}
