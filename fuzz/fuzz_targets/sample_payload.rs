//! Fuzzes the reference sample's request format (`POST /`): the `transaction_payload` rewrite
//! and the exact ether → wei conversion of `value`, both fed by API clients.
//!
//! No panic (no overflow, no slicing out of bounds); a converted amount printed back as ether
//! converts to the same wei; a rewritten payload is a JSON object whose `value`, if any, is a
//! decimal string of wei.

#![no_main]

use alloy_primitives::U256;
use libfuzzer_sys::fuzz_target;
use nitro_wallet::legacy::{ether_to_wei, payload_to_request};
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// `wei` as an exact ether decimal (`1.5`, `0.000000000000000001`, `12`).
fn as_ether(wei: U256) -> String {
    let digits = format!("{wei:0>19}");
    let (int, frac) = digits.split_at(digits.len() - 18);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(wei) = ether_to_wei(text) {
            assert_eq!(ether_to_wei(&as_ether(wei)), Ok(wei), "round trip of {wei}");
        }
    }
    let Ok(payload) = serde_json::from_slice::<Box<RawValue>>(data) else {
        return;
    };
    if let Ok(request) = payload_to_request(&payload) {
        // Other members pass through untouched (the enclave judges them), so read them raw:
        // a number beyond f64 is valid JSON that `serde_json::Value` would refuse.
        let object: BTreeMap<String, Box<RawValue>> = match serde_json::from_str(request.get()) {
            Ok(v) => v,
            Err(e) => panic!("a rewritten payload is not a JSON object: {e}"),
        };
        if let Some(v) = object.get("value") {
            let s: String = serde_json::from_str(v.get()).expect("value is a string");
            assert!(U256::from_str_radix(&s, 10).is_ok(), "value is not decimal wei: {s}");
        }
    }
});
