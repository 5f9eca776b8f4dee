//! Where requests go and how each answer is checked.
//!
//! - `rest`: nitro-wallet's `/v1/keys/{address}/sign/…` routes;
//! - `rpc`: nitro-wallet's `POST /rpc` (`eth_signTransaction`, `personal_sign`,
//!   `eth_signTypedData_v4`) with the same token;
//! - `node`: any Ethereum JSON-RPC endpoint with unlocked accounts (anvil), the same methods,
//!   no token, accounts from `--from` or `eth_accounts`.

use crate::{ops::Op, BenchArgs, Error, HttpVersion, TargetKind};
use futures::{StreamExt, TryStreamExt};
use reqwest::{header, Client, StatusCode, Version};

/// What every request needs; shared by all tasks of a run.
#[derive(Debug)]
pub(crate) struct Target {
    kind: TargetKind,
    clients: Vec<Client>,
    /// `{base}/v1/keys` for `rest`, the JSON-RPC URL otherwise.
    url: String,
    authorization: Option<header::HeaderValue>,
    version: Version,
    /// The signing accounts, requests spread over them round robin.
    pub(crate) keys: Vec<String>,
}

/// Why a request failed: the label it is counted under (`503`, `transport`, `invalid`…) and a
/// description for the first-error line.
#[derive(Debug)]
pub(crate) struct Failure {
    /// Counted under this label.
    pub(crate) label: String,
    /// What happened.
    pub(crate) message: String,
}

impl Failure {
    fn new(label: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            label: label.into(),
            message: message.into(),
        }
    }
}

impl Target {
    /// Builds the clients and finds (or creates) the signing keys.
    ///
    /// # Errors
    /// When the token or certificate cannot be read, or keys cannot be listed or created.
    pub(crate) async fn connect(args: &BenchArgs) -> Result<Target, Error> {
        let version = match args.http {
            HttpVersion::Http1 => Version::HTTP_11,
            HttpVersion::Http2 => Version::HTTP_2,
        };
        let authorization = match args.target {
            TargetKind::Node => None,
            TargetKind::Rest | TargetKind::Rpc => {
                let mut value =
                    header::HeaderValue::from_str(&format!("Bearer {}", args.token()?))?;
                value.set_sensitive(true);
                Some(value)
            }
        };
        let ca = match args.ca_cert() {
            Some(path) => Some(reqwest::Certificate::from_pem(
                &std::fs::read(&path).map_err(|e| {
                    format!("cannot read the CA certificate {}: {e}", path.display())
                })?,
            )?),
            None => None,
        };
        let plain_http = args.url.starts_with("http://");
        let clients = (0..args.connections.max(1))
            .map(|_| {
                let mut builder = Client::builder()
                    .use_rustls_tls()
                    .timeout(args.timeout.0)
                    .pool_max_idle_per_host(args.concurrency.max(1))
                    .tcp_nodelay(true);
                if let Some(ca) = &ca {
                    builder = builder.add_root_certificate(ca.clone());
                }
                builder = match args.http {
                    HttpVersion::Http1 => builder.http1_only(),
                    // Over TLS, ALPN picks HTTP/2; in the clear there is nothing to negotiate
                    // with, so speak it from the first byte.
                    HttpVersion::Http2 if plain_http => builder.http2_prior_knowledge(),
                    HttpVersion::Http2 => builder,
                };
                builder.build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let base = args.url.trim_end_matches('/');
        let url = match args.target {
            TargetKind::Rest => format!("{base}/v1/keys"),
            TargetKind::Rpc => format!("{base}/rpc"),
            TargetKind::Node => base.to_owned(),
        };
        let mut target = Target {
            kind: args.target,
            clients,
            url,
            authorization,
            version,
            keys: Vec::new(),
        };
        target.keys = match args.target {
            TargetKind::Rest | TargetKind::Rpc => {
                target
                    .nitro_wallet_keys(&format!("{base}/v1/keys"), args.keys)
                    .await?
            }
            TargetKind::Node if !args.from.is_empty() => args.from.clone(),
            TargetKind::Node => target.node_accounts(args.keys).await?,
        };
        if target.keys.is_empty() {
            return Err("no signing account: pass --from or --keys".into());
        }
        Ok(target)
    }

    /// The `count` first keys the token may use, creating the missing ones (a few at a time).
    async fn nitro_wallet_keys(&self, keys_url: &str, count: usize) -> Result<Vec<String>, Error> {
        let listed = self
            .admin(self.clients[0].get(keys_url), StatusCode::OK)
            .await?;
        let mut keys: Vec<String> = listed["keys"]
            .as_array()
            .or_else(|| listed.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|k| k["address"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        keys.truncate(count);
        let missing = count - keys.len();
        if missing > 0 {
            eprintln!("creating {missing} key(s)…");
        }
        // Sixteen creations in flight: quick, without flooding the KMS.
        let created: Vec<String> = futures::stream::iter(0..missing)
            .map(|_| async {
                let v = self
                    .admin(
                        self.clients[0]
                            .post(keys_url)
                            .json(&serde_json::json!({ "label": "bench" })),
                        StatusCode::CREATED,
                    )
                    .await?;
                v["address"].as_str().map(str::to_owned).ok_or_else(|| {
                    Error::from(format!("POST /v1/keys answered without an address: {v}"))
                })
            })
            .buffer_unordered(16)
            .try_collect()
            .await?;
        keys.extend(created);
        Ok(keys)
    }

    /// A management call expecting `expected`, with the token.
    async fn admin(
        &self,
        request: reqwest::RequestBuilder,
        expected: StatusCode,
    ) -> Result<serde_json::Value, Error> {
        let request = match &self.authorization {
            Some(a) => request.header(header::AUTHORIZATION, a.clone()),
            None => request,
        };
        let response = request.send().await?;
        let status = response.status();
        let body = response.text().await?;
        if status != expected {
            return Err(format!("{} answered {status}: {body}", self.url).into());
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// The node's unlocked accounts (`eth_accounts`), the first `count`.
    async fn node_accounts(&self, count: usize) -> Result<Vec<String>, Error> {
        let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_accounts", "params": [] });
        let v = self
            .admin(self.clients[0].post(&self.url).json(&body), StatusCode::OK)
            .await?;
        Ok(v["result"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .take(count)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Sends request number `seq` (operation `op`) and checks the answer.
    pub(crate) async fn send(&self, seq: u64, op: Op) -> Result<(), Failure> {
        let key_index = usize::try_from(seq % self.keys.len() as u64).unwrap_or(0);
        let key = &self.keys[key_index];
        let client = &self.clients[key_index % self.clients.len()];
        let (url, body) = match self.kind {
            TargetKind::Rest => {
                let route = match op {
                    Op::Eip1559 | Op::Legacy => "transaction",
                    Op::Message => "message",
                    Op::TypedData => "typed-data",
                };
                let body = match op {
                    Op::Message => serde_json::json!({ "message": op.payload(seq, None) }),
                    _ => op.payload(seq, None),
                };
                (format!("{}/{key}/sign/{route}", self.url), body)
            }
            TargetKind::Rpc | TargetKind::Node => {
                let from = Some(key.as_str());
                let (method, params) = match op {
                    Op::Eip1559 | Op::Legacy => (
                        "eth_signTransaction",
                        serde_json::json!([op.payload(seq, from)]),
                    ),
                    Op::Message => (
                        "personal_sign",
                        serde_json::json!([hex_utf8(&op.payload(seq, None)), key]),
                    ),
                    Op::TypedData => (
                        "eth_signTypedData_v4",
                        serde_json::json!([key, op.payload(seq, None)]),
                    ),
                };
                let body = serde_json::json!({
                    "jsonrpc": "2.0", "id": seq, "method": method, "params": params,
                });
                (self.url.clone(), body)
            }
        };
        let mut request = client
            .post(url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(a) = &self.authorization {
            request = request.header(header::AUTHORIZATION, a.clone());
        }
        let response = request.send().await.map_err(|e| {
            let label = if e.is_timeout() {
                "timeout"
            } else {
                "transport"
            };
            Failure::new(label, format!("request failed: {e}"))
        })?;
        let status = response.status();
        let version = response.version();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::new("transport", format!("reading the body failed: {e}")))?;
        let text = || {
            String::from_utf8_lossy(&bytes)
                .chars()
                .take(300)
                .collect::<String>()
        };
        if status != StatusCode::OK {
            return Err(Failure::new(
                status.as_str(),
                format!("status {status}: {}", text()),
            ));
        }
        if version != self.version {
            return Err(Failure::new(
                "invalid",
                format!("answered over {version:?}, expected {:?}", self.version),
            ));
        }
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Failure::new("invalid", format!("reply is not JSON: {e}")))?;
        let ok = match self.kind {
            TargetKind::Rest if op.is_transaction() => {
                is_hex(&value["raw_transaction"])
                    && value["from"]
                        .as_str()
                        .is_some_and(|f| f.eq_ignore_ascii_case(key))
            }
            TargetKind::Rest => is_hex(&value["signature"]),
            TargetKind::Rpc | TargetKind::Node => {
                if value.get("error").is_some() {
                    return Err(Failure::new(
                        "rpc-error",
                        format!("JSON-RPC error: {}", text()),
                    ));
                }
                is_hex(&value["result"])
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Failure::new(
                "invalid",
                format!("reply lacks a signature from {key}: {}", text()),
            ))
        }
    }

    /// `rest`, `rpc` or `node`, with the URL, for reports.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.kind.name(), self.url)
    }
}

fn is_hex(v: &serde_json::Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() > 2 && s.starts_with("0x"))
}

/// `0x`-hex of a JSON string's UTF-8 bytes, as `personal_sign` takes messages.
fn hex_utf8(v: &serde_json::Value) -> String {
    let s = v.as_str().unwrap_or_default();
    let mut out = String::with_capacity(2 + 2 * s.len());
    out.push_str("0x");
    for b in s.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}
