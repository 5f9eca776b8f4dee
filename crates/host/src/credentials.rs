//! The AWS credentials the host hands to the enclave for its KMS calls.
//!
//! The enclave has no network and no instance metadata service: the host obtains credentials
//! ([`CredentialsSource`]) and sends them with `Request::SetCredentials` on every new enclave
//! connection and again before they expire ([`refresh`]). Secrets only ever travel inside
//! [`SecretString`]s or the SDK's `Credentials`, whose `Debug` output is redacted; errors and
//! logs name the access key id at most.

use crate::{config::CredentialsConfig, enclave_pool::EnclavePool};
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use nitro_wallet_protocol::{message::Credentials, Request, SecretString};
use std::{
    future::Future,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

/// Access key id of the insecure dev credentials (accepted by the local KMS emulator only).
pub const INSECURE_DEV_ACCESS_KEY_ID: &str = "NITROWALLETDEVINSECURE";

/// Refresh interval when the credentials carry no expiry (they may still be rotated).
pub const REFRESH_WITHOUT_EXPIRY: Duration = Duration::from_secs(5 * 60);
/// Shortest wait between two refreshes, so near-expired credentials cannot cause a busy loop.
const MIN_REFRESH: Duration = Duration::from_secs(5);
/// How long a new enclave connection waits for the provider before going on without
/// credentials (the refresh task keeps trying).
const ON_CONNECT_FETCH_LIMIT: Duration = Duration::from_secs(10);
/// First and last retry delay after a failed refresh.
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Where the enclave's credentials come from.
#[derive(Clone)]
pub enum CredentialsSource {
    /// Fixed dummy credentials that only the local KMS emulator accepts.
    InsecureDev,
    /// The AWS SDK's default chain: environment, profile (including `credential_process`),
    /// web identity, ECS, IMDSv2 on EC2.
    Aws(SharedCredentialsProvider),
}

impl std::fmt::Debug for CredentialsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::InsecureDev => "CredentialsSource::InsecureDev",
            Self::Aws(_) => "CredentialsSource::Aws",
        })
    }
}

/// A failure to obtain credentials; its message never holds a secret.
#[derive(Debug, thiserror::Error)]
#[error("cannot obtain AWS credentials for the enclave: {0}")]
pub struct CredentialsUnavailable(String);

impl CredentialsSource {
    /// The source a configuration names. For `aws`, the chain is built here but queried
    /// lazily, so a missing credential does not stop the server from starting.
    ///
    /// # Errors
    /// When the default chain has no provider.
    pub async fn from_config(config: &CredentialsConfig) -> crate::Result<CredentialsSource> {
        Ok(match config {
            CredentialsConfig::InsecureDev => CredentialsSource::InsecureDev,
            CredentialsConfig::Aws { region } => {
                let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(r) = region {
                    loader = loader.region(aws_config::Region::new(r.clone()));
                }
                let shared = loader.load().await;
                let provider = shared
                    .credentials_provider()
                    .ok_or("no AWS credentials provider for the enclave's credentials")?;
                CredentialsSource::Aws(provider)
            }
        })
    }

    /// Whether these credentials expire or rotate, so that [`refresh`] has work to do.
    pub fn needs_refresh(&self) -> bool {
        matches!(self, Self::Aws(_))
    }

    /// Fresh credentials, in the shape the enclave takes.
    ///
    /// # Errors
    /// When the provider fails (no credentials found, metadata service unreachable, …).
    pub async fn fetch(&self) -> Result<Credentials, CredentialsUnavailable> {
        match self {
            Self::InsecureDev => Ok(Credentials {
                access_key_id: INSECURE_DEV_ACCESS_KEY_ID.to_owned(),
                secret_access_key: SecretString::new("insecure-dev-secret".to_owned()),
                session_token: None,
                expires_at: None,
            }),
            Self::Aws(provider) => {
                let c = provider
                    .provide_credentials()
                    .await
                    .map_err(|e| CredentialsUnavailable(describe(&e)))?;
                Ok(Credentials {
                    access_key_id: c.access_key_id().to_owned(),
                    secret_access_key: SecretString::new(c.secret_access_key().to_owned()),
                    session_token: c.session_token().map(|t| SecretString::new(t.to_owned())),
                    expires_at: c
                        .expiry()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_secs()),
                })
            }
        }
    }

    /// The `SetCredentials` request for a new enclave connection, or `None` (logged) when the
    /// provider fails or takes longer than 10 s: the connection is still usable for what needs no KMS, and [`refresh`]
    /// retries.
    pub async fn on_connect_request(&self) -> Option<Request> {
        let fetched = tokio::time::timeout(ON_CONNECT_FETCH_LIMIT, self.fetch())
            .await
            .unwrap_or_else(|_| {
                Err(CredentialsUnavailable(format!(
                    "the provider did not answer within {ON_CONNECT_FETCH_LIMIT:?}"
                )))
            });
        match fetched {
            Ok(c) => {
                tracing::debug!(
                    access_key_id = %c.access_key_id,
                    expires_at = ?c.expires_at,
                    "sending AWS credentials to the new enclave connection"
                );
                Some(Request::SetCredentials(c))
            }
            Err(e) => {
                tracing::warn!(error = %e, "new enclave connection gets no credentials yet");
                None
            }
        }
    }
}

/// The provider error with its sources, which name the failing provider and never a secret.
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// How long to wait before sending fresh credentials: 80 % of the remaining lifetime of
/// credentials expiring at `expires_at` (seconds since the epoch), at least `MIN_REFRESH`;
/// [`REFRESH_WITHOUT_EXPIRY`] when they carry no expiry.
pub fn refresh_delay(expires_at: Option<u64>, now: SystemTime) -> Duration {
    let Some(expires_at) = expires_at else {
        return REFRESH_WITHOUT_EXPIRY;
    };
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let remaining = expires_at.saturating_sub(now);
    Duration::from_secs(remaining.saturating_mul(4) / 5).max(MIN_REFRESH)
}

/// Keeps the enclaves' credentials fresh until `shutdown` completes: fetches credentials,
/// sends them with `SetCredentials` to every enclave that is up, waits [`refresh_delay`], and
/// again; on a provider or enclave error retries with exponential backoff (1 s to 60 s, never
/// past the refresh time).
pub async fn refresh(
    source: CredentialsSource,
    enclave: Arc<EnclavePool>,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let mut backoff = BACKOFF_START;
    loop {
        let round = async {
            match source.fetch().await {
                Ok(c) => {
                    let (access_key_id, expires_at) = (c.access_key_id.clone(), c.expires_at);
                    match enclave.broadcast(Request::SetCredentials(c)).await {
                        Ok(_) => {
                            backoff = BACKOFF_START;
                            let wait = refresh_delay(expires_at, SystemTime::now());
                            tracing::info!(
                                %access_key_id,
                                ?expires_at,
                                next_refresh_in = ?wait,
                                "enclave AWS credentials refreshed"
                            );
                            wait
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in = ?backoff, "cannot hand credentials to the enclave");
                            next_backoff(&mut backoff)
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "AWS credentials refresh failed");
                    next_backoff(&mut backoff)
                }
            }
        };
        let wait = tokio::select! {
            wait = round => wait,
            () = &mut shutdown => return,
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = &mut shutdown => return,
        }
    }
}

fn next_backoff(backoff: &mut Duration) -> Duration {
    let now = *backoff;
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    now
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn refresh_delay_is_80_percent_of_the_remaining_lifetime() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(refresh_delay(None, now), REFRESH_WITHOUT_EXPIRY);
        assert_eq!(
            refresh_delay(Some(1_000_000 + 3600), now),
            Duration::from_secs(2880)
        );
        // Expired or about to: not a busy loop.
        assert_eq!(refresh_delay(Some(1_000_001), now), MIN_REFRESH);
        assert_eq!(refresh_delay(Some(5), now), MIN_REFRESH);
        assert!(refresh_delay(Some(u64::MAX), now) > Duration::from_secs(1 << 60));
    }

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let mut b = BACKOFF_START;
        let seen: Vec<u64> = (0..8).map(|_| next_backoff(&mut b).as_secs()).collect();
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60]);
    }

    #[tokio::test]
    async fn credentials_from_the_environment_chain_are_converted_and_redacted() {
        let provider = SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "AKIDUNIT",
            "unit-secret-key",
            Some("unit-session-token".into()),
            Some(UNIX_EPOCH + Duration::from_secs(2_000_000_000)),
            "test",
        ));
        let c = CredentialsSource::Aws(provider).fetch().await.unwrap();
        assert_eq!(c.access_key_id, "AKIDUNIT");
        assert_eq!(c.secret_access_key.expose(), "unit-secret-key");
        assert_eq!(c.expires_at, Some(2_000_000_000));
        let printed = format!("{c:?}");
        assert!(!printed.contains("unit-secret-key"), "{printed}");
        assert!(!printed.contains("unit-session-token"), "{printed}");
    }
}
