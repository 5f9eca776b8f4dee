//! The enclave's side: an audit key made at start, and the one chain it extends.
//!
//! [`Chain::start`] writes the genesis (sequence 0) with the attestation document the enclave
//! obtained for [`ChainId::user_data`]; every [`Chain::record`] then assigns the next
//! sequence number, links to the previous entry's hash, hashes the body and signs the hash,
//! all under one lock, so entries are numbered and linked in the order they were decided.
//! The genesis and the last [`KEEP_RECENT`] entries stay in memory, so a host whose copy of
//! a reply was lost (a timeout, a dropped connection) can fetch it again ([`Chain::entries`]).

use crate::entry::{
    entry_hash, signing_message, ChainId, Decision, Entry, Event, Genesis, SignedEntry,
    ENTRY_VERSION,
};
use alloy_primitives::{B256, B512};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::value::RawValue;
use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

/// Entries after the genesis that a chain keeps in memory for hosts that lost a reply.
pub const KEEP_RECENT: usize = 4096;

/// Most entries [`Chain::entries`] returns at once.
pub const MAX_ENTRIES_PER_FETCH: usize = 256;

/// Why a chain could not do what was asked.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The random generator failed while making the key.
    #[error("the audit key could not be generated")]
    KeyGeneration,
    /// [`Chain::record`] before [`Chain::start`].
    #[error("the audit chain has no genesis yet")]
    NotStarted,
    /// [`Chain::start`] twice.
    #[error("the audit chain has started already")]
    AlreadyStarted,
    /// [`Chain::entries`] for entries not written yet.
    #[error("the audit chain has no entry {0} yet")]
    NotYet(u64),
    /// The body could not be encoded (cannot happen with the types of this crate).
    #[error("the audit entry could not be encoded: {0}")]
    Encode(String),
}

/// An Ed25519 key pair that signs one chain. It never leaves the process: no `Clone`, no
/// serialization, and `Debug` prints the public key only.
pub struct AuditKey {
    pair: Ed25519KeyPair,
    chain: ChainId,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKey")
            .field("chain", &self.chain)
            .finish_non_exhaustive()
    }
}

impl AuditKey {
    /// A fresh key from the OS random generator.
    ///
    /// # Errors
    /// [`ChainError::KeyGeneration`].
    pub fn generate() -> Result<AuditKey, ChainError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| ChainError::KeyGeneration)?;
        let public =
            B256::try_from(pair.public_key().as_ref()).map_err(|_| ChainError::KeyGeneration)?;
        Ok(AuditKey {
            pair,
            chain: ChainId(public),
        })
    }

    /// The chain this key signs: its public key.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// Signs an entry hash (with [`crate::SIGNATURE_DOMAIN`](crate::entry::SIGNATURE_DOMAIN)).
    pub fn sign(&self, hash: &B256) -> B512 {
        let sig = self.pair.sign(&signing_message(hash));
        B512::try_from(sig.as_ref()).unwrap_or_default()
    }
}

struct State {
    next: u64,
    head: B256,
    genesis: Option<SignedEntry>,
    recent: VecDeque<SignedEntry>,
}

/// One enclave boot's chain of audit entries.
pub struct Chain {
    key: AuditKey,
    state: Mutex<State>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("chain", &self.key.chain)
            .field("next_seq", &self.next_seq())
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// A chain under a fresh key, not started.
    ///
    /// # Errors
    /// [`ChainError::KeyGeneration`].
    pub fn new() -> Result<Chain, ChainError> {
        Ok(Self::with_key(AuditKey::generate()?))
    }

    /// A chain under `key`, not started.
    pub fn with_key(key: AuditKey) -> Chain {
        Chain {
            key,
            state: Mutex::new(State {
                next: 0,
                head: B256::ZERO,
                genesis: None,
                recent: VecDeque::new(),
            }),
        }
    }

    /// The chain's id (its public key).
    pub fn id(&self) -> ChainId {
        self.key.chain
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the genesis is written.
    pub fn is_started(&self) -> bool {
        self.state().genesis.is_some()
    }

    /// The sequence number the next entry gets.
    pub fn next_seq(&self) -> u64 {
        self.state().next
    }

    /// Writes the genesis (sequence 0), linking to `prev`, the last entry of the host's log.
    ///
    /// # Errors
    /// [`ChainError::AlreadyStarted`].
    pub fn start(
        &self,
        genesis: Genesis,
        prev: B256,
        time_ms: u64,
    ) -> Result<SignedEntry, ChainError> {
        let mut state = self.state();
        if state.genesis.is_some() {
            return Err(ChainError::AlreadyStarted);
        }
        state.head = prev;
        let entry = self.append(&mut state, Event::Genesis(genesis), time_ms)?;
        state.genesis = Some(entry.clone());
        Ok(entry)
    }

    /// Records a decision as the next entry.
    ///
    /// # Errors
    /// [`ChainError::NotStarted`] before [`Chain::start`].
    pub fn record(&self, decision: Decision, time_ms: u64) -> Result<SignedEntry, ChainError> {
        let mut state = self.state();
        if state.genesis.is_none() {
            return Err(ChainError::NotStarted);
        }
        let entry = self.append(&mut state, Event::Decision(Box::new(decision)), time_ms)?;
        if state.recent.len() == KEEP_RECENT {
            state.recent.pop_front();
        }
        state.recent.push_back(entry.clone());
        Ok(entry)
    }

    fn append(
        &self,
        state: &mut State,
        event: Event,
        time_ms: u64,
    ) -> Result<SignedEntry, ChainError> {
        let body = Entry {
            v: ENTRY_VERSION,
            chain: self.key.chain,
            seq: state.next,
            time_ms,
            prev: state.head,
            event,
        };
        let json = serde_json::to_string(&body).map_err(|e| ChainError::Encode(e.to_string()))?;
        let hash = entry_hash(json.as_bytes());
        let sig = self.key.sign(&hash);
        let entry = RawValue::from_string(json).map_err(|e| ChainError::Encode(e.to_string()))?;
        state.next += 1;
        state.head = hash;
        Ok(SignedEntry { entry, hash, sig })
    }

    /// The entries with sequence numbers `from..=to` that are still kept, in order, at most
    /// [`MAX_ENTRIES_PER_FETCH`]. Entries older than the last [`KEEP_RECENT`] (except the
    /// genesis) are gone: the answer then starts later than `from`.
    ///
    /// # Errors
    /// [`ChainError::NotYet`] when `to` is not written yet.
    pub fn entries(&self, from: u64, to: u64) -> Result<Vec<SignedEntry>, ChainError> {
        let state = self.state();
        if to >= state.next {
            return Err(ChainError::NotYet(to));
        }
        let mut out = Vec::new();
        if from == 0 {
            if let Some(g) = &state.genesis {
                out.push(g.clone());
            }
        }
        // `recent` holds consecutive sequence numbers ending at `next - 1`.
        let oldest = state.next - state.recent.len() as u64;
        let start = from.max(oldest).max(1);
        if start <= to {
            let skip = usize::try_from(start - oldest).unwrap_or(usize::MAX);
            out.extend(
                state
                    .recent
                    .iter()
                    .skip(skip)
                    .take(usize::try_from(to - start + 1).unwrap_or(usize::MAX))
                    .cloned(),
            );
        }
        out.truncate(MAX_ENTRIES_PER_FETCH);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::entry::{Operation, Verdict};
    use crate::signature_is_valid;

    fn decision(n: u8) -> Decision {
        Decision {
            caller: Some(format!("caller-{n}")),
            op: Operation::SignHash,
            key: None,
            intent: None,
            policy: None,
            result: Verdict::Ok,
            code: None,
            rule: None,
            output: Some(B256::repeat_byte(n)),
        }
    }

    fn genesis() -> Genesis {
        Genesis {
            attestation: vec![1, 2, 3],
            dev: true,
            enclave_version: "test".into(),
        }
    }

    #[test]
    fn entries_are_numbered_linked_hashed_and_signed() {
        let chain = Chain::new().unwrap();
        assert_eq!(
            chain.record(decision(1), 0).unwrap_err(),
            ChainError::NotStarted
        );
        let prev = B256::repeat_byte(0xee);
        let g = chain.start(genesis(), prev, 10).unwrap();
        assert_eq!(
            chain.start(genesis(), prev, 10).unwrap_err(),
            ChainError::AlreadyStarted
        );
        let mut last = g.clone();
        assert_eq!(g.body().unwrap().prev, prev);
        for n in 1..=5u8 {
            let e = chain.record(decision(n), u64::from(n)).unwrap();
            let body = e.body().unwrap();
            assert_eq!(body.seq, u64::from(n));
            assert_eq!(body.prev, last.hash);
            assert_eq!(body.chain, chain.id());
            assert_eq!(e.computed_hash(), e.hash);
            assert!(signature_is_valid(&chain.id(), &e.hash, &e.sig));
            assert!(!signature_is_valid(&chain.id(), &last.hash, &e.sig));
            last = e;
        }
        let other = Chain::new().unwrap();
        assert!(!signature_is_valid(&other.id(), &last.hash, &last.sig));
    }

    #[test]
    fn recent_entries_can_be_fetched_again_and_old_ones_are_dropped() {
        let chain = Chain::new().unwrap();
        chain.start(genesis(), B256::ZERO, 0).unwrap();
        let total = KEEP_RECENT as u64 + 10;
        for _ in 0..total {
            chain.record(decision(1), 0).unwrap();
        }
        // 0 is the genesis, kept for ever; 1..=10 fell out.
        let got = chain.entries(0, 12).unwrap();
        let seqs: Vec<u64> = got.iter().map(|e| e.body().unwrap().seq).collect();
        assert_eq!(seqs, [0, 11, 12]);
        let got = chain.entries(total - 2, total).unwrap();
        let seqs: Vec<u64> = got.iter().map(|e| e.body().unwrap().seq).collect();
        assert_eq!(seqs, [total - 2, total - 1, total]);
        assert_eq!(
            chain.entries(1, total + 1).unwrap_err(),
            ChainError::NotYet(total + 1)
        );
        assert_eq!(
            chain.entries(100, total).unwrap().len(),
            MAX_ENTRIES_PER_FETCH
        );
    }

    #[test]
    fn the_key_is_not_printed() {
        let key = AuditKey::generate().unwrap();
        let shown = format!("{key:?}");
        assert!(shown.contains(&key.chain().short()), "{shown}");
    }
}
