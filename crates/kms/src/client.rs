//! The enclave's KMS client: `Encrypt`, `Decrypt` and `GenerateRandom` through the AWS SDK.
//!
//! Every SDK call is made in this one file, each in one small function. The attested variants
//! ([`KmsClient::decrypt_for_recipient`], [`KmsClient::generate_random_for_recipient`]) send a
//! `Recipient` (RSAES_OAEP_SHA_256 and the enclave's attestation document) and accept only a
//! `CiphertextForRecipient` envelope, opened with the enclave's [`RecipientKey`]; a response
//! carrying `Plaintext` instead is refused (fail closed). The same code runs against real KMS,
//! the local [`crate::emulator`] and moto; only [`KmsConfig::endpoint`] differs.
//!
//! How requests travel is the one other setting: directly (the SDK's own HTTPS client), or,
//! with [`KmsConfig::proxy`], through a byte-forwarding proxy such as AWS's vsock-proxy with
//! TLS ending in this process (see `proxy.rs`), which is how an enclave reaches KMS.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::config::timeout::TimeoutConfig;
use aws_sdk_kms::config::{BehaviorVersion, IdentityCache, Region};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyEncryptionMechanism, RecipientInfo};
use nitro_wallet_protocol::Endpoint;
use zeroize::Zeroizing;

use crate::cms::RecipientKey;
use crate::credentials::CredentialsCell;
use crate::error::{self, KmsError};
use crate::proxy;

/// KMS encryption context: non-secret key/value pairs bound to a ciphertext. Sorted, so it has
/// one canonical form.
pub type EncryptionContext = BTreeMap<String, String>;

/// Time allowed to open a TCP (and TLS) connection to KMS. Through a proxy, dialing the proxy
/// and the TLS handshake are each given this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for a whole operation, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the KMS client sends its requests, and how.
#[derive(Debug, Clone)]
pub struct KmsConfig {
    /// AWS region, e.g. `us-east-1`; part of the request signature even with a custom endpoint.
    pub region: String,
    /// Endpoint override, e.g. `http://127.0.0.1:4599` for the emulator or moto; `None` uses
    /// the regional AWS endpoint, `https://kms.<region>.amazonaws.com`. Not the vsock-proxy's
    /// address: that is [`KmsConfig::proxy`].
    pub endpoint: Option<String>,
    /// Send every request through this byte-forwarding proxy instead of connecting to the
    /// endpoint's host. Each connection dials the proxy, then runs TLS **in this process**
    /// with SNI and certificate verification for the endpoint's host (Mozilla's roots, compiled
    /// in), so the proxy sees only ciphertext and cannot pose as KMS. Only `https` endpoints
    /// are accepted.
    ///
    /// In a Nitro Enclave this is `vsock://3:8000`: AWS's `vsock-proxy` on the parent instance,
    /// forwarding to `kms.<region>.amazonaws.com:443`. The CID must be **3**, which is always
    /// the parent instance as seen from an enclave; CID 2 (`VMADDR_CID_HOST`) is not the
    /// parent. `tcp://` and `unix://` proxies are for tests. `None` connects directly with the
    /// SDK's default HTTPS client.
    pub proxy: Option<Endpoint>,
}

impl KmsConfig {
    /// The regional AWS endpoint of `region`, connected to directly (no override, no proxy).
    pub fn new(region: impl Into<String>) -> KmsConfig {
        KmsConfig {
            region: region.into(),
            endpoint: None,
            proxy: None,
        }
    }
}

/// KMS client for the enclave's key wrapping. Cheap to clone; clones share connections and the
/// [`CredentialsCell`].
#[derive(Clone)]
pub struct KmsClient {
    inner: aws_sdk_kms::Client,
    credentials: CredentialsCell,
    region: String,
    endpoint: Option<String>,
    proxy: Option<Endpoint>,
}

impl fmt::Debug for KmsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmsClient")
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("proxy", &self.proxy)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

impl KmsClient {
    /// Builds a client for `config`, signing with whatever `credentials` holds at request time.
    ///
    /// Timeouts: 3 s to connect, 10 s per operation including the SDK's standard retries
    /// (3 attempts, exponential backoff with jitter). Credentials are not cached by the SDK, so
    /// [`CredentialsCell::set`] takes effect on the next request.
    ///
    /// With [`KmsConfig::proxy`], TLS trusts Mozilla's roots and nothing else; connections
    /// are pooled and reused.
    pub fn new(config: &KmsConfig, credentials: CredentialsCell) -> KmsClient {
        let http_client = config
            .proxy
            .clone()
            .map(|endpoint| proxy::http_client(endpoint, CONNECT_TIMEOUT, proxy::tls_config(&[])));
        KmsClient::build(config, credentials, http_client)
    }

    /// As [`KmsClient::new`] through [`KmsConfig::proxy`], trusting `extra_roots` (DER X.509
    /// certificates) beside Mozilla's roots: for tests, or a private CA in front of KMS. This
    /// adds trust anchors; certificate and host name verification stay on.
    ///
    /// # Errors
    /// [`KmsError::Other`] when `config` has no proxy (the roots would go unused) or a root is
    /// not a usable certificate.
    pub fn with_extra_roots(
        config: &KmsConfig,
        credentials: CredentialsCell,
        extra_roots: &[Vec<u8>],
    ) -> Result<KmsClient, KmsError> {
        let endpoint = config.proxy.clone().ok_or_else(|| {
            KmsError::Other("extra TLS roots apply only with a KMS proxy".to_owned())
        })?;
        let tls =
            proxy::tls_config(extra_roots).map_err(|err| KmsError::Other(error::chain(&err)))?;
        let http_client = proxy::http_client(endpoint, CONNECT_TIMEOUT, Ok(tls));
        Ok(KmsClient::build(config, credentials, Some(http_client)))
    }

    fn build(
        config: &KmsConfig,
        credentials: CredentialsCell,
        http_client: Option<aws_sdk_kms::config::SharedHttpClient>,
    ) -> KmsClient {
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .operation_timeout(OPERATION_TIMEOUT)
            .build();
        let mut builder = aws_sdk_kms::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(config.region.clone()))
            .credentials_provider(credentials.clone())
            .identity_cache(IdentityCache::no_cache())
            .retry_config(RetryConfig::standard())
            .timeout_config(timeouts);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.clone());
        }
        if let Some(http_client) = http_client {
            builder = builder.http_client(http_client);
        }
        KmsClient {
            inner: aws_sdk_kms::Client::from_conf(builder.build()),
            credentials,
            region: config.region.clone(),
            endpoint: config.endpoint.clone(),
            proxy: config.proxy.clone(),
        }
    }

    /// The credentials slot this client signs with.
    pub fn credentials(&self) -> &CredentialsCell {
        &self.credentials
    }

    /// Encrypts `plaintext` (at most 4096 bytes) under `key_id` (key id, ARN or `alias/…`),
    /// binding `context`; returns the KMS ciphertext blob.
    ///
    /// # Errors
    /// [`KmsError::NotFound`] for an unknown key, [`KmsError::Denied`] when KMS refuses (or no
    /// credentials are set), [`KmsError::Unavailable`] on throttling, network failures and
    /// timeouts, [`KmsError::Other`] otherwise (e.g. plaintext too long).
    pub async fn encrypt(
        &self,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, KmsError> {
        self.require_credentials()?;
        let output = self
            .inner
            .encrypt()
            .key_id(key_id)
            .plaintext(Blob::new(plaintext))
            .set_encryption_context(sdk_context(context))
            .send()
            .await
            .map_err(error::from_sdk)?;
        output
            .ciphertext_blob
            .map(Blob::into_inner)
            .ok_or_else(|| KmsError::Other("Encrypt response without CiphertextBlob".to_owned()))
    }

    /// Decrypts a blob made by [`KmsClient::encrypt`]. A `key_id` is sent along, so a blob of
    /// any other key is refused rather than opened; `None` lets KMS take the key from the blob
    /// (only for ciphertexts of unknown origin, such as the reference sample's).
    ///
    /// # Errors
    /// [`KmsError::InvalidCiphertext`] when the blob was tampered with, belongs to another key
    /// or was bound to another encryption context; the others as for [`KmsClient::encrypt`].
    pub async fn decrypt(
        &self,
        key_id: Option<&str>,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        self.require_credentials()?;
        let output = self
            .inner
            .decrypt()
            .set_key_id(key_id.map(str::to_owned))
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(sdk_context(context))
            .send()
            .await
            .map_err(error::from_sdk)?;
        output
            .plaintext
            .map(|blob| Zeroizing::new(blob.into_inner()))
            .ok_or_else(|| KmsError::Other("Decrypt response without Plaintext".to_owned()))
    }

    /// Attested decryption: decrypts a blob made by [`KmsClient::encrypt`] with a `Recipient`
    /// (RSAES_OAEP_SHA_256 and `attestation_document`, which must bind
    /// [`RecipientKey::spki_der`] of `recipient`), so that KMS returns the plaintext only inside
    /// a CMS envelope (`CiphertextForRecipient`) that `recipient` opens here.
    ///
    /// Fails closed: a response with a non-empty `Plaintext`, or without an envelope, is
    /// refused, and the plaintext it carried is zeroized unread.
    ///
    /// # Errors
    /// [`KmsError::Denied`] when KMS refuses the document (its key policy's
    /// `kms:RecipientAttestation:*` conditions, an untrusted or expired document);
    /// [`KmsError::Attestation`] when the response is not an envelope that `recipient` opens
    /// (one generic message); the others as for [`KmsClient::decrypt`].
    pub async fn decrypt_for_recipient(
        &self,
        key_id: Option<&str>,
        ciphertext: &[u8],
        context: &EncryptionContext,
        recipient: &RecipientKey,
        attestation_document: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        self.decrypt_envelope_for_recipient(key_id, ciphertext, context, attestation_document)
            .await?
            .open(recipient)
    }

    /// As [`KmsClient::decrypt_for_recipient`], returning the envelope unopened, so that the
    /// caller can open it (an RSA private-key operation, about a millisecond of CPU) off its
    /// async runtime.
    ///
    /// # Errors
    /// As for [`KmsClient::decrypt_for_recipient`], the envelope's own failures aside.
    pub async fn decrypt_envelope_for_recipient(
        &self,
        key_id: Option<&str>,
        ciphertext: &[u8],
        context: &EncryptionContext,
        attestation_document: &[u8],
    ) -> Result<RecipientEnvelope, KmsError> {
        self.require_credentials()?;
        let output = self
            .inner
            .decrypt()
            .set_key_id(key_id.map(str::to_owned))
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(sdk_context(context))
            .recipient(recipient_info(attestation_document))
            .send()
            .await
            .map_err(error::from_sdk)?;
        RecipientEnvelope::from_response(output.plaintext, output.ciphertext_for_recipient)
    }

    /// Attested random bytes: asks KMS for `n` random bytes (1 to 1024) with a `Recipient`, as
    /// for [`KmsClient::decrypt_for_recipient`], and opens the returned envelope.
    ///
    /// # Errors
    /// [`KmsError::Other`] when `n` is out of range; [`KmsError::Attestation`] when the
    /// response is not an envelope `recipient` opens, or does not hold exactly `n` bytes;
    /// otherwise as for [`KmsClient::decrypt_for_recipient`].
    pub async fn generate_random_for_recipient(
        &self,
        n: usize,
        recipient: &RecipientKey,
        attestation_document: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let count = random_count(n)?;
        self.require_credentials()?;
        let output = self
            .inner
            .generate_random()
            .number_of_bytes(count)
            .recipient(recipient_info(attestation_document))
            .send()
            .await
            .map_err(error::from_sdk)?;
        let bytes =
            RecipientEnvelope::from_response(output.plaintext, output.ciphertext_for_recipient)?
                .open(recipient)?;
        if bytes.len() == n {
            Ok(bytes)
        } else {
            Err(KmsError::Attestation(
                "GenerateRandom envelope does not hold the requested bytes".to_owned(),
            ))
        }
    }

    /// Asks KMS for `n` random bytes (1 to 1024).
    ///
    /// # Errors
    /// [`KmsError::Other`] when `n` is out of range; otherwise as for [`KmsClient::encrypt`].
    pub async fn generate_random(&self, n: usize) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let count = random_count(n)?;
        self.require_credentials()?;
        let output = self
            .inner
            .generate_random()
            .number_of_bytes(count)
            .send()
            .await
            .map_err(error::from_sdk)?;
        let bytes = output
            .plaintext
            .map(|blob| Zeroizing::new(blob.into_inner()));
        match bytes {
            Some(bytes) if bytes.len() == n => Ok(bytes),
            _ => Err(KmsError::Other(
                "GenerateRandom response without the requested bytes".to_owned(),
            )),
        }
    }

    /// Fails fast, without a network round trip, while no credentials are set.
    fn require_credentials(&self) -> Result<(), KmsError> {
        if self.credentials.is_set() {
            Ok(())
        } else {
            Err(KmsError::Denied(
                crate::credentials::NO_CREDENTIALS.to_owned(),
            ))
        }
    }
}

/// `n` as `GenerateRandom`'s `NumberOfBytes`, if KMS accepts it (1 to 1024).
fn random_count(n: usize) -> Result<i32, KmsError> {
    i32::try_from(n)
        .ok()
        .filter(|count| (1..=1024).contains(count))
        .ok_or_else(|| KmsError::Other(format!("cannot ask for {n} random bytes (1..=1024)")))
}

/// The `Recipient` of an attested call: the enclave's attestation document, whose
/// `public_key` KMS encrypts the response to with RSAES-OAEP-SHA-256.
fn recipient_info(attestation_document: &[u8]) -> RecipientInfo {
    RecipientInfo::builder()
        .key_encryption_algorithm(KeyEncryptionMechanism::RsaesOaepSha256)
        .attestation_document(Blob::new(attestation_document))
        .build()
}

/// Generic message for every envelope failure: no detail that could serve as an oracle.
const ENVELOPE_FAILURE: &str = "the KMS response could not be opened with the recipient key";

/// The `CiphertextForRecipient` of an attested response, not yet opened: key material only
/// the holder of the [`RecipientKey`] whose attestation document was sent can read.
#[derive(Debug, Clone)]
pub struct RecipientEnvelope(Vec<u8>);

impl RecipientEnvelope {
    /// The envelope of an attested response, which must come as a `CiphertextForRecipient`
    /// and without plaintext. Fails closed on anything else, zeroizing any `Plaintext`.
    fn from_response(
        plaintext: Option<Blob>,
        envelope: Option<Blob>,
    ) -> Result<RecipientEnvelope, KmsError> {
        let plaintext = plaintext.map(|blob| Zeroizing::new(blob.into_inner()));
        if plaintext.is_some_and(|plain| !plain.is_empty()) {
            tracing::error!("KMS answered an attested request with Plaintext; refused");
            return Err(KmsError::Attestation(
                "KMS returned plaintext instead of CiphertextForRecipient; refused".to_owned(),
            ));
        }
        envelope
            .map(Blob::into_inner)
            .filter(|envelope| !envelope.is_empty())
            .map(RecipientEnvelope)
            .ok_or_else(|| {
                KmsError::Attestation("KMS response without CiphertextForRecipient".to_owned())
            })
    }

    /// Opens the envelope with `recipient` (an RSA-OAEP decryption: CPU-bound, about a
    /// millisecond).
    ///
    /// # Errors
    /// [`KmsError::Attestation`], with one generic message whatever the reason (no padding
    /// oracle).
    pub fn open(&self, recipient: &RecipientKey) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        recipient.decrypt_envelope(&self.0).map_err(|err| {
            tracing::warn!(code = err.code(), "CiphertextForRecipient did not open");
            KmsError::Attestation(ENVELOPE_FAILURE.to_owned())
        })
    }
}

/// The SDK's form of an encryption context; an empty context is sent as none, as KMS treats
/// both alike.
fn sdk_context(context: &EncryptionContext) -> Option<HashMap<String, String>> {
    if context.is_empty() {
        None
    } else {
        Some(
            context
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key material of an attested response, as the attested calls take it.
    fn open_for_recipient(
        plaintext: Option<Blob>,
        envelope: Option<Blob>,
        recipient: &RecipientKey,
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        RecipientEnvelope::from_response(plaintext, envelope)?.open(recipient)
    }

    /// The SDK path itself (not only the early check) turns a missing identity into `Denied`.
    #[tokio::test]
    async fn sdk_credentials_failure_maps_to_denied() {
        let config = KmsConfig {
            region: "us-east-1".to_owned(),
            endpoint: Some("http://127.0.0.1:9".to_owned()),
            proxy: None,
        };
        let client = KmsClient::new(&config, CredentialsCell::new());
        let err = client
            .inner
            .encrypt()
            .key_id("alias/x")
            .plaintext(Blob::new(b"x".as_slice()))
            .send()
            .await
            .map_err(error::from_sdk)
            .expect_err("no credentials");
        assert!(matches!(err, KmsError::Denied(_)), "{err:?}");
    }

    #[test]
    fn debug_shows_no_credentials() {
        let cell = CredentialsCell::new();
        cell.set(aws_credential_types::Credentials::from_keys(
            "AKIDX", "s3cr3t", None,
        ));
        let mut config = KmsConfig::new("eu-west-1");
        let printed = format!("{:?}", KmsClient::new(&config, cell.clone()));
        assert!(printed.contains("eu-west-1"));
        assert!(!printed.contains("s3cr3t") && !printed.contains("AKIDX"));
        config.proxy = Some(Endpoint::Vsock { cid: 3, port: 8000 });
        let printed = format!("{:?}", KmsClient::new(&config, cell));
        assert!(
            printed.contains("Vsock { cid: 3, port: 8000 }"),
            "{printed}"
        );
        assert!(!printed.contains("s3cr3t") && !printed.contains("AKIDX"));
    }

    #[test]
    fn recipient_response_fails_closed() {
        let key = RecipientKey::generate().expect("key");
        let other = RecipientKey::generate().expect("key");
        let secret = b"key material".as_slice();
        let envelope = crate::cms::encrypt_envelope(&key.spki_der(), secret).expect("envelope");
        let blob = |bytes: &[u8]| Some(Blob::new(bytes));

        let opened = open_for_recipient(None, blob(&envelope), &key).expect("opens");
        assert_eq!(&opened[..], secret);
        // An empty Plaintext beside the envelope is what KMS sends; tolerated.
        let opened = open_for_recipient(blob(b""), blob(&envelope), &key).expect("opens");
        assert_eq!(&opened[..], secret);

        let refusals = [
            open_for_recipient(blob(secret), None, &key),
            open_for_recipient(blob(secret), blob(&envelope), &key),
            open_for_recipient(None, None, &key),
            open_for_recipient(None, blob(b""), &key),
            open_for_recipient(None, blob(b"\x30\x80garbage"), &key),
            open_for_recipient(None, blob(&envelope), &other),
        ];
        for (i, result) in refusals.into_iter().enumerate() {
            let err = result.expect_err("refused");
            assert!(matches!(err, KmsError::Attestation(_)), "{i}: {err:?}");
            assert_eq!(err.code(), "kms_attestation");
            assert!(!err.to_string().contains("key material"), "{i}: {err}");
        }
        // Every envelope failure reads the same.
        let wrong_key = open_for_recipient(None, blob(&envelope), &other).expect_err("wrong");
        let garbage = open_for_recipient(None, blob(b"\x30\x80"), &key).expect_err("garbage");
        assert_eq!(wrong_key.to_string(), garbage.to_string());
    }

    #[test]
    fn empty_context_is_sent_as_none() {
        assert_eq!(sdk_context(&EncryptionContext::new()), None);
        let context = EncryptionContext::from([("a".to_owned(), "b".to_owned())]);
        assert_eq!(
            sdk_context(&context)
                .expect("some")
                .get("a")
                .map(String::as_str),
            Some("b")
        );
    }
}
