//! `SecretsManagerKeyStore` against moto (`moto_server`), an independent Secrets Manager
//! emulator: create/get/list (with pagination), conflicts, corrupt records, prefix isolation,
//! and no record in `Debug` or log output.
//!
//! Needs `moto_server` on PATH (`pip install "moto[server]"`). Without it the tests FAIL,
//! unless `NITRO_WALLET_SKIP_MOTO=1` is set.

use aws_sdk_secretsmanager::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_secretsmanager::Client;
use nitro_wallet::keystore::secrets_manager::{sdk_config, SecretsManagerKeyStore};
use nitro_wallet::keystore::{KeyRecord, KeyStore, StoreError};
use nitro_wallet_protocol::WrappedKey;
use nitro_wallet_testkit::MotoServer;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use alloy_primitives::Address;

const REGION: &str = "us-east-1";

/// The tests of this module run one at a time: the log test's thread-local subscriber must not
/// race other threads registering the same `tracing` call sites (whose interest is cached
/// process-wide), or its capture can miss lines. Each test still has its own moto.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// moto plus the helpers these tests need on top of it.
struct Moto {
    endpoint: String,
    _server: MotoServer,
}

impl Moto {
    /// Starts moto, or returns `None` when skipping is allowed; panics with instructions
    /// otherwise.
    fn start() -> Option<Moto> {
        Self::start_with(&[])
    }

    /// Starts moto with extra environment variables.
    fn start_with(env: &[(&str, &str)]) -> Option<Moto> {
        let server = MotoServer::start_with(env)?;
        Some(Moto {
            endpoint: server.endpoint.clone(),
            _server: server,
        })
    }

    /// An SDK client with dummy credentials given explicitly (no environment variables).
    fn client(&self) -> Client {
        self.client_as("AKIDTESTONLY", "test-secret-key")
    }

    fn client_as(&self, access_key_id: &str, secret_access_key: &str) -> Client {
        let credentials = SharedCredentialsProvider::new(Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "nitro-wallet-tests",
        ));
        Client::from_conf(sdk_config(REGION, Some(&self.endpoint), credentials))
    }

    /// One IAM query-protocol call, unsigned: only for moto's first unauthenticated actions.
    async fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut body = String::from("Version=2010-05-08");
        for (k, v) in params {
            body.push_str(&format!("&{k}={}", percent_encode(v)));
        }
        let response = reqwest::Client::new()
            .post(&self.endpoint)
            .header("content-type", "application/x-www-form-urlencoded")
            // Routes the request to IAM; the signature is not checked yet.
            .header(
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIDTESTONLY/20250101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "IAM {params:?}: {status} {text}");
        text
    }

    /// A moto IAM user allowed `actions` on every resource; its (access key id, secret key).
    async fn user(&self, name: &str, actions: &[&str]) -> (String, String) {
        self.iam(&[("Action", "CreateUser"), ("UserName", name)])
            .await;
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Action": actions, "Resource": "*" }],
        })
        .to_string();
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "nitro-wallet"),
            ("PolicyDocument", &policy),
        ])
        .await;
        let xml = self
            .iam(&[("Action", "CreateAccessKey"), ("UserName", name)])
            .await;
        (
            xml_field(&xml, "AccessKeyId"),
            xml_field(&xml, "SecretAccessKey"),
        )
    }

    fn store(&self, prefix: &str) -> SecretsManagerKeyStore {
        SecretsManagerKeyStore::new(self.client(), prefix).unwrap()
    }
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn xml_field(xml: &str, tag: &str) -> String {
    let start = xml.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    xml[start..end].to_owned()
}

/// A record with a distinctive ciphertext, so leaks are easy to search for.
fn record(n: u8) -> KeyRecord {
    let mut ciphertext = b"CIPHERTEXT-MARKER-".to_vec();
    ciphertext.extend([n; 16]);
    KeyRecord::new(
        WrappedKey {
            address: Address::with_last_byte(n),
            kms_key_id: "alias/nitro-wallet".into(),
            ciphertext,
            public_key: None,
            policy: None,
        },
        Some(format!("key {n}")),
    )
}

fn addresses(records: &[Arc<KeyRecord>]) -> Vec<Address> {
    records.iter().map(|r| r.address).collect()
}

#[tokio::test]
async fn create_get_list_round_trip_across_pages() {
    let _serial = SERIAL.lock().await;
    let Some(moto) = Moto::start() else { return };
    let store = moto.store("nitro-wallet/keys/").with_page_size(7);
    let mut created = Vec::new();
    for n in 1..=30 {
        created.push(store.create(record(n)).await.unwrap());
    }
    assert_eq!(created[0].address, Address::with_last_byte(1));
    assert_eq!(
        store.secret_name(&Address::with_last_byte(1)),
        format!(
            "nitro-wallet/keys/{}",
            Address::with_last_byte(1).to_checksum(None)
        )
    );

    // A second store (empty cache) with 7 secrets per page: 5 pages, all read back.
    let fresh = moto.store("nitro-wallet/keys/").with_page_size(7);
    let listed = fresh.list().await.unwrap();
    assert_eq!(listed.len(), 30);
    let mut expected = created.clone();
    expected.sort_by(|a, b| (&a.created_at, a.address).cmp(&(&b.created_at, b.address)));
    assert_eq!(addresses(&listed), addresses(&expected));
    for (got, want) in listed.iter().zip(&expected) {
        assert_eq!(**got, **want);
    }
    // Listed records are cached: a get returns the same allocation.
    let one = fresh.get(&listed[3].address).await.unwrap().unwrap();
    assert!(Arc::ptr_eq(&one, &listed[3]));

    // Another fresh store: get by address, then list (partly cached) is the same.
    let third = moto.store("nitro-wallet/keys/").with_page_size(30);
    let got = third
        .get(&Address::with_last_byte(17))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*got, *created[16]);
    assert_eq!(
        addresses(&third.list().await.unwrap()),
        addresses(&expected)
    );
    // The default page size (moto: 100) works too.
    assert_eq!(
        moto.store("nitro-wallet/keys/").list().await.unwrap().len(),
        30
    );
}

#[tokio::test]
async fn create_never_overwrites_and_unknown_is_none() {
    let _serial = SERIAL.lock().await;
    let Some(moto) = Moto::start() else { return };
    let store = moto.store("nitro-wallet/keys/");
    assert!(store.list().await.unwrap().is_empty());
    let first = store.create(record(1)).await.unwrap();

    let mut other = record(1);
    other.label = Some("a different record for the same address".into());
    let err = store.create(other.clone()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Exists(a) if a == Address::with_last_byte(1)),
        "{err:?}"
    );
    // Also through another store (no cache), and the stored record is unchanged.
    let again = moto.store("nitro-wallet/keys/");
    let err = again.create(other).await.unwrap_err();
    assert!(matches!(err, StoreError::Exists(_)), "{err:?}");
    let stored = again
        .get(&Address::with_last_byte(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(*stored, *first);

    assert!(again
        .get(&Address::with_last_byte(2))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn records_under_the_wrong_name_are_corrupt() {
    let _serial = SERIAL.lock().await;
    let Some(moto) = Moto::start() else { return };
    let prefix = "corrupt/keys/";
    let sdk = moto.client();
    let store = moto.store(prefix);
    let (a, b) = (Address::with_last_byte(0xa), Address::with_last_byte(0xb));
    // B's record stored under A's name.
    let misplaced = serde_json::to_string(&record(0xb)).unwrap();
    sdk.create_secret()
        .name(store.secret_name(&a))
        .secret_string(misplaced)
        .send()
        .await
        .unwrap();
    let err = store.get(&a).await.unwrap_err();
    match &err {
        StoreError::Corrupt { name, reason } => {
            assert_eq!(name, &store.secret_name(&a));
            assert!(reason.contains("does not match"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(store.get(&b).await.unwrap().is_none());
    let err = store.list().await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");

    // Not a record at all: Corrupt, and the message does not echo the value.
    let c = Address::with_last_byte(0xc);
    let garbage = r#"{"version": 1, "address": "GARBAGE-VALUE-MARKER"}"#;
    sdk.create_secret()
        .name(format!("other/{}", c.to_checksum(None)))
        .secret_string(garbage)
        .send()
        .await
        .unwrap();
    let other = moto.store("other/");
    let err = other.get(&c).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains("GARBAGE-VALUE-MARKER"), "{text}");
    }
}

#[tokio::test]
async fn prefixes_isolate_stores() {
    let _serial = SERIAL.lock().await;
    let Some(moto) = Moto::start() else { return };
    let one = moto.store("team/one/");
    // Nested under the first prefix: the first store must still ignore it.
    let nested = moto.store("team/one/nested/");
    let two = moto.store("TEAM/ONE/");
    for n in 1..=3 {
        one.create(record(n)).await.unwrap();
    }
    // The same address may live in several stores.
    nested.create(record(1)).await.unwrap();
    nested.create(record(9)).await.unwrap();
    two.create(record(5)).await.unwrap();
    // Names under the prefix that are not canonical addresses are ignored.
    let sdk = moto.client();
    for name in [
        "team/one/README",
        &format!(
            "team/one/{}",
            Address::with_last_byte(0xee).to_string().to_lowercase()
        ),
    ] {
        sdk.create_secret()
            .name(name)
            .secret_string("{}")
            .send()
            .await
            .unwrap();
    }

    let set = |rs: Vec<Arc<KeyRecord>>| rs.iter().map(|r| r.address).collect::<BTreeSet<_>>();
    let fresh = |p: &str| moto.store(p).with_page_size(2);
    assert_eq!(
        set(fresh("team/one/").list().await.unwrap()),
        (1..=3).map(Address::with_last_byte).collect()
    );
    assert_eq!(
        set(fresh("team/one/nested/").list().await.unwrap()),
        [1, 9].map(Address::with_last_byte).into()
    );
    assert_eq!(
        set(fresh("TEAM/ONE/").list().await.unwrap()),
        [5].map(Address::with_last_byte).into()
    );
    assert!(fresh("team/two/").list().await.unwrap().is_empty());
    assert!(fresh("team/one/")
        .get(&Address::with_last_byte(9))
        .await
        .unwrap()
        .is_none());
}

/// Log lines captured from the current thread.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn records_never_appear_in_debug_or_logs() {
    let _serial = SERIAL.lock().await;
    let Some(moto) = Moto::start() else { return };
    let logs = Capture::default();
    let writer = logs.clone();
    // Everything at TRACE, the SDK's own lines (requests, responses) included.
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    tracing::callsite::rebuild_interest_cache();

    let store = moto.store("logs/").with_page_size(1);
    let records: Vec<KeyRecord> = (1..=3).map(record).collect();
    for r in &records {
        store.create(r.clone()).await.unwrap();
    }
    let err = store.create(records[0].clone()).await.unwrap_err();
    let fresh = moto.store("logs/").with_page_size(1);
    assert_eq!(fresh.list().await.unwrap().len(), 3);
    fresh.get(&records[1].address).await.unwrap().unwrap();

    let debug = format!("{store:?} {fresh:?}");
    assert!(debug.contains("logs/"), "{debug}");
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("key record created"), "{logs}");
    assert!(
        logs.contains("transmitting request"),
        "SDK traces captured: {logs}"
    );
    assert!(
        !logs.contains("test-secret-key"),
        "the AWS secret key leaked: {logs}"
    );
    for text in [&debug, &logs, &err.to_string(), &format!("{err:?}")] {
        for r in &records {
            let json = serde_json::to_string(r).unwrap();
            let ciphertext = serde_json::to_value(r).unwrap()["ciphertext"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(!text.contains(&json), "a record leaked: {text}");
            assert!(!text.contains(&ciphertext), "a ciphertext leaked: {text}");
            assert!(!text.contains("CIPHERTEXT-MARKER"), "{text}");
        }
    }
}

#[tokio::test]
async fn denied_calls_name_the_permission_and_listing_falls_back() {
    let _serial = SERIAL.lock().await;
    // moto checks IAM after the first 6 requests: the setup of two users.
    let Some(moto) = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "6")]) else {
        return;
    };
    // The host role without BatchGetSecretValue, and a reader that may not create.
    let (id, key) = moto
        .user(
            "host",
            &[
                "secretsmanager:CreateSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:ListSecrets",
            ],
        )
        .await;
    let host = SecretsManagerKeyStore::new(moto.client_as(&id, &key), "keys/")
        .unwrap()
        .with_page_size(2);
    let (id, key) = moto
        .user(
            "reader",
            &[
                "secretsmanager:GetSecretValue",
                "secretsmanager:ListSecrets",
            ],
        )
        .await;
    let reader = SecretsManagerKeyStore::new(moto.client_as(&id, &key), "keys/").unwrap();

    for n in 1..=5 {
        host.create(record(n)).await.unwrap();
    }
    let fresh = SecretsManagerKeyStore::new(moto.client_as(&id, &key), "keys/").unwrap();
    // BatchGetSecretValue is denied: GetSecretValue per key instead.
    assert_eq!(fresh.list().await.unwrap().len(), 5);
    assert_eq!(host.list().await.unwrap().len(), 5);

    let err = reader.create(record(6)).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(
        message.contains(&format!(
            "secretsmanager:CreateSecret denied for {}",
            reader.secret_name(&Address::with_last_byte(6))
        )),
        "{message}"
    );
    // Unknown credentials are refused too, and say so.
    let stranger =
        SecretsManagerKeyStore::new(moto.client_as("AKIDUNKNOWN", "nope"), "keys/").unwrap();
    let err = stranger.get(&Address::with_last_byte(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(!err.to_string().contains("nope"), "{err}");
}
