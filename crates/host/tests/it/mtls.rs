//! Mutual TLS against the real `serve`: client certificates from the configured CA stand for
//! the token they are mapped to (its scopes, in REST and JSON-RPC alike), an unmapped one is
//! 401, one from another CA never completes the handshake, and bearer tokens keep working
//! unless certificates are required.

use crate::support::{spawn_serve, wait_until, TOKEN};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use serde_json::json;
use std::{path::Path, process::Child, time::Duration};

/// A key the scoped token may use, and one it may not.
const MINE: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const NOT_MINE: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).unwrap();
        Ca { cert, key }
    }

    /// A client certificate for `common_name` and its key, as one PEM (what
    /// `reqwest::Identity::from_pem` takes).
    fn issue(&self, common_name: &str) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        format!("{}{}", cert.pem(), key.serialize_pem()).into_bytes()
    }
}

/// `serve` (no enclave needed: the routes used read the empty file key store or are refused
/// before any key is looked up) trusting `ca` for client certificates, with the scoped token
/// `svc` mapped to the common name `svc.internal`.
fn serve(dir: &Path, ca: &Ca, required: bool) -> (Child, String) {
    std::fs::write(dir.join("client-ca.pem"), ca.cert.pem()).unwrap();
    spawn_serve(
        dir,
        &format!(
            "[enclave]\nendpoint = \"unix://{d}/no-enclave.sock\"\n\n[kms]\nkey_id = \"alias/x\"\n\n\
             [key_store]\nkind = \"file\"\ndir = \"{d}/keys\"\n\n[credentials]\nsource = \"insecure-dev\"\n\n\
             [auth]\nclient_ca = \"{d}/client-ca.pem\"\nclient_cert_required = {required}\n\n\
             [[auth.client_certs]]\ncommon_name = \"svc.internal\"\ntoken = \"svc\"\n\n\
             [[auth.client_certs]]\ncommon_name = \"gone.internal\"\ntoken = \"no-such-token\"\n\n\
             [[tokens]]\nname = \"svc\"\nsha256 = \"{hash}\"\nkeys = [\"{MINE}\"]\n\
             operations = [\"keys:read\"]\n",
            d = dir.display(),
            hash = "ab".repeat(32),
        ),
        &[],
    )
}

fn client(dir: &Path, identity: Option<&[u8]>) -> reqwest::Client {
    let cert = dir.join("state/tls/cert.pem");
    wait_until(Duration::from_secs(30), "the TLS certificate", || {
        std::fs::read(&cert).is_ok_and(|pem| reqwest::Certificate::from_pem(&pem).is_ok())
    });
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .timeout(Duration::from_secs(30));
    if let Some(pem) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(pem).unwrap());
    }
    builder.build().unwrap()
}

async fn get(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> reqwest::Result<(u16, String)> {
    let mut request = client.get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await?;
    Ok((response.status().as_u16(), response.text().await?))
}

/// Waits until `serve` answers `client` on /healthz (which needs no credentials).
async fn wait_up(client: &reqwest::Client, url: &str, serve: &mut Child, dir: &Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while get(client, &format!("{url}/healthz"), None).await.is_err() {
        assert!(
            serve.try_wait().unwrap().is_none(),
            "serve exited:\n{}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_map_to_token_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("nitro-wallet test client CA");
    let (mut serve, url) = serve(d, &ca, false);
    let svc = client(d, Some(&ca.issue("svc.internal")));
    wait_up(&svc, &url, &mut serve, d).await;

    // The mapped certificate acts as `svc`: keys:read on MINE only.
    let (status, body) = get(&svc, &format!("{url}/v1/keys"), None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&svc, &format!("{url}/v1/keys/{NOT_MINE}"), None)
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("keys"), "{body}");
    let (status, body) = get(&svc, &format!("{url}/v1/keys/{MINE}"), None)
        .await
        .unwrap();
    assert_eq!(status, 404, "in scope, but not in the store: {body}");
    let response = svc
        .post(format!("{url}/v1/keys"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("keys:create"), "{body}");
    // JSON-RPC too.
    let reply: serde_json::Value = svc
        .post(format!("{url}/rpc"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "eth_accounts"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reply["result"], json!([]), "{reply}");
    // A bearer token on the same connection takes precedence over the certificate.
    let (status, body) = get(&svc, &format!("{url}/v1/keys"), Some("not-a-token"))
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");

    // A certificate of the right CA that no mapping names, or one mapped to a token that does
    // not exist: 401, saying why.
    let stranger = client(d, Some(&ca.issue("stranger.internal")));
    let (status, body) = get(&stranger, &format!("{url}/v1/keys"), None)
        .await
        .unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("not mapped"), "{body}");
    let gone = client(d, Some(&ca.issue("gone.internal")));
    let (status, body) = get(&gone, &format!("{url}/v1/keys"), None).await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("does not exist"), "{body}");

    // A certificate from another CA: the handshake fails, nothing is served.
    let other = Ca::new("someone else's CA");
    let forged = client(d, Some(&other.issue("svc.internal")));
    assert!(get(&forged, &format!("{url}/v1/keys"), None).await.is_err());

    // Certificates are optional here: no certificate, the bearer token as before.
    let plain = client(d, None);
    let (status, body) = get(&plain, &format!("{url}/v1/keys"), Some(TOKEN))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = get(&plain, &format!("{url}/v1/keys"), None).await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("client certificate"), "{body}");

    let _ = serve.kill();
    let _ = serve.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn required_client_certificates_refuse_the_handshake_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = Ca::new("nitro-wallet test client CA");
    let (mut serve, url) = serve(d, &ca, true);
    let svc = client(d, Some(&ca.issue("svc.internal")));
    wait_up(&svc, &url, &mut serve, d).await;
    let (status, body) = get(&svc, &format!("{url}/v1/keys"), None).await.unwrap();
    assert_eq!(status, 200, "{body}");
    // Without a certificate, not even a valid bearer token gets an answer.
    let plain = client(d, None);
    assert!(get(&plain, &format!("{url}/v1/keys"), Some(TOKEN))
        .await
        .is_err());
    let _ = serve.kill();
    let _ = serve.wait();
}
