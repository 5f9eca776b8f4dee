//! Fuzzes the transaction-request parser (untrusted JSON from API clients) and, whenever a
//! request parses, signs it: neither step may panic, and a successful signature must carry
//! the fixed key's address.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nitro_wallet_eth::{sign_transaction, PrivateKey, TransactionRequest, TxError};

fuzz_target!(|data: &[u8]| {
    let Ok(tx) = TransactionRequest::from_json(data) else {
        return;
    };
    let key = match PrivateKey::from_bytes(&[0x46; 32]) {
        Ok(key) => key,
        Err(e) => panic!("fixed key rejected: {e}"),
    };
    match sign_transaction(&key, &tx) {
        Ok(signed) => assert_eq!(signed.from, key.address()),
        Err(TxError::FromMismatch { .. }) => {}
        Err(e) => panic!("unexpected signing error: {e}"),
    }
});
