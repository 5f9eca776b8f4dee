//! `nitro-wallet supervise` with the nitro-cli backend, against a stand-in `nitro-cli`
//! (`fake-nitro-cli/nitro-cli`) that reproduces nitro-cli's documented JSON output and exit
//! statuses and logs every invocation. Stand-in enclaves answer (or ignore) pings on Unix
//! sockets. Timing assertions are lower bounds and orderings only.

use crate::pool::{fake_enclave, FakeMode};
use crate::support::nitro_wallet_bin;
use nitro_wallet_protocol::{transport::Listener, Endpoint};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{atomic::AtomicU64, Arc},
    time::{Duration, Instant},
};

/// One line of the stand-in's call log.
#[derive(Debug, Clone)]
struct Call {
    at_ms: u64,
    args: Vec<String>,
}

impl Call {
    fn command(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }
    fn line(&self) -> String {
        self.args.join(" ")
    }
}

struct System {
    dir: tempfile::TempDir,
    supervise: Child,
    stopped: bool,
}

/// One `[[enclaves]]` table.
fn enclave(name: &str, cid: u32, socket: &Path, extra: &str) -> String {
    format!(
        "[[enclaves]]\nname = \"{name}\"\ncid = {cid}\neif_path = \"/opt/nitro-wallet/nitro-wallet.eif\"\n\
         cpu_count = 2\nmemory_mib = 512\nendpoint = \"unix://{}\"\n{extra}\n",
        socket.display()
    )
}

impl System {
    /// A directory with the stand-in nitro-cli and its state, prepared by `prepare`.
    fn dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let source =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fake-nitro-cli/nitro-cli");
        let cli = dir.path().join("nitro-cli");
        std::fs::copy(&source, &cli).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cli, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir_all(dir.path().join("state/enclaves")).unwrap();
        dir
    }

    /// Starts `nitro-wallet supervise` with fast health checks and `enclaves`.
    fn start(dir: tempfile::TempDir, enclaves: &str) -> System {
        let config = dir.path().join("supervise.toml");
        std::fs::write(
            &config,
            format!(
                "nitro_cli = \"{cli}\"\n\n[health]\ninterval_secs = 0.1\ntimeout_secs = 0.3\n\
                 failures_before_restart = 3\nstart_grace_secs = 1\n\n[backoff]\nmin_secs = 0.2\n\
                 max_secs = 0.8\nreset_after_secs = 30\n\n{enclaves}",
                cli = dir.path().join("nitro-cli").display()
            ),
        )
        .unwrap();
        let supervise = Command::new(nitro_wallet_bin())
            .args(["supervise", "--config"])
            .arg(&config)
            .env("FAKE_NITRO_DIR", dir.path().join("state"))
            .env("NITRO_WALLET_LOG", "debug")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("supervise.log")).unwrap())
            .spawn()
            .unwrap();
        System {
            dir,
            supervise,
            stopped: false,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn calls(&self) -> Vec<Call> {
        std::fs::read_to_string(self.state().join("calls.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let (at, rest) = l.split_once(' ').unwrap_or((l, ""));
                Some(Call {
                    at_ms: at.parse().ok()?,
                    args: rest.split_whitespace().map(str::to_owned).collect(),
                })
            })
            .collect()
    }

    fn calls_of(&self, command: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.command() == command)
            .collect()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("supervise.log")).unwrap_or_default()
    }

    /// Waits (up to 20 s) until `ready` holds; fails with the log and the calls otherwise.
    fn wait(&mut self, what: &str, mut ready: impl FnMut(&System) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready(self) {
            if let Ok(Some(status)) = self.supervise.try_wait() {
                panic!(
                    "supervise exited ({status}) waiting for {what}:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                let calls: Vec<String> = self.calls().iter().map(Call::line).collect();
                panic!(
                    "timed out waiting for {what}\ncalls: {calls:#?}\nlog:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM; the supervisor terminates its enclaves and exits 0.
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.supervise.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.supervise.try_wait().unwrap() {
                assert!(status.success(), "supervise: {status}\n{}", self.log());
                break;
            }
            assert!(Instant::now() < deadline, "supervise did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stopped = true;
    }

    /// The id the stand-in gave the enclave named `name` (from its run-enclave output file).
    fn enclave_id(&self, name: &str) -> Option<String> {
        let entry = std::fs::read_to_string(self.state().join("enclaves").join(name)).ok()?;
        let v: serde_json::Value = serde_json::from_str(&entry).ok()?;
        v["EnclaveID"].as_str().map(str::to_owned)
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if !self.stopped {
            let _ = self.supervise.kill();
            let _ = self.supervise.wait();
        }
    }
}

/// A stand-in enclave on `socket`.
async fn fake(socket: &Path, mode: FakeMode) -> tokio::task::JoinHandle<()> {
    let listener = Listener::bind(&Endpoint::Unix(socket.to_owned()))
        .await
        .unwrap();
    tokio::spawn(fake_enclave(listener, mode, Arc::new(AtomicU64::new(0))))
}

fn run_line(name: &str, cid: u32) -> String {
    format!(
        "run-enclave --eif-path /opt/nitro-wallet/nitro-wallet.eif --cpu-count 2 --memory 512 \
         --enclave-cid {cid} --enclave-name {name}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_cli_starts_each_enclave_once_with_the_documented_arguments() {
    let dir = System::dir();
    let (s16, s17) = (dir.path().join("16.sock"), dir.path().join("17.sock"));
    let _a = fake(&s16, FakeMode::Answer).await;
    let _b = fake(&s17, FakeMode::Answer).await;
    let enclaves = format!(
        "{}{}",
        enclave("nw-16", 16, &s16, ""),
        enclave("nw-17", 17, &s17, "debug_mode = true")
    );
    let mut sys = System::start(dir, &enclaves);
    sys.wait("both enclaves healthy and 10 more checks", |s| {
        s.log().matches("enclave healthy").count() >= 2
            && s.calls_of("describe-enclaves").len() >= 12
    });
    let runs: Vec<String> = sys.calls_of("run-enclave").iter().map(Call::line).collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.contains(&run_line("nw-16", 16)), "{runs:?}");
    // --debug-mode only where configured, with a loud warning.
    assert!(
        runs.contains(&format!("{} --debug-mode", run_line("nw-17", 17))),
        "{runs:?}"
    );
    assert_eq!(
        runs.iter().filter(|r| r.contains("--debug-mode")).count(),
        1
    );
    let log = sys.log();
    assert!(log.contains("DEBUG MODE"), "{log}");
    assert!(sys.calls_of("terminate-enclave").is_empty());

    // On SIGTERM it terminates both, by id.
    let ids = [
        sys.enclave_id("nw-16").unwrap(),
        sys.enclave_id("nw-17").unwrap(),
    ];
    sys.stop();
    let terminated: Vec<String> = sys
        .calls_of("terminate-enclave")
        .iter()
        .map(Call::line)
        .collect();
    for id in ids {
        assert!(
            terminated.contains(&format!("terminate-enclave --enclave-id {id}")),
            "{terminated:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_cli_crashed_enclave_is_restarted() {
    let dir = System::dir();
    let socket = dir.path().join("16.sock");
    let _enclave = fake(&socket, FakeMode::Answer).await;
    let mut sys = System::start(dir, &enclave("nw-16", 16, &socket, ""));
    sys.wait("healthy", |s| s.log().contains("enclave healthy"));
    let first = sys.enclave_id("nw-16").unwrap();

    // Crashed and gone: describe-enclaves answers [].
    std::fs::remove_file(sys.state().join("enclaves/nw-16")).unwrap();
    // (The call log is written when the stand-in starts, its enclave entry when it is done.)
    sys.wait("a second enclave", |s| {
        s.enclave_id("nw-16").is_some_and(|id| id != first)
    });
    assert!(
        sys.calls_of("terminate-enclave").is_empty(),
        "nothing to terminate when it is gone"
    );
    let log = sys.log();
    assert!(
        log.contains("gone: the backend no longer lists it"),
        "{log}"
    );
    let second = sys.enclave_id("nw-16").unwrap();
    assert_ne!(first, second);

    // Listed but not RUNNING: terminated by id, then started again.
    let entry_path = sys.state().join("enclaves/nw-16");
    let entry = std::fs::read_to_string(&entry_path).unwrap();
    std::fs::write(&entry_path, entry.replace("\"RUNNING\"", "\"TERMINATING\"")).unwrap();
    sys.wait("a third run-enclave", |s| {
        s.calls_of("run-enclave").len() >= 3
    });
    let lines: Vec<String> = sys
        .calls()
        .iter()
        .filter(|c| c.command() != "describe-enclaves")
        .map(Call::line)
        .collect();
    assert_eq!(
        lines,
        [
            run_line("nw-16", 16),
            run_line("nw-16", 16),
            format!("terminate-enclave --enclave-id {second}"),
            run_line("nw-16", 16),
        ]
    );
    assert!(sys.log().contains("TERMINATING"), "{}", sys.log());
    sys.wait("the third enclave healthy", |s| {
        let log = s.log();
        s.enclave_id("nw-16").is_some_and(|id| id != second)
            && log.rfind("enclave healthy") > log.rfind("enclave started")
    });
    sys.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_cli_missing_image_is_retried_with_exponential_backoff() {
    let dir = System::dir();
    std::fs::write(dir.path().join("state/run-fails"), "19").unwrap();
    let socket = dir.path().join("16.sock");
    let _enclave = fake(&socket, FakeMode::Answer).await;
    let mut sys = System::start(dir, &enclave("nw-16", 16, &socket, ""));
    sys.wait("six failed starts", |s| {
        s.calls_of("run-enclave").len() >= 6
    });
    let runs = sys.calls_of("run-enclave");
    // Delays 0.2, 0.4, 0.8 (the cap), 0.8, 0.8 s: each gap is at least its delay.
    let expected = [200, 400, 800, 800, 800];
    for (i, want) in expected.iter().enumerate() {
        let gap = runs[i + 1].at_ms - runs[i].at_ms;
        assert!(
            gap + 5 >= *want,
            "gap {i} was {gap} ms, less than {want} ms"
        );
    }
    let log = sys.log();
    assert!(log.contains("cannot start the enclave"), "{log}");
    assert!(log.contains("exit status Some(19)"), "{log}");
    assert!(log.contains("[ E19 ] File operation failure"), "{log}");
    assert!(log.contains("attempt=5"), "{log}");

    // The image appears: the next attempt starts it.
    std::fs::remove_file(sys.state().join("run-fails")).unwrap();
    sys.wait("healthy", |s| s.log().contains("enclave healthy"));
    sys.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_cli_hung_enclave_is_terminated_and_restarted() {
    let dir = System::dir();
    let socket = dir.path().join("16.sock");
    // Accepts connections and reads pings, never answers.
    let _enclave = fake(&socket, FakeMode::Hang).await;
    let mut sys = System::start(dir, &enclave("nw-16", 16, &socket, ""));
    sys.wait("a restart", |s| s.calls_of("run-enclave").len() >= 2);
    let calls: Vec<Call> = sys
        .calls()
        .into_iter()
        .filter(|c| c.command() != "describe-enclaves")
        .collect();
    let lines: Vec<String> = calls.iter().map(Call::line).collect();
    assert_eq!(
        lines[..3],
        [
            run_line("nw-16", 16),
            "terminate-enclave --enclave-id i-0123456789abcdef0-enc0000000000000001".to_owned(),
            run_line("nw-16", 16),
        ]
    );
    // Not before the boot grace (1 s) and three failed pings; the restart after the backoff.
    assert!(calls[1].at_ms - calls[0].at_ms >= 1000, "{lines:?}");
    assert!(calls[2].at_ms - calls[1].at_ms >= 195, "{lines:?}");
    let log = sys.log();
    assert!(log.contains("hung: 3 pings in a row failed"), "{log}");
    assert!(log.contains("enclave failed its ping"), "{log}");
    sys.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_cli_image_with_another_pcr0_is_never_started() {
    let dir = System::dir();
    std::fs::write(dir.path().join("state/pcr0"), "cd".repeat(48)).unwrap();
    let socket = dir.path().join("16.sock");
    let extra = format!("expected_pcr0 = \"{}\"", "ab".repeat(48));
    let mut sys = System::start(dir, &enclave("nw-16", 16, &socket, &extra));
    sys.wait("three refused starts", |s| {
        s.calls_of("describe-eif").len() >= 3
    });
    assert!(sys.calls_of("run-enclave").is_empty());
    let log = sys.log();
    assert!(log.contains("not the expected"), "{log}");
    sys.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_cli_running_enclave_is_adopted_and_a_debug_one_replaced() {
    let dir = System::dir();
    let (s16, s17) = (dir.path().join("16.sock"), dir.path().join("17.sock"));
    let _a = fake(&s16, FakeMode::Answer).await;
    let _b = fake(&s17, FakeMode::Answer).await;
    // Already running when the supervisor starts (it was restarted): nw-16 as configured,
    // nw-17 in debug mode, which is not configured.
    let entry = |name: &str, cid: u32, n: u32, flags: &str| {
        format!(
            "{{\"EnclaveName\": \"{name}\", \"EnclaveID\": \"i-0123456789abcdef0-enc{n:016x}\", \"ProcessID\": 1, \
             \"EnclaveCID\": {cid}, \"NumberOfCPUs\": 2, \"CPUIDs\": [1, 3], \"MemoryMiB\": 512, \
             \"State\": \"RUNNING\", \"Flags\": \"{flags}\"}}\n"
        )
    };
    let state = dir.path().join("state");
    std::fs::write(
        state.join("enclaves/nw-16"),
        entry("nw-16", 16, 0xa, "NONE"),
    )
    .unwrap();
    std::fs::write(
        state.join("enclaves/nw-17"),
        entry("nw-17", 17, 0xb, "DEBUG_MODE"),
    )
    .unwrap();
    std::fs::write(state.join("counter"), "16").unwrap();
    let enclaves = format!(
        "{}{}",
        enclave("nw-16", 16, &s16, ""),
        enclave("nw-17", 17, &s17, "")
    );
    let mut sys = System::start(dir, &enclaves);
    sys.wait("both healthy", |s| {
        s.log().matches("enclave healthy").count() >= 2
    });
    let lines: Vec<String> = sys
        .calls()
        .iter()
        .filter(|c| c.command() != "describe-enclaves")
        .map(Call::line)
        .collect();
    assert_eq!(
        lines,
        [
            "terminate-enclave --enclave-id i-0123456789abcdef0-enc000000000000000b".to_owned(),
            run_line("nw-17", 17),
        ]
    );
    let log = sys.log();
    assert!(
        log.contains("adopting the enclave already running"),
        "{log}"
    );
    assert!(
        log.contains("runs in debug mode, which is not configured"),
        "{log}"
    );
    sys.stop();
}

#[test]
fn supervise_refuses_a_bad_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("supervise.toml");
    std::fs::write(&config, "[[enclaves]]\nname = \"a\"\ncid = 16\n").unwrap();
    let out = Command::new(nitro_wallet_bin())
        .args(["supervise", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("missing field"), "{stderr}");
}
