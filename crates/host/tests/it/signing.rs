//! Message, typed-data, raw-digest and EIP-7702 authorization signing through the REST API,
//! and the Web3Signer eth1 surface, in process over a real enclave server.

use crate::support::{InProcess, ANVIL_ADDR_0, ANVIL_KEY_0, MAIL};
use alloy_primitives::{keccak256, Address, Signature, B256};
use http::StatusCode;

/// The key of EIP-712's own example (`keccak256("cow")`), whose signature the EIP publishes.
const COW_KEY: &str = "0xc85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4";
const COW_ADDR: &str = "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826";
const ANVIL_PUB_0: &str = "0x8318535b54105d4a7aae60c08fc45f9687181b4fdfc625bd1a753fa7397fed753547f11ca8696646f2f3acb08e31016afac23e630c5d11f59f61fef57b0d2aa5";

async fn import(sys: &InProcess, key: &str) {
    import_with_policy(sys, key, "null").await;
}

async fn import_with_policy(sys: &InProcess, key: &str, policy: &str) -> serde_json::Value {
    let (status, body) = sys
        .authed(
            "POST",
            "/v1/keys/import",
            &format!(r#"{{"private_key":"{key}", "policy": {policy}}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

fn recover(signature_hex: &str, hash: B256) -> Address {
    let bytes = hex::decode(signature_hex.trim_start_matches("0x")).unwrap();
    assert_eq!(bytes.len(), 65);
    assert!(bytes[64] == 27 || bytes[64] == 28, "v is 27 or 28");
    Signature::from_raw(&bytes)
        .unwrap()
        .recover_address_from_prehash(&hash)
        .unwrap()
}

#[tokio::test]
async fn typed_data_signs_as_the_eip_712_example_says() {
    let sys = InProcess::start().await;
    import(&sys, COW_KEY).await;
    let (status, sig) = sys
        .authed(
            "POST",
            &format!("/v1/keys/{COW_ADDR}/sign/typed-data"),
            MAIL,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sig}");
    // The values EIP-712 publishes for its example.
    assert_eq!(
        sig["hash"],
        "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    );
    assert_eq!(
        sig["r"],
        "0x4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"
    );
    assert_eq!(
        sig["s"],
        "0x7299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562"
    );
    assert_eq!(sig["v"], "0x1c");

    // A value that does not fit its type is named, and nothing is signed.
    let bad = MAIL.replace(r#""chainId": 1"#, r#""chainId": -1"#);
    let (status, err) = sys
        .authed(
            "POST",
            &format!("/v1/keys/{COW_ADDR}/sign/typed-data"),
            &bad,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "domain.chainId", "{err}");
}

#[tokio::test]
async fn personal_messages_in_every_form_recover_to_the_key() {
    let sys = InProcess::start().await;
    import(&sys, ANVIL_KEY_0).await;
    let path = format!("/v1/keys/{ANVIL_ADDR_0}/sign/message");
    for (message, bytes) in [
        (r#""hello""#, b"hello".to_vec()),
        (r#"{"text": "0x68"}"#, b"0x68".to_vec()),
        (r#""0x68656c6c6f""#, b"hello".to_vec()),
        (r#"{"raw": "0x00ff"}"#, vec![0x00, 0xff]),
        (r#""""#, Vec::new()),
    ] {
        let (status, sig) = sys
            .authed("POST", &path, &format!(r#"{{"message": {message}}}"#))
            .await;
        assert_eq!(status, StatusCode::OK, "{message}: {sig}");
        let hash = nitro_wallet_eth::eip191_hash(&bytes);
        assert_eq!(sig["hash"], hash.to_string(), "{message}");
        let signer = recover(sig["signature"].as_str().unwrap(), hash);
        assert_eq!(
            signer,
            ANVIL_ADDR_0.parse::<Address>().unwrap(),
            "{message}"
        );
    }
    for body in [
        r#"{"message": 5}"#,
        r#"{"message": {"raw": "0xzz"}}"#,
        r#"{}"#,
    ] {
        let (status, err) = sys.authed("POST", &path, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {err}");
    }
}

#[tokio::test]
async fn raw_digests_only_for_keys_whose_policy_allows_them() {
    let allowed: Address = ANVIL_ADDR_0.parse().unwrap();
    let sys = InProcess::start().await;
    import_with_policy(&sys, ANVIL_KEY_0, r#"{"raw_hash": true}"#).await;
    import(&sys, COW_KEY).await;
    let hash = keccak256(b"a digest");
    let body = format!(r#"{{"hash": "{hash}"}}"#);

    let (status, err) = sys
        .authed("POST", &format!("/v1/keys/{COW_ADDR}/sign/hash"), &body)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["code"], "policy_denied");
    assert_eq!(err["error"]["field"], "raw_hash");

    let (status, sig) = sys
        .authed("POST", &format!("/v1/keys/{ANVIL_ADDR_0}/sign/hash"), &body)
        .await;
    assert_eq!(status, StatusCode::OK, "{sig}");
    assert_eq!(sig["hash"], hash.to_string());
    assert_eq!(recover(sig["signature"].as_str().unwrap(), hash), allowed);

    let (status, err) = sys
        .authed(
            "POST",
            &format!("/v1/keys/{ANVIL_ADDR_0}/sign/hash"),
            r#"{"hash": "0x12"}"#,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "hash");
}

#[tokio::test]
async fn authorizations_sign_into_list_entries_and_chain_id_0_is_refused() {
    let sys = InProcess::start().await;
    import(&sys, ANVIL_KEY_0).await;
    let path = format!("/v1/keys/{ANVIL_ADDR_0}/sign/authorization");
    let delegate = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    let (status, auth) = sys
        .authed(
            "POST",
            &path,
            &format!(r#"{{"chainId": "0x7a69", "address": "{delegate}", "nonce": "0x3"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{auth}");
    assert_eq!(auth["chainId"], "0x7a69");
    assert_eq!(auth["address"], delegate);
    assert_eq!(auth["nonce"], "0x3");
    // It is what the eth crate's own parser takes as an authorizationList entry (low s,
    // recovers), in a type-4 transaction signed by the same API.
    let tx = format!(
        r#"{{"chainId": "0x7a69", "nonce": "0x0", "gas": "100000", "maxFeePerGas": "2000000000",
            "maxPriorityFeePerGas": "1000000000", "to": "{ANVIL_ADDR_0}",
            "authorizationList": [{auth}]}}"#
    );
    let (status, signed) = sys
        .authed(
            "POST",
            &format!("/v1/keys/{ANVIL_ADDR_0}/sign/transaction"),
            &tx,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{signed}");
    assert!(signed["raw_transaction"]
        .as_str()
        .unwrap()
        .starts_with("0x04"));

    let (status, err) = sys
        .authed(
            "POST",
            &path,
            &format!(r#"{{"chainId": "0x0", "address": "{delegate}", "nonce": "0x3"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["code"], "policy_denied");
    assert_eq!(err["error"]["field"], "authorization_any_chain");
}

#[tokio::test]
async fn web3signer_eth1_surface() {
    let allowed: Address = ANVIL_ADDR_0.parse().unwrap();
    let sys = InProcess::start().await;
    import_with_policy(&sys, ANVIL_KEY_0, r#"{"raw_hash": true}"#).await;
    import(&sys, COW_KEY).await;

    let (status, keys) = sys.authed("GET", "/api/v1/eth1/publicKeys", "").await;
    assert_eq!(status, StatusCode::OK, "{keys}");
    let keys: Vec<String> = serde_json::from_value(keys).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.contains(&ANVIL_PUB_0.to_owned()), "{keys:?}");

    let data = "0xdeadbeef";
    let (status, text) = sys
        .send_text(
            "POST",
            &format!("/api/v1/eth1/sign/{ANVIL_PUB_0}"),
            &format!(r#"{{"data": "{data}"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let digest = keccak256(hex::decode(&data[2..]).unwrap());
    assert_eq!(recover(&text, digest), allowed);

    // eth1/sign is raw signing: refused for a key not configured for it.
    let cow_pub = keys.iter().find(|k| *k != ANVIL_PUB_0).unwrap();
    let (status, _) = sys
        .send_text(
            "POST",
            &format!("/api/v1/eth1/sign/{cow_pub}"),
            &format!(r#"{{"data": "{data}"}}"#),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, _) = sys.send("GET", "/api/v1/eth1/publicKeys", None, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = sys
        .send(
            "POST",
            &format!("/api/v1/eth1/sign/{ANVIL_PUB_0}"),
            Some("wrong"),
            "{}",
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, text) = sys.send_text("GET", "/upcheck", "").await;
    assert_eq!((status, text.as_str()), (StatusCode::OK, "OK"));
}

#[tokio::test]
async fn policies_are_enforced_shown_and_replaced_through_the_enclave() {
    let sys = InProcess::start().await;
    let key = import_with_policy(
        &sys,
        ANVIL_KEY_0,
        &format!(
            r#"{{"chain_ids": [31337], "max_value_wei": "100",
                "recipients": {{"{COW_ADDR}": {{}}}}, "personal_messages": false}}"#
        ),
    )
    .await;
    // The record shows the policy and binds its digest.
    assert_eq!(key["policy"]["max_value_wei"], "100", "{key}");
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(sys.dir.path().join(format!("keys/{ANVIL_ADDR_0}.json"))).unwrap(),
    )
    .unwrap();
    let digest = record["encryption_context"]["nitro-wallet:policy"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(digest.len(), 64, "{record}");

    let tx = |chain: u64, to: &str, value: u64| {
        format!(
            r#"{{"chainId": {chain}, "nonce": 0, "gas": 21000, "gasPrice": 1, "to": "{to}",
                "value": {value}}}"#
        )
    };
    let sign = format!("/v1/keys/{ANVIL_ADDR_0}/sign/transaction");
    let (status, ok) = sys.authed("POST", &sign, &tx(31337, COW_ADDR, 100)).await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    for (body, rule) in [
        (tx(1, COW_ADDR, 1), "chain_ids"),
        (tx(31337, COW_ADDR, 101), "max_value_wei"),
        (tx(31337, ANVIL_ADDR_0, 1), "recipients"),
    ] {
        let (status, err) = sys.authed("POST", &sign, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
        assert_eq!(err["error"]["code"], "policy_denied");
        assert_eq!(err["error"]["field"], rule, "{err}");
        assert!(err["error"]["message"].as_str().unwrap().contains(rule));
    }
    let message = format!("/v1/keys/{ANVIL_ADDR_0}/sign/message");
    let (status, err) = sys.authed("POST", &message, r#"{"message": "hi"}"#).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["field"], "personal_messages");

    // Replace the policy: the enclave re-wraps, the record changes, the new rules apply.
    let policy = format!("/v1/keys/{ANVIL_ADDR_0}/policy");
    let (status, key) = sys.authed("PUT", &policy, r#"{"max_value_wei": 5}"#).await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert_eq!(key["policy"], serde_json::json!({"max_value_wei": "5"}));
    let (status, _) = sys.authed("POST", &sign, &tx(1, ANVIL_ADDR_0, 5)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = sys.authed("POST", &sign, &tx(1, ANVIL_ADDR_0, 6)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["field"], "max_value_wei");
    // And removed.
    let (status, key) = sys.authed("PUT", &policy, "null").await;
    assert_eq!(status, StatusCode::OK, "{key}");
    assert!(key["policy"].is_null());
    let (status, _) = sys.authed("POST", &sign, &tx(1, ANVIL_ADDR_0, 6)).await;
    assert_eq!(status, StatusCode::OK);

    // Malformed policies are refused, and nothing changes.
    let (status, err) = sys.authed("PUT", &policy, r#"{"max_value": 5}"#).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert_eq!(err["error"]["field"], "policy");
}

#[tokio::test]
async fn the_rolling_window_limits_total_value_and_count() {
    let sys = InProcess::start().await;
    import_with_policy(
        &sys,
        ANVIL_KEY_0,
        r#"{"window": {"seconds": 3600, "max_value_wei": "10", "max_count": 3}}"#,
    )
    .await;
    let sign = format!("/v1/keys/{ANVIL_ADDR_0}/sign/transaction");
    let tx = |nonce: u64, value: u64| {
        format!(
            r#"{{"chainId": 1, "nonce": {nonce}, "gas": 21000, "gasPrice": 1,
                "to": "{COW_ADDR}", "value": {value}}}"#
        )
    };
    for (nonce, value) in [(0, 4), (1, 4)] {
        let (status, body) = sys.authed("POST", &sign, &tx(nonce, value)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, err) = sys.authed("POST", &sign, &tx(2, 3)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["field"], "window.max_value_wei");
    let (status, _) = sys.authed("POST", &sign, &tx(2, 2)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, err) = sys.authed("POST", &sign, &tx(3, 0)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{err}");
    assert_eq!(err["error"]["field"], "window.max_count");
}
