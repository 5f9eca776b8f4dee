//! Fuzzes the enclave's request path: a `RequestFrame` decoded from the input and, when it can
//! be answered without KMS, handed to the real `Enclave::handle` — the code that runs on every
//! frame the host sends.
//!
//! Setup (once): the local KMS emulator serves on 127.0.0.1 just long enough for the enclave to
//! import one fixed key (which it then keeps in its key cache), then it shuts down. Per input,
//! the requests that need no KMS call are handled: `Ping`, `SetCredentials`, `ImportKey` of an
//! invalid key, and `SignTransaction` with the cached key's address (any transaction) or with
//! any key and a transaction the enclave rejects before unwrapping. `GenerateKey`, valid
//! imports and transactions for other keys would call KMS and are skipped.
//!
//! Checks: `handle` never panics; no handled request reaches KMS (no `kms_*` error code, and
//! the cache still holds exactly the fixed key); a signature is by the fixed key; the reply
//! encodes as a `ResponseFrame` and the host can decode it.

#![no_main]

use alloy_primitives::Address;
use libfuzzer_sys::fuzz_target;
use nitro_wallet_enclave::{Enclave, EnclaveConfig};
use nitro_wallet_eth::{PrivateKey, TransactionRequest};
use nitro_wallet_kms::{emulator::Emulator, KmsConfig};
use nitro_wallet_protocol::{
    frame,
    message::{Credentials, ImportKey},
    ErrorCode, Reply, Request, RequestFrame, Response, ResponseFrame, SecretString,
    PROTOCOL_VERSION,
};
use std::{sync::Arc, sync::OnceLock, time::Duration};
use tokio::runtime::Runtime;

/// Hardhat's first development key: public knowledge, never a real key.
const FIXED_KEY: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

struct Fixture {
    rt: Runtime,
    enclave: Arc<Enclave>,
    address: Address,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| match setup() {
        Ok(f) => f,
        Err(e) => panic!("fuzz fixture: {e}"),
    })
}

fn setup() -> Result<Fixture, Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let dir = tempfile::tempdir()?;
    let emulator = Emulator::open(&dir.path().join("kms"))?;
    let (enclave, address) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(emulator.serve_with_shutdown(listener, async {
            let _ = stopped.await;
        }));
        let enclave = Enclave::new(&EnclaveConfig {
            kms: KmsConfig {
                region: nitro_wallet_kms::emulator::DEFAULT_REGION.to_owned(),
                endpoint: Some(url),
                proxy: None,
            },
            max_cached_keys: 16,
            nsm: std::sync::Arc::new(nitro_wallet_attestation::DevNsm::new(
                nitro_wallet_attestation::DevCa::generate()?,
                [0x11; 48],
            )?),
            unattested_kms: false,
        })?;
        enclave
            .handle(Request::SetCredentials(Credentials {
                access_key_id: "AKIDFUZZ".to_owned(),
                secret_access_key: SecretString::new("fuzz".to_owned()),
                session_token: None,
                expires_at: None,
            }))
            .await
            .map_err(|e| format!("SetCredentials: {e:?}"))?;
        let reply = enclave
            .handle(Request::ImportKey(ImportKey {
                kms_key_id: nitro_wallet_kms::emulator::DEFAULT_ALIAS.to_owned(),
                private_key: SecretString::new(FIXED_KEY.to_owned()),
                policy: None,
            }))
            .await
            .map_err(|e| format!("ImportKey: {e:?}"))?;
        let Response::Key(wrapped) = reply else {
            return Err(format!("ImportKey answered {reply:?}").into());
        };
        // From here on, any KMS call fails: the fuzz loop must not make one.
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), server).await???;
        Ok::<_, Box<dyn std::error::Error>>((enclave, wrapped.address))
    })?;
    Ok(Fixture {
        rt,
        enclave,
        address,
        _dir: dir,
    })
}

/// Whether `request` would make the enclave call KMS (and is therefore not fuzzed here).
fn needs_kms(request: &Request, cached: &Address) -> bool {
    // The cached key has no policy: a record presenting one misses the cache and unwraps.
    let with_policy = |k: &nitro_wallet_protocol::WrappedKey| k.policy.is_some();
    match request {
        Request::SignTransaction(s) if with_policy(&s.key) => true,
        Request::SignMessage(m) if with_policy(&m.key) => true,
        Request::SignHash(h) if with_policy(&h.key) => true,
        Request::SignTypedData(t) if with_policy(&t.key) => true,
        Request::SignAuthorization(a) if with_policy(&a.key) => true,
        Request::Ping | Request::SetCredentials(_) | Request::AuditEntries(_) => false,
        // Recorded in the audit chain and answered with the entry: the same KMS needs.
        Request::Audited(a) => needs_kms(&a.request, cached),
        Request::ImportKey(i) => PrivateKey::from_hex(i.private_key.expose()).is_ok(),
        Request::SignTransaction(s) => {
            s.key.address != *cached
                && TransactionRequest::from_json(s.transaction.get().as_bytes()).is_ok()
        }
        Request::SignMessage(m) => m.key.address != *cached,
        Request::SignHash(h) => h.key.address != *cached,
        Request::SignTypedData(t) => {
            t.key.address != *cached
                && nitro_wallet_eth::typed_data_hash(t.typed_data.get().as_bytes()).is_ok()
        }
        Request::SignAuthorization(a) => {
            a.key.address != *cached
                && nitro_wallet_eth::AuthorizationRequest::from_json(
                    a.authorization.get().as_bytes(),
                )
                .is_ok_and(|r| !r.chain_id().is_zero())
        }
        _ => true,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(request) = frame::decode::<RequestFrame>(data) else {
        return;
    };
    let fx = fixture();
    if needs_kms(&request.req, &fx.address) {
        return;
    }
    let result = fx.rt.block_on(fx.enclave.handle(request.req));
    check(result.as_ref(), fx);
    // As the server does: the reply goes back in a frame that the host must be able to read.
    let reply = match result {
        Ok(r) => Reply::Ok(r),
        Err(e) => Reply::Err(e),
    };
    let encoded = match frame::encode(&ResponseFrame {
        v: PROTOCOL_VERSION,
        id: request.id,
        reply,
    }) {
        Ok(bytes) => bytes,
        Err(e) => panic!("the reply does not encode: {e}"),
    };
    match frame::decode::<ResponseFrame>(&encoded[4..]) {
        Ok(back) => assert_eq!(back.id, request.id),
        Err(e) => panic!("the host cannot decode the reply: {e}"),
    }
});

/// The checks of one outcome; an audited one's inner outcome too, and its entries must be
/// this enclave's, hashed and signed.
fn check(result: Result<&Response, &nitro_wallet_protocol::ErrorBody>, fx: &Fixture) {
    match result {
        Ok(Response::Audited(a)) => {
            assert!(!a.entries.is_empty(), "a decision without an audit entry");
            for e in &a.entries {
                let body = e.body().expect("an entry body that does not parse");
                assert_eq!(body.chain, fx.enclave.audit_chain());
                assert_eq!(e.computed_hash(), e.hash);
                assert!(nitro_wallet_audit::signature_is_valid(
                    &body.chain,
                    &e.hash,
                    &e.sig
                ));
            }
            match &*a.reply {
                Reply::Ok(r) => check(Ok(r), fx),
                Reply::Err(e) => check(Err(e), fx),
            }
        }
        Ok(Response::AuditEntries(list)) => {
            for e in &list.entries {
                assert_eq!(e.computed_hash(), e.hash);
            }
        }
        Ok(Response::Pong(pong)) => assert_eq!(pong.cached_keys, 1, "the key cache changed"),
        Ok(Response::Done) => {}
        Ok(Response::SignedTransaction(signed)) => assert_eq!(signed.from, fx.address),
        Ok(Response::MessageSignature(sig)) => {
            assert_eq!(
                sig.recover_signer(),
                Some(fx.address),
                "signed by another key"
            );
        }
        Ok(Response::SignedAuthorization(auth)) => assert!(!auth.chain_id.is_zero()),
        Ok(other) => panic!("unexpected response without KMS: {other:?}"),
        Err(e) => assert!(
            !matches!(
                e.code,
                ErrorCode::KmsDenied
                    | ErrorCode::KmsInvalidCiphertext
                    | ErrorCode::KmsKeyNotFound
                    | ErrorCode::KmsUnavailable
                    | ErrorCode::KmsError
                    | ErrorCode::Internal
                    | ErrorCode::AuditUnavailable
            ),
            "unexpected error: {e:?}"
        ),
    }
}
