//! Fuzzes the host's key-record parser: records are read back from the key directory or from
//! Secrets Manager, storage that an attacker with write access could have altered.
//!
//! Parsing must not panic, and a record that parses must survive serialise -> parse unchanged
//! (the host writes what it read when it migrates or re-exports records).

#![no_main]

use libfuzzer_sys::fuzz_target;
use nitro_wallet::keystore::KeyRecord;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<KeyRecord>(data) else {
        return;
    };
    let wrapped = record.wrapped();
    assert_eq!(wrapped.address, record.address);
    let bytes = match serde_json::to_vec(&record) {
        Ok(bytes) => bytes,
        Err(e) => panic!("a parsed record does not serialise: {e}"),
    };
    match serde_json::from_slice::<KeyRecord>(&bytes) {
        Ok(back) => assert_eq!(back, record, "record changed in a round trip"),
        Err(e) => panic!("a serialised record does not parse: {e}"),
    }
});
