//! Migration from the reference sample, end to end against moto.
//!
//! A key is stored exactly as the sample's `set_key` stores it (boto3: KMS Encrypt of the ASCII
//! hex key without encryption context, base64 into a Secrets Manager secret), migrated with
//! `nitro-wallet keys migrate`, and used through the sample's `POST /`: every signature must be
//! byte-identical to eth-account's for the same key and payload. The real `serve` keeps its
//! records in moto's Secrets Manager; the real enclave calls moto's KMS with the credentials
//! `serve` hands it, in the dev-only mode that accepts unattested KMS responses (moto ignores
//! `Recipient`), which a production enclave refuses (tested here too). No log line and no
//! error body may carry a credential or the key.
//!
//! Needs `moto_server`, boto3 and eth-account (`./scripts/test.sh` installs them).

use crate::support::{
    https_client, nitro_wallet_bin, spawn_enclave, spawn_serve, wait_for_serve, TOKEN,
};
use nitro_wallet_testkit::MotoServer;
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command},
};

const ACCESS_KEY_ID: &str = "AKIDSAMPLECOMPAT0001";
const SECRET_ACCESS_KEY: &str = "sample-compat-secret-access-k3y-n0t-f0r-l0gs";
const SESSION_TOKEN: &str = "sample-compat-session-t0k3n-n0t-f0r-l0gs";
/// The sample's key: what its users pasted into `set_key`.
const HEX_KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const RECIPIENT: &str = "0xa5D3241A1591061F2a4bB69CA0215F66520E67cf";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sample_compat.py")
}

/// Runs the sample script; panics with its stderr and an install hint on failure.
fn sample(args: &[&str]) -> Value {
    let out = Command::new("python3")
        .arg(script())
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "AKIDSAMPLELAMBDA")
        .env("AWS_SECRET_ACCESS_KEY", "lambda-secret")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "sample_compat.py {}: {}\n(run ./scripts/test.sh, which installs boto3 with moto and \
         eth-account)",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// moto, the enclave and `serve` (child processes) in one temp dir.
struct System {
    dir: tempfile::TempDir,
    _moto: MotoServer,
    enclave: Child,
    serve: Child,
    url: String,
    client: reqwest::Client,
}

impl System {
    async fn start(moto: MotoServer, kms_key_id: &str) -> System {
        let dir = tempfile::tempdir().unwrap();
        let enclave = spawn_enclave(
            dir.path(),
            &moto.endpoint,
            &["--insecure-unattested-kms"],
            "trace",
        );
        let (serve, url) = spawn_serve(
            dir.path(),
            &format!(
                r#"
[enclave]
endpoint = "unix://{socket}"

[kms]
key_id = "{kms_key_id}"

[key_store]
kind = "secrets_manager"
region = "us-east-1"
endpoint = "{moto}"

[credentials]
source = "aws"
region = "us-east-1"
"#,
                socket = dir.path().join("enclave.sock").display(),
                moto = moto.endpoint,
            ),
            &[
                ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
                ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
                ("AWS_SESSION_TOKEN", SESSION_TOKEN.to_owned()),
            ],
        );
        let client = https_client(&dir.path().join("state/tls/cert.pem"));
        let mut system = System {
            dir,
            _moto: moto,
            enclave,
            serve,
            url,
            client,
        };
        system.wait_ready().await;
        system
    }

    async fn wait_ready(&mut self) {
        let readyz = format!("{}/readyz", self.url);
        let dir = self.dir.path().to_owned();
        let logs = move || logs_in(&dir);
        wait_for_serve(&self.client, &readyz, None, &mut self.serve, logs).await;
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (status, json, text)
    }

    /// `nitro-wallet keys migrate …` as an operator runs it.
    fn migrate_cli(&self, secret_id: &str) -> std::process::Output {
        Command::new(nitro_wallet_bin())
            .args(["keys", "migrate", "--json", "--secret-id", secret_id])
            .args(["--url", &self.url, "--ca-cert"])
            .arg(self.dir.path().join("state/tls/cert.pem"))
            .env("NITRO_WALLET_TOKEN", TOKEN)
            .output()
            .unwrap()
    }

    fn logs(&self) -> String {
        logs_in(self.dir.path())
    }
}

/// The serve and enclave logs of a system's directory.
fn logs_in(dir: &Path) -> String {
    ["serve.log", "enclave.log"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

impl Drop for System {
    fn drop(&mut self) {
        for child in [&mut self.serve, &mut self.enclave] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Everything that must never be printed: the credentials, and the key in every spelling.
fn secrets() -> Vec<String> {
    vec![
        SECRET_ACCESS_KEY.to_owned(),
        SESSION_TOKEN.to_owned(),
        HEX_KEY.to_owned(),
        HEX_KEY.to_uppercase(),
        HEX_KEY[..24].to_owned(),
    ]
}

fn assert_no_secret(what: &str, text: &str) {
    for s in secrets() {
        assert!(!text.contains(&s), "a secret appears in {what}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sample_key_migrates_and_signs_what_eth_account_signs() {
    let Some(moto) = MotoServer::start() else {
        return;
    };
    // The sample's set_key, and a second secret with the same key (migrating it is a conflict:
    // one key, one record), and two secrets that are not the sample's format.
    let sample_key = sample(&["set-key", &moto.endpoint, "eth-key", HEX_KEY, "new"]);
    let kms_key_id = sample_key["kms_key_id"].as_str().unwrap().to_owned();
    let secret_arn = sample_key["secret_arn"].as_str().unwrap().to_owned();
    sample(&[
        "set-key",
        &moto.endpoint,
        "eth-key-copy",
        &format!("0x{HEX_KEY}"),
        &kms_key_id,
    ]);
    sample(&[
        "set-key",
        &moto.endpoint,
        "not-a-key",
        "hello world",
        &kms_key_id,
    ]);
    let expected_address = sample(&["sign", HEX_KEY, r#"{"value":0,"gas":21000,"gasPrice":1,"nonce":0,"chainId":1,"to":"0xa5D3241A1591061F2a4bB69CA0215F66520E67cf"}"#])["address"]
        .as_str()
        .unwrap()
        .to_owned();

    let sys = System::start(moto, &kms_key_id).await;

    // Before migration the sample's clients get a 404 that says what to do.
    let payload = json!({"value": 0.01, "to": RECIPIENT, "nonce": 0, "type": 2, "chainId": 4,
        "gas": 100000, "maxFeePerGas": 100000000000u64, "maxPriorityFeePerGas": 3000000000u64});
    let body = json!({"transaction_payload": payload, "secret_id": "eth-key"}).to_string();
    let (status, err, text) = sys.post("/", Some(TOKEN), &body).await;
    assert_eq!(status, 404, "{text}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("keys migrate --secret-id eth-key"));
    // No token, no signature: unlike the sample.
    assert_eq!(sys.post("/", None, &body).await.0, 401);

    // Migration through the CLI, by name.
    let out = sys.migrate_cli("eth-key");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        sys.logs()
    );
    let migrated: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(migrated["address"], expected_address.as_str());
    assert_eq!(migrated["migrated_from"]["secret_arn"], secret_arn.as_str());
    assert_eq!(migrated["kms_key_id"], kms_key_id.as_str());

    // The record is in Secrets Manager under our prefix, holding a new ciphertext bound to the
    // address (not the sample's, which had no context).
    let (status, shown, _) = sys
        .post(
            "/v1/keys/migrate",
            Some(TOKEN),
            r#"{"secret_id":"eth-key"}"#,
        )
        .await;
    assert_eq!(status, 200, "migrating again is idempotent: {shown}");
    assert_eq!(shown["address"], expected_address.as_str());

    // The sample's clients: POST / by secret name and by ARN, value as number or string, every
    // transaction type they can send; byte-identical to eth-account.
    let payloads = [
        payload.clone(),
        json!({"value": "1.5", "to": RECIPIENT, "nonce": 7, "chainId": 31337, "gas": 21000,
               "gasPrice": 1000000000}),
        json!({"value": 0, "to": RECIPIENT, "nonce": 8, "chainId": 31337, "gas": 30000,
               "gasPrice": 1000000000, "data": "0x1234"}),
        json!({"value": 1e-18, "to": RECIPIENT, "nonce": 9, "type": 1, "chainId": 31337,
               "gas": 30000, "gasPrice": 1000000000, "accessList": [{"address": RECIPIENT,
               "storageKeys": [format!("0x{}01", "00".repeat(31))]}]}),
        json!({"value": 123.45678901234568, "to": RECIPIENT, "nonce": 10, "type": 2,
               "chainId": 1, "gas": 21000, "maxFeePerGas": 30000000000u64,
               "maxPriorityFeePerGas": 1000000000}),
    ];
    for (i, payload) in payloads.iter().enumerate() {
        let secret_id = if i % 2 == 0 {
            "eth-key"
        } else {
            secret_arn.as_str()
        };
        let body = json!({"transaction_payload": payload, "secret_id": secret_id}).to_string();
        let (status, ours, text) = sys.post("/", Some(TOKEN), &body).await;
        assert_eq!(status, 200, "{payload}: {text}");
        let theirs = sample(&["sign", HEX_KEY, &payload.to_string()]);
        assert_eq!(
            ours["transaction_signed"], theirs["transaction_signed"],
            "{payload}"
        );
        assert_eq!(
            ours["transaction_hash"], theirs["transaction_hash"],
            "{payload}"
        );
        assert_eq!(ours.as_object().unwrap().len(), 2, "{ours}");
    }

    // Clear errors, none of them quoting a secret.
    let mut bodies = Vec::new();
    for (path, body, status, code) in [
        (
            "/v1/keys/migrate",
            r#"{"secret_id":"no-such-secret"}"#.to_owned(),
            404,
            "secret_not_found",
        ),
        (
            "/v1/keys/migrate",
            r#"{"secret_id":"not-a-key"}"#.to_owned(),
            409,
            "key_mismatch",
        ),
        (
            "/v1/keys/migrate",
            r#"{"secret_id":"eth-key-copy"}"#.to_owned(),
            409,
            "key_exists",
        ),
        (
            "/v1/keys/migrate",
            r#"{"secret_id":""}"#.to_owned(),
            422,
            "invalid_request",
        ),
        (
            "/",
            json!({"transaction_payload": {"value": 1e-19, "to": RECIPIENT, "nonce": 0,
            "chainId": 1, "gas": 21000, "gasPrice": 1}, "secret_id": "eth-key"})
            .to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/",
            json!({"transaction_payload": {"value": 1, "nonce": 0, "chainId": 1,
            "gas": 21000}, "secret_id": "eth-key"})
            .to_string(),
            422,
            "invalid_transaction",
        ),
        (
            "/",
            json!({"transaction_payload": {}, "secret_id": "eth-key", "x": 1}).to_string(),
            422,
            "invalid_request",
        ),
    ] {
        let (got, err, text) = sys.post(path, Some(TOKEN), &body).await;
        assert_eq!(
            (got, err["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {text}"
        );
        bodies.push(text);
    }
    let (_, err, _) = sys
        .post(
            "/",
            Some(TOKEN),
            &json!({"transaction_payload": {"value": 1e-19}, "secret_id": "eth-key"}).to_string(),
        )
        .await;
    assert_eq!(err["error"]["field"], "transaction_payload.value");
    let (_, err, _) = sys
        .post(
            "/",
            Some(TOKEN),
            &json!({"transaction_payload": {"value": 1, "nonce": 0,
            "chainId": 1, "gas": 21000, "to": RECIPIENT}, "secret_id": "eth-key"})
            .to_string(),
        )
        .await;
    assert_eq!(
        err["error"]["field"], "transaction_payload.gasPrice",
        "{err}"
    );

    let out = sys.migrate_cli("no-such-secret");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("secret_not_found"), "{stderr}");

    // Nothing printed a secret.
    let logs = sys.logs();
    assert!(logs.contains("key migrated"), "{logs}");
    assert_no_secret("the logs", &logs);
    assert_no_secret("the CLI's output", &stderr);
    for body in &bodies {
        assert_no_secret("an error body", body);
    }
}

#[test]
fn a_production_enclave_refuses_unattested_kms() {
    let out = Command::new(nitro_wallet_bin())
        .args(["enclave", "--listen", "unix:///nonexistent/enclave.sock"])
        .arg("--insecure-unattested-kms")
        .env("NITRO_WALLET_LOG", "info")
        .env_remove("NITRO_WALLET_DEV_NSM_DIR")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--insecure-unattested-kms is a dev-only setting"),
        "{stderr}"
    );
}
