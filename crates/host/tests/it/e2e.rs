//! End to end: the real `nitro-wallet dev` (host, enclave process, KMS emulator) signs
//! transfers of every supported type that a real node, anvil, accepts and mines.

use crate::support::{hex_u128, post, Anvil, DevServer};
use serde_json::{json, Value};
use std::time::Duration;

const RECIPIENT: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

async fn receipt(anvil: &Anvil, hash: &str) -> Value {
    for _ in 0..100 {
        let r = anvil.rpc("eth_getTransactionReceipt", json!([hash])).await;
        if !r.is_null() {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no receipt for {hash}");
}

/// Kills the enclave with SIGKILL, then signs `tx` until the restarted enclave answers;
/// while it is down, only 503 is acceptable. Returns the signed transaction.
async fn kill_enclave_and_sign(
    client: &reqwest::Client,
    dev: &DevServer,
    path: &str,
    tx: &Value,
) -> Value {
    let old_pid = dev.enclave_pid();
    std::process::Command::new("kill")
        .args(["-9", &old_pid.to_string()])
        .status()
        .unwrap();
    // The dev supervisor restarts the enclave; the host reconnects and re-presents the record.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let signed = loop {
        let (status, body) = post(client, dev, path, tx.clone()).await;
        if status == 200 {
            break body;
        }
        assert_eq!(
            status, 503,
            "only 'unavailable' is acceptable while restarting: {body}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "enclave not back in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_ne!(dev.enclave_pid(), old_pid, "a new enclave process serves");
    signed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_transfers_of_every_type_are_mined_by_anvil() {
    let mut dev = DevServer::start();
    let anvil = Anvil::start();
    let client = dev.client();

    let (status, key) = post(&client, &dev, "/v1/keys", json!({ "label": "e2e" })).await;
    assert_eq!(status, 201, "{key}");
    let address = key["address"].as_str().unwrap().to_owned();

    // Fund the fresh key: 10 ether.
    anvil
        .rpc("anvil_setBalance", json!([address, "0x8ac7230489e80000"]))
        .await;
    let chain_id = anvil.rpc("eth_chainId", json!([])).await;
    let gas_price = hex_u128(&anvil.rpc("eth_gasPrice", json!([])).await);
    let base_fee = hex_u128(
        &anvil
            .rpc("eth_getBlockByNumber", json!(["latest", false]))
            .await["baseFeePerGas"],
    );
    let balance_before = hex_u128(
        &anvil
            .rpc("eth_getBalance", json!([RECIPIENT, "latest"]))
            .await,
    );

    let transactions = [
        // Legacy with EIP-155, decimal quantities.
        json!({ "chainId": chain_id, "nonce": "0", "gas": "21000", "gasPrice": (gas_price * 2).to_string(),
                "to": RECIPIENT, "value": "1000000000000000000" }),
        // EIP-2930 with an access list.
        json!({ "type": "0x1", "chainId": chain_id, "nonce": "0x1", "gas": "0x7530",
                "gasPrice": format!("{:#x}", gas_price * 2), "to": RECIPIENT, "value": "0x1",
                "accessList": [{ "address": RECIPIENT, "storageKeys": [format!("0x{}", "00".repeat(32))] }] }),
        // EIP-1559.
        json!({ "type": "0x2", "chainId": chain_id, "nonce": "0x2", "gas": "0x5208",
                "maxFeePerGas": format!("{:#x}", base_fee * 2 + 1_000_000_000),
                "maxPriorityFeePerGas": "0x3b9aca00", "to": RECIPIENT, "value": "0x2" }),
    ];
    for (tx, expected_type) in transactions.into_iter().zip(["0x0", "0x1", "0x2"]) {
        let (status, signed) = post(
            &client,
            &dev,
            &format!("/v1/keys/{address}/sign/transaction"),
            tx.clone(),
        )
        .await;
        assert_eq!(status, 200, "{tx} → {signed}");
        assert_eq!(signed["from"], address.as_str());
        let raw = signed["raw_transaction"].as_str().unwrap();
        let hash = anvil.rpc("eth_sendRawTransaction", json!([raw])).await;
        assert_eq!(
            hash, signed["transaction_hash"],
            "anvil computes the same hash"
        );
        let r = receipt(&anvil, hash.as_str().unwrap()).await;
        assert_eq!(r["status"], "0x1", "{r}");
        assert_eq!(r["type"], expected_type, "{r}");
        assert_eq!(
            r["from"].as_str().unwrap().to_lowercase(),
            address.to_lowercase(),
            "the node recovers our key's address"
        );
    }
    let balance_after = hex_u128(
        &anvil
            .rpc("eth_getBalance", json!([RECIPIENT, "latest"]))
            .await,
    );
    assert_eq!(balance_after - balance_before, 1_000_000_000_000_000_003);
    assert_eq!(dev.stop().code(), Some(0), "dev exits cleanly on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_enclave_is_restarted_and_serves_the_same_key() {
    let dev = DevServer::start();
    let client = dev.client();
    let (_, key) = post(&client, &dev, "/v1/keys", json!({})).await;
    let path = format!(
        "/v1/keys/{}/sign/transaction",
        key["address"].as_str().unwrap()
    );
    let tx = json!({ "chainId": "0x1", "nonce": "0x7", "gas": "0x5208", "gasPrice": "0x3b9aca00",
                     "to": RECIPIENT, "value": "0x1" });
    let (status, before) = post(&client, &dev, &path, tx.clone()).await;
    assert_eq!(status, 200);

    let after = kill_enclave_and_sign(&client, &dev, &path, &tx).await;
    assert_eq!(before, after, "same key, same deterministic signature");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_token_or_credential_reaches_the_logs_even_at_trace_level() {
    const KEY: &str = "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    let mut dev = DevServer::start_logging("trace");
    let client = dev.client();
    let (status, key) = post(
        &client,
        &dev,
        "/v1/keys/import",
        json!({ "private_key": KEY }),
    )
    .await;
    assert_eq!(status, 201, "{key}");
    let path = format!(
        "/v1/keys/{}/sign/transaction",
        key["address"].as_str().unwrap()
    );
    let tx = json!({ "chainId": "0x1", "nonce": "0x0", "gas": "0x5208", "gasPrice": "0x1", "to": RECIPIENT });
    // A restart empties the enclave's cache, so the next signature goes through KMS Decrypt.
    kill_enclave_and_sign(&client, &dev, &path, &tx).await;
    // A bad import must not echo the key either.
    let (status, _) = post(
        &client,
        &dev,
        "/v1/keys/import",
        json!({ "private_key": &KEY[2..] }),
    )
    .await;
    assert_eq!(status, 422);
    let token = dev.token.clone();
    let log_path = dev.log_path();
    assert_eq!(dev.stop().code(), Some(0));

    let logs = std::fs::read_to_string(log_path).unwrap();
    assert!(
        logs.lines().count() > 50,
        "trace logging produced almost nothing:\n{logs}"
    );
    let key_bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&KEY[2 * i..2 * i + 2], 16).unwrap())
        .collect();
    let b64 = base64_encode(&key_bytes);
    for (what, needle) in [
        ("private key (hex)", KEY.to_owned()),
        ("private key (truncated hex)", KEY[2..].to_owned()),
        ("private key (base64)", b64),
        ("API token", token),
        ("dev secret access key", "insecure-dev-secret".to_owned()),
    ] {
        assert!(
            !logs.to_lowercase().contains(&needle.to_lowercase()),
            "{what} found in the logs"
        );
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
