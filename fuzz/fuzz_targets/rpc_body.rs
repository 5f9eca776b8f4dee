//! Fuzzes the JSON-RPC body parser (`POST /rpc`), fed by any client holding a token.
//!
//! No panic; a body that parses has 1 to 100 entries; each call's method is a string and its
//! id, params and raw request are valid JSON that the handlers can re-read; invalid entries
//! carry the -32600 error with an id that is valid JSON.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nitro_wallet::api::rpc::wire::{Entry, RpcBody};
use nitro_wallet::api::rpc::parse_rpc_body;

fn check(entry: &Entry) {
    match entry {
        Entry::Call(call) => {
            for raw in [Some(&call.raw), call.id.as_ref(), call.params.as_ref()]
                .into_iter()
                .flatten()
            {
                if let Err(e) = serde_json::from_str::<&serde_json::value::RawValue>(raw.get()) {
                    panic!("a parsed part is not JSON: {e}");
                }
            }
            if let Some(params) = &call.params {
                let first = params.get().as_bytes().first();
                assert!(matches!(first, Some(b'[' | b'{')), "params neither array nor object");
            }
        }
        Entry::Invalid { id, error } => {
            assert_eq!(error.code, -32600);
            // Read raw: a number beyond f64 is valid JSON (echoed as sent) that Value refuses.
            assert!(serde_json::from_str::<&serde_json::value::RawValue>(id.get()).is_ok());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match parse_rpc_body(data) {
        Ok(RpcBody::Single(entry)) => check(&entry),
        Ok(RpcBody::Batch(entries)) => {
            assert!((1..=100).contains(&entries.len()));
            entries.iter().for_each(check);
        }
        Err(e) => assert!(e.code == -32700 || e.code == -32600, "code {}", e.code),
    }
});
