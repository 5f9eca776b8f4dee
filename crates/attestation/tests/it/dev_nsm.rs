//! The dev NSM issues documents in the real format that the verifier accepts with the dev root
//! and refuses with the AWS root.

use std::io::Write;
use std::time::{Duration, SystemTime};

use nitro_wallet_attestation::document::SignedDocument;
use nitro_wallet_attestation::nsm::{Nsm, NsmError};
use nitro_wallet_attestation::{
    pcr0_of_file, verify, AttestationError, DevCa, DevNsm, VerifyOptions,
};

fn binary() -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(b"\x7fELF pretend enclave binary")
        .expect("write");
    file
}

#[test]
fn pcr0_is_the_sha384_of_the_file() {
    let file = binary();
    let pcr0 = pcr0_of_file(file.path()).expect("hashes");
    let expected = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA384,
        b"\x7fELF pretend enclave binary",
    );
    assert_eq!(pcr0.as_slice(), expected.as_ref());
    assert!(matches!(
        pcr0_of_file(std::path::Path::new("/nonexistent/enclave")),
        Err(NsmError::Io { .. })
    ));
}

#[test]
fn dev_documents_round_trip() {
    let file = binary();
    let nsm = DevNsm::for_binary(DevCa::generate().expect("CA"), file.path()).expect("dev NSM");
    assert!(nsm.is_dev());
    let pcr0 = pcr0_of_file(file.path()).expect("hashes");
    let public_key = b"0\x82\x01\x22 an RSA SPKI would go here".to_vec();
    let nonce = nsm.random(32).expect("random");
    let bytes = nsm
        .attestation(Some(&public_key), Some(b"user data"), Some(&nonce))
        .expect("document");

    let options = VerifyOptions::with_root(nsm.ca().root_der().to_vec())
        .expect_pcr(0, pcr0.to_vec())
        .expect_nonce(nonce.clone())
        .expect_public_key(public_key.clone())
        .expect_user_data(b"user data".to_vec());
    let verified = verify(&bytes, &options).expect("dev document verifies with the dev root");
    assert!(!verified.debug);
    let doc = verified.document;
    assert_eq!(doc.pcrs[&0], pcr0);
    assert_eq!(
        doc.pcrs.keys().copied().collect::<Vec<_>>(),
        (0..=15).collect::<Vec<_>>()
    );
    assert!(doc
        .pcrs
        .iter()
        .filter(|(i, _)| **i != 0)
        .all(|(_, v)| *v == [0u8; 48]));
    assert_eq!(doc.nonce, Some(nonce));
    assert_eq!(doc.public_key, Some(public_key));
    assert_eq!(doc.user_data.as_deref(), Some(&b"user data"[..]));
    assert!(doc.module_id.starts_with("i-dev-enc"), "{}", doc.module_id);
    assert_eq!(doc.module_id, nsm.module_id());
    assert_eq!(doc.cabundle.len(), 2);
    assert_eq!(doc.cabundle[0], nsm.ca().root_der());
    let now_ms = u64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis(),
    )
    .expect("fits");
    assert!(doc.timestamp <= now_ms && now_ms - doc.timestamp < 60_000);

    // Exactly the real encoding: re-encoding the parsed document gives the same bytes.
    assert_eq!(
        SignedDocument::parse(&bytes).expect("parses").to_bytes(),
        bytes
    );
}

#[test]
fn dev_documents_are_refused_by_the_aws_root_and_other_checks() {
    let ca = DevCa::generate().expect("CA");
    let nsm = DevNsm::new(ca, [0x11; 48])
        .expect("dev NSM")
        .with_pcr(3, [0x33; 48])
        .expect("pcr");
    let bytes = nsm.attestation(None, None, Some(b"n1")).expect("document");
    assert_eq!(
        verify(&bytes, &VerifyOptions::default()),
        Err(AttestationError::UntrustedRoot)
    );

    let root = nsm.ca().root_der().to_vec();
    let options = VerifyOptions::with_root(root.clone()).expect_pcr(3, vec![0x33; 48]);
    let verified = verify(&bytes, &options).expect("verifies");
    assert_eq!(verified.document.nonce.as_deref(), Some(&b"n1"[..]));
    assert_eq!(
        verify(
            &bytes,
            &VerifyOptions::with_root(root.clone()).expect_pcr(0, vec![0x12; 48])
        ),
        Err(AttestationError::PcrMismatch { index: 0 })
    );
    assert_eq!(
        verify(
            &bytes,
            &VerifyOptions::with_root(root.clone()).expect_nonce(b"n2".to_vec())
        ),
        Err(AttestationError::NonceMismatch)
    );
    // The leaf lives three hours.
    let later = SystemTime::now() + Duration::from_secs(4 * 3600);
    assert!(matches!(
        verify(&bytes, &VerifyOptions::with_root(root.clone()).at(later)),
        Err(AttestationError::Expired { depth: 0, .. })
    ));
    // Another dev CA is another root.
    let other = DevCa::generate().expect("CA");
    assert_eq!(
        verify(&bytes, &VerifyOptions::with_root(other.root_der().to_vec())),
        Err(AttestationError::UntrustedRoot)
    );
    assert!(nsm.with_pcr(16, [0; 48]).is_err());
}

#[test]
fn a_zero_pcr0_dev_document_is_debug_mode() {
    let nsm = DevNsm::new(DevCa::generate().expect("CA"), [0; 48]).expect("dev NSM");
    let bytes = nsm.attestation(None, None, None).expect("document");
    let options = VerifyOptions::with_root(nsm.ca().root_der().to_vec());
    assert_eq!(verify(&bytes, &options), Err(AttestationError::DebugMode));
    assert!(
        verify(&bytes, &options.allow_debug(true))
            .expect("allowed")
            .debug
    );
}

#[test]
fn dev_documents_at_a_given_time() {
    let nsm = DevNsm::new(DevCa::generate().expect("CA"), [1; 48]).expect("dev NSM");
    let at = SystemTime::now() - Duration::from_secs(600);
    let bytes = nsm.attestation_at(at, None, None, None).expect("document");
    let root = nsm.ca().root_der().to_vec();
    let verified = verify(&bytes, &VerifyOptions::with_root(root).at(at)).expect("verifies");
    let at_ms = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    assert_eq!(u128::from(verified.document.timestamp), at_ms);
}

#[test]
fn bounds_are_enforced_like_the_nsm() {
    let nsm = DevNsm::new(DevCa::generate().expect("CA"), [1; 48]).expect("dev NSM");
    let big = vec![0u8; 1025];
    assert!(matches!(
        nsm.attestation(None, Some(&big), None),
        Err(NsmError::InputTooLarge {
            field: "user_data",
            ..
        })
    ));
    assert!(matches!(
        nsm.attestation(None, None, Some(&big)),
        Err(NsmError::InputTooLarge { field: "nonce", .. })
    ));
    let max = vec![0xab; 1024];
    let bytes = nsm
        .attestation(Some(&max), Some(&max), Some(&max))
        .expect("at the bound");
    verify(
        &bytes,
        &VerifyOptions::with_root(nsm.ca().root_der().to_vec()),
    )
    .expect("verifies");
    assert_eq!(nsm.random(0).expect("empty").len(), 0);
    let a = nsm.random(64).expect("random");
    assert_eq!(a.len(), 64);
    assert_ne!(a, nsm.random(64).expect("random"));
}

#[test]
fn dev_ca_persists_and_is_shared() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = DevCa::load_or_create(dir.path()).expect("created");
    let second = DevCa::load_or_create(dir.path()).expect("loaded");
    assert_eq!(first.root_der(), second.root_der());
    assert_eq!(
        DevCa::load_root(dir.path()).expect("root"),
        first.root_der()
    );
    let root_pem = std::fs::read_to_string(dir.path().join("dev-ca-root.pem")).expect("root file");
    assert_eq!(
        pem::parse(root_pem).expect("PEM").contents(),
        first.root_der()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("dev-ca.pem"))
            .expect("meta")
            .permissions();
        assert_eq!(mode.mode() & 0o077, 0, "the CA key file is private");
    }

    // A document issued by the enclave's copy verifies with the emulator's root.
    let enclave = DevNsm::new(second, [9; 48]).expect("dev NSM");
    let bytes = enclave
        .attestation(Some(b"pk"), None, None)
        .expect("document");
    let emulator_root = DevCa::load_root(dir.path()).expect("root");
    verify(&bytes, &VerifyOptions::with_root(emulator_root)).expect("verifies");

    // save + load of an in-memory CA.
    let other_dir = tempfile::tempdir().expect("temp dir");
    let generated = DevCa::generate().expect("CA");
    generated.save(other_dir.path()).expect("saved");
    assert_eq!(
        DevCa::load(other_dir.path()).expect("loads").root_der(),
        generated.root_der()
    );
}

#[test]
fn concurrent_creation_ends_with_one_ca() {
    let dir = tempfile::tempdir().expect("temp dir");
    let roots: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    DevCa::load_or_create(dir.path())
                        .expect("CA")
                        .root_der()
                        .to_vec()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(roots.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn broken_dev_ca_files_fail_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    assert!(matches!(DevCa::load(dir.path()), Err(NsmError::Io { .. })));
    std::fs::write(dir.path().join("dev-ca.pem"), "not pem").expect("write");
    assert!(matches!(DevCa::load(dir.path()), Err(NsmError::DevCa(_))));
    assert!(matches!(
        DevCa::load_or_create(dir.path()),
        Err(NsmError::DevCa(_))
    ));

    // Files from two different CAs: the intermediate key does not match.
    let a = DevCa::generate().expect("CA");
    let b = DevCa::generate().expect("CA");
    let a_dir = tempfile::tempdir().expect("temp dir");
    let b_dir = tempfile::tempdir().expect("temp dir");
    a.save(a_dir.path()).expect("save");
    b.save(b_dir.path()).expect("save");
    let a_blocks = pem::parse_many(std::fs::read(a_dir.path().join("dev-ca.pem")).expect("read"))
        .expect("pem");
    let b_blocks = pem::parse_many(std::fs::read(b_dir.path().join("dev-ca.pem")).expect("read"))
        .expect("pem");
    let mixed = pem::encode_many(&[
        a_blocks[0].clone(),
        a_blocks[1].clone(),
        b_blocks[2].clone(),
    ]);
    std::fs::write(dir.path().join("dev-ca.pem"), mixed).expect("write");
    let err = DevCa::load(dir.path()).expect_err("inconsistent");
    assert!(err.to_string().contains("inconsistent"), "{err}");
}
