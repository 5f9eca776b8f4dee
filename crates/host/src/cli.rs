//! Client subcommands for a person at a terminal: `keys …` and `sign …` against a running
//! server (by default the local `nitro-wallet dev`, whose token and certificate it finds in
//! the dev data directory).

use clap::{Args, Subcommand};
use std::{io::Read, path::PathBuf};

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Server URL.
    #[arg(
        long,
        env = "NITRO_WALLET_URL",
        default_value = "https://127.0.0.1:8443",
        global = true
    )]
    pub url: String,
    /// API token (prefer NITRO_WALLET_TOKEN or --token-file: arguments show up in `ps`).
    #[arg(
        long,
        env = "NITRO_WALLET_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// File holding the API token [default: DEV_DIR/api-token].
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// PEM certificate to trust for the server [default: DEV_DIR/tls/cert.pem if present].
    #[arg(long, env = "NITRO_WALLET_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Data directory of `nitro-wallet dev`, for the defaults above.
    #[arg(
        long,
        env = "NITRO_WALLET_DEV_DIR",
        default_value = ".nitro-wallet-dev",
        global = true
    )]
    pub dev_dir: PathBuf,
    /// Print the server's JSON instead of a human summary.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `nitro-wallet keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key inside the enclave.
    Create {
        /// A label for people.
        #[arg(long)]
        label: Option<String>,
    },
    /// Import a private key, read from standard input (never from the command line).
    Import {
        /// A label for people.
        #[arg(long)]
        label: Option<String>,
    },
    /// List keys.
    List,
    /// Show one key.
    Show {
        /// The key's address.
        address: String,
    },
    /// Migrate a key stored by the reference sample's `set_key` (the base64 KMS ciphertext of
    /// the hex key in a Secrets Manager secret). The enclave unwraps it and wraps it again
    /// bound to its address; the plaintext never leaves the enclave, and the secret is left
    /// as it is. The sample's clients keep working: `POST /` with the same `secret_id`.
    ///
    /// Example: nitro-wallet keys migrate --secret-id arn:aws:secretsmanager:…:secret:eth-key-AbCdEf
    Migrate {
        /// Name or ARN of the sample's secret.
        #[arg(long)]
        secret_id: String,
        /// KMS key that encrypted it, when known (KMS finds it in the ciphertext otherwise).
        #[arg(long)]
        legacy_kms_key_id: Option<String>,
        /// A label for people.
        #[arg(long)]
        label: Option<String>,
    },
}

/// `nitro-wallet sign …`
#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// Sign a transaction given as an Ethereum JSON-RPC transaction object.
    Tx {
        /// The signing key's address.
        address: String,
        /// The transaction JSON; `-` or absent reads standard input.
        #[arg(long = "tx", default_value = "-")]
        transaction: String,
    },
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    fn new(args: &ClientArgs) -> crate::Result<Client> {
        let token = match (&args.token, &args.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(f)) => read_token(f)?,
            (None, None) => read_token(&args.dev_dir.join("api-token")).map_err(|_| {
                format!(
                    "no API token: pass --token-file or set NITRO_WALLET_TOKEN (is `nitro-wallet dev` \
                     running? it writes {})",
                    args.dev_dir.join("api-token").display()
                )
            })?,
        };
        let mut builder = reqwest::Client::builder().timeout(std::time::Duration::from_secs(30));
        let ca = args.ca_cert.clone().or_else(|| {
            let dev = args.dev_dir.join("tls").join("cert.pem");
            dev.is_file().then_some(dev)
        });
        if let Some(path) = ca {
            let pem = std::fs::read(&path)
                .map_err(|e| format!("cannot read the CA certificate {}: {e}", path.display()))?;
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem)?);
        }
        Ok(Client {
            http: builder.build()?,
            base: args.url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> crate::Result<serde_json::Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let response = req.send().await.map_err(|e| {
            format!(
                "cannot reach {}: {e}\n  is the server running? start one locally with `cargo run --release -- dev`",
                self.base
            )
        })?;
        let status = response.status();
        let json: serde_json::Value = response.json().await.unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            return Ok(json);
        }
        let code = json["error"]["code"].as_str().unwrap_or("error");
        let message = json["error"]["message"].as_str().unwrap_or("no details");
        let hint = match status.as_u16() {
            401 => "\n  check the token (--token-file, NITRO_WALLET_TOKEN)",
            403 if code == "forbidden" => {
                "\n  the token's scopes do not allow this (`nitro-wallet tokens list` on the server)"
            }
            429 if code == "rate_limited" => "\n  the token's rate limit is reached; retry later",
            404 if code == "key_not_found" => "\n  `nitro-wallet keys list` shows the keys",
            503 => "\n  the enclave may be restarting; retry in a moment",
            _ => "",
        };
        Err(format!("{status}: {code}: {message}{hint}").into())
    }
}

fn read_token(path: &std::path::Path) -> crate::Result<String> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(t.trim().to_owned())
}

/// Runs `keys …`.
///
/// # Errors
/// When the server is unreachable or refuses.
pub async fn keys(args: &ClientArgs, command: KeysCommand) -> crate::Result<()> {
    let client = Client::new(args)?;
    use reqwest::Method;
    let out = match command {
        KeysCommand::Create { label } => {
            client
                .send(
                    Method::POST,
                    "/v1/keys",
                    Some(serde_json::json!({ "label": label })),
                )
                .await?
        }
        KeysCommand::Import { label } => {
            let mut secret = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut secret)?;
            let body = serde_json::json!({ "private_key": secret.trim(), "label": label });
            client
                .send(Method::POST, "/v1/keys/import", Some(body))
                .await?
        }
        KeysCommand::Migrate {
            secret_id,
            legacy_kms_key_id,
            label,
        } => {
            let body = serde_json::json!({
                "secret_id": secret_id,
                "legacy_kms_key_id": legacy_kms_key_id,
                "label": label,
            });
            client
                .send(Method::POST, "/v1/keys/migrate", Some(body))
                .await?
        }
        KeysCommand::List => client.send(Method::GET, "/v1/keys", None).await?,
        KeysCommand::Show { address } => {
            client
                .send(Method::GET, &format!("/v1/keys/{address}"), None)
                .await?
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else if let Some(keys) = out["keys"].as_array() {
        println!("{:<44} {:<22} LABEL", "ADDRESS", "CREATED");
        for k in keys {
            println!(
                "{:<44} {:<22} {}",
                s(&k["address"]),
                s(&k["created_at"]),
                s(&k["label"])
            );
        }
        println!("{} key(s)", keys.len());
    } else {
        println!("address:    {}", s(&out["address"]));
        println!("label:      {}", s(&out["label"]));
        println!("created_at: {}", s(&out["created_at"]));
        println!("kms_key_id: {}", s(&out["kms_key_id"]));
        if let Some(from) = out.get("migrated_from") {
            println!("migrated_from: {}", s(&from["secret_arn"]));
        }
    }
    Ok(())
}

/// Runs `sign …`.
///
/// # Errors
/// When the input is not JSON, or the server is unreachable or refuses.
pub async fn sign(args: &ClientArgs, command: SignCommand) -> crate::Result<()> {
    let client = Client::new(args)?;
    let SignCommand::Tx {
        address,
        transaction,
    } = command;
    let text = if transaction == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        transaction
    };
    let tx: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("the transaction is not valid JSON: {e}"))?;
    let out = client
        .send(
            reqwest::Method::POST,
            &format!("/v1/keys/{address}/sign/transaction"),
            Some(tx),
        )
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("raw_transaction:  {}", s(&out["raw_transaction"]));
        println!("transaction_hash: {}", s(&out["transaction_hash"]));
        println!("from:             {}", s(&out["from"]));
    }
    Ok(())
}

fn s(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `nitro-wallet attestation …`
#[derive(Debug, Subcommand)]
pub enum AttestationCommand {
    /// Verify an attestation document and print what it attests. SOURCE is a file holding the
    /// raw document, `-` for standard input, or a server URL (https://…), from which a fresh
    /// document is fetched with a random nonce that must come back in it.
    ///
    /// Example: nitro-wallet attestation verify https://127.0.0.1:8443 --root
    /// .nitro-wallet-dev/attestation/dev-ca-root.pem
    Verify {
        /// File, `-`, or server URL.
        source: String,
        /// Verify at this time (RFC 3339) instead of now; real documents expire within hours.
        #[arg(long)]
        at: Option<String>,
        /// Trust anchor (PEM) instead of the embedded AWS Nitro Enclaves Root-G1.
        #[arg(long)]
        root: Option<PathBuf>,
        /// Expected PCR0 (hex), the enclave image measurement.
        #[arg(long)]
        expect_pcr0: Option<String>,
        /// Expected nonce (hex).
        #[arg(long)]
        nonce: Option<String>,
        /// Accept a debug-mode enclave (PCR0–2 zero), which proves nothing about its code.
        #[arg(long)]
        allow_debug: bool,
    },
    /// Print the PCR0 a KMS key policy must name for an enclave binary as dev mode measures it
    /// (SHA-384 of the file; a real EIF's PCR0 comes from `nitro-cli build-enclave`).
    Pcrs {
        /// The enclave binary [default: this executable, which dev mode runs as the enclave].
        #[arg(long)]
        binary: Option<PathBuf>,
    },
}

/// Runs `attestation …`.
///
/// # Errors
/// When the document cannot be obtained or does not verify (the reason is the message).
pub async fn attestation(args: &ClientArgs, command: AttestationCommand) -> crate::Result<()> {
    use nitro_wallet_attestation::{verify, VerifyOptions};
    match command {
        AttestationCommand::Pcrs { binary } => {
            let binary = match binary {
                Some(b) => b,
                None => std::env::current_exe()?,
            };
            let pcr0 = nitro_wallet_attestation::pcr0_of_file(&binary)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "binary": binary, "pcr0": hex::encode(pcr0) })
                );
            } else {
                println!("binary: {}", binary.display());
                println!("PCR0:   {}", hex::encode(pcr0));
            }
            Ok(())
        }
        AttestationCommand::Verify {
            source,
            at,
            root,
            expect_pcr0,
            nonce,
            allow_debug,
        } => {
            let mut nonce = nonce
                .map(|n| hex::decode(n.trim_start_matches("0x")))
                .transpose()
                .map_err(|_| "--nonce must be hex")?;
            let document = if source.starts_with("https://") || source.starts_with("http://") {
                let fresh = nonce.clone().map_or_else(
                    || {
                        let mut n = vec![0u8; 32];
                        getrandom::fill(&mut n).map(|()| n)
                    },
                    Ok,
                )?;
                let client = Client::new(&ClientArgs {
                    url: source.clone(),
                    ..args.clone()
                })?;
                let path = format!("/v1/attestation?nonce={}", hex::encode(&fresh));
                let out = client.send(reqwest::Method::GET, &path, None).await?;
                nonce = Some(fresh);
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(out["document"].as_str().unwrap_or_default())
                    .map_err(|_| "the server's document is not base64")?
            } else if source == "-" {
                let mut bytes = Vec::new();
                std::io::stdin().read_to_end(&mut bytes)?;
                bytes
            } else {
                std::fs::read(&source).map_err(|e| format!("cannot read {source}: {e}"))?
            };
            let mut options = VerifyOptions::default();
            if let Some(root) = root {
                let pem = std::fs::read_to_string(&root)
                    .map_err(|e| format!("cannot read {}: {e}", root.display()))?;
                let der = pem_to_der(&pem)
                    .ok_or_else(|| format!("{} holds no PEM certificate", root.display()))?;
                options = VerifyOptions::with_root(der);
            }
            if let Some(at) = at {
                let t = time::OffsetDateTime::parse(
                    &at,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| format!("--at must be RFC 3339: {e}"))?;
                options = options.at(t.into());
            }
            if let Some(p) = expect_pcr0 {
                options = options.expect_pcr(
                    0,
                    hex::decode(p.trim_start_matches("0x"))
                        .map_err(|_| "--expect-pcr0 must be hex")?,
                );
            }
            if let Some(n) = nonce {
                options = options.expect_nonce(n);
            }
            options = options.allow_debug(allow_debug);
            let verified = verify(&document, &options)
                .map_err(|e| format!("attestation document REJECTED: {e}"))?;
            print_document(&verified, args.json);
            Ok(())
        }
    }
}

/// The DER of the first certificate in `pem`.
pub(crate) fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .filter(|d| !d.is_empty())
}

fn print_document(v: &nitro_wallet_attestation::VerifiedDocument, json: bool) {
    let d = &v.document;
    let timestamp = i64::try_from(d.timestamp / 1000)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let pcrs: std::collections::BTreeMap<String, String> = d
        .pcrs
        .iter()
        .filter(|(i, v)| **i <= 2 || v.iter().any(|b| *b != 0))
        .map(|(i, v)| (format!("PCR{i}"), hex::encode(v)))
        .collect();
    let opt = |b: &Option<Vec<u8>>| b.as_ref().map(hex::encode);
    if json {
        let out = serde_json::json!({
            "verified": true, "module_id": d.module_id, "timestamp": timestamp, "debug": v.debug,
            "pcrs": pcrs, "public_key": opt(&d.public_key), "user_data": opt(&d.user_data), "nonce": opt(&d.nonce),
        });
        println!("{out}");
        return;
    }
    println!("attestation document VERIFIED");
    println!("module_id:  {}", d.module_id);
    println!("timestamp:  {timestamp}");
    println!(
        "debug mode: {}",
        if v.debug {
            "YES (proves nothing about the code)"
        } else {
            "no"
        }
    );
    for (name, value) in &pcrs {
        println!("{name:<11} {value}");
    }
    let show = |b: &Option<Vec<u8>>| {
        b.as_ref().map_or_else(
            || "-".to_owned(),
            |b| format!("{} ({} bytes)", hex::encode(b), b.len()),
        )
    };
    println!("public_key: {}", show(&d.public_key));
    println!("user_data:  {}", show(&d.user_data));
    println!("nonce:      {}", show(&d.nonce));
}
