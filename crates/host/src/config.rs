//! The typed configuration of `nitro-wallet serve` (TOML, unknown fields refused).
//!
//! See `nitro-wallet.toml.example` at the repository root for a commented example. Secrets
//! are never inline: API tokens are stored as SHA-256 hashes, TLS keys and credentials are
//! referenced by path or source.

use nitro_wallet_protocol::Endpoint;
use serde::Deserialize;
use std::{net::SocketAddr, path::PathBuf};

/// Whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// HTTPS server.
    pub server: ServerConfig,
    /// The enclave to sign with.
    pub enclave: EnclaveConfig,
    /// KMS key that wraps new keys.
    pub kms: KmsConfig,
    /// Where key records are kept.
    pub key_store: KeyStoreConfig,
    /// API tokens given inline (the tokens file of `[auth]` holds more).
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Where else tokens come from.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Where the enclave's AWS credentials come from.
    pub credentials: CredentialsConfig,
    /// JSON-RPC (`POST /rpc`): the upstream Ethereum node.
    #[serde(default)]
    pub rpc: RpcConfig,
    /// The audit log of signing decisions.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Prometheus metrics.
    #[serde(default)]
    pub metrics: MetricsConfig,
}

/// Prometheus metrics (`[metrics]`, optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` at all.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// A plain-HTTP listener of its own for `GET /metrics`, without a token: bind it to a
    /// private interface (`127.0.0.1:9102`, the VPC address). Without it, `/metrics` is served
    /// on the HTTPS API and needs a bearer token with `keys:read`.
    #[serde(default)]
    pub listen: Option<SocketAddr>,
    /// Count enclave calls per key address too (`nitro_wallet_key_requests_total`): one
    /// series per key and operation, and addresses in the monitoring system. Off by default.
    #[serde(default)]
    pub per_key_labels: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: None,
            per_key_labels: false,
        }
    }
}

/// The audit log (`[audit]`, optional but meant for every deployment).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The JSON Lines file the enclaves' signed decisions are appended to (created 0600 with
    /// its directory). Each decision is synced to it before its outcome is released; when it
    /// cannot be written, signing answers 503. Without it, decisions are still chained inside
    /// the enclaves but not kept: `serve` warns.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// JSON-RPC settings (`[rpc]`, optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcConfig {
    /// `http://` or `https://` URL of the Ethereum node that `eth_sendTransaction` fills from
    /// and sends to, and that every method not served here is proxied to. Without it only the
    /// account and signing methods work. It may carry a provider's API key: it is never logged.
    #[serde(default)]
    pub upstream: Option<String>,
    /// Time limit of one call to the upstream node, seconds.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout_secs: u64,
}

impl Default for RpcConfig {
    fn default() -> Self {
        Self {
            upstream: None,
            upstream_timeout_secs: default_upstream_timeout(),
        }
    }
}

impl RpcConfig {
    /// Checks the upstream URL and the timeout.
    ///
    /// # Errors
    /// When the URL is not an absolute `http(s)://` URL without a fragment, or the timeout is
    /// not between 1 and 300 s.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.upstream {
            // Never quote the URL: it may hold an API key.
            let bad = |why: &str| ConfigError(format!("rpc.upstream: {why}"));
            let parsed = reqwest::Url::parse(url).map_err(|e| bad(&format!("not a URL ({e})")))?;
            if !matches!(parsed.scheme(), "http" | "https") || !parsed.has_host() {
                return Err(bad("must be an http:// or https:// URL"));
            }
            if parsed.fragment().is_some() {
                return Err(bad("must not have a #fragment"));
            }
        }
        if !(1..=300).contains(&self.upstream_timeout_secs) {
            return Err(ConfigError(
                "rpc.upstream_timeout_secs must be between 1 and 300".into(),
            ));
        }
        Ok(())
    }
}

/// HTTPS server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// PEM certificate chain; with `tls_key`. When both are absent a self-signed certificate
    /// is generated into `state_dir`.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Where generated state (the self-signed certificate) goes.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Largest request body accepted.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Time limit of one request, seconds.
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Requests handled at once; more are refused at once with 503 and Retry-After.
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: usize,
}

/// Enclave connection settings: one enclave (`endpoint`) or a pool (`endpoints`), exactly one
/// of the two.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnclaveConfig {
    /// One enclave: `vsock://16:5000` in production; `unix:///path` locally.
    #[serde(default)]
    pub endpoint: Option<Endpoint>,
    /// Several enclaves (`vsock://16:5000`, `vsock://17:5000`, …), balanced by least
    /// outstanding requests with failover (see `enclave_pool`).
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// Time limit of one call to the enclave, seconds.
    #[serde(default = "default_call_timeout")]
    pub call_timeout_secs: u64,
    /// Time between two health probes (a ping that runs a signing self-test) of each enclave,
    /// milliseconds.
    #[serde(default = "default_health_interval_ms")]
    pub health_interval_ms: u64,
    /// How long a health probe waits for its answer, milliseconds; two unanswered probes in a
    /// row mark the enclave down.
    #[serde(default = "default_health_timeout_ms")]
    pub health_timeout_ms: u64,
    /// Unwrap every stored key in the enclaves in the background at start and after an
    /// enclave comes back, so that first signatures skip the KMS round trip (see `warmup`).
    #[serde(default = "default_true")]
    pub warm_keys: bool,
    /// Keys unwrapped at once by the warm-up.
    #[serde(default = "default_warm_concurrency")]
    pub warm_concurrency: usize,
}

impl EnclaveConfig {
    /// The settings for these enclaves, with every default.
    pub fn new(endpoints: Vec<Endpoint>) -> EnclaveConfig {
        EnclaveConfig {
            endpoint: None,
            endpoints,
            call_timeout_secs: default_call_timeout(),
            health_interval_ms: default_health_interval_ms(),
            health_timeout_ms: default_health_timeout_ms(),
            warm_keys: true,
            warm_concurrency: default_warm_concurrency(),
        }
    }

    /// Every configured enclave: `endpoint`, or `endpoints`.
    pub fn all_endpoints(&self) -> Vec<Endpoint> {
        match &self.endpoint {
            Some(e) => vec![e.clone()],
            None => self.endpoints.clone(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(format!("enclave.{m}")));
        match (&self.endpoint, self.endpoints.is_empty()) {
            (Some(_), false) => return err("endpoint and enclave.endpoints: give one of the two"),
            (None, true) => return err("endpoint or enclave.endpoints is required"),
            _ => {}
        }
        for (i, e) in self.endpoints.iter().enumerate() {
            if self.endpoints[..i].contains(e) {
                return err(&format!("endpoints: {e} is listed twice"));
            }
        }
        if !(1..=600).contains(&self.call_timeout_secs) {
            return err("call_timeout_secs must be between 1 and 600");
        }
        if !(50..=60_000).contains(&self.health_interval_ms) {
            return err("health_interval_ms must be between 50 and 60000");
        }
        if !(50..=60_000).contains(&self.health_timeout_ms) {
            return err("health_timeout_ms must be between 50 and 60000");
        }
        Ok(())
    }
}

/// KMS settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KmsConfig {
    /// Key id, ARN or alias used to wrap new keys.
    pub key_id: String,
}

/// Key store backend.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyStoreConfig {
    /// One JSON file per key in `dir`.
    File {
        /// Directory of records.
        dir: PathBuf,
    },
    /// One AWS Secrets Manager secret per key, named `<prefix><EIP-55 address>`. The host's
    /// own AWS credentials come from the standard chain (environment, profile, IMDSv2).
    SecretsManager {
        /// Secret name prefix.
        #[serde(default = "default_secrets_prefix")]
        prefix: String,
        /// AWS region of the secrets.
        region: String,
        /// Endpoint URL instead of the region's (a VPC endpoint; moto in tests).
        #[serde(default)]
        endpoint: Option<String>,
    },
}

/// Authentication settings (`[auth]`, optional).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// A file of `[[tokens]]` managed by `nitro-wallet tokens create|list|revoke`, used in
    /// addition to the inline ones and re-read while serving (within a second of a change, or
    /// at once on SIGHUP). A missing file holds no tokens.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
    /// Mutual TLS: PEM file of the CAs whose client certificates callers may present instead
    /// of a bearer token. Without it, no client certificate is asked for.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
    /// Refuse TLS handshakes without a valid client certificate (every caller then needs one,
    /// bearer tokens included). Needs `client_ca`.
    #[serde(default)]
    pub client_cert_required: bool,
    /// Which token's scopes and rate limit each client certificate gets.
    #[serde(default)]
    pub client_certs: Vec<ClientCertConfig>,
}

/// A client certificate mapped to a token (`[[auth.client_certs]]`): a caller presenting a
/// certificate from `client_ca` whose subject common name is `common_name` acts as the token
/// named `token` (its scopes, its rate limit, its name in logs and the audit log).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientCertConfig {
    /// The certificate subject's common name (CN), compared exactly.
    pub common_name: String,
    /// Name of a `[[tokens]]` entry (inline or in the tokens file).
    pub token: String,
}

impl AuthConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(format!("[auth] {m}")));
        if self.client_ca.is_none() {
            if self.client_cert_required {
                return err("client_cert_required needs client_ca (the CA file that issues them)");
            }
            if !self.client_certs.is_empty() {
                return err("client_certs needs client_ca (the CA file that issues them)");
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.client_certs {
            if c.common_name.is_empty() || c.token.is_empty() {
                return err("client_certs: common_name and token must not be empty");
            }
            if !seen.insert(c.common_name.as_str()) {
                return err(&format!(
                    "client_certs: common name `{}` is mapped twice",
                    c.common_name
                ));
            }
        }
        Ok(())
    }
}

/// One API token, stored as the SHA-256 of the token (hex), with its scopes
/// ([`crate::tokens`]).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (appears in logs).
    pub name: String,
    /// Hex SHA-256 of the bearer token.
    pub sha256: String,
    /// The keys it may use: `"*"` (the default) or a list of addresses.
    #[serde(default)]
    pub keys: crate::tokens::KeyScope,
    /// What it may do; without the field, everything (`["admin"]`), as before scopes existed.
    #[serde(default = "crate::tokens::full_access")]
    pub operations: Vec<crate::tokens::Operation>,
    /// Average requests per second allowed (token bucket); none: unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_second: Option<f64>,
    /// Requests allowed at once above the average [default: the rate, rounded up].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// When it was made (RFC 3339), written by `nitro-wallet tokens create`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

impl TokenConfig {
    /// A token that may do everything with every key, without a rate limit.
    pub fn full_access(name: &str, sha256: &str) -> TokenConfig {
        TokenConfig {
            name: name.to_owned(),
            sha256: sha256.to_owned(),
            keys: crate::tokens::KeyScope::Any,
            operations: crate::tokens::full_access(),
            rate_per_second: None,
            burst: None,
            created: None,
        }
    }
}

/// Credentials handed to the enclave for its KMS calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case", deny_unknown_fields)]
pub enum CredentialsConfig {
    /// Fixed, well-known dummy credentials accepted only by the local KMS emulator.
    /// Insecure; for `nitro-wallet dev` and tests.
    InsecureDev,
    /// The standard AWS chain (environment, profile, IMDSv2 on EC2), handed to the enclave on
    /// every new connection and again before they expire.
    Aws {
        /// Region for the chain's own calls (STS, SSO); by default from the environment or
        /// profile.
        #[serde(default)]
        region: Option<String>,
    },
}

fn default_secrets_prefix() -> String {
    crate::keystore::secrets_manager::DEFAULT_PREFIX.to_owned()
}
fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/nitro-wallet")
}
fn default_body_limit() -> usize {
    256 * 1024
}
fn default_request_timeout() -> u64 {
    30
}
fn default_max_concurrent() -> usize {
    1024
}
fn default_call_timeout() -> u64 {
    15
}
fn default_health_interval_ms() -> u64 {
    1000
}
fn default_health_timeout_ms() -> u64 {
    2000
}
fn default_warm_concurrency() -> usize {
    32
}
fn default_true() -> bool {
    true
}
fn default_upstream_timeout() -> u64 {
    10
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Reads and parses a TOML file.
    ///
    /// # Errors
    /// When the file cannot be read or is not a valid configuration.
    pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text).map_err(|e| ConfigError(format!("{}: {}", path.display(), e.0)))
    }

    /// Parses TOML text and checks it.
    ///
    /// # Errors
    /// When the text is not a valid configuration.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(ConfigError(
                "server.tls_cert and server.tls_key go together".into(),
            ));
        }
        if self.server.body_limit_bytes == 0 || self.server.body_limit_bytes > 16 << 20 {
            return Err(ConfigError(
                "server.body_limit_bytes must be between 1 and 16 MiB".into(),
            ));
        }
        if let KeyStoreConfig::SecretsManager {
            prefix,
            region,
            endpoint,
        } = &self.key_store
        {
            crate::keystore::secrets_manager::validate_prefix(prefix)
                .map_err(|e| ConfigError(format!("key_store.prefix: {e}")))?;
            if region.is_empty() {
                return Err(ConfigError("key_store.region is empty".into()));
            }
            if let Some(e) = endpoint {
                if !(e.starts_with("https://") || e.starts_with("http://")) {
                    return Err(ConfigError(format!(
                        "key_store.endpoint `{e}` must be an http:// or https:// URL"
                    )));
                }
            }
        }
        if let CredentialsConfig::Aws { region: Some(r) } = &self.credentials {
            if r.is_empty() {
                return Err(ConfigError("credentials.region is empty".into()));
            }
        }
        self.enclave.validate()?;
        self.rpc.validate()?;
        self.auth.validate()?;
        if self.tokens.is_empty() && self.auth.tokens_file.is_none() {
            return Err(ConfigError(
                "no [[tokens]] and no [auth] tokens_file: every route needs a bearer token".into(),
            ));
        }
        crate::tokens::check_tokens(&self.tokens).map_err(ConfigError)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_example_file_parses() {
        let text = include_str!("../../../nitro-wallet.toml.example");
        let c = Config::parse(text).unwrap();
        assert_eq!(
            c.enclave.all_endpoints(),
            [Endpoint::Vsock {
                cid: 16,
                port: 5000
            }]
        );
        assert_eq!(c.enclave.health_interval_ms, 1000);
    }

    #[test]
    fn one_endpoint_or_a_list_of_them() {
        let base = include_str!("../../../nitro-wallet.toml.example");
        let pool = base.replace(
            "endpoint = \"vsock://16:5000\"",
            "endpoints = [\"vsock://16:5000\", \"vsock://17:5000\"]\nhealth_interval_ms = 250",
        );
        let c = Config::parse(&pool).unwrap();
        assert_eq!(c.enclave.all_endpoints().len(), 2);
        assert_eq!(c.enclave.health_interval_ms, 250);
        for (bad, why) in [
            (
                "endpoint = \"vsock://16:5000\"\nendpoints = [\"vsock://17:5000\"]",
                "one of the two",
            ),
            ("endpoints = []", "is required"),
            ("call_timeout_secs = 3", "is required"),
            (
                "endpoints = [\"vsock://16:5000\", \"vsock://16:5000\"]",
                "listed twice",
            ),
            (
                "endpoint = \"vsock://16:5000\"\nhealth_interval_ms = 0",
                "health_interval_ms",
            ),
        ] {
            let text = base.replace("endpoint = \"vsock://16:5000\"", bad);
            let e = Config::parse(&text).unwrap_err();
            assert!(e.0.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn the_secrets_manager_alternative_parses() {
        let base = include_str!("../../../nitro-wallet.toml.example");
        // Swap the active [key_store] for the commented Secrets Manager block.
        let (head, rest) = base.split_once("[key_store]").unwrap();
        let (_, tail) = rest.split_once("\n[credentials]").unwrap();
        let block: String = rest
            .lines()
            .skip_while(|l| !l.starts_with("# [key_store]"))
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{}\n", l.trim_start_matches("# ").trim_start_matches('#')))
            .collect();
        let text = format!("{head}{block}\n[credentials]{tail}");
        let c = Config::parse(&text).unwrap();
        let KeyStoreConfig::SecretsManager {
            prefix,
            region,
            endpoint,
        } = c.key_store
        else {
            panic!("{:?}", c.key_store);
        };
        assert_eq!(prefix, "nitro-wallet/keys/");
        assert_eq!(region, "us-east-1");
        assert!(endpoint.unwrap().starts_with("https://"));

        let minimal = format!(
            "{head}[key_store]\nkind = \"secrets_manager\"\nregion = \"eu-west-1\"\n\n[credentials]{tail}"
        );
        let c = Config::parse(&minimal).unwrap();
        assert!(matches!(
            c.key_store,
            KeyStoreConfig::SecretsManager { ref prefix, endpoint: None, .. }
                if prefix == crate::keystore::secrets_manager::DEFAULT_PREFIX
        ));
        let bad = minimal.replace(
            "region = \"eu-west-1\"",
            "region = \"eu-west-1\"\nprefix = \"a b/\"",
        );
        let e = Config::parse(&bad).unwrap_err();
        assert!(e.0.contains("key_store.prefix"), "{e}");
        let bad = minimal.replace(
            "region = \"eu-west-1\"",
            "region = \"eu-west-1\"\nendpoint = \"localhost:5000\"",
        );
        let e = Config::parse(&bad).unwrap_err();
        assert!(e.0.contains("key_store.endpoint"), "{e}");
    }

    #[test]
    fn the_aws_credentials_alternative_parses() {
        let base = include_str!("../../../nitro-wallet.toml.example");
        let c = Config::parse(base).unwrap();
        assert!(matches!(c.credentials, CredentialsConfig::InsecureDev));
        // The commented block, uncommented in place of the active source.
        let block: String = base
            .lines()
            .skip_while(|l| *l != "# [credentials]")
            .skip(1)
            .take_while(|l| l.starts_with("# "))
            .map(|l| format!("{}\n", l.trim_start_matches("# ")))
            .collect();
        assert!(block.contains("source = \"aws\""), "{block}");
        let text = base.replace("source = \"insecure-dev\"\n", &block);
        let c = Config::parse(&text).unwrap();
        assert!(
            matches!(c.credentials, CredentialsConfig::Aws { region: Some(ref r) } if r == "us-east-1"),
            "{:?}",
            c.credentials
        );
        let minimal = base.replace("source = \"insecure-dev\"", "source = \"aws\"");
        let c = Config::parse(&minimal).unwrap();
        assert!(matches!(
            c.credentials,
            CredentialsConfig::Aws { region: None }
        ));
        let bad = base.replace(
            "source = \"insecure-dev\"",
            "source = \"aws\"\nregion = \"\"",
        );
        let e = Config::parse(&bad).unwrap_err();
        assert!(e.0.contains("credentials.region"), "{e}");
        let bad = base.replace("source = \"insecure-dev\"", "source = \"aws\"\nkey = \"x\"");
        assert!(Config::parse(&bad).is_err());
    }

    #[test]
    fn the_rpc_section_parses_and_is_checked() {
        let base = include_str!("../../../nitro-wallet.toml.example");
        let c = Config::parse(base).unwrap();
        assert!(c.rpc.upstream.is_none());
        assert_eq!(c.rpc.upstream_timeout_secs, 10);
        let text = base
            .replace(
                "# upstream = \"http://127.0.0.1:8545\"",
                "upstream = \"http://127.0.0.1:8545\"",
            )
            .replace("# upstream_timeout_secs = 10", "upstream_timeout_secs = 5");
        let c = Config::parse(&text).unwrap();
        assert_eq!(c.rpc.upstream.as_deref(), Some("http://127.0.0.1:8545"));
        assert_eq!(c.rpc.upstream_timeout_secs, 5);
        // No [rpc] at all is the default.
        let without = base.replace("[rpc]\n", "");
        assert!(Config::parse(&without).unwrap().rpc.upstream.is_none());
        for (bad, what) in [
            ("upstream = \"127.0.0.1:8545\"", "rpc.upstream"),
            ("upstream = \"ftp://node/\"", "rpc.upstream"),
            ("upstream = \"https://node.example/#x\"", "rpc.upstream"),
            ("upstream_timeout_secs = 0", "rpc.upstream_timeout_secs"),
            ("upstream_url = \"http://x/\"", "unknown field"),
        ] {
            let text = base.replace("[rpc]\n", &format!("[rpc]\n{bad}\n"));
            let e = Config::parse(&text).unwrap_err();
            assert!(e.0.contains(what), "{bad}: {e}");
        }
        // The URL may carry an API key: errors never quote it.
        let text = base.replace("[rpc]\n", "[rpc]\nupstream = \"wss://node/v3/SECRETKEY\"\n");
        let e = Config::parse(&text).unwrap_err();
        assert!(!e.0.contains("SECRETKEY"), "{e}");
    }

    #[test]
    fn the_token_scopes_and_the_tokens_file_parse() {
        use crate::tokens::{KeyScope, Operation};
        let base = include_str!("../../../nitro-wallet.toml.example");
        let c = Config::parse(base).unwrap();
        assert_eq!(c.tokens[0].keys, KeyScope::Any);
        assert_eq!(c.tokens[0].operations, [Operation::Admin]);
        assert!(c.auth.tokens_file.is_none());
        let mut text = base.to_owned();
        for line in [
            "keys = [",
            "operations = [",
            "rate_per_second = ",
            "burst = ",
            "[auth]",
            "tokens_file = ",
        ] {
            let commented = format!("# {line}");
            assert!(text.contains(&commented), "{line}");
            text = text.replace(&commented, line);
        }
        let c = Config::parse(&text).unwrap();
        let t = &c.tokens[0];
        assert!(matches!(&t.keys, KeyScope::Only(k) if k.len() == 1));
        assert_eq!(
            t.operations,
            [Operation::SignTransaction, Operation::KeysRead]
        );
        assert_eq!((t.rate_per_second, t.burst), (Some(5.0), Some(20)));
        assert_eq!(
            c.auth.tokens_file.as_deref(),
            Some(std::path::Path::new("/etc/nitro-wallet/tokens.toml"))
        );
        // With a tokens file, no inline token is needed.
        let (head, _) = text.split_once("[[tokens]]").unwrap();
        let (_, auth) = text.split_once("[auth]").unwrap();
        let c = Config::parse(&format!("{head}[auth]{auth}")).unwrap();
        assert!(c.tokens.is_empty());
        let e = Config::parse(head).unwrap_err();
        assert!(e.0.contains("tokens_file"), "{e}");
    }

    #[test]
    fn client_certificates_parse_and_are_checked() {
        let mut text = include_str!("../../../nitro-wallet.toml.example").to_owned();
        for line in [
            "[auth]",
            "client_ca = ",
            "client_cert_required = ",
            "[[auth.client_certs]]",
            "common_name = ",
            "token = ",
        ] {
            let commented = format!("# {line}");
            assert!(text.contains(&commented), "{line}");
            text = text.replace(&commented, line);
        }
        let c = Config::parse(&text).unwrap();
        assert!(c.auth.client_ca.is_some());
        assert!(!c.auth.client_cert_required);
        assert_eq!(c.auth.client_certs[0].common_name, "payments.internal");
        assert_eq!(c.auth.client_certs[0].token, "payments");

        let twice = text.replace(
            "token = \"payments\"",
            "token = \"payments\"\n[[auth.client_certs]]\ncommon_name = \"payments.internal\"\ntoken = \"x\"",
        );
        assert!(Config::parse(&twice)
            .unwrap_err()
            .0
            .contains("mapped twice"));
        let no_ca = text.replace("client_ca = ", "# client_ca = ");
        assert!(Config::parse(&no_ca)
            .unwrap_err()
            .0
            .contains("needs client_ca"));
    }

    #[test]
    fn the_metrics_section_parses() {
        let base = include_str!("../../../nitro-wallet.toml.example");
        let c = Config::parse(base).unwrap();
        assert!(c.metrics.enabled && c.metrics.listen.is_none() && !c.metrics.per_key_labels);
        let text = base
            .replace("# enabled = true", "enabled = false")
            .replace(
                "# listen = \"127.0.0.1:9102\"",
                "listen = \"127.0.0.1:9102\"",
            )
            .replace("# per_key_labels = false", "per_key_labels = true");
        let c = Config::parse(&text).unwrap();
        assert!(!c.metrics.enabled && c.metrics.per_key_labels);
        assert_eq!(c.metrics.listen, Some("127.0.0.1:9102".parse().unwrap()));
        // No [metrics] at all is the default.
        let without = base.replace("[metrics]\n", "");
        assert!(Config::parse(&without).unwrap().metrics.enabled);
        for bad in ["listen = \"localhost\"", "port = 9102"] {
            let text = base.replace("[metrics]\n", &format!("[metrics]\n{bad}\n"));
            assert!(Config::parse(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_fields_and_plain_tokens_are_refused() {
        let base = include_str!("../../../nitro-wallet.toml.example");
        let e = Config::parse(&format!("{base}\n[extra]\nx = 1\n")).unwrap_err();
        assert!(e.0.contains("extra"), "{e}");
        let plain = base.replace(
            "0000000000000000000000000000000000000000000000000000000000000000",
            "my-token",
        );
        let e = Config::parse(&plain).unwrap_err();
        assert!(e.0.contains("64 hex"), "{e}");
    }
}
