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
    /// API tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// Where the enclave's AWS credentials come from.
    pub credentials: CredentialsConfig,
    /// Signing options (`[signing]`, optional).
    #[serde(default)]
    pub signing: SigningConfig,
    /// JSON-RPC (`POST /rpc`): the upstream Ethereum node.
    #[serde(default)]
    pub rpc: RpcConfig,
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

/// Signing options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningConfig {
    /// Keys that may sign raw 32-byte digests (`sign/hash`, Web3Signer's `eth1/sign`). Off
    /// for every other key: whoever can have a digest signed can have anything signed,
    /// transactions included.
    #[serde(default)]
    pub raw_hash_keys: Vec<alloy_primitives::Address>,
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
    /// Requests handled at once; more wait (until their time limit).
    #[serde(default = "default_max_concurrent")]
    pub max_concurrent_requests: usize,
}

/// Enclave connection settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnclaveConfig {
    /// `vsock://16:5000` in production; `unix:///path` locally.
    pub endpoint: Endpoint,
    /// Time limit of one call to the enclave, seconds.
    #[serde(default = "default_call_timeout")]
    pub call_timeout_secs: u64,
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

/// One API token, stored as the SHA-256 of the token (hex).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (appears in logs).
    pub name: String,
    /// Hex SHA-256 of the bearer token.
    pub sha256: String,
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
        self.rpc.validate()?;
        if self.tokens.is_empty() {
            return Err(ConfigError(
                "no [[tokens]]: every /v1 route needs a bearer token".into(),
            ));
        }
        for t in &self.tokens {
            let ok = t.sha256.len() == 64 && t.sha256.bytes().all(|b| b.is_ascii_hexdigit());
            if !ok {
                return Err(ConfigError(format!(
                    "token `{}`: sha256 must be 64 hex characters (the SHA-256 of the token, not the token)",
                    t.name
                )));
            }
        }
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
            c.enclave.endpoint,
            Endpoint::Vsock {
                cid: 16,
                port: 5000
            }
        );
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
