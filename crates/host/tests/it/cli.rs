//! The CLI a person uses, against the real dev server.

use crate::support::{nitro_wallet_bin, DevServer};
use std::process::{Command, Output};

fn cli(dev: &DevServer, args: &[&str]) -> Output {
    Command::new(nitro_wallet_bin())
        .args(args)
        .args(["--url", &dev.url, "--dev-dir"])
        .arg(&dev.data_dir)
        .env_remove("NITRO_WALLET_TOKEN")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

#[test]
fn keys_and_signing_from_the_command_line() {
    let dev = DevServer::start();
    let created = stdout(&cli(
        &dev,
        &["keys", "create", "--label", "cli key", "--json"],
    ));
    let key: serde_json::Value = serde_json::from_str(&created).unwrap();
    let address = key["address"].as_str().unwrap();

    let listed = stdout(&cli(&dev, &["keys", "list"]));
    assert!(
        listed.contains(address) && listed.contains("cli key") && listed.contains("1 key(s)"),
        "{listed}"
    );

    let shown = stdout(&cli(&dev, &["keys", "show", address]));
    assert!(shown.contains(address), "{shown}");

    let tx = r#"{"chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}"#;
    let signed = stdout(&cli(&dev, &["sign", "tx", address, "--tx", tx]));
    assert!(signed.contains("raw_transaction:  0xf8"), "{signed}");

    // Errors are explained.
    let missing = cli(
        &dev,
        &["sign", "tx", address, "--tx", r#"{"chainId":"0x1"}"#],
    );
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(
        err.contains("422") && err.contains("missing field `nonce`"),
        "{err}"
    );

    let unknown = cli(
        &dev,
        &["keys", "show", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"],
    );
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        err.contains("key_not_found") && err.contains("keys list"),
        "{err}"
    );
}

#[test]
fn helpful_errors_without_a_server_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let no_token = Command::new(nitro_wallet_bin())
        .args(["keys", "list", "--dev-dir"])
        .arg(dir.path())
        .env_remove("NITRO_WALLET_TOKEN")
        .output()
        .unwrap();
    assert!(!no_token.status.success());
    let err = String::from_utf8_lossy(&no_token.stderr);
    assert!(
        err.contains("no API token") && err.contains("nitro-wallet dev"),
        "{err}"
    );

    let port = crate::support::free_port();
    let unreachable = Command::new(nitro_wallet_bin())
        .args([
            "keys",
            "list",
            "--token",
            "x",
            "--url",
            &format!("https://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert!(!unreachable.status.success());
    let err = String::from_utf8_lossy(&unreachable.stderr);
    assert!(
        err.contains("cannot reach") && err.contains("cargo run --release -- dev"),
        "{err}"
    );
}
