//! The audit log end to end, without the enclave: chains made with [`Chain`] and a dev NSM
//! (real document format, dev CA), written as the host writes them, checked by
//! [`verify_log`], then tampered with in every way the verifier must pinpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use alloy_primitives::{B256, B512};
use nitro_wallet_attestation::{DevCa, DevNsm, Nsm};
use nitro_wallet_audit::{
    verify_log, Chain, Decision, Gap, Genesis, LogLine, Operation, Problem, SignedEntry, Verdict,
    VerifyOptions,
};
use serde_json::value::RawValue;

const PCR0: [u8; 48] = [0x11; 48];

struct Fixture {
    nsm: DevNsm,
    root: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let ca = DevCa::generate().unwrap();
        let root = ca.root_der().to_vec();
        Fixture {
            nsm: DevNsm::new(ca, PCR0).unwrap(),
            root,
        }
    }

    fn options(&self) -> VerifyOptions {
        VerifyOptions {
            attestation: nitro_wallet_attestation::VerifyOptions::with_root(self.root.clone()),
            allow_declared_gaps: false,
        }
    }

    fn start(&self, chain: &Chain, prev: B256) -> SignedEntry {
        let document = self
            .nsm
            .attestation(None, Some(&chain.id().user_data()), None)
            .unwrap();
        chain
            .start(
                Genesis {
                    attestation: document,
                    dev: true,
                    enclave_version: "test".into(),
                },
                prev,
                1_000,
            )
            .unwrap()
    }
}

fn decision(n: u64) -> Decision {
    let denied = n.is_multiple_of(3);
    Decision {
        caller: Some("ops".into()),
        op: Operation::SignHash,
        key: None,
        intent: None,
        policy: None,
        result: if denied { Verdict::Denied } else { Verdict::Ok },
        code: denied.then(|| "policy_denied".to_owned()),
        rule: denied.then(|| "raw_hash".to_owned()),
        output: (!denied).then(|| B256::with_last_byte(n as u8)),
    }
}

/// Two interleaved chains: A's genesis, five decisions of A, B's genesis (linked to the log's
/// tail), then alternating decisions of A and B. Lines as the host writes them.
fn two_chain_log(f: &Fixture) -> Vec<String> {
    let a = Chain::new().unwrap();
    let b = Chain::new().unwrap();
    let mut lines = vec![f.start(&a, B256::ZERO).to_line()];
    let mut tail = B256::ZERO;
    for n in 1..=5 {
        let e = a.record(decision(n), 1_000 + n).unwrap();
        tail = e.hash;
        lines.push(e.to_line());
    }
    lines.push(f.start(&b, tail).to_line());
    for n in 6..=11 {
        let chain = if n % 2 == 0 { &a } else { &b };
        lines.push(chain.record(decision(n), 1_000 + n).unwrap().to_line());
    }
    lines
}

fn verify(
    lines: &[String],
    options: &VerifyOptions,
) -> Result<nitro_wallet_audit::Summary, Box<nitro_wallet_audit::Broken>> {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    verify_log(
        || Ok(std::io::Cursor::new(text.clone().into_bytes())),
        options,
    )
}

fn broken_at(lines: &[String], options: &VerifyOptions) -> (usize, Problem) {
    let b = verify(lines, options).expect_err("the log must not verify");
    println!("{b}");
    (b.line, b.problem)
}

#[test]
fn an_intact_log_verifies() {
    let f = Fixture::new();
    let lines = two_chain_log(&f);
    let summary = verify(&lines, &f.options()).unwrap();
    assert_eq!(summary.entries, 13);
    assert_eq!(summary.lines, 13);
    assert_eq!(summary.chains.len(), 2);
    assert_eq!(summary.chains[0].genesis_line, 1);
    assert_eq!(summary.chains[0].entries, 9);
    assert_eq!(summary.chains[1].genesis_line, 7);
    assert_eq!(summary.chains[1].last_seq, 3);
    assert_eq!(summary.chains[0].pcr0, hex::encode(PCR0));
    assert!(summary.chains.iter().all(|c| c.dev && !c.debug));
    let last = match LogLine::parse(lines.last().unwrap()).unwrap() {
        LogLine::Entry(e) => e.hash,
        LogLine::Gap(_) => unreachable!(),
    };
    assert_eq!(summary.last_hash, Some(last));
    // An empty log is a valid (empty) log.
    assert_eq!(verify(&[], &f.options()).unwrap().entries, 0);
}

#[test]
fn a_modified_entry_is_pinpointed() {
    let f = Fixture::new();
    let mut lines = two_chain_log(&f);
    // An auditor-visible change: "ok" → "denied" on line 3, hash left as it was.
    lines[2] = lines[2].replacen("\"result\":\"ok\"", "\"result\":\"denied\"", 1);
    assert!(matches!(
        broken_at(&lines, &f.options()),
        (3, Problem::HashMismatch { .. })
    ));

    // The same change with the hash recomputed: the signature no longer matches.
    let mut lines = two_chain_log(&f);
    let LogLine::Entry(e) = LogLine::parse(&lines[2]).unwrap() else {
        unreachable!()
    };
    let body = e
        .entry
        .get()
        .replacen("\"result\":\"ok\"", "\"result\":\"denied\"", 1);
    let forged = SignedEntry {
        hash: nitro_wallet_audit::entry_hash(body.as_bytes()),
        entry: RawValue::from_string(body).unwrap(),
        sig: e.sig,
    };
    lines[2] = forged.to_line();
    assert_eq!(broken_at(&lines, &f.options()), (3, Problem::BadSignature));
}

#[test]
fn a_flipped_signature_byte_is_pinpointed() {
    let f = Fixture::new();
    let mut lines = two_chain_log(&f);
    let LogLine::Entry(mut e) = LogLine::parse(&lines[8]).unwrap() else {
        unreachable!()
    };
    let mut sig = e.sig.0;
    sig[10] ^= 0x01;
    e.sig = B512::from(sig);
    lines[8] = e.to_line();
    assert_eq!(broken_at(&lines, &f.options()), (9, Problem::BadSignature));
}

#[test]
fn a_deleted_entry_is_pinpointed() {
    let f = Fixture::new();
    let mut lines = two_chain_log(&f);
    lines.remove(3); // seq 3 of chain A
    let (line, problem) = broken_at(&lines, &f.options());
    assert_eq!(line, 4);
    assert_eq!(
        problem,
        Problem::Missing {
            expected: 3,
            found: 4,
            previous_line: 3,
            expected_later_at: None
        }
    );

    // Interleaved: deleting B's seq 1 (line 9) shows at B's next entry (line 10 after removal).
    let mut lines = two_chain_log(&f);
    lines.remove(8);
    let (line, problem) = broken_at(&lines, &f.options());
    assert_eq!(line, 10);
    assert!(matches!(
        problem,
        Problem::Missing {
            expected: 1,
            found: 2,
            previous_line: 7,
            ..
        }
    ));
}

#[test]
fn swapped_entries_are_pinpointed() {
    let f = Fixture::new();
    let mut lines = two_chain_log(&f);
    lines.swap(2, 3);
    let (line, problem) = broken_at(&lines, &f.options());
    assert_eq!(line, 3);
    assert_eq!(
        problem,
        Problem::Missing {
            expected: 2,
            found: 3,
            previous_line: 2,
            expected_later_at: Some(4)
        }
    );
    assert!(problem.to_string().contains("REORDERED"), "{problem}");
    // Swapping entries of different chains changes nothing that matters: each chain is
    // still in order. (Lines 8 and 9 are A's seq 6 and B's seq 1.)
    let mut lines = two_chain_log(&f);
    lines.swap(7, 8);
    assert!(verify(&lines, &f.options()).is_ok());
}

#[test]
fn a_duplicated_entry_is_pinpointed() {
    let f = Fixture::new();
    let mut lines = two_chain_log(&f);
    lines.insert(3, lines[2].clone());
    assert_eq!(
        broken_at(&lines, &f.options()),
        (4, Problem::Duplicate { first_line: 3 })
    );
}

#[test]
fn a_deleted_or_moved_genesis_is_pinpointed() {
    let f = Fixture::new();
    let mut lines = two_chain_log(&f);
    lines.remove(6); // B's genesis
    let (line, problem) = broken_at(&lines, &f.options());
    assert_eq!(line, 8);
    assert_eq!(
        problem,
        Problem::UnknownChain {
            genesis_later_at: None
        }
    );

    let mut lines = two_chain_log(&f);
    let genesis = lines.remove(6);
    lines.push(genesis);
    let (line, problem) = broken_at(&lines, &f.options());
    assert_eq!(line, 8);
    assert_eq!(
        problem,
        Problem::UnknownChain {
            genesis_later_at: Some(13)
        }
    );
}

#[test]
fn deleting_entries_a_later_genesis_links_to_is_detected() {
    let f = Fixture::new();
    let lines = two_chain_log(&f);
    // B's genesis links to A's seq 5 (line 6). Cutting A's lines 2 to 6 (its seq 1..5) out:
    // A then jumps from 0 to 6 (Missing), but even cutting A down to its genesis alone and
    // keeping B shows that B's genesis links to an entry that is not there.
    let kept: Vec<String> = lines[..1].iter().chain(&lines[6..7]).cloned().collect();
    let (line, problem) = broken_at(&kept, &f.options());
    assert_eq!(line, 2);
    assert!(matches!(problem, Problem::BadGenesis(m) if m.contains("does not come earlier")));
}

#[test]
fn genesis_documents_must_verify_and_bind_the_chain() {
    let f = Fixture::new();
    let lines = two_chain_log(&f);
    // Another trust anchor (the AWS root by default).
    let (line, problem) = broken_at(&lines, &VerifyOptions::default());
    assert_eq!(line, 1);
    assert!(
        matches!(problem, Problem::Attestation(ref m) if m.contains("root")),
        "{problem:?}"
    );
    // Another image.
    let mut options = f.options();
    options.attestation = options.attestation.expect_pcr(0, vec![0x22; 48]);
    assert!(matches!(
        broken_at(&lines, &options),
        (1, Problem::Attestation(_))
    ));
    // A document that binds another key: a chain cannot borrow another enclave's attestation.
    let a = Chain::new().unwrap();
    let other = Chain::new().unwrap();
    let document = f
        .nsm
        .attestation(None, Some(&other.id().user_data()), None)
        .unwrap();
    let genesis = a
        .start(
            Genesis {
                attestation: document,
                dev: true,
                enclave_version: "test".into(),
            },
            B256::ZERO,
            0,
        )
        .unwrap();
    let lines = vec![
        genesis.to_line(),
        a.record(decision(1), 1).unwrap().to_line(),
    ];
    assert!(matches!(
        broken_at(&lines, &f.options()),
        (1, Problem::Attestation(m)) if m.contains("user data") || m.contains("user_data")
    ));
}

#[test]
fn declared_gaps_fail_unless_accepted() {
    let f = Fixture::new();
    let a = Chain::new().unwrap();
    let mut lines = vec![f.start(&a, B256::ZERO).to_line()];
    lines.push(a.record(decision(1), 1).unwrap().to_line());
    let _lost = a.record(decision(2), 2).unwrap();
    let _lost = a.record(decision(3), 3).unwrap();
    lines.push(
        LogLine::Gap(Gap {
            chain: a.id(),
            from: 2,
            to: 3,
            reason: "the enclave's replies were lost".into(),
            time_ms: 4,
        })
        .to_line(),
    );
    lines.push(a.record(decision(4), 4).unwrap().to_line());
    let (line, problem) = broken_at(&lines, &f.options());
    assert_eq!(line, 3);
    assert!(matches!(
        problem,
        Problem::DeclaredGap { from: 2, to: 3, .. }
    ));
    let mut options = f.options();
    options.allow_declared_gaps = true;
    let summary = verify(&lines, &options).unwrap();
    assert_eq!(summary.declared_gaps.len(), 1);
    assert_eq!(summary.chains[0].last_seq, 4);
}

#[test]
fn garbage_lines_are_reported_not_a_panic() {
    let f = Fixture::new();
    for (i, junk) in ["", "{", "null", "{\"entry\":1}", &"x".repeat(70_000)]
        .iter()
        .enumerate()
    {
        let mut lines = two_chain_log(&f);
        lines.insert(4, (*junk).to_owned());
        let (line, problem) = broken_at(&lines, &f.options());
        assert_eq!(line, 5, "junk {i}");
        assert!(
            matches!(problem, Problem::Malformed(_)),
            "junk {i}: {problem:?}"
        );
    }
}

#[test]
fn cutting_the_end_is_not_visible_without_an_anchor() {
    // The documented limit: a log cut after any entry is still a consistent log. The summary's
    // last hash is what an operator anchors elsewhere to notice.
    let f = Fixture::new();
    let lines = two_chain_log(&f);
    let full = verify(&lines, &f.options()).unwrap();
    let cut = verify(&lines[..10], &f.options()).unwrap();
    assert_ne!(full.last_hash, cut.last_hash);
}
