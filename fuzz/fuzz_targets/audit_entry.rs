//! Fuzzes the audit log readers: `nitro-wallet audit verify` exists to read log files someone
//! may have tampered with, and the host reads its own log back at start-up.
//!
//! Setup (once): a genuine log (a dev CA, one chain: genesis and five decisions).
//! Per input: every line through `LogLine::parse`; the input as a whole log through
//! `verify_log` (AWS root: no genesis can verify); and, when the first byte is odd, the genuine
//! log with the rest of the input spliced in at an offset the next two bytes choose, through
//! `verify_log` with the dev CA, which reaches the hash, signature and sequence checks.
//!
//! Checks: no panic; a line that parses re-serializes to a line that parses the same (the
//! entry body kept byte for byte, so its hash is unchanged); a broken log is reported at a
//! line of the input; a spliced log that still verifies has no more entries than the genuine
//! one plus whole lines the splice could have repeated verbatim.

#![no_main]

use alloy_primitives::B256;
use libfuzzer_sys::fuzz_target;
use nitro_wallet_attestation::{DevCa, DevNsm, Nsm};
use nitro_wallet_audit::{
    verify_log, Chain, Decision, Genesis, LogLine, Operation, Verdict, VerifyOptions,
};
use std::sync::OnceLock;

struct Fixture {
    genuine: Vec<u8>,
    options: VerifyOptions,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let ca = DevCa::generate().expect("dev CA");
        let root = ca.root_der().to_vec();
        let nsm = DevNsm::new(ca, [0x11; 48]).expect("dev NSM");
        let chain = Chain::new().expect("audit key");
        let document = nsm
            .attestation(None, Some(&chain.id().user_data()), None)
            .expect("attestation");
        let mut lines = vec![chain
            .start(
                Genesis {
                    attestation: document,
                    dev: true,
                    enclave_version: "fuzz".into(),
                },
                B256::ZERO,
                1,
            )
            .expect("genesis")
            .to_line()];
        for n in 0..5u8 {
            let decision = Decision {
                caller: Some("fuzz".into()),
                op: Operation::SignHash,
                key: None,
                intent: None,
                policy: None,
                result: if n % 2 == 0 {
                    Verdict::Ok
                } else {
                    Verdict::Denied
                },
                code: None,
                rule: None,
                output: Some(B256::repeat_byte(n)),
            };
            lines.push(chain.record(decision, 2).expect("entry").to_line());
        }
        Fixture {
            genuine: lines
                .iter()
                .map(|l| format!("{l}\n"))
                .collect::<String>()
                .into_bytes(),
            options: VerifyOptions {
                attestation: nitro_wallet_attestation::VerifyOptions::with_root(root),
                allow_declared_gaps: false,
            },
        }
    })
}

fn line_count(bytes: &[u8]) -> usize {
    bytes.split(|b| *b == b'\n').count()
}

fn verify(bytes: &[u8], options: &VerifyOptions) -> Option<u64> {
    match verify_log(|| Ok(std::io::Cursor::new(bytes)), options) {
        Ok(summary) => Some(summary.entries),
        Err(broken) => {
            assert!(
                broken.line <= line_count(bytes),
                "{broken} beyond the input"
            );
            let _ = broken.to_string();
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines() {
            match LogLine::parse(line) {
                Ok(LogLine::Entry(e)) => {
                    let again = match LogLine::parse(&e.to_line()) {
                        Ok(LogLine::Entry(again)) => again,
                        other => panic!("a parsed entry does not parse back: {other:?}"),
                    };
                    assert_eq!(again.entry.get(), e.entry.get());
                    assert_eq!(again.computed_hash(), e.computed_hash());
                    assert_eq!((again.hash, again.sig), (e.hash, e.sig));
                    let _ = e.body();
                }
                Ok(LogLine::Gap(g)) => match LogLine::parse(&LogLine::Gap(g.clone()).to_line()) {
                    Ok(LogLine::Gap(again)) => assert_eq!(again, g),
                    other => panic!("a parsed gap does not parse back: {other:?}"),
                },
                Err(_) => {}
            }
        }
    }
    // No genesis verifies against the AWS root with a fuzzer's document.
    let _ = verify(data, &VerifyOptions::default());

    let fx = fixture();
    if let [selector, hi, lo, splice @ ..] = data {
        if selector & 1 == 1 {
            let at = usize::from(u16::from_be_bytes([*hi, *lo])) % (fx.genuine.len() + 1);
            let mut log = fx.genuine[..at].to_vec();
            log.extend_from_slice(splice);
            if selector & 2 == 2 {
                // Overwrite instead of insert.
                log.extend_from_slice(fx.genuine.get(at + splice.len()..).unwrap_or_default());
            } else {
                log.extend_from_slice(&fx.genuine[at..]);
            }
            if let Some(entries) = verify(&log, &fx.options) {
                // Only the genuine entries can verify: a splice that keeps the log valid adds
                // nothing signed (it may only cut the end off, or touch no entry).
                assert!(entries <= 6, "{entries} entries verified in a spliced log");
            }
        }
    }
});
