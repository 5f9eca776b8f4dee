//! The tamper-evident audit log of nitro-wallet.
//!
//! The enclave decides every signature (the key's policy is evaluated inside it), so the
//! enclave is also what records the decisions. Each enclave process makes an Ed25519 **audit
//! key** when it starts and keeps one **chain** of entries under it ([`Chain`]):
//!
//! - the first entry, the **genesis**, carries an NSM attestation document whose `user_data`
//!   binds the audit key ([`ChainId::user_data`]), so whoever checks the document against the
//!   AWS root and the release's PCR0 knows the key lives in that enclave image;
//! - every later entry records one decision: who asked (the API token's name, as the host
//!   says), which key, the decoded intent, the outcome and the policy rule that refused, and
//!   the resulting hash ([`Decision`]);
//! - each entry names its sequence number and the hash of the entry before it, and is hashed
//!   and signed by the audit key ([`SignedEntry`]).
//!
//! The host appends the entries to a JSON Lines file; [`verify_log`] (`nitro-wallet audit
//! verify`) checks the attestation of every genesis, then every entry's hash, signature,
//! sequence number and link, and names the first line where the log was modified, cut,
//! reordered or forged.
//!
//! Features: `signing` ([`AuditKey`], [`Chain`]: the enclave's side) and `verify`
//! ([`verify_log`]: the auditor's side). The entry types ([`entry`]) need neither.

#[cfg(feature = "signing")]
pub mod chain;
pub mod entry;
#[cfg(feature = "verify")]
pub mod verify;

pub use entry::{
    bounded_text, entry_hash, signing_message, AuthorizationIntent, ChainId, Decision, Entry,
    Event, Gap, Genesis, HashIntent, Intent, LogLine, MessageIntent, Operation, PolicyIntent,
    SignedEntry, TransactionIntent, TypedDataIntent, Verdict, ENTRY_VERSION, MAX_LINE_LEN,
    MAX_TEXT_LEN, USER_DATA_PREFIX,
};

#[cfg(feature = "signing")]
pub use chain::{AuditKey, Chain, ChainError, KEEP_RECENT, MAX_ENTRIES_PER_FETCH};
#[cfg(feature = "verify")]
pub use verify::{verify_log, Broken, ChainSummary, Problem, Summary, VerifyOptions};

/// Verifies an Ed25519 signature of an entry hash by a chain's key.
#[cfg(any(feature = "signing", feature = "verify"))]
pub fn signature_is_valid(
    chain: &ChainId,
    hash: &alloy_primitives::B256,
    sig: &alloy_primitives::B512,
) -> bool {
    use aws_lc_rs::signature::{UnparsedPublicKey, ED25519};
    UnparsedPublicKey::new(&ED25519, chain.0.as_slice())
        .verify(&signing_message(hash), sig.as_slice())
        .is_ok()
}
