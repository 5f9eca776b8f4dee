//! What the enclave records of each decision, for its audit chain.
//!
//! [`crate::Enclave::handle`] runs every signing and key-management request ([`is_recorded`])
//! with a [`Note`] that the request's handler fills in as it decodes the request (the key,
//! the intent, the deciding policy); the outcome completes it into a [`Decision`], which the
//! chain ([`nitro_wallet_audit::Chain`]) numbers, links, hashes and signs. Only public facts
//! go into a note: addresses, amounts, selectors, digests, the names of typed-data domains;
//! never a message, a typed-data document or anything secret.

use alloy_primitives::{Address, B256};
use nitro_wallet_audit::{
    bounded_text, AuthorizationIntent, Decision, HashIntent, Intent, MessageIntent, Operation,
    TransactionIntent, TypedDataIntent, Verdict,
};
use nitro_wallet_eth::{AuthorizationRequest, TransactionRequest};
use nitro_wallet_protocol::{ErrorBody, ErrorCode, Request, Response};
use sha2::{Digest, Sha256};

/// Whether `request` is a decision the chain records (signing and key management), and
/// which operation it is.
pub(crate) fn operation(request: &Request) -> Option<Operation> {
    Some(match request {
        Request::SignTransaction(_) => Operation::SignTransaction,
        Request::SignMessage(_) => Operation::SignMessage,
        Request::SignTypedData(_) => Operation::SignTypedData,
        Request::SignHash(_) => Operation::SignHash,
        Request::SignAuthorization(_) => Operation::SignAuthorization,
        Request::GenerateKey(_) => Operation::GenerateKey,
        Request::ImportKey(_) => Operation::ImportKey,
        Request::MigrateKey(_) => Operation::MigrateKey,
        Request::SetPolicy(_) => Operation::SetPolicy,
        _ => return None,
    })
}

/// Whether the chain records `request`.
pub(crate) fn is_recorded(request: &Request) -> bool {
    operation(request).is_some()
}

/// The key a request names (before anything is checked).
fn named_key(request: &Request) -> Option<Address> {
    match request {
        Request::SignTransaction(s) => Some(s.key.address),
        Request::SignMessage(m) => Some(m.key.address),
        Request::SignTypedData(t) => Some(t.key.address),
        Request::SignHash(h) => Some(h.key.address),
        Request::SignAuthorization(a) => Some(a.key.address),
        Request::SetPolicy(p) => Some(p.key.address),
        _ => None,
    }
}

/// What a handler learned about a request while deciding it.
#[derive(Debug, Default)]
pub(crate) struct Note {
    op: Option<Operation>,
    key: Option<Address>,
    /// The decoded request.
    pub(crate) intent: Option<Intent>,
    /// Digest of the policy that decided (`None`: no policy).
    pub(crate) policy: Option<String>,
}

impl Note {
    /// A note for `request` (`None` for requests that are not recorded).
    pub(crate) fn for_request(request: &Request) -> Option<Note> {
        Some(Note {
            op: Some(operation(request)?),
            key: named_key(request),
            intent: None,
            policy: None,
        })
    }

    /// The decision, from this note, the caller and the outcome.
    pub(crate) fn decision(
        self,
        caller: Option<&str>,
        outcome: &Result<Response, ErrorBody>,
    ) -> Decision {
        let mut decision = Decision {
            caller: caller.map(bounded_text),
            op: self.op.unwrap_or(Operation::SignHash),
            key: self.key,
            intent: self.intent,
            policy: self.policy,
            result: Verdict::Ok,
            code: None,
            rule: None,
            output: None,
        };
        match outcome {
            Ok(response) => {
                decision.output = match response {
                    Response::SignedTransaction(s) => Some(s.transaction_hash),
                    Response::WindowedTransaction(w) => Some(w.signed.transaction_hash),
                    Response::MessageSignature(m) => Some(m.hash),
                    Response::SignedAuthorization(_) => match &decision.intent {
                        Some(Intent::Authorization(a)) => Some(a.digest),
                        _ => None,
                    },
                    _ => None,
                };
                if let Response::Key(wrapped) = response {
                    // Key management: the key made or changed, and the policy it now has
                    // (the digest the encryption context binds).
                    decision.key = Some(wrapped.address);
                    decision.policy = wrapped.policy.as_deref().map(|p| hex_sha256(p.as_bytes()));
                }
            }
            Err(e) => {
                decision.result = if e.code == ErrorCode::PolicyDenied {
                    decision.rule = e.field.as_deref().map(bounded_text);
                    Verdict::Denied
                } else {
                    Verdict::Failed
                };
                decision.code = Some(e.code.as_str().to_owned());
            }
        }
        decision
    }
}

/// SHA-256, hex (what [`nitro_wallet_policy::Policy::digest`] computes over the canonical
/// policy).
fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A transaction's public facts.
pub(crate) fn transaction(tx: &TransactionRequest) -> Intent {
    let input = tx.input();
    Intent::Transaction(TransactionIntent {
        tx_type: tx.tx_type(),
        chain_id: tx.chain_id(),
        nonce: tx.nonce(),
        to: tx.to(),
        value: tx.value().to_string(),
        selector: input.get(..4).map(|s| format!("0x{}", hex::encode(s))),
        input_len: input.len(),
        gas: tx.gas_limit(),
        max_fee_per_gas: tx.max_fee_per_gas().to_string(),
    })
}

/// A personal message: its length and digest.
pub(crate) fn message(len: usize, digest: B256) -> Intent {
    Intent::Message(MessageIntent { len, digest })
}

/// Typed data: the domain's identifying members, the primary type and the digest.
pub(crate) fn typed_data(document: &serde_json::Value, digest: B256) -> Intent {
    let text = |v: Option<&serde_json::Value>| {
        v.map(|v| match v {
            serde_json::Value::String(s) => bounded_text(s),
            other => bounded_text(&other.to_string()),
        })
    };
    let domain = document.get("domain");
    let member = |name: &str| text(domain.and_then(|d| d.get(name)));
    Intent::TypedData(TypedDataIntent {
        primary_type: text(document.get("primaryType")),
        name: member("name"),
        version: member("version"),
        chain_id: member("chainId"),
        verifying_contract: member("verifyingContract"),
        digest,
    })
}

/// A raw digest.
pub(crate) fn hash(digest: B256) -> Intent {
    Intent::Hash(HashIntent { digest })
}

/// An EIP-7702 authorization.
pub(crate) fn authorization(a: &AuthorizationRequest) -> Intent {
    Intent::Authorization(AuthorizationIntent {
        chain_id: a.chain_id().to_string(),
        address: a.address(),
        nonce: a.nonce(),
        digest: a.signature_hash(),
    })
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn outcomes_become_verdicts_with_code_and_rule() {
        let request: Request = serde_json::from_value(serde_json::json!({
            "sign_hash": {
                "key": {"address": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
                        "kms_key_id": "k", "ciphertext": ""},
                "hash": format!("0x{}", "11".repeat(32)),
            }
        }))
        .unwrap();
        let note = || Note::for_request(&request).unwrap();
        let denied = ErrorBody {
            code: ErrorCode::PolicyDenied,
            message: "no".into(),
            field: Some("raw_hash".into()),
        };
        let d = note().decision(Some("ops"), &Err(denied));
        assert_eq!(d.result, Verdict::Denied);
        assert_eq!(d.rule.as_deref(), Some("raw_hash"));
        assert_eq!(d.code.as_deref(), Some("policy_denied"));
        assert_eq!(d.caller.as_deref(), Some("ops"));
        assert_eq!(d.op, Operation::SignHash);
        assert!(d.key.is_some());
        let failed = ErrorBody::new(ErrorCode::KmsUnavailable, "down");
        let d = note().decision(None, &Err(failed));
        assert_eq!((d.result, d.rule), (Verdict::Failed, None));
        assert_eq!(d.code.as_deref(), Some("kms_unavailable"));
        assert!(Note::for_request(&Request::Ping).is_none());
    }

    #[test]
    fn typed_data_keeps_the_domain_names_bounded_and_not_the_message() {
        let doc = serde_json::json!({
            "primaryType": "Mail",
            "domain": {"name": "x".repeat(500), "chainId": 1, "verifyingContract": "0xCcCC"},
            "message": {"contents": "a secret note"},
        });
        let Intent::TypedData(t) = typed_data(&doc, B256::ZERO) else {
            panic!()
        };
        assert_eq!(t.name.unwrap().len(), nitro_wallet_audit::MAX_TEXT_LEN);
        assert_eq!(t.chain_id.as_deref(), Some("1"));
        assert_eq!(t.version, None);
        assert_eq!(t.primary_type.as_deref(), Some("Mail"));
        let json = serde_json::to_string(&Intent::TypedData(TypedDataIntent {
            name: None,
            ..match typed_data(&doc, B256::ZERO) {
                Intent::TypedData(t) => t,
                _ => unreachable!(),
            }
        }))
        .unwrap();
        assert!(!json.contains("secret"), "{json}");
    }
}
