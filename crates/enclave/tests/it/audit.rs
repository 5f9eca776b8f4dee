//! The audit chain of the real enclave binary: every decision, allowed, refused or failed,
//! wrapped or sent bare, comes out numbered, linked, signed and attested, and a host that
//! leaves one out is caught by the verifier.

use super::{sign_request, Conn, Enclave, KMS_KEY};
use alloy_primitives::B256;
use nitro_wallet_attestation::{pcr0_of_file, DevCa, SignedDocument};
use nitro_wallet_audit::{
    verify_log, ChainId, Entry, Event, Intent, Operation, Problem, SignedEntry, Verdict,
    VerifyOptions,
};
use nitro_wallet_protocol::{
    message::{GenerateKey, SignTransaction, WrappedKey},
    AttestationRequest, AuditEntries, Audited, ErrorCode, Reply, Request, Response,
};
use serde_json::value::RawValue;

/// Sends `request` wrapped; returns the outcome and the entries.
async fn audited(
    c: &mut Conn,
    caller: &str,
    log_head: Option<B256>,
    request: Request,
) -> (Reply, Vec<SignedEntry>) {
    match c
        .call(Request::Audited(Audited {
            caller: Some(caller.into()),
            log_head,
            request: Box::new(request),
        }))
        .await
    {
        Reply::Ok(Response::Audited(a)) => (*a.reply, a.entries),
        other => panic!("not an audited reply: {other:?}"),
    }
}

fn transfer(key: &WrappedKey, value: &str) -> Request {
    let tx = format!(
        r#"{{"chainId":"0x7a69","nonce":"0x0","gas":"0x5208","maxFeePerGas":"0x77359400",
            "maxPriorityFeePerGas":"0x3b9aca00","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"{value}"}}"#
    );
    Request::SignTransaction(SignTransaction {
        key: key.clone(),
        transaction: RawValue::from_string(tx).unwrap(),
        window: None,
    })
}

fn body(e: &SignedEntry) -> Entry {
    e.body().unwrap()
}

fn options(enclave: &Enclave) -> VerifyOptions {
    let root = DevCa::load_root(&enclave.dir.path().join("attestation")).unwrap();
    let pcr0 = pcr0_of_file(std::path::Path::new(env!(
        "CARGO_BIN_EXE_nitro-wallet-enclave"
    )))
    .unwrap();
    VerifyOptions {
        attestation: nitro_wallet_attestation::VerifyOptions::with_root(root)
            .expect_pcr(0, pcr0.to_vec()),
        allow_declared_gaps: false,
    }
}

fn verify(
    entries: &[SignedEntry],
    options: &VerifyOptions,
) -> Result<nitro_wallet_audit::Summary, Box<nitro_wallet_audit::Broken>> {
    let text: String = entries.iter().map(|e| e.to_line() + "\n").collect();
    verify_log(|| Ok(std::io::Cursor::new(text.clone())), options)
}

#[tokio::test]
async fn every_decision_is_chained_signed_and_attested() {
    let enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let mut log: Vec<SignedEntry> = Vec::new();

    // The first audited request starts the chain: genesis first, linked to the host's head
    // (zero: its log is empty).
    let head = B256::ZERO;
    let (reply, entries) = audited(
        &mut c,
        "admin",
        Some(head),
        Request::GenerateKey(GenerateKey {
            kms_key_id: KMS_KEY.into(),
            policy: Some(r#"{"chain_ids": [31337], "max_value_wei": "1"}"#.into()),
        }),
    )
    .await;
    let Reply::Ok(Response::Key(key)) = reply else {
        panic!("generate failed: {reply:?}")
    };
    assert_eq!(entries.len(), 2);
    let genesis = body(&entries[0]);
    assert_eq!((genesis.seq, genesis.prev), (0, head));
    let Event::Genesis(g) = &genesis.event else {
        panic!("first entry is not a genesis")
    };
    assert!(g.dev);
    let chain = genesis.chain;
    let document = SignedDocument::parse(&g.attestation).unwrap();
    assert_eq!(document.document.user_data, Some(chain.user_data()));
    let created = body(&entries[1]);
    let Event::Decision(d) = &created.event else {
        panic!()
    };
    assert_eq!(d.op, Operation::GenerateKey);
    assert_eq!((d.key, d.result), (Some(key.address), Verdict::Ok));
    assert_eq!(d.caller.as_deref(), Some("admin"));
    assert!(
        d.policy.is_some(),
        "the new key's policy digest is recorded"
    );
    log.extend(entries);

    // Allowed: the transaction hash is recorded.
    let (reply, entries) = audited(&mut c, "ops", None, transfer(&key, "0x1")).await;
    let Reply::Ok(Response::SignedTransaction(signed)) = reply else {
        panic!("{reply:?}")
    };
    let Event::Decision(d) = body(&entries[0]).event else {
        panic!()
    };
    assert_eq!(d.result, Verdict::Ok);
    assert_eq!(d.output, Some(signed.transaction_hash));
    let Some(Intent::Transaction(t)) = &d.intent else {
        panic!("{d:?}")
    };
    assert_eq!((t.chain_id, t.value.as_str(), t.tx_type), (31337, "1", 2));
    log.extend(entries);

    // Refused by the policy: the rule is recorded, nothing signed.
    let (reply, entries) = audited(&mut c, "ops", None, transfer(&key, "0x2")).await;
    assert!(matches!(reply, Reply::Err(ref e) if e.code == ErrorCode::PolicyDenied));
    let Event::Decision(d) = body(&entries[0]).event else {
        panic!()
    };
    assert_eq!(d.result, Verdict::Denied);
    assert_eq!(d.rule.as_deref(), Some("max_value_wei"));
    assert_eq!(d.output, None);
    log.extend(entries);

    // Malformed: recorded as failed with its code.
    let mut bad = transfer(&key, "0x1");
    if let Request::SignTransaction(s) = &mut bad {
        s.transaction = RawValue::from_string(r#"{"chainId":"0x7a69"}"#.into()).unwrap();
    }
    let (_, entries) = audited(&mut c, "ops", None, bad).await;
    let Event::Decision(d) = body(&entries[0]).event else {
        panic!()
    };
    assert_eq!(d.result, Verdict::Failed);
    assert_eq!(d.code.as_deref(), Some("invalid_transaction"));
    assert_eq!(d.intent, None);
    log.extend(entries);

    // Sent bare, bypassing any host: signed, and still recorded (seq 5), though not returned.
    assert!(matches!(
        c.sign(&key, 1).await,
        Reply::Ok(Response::SignedTransaction(_))
    ));
    let (_, after) = audited(&mut c, "ops", None, transfer(&key, "0x1")).await;
    assert_eq!(body(&after[0]).seq, 6);

    // A host that logs what it was given, and not the bare signature: the verifier finds
    // the hole at once.
    let mut holed = log.clone();
    holed.extend(after.iter().cloned());
    let broken = verify(&holed, &options(&enclave)).unwrap_err();
    println!("{broken}");
    assert_eq!(broken.line, 6);
    assert!(matches!(
        broken.problem,
        Problem::Missing {
            expected: 5,
            found: 6,
            ..
        }
    ));

    // The enclave still has entry 5, for a host that lost it: fetched, the log is whole.
    let Reply::Ok(Response::AuditEntries(list)) = c
        .call(Request::AuditEntries(AuditEntries {
            chain,
            from: 5,
            to: 5,
        }))
        .await
    else {
        panic!("no entries")
    };
    let Event::Decision(d) = body(&list.entries[0]).event else {
        panic!()
    };
    assert_eq!((d.caller, d.result), (None, Verdict::Ok));
    log.extend(list.entries);
    log.extend(after);
    let summary = verify(&log, &options(&enclave)).unwrap();
    assert_eq!(summary.entries, 7);
    assert_eq!(summary.chains.len(), 1);
    assert_eq!(summary.chains[0].chain, chain);

    // Nothing secret in any entry: no ciphertext, no credentials.
    let text: String = log.iter().map(SignedEntry::to_line).collect();
    use base64::Engine as _;
    let ciphertext = base64::engine::general_purpose::STANDARD.encode(&key.ciphertext);
    assert!(!text.contains(&ciphertext));
    assert!(!text.contains("test-secret"));
}

#[tokio::test]
async fn chains_are_per_boot_and_attestations_name_the_chain() {
    let mut enclave = Enclave::start().await;
    let mut c = enclave.connect().await;
    let key = c.generate().await; // bare: starts the chain with a zero link
    let Reply::Ok(Response::Attestation(doc)) = c
        .call(Request::Attestation(AttestationRequest::default()))
        .await
    else {
        panic!("no attestation")
    };
    let user_data = SignedDocument::parse(&doc.document)
        .unwrap()
        .document
        .user_data
        .unwrap();
    let first = ChainId::from_user_data(&user_data).expect("the document names the audit key");
    let Reply::Ok(Response::AuditEntries(list)) = c
        .call(Request::AuditEntries(AuditEntries {
            chain: first,
            from: 0,
            to: 1,
        }))
        .await
    else {
        panic!("no entries")
    };
    assert_eq!(list.entries.len(), 2);
    assert!(body(&list.entries[0]).prev.is_zero());
    let tail = list.entries[1].hash;

    // Another enclave boot: another chain, which refuses to hand out the old one's entries.
    drop(c);
    enclave.restart().await;
    let mut c = enclave.connect().await;
    let refused = c
        .call(Request::AuditEntries(AuditEntries {
            chain: first,
            from: 0,
            to: 0,
        }))
        .await;
    assert!(matches!(refused, Reply::Err(ref e) if e.code == ErrorCode::InvalidRequest));
    let (_, entries) = audited(&mut c, "ops", Some(tail), sign_request(&key, 0)).await;
    let genesis = body(&entries[0]);
    assert_ne!(genesis.chain, first);
    assert_eq!(
        genesis.prev, tail,
        "the new chain links to the old one's last entry"
    );

    // Both chains in one log, as the host writes it.
    let mut log = list.entries;
    log.extend(entries);
    let summary = verify(&log, &options(&enclave)).unwrap();
    assert_eq!(summary.chains.len(), 2);

    // Requests that are not decisions cannot be wrapped.
    let nested = c
        .call(Request::Audited(Audited {
            caller: None,
            log_head: None,
            request: Box::new(Request::Ping),
        }))
        .await;
    assert!(matches!(nested, Reply::Err(ref e) if e.code == ErrorCode::InvalidRequest));
}
