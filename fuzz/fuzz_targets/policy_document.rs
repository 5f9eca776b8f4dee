//! Fuzzes the policy parser and evaluator: policies come from API clients (key creation, policy
//! changes) and from key records the host presents to the enclave.
//!
//! No panic; a policy that parses has a canonical form that parses to the same policy with the
//! same digest; evaluating any intent built from the remaining bytes never panics, and a
//! refusal always names a rule the policy actually sets (or a default-off kind).

#![no_main]

use alloy_primitives::{Address, U256};
use libfuzzer_sys::fuzz_target;
use nitro_wallet_policy::{Intent, Policy, WindowState};

fuzz_target!(|data: &[u8]| {
    // The first byte splits the input: policy bytes, then intent bytes.
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let cut = (split as usize).min(rest.len());
    let (intent_bytes, policy_bytes) = rest.split_at(cut);
    let Ok(policy) = Policy::from_json(policy_bytes) else {
        return;
    };
    let canonical = policy.canonical_json();
    match Policy::from_json(canonical.as_bytes()) {
        Ok(again) => {
            assert_eq!(again, policy, "canonical form changed the policy");
            assert_eq!(again.digest(), policy.digest());
        }
        Err(e) => panic!("the canonical form does not parse: {e}"),
    }

    let byte = |i: usize| intent_bytes.get(i).copied().unwrap_or(0);
    let mut to = [0u8; 20];
    for (i, b) in to.iter_mut().enumerate() {
        *b = byte(8 + i);
    }
    let chain_id = u64::from(byte(0)) % 4 + u64::from(byte(1) & 1) * 8453;
    let value = U256::from(u64::from_le_bytes([
        byte(2), byte(3), byte(4), byte(5), 0, 0, 0, 0,
    ]));
    let input = intent_bytes.get(28..).unwrap_or_default();
    let domain = serde_json::from_slice::<serde_json::Value>(input).unwrap_or_default();
    let intent = match byte(6) % 6 {
        0 | 1 => Intent::Transaction {
            chain_id,
            to: (byte(7) & 1 == 0).then_some(Address::from(to)),
            value,
            input,
            max_fee_per_gas: u128::from(byte(7)),
        },
        2 => Intent::PersonalMessage,
        3 => Intent::TypedData { domain: &domain },
        4 => Intent::RawHash,
        _ => Intent::Authorization {
            chain_id: U256::from(chain_id),
        },
    };
    if let Err(denied) = policy.check(&intent) {
        assert!(!denied.rule.is_empty() && !denied.reason.is_empty());
    }
    if let Some(window) = &policy.window {
        let mut state = WindowState::default();
        for t in 0..u64::from(byte(6) % 8) {
            state.expire(window, t * 10);
            if state.check(window, value).is_ok() {
                state.record(t * 10, value);
            }
        }
    }
});
