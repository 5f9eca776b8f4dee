//! Attested calls: `KmsClient::decrypt_for_recipient` / `generate_random_for_recipient` (the
//! real SDK) against the emulator's attestation policy, with documents from a dev NSM; and the
//! client's fail-closed handling of a KMS that answers with `Plaintext`.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use axum::http::header;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use nitro_wallet_attestation::{pcr0_of_file, DevCa, DevNsm, Nsm, Pcr, PCR_LEN};
use nitro_wallet_kms::cms::{self, RecipientKey};
use nitro_wallet_kms::emulator::{AttestationPolicy, Emulator, DEFAULT_ALIAS, POLICY_FILE};
use nitro_wallet_kms::{EncryptionContext, KmsClient, KmsError};
use serde_json::json;
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::common::{client_for, ctx, test_credentials};
use crate::protocol::{assert_error, post};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// An emulator served on a local port while the test keeps its handle (to change the policy).
struct Live {
    emulator: Emulator,
    endpoint: String,
    stop: Option<oneshot::Sender<()>>,
}

impl Live {
    async fn serve(emulator: Emulator) -> Live {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let router = emulator.router();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Live {
            emulator,
            endpoint,
            stop: Some(stop),
        }
    }

    fn client(&self) -> KmsClient {
        client_for(
            &self.endpoint,
            self.emulator.region(),
            Some(test_credentials()),
        )
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A dev CA in a temp dir, a dev NSM measuring an "enclave binary", and an emulator whose
/// policy requires attestation and pins that binary's PCR0.
struct Fixture {
    dir: TempDir,
    live: Live,
    kms: KmsClient,
    nsm: DevNsm,
    pcr0: Pcr,
    root_pem: String,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = DevCa::load_or_create(&dir.path().join("ca")).expect("dev CA");
        let root_pem = ca.root_pem();
        let binary = write_binary(dir.path(), "enclave-v1", b"enclave image, version 1");
        let pcr0 = pcr0_of_file(&binary).expect("pcr0");
        let nsm = DevNsm::new(ca, pcr0).expect("dev NSM");
        let emulator = Emulator::open(&dir.path().join("kms")).expect("emulator");
        emulator
            .set_policy(AttestationPolicy {
                require_attestation: true,
                root_pem: root_pem.clone(),
                // Upper case: the comparison is case-insensitive, as with StringEqualsIgnoreCase.
                image_sha384: Some(hex::encode_upper(pcr0)),
                pcrs: Default::default(),
            })
            .expect("policy");
        let live = Live::serve(emulator).await;
        let kms = live.client();
        Fixture {
            dir,
            live,
            kms,
            nsm,
            pcr0,
            root_pem,
        }
    }

    /// A dev NSM of the same CA with another PCR0 (a rebuilt enclave).
    fn nsm_with_pcr0(&self, pcr0: Pcr) -> DevNsm {
        let ca = DevCa::load(&self.dir.path().join("ca")).expect("reload dev CA");
        DevNsm::new(ca, pcr0).expect("dev NSM")
    }

    fn policy_with_image(&self, pcr0: &Pcr) -> AttestationPolicy {
        AttestationPolicy {
            require_attestation: true,
            root_pem: self.root_pem.clone(),
            image_sha384: Some(hex::encode(pcr0)),
            pcrs: Default::default(),
        }
    }

    async fn wrapped_secret(&self, context: &EncryptionContext) -> Vec<u8> {
        self.kms
            .encrypt(DEFAULT_ALIAS, SECRET, context)
            .await
            .expect("encrypt (not gated by attestation)")
    }
}

fn write_binary(dir: &Path, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, contents).expect("write binary");
    path
}

fn document(nsm: &DevNsm, recipient: &RecipientKey) -> Vec<u8> {
    nsm.attestation(Some(&recipient.spki_der()), None, None)
        .expect("attestation document")
}

fn assert_policy_denied(err: &KmsError, reason: &str) {
    match err {
        KmsError::Denied(message) => {
            assert!(
                message.contains("AccessDeniedException")
                    && message.contains("attestation policy:")
                    && message.contains(reason),
                "{message}"
            );
            assert!(!message.contains(&hex::encode(SECRET)), "{message}");
        }
        other => panic!("expected an attestation policy denial ({reason}), got {other:?}"),
    }
}

#[tokio::test]
async fn attested_decrypt_and_random_round_trip() {
    let f = Fixture::new().await;
    let context = ctx(&[("address", "0x52908400098527886E0F7030069857D2E4169EE7")]);
    let blob = f.wrapped_secret(&context).await;
    let recipient = RecipientKey::generate().expect("recipient key");
    let doc = document(&f.nsm, &recipient);

    let arn = f.live.emulator.key_arn();
    for key in [DEFAULT_ALIAS, f.live.emulator.key_id(), arn.as_str()] {
        let plain = f
            .kms
            .decrypt_for_recipient(Some(key), &blob, &context, &recipient, &doc)
            .await
            .expect("attested decrypt");
        assert_eq!(&plain[..], SECRET);
    }
    // The context still binds: a wrong one fails as without Recipient.
    let err = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &ctx(&[]), &recipient, &doc)
        .await
        .expect_err("wrong context");
    assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");

    let random = f
        .kms
        .generate_random_for_recipient(48, &recipient, &doc)
        .await
        .expect("attested random");
    assert_eq!(random.len(), 48);
    let again = f
        .kms
        .generate_random_for_recipient(48, &recipient, &doc)
        .await
        .expect("attested random");
    assert_ne!(&random[..], &again[..]);
}

#[tokio::test]
async fn require_attestation_denies_plain_calls() {
    let f = Fixture::new().await;
    let context = ctx(&[("a", "b")]);
    let blob = f.wrapped_secret(&context).await;
    let err = f
        .kms
        .decrypt(Some(DEFAULT_ALIAS), &blob, &context)
        .await
        .expect_err("plain decrypt");
    assert_policy_denied(&err, "requires a Recipient");
    assert_eq!(err.code(), "kms_denied");
    let err = f.kms.generate_random(32).await.expect_err("plain random");
    assert_policy_denied(&err, "requires a Recipient");

    // Without the requirement, plain calls work as before.
    let mut policy = f.live.emulator.policy();
    policy.require_attestation = false;
    f.live.emulator.set_policy(policy).expect("set policy");
    let plain = f
        .kms
        .decrypt(Some(DEFAULT_ALIAS), &blob, &context)
        .await
        .expect("plain decrypt allowed");
    assert_eq!(&plain[..], SECRET);
    assert_eq!(f.kms.generate_random(32).await.expect("random").len(), 32);
}

#[tokio::test]
async fn rebuilt_enclave_is_refused_until_the_policy_names_it() {
    let f = Fixture::new().await;
    let context = ctx(&[("address", "0xabc")]);
    let blob = f.wrapped_secret(&context).await;
    let recipient = RecipientKey::generate().expect("recipient key");

    let rebuilt = write_binary(f.dir.path(), "enclave-v2", b"enclave image, version 2");
    let new_pcr0 = pcr0_of_file(&rebuilt).expect("pcr0");
    assert_ne!(new_pcr0, f.pcr0);
    let rebuilt_nsm = f.nsm_with_pcr0(new_pcr0);
    let doc = document(&rebuilt_nsm, &recipient);

    let err = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &recipient, &doc)
        .await
        .expect_err("new PCR0 refused");
    assert_policy_denied(&err, "PCR0 mismatch");
    // The message names the condition and both measurements (public values), so the operator
    // sees what to put in the policy.
    let message = err.to_string();
    assert!(
        message.contains("kms:RecipientAttestation:ImageSha384"),
        "{message}"
    );
    assert!(message.contains(&hex::encode(new_pcr0)), "{message}");
    let err = f
        .kms
        .generate_random_for_recipient(16, &recipient, &doc)
        .await
        .expect_err("new PCR0 refused");
    assert_policy_denied(&err, "PCR0 mismatch");

    // The policy names the new measurement: the rebuilt enclave works, the old one is refused.
    f.live
        .emulator
        .set_policy(f.policy_with_image(&new_pcr0))
        .expect("set policy");
    let plain = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &recipient, &doc)
        .await
        .expect("new PCR0 accepted");
    assert_eq!(&plain[..], SECRET);
    let old_doc = document(&f.nsm, &recipient);
    let err = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &recipient, &old_doc)
        .await
        .expect_err("old PCR0 refused now");
    assert_policy_denied(&err, "PCR0 mismatch");

    // The `pcrs` form of the same condition, in lower case, works the same way.
    let mut policy = f.policy_with_image(&f.pcr0);
    policy.image_sha384 = None;
    policy.pcrs.insert(0, hex::encode(f.pcr0));
    f.live.emulator.set_policy(policy).expect("set policy");
    let plain = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &recipient, &old_doc)
        .await
        .expect("old PCR0 accepted again");
    assert_eq!(&plain[..], SECRET);
    let err = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &recipient, &doc)
        .await
        .expect_err("PCR0 condition");
    assert_policy_denied(&err, "kms:RecipientAttestation:PCR0");

    // A condition on another PCR (dev documents carry zero PCR1..15).
    let mut policy = f.policy_with_image(&f.pcr0);
    policy.pcrs.insert(8, hex::encode([0x11u8; PCR_LEN]));
    f.live.emulator.set_policy(policy).expect("set policy");
    let err = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &recipient, &old_doc)
        .await
        .expect_err("PCR8 condition");
    assert_policy_denied(&err, "PCR8 mismatch");
}

#[tokio::test]
async fn untrusted_expired_and_debug_documents_are_refused() {
    let f = Fixture::new().await;
    let context = ctx(&[]);
    let blob = f.wrapped_secret(&context).await;
    let recipient = RecipientKey::generate().expect("recipient key");
    let decrypt = |doc: Vec<u8>| {
        let (kms, blob, context, recipient) = (&f.kms, &blob, &context, &recipient);
        async move {
            kms.decrypt_for_recipient(Some(DEFAULT_ALIAS), blob, context, recipient, &doc)
                .await
                .expect_err("refused")
        }
    };

    // Signed by another CA, with the right PCR0.
    let other_ca = DevCa::generate().expect("other CA");
    let foreign = DevNsm::new(other_ca, f.pcr0).expect("dev NSM");
    let err = decrypt(document(&foreign, &recipient)).await;
    assert_policy_denied(&err, "pinned root");

    // Issued five hours ago: the leaf certificate (three hours) has expired.
    let stale = f
        .nsm
        .attestation_at(
            SystemTime::now() - Duration::from_secs(5 * 3600),
            Some(&recipient.spki_der()),
            None,
            None,
        )
        .expect("document");
    let err = decrypt(stale).await;
    assert_policy_denied(&err, "expired");

    // A debug-mode enclave (PCR0..2 zero), even if the policy named its zero PCR0.
    let debug_nsm = f.nsm_with_pcr0([0u8; PCR_LEN]);
    f.live
        .emulator
        .set_policy(f.policy_with_image(&[0u8; PCR_LEN]))
        .expect("set policy");
    let err = decrypt(document(&debug_nsm, &recipient)).await;
    assert_policy_denied(&err, "debug mode");
    f.live
        .emulator
        .set_policy(f.policy_with_image(&f.pcr0))
        .expect("set policy");

    // A flipped byte in the signature.
    let mut tampered = document(&f.nsm, &recipient);
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let err = decrypt(tampered).await;
    assert_policy_denied(&err, "signature");

    // Not a document at all.
    let err = decrypt(b"not an attestation document".to_vec()).await;
    assert_policy_denied(&err, "malformed");

    // No trust anchor configured: everything is refused.
    let mut policy = f.policy_with_image(&f.pcr0);
    policy.root_pem = String::new();
    f.live.emulator.set_policy(policy).expect("set policy");
    let err = decrypt(document(&f.nsm, &recipient)).await;
    assert_policy_denied(&err, "no trust anchor");
}

#[tokio::test]
async fn malformed_recipients_are_validation_errors() {
    let f = Fixture::new().await;
    let context = ctx(&[]);
    let blob = f.wrapped_secret(&context).await;
    let recipient = RecipientKey::generate().expect("recipient key");

    // A valid document without public_key.
    let bare = f.nsm.attestation(None, None, None).expect("document");
    let err = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &recipient, &bare)
        .await
        .expect_err("no public key");
    assert!(
        matches!(&err, KmsError::Other(m) if m.contains("ValidationException") && m.contains("public_key")),
        "{err:?}"
    );

    // A public_key that is not an RSA key.
    let odd = f
        .nsm
        .attestation(Some(b"not a key"), None, None)
        .expect("document");
    let err = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &recipient, &odd)
        .await
        .expect_err("unusable public key");
    assert!(
        matches!(&err, KmsError::Other(m) if m.contains("ValidationException")),
        "{err:?}"
    );

    // Larger than 16 KiB.
    let huge = vec![0xa5u8; 16 * 1024 + 1];
    let err = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &recipient, &huge)
        .await
        .expect_err("oversized document");
    assert!(
        matches!(&err, KmsError::Other(m) if m.contains("ValidationException") && m.contains("16384")),
        "{err:?}"
    );
}

#[tokio::test]
async fn document_for_another_key_fails_cleanly() {
    let f = Fixture::new().await;
    let context = ctx(&[("k", "v")]);
    let blob = f.wrapped_secret(&context).await;
    let ours = RecipientKey::generate().expect("recipient key");
    let theirs = RecipientKey::generate().expect("other key");
    // The document binds another key: KMS (the emulator) encrypts to that key, and ours cannot
    // open the envelope.
    let doc = document(&f.nsm, &theirs);
    let err = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &ours, &doc)
        .await
        .expect_err("envelope for another key");
    assert!(matches!(err, KmsError::Attestation(_)), "{err:?}");
    assert_eq!(err.code(), "kms_attestation");
    let err = f
        .kms
        .generate_random_for_recipient(32, &ours, &doc)
        .await
        .expect_err("envelope for another key");
    assert!(matches!(err, KmsError::Attestation(_)), "{err:?}");
    // The key the document binds does open it.
    let plain = f
        .kms
        .decrypt_for_recipient(Some(DEFAULT_ALIAS), &blob, &context, &theirs, &doc)
        .await
        .expect("the bound key opens it");
    assert_eq!(&plain[..], SECRET);
}

#[tokio::test]
async fn wire_format_of_recipient_calls() {
    let f = Fixture::new().await;
    let context = ctx(&[]);
    let blob = f.wrapped_secret(&context).await;
    let recipient = RecipientKey::generate().expect("recipient key");
    let doc = document(&f.nsm, &recipient);
    let ep = f.live.endpoint.as_str();

    // The field names the AWS SDK sends (aws-sdk-kms protocol_serde::shape_recipient_info).
    let body = json!({
        "CiphertextBlob": BASE64.encode(&blob),
        "KeyId": DEFAULT_ALIAS,
        "Recipient": {
            "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
            "AttestationDocument": BASE64.encode(&doc),
        },
    });
    let reply = post(
        ep,
        Some("TrentService.Decrypt"),
        true,
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert!(reply.json.get("Plaintext").is_none(), "{}", reply.json);
    assert_eq!(reply.json["KeyId"], f.live.emulator.key_arn());
    assert_eq!(reply.json["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    let envelope = BASE64
        .decode(
            reply.json["CiphertextForRecipient"]
                .as_str()
                .expect("envelope"),
        )
        .expect("base64");
    // A real-shaped envelope: BER with indefinite lengths, addressed to SHA-256(SPKI).
    assert_eq!(&envelope[..2], &[0x30, 0x80]);
    let parsed = cms::parse_envelope(&envelope).expect("KMS-shaped envelope");
    assert_eq!(
        parsed.subject_key_identifier(),
        recipient.subject_key_identifier()
    );
    assert_eq!(
        &recipient.decrypt_envelope(&envelope).expect("opens")[..],
        SECRET
    );

    let body = json!({
        "NumberOfBytes": 64,
        "Recipient": { "AttestationDocument": BASE64.encode(&doc) },
    });
    let reply = post(
        ep,
        Some("TrentService.GenerateRandom"),
        true,
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert!(reply.json.get("Plaintext").is_none(), "{}", reply.json);
    let envelope = BASE64
        .decode(
            reply.json["CiphertextForRecipient"]
                .as_str()
                .expect("envelope"),
        )
        .expect("base64");
    assert_eq!(
        recipient.decrypt_envelope(&envelope).expect("opens").len(),
        64
    );

    // Another key encryption algorithm, and a refused document, on the wire.
    let body = json!({
        "NumberOfBytes": 8,
        "Recipient": {
            "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_1",
            "AttestationDocument": BASE64.encode(&doc),
        },
    });
    let target = Some("TrentService.GenerateRandom");
    let reply = post(ep, target, true, body.to_string().as_bytes()).await;
    assert_error(&reply, 400, "ValidationException");
    let body = json!({ "NumberOfBytes": 8, "Recipient": { "AttestationDocument": "AAAA" } });
    let reply = post(ep, target, true, body.to_string().as_bytes()).await;
    assert_error(&reply, 400, "AccessDeniedException");
    let message = reply.json["message"].as_str().expect("message");
    assert!(message.starts_with("attestation policy:"), "{message}");
}

#[tokio::test]
async fn policy_file_survives_reopen_and_hand_edits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kms_dir = dir.path().join("kms");
    let path = kms_dir.join(POLICY_FILE);
    let ca = DevCa::generate().expect("dev CA");
    let policy = AttestationPolicy {
        require_attestation: true,
        root_pem: ca.root_pem(),
        image_sha384: Some("ab".repeat(PCR_LEN)),
        pcrs: [(8, "CD".repeat(PCR_LEN))].into_iter().collect(),
    };
    {
        let emulator = Emulator::open(&kms_dir).expect("open");
        assert_eq!(emulator.policy(), AttestationPolicy::default());
        assert!(!path.exists(), "no policy file until one is set");
        emulator.set_policy(policy.clone()).expect("set policy");
        assert_eq!(emulator.policy(), policy);
        // A bad policy is refused and changes nothing.
        let mut bad = policy.clone();
        bad.image_sha384 = Some("abcd".to_owned());
        let err = emulator.set_policy(bad).expect_err("bad PCR");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert_eq!(emulator.policy(), policy);
    }
    let mode = fs::metadata(&path)
        .expect("policy file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = fs::read_to_string(&path).expect("read");
    assert!(
        text.contains("\"require_attestation\": true") && text.contains("BEGIN CERTIFICATE"),
        "{text}"
    );
    assert_eq!(Emulator::open(&kms_dir).expect("reopen").policy(), policy);

    // Edited by hand.
    let edited = text.replace(
        "\"require_attestation\": true",
        "\"require_attestation\": false",
    );
    fs::write(&path, edited).expect("edit");
    let reopened = Emulator::open(&kms_dir).expect("reopen");
    assert!(!reopened.policy().require_attestation);
    assert_eq!(reopened.policy().pcrs, policy.pcrs);

    // A broken file stops the emulator from starting rather than dropping the policy.
    fs::write(
        &path,
        "{\"require_attestation\": true, \"image_sha384\": \"xyz\"}",
    )
    .expect("edit");
    let err = Emulator::open(&kms_dir).expect_err("broken policy");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains(POLICY_FILE), "{err}");
}

/// A stub "KMS" answering every call with `Plaintext` (or a bad envelope): what a compromised
/// proxy or a misconfigured endpoint could do. The attested calls must refuse it.
#[tokio::test]
async fn plaintext_response_to_recipient_fails_closed() {
    async fn stub_serving(answer: serde_json::Value) -> (String, oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
        let body = answer.to_string();
        let router = axum::Router::new().route(
            "/",
            axum::routing::post(move || {
                let body = body.clone();
                async move { ([(header::CONTENT_TYPE, "application/x-amz-json-1.1")], body) }
            }),
        );
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        (endpoint, stop)
    }

    let recipient = RecipientKey::generate().expect("recipient key");
    let other = RecipientKey::generate().expect("other key");
    let doc = b"any document: the stub does not look";
    let envelope_to_other = cms::encrypt_envelope(&other.spki_der(), SECRET).expect("envelope");
    let key_arn = "arn:aws:kms:us-east-1:111122223333:key/stub";
    let answers = [
        json!({ "Plaintext": BASE64.encode(SECRET), "KeyId": key_arn,
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT" }),
        json!({ "Plaintext": BASE64.encode(SECRET), "KeyId": key_arn,
                "CiphertextForRecipient": BASE64.encode(
                    cms::encrypt_envelope(&recipient.spki_der(), SECRET).expect("envelope")) }),
        json!({ "KeyId": key_arn }),
        json!({ "CiphertextForRecipient": BASE64.encode(&envelope_to_other), "KeyId": key_arn }),
        json!({ "CiphertextForRecipient": BASE64.encode(b"\x30\x80\x06\x09garbage"),
                "KeyId": key_arn }),
    ];
    for (i, answer) in answers.into_iter().enumerate() {
        let (endpoint, _stop) = stub_serving(answer).await;
        let kms = client_for(&endpoint, "us-east-1", Some(test_credentials()));
        // The plain call takes the stub's word (that is the non-attested path) …
        if i == 0 {
            let plain = kms
                .decrypt(Some("alias/x"), b"blob", &ctx(&[]))
                .await
                .expect("plain decrypt");
            assert_eq!(&plain[..], SECRET);
        }
        // … the attested ones never do.
        let err = kms
            .decrypt_for_recipient(Some("alias/x"), b"blob", &ctx(&[]), &recipient, doc)
            .await
            .expect_err("attested decrypt must fail closed");
        assert!(matches!(err, KmsError::Attestation(_)), "{i}: {err:?}");
        assert_eq!(err.code(), "kms_attestation");
        assert!(
            !err.to_string()
                .contains(std::str::from_utf8(SECRET).expect("utf8")),
            "{i}: {err}"
        );
        let err = kms
            .generate_random_for_recipient(SECRET.len(), &recipient, doc)
            .await
            .expect_err("attested random must fail closed");
        assert!(matches!(err, KmsError::Attestation(_)), "{i}: {err:?}");
    }
}
