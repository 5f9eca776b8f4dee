//! Fuzzes the attestation-document parser and verifier: documents arrive from the network
//! (clients and the KMS emulator verify what an enclave sends), so they are untrusted bytes.
//!
//! Parsing and verification must not panic, and a document that parses must re-encode to bytes
//! that parse to the same document.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nitro_wallet_attestation::document::SignedDocument;
use nitro_wallet_attestation::{verify, VerifyOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(signed) = SignedDocument::parse(data) {
        match SignedDocument::parse(&signed.to_bytes()) {
            Ok(again) => assert_eq!(again, signed, "document changed in a round trip"),
            Err(e) => panic!("a parsed document does not re-parse: {e}"),
        }
    }
    // At the real documents' time, so mutated real documents get deep into the checks.
    let options = VerifyOptions::default()
        .at_unix_ms(1_665_651_482_136)
        .allow_debug(true);
    let _ = verify(data, &options);
});
