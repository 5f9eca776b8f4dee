//! EIP-4844 (with a blob) and EIP-7702 transactions signed through the REST API, mined by
//! anvil (`--hardfork prague`): the service, not only the signing crate, produces what a node
//! accepts.

use crate::support::{Anvil, InProcess};
use http::StatusCode;

/// Anvil's prefunded dev accounts 1 (the sender) and 2 (the authority of the delegation).
const SENDER_KEY: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const SENDER: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const AUTHORITY_KEY: &str = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const AUTHORITY: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
const DELEGATE: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

async fn import(sys: &InProcess, key: &str) {
    let (status, body) = sys
        .authed(
            "POST",
            "/v1/keys/import",
            &format!(r#"{{"private_key": "{key}"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn mined(anvil: &Anvil, raw: &str) -> serde_json::Value {
    let hash = anvil
        .rpc("eth_sendRawTransaction", serde_json::json!([raw]))
        .await;
    // Automining takes a moment for a blob transaction.
    for _ in 0..100 {
        let receipt = anvil
            .rpc("eth_getTransactionReceipt", serde_json::json!([hash]))
            .await;
        if !receipt.is_null() {
            assert_eq!(receipt["status"], "0x1", "{receipt}");
            return receipt;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("transaction {hash} not mined within 10 s")
}

#[tokio::test]
async fn blob_and_set_code_transactions_from_the_api_are_mined() {
    let anvil = Anvil::start();
    // One blob is 262 KB of hex: this server takes 1 MiB bodies.
    let sys = InProcess::with_body_limit(1 << 20).await;
    import(&sys, SENDER_KEY).await;
    import(&sys, AUTHORITY_KEY).await;
    let nonce = |n: u64| format!("0x{n:x}");

    // EIP-4844 with one blob: the enclave computes commitment, proof and versioned hash.
    let blob = format!("0x{}", "00".repeat(131_072));
    let blob_tx = format!(
        r#"{{"chainId": "0x7a69", "nonce": "{}", "gas": "21000", "to": "{AUTHORITY}",
            "maxFeePerGas": "20000000000", "maxPriorityFeePerGas": "1000000000",
            "maxFeePerBlobGas": "1000000000", "blobs": ["{blob}"]}}"#,
        nonce(0)
    );
    let (status, signed) = sys
        .authed(
            "POST",
            &format!("/v1/keys/{SENDER}/sign/transaction"),
            &blob_tx,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let receipt = mined(&anvil, signed["raw_transaction"].as_str().unwrap()).await;
    assert_eq!(receipt["type"], "0x3");
    assert_eq!(receipt["from"].as_str().unwrap(), SENDER.to_lowercase());

    // EIP-7702: the authority's authorization signed by the API, carried by the sender.
    let (status, authorization) = sys
        .authed(
            "POST",
            &format!("/v1/keys/{AUTHORITY}/sign/authorization"),
            &format!(r#"{{"chainId": "0x7a69", "address": "{DELEGATE}", "nonce": "0x0"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{authorization}");
    let set_code = format!(
        r#"{{"chainId": "0x7a69", "nonce": "{}", "gas": "100000", "to": "{AUTHORITY}",
            "maxFeePerGas": "20000000000", "maxPriorityFeePerGas": "1000000000",
            "authorizationList": [{authorization}]}}"#,
        nonce(1)
    );
    let (status, signed) = sys
        .authed(
            "POST",
            &format!("/v1/keys/{SENDER}/sign/transaction"),
            &set_code,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let receipt = mined(&anvil, signed["raw_transaction"].as_str().unwrap()).await;
    assert_eq!(receipt["type"], "0x4");
    let code = anvil
        .rpc("eth_getCode", serde_json::json!([AUTHORITY, "latest"]))
        .await;
    assert_eq!(
        code.as_str().unwrap(),
        format!("0xef0100{}", &DELEGATE[2..].to_lowercase()),
        "the delegation designator"
    );
}
