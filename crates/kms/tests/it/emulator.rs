//! `KmsClient` (the real SDK) against the local emulator.

use nitro_wallet_kms::emulator::{Emulator, DEFAULT_ALIAS};
use nitro_wallet_kms::KmsError;

use crate::common::{client_for, ctx, sdk_client, start, start_in, test_credentials};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

#[tokio::test]
async fn round_trip_by_id_arn_and_alias() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let kms = server.client();
    let context = ctx(&[
        ("address", "0x52908400098527886E0F7030069857D2E4169EE7"),
        ("v", "1"),
    ]);
    for key in [
        server.key_id.as_str(),
        server.key_arn.as_str(),
        DEFAULT_ALIAS,
    ] {
        let blob = kms.encrypt(key, SECRET, &context).await.expect("encrypt");
        assert!(
            !blob.windows(SECRET.len()).any(|w| w == SECRET),
            "plaintext in blob"
        );
        for by in [
            server.key_id.as_str(),
            server.key_arn.as_str(),
            DEFAULT_ALIAS,
        ] {
            let plain = kms
                .decrypt(Some(by), &blob, &context)
                .await
                .expect("decrypt");
            assert_eq!(&plain[..], SECRET);
        }
    }
    // An empty context round-trips too.
    let blob = kms
        .encrypt(DEFAULT_ALIAS, b"x", &ctx(&[]))
        .await
        .expect("encrypt");
    assert_eq!(
        &kms.decrypt(Some(DEFAULT_ALIAS), &blob, &ctx(&[]))
            .await
            .expect("decrypt")[..],
        b"x"
    );
    server.stop().await;
}

#[tokio::test]
async fn context_must_match_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let kms = server.client();
    let context = ctx(&[("a", "bc")]);
    let blob = kms
        .encrypt(&server.key_id, SECRET, &context)
        .await
        .expect("encrypt");
    for wrong in [
        ctx(&[("ab", "c")]),
        ctx(&[("a", "bd")]),
        ctx(&[]),
        ctx(&[("a", "bc"), ("extra", "1")]),
    ] {
        let err = kms
            .decrypt(Some(server.key_id.as_str()), &blob, &wrong)
            .await
            .expect_err("wrong context");
        assert!(
            matches!(err, KmsError::InvalidCiphertext),
            "{wrong:?}: {err:?}"
        );
        assert_eq!(err.code(), "kms_invalid_ciphertext");
    }
    // A blob made without context does not open with one.
    let bare = kms
        .encrypt(&server.key_id, SECRET, &ctx(&[]))
        .await
        .expect("encrypt");
    let err = kms
        .decrypt(Some(server.key_id.as_str()), &bare, &context)
        .await
        .expect_err("extra context");
    assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");
}

#[tokio::test]
async fn tampered_or_foreign_blobs_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let kms = server.client();
    let context = ctx(&[("k", "v")]);
    let blob = kms
        .encrypt(&server.key_id, SECRET, &context)
        .await
        .expect("encrypt");
    for index in [0, 5, blob.len() / 2, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[index] ^= 0x80;
        let err = kms
            .decrypt(Some(server.key_id.as_str()), &bad, &context)
            .await
            .expect_err("tampered");
        assert!(
            matches!(err, KmsError::InvalidCiphertext),
            "byte {index}: {err:?}"
        );
    }
    let err = kms
        .decrypt(
            Some(server.key_id.as_str()),
            &blob[..blob.len() - 1],
            &context,
        )
        .await
        .expect_err("cut");
    assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");
    let err = kms
        .decrypt(Some(server.key_id.as_str()), b"not a blob at all", &context)
        .await
        .expect_err("junk");
    assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");
}

#[tokio::test]
async fn other_key_and_unknown_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emulator = Emulator::open(dir.path()).expect("open");
    let other = emulator
        .create_key(Some("alias/other"))
        .expect("create key");
    let server = start(emulator).await;
    let kms = server.client();
    let context = ctx(&[("k", "v")]);

    let blob = kms
        .encrypt("alias/other", SECRET, &context)
        .await
        .expect("encrypt");
    assert_eq!(
        &kms.decrypt(Some(other.as_str()), &blob, &context)
            .await
            .expect("decrypt")[..],
        SECRET
    );
    // The default key must not open the other key's blob (IncorrectKeyException).
    let err = kms
        .decrypt(Some(server.key_id.as_str()), &blob, &context)
        .await
        .expect_err("other key");
    assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");
    let err = kms
        .decrypt(Some(DEFAULT_ALIAS), &blob, &context)
        .await
        .expect_err("other key");
    assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");

    let unknown = "00000000-0000-4000-8000-000000000000";
    for key in [
        unknown.to_owned(),
        "alias/nope".to_owned(),
        format!("arn:aws:kms:us-east-1:111122223333:key/{unknown}"),
        server.key_arn.replace("111122223333", "999999999999"),
    ] {
        let err = kms
            .encrypt(&key, SECRET, &context)
            .await
            .expect_err("unknown key");
        assert!(matches!(err, KmsError::NotFound), "{key}: {err:?}");
        assert_eq!(err.code(), "kms_key_not_found");
        let err = kms
            .decrypt(Some(key.as_str()), &blob, &context)
            .await
            .expect_err("unknown key");
        assert!(matches!(err, KmsError::NotFound), "{key}: {err:?}");
    }
}

#[tokio::test]
async fn state_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let context = ctx(&[("address", "0xabc")]);
    let first = start_in(dir.path()).await;
    let (key_id, key_arn) = (first.key_id.clone(), first.key_arn.clone());
    let blob = first
        .client()
        .encrypt(DEFAULT_ALIAS, SECRET, &context)
        .await
        .expect("encrypt");
    first.stop().await;

    let second = start_in(dir.path()).await;
    assert_eq!(second.key_id, key_id);
    assert_eq!(second.key_arn, key_arn);
    let plain = second
        .client()
        .decrypt(Some(key_arn.as_str()), &blob, &context)
        .await
        .expect("decrypt");
    assert_eq!(&plain[..], SECRET);

    // A fresh directory means fresh keys: the old blob does not open there.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let third = start_in(elsewhere.path()).await;
    assert_ne!(third.key_id, key_id);
    let err = third
        .client()
        .decrypt(Some(DEFAULT_ALIAS), &blob, &context)
        .await
        .expect_err("foreign");
    assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");
}

#[tokio::test]
async fn no_credentials_is_denied_and_refresh_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let kms = client_for(&server.endpoint, &server.region, None);
    let err = kms
        .encrypt(DEFAULT_ALIAS, SECRET, &ctx(&[]))
        .await
        .expect_err("no credentials");
    assert!(matches!(err, KmsError::Denied(_)), "{err:?}");
    assert_eq!(err.code(), "kms_denied");
    let err = kms
        .decrypt(Some(DEFAULT_ALIAS), b"x", &ctx(&[]))
        .await
        .expect_err("no credentials");
    assert!(matches!(err, KmsError::Denied(_)), "{err:?}");

    kms.credentials().set(test_credentials());
    let blob = kms
        .encrypt(DEFAULT_ALIAS, SECRET, &ctx(&[]))
        .await
        .expect("encrypt");
    kms.credentials().clear();
    let err = kms
        .decrypt(Some(DEFAULT_ALIAS), &blob, &ctx(&[]))
        .await
        .expect_err("cleared");
    assert!(matches!(err, KmsError::Denied(_)), "{err:?}");
    kms.credentials().set(test_credentials());
    kms.decrypt(Some(DEFAULT_ALIAS), &blob, &ctx(&[]))
        .await
        .expect("decrypt after refresh");
}

#[tokio::test]
async fn generate_random_and_limits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let kms = server.client();
    let a = kms.generate_random(32).await.expect("random");
    let b = kms.generate_random(32).await.expect("random");
    assert_eq!(a.len(), 32);
    assert_ne!(a, b);
    assert!(matches!(
        kms.generate_random(0).await,
        Err(KmsError::Other(_))
    ));
    assert!(matches!(
        kms.generate_random(1025).await,
        Err(KmsError::Other(_))
    ));

    // KMS's 4096-byte plaintext limit.
    kms.encrypt(DEFAULT_ALIAS, &[1u8; 4096], &ctx(&[]))
        .await
        .expect("4096 bytes");
    let err = kms
        .encrypt(DEFAULT_ALIAS, &[1u8; 4097], &ctx(&[]))
        .await
        .expect_err("4097");
    assert!(
        matches!(&err, KmsError::Other(m) if m.contains("ValidationException")),
        "{err:?}"
    );
}

#[tokio::test]
async fn describe_key_parses_in_the_sdk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let sdk = sdk_client(&server.endpoint, &server.region);
    let out = sdk
        .describe_key()
        .key_id(DEFAULT_ALIAS)
        .send()
        .await
        .expect("describe");
    let meta = out.key_metadata().expect("metadata");
    assert_eq!(meta.key_id(), server.key_id);
    assert_eq!(meta.arn(), Some(server.key_arn.as_str()));
    assert!(meta.enabled());
}

#[tokio::test]
async fn concurrent_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let kms = server.client();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let kms = kms.clone();
        tasks.push(tokio::spawn(async move {
            let context = ctx(&[("i", &i.to_string())]);
            let secret = format!("secret number {i}");
            let blob = kms
                .encrypt(DEFAULT_ALIAS, secret.as_bytes(), &context)
                .await?;
            let plain = kms.decrypt(Some(DEFAULT_ALIAS), &blob, &context).await?;
            assert_eq!(&plain[..], secret.as_bytes());
            Ok::<_, KmsError>(())
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("round trip");
    }
}

#[tokio::test]
async fn unreachable_endpoint_is_unavailable() {
    // Bind then drop to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let kms = client_for(
        &format!("http://127.0.0.1:{port}"),
        "us-east-1",
        Some(test_credentials()),
    );
    let err = kms
        .encrypt(DEFAULT_ALIAS, SECRET, &ctx(&[]))
        .await
        .expect_err("unreachable");
    assert!(matches!(err, KmsError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(!format!("{err:?}{err}").contains("test-secret-key"));
}
