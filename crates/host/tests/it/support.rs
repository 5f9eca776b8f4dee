//! Test fixtures: an in-process system, the real `nitro-wallet dev` binary, and anvil.

use axum::{body::Body, Router};
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use nitro_wallet::{
    api::{self, auth::Tokens, Limits},
    config::{
        Config, CredentialsConfig, EnclaveConfig, KeyStoreConfig, KmsConfig, ServerConfig,
        TokenConfig,
    },
    server,
};
use nitro_wallet_attestation::{DevCa, DevNsm};
use nitro_wallet_enclave::{server::ServerLimits, Enclave};
use nitro_wallet_kms::emulator::{AttestationPolicy, Emulator};
use nitro_wallet_protocol::{transport::Listener, Endpoint};
use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};
use tower::ServiceExt;

pub const TOKEN: &str = "test-token-0123456789";

/// Anvil / Hardhat account 0 (a published development key, prefunded by anvil).
pub const ANVIL_KEY_0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
pub const ANVIL_ADDR_0: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/// The typed-data example of EIP-712 itself (`Mail` from Cow to Bob).
pub const MAIL: &str = r#"{
  "types": {
    "EIP712Domain": [
      {"name": "name", "type": "string"}, {"name": "version", "type": "string"},
      {"name": "chainId", "type": "uint256"}, {"name": "verifyingContract", "type": "address"}
    ],
    "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
    "Mail": [
      {"name": "from", "type": "Person"}, {"name": "to", "type": "Person"},
      {"name": "contents", "type": "string"}
    ]
  },
  "primaryType": "Mail",
  "domain": {"name": "Ether Mail", "version": "1", "chainId": 1,
             "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"},
  "message": {
    "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
    "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
    "contents": "Hello, Bob!"
  }
}"#;

/// The API in process, over a real enclave server (in a task) and the KMS emulator.
pub struct InProcess {
    pub router: Router,
    pub dir: tempfile::TempDir,
}

impl InProcess {
    pub async fn start() -> InProcess {
        Self::with_body_limit(256 * 1024).await
    }

    pub async fn with_body_limit(body_bytes: usize) -> InProcess {
        Self::with_config(body_bytes, |_, _| {}).await
    }

    /// With `edit` applied to the configuration (tokens, `[auth]`, …) before the API is built;
    /// it also gets the test's directory.
    pub async fn with_config(
        body_bytes: usize,
        edit: impl FnOnce(&mut Config, &Path),
    ) -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let emulator = Emulator::open(&dir.path().join("kms")).unwrap();
        // A simulated NSM measuring a made-up image, and the key policy that admits it.
        let ca = DevCa::load_or_create(&dir.path().join("attestation")).unwrap();
        let pcr0 = [7u8; 48];
        emulator
            .set_policy(AttestationPolicy {
                require_attestation: true,
                root_pem: ca.root_pem(),
                image_sha384: Some(hex::encode(pcr0)),
                pcrs: Default::default(),
            })
            .unwrap();
        let nsm = std::sync::Arc::new(DevNsm::new(ca, pcr0).unwrap());
        let kms = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kms_url = format!("http://{}", kms.local_addr().unwrap());
        tokio::spawn(emulator.serve(kms));

        let socket = dir.path().join("enclave.sock");
        let enclave = Enclave::new(&nitro_wallet_enclave::EnclaveConfig {
            kms: nitro_wallet_kms::KmsConfig {
                region: "us-east-1".into(),
                endpoint: Some(kms_url),
                proxy: None,
            },
            max_cached_keys: 100,
            nsm,
            unattested_kms: false,
        })
        .unwrap();
        let listener = Listener::bind(&Endpoint::Unix(socket.clone()))
            .await
            .unwrap();
        tokio::spawn(nitro_wallet_enclave::server::serve(
            listener,
            enclave,
            ServerLimits::default(),
        ));

        let mut config = Config {
            server: ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls_cert: None,
                tls_key: None,
                state_dir: dir.path().to_owned(),
                body_limit_bytes: body_bytes,
                request_timeout_secs: 30,
                max_concurrent_requests: 64,
            },
            enclave: EnclaveConfig {
                call_timeout_secs: 10,
                ..EnclaveConfig::new(vec![Endpoint::Unix(socket)])
            },
            kms: KmsConfig {
                key_id: "alias/nitro-wallet".into(),
            },
            key_store: KeyStoreConfig::File {
                dir: dir.path().join("keys"),
            },
            tokens: vec![TokenConfig::full_access("test", &Tokens::hash(TOKEN))],
            auth: Default::default(),
            credentials: CredentialsConfig::InsecureDev,
            rpc: Default::default(),
            audit: nitro_wallet::config::AuditConfig {
                path: Some(dir.path().join("audit.jsonl")),
            },
            metrics: Default::default(),
        };
        edit(&mut config, dir.path());
        let state = server::state(&config).await.unwrap();
        let router = api::router(
            state,
            Limits {
                body_bytes,
                request_timeout: Duration::from_secs(30),
                max_concurrent: 64,
            },
        );
        InProcess { router, dir }
    }

    /// Sends a request with the test token; returns the status and the body as text.
    pub async fn send_text(&self, method: &str, path: &str, body: &str) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = self.router.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// Sends a request; `token` None means no Authorization header.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: impl Into<Body>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(req.body(body.into()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("non-JSON body for {method} {path}: {bytes:?}"));
        (status, json)
    }

    pub async fn authed(
        &self,
        method: &str,
        path: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        self.send(method, path, Some(TOKEN), body.to_owned()).await
    }
}

pub fn nitro_wallet_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nitro-wallet"))
}

/// The real `nitro-wallet dev`, as a user starts it.
pub struct DevServer {
    pub url: String,
    pub data_dir: PathBuf,
    pub token: String,
    child: Child,
    stopped: bool,
    _dir: tempfile::TempDir,
}

impl DevServer {
    pub fn start() -> DevServer {
        Self::start_logging("warn")
    }

    /// Starts dev with `NITRO_WALLET_LOG=level`, its stderr (host and enclave logs) going to
    /// [`DevServer::log_path`].
    pub fn start_logging(level: &str) -> DevServer {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        Self::start_with(dir, data_dir, level, &[])
    }

    /// Starts dev on `data_dir` (which may hold an earlier run's state) with extra arguments;
    /// `dir` holds the log and is kept alive with the server.
    pub fn start_with(
        dir: tempfile::TempDir,
        data_dir: PathBuf,
        level: &str,
        extra: &[&str],
    ) -> DevServer {
        let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
        let mut child = Command::new(nitro_wallet_bin())
            .args(["dev", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(extra)
            .env("NITRO_WALLET_LOG", level)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("dev printed nothing").unwrap();
        let url = first
            .rsplit(' ')
            .next()
            .filter(|u| u.starts_with("https://"))
            .unwrap_or_else(|| panic!("unexpected banner: {first}"))
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let token = std::fs::read_to_string(data_dir.join("api-token"))
            .unwrap()
            .trim()
            .to_owned();
        DevServer {
            url,
            data_dir,
            token,
            child,
            stopped: false,
            _dir: dir,
        }
    }

    /// Stops the server and hands back its directories, to start again on the same state.
    pub fn stop_keeping_state(mut self) -> (tempfile::TempDir, PathBuf) {
        assert_eq!(self.stop().code(), Some(0));
        let placeholder = tempfile::tempdir().unwrap();
        let dir = std::mem::replace(&mut self._dir, placeholder);
        (dir, self.data_dir.clone())
    }

    pub fn log_path(&self) -> PathBuf {
        self._dir.path().join("dev.log")
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.data_dir.join("tls").join("cert.pem")
    }

    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(self.ca_cert()).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    pub fn enclave_pid(&self) -> u32 {
        std::fs::read_to_string(self.data_dir.join("enclave.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let status = self.terminate().expect("dev did not stop on SIGTERM");
        self.stopped = true;
        status
    }

    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        // SIGTERM first so that dev stops its enclave child too.
        if !self.stopped && self.terminate().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A real Ethereum node: anvil from the npm package `@foundry-rs/anvil`.
pub struct Anvil {
    pub url: String,
    child: Child,
}

pub use nitro_wallet_testkit::find_tool;

impl Anvil {
    pub fn start() -> Anvil {
        let port = free_port();
        let child = Command::new(find_tool("anvil"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--hardfork",
                "prague",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "anvil did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Anvil { url, child }
    }

    pub async fn rpc(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        let body =
            serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let response: serde_json::Value = reqwest::Client::new()
            .post(&self.url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if let Some(e) = response.get("error") {
            panic!("{method} failed: {e}");
        }
        response["result"].clone()
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the real enclave (`nitro-wallet enclave`) on `dir/enclave.sock` with the dev NSM of
/// `dir/attestation`, KMS at `kms_endpoint` and `extra` arguments, logging at `log_level` into
/// `dir/enclave.log`; returns once it listens.
pub fn spawn_enclave(dir: &Path, kms_endpoint: &str, extra: &[&str], log_level: &str) -> Child {
    let socket = dir.join("enclave.sock");
    let child = Command::new(nitro_wallet_bin())
        .arg("enclave")
        .arg("--listen")
        .arg(format!("unix://{}", socket.display()))
        .args(["--kms-endpoint", kms_endpoint, "--dev-nsm-dir"])
        .arg(dir.join("attestation"))
        .args(extra)
        .env("NITRO_WALLET_LOG", log_level)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("enclave.log")).unwrap())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(20), "the enclave socket", || {
        socket.exists()
    });
    child
}

/// Starts the real `nitro-wallet serve` on a free port with this configuration after
/// `[server]` (whose `state_dir` is `dir/state`) and a `test` token for [`TOKEN`], isolated
/// from the machine's AWS configuration (no `AWS_*` variables, empty config files, no IMDS),
/// with `env` on top, logging at trace into `dir/serve.log`. Returns the process and its URL.
pub fn spawn_serve(dir: &Path, config_tail: &str, env: &[(&str, String)]) -> (Child, String) {
    let port = free_port();
    let config = dir.join("nitro-wallet.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\nstate_dir = \"{state}\"\n\n{config_tail}\n\n\
             [[tokens]]\nname = \"test\"\nsha256 = \"{hash}\"\n",
            state = dir.join("state").display(),
            hash = nitro_wallet::api::auth::Tokens::hash(TOKEN),
        ),
    )
    .unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let empty = dir.join("empty-aws-file");
    std::fs::write(&empty, "").unwrap();
    let mut serve = Command::new(nitro_wallet_bin());
    serve.arg("serve").arg("--config").arg(&config);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            serve.env_remove(k);
        }
    }
    let child = serve
        .env("HOME", &home)
        .env("AWS_CONFIG_FILE", &empty)
        .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("NITRO_WALLET_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
        .spawn()
        .unwrap();
    (child, format!("https://127.0.0.1:{port}"))
}

/// Polls `ready` every 50 ms until it holds, failing the test after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !ready() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `url` (with `token` as bearer, if any) every 100 ms until it answers 200, failing the
/// test with `log()` if `serve` exits first, or after 30 s.
pub async fn wait_for_serve(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    serve: &mut Child,
    log: impl Fn() -> String,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut request = client.get(url);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        if request.send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        assert!(
            serve.try_wait().unwrap().is_none(),
            "serve exited:\n{}",
            log()
        );
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not answer {url}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A client trusting the certificate `serve` generates at `cert`, once it is written.
pub fn https_client(cert: &Path) -> reqwest::Client {
    wait_until(Duration::from_secs(30), "the TLS certificate", || {
        cert.exists()
    });
    // The certificate file may still be being written: retry until it parses.
    let mut client = None;
    wait_until(Duration::from_secs(10), "a readable certificate", || {
        client = std::fs::read(cert)
            .ok()
            .and_then(|pem| reqwest::Certificate::from_pem(&pem).ok())
            .map(|c| {
                reqwest::Client::builder()
                    .add_root_certificate(c)
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap()
            });
        client.is_some()
    });
    client.unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn hex_u128(v: &serde_json::Value) -> u128 {
    u128::from_str_radix(v.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// POSTs JSON to the dev server with its token; returns the status and the JSON body.
pub async fn post(
    client: &reqwest::Client,
    dev: &DevServer,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = client
        .post(format!("{}{path}", dev.url))
        .bearer_auth(&dev.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Runs `command` with `stdin` on its standard input and collects its output (the caller
/// checks the status and says what failed).
pub fn run_with_stdin(command: &mut Command, stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
