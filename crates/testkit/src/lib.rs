//! Test fixtures shared by several crates' integration tests: moto, the independent AWS API
//! emulator the tests check our KMS and Secrets Manager code against, and the Foundry tools
//! (anvil, cast) the Ethereum tests run.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `moto_server` child process on 127.0.0.1, killed on drop.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MotoServer {
    /// Starts moto, or returns `None` when `NITRO_WALLET_SKIP_MOTO=1` allows skipping.
    ///
    /// # Panics
    /// With installation instructions when `moto_server` is not on PATH (and skipping is not
    /// allowed), or when it does not start listening within 30 s.
    pub fn start() -> Option<MotoServer> {
        Self::start_with(&[])
    }

    /// Like [`MotoServer::start`], with extra environment variables for moto.
    ///
    /// # Panics
    /// As [`MotoServer::start`].
    pub fn start_with(env: &[(&str, &str)]) -> Option<MotoServer> {
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
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let mut moto = MotoServer {
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
                    "moto_server exited with {status} before listening; is moto[server] \
                     installed (`pip install \"moto[server]\"`)?"
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

/// The platform binary of a Foundry tool (`anvil`, `cast`): `$<NAME>_BIN`, else the one
/// `scripts/test.sh` installs into `.tools/` from npm, else `PATH`.
///
/// The npm package's `.bin/` entry is a node shim that spawns the real binary: killing the
/// shim would orphan the process it started, so the platform binary is preferred.
///
/// # Panics
/// With installation instructions when the tool is nowhere to be found.
pub fn find_tool(name: &str) -> PathBuf {
    let env_name = format!("{}_BIN", name.to_uppercase());
    if let Some(p) = std::env::var_os(&env_name) {
        return PathBuf::from(p);
    }
    let tools = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/node_modules");
    if let Ok(entries) = std::fs::read_dir(tools.join("@foundry-rs")) {
        for entry in entries.flatten() {
            let package = entry.file_name().to_string_lossy().into_owned();
            let binary = entry.path().join("bin").join(name);
            if package.starts_with(&format!("{name}-")) && binary.is_file() {
                return binary;
            }
        }
    }
    let shim = tools.join(".bin").join(name);
    if shim.is_file() {
        return shim;
    }
    find_on_path(name).unwrap_or_else(|| {
        panic!(
            "`{name}` not found: run ./scripts/test.sh (it installs @foundry-rs/{name} into \
             .tools/), or set {env_name}"
        )
    })
}
