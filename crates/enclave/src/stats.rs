//! Counters of what this enclave did since it started, for the host's metrics.
//!
//! The enclave has no network of its own to expose metrics on, so it reports them in every
//! [`Pong`](nitro_wallet_protocol::Pong): the host's pool pings each enclave every second and
//! exports the latest counts per enclave. Counts only: no address, key id or key material.
//! KMS calls take milliseconds, so one mutex over small maps costs nothing measurable.

use crate::keys::KeyCache;
use nitro_wallet_kms::KmsError;
use nitro_wallet_protocol::EnclaveStats;
use std::{
    collections::BTreeMap,
    sync::{Mutex, PoisonError},
};

/// A KMS operation, as counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KmsOp {
    /// `Encrypt` (wrapping a key).
    Encrypt,
    /// `Decrypt` (unwrapping a key, attested or not).
    Decrypt,
}

impl KmsOp {
    fn name(self) -> &'static str {
        match self {
            KmsOp::Encrypt => "encrypt",
            KmsOp::Decrypt => "decrypt",
        }
    }
}

/// KMS calls by operation and failures by error code; the key cache counts its own.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    kms: Mutex<KmsCounts>,
}

#[derive(Debug, Default)]
struct KmsCounts {
    calls: BTreeMap<&'static str, u64>,
    errors: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Counts one KMS call and, if it failed, its error code.
    pub(crate) fn kms<T>(&self, op: KmsOp, result: &Result<T, KmsError>) {
        let mut counts = self.kms.lock().unwrap_or_else(PoisonError::into_inner);
        *counts.calls.entry(op.name()).or_default() += 1;
        if let Err(e) = result {
            *counts.errors.entry(e.code()).or_default() += 1;
        }
    }

    /// The counts so far, with the key cache's.
    pub(crate) fn snapshot(&self, cache: &KeyCache) -> EnclaveStats {
        let (key_cache_hits, key_cache_misses) = cache.hits_and_misses();
        let counts = self.kms.lock().unwrap_or_else(PoisonError::into_inner);
        let owned = |m: &BTreeMap<&'static str, u64>| {
            m.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
        };
        EnclaveStats {
            key_cache_hits,
            key_cache_misses,
            kms_calls: owned(&counts.calls),
            kms_errors: owned(&counts.errors),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn calls_and_errors_are_counted_by_operation_and_code() {
        let stats = Stats::default();
        stats.kms(KmsOp::Decrypt, &Ok::<(), KmsError>(()));
        stats.kms(KmsOp::Decrypt, &Err::<(), _>(KmsError::NotFound));
        stats.kms(
            KmsOp::Encrypt,
            &Err::<(), _>(KmsError::Unavailable("throttled".into())),
        );
        let s = stats.snapshot(&KeyCache::new(1));
        assert_eq!(s.kms_calls["decrypt"], 2);
        assert_eq!(s.kms_calls["encrypt"], 1);
        assert_eq!(s.kms_errors["kms_key_not_found"], 1);
        assert_eq!(s.kms_errors["kms_unavailable"], 1);
        assert_eq!((s.key_cache_hits, s.key_cache_misses), (0, 0));
    }
}
