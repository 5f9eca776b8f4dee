//! Attestation end to end: dev mode unwraps keys only for the build its key policy names,
//! clients verify documents from the running service, and the CLI verifies real AWS
//! documents.

use crate::support::{nitro_wallet_bin, post, DevServer};
use serde_json::{json, Value};
use std::{path::PathBuf, process::Command};

fn aws_document(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../attestation/tests/data")
        .join(name)
}

fn run(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(nitro_wallet_bin())
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn the_cli_verifies_real_aws_documents_and_explains_rejections() {
    let prod = aws_document("evervault_prod_2022-10-13_us-east-1.cose");
    let prod = prod.to_str().unwrap();
    let pcr0 = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b";

    let (ok, out, err) = run(&[
        "attestation",
        "verify",
        prod,
        "--at",
        "2022-10-13T08:58:03Z",
        "--expect-pcr0",
        pcr0,
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("VERIFIED") && out.contains(pcr0) && out.contains("debug mode: no"),
        "{out}"
    );

    let (ok, _, err) = run(&["attestation", "verify", prod]);
    assert!(!ok);
    assert!(err.contains("REJECTED") && err.contains("expired"), "{err}");

    let (ok, _, err) = run(&[
        "attestation",
        "verify",
        prod,
        "--at",
        "2022-10-13T08:58:03Z",
        "--expect-pcr0",
        &"00".repeat(48),
    ]);
    assert!(!ok);
    assert!(err.contains("REJECTED") && err.contains("PCR0"), "{err}");

    let debug = aws_document("evervault_debug_2022-10-12_us-east-1.cose");
    let (ok, _, err) = run(&[
        "attestation",
        "verify",
        debug.to_str().unwrap(),
        "--at",
        "2022-10-12T13:50:07Z",
    ]);
    assert!(!ok);
    assert!(err.contains("debug"), "{err}");
    let (ok, out, _) = run(&[
        "attestation",
        "verify",
        debug.to_str().unwrap(),
        "--at",
        "2022-10-12T13:50:07Z",
        "--allow-debug",
    ]);
    assert!(ok);
    assert!(out.contains("debug mode: YES"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuilt_enclave_is_refused_until_the_key_policy_names_it() {
    let dev = DevServer::start();
    let client = dev.client();
    let (status, key) = post(&client, &dev, "/v1/keys", json!({})).await;
    assert_eq!(status, 201, "{key}");
    let path = format!(
        "/v1/keys/{}/sign/transaction",
        key["address"].as_str().unwrap()
    );
    let tx = json!({ "chainId": "0x1", "nonce": "0x0", "gas": "0x5208", "gasPrice": "0x1" });
    assert_eq!(post(&client, &dev, &path, tx.clone()).await.0, 200);

    // Clients verify the running enclave: dev root, this build's PCR0, their own nonce.
    let root = dev.data_dir.join("attestation/dev-ca-root.pem");
    let (ok, pcrs, err) = run(&["attestation", "pcrs", "--json"]);
    assert!(ok, "{err}");
    let pcr0 = serde_json::from_str::<Value>(&pcrs).unwrap()["pcr0"]
        .as_str()
        .unwrap()
        .to_owned();
    let verify = |extra: &[&str]| {
        let mut args = vec![
            "attestation",
            "verify",
            dev.url.as_str(),
            "--root",
            root.to_str().unwrap(),
        ];
        args.extend(["--dev-dir", dev.data_dir.to_str().unwrap()]);
        args.extend(extra);
        run(&args)
    };
    let (ok, out, err) = verify(&["--expect-pcr0", &pcr0]);
    assert!(ok, "{err}");
    assert!(out.contains("VERIFIED") && out.contains(&pcr0), "{out}");
    let (ok, _, err) = verify(&["--expect-pcr0", &"ab".repeat(48)]);
    assert!(!ok && err.contains("PCR0"), "{err}");
    // The dev document is not signed by AWS.
    let (ok, _, err) = run(&[
        "attestation",
        "verify",
        &dev.url,
        "--dev-dir",
        dev.data_dir.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("REJECTED"), "{err}");

    // The key policy names another image (as after a rebuild): no key unwraps, a clear
    // reason, no signature.
    let (dir, data_dir) = dev.stop_keeping_state();
    let policy_path = data_dir.join("kms/key-policy.json");
    let mut policy: Value = serde_json::from_slice(&std::fs::read(&policy_path).unwrap()).unwrap();
    assert_eq!(
        policy["image_sha384"].as_str().unwrap().to_lowercase(),
        pcr0
    );
    policy["image_sha384"] = json!("cd".repeat(48));
    std::fs::write(&policy_path, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();

    let dev = DevServer::start_with(dir, data_dir, "warn", &[]);
    let client = dev.client();
    let (status, body) = post(&client, &dev, &path, tx.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "kms_denied", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("attestation policy") && message.contains("PCR0"),
        "{message}"
    );
    assert!(body.get("raw_transaction").is_none());

    // The operator updates the policy for this build: keys unwrap again.
    let (dir, data_dir) = dev.stop_keeping_state();
    let dev = DevServer::start_with(dir, data_dir, "warn", &["--trust-current-build"]);
    let client = dev.client();
    let (status, body) = post(&client, &dev, &path, tx).await;
    assert_eq!(status, 200, "{body}");
}
