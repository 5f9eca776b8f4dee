//! The host's copy of the enclaves' audit chains: one append-only JSON Lines file.
//!
//! Entries arrive with the enclaves' replies, possibly out of order (many requests are in
//! flight on one connection, and several enclaves each extend their own chain). The log
//! writes each chain's entries in sequence order: an entry that arrives early waits, briefly,
//! for the ones before it ([`GAP_WAIT`]); if they do not come (their reply was lost to a
//! timeout or a dropped connection) the host asks the enclaves for them again
//! (`audit_entries`), and only if no enclave still holds them does it write a [`Gap`] line,
//! which `audit verify` reports.
//!
//! Lines are written and `fsync`ed in batches (group commit) **before** [`AuditLog::record`]
//! returns, and the caller releases nothing before that: a signature is never handed out
//! without its entry on disk. If a write fails the log stops: every later signing request is
//! refused (503) until the host restarts, because an entry that cannot be written must not
//! have its signature released. At start the file is scanned to learn where each chain
//! stands; a torn last line (a crash in the middle of a write, whose signature was therefore
//! never released) is cut off.

use crate::enclave_client::{CallError, ClientTimeouts, EnclaveClient};
use crate::enclave_pool::EnclavePool;
use alloy_primitives::B256;
use nitro_wallet_audit::{ChainId, Gap, LogLine, SignedEntry, MAX_LINE_LEN};
use nitro_wallet_protocol::{AuditEntries, ErrorCode, Request, Response};
use std::{
    collections::{BTreeMap, HashMap},
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::Duration,
};

/// How long an entry waits for an earlier entry of its chain before the host asks the
/// enclaves for the missing one.
pub const GAP_WAIT: Duration = Duration::from_millis(250);

/// Why the audit log cannot take an entry.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum AuditLogError {
    /// The file could not be opened, read or written.
    #[error("audit log {}: {source}", path.display())]
    Io {
        /// The log file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An earlier write failed; nothing is accepted until the host restarts.
    #[error("the audit log stopped after a failed write ({0}); restart the host once it is fixed")]
    Stopped(String),
    /// The enclave's reply held something that is not a proper entry.
    #[error("unusable audit entry from the enclave: {0}")]
    Invalid(String),
    /// The entry arrived after the host had declared it lost and logged a gap.
    #[error("audit entry {seq} of chain {chain} arrived after it was declared lost")]
    Late {
        /// The chain (short form).
        chain: String,
        /// The entry.
        seq: u64,
    },
}

/// Where one chain stands in the log.
#[derive(Debug, Default)]
struct Cursor {
    /// The next sequence number to queue.
    next: u64,
    /// Sequence numbers below this are on disk (as entries or inside a declared gap).
    durable: u64,
    /// Entries that arrived before their predecessors.
    pending: BTreeMap<u64, SignedEntry>,
    /// Ranges declared lost.
    declared: Vec<(u64, u64)>,
    /// A recovery task is asking the enclaves for the missing entries.
    recovering: bool,
}

impl Cursor {
    fn declared_lost(&self, seq: u64) -> bool {
        self.declared
            .iter()
            .any(|(from, to)| (*from..=*to).contains(&seq))
    }

    /// The hole before the first pending entry, if any.
    fn hole(&self) -> Option<(u64, u64)> {
        let first = *self.pending.keys().next()?;
        (first > self.next).then(|| (self.next, first - 1))
    }
}

/// A line waiting to be written.
#[derive(Debug)]
struct Queued {
    chain: ChainId,
    /// The last sequence number the line covers.
    through: u64,
    line: String,
}

#[derive(Debug, Default)]
struct Shared {
    chains: HashMap<ChainId, Cursor>,
    queue: Vec<Queued>,
    /// Hash of the last entry queued: what a new chain's genesis links to.
    head: B256,
    stopped: Option<String>,
}

impl Shared {
    /// Takes an entry from an enclave; queues it and whatever it unblocks.
    fn offer(&mut self, chain: ChainId, seq: u64, entry: SignedEntry) {
        let cursor = self.chains.entry(chain).or_default();
        if seq < cursor.next {
            return; // already queued (fetched again), or declared lost
        }
        cursor.pending.insert(seq, entry);
        while let Some(e) = cursor.pending.remove(&cursor.next) {
            self.head = e.hash;
            self.queue.push(Queued {
                chain,
                through: cursor.next,
                line: e.to_line(),
            });
            cursor.next += 1;
        }
    }

    /// Writes off `from..=to` of `chain` as lost, and queues what follows.
    fn declare_gap(&mut self, chain: ChainId, from: u64, to: u64, reason: String) {
        tracing::error!(
            chain = %chain.short(), from, to, reason = %reason,
            "audit entries lost: logging a gap (audit verify will report it)"
        );
        let gap = LogLine::Gap(Gap {
            chain,
            from,
            to,
            reason,
            time_ms: now_ms(),
        });
        self.queue.push(Queued {
            chain,
            through: to,
            line: gap.to_line(),
        });
        let cursor = self.chains.entry(chain).or_default();
        cursor.declared.push((from, to));
        cursor.next = to + 1;
        if let Some(first) = cursor.pending.keys().next().copied() {
            if let Some(entry) = cursor.pending.remove(&first) {
                self.offer(chain, first, entry);
            }
        }
    }
}

/// The audit log file and the state of every chain in it.
pub struct AuditLog {
    path: PathBuf,
    shared: Mutex<Shared>,
    /// The file; its lock also makes one writer at a time (the others' entries go in its batch).
    file: tokio::sync::Mutex<Arc<File>>,
    /// Bumped after each write (or failure), to wake waiting requests.
    progress: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens (creating it and its directory if needed, mode 0600) the log at `path`, reads
    /// where each chain stands, and cuts a torn last line.
    ///
    /// # Errors
    /// When the file cannot be created, read or repaired.
    pub fn open(path: &Path) -> Result<AuditLog, AuditLogError> {
        use std::os::unix::fs::OpenOptionsExt as _;
        let io = |source| AuditLogError::Io {
            path: path.to_owned(),
            source,
        };
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let existed = path.exists();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mut shared = Shared::default();
        let scan = scan(&file, &mut shared).map_err(io)?;
        if let Some(valid) = scan.torn_at {
            tracing::warn!(
                path = %path.display(),
                kept_bytes = valid,
                "cutting a torn last line off the audit log (its reply was never released)"
            );
            file.set_len(valid).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        if scan.unreadable > 0 {
            tracing::warn!(
                path = %path.display(),
                lines = scan.unreadable,
                "the audit log holds lines that are not entries (audit verify will report them)"
            );
        }
        if !existed {
            // Make the new file's name durable too.
            if let Some(dir) = dir {
                File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
            }
        }
        tracing::info!(
            path = %path.display(),
            lines = scan.lines,
            chains = shared.chains.len(),
            "audit log open"
        );
        let (progress, _) = tokio::sync::watch::channel(0);
        Ok(AuditLog {
            path: path.to_owned(),
            shared: Mutex::new(shared),
            file: tokio::sync::Mutex::new(Arc::new(file)),
            progress,
        })
    }

    /// The log file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The hash of the last entry written or queued (zero for an empty log): a chain that
    /// starts now links its genesis to it.
    pub fn head(&self) -> B256 {
        self.lock().head
    }

    /// Appends `entries` (from one enclave reply) in their chains' order and returns once they
    /// are on disk. Entries whose predecessors are missing wait for them, ask the enclaves
    /// for them, or, as a last resort, follow a gap line.
    ///
    /// # Errors
    /// When the log cannot be written (then nothing may be released), an entry is unusable, or
    /// it arrives after being declared lost.
    pub async fn record(
        self: &Arc<Self>,
        pool: &Arc<EnclavePool>,
        entries: Vec<SignedEntry>,
    ) -> Result<(), AuditLogError> {
        let mut mine = Vec::with_capacity(entries.len());
        {
            let mut shared = self.lock();
            if let Some(why) = &shared.stopped {
                return Err(AuditLogError::Stopped(why.clone()));
            }
            for entry in entries {
                let body = entry
                    .body()
                    .map_err(|e| AuditLogError::Invalid(e.to_string()))?;
                if entry.computed_hash() != entry.hash {
                    return Err(AuditLogError::Invalid("its hash does not match".into()));
                }
                mine.push((body.chain, body.seq));
                shared.offer(body.chain, body.seq, entry);
            }
        }
        loop {
            let mut progress = self.progress.subscribe();
            let flush = {
                let shared = self.lock();
                if let Some(why) = &shared.stopped {
                    return Err(AuditLogError::Stopped(why.clone()));
                }
                let mut done = true;
                for (chain, seq) in &mine {
                    let Some(cursor) = shared.chains.get(chain) else {
                        done = false;
                        continue;
                    };
                    if cursor.declared_lost(*seq) {
                        return Err(AuditLogError::Late {
                            chain: chain.short(),
                            seq: *seq,
                        });
                    }
                    done &= cursor.durable > *seq;
                }
                if done {
                    return Ok(());
                }
                !shared.queue.is_empty()
            };
            if flush {
                // In a task of its own, so that a request given up half-way cannot leave the
                // log's state behind the file.
                let log = Arc::clone(self);
                let _ = tokio::spawn(async move { log.flush().await }).await;
                continue;
            }
            if tokio::time::timeout(GAP_WAIT, progress.changed())
                .await
                .is_err()
            {
                for (chain, _) in &mine {
                    self.start_recovery(pool, *chain);
                }
            }
        }
    }

    /// Writes and syncs everything queued, as one batch.
    async fn flush(&self) {
        let file = self.file.lock().await;
        let batch = std::mem::take(&mut self.lock().queue);
        if batch.is_empty() {
            return;
        }
        let mut text = String::with_capacity(batch.iter().map(|q| q.line.len() + 1).sum());
        for q in &batch {
            text.push_str(&q.line);
            text.push('\n');
        }
        let handle = Arc::clone(&file);
        let written = tokio::task::spawn_blocking(move || {
            let mut writer: &File = &handle;
            writer.write_all(text.as_bytes())?;
            handle.sync_data()
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
        {
            let mut shared = self.lock();
            match written {
                Ok(()) => {
                    for q in &batch {
                        let cursor = shared.chains.entry(q.chain).or_default();
                        cursor.durable = cursor.durable.max(q.through + 1);
                    }
                }
                Err(e) => {
                    tracing::error!(
                        path = %self.path.display(), error = %e,
                        "the audit log cannot be written: refusing to release anything more"
                    );
                    shared.stopped = Some(e.to_string());
                }
            }
        }
        self.progress.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Starts a task that fetches `chain`'s missing entries again, unless one is running or
    /// nothing is missing.
    fn start_recovery(self: &Arc<Self>, pool: &Arc<EnclavePool>, chain: ChainId) {
        {
            let mut shared = self.lock();
            let Some(cursor) = shared.chains.get_mut(&chain) else {
                return;
            };
            if cursor.recovering || cursor.hole().is_none() {
                return;
            }
            cursor.recovering = true;
        }
        let (log, pool) = (Arc::clone(self), Arc::clone(pool));
        tokio::spawn(async move {
            log.recover(&pool, chain).await;
            log.flush().await;
        });
    }

    async fn recover(&self, pool: &EnclavePool, chain: ChainId) {
        loop {
            let Some((from, to)) = self.lock().chains.get(&chain).and_then(Cursor::hole) else {
                break;
            };
            let fetched = fetch(pool, chain, from, to).await;
            let mut shared = self.lock();
            let mut reason = None;
            match fetched {
                Ok(entries) => {
                    for entry in entries {
                        match entry.body() {
                            Ok(b)
                                if b.chain == chain
                                    && (from..=to).contains(&b.seq)
                                    && entry.computed_hash() == entry.hash =>
                            {
                                shared.offer(chain, b.seq, entry);
                            }
                            _ => reason = Some("the enclave answered with other entries".into()),
                        }
                    }
                }
                Err(e) => reason = Some(e),
            }
            let Some(cursor) = shared.chains.get(&chain) else {
                break;
            };
            if cursor.next > from {
                tracing::info!(chain = %chain.short(), from, "recovered audit entries whose reply was lost");
                continue; // progress: look again
            }
            if let Some((from, to)) = cursor.hole() {
                let reason = reason.unwrap_or_else(|| "no enclave holds them any more".into());
                shared.declare_gap(
                    chain,
                    from,
                    to,
                    format!("the enclave's replies were lost and {reason}"),
                );
            }
        }
        if let Some(cursor) = self.lock().chains.get_mut(&chain) {
            cursor.recovering = false;
        }
    }
}

/// Asks the enclaves for entries `from..=to` of `chain`: the pool first (one enclave, or the
/// right one by luck), then each enclave in turn on a connection of its own, since the pool
/// cannot address one enclave and only the enclave that writes `chain` has them.
async fn fetch(
    pool: &EnclavePool,
    chain: ChainId,
    from: u64,
    to: u64,
) -> Result<Vec<SignedEntry>, String> {
    let request = || Request::AuditEntries(AuditEntries { chain, from, to });
    let mut last = match pool.call(request()).await {
        Ok(Response::AuditEntries(list)) => return Ok(list.entries),
        Ok(_) => "unexpected answer".to_owned(),
        Err(e) => e.to_string(),
    };
    let endpoints = pool.endpoints();
    if endpoints.len() < 2 {
        return Err(last);
    }
    for endpoint in endpoints {
        let client = EnclaveClient::new(endpoint, ClientTimeouts::default(), None);
        let answer = client.call(request()).await;
        client.close();
        match answer {
            Ok(Response::AuditEntries(list)) => return Ok(list.entries),
            Ok(_) => last = "unexpected answer".into(),
            Err(CallError::Enclave(e)) if e.code == ErrorCode::InvalidRequest => {
                last = "no running enclave writes this chain".into();
            }
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

struct Scan {
    lines: usize,
    unreadable: usize,
    /// Length to cut the file to when its last line is torn.
    torn_at: Option<u64>,
}

/// Reads the log from the start into `shared`.
fn scan(file: &File, shared: &mut Shared) -> std::io::Result<Scan> {
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    let mut offset = 0u64;
    let mut result = Scan {
        lines: 0,
        unreadable: 0,
        torn_at: None,
    };
    loop {
        buf.clear();
        let n = (&mut reader)
            .take(MAX_LINE_LEN as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        let start = offset;
        offset += n as u64;
        if buf.last() != Some(&b'\n') {
            if n > MAX_LINE_LEN {
                // An overlong line: skip the rest of it.
                result.unreadable += 1;
                let mut rest = Vec::new();
                offset += reader.read_until(b'\n', &mut rest)? as u64;
                continue;
            }
            result.torn_at = Some(start);
            break;
        }
        buf.pop();
        result.lines += 1;
        let line = std::str::from_utf8(&buf).ok().map(LogLine::parse);
        match line {
            Some(Ok(LogLine::Entry(e))) => match e.body() {
                Ok(body) => {
                    let cursor = shared.chains.entry(body.chain).or_default();
                    cursor.next = cursor.next.max(body.seq + 1);
                    cursor.durable = cursor.next;
                    shared.head = e.hash;
                }
                Err(_) => result.unreadable += 1,
            },
            Some(Ok(LogLine::Gap(g))) => {
                let cursor = shared.chains.entry(g.chain).or_default();
                cursor.next = cursor.next.max(g.to.saturating_add(1));
                cursor.durable = cursor.next;
                cursor.declared.push((g.from, g.to));
            }
            _ => result.unreadable += 1,
        }
    }
    Ok(result)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use nitro_wallet_audit::{Chain, Decision, Genesis, Operation, Verdict};

    fn decision() -> Decision {
        Decision {
            caller: None,
            op: Operation::SignHash,
            key: None,
            intent: None,
            policy: None,
            result: Verdict::Ok,
            code: None,
            rule: None,
            output: None,
        }
    }

    fn chain() -> Chain {
        let chain = Chain::new().unwrap();
        chain
            .start(
                Genesis {
                    attestation: vec![],
                    dev: true,
                    enclave_version: "t".into(),
                },
                B256::ZERO,
                0,
            )
            .unwrap();
        chain
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn seq_of(line: &str) -> u64 {
        match LogLine::parse(line).unwrap() {
            LogLine::Entry(e) => e.body().unwrap().seq,
            LogLine::Gap(g) => 1000 + g.from,
        }
    }

    #[test]
    fn entries_are_queued_in_chain_order_whatever_order_they_arrive_in() {
        let c = chain();
        let genesis = c.entries(0, 0).unwrap().remove(0);
        let e1 = c.record(decision(), 1).unwrap();
        let e2 = c.record(decision(), 2).unwrap();
        let e3 = c.record(decision(), 3).unwrap();
        let mut shared = Shared::default();
        shared.offer(c.id(), 2, e2.clone());
        shared.offer(c.id(), 3, e3.clone());
        assert!(shared.queue.is_empty(), "nothing before the genesis");
        shared.offer(c.id(), 0, genesis);
        shared.offer(c.id(), 1, e1);
        let order: Vec<u64> = shared.queue.iter().map(|q| q.through).collect();
        assert_eq!(order, [0, 1, 2, 3]);
        assert_eq!(shared.head, e3.hash);
        // Offered again (a fetch that raced the reply): ignored.
        shared.offer(c.id(), 2, e2);
        assert_eq!(shared.queue.len(), 4);
    }

    #[test]
    fn a_declared_gap_unblocks_what_follows() {
        let c = chain();
        let genesis = c.entries(0, 0).unwrap().remove(0);
        let _lost = c.record(decision(), 1).unwrap();
        let e2 = c.record(decision(), 2).unwrap();
        let mut shared = Shared::default();
        shared.offer(c.id(), 0, genesis);
        shared.offer(c.id(), 2, e2);
        let cursor = &shared.chains[&c.id()];
        assert_eq!(cursor.hole(), Some((1, 1)));
        shared.declare_gap(c.id(), 1, 1, "lost".into());
        let order: Vec<u64> = shared.queue.iter().map(|q| q.through).collect();
        assert_eq!(order, [0, 1, 2]);
        assert!(shared.chains[&c.id()].declared_lost(1));
        assert!(!shared.chains[&c.id()].declared_lost(2));
    }

    fn no_enclaves() -> Arc<EnclavePool> {
        Arc::new(EnclavePool::new(
            vec![],
            crate::enclave_pool::PoolOptions::default(),
            None,
        ))
    }

    #[tokio::test]
    async fn entries_recorded_out_of_order_are_written_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let pool = no_enclaves();
        let c = chain();
        let mut entries = c.entries(0, 0).unwrap();
        for _ in 0..20 {
            entries.push(c.record(decision(), 0).unwrap());
        }
        let tasks: Vec<_> = entries
            .into_iter()
            .rev()
            .map(|e| {
                let (log, pool) = (log.clone(), pool.clone());
                tokio::spawn(async move { log.record(&pool, vec![e]).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let seqs: Vec<u64> = lines(&path).iter().map(|l| seq_of(l)).collect();
        assert_eq!(seqs, (0..=20).collect::<Vec<u64>>());
    }

    #[tokio::test]
    async fn a_lost_entry_no_enclave_holds_becomes_a_gap_and_cannot_come_late() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let pool = no_enclaves();
        let c = chain();
        let genesis = c.entries(0, 0).unwrap();
        let lost = c.record(decision(), 1).unwrap();
        let after = c.record(decision(), 2).unwrap();
        log.record(&pool, genesis).await.unwrap();
        // Entry 1's reply never comes; 2 waits, the recovery finds no enclave, a gap is logged.
        let started = std::time::Instant::now();
        log.record(&pool, vec![after]).await.unwrap();
        assert!(started.elapsed() >= GAP_WAIT);
        let seqs: Vec<u64> = lines(&path).iter().map(|l| seq_of(l)).collect();
        assert_eq!(seqs, [0, 1001, 2], "genesis, gap from 1, entry 2");
        // Entry 1 turning up now must not release its signature: it is not in the log.
        assert!(matches!(
            log.record(&pool, vec![lost]).await,
            Err(AuditLogError::Late { seq: 1, .. })
        ));
    }

    #[tokio::test]
    async fn a_failed_write_stops_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = Arc::new(AuditLog::open(&path).unwrap());
        let pool = no_enclaves();
        // A handle that cannot write, as a full or failing disk would behave.
        *log.file.lock().await = Arc::new(File::open(&path).unwrap());
        let c = chain();
        let genesis = c.entries(0, 0).unwrap();
        assert!(matches!(
            log.record(&pool, genesis).await,
            Err(AuditLogError::Stopped(_))
        ));
        let next = c.record(decision(), 1).unwrap();
        assert!(matches!(
            log.record(&pool, vec![next]).await,
            Err(AuditLogError::Stopped(_))
        ));
        assert!(lines(&path).is_empty());
    }

    #[tokio::test]
    async fn a_reopened_log_knows_its_chains_and_cuts_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("audit.jsonl");
        let c = chain();
        let genesis = c.entries(0, 0).unwrap().remove(0);
        let e1 = c.record(decision(), 1).unwrap();
        {
            let log = AuditLog::open(&path).unwrap();
            {
                let mut shared = log.lock();
                shared.offer(c.id(), 0, genesis);
                shared.offer(c.id(), 1, e1.clone());
            }
            log.flush().await;
            assert_eq!(log.head(), e1.hash);
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A crash in the middle of the next write.
        let e2 = c.record(decision(), 2).unwrap();
        let half = &e2.to_line()[..40];
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(half.as_bytes())
            .unwrap();
        let log = AuditLog::open(&path).unwrap();
        assert_eq!(lines(&path).len(), 2);
        assert_eq!(log.head(), e1.hash);
        {
            let shared = log.lock();
            let cursor = &shared.chains[&c.id()];
            assert_eq!((cursor.next, cursor.durable), (2, 2));
        }
        log.lock().offer(c.id(), 2, e2);
        log.flush().await;
        let seqs: Vec<u64> = lines(&path).iter().map(|l| seq_of(l)).collect();
        assert_eq!(seqs, [0, 1, 2]);
    }
}
