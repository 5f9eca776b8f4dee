//! The API through `Router::oneshot`: status codes, error shapes, auth, limits.

use crate::support::{InProcess, ANVIL_ADDR_0, ANVIL_KEY_0, TOKEN};
use http::StatusCode;

fn tx_1559(nonce: u64) -> String {
    format!(
        r#"{{"chainId":"0x7a69","nonce":"{nonce}","gas":"21000","maxFeePerGas":"0x77359400",
            "maxPriorityFeePerGas":"0x3b9aca00","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"1"}}"#
    )
}

fn assert_error(body: &serde_json::Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn every_v1_route_requires_a_valid_token() {
    let sys = InProcess::start().await;
    for (method, path) in [
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("POST", "/v1/keys/import"),
        ("GET", "/v1/keys/0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
        (
            "POST",
            "/v1/keys/0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266/sign/transaction",
        ),
    ] {
        let (status, body) = sys.send(method, path, None, "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
        assert_error(&body, "unauthorized");
        let (status, _) = sys.send(method, path, Some("wrong-token"), "{}").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // Health endpoints are open.
    let (status, _) = sys.send("GET", "/healthz", None, "").await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = sys.send("GET", "/readyz", None, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
}

#[tokio::test]
async fn create_list_show_and_sign() {
    let sys = InProcess::start().await;
    let (status, key) = sys
        .authed("POST", "/v1/keys", r#"{"label":"treasury"}"#)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let address = key["address"].as_str().unwrap().to_owned();
    let parsed: alloy_primitives::Address = address.parse().unwrap();
    assert_eq!(address, parsed.to_checksum(None), "addresses are EIP-55");
    assert_eq!(key["label"], "treasury");

    // An empty body is fine for creation too.
    let (status, _) = sys.authed("POST", "/v1/keys", "").await;
    assert_eq!(status, StatusCode::CREATED);

    let (status, list) = sys.authed("GET", "/v1/keys", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["keys"].as_array().unwrap().len(), 2);

    // Lower-case path addresses are accepted.
    let (status, shown) = sys
        .authed("GET", &format!("/v1/keys/{}", address.to_lowercase()), "")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(shown["address"], address.as_str());

    let (status, signed) = sys
        .authed(
            "POST",
            &format!("/v1/keys/{address}/sign/transaction"),
            &tx_1559(0),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert_eq!(signed["from"], address.as_str());
    assert!(signed["raw_transaction"]
        .as_str()
        .unwrap()
        .starts_with("0x02"));
    assert_eq!(signed["transaction_hash"].as_str().unwrap().len(), 66);
    assert_eq!(signed["signature"]["y_parity"], signed["signature"]["v"]);
}

#[tokio::test]
async fn unknown_and_malformed_keys() {
    let sys = InProcess::start().await;
    let (status, body) = sys
        .authed(
            "POST",
            "/v1/keys/0x70997970C51812dc3A010C7d01b50e0d17dc79C8/sign/transaction",
            &tx_1559(0),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "key_not_found");
    let (status, _) = sys
        .authed(
            "GET",
            "/v1/keys/0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "",
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for bad in [
        "nothex",
        "0x1234",
        "0x70997970c51812dc3A010C7d01b50e0d17dc79C8",
    ] {
        let (status, body) = sys.authed("GET", &format!("/v1/keys/{bad}"), "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_error(&body, "invalid_address");
    }
    let (status, body) = sys.authed("GET", "/v2/nothing", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "not_found");
    let (status, body) = sys.authed("DELETE", "/v1/keys", "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error(&body, "method_not_allowed");
}

#[tokio::test]
async fn transaction_errors_name_the_field() {
    let sys = InProcess::start().await;
    let (_, key) = sys.authed("POST", "/v1/keys", "{}").await;
    let path = format!(
        "/v1/keys/{}/sign/transaction",
        key["address"].as_str().unwrap()
    );

    let cases = [
        (r#"{"chainId":"0x1","gas":"21000","gasPrice":"1"}"#, "nonce"),
        (r#"{"nonce":"0x0","gas":"21000","gasPrice":"1"}"#, "chainId"),
        (r#"{"chainId":"0x1","nonce":"0x0","gasPrice":"1"}"#, "gas"),
        (
            r#"{"chainId":"0x1","nonce":"0x0","gas":"21000"}"#,
            "gasPrice",
        ),
        (
            r#"{"chainId":"0x1","nonce":"0x0","gas":"21000","maxFeePerGas":"2"}"#,
            "maxPriorityFeePerGas",
        ),
        (
            r#"{"chainId":"0x1","nonce":"zz","gas":"21000","gasPrice":"1"}"#,
            "nonce",
        ),
        (
            r#"{"chainId":"0x1","nonce":"0","gas":"21000","gasPrice":"1","to":"0x12"}"#,
            "to",
        ),
    ];
    for (tx, field) in cases {
        let (status, body) = sys.authed("POST", &path, tx).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{tx}: {body}");
        assert_error(&body, "invalid_transaction");
        assert_eq!(body["error"]["field"], field, "{tx}: {body}");
    }
    // `from` naming another account is refused.
    let (status, body) = sys
        .authed(
            "POST",
            &path,
            &tx_1559(0).replace(
                "\"chainId\"",
                &format!("\"from\":\"{ANVIL_ADDR_0}\",\"chainId\""),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "from");

    let (status, body) = sys.authed("POST", &path, "{not json").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_json");
    let (status, body) = sys.authed("POST", &path, "[1,2]").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_error(&body, "invalid_transaction");
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let sys = InProcess::with_body_limit(1024).await;
    let big = format!(r#"{{"label":"{}"}}"#, "x".repeat(4096));
    let (status, body) = sys.authed("POST", "/v1/keys", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_error(&body, "body_too_large");
}

#[tokio::test]
async fn import_binds_the_known_address_and_never_echoes_the_key() {
    let sys = InProcess::start().await;
    let body = format!(r#"{{"private_key":"{ANVIL_KEY_0}","label":"anvil 0"}}"#);
    let (status, key) = sys.authed("POST", "/v1/keys/import", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    assert_eq!(key["address"], ANVIL_ADDR_0);

    let (status, again) = sys.authed("POST", "/v1/keys/import", &body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_error(&again, "key_exists");

    let secret = "11".repeat(31);
    for bad in [
        format!(r#"{{"private_key":"{secret}"}}"#),
        format!(r#"{{"private_key":{secret}}}"#),
        format!(r#"{{"private_key":"{secret}","extra":1}}"#),
        format!(r#"{{"private_key":"{}"}}"#, "f".repeat(64)),
    ] {
        let (status, body) = sys.authed("POST", "/v1/keys/import", &bad).await;
        assert!(
            status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::BAD_REQUEST,
            "{bad}: {status}"
        );
        let text = body.to_string();
        assert!(
            !text.contains(&secret) && !text.contains(&"f".repeat(64)),
            "key echoed: {text}"
        );
    }

    // The stored record holds ciphertext only.
    let record = std::fs::read_to_string(
        sys.dir
            .path()
            .join("keys")
            .join(format!("{ANVIL_ADDR_0}.json")),
    )
    .unwrap();
    assert!(
        !record.contains(&ANVIL_KEY_0[2..]),
        "plaintext key in the record"
    );
    assert!(record.contains("nitro-wallet:address"));
    let _ = TOKEN;
}

#[tokio::test]
async fn labels_are_bounded() {
    let sys = InProcess::start().await;
    let (status, body) = sys
        .authed(
            "POST",
            "/v1/keys",
            &format!(r#"{{"label":"{}"}}"#, "a".repeat(200)),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "label");
    let (status, body) = sys.authed("POST", "/v1/keys", r#"{"labl":"typo"}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}
