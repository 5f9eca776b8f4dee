//! Messages exchanged over a connection.
//!
//! The host sends [`RequestFrame`]s and the enclave answers each with a [`ResponseFrame`]
//! carrying the same id, in any order: many requests are in flight on one connection.
//! Key material only ever crosses as KMS ciphertext ([`WrappedKey`]); the one exception is
//! [`ImportKey`], whose plaintext the caller chose to send (a later version encrypts it to the
//! enclave's attested public key).

use crate::error::ErrorBody;
use alloy_primitives::Address;
use alloy_primitives::B256;
use base64::Engine as _;
use nitro_wallet_audit::{ChainId, SignedEntry};
use nitro_wallet_eth::{MessageSignature, PersonalMessage, SignedAuthorization, SignedTransaction};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use std::fmt;
use zeroize::Zeroizing;

/// Version of this protocol; a peer with another version gets
/// [`crate::ErrorCode::UnsupportedVersion`].
pub const PROTOCOL_VERSION: u16 = 1;

/// A request and its correlation id.
#[derive(Debug, Serialize, Deserialize)]
pub struct RequestFrame {
    /// Protocol version of the sender.
    pub v: u16,
    /// Chosen by the host, unique among its in-flight requests on this connection.
    pub id: u64,
    /// The request.
    pub req: Request,
    /// The id of the HTTP request this serves (`x-request-id`), for correlating the host's and
    /// the enclave's logs; absent for the host's own requests (health probes). At most
    /// [`MAX_REQUEST_ID_LEN`] characters from a safe set, checked by the host; the enclave only
    /// logs it. Older peers neither send nor expect it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Longest request id the host accepts from a caller or forwards to an enclave.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// Whether `id` is a well-formed request id: 1 to [`MAX_REQUEST_ID_LEN`] characters among
/// ASCII letters, digits and `-_.:` (UUIDs, ULIDs, trace ids), so that it can go into a log
/// line or a header as it is.
pub fn is_valid_request_id(id: &str) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// A reply to the request with the same id.
#[derive(Debug, Serialize, Deserialize)]
pub struct ResponseFrame {
    /// Protocol version of the sender.
    pub v: u16,
    /// Id of the request this answers; 0 when the request could not be decoded at all.
    pub id: u64,
    /// Outcome.
    pub reply: Reply,
}

/// Outcome of a request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Success.
    Ok(Response),
    /// Failure with a stable code.
    Err(ErrorBody),
}

/// What the host can ask of the enclave.
#[non_exhaustive]
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Liveness and readiness probe; the enclave answers after a signing self-test.
    Ping,
    /// AWS credentials for the enclave's own KMS calls (replaces earlier ones).
    SetCredentials(Credentials),
    /// Generate a key inside the enclave and return it wrapped by KMS.
    GenerateKey(GenerateKey),
    /// Wrap a caller-supplied private key.
    ImportKey(ImportKey),
    /// Sign an Ethereum transaction with a wrapped key.
    SignTransaction(SignTransaction),
    /// A fresh attestation document of this enclave, for clients to verify.
    Attestation(AttestationRequest),
    /// Re-wrap a key stored the reference sample's way (KMS ciphertext of the hex key, no
    /// encryption context) as a key bound to its address; the plaintext stays in the enclave.
    MigrateKey(MigrateKey),
    /// Sign an EIP-191 personal message.
    SignMessage(SignMessage),
    /// Sign EIP-712 typed data.
    SignTypedData(SignTypedData),
    /// Sign a raw 32-byte digest (whoever may ask for this can sign anything, transactions
    /// included: the host allows it only for keys configured for it).
    SignHash(SignHash),
    /// Sign an EIP-7702 authorization.
    SignAuthorization(SignAuthorization),
    /// Replace a key's policy (re-wraps the key).
    SetPolicy(SetPolicy),
    /// A signing or key-management request whose audit entries the host wants back (see
    /// [`Audited`]); answered with [`Response::Audited`].
    Audited(Audited),
    /// Audit entries of this enclave's chain again, for a host that lost a reply; answered
    /// with [`Response::AuditEntries`].
    AuditEntries(AuditEntries),
    /// Unwrap a key into the enclave's cache before its first signature (the host's warm-up
    /// at start and after an enclave restart); answered with [`Response::Done`]. It signs
    /// nothing and decides nothing, so it has no audit entry.
    LoadKey(WrappedKey),
}

impl Request {
    /// The operation's stable snake_case name (the wire tag), for logs and metric labels; an
    /// [`Audited`] request is named after the request it wraps.
    pub fn operation(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::SetCredentials(_) => "set_credentials",
            Request::GenerateKey(_) => "generate_key",
            Request::ImportKey(_) => "import_key",
            Request::SignTransaction(_) => "sign_transaction",
            Request::Attestation(_) => "attestation",
            Request::MigrateKey(_) => "migrate_key",
            Request::SignMessage(_) => "sign_message",
            Request::SignTypedData(_) => "sign_typed_data",
            Request::SignHash(_) => "sign_hash",
            Request::SignAuthorization(_) => "sign_authorization",
            Request::SetPolicy(_) => "set_policy",
            Request::Audited(a) => a.request.operation(),
            Request::AuditEntries(_) => "audit_entries",
            Request::LoadKey(_) => "load_key",
        }
    }
}

/// What the enclave answers.
#[non_exhaustive]
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    /// Answer to [`Request::Ping`].
    Pong(Pong),
    /// Acknowledgement without data.
    Done,
    /// A key generated or imported, as KMS ciphertext bound to its address.
    Key(WrappedKey),
    /// A signed transaction.
    SignedTransaction(SignedTransaction),
    /// A signed transaction of a key whose policy has a rolling window, with the window's new
    /// sealed state for the host to keep and present next time.
    WindowedTransaction(WindowedTransaction),
    /// A signed message, typed data or digest.
    MessageSignature(MessageSignature),
    /// A signed EIP-7702 authorization.
    SignedAuthorization(SignedAuthorization),
    /// An attestation document (untagged COSE_Sign1 from the NSM).
    Attestation(AttestationDocument),
    /// The outcome of an [`Audited`] request and the audit entries that record it.
    Audited(AuditedReply),
    /// Answer to [`Request::AuditEntries`].
    AuditEntries(AuditEntryList),
}

/// A request to decide and record: the enclave records its decision on `request` (allowed,
/// refused or failed) as the next entry of its audit chain and returns the entry with the
/// outcome, so that the host can append it to its log **before** releasing the outcome.
///
/// The enclave records every signing and key-management request, wrapped or not: an
/// unwrapped one still takes its place in the chain, so a host that signs without logging
/// leaves a gap that `nitro-wallet audit verify` reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct Audited {
    /// Who asked: the name of the API token the host authenticated (the host's word; the
    /// enclave cannot check it). Kept to 128 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The hash of the last entry in the host's log; if this request starts the enclave's
    /// chain, the genesis links to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_head: Option<B256>,
    /// The request itself (a signing or key-management request).
    pub request: Box<Request>,
}

/// Answer to an [`Audited`] request.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditedReply {
    /// What the request alone would have been answered.
    pub reply: Box<Reply>,
    /// The entries recorded for it, in chain order: its decision, preceded by the chain's
    /// genesis when this request started the chain. Empty for requests that are not
    /// recorded.
    #[serde(default)]
    pub entries: Vec<SignedEntry>,
}

/// Ask for entries `from..=to` of this enclave's audit chain `chain` again.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditEntries {
    /// The chain; another enclave's chain is refused (`invalid_request`).
    pub chain: ChainId,
    /// First sequence number.
    pub from: u64,
    /// Last sequence number.
    pub to: u64,
}

/// Entries of an audit chain, in order; the enclave keeps the genesis and its most recent
/// entries only, so the list may start after the requested `from`, and holds at most 256.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditEntryList {
    /// The entries.
    pub entries: Vec<SignedEntry>,
}

/// Ask for an attestation document.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct AttestationRequest {
    /// Caller's nonce (at most 512 bytes), echoed in the document for freshness.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "opt_base64_bytes"
    )]
    pub nonce: Option<Vec<u8>>,
}

/// An attestation document as the NSM produced it.
#[derive(Debug, Serialize, Deserialize)]
pub struct AttestationDocument {
    /// The document bytes (base64 on the wire).
    #[serde(with = "base64_bytes")]
    pub document: Vec<u8>,
    /// Whether it comes from a simulated NSM (dev mode), which proves nothing.
    pub dev: bool,
}

/// Enclave status.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pong {
    /// Enclave software version.
    pub version: String,
    /// Plaintext keys currently cached.
    pub cached_keys: usize,
    /// Whether credentials for KMS are present.
    pub has_credentials: bool,
    /// Counters since the enclave process started, for the host's metrics; absent from
    /// enclaves that predate them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats: Option<EnclaveStats>,
}

/// What an enclave has done since it started: key-cache and KMS counters. Counts only, never
/// a key, an address or a KMS key id. Every field defaults, so peers of different versions
/// read what they know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnclaveStats {
    /// Signing requests whose key was in the cache.
    #[serde(default)]
    pub key_cache_hits: u64,
    /// Signing requests whose key was not in the cache (concurrent misses share one unwrap).
    #[serde(default)]
    pub key_cache_misses: u64,
    /// KMS calls by operation (`encrypt`, `decrypt`).
    #[serde(default)]
    pub kms_calls: std::collections::BTreeMap<String, u64>,
    /// Failed KMS calls by error code (`kms_denied`, `kms_unavailable`, …, as
    /// [`crate::ErrorCode`]).
    #[serde(default)]
    pub kms_errors: std::collections::BTreeMap<String, u64>,
}

/// A key as it leaves the enclave: its address and its KMS ciphertext, bound to the address by
/// the encryption context `{"nitro-wallet:address": "<EIP-55 address>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedKey {
    /// EIP-55 address, the key's id.
    #[serde(with = "nitro_wallet_eth::checksummed")]
    pub address: Address,
    /// KMS key that wrapped it (id, ARN or alias).
    pub kms_key_id: String,
    /// KMS `CiphertextBlob`, base64 on the wire.
    #[serde(with = "base64_bytes")]
    pub ciphertext: Vec<u8>,
    /// Uncompressed SEC1 public key (`0x04…`, 65 bytes), set by the enclave when it wraps a
    /// key; informative only (the enclave never trusts it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<alloy_primitives::Bytes>,
    /// The key's signing policy (canonical JSON), absent for none. Its digest is part of the
    /// encryption context, so the enclave can trust the policy that unwraps with the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl WrappedKey {
    /// The encryption context that binds a key's ciphertext to its address and, when it has
    /// one, to the SHA-256 (hex) of its policy's canonical form.
    pub fn encryption_context(
        address: &Address,
        policy_digest: Option<&str>,
    ) -> std::collections::BTreeMap<String, String> {
        let mut context = std::collections::BTreeMap::from([(
            ENCRYPTION_CONTEXT_ADDRESS.to_owned(),
            address.to_checksum(None),
        )]);
        if let Some(digest) = policy_digest {
            context.insert(ENCRYPTION_CONTEXT_POLICY.to_owned(), digest.to_owned());
        }
        context
    }
}

/// Encryption-context key naming the address a ciphertext belongs to.
pub const ENCRYPTION_CONTEXT_ADDRESS: &str = "nitro-wallet:address";
/// Encryption-context key holding the digest of the key's policy.
pub const ENCRYPTION_CONTEXT_POLICY: &str = "nitro-wallet:policy";

/// Generate a key.
#[derive(Debug, Serialize, Deserialize)]
pub struct GenerateKey {
    /// KMS key to wrap it with.
    pub kms_key_id: String,
    /// Its signing policy (JSON), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Import a key.
#[derive(Debug, Serialize, Deserialize)]
pub struct ImportKey {
    /// KMS key to wrap it with.
    pub kms_key_id: String,
    /// 64 hex characters, optional `0x`.
    pub private_key: SecretString,
    /// Its signing policy (JSON), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Migrate a key from the reference sample's storage format.
#[derive(Debug, Serialize, Deserialize)]
pub struct MigrateKey {
    /// KMS `CiphertextBlob` of the ASCII hex private key (64 characters, optional `0x`), made
    /// without encryption context, base64 on the wire.
    #[serde(with = "base64_bytes")]
    pub legacy_ciphertext: Vec<u8>,
    /// KMS key that made `legacy_ciphertext`, when known; KMS finds it in the blob otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_kms_key_id: Option<String>,
    /// KMS key to wrap the migrated key with.
    pub kms_key_id: String,
    /// Its signing policy (JSON), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Replace a key's policy: the enclave unwraps the key under its current policy and wraps it
/// again under the new one (`None`: no policy).
#[derive(Debug, Serialize, Deserialize)]
pub struct SetPolicy {
    /// The key, with its current policy.
    pub key: WrappedKey,
    /// The new policy (JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// Sign a transaction.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignTransaction {
    /// The key, re-presented on every call so that a restarted enclave can unwrap it again.
    pub key: WrappedKey,
    /// The Ethereum JSON-RPC transaction object exactly as the client sent it; the enclave
    /// parses and validates it.
    pub transaction: Box<RawValue>,
    /// The latest sealed rolling-window state of the key, for keys whose policy has a window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<SealedWindow>,
}

/// A key's rolling-window state as the enclave sealed it: the state's JSON (sequence number
/// and entries) and an HMAC-SHA256 over it, the key's address and its policy digest, under a
/// MAC key that only the enclave can derive from the private key. The host keeps it and
/// cannot forge or alter it; presenting an older one is detected while the enclave runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedWindow {
    /// The state, JSON, exactly as sealed.
    pub state: String,
    /// Hex HMAC-SHA256.
    pub mac: String,
}

/// A signed transaction and its key's new window state.
#[derive(Debug, Serialize, Deserialize)]
pub struct WindowedTransaction {
    /// The signed transaction.
    pub signed: SignedTransaction,
    /// The window after recording it.
    pub window: SealedWindow,
}

/// Sign an EIP-191 personal message.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignMessage {
    /// The key.
    pub key: WrappedKey,
    /// The message (explicit `{"text"}` / `{"raw"}` form on the wire).
    pub message: PersonalMessage,
}

/// Sign EIP-712 typed data.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignTypedData {
    /// The key.
    pub key: WrappedKey,
    /// The `eth_signTypedData_v4` document exactly as the client sent it; the enclave parses,
    /// checks and hashes it.
    pub typed_data: Box<RawValue>,
}

/// Sign a raw digest.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignHash {
    /// The key.
    pub key: WrappedKey,
    /// The 32 bytes to sign, as they are (no prefix, no hashing).
    pub hash: B256,
}

/// Sign an EIP-7702 authorization.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignAuthorization {
    /// The key.
    pub key: WrappedKey,
    /// `{chainId, address, nonce}` exactly as the client sent it.
    pub authorization: Box<RawValue>,
}

/// Temporary AWS credentials for the enclave's KMS calls.
#[derive(Debug, Serialize, Deserialize)]
pub struct Credentials {
    /// Access key id (not secret on its own).
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: SecretString,
    /// Session token of temporary credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<SecretString>,
    /// Expiry, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// A string that is zeroized on drop and never printed.
#[derive(Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: String) -> Self {
        Self(Zeroizing::new(secret))
    }

    /// The secret itself; keep the borrow short.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretString::new)
    }
}

/// Serde helper: bytes as standard base64 strings (`#[serde(with = "…::base64_bytes")]`).
pub mod base64_bytes {
    use super::*;

    /// Serialises bytes as base64.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Parses base64.
    ///
    /// # Errors
    /// When the string is not standard base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|_| serde::de::Error::custom("invalid base64"))
    }
}

mod opt_base64_bytes {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        bytes: &Option<Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => base64_bytes::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        let s = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        s.map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map_err(|_| serde::de::Error::custom("invalid base64"))
        })
        .transpose()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::frame::{decode, encode};

    #[test]
    fn request_round_trip_keeps_the_transaction_verbatim() {
        let tx = r#"{"nonce":"0x1","chainId":1}"#;
        let frame = RequestFrame {
            v: PROTOCOL_VERSION,
            id: 42,
            req: Request::SignTransaction(SignTransaction {
                key: WrappedKey {
                    address: Address::repeat_byte(0x11),
                    kms_key_id: "alias/k".into(),
                    ciphertext: vec![1, 2, 3],
                    public_key: None,
                    policy: None,
                },
                transaction: RawValue::from_string(tx.into()).unwrap(),
                window: None,
            }),
            request_id: None,
        };
        let bytes = encode(&frame).unwrap();
        let back: RequestFrame = decode(&bytes[4..]).unwrap();
        assert_eq!(back.id, 42);
        assert_eq!(back.request_id, None);
        match back.req {
            Request::SignTransaction(s) => {
                assert_eq!(s.transaction.get(), tx);
                assert_eq!(s.key.ciphertext, vec![1, 2, 3]);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn audited_frames_round_trip_and_keep_entry_bytes() {
        let body = r#"{"v":1,"seq":1}"#;
        let entry = SignedEntry {
            entry: RawValue::from_string(body.into()).unwrap(),
            hash: B256::repeat_byte(1),
            sig: alloy_primitives::B512::repeat_byte(2),
        };
        let frame = ResponseFrame {
            v: PROTOCOL_VERSION,
            id: 7,
            reply: Reply::Ok(Response::Audited(AuditedReply {
                reply: Box::new(Reply::Err(ErrorBody::new(
                    crate::ErrorCode::PolicyDenied,
                    "denied",
                ))),
                entries: vec![entry],
            })),
        };
        let bytes = encode(&frame).unwrap();
        let back: ResponseFrame = decode(&bytes[4..]).unwrap();
        let Reply::Ok(Response::Audited(a)) = back.reply else {
            panic!("unexpected {:?}", back.reply)
        };
        assert!(matches!(*a.reply, Reply::Err(ref e) if e.code == crate::ErrorCode::PolicyDenied));
        assert_eq!(a.entries[0].entry.get(), body);

        // The wrapper's optional fields may be absent.
        let request: Request = serde_json::from_str(r#"{"audited":{"request":"ping"}}"#).unwrap();
        assert_eq!(request.operation(), "ping");
        assert!(matches!(
            request,
            Request::Audited(Audited {
                caller: None,
                log_head: None,
                ..
            })
        ));
    }

    #[test]
    fn request_ids_are_short_and_plain() {
        for ok in [
            "a",
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "req_1.2:3",
            &"x".repeat(64),
        ] {
            assert!(is_valid_request_id(ok), "{ok}");
        }
        for bad in [
            "",
            &"x".repeat(65),
            "a b",
            "a\nb",
            "a\"b",
            "é",
            "a/b",
            "a=b",
        ] {
            assert!(!is_valid_request_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn request_ids_and_pong_stats_are_optional_both_ways() {
        // An old host's frame (no request id) and an old enclave's pong (no stats) decode.
        let old: RequestFrame = serde_json::from_str(r#"{"v":1,"id":3,"req":"ping"}"#).unwrap();
        assert_eq!(old.request_id, None);
        let pong: Pong =
            serde_json::from_str(r#"{"version":"0.1.0","cached_keys":2,"has_credentials":true}"#)
                .unwrap();
        assert_eq!(pong.stats, None);
        // Absent fields are not sent, so an old peer that refuses unknown fields is unaffected.
        let json = serde_json::to_string(&old).unwrap();
        assert!(!json.contains("request_id"), "{json}");
        // New fields round-trip; unknown stats fields from a newer enclave are ignored.
        let new: RequestFrame =
            serde_json::from_str(r#"{"v":1,"id":4,"req":"ping","request_id":"abc-1"}"#).unwrap();
        assert_eq!(new.request_id.as_deref(), Some("abc-1"));
        let pong: Pong = serde_json::from_str(
            r#"{"version":"0.2.0","cached_keys":0,"has_credentials":false,
                "stats":{"key_cache_hits":5,"kms_calls":{"decrypt":1},"from_the_future":1}}"#,
        )
        .unwrap();
        let stats = pong.stats.unwrap();
        assert_eq!((stats.key_cache_hits, stats.key_cache_misses), (5, 0));
        assert_eq!(stats.kms_calls["decrypt"], 1);
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let c = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SecretString::new("wJalrXUtnFEMI".into()),
            session_token: Some(SecretString::new("FwoGZXIvYXdzE".into())),
            expires_at: None,
        };
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("wJalrXUtnFEMI") && !dbg.contains("FwoGZXIvYXdzE"),
            "{dbg}"
        );
    }

    #[test]
    fn encryption_context_uses_the_checksummed_address() {
        let a: Address = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
            .parse()
            .unwrap();
        let ctx = WrappedKey::encryption_context(&a, None);
        assert_eq!(
            ctx[ENCRYPTION_CONTEXT_ADDRESS],
            "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        );
    }
}
