//! JSON-RPC 2.0 framing: request bodies in, response objects out. Pure (no I/O), so that a fuzz
//! target can call [`parse_rpc_body`] on arbitrary bytes.
//!
//! The rules are the specification's (<https://www.jsonrpc.org/specification>):
//!
//! * a body that is not JSON is a parse error (-32700) with `id: null`;
//! * a body that is an array is a batch: empty, or longer than [`MAX_BATCH`], is a single
//!   invalid-request error (-32600); otherwise each element is judged on its own;
//! * a request is an object with `"jsonrpc": "2.0"`, a string `method`, optional `params`
//!   (array or object; `null` counts as absent) and an optional `id` (string, number or `null`;
//!   absent means a notification, which gets no response). Anything else is -32600, with the
//!   request's `id` when it has a valid one and `null` otherwise; other members are ignored;
//! * ids are echoed byte for byte, and each request's raw JSON is kept so that proxied calls
//!   reach the upstream node exactly as the client wrote them.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{value::RawValue, Value};

/// Most requests in one batch.
pub const MAX_BATCH: usize = 100;

/// Longest method name accepted (longer ones are invalid requests).
pub const MAX_METHOD_LEN: usize = 128;

/// Error codes: JSON-RPC 2.0, EIP-1474 and EIP-1193.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid request object (or an empty or oversized batch).
    pub const INVALID_REQUEST: i64 = -32600;
    /// Not served here and not proxied.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Malformed parameters, including a transaction or message the signer refuses.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal failure, or the upstream node could not be reached.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// EIP-1474 "resource unavailable": the enclave or the key store is unavailable.
    pub const RESOURCE_UNAVAILABLE: i64 = -32002;
    /// EIP-1474 "limit exceeded": the enclave is at its in-flight limit.
    pub const LIMIT_EXCEEDED: i64 = -32005;
    /// EIP-1193 "unauthorized": no valid token, or an account that is not one of our keys.
    pub const UNAUTHORIZED: i64 = 4100;
}

/// A JSON-RPC error object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RpcError {
    /// Numeric code (see [`code`]).
    pub code: i64,
    /// Explanation; never a secret.
    pub message: String,
    /// Details: for errors of the service, `{"code": "<stable snake_case code>", "field"?}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with a code and a message.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// With `data: {"code": stable}`.
    pub fn with_code(mut self, stable: &str) -> Self {
        self.data = Some(serde_json::json!({ "code": stable }));
        self
    }

    /// -32602.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_PARAMS, message).with_code("invalid_params")
    }

    /// -32600.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(code::INVALID_REQUEST, message)
    }

    /// An error object received from the upstream node, passed on as it is (a missing or
    /// non-integer code becomes -32603).
    pub fn from_upstream(error: Value) -> Self {
        let code = error
            .get("code")
            .and_then(Value::as_i64)
            .unwrap_or(code::INTERNAL_ERROR);
        let message = match error.get("message") {
            Some(Value::String(s)) => s.clone(),
            _ => "the upstream node refused the call".to_owned(),
        };
        Self {
            code,
            message,
            data: error.get("data").cloned(),
        }
    }
}

/// One request of a body.
#[derive(Debug)]
pub struct Call {
    /// The id exactly as sent; `None` for a notification.
    pub id: Option<Box<RawValue>>,
    /// Method name.
    pub method: String,
    /// `params` as sent: a JSON array or object; `None` when absent or `null`.
    pub params: Option<Box<RawValue>>,
    /// The whole request object as sent.
    pub raw: Box<RawValue>,
}

/// An element of a body: a request, or the error answering an invalid one.
#[derive(Debug)]
pub enum Entry {
    /// A well-formed request or notification.
    Call(Call),
    /// Not a valid request: answered with this error and `id` (the request's own if it had a
    /// valid one, else `null`).
    Invalid {
        /// Echoed id.
        id: Box<RawValue>,
        /// The -32600 error.
        error: RpcError,
    },
}

/// A parsed body.
#[derive(Debug)]
pub enum RpcBody {
    /// One request (answered with one object, or nothing for a notification).
    Single(Entry),
    /// A batch of 1 to [`MAX_BATCH`] elements (answered with an array of the responses, or
    /// nothing when all are notifications).
    Batch(Vec<Entry>),
}

/// Parses a request body.
///
/// # Errors
/// The error object to answer with `id: null` when the body as a whole is unusable: not JSON
/// (-32700), an empty batch or one over [`MAX_BATCH`] (-32600). Problems of single requests
/// are [`Entry::Invalid`] instead.
pub fn parse_rpc_body(body: &[u8]) -> Result<RpcBody, RpcError> {
    let raw: &RawValue = serde_json::from_slice(body)
        .map_err(|e| RpcError::new(code::PARSE_ERROR, format!("parse error: {e}")))?;
    if !raw.get().starts_with('[') {
        return Ok(RpcBody::Single(parse_entry(raw)));
    }
    let elements: Vec<&RawValue> = serde_json::from_str(raw.get())
        .map_err(|e| RpcError::new(code::PARSE_ERROR, format!("parse error: {e}")))?;
    if elements.is_empty() {
        return Err(RpcError::invalid_request("invalid request: an empty batch"));
    }
    if elements.len() > MAX_BATCH {
        return Err(RpcError::invalid_request(format!(
            "invalid request: a batch of {} requests exceeds the limit of {MAX_BATCH}",
            elements.len()
        )));
    }
    Ok(RpcBody::Batch(
        elements.into_iter().map(parse_entry).collect(),
    ))
}

/// The members of a request object; `id` distinguishes absent from `null`.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default, borrow)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(default, borrow)]
    method: Option<&'a RawValue>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
}

/// `Some` for any present value, `null` included (`#[serde(default)]` gives `None` when
/// absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue>::deserialize(d).map(Some)
}

fn parse_entry(raw: &RawValue) -> Entry {
    let invalid = |id: Option<&RawValue>, why: &str| Entry::Invalid {
        id: id.map_or_else(null_id, RawValue::to_owned),
        error: RpcError::invalid_request(format!("invalid request: {why}")),
    };
    if !raw.get().starts_with('{') {
        return invalid(None, "not a JSON object");
    }
    let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(raw.get()) else {
        return invalid(None, "malformed request object (a duplicate member?)");
    };
    let id = envelope.id;
    if let Some(id) = id {
        let valid = matches!(id.get().as_bytes().first(), Some(b'"' | b'-' | b'0'..=b'9'))
            || id.get() == "null";
        if !valid {
            return invalid(None, "`id` must be a string, a number or null");
        }
    }
    let version: Option<String> = envelope
        .jsonrpc
        .and_then(|v| serde_json::from_str(v.get()).ok());
    if version.as_deref() != Some("2.0") {
        return invalid(id, "`jsonrpc` must be \"2.0\"");
    }
    let method: Option<String> = envelope
        .method
        .and_then(|v| serde_json::from_str(v.get()).ok());
    let Some(method) = method else {
        return invalid(id, "`method` must be a string");
    };
    if method.is_empty() || method.len() > MAX_METHOD_LEN {
        return invalid(
            id,
            &format!("`method` must be 1 to {MAX_METHOD_LEN} bytes long"),
        );
    }
    let params = match envelope.params {
        None => None,
        Some(p) if p.get() == "null" => None,
        Some(p) if p.get().starts_with(['[', '{']) => Some(p.to_owned()),
        Some(_) => return invalid(id, "`params` must be an array or an object"),
    };
    Entry::Call(Call {
        id: id.map(RawValue::to_owned),
        method,
        params,
        raw: raw.to_owned(),
    })
}

/// `null`, as a raw value.
pub fn null_id() -> Box<RawValue> {
    RawValue::NULL.to_owned()
}

/// A response object for `id`: `{"jsonrpc":"2.0","id":…,"result":…}` or `…"error":…}`.
pub fn response(id: &RawValue, outcome: Result<Value, RpcError>) -> Box<RawValue> {
    #[derive(Serialize)]
    struct Success<'a> {
        jsonrpc: &'static str,
        id: &'a RawValue,
        result: &'a Value,
    }
    #[derive(Serialize)]
    struct Failure<'a> {
        jsonrpc: &'static str,
        id: &'a RawValue,
        error: &'a RpcError,
    }
    let encoded = match &outcome {
        Ok(result) => serde_json::value::to_raw_value(&Success {
            jsonrpc: "2.0",
            id,
            result,
        }),
        Err(error) => serde_json::value::to_raw_value(&Failure {
            jsonrpc: "2.0",
            id,
            error,
        }),
    };
    encoded.unwrap_or_else(|_| unreachable_raw())
}

/// The body of a batch response: the responses in an array.
pub fn encode_batch(responses: &[Box<RawValue>]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(2 + responses.iter().map(|r| r.get().len() + 1).sum::<usize>());
    out.push(b'[');
    for (i, r) in responses.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(r.get().as_bytes());
    }
    out.push(b']');
    out
}

/// Serializing a `Value` or a fixed string cannot fail; this is what a failure would answer.
fn unreachable_raw() -> Box<RawValue> {
    const FALLBACK: &str =
        r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}"#;
    // A constant, valid JSON text.
    serde_json::from_str(FALLBACK).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn single(body: &str) -> Entry {
        match parse_rpc_body(body.as_bytes()).unwrap() {
            RpcBody::Single(e) => e,
            RpcBody::Batch(_) => panic!("batch"),
        }
    }

    fn invalid_id(e: &Entry) -> &str {
        match e {
            Entry::Invalid { id, error } => {
                assert_eq!(error.code, code::INVALID_REQUEST);
                id.get()
            }
            Entry::Call(c) => panic!("valid: {c:?}"),
        }
    }

    #[test]
    fn requests_and_notifications() {
        let Entry::Call(c) =
            single(r#" {"jsonrpc":"2.0","id":"a\"b","method":"eth_chainId","params":[]} "#)
        else {
            panic!()
        };
        assert_eq!(c.id.unwrap().get(), r#""a\"b""#);
        assert_eq!(c.method, "eth_chainId");
        assert_eq!(c.params.unwrap().get(), "[]");
        assert!(c.raw.get().starts_with('{'));

        // An explicit null id is a request; no id is a notification.
        let Entry::Call(c) = single(r#"{"jsonrpc":"2.0","id":null,"method":"m"}"#) else {
            panic!()
        };
        assert_eq!(c.id.unwrap().get(), "null");
        let Entry::Call(c) = single(r#"{"jsonrpc":"2.0","method":"m","params":null}"#) else {
            panic!()
        };
        assert!(c.id.is_none() && c.params.is_none());
        // Ids are echoed byte for byte, big numbers included.
        let Entry::Call(c) =
            single(r#"{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"m"}"#)
        else {
            panic!()
        };
        assert_eq!(c.id.unwrap().get(), "123456789012345678901234567890");
    }

    #[test]
    fn invalid_requests() {
        for (body, id) in [
            (r#"{"jsonrpc":"2.0","id":1}"#, "1"),
            (r#"{"jsonrpc":"1.0","id":1,"method":"m"}"#, "1"),
            (r#"{"id":"x","method":"m"}"#, r#""x""#),
            (r#"{"jsonrpc":"2.0","id":1,"method":7}"#, "1"),
            (r#"{"jsonrpc":"2.0","id":1,"method":""}"#, "1"),
            (r#"{"jsonrpc":"2.0","id":1,"method":"m","params":"x"}"#, "1"),
            (r#"{"jsonrpc":"2.0","id":{"a":1},"method":"m"}"#, "null"),
            (r#"{"jsonrpc":"2.0","id":[1],"method":"m"}"#, "null"),
            (r#"{"jsonrpc":"2.0","id":true,"method":"m"}"#, "null"),
            (r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"m"}"#, "null"),
            ("1", "null"),
            (r#""x""#, "null"),
            ("null", "null"),
        ] {
            assert_eq!(invalid_id(&single(body)), id, "{body}");
        }
        let long = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"{}"}}"#,
            "m".repeat(MAX_METHOD_LEN + 1)
        );
        assert_eq!(invalid_id(&single(&long)), "1");
    }

    #[test]
    fn bodies() {
        for body in [
            "",
            "{",
            "[1,",
            "nul",
            "\u{feff}{}",
            "{\"jsonrpc\":\"2.0\"} x",
        ] {
            let e = parse_rpc_body(body.as_bytes()).unwrap_err();
            assert_eq!(e.code, code::PARSE_ERROR, "{body:?}");
        }
        assert_eq!(
            parse_rpc_body(b"[]").unwrap_err().code,
            code::INVALID_REQUEST
        );
        assert_eq!(
            parse_rpc_body(b" [ ] ").unwrap_err().code,
            code::INVALID_REQUEST
        );
        let big = format!("[{}]", vec!["1"; MAX_BATCH + 1].join(","));
        let e = parse_rpc_body(big.as_bytes()).unwrap_err();
        assert!(e.message.contains("limit"), "{e:?}");
        let ok = format!("[{}]", vec!["1"; MAX_BATCH].join(","));
        let RpcBody::Batch(entries) = parse_rpc_body(ok.as_bytes()).unwrap() else {
            panic!()
        };
        assert_eq!(entries.len(), MAX_BATCH);
        let RpcBody::Batch(entries) = parse_rpc_body(
            br#"[{"jsonrpc":"2.0","id":1,"method":"a"},2,{"jsonrpc":"2.0","method":"n"}]"#,
        )
        .unwrap() else {
            panic!()
        };
        assert!(matches!(&entries[0], Entry::Call(c) if c.method == "a"));
        assert_eq!(invalid_id(&entries[1]), "null");
        assert!(matches!(&entries[2], Entry::Call(c) if c.id.is_none()));
    }

    #[test]
    fn responses() {
        let id = RawValue::from_string("\"x\"".into()).unwrap();
        let ok = response(&id, Ok(serde_json::json!("0x1")));
        assert_eq!(ok.get(), r#"{"jsonrpc":"2.0","id":"x","result":"0x1"}"#);
        let err = response(
            &null_id(),
            Err(RpcError::invalid_params("bad").with_code("invalid_params")),
        );
        assert_eq!(
            err.get(),
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"bad","data":{"code":"invalid_params"}}}"#
        );
        assert_eq!(encode_batch(&[ok, err]).first(), Some(&b'['));
        assert_eq!(encode_batch(&[]), b"[]");
        let v: Value =
            serde_json::from_slice(&encode_batch(&[response(&id, Ok(Value::Null))])).unwrap();
        assert_eq!(v[0]["result"], Value::Null);
    }

    #[test]
    fn upstream_errors_pass_through() {
        let e = RpcError::from_upstream(
            serde_json::json!({"code": 3, "message": "execution reverted", "data": "0x08c379a0"}),
        );
        assert_eq!(e.code, 3);
        assert_eq!(e.message, "execution reverted");
        assert_eq!(e.data, Some(serde_json::json!("0x08c379a0")));
        let e = RpcError::from_upstream(serde_json::json!("weird"));
        assert_eq!(e.code, code::INTERNAL_ERROR);
    }
}
