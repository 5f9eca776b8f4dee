//! `KmsClient` against moto (`moto_server`), an independent KMS emulator, so our client and our
//! emulator are not only checked against each other.
//!
//! Needs `moto_server` on PATH (`pip install "moto[server]"`). Without it the test FAILS,
//! unless `NITRO_WALLET_SKIP_MOTO=1` is set.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nitro_wallet_kms::KmsError;

use crate::common::{client_for, ctx, sdk_client, test_credentials};

const REGION: &str = "us-east-1";

/// A `moto_server` child process, killed on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// Starts moto, or returns `None` when skipping is allowed; panics with instructions otherwise.
fn start_moto() -> Option<Moto> {
    let Some(program) = find_on_path("moto_server") else {
        if std::env::var("NITRO_WALLET_SKIP_MOTO").as_deref() == Ok("1") {
            eprintln!("SKIPPED: moto_server not on PATH and NITRO_WALLET_SKIP_MOTO=1");
            return None;
        }
        panic!(
            "moto_server is not on PATH: install it with `pip install \"moto[server]\"`, \
             or set NITRO_WALLET_SKIP_MOTO=1 to skip the moto tests explicitly"
        );
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let child = Command::new(&program)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let mut moto = Moto {
        child,
        endpoint: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(moto);
        }
        if let Ok(Some(status)) = moto.child.try_wait() {
            panic!(
                "moto_server exited with {status} before listening; is moto[server] installed \
                 (`pip install \"moto[server]\"`)?"
            );
        }
        assert!(
            Instant::now() < deadline,
            "moto_server did not listen on port {port} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn against_moto() {
    let Some(moto) = start_moto() else { return };
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
        let plain = kms.decrypt(key, &blob, &context).await.expect("decrypt");
        assert_eq!(&plain[..], secret);

        let err = kms
            .decrypt(key, &blob, &ctx(&[("address", "0x0")]))
            .await
            .expect_err("context");
        assert!(matches!(err, KmsError::InvalidCiphertext), "{err:?}");
        let err = kms
            .decrypt(key, &blob, &ctx(&[]))
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
        .decrypt(&other_id, &blob, &context)
        .await
        .expect_err("other key id");
    assert!(
        matches!(err, KmsError::InvalidCiphertext | KmsError::Denied(_)),
        "{err:?}"
    );

    let random = kms.generate_random(32).await.expect("random");
    assert_eq!(random.len(), 32);
}
