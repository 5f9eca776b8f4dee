//! The process backend: each "enclave" is a child process (`nitro-wallet enclave …` or
//! `nitro-wallet-enclave`), as in dev mode. Children are killed when stopped and when the
//! backend is dropped; a child's exit is noticed at once, not at the next check.

use super::{Backend, BackendError, Status};
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, PoisonError},
    time::Duration,
};
use tokio::{
    process::Command,
    sync::{oneshot, watch},
};

/// How to start one enclave process.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// The name the supervisor knows it by.
    pub name: String,
    /// Executable.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Where to write its process id while it runs (tests and scripts read it).
    pub pid_file: Option<PathBuf>,
}

struct Child {
    pid: u32,
    /// `None` while it runs; then how it ended.
    exit: watch::Receiver<Option<String>>,
    kill: Option<oneshot::Sender<()>>,
    waiter: tokio::task::JoinHandle<()>,
}

impl Drop for Child {
    /// Dropping the waiter drops the process handle, which kills the process.
    fn drop(&mut self) {
        self.waiter.abort();
    }
}

/// Enclaves as child processes.
pub struct ProcessBackend {
    specs: HashMap<String, ProcessSpec>,
    children: Mutex<HashMap<String, Child>>,
}

impl std::fmt::Debug for ProcessBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessBackend")
            .field("enclaves", &self.specs.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ProcessBackend {
    /// A backend that can start these processes.
    pub fn new(specs: Vec<ProcessSpec>) -> ProcessBackend {
        ProcessBackend {
            specs: specs.into_iter().map(|s| (s.name.clone(), s)).collect(),
            children: Mutex::new(HashMap::new()),
        }
    }

    /// The process id of a running enclave.
    pub fn pid(&self, name: &str) -> Option<u32> {
        self.children()
            .get(name)
            .filter(|c| c.exit.borrow().is_none())
            .map(|c| c.pid)
    }

    fn children(&self) -> std::sync::MutexGuard<'_, HashMap<String, Child>> {
        self.children.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spec(&self, name: &str) -> Result<&ProcessSpec, BackendError> {
        self.specs
            .get(name)
            .ok_or_else(|| BackendError::Unknown(name.to_owned()))
    }
}

#[async_trait::async_trait]
impl Backend for ProcessBackend {
    async fn start(&self, name: &str) -> Result<String, BackendError> {
        let spec = self.spec(name)?;
        // A leftover handle is replaced (and its process, if any, killed).
        self.stop(name).await?;
        let mut child = Command::new(&spec.program)
            .args(&spec.args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| BackendError::Spawn {
                command: spec.program.display().to_string(),
                source,
            })?;
        let pid = child.id().unwrap_or_default();
        if let Some(file) = &spec.pid_file {
            if let Err(e) = std::fs::write(file, format!("{pid}\n")) {
                tracing::warn!(file = %file.display(), error = %e, "cannot write the pid file");
            }
        }
        let (exit_tx, exit) = watch::channel(None);
        let (kill, killed) = oneshot::channel::<()>();
        let waiter = tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status,
                _ = killed => {
                    let _ = child.start_kill();
                    child.wait().await
                }
            };
            let how = match status {
                Ok(s) => s.to_string(),
                Err(e) => format!("cannot wait for it: {e}"),
            };
            let _ = exit_tx.send(Some(how));
        });
        self.children().insert(
            name.to_owned(),
            Child {
                pid,
                exit,
                kill: Some(kill),
                waiter,
            },
        );
        Ok(format!("pid {pid}"))
    }

    async fn status(&self, name: &str) -> Result<Status, BackendError> {
        self.spec(name)?;
        Ok(match self.children().get(name) {
            None => Status::Absent,
            Some(c) => match c.exit.borrow().clone() {
                None => Status::Running {
                    id: format!("pid {}", c.pid),
                },
                Some(how) => Status::NotRunning {
                    detail: format!("process {} exited ({how})", c.pid),
                },
            },
        })
    }

    async fn stop(&self, name: &str) -> Result<(), BackendError> {
        let spec = self.spec(name)?;
        let Some(mut child) = self.children().remove(name) else {
            return Ok(());
        };
        if let Some(kill) = child.kill.take() {
            let _ = kill.send(());
        }
        let mut exit = child.exit.clone();
        let _ = tokio::time::timeout(Duration::from_secs(10), exit.wait_for(Option::is_some)).await;
        if let Some(file) = &spec.pid_file {
            let _ = std::fs::remove_file(file);
        }
        Ok(())
    }

    async fn exited(&self, name: &str) {
        let exit = self.children().get(name).map(|c| c.exit.clone());
        match exit {
            Some(mut exit) => {
                if exit.wait_for(Option::is_some).await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending().await,
        }
    }
}
