//! The upstream Ethereum node behind `POST /rpc`: a JSON-RPC client over HTTP(S).
//!
//! `eth_sendTransaction` asks it for the chain id, nonce, gas and fees and sends the signed
//! transaction to it; every JSON-RPC method the service does not answer itself is forwarded to
//! it byte for byte. Every call has a time limit, redirects are not followed, and a response is
//! read up to [`MAX_RESPONSE_BYTES`]. The URL may carry a provider's API key, so it is never
//! logged or put in an error: errors name the node by scheme, host and port at most.

use serde_json::{value::RawValue, Value};
use std::time::Duration;

/// Largest upstream response read (a big `eth_getLogs` answer fits; anything larger is an
/// error rather than unbounded memory).
pub const MAX_RESPONSE_BYTES: usize = 32 << 20;

/// A configured upstream node.
pub struct Upstream {
    http: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The path and query may hold an API key.
        f.debug_struct("Upstream")
            .field("node", &self.display_name())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a call to the upstream node failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No answer within the time limit.
    #[error("the upstream node did not answer within {0}s")]
    Timeout(u64),
    /// The connection could not be made or broke.
    #[error("cannot reach the upstream node")]
    Unreachable,
    /// The answer was not a JSON-RPC response (HTTP status given).
    #[error("the upstream node answered HTTP {0} without a JSON-RPC response")]
    BadResponse(u16),
    /// The answer exceeded [`MAX_RESPONSE_BYTES`].
    #[error("the upstream node's answer exceeds {} MiB", MAX_RESPONSE_BYTES >> 20)]
    TooLarge,
    /// The node answered with a JSON-RPC error object (`{code, message, data?}`), kept as is.
    #[error("the upstream node refused the call: {}", .0.get("message").and_then(Value::as_str).unwrap_or("(no message)"))]
    Rpc(Value),
}

impl Upstream {
    /// A client for the node at `url` (already validated by the configuration).
    ///
    /// # Errors
    /// When the URL does not parse or the HTTP client cannot be built.
    pub fn new(url: &str, timeout: Duration) -> crate::Result<Upstream> {
        let url = reqwest::Url::parse(url).map_err(|e| format!("rpc.upstream: {e}"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("nitro-wallet/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Upstream { http, url, timeout })
    }

    /// `scheme://host:port` of the node: what may be logged.
    pub fn display_name(&self) -> String {
        let port = self
            .url
            .port_or_known_default()
            .map(|p| format!(":{p}"))
            .unwrap_or_default();
        format!(
            "{}://{}{port}",
            self.url.scheme(),
            self.url.host_str().unwrap_or("?")
        )
    }

    /// Posts one JSON-RPC request (or notification) as given and returns the node's answer
    /// as it is, once checked to be JSON (an empty body is `None`: the answer to a
    /// notification).
    ///
    /// # Errors
    /// Transport failures, a non-JSON answer, an answer over the size limit.
    pub async fn forward(&self, request: &[u8]) -> Result<Option<Box<RawValue>>, UpstreamError> {
        let response = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(request.to_vec())
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        let status = response.status().as_u16();
        let body = self.read_limited(response).await?;
        if body.iter().all(u8::is_ascii_whitespace) && (200..300).contains(&status) {
            return Ok(None);
        }
        // A JSON answer is passed on whatever the HTTP status (providers answer rate limits
        // with 429 and a JSON-RPC error body); anything else is an error.
        serde_json::from_slice::<Box<RawValue>>(&body)
            .ok()
            .filter(|raw| raw.get().starts_with('{'))
            .map(Some)
            .ok_or(UpstreamError::BadResponse(status))
    }

    /// Calls `method` with `params` and returns its `result`.
    ///
    /// # Errors
    /// [`UpstreamError::Rpc`] with the node's error object when it answers with an error;
    /// transport and format errors otherwise.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, UpstreamError> {
        let request = serde_json::json!({
            "jsonrpc": "2.0", "id": 1, "method": method, "params": params,
        });
        let body = serde_json::to_vec(&request).map_err(|_| UpstreamError::BadResponse(0))?;
        let raw = self
            .forward(&body)
            .await?
            .ok_or(UpstreamError::BadResponse(200))?;
        let mut answer: serde_json::Map<String, Value> =
            serde_json::from_str(raw.get()).map_err(|_| UpstreamError::BadResponse(200))?;
        if let Some(error) = answer.remove("error") {
            return Err(UpstreamError::Rpc(error));
        }
        answer
            .remove("result")
            .ok_or(UpstreamError::BadResponse(200))
    }

    async fn read_limited(
        &self,
        mut response: reqwest::Response,
    ) -> Result<Vec<u8>, UpstreamError> {
        if response
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            return Err(UpstreamError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(&e))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(UpstreamError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn transport_error(&self, e: &reqwest::Error) -> UpstreamError {
        // `without_url`: the URL may hold an API key.
        let shown = reqwest_error_chain(e);
        tracing::warn!(node = %self.display_name(), error = %shown, "upstream node call failed");
        if e.is_timeout() {
            UpstreamError::Timeout(self.timeout.as_secs())
        } else {
            UpstreamError::Unreachable
        }
    }
}

/// The error and its sources, without the request URL.
fn reqwest_error_chain(e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = String::from(if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connect failed"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "request failed"
    });
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        // reqwest's own layers repeat the URL; the I/O causes below them do not.
        if !s_text.contains("://") {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn debug_and_display_name_hide_the_path_and_query() {
        let u = Upstream::new(
            "https://mainnet.example.io/v3/SECRETKEY?key=SECRET2",
            Duration::from_secs(3),
        )
        .unwrap();
        assert_eq!(u.display_name(), "https://mainnet.example.io:443");
        let debug = format!("{u:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
    }

    #[tokio::test]
    async fn an_unreachable_node_is_an_error_without_the_url() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let u = Upstream::new(
            &format!("http://127.0.0.1:{port}/SECRETKEY"),
            Duration::from_secs(2),
        )
        .unwrap();
        let e = u
            .call("eth_chainId", serde_json::json!([]))
            .await
            .unwrap_err();
        assert!(matches!(e, UpstreamError::Unreachable), "{e:?}");
        assert!(!e.to_string().contains("SECRETKEY"));
    }
}
