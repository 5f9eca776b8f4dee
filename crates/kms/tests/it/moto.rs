//! `KmsClient` against moto (`moto_server`), an independent KMS emulator, so our client and our
//! emulator are not only checked against each other.
//!
//! Needs `moto_server` on PATH (`pip install "moto[server]"`). Without it the test FAILS,
//! unless `NITRO_WALLET_SKIP_MOTO=1` is set.

use nitro_wallet_kms::KmsError;
use nitro_wallet_testkit::MotoServer;

use crate::common::{client_for, ctx, sdk_client, test_credentials};

const REGION: &str = "us-east-1";

#[tokio::test]
async fn against_moto() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    let sdk = sdk_client(&moto.endpoint, REGION);
    let created = sdk
        .create_key()
        .description("nitro-wallet test")
        .send()
        .await
        .expect("create key");
    let meta = created.key_metadata().expect("metadata");
    let (key_id, key_arn) = (
        meta.key_id().to_owned(),
        meta.arn().expect("arn").to_owned(),
    );
    let other = sdk.create_key().send().await.expect("create key");
    let other_id = other.key_metadata().expect("metadata").key_id().to_owned();

    let kms = client_for(&moto.endpoint, REGION, Some(test_credentials()));
    let context = ctx(&[("address", "0x52908400098527886E0F7030069857D2E4169EE7")]);
    let secret = b"a secp256k1 key would go here!!!";
    for key in [&key_id, &key_arn] {
        let blob = kms.encrypt(key, secret, &context).await.expect("encrypt");
        let plain = kms
            .decrypt(Some(key), &blob, &context)
            .await
            .expect("decrypt");
        assert_eq!(&plain[..], secret);

        let err = kms
            .decrypt(Some(key), &blob, &ctx(&[("address", "0x0")]))
            .await
            .expect_err("context");
        assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");
        let err = kms
            .decrypt(Some(key), &blob, &ctx(&[]))
            .await
            .expect_err("missing context");
        assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");
    }

    let err = kms
        .encrypt("alias/does-not-exist", secret, &context)
        .await
        .expect_err("unknown");
    assert!(matches!(err, KmsError::NotFound), "{err:?}");
    let blob = kms
        .encrypt(&key_id, secret, &context)
        .await
        .expect("encrypt");
    // Real KMS says IncorrectKeyException (InvalidCiphertext), moto AccessDeniedException.
    let err = kms
        .decrypt(Some(other_id.as_str()), &blob, &context)
        .await
        .expect_err("other key id");
    assert!(
        matches!(err, KmsError::InvalidCiphertext | KmsError::Denied(_)),
        "{err:?}"
    );

    let random = kms.generate_random(32).await.expect("random");
    assert_eq!(random.len(), 32);
}
