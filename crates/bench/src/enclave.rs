//! `enclave`: signing on the host↔enclave frame protocol, straight on the enclave's socket.
//!
//! This is what the host does for each API request, minus HTTP, TLS, authentication and the
//! key store: one connection, `SetCredentials` first, then `GenerateKey`, then
//! `SignTransaction` frames pipelined with a fixed number in flight. Frames are encoded before
//! the clock starts and written in batches, so that the load generator takes as little CPU
//! from the enclave as it can.

use crate::{
    cpu::{Sample, ServerPid, Usage},
    ops::Op,
    report::{Outcome, Report},
    Error,
};
use nitro_wallet_protocol::{
    frame,
    message::{Credentials, GenerateKey, SignTransaction, WrappedKey},
    Endpoint, Reply, Request, RequestFrame, Response, ResponseFrame, SecretString,
    PROTOCOL_VERSION,
};
use serde_json::value::RawValue;
use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};
use tokio::{
    io::{AsyncWriteExt, BufReader},
    net::{
        unix::{OwnedReadHalf, OwnedWriteHalf},
        UnixStream,
    },
    sync::Semaphore,
};

/// Load shape and measurement options.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadArgs {
    /// Requests kept in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Sign requests measured (the run stops after this many).
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Sign requests sent before measuring (connection set-up, key cache, allocator).
    #[arg(long, default_value_t = 1_000)]
    warmup: u64,
    /// A server process whose CPU time to report, as `LABEL=PID` or `PID`; repeatable.
    #[arg(long = "server-pid", value_name = "LABEL=PID")]
    server_pids: Vec<ServerPid>,
}

/// Options of `nitro-wallet-bench enclave`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnclaveArgs {
    /// The enclave's Unix socket (dev mode: DIR/enclave.sock).
    #[arg(long)]
    socket: PathBuf,
    /// KMS key that wraps the generated key (dev mode's emulator: alias/nitro-wallet).
    #[arg(long, default_value = "alias/nitro-wallet")]
    kms_key_id: String,
    /// Access key id sent in `SetCredentials` (dev mode's insecure credentials by default).
    #[arg(long, default_value = "NITROWALLETDEVINSECURE")]
    access_key_id: String,
    /// Secret access key sent in `SetCredentials`.
    #[arg(long, default_value = "insecure-dev-secret")]
    secret_access_key: String,
    /// How long to wait for any reply, seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    #[command(flatten)]
    load: LoadArgs,
}

/// Runs the benchmark.
///
/// # Errors
/// When the enclave cannot be reached, refuses the credentials or cannot generate a key.
pub async fn run(args: EnclaveArgs) -> Result<Report, Error> {
    let load = &args.load;
    if load.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    let timeout = Duration::from_secs(args.timeout_secs);
    let stream = UnixStream::connect(&args.socket)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", args.socket.display()))?;
    let (reader, writer) = stream.into_split();
    let mut conn = Conn {
        reader: BufReader::with_capacity(64 * 1024, reader),
        writer,
        next_id: 1,
        timeout,
    };

    let credentials = Request::SetCredentials(Credentials {
        access_key_id: args.access_key_id.clone(),
        secret_access_key: SecretString::new(args.secret_access_key.clone()),
        session_token: None,
        expires_at: None,
    });
    match conn.call(credentials).await? {
        Reply::Ok(Response::Done) => {}
        other => return Err(format!("SetCredentials failed: {other:?}").into()),
    }
    let key = match conn
        .call(Request::GenerateKey(GenerateKey {
            kms_key_id: args.kms_key_id.clone(),
            policy: None,
        }))
        .await?
    {
        Reply::Ok(Response::Key(k)) => k,
        other => return Err(format!("GenerateKey failed: {other:?}").into()),
    };

    let warmup = conn.phase(&key, load.concurrency, load.warmup, 0).await?;
    if warmup.errors > 0 {
        return Err(format!(
            "{} of {} warm-up requests failed; first: {}",
            warmup.errors,
            load.warmup,
            warmup.first_error.unwrap_or_default()
        )
        .into());
    }
    let before = Sample::take(&load.server_pids);
    let outcome = conn
        .phase(&key, load.concurrency, load.requests, load.warmup)
        .await?;
    let after = Sample::take(&load.server_pids);

    Ok(Report {
        title: "enclave protocol (no HTTP, no TLS)".to_owned(),
        params: vec![
            ("endpoint", Endpoint::Unix(args.socket.clone()).to_string()),
            ("key", key.address.to_checksum(None)),
            ("connections", "1 (pipelined)".to_owned()),
            ("concurrency", load.concurrency.to_string()),
            ("warm-up requests", load.warmup.to_string()),
        ],
        outcome,
        cpu: Usage::between(&load.server_pids, &before, &after),
        limit: None,
    })
}

/// One protocol connection.
#[derive(Debug)]
struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    timeout: Duration,
}

impl Conn {
    /// Sends one request and waits for its reply (nothing else may be in flight).
    async fn call(&mut self, req: Request) -> Result<Reply, Error> {
        let id = self.take_ids(1);
        let bytes = frame::encode(&RequestFrame {
            v: PROTOCOL_VERSION,
            id,
            req,
            request_id: None,
        })?;
        self.writer.write_all(&bytes).await?;
        let reply = self.recv().await?;
        if reply.id != id {
            return Err(format!("reply to request {} while expecting {id}", reply.id).into());
        }
        Ok(reply.reply)
    }

    fn take_ids(&mut self, n: u64) -> u64 {
        let first = self.next_id;
        self.next_id += n;
        first
    }

    async fn recv(&mut self) -> Result<ResponseFrame, Error> {
        recv(&mut self.reader, &mut Vec::new(), self.timeout).await
    }

    /// Keeps `concurrency` `SignTransaction` requests in flight until `count` are answered.
    async fn phase(
        &mut self,
        key: &WrappedKey,
        concurrency: usize,
        count: u64,
        first_nonce: u64,
    ) -> Result<Outcome, Error> {
        let first_id = self.take_ids(count);
        let frames = (0..count)
            .map(|i| {
                let transaction =
                    RawValue::from_string(Op::Eip1559.payload(first_nonce + i, None).to_string())?;
                Ok(frame::encode(&RequestFrame {
                    v: PROTOCOL_VERSION,
                    id: first_id + i,
                    req: Request::SignTransaction(SignTransaction {
                        key: key.clone(),
                        transaction,
                        window: None,
                    }),
                    request_id: None,
                })?)
            })
            .collect::<Result<Vec<Vec<u8>>, Error>>()?;

        let permits = Arc::new(Semaphore::new(concurrency));
        let sent_at: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
        let started = Instant::now();
        let (sent, received) = tokio::join!(
            send_all(&mut self.writer, &frames, first_id, &permits, &sent_at),
            receive_all(
                &mut self.reader,
                self.timeout,
                count,
                key,
                &permits,
                &sent_at
            ),
        );
        let mut outcome = received?;
        sent?;
        outcome.elapsed = started.elapsed();
        Ok(outcome)
    }
}

/// Writes `frames` as permits allow, as many per write as there are free permits.
async fn send_all(
    writer: &mut OwnedWriteHalf,
    frames: &[Vec<u8>],
    first_id: u64,
    permits: &Semaphore,
    sent_at: &Mutex<HashMap<u64, Instant>>,
) -> Result<(), Error> {
    let mut batch = Vec::with_capacity(64 * 1024);
    let mut next = 0;
    while next < frames.len() {
        permits.acquire().await?.forget();
        let mut end = next + 1;
        while end < frames.len() {
            match permits.try_acquire() {
                Ok(p) => p.forget(),
                Err(_) => break,
            }
            end += 1;
        }
        batch.clear();
        let now = Instant::now();
        {
            let mut sent_at = sent_at.lock().unwrap_or_else(PoisonError::into_inner);
            for (i, f) in frames.iter().enumerate().take(end).skip(next) {
                sent_at.insert(first_id + i as u64, now);
                batch.extend_from_slice(f);
            }
        }
        writer.write_all(&batch).await?;
        next = end;
    }
    Ok(())
}

/// Reads `count` replies, checking each and returning its permit.
async fn receive_all(
    reader: &mut BufReader<OwnedReadHalf>,
    timeout: Duration,
    count: u64,
    key: &WrappedKey,
    permits: &Semaphore,
    sent_at: &Mutex<HashMap<u64, Instant>>,
) -> Result<Outcome, Error> {
    let mut outcome = Outcome {
        latencies: Vec::with_capacity(usize::try_from(count).unwrap_or(0)),
        ..Outcome::default()
    };
    let mut buf = Vec::new();
    for _ in 0..count {
        let reply = recv(reader, &mut buf, timeout).await?;
        let start = sent_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&reply.id)
            .ok_or_else(|| format!("reply to unknown request {}", reply.id))?;
        let latency = start.elapsed();
        permits.add_permits(1);
        match reply.reply {
            Reply::Ok(Response::SignedTransaction(signed))
                if signed.from == key.address && !signed.raw_transaction.is_empty() =>
            {
                outcome.latencies.push(latency);
            }
            Reply::Ok(other) => outcome.fail(format!("unexpected reply: {other:?}")),
            Reply::Err(e) => outcome.fail(format!("{:?}: {}", e.code, e.message)),
        }
    }
    Ok(outcome)
}

async fn recv(
    reader: &mut BufReader<OwnedReadHalf>,
    buf: &mut Vec<u8>,
    timeout: Duration,
) -> Result<ResponseFrame, Error> {
    let more = tokio::time::timeout(timeout, frame::read_frame(reader, buf, timeout))
        .await
        .map_err(|_| format!("no reply within {timeout:?}"))??;
    if !more {
        return Err("the enclave closed the connection".into());
    }
    Ok(frame::decode(buf)?)
}
