//! Key records in AWS Secrets Manager: one secret per key, named `<prefix><EIP-55 address>`.
//!
//! The secret's `SecretString` is the record as JSON (the same serde as the file store). The
//! record holds only the KMS ciphertext of the key, never the plaintext; Secrets Manager adds
//! its own encryption at rest and IAM scoping by name prefix.
//!
//! - `create` is `CreateSecret`, which fails with `ResourceExistsException` when the name is
//!   taken: a record is never overwritten, even with two hosts racing. The SDK sends an
//!   idempotency token, so its own retry of a create that did succeed is not reported as a
//!   conflict.
//! - `get` is `GetSecretValue`; the record's address must match the secret's name.
//! - `list` is `ListSecrets` filtered by the prefix (following `NextToken`), then
//!   `BatchGetSecretValue` for up to 20 records per call, a few calls at a time. If the role
//!   may not call `BatchGetSecretValue`, the store falls back to `GetSecretValue` per secret.
//! - Records are immutable once written, so they are cached in memory after the first read.
//!
//! Throttling and transient failures are retried by the SDK's standard retry strategy
//! (exponential backoff with jitter, [`MAX_ATTEMPTS`] attempts); what still fails surfaces as
//! [`StoreError::Unavailable`], as does a denied call, whose message names the missing
//! permission. Secret values never appear in errors, logs or `Debug` output: only secret names
//! (which hold public addresses) do.
//!
//! The IAM permissions the host needs, scoped to
//! `arn:aws:secretsmanager:<region>:<account>:secret:<prefix>*`: `secretsmanager:CreateSecret`,
//! `secretsmanager:GetSecretValue`; and on `*` (these actions take no resource):
//! `secretsmanager:ListSecrets` and, optionally, `secretsmanager:BatchGetSecretValue`.

use super::{KeyRecord, KeyStore, StoreError};
use alloy_primitives::Address;
use aws_sdk_secretsmanager::{
    config::{
        http::HttpResponse, retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, Region,
        SharedCredentialsProvider,
    },
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    types::{Filter, FilterNameStringType},
    Client,
};
use futures::{StreamExt, TryStreamExt};
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

/// Name prefix of key secrets when the configuration gives none.
pub const DEFAULT_PREFIX: &str = "nitro-wallet/keys/";
/// Attempts per call (the first and the SDK's retries) before giving up.
pub const MAX_ATTEMPTS: u32 = 5;
/// Largest `MaxResults` Secrets Manager accepts for `ListSecrets`.
pub const MAX_PAGE_SIZE: i32 = 100;
/// Largest `SecretIdList` Secrets Manager accepts for `BatchGetSecretValue`.
const BATCH_SIZE: usize = 20;
/// `BatchGetSecretValue` (or `GetSecretValue`) calls in flight at once during `list`.
const FETCH_CONCURRENCY: usize = 4;
/// Longest secret name Secrets Manager accepts.
const MAX_NAME_LEN: usize = 512;
/// Length of an EIP-55 address, the last part of every name.
const ADDRESS_LEN: usize = 42;

/// Checks that `prefix` can start a secret name: ASCII letters, digits and `/_+=.@-`, short
/// enough to leave room for an address.
///
/// # Errors
/// A message saying what is wrong.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.len() + ADDRESS_LEN > MAX_NAME_LEN {
        return Err(format!(
            "the Secrets Manager prefix is longer than {} characters",
            MAX_NAME_LEN - ADDRESS_LEN
        ));
    }
    match prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/_+=.@-".contains(*c)))
    {
        Some(c) => Err(format!(
            "the Secrets Manager prefix `{prefix}` contains {c:?}: secret names allow ASCII \
             letters, digits and /_+=.@- only"
        )),
        None => Ok(()),
    }
}

/// An SDK configuration for the store: `region`, an optional endpoint (moto, a VPC endpoint),
/// `credentials`, bounded timeouts and the standard retry strategy.
pub fn sdk_config(
    region: &str,
    endpoint: Option<&str>,
    credentials: SharedCredentialsProvider,
) -> aws_sdk_secretsmanager::Config {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    let mut builder = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_owned()))
        .credentials_provider(credentials)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(timeouts);
    if let Some(endpoint) = endpoint {
        builder = builder.endpoint_url(endpoint);
    }
    builder.build()
}

/// Key records as secrets in AWS Secrets Manager.
pub struct SecretsManagerKeyStore {
    client: Client,
    prefix: String,
    page_size: Option<i32>,
    /// Set once `BatchGetSecretValue` was denied: use `GetSecretValue` from then on.
    no_batch: AtomicBool,
    cache: RwLock<HashMap<Address, Arc<KeyRecord>>>,
}

impl std::fmt::Debug for SecretsManagerKeyStore {
    // Public data only: never the cached records.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerKeyStore")
            .field("prefix", &self.prefix)
            .field("region", &self.client.config().region())
            .field(
                "cached_records",
                &self.cache.read().map(|c| c.len()).unwrap_or_default(),
            )
            .finish_non_exhaustive()
    }
}

impl SecretsManagerKeyStore {
    /// A store of secrets named `<prefix><address>`, called through `client` (see
    /// [`sdk_config`]).
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the prefix is not a valid start of a secret name.
    pub fn new(client: Client, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let prefix = prefix.into();
        validate_prefix(&prefix).map_err(StoreError::Unavailable)?;
        Ok(Self {
            client,
            prefix,
            page_size: None,
            no_batch: AtomicBool::new(false),
            cache: RwLock::default(),
        })
    }

    /// Lists `n` secrets per `ListSecrets` page (1 to [`MAX_PAGE_SIZE`]) instead of the
    /// service default; for tests of pagination.
    #[must_use]
    pub fn with_page_size(mut self, n: i32) -> Self {
        self.page_size = Some(n.clamp(1, MAX_PAGE_SIZE));
        self
    }

    /// The name prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The name of the secret holding `address`'s record.
    pub fn secret_name(&self, address: &Address) -> String {
        format!("{}{}", self.prefix, address.to_checksum(None))
    }

    /// The address a secret name stands for, if it is one of ours in canonical form.
    fn address_of(&self, name: &str) -> Option<Address> {
        let stem = name.strip_prefix(&self.prefix)?;
        let address = Address::parse_checksummed(stem, None).ok()?;
        (address.to_checksum(None) == stem).then_some(address)
    }

    fn cached(&self, address: &Address) -> Option<Arc<KeyRecord>> {
        self.cache.read().ok()?.get(address).cloned()
    }

    fn remember(&self, record: KeyRecord) -> Arc<KeyRecord> {
        let record = Arc::new(record);
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(record.address, record.clone());
        }
        record
    }

    /// Parses and checks the value of secret `name`, which must hold `address`'s record.
    fn accept(
        &self,
        name: &str,
        address: &Address,
        value: Option<&str>,
    ) -> Result<Arc<KeyRecord>, StoreError> {
        let Some(value) = value else {
            return Err(corrupt(name, "the secret has no SecretString".into()));
        };
        let record = parse(name, value)?;
        if record.address != *address {
            return Err(corrupt(
                name,
                "the record's address does not match the secret's name".into(),
            ));
        }
        Ok(self.remember(record))
    }

    /// Every name under the prefix, page by page.
    async fn names(&self) -> Result<Vec<(String, Address)>, StoreError> {
        let filter = Filter::builder()
            .key(FilterNameStringType::Name)
            .values(&self.prefix)
            .build();
        let mut names = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_secrets()
                .filters(filter.clone())
                .set_max_results(self.page_size)
                .set_next_token(next_token.take())
                .send()
                .await
                .map_err(|e| failure("ListSecrets", &format!("{}*", self.prefix), &e))?;
            for entry in page.secret_list() {
                let Some(name) = entry.name() else { continue };
                // The service's name filter is a case-insensitive prefix match: check exactly.
                match self.address_of(name) {
                    Some(address) => names.push((name.to_owned(), address)),
                    None if name.starts_with(&self.prefix) => {
                        tracing::warn!(secret = name, "not a key record name; ignored");
                    }
                    None => {}
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next_token = Some(t.to_owned()),
                _ => return Ok(names),
            }
        }
    }

    /// The records of `names` (none cached), skipping secrets deleted since they were listed.
    async fn fetch(&self, names: &[(String, Address)]) -> Result<Vec<Arc<KeyRecord>>, StoreError> {
        if !self.no_batch.load(Ordering::Relaxed) {
            match self.fetch_batch(names).await {
                Err(Fetch::BatchDenied(message)) => {
                    tracing::warn!(
                        %message,
                        "secretsmanager:BatchGetSecretValue denied: listing with one \
                         GetSecretValue per key (grant it to list faster)"
                    );
                    self.no_batch.store(true, Ordering::Relaxed);
                }
                Err(Fetch::Store(e)) => return Err(e),
                Ok(records) => return Ok(records),
            }
        }
        // Owned items: closures over borrowed ones trip the `Send` check of the trait's future.
        let addresses: Vec<Address> = names.iter().map(|(_, a)| *a).collect();
        let records: Vec<Option<Arc<KeyRecord>>> = futures::stream::iter(addresses)
            .map(|address| async move { self.get(&address).await })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(records.into_iter().flatten().collect())
    }

    async fn fetch_batch(&self, names: &[(String, Address)]) -> Result<Vec<Arc<KeyRecord>>, Fetch> {
        let wanted: HashMap<&str, &Address> = names.iter().map(|(n, a)| (n.as_str(), a)).collect();
        let wanted = &wanted;
        let chunks: Vec<Vec<String>> = names
            .chunks(BATCH_SIZE)
            .map(|c| c.iter().map(|(n, _)| n.clone()).collect())
            .collect();
        let batches: Vec<Vec<Arc<KeyRecord>>> = futures::stream::iter(chunks)
            .map(|ids| async move {
                let out = self
                    .client
                    .batch_get_secret_value()
                    .set_secret_id_list(Some(ids))
                    .send()
                    .await
                    .map_err(|e| {
                        let e = failure("BatchGetSecretValue", &format!("{}*", self.prefix), &e);
                        match e {
                            StoreError::Unavailable(m) if m.contains(DENIED) => {
                                Fetch::BatchDenied(m)
                            }
                            e => Fetch::Store(e),
                        }
                    })?;
                for error in out.errors() {
                    let code = error.error_code().unwrap_or_default();
                    if code == "ResourceNotFoundException" {
                        continue;
                    }
                    let name = error.secret_id().unwrap_or_default();
                    return Err(Fetch::Store(classify(
                        "GetSecretValue",
                        name,
                        Some(code),
                        error.message(),
                    )));
                }
                let mut records = Vec::with_capacity(out.secret_values().len());
                for entry in out.secret_values() {
                    let name = entry.name().unwrap_or_default();
                    let Some(address) = wanted.get(name) else {
                        return Err(Fetch::Store(StoreError::Unavailable(format!(
                            "BatchGetSecretValue returned `{name}`, which was not asked for"
                        ))));
                    };
                    records.push(
                        self.accept(name, address, entry.secret_string())
                            .map_err(Fetch::Store)?,
                    );
                }
                Ok(records)
            })
            .buffer_unordered(FETCH_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(batches.into_iter().flatten().collect())
    }
}

/// Why a batch fetch failed.
enum Fetch {
    /// `BatchGetSecretValue` is not allowed: fall back.
    BatchDenied(String),
    /// Anything else.
    Store(StoreError),
}

/// Marks the message of a denied call.
const DENIED: &str = " denied for ";

fn corrupt(name: &str, reason: String) -> StoreError {
    StoreError::Corrupt {
        name: name.to_owned(),
        reason,
    }
}

/// Parses a record without echoing the value: serde's messages can quote the input.
fn parse(name: &str, value: &str) -> Result<KeyRecord, StoreError> {
    serde_json::from_str(value).map_err(|e| {
        corrupt(
            name,
            format!(
                "not a key record ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ),
        )
    })
}

/// A failed SDK call as a store error naming the action and the secret.
pub(crate) fn failure<E>(action: &str, target: &str, e: &SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match e {
        SdkError::ServiceError(s) => {
            // A 403 without a readable code (an IAM layer in front answering in XML, as moto
            // does) is a denial too.
            let code = match s.err().code() {
                None if s.raw().status().as_u16() == 403 => Some("AccessDenied"),
                code => code,
            };
            classify(action, target, code, s.err().message())
        }
        // The raw response is not quoted: only the parse failure's kind.
        SdkError::ResponseError(_) => StoreError::Unavailable(format!(
            "secretsmanager:{action} on {target}: unreadable response from Secrets Manager"
        )),
        other => StoreError::Unavailable(format!(
            "secretsmanager:{action} on {target}: {}",
            DisplayErrorContext(other)
        )),
    }
}

/// A service error (`code`, `message`) as a store error.
fn classify(action: &str, target: &str, code: Option<&str>, message: Option<&str>) -> StoreError {
    let code = code.unwrap_or("UnknownError");
    let message = message.unwrap_or_default();
    StoreError::Unavailable(match code {
        "AccessDeniedException" | "AccessDenied" | "UnauthorizedOperation" => {
            let detail = if message.is_empty() {
                String::new()
            } else {
                format!(" ({message})")
            };
            format!(
                "secretsmanager:{action}{DENIED}{target}: grant it to the host's IAM role{detail}"
            )
        }
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded" => format!(
            "secretsmanager:{action} on {target} is throttled and still was after \
             {MAX_ATTEMPTS} attempts with backoff; try again later"
        ),
        _ => format!("secretsmanager:{action} on {target} failed: {code}: {message}"),
    })
}

#[async_trait::async_trait]
impl KeyStore for SecretsManagerKeyStore {
    async fn create(&self, record: KeyRecord) -> Result<Arc<KeyRecord>, StoreError> {
        let name = self.secret_name(&record.address);
        let value =
            serde_json::to_string(&record).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let description = format!(
            "nitro-wallet key record (format {}) of {}: the KMS ciphertext of its private key, \
             never the key itself. Do not edit: its policy is bound to the ciphertext.",
            record.version,
            record.address.to_checksum(None)
        );
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description(description)
            .secret_string(value)
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(secret = %name, "key record created");
                Ok(self.remember(record))
            }
            Err(SdkError::ServiceError(s)) if s.err().is_resource_exists_exception() => {
                Err(StoreError::Exists(record.address))
            }
            Err(e) => Err(failure("CreateSecret", &name, &e)),
        }
    }

    async fn reload(&self, address: &Address) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(address);
        }
        self.get(address).await
    }

    async fn get(&self, address: &Address) -> Result<Option<Arc<KeyRecord>>, StoreError> {
        if let Some(r) = self.cached(address) {
            return Ok(Some(r));
        }
        let name = self.secret_name(address);
        match self.client.get_secret_value().secret_id(&name).send().await {
            Ok(out) => self.accept(&name, address, out.secret_string()).map(Some),
            Err(SdkError::ServiceError(s)) if s.err().is_resource_not_found_exception() => Ok(None),
            Err(e) => Err(failure("GetSecretValue", &name, &e)),
        }
    }

    /// Reads the secret afresh, compares, then `PutSecretValue`. Secrets Manager has no
    /// conditional write, so two hosts replacing the same record within one round trip can
    /// still race; the last write wins and both are logged.
    async fn replace(
        &self,
        current: &KeyRecord,
        new: KeyRecord,
    ) -> Result<Arc<KeyRecord>, StoreError> {
        let name = self.secret_name(&current.address);
        let stored = match self.client.get_secret_value().secret_id(&name).send().await {
            Ok(out) => parse(&name, out.secret_string().unwrap_or_default())?,
            Err(SdkError::ServiceError(s)) if s.err().is_resource_not_found_exception() => {
                return Err(StoreError::Changed(current.address))
            }
            Err(e) => return Err(failure("GetSecretValue", &name, &e)),
        };
        if stored != *current || new.address != current.address {
            return Err(StoreError::Changed(current.address));
        }
        let value =
            serde_json::to_string(&new).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        self.client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(value)
            .send()
            .await
            .map_err(|e| failure("PutSecretValue", &name, &e))?;
        tracing::info!(secret = %name, "key record replaced");
        Ok(self.remember(new))
    }

    async fn list(&self) -> Result<Vec<Arc<KeyRecord>>, StoreError> {
        let names = self.names().await?;
        let mut records = Vec::with_capacity(names.len());
        let mut missing = Vec::new();
        for (name, address) in names {
            match self.cached(&address) {
                Some(r) => records.push(r),
                None => missing.push((name, address)),
            }
        }
        if !missing.is_empty() {
            records.extend(self.fetch(&missing).await?);
        }
        records.sort_by(|a, b| (&a.created_at, a.address).cmp(&(&b.created_at, b.address)));
        records.dedup_by_key(|r| r.address);
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prefixes_are_checked() {
        validate_prefix(DEFAULT_PREFIX).unwrap();
        validate_prefix("").unwrap();
        validate_prefix("prod/eu-west-1/wallet+keys=@.-_/").unwrap();
        assert!(validate_prefix("keys with spaces/").is_err());
        assert!(validate_prefix("clés/").is_err());
        assert!(validate_prefix(&"a".repeat(471)).is_err());
        validate_prefix(&"a".repeat(470)).unwrap();
    }

    #[test]
    fn denied_and_throttled_calls_say_what_to_do() {
        let e = classify(
            "CreateSecret",
            "nitro-wallet/keys/0xAb",
            Some("AccessDeniedException"),
            Some("User: arn:aws:sts::1:assumed-role/host is not authorized"),
        );
        let m = e.to_string();
        assert!(
            m.contains("secretsmanager:CreateSecret denied for nitro-wallet/keys/0xAb"),
            "{m}"
        );
        assert!(m.contains("not authorized"), "{m}");
        let m = classify("ListSecrets", "p*", Some("ThrottlingException"), None).to_string();
        assert!(m.contains("throttled") && m.contains("ListSecrets"), "{m}");
        let m = classify(
            "GetSecretValue",
            "n",
            Some("InternalServiceError"),
            Some("boom"),
        );
        assert!(m.to_string().contains("InternalServiceError: boom"), "{m}");
    }

    #[test]
    fn corrupt_records_do_not_echo_the_value() {
        let value = r#"{"version": 1, "address": "SECRET-LOOKING-VALUE"}"#;
        let e = parse("n", value).unwrap_err().to_string();
        assert!(!e.contains("SECRET-LOOKING-VALUE"), "{e}");
        assert!(e.contains("not a key record"), "{e}");
    }
}
