//! Property tests: the parser and the verifier never panic, whatever the bytes.

use nitro_wallet_attestation::document::SignedDocument;
use nitro_wallet_attestation::{verify, VerifyOptions};
use proptest::prelude::*;

use crate::{data, DEBUG, PROD};

fn check(bytes: &[u8]) {
    if let Ok(signed) = SignedDocument::parse(bytes) {
        // Whatever parses re-encodes to something that parses to the same document.
        let again = SignedDocument::parse(&signed.to_bytes()).expect("re-encoding parses");
        assert_eq!(again, signed);
    }
    let options = VerifyOptions::default()
        .at_unix_ms(1_665_651_482_136)
        .allow_debug(true);
    let _ = verify(bytes, &options);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        check(&bytes);
    }

    #[test]
    fn mutated_documents_never_panic(
        which in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut bytes = data(if which { PROD } else { DEBUG });
        for (index, value, kind) in edits {
            if bytes.is_empty() {
                break;
            }
            let at = index.index(bytes.len());
            match kind {
                0 => bytes[at] = value,
                1 => bytes[at] ^= 1 << (value % 8),
                2 => bytes.insert(at, value),
                _ => { bytes.remove(at); }
            }
        }
        if let Some(cut) = cut {
            let len = cut.index(bytes.len() + 1);
            bytes.truncate(len);
        }
        check(&bytes);
    }
}

#[test]
fn every_truncation_is_refused_cleanly() {
    for name in [PROD, DEBUG] {
        let bytes = data(name);
        for len in 0..bytes.len() {
            assert!(
                SignedDocument::parse(&bytes[..len]).is_err(),
                "{name} truncated to {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            SignedDocument::parse(&longer).is_err(),
            "{name} with a trailing byte"
        );
    }
}
