//! CPU time from `/proc`: of the server processes (so that throughput can be stated per
//! server CPU-second), of the load generator itself, and of the whole machine (to see
//! whether the CPUs were saturated).

use std::{fmt, str::FromStr};

/// Linux reports `/proc` CPU times in `USER_HZ` ticks, 100 per second on every architecture
/// Linux supports today.
const TICKS_PER_SECOND: f64 = 100.0;

/// A server process to watch, with a label for the report.
#[derive(Debug, Clone)]
pub struct ServerPid {
    pub(crate) label: String,
    pub(crate) pid: u32,
}

impl FromStr for ServerPid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (label, pid) = s.split_once('=').unwrap_or(("", s));
        let pid = pid
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not LABEL=PID or PID"))?;
        let label = if label.is_empty() {
            format!("pid {pid}")
        } else {
            label.to_owned()
        };
        Ok(ServerPid { label, pid })
    }
}

/// CPU counters at one instant.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    servers: Vec<Option<u64>>,
    me: Option<u64>,
    machine: Option<(u64, u64)>,
}

impl Sample {
    /// Reads the counters of `servers`, of this process and of the machine.
    pub(crate) fn take(servers: &[ServerPid]) -> Sample {
        Sample {
            servers: servers
                .iter()
                .map(|s| process_ticks(&s.pid.to_string()))
                .collect(),
            me: process_ticks("self"),
            machine: machine_ticks(),
        }
    }
}

/// CPU spent between two samples.
#[derive(Debug, Clone)]
pub(crate) struct Usage {
    /// Per watched server process: label, pid and CPU seconds (None when unreadable).
    pub(crate) servers: Vec<(String, u32, Option<f64>)>,
    /// CPU seconds of the load generator.
    pub(crate) load_generator: Option<f64>,
    /// Busy fraction of all CPUs of the machine (0..=1) and the number of CPUs.
    pub(crate) machine_busy: Option<(f64, usize)>,
}

impl Usage {
    pub(crate) fn between(servers: &[ServerPid], before: &Sample, after: &Sample) -> Usage {
        let secs =
            |a: Option<u64>, b: Option<u64>| Some(b?.saturating_sub(a?) as f64 / TICKS_PER_SECOND);
        Usage {
            servers: servers
                .iter()
                .zip(before.servers.iter().zip(&after.servers))
                .map(|(s, (a, b))| (s.label.clone(), s.pid, secs(*a, *b)))
                .collect(),
            load_generator: secs(before.me, after.me),
            machine_busy: match (before.machine, after.machine) {
                (Some((busy0, total0)), Some((busy1, total1))) if total1 > total0 => Some((
                    busy1.saturating_sub(busy0) as f64 / (total1 - total0) as f64,
                    std::thread::available_parallelism().map_or(1, |n| n.get()),
                )),
                _ => None,
            },
        }
    }

    /// Total CPU seconds of the watched server processes, if all were readable.
    pub(crate) fn server_total(&self) -> Option<f64> {
        if self.servers.is_empty() {
            return None;
        }
        self.servers.iter().map(|(_, _, s)| *s).sum()
    }
}

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (label, pid, secs) in &self.servers {
            match secs {
                Some(s) => writeln!(f, "{:<26}{s:.2} s  (pid {pid})", format!("cpu {label}:"))?,
                None => writeln!(f, "{:<26}unreadable (pid {pid})", format!("cpu {label}:"))?,
            }
        }
        if let Some(s) = self.load_generator {
            writeln!(f, "{:<26}{s:.2} s", "cpu load generator:")?;
        }
        if let Some((busy, cpus)) = self.machine_busy {
            writeln!(
                f,
                "{:<26}{:.1} % of {cpus} CPUs",
                "cpu busy (machine):",
                busy * 100.0
            )?;
        }
        Ok(())
    }
}

/// utime + stime of a process (all its threads), in ticks.
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count fields
    // after its closing parenthesis, where field 3 (state) is index 0.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// (busy, total) ticks of all CPUs from the first line of `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let v: Vec<u64> = line
        .split_whitespace()
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if v.len() < 8 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v[4];
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_server_pids() {
        let s: ServerPid = "enclave=42".parse().unwrap();
        assert_eq!((s.label.as_str(), s.pid), ("enclave", 42));
        let s: ServerPid = "7".parse().unwrap();
        assert_eq!((s.label.as_str(), s.pid), ("pid 7", 7));
        assert!("x=y".parse::<ServerPid>().is_err());
    }

    #[test]
    fn reads_own_counters() {
        assert!(process_ticks("self").is_some());
        let (busy, total) = machine_ticks().unwrap();
        assert!(busy <= total);
    }
}
