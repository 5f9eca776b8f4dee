//! The auditor's side: [`verify_log`] checks a whole log and names its first broken link.
//!
//! For every line, in order:
//!
//! 1. it must be a log line ([`LogLine::parse`]);
//! 2. the entry's body must hash to its recorded hash, else it was **modified**;
//! 3. a genesis must carry an attestation document that verifies against the trust anchor
//!    (at the document's own time: NSM certificates live hours, logs live years), with the
//!    expected PCRs, not in debug mode unless allowed, and whose `user_data` binds exactly
//!    this chain's key; it must be the chain's only genesis, with sequence 0, and its `prev`
//!    must be zero or the hash of an entry earlier in the file;
//! 4. any other entry must belong to a chain whose genesis came earlier;
//! 5. the signature must verify under the chain's key, else the entry was **forged** or
//!    altered after hashing;
//! 6. its sequence number must be the chain's next, else entries were **deleted** (a gap; if
//!    the missing entry appears later in the file the entries were **reordered**) or
//!    reordered/duplicated (a step back), and its `prev` must be the hash of the chain's
//!    previous entry.
//!
//! The file is read twice, streaming: a first pass collects the hashes genesis entries link
//! to, so that memory stays proportional to the number of chains, not of entries.
//!
//! What this cannot see: entries cut from the **end** of a chain (nothing follows them), or
//! a whole chain removed when no later genesis links into it. Publish the last hash (the
//! summary prints it) somewhere the host cannot rewrite to detect those.

use crate::entry::{ChainId, Event, Gap, LogLine, ENTRY_VERSION, MAX_LINE_LEN};
use crate::signature_is_valid;
use alloy_primitives::B256;
use nitro_wallet_attestation::{verify_signed, SignedDocument};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::BufRead;

/// What a log must satisfy besides its own consistency.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// How each genesis's attestation document is checked: trust anchor (the AWS Nitro root by
    /// default; the dev CA's root for dev mode), expected PCRs, debug mode. Its `at` is
    /// ignored: each document is checked at its own timestamp. Its `user_data` is set per
    /// chain.
    pub attestation: nitro_wallet_attestation::VerifyOptions,
    /// Accept the gaps the host declared (entries it was owed and could not obtain) instead
    /// of failing on them; they are listed in the summary.
    pub allow_declared_gaps: bool,
}

/// One chain of a verified log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    /// The chain (its key).
    pub chain: ChainId,
    /// Line of its genesis (1-based).
    pub genesis_line: usize,
    /// Line of its last entry.
    pub last_line: usize,
    /// Entries, the genesis included.
    pub entries: u64,
    /// Sequence number of its last entry.
    pub last_seq: u64,
    /// Hash of its last entry.
    pub last_hash: B256,
    /// Time of its genesis and of its last entry, milliseconds since the epoch.
    pub time_ms: (u64, u64),
    /// The attesting NSM module.
    pub module_id: String,
    /// PCR0 of the enclave image (hex).
    pub pcr0: String,
    /// A debug-mode enclave (only with `allow_debug`).
    pub debug: bool,
    /// The genesis says it came from dev mode's simulated NSM.
    pub dev: bool,
}

/// A log that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Lines read.
    pub lines: usize,
    /// Entries (genesis entries included).
    pub entries: u64,
    /// Each chain, in order of their genesis.
    pub chains: Vec<ChainSummary>,
    /// Gaps the host declared and that were accepted, with their line.
    pub declared_gaps: Vec<(usize, Gap)>,
    /// Hash of the last entry of the file (anchor it outside the host to detect truncation).
    pub last_hash: Option<B256>,
}

/// The first broken link of a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// Line (1-based); 0 when the file could not be opened.
    pub line: usize,
    /// The chain of the entry, when known.
    pub chain: Option<ChainId>,
    /// The entry's sequence number, when known.
    pub seq: Option<u64>,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}", self.line)?;
        match (&self.chain, self.seq) {
            (Some(c), Some(s)) => write!(f, " (chain {}, seq {s})", c.short())?,
            (Some(c), None) => write!(f, " (chain {})", c.short())?,
            _ => {}
        }
        write!(f, ": {}", self.problem)
    }
}

impl std::error::Error for Broken {}

/// What is wrong at a [`Broken`] line.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file could not be read.
    Io(String),
    /// Not a log line (or an entry body that is not an entry).
    Malformed(String),
    /// An entry format this verifier does not know.
    UnsupportedVersion(u32),
    /// The body does not hash to the recorded hash: the entry was modified.
    HashMismatch {
        /// The hash on the line.
        recorded: B256,
        /// The hash of the body on the line.
        computed: B256,
    },
    /// The signature does not verify under the chain's key: forged or altered.
    BadSignature,
    /// No genesis of this entry's chain came before it.
    UnknownChain {
        /// Where the chain's genesis is, if it is later in the file (moved).
        genesis_later_at: Option<usize>,
    },
    /// The sequence number skips ahead: entries are missing here.
    Missing {
        /// The sequence number that should have come.
        expected: u64,
        /// The one that came.
        found: u64,
        /// Line of the chain's previous entry.
        previous_line: usize,
        /// Where the expected entry is, if later in the file (reordered).
        expected_later_at: Option<usize>,
    },
    /// The sequence number steps back: entries were reordered.
    OutOfOrder {
        /// The sequence number that should have come.
        expected: u64,
        /// The one that came.
        found: u64,
        /// Line of the chain's previous entry.
        previous_line: usize,
    },
    /// The same entry again.
    Duplicate {
        /// Where it came first.
        first_line: usize,
    },
    /// The entry does not link to the chain's previous entry.
    PrevMismatch {
        /// Line of the chain's previous entry.
        previous_line: usize,
    },
    /// The genesis's attestation document does not verify.
    Attestation(String),
    /// A genesis that is not a proper start of a chain.
    BadGenesis(String),
    /// The host declared entries lost, and declared gaps are not accepted.
    DeclaredGap {
        /// First missing sequence number.
        from: u64,
        /// Last missing sequence number.
        to: u64,
        /// The host's reason.
        reason: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Io(e) => write!(f, "cannot read the log: {e}"),
            Problem::Malformed(e) => write!(f, "not a valid audit log line: {e}"),
            Problem::UnsupportedVersion(v) => write!(
                f,
                "entry format version {v} is not supported (this verifier knows {ENTRY_VERSION})"
            ),
            Problem::HashMismatch { recorded, computed } => write!(
                f,
                "MODIFIED: the entry's content hashes to {computed}, not to its recorded hash \
                 {recorded}"
            ),
            Problem::BadSignature => f.write_str(
                "FORGED or altered: the signature does not verify under the chain's attested key",
            ),
            Problem::UnknownChain { genesis_later_at } => match genesis_later_at {
                Some(l) => write!(
                    f,
                    "REORDERED: the chain's genesis comes later, at line {l}, instead of first"
                ),
                None => f.write_str(
                    "no genesis of this chain comes before it: the genesis was DELETED (or the \
                     log was cut at the start)",
                ),
            },
            Problem::Missing {
                expected,
                found,
                previous_line,
                expected_later_at,
            } => {
                let (missing, verb) = if found - expected == 1 {
                    (format!("entry {expected}"), "is")
                } else {
                    (format!("entries {expected} to {}", found - 1), "are")
                };
                match expected_later_at {
                    Some(l) => write!(
                        f,
                        "REORDERED: expected seq {expected} after the chain's previous entry \
                         (line {previous_line}), found {found}; entry {expected} comes later, at \
                         line {l}"
                    ),
                    None => write!(
                        f,
                        "DELETED: {missing} of this chain {verb} missing (expected after line \
                         {previous_line}, found seq {found})"
                    ),
                }
            }
            Problem::OutOfOrder {
                expected,
                found,
                previous_line,
            } => write!(
                f,
                "REORDERED: seq {found} comes after the chain's entry {} (line {previous_line}); \
                 expected {expected}",
                expected.saturating_sub(1)
            ),
            Problem::Duplicate { first_line } => {
                write!(f, "DUPLICATED: the same entry as line {first_line}")
            }
            Problem::PrevMismatch { previous_line } => write!(
                f,
                "does not link to the chain's previous entry (line {previous_line}): entries \
                 were replaced"
            ),
            Problem::Attestation(e) => {
                write!(f, "the genesis's attestation document does not verify: {e}")
            }
            Problem::BadGenesis(e) => write!(f, "invalid genesis: {e}"),
            Problem::DeclaredGap { from, to, reason } => write!(
                f,
                "the host declared entries {from} to {to} of this chain lost ({reason}); \
                 --allow-declared-gaps accepts that"
            ),
        }
    }
}

/// Reads lines of at most [`MAX_LINE_LEN`] bytes; longer ones are consumed and reported.
struct Lines<R> {
    reader: R,
    number: usize,
    buf: Vec<u8>,
}

enum Line {
    Text(String),
    Bad(String),
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            reader,
            number: 0,
            buf: Vec::new(),
        }
    }

    fn next_line(&mut self) -> Result<Option<(usize, Line)>, std::io::Error> {
        self.buf.clear();
        let limit = MAX_LINE_LEN as u64 + 1;
        let n = std::io::Read::take(&mut self.reader, limit).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.number += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        } else if self.buf.len() as u64 == limit {
            // Too long: skip the rest of it.
            loop {
                let available = self.reader.fill_buf()?;
                if available.is_empty() {
                    break;
                }
                match available.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        self.reader.consume(i + 1);
                        break;
                    }
                    None => {
                        let len = available.len();
                        self.reader.consume(len);
                    }
                }
            }
            return Ok(Some((
                self.number,
                Line::Bad(format!("line longer than {MAX_LINE_LEN} bytes")),
            )));
        }
        let line = match String::from_utf8(std::mem::take(&mut self.buf)) {
            Ok(s) => Line::Text(s),
            Err(_) => Line::Bad("not UTF-8".into()),
        };
        Ok(Some((self.number, line)))
    }
}

fn io_broken(line: usize, e: &std::io::Error) -> Box<Broken> {
    Box::new(Broken {
        line,
        chain: None,
        seq: None,
        problem: Problem::Io(e.to_string()),
    })
}

/// The hashes that genesis entries link to (first pass).
fn genesis_links<R: BufRead>(reader: R) -> Result<HashSet<B256>, Box<Broken>> {
    let mut lines = Lines::new(reader);
    let mut wanted = HashSet::new();
    while let Some((_, line)) = lines.next_line().map_err(|e| io_broken(lines.number, &e))? {
        let Line::Text(text) = line else { continue };
        // Only a genesis body contains this; other lines need no parsing here.
        if !text.contains("\"event\":{\"genesis\"") {
            continue;
        }
        if let Ok(LogLine::Entry(e)) = LogLine::parse(&text) {
            if let Ok(body) = e.body() {
                if !body.prev.is_zero() {
                    wanted.insert(body.prev);
                }
            }
        }
    }
    Ok(wanted)
}

struct ChainState {
    summary: ChainSummary,
    /// The next entry may skip the link check once: it follows an accepted declared gap.
    after_gap: bool,
    genesis_hash: B256,
}

/// Verifies a log; `open` is called twice and must return the same bytes each time (the
/// file, opened afresh).
///
/// # Errors
/// The first [`Broken`] link.
pub fn verify_log<R: BufRead>(
    mut open: impl FnMut() -> std::io::Result<R>,
    options: &VerifyOptions,
) -> Result<Summary, Box<Broken>> {
    let wanted = genesis_links(open().map_err(|e| io_broken(0, &e))?)?;
    let mut lines = Lines::new(open().map_err(|e| io_broken(0, &e))?);
    let mut chains: HashMap<ChainId, ChainState> = HashMap::new();
    let mut order: Vec<ChainId> = Vec::new();
    let mut linked: HashMap<B256, usize> = HashMap::new();
    let mut summary = Summary {
        lines: 0,
        entries: 0,
        chains: Vec::new(),
        declared_gaps: Vec::new(),
        last_hash: None,
    };
    while let Some((n, line)) = lines.next_line().map_err(|e| io_broken(lines.number, &e))? {
        summary.lines = n;
        let broken = |chain, seq, problem| {
            Box::new(Broken {
                line: n,
                chain,
                seq,
                problem,
            })
        };
        let text = match line {
            Line::Text(t) => t,
            Line::Bad(why) => return Err(broken(None, None, Problem::Malformed(why))),
        };
        let entry = match LogLine::parse(&text) {
            Ok(LogLine::Entry(e)) => e,
            Ok(LogLine::Gap(gap)) => {
                let chain = Some(gap.chain);
                let Some(state) = chains.get_mut(&gap.chain) else {
                    return Err(broken(
                        chain,
                        None,
                        Problem::UnknownChain {
                            genesis_later_at: None,
                        },
                    ));
                };
                let next = state.summary.last_seq + 1;
                if !options.allow_declared_gaps || gap.from != next || gap.to < gap.from {
                    return Err(broken(
                        chain,
                        Some(gap.from),
                        Problem::DeclaredGap {
                            from: gap.from,
                            to: gap.to,
                            reason: gap.reason,
                        },
                    ));
                }
                state.summary.last_seq = gap.to;
                state.after_gap = true;
                summary.declared_gaps.push((n, gap));
                continue;
            }
            Err(e) => return Err(broken(None, None, Problem::Malformed(e))),
        };
        let computed = entry.computed_hash();
        if computed != entry.hash {
            // Name the entry if its (untrusted) body still says which it is.
            let named = entry.body().ok();
            return Err(broken(
                named.as_ref().map(|b| b.chain),
                named.as_ref().map(|b| b.seq),
                Problem::HashMismatch {
                    recorded: entry.hash,
                    computed,
                },
            ));
        }
        let body = entry
            .body()
            .map_err(|e| broken(None, None, Problem::Malformed(format!("entry body: {e}"))))?;
        let (chain, seq) = (Some(body.chain), Some(body.seq));
        if body.v != ENTRY_VERSION {
            return Err(broken(chain, seq, Problem::UnsupportedVersion(body.v)));
        }
        match body.event {
            Event::Genesis(genesis) => {
                if let Some(existing) = chains.get(&body.chain) {
                    let first_line = existing.summary.genesis_line;
                    let problem = if existing.genesis_hash == entry.hash {
                        Problem::Duplicate { first_line }
                    } else {
                        Problem::BadGenesis(format!(
                            "a second genesis of this chain (the first is at line {first_line})"
                        ))
                    };
                    return Err(broken(chain, seq, problem));
                }
                if body.seq != 0 {
                    return Err(broken(
                        chain,
                        seq,
                        Problem::BadGenesis("a genesis must have seq 0".into()),
                    ));
                }
                if !signature_is_valid(&body.chain, &entry.hash, &entry.sig) {
                    return Err(broken(chain, seq, Problem::BadSignature));
                }
                let (module_id, pcr0, debug) =
                    check_attestation(&genesis.attestation, &body.chain, options)
                        .map_err(|e| broken(chain, seq, Problem::Attestation(e)))?;
                if !body.prev.is_zero() && !linked.contains_key(&body.prev) {
                    return Err(broken(
                        chain,
                        seq,
                        Problem::BadGenesis(format!(
                            "it links to entry {} which does not come earlier in this log \
                             (entries before it were deleted, or this is a later part of a log)",
                            body.prev
                        )),
                    ));
                }
                chains.insert(
                    body.chain,
                    ChainState {
                        summary: ChainSummary {
                            chain: body.chain,
                            genesis_line: n,
                            last_line: n,
                            entries: 1,
                            last_seq: 0,
                            last_hash: entry.hash,
                            time_ms: (body.time_ms, body.time_ms),
                            module_id,
                            pcr0,
                            debug,
                            dev: genesis.dev,
                        },
                        after_gap: false,
                        genesis_hash: entry.hash,
                    },
                );
                order.push(body.chain);
            }
            Event::Decision(_) => {
                let Some(state) = chains.get_mut(&body.chain) else {
                    let genesis_later_at = find_later(&mut lines, |e| {
                        e.chain == body.chain && matches!(e.event, Event::Genesis(_))
                    });
                    return Err(broken(
                        chain,
                        seq,
                        Problem::UnknownChain { genesis_later_at },
                    ));
                };
                if !signature_is_valid(&body.chain, &entry.hash, &entry.sig) {
                    return Err(broken(chain, seq, Problem::BadSignature));
                }
                let s = &mut state.summary;
                let expected = s.last_seq + 1;
                let previous_line = s.last_line;
                if body.seq > expected {
                    let expected_later_at =
                        find_later(&mut lines, |e| e.chain == body.chain && e.seq == expected);
                    return Err(broken(
                        chain,
                        seq,
                        Problem::Missing {
                            expected,
                            found: body.seq,
                            previous_line,
                            expected_later_at,
                        },
                    ));
                }
                if body.seq < expected {
                    let problem = if body.seq == s.last_seq && entry.hash == s.last_hash {
                        Problem::Duplicate {
                            first_line: previous_line,
                        }
                    } else {
                        Problem::OutOfOrder {
                            expected,
                            found: body.seq,
                            previous_line,
                        }
                    };
                    return Err(broken(chain, seq, problem));
                }
                if body.prev != s.last_hash && !state.after_gap {
                    return Err(broken(chain, seq, Problem::PrevMismatch { previous_line }));
                }
                state.after_gap = false;
                s.last_seq = body.seq;
                s.last_hash = entry.hash;
                s.last_line = n;
                s.entries += 1;
                s.time_ms.1 = body.time_ms;
            }
        }
        if wanted.contains(&entry.hash) {
            linked.insert(entry.hash, n);
        }
        summary.entries += 1;
        summary.last_hash = Some(entry.hash);
    }
    summary.chains = order
        .iter()
        .filter_map(|c| chains.remove(c).map(|s| s.summary))
        .collect();
    Ok(summary)
}

/// Checks a genesis document; returns the module id, PCR0 (hex) and debug mode.
fn check_attestation(
    document: &[u8],
    chain: &ChainId,
    options: &VerifyOptions,
) -> Result<(String, String, bool), String> {
    let signed = SignedDocument::parse(document).map_err(|e| e.to_string())?;
    let timestamp = signed.document.timestamp;
    let attestation = options
        .attestation
        .clone()
        .at_unix_ms(timestamp)
        .expect_user_data(chain.user_data());
    let verified = verify_signed(signed, &attestation).map_err(|e| e.to_string())?;
    let pcr0 = verified
        .document
        .pcr(0)
        .map(|p| p.iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default();
    Ok((verified.document.module_id, pcr0, verified.debug))
}

/// The line number of the first later entry matching `wanted` (for diagnostics only: the log
/// is already known to be broken).
fn find_later<R: BufRead>(
    lines: &mut Lines<R>,
    wanted: impl Fn(&crate::entry::Entry) -> bool,
) -> Option<usize> {
    while let Ok(Some((n, line))) = lines.next_line() {
        let Line::Text(text) = line else { continue };
        if let Ok(LogLine::Entry(e)) = LogLine::parse(&text) {
            if e.body().is_ok_and(|b| wanted(&b)) {
                return Some(n);
            }
        }
    }
    None
}
