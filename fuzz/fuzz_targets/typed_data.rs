//! Fuzzes the EIP-712 typed-data encoder (untrusted `eth_signTypedData_v4` documents from API
//! and JSON-RPC clients): `typed_data_hash` must never panic or overflow the stack, and
//! whatever hashes must sign, recover to the fixed key's address, and hash the same again.
//! The same bytes also go through the EIP-191 `PersonalMessage` reader.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nitro_wallet_eth::{sign_typed_data, typed_data_hash, PersonalMessage, PrivateKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(msg) = PersonalMessage::from_value(&value) {
            let again = serde_json::to_value(&msg).map(|v| PersonalMessage::from_value(&v));
            assert_eq!(again.ok().and_then(Result::ok), Some(msg));
        }
    }
    let Ok(hash) = typed_data_hash(data) else {
        return;
    };
    let key = match PrivateKey::from_bytes(&[0x46; 32]) {
        Ok(key) => key,
        Err(e) => panic!("fixed key rejected: {e}"),
    };
    match sign_typed_data(&key, data) {
        Ok(sig) => {
            assert_eq!(sig.hash, hash);
            assert_eq!(sig.signer, key.address());
            assert_eq!(sig.recover_signer(), Some(key.address()));
        }
        Err(e) => panic!("hashed but did not sign: {e}"),
    }
});
