//! Per-address nonce serialization for `eth_sendTransaction`.
//!
//! Two sends from one key that both ask the node for the pending nonce before either has
//! reached it would get the same nonce, and one would be refused or replace the other. So a
//! send that needs a nonce holds its address's lock from the moment it reads the pending
//! nonce until the node has answered `eth_sendRawTransaction`, and the next nonce is also
//! remembered here: the nonce used is the larger of the node's pending count and that local
//! hint, which covers nodes (or load-balanced providers) whose pending count lags behind a
//! transaction they just accepted. The hint expires after [`HINT_TTL`] without a send and is
//! dropped when the node refuses a transaction, so a transaction that never reached the pool
//! cannot leave a gap for long: the node is the source of truth, the hint only a floor.

use alloy_primitives::Address;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};

/// How long a remembered next nonce stays a floor after the last send.
pub(super) const HINT_TTL: Duration = Duration::from_secs(60);

/// The next nonce of one address, as far as this process knows.
#[derive(Debug, Default)]
pub(super) struct Slot {
    next: Option<(u64, Instant)>,
}

impl Slot {
    /// The nonce to use given the node's pending count: the larger of it and a fresh hint.
    pub(super) fn choose(&self, pending: u64, now: Instant) -> u64 {
        match self.next {
            Some((next, at)) if now.saturating_duration_since(at) < HINT_TTL => pending.max(next),
            _ => pending,
        }
    }

    /// The node accepted a transaction with `nonce`.
    pub(super) fn sent(&mut self, nonce: u64, now: Instant) {
        let next = nonce.saturating_add(1);
        let floor = self.choose(0, now);
        self.next = Some((next.max(floor), now));
    }

    /// Forgets the hint (the node refused a transaction: trust its count again).
    pub(super) fn forget(&mut self) {
        self.next = None;
    }
}

/// One lock and hint per address.
#[derive(Debug, Default)]
pub(super) struct Nonces {
    slots: Mutex<HashMap<Address, Arc<AsyncMutex<Slot>>>>,
}

impl Nonces {
    /// Waits for `address`'s lock. Addresses are keys of the store, so the map stays as small
    /// as the store.
    pub(super) async fn lock(&self, address: Address) -> OwnedMutexGuard<Slot> {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            slots.entry(address).or_default().clone()
        };
        slot.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hint_is_a_floor_until_it_expires_or_is_forgotten() {
        let t0 = Instant::now();
        let mut slot = Slot::default();
        assert_eq!(slot.choose(5, t0), 5);
        slot.sent(5, t0);
        // A lagging node still says 5: the hint gives 6.
        assert_eq!(slot.choose(5, t0), 6);
        // The node is ahead (someone else sent): the node wins.
        assert_eq!(slot.choose(9, t0), 9);
        // An explicit lower nonce does not lower the floor.
        slot.sent(2, t0);
        assert_eq!(slot.choose(0, t0), 6);
        assert_eq!(slot.choose(5, t0 + HINT_TTL), 5);
        slot.sent(6, t0);
        slot.forget();
        assert_eq!(slot.choose(5, t0), 5);
        slot.sent(u64::MAX, t0);
        assert_eq!(slot.choose(0, t0), u64::MAX);
    }

    #[tokio::test]
    async fn one_address_is_serialized_and_others_are_not() {
        let nonces = Arc::new(Nonces::default());
        let a = Address::repeat_byte(1);
        let b = Address::repeat_byte(2);
        let held = nonces.lock(a).await;
        // Another address is free.
        let _other = nonces.lock(b).await;
        let waiter = {
            let nonces = nonces.clone();
            tokio::spawn(async move { nonces.lock(a).await.choose(0, Instant::now()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            !waiter.is_finished(),
            "the second lock of one address waits"
        );
        let mut held = held;
        held.sent(41, Instant::now());
        drop(held);
        assert_eq!(waiter.await.ok(), Some(42));
    }
}
