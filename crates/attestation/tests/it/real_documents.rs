//! Known-answer tests with real attestation documents produced by AWS Nitro hardware
//! (provenance in `tests/data/README.md`), against the embedded AWS root.

use std::time::SystemTime;

use nitro_wallet_attestation::document::SignedDocument;
use nitro_wallet_attestation::{verify, AttestationError, DevCa, VerifyOptions};

use crate::{data, DEBUG, PROD};

const PROD_PCR0: &str = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b";
/// 2022-10-13T08:58:02.136Z
const PROD_TIMESTAMP_MS: u64 = 1_665_651_482_136;
/// 2022-10-12T13:50:06.081Z
const DEBUG_TIMESTAMP_MS: u64 = 1_665_582_606_081;

/// Options to verify `name` at its own timestamp against the AWS root.
fn at_own_time(name: &str) -> VerifyOptions {
    let signed = SignedDocument::parse(&data(name)).expect("parses");
    VerifyOptions::default()
        .at_unix_ms(signed.document.timestamp)
        .allow_debug(name == DEBUG)
}

#[test]
fn documents_parse_with_their_known_fields() {
    let prod = SignedDocument::parse(&data(PROD)).expect("prod parses");
    assert_eq!(prod.document.timestamp, PROD_TIMESTAMP_MS);
    assert_eq!(hex::encode(prod.document.pcr(0).expect("PCR0")), PROD_PCR0);
    assert_eq!(prod.document.cabundle.len(), 4);
    assert_eq!(prod.document.nonce.as_ref().map(Vec::len), Some(256));
    assert_eq!(prod.document.public_key, None);
    assert_eq!(prod.document.user_data, None);
    assert!(prod.document.module_id.starts_with("i-") && prod.document.module_id.contains("-enc"));
    assert!(!prod.document.is_debug());

    let debug = SignedDocument::parse(&data(DEBUG)).expect("debug parses");
    assert_eq!(debug.document.timestamp, DEBUG_TIMESTAMP_MS);
    assert!(debug.document.is_debug());
    assert_eq!(
        debug.document.public_key.as_deref(),
        Some(&b"my super secret key"[..])
    );
    assert_eq!(
        debug.document.user_data.as_deref(),
        Some(&b"hello, world!"[..])
    );
}

#[test]
fn documents_reencode_byte_for_byte() {
    // Our encoder writes what the NSM writes: a parsed document serializes to the same bytes.
    for name in [PROD, DEBUG] {
        let bytes = data(name);
        let signed = SignedDocument::parse(&bytes).expect("parses");
        assert_eq!(signed.to_bytes(), bytes, "{name}");
        assert_eq!(signed.document.to_payload(), signed.payload, "{name}");
    }
}

#[test]
fn prod_document_verifies_at_its_own_time() {
    let verified = verify(&data(PROD), &at_own_time(PROD)).expect("verifies");
    assert!(!verified.debug);
    assert_eq!(hex::encode(verified.document.pcrs[&0]), PROD_PCR0);
}

#[test]
fn prod_document_verifies_with_its_expected_pcr0_and_nonce() {
    let signed = SignedDocument::parse(&data(PROD)).expect("parses");
    let nonce = signed.document.nonce.clone().expect("has a nonce");
    let options = at_own_time(PROD)
        .expect_pcr(0, hex::decode(PROD_PCR0).expect("hex"))
        .expect_nonce(nonce.clone());
    verify(&data(PROD), &options).expect("verifies");

    let mut other = nonce;
    other[0] ^= 1;
    let options = at_own_time(PROD).expect_nonce(other);
    assert_eq!(
        verify(&data(PROD), &options),
        Err(AttestationError::NonceMismatch)
    );
    let options = at_own_time(PROD).expect_public_key(b"a key".to_vec());
    assert_eq!(
        verify(&data(PROD), &options),
        Err(AttestationError::PublicKeyMismatch)
    );
}

#[test]
fn debug_document_is_reported_as_debug() {
    let verified = verify(&data(DEBUG), &at_own_time(DEBUG)).expect("verifies with allow_debug");
    assert!(verified.debug);
    assert_eq!(
        verified.document.public_key.as_deref(),
        Some(&b"my super secret key"[..])
    );
    assert_eq!(
        verified.document.user_data.as_deref(),
        Some(&b"hello, world!"[..])
    );
    let options = at_own_time(DEBUG)
        .expect_public_key(b"my super secret key".to_vec())
        .expect_user_data(b"hello, world!".to_vec());
    verify(&data(DEBUG), &options).expect("bindings match");

    let refused = verify(&data(DEBUG), &at_own_time(DEBUG).allow_debug(false));
    assert_eq!(refused, Err(AttestationError::DebugMode));
    assert!(refused.unwrap_err().to_string().contains("debug mode"));
}

#[test]
fn both_documents_are_expired_now() {
    for name in [PROD, DEBUG] {
        let options = at_own_time(name).at(SystemTime::now());
        match verify(&data(name), &options) {
            Err(AttestationError::Expired { depth, not_after }) => {
                assert!(
                    not_after * 1000 < PROD_TIMESTAMP_MS + 365 * 86_400_000,
                    "{name}"
                );
                // The leaf (3 hours) or an intermediate (weeks) expired, never the root.
                assert!(depth < 4, "{name}: depth {depth}");
            }
            other => panic!("{name}: expected Expired, got {other:?}"),
        }
    }
}

#[test]
fn leaf_is_expired_hours_later_and_not_yet_valid_before() {
    let options = at_own_time(PROD).at_unix_ms(PROD_TIMESTAMP_MS + 4 * 3_600_000);
    assert!(matches!(
        verify(&data(PROD), &options),
        Err(AttestationError::Expired { depth: 0, .. })
    ));
    let options = at_own_time(PROD).at_unix_ms(PROD_TIMESTAMP_MS - 3_600_000);
    assert!(matches!(
        verify(&data(PROD), &options),
        Err(AttestationError::NotYetValid { depth: 0, .. })
    ));
}

/// The range of the payload inside the document bytes.
fn payload_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let signed = SignedDocument::parse(bytes).expect("parses");
    let start = bytes
        .windows(signed.payload.len())
        .position(|w| w == signed.payload.as_slice())
        .expect("payload is in the document");
    start..start + signed.payload.len()
}

#[test]
fn a_flipped_payload_byte_breaks_the_signature() {
    for name in [PROD, DEBUG] {
        let mut bytes = data(name);
        let signed = SignedDocument::parse(&bytes).expect("parses");
        // Flip a byte inside the nonce / user data region: still a valid payload, so the
        // failure is the signature, not the parser.
        let target = signed
            .document
            .nonce
            .as_ref()
            .or(signed.document.user_data.as_ref())
            .expect("has bound data")
            .clone();
        let range = payload_range(&bytes);
        let offset = range.start
            + bytes[range.clone()]
                .windows(target.len())
                .position(|w| w == target.as_slice())
                .expect("bound data is in the payload");
        bytes[offset] ^= 0x01;
        assert_eq!(
            verify(&bytes, &at_own_time(name)),
            Err(AttestationError::BadSignature),
            "{name}"
        );
    }
}

#[test]
fn a_flipped_pcr_byte_breaks_the_signature() {
    let mut bytes = data(PROD);
    let pcr0 = hex::decode(PROD_PCR0).expect("hex");
    let offset = bytes
        .windows(48)
        .position(|w| w == pcr0.as_slice())
        .expect("PCR0 present");
    bytes[offset + 10] ^= 0x80;
    assert_eq!(
        verify(&bytes, &at_own_time(PROD)),
        Err(AttestationError::BadSignature)
    );
}

#[test]
fn a_flipped_signature_byte_is_refused() {
    for name in [PROD, DEBUG] {
        for position in [0, 47, 48, 95] {
            let mut bytes = data(name);
            let len = bytes.len();
            // The signature is the last 96 bytes of the document.
            bytes[len - 96 + position] ^= 0x01;
            assert_eq!(
                verify(&bytes, &at_own_time(name)),
                Err(AttestationError::BadSignature),
                "{name} byte {position}"
            );
        }
    }
}

#[test]
fn another_root_is_untrusted() {
    let dev = DevCa::generate().expect("dev CA");
    for name in [PROD, DEBUG] {
        let mut options = at_own_time(name);
        options.root = dev.root_der().to_vec();
        assert_eq!(
            verify(&data(name), &options),
            Err(AttestationError::UntrustedRoot),
            "{name}"
        );
    }
}

#[test]
fn a_wrong_pcr0_is_refused() {
    let mut wrong = hex::decode(PROD_PCR0).expect("hex");
    wrong[47] ^= 1;
    let options = at_own_time(PROD).expect_pcr(0, wrong.clone());
    assert_eq!(
        verify(&data(PROD), &options),
        Err(AttestationError::PcrMismatch { index: 0 })
    );
    let options = at_own_time(DEBUG).expect_pcr(0, wrong);
    assert_eq!(
        verify(&data(DEBUG), &options),
        Err(AttestationError::PcrMismatch { index: 0 })
    );
    let options = at_own_time(PROD).expect_pcr(0, vec![0u8; 32]);
    assert_eq!(
        verify(&data(PROD), &options),
        Err(AttestationError::PcrMismatch { index: 0 })
    );
    let options = at_own_time(PROD).expect_pcr(31, vec![0u8; 48]);
    assert!(matches!(
        verify(&data(PROD), &options),
        Err(AttestationError::PcrMissing { index: 31 }
            | AttestationError::PcrMismatch { index: 31 })
    ));
}

#[test]
fn a_tampered_chain_is_refused() {
    let original = SignedDocument::parse(&data(PROD)).expect("parses");

    // Drop the leaf's issuer: the leaf is then not issued by the next certificate.
    let mut signed = original.clone();
    signed.document.cabundle.remove(3);
    signed.payload = signed.document.to_payload();
    let result = verify(&signed.to_bytes(), &at_own_time(PROD));
    assert_eq!(result, Err(AttestationError::ChainBroken { depth: 0 }));

    // Drop an intermediate higher up: the break is at depth 1.
    let mut signed = original.clone();
    signed.document.cabundle.remove(2);
    signed.payload = signed.document.to_payload();
    let result = verify(&signed.to_bytes(), &at_own_time(PROD));
    assert_eq!(result, Err(AttestationError::ChainBroken { depth: 1 }));

    // Put the intermediates in the wrong order.
    let mut signed = original.clone();
    signed.document.cabundle.swap(1, 2);
    signed.payload = signed.document.to_payload();
    assert!(matches!(
        verify(&signed.to_bytes(), &at_own_time(PROD)),
        Err(AttestationError::ChainBroken { .. })
    ));

    // Corrupt the leaf certificate's signature (its last bytes).
    let mut signed = original.clone();
    let last = signed.document.certificate.len() - 1;
    signed.document.certificate[last] ^= 0x01;
    signed.payload = signed.document.to_payload();
    let result = verify(&signed.to_bytes(), &at_own_time(PROD));
    assert!(
        matches!(
            result,
            Err(AttestationError::ChainBroken { depth: 0 }
                | AttestationError::BadCertificate { depth: 0, .. })
        ),
        "{result:?}"
    );

    // Swap the leaf for an intermediate: the chain may link, but the document's signature
    // does not verify with that key (and the order is wrong anyway).
    let mut signed = original;
    signed.document.certificate = signed.document.cabundle[3].clone();
    signed.payload = signed.document.to_payload();
    assert!(verify(&signed.to_bytes(), &at_own_time(PROD)).is_err());
}
