//! Caller authorization: token scopes (operations and keys) on every REST route and JSON-RPC
//! method, 401 vs 403, per-token rate limits, and tokens managed with `nitro-wallet tokens`
//! and revoked while `serve` runs.

use crate::support::{https_client, nitro_wallet_bin, spawn_serve, wait_until, InProcess, TOKEN};
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use nitro_wallet::{
    api::auth::Tokens,
    config::TokenConfig,
    tokens::{KeyScope, Operation},
};
use serde_json::{json, Value};
use std::{path::Path, process::Command, time::Duration};
use tower::ServiceExt;

const OTHER: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const KEY_A: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ADDR_A: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const KEY_B: &str = "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
const ADDR_B: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

fn tx(from: &str) -> String {
    format!(
        r#"{{"from":"{from}","chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","to":"{OTHER}"}}"#
    )
}

fn scoped(name: &str, secret: &str, keys: KeyScope, operations: &[Operation]) -> TokenConfig {
    TokenConfig {
        keys,
        operations: operations.to_vec(),
        ..TokenConfig::full_access(name, &Tokens::hash(secret))
    }
}

/// Sends a request with `token`; answers the status, the `Retry-After` header and the body.
async fn call(
    sys: &InProcess,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (StatusCode, Option<String>, Value) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = sys.router.clone().oneshot(req).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        !text.contains(token),
        "the token appears in the answer to {method} {path}: {text}"
    );
    let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, retry_after, json)
}

async fn rpc(sys: &InProcess, token: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
    let (status, _, reply) = call(sys, "POST", "/rpc", token, &body.to_string()).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply
}

fn assert_forbidden(status: StatusCode, body: &Value, scope: &str) {
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(scope), "{message} should name {scope}");
}

fn assert_rpc_forbidden(reply: &Value, scope: &str) {
    assert_eq!(reply["error"]["code"], 4100, "{reply}");
    assert_eq!(reply["error"]["data"]["code"], "forbidden", "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains(scope), "{message} should name {scope}");
}

async fn new_key(sys: &InProcess) -> String {
    let (status, key) = sys.authed("POST", "/v1/keys", "{}").await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    key["address"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_token_scoped_to_key_a_cannot_use_key_b() {
    let scope = KeyScope::parse(&[ADDR_A]).unwrap();
    let sys = InProcess::with_config(256 * 1024, move |config, _| {
        config.tokens.push(scoped(
            "scoped",
            "scoped-secret",
            scope,
            &[
                Operation::SignTransaction,
                Operation::SignMessage,
                Operation::KeysRead,
            ],
        ));
    })
    .await;
    // Known keys (anvil's accounts 0 and 2), imported with the full-access token.
    for key in [KEY_A, KEY_B] {
        let (status, body) = sys
            .authed(
                "POST",
                "/v1/keys/import",
                &json!({ "private_key": key }).to_string(),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (a, b) = (ADDR_A.to_owned(), ADDR_B.to_owned());
    let t = "scoped-secret";

    // The listing shows A only; A is usable, B is 403 naming the scope, and a key that does not
    // exist gets the very same answer (nothing tells which other keys exist).
    let (status, _, list) = call(&sys, "GET", "/v1/keys", t, "").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let listed: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["address"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [a.as_str()]);
    let (status, _, _) = call(&sys, "GET", &format!("/v1/keys/{a}"), t, "").await;
    assert_eq!(status, StatusCode::OK);
    let path = |k: &str, what: &str| format!("/v1/keys/{k}/sign/{what}");
    let (status, _, signed) = call(&sys, "POST", &path(&a, "transaction"), t, &tx(&a)).await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    let (status, _, body) = call(&sys, "POST", &path(&b, "transaction"), t, &tx(&b)).await;
    assert_forbidden(status, &body, "`keys` scope");
    let nobody = "0x00000000000000000000000000000000000000aa";
    let (status, _, nobody_body) =
        call(&sys, "POST", &path(nobody, "transaction"), t, &tx(nobody)).await;
    assert_forbidden(status, &nobody_body, "`keys` scope");
    assert_eq!(
        body["error"]["message"].as_str().unwrap().replace(&b, "X"),
        nobody_body["error"]["message"]
            .as_str()
            .unwrap()
            .replace(&alloy_checksum(nobody), "X"),
    );
    for (method, route, body) in [
        ("GET", format!("/v1/keys/{b}"), String::new()),
        (
            "POST",
            path(&b, "message"),
            r#"{"message":"hi"}"#.to_owned(),
        ),
        ("POST", path(&b, "typed-data"), "{}".to_owned()),
    ] {
        let (status, _, reply) = call(&sys, method, &route, t, &body).await;
        assert_forbidden(status, &reply, "`keys` scope");
    }
    let (status, _, body) =
        call(&sys, "POST", &path(&a, "message"), t, r#"{"message":"hi"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Web3Signer: only A's public key is listed.
    let (status, _, public) = call(&sys, "GET", "/api/v1/eth1/publicKeys", t, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(public.as_array().unwrap().len(), 1, "{public}");

    // JSON-RPC: the same scope.
    let accounts = rpc(&sys, t, "eth_accounts", json!([])).await;
    assert_eq!(accounts["result"], json!([a]), "{accounts}");
    let signed = rpc(
        &sys,
        t,
        "eth_signTransaction",
        json!([serde_json::from_str::<Value>(&tx(&a)).unwrap()]),
    )
    .await;
    assert!(
        signed["result"].as_str().unwrap().starts_with("0x"),
        "{signed}"
    );
    let refused = rpc(
        &sys,
        t,
        "eth_signTransaction",
        json!([serde_json::from_str::<Value>(&tx(&b)).unwrap()]),
    )
    .await;
    assert_rpc_forbidden(&refused, "`keys` scope");
    let refused = rpc(&sys, t, "personal_sign", json!(["0x68690a", b])).await;
    assert_rpc_forbidden(&refused, "`keys` scope");
    let refused = rpc(&sys, t, "eth_sign", json!([nobody, "0x6869"])).await;
    assert_rpc_forbidden(&refused, "`keys` scope");
    let signed = rpc(&sys, t, "personal_sign", json!(["0x68690a", a])).await;
    assert!(signed["result"].is_string(), "{signed}");

    // The full-access token still reaches both.
    let (status, _) = sys.authed("POST", &path(&b, "transaction"), &tx(&b)).await;
    assert_eq!(status, StatusCode::OK);
}

fn alloy_checksum(address: &str) -> String {
    address
        .parse::<alloy_primitives::Address>()
        .unwrap()
        .to_checksum(None)
}

#[tokio::test]
async fn a_read_only_token_lists_but_cannot_sign() {
    let sys = InProcess::with_config(256 * 1024, |config, _| {
        config.tokens.push(scoped(
            "reader",
            "reader-secret",
            KeyScope::Any,
            &[Operation::KeysRead],
        ));
        config.tokens.push(scoped(
            "creator",
            "creator-secret",
            KeyScope::Only(Default::default()),
            &[Operation::KeysCreate],
        ));
    })
    .await;
    let a = new_key(&sys).await;
    let t = "reader-secret";

    let (status, _, list) = call(&sys, "GET", "/v1/keys", t, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["keys"].as_array().unwrap().len(), 1, "{list}");
    let (status, _, _) = call(&sys, "GET", &format!("/v1/keys/{a}"), t, "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, doc) = call(&sys, "GET", "/v1/attestation", t, "").await;
    assert_eq!(status, StatusCode::OK, "{doc}");

    for (method, route, body, scope) in [
        (
            "POST",
            format!("/v1/keys/{a}/sign/transaction"),
            tx(&a),
            "`sign:transaction`",
        ),
        (
            "POST",
            format!("/v1/keys/{a}/sign/message"),
            r#"{"message":"x"}"#.into(),
            "`sign:message`",
        ),
        (
            "POST",
            format!("/v1/keys/{a}/sign/typed-data"),
            "{}".into(),
            "`sign:message`",
        ),
        (
            "POST",
            format!("/v1/keys/{a}/sign/hash"),
            format!(r#"{{"hash":"0x{}"}}"#, "11".repeat(32)),
            "`sign:hash`",
        ),
        (
            "POST",
            format!("/v1/keys/{a}/sign/authorization"),
            "{}".into(),
            "`sign:authorization`",
        ),
        (
            "PUT",
            format!("/v1/keys/{a}/policy"),
            "null".into(),
            "`admin`",
        ),
        ("POST", "/v1/keys".into(), "{}".into(), "`keys:create`"),
        (
            "POST",
            "/v1/keys/import".into(),
            "{}".into(),
            "`keys:create`",
        ),
        (
            "POST",
            "/v1/keys/migrate".into(),
            "{}".into(),
            "`keys:create`",
        ),
        ("POST", "/".into(), "{}".into(), "`sign:transaction`"),
        (
            "POST",
            format!("/api/v1/eth1/sign/{a}"),
            r#"{"data":"0x00"}"#.into(),
            "`sign:hash`",
        ),
    ] {
        let (status, _, reply) = call(&sys, method, &route, t, &body).await;
        assert_forbidden(status, &reply, scope);
    }
    let accounts = rpc(&sys, t, "eth_accounts", json!([])).await;
    assert_eq!(accounts["result"], json!([a]), "{accounts}");
    let refused = rpc(
        &sys,
        t,
        "eth_signTransaction",
        json!([serde_json::from_str::<Value>(&tx(&a)).unwrap()]),
    )
    .await;
    assert_rpc_forbidden(&refused, "`sign:transaction`");
    let refused = rpc(&sys, t, "eth_signTypedData_v4", json!([a, {}])).await;
    assert_rpc_forbidden(&refused, "`sign:message`");

    // A token that may only create keys (with no key in its scope) creates, but cannot list
    // or use what it made.
    let c = "creator-secret";
    let (status, _, made) = call(&sys, "POST", "/v1/keys", c, "{}").await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let (status, _, reply) = call(&sys, "GET", "/v1/keys", c, "").await;
    assert_forbidden(status, &reply, "`keys:read`");
    let refused = rpc(&sys, c, "eth_accounts", json!([])).await;
    assert_rpc_forbidden(&refused, "`keys:read`");

    // Unknown or missing tokens are 401, never 403.
    let (status, _, reply) = call(&sys, "GET", "/v1/keys", "nw_not-a-token", "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply["error"]["code"], "unauthorized");
    let (status, reply) = sys.send("GET", "/v1/keys", None, "").await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (StatusCode::UNAUTHORIZED, &json!("unauthorized"))
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let limited = |name: &str, secret: &str| TokenConfig {
        rate_per_second: Some(0.01),
        burst: Some(2),
        ..TokenConfig::full_access(name, &Tokens::hash(secret))
    };
    let sys = InProcess::with_config(256 * 1024, move |config, _| {
        config.tokens.push(limited("slow", "slow-secret"));
        config.tokens.push(limited("slow-rpc", "slow-rpc-secret"));
        config.tokens.push(limited("batcher", "batcher-secret"));
    })
    .await;
    for _ in 0..2 {
        let (status, _, _) = call(&sys, "GET", "/v1/keys", "slow-secret", "").await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, retry_after, body) = call(&sys, "GET", "/v1/keys", "slow-secret", "").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["error"]["code"], "rate_limited");
    let secs: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=100).contains(&secs), "{secs}");
    // Other tokens are not affected.
    let (status, _) = sys.authed("GET", "/v1/keys", "").await;
    assert_eq!(status, StatusCode::OK);

    // JSON-RPC: each call costs one; a batch of two empties the bucket, the next request is
    // HTTP 429 with Retry-After and a -32005 error.
    let call_json = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_accounts"});
    let batch = json!([call_json, call_json]).to_string();
    let (status, _, replies) = call(&sys, "POST", "/rpc", "slow-rpc-secret", &batch).await;
    assert_eq!(status, StatusCode::OK, "{replies}");
    assert_eq!(replies.as_array().unwrap().len(), 2);
    let (status, retry_after, reply) = call(
        &sys,
        "POST",
        "/rpc",
        "slow-rpc-secret",
        &call_json.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{reply}");
    assert!(retry_after.is_some());
    assert_eq!(reply["error"]["code"], -32005, "{reply}");
    assert_eq!(reply["error"]["data"]["code"], "rate_limited");
    // A batch larger than the burst can never pass: an invalid request, not a wait.
    let big = json!([call_json, call_json, call_json]).to_string();
    let (status, retry_after, reply) = call(&sys, "POST", "/rpc", "batcher-secret", &big).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert!(retry_after.is_none());
    assert_eq!(reply["error"]["code"], -32600, "{reply}");
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("burst"));
}

/// `nitro-wallet tokens …` with `args`; returns (success, stdout, stderr).
fn tokens_cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(nitro_wallet_bin())
        .arg("tokens")
        .args(args)
        .env_remove("NITRO_WALLET_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn create_token(location: &[&str], name: &str, extra: &[&str]) -> String {
    let mut args = vec!["create", "--name", name, "--json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(location);
    let (ok, out, err) = tokens_cli(&args);
    assert!(ok, "tokens create failed: {err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["name"], name);
    created["token"].as_str().unwrap().to_owned()
}

#[test]
fn the_tokens_command_creates_lists_and_revokes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens.toml");
    let f = file.to_str().unwrap();

    // Operations have no default: full access is never handed out by accident.
    let (ok, _, err) = tokens_cli(&["create", "--name", "ci", "--file", f]);
    assert!(!ok && err.contains("--operations"), "{err}");
    let (ok, _, err) = tokens_cli(&[
        "create",
        "--name",
        "ci",
        "--operations",
        "sign:everything",
        "--file",
        f,
    ]);
    assert!(!ok && err.contains("unknown operation"), "{err}");

    // The token is printed alone on stdout, once; the file holds its hash only.
    let (ok, token, err) = tokens_cli(&[
        "create",
        "--name",
        "ci",
        "--operations",
        "sign:transaction,keys:read",
        "--keys",
        OTHER,
        "--rate-per-second",
        "5",
        "--file",
        f,
    ]);
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    assert!(token.starts_with("nw_") && token.len() == 67, "{token}");
    assert!(err.contains("shown only now"), "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&token), "{text}");
    assert!(text.contains(&Tokens::hash(&token)), "{text}");
    assert!(
        text.contains("sign:transaction") && text.contains(OTHER),
        "{text}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    let admin = create_token(&["--file", f], "ops", &["--operations", "admin"]);
    assert_ne!(admin, token);
    let (ok, _, err) = tokens_cli(&[
        "create",
        "--name",
        "ops",
        "--operations",
        "admin",
        "--file",
        f,
    ]);
    assert!(!ok && err.contains("exists"), "{err}");

    let (ok, list, err) = tokens_cli(&["list", "--file", f]);
    assert!(ok, "{err}");
    assert!(
        list.contains("ci") && list.contains("sign:transaction,keys:read"),
        "{list}"
    );
    assert!(
        list.contains("5/s burst 5") && list.contains("2 token(s)"),
        "{list}"
    );
    assert!(
        !list.contains(&Tokens::hash(&token)),
        "no hashes in the listing: {list}"
    );
    let (_, json_list, _) = tokens_cli(&["list", "--json", "--file", f]);
    let listed: Value = serde_json::from_str(&json_list).unwrap();
    assert_eq!(listed[1]["name"], "ops");
    assert_eq!(listed[0]["keys"], json!([OTHER]));
    assert!(!json_list.contains("sha256"), "{json_list}");

    let (ok, out, err) = tokens_cli(&["revoke", "--name", "ci", "--file", f]);
    assert!(ok && out.contains("revoked"), "{err}");
    let (ok, _, err) = tokens_cli(&["revoke", "--name", "ci", "--file", f]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    assert!(!std::fs::read_to_string(&file).unwrap().contains("\"ci\""));

    // Through the configuration: it must name a tokens file; its inline tokens are listed
    // but cannot be revoked here.
    let config = dir.path().join("nitro-wallet.toml");
    let example = include_str!("../../../../nitro-wallet.toml.example");
    std::fs::write(&config, example).unwrap();
    let c = config.to_str().unwrap();
    let (ok, _, err) = tokens_cli(&["list", "--config", c]);
    assert!(!ok && err.contains("tokens_file"), "{err}");
    std::fs::write(
        &config,
        format!("{example}\n[auth]\ntokens_file = \"{f}\"\n"),
    )
    .unwrap();
    let (ok, list, err) = tokens_cli(&["list", "--config", c]);
    assert!(ok, "{err}");
    assert!(
        list.contains("example") && list.contains("config"),
        "{list}"
    );
    assert!(list.contains("ops") && list.contains("file"), "{list}");
    let (ok, _, err) = tokens_cli(&["revoke", "--name", "example", "--config", c]);
    assert!(!ok && err.contains("inline"), "{err}");
    let (ok, _, err) = tokens_cli(&[
        "create",
        "--name",
        "example",
        "--operations",
        "admin",
        "--config",
        c,
    ]);
    assert!(!ok && err.contains("configuration"), "{err}");
}

#[tokio::test]
async fn a_token_revoked_with_the_cli_gets_401_without_a_restart() {
    let sys = InProcess::with_config(256 * 1024, |config, dir| {
        config.auth.tokens_file = Some(dir.join("tokens.toml"));
    })
    .await;
    let f = sys.dir.path().join("tokens.toml");
    let f = f.to_str().unwrap();
    let token = create_token(&["--file", f], "temp", &["--operations", "keys:read"]);
    let status_of = |token: String| {
        let sys = &sys;
        async move {
            let (status, _, _) = call(sys, "GET", "/v1/keys", &token, "").await;
            status
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while status_of(token.clone()).await != StatusCode::OK {
        assert!(
            std::time::Instant::now() < deadline,
            "the new token was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ok, _, err) = tokens_cli(&["revoke", "--name", "temp", "--file", f]);
    assert!(ok, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = status_of(token.clone()).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK);
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked token still works"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // JSON-RPC too, with the token in the path.
    let (status, _, reply) = call(&sys, "POST", &format!("/rpc/{token}"), TOKEN, "{}").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    // The configuration's token is untouched.
    let (status, _) = sys.authed("GET", "/v1/keys", "").await;
    assert_eq!(status, StatusCode::OK);
}

/// The real `serve` at trace level, with a tokens file managed by the CLI while it runs:
/// new tokens are picked up, a revoked one is refused, SIGHUP re-reads the file, and no token
/// ever reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn serve_reloads_the_tokens_file_and_never_logs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tokens_file = d.join("tokens.toml");
    // No enclave is needed for listing keys from the file store.
    let (mut serve, url) = spawn_serve(
        d,
        &format!(
            "[enclave]\nendpoint = \"unix://{d}/no-enclave.sock\"\n\n[kms]\nkey_id = \"alias/x\"\n\n\
             [key_store]\nkind = \"file\"\ndir = \"{d}/keys\"\n\n[credentials]\nsource = \"insecure-dev\"\n\n\
             [auth]\ntokens_file = \"{f}\"\n",
            d = d.display(),
            f = tokens_file.display()
        ),
        &[],
    );
    let client = https_client(&d.join("state/tls/cert.pem"));
    let config = d.join("nitro-wallet.toml");
    let c = config.to_str().unwrap();
    let reader = create_token(&["--config", c], "reader", &["--operations", "keys:read"]);
    let signer = create_token(
        &["--config", c],
        "signer",
        &["--operations", "sign:message", "--keys", OTHER],
    );
    let wrong = format!("nw_{}", "ab".repeat(32));
    let get = |token: String| {
        let (client, url) = (&client, &url);
        async move {
            let response = client
                .get(format!("{url}/v1/keys"))
                .bearer_auth(token)
                .send()
                .await;
            match response {
                Ok(r) => (r.status().as_u16(), r.text().await.unwrap()),
                Err(_) => (0, String::new()),
            }
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while get(reader.clone()).await.0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not pick up the token"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut bodies = Vec::new();
    let (status, body) = get(signer.clone()).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("keys:read"), "{body}");
    bodies.push(body);
    let (status, body) = get(wrong.clone()).await;
    assert_eq!(status, 401, "{body}");
    bodies.push(body);
    let (status, body) = get(TOKEN.to_owned()).await;
    assert_eq!(status, 200, "{body}");
    for token in [&reader, &signer, &wrong] {
        let response = client
            .post(format!("{url}/rpc/{token}"))
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "eth_accounts"}))
            .send()
            .await
            .unwrap();
        bodies.push(response.text().await.unwrap());
    }
    assert!(bodies[3].contains("\"result\":[]"), "{}", bodies[3]);

    // Revoked while serving: 401 from the next reload on.
    let (ok, _, err) = tokens_cli(&["revoke", "--name", "reader", "--config", c]);
    assert!(ok, "{err}");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(reader.clone()).await;
        if status == 401 {
            bodies.push(body);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked token still works"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // SIGHUP re-reads the file (and does not stop serve).
    let log = d.join("serve.log");
    let status = Command::new("kill")
        .args(["-HUP", &serve.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_until(Duration::from_secs(10), "the SIGHUP reload", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("SIGHUP"))
    });
    let (status, _) = get(TOKEN.to_owned()).await;
    assert_eq!(status, 200);

    let _ = serve.kill();
    let _ = serve.wait();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("API tokens loaded"), "the reloads are logged");
    assert!(log.contains("TRACE"), "the log is at trace level");
    for token in [reader.as_str(), signer.as_str(), wrong.as_str(), TOKEN] {
        assert!(!log.contains(token), "a token appears in the serve log");
        for body in &bodies {
            assert!(
                !body.contains(token),
                "a token appears in an answer: {body}"
            );
        }
    }
    assert_no_token_in(&tokens_file, &[&reader, &signer]);
}

fn assert_no_token_in(path: &Path, tokens: &[&str]) {
    let text = std::fs::read_to_string(path).unwrap();
    for t in tokens {
        assert!(!text.contains(t), "{}", path.display());
    }
}
