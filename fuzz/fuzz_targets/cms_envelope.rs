//! Fuzzes the CMS envelope parser and decryption: KMS `CiphertextForRecipient` reaches the
//! enclave through the host and the network, so every byte of it is untrusted.
//!
//! The recipient is the published TESTKEY that opens the real KMS envelope in
//! `crates/kms/tests/data/cms/` (a good seed, with `aws_sdk_c_cms_test_input.ber`).
//!
//! Checks: nothing panics; decryption fails exactly when parsing fails, with the same error;
//! once an envelope parses and is addressed to the key, the only possible failure is the
//! generic `CmsError::Decrypt` (no detail after the private key is used).

#![no_main]

use std::sync::OnceLock;

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use nitro_wallet_kms::cms::{parse_envelope, CmsError, RecipientKey};

const TESTKEY_PEM: &str =
    include_str!("../../crates/kms/tests/data/cms/enclaver_recipient_rsa2048_TESTKEY.pem");

fn key() -> &'static RecipientKey {
    static KEY: OnceLock<RecipientKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let body: String = TESTKEY_PEM
            .lines()
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .expect("TESTKEY base64");
        RecipientKey::from_pkcs8(&der).expect("TESTKEY loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let key = key();
    let parsed = parse_envelope(data);
    let decrypted = key.decrypt_envelope(data);
    match parsed {
        Err(parse_error) => {
            assert_eq!(decrypted.err(), Some(parse_error), "decrypt and parse disagree");
        }
        Ok(envelope) => {
            let ours = envelope.subject_key_identifier() == key.subject_key_identifier();
            match &decrypted {
                Ok(_) => assert!(ours, "opened an envelope addressed to another key"),
                Err(CmsError::WrongRecipient) => assert!(!ours),
                Err(CmsError::Decrypt) => assert!(ours),
                Err(e) => panic!("a parsed envelope failed with {e:?}"),
            }
            // Forced through with its own identifier: open or the one generic error.
            let ski = envelope.subject_key_identifier().to_vec();
            match key.decrypt_envelope_with_ski(data, &ski) {
                Ok(plain) => {
                    if let Ok(first) = &decrypted {
                        assert_eq!(&plain[..], &first[..]);
                    }
                }
                Err(CmsError::Decrypt) => assert!(decrypted.is_err()),
                Err(e) => panic!("a parsed envelope failed with {e:?}"),
            }
        }
    }
});
