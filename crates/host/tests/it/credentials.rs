//! `[credentials] source = "aws"` end to end: the real `nitro-wallet serve` takes AWS
//! credentials from the standard chain (here its environment, or a `credential_process`
//! profile), hands them to a real enclave process, refreshes them before they expire, and never
//! logs them. The KMS emulator records which access key ids signed its requests.

use crate::support::{
    https_client, nitro_wallet_bin, spawn_enclave, spawn_serve, wait_for_serve, TOKEN,
};
use nitro_wallet_attestation::{pcr0_of_file, DevCa};
use nitro_wallet_kms::emulator::{AttestationPolicy, Emulator};
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command},
    time::{Duration, Instant},
};

pub(crate) const ACCESS_KEY_ID: &str = "AKIDTESTCREDS0000001";
pub(crate) const SECRET_ACCESS_KEY: &str = "test-secret-access-key-5up3r53cr3t";
pub(crate) const SESSION_TOKEN: &str = "test-session-token-t0k3n-v3ry-53cr3t";

const TX: &str = r#"{"chainId":"0x7a69","nonce":"0","gas":"21000","maxFeePerGas":"0x77359400",
    "maxPriorityFeePerGas":"0x3b9aca00","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"1"}"#;

/// KMS emulator (in process), enclave and `serve` (child processes) in one temp dir.
pub(crate) struct System {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) emulator: Emulator,
    pub(crate) enclave: Child,
    pub(crate) serve: Child,
    pub(crate) url: String,
    pub(crate) client: reqwest::Client,
}

impl System {
    /// Starts everything; `aws_env` is the AWS environment of `serve`, on top of variables
    /// that isolate it from the machine's own AWS configuration.
    async fn start(aws_env: impl FnOnce(&Path) -> Vec<(&'static str, String)>) -> System {
        System::start_with("info", "", aws_env).await
    }

    /// [`System::start`] with the enclave logging at `enclave_log_level` and `extra_config`
    /// appended to serve's configuration (`{dir}` in it: the system's directory).
    pub(crate) async fn start_with(
        enclave_log_level: &str,
        extra_config: &str,
        aws_env: impl FnOnce(&Path) -> Vec<(&'static str, String)>,
    ) -> System {
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("attestation");
        let ca = DevCa::load_or_create(&ca_dir).unwrap();
        let emulator = Emulator::open(&dir.path().join("kms")).unwrap();
        // As dev mode does: the key policy admits the enclave binary's measurement only.
        emulator
            .set_policy(AttestationPolicy {
                require_attestation: true,
                root_pem: ca.root_pem(),
                image_sha384: Some(hex::encode(pcr0_of_file(&nitro_wallet_bin()).unwrap())),
                pcrs: Default::default(),
            })
            .unwrap();
        let kms = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kms_url = format!("http://{}", kms.local_addr().unwrap());
        let router = emulator.router();
        tokio::spawn(async move { axum::serve(kms, router).await });

        let enclave = spawn_enclave(dir.path(), &kms_url, &[], enclave_log_level);
        let (serve, url) = spawn_serve(
            dir.path(),
            &format!(
                r#"
[enclave]
endpoint = "unix://{socket}"

[kms]
key_id = "alias/nitro-wallet"

[key_store]
kind = "file"
dir = "{keys}"

[credentials]
source = "aws"
region = "us-east-1"

{extra_config}
"#,
                socket = dir.path().join("enclave.sock").display(),
                keys = dir.path().join("keys").display(),
                extra_config = extra_config.replace("{dir}", &dir.path().display().to_string()),
            ),
            &aws_env(dir.path()),
        );
        let client = https_client(&dir.path().join("state/tls/cert.pem"));
        let mut system = System {
            dir,
            emulator,
            enclave,
            serve,
            url,
            client,
        };
        let keys = format!("{}/v1/keys", system.url);
        let log = || std::fs::read_to_string(system.dir.path().join("serve.log")).unwrap();
        wait_for_serve(&system.client, &keys, Some(TOKEN), &mut system.serve, log).await;
        system
    }

    async fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    /// Creates a key and signs with it; returns the address.
    async fn create_and_sign(&self) -> String {
        let (status, key) = self.post("/v1/keys", "").await;
        assert_eq!(status, 201, "{key}\n{}", self.log());
        let address = key["address"].as_str().unwrap().to_owned();
        let (status, signed) = self
            .post(&format!("/v1/keys/{address}/sign/transaction"), TX)
            .await;
        assert_eq!(status, 200, "{signed}");
        assert!(signed["raw_transaction"]
            .as_str()
            .unwrap()
            .starts_with("0x02"));
        address
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap()
    }

    /// SIGTERM to serve, which must stop cleanly (the refresh task included).
    pub(crate) fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.serve.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.serve.try_wait().unwrap() {
                assert!(status.success(), "serve: {status}\n{}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        for child in [&mut self.serve, &mut self.enclave] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn assert_no_secret(log: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!log.contains(s), "a secret appears in the serve log");
    }
}

#[tokio::test]
async fn serve_hands_environment_credentials_to_the_enclave_and_never_logs_them() {
    let mut sys = System::start(|_| {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN.to_owned()),
        ]
    })
    .await;
    sys.create_and_sign().await;
    // The enclave signed its KMS calls with the host's credentials, and only with them.
    assert_eq!(sys.emulator.access_key_ids_seen(), [ACCESS_KEY_ID]);
    sys.stop();
    let log = sys.log();
    assert!(log.contains("enclave AWS credentials refreshed"), "{log}");
    assert!(log.contains(ACCESS_KEY_ID), "{log}");
    assert!(log.lines().count() > 10, "trace logging is on: {log}");
    assert_no_secret(&log, &[SECRET_ACCESS_KEY, SESSION_TOKEN]);
    let enclave_log = std::fs::read_to_string(sys.dir.path().join("enclave.log")).unwrap();
    assert_no_secret(&enclave_log, &[SECRET_ACCESS_KEY, SESSION_TOKEN]);
}

/// A `credential_process` that counts its runs and prints credentials numbered by the count,
/// expiring `lifetime_secs` later.
fn credential_process(dir: &Path, lifetime_secs: u64) -> PathBuf {
    let script = dir.join("credential-process.sh");
    let count = dir.join("credential-process.count");
    std::fs::write(
        &script,
        format!(
            r#"#!/bin/sh
n=$(( $(cat '{count}' 2>/dev/null || echo 0) + 1 ))
echo "$n" > '{count}'
exp=$(date -u -d "+{lifetime_secs} seconds" +%Y-%m-%dT%H:%M:%SZ)
printf '{{"Version":1,"AccessKeyId":"AKIDPROC%04d","SecretAccessKey":"proc-secret-%04d-xyzzy","SessionToken":"proc-token-%04d-plugh","Expiration":"%s"}}' "$n" "$n" "$n" "$exp"
"#,
            count = count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[tokio::test]
async fn expiring_credentials_are_refreshed_without_restarting_anything() {
    const LIFETIME: u64 = 20;
    let mut sys = System::start(|dir| {
        let script = credential_process(dir, LIFETIME);
        let profile = dir.join("aws-config");
        std::fs::write(
            &profile,
            format!(
                "[default]\nregion = us-east-1\ncredential_process = {}\n",
                script.display()
            ),
        )
        .unwrap();
        vec![("AWS_CONFIG_FILE", profile.display().to_string())]
    })
    .await;
    let enclave_pid = sys.enclave.id();
    sys.create_and_sign().await;
    let first = sys.emulator.access_key_ids_seen();
    assert!(!first.is_empty());
    assert!(first.iter().all(|k| k.starts_with("AKIDPROC")), "{first:?}");

    // 80 % of 20 s later the host fetches and sends new credentials on its own.
    let count_path = sys.dir.path().join("credential-process.count");
    let runs = || -> u32 {
        std::fs::read_to_string(&count_path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    let before = runs();
    let deadline = Instant::now() + Duration::from_secs(60);
    let refreshed = loop {
        let log = sys.log();
        let newest = (before + 1..=runs())
            .rev()
            .map(|n| format!("AKIDPROC{n:04}"))
            .find(|needle| {
                log.lines()
                    .any(|l| l.contains("enclave AWS credentials refreshed") && l.contains(needle))
            });
        if let Some(n) = newest {
            break n;
        }
        assert!(Instant::now() < deadline, "no refresh:\n{log}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(!first.contains(&refreshed), "{first:?} {refreshed}");

    // The same enclave process now signs its KMS calls with the new credentials.
    sys.create_and_sign().await;
    let seen = sys.emulator.access_key_ids_seen();
    assert!(seen.contains(&refreshed), "{seen:?} lacks {refreshed}");
    assert_eq!(sys.enclave.id(), enclave_pid);
    assert!(
        sys.enclave.try_wait().unwrap().is_none(),
        "the enclave restarted"
    );

    sys.stop();
    let log = sys.log();
    let secrets: Vec<String> = (1..=runs())
        .flat_map(|n| [format!("proc-secret-{n:04}"), format!("proc-token-{n:04}")])
        .collect();
    assert_no_secret(
        &log,
        &secrets.iter().map(String::as_str).collect::<Vec<_>>(),
    );
}
