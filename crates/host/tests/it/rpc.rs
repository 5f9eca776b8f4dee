//! JSON-RPC at `POST /rpc`: the protocol in process, then real clients, unmodified, against
//! the real `nitro-wallet dev` with anvil upstream: Foundry's `cast`, viem (node), eth-account
//! (python); concurrent sends; batches; a node whose pending nonce lags.

use crate::support::{
    find_tool, post, Anvil, DevServer, InProcess, ANVIL_ADDR_0, ANVIL_KEY_0, MAIL, TOKEN,
};
use alloy_primitives::{eip191_hash_message, Address, Signature};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};
use tower::ServiceExt;

const RECIPIENT: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const UNKNOWN: &str = "0x1111111111111111111111111111111111111111";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// POSTs `body` to `path` of the in-process API; `None` body for 204.
async fn oneshot(
    sys: &InProcess,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> (StatusCode, Option<Value>, http::HeaderMap) {
    let mut req = Request::builder().method("POST").uri(path);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let response = sys
        .router
        .clone()
        .oneshot(req.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = (!bytes.is_empty()).then(|| {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("non-JSON body: {bytes:?}"))
    });
    (status, json, headers)
}

/// One JSON-RPC call in process with the test token; the whole response object.
async fn call(sys: &InProcess, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let (status, reply, _) = oneshot(sys, "/rpc", Some(TOKEN), &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{reply:?}");
    let reply = reply.unwrap();
    assert_eq!(reply["jsonrpc"], "2.0");
    assert_eq!(reply["id"], 1);
    reply
}

fn error_code(reply: &Value) -> i64 {
    reply["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

fn recover(signature: &Value, message: &[u8]) -> Address {
    let bytes = hex::decode(signature.as_str().unwrap().trim_start_matches("0x")).unwrap();
    assert_eq!(bytes.len(), 65);
    assert!(bytes[64] == 27 || bytes[64] == 28, "v is 27 or 28");
    Signature::from_raw(&bytes)
        .unwrap()
        .recover_address_from_prehash(&eip191_hash_message(message))
        .unwrap()
}

/// `nitro-wallet dev --upstream-rpc <anvil>` at log `level`, with a fresh key funded with
/// 100 ether.
struct Stack {
    dev: DevServer,
    anvil: Anvil,
    client: reqwest::Client,
    address: String,
}

async fn stack(level: &str) -> Stack {
    let anvil = Anvil::start();
    let url = anvil.url.clone();
    stack_with_upstream(level, &url, anvil).await
}

async fn stack_with_upstream(level: &str, upstream: &str, anvil: Anvil) -> Stack {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dev = DevServer::start_with(dir, data, level, &["--upstream-rpc", upstream]);
    let client = dev.client();
    let (status, key) = post(&client, &dev, "/v1/keys", json!({})).await;
    assert_eq!(status, 201, "{key}");
    let address = key["address"].as_str().unwrap().to_owned();
    anvil
        .rpc("anvil_setBalance", json!([address, "0x56bc75e2d63100000"]))
        .await;
    Stack {
        dev,
        anvil,
        client,
        address,
    }
}

impl Stack {
    /// POSTs a JSON-RPC body to `/rpc` with the bearer token.
    async fn rpc(&self, body: &Value) -> (u16, Option<Value>) {
        let response = self
            .client
            .post(format!("{}/rpc", self.dev.url))
            .bearer_auth(&self.dev.token)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let bytes = response.bytes().await.unwrap();
        (
            status,
            (!bytes.is_empty()).then(|| serde_json::from_slice(&bytes).unwrap()),
        )
    }

    /// One call; its `result`, failing on an error.
    async fn result(&self, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (status, reply) = self.rpc(&body).await;
        let reply = reply.unwrap();
        assert_eq!(status, 200, "{reply}");
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    async fn receipt(&self, hash: &str) -> Value {
        for _ in 0..200 {
            let r = self
                .anvil
                .rpc("eth_getTransactionReceipt", json!([hash]))
                .await;
            if !r.is_null() {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no receipt for {hash}");
    }
}

/// `.tools/node_modules`, where `scripts/test.sh` installs viem.
fn tools_node_modules() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/node_modules")
}

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/clients")
}

/// node with viem resolvable, or a failure that says how to install them.
fn node_with_viem() -> Command {
    let modules = tools_node_modules();
    let probe = Command::new("node")
        .args(["-e", "require('viem')"])
        .env("NODE_PATH", &modules)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(probe, Ok(s) if s.success()),
        "node with the npm package viem is needed: install Node.js, then run ./scripts/test.sh \
         (it runs `npm install --prefix .tools viem@2.57.20`)"
    );
    let mut node = Command::new("node");
    node.env("NODE_PATH", modules);
    node
}

/// python3 with eth-account, or a failure that says how to install it.
fn python_with_eth_account() -> Command {
    let probe = Command::new("python3")
        .args(["-c", "import eth_account"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        matches!(probe, Ok(s) if s.success()),
        "python3 with eth-account is needed: run ./scripts/test.sh, or \
         `python3 -m pip install \"eth-account>=0.13,<0.14\"`"
    );
    Command::new("python3")
}

/// Runs `command`, feeding it `stdin`; its stdout as JSON, failing with its stderr.
fn run_json(mut command: Command, stdin: &str) -> Value {
    let out = crate::support::run_with_stdin(&mut command, stdin);
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}",
            String::from_utf8_lossy(&out.stdout).trim_end()
        )
    })
}

// ---------------------------------------------------------------------------------------------
// In process, without an upstream node
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn json_rpc_framing_and_authentication() {
    let sys = InProcess::start().await;
    let ok = r#"{"jsonrpc":"2.0","id":1,"method":"eth_accounts"}"#;

    // 401 with a JSON-RPC error: no token, a wrong one, a bad header, a wrong path token; a
    // wrong header spoils a right path token.
    for (path, bearer) in [
        ("/rpc".to_owned(), None),
        ("/rpc".to_owned(), Some("wrong")),
        ("/rpc/wrong".to_owned(), None),
        (format!("/rpc/{TOKEN}"), Some("wrong")),
        (format!("/rpc/{TOKEN}x"), None),
    ] {
        let (status, reply, headers) = oneshot(&sys, &path, bearer, ok).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {bearer:?}");
        let reply = reply.unwrap();
        assert_eq!(error_code(&reply), 4100);
        assert_eq!(reply["id"], Value::Null);
        assert_eq!(headers["www-authenticate"], "Bearer");
        assert!(!reply.to_string().contains(TOKEN));
    }
    let (status, reply, _) = oneshot(&sys, &format!("/rpc/{TOKEN}"), None, ok).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply.unwrap()["result"], json!([]));
    let (status, _, _) = oneshot(&sys, &format!("/rpc/{TOKEN}"), Some(TOKEN), ok).await;
    assert_eq!(status, StatusCode::OK);

    // Parse error, empty batch, oversized batch: one error with id null.
    for (body, code) in [
        ("{", -32700),
        ("", -32700),
        ("[]", -32600),
        (&format!("[{}]", vec![ok; 101].join(",")), -32600),
    ] {
        let (status, reply, _) = oneshot(&sys, "/rpc", Some(TOKEN), body).await;
        assert_eq!(status, StatusCode::OK);
        let reply = reply.unwrap();
        assert_eq!(error_code(&reply), code, "{body:.40}");
        assert_eq!(reply["id"], Value::Null);
    }
    // 100 is fine.
    let (_, reply, _) = oneshot(
        &sys,
        "/rpc",
        Some(TOKEN),
        &format!("[{}]", vec![ok; 100].join(",")),
    )
    .await;
    assert_eq!(reply.unwrap().as_array().unwrap().len(), 100);

    // Ids are echoed as sent; notifications get nothing, and a batch of only notifications
    // gets no body at all.
    for id in [r#""abc""#, "null", "123456789012345678901234567890", "-1.5"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"eth_accounts"}}"#);
        let response = sys
            .router
            .clone()
            .oneshot(
                Request::post("/rpc")
                    .header("authorization", format!("Bearer {TOKEN}"))
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await
            .unwrap();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        assert!(text.contains(&format!(r#""id":{id}"#)), "{text}");
    }
    let note = r#"{"jsonrpc":"2.0","method":"eth_accounts"}"#;
    let (status, reply, _) = oneshot(&sys, "/rpc", Some(TOKEN), note).await;
    assert_eq!((status, reply), (StatusCode::NO_CONTENT, None));
    let (status, reply, _) = oneshot(&sys, "/rpc", Some(TOKEN), &format!("[{note},{note}]")).await;
    assert_eq!((status, reply), (StatusCode::NO_CONTENT, None));

    // A batch: answers for the requests and for invalid entries, none for notifications.
    let batch = format!(
        r#"[{ok},{note},1,{{"jsonrpc":"2.0","id":"m","method":"eth_getBalance","params":[]}},
            {{"jsonrpc":"1.0","id":7,"method":"eth_accounts"}}]"#
    );
    let (status, reply, _) = oneshot(&sys, "/rpc", Some(TOKEN), &batch).await;
    assert_eq!(status, StatusCode::OK);
    let replies = reply.unwrap();
    let replies = replies.as_array().unwrap();
    assert_eq!(replies.len(), 4, "{replies:?}");
    let by_id = |id: Value| replies.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(by_id(json!(1))["result"], json!([]));
    assert_eq!(error_code(by_id(json!("m"))), -32601);
    assert_eq!(by_id(json!("m"))["error"]["data"]["code"], "no_upstream");
    assert_eq!(error_code(by_id(json!(7))), -32600);
    assert_eq!(error_code(by_id(Value::Null)), -32600);

    // Other methods need the upstream node; other wallets' signing methods are refused.
    for method in ["eth_chainId", "eth_blockNumber", "eth_sendTransaction"] {
        let reply = call(&sys, method, json!([])).await;
        assert_eq!(error_code(&reply), -32601, "{method}");
        assert!(
            reply["error"]["message"]
                .as_str()
                .unwrap()
                .contains("upstream"),
            "{reply}"
        );
    }
    for method in [
        "personal_unlockAccount",
        "eth_signTypedData_v3",
        "wallet_sendTransaction",
    ] {
        let reply = call(&sys, method, json!([])).await;
        assert_eq!(
            reply["error"]["data"]["code"], "unsupported_method",
            "{reply}"
        );
    }
    let response = sys
        .router
        .clone()
        .oneshot(Request::get("/rpc").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn signing_methods_without_an_upstream_node() {
    let sys = InProcess::start().await;
    let (status, body) = sys
        .authed(
            "POST",
            "/v1/keys/import",
            &format!(r#"{{"private_key":"{ANVIL_KEY_0}"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let me: Address = ANVIL_ADDR_0.parse().unwrap();

    for method in ["eth_accounts", "eth_requestAccounts"] {
        assert_eq!(
            call(&sys, method, json!([])).await["result"],
            json!([ANVIL_ADDR_0])
        );
    }

    // personal_sign [message, address]: text, and 0x hex as bytes; any address case.
    let text = call(&sys, "personal_sign", json!(["hello", ANVIL_ADDR_0])).await;
    assert_eq!(recover(&text["result"], b"hello"), me);
    let hexed = call(
        &sys,
        "personal_sign",
        json!(["0x68656c6c6f", ANVIL_ADDR_0.to_lowercase()]),
    )
    .await;
    assert_eq!(hexed["result"], text["result"]);
    // eth_sign [address, data] signs the same EIP-191 message.
    let signed = call(&sys, "eth_sign", json!([ANVIL_ADDR_0, "0x68656c6c6f"])).await;
    assert_eq!(signed["result"], text["result"]);
    let reply = call(&sys, "eth_sign", json!([ANVIL_ADDR_0, "hello"])).await;
    assert_eq!(error_code(&reply), -32602);

    // eth_signTypedData_v4 [address, typedData]: a JSON string or an object, the same.
    let as_string = call(&sys, "eth_signTypedData_v4", json!([ANVIL_ADDR_0, MAIL])).await;
    let mail: Value = serde_json::from_str(MAIL).unwrap();
    let as_object = call(&sys, "eth_signTypedData_v4", json!([ANVIL_ADDR_0, mail])).await;
    assert_eq!(as_string["result"], as_object["result"]);
    assert_eq!(as_string["result"].as_str().unwrap().len(), 2 + 130);
    let reply = call(&sys, "eth_signTypedData_v4", json!([ANVIL_ADDR_0, "{"])).await;
    assert_eq!(error_code(&reply), -32602);

    // eth_signTransaction: a complete transaction → the raw transaction, as the REST API signs.
    let tx = json!({
        "from": ANVIL_ADDR_0, "to": RECIPIENT, "value": "0x1", "chainId": "0x7a69",
        "nonce": "0x0", "gas": "0x5208", "maxFeePerGas": "0x77359400",
        "maxPriorityFeePerGas": "0x3b9aca00",
    });
    let raw = call(&sys, "eth_signTransaction", json!([tx])).await;
    let (_, rest) = sys
        .authed(
            "POST",
            &format!("/v1/keys/{ANVIL_ADDR_0}/sign/transaction"),
            &tx.to_string(),
        )
        .await;
    assert_eq!(raw["result"], rest["raw_transaction"]);
    assert!(raw["result"].as_str().unwrap().starts_with("0x02"));
    // Nothing is filled: the signer's message, with the field.
    let mut incomplete = tx.clone();
    incomplete.as_object_mut().unwrap().remove("gas");
    let reply = call(&sys, "eth_signTransaction", json!([incomplete])).await;
    assert_eq!(error_code(&reply), -32602);
    assert_eq!(
        reply["error"]["data"],
        json!({"code": "invalid_transaction", "field": "gas"})
    );
    let mut anonymous = tx.clone();
    anonymous.as_object_mut().unwrap().remove("from");
    let reply = call(&sys, "eth_signTransaction", json!([anonymous])).await;
    assert_eq!(error_code(&reply), -32602);

    // Keys that are not ours: EIP-1193's 4100.
    let mut theirs = tx.clone();
    theirs["from"] = json!(UNKNOWN);
    for (method, params) in [
        ("eth_signTransaction", json!([theirs])),
        ("personal_sign", json!(["hi", UNKNOWN])),
        ("eth_sign", json!([UNKNOWN, "0x00"])),
        ("eth_signTypedData_v4", json!([UNKNOWN, MAIL])),
    ] {
        let reply = call(&sys, method, params).await;
        assert_eq!(error_code(&reply), 4100, "{method}: {reply}");
        assert_eq!(reply["error"]["data"]["code"], "unknown_account");
    }
    // Wrong shapes: -32602.
    for (method, params) in [
        ("personal_sign", json!([ANVIL_ADDR_0, "hello"])),
        ("personal_sign", json!(["hello"])),
        (
            "personal_sign",
            json!({"message": "hello", "address": ANVIL_ADDR_0}),
        ),
        ("eth_sign", json!(["0x1234", "0x00"])),
        ("eth_signTransaction", json!([])),
        ("eth_signTransaction", json!(["0x00"])),
    ] {
        let reply = call(&sys, method, params.clone()).await;
        assert_eq!(error_code(&reply), -32602, "{method} {params}: {reply}");
    }
}

// ---------------------------------------------------------------------------------------------
// Real clients against `nitro-wallet dev` with anvil upstream
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cast_sends_through_rpc_with_the_token_in_the_path() {
    let s = stack("trace").await;
    let token = s.dev.token.clone();
    let url = format!("{}/rpc/{token}", s.dev.url);
    // cast as a user runs it: `--unlocked` sends with eth_sendTransaction; it trusts the dev
    // certificate through SSL_CERT_FILE (no --insecure).
    let out = Command::new(find_tool("cast"))
        .args([
            "send",
            "--unlocked",
            "--from",
            &s.address,
            "--rpc-url",
            &url,
        ])
        .args([RECIPIENT, "--value", "1", "--json"])
        .env("SSL_CERT_FILE", s.dev.ca_cert())
        .env_remove("ETH_RPC_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cast send failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let receipt: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    assert_eq!(
        receipt["from"].as_str().unwrap(),
        s.address.to_lowercase(),
        "{receipt}"
    );
    // anvil agrees.
    let hash = receipt["transactionHash"].as_str().unwrap();
    assert_eq!(s.receipt(hash).await["status"], "0x1");

    // A wrong token in the path is 401, for cast too.
    let bad = reqwest_status(&s, &format!("{}/rpc/{token}0", s.dev.url), None).await;
    assert_eq!(bad, 401);
    assert_eq!(
        reqwest_status(&s, &format!("{}/rpc", s.dev.url), None).await,
        401
    );
    assert_eq!(
        reqwest_status(&s, &format!("{}/rpc", s.dev.url), Some(&token)).await,
        200
    );
    let out = Command::new(find_tool("cast"))
        .args(["chain-id", "--rpc-url", &format!("{}/rpc/nope", s.dev.url)])
        .env("SSL_CERT_FILE", s.dev.ca_cert())
        .output()
        .unwrap();
    assert!(!out.status.success());

    // The token never reaches the log, even at trace level (where every call is logged).
    let log = std::fs::read_to_string(s.dev.log_path()).unwrap();
    assert!(log.contains("JSON-RPC call"), "the log holds the calls");
    assert!(log.contains("eth_sendTransaction"));
    assert!(
        !log.contains(&token),
        "the API token appears in the dev log"
    );
}

async fn reqwest_status(s: &Stack, url: &str, bearer: Option<&str>) -> u16 {
    let mut request = s
        .client
        .post(url)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}));
    if let Some(t) = bearer {
        request = request.bearer_auth(t);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viem_and_eth_account_work_unmodified() {
    let mut node = node_with_viem();
    let mut python = python_with_eth_account();
    let s = stack("info").await;

    // viem: a wallet client with a JSON-RPC account, the token in the Authorization header.
    node.arg(clients_dir().join("viem_client.cjs"))
        .env("NODE_EXTRA_CA_CERTS", s.dev.ca_cert())
        .env("RPC_URL", format!("{}/rpc", s.dev.url))
        .env("RPC_TOKEN", &s.dev.token)
        .env("ADDRESS", &s.address)
        .env("TO", RECIPIENT);
    let viem = run_json(node, "");
    assert_eq!(viem["accounts"], json!([s.address]), "{viem}");
    assert_eq!(viem["chainId"], 31337);
    assert_eq!(viem["status"], "success", "{viem}");
    assert_eq!(viem["type"], "eip1559", "{viem}");
    assert_eq!(viem["rawStatus"], "success", "{viem}");
    for check in ["messageValid", "rawValid", "typedValid"] {
        assert_eq!(viem[check], true, "viem's {check}: {viem}");
    }
    // anvil saw both transactions from our key, the first with EIP-1559 fees filled here.
    for hash in [&viem["hash"], &viem["rawHash"]] {
        let r = s.receipt(hash.as_str().unwrap()).await;
        assert_eq!(r["status"], "0x1");
        assert_eq!(r["type"], "0x2");
        assert_eq!(r["from"].as_str().unwrap(), s.address.to_lowercase());
    }

    // eth-account recovers our address from personal_sign and eth_signTypedData_v4.
    let message = "hello from viem";
    let message_signature = s.result("personal_sign", json!([message, s.address])).await;
    // Deterministic signatures: the same as viem got.
    assert_eq!(message_signature, viem["messageSignature"]);
    let mut mail: Value = serde_json::from_str(MAIL).unwrap();
    mail["domain"]["chainId"] = json!(31337);
    let typed_signature = s
        .result("eth_signTypedData_v4", json!([s.address, mail.to_string()]))
        .await;
    assert_eq!(typed_signature, viem["typedSignature"]);
    python.arg(clients_dir().join("eth_account_recover.py"));
    let recovered = run_json(
        python,
        &json!({
            "message": message,
            "message_signature": message_signature,
            "typed_data": mail,
            "typed_signature": typed_signature,
        })
        .to_string(),
    );
    assert_eq!(recovered["message_signer"], s.address.as_str());
    assert_eq!(recovered["typed_signer"], s.address.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_and_batches() {
    let s = stack("warn").await;

    // 20 sends at once from one key, without nonces: distinct, consecutive, all mined.
    let sends = (0..20).map(|i| {
        let body = json!({
            "jsonrpc": "2.0", "id": i, "method": "eth_sendTransaction",
            "params": [{"from": s.address, "to": RECIPIENT, "value": format!("{:#x}", i + 1)}],
        });
        let s = &s;
        async move { s.rpc(&body).await }
    });
    let replies = futures::future::join_all(sends).await;
    let mut nonces = Vec::new();
    for (status, reply) in replies {
        let reply = reply.unwrap();
        assert_eq!(status, 200, "{reply}");
        let hash = reply["result"]
            .as_str()
            .unwrap_or_else(|| panic!("{reply}"))
            .to_owned();
        assert_eq!(s.receipt(&hash).await["status"], "0x1");
        let tx = s.anvil.rpc("eth_getTransactionByHash", json!([hash])).await;
        assert_eq!(tx["type"], "0x2");
        nonces.push(crate::support::hex_u128(&tx["nonce"]));
    }
    nonces.sort_unstable();
    assert_eq!(nonces, (0..20).collect::<Vec<u128>>());

    // A batch mixing calls served here, proxied calls, a notification and an invalid entry;
    // a legacy send (gasPrice given) keeps its type.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_accounts"},
        {"jsonrpc": "2.0", "method": "eth_blockNumber"},
        {"jsonrpc": "2.0", "id": "balance", "method": "eth_getBalance", "params": [RECIPIENT, "latest"]},
        {"jsonrpc": "2.0", "id": 5, "method": "no_such_method"},
        {"jsonrpc": "2.0", "id": 6, "method": "personal_unlockAccount", "params": [s.address, "", 0]},
        {"id": 7, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": 8, "method": "eth_sendTransaction",
         "params": [{"from": s.address, "to": RECIPIENT, "gasPrice": "0x77359400"}]},
    ]);
    let (status, reply) = s.rpc(&batch).await;
    assert_eq!(status, 200);
    let reply = reply.unwrap();
    let replies = reply.as_array().unwrap();
    assert_eq!(
        replies.len(),
        8,
        "one per request, none for the notification: {reply}"
    );
    let by_id = |id: Value| {
        replies
            .iter()
            .find(|r| r["id"] == id)
            .unwrap_or_else(|| panic!("no reply {id}: {reply}"))
    };
    assert_eq!(by_id(json!(1))["result"], "0x7a69");
    // Proxied; the send in the same batch may mine a block before or after it.
    let block = crate::support::hex_u128(&s.anvil.rpc("eth_blockNumber", json!([])).await);
    let proxied = crate::support::hex_u128(&by_id(json!(2))["result"]);
    assert!(
        proxied == block || proxied + 1 == block,
        "{proxied} vs {block}"
    );
    assert_eq!(by_id(json!(3))["result"], json!([s.address]));
    let balance = s
        .anvil
        .rpc("eth_getBalance", json!([RECIPIENT, "latest"]))
        .await;
    assert_eq!(by_id(json!("balance"))["result"], balance);
    // anvil's own answer to an unknown method, passed on as is.
    assert_eq!(error_code(by_id(json!(5))), -32601);
    assert_ne!(
        by_id(json!(5))["error"].get("data"),
        Some(&json!({"code": "no_upstream"}))
    );
    assert_eq!(
        by_id(json!(6))["error"]["data"]["code"],
        "unsupported_method"
    );
    assert_eq!(error_code(by_id(json!(7))), -32600);
    let hash = by_id(json!(8))["result"].as_str().unwrap().to_owned();
    assert_eq!(s.receipt(&hash).await["status"], "0x1");
    let tx = s.anvil.rpc("eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(
        (tx["type"].as_str(), tx["nonce"].as_str()),
        (Some("0x0"), Some("0x14"))
    );
    assert_eq!(tx["gasPrice"], "0x77359400");

    // The node's refusals come back as the node gave them (here: more value than the balance).
    let (_, reply) = s
        .rpc(&json!({"jsonrpc": "2.0", "id": 9, "method": "eth_sendTransaction",
                     "params": [{"from": s.address, "to": RECIPIENT, "value": "0xffffffffffffffffffffffff"}]}))
        .await;
    let reply = reply.unwrap();
    assert!(reply["error"]["message"].as_str().is_some(), "{reply}");
    assert!(
        reply["error"]
            .get("data")
            .is_none_or(|d| d.get("code").is_none()),
        "{reply}"
    );
    // A chain id that is not the node's is refused before signing.
    let (_, reply) = s
        .rpc(
            &json!({"jsonrpc": "2.0", "id": 10, "method": "eth_sendTransaction",
                     "params": [{"from": s.address, "to": RECIPIENT, "chainId": "0x1"}]}),
        )
        .await;
    assert_eq!(error_code(&reply.unwrap()), -32602);
}

/// An upstream node in front of anvil whose `eth_getTransactionCount` answers 0 when told to
/// (a node whose pending state lags), counting the calls it forwards.
struct LaggingNode {
    url: String,
    lie_next: Arc<AtomicBool>,
    counts: Arc<AtomicUsize>,
    sends: Arc<AtomicUsize>,
}

async fn lagging_node(anvil_url: String) -> LaggingNode {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let lie_next = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(AtomicUsize::new(0));
    let sends = Arc::new(AtomicUsize::new(0));
    let (lie, c, n) = (lie_next.clone(), counts.clone(), sends.clone());
    let http = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (lie, c, n, http, anvil) = (
                lie.clone(),
                c.clone(),
                n.clone(),
                http.clone(),
                anvil_url.clone(),
            );
            async move {
                let request: Value = serde_json::from_slice(&body).unwrap();
                match request["method"].as_str() {
                    Some("eth_getTransactionCount") => {
                        c.fetch_add(1, Ordering::SeqCst);
                        if lie.swap(false, Ordering::SeqCst) {
                            let answer =
                                json!({"jsonrpc": "2.0", "id": request["id"], "result": "0x0"});
                            return answer.to_string();
                        }
                    }
                    Some("eth_sendRawTransaction") => {
                        n.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
                let answer = http
                    .post(anvil)
                    .body(body)
                    .header("content-type", "application/json");
                answer.send().await.unwrap().text().await.unwrap()
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    LaggingNode {
        url,
        lie_next,
        counts,
        sends,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_too_low_is_read_again_and_retried_once() {
    let anvil = Anvil::start();
    let node = lagging_node(anvil.url.clone()).await;
    let s = stack_with_upstream("warn", &node.url, anvil).await;

    // Two transactions of the key reach the chain without going through /rpc (signed with the
    // REST API, sent straight to anvil): the service has no nonce of its own for the key.
    let base_fee = crate::support::hex_u128(
        &s.anvil
            .rpc("eth_getBlockByNumber", json!(["latest", false]))
            .await["baseFeePerGas"],
    );
    for nonce in 0..2 {
        let tx = json!({
            "chainId": "0x7a69", "nonce": nonce, "gas": "0x5208", "to": RECIPIENT, "value": "0x1",
            "maxFeePerGas": format!("{:#x}", base_fee * 2 + 1_000_000_000),
            "maxPriorityFeePerGas": "0x3b9aca00",
        });
        let (status, signed) = post(
            &s.client,
            &s.dev,
            &format!("/v1/keys/{}/sign/transaction", s.address),
            tx,
        )
        .await;
        assert_eq!(status, 200, "{signed}");
        let hash = s
            .anvil
            .rpc("eth_sendRawTransaction", json!([signed["raw_transaction"]]))
            .await;
        assert_eq!(s.receipt(hash.as_str().unwrap()).await["status"], "0x1");
    }

    // The node now claims a pending nonce of 0, once: the send is refused "nonce too low",
    // the nonce read again (2) and the send retried, once.
    node.lie_next.store(true, Ordering::SeqCst);
    let hash = s
        .result(
            "eth_sendTransaction",
            json!([{"from": s.address, "to": RECIPIENT, "value": "0x2"}]),
        )
        .await;
    assert_eq!(s.receipt(hash.as_str().unwrap()).await["status"], "0x1");
    let tx = s.anvil.rpc("eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(tx["nonce"], "0x2");
    assert_eq!(
        node.counts.load(Ordering::SeqCst),
        2,
        "the nonce was read twice"
    );
    assert_eq!(
        node.sends.load(Ordering::SeqCst),
        2,
        "sent, refused, sent again"
    );

    // The next send uses the service's own count (3) even if the node lags again.
    node.lie_next.store(true, Ordering::SeqCst);
    let hash = s
        .result(
            "eth_sendTransaction",
            json!([{"from": s.address, "to": RECIPIENT, "value": "0x3"}]),
        )
        .await;
    let tx = s.anvil.rpc("eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(tx["nonce"], "0x3");
    assert_eq!(node.sends.load(Ordering::SeqCst), 3, "no refusal this time");
}
