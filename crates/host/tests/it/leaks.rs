//! Nothing secret leaves the service: every flow runs with one known private key and known AWS
//! credentials against the real `serve` (trace logging) and the real enclave (trace logging),
//! then the key, in every encoding a careless line could print, and the secret parts of the
//! credentials are searched for in both logs, the audit log, every answer (bodies and headers)
//! and the metrics.

use crate::{
    credentials::{System, ACCESS_KEY_ID, SECRET_ACCESS_KEY, SESSION_TOKEN},
    support::{MAIL, TOKEN},
};
use base64::Engine as _;
use serde_json::json;

/// The key (the web3.js documentation's example key; any key would do).
const KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
const TO: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// Everything the service said, in the order it said it.
#[derive(Default)]
struct Transcript(Vec<String>);

impl Transcript {
    /// Sends a request with the test token (or `token`), records the status, headers and body,
    /// checks the status and returns the body.
    async fn call(
        &mut self,
        sys: &System,
        method: &str,
        path: &str,
        body: Option<String>,
        expect: u16,
    ) -> String {
        self.call_as(sys, TOKEN, method, path, body, expect).await
    }

    async fn call_as(
        &mut self,
        sys: &System,
        token: &str,
        method: &str,
        path: &str,
        body: Option<String>,
        expect: u16,
    ) -> String {
        let mut request = sys
            .client
            .request(method.parse().unwrap(), format!("{}{path}", sys.url))
            .bearer_auth(token);
        if let Some(b) = body {
            request = request.header("content-type", "application/json").body(b);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = format!("{:?}", response.headers());
        let text = response.text().await.unwrap();
        assert_eq!(status, expect, "{method} {path}: {text}");
        self.0
            .push(format!("{method} {path} {status} {headers}\n{text}"));
        text
    }

    async fn rpc(&mut self, sys: &System, method: &str, params: serde_json::Value) -> String {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        self.call(sys, "POST", "/rpc", Some(body.to_string()), 200)
            .await
    }
}

/// The forms the key could take in a log line or an answer.
fn key_needles() -> Vec<String> {
    let bytes = hex::decode(KEY).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    let decimal = alloy_primitives::U256::from_be_slice(&bytes).to_string();
    // `{:?}` of the bytes, and of them without spaces (serde's array form).
    let debug_prefix = format!("{:?}", &bytes[..8]);
    let debug_prefix = debug_prefix.trim_end_matches(']').to_owned();
    let json_prefix = debug_prefix.replace(", ", ",");
    vec![
        KEY.to_owned(),
        KEY.to_ascii_uppercase(),
        // Any 16 consecutive hex digits of it (a truncated or wrapped print).
        KEY[..16].to_owned(),
        KEY[24..40].to_owned(),
        KEY[48..].to_owned(),
        KEY[48..].to_ascii_uppercase(),
        b64.clone(),
        b64[..24].to_owned(),
        b64url[..24].to_owned(),
        decimal.clone(),
        decimal[..24].to_owned(),
        debug_prefix,
        json_prefix,
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn no_key_or_credential_in_any_log_answer_or_metric() {
    let mut sys = System::start_with("trace", "[audit]\npath = \"{dir}/audit/log.jsonl\"", |_| {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.to_owned()),
            ("AWS_SESSION_TOKEN", SESSION_TOKEN.to_owned()),
        ]
    })
    .await;
    let mut t = Transcript::default();

    // Import, and the import errors that hold (almost) the key.
    let key = t
        .call(
            &sys,
            "POST",
            "/v1/keys/import",
            Some(json!({"private_key": format!("0x{KEY}"), "label": "leak test"}).to_string()),
            201,
        )
        .await;
    let address = serde_json::from_str::<serde_json::Value>(&key).unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    t.call(
        &sys,
        "POST",
        "/v1/keys/import",
        Some(json!({"private_key": KEY}).to_string()),
        409,
    )
    .await;
    let mangled = format!("{}zz", &KEY[..62]);
    let status = sys
        .client
        .post(format!("{}/v1/keys/import", sys.url))
        .bearer_auth(TOKEN)
        .json(&json!({"private_key": mangled}))
        .send()
        .await
        .unwrap();
    assert!(status.status().is_client_error());
    t.0.push(status.text().await.unwrap());
    t.call(
        &sys,
        "POST",
        "/v1/keys/import",
        Some(format!(r#"{{"private_key": "{KEY}", "label": }}"#)),
        400,
    )
    .await;

    // Reading keys.
    t.call(&sys, "GET", "/v1/keys", None, 200).await;
    t.call(&sys, "GET", &format!("/v1/keys/{address}"), None, 200)
        .await;
    t.call(&sys, "GET", "/v1/attestation?nonce=0x00ff", None, 200)
        .await;

    // Every transaction type.
    let sign_tx = format!("/v1/keys/{address}/sign/transaction");
    let base = r#""chainId":"0x7a69","nonce":"0x0","gas":"0x5208","value":"0x1""#;
    let authorization = t
        .call(
            &sys,
            "POST",
            &format!("/v1/keys/{address}/sign/authorization"),
            Some(json!({"chainId": "0x7a69", "address": TO, "nonce": "0x1"}).to_string()),
            200,
        )
        .await;
    for fields in [
        r#""gasPrice":"0x3b9aca00""#.to_owned(),
        r#""gasPrice":"0x3b9aca00","accessList":[]"#.to_owned(),
        r#""maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x1""#.to_owned(),
        r#""maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x1","maxFeePerBlobGas":"0x1",
           "blobVersionedHashes":["0x01aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"]"#
            .to_owned(),
        format!(
            r#""maxFeePerGas":"0x77359400","maxPriorityFeePerGas":"0x1","authorizationList":[{authorization}]"#
        ),
    ] {
        let body = format!(r#"{{{base},"to":"{TO}",{fields}}}"#);
        t.call(&sys, "POST", &sign_tx, Some(body), 200).await;
    }
    // Messages, typed data, raw digests (refused, then allowed by a policy).
    let path = |what: &str| format!("/v1/keys/{address}/sign/{what}");
    for message in [json!("hello"), json!({"raw": "0x00ff"})] {
        t.call(
            &sys,
            "POST",
            &path("message"),
            Some(json!({ "message": message }).to_string()),
            200,
        )
        .await;
    }
    t.call(
        &sys,
        "POST",
        &path("typed-data"),
        Some(MAIL.to_owned()),
        200,
    )
    .await;
    let digest = format!("0x{}", "ab".repeat(32));
    let hash_body = json!({ "hash": digest }).to_string();
    t.call(&sys, "POST", &path("hash"), Some(hash_body.clone()), 403)
        .await;
    t.call(
        &sys,
        "PUT",
        &format!("/v1/keys/{address}/policy"),
        Some(json!({"raw_hash": true, "chain_ids": [31337]}).to_string()),
        200,
    )
    .await;
    t.call(&sys, "POST", &path("hash"), Some(hash_body), 200)
        .await;
    // A policy refusal, and request errors.
    let other_chain =
        format!(r#"{{"chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","to":"{TO}"}}"#);
    t.call(&sys, "POST", &sign_tx, Some(other_chain), 403).await;
    t.call(
        &sys,
        "POST",
        &sign_tx,
        Some(r#"{"chainId":"0x7a69"}"#.to_owned()),
        422,
    )
    .await;
    t.call(&sys, "POST", &sign_tx, Some("{".to_owned()), 400)
        .await;
    t.call(
        &sys,
        "POST",
        &format!("/v1/keys/{TO}/sign/message"),
        Some(r#"{"message": "x"}"#.to_owned()),
        404,
    )
    .await;
    t.call_as(&sys, "wrong-token", "GET", "/v1/keys", None, 401)
        .await;

    // Web3Signer and the AWS sample's route.
    t.call(&sys, "GET", "/api/v1/eth1/publicKeys", None, 200)
        .await;
    t.call(
        &sys,
        "POST",
        &format!("/api/v1/eth1/sign/{address}"),
        Some(json!({"data": "0xdeadbeef"}).to_string()),
        200,
    )
    .await;
    t.call(
        &sys,
        "POST",
        "/",
        Some(json!({"transaction_payload": {}, "secret_id": "nope"}).to_string()),
        404,
    )
    .await;

    // JSON-RPC.
    t.rpc(&sys, "eth_accounts", json!([])).await;
    let tx = json!({"from": address, "chainId": "0x7a69", "nonce": "0x1", "gas": "0x5208",
        "gasPrice": "0x1", "to": TO});
    t.rpc(&sys, "eth_signTransaction", json!([tx])).await;
    t.rpc(&sys, "personal_sign", json!(["0x68656c6c6f", address]))
        .await;
    t.rpc(&sys, "eth_sign", json!([address, "0x68656c6c6f"]))
        .await;
    let mail: serde_json::Value = serde_json::from_str(MAIL).unwrap();
    t.rpc(&sys, "eth_signTypedData_v4", json!([address, mail]))
        .await;
    t.rpc(&sys, "eth_sendTransaction", json!([tx])).await;
    t.rpc(&sys, "eth_signTransaction", json!([{"from": address}]))
        .await;

    // Health and metrics.
    t.call(&sys, "GET", "/healthz", None, 200).await;
    t.call(&sys, "GET", "/readyz", None, 200).await;
    let metrics = t.call(&sys, "GET", "/metrics", None, 200).await;
    assert!(
        metrics.contains("# TYPE"),
        "the metrics are Prometheus text: {metrics}"
    );

    sys.stop();
    let serve_log = sys.log();
    let enclave_log = std::fs::read_to_string(sys.dir.path().join("enclave.log")).unwrap();
    let audit_log = std::fs::read_to_string(sys.dir.path().join("audit/log.jsonl")).unwrap();
    assert!(audit_log.lines().count() > 10, "every decision is audited");
    // The search means something only if the logs are full.
    for (name, log) in [("serve", &serve_log), ("enclave", &enclave_log)] {
        assert!(log.contains("TRACE"), "{name} logs at trace level");
        assert!(log.lines().count() > 50, "{name} log is too short to tell");
    }
    assert!(serve_log.contains(ACCESS_KEY_ID), "credentials were in use");
    let mut places: Vec<(String, &str)> = vec![
        ("the serve log".into(), &serve_log),
        ("the enclave log".into(), &enclave_log),
        ("the audit log".into(), &audit_log),
    ];
    for (i, said) in t.0.iter().enumerate() {
        places.push((format!("answer #{i}"), said));
    }
    let mut needles = key_needles();
    needles.extend([SECRET_ACCESS_KEY.to_owned(), SESSION_TOKEN.to_owned()]);
    for (place, text) in &places {
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{place} holds a secret ({} characters of one)",
                needle.len()
            );
        }
    }
}
