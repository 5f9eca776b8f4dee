//! The emulator's wire protocol seen from a raw HTTP client: errors a well-behaved SDK never
//! provokes.

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::start_in;

const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKIDTESTONLY/20250101/us-east-1/kms/aws4_request, \
                    SignedHeaders=host;x-amz-date, Signature=00";

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) json: Value,
}

pub(crate) async fn post(endpoint: &str, target: Option<&str>, auth: bool, body: &[u8]) -> Reply {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         Content-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(target) = target {
        request.push_str(&format!("X-Amz-Target: {target}\r\n"));
    }
    if auth {
        request.push_str(&format!("Authorization: {AUTH}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write head");
    // A peer refusing a large body may close early; that is fine.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response.split_once("\r\n\r\n").expect("http response");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    Reply {
        status,
        head: head.to_ascii_lowercase(),
        json: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

pub(crate) fn assert_error(reply: &Reply, status: u16, code: &str) {
    assert_eq!(reply.status, status, "{}", reply.json);
    assert_eq!(reply.json["__type"], code, "{}", reply.json);
    assert!(reply.json["message"].is_string(), "{}", reply.json);
    assert!(reply
        .head
        .contains(&format!("x-amzn-errortype: {}", code.to_ascii_lowercase())));
}

#[tokio::test]
async fn protocol_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = start_in(dir.path()).await;
    let ep = server.endpoint.as_str();
    let encrypt = Some("TrentService.Encrypt");
    let ok_body = br#"{"KeyId":"alias/nitro-wallet","Plaintext":"aGk="}"#;

    let reply = post(ep, encrypt, true, ok_body).await;
    assert_eq!(reply.status, 200, "{}", reply.json);
    assert!(reply
        .head
        .contains("content-type: application/x-amz-json-1.1"));
    assert_eq!(reply.json["KeyId"], server.key_arn);
    assert_eq!(reply.json["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");

    assert_error(
        &post(ep, encrypt, false, ok_body).await,
        400,
        "MissingAuthenticationTokenException",
    );
    assert_error(
        &post(ep, None, true, ok_body).await,
        400,
        "UnknownOperationException",
    );
    assert_error(
        &post(ep, Some("TrentService.ScheduleKeyDeletion"), true, b"{}").await,
        400,
        "UnknownOperationException",
    );
    assert_error(
        &post(ep, encrypt, true, b"{not json").await,
        400,
        "SerializationException",
    );
    assert_error(
        &post(ep, encrypt, true, b"[]").await,
        400,
        "SerializationException",
    );
    assert_error(
        &post(
            ep,
            encrypt,
            true,
            br#"{"KeyId":"alias/nitro-wallet","Plaintext":"***"}"#,
        )
        .await,
        400,
        "SerializationException",
    );
    assert_error(
        &post(ep, encrypt, true, br#"{"KeyId":"alias/nitro-wallet"}"#).await,
        400,
        "ValidationException",
    );
    assert_error(
        &post(
            ep,
            encrypt,
            true,
            br#"{"KeyId":"alias/nitro-wallet","Plaintext":""}"#,
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &post(
            ep,
            Some("TrentService.Decrypt"),
            true,
            br#"{"CiphertextBlob":"AAAA"}"#,
        )
        .await,
        400,
        "InvalidCiphertextException",
    );
    assert_error(
        &post(
            ep,
            Some("TrentService.GenerateRandom"),
            true,
            br#"{"NumberOfBytes":2000}"#,
        )
        .await,
        400,
        "ValidationException",
    );
    assert_error(
        &post(
            ep,
            Some("TrentService.Decrypt"),
            true,
            br#"{"CiphertextBlob":"AAAA","Recipient":{}}"#,
        )
        .await,
        400,
        "ValidationException",
    );
    // Body limit.
    let big = format!(
        r#"{{"KeyId":"alias/nitro-wallet","Plaintext":"{}"}}"#,
        "A".repeat(100_000)
    );
    let reply = post(ep, encrypt, true, big.as_bytes()).await;
    assert_eq!(reply.status, 413, "{}", reply.json);
}
