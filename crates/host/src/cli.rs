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
