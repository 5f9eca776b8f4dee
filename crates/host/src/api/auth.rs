//! Who may call the API, and for what: bearer tokens, their scopes and their rate limits.
//!
//! Tokens are configured as SHA-256 hashes ([`crate::tokens`]). A presented token is hashed
//! and compared with every known hash in constant time, so neither the comparison nor the
//! position of a match leaks through timing. An unknown or missing token is 401
//! `unauthorized`; a known token is then charged against its rate limit (429 `rate_limited`
//! with `Retry-After`) and becomes the request's [`Caller`]. Handlers ask the caller whether it
//! may perform their [`Operation`] on their key ([`Caller::authorize`]) before looking anything
//! up, so a refusal (403 `forbidden`, naming the missing scope) never tells which other keys
//! exist.
//!
//! The set of tokens is the configuration's inline `[[tokens]]` plus the `[auth] tokens_file`,
//! which [`Tokens::watch`] re-reads when it changes (polled every second) or on `SIGHUP`: a
//! token revoked there is refused from the next request on. A file that fails to parse is
//! reported and the last good set kept; a file that disappears holds no tokens.

use super::{error::ApiError, AppState};
use crate::{
    config::TokenConfig,
    tokens::{check_tokens, default_burst, KeyScope, Operation, TokensFile},
};
use alloy_primitives::Address;
use axum::{
    extract::{FromRequestParts, Request, State},
    http::{header, request::Parts, HeaderMap, StatusCode},
    middleware::Next,
    response::Response,
};
use sha2::{Digest, Sha256};
use std::{
    collections::{BTreeSet, HashMap},
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::{Duration, Instant},
};
use subtle::ConstantTimeEq;

/// How often the tokens file is checked for changes.
pub const RELOAD_POLL: Duration = Duration::from_secs(1);

/// The known tokens: the inline ones and those of the tokens file, swapped as a whole on
/// reload, with the rate-limit state of each.
pub struct Tokens {
    inline: Vec<TokenConfig>,
    file: Option<PathBuf>,
    current: RwLock<Arc<Vec<Known>>>,
    /// What the file looked like at the last check (metadata and content digest).
    seen: Mutex<Seen>,
    /// Token buckets by token name, for the tokens that have a rate limit.
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Client certificate common name -> token name (`[[auth.client_certs]]`).
    client_certs: HashMap<String, String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("known", &self.snapshot().len())
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

struct Known {
    hash: [u8; 32],
    grant: Arc<Grant>,
}

#[derive(Debug, PartialEq)]
struct Grant {
    name: String,
    keys: KeyScope,
    operations: BTreeSet<Operation>,
    rate: Option<Rate>,
}

impl Grant {
    fn allows(&self, op: Operation) -> bool {
        self.operations.contains(&Operation::Admin) || self.operations.contains(&op)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate {
    per_second: f64,
    burst: f64,
}

#[derive(Debug, Default)]
struct Seen {
    stamp: Option<Stamp>,
    digest: Option<[u8; 32]>,
}

/// Identity and version of the file: a rename (how it is rewritten) changes the inode, an
/// edit in place the size or time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(path: &std::path::Path) -> std::io::Result<Option<Stamp>> {
        use std::os::unix::fs::MetadataExt as _;
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some(Stamp {
                dev: m.dev(),
                ino: m.ino(),
                len: m.len(),
                mtime: (m.mtime(), m.mtime_nsec()),
                ctime: (m.ctime(), m.ctime_nsec()),
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The authenticated caller of a request: a token's name and scopes. Handlers take it as an
/// extractor (it is put there by [`require_token`]; without it the request is 401).
#[derive(Debug, Clone)]
pub struct Caller(Arc<Grant>);

impl Caller {
    /// The token's name (for logs and audit; never the token).
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// Whether the token may perform `op` (on some key).
    pub fn allows(&self, op: Operation) -> bool {
        self.0.allows(op)
    }

    /// Whether `address` is among the keys the token may use.
    pub fn may_use(&self, address: &Address) -> bool {
        self.0.keys.allows(address)
    }

    /// Checks that the token may perform `op`, with `key` when the operation is on a key.
    ///
    /// # Errors
    /// [`Forbidden`] naming the missing operation, or the key that is outside the scope.
    pub fn authorize(&self, op: Operation, key: Option<&Address>) -> Result<(), Forbidden> {
        let refusal = if !self.allows(op) {
            Forbidden::Operation(op)
        } else if let Some(address) = key.filter(|a| !self.may_use(a)) {
            Forbidden::Key(*address)
        } else {
            return Ok(());
        };
        tracing::info!(token = %self.name(), refused = %refusal, "outside the token's scope");
        Err(refusal)
    }
}

/// A request outside the caller's scope (403 `forbidden`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Forbidden {
    /// The token lacks this operation.
    #[error("this token lacks the `{0}` scope")]
    Operation(Operation),
    /// The key is not in the token's `keys`.
    #[error("this token's `keys` scope does not include {}", .0.to_checksum(None))]
    Key(Address),
}

impl From<Forbidden> for ApiError {
    fn from(e: Forbidden) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", e.to_string())
    }
}

/// Why a rate-limited request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttled {
    /// Try again after this many seconds.
    RetryAfter(u32),
    /// The request costs more than the token's burst: it can never pass as it is.
    OverBurst(u32),
}

impl Throttled {
    /// The 429 answer of the REST API.
    pub fn into_api_error(self) -> ApiError {
        match self {
            Throttled::RetryAfter(secs) => ApiError {
                retry_after: Some(secs),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    format!("this token's rate limit is reached; retry in {secs} s"),
                )
            },
            Throttled::OverBurst(burst) => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("the request costs more than this token's burst of {burst}"),
            ),
        }
    }
}

#[derive(Debug)]
struct Bucket {
    rate: Rate,
    level: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: Rate, now: Instant) -> Bucket {
        Bucket {
            rate,
            level: rate.burst,
            last: now,
        }
    }

    fn take(&mut self, cost: u32, now: Instant) -> Result<(), Throttled> {
        let cost = f64::from(cost);
        if cost > self.rate.burst {
            // `burst` came from a u32.
            return Err(Throttled::OverBurst(self.rate.burst as u32));
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.level = (self.level + elapsed * self.rate.per_second).min(self.rate.burst);
        self.last = now;
        if self.level >= cost {
            self.level -= cost;
            return Ok(());
        }
        let wait = ((cost - self.level) / self.rate.per_second).ceil();
        // Saturating: a rate of 1e-9/s would otherwise overflow.
        Err(Throttled::RetryAfter((wait as u32).max(1)))
    }
}

impl Tokens {
    /// The inline tokens and, when `file` is given, those of the tokens file (a missing file
    /// holds none).
    ///
    /// # Errors
    /// When the file cannot be read or parsed, or a name is used both inline and in it.
    pub fn new(inline: Vec<TokenConfig>, file: Option<PathBuf>) -> Result<Tokens, String> {
        let tokens = Tokens {
            inline,
            file,
            current: RwLock::default(),
            seen: Mutex::default(),
            buckets: Mutex::default(),
            client_certs: HashMap::new(),
        };
        if let Some(path) = &tokens.file {
            if Stamp::of(path)
                .map_err(|e| format!("{}: {e}", path.display()))?
                .is_none()
            {
                tracing::warn!(
                    file = %path.display(),
                    "the tokens file does not exist: it holds no tokens until \
                     `nitro-wallet tokens create` makes one"
                );
            }
        }
        tokens.refresh(true)?;
        Ok(tokens)
    }

    /// Maps client certificates to tokens: a caller presenting a verified certificate whose
    /// subject common name is mapped acts as that token (while the token exists).
    #[must_use]
    pub fn with_client_certs(mut self, mapping: &[crate::config::ClientCertConfig]) -> Tokens {
        self.client_certs = mapping
            .iter()
            .map(|m| (m.common_name.clone(), m.token.clone()))
            .collect();
        self
    }

    /// The caller of a request: its bearer token if it has one (which must be valid), or else
    /// its verified client certificate if that is mapped to a token that exists.
    ///
    /// # Errors
    /// Why the request is unauthenticated (a 401 message, naming no secret).
    pub fn authenticate(
        &self,
        bearer: Option<&str>,
        cert: Option<&crate::tls::ClientCert>,
    ) -> Result<Caller, String> {
        if let Some(token) = bearer {
            return self.verify(token).ok_or_else(|| "invalid token".to_owned());
        }
        let Some(cert) = cert else {
            return Err(if self.client_certs.is_empty() {
                "missing `Authorization: Bearer <token>` header".to_owned()
            } else {
                "missing `Authorization: Bearer <token>` header or client certificate".to_owned()
            });
        };
        let Some(name) = cert.common_name.as_deref() else {
            return Err("the client certificate has no single subject common name".to_owned());
        };
        let token = self.client_certs.get(name).ok_or_else(|| {
            format!("the client certificate `CN={name}` is not mapped to a token ([[auth.client_certs]])")
        })?;
        self.snapshot()
            .iter()
            .find(|k| &k.grant.name == token)
            .map(|k| Caller(k.grant.clone()))
            .ok_or_else(|| {
                format!("the client certificate `CN={name}` is mapped to token `{token}`, which does not exist (revoked?)")
            })
    }

    /// Only these tokens, without a file.
    pub fn fixed(inline: Vec<TokenConfig>) -> Result<Tokens, String> {
        Tokens::new(inline, None)
    }

    /// SHA-256 of a token, hex: what goes into the configuration.
    pub fn hash(token: &str) -> String {
        hex::encode(Sha256::digest(token.as_bytes()))
    }

    fn snapshot(&self) -> Arc<Vec<Known>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The caller a presented token stands for, if it is one of ours. Every known hash is
    /// compared, in constant time.
    pub fn verify(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let known = self.snapshot();
        let mut found = None;
        for k in known.iter() {
            if bool::from(k.hash.ct_eq(&digest)) {
                found = Some(Caller(k.grant.clone()));
            }
        }
        found
    }

    /// Charges `cost` requests to the caller's rate limit, if it has one.
    ///
    /// # Errors
    /// [`Throttled`] when the token's bucket holds less than `cost`.
    pub fn admit(&self, caller: &Caller, cost: u32) -> Result<(), Throttled> {
        let Some(rate) = caller.0.rate else {
            return Ok(());
        };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let bucket = buckets
            .entry(caller.0.name.clone())
            .or_insert_with(|| Bucket::new(rate, now));
        if bucket.rate != rate {
            // The limit changed on reload: start afresh with it.
            *bucket = Bucket::new(rate, now);
        }
        let result = bucket.take(cost, now);
        if let Err(t) = result {
            tracing::info!(token = %caller.name(), ?t, "rate limited");
        }
        result
    }

    /// Re-reads the tokens file if it changed since the last look (or in any case when
    /// `force`), and swaps the set of tokens. Returns whether the set changed.
    ///
    /// # Errors
    /// When the file cannot be read or is invalid; the current set stays.
    pub fn refresh(&self, force: bool) -> Result<bool, String> {
        let from_file = match &self.file {
            None => {
                if !force {
                    return Ok(false);
                }
                Vec::new()
            }
            Some(path) => {
                let shown = path.display();
                let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
                let stamp = Stamp::of(path).map_err(|e| format!("{shown}: {e}"))?;
                if !force && stamp == seen.stamp {
                    return Ok(false);
                }
                let text = match stamp {
                    None => String::new(),
                    Some(_) => match std::fs::read_to_string(path) {
                        Ok(t) => t,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                        Err(e) => return Err(format!("cannot read {shown}: {e}")),
                    },
                };
                let digest: [u8; 32] = Sha256::digest(text.as_bytes()).into();
                seen.stamp = stamp;
                if !force && seen.digest == Some(digest) {
                    return Ok(false);
                }
                seen.digest = Some(digest);
                TokensFile::parse(&text)
                    .map_err(|e| format!("{shown}: {e}"))?
                    .tokens
            }
        };
        check_tokens(self.inline.iter().chain(&from_file)).map_err(|e| match &self.file {
            Some(path) => format!("{} with the configuration's tokens: {e}", path.display()),
            None => e,
        })?;
        let known: Vec<Known> = self
            .inline
            .iter()
            .chain(&from_file)
            .filter_map(known)
            .collect();
        let names = |set: &[Known]| -> BTreeSet<String> {
            set.iter().map(|k| k.grant.name.clone()).collect()
        };
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let (before, after) = (names(&current), names(&known));
        let changed = current.len() != known.len()
            || current
                .iter()
                .zip(&known)
                .any(|(a, b)| a.hash != b.hash || a.grant != b.grant);
        *current = Arc::new(known);
        drop(current);
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|name, _| after.contains(name));
        if changed && self.file.is_some() {
            let added: Vec<&String> = after.difference(&before).collect();
            let removed: Vec<&String> = before.difference(&after).collect();
            tracing::info!(tokens = after.len(), ?added, ?removed, "API tokens loaded");
        }
        Ok(changed)
    }

    /// With a tokens file, starts a task that re-reads it when it changes (checked every
    /// [`RELOAD_POLL`]) and at once on `SIGHUP`. The task ends when these tokens are dropped.
    pub fn watch(self: &Arc<Self>) {
        let Some(path) = self.file.clone() else {
            return;
        };
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut hangup = match tokio::signal::unix::signal(
                tokio::signal::unix::SignalKind::hangup(),
            ) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot handle SIGHUP; the tokens file is still polled");
                    None
                }
            };
            let mut tick = tokio::time::interval(RELOAD_POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let force = tokio::select! {
                    _ = tick.tick() => false,
                    Some(()) = async {
                        match hangup.as_mut() {
                            Some(h) => h.recv().await,
                            None => std::future::pending().await,
                        }
                    } => true,
                };
                let Some(tokens) = weak.upgrade() else {
                    break;
                };
                if force {
                    tracing::info!(file = %path.display(), "SIGHUP: reading the tokens file");
                }
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || tokens.refresh(force)).await
                {
                    tracing::error!(
                        error = %e,
                        "the tokens file is invalid: the tokens loaded before stay in force \
                         until it is fixed"
                    );
                }
            }
        });
    }
}

fn known(t: &TokenConfig) -> Option<Known> {
    let hash: [u8; 32] = hex::decode(&t.sha256).ok()?.try_into().ok()?;
    let rate = t.rate_per_second.map(|per_second| Rate {
        per_second,
        burst: f64::from(t.burst.unwrap_or_else(|| default_burst(per_second))),
    });
    Some(Known {
        hash,
        grant: Arc::new(Grant {
            name: t.name.clone(),
            keys: t.keys.clone(),
            operations: t.operations.iter().copied().collect(),
            rate,
        }),
    })
}

/// The bearer token of an `Authorization` header, if there is one.
///
/// # Errors
/// When the header is there but not `Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    match headers.get(header::AUTHORIZATION) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .map(Some)
            .ok_or("the Authorization header must be `Bearer <token>`"),
    }
}

/// Middleware: 401 unless the request carries a valid bearer token, 429 when the token's rate
/// limit is reached; otherwise the request goes on with its [`Caller`].
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let token = bearer(request.headers()).map_err(ApiError::unauthorized)?;
    let cert = client_cert(request.extensions());
    let caller = state
        .tokens
        .authenticate(token, cert)
        .map_err(|m| ApiError::unauthorized(&m))?;
    state
        .tokens
        .admit(&caller, 1)
        .map_err(Throttled::into_api_error)?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

/// The connection's verified client certificate, if the caller presented one.
pub fn client_cert(extensions: &axum::http::Extensions) -> Option<&crate::tls::ClientCert> {
    extensions
        .get::<Option<crate::tls::ClientCert>>()
        .and_then(Option::as_ref)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        // Fails closed: a route mounted without `require_token` has no caller.
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("missing `Authorization: Bearer <token>` header"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn token(name: &str, secret: &str) -> TokenConfig {
        TokenConfig::full_access(name, &Tokens::hash(secret))
    }

    #[test]
    fn verifies_only_configured_tokens() {
        let tokens = Tokens::fixed(vec![token("ops", "s3cret")]).unwrap();
        assert_eq!(tokens.verify("s3cret").unwrap().name(), "ops");
        assert!(tokens.verify("s3cret ").is_none());
        assert!(tokens.verify("").is_none());
        assert!(
            tokens.verify(&Tokens::hash("s3cret")).is_none(),
            "the hash itself is not a token"
        );
    }

    #[test]
    fn scopes_decide_operations_and_keys() {
        let a: Address = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            .parse()
            .unwrap();
        let b = Address::repeat_byte(0x11);
        let tokens = Tokens::fixed(vec![
            TokenConfig {
                keys: KeyScope::Only([a].into()),
                operations: vec![Operation::SignMessage, Operation::KeysRead],
                ..token("scoped", "one")
            },
            TokenConfig {
                keys: KeyScope::Only([a].into()),
                operations: vec![Operation::Admin],
                ..token("admin", "two")
            },
        ])
        .unwrap();
        let scoped = tokens.verify("one").unwrap();
        assert!(scoped.authorize(Operation::SignMessage, Some(&a)).is_ok());
        assert_eq!(
            scoped.authorize(Operation::SignMessage, Some(&b)),
            Err(Forbidden::Key(b))
        );
        assert_eq!(
            scoped.authorize(Operation::SignTransaction, Some(&a)),
            Err(Forbidden::Operation(Operation::SignTransaction))
        );
        let e = ApiError::from(Forbidden::Operation(Operation::SignHash));
        assert_eq!(
            (e.status, e.code.as_str()),
            (StatusCode::FORBIDDEN, "forbidden")
        );
        assert!(e.message.contains("`sign:hash`"), "{}", e.message);
        // admin implies every operation, but the key list still holds.
        let admin = tokens.verify("two").unwrap();
        for op in Operation::ALL {
            assert!(admin.authorize(op, Some(&a)).is_ok(), "{op}");
        }
        assert!(admin.authorize(Operation::SignHash, Some(&b)).is_err());
    }

    #[test]
    fn the_bucket_refills_at_the_rate() {
        let rate = Rate {
            per_second: 2.0,
            burst: 3.0,
        };
        let t0 = Instant::now();
        let mut bucket = Bucket::new(rate, t0);
        for _ in 0..3 {
            bucket.take(1, t0).unwrap();
        }
        assert_eq!(bucket.take(1, t0), Err(Throttled::RetryAfter(1)));
        // Half a second later one request's worth is back.
        bucket.take(1, t0 + Duration::from_millis(500)).unwrap();
        assert!(bucket.take(1, t0 + Duration::from_millis(500)).is_err());
        // Never above the burst, however long the pause.
        let later = t0 + Duration::from_secs(3600);
        bucket.take(3, later).unwrap();
        assert_eq!(bucket.take(3, later), Err(Throttled::RetryAfter(2)));
        assert_eq!(bucket.take(4, later), Err(Throttled::OverBurst(3)));
        let slow = Rate {
            per_second: 0.01,
            burst: 1.0,
        };
        let mut bucket = Bucket::new(slow, t0);
        bucket.take(1, t0).unwrap();
        assert_eq!(bucket.take(1, t0), Err(Throttled::RetryAfter(100)));
    }

    #[test]
    fn the_file_is_reread_on_change_and_a_bad_file_keeps_the_last_good_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let tokens = Tokens::new(vec![token("inline", "i")], Some(path.clone())).unwrap();
        assert!(tokens.verify("f").is_none());
        let file = |entries: &[TokenConfig]| {
            TokensFile {
                tokens: entries.to_vec(),
            }
            .write(&path)
            .unwrap();
        };
        file(&[token("filed", "f")]);
        assert!(tokens.refresh(false).unwrap());
        assert_eq!(tokens.verify("f").unwrap().name(), "filed");
        assert!(!tokens.refresh(false).unwrap(), "unchanged");
        std::fs::write(&path, "[[tokens]]\nname = 1\n").unwrap();
        assert!(tokens.refresh(false).is_err());
        assert!(tokens.verify("f").is_some(), "the last good set stays");
        // A name used inline cannot come from the file too.
        file(&[token("inline", "other")]);
        assert!(tokens.refresh(false).unwrap_err().contains("used twice"));
        file(&[]);
        assert!(tokens.refresh(false).unwrap());
        assert!(tokens.verify("f").is_none(), "revoked");
        assert!(tokens.verify("i").is_some(), "inline tokens stay");
        std::fs::remove_file(&path).unwrap();
        file(&[token("filed", "f")]);
        assert!(tokens.refresh(false).unwrap());
        std::fs::remove_file(&path).unwrap();
        assert!(tokens.refresh(false).unwrap());
        assert!(
            tokens.verify("f").is_none(),
            "a deleted file holds no tokens"
        );
        // A broken file at start-up is an error.
        std::fs::write(&path, "nonsense").unwrap();
        assert!(Tokens::new(vec![], Some(path)).is_err());
    }
}
