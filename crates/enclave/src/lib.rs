//! The enclave signing server.
//!
//! It listens for host connections ([`server`]), keeps decrypted keys in a bounded in-memory
//! cache ([`keys`]) so that steady-state signing makes no KMS call, and wraps and unwraps keys
//! with KMS through the AWS SDK ([`Enclave`]). Plaintext keys never leave this process.
//! Every signing and key-management decision is recorded in the process's audit chain,
//! signed by an attested key ([`nitro_wallet_audit`]).

mod audit;
pub mod cli;
pub mod harden;
pub mod keys;
mod recipient;
pub mod server;
mod stats;
mod window;

use alloy_primitives::{Address, B256};
use keys::KeyCache;
use nitro_wallet_attestation::Nsm;
use nitro_wallet_audit::{Chain, Genesis, SignedEntry};
use nitro_wallet_eth::{AuthorizationRequest, MessageSignature, PrivateKey, TransactionRequest};
use nitro_wallet_kms::{cms::RecipientKey, CredentialsCell, KmsClient, KmsConfig, KmsError};
use nitro_wallet_policy::{Intent, Policy, WindowState};
use nitro_wallet_protocol::{
    message::{AttestationDocument, Credentials, WrappedKey},
    AuditEntries, AuditEntryList, Audited, AuditedReply, ErrorBody, ErrorCode, Pong, Reply,
    Request, Response, WindowedTransaction,
};
use std::sync::Arc;

/// Largest nonce a client may have bound into an attestation document.
pub const MAX_NONCE_LEN: usize = 512;

/// Settings of one enclave process.
#[derive(Clone)]
pub struct EnclaveConfig {
    /// Where KMS is.
    pub kms: KmsConfig,
    /// Most plaintext keys kept in memory.
    pub max_cached_keys: usize,
    /// The Nitro Secure Module (the dev NSM outside an enclave): attestation and entropy.
    pub nsm: Arc<dyn Nsm>,
    /// INSECURE, dev and tests only: unwrap keys with a plain KMS `Decrypt` whose response
    /// carries the plaintext, as KMS emulators without attestation support (moto) answer.
    /// [`Enclave::new`] refuses it with the real NSM.
    pub unattested_kms: bool,
}

impl std::fmt::Debug for EnclaveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnclaveConfig")
            .field("kms", &self.kms)
            .field("max_cached_keys", &self.max_cached_keys)
            .field("dev_nsm", &self.nsm.is_dev())
            .field("unattested_kms", &self.unattested_kms)
            .finish()
    }
}

/// Why the enclave could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The OS random generator failed.
    #[error("random number generator: {0}")]
    Rng(#[from] nitro_wallet_eth::Error),
    /// The KMS recipient key pair could not be made.
    #[error("recipient key: {0}")]
    Recipient(#[from] nitro_wallet_kms::cms::CmsError),
    /// The audit key could not be made.
    #[error("audit key: {0}")]
    Audit(#[from] nitro_wallet_audit::ChainError),
    /// Unattested KMS responses were asked for with the real NSM, i.e. in production.
    #[error(
        "accepting unattested KMS responses is a dev-only setting and is refused with the real \
         NSM: in an enclave KMS must answer to the attestation document"
    )]
    UnattestedInProduction,
}

/// The enclave's state: KMS access, attestation and the key cache.
pub struct Enclave {
    kms: KmsClient,
    credentials: CredentialsCell,
    keys: KeyCache,
    self_test_key: PrivateKey,
    nsm: Arc<dyn Nsm>,
    /// RSA-2048 key pair whose public half goes into every attestation document sent with a
    /// KMS `Recipient`; KMS answers with envelopes only this process can open. In memory
    /// only, for the life of the process (shared with the blocking threads that open
    /// envelopes).
    recipient: Arc<RecipientKey>,
    /// The attestation document binding `recipient` that KMS calls carry, reused for a while.
    recipient_documents: recipient::RecipientDocuments,
    /// Dev only: plain `Decrypt` instead of the attested one (see [`EnclaveConfig`]).
    unattested_kms: bool,
    /// Rolling-window spending of keys whose policy has a window, by address.
    windows: tokio::sync::Mutex<std::collections::HashMap<Address, WindowState>>,
    /// This process's audit chain, under an Ed25519 key made at start.
    audit: Chain,
    /// Set once the chain's genesis (with its attestation document) is written.
    audit_started: tokio::sync::OnceCell<()>,
    /// KMS counters reported in every pong.
    stats: stats::Stats,
}

impl std::fmt::Debug for Enclave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enclave")
            .field("kms", &self.kms)
            .field("keys", &self.keys)
            .field("dev_nsm", &self.nsm.is_dev())
            .field("recipient", &self.recipient)
            .field("unattested_kms", &self.unattested_kms)
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}

impl Enclave {
    /// Builds the enclave state and its recipient key pair. No KMS call is made until a key
    /// is needed.
    ///
    /// # Errors
    /// When the random generator or the RSA key generation fails.
    pub fn new(config: &EnclaveConfig) -> Result<Arc<Enclave>, StartError> {
        if config.unattested_kms {
            if !config.nsm.is_dev() {
                return Err(StartError::UnattestedInProduction);
            }
            tracing::warn!(
                "INSECURE: keys are unwrapped with plain KMS Decrypt responses (no attestation); \
                 dev and tests only"
            );
        }
        let credentials = CredentialsCell::default();
        Ok(Arc::new(Enclave {
            kms: KmsClient::new(&config.kms, credentials.clone()),
            credentials,
            keys: KeyCache::new(config.max_cached_keys),
            self_test_key: PrivateKey::generate()?,
            nsm: config.nsm.clone(),
            recipient: Arc::new(RecipientKey::generate()?),
            recipient_documents: recipient::RecipientDocuments::new(recipient::MAX_AGE),
            unattested_kms: config.unattested_kms,
            windows: Default::default(),
            audit: Chain::new()?,
            audit_started: tokio::sync::OnceCell::new(),
            stats: stats::Stats::default(),
        }))
    }

    /// The audit chain's id: the public half of this process's audit key.
    pub fn audit_chain(&self) -> nitro_wallet_audit::ChainId {
        self.audit.id()
    }

    /// Runs a blocking NSM call off the async workers.
    async fn nsm_call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Nsm) -> Result<T, nitro_wallet_attestation::NsmError> + Send + 'static,
    ) -> Result<T, ErrorBody> {
        let nsm = self.nsm.clone();
        tokio::task::spawn_blocking(move || f(nsm.as_ref()))
            .await
            .map_err(|_| ErrorBody::new(ErrorCode::Internal, "NSM call aborted"))?
            .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("NSM: {e}")))
    }

    /// A new private key from the OS RNG mixed with NSM entropy.
    async fn generate_key(&self) -> Result<PrivateKey, ErrorBody> {
        let entropy = self.nsm_call(|nsm| nsm.random(32)).await?;
        PrivateKey::generate_with_entropy(&entropy)
            .map_err(|_| ErrorBody::new(ErrorCode::Internal, "random number generator failed"))
    }

    /// Handles one request. Never panics on any input; every failure is an [`ErrorBody`].
    ///
    /// Signing and key-management requests are decided and recorded in the audit chain,
    /// wrapped in [`Request::Audited`] (the entries come back with the outcome) or not (they
    /// still take their place in the chain). No outcome is released unless its entry was
    /// recorded.
    pub async fn handle(&self, request: Request) -> Result<Response, ErrorBody> {
        match request {
            Request::Audited(Audited {
                caller,
                log_head,
                request,
            }) => {
                let (reply, entries) = self
                    .decide_and_record(*request, caller.as_deref(), log_head)
                    .await?;
                Ok(Response::Audited(AuditedReply {
                    reply: Box::new(reply),
                    entries,
                }))
            }
            Request::AuditEntries(r) => self.audit_entries(&r),
            request if audit::is_recorded(&request) => {
                match self.decide_and_record(request, None, None).await?.0 {
                    Reply::Ok(response) => Ok(response),
                    Reply::Err(e) => Err(e),
                }
            }
            request => self.respond(request, &mut audit::Note::default()).await,
        }
    }

    /// Decides a signing or key-management request and records the decision as the next
    /// entry of the audit chain (starting the chain first if needed). Returns the outcome and
    /// the entries made for it.
    ///
    /// # Errors
    /// `invalid_request` for a request that is not recorded (nested `audited`, a ping…);
    /// `audit_unavailable` when the chain cannot start or record: then nothing was signed
    /// (chain start) or nothing is released (record).
    async fn decide_and_record(
        &self,
        request: Request,
        caller: Option<&str>,
        log_head: Option<B256>,
    ) -> Result<(Reply, Vec<SignedEntry>), ErrorBody> {
        let Some(mut note) = audit::Note::for_request(&request) else {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "only signing and key-management requests are audited",
            ));
        };
        let mut entries: Vec<SignedEntry> = self.start_audit(log_head).await?.into_iter().collect();
        let outcome = self.respond(request, &mut note).await;
        let entry = self
            .audit
            .record(note.decision(caller, &outcome), audit::now_ms())
            .map_err(|e| ErrorBody::new(ErrorCode::AuditUnavailable, e.to_string()))?;
        entries.push(entry);
        let reply = match outcome {
            Ok(r) => Reply::Ok(r),
            Err(e) => Reply::Err(e),
        };
        Ok((reply, entries))
    }

    /// Writes the chain's genesis if it is not written yet: an attestation document whose
    /// `user_data` binds the audit key, linked to the host's `log_head`. Returns the genesis
    /// to the one caller that wrote it.
    async fn start_audit(&self, log_head: Option<B256>) -> Result<Option<SignedEntry>, ErrorBody> {
        if self.audit_started.initialized() {
            return Ok(None);
        }
        let mut written = None;
        self.audit_started
            .get_or_try_init(|| async {
                let user_data = self.audit.id().user_data();
                let spki = self.recipient.spki_der();
                let document = self
                    .nsm_call(move |nsm| nsm.attestation(Some(&spki), Some(&user_data), None))
                    .await
                    .map_err(|e| {
                        ErrorBody::new(
                            ErrorCode::AuditUnavailable,
                            format!("the audit chain cannot start: {}", e.message),
                        )
                    })?;
                let genesis = Genesis {
                    attestation: document,
                    dev: self.nsm.is_dev(),
                    enclave_version: env!("CARGO_PKG_VERSION").to_owned(),
                };
                let entry = self
                    .audit
                    .start(genesis, log_head.unwrap_or_default(), audit::now_ms())
                    .map_err(|e| ErrorBody::new(ErrorCode::AuditUnavailable, e.to_string()))?;
                tracing::info!(chain = %self.audit.id(), "audit chain started");
                written = Some(entry);
                Ok::<(), ErrorBody>(())
            })
            .await?;
        Ok(written)
    }

    /// Entries of this enclave's chain again, for a host that lost a reply.
    fn audit_entries(&self, r: &AuditEntries) -> Result<Response, ErrorBody> {
        let invalid = |message: String| ErrorBody {
            code: ErrorCode::InvalidRequest,
            message,
            field: Some("chain".into()),
        };
        if r.chain != self.audit.id() {
            return Err(invalid(format!(
                "chain {} is not this enclave's (this enclave writes {})",
                r.chain.short(),
                self.audit.id().short()
            )));
        }
        if r.from > r.to {
            return Err(invalid("from is after to".into()));
        }
        let entries = self
            .audit
            .entries(r.from, r.to)
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Response::AuditEntries(AuditEntryList { entries }))
    }

    /// Decides one request; `note` collects what the audit entry records of it.
    async fn respond(
        &self,
        request: Request,
        note: &mut audit::Note,
    ) -> Result<Response, ErrorBody> {
        match request {
            Request::Ping => {
                // Readiness means "can sign": exercise the signer, cheaply.
                let _ = self.self_test_key.sign_hash(&B256::repeat_byte(0x5a));
                Ok(Response::Pong(Pong {
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    cached_keys: self.keys.len(),
                    has_credentials: self.credentials.is_set(),
                    stats: Some(self.stats.snapshot(&self.keys)),
                }))
            }
            Request::SetCredentials(c) => {
                self.credentials.set(to_aws_credentials(c)?);
                Ok(Response::Done)
            }
            Request::GenerateKey(g) => {
                let policy = parse_policy(g.policy.as_deref())?;
                let key = self.generate_key().await?;
                self.wrap(key, g.kms_key_id, policy).await
            }
            Request::Attestation(a) => {
                let nonce = a.nonce.filter(|n| !n.is_empty());
                if nonce.as_ref().is_some_and(|n| n.len() > MAX_NONCE_LEN) {
                    return Err(ErrorBody {
                        code: ErrorCode::InvalidRequest,
                        message: format!("nonce longer than {MAX_NONCE_LEN} bytes"),
                        field: Some("nonce".into()),
                    });
                }
                let spki = self.recipient.spki_der();
                // The audit key too, so that a client's document names the chain this
                // enclave signs.
                let user_data = self.audit.id().user_data();
                let document = self
                    .nsm_call(move |nsm| {
                        nsm.attestation(Some(&spki), Some(&user_data), nonce.as_deref())
                    })
                    .await?;
                Ok(Response::Attestation(AttestationDocument {
                    document,
                    dev: self.nsm.is_dev(),
                }))
            }
            Request::ImportKey(i) => {
                let key = PrivateKey::from_hex(i.private_key.expose()).map_err(|_| ErrorBody {
                    code: ErrorCode::InvalidRequest,
                    message: "private_key must be 32 bytes of hex (64 characters, optional 0x) \
                              and a valid secp256k1 scalar"
                        .into(),
                    field: Some("private_key".into()),
                })?;
                let policy = parse_policy(i.policy.as_deref())?;
                self.wrap(key, i.kms_key_id, policy).await
            }
            Request::MigrateKey(m) => {
                let policy = parse_policy(m.policy.as_deref())?;
                let plaintext = self
                    .kms_decrypt(
                        m.legacy_kms_key_id.as_deref(),
                        &m.legacy_ciphertext,
                        &Default::default(),
                    )
                    .await?;
                let key = legacy_key(&plaintext)?;
                drop(plaintext);
                self.wrap(key, m.kms_key_id, policy).await
            }
            Request::SetPolicy(p) => {
                note.intent = Some(nitro_wallet_audit::Intent::Policy(
                    nitro_wallet_audit::PolicyIntent {
                        previous: parse_policy(p.key.policy.as_deref())
                            .ok()
                            .and_then(|old| policy_digest(&old)),
                    },
                ));
                let policy = parse_policy(p.policy.as_deref())?;
                let current = self.unwrap(&p.key).await?;
                let key = PrivateKey::from_bytes(current.key.to_bytes().as_slice())
                    .map_err(|_| ErrorBody::new(ErrorCode::Internal, "cannot copy the key"))?;
                drop(current);
                // The old entry must not keep serving the old policy here, and the window
                // restarts under the new policy (its seal covers the policy digest).
                self.keys.remove_address(&p.key.address);
                self.windows.lock().await.remove(&p.key.address);
                self.wrap(key, p.key.kms_key_id, policy).await
            }
            Request::SignTransaction(s) => {
                // Validate before touching KMS: a malformed request costs nothing.
                let tx = TransactionRequest::from_json(s.transaction.get().as_bytes())
                    .map_err(tx_error)?;
                note.intent = Some(audit::transaction(&tx));
                let key = self.unwrap(&s.key).await?;
                note.policy = policy_digest(&key.policy);
                key.policy
                    .check(&Intent::Transaction {
                        chain_id: tx.chain_id(),
                        to: tx.to(),
                        value: tx.value(),
                        input: tx.input(),
                        max_fee_per_gas: tx.max_fee_per_gas(),
                    })
                    .map_err(denied)?;
                let Some(window) = &key.policy.window else {
                    return nitro_wallet_eth::sign_transaction(&key.key, &tx)
                        .map(Response::SignedTransaction)
                        .map_err(tx_error);
                };
                // The window is checked, the transaction signed and recorded under one lock,
                // so that concurrent requests cannot both take the last slot.
                let digest = key.policy.digest();
                let mut windows = self.windows.lock().await;
                let presented = match &s.window {
                    Some(sealed) => {
                        Some(window::open(&key.key, &digest, sealed).ok_or_else(|| {
                            window_rejected(
                                "the window state's seal does not verify for this key and policy"
                                    .into(),
                            )
                        })?)
                    }
                    None => None,
                };
                let mut state = match (windows.get(&s.key.address), presented) {
                    (Some(known), Some(p)) if p.seq < known.seq => {
                        return Err(window_rejected(format!(
                            "an older window state was presented (seq {} < {}): replay refused",
                            p.seq, known.seq
                        )))
                    }
                    (Some(known), None) if known.seq > 0 => {
                        return Err(window_rejected(format!(
                            "no window state was presented, but this enclave knows seq {}",
                            known.seq
                        )))
                    }
                    (Some(known), Some(p)) if p.seq == known.seq => known.clone(),
                    (_, Some(p)) => p,
                    (Some(known), None) => known.clone(),
                    (None, None) => WindowState::default(),
                };
                let now = unix_now();
                state.expire(window, now);
                state.check(window, tx.value()).map_err(denied)?;
                let signed = nitro_wallet_eth::sign_transaction(&key.key, &tx).map_err(tx_error)?;
                state.record(now, tx.value());
                let sealed = window::seal(&key.key, &digest, &state);
                windows.insert(s.key.address, state);
                Ok(Response::WindowedTransaction(WindowedTransaction {
                    signed,
                    window: sealed,
                }))
            }
            Request::SignMessage(m) => {
                note.intent = Some(audit::message(m.message.as_bytes().len(), m.message.hash()));
                let key = self.unwrap(&m.key).await?;
                note.policy = policy_digest(&key.policy);
                key.policy.check(&Intent::PersonalMessage).map_err(denied)?;
                Ok(Response::MessageSignature(
                    nitro_wallet_eth::sign_personal_message(&key.key, m.message.as_bytes()),
                ))
            }
            Request::SignTypedData(t) => {
                // Validate before touching KMS, as for transactions.
                let hash = nitro_wallet_eth::typed_data_hash(t.typed_data.get().as_bytes())
                    .map_err(|e| {
                        let field = match &e {
                            nitro_wallet_eth::TypedDataError::InvalidValue { path, .. } => {
                                path.clone()
                            }
                            _ => "typed_data".to_owned(),
                        };
                        ErrorBody {
                            code: ErrorCode::InvalidRequest,
                            message: e.to_string(),
                            field: Some(field),
                        }
                    })?;
                let document: serde_json::Value = serde_json::from_str(t.typed_data.get())
                    .map_err(|_| ErrorBody::new(ErrorCode::InvalidRequest, "typed data"))?;
                note.intent = Some(audit::typed_data(&document, hash));
                let key = self.unwrap(&t.key).await?;
                note.policy = policy_digest(&key.policy);
                let domain = document.get("domain").unwrap_or(&serde_json::Value::Null);
                key.policy
                    .check(&Intent::TypedData { domain })
                    .map_err(denied)?;
                Ok(Response::MessageSignature(MessageSignature::sign_hash(
                    &key.key, hash,
                )))
            }
            Request::SignHash(h) => {
                note.intent = Some(audit::hash(h.hash));
                let key = self.unwrap(&h.key).await?;
                note.policy = policy_digest(&key.policy);
                key.policy.check(&Intent::RawHash).map_err(denied)?;
                Ok(Response::MessageSignature(MessageSignature::sign_hash(
                    &key.key, h.hash,
                )))
            }
            Request::SignAuthorization(a) => {
                let authorization =
                    AuthorizationRequest::from_json(a.authorization.get().as_bytes())
                        .map_err(tx_error)?;
                note.intent = Some(audit::authorization(&authorization));
                let key = self.unwrap(&a.key).await?;
                note.policy = policy_digest(&key.policy);
                key.policy
                    .check(&Intent::Authorization {
                        chain_id: authorization.chain_id(),
                    })
                    .map_err(denied)?;
                Ok(Response::SignedAuthorization(
                    nitro_wallet_eth::sign_authorization(&key.key, &authorization),
                ))
            }
            Request::LoadKey(key) => {
                // KMS checks the key's binding to its address and policy as for a signature.
                self.unwrap(&key).await?;
                Ok(Response::Done)
            }
            _ => Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "unsupported request",
            )),
        }
    }

    /// Wraps a key with KMS, binding the ciphertext to the key's address and policy, and
    /// caches it.
    async fn wrap(
        &self,
        key: PrivateKey,
        kms_key_id: String,
        policy: Policy,
    ) -> Result<Response, ErrorBody> {
        let address = key.address();
        let public_key = key.public_key().to_vec().into();
        let digest = policy_digest(&policy);
        let context = WrappedKey::encryption_context(&address, digest.as_deref());
        let encrypted = self
            .kms
            .encrypt(&kms_key_id, key.to_bytes().as_slice(), &context)
            .await;
        self.stats.kms(stats::KmsOp::Encrypt, &encrypted);
        let ciphertext = encrypted.map_err(kms_error)?;
        let canonical = digest.is_some().then(|| policy.canonical_json());
        self.keys
            .insert((address, digest), keys::Unwrapped { key, policy });
        Ok(Response::Key(WrappedKey {
            address,
            kms_key_id,
            ciphertext,
            public_key: Some(public_key),
            policy: canonical,
        }))
    }

    /// The plaintext key for `wrapped` and its policy, from the cache or through one KMS
    /// Decrypt under the context that binds the presented policy (which KMS refuses if the
    /// policy is not the one the key was wrapped with).
    async fn unwrap(&self, wrapped: &WrappedKey) -> Result<Arc<keys::Unwrapped>, ErrorBody> {
        let policy = parse_policy(wrapped.policy.as_deref())?;
        let digest = policy_digest(&policy);
        let id = (wrapped.address, digest.clone());
        self.keys
            .get_or_try_insert(id, || async {
                let context = WrappedKey::encryption_context(&wrapped.address, digest.as_deref());
                let plaintext = self
                    .kms_decrypt(Some(&wrapped.kms_key_id), &wrapped.ciphertext, &context)
                    .await?;
                let key = PrivateKey::from_bytes(&plaintext).map_err(|_| {
                    ErrorBody::new(
                        ErrorCode::KeyMismatch,
                        "the ciphertext does not hold a secp256k1 key",
                    )
                })?;
                check_address(&key, &wrapped.address)?;
                Ok(keys::Unwrapped { key, policy })
            })
            .await
    }
}

impl Enclave {
    /// KMS Decrypt of a key: attested (KMS releases the plaintext only inside an envelope to
    /// our attested public key), or plain in the dev-only unattested mode.
    async fn kms_decrypt(
        &self,
        key_id: Option<&str>,
        ciphertext: &[u8],
        context: &nitro_wallet_kms::EncryptionContext,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, ErrorBody> {
        let decrypted = if self.unattested_kms {
            self.kms.decrypt(key_id, ciphertext, context).await
        } else {
            self.attested_decrypt(key_id, ciphertext, context).await?
        };
        self.stats.kms(stats::KmsOp::Decrypt, &decrypted);
        decrypted.map_err(kms_error)
    }

    /// Attested Decrypt with the current `Recipient` document; if KMS refuses it, once more
    /// with a new document when [`recipient::RecipientDocuments::refused`] says so (KMS may
    /// find a reused document too old). The envelope is opened on a blocking thread: an
    /// RSA-2048 private-key operation would otherwise hold an async worker for about a
    /// millisecond.
    ///
    /// # Errors
    /// The outer error when no document could be had from the NSM or the envelope could not be
    /// opened for lack of a thread; KMS's answer is the inner result.
    async fn attested_decrypt(
        &self,
        key_id: Option<&str>,
        ciphertext: &[u8],
        context: &nitro_wallet_kms::EncryptionContext,
    ) -> Result<Result<zeroize::Zeroizing<Vec<u8>>, KmsError>, ErrorBody> {
        let mut document = self.recipient_document().await?;
        let mut envelope = self
            .kms
            .decrypt_envelope_for_recipient(key_id, ciphertext, context, document.bytes())
            .await;
        // Without credentials the client refuses before sending anything: not the document.
        if matches!(envelope, Err(KmsError::Denied(_)))
            && self.credentials.is_set()
            && self
                .recipient_documents
                .refused(&document, std::time::Instant::now())
        {
            tracing::info!("KMS refused the attestation document; retrying with a new one");
            document = self.recipient_document().await?;
            envelope = self
                .kms
                .decrypt_envelope_for_recipient(key_id, ciphertext, context, document.bytes())
                .await;
        }
        let envelope = match envelope {
            Ok(envelope) => envelope,
            Err(e) => return Ok(Err(e)),
        };
        let recipient = self.recipient.clone();
        tokio::task::spawn_blocking(move || envelope.open(&recipient))
            .await
            .map_err(|_| ErrorBody::new(ErrorCode::Internal, "envelope decryption aborted"))
    }

    /// The attestation document for KMS `Recipient` (binding the recipient key, nothing
    /// else), reused for [`recipient::MAX_AGE`].
    async fn recipient_document(&self) -> Result<recipient::Document, ErrorBody> {
        self.recipient_documents
            .get(std::time::Instant::now(), || {
                let spki = self.recipient.spki_der();
                self.nsm_call(move |nsm| nsm.attestation(Some(&spki), None, None))
            })
            .await
    }
}

/// The key inside a reference-sample secret: the ASCII hex of the private key (64 digits,
/// optional `0x`, surrounding whitespace ignored). The error never quotes the plaintext.
fn legacy_key(plaintext: &[u8]) -> Result<PrivateKey, ErrorBody> {
    let invalid = || {
        ErrorBody::new(
            ErrorCode::KeyMismatch,
            "the legacy ciphertext does not hold a private key as 64 hex characters",
        )
    };
    let text = std::str::from_utf8(plaintext)
        .map_err(|_| invalid())?
        .trim();
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() != 64 {
        return Err(invalid());
    }
    PrivateKey::from_hex(digits).map_err(|_| invalid())
}

/// A policy document from the host (`None`: the default policy).
fn parse_policy(json: Option<&str>) -> Result<Policy, ErrorBody> {
    match json {
        None => Ok(Policy::default()),
        Some(j) => Policy::from_json(j.as_bytes()).map_err(|e| ErrorBody {
            code: ErrorCode::InvalidRequest,
            message: e.to_string(),
            field: Some("policy".into()),
        }),
    }
}

/// The digest bound into the encryption context; none for the default policy, so keys
/// without a policy keep the context they always had.
fn policy_digest(policy: &Policy) -> Option<String> {
    (!policy.is_default()).then(|| policy.digest())
}

fn window_rejected(message: String) -> ErrorBody {
    ErrorBody {
        code: ErrorCode::WindowStateRejected,
        message,
        field: Some("window".into()),
    }
}

fn denied(d: nitro_wallet_policy::Denied) -> ErrorBody {
    ErrorBody {
        code: ErrorCode::PolicyDenied,
        message: d.to_string(),
        field: Some(d.rule.to_owned()),
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn check_address(key: &PrivateKey, claimed: &Address) -> Result<(), ErrorBody> {
    if key.address() == *claimed {
        Ok(())
    } else {
        Err(ErrorBody::new(
            ErrorCode::KeyMismatch,
            format!("the ciphertext does not hold the key of {claimed}"),
        ))
    }
}

/// The SDK's credentials from the host's message.
///
/// # Errors
/// `InvalidRequest` when `expires_at` is beyond what `SystemTime` can represent (adding it to
/// the epoch would panic).
fn to_aws_credentials(c: Credentials) -> Result<aws_credential_types::Credentials, ErrorBody> {
    let expiry = match c.expires_at {
        None => None,
        Some(s) => Some(
            std::time::UNIX_EPOCH
                .checked_add(std::time::Duration::from_secs(s))
                .ok_or_else(|| ErrorBody {
                    code: ErrorCode::InvalidRequest,
                    message: "expires_at is out of range".into(),
                    field: Some("expires_at".into()),
                })?,
        ),
    };
    Ok(aws_credential_types::Credentials::new(
        c.access_key_id,
        c.secret_access_key.expose().to_owned(),
        c.session_token.map(|t| t.expose().to_owned()),
        expiry,
        "nitro-wallet-host",
    ))
}

fn tx_error(e: nitro_wallet_eth::TxError) -> ErrorBody {
    ErrorBody {
        code: ErrorCode::InvalidTransaction,
        message: e.to_string(),
        field: e.field().map(str::to_owned),
    }
}

fn kms_error(e: KmsError) -> ErrorBody {
    let code = match &e {
        KmsError::Denied(_) => ErrorCode::KmsDenied,
        KmsError::InvalidCiphertext => ErrorCode::KmsInvalidCiphertext,
        KmsError::NotFound => ErrorCode::KmsKeyNotFound,
        KmsError::Unavailable(_) => ErrorCode::KmsUnavailable,
        KmsError::Attestation(_) => ErrorCode::KmsAttestation,
        _ => ErrorCode::KmsError,
    };
    ErrorBody::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nitro_wallet_protocol::SecretString;

    fn enclave() -> Arc<Enclave> {
        Enclave::new(&EnclaveConfig {
            kms: KmsConfig {
                region: "us-east-1".into(),
                endpoint: Some("http://127.0.0.1:9".into()),
                proxy: None,
            },
            max_cached_keys: 4,
            nsm: Arc::new(
                nitro_wallet_attestation::DevNsm::new(
                    nitro_wallet_attestation::DevCa::generate().unwrap(),
                    [0x11; 48],
                )
                .unwrap(),
            ),
            unattested_kms: false,
        })
        .unwrap()
    }

    fn credentials(expires_at: Option<u64>) -> Request {
        Request::SetCredentials(Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::new("secret".into()),
            session_token: None,
            expires_at,
        })
    }

    async fn has_credentials(enclave: &Enclave) -> bool {
        match enclave.handle(Request::Ping).await.unwrap() {
            Response::Pong(p) => p.has_credentials,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// An NSM that says it is real (as `/dev/nsm` does); never asked for anything here.
    struct RealLooking;

    impl Nsm for RealLooking {
        fn attestation(
            &self,
            _: Option<&[u8]>,
            _: Option<&[u8]>,
            _: Option<&[u8]>,
        ) -> Result<Vec<u8>, nitro_wallet_attestation::NsmError> {
            unreachable!("not called by Enclave::new")
        }
        fn random(&self, _: usize) -> Result<Vec<u8>, nitro_wallet_attestation::NsmError> {
            unreachable!("not called by Enclave::new")
        }
        fn is_dev(&self) -> bool {
            false
        }
    }

    #[test]
    fn unattested_kms_is_refused_with_a_real_nsm_and_allowed_with_the_dev_one() {
        let config = |nsm: Arc<dyn Nsm>| EnclaveConfig {
            kms: KmsConfig {
                region: "us-east-1".into(),
                endpoint: Some("http://127.0.0.1:9".into()),
                proxy: None,
            },
            max_cached_keys: 4,
            nsm,
            unattested_kms: true,
        };
        assert!(matches!(
            Enclave::new(&config(Arc::new(RealLooking))),
            Err(StartError::UnattestedInProduction)
        ));
        let dev = nitro_wallet_attestation::DevNsm::new(
            nitro_wallet_attestation::DevCa::generate().unwrap(),
            [0x11; 48],
        )
        .unwrap();
        assert!(Enclave::new(&config(Arc::new(dev))).is_ok());
    }

    #[test]
    fn legacy_keys_are_hex_text_and_errors_never_quote_them() {
        let hex = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
        let expected = PrivateKey::from_hex(hex).unwrap().address();
        for text in [
            hex.to_owned(),
            format!("0x{hex}"),
            format!(" {hex}\n"),
            hex.to_uppercase(),
        ] {
            assert_eq!(
                legacy_key(text.as_bytes()).unwrap().address(),
                expected,
                "{text}"
            );
        }
        let raw = hex::decode(hex).unwrap();
        for bad in [
            raw.as_slice(),
            &hex.as_bytes()[..62],
            format!("{hex}00").as_bytes(),
            b"hello world",
            &[0xff; 64],
            "0".repeat(64).as_bytes(),
        ] {
            let err = legacy_key(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::KeyMismatch);
            assert!(!err.message.contains(&hex[..16]));
        }
    }

    /// A dev NSM that counts the documents it makes for KMS `Recipient` (public key only).
    struct CountingNsm {
        inner: nitro_wallet_attestation::DevNsm,
        recipient_documents: std::sync::atomic::AtomicUsize,
    }

    impl CountingNsm {
        fn count(&self) -> usize {
            self.recipient_documents
                .load(std::sync::atomic::Ordering::SeqCst)
        }
    }

    impl Nsm for CountingNsm {
        fn attestation(
            &self,
            public_key: Option<&[u8]>,
            user_data: Option<&[u8]>,
            nonce: Option<&[u8]>,
        ) -> Result<Vec<u8>, nitro_wallet_attestation::NsmError> {
            if user_data.is_none() && nonce.is_none() {
                self.recipient_documents
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            self.inner.attestation(public_key, user_data, nonce)
        }
        fn random(&self, n: usize) -> Result<Vec<u8>, nitro_wallet_attestation::NsmError> {
            self.inner.random(n)
        }
        fn is_dev(&self) -> bool {
            true
        }
    }

    #[tokio::test]
    async fn kms_calls_reuse_one_attestation_document_until_kms_refuses_it() {
        use nitro_wallet_kms::emulator::{AttestationPolicy, Emulator};
        let dir = tempfile::tempdir().unwrap();
        let emulator = Emulator::open(dir.path()).unwrap();
        let ca = nitro_wallet_attestation::DevCa::generate().unwrap();
        let policy = AttestationPolicy {
            require_attestation: true,
            root_pem: ca.root_pem(),
            image_sha384: Some(hex::encode([0x11; 48])),
            pcrs: Default::default(),
        };
        emulator.set_policy(policy.clone()).unwrap();
        let kms_key_id = emulator.key_id().to_owned();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let router = emulator.router();
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let nsm = Arc::new(CountingNsm {
            inner: nitro_wallet_attestation::DevNsm::new(ca, [0x11; 48]).unwrap(),
            recipient_documents: Default::default(),
        });
        let start = || async {
            let enclave = Enclave::new(&EnclaveConfig {
                kms: KmsConfig {
                    region: emulator.region().into(),
                    endpoint: Some(endpoint.clone()),
                    proxy: None,
                },
                max_cached_keys: 8,
                nsm: nsm.clone(),
                unattested_kms: false,
            })
            .unwrap();
            enclave.handle(credentials(None)).await.unwrap();
            enclave
        };
        let generating = start().await;
        let mut keys = Vec::new();
        for _ in 0..3 {
            let request = Request::GenerateKey(nitro_wallet_protocol::message::GenerateKey {
                kms_key_id: kms_key_id.clone(),
                policy: None,
            });
            match generating.handle(request).await.unwrap() {
                Response::Key(key) => keys.push(key),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(nsm.count(), 0, "wrapping needs no Recipient");

        // A restarted enclave: three Decrypts, one document.
        let enclave = start().await;
        for key in &keys[..2] {
            let loaded = enclave.handle(Request::LoadKey(key.clone())).await;
            assert!(matches!(loaded, Ok(Response::Done)), "{loaded:?}");
        }
        assert_eq!(nsm.count(), 1);

        // KMS refuses (here: the key policy changed): one retry with a new document, and
        // the refusal is the answer.
        let mut refusing = policy;
        refusing.image_sha384 = Some(hex::encode([0x22; 48]));
        emulator.set_policy(refusing).unwrap();
        let err = enclave
            .handle(Request::LoadKey(keys[2].clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::KmsDenied, "{err:?}");
        assert_eq!(nsm.count(), 2);
        // The new document refused as well: no retry within the window.
        let err = enclave
            .handle(Request::LoadKey(keys[2].clone()))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::KmsDenied, "{err:?}");
        assert_eq!(nsm.count(), 2);
        server.abort();
    }

    /// Reproduced with the `enclave_request` fuzz target (seed `set_credentials_expiry_overflow`):
    /// `UNIX_EPOCH + Duration` panicked for an expiry beyond `SystemTime`'s range (2^63 s and
    /// up on Linux).
    #[tokio::test]
    async fn out_of_range_credential_expiry_is_refused_not_a_panic() {
        let enclave = enclave();
        for expires_at in [u64::MAX, 1 << 63] {
            let err = enclave
                .handle(credentials(Some(expires_at)))
                .await
                .unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidRequest);
            assert_eq!(err.field.as_deref(), Some("expires_at"));
        }
        assert!(!has_credentials(&enclave).await);

        for expires_at in [None, Some(1_700_000_000)] {
            assert!(matches!(
                enclave.handle(credentials(expires_at)).await,
                Ok(Response::Done)
            ));
        }
        assert!(has_credentials(&enclave).await);
    }
}
