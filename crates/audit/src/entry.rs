//! What one audit entry says, how it is hashed and signed, and how it is written to the log.
//!
//! An entry's body ([`Entry`]) is serialized **once**, by the enclave, to compact JSON. Those
//! exact bytes are hashed ([`entry_hash`]), the hash is signed, and the bytes travel and are
//! stored verbatim inside the [`SignedEntry`] (a `RawValue`), so a verifier never has to
//! re-encode anything: it hashes the bytes it reads. Changing so much as a space of a stored
//! body changes its hash.
//!
//! A log file is JSON Lines: one [`SignedEntry`] per line, or, rarely, a [`Gap`] the host
//! wrote when entries it was owed could not be recovered from the enclave ([`LogLine`]).
//! Nothing in an entry is secret: no key material, no API token (only its name), no message
//! or typed-data document (their digests and a few public fields).

use alloy_primitives::{Address, B256, B512};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use std::fmt;

/// Version of the entry format, the body's `v`.
pub const ENTRY_VERSION: u32 = 1;

/// Prefix of the bytes hashed into an entry's hash (domain separation).
pub const HASH_DOMAIN: &[u8] = b"nitro-wallet/audit/entry/v1\0";

/// Prefix of the bytes the audit key signs: this, then the 32-byte entry hash.
pub const SIGNATURE_DOMAIN: &[u8] = b"nitro-wallet/audit/signature/v1\0";

/// The attestation document of a chain's genesis carries `user_data` = this prefix followed
/// by the chain's 32-byte Ed25519 public key: the NSM thereby vouches that the key belongs to
/// the measured enclave image.
pub const USER_DATA_PREFIX: &[u8] = b"nitro-wallet/audit-key/v1\0";

/// Longest log line accepted by [`LogLine::parse`] (a genesis with its attestation document
/// is about 8 KiB).
pub const MAX_LINE_LEN: usize = 64 * 1024;

/// Longest free text kept in an entry (caller names, typed-data domain fields), in characters.
pub const MAX_TEXT_LEN: usize = 128;

/// A chain: the Ed25519 public key of the enclave boot that writes and signs it.
///
/// Every enclave process makes a fresh audit key at start and extends its own chain; the
/// log holds one chain per enclave boot, interleaved.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChainId(pub B256);

impl ChainId {
    /// The `user_data` an attestation document binding this chain's key must carry.
    pub fn user_data(&self) -> Vec<u8> {
        let mut data = USER_DATA_PREFIX.to_vec();
        data.extend_from_slice(self.0.as_slice());
        data
    }

    /// The chain named by an attestation document's `user_data`, if it is one.
    pub fn from_user_data(user_data: &[u8]) -> Option<ChainId> {
        let key = user_data.strip_prefix(USER_DATA_PREFIX)?;
        B256::try_from(key).ok().map(ChainId)
    }

    /// The first 8 hex digits, for people.
    pub fn short(&self) -> String {
        let hex = self.0.to_string();
        hex.get(2..10).unwrap_or_default().to_owned()
    }
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChainId({})", self.short())
    }
}

/// The body of an entry: what is hashed and signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// [`ENTRY_VERSION`].
    pub v: u32,
    /// The chain this entry extends.
    pub chain: ChainId,
    /// Position in the chain: 0 for the genesis, then 1, 2, … without gaps.
    pub seq: u64,
    /// When the enclave recorded it, milliseconds since the Unix epoch (the enclave's clock).
    pub time_ms: u64,
    /// Hash of the chain's previous entry. For a genesis: the hash of the last entry the
    /// host had written to its log when the chain started (zero for an empty log), which
    /// links the chains of successive enclave boots.
    pub prev: B256,
    /// What happened.
    pub event: Event,
}

/// What an entry records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Event {
    /// The start of a chain: the attestation document that binds the chain's key.
    Genesis(Genesis),
    /// One decision on a signing or key-management request.
    Decision(Box<Decision>),
}

/// The first entry of a chain.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// NSM attestation document (COSE_Sign1, base64) whose `user_data` is
    /// [`ChainId::user_data`] of this chain.
    #[serde(with = "base64_bytes")]
    pub attestation: Vec<u8>,
    /// Whether it came from the simulated NSM of dev mode, which proves nothing.
    pub dev: bool,
    /// The enclave software version.
    pub enclave_version: String,
}

impl fmt::Debug for Genesis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Genesis")
            .field("attestation_len", &self.attestation.len())
            .field("dev", &self.dev)
            .field("enclave_version", &self.enclave_version)
            .finish()
    }
}

/// A decision of the enclave on one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Who asked: the name of the API token the host authenticated. The host says so; the
    /// enclave cannot check it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// What was asked.
    pub op: Operation,
    /// The key (its address), when the request named or produced one.
    #[serde(default, with = "opt_checksummed")]
    pub key: Option<Address>,
    /// The decoded request, when it could be decoded.
    #[serde(default)]
    pub intent: Option<Intent>,
    /// SHA-256 (hex) of the canonical policy that decided (for key management: the policy
    /// the key now has); absent for a key without a policy.
    #[serde(default)]
    pub policy: Option<String>,
    /// The outcome.
    pub result: Verdict,
    /// The error code when not [`Verdict::Ok`] (`policy_denied`, `invalid_transaction`, …).
    #[serde(default)]
    pub code: Option<String>,
    /// The policy rule that refused, for [`Verdict::Denied`].
    #[serde(default)]
    pub rule: Option<String>,
    /// What was produced: the transaction hash of a signed transaction, the digest signed
    /// for messages, typed data, raw hashes and authorizations. Absent when nothing was
    /// signed.
    #[serde(default)]
    pub output: Option<B256>,
}

/// The operations the enclave records.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    /// Sign an Ethereum transaction.
    SignTransaction,
    /// Sign an EIP-191 personal message.
    SignMessage,
    /// Sign EIP-712 typed data.
    SignTypedData,
    /// Sign a raw digest.
    SignHash,
    /// Sign an EIP-7702 authorization.
    SignAuthorization,
    /// Generate a key.
    GenerateKey,
    /// Import a key.
    ImportKey,
    /// Migrate a key from the AWS sample's storage.
    MigrateKey,
    /// Replace a key's policy.
    SetPolicy,
}

impl Operation {
    /// The name used in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::SignTransaction => "sign_transaction",
            Operation::SignMessage => "sign_message",
            Operation::SignTypedData => "sign_typed_data",
            Operation::SignHash => "sign_hash",
            Operation::SignAuthorization => "sign_authorization",
            Operation::GenerateKey => "generate_key",
            Operation::ImportKey => "import_key",
            Operation::MigrateKey => "migrate_key",
            Operation::SetPolicy => "set_policy",
        }
    }
}

/// The outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Done: signed (or the key made or changed).
    Ok,
    /// Refused by the key's policy (`rule` names the rule).
    Denied,
    /// Failed for another reason (`code` says which): malformed request, KMS, window state.
    Failed,
}

/// A request as the enclave decoded it: public facts only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Intent {
    /// A transaction.
    Transaction(TransactionIntent),
    /// An EIP-191 personal message.
    Message(MessageIntent),
    /// EIP-712 typed data.
    TypedData(TypedDataIntent),
    /// A raw digest.
    Hash(HashIntent),
    /// An EIP-7702 authorization.
    Authorization(AuthorizationIntent),
    /// A policy change.
    Policy(PolicyIntent),
}

/// A transaction's public facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionIntent {
    /// EIP-2718 type (0 legacy, 1, 2, 3, 4).
    pub tx_type: u8,
    /// Chain id.
    pub chain_id: u64,
    /// Nonce.
    pub nonce: u64,
    /// Recipient; absent for a contract creation.
    #[serde(default, with = "opt_checksummed")]
    pub to: Option<Address>,
    /// Value in wei, decimal.
    pub value: String,
    /// The call's function selector (`0x` + 8 hex digits) when the input has one.
    #[serde(default)]
    pub selector: Option<String>,
    /// Length of the input (call data), bytes.
    pub input_len: usize,
    /// Gas limit.
    pub gas: u64,
    /// `gasPrice` or `maxFeePerGas`, wei, decimal.
    pub max_fee_per_gas: String,
}

/// A personal message: its length and the EIP-191 digest, never its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageIntent {
    /// Length of the message, bytes.
    pub len: usize,
    /// The EIP-191 digest (what is signed).
    pub digest: B256,
}

/// Typed data: the domain's identifying fields, the primary type and the EIP-712 digest,
/// never the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypedDataIntent {
    /// `primaryType` (at most [`MAX_TEXT_LEN`] characters).
    #[serde(default)]
    pub primary_type: Option<String>,
    /// `domain.name`.
    #[serde(default)]
    pub name: Option<String>,
    /// `domain.version`.
    #[serde(default)]
    pub version: Option<String>,
    /// `domain.chainId`, as written.
    #[serde(default)]
    pub chain_id: Option<String>,
    /// `domain.verifyingContract`, as written.
    #[serde(default)]
    pub verifying_contract: Option<String>,
    /// The EIP-712 digest (what is signed).
    pub digest: B256,
}

/// A raw digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashIntent {
    /// The 32 bytes asked to be signed.
    pub digest: B256,
}

/// An EIP-7702 authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthorizationIntent {
    /// Chain id, decimal (0: every chain).
    pub chain_id: String,
    /// The delegate contract.
    #[serde(with = "checksummed")]
    pub address: Address,
    /// The authority's nonce.
    pub nonce: u64,
    /// The EIP-7702 digest (what is signed).
    pub digest: B256,
}

/// A policy change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyIntent {
    /// Digest of the policy the key had (absent: none).
    #[serde(default)]
    pub previous: Option<String>,
}

/// `s` cut to at most [`MAX_TEXT_LEN`] characters (on a character boundary).
pub fn bounded_text(s: &str) -> String {
    match s.char_indices().nth(MAX_TEXT_LEN) {
        Some((end, _)) => s[..end].to_owned(),
        None => s.to_owned(),
    }
}

/// The hash of an entry body: SHA-256 over [`HASH_DOMAIN`] and the body's exact bytes.
pub fn entry_hash(body: &[u8]) -> B256 {
    let mut h = Sha256::new();
    h.update(HASH_DOMAIN);
    h.update(body);
    B256::from(<[u8; 32]>::from(h.finalize()))
}

/// The bytes the audit key signs for an entry hash: [`SIGNATURE_DOMAIN`] then the hash.
pub fn signing_message(hash: &B256) -> Vec<u8> {
    let mut m = SIGNATURE_DOMAIN.to_vec();
    m.extend_from_slice(hash.as_slice());
    m
}

/// An entry as the enclave issued it: the body's exact JSON, its hash and the audit key's
/// Ed25519 signature of the hash. Serialized, this is one line of the log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedEntry {
    /// The body ([`Entry`]), byte for byte as hashed.
    pub entry: Box<RawValue>,
    /// [`entry_hash`] of `entry`.
    pub hash: B256,
    /// Ed25519 signature of [`signing_message`]`(hash)` by the chain's key.
    pub sig: B512,
}

impl SignedEntry {
    /// The decoded body.
    ///
    /// # Errors
    /// When the body is not an [`Entry`].
    pub fn body(&self) -> Result<Entry, serde_json::Error> {
        serde_json::from_str(self.entry.get())
    }

    /// The hash of the body as it is now (equal to `hash` unless it was altered).
    pub fn computed_hash(&self) -> B256 {
        entry_hash(self.entry.get().as_bytes())
    }

    /// The entry as one log line (no newline).
    pub fn to_line(&self) -> String {
        // A struct of a raw value and two fixed-size byte strings always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Entries of a chain that the host was owed but could not obtain (the enclave's replies were
/// lost and it no longer holds them): written by the host, unsigned. `audit verify` reports
/// it as a break unless told to accept declared gaps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gap {
    /// The chain.
    pub chain: ChainId,
    /// First missing sequence number.
    pub from: u64,
    /// Last missing sequence number.
    pub to: u64,
    /// Why, in words.
    pub reason: String,
    /// When the host gave up, milliseconds since the Unix epoch (host clock).
    pub time_ms: u64,
}

/// One line of a log file.
#[derive(Debug, Clone)]
pub enum LogLine {
    /// An entry.
    Entry(SignedEntry),
    /// A gap the host declared.
    Gap(Gap),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GapLine {
    gap: Gap,
}

impl LogLine {
    /// Parses one line (without its newline). Bounded: longer lines than [`MAX_LINE_LEN`] are
    /// refused before parsing. Checks the shape only, not hashes or signatures.
    ///
    /// # Errors
    /// A message saying what is wrong with the line.
    pub fn parse(line: &str) -> Result<LogLine, String> {
        if line.len() > MAX_LINE_LEN {
            return Err(format!("line longer than {MAX_LINE_LEN} bytes"));
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("{\"gap\"") {
            return serde_json::from_str::<GapLine>(line)
                .map(|g| LogLine::Gap(g.gap))
                .map_err(|e| format!("not a gap record: {e}"));
        }
        serde_json::from_str::<SignedEntry>(line)
            .map(LogLine::Entry)
            .map_err(|e| format!("not an audit entry: {e}"))
    }

    /// The line as written to the log (no newline).
    pub fn to_line(&self) -> String {
        match self {
            LogLine::Entry(e) => e.to_line(),
            LogLine::Gap(g) => serde_json::json!({ "gap": g }).to_string(),
        }
    }
}

/// Serde: an address as its EIP-55 checksum; any case is read.
mod checksummed {
    use alloy_primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.to_checksum(None))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Serde: an optional address as its EIP-55 checksum or `null`.
mod opt_checksummed {
    use alloy_primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(a: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.serialize_str(&a.to_checksum(None)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Address>, D::Error> {
        let s = <Option<std::borrow::Cow<'de, str>>>::deserialize(d)?;
        s.map(|s| s.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Serde: bytes as standard base64.
mod base64_bytes {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s.as_bytes())
            .map_err(|_| serde::de::Error::custom("invalid base64"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn decision() -> Entry {
        Entry {
            v: ENTRY_VERSION,
            chain: ChainId(B256::repeat_byte(7)),
            seq: 3,
            time_ms: 1_700_000_000_000,
            prev: B256::repeat_byte(1),
            event: Event::Decision(Box::new(Decision {
                caller: Some("ops".into()),
                op: Operation::SignTransaction,
                key: Some(Address::repeat_byte(0xab)),
                intent: Some(Intent::Transaction(TransactionIntent {
                    tx_type: 2,
                    chain_id: 1,
                    nonce: 0,
                    to: None,
                    value: "1000".into(),
                    selector: Some("0xa9059cbb".into()),
                    input_len: 68,
                    gas: 21_000,
                    max_fee_per_gas: "30000000000".into(),
                })),
                policy: None,
                result: Verdict::Denied,
                code: Some("policy_denied".into()),
                rule: Some("contract_creation".into()),
                output: None,
            })),
        }
    }

    #[test]
    fn bodies_round_trip_and_lines_keep_their_bytes() {
        let body = serde_json::to_string(&decision()).unwrap();
        let back: Entry = serde_json::from_str(&body).unwrap();
        assert_eq!(back, decision());
        let signed = SignedEntry {
            entry: RawValue::from_string(body.clone()).unwrap(),
            hash: entry_hash(body.as_bytes()),
            sig: B512::repeat_byte(9),
        };
        let line = signed.to_line();
        assert!(line.contains(&body), "{line}");
        let LogLine::Entry(parsed) = LogLine::parse(&line).unwrap() else {
            panic!("not an entry")
        };
        assert_eq!(parsed.entry.get(), body);
        assert_eq!(parsed.computed_hash(), parsed.hash);
        assert_eq!(parsed.body().unwrap(), decision());
    }

    #[test]
    fn any_change_to_the_body_bytes_changes_the_hash() {
        let body = serde_json::to_string(&decision()).unwrap();
        let spaced = body.replacen(',', ", ", 1);
        assert_ne!(entry_hash(body.as_bytes()), entry_hash(spaced.as_bytes()));
        // Domain separation: not the plain SHA-256 of the body.
        assert_ne!(
            entry_hash(body.as_bytes()).as_slice(),
            &Sha256::digest(body.as_bytes())[..]
        );
    }

    #[test]
    fn gap_lines_parse_and_garbage_is_refused() {
        let gap = LogLine::Gap(Gap {
            chain: ChainId(B256::repeat_byte(2)),
            from: 4,
            to: 6,
            reason: "lost".into(),
            time_ms: 1,
        });
        assert!(matches!(
            LogLine::parse(&gap.to_line()),
            Ok(LogLine::Gap(g)) if g.from == 4 && g.to == 6
        ));
        for bad in [
            "",
            "{}",
            "null",
            "{\"entry\":{},\"hash\":\"0x00\",\"sig\":\"0x00\"}",
            "{\"gap\":{}}",
        ] {
            assert!(LogLine::parse(bad).is_err(), "{bad}");
        }
        assert!(LogLine::parse(&" ".repeat(MAX_LINE_LEN + 1)).is_err());
    }

    #[test]
    fn user_data_names_the_chain() {
        let chain = ChainId(B256::repeat_byte(0x42));
        assert_eq!(ChainId::from_user_data(&chain.user_data()), Some(chain));
        assert_eq!(ChainId::from_user_data(&[0; 32]), None);
        assert_eq!(ChainId::from_user_data(USER_DATA_PREFIX), None);
    }

    #[test]
    fn text_is_bounded_on_character_boundaries() {
        assert_eq!(bounded_text("abc"), "abc");
        let long = "é".repeat(MAX_TEXT_LEN + 10);
        assert_eq!(bounded_text(&long).chars().count(), MAX_TEXT_LEN);
    }
}
