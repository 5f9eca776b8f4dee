//! The HTTPS client of the client commands, and the errors it turns into advice: what went
//! wrong, then what to do about it.

use super::{ClientArgs, Exit, Failure};
use std::error::Error as StdError;

/// A client of one server with one token.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    dev_dir: std::path::PathBuf,
}

/// A successful answer: the body as the server sent it (what `--json` prints) and parsed.
pub(crate) struct Reply {
    pub(crate) text: String,
    pub(crate) json: serde_json::Value,
}

impl Reply {
    /// Prints the server's JSON unchanged with `--json`, else what `human` makes of it.
    pub(crate) fn print(&self, json: bool, human: impl FnOnce(&serde_json::Value) -> String) {
        if json {
            println!("{}", self.text.trim_end());
        } else {
            print!("{}", human(&self.json));
        }
    }
}

/// How long one request may take.
const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

impl Client {
    /// The server, token and trusted certificate `args` name, or dev mode's.
    pub(crate) fn new(args: &ClientArgs) -> crate::Result<Client> {
        let token = match (&args.token, &args.token_file) {
            (Some(t), _) => t.trim().to_owned(),
            (None, Some(f)) => read_token(f)?,
            (None, None) => {
                let dev_token = args.dev_dir.join("api-token");
                read_token(&dev_token).map_err(|_| {
                    Failure::new(
                        Exit::Failed,
                        format!(
                            "no API token: none given, and no {} to take it from.\n  Is \
                             `nitro-wallet dev` running (with --dev-dir {})? Start it with \
                             `cargo run --release -- dev`, or pass --token-file or set \
                             NITRO_WALLET_TOKEN",
                            dev_token.display(),
                            args.dev_dir.display()
                        ),
                    )
                })?
            }
        };
        let mut builder = reqwest::Client::builder().timeout(TIMEOUT);
        let ca = args.ca_cert.clone().or_else(|| {
            let dev = args.dev_dir.join("tls").join("cert.pem");
            dev.is_file().then_some(dev)
        });
        if let Some(path) = ca {
            let pem = std::fs::read(&path)
                .map_err(|e| format!("cannot read the CA certificate {}: {e}", path.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("{} is not a PEM certificate: {e}", path.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        Ok(Client {
            http: builder.build()?,
            base: args.url.trim_end_matches('/').to_owned(),
            token,
            dev_dir: args.dev_dir.clone(),
        })
    }

    /// Sends a request; a refusal or a failure to reach the server becomes a [`Failure`] that
    /// says what to do.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> crate::Result<Reply> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let response = req
            .send()
            .await
            .map_err(|e| unreachable(&self.base, &self.dev_dir, &e))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| unreachable(&self.base, &self.dev_dir, &e))?;
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        if status.is_success() {
            return Ok(Reply { text, json });
        }
        Err(Failure::new(Exit::Failed, refusal(status, &json, &self.dev_dir)).into())
    }
}

fn read_token(path: &std::path::Path) -> crate::Result<String> {
    let t = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    Ok(t.trim().to_owned())
}

/// Why the server could not be reached, and what to check.
fn unreachable(base: &str, dev_dir: &std::path::Path, e: &reqwest::Error) -> Failure {
    let mut refused = false;
    let mut tls = None;
    let mut chain = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = next {
        let io = err.downcast_ref::<std::io::Error>();
        refused |= io.is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        tls = tls.or_else(|| err.downcast_ref::<rustls::Error>().cloned());
        // An io::Error's `source` skips the error it wraps (a TLS error, say): step into it.
        next = match io.and_then(std::io::Error::get_ref) {
            Some(inner) => Some(inner),
            None => {
                chain.push(err.to_string());
                err.source()
            }
        };
    }
    let dev_cert = dev_dir.join("tls").join("cert.pem");
    let message = if refused {
        format!(
            "cannot reach {base}: connection refused. Is `nitro-wallet dev` running? Start it \
             with `cargo run --release -- dev`, or pass --url"
        )
    } else if let Some(tls) = tls {
        use rustls::{CertificateError, Error};
        let advice = match &tls {
            Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
                "the server's certificate is not signed by a certificate this client trusts.\n  \
                 Pass the certificate that signed it with --ca-cert (or NITRO_WALLET_CA_CERT); \
                 for `nitro-wallet dev` it is {}",
                dev_cert.display()
            ),
            Error::InvalidCertificate(CertificateError::NotValidForName)
            | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
                "the server's certificate does not name this host.\n  Use the host name the \
                 certificate was issued for in --url (dev mode's names 127.0.0.1 and localhost)"
                    .to_owned()
            }
            Error::InvalidCertificate(CertificateError::Expired)
            | Error::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
                "the server's certificate has expired.\n  Renew it on the server (a \
                 self-signed one is made again when its cert.pem and key.pem are removed)"
                    .to_owned()
            }
            other => {
                format!("TLS handshake failed: {other}.\n  Is --url the server's https:// URL?")
            }
        };
        format!("cannot reach {base}: {advice}")
    } else if e.is_timeout() {
        format!(
            "no answer from {base} within {} s.\n  The server may be overloaded, or --url may \
             point at something else",
            TIMEOUT.as_secs()
        )
    } else {
        let advice = if base.starts_with("http://") {
            "nitro-wallet serves HTTPS only: use an https:// --url"
        } else {
            "Check --url (a nitro-wallet server's https:// URL) and that the server runs"
        };
        format!("cannot reach {base}: {}.\n  {advice}", chain.join(": "))
    };
    Failure::new(Exit::Unreachable, message)
}

/// The server's error answer, with advice for the refusals a person can fix.
fn refusal(
    status: reqwest::StatusCode,
    body: &serde_json::Value,
    dev_dir: &std::path::Path,
) -> String {
    let Some(error) = body["error"].as_object() else {
        return format!(
            "the server answered {status} without a nitro-wallet error.\n  Is --url a \
             nitro-wallet server?"
        );
    };
    let code = error
        .get("code")
        .and_then(|c| c.as_str())
        .unwrap_or("error");
    let message = error
        .get("message")
        .and_then(|m| m.as_str())
        .unwrap_or("no details");
    let field = error
        .get("field")
        .and_then(|f| f.as_str())
        .map(|f| format!(" (field `{f}`)"))
        .unwrap_or_default();
    let hint = match (status.as_u16(), code) {
        (401, _) => format!(
            "The token was not accepted: pass the right one with --token-file or \
             NITRO_WALLET_TOKEN (`nitro-wallet dev` keeps its token in {})",
            dev_dir.join("api-token").display()
        ),
        (403, "forbidden") => "The token's scopes do not allow this: `nitro-wallet tokens list` \
                               on the server shows them, `nitro-wallet tokens create` makes a \
                               token with the scope needed"
            .to_owned(),
        (403, "policy_denied") => "The key's policy refused it; the policy is shown by \
                                   `nitro-wallet keys show ADDRESS`"
            .to_owned(),
        (404, "key_not_found") => {
            "`nitro-wallet keys list` shows the keys this token may use".to_owned()
        }
        (404, "not_found") => "The server has no such route: is --url a nitro-wallet server of \
                               this version?"
            .to_owned(),
        (429, _) => "Too many requests for this token or server: retry in a moment".to_owned(),
        (503, _) => "The enclave may be restarting: retry in a moment".to_owned(),
        _ => String::new(),
    };
    let mut out = format!("the server refused: {status}: {code}: {message}{field}");
    if !hint.is_empty() {
        out.push_str("\n  ");
        out.push_str(&hint);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::path::Path;

    fn refused(status: u16, body: serde_json::Value) -> String {
        refusal(
            reqwest::StatusCode::from_u16(status).unwrap(),
            &body,
            Path::new("dev"),
        )
    }

    fn error(code: &str, message: &str) -> serde_json::Value {
        serde_json::json!({ "error": { "code": code, "message": message } })
    }

    #[test]
    fn refusals_say_what_to_do() {
        let e = refused(401, error("unauthorized", "invalid bearer token"));
        assert!(
            e.starts_with("the server refused: 401 Unauthorized: unauthorized: invalid bearer")
                && e.contains("--token-file")
                && e.contains("dev/api-token"),
            "{e}"
        );
        let e = refused(
            403,
            error("forbidden", "this token lacks the `sign:message` scope"),
        );
        assert!(
            e.contains("sign:message") && e.contains("tokens list"),
            "{e}"
        );
        let e = refused(403, error("policy_denied", "value above the limit"));
        assert!(e.contains("policy") && e.contains("keys show"), "{e}");
        let e = refused(404, error("key_not_found", "no key with address 0x1"));
        assert!(e.contains("keys list"), "{e}");
        let e = refused(503, error("enclave_unavailable", "retry"));
        assert!(e.contains("retry in a moment"), "{e}");
        let mut body = error("invalid_request", "missing field `nonce`");
        body["error"]["field"] = "nonce".into();
        let e = refused(422, body);
        assert_eq!(
            e,
            "the server refused: 422 Unprocessable Entity: invalid_request: missing field \
             `nonce` (field `nonce`)"
        );
        let e = refused(502, serde_json::Value::Null);
        assert!(
            e.contains("502") && e.contains("Is --url a nitro-wallet server"),
            "{e}"
        );
    }
}
