//! The enclave pool: balancing, health, failover and readiness, in process against stand-in
//! enclaves and end to end with `nitro-wallet dev --enclaves 2` under load; and the vsock
//! transport over AF_VSOCK loopback where the kernel offers it.

use crate::support::{nitro_wallet_bin, post, wait_until, DevServer};
use futures::StreamExt;
use nitro_wallet::{
    enclave_client::{CallError, ClientTimeouts},
    enclave_pool::{EnclavePool, MemberState, PoolOptions},
};
use nitro_wallet_protocol::{
    frame, transport::Listener, Endpoint, Pong, Reply, RequestFrame, Response, ResponseFrame,
    PROTOCOL_VERSION,
};
use serde_json::{json, Value};
use std::{
    path::Path,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};
use tokio::io::AsyncWriteExt;

/// How a stand-in enclave behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeMode {
    /// Answers every request with a pong.
    Answer,
    /// Accepts connections and reads requests, but never answers (a hung enclave).
    Hang,
}

/// A stand-in enclave on `listener`: speaks the real framing; counts the requests it answered.
/// Dropping (aborting) it closes its listener and every connection, like a killed process.
pub async fn fake_enclave(listener: Listener, mode: FakeMode, answered: Arc<AtomicU64>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        while connections.try_join_next().is_some() {}
        let Ok(stream) = listener.accept().await else {
            continue;
        };
        let answered = answered.clone();
        connections.spawn(async move {
            let (mut reader, mut writer) = tokio::io::split(stream);
            let mut buf = Vec::new();
            while let Ok(true) =
                frame::read_frame(&mut reader, &mut buf, Duration::from_secs(30)).await
            {
                if mode == FakeMode::Hang {
                    continue;
                }
                let Ok(request) = frame::decode::<RequestFrame>(&buf) else {
                    return;
                };
                let reply = ResponseFrame {
                    v: PROTOCOL_VERSION,
                    id: request.id,
                    reply: Reply::Ok(Response::Pong(Pong {
                        version: "fake".into(),
                        cached_keys: 0,
                        has_credentials: false,
                        stats: None,
                    })),
                };
                let bytes = frame::encode(&reply).unwrap();
                // A little work, so that requests overlap.
                tokio::time::sleep(Duration::from_millis(2)).await;
                if writer.write_all(&bytes).await.is_err() {
                    return;
                }
                answered.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

struct Fake {
    endpoint: Endpoint,
    answered: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    async fn start(path: &Path, mode: FakeMode) -> Fake {
        let endpoint = Endpoint::Unix(path.to_owned());
        let listener = Listener::bind(&endpoint).await.unwrap();
        let answered = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(fake_enclave(listener, mode, answered.clone()));
        Fake {
            endpoint,
            answered,
            task,
        }
    }

    fn count(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }
}

fn fast_options() -> PoolOptions {
    PoolOptions {
        timeouts: ClientTimeouts {
            connect: Duration::from_secs(1),
            call: Duration::from_secs(10),
        },
        health_interval: Duration::from_millis(100),
        health_timeout: Duration::from_millis(300),
    }
}

async fn eventually(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_balances_skips_dead_and_hung_enclaves_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let a = Fake::start(&dir.path().join("a.sock"), FakeMode::Answer).await;
    let b = Fake::start(&dir.path().join("b.sock"), FakeMode::Answer).await;
    let hung = Fake::start(&dir.path().join("hung.sock"), FakeMode::Hang).await;
    let dead = Endpoint::Unix(dir.path().join("nobody.sock"));
    let pool = Arc::new(EnclavePool::new(
        vec![
            a.endpoint.clone(),
            b.endpoint.clone(),
            hung.endpoint.clone(),
            dead,
        ],
        fast_options(),
        None,
    ));

    // 200 requests, 16 at a time, sent before the probes have judged anyone: the ones that
    // land on the dead or hung enclave are retried on a live one. None fails.
    let calls = (0..200).map(|_| {
        let pool = pool.clone();
        async move { pool.call(nitro_wallet_protocol::Request::Ping).await }
    });
    let results: Vec<_> = futures::stream::iter(calls)
        .buffer_unordered(16)
        .collect()
        .await;
    for r in &results {
        assert!(
            matches!(r, Ok(Response::Pong(_))),
            "a request failed: {r:?}"
        );
    }
    // Both live enclaves served a fair share (least outstanding, rotating ties).
    let (na, nb) = (a.count(), b.count());
    assert!(na >= 40 && nb >= 40, "unbalanced: {na} / {nb}");

    let health = pool.health();
    assert!(health.ready);
    let states: Vec<MemberState> = health.enclaves.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            MemberState::Up,
            MemberState::Up,
            MemberState::Down,
            MemberState::Down
        ],
        "{health:?}"
    );
    assert!(
        health.enclaves[2]
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains("hung") || e.contains("lost")),
        "{health:?}"
    );
    assert!(health.enclaves[0].served + health.enclaves[1].served >= 200);
    assert_eq!(health.enclaves[3].served, 0);
    assert!(health.enclaves.iter().all(|e| e.in_flight == 0));

    // Every live enclave gone: callers get "unavailable" at once, and the pool is not ready.
    a.task.abort();
    b.task.abort();
    drop((a, b));
    // The listeners' sockets close with their tasks; connected streams were in sub-tasks:
    // wait until the probes notice.
    eventually(Duration::from_secs(10), "every enclave down", || {
        !pool.health().ready
    })
    .await;
    let started = Instant::now();
    let e = pool
        .call(nitro_wallet_protocol::Request::Ping)
        .await
        .unwrap_err();
    assert!(matches!(e, CallError::Unavailable(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(!pool.readiness().await.ready);

    // One comes back on its socket: ready again, and it serves.
    let back = Fake::start(&dir.path().join("a.sock"), FakeMode::Answer).await;
    eventually(Duration::from_secs(10), "the enclave back up", || {
        pool.health().ready
    })
    .await;
    assert!(matches!(
        pool.call(nitro_wallet_protocol::Request::Ping).await,
        Ok(Response::Pong(_))
    ));
    assert!(back.count() >= 1);
    assert!(pool.health().enclaves[0].downs >= 1);
}

/// The AF_VSOCK transport over the kernel's loopback (CID 1), through the same client and
/// framing the Unix-socket tests use; skipped, and said so, where the kernel has no vsock
/// loopback (most containers and CI runners).
#[tokio::test]
async fn vsock_loopback_or_skip() {
    let port = 40_000 + std::process::id() % 20_000;
    let listen = Endpoint::Vsock {
        cid: nitro_wallet_protocol::endpoint::VSOCK_CID_ANY,
        port,
    };
    let listener = match Listener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            println!("SKIPPED vsock_loopback_or_skip: cannot bind {listen} ({e}); this kernel offers no AF_VSOCK (load vhost_vsock or vsock_loopback to run it)");
            return;
        }
    };
    let loopback = Endpoint::Vsock { cid: 1, port };
    if let Err(e) =
        nitro_wallet_protocol::transport::connect(&loopback, Duration::from_secs(2)).await
    {
        println!("SKIPPED vsock_loopback_or_skip: cannot connect to {loopback} ({e}); load the vsock_loopback module to run it");
        return;
    }
    let answered = Arc::new(AtomicU64::new(0));
    tokio::spawn(fake_enclave(listener, FakeMode::Answer, answered.clone()));
    let pool = EnclavePool::new(vec![loopback.clone()], fast_options(), None);
    for _ in 0..20 {
        assert!(matches!(
            pool.call(nitro_wallet_protocol::Request::Ping).await,
            Ok(Response::Pong(_))
        ));
    }
    assert!(answered.load(Ordering::Relaxed) >= 20);
    println!("vsock_loopback_or_skip: 20 pings over {loopback} answered");
}

fn readyz_members(body: &Value) -> Vec<Value> {
    body["enclaves"].as_array().cloned().unwrap_or_default()
}

async fn readyz(client: &reqwest::Client, dev: &DevServer) -> (u16, Option<String>, Value) {
    let r = client
        .get(format!("{}/readyz", dev.url))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, r.json().await.unwrap())
}

fn pid_in(dev: &DevServer, file: &str) -> Option<u32> {
    std::fs::read_to_string(dev.data_dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn sigkill(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

const TX: &str = r#"{"chainId":"0x1","nonce":"0x7","gas":"21000","maxFeePerGas":"30000000000",
  "maxPriorityFeePerGas":"1000000000","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  "value":"0xde0b6b3a7640000"}"#;

/// Two enclave processes under 8 concurrent signing clients; one is killed with SIGKILL.
/// Every answer is the one signature (deterministic signing) or a clean 503; the supervisor
/// restarts the killed enclave and the pool sends it traffic again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_under_load_when_an_enclave_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dev = Arc::new(DevServer::start_with(
        dir,
        data,
        "info",
        &["--enclaves", "2"],
    ));
    let client = dev.client();
    let (status, key) = post(&client, &dev, "/v1/keys", json!({"label": "failover"})).await;
    assert_eq!(status, 201, "{key}");
    let path = format!(
        "/v1/keys/{}/sign/transaction",
        key["address"].as_str().unwrap()
    );
    let tx: Value = serde_json::from_str(TX).unwrap();
    let (status, reference) = post(&client, &dev, &path, tx.clone()).await;
    assert_eq!(status, 200, "{reference}");
    let reference = reference["raw_transaction"].as_str().unwrap().to_owned();

    // Both enclaves up.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, _, body) = readyz(&client, &dev).await;
        let members = readyz_members(&body);
        if status == 200 && members.len() == 2 && members.iter().all(|m| m["state"] == "up") {
            break;
        }
        assert!(Instant::now() < deadline, "enclaves not up: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Load: 8 clients signing continuously.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, unavailable) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let (client, dev, path, tx, reference) = (
                dev.client(),
                dev.clone(),
                path.clone(),
                tx.clone(),
                reference.clone(),
            );
            let (stop, ok, unavailable) = (stop.clone(), ok.clone(), unavailable.clone());
            tokio::spawn(async move {
                let mut wrong = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let r = client
                        .post(format!("{}{path}", dev.url))
                        .bearer_auth(&dev.token)
                        .json(&tx)
                        .send()
                        .await;
                    let r = match r {
                        Ok(r) => r,
                        Err(e) => {
                            wrong.push(format!("transport error: {e}"));
                            continue;
                        }
                    };
                    let status = r.status().as_u16();
                    let retry_after = r.headers().contains_key("retry-after");
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    match status {
                        200 if body["raw_transaction"] == reference.as_str() => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        503 if retry_after && body["error"]["code"].is_string() => {
                            unavailable.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => wrong.push(format!("{status} {body}")),
                    }
                }
                wrong
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_millis(700)).await;
    let before_kill = ok.load(Ordering::Relaxed);
    assert!(before_kill > 0, "no request succeeded under load");
    let killed = pid_in(&dev, "enclave-1.pid").expect("enclave-1.pid");
    let killed_at = Instant::now();
    sigkill(killed);

    // The supervisor starts a new process; the pool marks it up and sends it traffic again.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut restarted = None;
    let mut served_after_restart = None;
    let outcome = loop {
        if restarted.is_none() {
            restarted = pid_in(&dev, "enclave-1.pid").filter(|p| *p != killed);
        }
        let (_, _, body) = readyz(&client, &dev).await;
        let member = readyz_members(&body)
            .into_iter()
            .find(|m| {
                m["endpoint"]
                    .as_str()
                    .is_some_and(|e| e.ends_with("enclave-1.sock"))
            })
            .unwrap_or(Value::Null);
        if restarted.is_some() && member["state"] == "up" && member["downs"].as_u64() >= Some(1) {
            let served = member["served"].as_u64().unwrap_or(0);
            match served_after_restart {
                None => served_after_restart = Some(served),
                Some(first) if served >= first + 20 => break Ok(member),
                Some(_) => {}
            }
        }
        if Instant::now() > deadline {
            break Err(format!("restarted: {restarted:?}, member: {member}"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let recovered_in = killed_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut wrong = Vec::new();
    for c in clients {
        wrong.extend(c.await.unwrap());
    }
    let log = std::fs::read_to_string(dev.log_path()).unwrap_or_default();
    let member = outcome.unwrap_or_else(|e| panic!("traffic did not return: {e}\n{log}"));
    assert!(wrong.is_empty(), "wrong answers: {wrong:?}");
    let (ok, unavailable) = (
        ok.load(Ordering::Relaxed),
        unavailable.load(Ordering::Relaxed),
    );
    println!(
        "failover: {ok} signatures, {unavailable} clean 503s, enclave-1 back and serving \
         {recovered_in:?} after SIGKILL: {member}"
    );
    assert!(ok > before_kill);
    for needle in [
        "enclave down",
        "enclave up",
        "enclave unhealthy: terminating and restarting it",
        "enclave started",
    ] {
        assert!(log.contains(needle), "no `{needle}` in the log:\n{log}");
    }
}

/// `/readyz` fails within seconds when the only enclave dies and recovers once it is back.
/// The enclave is started through a gate script, so that its restart can be held back long
/// enough to observe the outage without racing the supervisor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_fails_when_the_only_enclave_dies_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("hold-restart");
    let script = dir.path().join("gated-enclave.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nwhile [ -e '{gate}' ]; do sleep 0.05; done\nexec '{bin}' enclave \"$@\"\n",
            gate = gate.display(),
            bin = nitro_wallet_bin().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let script_arg = script.display().to_string();
    let dev = DevServer::start_with(dir, data, "info", &["--enclave-bin", &script_arg]);
    let client = dev.client();
    let (status, _, body) = readyz(&client, &dev).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(readyz_members(&body).len(), 1);

    // Kill the enclave and hold its restart.
    std::fs::write(&gate, "").unwrap();
    // `enclave_pid` is the gate script's pid, which exec'd the enclave.
    let pid = dev.enclave_pid();
    let killed_at = Instant::now();
    sigkill(pid);
    let deadline = Instant::now() + Duration::from_secs(5);
    let body = loop {
        let (status, retry_after, body) = readyz(&client, &dev).await;
        if status == 503 {
            assert_eq!(retry_after.as_deref(), Some("1"));
            assert_eq!(body["error"]["code"], "not_ready", "{body}");
            break body;
        }
        assert!(Instant::now() < deadline, "/readyz still ready: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let failed_after = killed_at.elapsed();
    assert_eq!(readyz_members(&body)[0]["state"], "down", "{body}");
    // Signing answers a clean 503 meanwhile.
    let (status, err) = post(&client, &dev, "/v1/keys", json!({})).await;
    assert_eq!(status, 503, "{err}");
    assert_eq!(err["error"]["code"], "enclave_unavailable");

    // Release the restart: ready again.
    std::fs::remove_file(&gate).unwrap();
    let released_at = Instant::now();
    wait_until(Duration::from_secs(15), "a new enclave process", || {
        std::fs::read_to_string(dev.data_dir.join("enclave.pid"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
            .is_some_and(|p| p != pid)
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, _, body) = readyz(&client, &dev).await;
        if status == 200 {
            assert_eq!(readyz_members(&body)[0]["state"], "up");
            break;
        }
        assert!(Instant::now() < deadline, "/readyz did not recover: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "readyz: 503 {failed_after:?} after SIGKILL, 200 again {:?} after the restart was released",
        released_at.elapsed()
    );

    // Dev mode's in-process supervisor counts the restart into the server's metrics.
    let text = client
        .get(format!("{}/metrics", dev.url))
        .bearer_auth(&dev.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = crate::metrics::parse(&text);
    let restarts = crate::metrics::value(
        &samples,
        "nitro_wallet_supervisor_restarts_total",
        &[("enclave", "enclave")],
    );
    assert!(restarts >= 1.0, "{text}");
}
