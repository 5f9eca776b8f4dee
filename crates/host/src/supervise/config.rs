//! The typed configuration of `nitro-wallet supervise` (TOML, unknown fields refused); see
//! `supervise.toml.example` at the repository root.

use super::{BackoffSettings, Settings, Watched};
use nitro_wallet_protocol::Endpoint;
use serde::{Deserialize, Deserializer};
use std::{
    path::{Path, PathBuf},
    time::Duration,
};

/// Whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuperviseConfig {
    /// The `nitro-cli` executable.
    #[serde(default = "default_nitro_cli")]
    pub nitro_cli: PathBuf,
    /// Health checks.
    #[serde(default)]
    pub health: HealthConfig,
    /// Delays between restarts.
    #[serde(default)]
    pub backoff: BackoffConfig,
    /// The enclaves to keep running (`[[enclaves]]`, at least one).
    pub enclaves: Vec<EnclaveSpec>,
}

/// `[health]`: how an enclave is judged alive.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Time between two checks (`describe-enclaves`, then a ping), seconds (fractions allowed).
    #[serde(default = "default_interval", deserialize_with = "secs")]
    pub interval_secs: Duration,
    /// How long a ping may take, seconds.
    #[serde(default = "default_timeout", deserialize_with = "secs")]
    pub timeout_secs: Duration,
    /// Failed pings in a row after which a running enclave is declared hung and restarted.
    #[serde(default = "default_failures")]
    pub failures_before_restart: u32,
    /// After a start, how long pings may fail before they count (the enclave boots), unless
    /// one succeeds first; seconds.
    #[serde(default = "default_start_grace", deserialize_with = "secs")]
    pub start_grace_secs: Duration,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            interval_secs: default_interval(),
            timeout_secs: default_timeout(),
            failures_before_restart: default_failures(),
            start_grace_secs: default_start_grace(),
        }
    }
}

/// `[backoff]`: exponential delay before each restart.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackoffConfig {
    /// First delay, seconds; it doubles with every restart that does not last.
    #[serde(default = "default_backoff_min", deserialize_with = "secs")]
    pub min_secs: Duration,
    /// Largest delay, seconds.
    #[serde(default = "default_backoff_max", deserialize_with = "secs")]
    pub max_secs: Duration,
    /// An enclave healthy this long resets the delay to `min_secs`, seconds.
    #[serde(default = "default_backoff_reset", deserialize_with = "secs")]
    pub reset_after_secs: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        Self {
            min_secs: default_backoff_min(),
            max_secs: default_backoff_max(),
            reset_after_secs: default_backoff_reset(),
        }
    }
}

/// `[[enclaves]]`: one enclave and how `nitro-cli run-enclave` starts it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnclaveSpec {
    /// `--enclave-name`: how the supervisor finds it in `describe-enclaves` (unique).
    pub name: String,
    /// `--enclave-cid` (4 or more; unique).
    pub cid: u32,
    /// vsock port the enclave's signing server listens on.
    #[serde(default = "default_port")]
    pub port: u32,
    /// `--eif-path`: the enclave image.
    pub eif_path: PathBuf,
    /// `--cpu-count`.
    pub cpu_count: u32,
    /// `--memory`, MiB.
    pub memory_mib: u64,
    /// Refuse to start an image whose PCR0 (`nitro-cli describe-eif`) is not this (96 hex
    /// digits): the KMS key policy would refuse it anyway, and this says so before boot.
    #[serde(default)]
    pub expected_pcr0: Option<String>,
    /// `--debug-mode`. Never in production: a debug enclave's console is readable from the
    /// parent and its attestation carries PCR0 = zeros, which the key policy must refuse.
    #[serde(default)]
    pub debug_mode: bool,
    /// Where to ping it; `vsock://<cid>:<port>` by default.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
}

impl EnclaveSpec {
    /// Where its signing server answers.
    pub fn endpoint(&self) -> Endpoint {
        self.endpoint.clone().unwrap_or(Endpoint::Vsock {
            cid: self.cid,
            port: self.port,
        })
    }
}

fn default_nitro_cli() -> PathBuf {
    PathBuf::from("/usr/bin/nitro-cli")
}
fn default_interval() -> Duration {
    Duration::from_secs(5)
}
fn default_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_failures() -> u32 {
    3
}
fn default_start_grace() -> Duration {
    Duration::from_secs(60)
}
fn default_backoff_min() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff_max() -> Duration {
    Duration::from_secs(60)
}
fn default_backoff_reset() -> Duration {
    Duration::from_secs(300)
}
fn default_port() -> u32 {
    5000
}

/// Seconds as a TOML integer or float (`5`, `0.25`).
fn secs<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Int(u64),
        Float(f64),
    }
    match Number::deserialize(d)? {
        Number::Int(s) => Ok(Duration::from_secs(s)),
        Number::Float(f) => Duration::try_from_secs_f64(f)
            .map_err(|_| serde::de::Error::custom("seconds must be a finite, non-negative number")),
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("supervise configuration error: {0}")]
pub struct SuperviseConfigError(pub String);

impl SuperviseConfig {
    /// Reads and checks a TOML file.
    ///
    /// # Errors
    /// When the file cannot be read or is not a valid configuration.
    pub fn load(path: &Path) -> Result<SuperviseConfig, SuperviseConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| SuperviseConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| SuperviseConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses and checks TOML text.
    ///
    /// # Errors
    /// When the text is not a valid configuration.
    pub fn parse(text: &str) -> Result<SuperviseConfig, SuperviseConfigError> {
        let c: SuperviseConfig =
            toml::from_str(text).map_err(|e| SuperviseConfigError(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), SuperviseConfigError> {
        let err = |m: String| Err(SuperviseConfigError(m));
        if self.enclaves.is_empty() {
            return err("no [[enclaves]]: nothing to supervise".into());
        }
        let h = &self.health;
        if h.interval_secs < Duration::from_millis(10) || h.timeout_secs < Duration::from_millis(10)
        {
            return err(
                "health.interval_secs and health.timeout_secs must be at least 0.01".into(),
            );
        }
        if h.failures_before_restart == 0 {
            return err("health.failures_before_restart must be at least 1".into());
        }
        let b = &self.backoff;
        if b.min_secs < Duration::from_millis(10) || b.max_secs < b.min_secs {
            return err("backoff: need 0.01 <= min_secs <= max_secs".into());
        }
        for (i, e) in self.enclaves.iter().enumerate() {
            let name = &e.name;
            let valid_name = !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
            if !valid_name {
                return err(format!(
                    "enclave name `{name}`: 1 to 64 characters among A-Z a-z 0-9 - _ ."
                ));
            }
            let earlier = &self.enclaves[..i];
            if earlier.iter().any(|o| o.name == e.name) {
                return err(format!("enclave name `{name}` is used twice"));
            }
            if earlier.iter().any(|o| o.cid == e.cid) {
                return err(format!("enclave cid {} is used twice", e.cid));
            }
            if e.cid < 4 {
                return err(format!(
                    "enclave `{name}`: cid {} is reserved (0-2 for the hypervisor and local, 3 for the parent)",
                    e.cid
                ));
            }
            if e.cpu_count == 0 || e.memory_mib < 64 {
                return err(format!(
                    "enclave `{name}`: cpu_count must be at least 1 and memory_mib at least 64"
                ));
            }
            if e.port == 0 {
                return err(format!("enclave `{name}`: port must not be 0"));
            }
            if let Some(p) = &e.expected_pcr0 {
                if p.len() != 96 || !p.bytes().all(|c| c.is_ascii_hexdigit()) {
                    return err(format!(
                        "enclave `{name}`: expected_pcr0 must be 96 hex digits (SHA-384)"
                    ));
                }
                if !e.debug_mode && p.bytes().all(|c| c == b'0') {
                    return err(format!(
                        "enclave `{name}`: expected_pcr0 of zeros is a debug-mode enclave"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The supervisor's timing.
    pub fn settings(&self) -> Settings {
        Settings {
            check_interval: self.health.interval_secs,
            ping_timeout: self.health.timeout_secs,
            failures_before_restart: self.health.failures_before_restart,
            start_grace: self.health.start_grace_secs,
            backoff: BackoffSettings {
                min: self.backoff.min_secs,
                max: self.backoff.max_secs,
                reset_after: self.backoff.reset_after_secs,
            },
        }
    }

    /// What the supervisor watches: each enclave's name and endpoint.
    pub fn watched(&self) -> Vec<Watched> {
        self.enclaves
            .iter()
            .map(|e| Watched {
                name: e.name.clone(),
                endpoint: e.endpoint(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const EXAMPLE: &str = include_str!("../../../../supervise.toml.example");

    #[test]
    fn the_example_file_parses() {
        let c = SuperviseConfig::parse(EXAMPLE).unwrap();
        assert_eq!(c.nitro_cli, PathBuf::from("/usr/bin/nitro-cli"));
        assert_eq!(c.enclaves.len(), 2);
        let e = &c.enclaves[0];
        assert_eq!(
            (e.name.as_str(), e.cid, e.port),
            ("nitro-wallet-16", 16, 5000)
        );
        assert!(!e.debug_mode);
        assert_eq!(
            e.endpoint(),
            Endpoint::Vsock {
                cid: 16,
                port: 5000
            }
        );
        assert_eq!(c.health.interval_secs, Duration::from_secs(5));
        assert_eq!(c.backoff.max_secs, Duration::from_secs(60));
    }

    #[test]
    fn defaults_fractions_and_refusals() {
        let minimal = "[[enclaves]]\nname = \"a\"\ncid = 16\neif_path = \"/x.eif\"\ncpu_count = 2\nmemory_mib = 512\n";
        let c = SuperviseConfig::parse(minimal).unwrap();
        assert_eq!(c.health.failures_before_restart, 3);
        assert_eq!(c.enclaves[0].port, 5000);
        let fast = format!("[health]\ninterval_secs = 0.05\n\n{minimal}");
        let c = SuperviseConfig::parse(&fast).unwrap();
        assert_eq!(c.health.interval_secs, Duration::from_millis(50));

        let second = minimal.replace("name = \"a\"", "name = \"b\"");
        for (text, why) in [
            (String::new(), "enclaves"),
            (format!("{minimal}bogus = 1\n"), "unknown field"),
            (format!("{minimal}\n{minimal}"), "used twice"),
            (format!("{minimal}\n{second}"), "cid 16 is used twice"),
            (minimal.replace("cid = 16", "cid = 3"), "reserved"),
            (minimal.replace("name = \"a\"", "name = \"a b\""), "name"),
            (
                minimal.replace("memory_mib = 512", "memory_mib = 0"),
                "memory_mib",
            ),
            (
                format!("{minimal}expected_pcr0 = \"{}\"\n", "0".repeat(96)),
                "debug-mode",
            ),
            (format!("{minimal}expected_pcr0 = \"abc\"\n"), "96 hex"),
            (
                format!("[health]\ninterval_secs = -1\n\n{minimal}"),
                "seconds",
            ),
            (
                format!("[backoff]\nmin_secs = 10\nmax_secs = 1\n\n{minimal}"),
                "min_secs",
            ),
        ] {
            let e = SuperviseConfig::parse(&text).unwrap_err();
            assert!(e.0.contains(why), "{text}: {e}");
        }
    }
}
