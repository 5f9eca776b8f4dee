//! The Nitro backend: AWS's `nitro-cli` starts, describes and terminates enclaves.
//!
//! - start: `nitro-cli run-enclave --eif-path … --cpu-count … --memory … --enclave-cid …
//!   --enclave-name …` (`--debug-mode` only when configured), after checking the image's PCR0
//!   with `nitro-cli describe-eif` when `expected_pcr0` is set;
//! - status: `nitro-cli describe-enclaves`, a JSON array; the entry whose `EnclaveName` is ours
//!   must have our `EnclaveCID`, `State` `RUNNING` (compared without regard to case: the AWS
//!   sample's watchdog compared `"Running"` and never noticed a dead enclave) and no debug
//!   flag unless configured;
//! - stop: `nitro-cli terminate-enclave --enclave-id …` (by `--enclave-name` when the id is not
//!   known).
//!
//! Every invocation has a time limit and is killed past it; a non-zero exit status is an error
//! carrying nitro-cli's message (its `[ Exx ]` line).

use super::{config::EnclaveSpec, Backend, BackendError, Status};
use serde_json::Value;
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Mutex, PoisonError},
    time::Duration,
};
use tokio::process::Command;

/// Time limit of `run-enclave`, which waits for the enclave to boot.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Time limit of the other commands.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Enclaves started with `nitro-cli`.
pub struct NitroCli {
    program: PathBuf,
    enclaves: HashMap<String, EnclaveSpec>,
    /// The last `EnclaveID` seen per name, to terminate by id.
    ids: Mutex<HashMap<String, String>>,
}

impl std::fmt::Debug for NitroCli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NitroCli")
            .field("program", &self.program)
            .field("enclaves", &self.enclaves.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What `run-enclave` / `describe-enclaves` say about an enclave (the fields we use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclaveInfo {
    /// `EnclaveName`.
    pub name: Option<String>,
    /// `EnclaveID`.
    pub id: String,
    /// `EnclaveCID`.
    pub cid: Option<u64>,
    /// `State` (describe only).
    pub state: Option<String>,
    /// `Flags` (describe only): `NONE` or `DEBUG_MODE`.
    pub flags: Option<String>,
}

impl EnclaveInfo {
    fn from_json(v: &Value) -> Option<EnclaveInfo> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(EnclaveInfo {
            name: s("EnclaveName"),
            id: s("EnclaveID")?,
            cid: v.get("EnclaveCID").and_then(Value::as_u64),
            state: s("State"),
            flags: s("Flags"),
        })
    }
}

/// The first JSON value in `stdout`, skipping any text nitro-cli prints before it.
fn first_json(stdout: &str) -> Option<Value> {
    let start = stdout.find(['{', '['])?;
    serde_json::Deserializer::from_str(&stdout[start..])
        .into_iter::<Value>()
        .next()?
        .ok()
}

/// Parses `describe-enclaves` output.
///
/// # Errors
/// When it is not a JSON array.
pub fn parse_describe(stdout: &str) -> Result<Vec<EnclaveInfo>, String> {
    match first_json(stdout) {
        Some(Value::Array(entries)) => {
            Ok(entries.iter().filter_map(EnclaveInfo::from_json).collect())
        }
        _ => Err(format!(
            "describe-enclaves printed no JSON array: {}",
            excerpt(stdout)
        )),
    }
}

/// The `Measurements.PCR0` of `describe-eif` output.
fn parse_pcr0(stdout: &str) -> Option<String> {
    first_json(stdout)?
        .get("Measurements")?
        .get("PCR0")?
        .as_str()
        .map(str::to_owned)
}

fn excerpt(text: &str) -> String {
    let t = text.trim();
    let mut out: String = t.chars().take(300).collect();
    if out.len() < t.len() {
        out.push('…');
    }
    out
}

impl NitroCli {
    /// A backend running `program` (the `nitro-cli` executable) for these enclaves.
    pub fn new(program: PathBuf, enclaves: &[EnclaveSpec]) -> NitroCli {
        NitroCli {
            program,
            enclaves: enclaves
                .iter()
                .map(|e| (e.name.clone(), e.clone()))
                .collect(),
            ids: Mutex::new(HashMap::new()),
        }
    }

    fn spec(&self, name: &str) -> Result<&EnclaveSpec, BackendError> {
        self.enclaves
            .get(name)
            .ok_or_else(|| BackendError::Unknown(name.to_owned()))
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.ids.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The arguments of `run-enclave` for `spec`.
    pub fn run_args(spec: &EnclaveSpec) -> Vec<String> {
        let mut args = vec![
            "run-enclave".to_owned(),
            "--eif-path".to_owned(),
            spec.eif_path.display().to_string(),
            "--cpu-count".to_owned(),
            spec.cpu_count.to_string(),
            "--memory".to_owned(),
            spec.memory_mib.to_string(),
            "--enclave-cid".to_owned(),
            spec.cid.to_string(),
            "--enclave-name".to_owned(),
            spec.name.clone(),
        ];
        if spec.debug_mode {
            args.push("--debug-mode".to_owned());
        }
        args
    }

    /// Runs nitro-cli with `args`; its stdout when it exits with 0.
    async fn command(&self, args: &[String], limit: Duration) -> Result<String, BackendError> {
        let command = format!("nitro-cli {}", args.first().map_or("", String::as_str));
        let run = Command::new(&self.program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(limit, run)
            .await
            .map_err(|_| BackendError::TimedOut {
                command: command.clone(),
                after: limit,
            })?
            .map_err(|source| BackendError::Spawn {
                command: format!("{} ({})", command, self.program.display()),
                source,
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if output.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        // nitro-cli's error is a "[ Exx ] …" line on stderr, followed by a log path.
        let message = stderr
            .lines()
            .find(|l| l.trim_start().starts_with("[ E"))
            .or_else(|| stderr.lines().find(|l| !l.trim().is_empty()))
            .or_else(|| stdout.lines().find(|l| !l.trim().is_empty()))
            .map(excerpt)
            .unwrap_or_default();
        Err(BackendError::Failed {
            command,
            code: output.status.code(),
            message,
        })
    }

    /// Checks the image's PCR0 against `expected_pcr0`.
    async fn check_measurement(&self, spec: &EnclaveSpec) -> Result<(), BackendError> {
        let Some(expected) = &spec.expected_pcr0 else {
            return Ok(());
        };
        let args = [
            "describe-eif".to_owned(),
            "--eif-path".to_owned(),
            spec.eif_path.display().to_string(),
        ];
        let out = self.command(&args, COMMAND_TIMEOUT).await?;
        let pcr0 = parse_pcr0(&out).ok_or_else(|| BackendError::Output {
            command: "nitro-cli describe-eif".into(),
            detail: format!("no Measurements.PCR0 in {}", excerpt(&out)),
        })?;
        if !pcr0.eq_ignore_ascii_case(expected) {
            return Err(BackendError::Refused(format!(
                "{} has PCR0 {pcr0}, not the expected {expected}: not starting an image the key \
                 policy does not name",
                spec.eif_path.display()
            )));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Backend for NitroCli {
    async fn start(&self, name: &str) -> Result<String, BackendError> {
        let spec = self.spec(name)?;
        self.check_measurement(spec).await?;
        if spec.debug_mode {
            tracing::warn!(
                enclave = name,
                "DEBUG MODE: starting the enclave with --debug-mode. Its console is readable \
                 from the parent and its attestation has PCR0 = zeros; never do this in production"
            );
        }
        let out = self.command(&Self::run_args(spec), RUN_TIMEOUT).await?;
        let info = first_json(&out)
            .as_ref()
            .and_then(EnclaveInfo::from_json)
            .ok_or_else(|| BackendError::Output {
                command: "nitro-cli run-enclave".into(),
                detail: format!("no EnclaveID in {}", excerpt(&out)),
            })?;
        if info.cid.is_some_and(|c| c != u64::from(spec.cid)) {
            tracing::warn!(enclave = name, cid = ?info.cid, expected = spec.cid, "enclave started with another CID");
        }
        self.ids().insert(name.to_owned(), info.id.clone());
        Ok(info.id)
    }

    async fn status(&self, name: &str) -> Result<Status, BackendError> {
        let spec = self.spec(name)?;
        let out = self
            .command(&["describe-enclaves".to_owned()], COMMAND_TIMEOUT)
            .await?;
        let entries = parse_describe(&out).map_err(|detail| BackendError::Output {
            command: "nitro-cli describe-enclaves".into(),
            detail,
        })?;
        let Some(info) = entries
            .into_iter()
            .find(|e| e.name.as_deref() == Some(name))
        else {
            return Ok(Status::Absent);
        };
        self.ids().insert(name.to_owned(), info.id.clone());
        let state = info.state.clone().unwrap_or_default();
        if !state.eq_ignore_ascii_case("RUNNING") {
            return Ok(Status::NotRunning {
                detail: format!("{} is in state {state:?}", info.id),
            });
        }
        if info.cid != Some(u64::from(spec.cid)) {
            return Ok(Status::NotRunning {
                detail: format!(
                    "{} runs with CID {:?}, not the configured {}",
                    info.id, info.cid, spec.cid
                ),
            });
        }
        let debug = info
            .flags
            .as_deref()
            .is_some_and(|f| f.to_ascii_uppercase().contains("DEBUG"));
        if debug && !spec.debug_mode {
            return Ok(Status::NotRunning {
                detail: format!("{} runs in debug mode, which is not configured", info.id),
            });
        }
        Ok(Status::Running { id: info.id })
    }

    async fn stop(&self, name: &str) -> Result<(), BackendError> {
        self.spec(name)?;
        let id = self.ids().get(name).cloned();
        let args = match &id {
            Some(id) => ["terminate-enclave", "--enclave-id", id],
            None => ["terminate-enclave", "--enclave-name", name],
        }
        .map(str::to_owned);
        self.command(&args, COMMAND_TIMEOUT).await?;
        self.ids().remove(name);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // The shapes of AWS's documented examples (docs.aws.amazon.com/enclaves/latest/user/).
    const DESCRIBE: &str = r#"[
  {
    "EnclaveName": "my_enclave",
    "EnclaveID": "i-abc12345def67890a-enc9876abcd543210ef12",
    "ProcessID": 12345,
    "EnclaveCID": 10,
    "NumberOfCPUs": 2,
    "CPUIDs": [1, 3],
    "MemoryMiB": 1600,
    "State": "RUNNING",
    "Flags": "NONE"
  }
]"#;
    const RUN: &str = "Start allocating memory...\n{\n  \"EnclaveName\": \"vsock_sample\",\n  \"EnclaveID\": \"i-099db943bfa3ad1d9-enc1879f5d1481d8f0\",\n  \"ProcessID\": 25973,\n  \"EnclaveCID\": 6,\n  \"NumberOfCPUs\": 2,\n  \"CPUIDs\": [1, 5],\n  \"MemoryMiB\": 256\n}\n";

    #[test]
    fn documented_outputs_parse() {
        let entries = parse_describe(DESCRIBE).unwrap();
        assert_eq!(
            entries,
            [EnclaveInfo {
                name: Some("my_enclave".into()),
                id: "i-abc12345def67890a-enc9876abcd543210ef12".into(),
                cid: Some(10),
                state: Some("RUNNING".into()),
                flags: Some("NONE".into()),
            }]
        );
        assert!(parse_describe("[]").unwrap().is_empty());
        assert!(parse_describe("").is_err());
        let run = first_json(RUN)
            .as_ref()
            .and_then(EnclaveInfo::from_json)
            .unwrap();
        assert_eq!(run.id, "i-099db943bfa3ad1d9-enc1879f5d1481d8f0");
        assert_eq!(run.cid, Some(6));
        let eif = r#"{ "Measurements": { "HashAlgorithm": "Sha384 { ... }", "PCR0": "ab12", "PCR1": "cd", "PCR2": "ef" } }"#;
        assert_eq!(parse_pcr0(eif).as_deref(), Some("ab12"));
    }

    #[test]
    fn run_args_never_ask_for_debug_mode_unless_configured() {
        let mut spec = EnclaveSpec {
            name: "nw".into(),
            cid: 16,
            port: 5000,
            eif_path: "/opt/nw.eif".into(),
            cpu_count: 2,
            memory_mib: 1024,
            expected_pcr0: None,
            debug_mode: false,
            endpoint: None,
        };
        assert_eq!(
            NitroCli::run_args(&spec).join(" "),
            "run-enclave --eif-path /opt/nw.eif --cpu-count 2 --memory 1024 --enclave-cid 16 --enclave-name nw"
        );
        spec.debug_mode = true;
        assert!(NitroCli::run_args(&spec).ends_with(&["--debug-mode".to_owned()]));
    }
}
