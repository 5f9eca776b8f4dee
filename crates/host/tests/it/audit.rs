//! The audit log end to end: the real `nitro-wallet dev` signs a mixed workload (allowed and
//! policy-refused signatures, a failed request, key management), the real `nitro-wallet audit
//! verify` accepts the log it wrote, and pinpoints copies with one entry modified, deleted,
//! swapped with the next or carrying a flipped signature byte. The log holds no secret.

use crate::support::{nitro_wallet_bin, post, wait_until, DevServer};
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::Output,
    time::Duration,
};

/// anvil's first account: a key whose bytes the log must never contain.
const KNOWN_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

fn audit_verify(dev_dir: &Path, log: &Path, extra: &[&str]) -> Output {
    let pcr0 = hex::encode(nitro_wallet_attestation::pcr0_of_file(&nitro_wallet_bin()).unwrap());
    std::process::Command::new(nitro_wallet_bin())
        .args(["audit", "verify"])
        .arg(log)
        .arg("--root")
        .arg(dev_dir.join("attestation").join("dev-ca-root.pem"))
        .args(["--expect-pcr0", &pcr0])
        .args(extra)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Writes `lines` to a file beside the log and verifies it; returns (success, stderr).
fn verify_copy(dev_dir: &Path, name: &str, lines: &[String]) -> (bool, String) {
    let path = dev_dir.join(name);
    std::fs::write(
        &path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let out = audit_verify(dev_dir, &path, &[]);
    (out.status.success(), text(&out.stderr))
}

fn tx(chain_id: u64, nonce: u64, value: u64) -> Value {
    json!({
        "chainId": format!("0x{chain_id:x}"), "nonce": format!("0x{nonce:x}"), "gas": "0x5208",
        "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
        "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "value": format!("0x{value:x}"),
    })
}

fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn entry_of(line: &str) -> Value {
    serde_json::from_str::<Value>(line).unwrap()["entry"].clone()
}

#[tokio::test]
async fn audit_verify_accepts_the_real_log_and_pinpoints_tampering() {
    let dev = DevServer::start();
    let client = dev.client();
    let log = dev.data_dir.join("audit.jsonl");

    // Key management: a generated key with a policy, an imported key.
    let policy = json!({"chain_ids": [1], "max_value_wei": "1000"});
    let (status, key) = post(&client, &dev, "/v1/keys", json!({"policy": policy})).await;
    assert_eq!(status, 201, "{key}");
    let address = key["address"].as_str().unwrap().to_owned();
    let (status, imported) = post(
        &client,
        &dev,
        "/v1/keys/import",
        json!({"private_key": KNOWN_KEY}),
    )
    .await;
    assert_eq!(status, 201, "{imported}");
    let sign = format!("/v1/keys/{address}/sign/transaction");

    // Allowed, refused by two different rules, malformed, allowed message, refused raw hash.
    let (status, allowed) = post(&client, &dev, &sign, tx(1, 0, 1000)).await;
    assert_eq!(status, 200, "{allowed}");
    let (status, over) = post(&client, &dev, &sign, tx(1, 1, 1001)).await;
    assert_eq!(
        (status, over["error"]["field"].as_str()),
        (403, Some("max_value_wei"))
    );
    let (status, other_chain) = post(&client, &dev, &sign, tx(5, 1, 1)).await;
    assert_eq!(
        (status, other_chain["error"]["field"].as_str()),
        (403, Some("chain_ids"))
    );
    let (status, _) = post(&client, &dev, &sign, json!({"chainId": "0x1"})).await;
    assert_eq!(status, 422);
    let (status, message) = post(
        &client,
        &dev,
        &format!("/v1/keys/{address}/sign/message"),
        json!({"message": "a private note"}),
    )
    .await;
    assert_eq!(status, 200, "{message}");
    let (status, _) = post(
        &client,
        &dev,
        &format!("/v1/keys/{address}/sign/hash"),
        json!({"hash": format!("0x{}", "ab".repeat(32))}),
    )
    .await;
    assert_eq!(status, 403);

    // Every decision is on disk before its answer was released: no waiting needed.
    let lines = log_lines(&log);
    assert_eq!(
        lines.len(),
        9,
        "genesis + 8 decisions:\n{}",
        lines.join("\n")
    );
    let entries: Vec<Value> = lines.iter().map(|l| entry_of(l)).collect();
    assert!(entries[0]["event"]["genesis"].is_object());
    let decisions: Vec<&Value> = entries[1..]
        .iter()
        .map(|e| &e["event"]["decision"])
        .collect();
    let summary: Vec<(&str, &str, Option<&str>)> = decisions
        .iter()
        .map(|d| {
            (
                d["op"].as_str().unwrap(),
                d["result"].as_str().unwrap(),
                d["rule"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("generate_key", "ok", None),
            ("import_key", "ok", None),
            ("sign_transaction", "ok", None),
            ("sign_transaction", "denied", Some("max_value_wei")),
            ("sign_transaction", "denied", Some("chain_ids")),
            ("sign_transaction", "failed", None),
            ("sign_message", "ok", None),
            ("sign_hash", "denied", Some("raw_hash")),
        ]
    );
    assert!(
        decisions.iter().all(|d| d["caller"] == "dev"),
        "{decisions:?}"
    );
    assert_eq!(decisions[2]["output"], allowed["transaction_hash"]);
    assert_eq!(decisions[2]["key"], address.as_str());
    assert_eq!(decisions[2]["intent"]["transaction"]["value"], "1000");
    assert_eq!(decisions[6]["output"], message["hash"]);

    // Nothing secret: not the API token, not the imported key, not the key records' ciphertext,
    // not the message.
    let raw = std::fs::read_to_string(&log).unwrap();
    assert!(!raw.contains(&dev.token));
    assert!(!raw.to_lowercase().contains(KNOWN_KEY));
    assert!(!raw.contains("a private note"));
    for record in std::fs::read_dir(dev.data_dir.join("keys")).unwrap() {
        let record: Value =
            serde_json::from_slice(&std::fs::read(record.unwrap().path()).unwrap()).unwrap();
        let ciphertext = record["ciphertext"].as_str().unwrap();
        assert!(!raw.contains(ciphertext));
    }

    // The intact log verifies.
    let out = audit_verify(&dev.data_dir, &log, &[]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("VERIFIED: 9 entries in 1 chain "),
        "{stdout}"
    );
    let out = audit_verify(&dev.data_dir, &log, &["--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(report["chains"][0]["dev"], true);

    // The right trust anchor matters: the AWS root refuses dev mode's genesis.
    let out = std::process::Command::new(nitro_wallet_bin())
        .args(["audit", "verify"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("line 1"),
        "{}",
        text(&out.stderr)
    );

    // One entry modified: the refusal of line 5 turned into an approval.
    let mut modified = lines.clone();
    modified[4] = modified[4].replacen("\"result\":\"denied\"", "\"result\":\"ok\"", 1);
    assert_ne!(modified[4], lines[4]);
    let (ok, err) = verify_copy(&dev.data_dir, "modified.jsonl", &modified);
    assert!(
        !ok && err.contains("line 5") && err.contains("MODIFIED"),
        "{err}"
    );

    // One entry deleted: the allowed transaction of line 4.
    let mut deleted = lines.clone();
    deleted.remove(3);
    let (ok, err) = verify_copy(&dev.data_dir, "deleted.jsonl", &deleted);
    assert!(
        !ok && err.contains("line 4") && err.contains("DELETED"),
        "{err}"
    );

    // Two entries swapped: lines 6 and 7.
    let mut swapped = lines.clone();
    swapped.swap(5, 6);
    let (ok, err) = verify_copy(&dev.data_dir, "swapped.jsonl", &swapped);
    assert!(
        !ok && err.contains("line 6") && err.contains("REORDERED"),
        "{err}"
    );

    // One signature byte flipped, on line 8.
    let mut forged = lines.clone();
    let mut line: Value = serde_json::from_str(&forged[7]).unwrap();
    let sig = line["sig"].as_str().unwrap().to_owned();
    let flipped = if sig.ends_with('0') { '1' } else { '0' };
    line["sig"] = Value::from(format!("{}{flipped}", &sig[..sig.len() - 1]));
    // Re-serialize around the verbatim body so that only the signature differs.
    forged[7] = forged[7].replace(&sig, line["sig"].as_str().unwrap());
    let (ok, err) = verify_copy(&dev.data_dir, "forged.jsonl", &forged);
    assert!(
        !ok && err.contains("line 8") && err.contains("FORGED"),
        "{err}"
    );

    // The genesis deleted: the first decision has no attested chain.
    let (ok, err) = verify_copy(&dev.data_dir, "headless.jsonl", &lines[1..]);
    assert!(
        !ok && err.contains("line 1") && err.contains("genesis"),
        "{err}"
    );
}

fn pid_in(dev: &DevServer, file: &str) -> Option<u32> {
    std::fs::read_to_string(dev.data_dir.join(file))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Two enclaves under concurrent signing, one killed and restarted by the supervisor, and the
/// host restarted on the same log: one chain per enclave boot, in one log that verifies, each
/// new chain linked to the log before it.
#[tokio::test]
async fn chains_of_several_enclaves_and_restarts_share_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let dev = DevServer::start_with(dir, data_dir.clone(), "warn", &["--enclaves", "2"]);
    let client = dev.client();
    let (status, key) = post(&client, &dev, "/v1/keys", json!({})).await;
    assert_eq!(status, 201, "{key}");
    let sign: String = format!(
        "/v1/keys/{}/sign/transaction",
        key["address"].as_str().unwrap()
    );

    let burst = |from: u64| {
        let (client, dev, sign) = (&client, &dev, &sign);
        futures::future::join_all(
            (from..from + 24)
                .map(move |n| async move { post(client, dev, sign, tx(1, n, 1)).await.0 }),
        )
    };
    let statuses = burst(0).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    // One enclave killed; the supervisor starts another (a new chain).
    let killed = pid_in(&dev, "enclave-1.pid").expect("enclave-1.pid");
    std::process::Command::new("kill")
        .args(["-9", &killed.to_string()])
        .status()
        .unwrap();
    wait_until(Duration::from_secs(30), "enclave-1 restarted", || {
        pid_in(&dev, "enclave-1.pid").is_some_and(|p| p != killed)
    });
    // Keep signing until the restarted enclave has taken some of the load.
    let mut rounds = 0;
    loop {
        let statuses = burst(100 + rounds * 100).await;
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 503),
            "{statuses:?}"
        );
        rounds += 1;
        let chains = log_lines(&data_dir.join("audit.jsonl"))
            .iter()
            .filter(|l| l.contains("\"event\":{\"genesis\""))
            .count();
        if chains >= 3 || rounds == 20 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Dev mode restarts on the same data: new enclaves (new chains) and a host that reads back
    // where the log stands, so the new chains link to its last entry.
    let (dir, data_dir) = dev.stop_keeping_state();
    let dev = DevServer::start_with(dir, data_dir.clone(), "warn", &["--enclaves", "2"]);
    let client = dev.client();
    let sign: String = format!(
        "/v1/keys/{}/sign/transaction",
        key["address"].as_str().unwrap()
    );
    let (status, body) = post(&client, &dev, &sign, tx(1, 999, 1)).await;
    assert_eq!(status, 200, "{body}");
    let (_dir, data_dir) = dev.stop_keeping_state();

    let log: PathBuf = data_dir.join("audit.jsonl");
    // An entry lost with the killed enclave's last replies may have left a declared gap.
    let out = audit_verify(&data_dir, &log, &["--allow-declared-gaps", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let chains = report["chains"].as_array().unwrap().len();
    assert!(
        chains >= 3,
        "two enclaves and a restart make at least three chains: {report}"
    );
    let lines = log_lines(&log);
    let geneses: Vec<Value> = lines
        .iter()
        .map(|l| entry_of(l))
        .filter(|e| e["event"]["genesis"].is_object())
        .collect();
    let zero = format!("0x{}", "0".repeat(64));
    assert_eq!(geneses[0]["prev"], zero.as_str());
    assert!(
        geneses[1..].iter().all(|g| g["prev"] != zero.as_str()),
        "every later chain links into the log: {geneses:?}"
    );
}
