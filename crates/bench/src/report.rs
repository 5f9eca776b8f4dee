//! Results of a run and how they are printed: one `key: value` line each, so that people can
//! read them and scripts can `grep` them, or one JSON object (`--json`).

use crate::{cpu::Usage, limit::Limit};
use std::{collections::BTreeMap, time::Duration};

/// What one phase (warm-up or measurement) produced.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Latency of every successful request.
    pub(crate) latencies: Vec<Duration>,
    /// Failed requests (transport error, unexpected status or malformed reply).
    pub(crate) errors: u64,
    /// Failed requests by label: the HTTP status (`503`), `transport`, `timeout`, `invalid`…
    pub(crate) statuses: BTreeMap<String, u64>,
    /// The first failure, to show what went wrong.
    pub(crate) first_error: Option<String>,
    /// Wall-clock time of the phase.
    pub(crate) elapsed: Duration,
}

impl Outcome {
    /// Records a failure.
    pub(crate) fn fail(&mut self, error: impl Into<String>) {
        self.fail_as("error", error);
    }

    /// Records a failure counted under `label`.
    pub(crate) fn fail_as(&mut self, label: &str, error: impl Into<String>) {
        self.errors += 1;
        *self.statuses.entry(label.to_owned()).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.into());
        }
    }
}

/// A finished benchmark.
#[derive(Debug)]
pub struct Report {
    /// What was measured, e.g. `http (HTTP/2)`.
    pub(crate) title: String,
    /// Parameters worth printing, in order.
    pub(crate) params: Vec<(&'static str, String)>,
    /// The measured phase.
    pub(crate) outcome: Outcome,
    /// CPU spent during the measured phase.
    pub(crate) cpu: Usage,
    /// The in-process signing limit, when measured.
    pub(crate) limit: Option<Limit>,
}

/// Latency quantiles reported, with their names.
const QUANTILES: [(&str, f64); 5] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("max", 1.0),
];

impl Report {
    /// Prints the report on standard output, as text or as one JSON object.
    pub fn print(&self, json: bool) {
        if json {
            println!("{}", self.to_json());
        } else {
            print!("{self}");
        }
    }

    /// Successful signatures per second of the measured phase.
    pub fn rate(&self) -> f64 {
        let secs = self.outcome.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.outcome.latencies.len() as f64 / secs
        } else {
            0.0
        }
    }

    /// Failed requests.
    pub fn errors(&self) -> u64 {
        self.outcome.errors
    }

    /// The report as JSON, for scripts.
    pub fn to_json(&self) -> serde_json::Value {
        let o = &self.outcome;
        let mut sorted = o.latencies.clone();
        sorted.sort_unstable();
        let latency: serde_json::Map<String, serde_json::Value> = QUANTILES
            .iter()
            .filter_map(|(name, q)| {
                let d = percentile(&sorted, *q)?;
                Some((format!("{name}_ms"), (d.as_secs_f64() * 1e3).into()))
            })
            .collect();
        let params: serde_json::Map<String, serde_json::Value> = self
            .params
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone().into()))
            .collect();
        let rate = self.rate();
        serde_json::json!({
            "title": self.title,
            "params": params,
            "requests": o.latencies.len() as u64 + o.errors,
            "ok": o.latencies.len(),
            "errors": o.errors,
            "errors_by_status": o.statuses,
            "first_error": o.first_error,
            "seconds": o.elapsed.as_secs_f64(),
            "signatures_per_second": rate,
            "latency": latency,
            "server_cpu_seconds": self.cpu.server_total(),
            "machine_busy": self.cpu.machine_busy.map(|(b, _)| b),
            "in_process_limit": self.limit.map(|l| serde_json::json!({
                "signatures_per_second": l.per_second,
                "threads": l.threads,
            })),
            "ratio_to_limit": self.limit.map(|l| rate / l.per_second),
        })
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let o = &self.outcome;
        let line = |f: &mut std::fmt::Formatter<'_>, k: &str, v: &dyn std::fmt::Display| {
            writeln!(f, "{:<26}{v}", format!("{k}:"))
        };
        writeln!(f, "== {} ==", self.title)?;
        for (k, v) in &self.params {
            line(f, k, v)?;
        }
        let done = o.latencies.len() as u64 + o.errors;
        let secs = o.elapsed.as_secs_f64();
        line(f, "requests", &done)?;
        line(f, "errors", &o.errors)?;
        for (label, n) in &o.statuses {
            line(f, &format!("errors {label}"), n)?;
        }
        if let Some(e) = &o.first_error {
            line(f, "first error", e)?;
        }
        line(f, "seconds", &format_args!("{secs:.3}"))?;
        let ok = o.latencies.len() as f64;
        let rate = if secs > 0.0 { ok / secs } else { 0.0 };
        line(f, "signatures/s", &format_args!("{rate:.0}"))?;
        if rate > 0.0 {
            line(
                f,
                "µs per signature (wall)",
                &format_args!("{:.1}", 1e6 / rate),
            )?;
        }
        let mut sorted = o.latencies.clone();
        sorted.sort_unstable();
        for (name, q) in QUANTILES {
            if let Some(d) = percentile(&sorted, q) {
                line(
                    f,
                    &format!("latency {name}"),
                    &format_args!("{:.3} ms", d.as_secs_f64() * 1e3),
                )?;
            }
        }
        write!(f, "{}", self.cpu)?;
        if let Some(server) = self.cpu.server_total() {
            if server > 0.0 {
                line(
                    f,
                    "signatures/server-cpu-s",
                    &format_args!("{:.0}", ok / server),
                )?;
                line(
                    f,
                    "server cpu µs/signature",
                    &format_args!("{:.1}", server * 1e6 / ok.max(1.0)),
                )?;
            }
        }
        if let Some(limit) = &self.limit {
            line(
                f,
                "in-process limit",
                &format_args!(
                    "{:.0} signatures/s ({} threads, nitro-wallet-eth only)",
                    limit.per_second, limit.threads
                ),
            )?;
            line(
                f,
                "ratio to limit",
                &format_args!("{:.1} %", 100.0 * rate / limit.per_second),
            )?;
        }
        Ok(())
    }
}

/// The `q` quantile (nearest rank) of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&v, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&v, 1.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(
            percentile(&[Duration::from_millis(3)], 0.0),
            Some(Duration::from_millis(3))
        );
    }
}
