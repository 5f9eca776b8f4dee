//! CMS envelopes against the outside world: real KMS `CiphertextForRecipient` envelopes
//! (`tests/data/cms/`, provenance in its README) and OpenSSL 3 as an independent
//! implementation, in both directions. Also: every prefix, every single-bit flip, wrong keys
//! and re-encodings fail cleanly.
//!
//! The OpenSSL tests need the `openssl` command; without it they fail (they do not skip).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use nitro_wallet_kms::cms::{
    encrypt_envelope, parse_envelope, CmsError, RecipientKey, MAX_ENVELOPE_LEN,
};

const KMS_ENVELOPE: &[u8] = include_bytes!("../data/cms/enclaver_kms_ciphertext_for_recipient.ber");
const KMS_TESTKEY_PEM: &str = include_str!("../data/cms/enclaver_recipient_rsa2048_TESTKEY.pem");
const AWS_SDK_C_ENVELOPE: &[u8] = include_bytes!("../data/cms/aws_sdk_c_cms_test_input.ber");

/// Byte ranges of the variable parts of the KMS envelope (from `openssl asn1parse`).
const SKI: std::ops::Range<usize> = 33..65;
const ENCRYPTED_KEY: std::ops::Range<usize> = 131..387;
const IV: std::ops::Range<usize> = 415..431;
const CONTENT: std::ops::Range<usize> = 435..451;

/// Plaintext lengths for the OpenSSL cross-checks: empty, one byte, around one AES block, and
/// several of our 1024-byte chunks.
const LENGTHS: &[usize] = &[0, 1, 15, 16, 17, 5000];

/// The DER inside a PEM block.
fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .expect("PEM base64")
}

fn kms_test_key() -> RecipientKey {
    RecipientKey::from_pkcs8(&pem_to_der(KMS_TESTKEY_PEM)).expect("TESTKEY loads")
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + 7) as u8).collect()
}

/// Runs `openssl` with `args` in `dir`, panicking with its stderr on failure, and with a clear
/// message when OpenSSL is missing.
fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("the CMS cross-check tests need the `openssl` command (OpenSSL 3) on PATH: {e}")
        });
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A self-signed RSA-2048 certificate and its key, made by OpenSSL in `dir`; extra `req`
/// arguments may set the subjectKeyIdentifier.
fn openssl_recipient(dir: &Path, extra: &[&str]) -> (RecipientKey, PathBuf, Vec<u8>) {
    if !dir.join("key.pem").exists() {
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "key.pem",
            ],
        );
    }
    let mut args = vec![
        "req",
        "-x509",
        "-key",
        "key.pem",
        "-out",
        "cert.pem",
        "-subj",
        "/CN=nitro-wallet-test",
        "-days",
        "1",
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
    let pem = std::fs::read_to_string(dir.join("key.pem")).expect("key.pem");
    let key = RecipientKey::from_pkcs8(&pem_to_der(&pem)).expect("OpenSSL key loads");
    let text = openssl(
        dir,
        &[
            "x509",
            "-in",
            "cert.pem",
            "-noout",
            "-ext",
            "subjectKeyIdentifier",
        ],
    );
    let text = String::from_utf8(text).expect("utf-8");
    let hex_line = text
        .lines()
        .nth(1)
        .expect("SKI line")
        .trim()
        .replace(':', "");
    let ski = hex::decode(hex_line).expect("SKI hex");
    (key, dir.join("cert.pem"), ski)
}

/// `openssl cms -encrypt` of `plain` to `cert.pem` in `dir`, with extra options.
fn openssl_encrypt(dir: &Path, plain: &[u8], options: &[&str]) -> Vec<u8> {
    std::fs::write(dir.join("plain.bin"), plain).expect("write plaintext");
    let mut args = vec![
        "cms",
        "-encrypt",
        "-stream",
        "-binary",
        "-in",
        "plain.bin",
        "-recip",
        "cert.pem",
        "-outform",
        "DER",
        "-out",
        "envelope.ber",
    ];
    args.extend_from_slice(options);
    openssl(dir, &args);
    std::fs::read(dir.join("envelope.ber")).expect("read envelope")
}

const OAEP_SHA256: &[&str] = &[
    "-keyid",
    "-keyopt",
    "rsa_padding_mode:oaep",
    "-keyopt",
    "rsa_oaep_md:sha256",
    "-aes256",
];

#[test]
fn kms_envelope_decrypts_to_hello_world() {
    let key = kms_test_key();
    let plain = key.decrypt_envelope(KMS_ENVELOPE).expect("decrypts");
    assert_eq!(&plain[..], b"Hello, World");
    // KMS addressed it to SHA-256 of the SubjectPublicKeyInfo DER, exactly as we compute it.
    let envelope = parse_envelope(KMS_ENVELOPE).expect("parses");
    assert_eq!(
        envelope.subject_key_identifier(),
        key.subject_key_identifier()
    );
    assert_eq!(&KMS_ENVELOPE[SKI], key.subject_key_identifier());
}

#[test]
fn aws_sdk_c_envelope_parses_and_is_for_another_key() {
    let envelope = parse_envelope(AWS_SDK_C_ENVELOPE).expect("parses");
    assert_eq!(envelope.subject_key_identifier().len(), 32);
    assert_eq!(envelope.encrypted_key().len(), 256);
    assert_eq!(envelope.encrypted_content().len(), 48);
    assert_eq!(
        kms_test_key().decrypt_envelope(AWS_SDK_C_ENVELOPE),
        Err(CmsError::WrongRecipient)
    );
    assert_eq!(
        RecipientKey::generate()
            .expect("key")
            .decrypt_envelope(AWS_SDK_C_ENVELOPE),
        Err(CmsError::WrongRecipient)
    );
}

#[test]
fn our_envelope_has_the_kms_shape_byte_for_byte() {
    let key = kms_test_key();
    let ours = encrypt_envelope(&key.spki_der(), b"Hello, World").expect("encrypts");
    assert_eq!(ours.len(), KMS_ENVELOPE.len());
    for (i, (a, b)) in ours.iter().zip(KMS_ENVELOPE).enumerate() {
        let random = ENCRYPTED_KEY.contains(&i) || IV.contains(&i) || CONTENT.contains(&i);
        assert!(random || a == b, "byte {i}: ours {a:#04x}, KMS {b:#04x}");
    }
    assert_eq!(
        &key.decrypt_envelope(&ours).expect("decrypts")[..],
        b"Hello, World"
    );
}

#[test]
fn openssl_envelopes_decrypt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _cert, cert_ski) = openssl_recipient(dir.path(), &[]);
    // OpenSSL's default subjectKeyIdentifier is the 20-byte SHA-1 key hash, not KMS's SHA-256.
    assert_eq!(cert_ski.len(), 20);
    for &len in LENGTHS {
        let plain = plaintext(len);
        let envelope = openssl_encrypt(dir.path(), &plain, OAEP_SHA256);
        assert_eq!(
            parse_envelope(&envelope)
                .expect("parses")
                .subject_key_identifier(),
            &cert_ski[..]
        );
        let opened = key
            .decrypt_envelope_with_ski(&envelope, &cert_ski)
            .unwrap_or_else(|e| panic!("{len} bytes: {e}"));
        assert_eq!(&opened[..], &plain[..], "{len} bytes");
        // The KMS entry point insists on the SHA-256 identifier.
        assert_eq!(
            key.decrypt_envelope(&envelope),
            Err(CmsError::WrongRecipient)
        );
    }
}

#[test]
fn openssl_envelope_to_a_sha256_ski_certificate_opens_with_the_kms_entry_point() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _, _) = openssl_recipient(dir.path(), &[]);
    let ski_ext = format!(
        "subjectKeyIdentifier={}",
        hex::encode(key.subject_key_identifier())
    );
    let (key, _, cert_ski) = openssl_recipient(dir.path(), &["-addext", &ski_ext]);
    assert_eq!(cert_ski, key.subject_key_identifier());
    let envelope = openssl_encrypt(dir.path(), b"attested", OAEP_SHA256);
    assert_eq!(
        &key.decrypt_envelope(&envelope).expect("decrypts")[..],
        b"attested"
    );
}

#[test]
fn our_envelopes_decrypt_with_openssl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _, _) = openssl_recipient(dir.path(), &[]);
    for &len in LENGTHS.iter().chain(&[1024, 1025, 3000]) {
        let plain = plaintext(len);
        let envelope = encrypt_envelope(&key.spki_der(), &plain).expect("encrypts");
        std::fs::write(dir.path().join("ours.ber"), &envelope).expect("write");
        openssl(
            dir.path(),
            &[
                "cms",
                "-decrypt",
                "-binary",
                "-inform",
                "DER",
                "-in",
                "ours.ber",
                "-inkey",
                "key.pem",
                "-out",
                "opened.bin",
            ],
        );
        let opened = std::fs::read(dir.path().join("opened.bin")).expect("read");
        assert_eq!(opened, plain, "OpenSSL, {len} bytes");
        assert_eq!(
            &key.decrypt_envelope(&envelope).expect("decrypts")[..],
            &plain[..],
            "ours, {len} bytes"
        );
    }
}

#[test]
fn openssl_envelopes_of_other_kinds_are_unsupported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, _, cert_ski) = openssl_recipient(dir.path(), &[]);
    let cases: &[(&str, &[&str])] = &[
        // OAEP with the SHA-1 defaults.
        (
            "oaep-sha1",
            &["-keyid", "-keyopt", "rsa_padding_mode:oaep", "-aes256"],
        ),
        // PKCS#1 v1.5 key transport.
        ("pkcs1", &["-keyid", "-aes256"]),
        // Recipient by issuer and serial number.
        (
            "issuer-serial",
            &[
                "-keyopt",
                "rsa_padding_mode:oaep",
                "-keyopt",
                "rsa_oaep_md:sha256",
                "-aes256",
            ],
        ),
        // Another content cipher.
        (
            "aes128",
            &[
                "-keyid",
                "-keyopt",
                "rsa_padding_mode:oaep",
                "-keyopt",
                "rsa_oaep_md:sha256",
                "-aes128",
            ],
        ),
    ];
    for (name, options) in cases {
        let envelope = openssl_encrypt(dir.path(), b"x", options);
        let result = key.decrypt_envelope_with_ski(&envelope, &cert_ski);
        assert!(
            matches!(result, Err(CmsError::Unsupported(_))),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn der_reencoding_by_openssl_still_decrypts() {
    // A DER re-encoding (definite lengths, one primitive content string) is still valid BER.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("kms.ber"), KMS_ENVELOPE).expect("write");
    openssl(
        dir.path(),
        &[
            "cms", "-cmsout", "-inform", "DER", "-in", "kms.ber", "-outform", "DER", "-out",
            "kms.der",
        ],
    );
    let der = std::fs::read(dir.path().join("kms.der")).expect("read");
    assert_ne!(der, KMS_ENVELOPE);
    assert_eq!(&der[..2], &[0x30, 0x82], "definite length");
    assert_eq!(
        &kms_test_key().decrypt_envelope(&der).expect("decrypts")[..],
        b"Hello, World"
    );
}

#[test]
fn naive_reencodings_fail_cleanly() {
    let key = kms_test_key();
    // Outer indefinite length replaced by the definite length of the whole, EOCs left in.
    let mut definite_with_eocs = vec![0x30, 0x82];
    let inner = &KMS_ENVELOPE[2..];
    definite_with_eocs.extend_from_slice(&(inner.len() as u16).to_be_bytes());
    definite_with_eocs.extend_from_slice(inner);
    // End-of-contents markers dropped, indefinite lengths kept.
    let without_eocs = KMS_ENVELOPE[..KMS_ENVELOPE.len() - 10].to_vec();
    // Indefinite length on the primitive IV OCTET STRING.
    let mut primitive_indefinite = KMS_ENVELOPE.to_vec();
    assert_eq!(primitive_indefinite[IV.start - 2..IV.start], [0x04, 0x10]);
    primitive_indefinite[IV.start - 1] = 0x80;
    // The whole thing wrapped once more (a DER SEQUENCE around the BER).
    let mut wrapped = vec![0x30, 0x82];
    wrapped.extend_from_slice(&(KMS_ENVELOPE.len() as u16).to_be_bytes());
    wrapped.extend_from_slice(KMS_ENVELOPE);
    for (name, bytes) in [
        ("definite with EOCs", definite_with_eocs),
        ("without EOCs", without_eocs),
        ("primitive indefinite", primitive_indefinite),
        ("wrapped", wrapped),
    ] {
        let result = key.decrypt_envelope(&bytes);
        assert!(
            matches!(result, Err(CmsError::Malformed(_))),
            "{name}: {result:?}"
        );
    }
}

#[test]
fn every_prefix_and_any_suffix_fail() {
    let key = kms_test_key();
    for len in 0..KMS_ENVELOPE.len() {
        let result = key.decrypt_envelope(&KMS_ENVELOPE[..len]);
        assert!(
            matches!(result, Err(CmsError::Malformed(_))),
            "prefix {len}: {result:?}"
        );
    }
    let mut longer = KMS_ENVELOPE.to_vec();
    longer.push(0);
    assert!(matches!(
        key.decrypt_envelope(&longer),
        Err(CmsError::Malformed(_))
    ));
    assert_eq!(
        key.decrypt_envelope(&vec![0u8; MAX_ENVELOPE_LEN + 1]),
        Err(CmsError::TooLarge)
    );
}

/// CBC has no integrity: a flipped IV bit flips the same plaintext bit and still decrypts.
/// Every other flip must fail, and none may panic.
#[test]
fn every_single_bit_flip_fails_or_only_flips_plaintext_through_the_iv() {
    let key = kms_test_key();
    let mut malleable = 0;
    for bit in 0..KMS_ENVELOPE.len() * 8 {
        let (i, mask) = (bit / 8, 1u8 << (bit % 8));
        let mut bytes = KMS_ENVELOPE.to_vec();
        bytes[i] ^= mask;
        match key.decrypt_envelope(&bytes) {
            Err(_) => {}
            Ok(plain) => {
                assert!(
                    IV.contains(&i) && i - IV.start < 12,
                    "flip at byte {i} decrypted"
                );
                let offset = i - IV.start;
                let mut expected = b"Hello, World".to_vec();
                expected[offset] ^= mask;
                assert_eq!(&plain[..], &expected[..]);
                malleable += 1;
            }
        }
    }
    assert_eq!(malleable, 12 * 8);
}

#[test]
fn wrong_keys_fail_with_the_generic_error() {
    let other = RecipientKey::generate().expect("key");
    // Addressed to someone else: said so, before any private-key operation.
    assert_eq!(
        other.decrypt_envelope(KMS_ENVELOPE),
        Err(CmsError::WrongRecipient)
    );
    // Forced through anyway, or re-addressed to the other key: one generic error.
    let ski = parse_envelope(KMS_ENVELOPE)
        .expect("parses")
        .subject_key_identifier()
        .to_vec();
    assert_eq!(
        other.decrypt_envelope_with_ski(KMS_ENVELOPE, &ski),
        Err(CmsError::Decrypt)
    );
    let mut readdressed = KMS_ENVELOPE.to_vec();
    readdressed[SKI].copy_from_slice(&other.subject_key_identifier());
    assert_eq!(other.decrypt_envelope(&readdressed), Err(CmsError::Decrypt));
    // A corrupted key-transport ciphertext and a corrupted content block give the same error.
    let key = kms_test_key();
    let mut bad_oaep = KMS_ENVELOPE.to_vec();
    bad_oaep[ENCRYPTED_KEY.start + 10] ^= 0x01;
    assert_eq!(key.decrypt_envelope(&bad_oaep), Err(CmsError::Decrypt));
    let mut bad_padding = KMS_ENVELOPE.to_vec();
    bad_padding[IV.end - 1] ^= 0x04; // last padding byte 0x04 becomes 0x00
    assert_eq!(key.decrypt_envelope(&bad_padding), Err(CmsError::Decrypt));
}

#[test]
fn encryption_refuses_weak_or_non_rsa_recipients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "weak.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkey", "-in", "weak.pem", "-pubout", "-outform", "DER", "-out", "weak.der",
        ],
    );
    openssl(
        d,
        &[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            "ec.pem",
        ],
    );
    openssl(
        d,
        &[
            "pkey", "-in", "ec.pem", "-pubout", "-outform", "DER", "-out", "ec.der",
        ],
    );
    for name in ["weak.der", "ec.der"] {
        let spki = std::fs::read(d.join(name)).expect("read");
        assert!(
            matches!(encrypt_envelope(&spki, b"x"), Err(CmsError::InvalidKey(_))),
            "{name}"
        );
    }
    assert!(matches!(
        encrypt_envelope(b"not a key", b"x"),
        Err(CmsError::InvalidKey(_))
    ));
    // A 1024-bit private key is refused too.
    let weak = std::fs::read_to_string(d.join("weak.pem")).expect("read");
    assert!(matches!(
        RecipientKey::from_pkcs8(&pem_to_der(&weak)),
        Err(CmsError::InvalidKey(_))
    ));
}
