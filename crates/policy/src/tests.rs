#![allow(clippy::unwrap_used)]

use super::*;
use proptest::prelude::*;

const USDC: &str = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48";
const ALICE: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const TRANSFER_SELECTOR: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];

fn policy(json: &str) -> Policy {
    Policy::from_json(json.as_bytes()).unwrap()
}

fn tx<'a>(chain_id: u64, to: Option<&str>, value: u64, input: &'a [u8], fee: u128) -> Intent<'a> {
    Intent::Transaction {
        chain_id,
        to: to.map(|a| a.parse().unwrap()),
        value: U256::from(value),
        input,
        max_fee_per_gas: fee,
    }
}

fn rule(result: Result<(), Denied>) -> &'static str {
    result.unwrap_err().rule
}

#[test]
fn the_default_policy_allows_all_but_raw_digests_and_any_chain_authorizations() {
    let p = Policy::default();
    assert!(p.is_default());
    assert_eq!(p.canonical_json(), "{}");
    assert_eq!(policy("{}"), p);
    assert!(p.check(&tx(1, None, 5, b"", 1)).is_ok());
    assert!(p.check(&tx(1, Some(ALICE), 5, b"\x01", 1)).is_ok());
    assert!(p.check(&Intent::PersonalMessage).is_ok());
    assert!(p
        .check(&Intent::TypedData {
            domain: &serde_json::json!({})
        })
        .is_ok());
    assert_eq!(rule(p.check(&Intent::RawHash)), "raw_hash");
    assert_eq!(
        rule(p.check(&Intent::Authorization {
            chain_id: U256::ZERO
        })),
        "authorization_any_chain"
    );
    assert!(p
        .check(&Intent::Authorization {
            chain_id: U256::from(1)
        })
        .is_ok());
}

#[test]
fn transactions_are_checked_rule_by_rule() {
    let p = policy(&format!(
        r#"{{"chain_ids": [1, 8453],
            "recipients": {{"{USDC}": {{"selectors": ["0xa9059cbb"]}}, "{ALICE}": {{}}}},
            "max_value_wei": "1000", "max_fee_per_gas_wei": 50}}"#
    ));
    let call = [&TRANSFER_SELECTOR[..], &[0u8; 64]].concat();
    assert!(p.check(&tx(1, Some(USDC), 0, &call, 50)).is_ok());
    assert!(p.check(&tx(8453, Some(ALICE), 1000, b"", 1)).is_ok());
    assert!(p
        .check(&tx(8453, Some(ALICE), 1000, b"anything", 1))
        .is_ok());

    assert_eq!(rule(p.check(&tx(10, Some(ALICE), 1, b"", 1))), "chain_ids");
    assert_eq!(
        rule(p.check(&tx(
            1,
            Some("0x0000000000000000000000000000000000000001"),
            1,
            b"",
            1
        ))),
        "recipients"
    );
    assert_eq!(
        rule(p.check(&tx(1, Some(USDC), 0, &[0x09, 0x5e, 0xa7, 0xb3, 0], 1))),
        "recipients.selectors"
    );
    assert_eq!(
        rule(p.check(&tx(1, Some(USDC), 0, b"", 1))),
        "recipients.selectors"
    );
    assert_eq!(
        rule(p.check(&tx(1, Some(USDC), 0, b"\xa9\x05", 1))),
        "recipients.selectors"
    );
    assert_eq!(
        rule(p.check(&tx(1, Some(ALICE), 1001, b"", 1))),
        "max_value_wei"
    );
    assert_eq!(
        rule(p.check(&tx(1, Some(ALICE), 1, b"", 51))),
        "max_fee_per_gas_wei"
    );
    // With recipients listed, contract creation is off unless asked for.
    assert_eq!(rule(p.check(&tx(1, None, 0, b"", 1))), "contract_creation");
    let mut q = p.clone();
    q.contract_creation = Some(true);
    assert!(q.check(&tx(1, None, 0, b"", 1)).is_ok());
    // The refusal names the rule and what was refused, nothing more.
    let denied = p.check(&tx(1, Some(ALICE), 1001, b"", 1)).unwrap_err();
    assert_eq!(
        denied.to_string(),
        "denied by policy rule `max_value_wei`: value 1001 wei is above the limit of 1000 wei"
    );
}

#[test]
fn plain_transfers_to_a_selector_restricted_recipient_need_the_zero_selector() {
    let p = policy(&format!(
        r#"{{"recipients": {{"{ALICE}": {{"selectors": ["0x00000000"]}}}}}}"#
    ));
    assert!(p.check(&tx(1, Some(ALICE), 7, b"", 1)).is_ok());
    assert_eq!(
        rule(p.check(&tx(1, Some(ALICE), 7, &TRANSFER_SELECTOR, 1))),
        "recipients.selectors"
    );
}

#[test]
fn kinds_of_signature_can_be_switched() {
    let p = policy(
        r#"{"personal_messages": false, "typed_data": false, "raw_hash": true,
            "authorizations": false}"#,
    );
    assert_eq!(rule(p.check(&Intent::PersonalMessage)), "personal_messages");
    assert_eq!(
        rule(p.check(&Intent::TypedData {
            domain: &serde_json::json!({})
        })),
        "typed_data"
    );
    assert!(p.check(&Intent::RawHash).is_ok());
    assert_eq!(
        rule(p.check(&Intent::Authorization {
            chain_id: U256::from(1)
        })),
        "authorizations"
    );
    let p = policy(r#"{"authorization_any_chain": true, "chain_ids": [5]}"#);
    assert!(p
        .check(&Intent::Authorization {
            chain_id: U256::ZERO
        })
        .is_ok());
    assert_eq!(
        rule(p.check(&Intent::Authorization {
            chain_id: U256::from(1)
        })),
        "chain_ids"
    );
    assert_eq!(
        rule(p.check(&Intent::Authorization {
            chain_id: U256::MAX
        })),
        "chain_ids"
    );
}

#[test]
fn typed_data_domains_match_on_the_members_a_rule_names() {
    let p = policy(&format!(
        r#"{{"chain_ids": [1],
            "typed_data_domains": [{{"name": "Permit2", "chainId": 1}},
                                   {{"verifyingContract": "{USDC}"}}]}}"#
    ));
    let ok = |d: serde_json::Value| p.check(&Intent::TypedData { domain: &d });
    assert!(ok(serde_json::json!({"name": "Permit2", "chainId": 1, "version": "9"})).is_ok());
    assert!(ok(serde_json::json!({"name": "Permit2", "chainId": "0x1"})).is_ok());
    assert!(ok(serde_json::json!({"verifyingContract": USDC.to_lowercase()})).is_ok());
    assert_eq!(
        rule(ok(serde_json::json!({"name": "Permit2"}))),
        "typed_data_domains"
    );
    assert_eq!(
        rule(ok(serde_json::json!({"name": "Permit2", "chainId": 5}))),
        "chain_ids"
    );
    assert_eq!(
        rule(ok(serde_json::json!({"name": "Permit2", "chainId": "x"}))),
        "chain_ids"
    );
    assert_eq!(
        rule(ok(serde_json::json!({"name": "Other"}))),
        "typed_data_domains"
    );
}

#[test]
fn malformed_policies_are_refused_with_a_reason() {
    for (json, needle) in [
        (r#"{"chain_id": [1]}"#, "unknown field"),
        (r#"{"chain_ids": []}"#, "chain_ids"),
        (r#"{"chain_ids": [0]}"#, "chain_ids"),
        (r#"{"max_value_wei": "1.5"}"#, "decimal"),
        (r#"{"max_value_wei": -1}"#, "decimal"),
        (r#"{"recipients": {"0x12": {}}}"#, "invalid"),
        (
            r#"{"recipients": {"0x70997970C51812dc3A010C7d01b50e0d17dc79C8": {"selectors": ["0xa9059c"]}}}"#,
            "selector",
        ),
        (
            r#"{"window": {"seconds": 0, "max_count": 1}}"#,
            "window.seconds",
        ),
        (r#"{"window": {"seconds": 60}}"#, "needs"),
        (
            r#"{"window": {"seconds": 60, "max_count": 5000}}"#,
            "max_count",
        ),
        (r#"[]"#, "invalid policy"),
        // serde alone would read these arrays as the rules' members in order.
        (
            r#"{"window": [60, null, 1]}"#,
            "window must be a JSON object",
        ),
        (
            r#"{"typed_data_domains": [[null, null]]}"#,
            "typed_data_domains",
        ),
        (
            r#"{"recipients": {"0x70997970C51812dc3A010C7d01b50e0d17dc79C8": [null]}}"#,
            "recipient",
        ),
    ] {
        let err = Policy::from_json(json.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(needle), "{json}: {err}");
    }
    let huge = format!(r#"{{"chain_ids": [{}1]}}"#, " ".repeat(MAX_POLICY_LEN));
    assert_eq!(
        Policy::from_json(huge.as_bytes()),
        Err(PolicyError::TooLarge)
    );
}

#[test]
fn the_digest_is_of_the_canonical_form() {
    let a = policy(&format!(
        r#"{{"max_value_wei": 10, "chain_ids": [8453, 1, 1], "recipients": {{"{ALICE}": {{}}}}}}"#
    ));
    let b = policy(&format!(
        r#"{{"recipients": {{"{}": {{}}}}, "chain_ids": [1, 8453], "max_value_wei": "10",
            "personal_messages": true}}"#,
        ALICE.to_lowercase()
    ));
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    assert_eq!(
        a.canonical_json(),
        r#"{"chain_ids":[1,8453],"recipients":{"0x70997970c51812dc3a010c7d01b50e0d17dc79c8":{}},"max_value_wei":"10"}"#
    );
    let c = policy(r#"{"max_value_wei": 11}"#);
    assert_ne!(a.digest(), c.digest());
    assert_eq!(a.digest().len(), 64);
}

#[test]
fn the_window_limits_count_and_value_and_forgets_what_left_it() {
    let p = policy(r#"{"window": {"seconds": 100, "max_value_wei": "10", "max_count": 3}}"#);
    let w = p.window.as_ref().unwrap();
    let mut s = WindowState::default();
    for (t, v) in [(1000, 4), (1010, 4)] {
        s.expire(w, t);
        s.check(w, U256::from(v)).unwrap();
        s.record(t, U256::from(v));
    }
    s.expire(w, 1020);
    assert_eq!(rule(s.check(w, U256::from(3))), "window.max_value_wei");
    s.check(w, U256::from(2)).unwrap();
    s.record(1020, U256::from(2));
    assert_eq!(rule(s.check(w, U256::ZERO)), "window.max_count");
    assert_eq!(s.seq, 3);
    // At 1100 the entry of 1000 has left the window (exactly `seconds` later).
    s.expire(w, 1100);
    assert_eq!(s.entries.len(), 2);
    s.check(w, U256::from(4)).unwrap();
    // A clock that went back records at the last time seen.
    s.record(900, U256::from(4));
    assert_eq!(s.entries.last().unwrap().0, 1020);
}

#[test]
fn window_state_round_trips_and_refuses_tampering() {
    let mut s = WindowState::default();
    s.record(5, U256::from(7));
    s.record(9, U256::MAX);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(
        json,
        format!(r#"{{"seq":2,"entries":[[5,"7"],[9,"{}"]]}}"#, U256::MAX)
    );
    assert_eq!(serde_json::from_str::<WindowState>(&json).unwrap(), s);
    for bad in [
        r#"{"seq":1,"entries":[[9,"1"],[5,"1"]]}"#,
        r#"{"seq":1,"entries":[[9,"x"]]}"#,
        r#"{"seq":1,"entries":[],"extra":1}"#,
    ] {
        assert!(serde_json::from_str::<WindowState>(bad).is_err(), "{bad}");
    }
}

proptest! {
    /// Whatever happens, the recorded value over any window never exceeds the limit.
    #[test]
    fn the_window_never_lets_the_total_pass_the_limit(
        steps in proptest::collection::vec((0u64..50, 0u64..20), 1..200),
        seconds in 1u64..200,
        max in 0u64..100,
    ) {
        let w = Window { seconds, max_value_wei: Some(U256::from(max)), max_count: None };
        let mut s = WindowState::default();
        let mut now = 0u64;
        let mut accepted: Vec<(u64, u64)> = Vec::new();
        for (dt, value) in steps {
            now += dt;
            s.expire(&w, now);
            if s.check(&w, U256::from(value)).is_ok() {
                s.record(now, U256::from(value));
                accepted.push((now, value));
            }
            let in_window: u64 = accepted
                .iter()
                .filter(|(t, _)| *t > now.saturating_sub(seconds))
                .map(|(_, v)| v)
                .sum();
            prop_assert!(in_window <= max, "{in_window} > {max} at {now}");
        }
    }

    /// Parsing never panics, and whatever parses has a canonical form that parses to itself.
    #[test]
    fn canonical_forms_are_fixed_points(json in "\\PC{0,200}") {
        if let Ok(p) = Policy::from_json(json.as_bytes()) {
            let again = Policy::from_json(p.canonical_json().as_bytes()).unwrap();
            prop_assert_eq!(&again, &p);
            prop_assert_eq!(again.digest(), p.digest());
        }
    }
}
