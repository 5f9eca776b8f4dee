//! The in-memory cache of plaintext keys.
//!
//! A key is unwrapped with KMS once and then served from here, so signing makes no KMS call
//! in steady state. Concurrent requests for a key that is not cached share one unwrap. The
//! cache is bounded; an evicted key is zeroized when its last in-flight signature finishes
//! (`PrivateKey` zeroizes on drop) and is unwrapped again on its next use.
//!
//! Entries are keyed by address **and** policy digest: the policy that KMS verified through
//! the encryption context is the one cached with the key, so a request presenting another
//! policy misses the cache and must unwrap (and KMS refuses the mismatch).

use alloy_primitives::Address;
use nitro_wallet_eth::PrivateKey;
use nitro_wallet_policy::Policy;
use std::{
    collections::HashMap,
    future::Future,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, Mutex, PoisonError,
    },
};
use tokio::sync::OnceCell;

/// A plaintext key and the policy it was unwrapped (or wrapped) under.
pub struct Unwrapped {
    /// The key.
    pub key: PrivateKey,
    /// Its policy, verified by KMS through the encryption context.
    pub policy: Policy,
}

impl std::fmt::Debug for Unwrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unwrapped")
            .field("address", &self.key.address())
            .field("policy", &self.policy)
            .finish()
    }
}

/// Which cache entry: the address and the policy digest (`None` for the default policy).
pub type CacheId = (Address, Option<String>);

type Slot = Arc<OnceCell<Arc<Unwrapped>>>;

/// Bounded (address, policy) → key cache.
#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    slots: Mutex<HashMap<CacheId, Slot>>,
    /// Lookups answered from the cache, for the host's metrics.
    hits: AtomicU64,
    /// Lookups that had to unwrap (or wait for a concurrent unwrap).
    misses: AtomicU64,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            slots: Mutex::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.lock().values().filter(|s| s.initialized()).count()
    }

    /// Lookups answered from the cache and lookups that were not, since the cache was made.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Whether no key is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Caches a key known to be good (just generated, imported or re-wrapped) under `id`.
    pub fn insert(&self, id: CacheId, key: Unwrapped) {
        let slot = Arc::new(OnceCell::new_with(Some(Arc::new(key))));
        let mut slots = self.lock();
        Self::make_room(&mut slots, self.capacity, &id);
        slots.insert(id, slot);
    }

    /// Forgets every entry of `address` (its policy changed).
    pub fn remove_address(&self, address: &Address) {
        self.lock().retain(|(a, _), _| a != address);
    }

    /// The key for `address`, running `unwrap` (once, shared by concurrent callers) when it is
    /// not cached. A failed unwrap caches nothing.
    ///
    /// # Errors
    /// Whatever `unwrap` returns.
    pub async fn get_or_try_insert<E, F, Fut>(
        &self,
        id: CacheId,
        unwrap: F,
    ) -> Result<Arc<Unwrapped>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Unwrapped, E>>,
    {
        let slot = {
            let mut slots = self.lock();
            if let Some(key) = slots.get(&id).and_then(|s| s.get()) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(Arc::clone(key));
            }
            self.misses.fetch_add(1, Ordering::Relaxed);
            if !slots.contains_key(&id) {
                Self::make_room(&mut slots, self.capacity, &id);
            }
            Arc::clone(slots.entry(id).or_default())
        };
        slot.get_or_try_init(|| async { unwrap().await.map(Arc::new) })
            .await
            .map(Arc::clone)
    }

    fn make_room(slots: &mut HashMap<CacheId, Slot>, capacity: usize, keep: &CacheId) {
        while slots.len() >= capacity {
            // Any victim will do: eviction only costs one KMS call later.
            let Some(victim) = slots.keys().find(|a| *a != keep).cloned() else {
                break;
            };
            slots.remove(&victim);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CacheId, Slot>> {
        // The map stays consistent even if a holder panicked: every update is one call.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn unwrapped(key: PrivateKey) -> Unwrapped {
        Unwrapped {
            key,
            policy: Policy::default(),
        }
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_unwrap_and_capacity_is_kept() {
        let cache = Arc::new(KeyCache::new(2));
        let calls = Arc::new(AtomicUsize::new(0));
        let hex = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let address = PrivateKey::from_hex(hex).unwrap().address();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_try_insert((address, None), || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        Ok::<_, ()>(unwrapped(PrivateKey::from_hex(hex).unwrap()))
                    })
                    .await
                    .unwrap()
                    .key
                    .address()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), address);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // Eight lookups, none answered from the cache: they shared one unwrap.
        assert_eq!(cache.hits_and_misses(), (0, 8));
        cache
            .get_or_try_insert((address, None), || async { Err::<Unwrapped, _>(()) })
            .await
            .unwrap();
        assert_eq!(cache.hits_and_misses(), (1, 8));

        for _ in 0..5 {
            let key = PrivateKey::generate().unwrap();
            cache.insert((key.address(), None), unwrapped(key));
        }
        assert_eq!(cache.len(), 2);
    }

    #[tokio::test]
    async fn failed_unwrap_is_not_cached() {
        let cache = KeyCache::new(4);
        let address = Address::repeat_byte(1);
        let r = cache
            .get_or_try_insert((address, None), || async { Err::<Unwrapped, _>("denied") })
            .await;
        assert!(r.is_err());
        assert_eq!(cache.len(), 0);
    }
}
