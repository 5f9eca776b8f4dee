//! Integration tests of the real `nitro-wallet-enclave` binary over a Unix socket, with the
//! local KMS emulator serving the real AWS SDK calls.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod audit;

use nitro_wallet_attestation::{pcr0_of_file, DevCa};
use nitro_wallet_kms::emulator::{AttestationPolicy, Emulator};
use nitro_wallet_protocol::{
    frame,
    message::{Credentials, GenerateKey, SignTransaction, WrappedKey},
    ErrorCode, Reply, Request, RequestFrame, Response, ResponseFrame, SecretString,
    PROTOCOL_VERSION,
};
use serde_json::value::RawValue;
use std::{
    path::PathBuf,
    process::{Child, Command},
    time::Duration,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
};

const KMS_KEY: &str = "alias/nitro-wallet";
const T: Duration = Duration::from_secs(10);

struct Enclave {
    dir: tempfile::TempDir,
    socket: PathBuf,
    kms_url: String,
    child: Child,
    emulator: Emulator,
}

/// The KMS key policy that admits exactly this build of the enclave binary, as dev mode
/// writes it: attestation required, dev CA root, PCR0 = SHA-384 of the binary.
fn policy_for_this_build(ca_dir: &std::path::Path) -> AttestationPolicy {
    let ca = DevCa::load_or_create(ca_dir).unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_nitro-wallet-enclave"));
    AttestationPolicy {
        require_attestation: true,
        root_pem: ca.root_pem(),
        image_sha384: Some(hex::encode(pcr0_of_file(binary).unwrap())),
        pcrs: Default::default(),
    }
}

impl Enclave {
    async fn start() -> Enclave {
        let dir = tempfile::tempdir().unwrap();
        let emulator = Emulator::open(&dir.path().join("kms")).unwrap();
        emulator
            .set_policy(policy_for_this_build(&dir.path().join("attestation")))
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let kms_url = format!("http://{}", listener.local_addr().unwrap());
        let router = emulator.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let socket = dir.path().join("enclave.sock");
        let child = spawn(dir.path(), &kms_url);
        let mut e = Enclave {
            dir,
            socket,
            kms_url,
            child,
            emulator,
        };
        e.wait_ready().await;
        e
    }

    async fn wait_ready(&mut self) {
        for _ in 0..200 {
            if UnixStream::connect(&self.socket).await.is_ok() {
                return;
            }
            assert!(
                self.child.try_wait().unwrap().is_none(),
                "enclave exited at start"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("enclave did not listen");
    }

    async fn restart(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.child = spawn(self.dir.path(), &self.kms_url);
        self.wait_ready().await;
    }

    async fn connect(&self) -> Conn {
        let mut c = Conn {
            stream: UnixStream::connect(&self.socket).await.unwrap(),
            next: 1,
        };
        let creds = Request::SetCredentials(Credentials {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: SecretString::new("test-secret".into()),
            session_token: None,
            expires_at: None,
        });
        assert!(matches!(c.call(creds).await, Reply::Ok(Response::Done)));
        c
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Enclave {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

fn spawn(dir: &std::path::Path, kms_url: &str) -> Child {
    let socket = dir.join("enclave.sock");
    Command::new(env!("CARGO_BIN_EXE_nitro-wallet-enclave"))
        .args([
            "--listen",
            &format!("unix://{}", socket.display()),
            "--kms-endpoint",
            kms_url,
        ])
        .arg("--dev-nsm-dir")
        .arg(dir.join("attestation"))
        .env("NITRO_WALLET_LOG", "warn")
        .spawn()
        .unwrap()
}

struct Conn {
    stream: UnixStream,
    next: u64,
}

impl Conn {
    async fn send(&mut self, req: Request) -> u64 {
        let id = self.next;
        self.next += 1;
        let bytes = frame::encode(&RequestFrame {
            v: PROTOCOL_VERSION,
            id,
            req,
            request_id: None,
        })
        .unwrap();
        self.stream.write_all(&bytes).await.unwrap();
        id
    }

    async fn recv(&mut self) -> Option<ResponseFrame> {
        let mut buf = Vec::new();
        let more = tokio::time::timeout(T, frame::read_frame(&mut self.stream, &mut buf, T))
            .await
            .expect("no reply in time")
            .ok()?;
        more.then(|| frame::decode(&buf).unwrap())
    }

    async fn call(&mut self, req: Request) -> Reply {
        let id = self.send(req).await;
        let r = self.recv().await.expect("connection closed");
        assert_eq!(r.id, id);
        r.reply
    }

    async fn generate(&mut self) -> WrappedKey {
        match self
            .call(Request::GenerateKey(GenerateKey {
                kms_key_id: KMS_KEY.into(),
                policy: None,
            }))
            .await
        {
            Reply::Ok(Response::Key(k)) => k,
            other => panic!("generate failed: {other:?}"),
        }
    }

    async fn sign(&mut self, key: &WrappedKey, nonce: u64) -> Reply {
        self.call(sign_request(key, nonce)).await
    }

    async fn ping(&mut self) {
        assert!(matches!(
            self.call(Request::Ping).await,
            Reply::Ok(Response::Pong(_))
        ));
    }
}

fn sign_request(key: &WrappedKey, nonce: u64) -> Request {
    let tx = format!(
        r#"{{"chainId":"0x7a69","nonce":"{nonce}","gas":"0x5208","maxFeePerGas":"0x77359400",
            "maxPriorityFeePerGas":"0x3b9aca00","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"0x1"}}"#
    );
    Request::SignTransaction(SignTransaction {
        key: key.clone(),
        transaction: RawValue::from_string(tx).unwrap(),
        window: None,
    })
}

fn err_code(reply: &Reply) -> ErrorCode {
    match reply {
        Reply::Err(e) => e.code,
        Reply::Ok(r) => panic!("expected an error, got {r:?}"),
    }
}

#[tokio::test]
async fn bad_frames_close_only_their_connection() {
    let mut enclave = Enclave::start().await;
    let mut good = enclave.connect().await;
    let key = good.generate().await;

    // Garbage payload in a well-formed frame: answered `bad_frame`, then closed.
    let mut garbage = UnixStream::connect(&enclave.socket).await.unwrap();
    garbage
        .write_all(&[0, 0, 0, 5, b'{', 0xff, b'x', b'"', b'}'])
        .await
        .unwrap();
    let mut c = Conn {
        stream: garbage,
        next: 1,
    };
    let r = c.recv().await.expect("an error frame before closing");
    assert_eq!((r.id, err_code(&r.reply)), (0, ErrorCode::BadFrame));
    assert!(c.recv().await.is_none(), "connection must be closed");

    // Oversized length prefix: refused before any allocation, connection closed.
    let mut big = UnixStream::connect(&enclave.socket).await.unwrap();
    big.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    let mut c = Conn {
        stream: big,
        next: 1,
    };
    let r = c.recv().await.expect("an error frame before closing");
    assert_eq!(err_code(&r.reply), ErrorCode::BadFrame);
    assert!(c.recv().await.is_none());

    // Truncated frame, then the client hangs up.
    let mut cut = UnixStream::connect(&enclave.socket).await.unwrap();
    cut.write_all(&[0, 0, 1, 0, b'{', b'"']).await.unwrap();
    drop(cut);

    // Random bytes of every kind.
    for seed in 0u8..20 {
        let mut s = UnixStream::connect(&enclave.socket).await.unwrap();
        let junk: Vec<u8> = (0..64u8)
            .map(|i| i.wrapping_mul(seed).wrapping_add(seed))
            .collect();
        let _ = s.write_all(&junk).await;
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_millis(200), s.read_to_end(&mut sink)).await;
    }

    // The first connection and new ones still work, and the process is alive.
    assert!(matches!(
        good.sign(&key, 0).await,
        Reply::Ok(Response::SignedTransaction(_))
    ));
    enclave.connect().await.ping().await;
    assert!(enclave.alive());
}

#[tokio::test]
async fn a_stalled_frame_is_cut_but_an_idle_connection_is_not() {
    let enclave = Enclave::start().await;
    let mut idle = enclave.connect().await;
    let mut stalled = UnixStream::connect(&enclave.socket).await.unwrap();
    stalled.write_all(&[0, 0, 0]).await.unwrap();
    // The server's stall limit is 30 s; this test only checks that idling is harmless.
    tokio::time::sleep(Duration::from_millis(300)).await;
    idle.ping().await;
}

#[tokio::test]
async fn other_protocol_versions_are_refused_politely() {
    let enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let bytes = frame::encode(&RequestFrame {
        v: 99,
        id: 7,
        req: Request::Ping,
        request_id: None,
    })
    .unwrap();
    c.stream.write_all(&bytes).await.unwrap();
    let r = c.recv().await.unwrap();
    assert_eq!(
        (r.id, err_code(&r.reply)),
        (7, ErrorCode::UnsupportedVersion)
    );
    c.ping().await;
}

#[tokio::test]
async fn many_requests_in_flight_on_one_connection() {
    let enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let key = c.generate().await;
    let mut ids = std::collections::HashSet::new();
    for nonce in 0..200 {
        ids.insert(c.send(sign_request(&key, nonce)).await);
    }
    for _ in 0..200 {
        let r = c.recv().await.unwrap();
        assert!(ids.remove(&r.id), "unexpected id {}", r.id);
        assert!(matches!(r.reply, Reply::Ok(Response::SignedTransaction(_))));
    }
}

#[tokio::test]
async fn a_restarted_enclave_serves_the_same_key() {
    let mut enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let key = c.generate().await;
    let Reply::Ok(Response::SignedTransaction(before)) = c.sign(&key, 3).await else {
        panic!("sign failed")
    };
    assert_eq!(before.from, key.address);

    enclave.restart().await;
    let mut c = enclave.connect().await;
    let Reply::Ok(Response::SignedTransaction(after)) = c.sign(&key, 3).await else {
        panic!("sign after restart failed")
    };
    // RFC 6979: same key, same transaction, same signature.
    assert_eq!(before, after);
}

/// `LoadKey` (the host's warm-up) unwraps a key into a restarted enclave's cache without
/// signing, and is refused for a ciphertext that is not the key it names.
#[tokio::test]
async fn load_key_fills_the_cache_of_a_restarted_enclave() {
    let mut enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let (one, two, three) = (c.generate().await, c.generate().await, c.generate().await);
    enclave.restart().await;
    let mut c = enclave.connect().await;
    assert_eq!(pong(&mut c).await.cached_keys, 0);
    assert!(matches!(
        c.call(Request::LoadKey(one.clone())).await,
        Reply::Ok(Response::Done)
    ));
    assert_eq!(pong(&mut c).await.cached_keys, 1);
    // Another key's ciphertext under `three`'s address: KMS refuses the context.
    let mut forged = two.clone();
    forged.address = three.address;
    forged.public_key = None;
    let _ = err_code(&c.call(Request::LoadKey(forged)).await);
    assert_eq!(pong(&mut c).await.cached_keys, 1);
    assert!(matches!(
        c.call(Request::LoadKey(two)).await,
        Reply::Ok(Response::Done)
    ));
    assert_eq!(pong(&mut c).await.cached_keys, 2);
}

async fn pong(c: &mut Conn) -> nitro_wallet_protocol::message::Pong {
    match c.call(Request::Ping).await {
        Reply::Ok(Response::Pong(p)) => p,
        other => panic!("ping failed: {other:?}"),
    }
}

#[tokio::test]
async fn a_ciphertext_presented_for_another_address_is_refused() {
    let enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let key = c.generate().await;
    let forged = WrappedKey {
        address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
            .parse()
            .unwrap(),
        ..key.clone()
    };
    assert_eq!(
        err_code(&c.sign(&forged, 0).await),
        ErrorCode::KmsInvalidCiphertext
    );

    let tampered = WrappedKey {
        address: key.address,
        kms_key_id: key.kms_key_id.clone(),
        ciphertext: {
            let mut ct = key.ciphertext.clone();
            let last = ct.len() - 1;
            ct[last] ^= 1;
            ct
        },
        public_key: None,
        policy: None,
    };
    // The genuine key is cached, so a tampered record of the same address still signs as that
    // address; after a restart the tampered ciphertext must be refused.
    drop(c);
    let mut enclave = enclave;
    enclave.restart().await;
    let mut c = enclave.connect().await;
    assert_eq!(
        err_code(&c.sign(&tampered, 0).await),
        ErrorCode::KmsInvalidCiphertext
    );
    assert!(matches!(
        c.sign(&key, 0).await,
        Reply::Ok(Response::SignedTransaction(_))
    ));
}

#[tokio::test]
async fn invalid_requests_get_typed_errors() {
    let enclave = Enclave::start().await;
    // Without credentials, KMS calls are refused, not crashed on.
    let mut bare = Conn {
        stream: UnixStream::connect(&enclave.socket).await.unwrap(),
        next: 1,
    };
    let r = bare
        .call(Request::GenerateKey(GenerateKey {
            kms_key_id: KMS_KEY.into(),
            policy: None,
        }))
        .await;
    assert_eq!(err_code(&r), ErrorCode::KmsDenied);

    let mut c = enclave.connect().await;
    let key = c.generate().await;
    let tx = RawValue::from_string(r#"{"chainId":"0x1","gas":"0x5208","gasPrice":"0x1"}"#.into())
        .unwrap();
    let r = c
        .call(Request::SignTransaction(SignTransaction {
            key: key.clone(),
            transaction: tx,
            window: None,
        }))
        .await;
    match r {
        Reply::Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidTransaction);
            assert_eq!(e.field.as_deref(), Some("nonce"));
        }
        other => panic!("{other:?}"),
    }
    let r = c
        .call(Request::ImportKey(nitro_wallet_protocol::ImportKey {
            kms_key_id: KMS_KEY.into(),
            private_key: SecretString::new("not-a-key-0123".into()),
            policy: None,
        }))
        .await;
    match r {
        Reply::Err(e) => {
            assert_eq!(e.code, ErrorCode::InvalidRequest);
            assert!(
                !e.message.contains("not-a-key-0123"),
                "the input must not be echoed"
            );
        }
        other => panic!("{other:?}"),
    }
    let r = c
        .call(Request::GenerateKey(GenerateKey {
            kms_key_id: "alias/none".into(),
            policy: None,
        }))
        .await;
    assert_eq!(err_code(&r), ErrorCode::KmsKeyNotFound);
}

#[tokio::test]
async fn keys_unwrap_only_for_the_measured_build() {
    let mut enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let key = c.generate().await;

    // The key policy now names another image: after a restart (empty cache) the key must not
    // unwrap, with a clear reason and no signature.
    let good = enclave.emulator.policy();
    enclave
        .emulator
        .set_policy(AttestationPolicy {
            image_sha384: Some("ab".repeat(48)),
            ..good.clone()
        })
        .unwrap();
    enclave.restart().await;
    let mut c = enclave.connect().await;
    match c.sign(&key, 0).await {
        Reply::Err(e) => {
            assert_eq!(e.code, ErrorCode::KmsDenied, "{e:?}");
            assert!(e.message.contains("attestation policy"), "{}", e.message);
            assert!(
                e.message.contains("PCR0") || e.message.contains("ImageSha384"),
                "{}",
                e.message
            );
        }
        other => panic!("signed despite the policy: {other:?}"),
    }

    // Restoring the policy restores the key.
    enclave.emulator.set_policy(good).unwrap();
    assert!(matches!(
        c.sign(&key, 0).await,
        Reply::Ok(Response::SignedTransaction(_))
    ));

    // Attestation documents for clients carry their nonce and the enclave's recipient key.
    let r = c
        .call(Request::Attestation(
            nitro_wallet_protocol::AttestationRequest {
                nonce: Some(b"client nonce".to_vec()),
            },
        ))
        .await;
    let Reply::Ok(Response::Attestation(doc)) = r else {
        panic!("{r:?}")
    };
    assert!(doc.dev);
    let ca_root = DevCa::load_root(&enclave.dir.path().join("attestation")).unwrap();
    let verified = nitro_wallet_attestation::verify(
        &doc.document,
        &nitro_wallet_attestation::VerifyOptions::with_root(ca_root)
            .expect_nonce(b"client nonce".to_vec()),
    )
    .unwrap();
    assert!(verified.document.public_key.is_some());
}

/// The policy is decided here, not in the host: a request sent straight to the enclave's
/// socket, as a compromised host would, gets the refusal with the rule named; and a record
/// whose policy was edited (in the key store, by hand) no longer unwraps.
#[tokio::test]
async fn the_policy_holds_without_the_host_and_cannot_be_edited_outside_the_enclave() {
    let mut enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let strict = r#"{"chain_ids": [1], "max_value_wei": "0"}"#;
    let key = match c
        .call(Request::GenerateKey(GenerateKey {
            kms_key_id: KMS_KEY.into(),
            policy: Some(strict.into()),
        }))
        .await
    {
        Reply::Ok(Response::Key(k)) => k,
        other => panic!("generate failed: {other:?}"),
    };
    assert!(key
        .policy
        .as_deref()
        .is_some_and(|p| p.contains("max_value_wei")));
    // sign_request sends chain 0x7a69 and value 1: the first rule that refuses is named.
    let refused = c.sign(&key, 0).await;
    let Reply::Err(e) = &refused else {
        panic!("signed against the policy: {refused:?}")
    };
    assert_eq!(e.code, ErrorCode::PolicyDenied);
    assert_eq!(e.field.as_deref(), Some("chain_ids"));

    // The same record with its policy relaxed by hand: after a restart (empty cache) KMS
    // refuses to unwrap it, because the policy digest is in the encryption context.
    let edited = WrappedKey {
        policy: Some(r#"{"chain_ids": [31337]}"#.into()),
        ..key.clone()
    };
    let dropped = WrappedKey {
        policy: None,
        ..key.clone()
    };
    drop(c);
    enclave.restart().await;
    let mut c = enclave.connect().await;
    for forged in [&edited, &dropped] {
        assert_eq!(
            err_code(&c.sign(forged, 0).await),
            ErrorCode::KmsInvalidCiphertext
        );
    }
    // The genuine record still unwraps, still under its policy.
    let Reply::Err(e) = c.sign(&key, 0).await else {
        panic!("signed against the policy after a restart")
    };
    assert_eq!(e.code, ErrorCode::PolicyDenied);
}

/// The rolling window travels as a state the enclave seals and the host keeps: the limit holds
/// across a restart, an older (replayed), missing or altered state is refused.
#[tokio::test]
async fn the_window_holds_across_a_restart_and_replays_are_refused() {
    let mut enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let key = match c
        .call(Request::GenerateKey(GenerateKey {
            kms_key_id: KMS_KEY.into(),
            policy: Some(r#"{"window": {"seconds": 3600, "max_count": 2}}"#.into()),
        }))
        .await
    {
        Reply::Ok(Response::Key(k)) => k,
        other => panic!("generate failed: {other:?}"),
    };
    let sign = |nonce: u64, window: Option<nitro_wallet_protocol::SealedWindow>| {
        let Request::SignTransaction(mut s) = sign_request(&key, nonce) else {
            unreachable!()
        };
        s.window = window;
        Request::SignTransaction(s)
    };
    let windowed = |reply: Reply| match reply {
        Reply::Ok(Response::WindowedTransaction(w)) => w.window,
        other => panic!("expected a windowed signature, got {other:?}"),
    };
    let w1 = windowed(c.call(sign(0, None)).await);
    let w2 = windowed(c.call(sign(1, Some(w1.clone()))).await);
    assert!(w2.state.starts_with(r#"{"seq":2,"#), "{}", w2.state);

    let field = |reply: &Reply| match reply {
        Reply::Err(e) => (e.code, e.field.clone().unwrap_or_default()),
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert_eq!(
        field(&c.call(sign(2, Some(w2.clone()))).await),
        (ErrorCode::PolicyDenied, "window.max_count".into())
    );
    // An older state, or none, while this enclave knows seq 2: replay refused.
    for stale in [Some(w1.clone()), None] {
        assert_eq!(
            field(&c.call(sign(2, stale)).await),
            (ErrorCode::WindowStateRejected, "window".into())
        );
    }
    // A state whose entries were edited does not verify.
    let forged = nitro_wallet_protocol::SealedWindow {
        state: w2.state.replace(r#""seq":2"#, r#""seq":9"#),
        ..w2.clone()
    };
    assert_eq!(
        field(&c.call(sign(2, Some(forged.clone()))).await),
        (ErrorCode::WindowStateRejected, "window".into())
    );

    // After a restart the sealed state the host kept still counts.
    drop(c);
    enclave.restart().await;
    let mut c = enclave.connect().await;
    assert_eq!(
        field(&c.call(sign(2, Some(forged))).await),
        (ErrorCode::WindowStateRejected, "window".into())
    );
    assert_eq!(
        field(&c.call(sign(2, Some(w2))).await),
        (ErrorCode::PolicyDenied, "window.max_count".into())
    );
}

/// The enclave process turns core dumps off before it holds any key.
#[tokio::test]
async fn the_enclave_process_makes_no_core_dumps() {
    let enclave = Enclave::start().await;
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", enclave.child.id())).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .expect("no core limit line");
    let fields: Vec<&str> = core.split_whitespace().collect();
    assert_eq!(&fields[4..6], ["0", "0"], "{core}");
}
