//! The CLI a person uses, against the real dev server: what it prints for people and for
//! scripts, that its signatures recover to the key, and that its errors say what to do, with
//! exit statuses a script can tell apart (1 refused, 2 usage, 3 unreachable).

use crate::support::{nitro_wallet_bin, DevServer, ANVIL_ADDR_0, ANVIL_KEY_0, MAIL};
use nitro_wallet_eth::{eip191_hash, typed_data_hash, Address, MessageSignature};
use std::{
    io::Write as _,
    path::Path,
    process::{Command, Stdio},
};

/// What a run of the CLI left behind.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The standard output of a run that must have succeeded.
    fn ok(self) -> String {
        assert_eq!(self.code, Some(0), "failed: {}", self.stderr);
        self.stdout
    }

    /// The standard error of a run that must have failed with `code`.
    fn failed(self, code: i32) -> String {
        assert_eq!(self.code, Some(code), "{self:?}");
        assert!(self.stdout.is_empty(), "{self:?}");
        self.stderr
    }
}

/// Runs the CLI with `args` and `stdin`, without NITRO_WALLET_* settings from the caller.
fn run(args: &[&str], stdin: &[u8]) -> Run {
    let mut command = Command::new(nitro_wallet_bin());
    for var in ["TOKEN", "URL", "CA_CERT", "DEV_DIR", "CONFIG"] {
        command.env_remove(format!("NITRO_WALLET_{var}"));
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// Runs the CLI against `dev`, as a person in dev mode does (token and certificate found in
/// the dev directory).
fn cli_in(dev: &DevServer, args: &[&str], stdin: &[u8]) -> Run {
    let dev_dir = dev.data_dir.to_str().unwrap();
    let mut all = args.to_vec();
    all.extend(["--url", &dev.url, "--dev-dir", dev_dir]);
    run(&all, stdin)
}

fn cli(dev: &DevServer, args: &[&str]) -> Run {
    cli_in(dev, args, b"")
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The `name:` field of `key: value` output.
fn field<'a>(out: &'a str, name: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {out}"))
        .trim()
}

/// Checks a `sign message|typed-data` answer: the digest we expect, signed by `address`.
fn assert_signed(out: &str, hash: nitro_wallet_eth::B256, address: &str) {
    let sig: MessageSignature = serde_json::from_str(out).unwrap();
    assert_eq!(sig.hash, hash, "{out}");
    let signer: Address = address.parse().unwrap();
    assert_eq!(sig.recover_signer(), Some(signer), "{out}");
    assert_eq!(sig.signer, signer);
}

#[test]
fn keys_and_signing_from_the_command_line() {
    let dev = DevServer::start();

    // keys: JSON for scripts, fields and a table for people.
    let created = json(&cli(&dev, &["keys", "create", "--label", "cli key", "--json"]).ok());
    let address = created["address"].as_str().unwrap().to_owned();
    let address = address.as_str();
    let second = cli(&dev, &["keys", "create", "--label", "second"]).ok();
    let second_address = field(&second, "address").to_owned();
    assert_eq!(field(&second, "label"), "second");
    assert_eq!(field(&second, "policy"), "-");

    let listed = cli(&dev, &["keys", "list"]).ok();
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines[0].starts_with("ADDRESS") && lines.len() == 4 && lines[3] == "2 key(s)",
        "{listed}"
    );
    let row = lines.iter().find(|l| l.starts_with(address)).unwrap();
    assert_eq!(
        row.find("cli key"),
        lines[0].find("LABEL"),
        "columns are aligned:\n{listed}"
    );
    assert!(listed.contains(&second_address), "{listed}");

    // --json is the server's answer, byte for byte.
    let listed_json = cli(&dev, &["keys", "list", "--json"]).ok();
    let from_server = tokio::runtime::Runtime::new().unwrap().block_on(async {
        dev.client()
            .get(format!("{}/v1/keys", dev.url))
            .bearer_auth(&dev.token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert_eq!(listed_json.trim_end(), from_server.trim_end());
    assert_eq!(json(&listed_json)["keys"].as_array().unwrap().len(), 2);

    let shown = cli(&dev, &["keys", "show", &address.to_lowercase()]).ok();
    assert_eq!(field(&shown, "address"), address);
    assert_eq!(field(&shown, "label"), "cli key");
    assert_eq!(field(&shown, "kms_key_id"), "alias/nitro-wallet");

    // sign tx, from an argument and from standard input.
    let tx = r#"{"chainId":"0x1","nonce":"0x0","gas":"0x5208","gasPrice":"0x1","to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}"#;
    let signed = cli(&dev, &["sign", "tx", address, "--tx", tx]).ok();
    assert!(
        field(&signed, "raw_transaction").starts_with("0xf8"),
        "{signed}"
    );
    assert_eq!(field(&signed, "from"), address);
    let piped = json(&cli_in(&dev, &["sign", "tx", address, "--json"], tx.as_bytes()).ok());
    assert_eq!(piped["raw_transaction"], field(&signed, "raw_transaction"));

    // sign message: text from an argument, bytes as hex from standard input, text from
    // standard input exactly as read.
    let text = "Sign in to example.com";
    let out = cli(&dev, &["sign", "message", address, text, "--json"]).ok();
    assert_signed(&out, eip191_hash(text.as_bytes()), address);
    let out = cli_in(
        &dev,
        &["sign", "message", address, "--hex", "--json"],
        b"0xdeadbeef\n",
    )
    .ok();
    assert_signed(&out, eip191_hash(&[0xde, 0xad, 0xbe, 0xef]), address);
    let out = cli_in(
        &dev,
        &["sign", "message", address, "--json"],
        b"two\nlines\n",
    )
    .ok();
    assert_signed(&out, eip191_hash(b"two\nlines\n"), address);
    let human = cli(&dev, &["sign", "message", address, text]).ok();
    assert_eq!(field(&human, "signer"), address);
    assert_eq!(
        field(&human, "hash"),
        eip191_hash(text.as_bytes()).to_string()
    );

    // sign typed-data: the EIP-712 example, from a file and from standard input; its digest
    // is the one EIP-712 publishes.
    let mail_hash = typed_data_hash(MAIL.as_bytes()).unwrap();
    assert_eq!(
        mail_hash.to_string(),
        "0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    );
    let dir = tempfile::tempdir().unwrap();
    let mail = dir.path().join("mail.json");
    std::fs::write(&mail, MAIL).unwrap();
    let out = cli(
        &dev,
        &[
            "sign",
            "typed-data",
            address,
            mail.to_str().unwrap(),
            "--json",
        ],
    )
    .ok();
    assert_signed(&out, mail_hash, address);
    let out = cli_in(
        &dev,
        &["sign", "typed-data", address, "--json"],
        MAIL.as_bytes(),
    )
    .ok();
    assert_signed(&out, mail_hash, address);

    // sign authorization: recovers to the key over the EIP-7702 digest.
    let delegate = "0x63c0c19a282a1B52b07dD5a65b58948A07DAE32B";
    let out = json(
        &cli(
            &dev,
            &[
                "sign",
                "authorization",
                address,
                "--chain-id",
                "1",
                "--contract",
                delegate,
                "--nonce",
                "7",
                "--json",
            ],
        )
        .ok(),
    );
    assert_eq!(
        (&out["chainId"], &out["address"], &out["nonce"]),
        (&"0x1".into(), &delegate.into(), &"0x7".into())
    );
    let request = nitro_wallet_eth::AuthorizationRequest::from_value(&out).unwrap();
    let authorization: nitro_wallet_eth::SignedAuthorization = serde_json::from_value(out).unwrap();
    let signature =
        nitro_wallet_eth::Signature::new(authorization.r, authorization.s, authorization.y_parity);
    assert_eq!(
        signature
            .recover_address_from_prehash(&request.signature_hash())
            .unwrap(),
        address.parse::<Address>().unwrap()
    );

    // Errors say what happened and what to do, with exit status 1 for a refusal…
    let err = cli(
        &dev,
        &["sign", "tx", address, "--tx", r#"{"chainId":"0x1"}"#],
    )
    .failed(1);
    assert!(
        err.contains("422") && err.contains("missing field `nonce`"),
        "{err}"
    );
    let unknown = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let err = cli(&dev, &["keys", "show", unknown]).failed(1);
    assert!(
        err.contains("404") && err.contains("key_not_found") && err.contains("keys list"),
        "{err}"
    );
    let err = cli(
        &dev,
        &["sign", "message", address, "hi", "--token", "nw_wrong"],
    )
    .failed(1);
    assert!(
        err.contains("401") && err.contains("--token-file") && err.contains("api-token"),
        "{err}"
    );
    let digest = format!("0x{}", "11".repeat(32));
    let err = cli(&dev, &["sign", "hash", address, &digest]).failed(1);
    assert!(
        err.contains("403") && err.contains("policy_denied") && err.contains("keys show"),
        "{err}"
    );

    // …2 for input refused before anything is sent…
    let err = cli(&dev, &["keys", "show", "0x1234"]).failed(2);
    assert!(
        err.contains("not an address") && err.contains("40 hex"),
        "{err}"
    );
    let typo = "0x70997970C51812dc3A010C7d01b50e0d17dc79c8";
    let err = cli(&dev, &["sign", "message", typo, "hi"]).failed(2);
    assert!(err.contains("checksum"), "{err}");
    let err = cli_in(&dev, &["sign", "typed-data", address], b"{\"types\":").failed(2);
    assert!(
        err.contains("not valid JSON") && err.contains("standard input"),
        "{err}"
    );
    let err = cli(&dev, &["sign", "message", address, "0xzz", "--hex"]).failed(2);
    assert!(err.contains("not hex"), "{err}");

    // …and 3 when the server cannot be reached: here its certificate is not trusted.
    let elsewhere = tempfile::tempdir().unwrap();
    let err = run(
        &[
            "keys",
            "list",
            "--url",
            &dev.url,
            "--token",
            &dev.token,
            "--dev-dir",
            elsewhere.path().to_str().unwrap(),
        ],
        b"",
    )
    .failed(3);
    assert!(
        err.contains("not signed by") && err.contains("--ca-cert"),
        "{err}"
    );
    let ok = run(
        &[
            "keys",
            "list",
            "--url",
            &dev.url,
            "--token",
            &dev.token,
            "--dev-dir",
            elsewhere.path().to_str().unwrap(),
            "--ca-cert",
            dev.ca_cert().to_str().unwrap(),
        ],
        b"",
    )
    .ok();
    assert!(ok.contains("2 key(s)"), "{ok}");

    // keys import reads the key from standard input, never from the command line.
    let err = cli_in(&dev, &["keys", "import"], b"\n").failed(2);
    assert!(err.contains("no private key on standard input"), "{err}");
    let key = format!("{ANVIL_KEY_0}\n");
    let imported = cli_in(
        &dev,
        &["keys", "import", "--label", "anvil"],
        key.as_bytes(),
    )
    .ok();
    assert_eq!(field(&imported, "address"), ANVIL_ADDR_0);
    assert!(!imported.contains(&ANVIL_KEY_0[2..]), "{imported}");
}

#[test]
fn helpful_errors_without_a_server_or_token() {
    let dir = tempfile::tempdir().unwrap();
    let dev_dir = dir.path().to_str().unwrap();
    let err = run(&["keys", "list", "--dev-dir", dev_dir], b"").failed(1);
    assert!(
        err.contains("no API token")
            && err.contains("Is `nitro-wallet dev` running")
            && err.contains("--token-file"),
        "{err}"
    );

    let url = format!("https://127.0.0.1:{}", crate::support::free_port());
    let err = run(&["keys", "list", "--token", "x", "--url", &url], b"").failed(3);
    assert_eq!(
        err.trim_end(),
        format!(
            "error: cannot reach {url}: connection refused. Is `nitro-wallet dev` running? \
             Start it with `cargo run --release -- dev`, or pass --url"
        )
    );

    // Usage errors are clap's, with status 2.
    let err = run(&["sign", "message"], b"").failed(2);
    assert!(err.contains("<ADDRESS>"), "{err}");
}

#[test]
fn config_init_writes_a_configuration_that_serve_accepts() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nitro-wallet.toml");
    let output = path.to_str().unwrap();
    let check = |token: &str| {
        let config = nitro_wallet::config::Config::load(&path).unwrap();
        assert_eq!(config.tokens.len(), 1);
        assert_eq!(
            config.tokens[0].sha256,
            nitro_wallet::api::auth::Tokens::hash(token)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(token), "only the token's hash is written");
        assert!(
            text.contains("\n# ") && text.contains("[key_store]"),
            "{text}"
        );
    };

    let first = run(&["config", "init", "--output", output], b"").ok();
    let token = first.trim();
    assert!(token.starts_with("nw_") && token.len() == 67, "{first}");
    check(token);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);

    let before = std::fs::read(&path).unwrap();
    let err = run(&["config", "init", "--output", output], b"").failed(1);
    assert!(err.contains("exists") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before, "not overwritten");

    let second = run(&["config", "init", "--output", output, "--force"], b"").ok();
    assert_ne!(second.trim(), token);
    check(second.trim());

    let missing = dir.path().join("no/such/dir/x.toml");
    let err = run(
        &["config", "init", "--output", missing.to_str().unwrap()],
        b"",
    )
    .failed(1);
    assert!(err.contains("cannot write"), "{err}");
    assert!(!Path::new(&missing).exists());
}

#[test]
fn completions_and_help_with_examples() {
    let bash = run(&["completions", "bash"], b"").ok();
    for word in [
        "nitro-wallet",
        "keys",
        "typed-data",
        "authorization",
        "--json",
    ] {
        assert!(bash.contains(word), "bash completions lack {word}");
    }
    for shell in ["zsh", "fish", "powershell", "elvish"] {
        let script = run(&["completions", shell], b"").ok();
        assert!(script.contains("typed-data"), "{shell}: {script}");
    }
    let err = run(&["completions", "tcsh"], b"").failed(2);
    assert!(err.contains("bash"), "names the shells there are: {err}");

    let help = run(&["--help"], b"").ok();
    assert!(
        help.contains("Examples:")
            && help.contains("Exit status:")
            && help.contains("3  the server"),
        "{help}"
    );
    let help = run(&["sign", "--help"], b"").ok();
    assert!(
        help.contains("nitro-wallet sign message 0xADDRESS") && help.contains("typed-data"),
        "{help}"
    );
    let help = run(&["keys", "--help"], b"").ok();
    assert!(help.contains("nitro-wallet keys list --json"), "{help}");
}

#[test]
fn bench_open_loop_keeps_its_schedule() {
    let dev = DevServer::start();
    let open_loop = |rate: &str, requests: &str, concurrency: &str| {
        let args = [
            "bench",
            "--rate",
            rate,
            "--requests",
            requests,
            "--concurrency",
            concurrency,
            "--warmup",
            "0",
            "--limit-duration",
            "0",
            "--json",
        ];
        json(&cli(&dev, &args).ok())
    };
    // 150 requests at 300/s: the last one is due 149/300 s after the first, so the run cannot
    // be shorter than that, whatever the machine; every answer is checked by the generator.
    let out = open_loop("300", "150", "64");
    assert_eq!(out["requests"], 150, "{out}");
    assert_eq!(out["ok"], 150, "{out}");
    assert_eq!(out["errors"], 0, "{out}");
    let seconds = out["seconds"].as_f64().unwrap();
    assert!(seconds >= 149.0 / 300.0, "{out}");
    let p50 = out["latency"]["p50_ms"].as_f64().unwrap();
    assert!(
        p50 > 0.0 && p50 <= out["latency"]["max_ms"].as_f64().unwrap(),
        "{out}"
    );
    assert!(out["params"]["load"]
        .as_str()
        .unwrap()
        .starts_with("open loop, 300 requests/s"));

    // Faster than two slots can serve: requests wait for a free slot, late, and still go.
    let out = open_loop("20000", "300", "2");
    assert_eq!(
        (&out["ok"], &out["errors"]),
        (&300.into(), &0.into()),
        "{out}"
    );
}
