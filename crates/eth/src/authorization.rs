//! EIP-7702 authorizations, signed on their own.
//!
//! An authorization lets the signer's account (the *authority*) run the code of a delegate
//! contract; it is `keccak256(0x05 ‖ rlp([chain_id, address, nonce]))` signed by the authority,
//! and it travels inside the `authorizationList` of a type 4 transaction that anyone may send.
//! The authority and the sender are usually different accounts, hence a separate operation
//! from [`crate::sign_transaction`]. The result has the JSON shape of an `authorizationList`
//! entry, so it goes into a [`crate::TransactionRequest`] unchanged.
//!
//! The signing hash comes from alloy-eips ([`Authorization::signature_hash`]); only the ECDSA
//! step is ours ([`PrivateKey::sign_hash`], which always returns the low `s` EIP-7702
//! requires).

use alloy_eips::eip7702::Authorization;
use alloy_primitives::{Address, B256, U256};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{key::PrivateKey, request::TxError};

/// A parsed, validated request to sign an EIP-7702 authorization.
///
/// # Parsing rules
///
/// * The body must be a JSON object ([`TxError::NotAnObject`]) with the camelCase keys
///   `chainId`, `address` and `nonce`, all required ([`TxError::Missing`]). Unknown keys are
///   ignored and `null` counts as absent, as for [`crate::TransactionRequest`], whose rules
///   for quantities and addresses apply.
/// * `chainId`: any quantity up to 2^256 − 1. **0 is accepted**: it makes an authorization
///   valid on every chain, and whether to sign one is the caller's policy, not the parser's.
/// * `address`: the delegate contract whose code the authority's account will run.
/// * `nonce`: the authority's account nonce when the authorization is processed (its current
///   nonce + 1 if the authority also sends the transaction); a u64 below 2^64 − 1, the largest
///   value EIP-7702 can ever accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    inner: Authorization,
}

impl AuthorizationRequest {
    /// Parses `{chainId, address, nonce}` from raw JSON bytes.
    ///
    /// # Errors
    ///
    /// [`TxError::NotAnObject`] if the bytes are not JSON or not an object; otherwise as
    /// [`AuthorizationRequest::from_value`].
    pub fn from_json(json: &[u8]) -> Result<AuthorizationRequest, TxError> {
        let value: Value = serde_json::from_slice(json).map_err(|_| TxError::NotAnObject)?;
        Self::from_value(&value)
    }

    /// Parses `{chainId, address, nonce}` (see the [type documentation](AuthorizationRequest)
    /// for the rules).
    ///
    /// # Errors
    ///
    /// [`TxError::NotAnObject`] if `v` is not an object, [`TxError::Missing`] for an absent
    /// field, [`TxError::Invalid`] for a malformed one.
    pub fn from_value(v: &Value) -> Result<AuthorizationRequest, TxError> {
        let obj = v.as_object().ok_or(TxError::NotAnObject)?;
        Ok(AuthorizationRequest {
            inner: crate::request::authorization(obj, "")?,
        })
    }

    /// The chain the authorization is valid on; 0 means every chain.
    pub fn chain_id(&self) -> U256 {
        self.inner.chain_id
    }

    /// The delegate contract.
    pub fn address(&self) -> Address {
        self.inner.address
    }

    /// The authority's account nonce the authorization is valid for.
    pub fn nonce(&self) -> u64 {
        self.inner.nonce
    }

    /// The hash that gets signed: `keccak256(0x05 ‖ rlp([chain_id, address, nonce]))`.
    pub fn signature_hash(&self) -> B256 {
        self.inner.signature_hash()
    }
}

/// A signed EIP-7702 authorization, in the JSON shape of an `authorizationList` entry.
///
/// ```json
/// {
///   "chainId": "0x7a69",
///   "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
///   "nonce": "0x0",
///   "yParity": "0x0",
///   "r": "0x…",
///   "s": "0x…"
/// }
/// ```
///
/// Quantities are minimal `0x` hex as in JSON-RPC (`eth_getTransactionByHash` writes
/// authorizations the same way); `address` is EIP-55 checksummed (any case is read back).
/// The authority, the signing key's address, is not part of the shape: it is recovered from
/// the signature by whoever processes the authorization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedAuthorization {
    /// The chain the authorization is valid on; 0 means every chain.
    pub chain_id: U256,
    /// The delegate contract.
    #[serde(with = "crate::checksummed")]
    pub address: Address,
    /// The authority's account nonce the authorization is valid for.
    #[serde(with = "crate::message::quantity")]
    pub nonce: u64,
    /// Whether the nonce point's y coordinate is odd (the recovery id); `"0x0"`/`"0x1"`.
    #[serde(with = "crate::sign::parity")]
    pub y_parity: bool,
    /// The `r` scalar.
    pub r: U256,
    /// The `s` scalar (always in the lower half of the group order, as EIP-7702 requires).
    pub s: U256,
}

/// Signs an EIP-7702 authorization with `key`, which becomes its authority.
///
/// Nothing can fail once the request has parsed, so this returns the signature directly.
pub fn sign_authorization(key: &PrivateKey, request: &AuthorizationRequest) -> SignedAuthorization {
    let signature = key.sign_hash(&request.signature_hash());
    SignedAuthorization {
        chain_id: request.chain_id(),
        address: request.address(),
        nonce: request.nonce(),
        y_parity: signature.v(),
        r: signature.r(),
        s: signature.s(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::TransactionRequest;
    use alloy_eips::eip7702::constants::SECP256K1N_HALF;
    use alloy_primitives::{address, hex, U256};
    use alloy_rlp::Encodable;
    use serde_json::json;

    /// Anvil / Hardhat account 1 (published development key).
    const DEV1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    /// Anvil / Hardhat account 0.
    const DEV0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn request(v: Value) -> AuthorizationRequest {
        AuthorizationRequest::from_value(&v).unwrap()
    }

    fn err(v: Value) -> TxError {
        AuthorizationRequest::from_value(&v).unwrap_err()
    }

    fn rlp(signed: &SignedAuthorization) -> Vec<u8> {
        let alloy = alloy_eips::eip7702::Authorization {
            chain_id: signed.chain_id,
            address: signed.address,
            nonce: signed.nonce,
        }
        .into_signed(alloy_primitives::Signature::new(
            signed.r,
            signed.s,
            signed.y_parity,
        ));
        let mut out = Vec::new();
        alloy.encode(&mut out);
        out
    }

    /// Known answers from Foundry's `cast` 1.7.1, offline; the output is the RLP
    /// `[chain_id, address, nonce, y_parity, r, s]`:
    ///
    /// ```text
    /// cast wallet sign-auth --private-key $DEV1 --chain 31337 --nonce 0 \
    ///   0x5FbDB2315678afecb367f032d93F642f64180aa3
    /// cast wallet sign-auth --private-key $DEV0 --chain 1 --nonce 7 \
    ///   0x70997970C51812dc3A010C7d01b50e0d17dc79C8
    /// cast wallet sign-auth --private-key $DEV0 --chain 0 --nonce 0 \
    ///   0x70997970C51812dc3A010C7d01b50e0d17dc79C8
    /// ```
    #[test]
    fn cast_sign_auth_vectors() {
        let cases = [
            (
                DEV1,
                json!({"chainId": "0x7a69", "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "nonce": "0x0"}),
                &hex!("f85c827a69945fbdb2315678afecb367f032d93f642f64180aa38080a00a17b68dcbf7db8bafb45cbcbeb61316aa330f045e43425e1db41e6c794c2e64a01a7f46131075975b44ae67f3bc968a9bce64f257b24571d945bb9026812c114e")[..],
            ),
            (
                DEV0,
                json!({"chainId": 1, "address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "nonce": 7}),
                &hex!("f85a019470997970c51812dc3a010c7d01b50e0d17dc79c80701a0458d9891120364d3b5d43f119efd57a73ce706e042e36d3869ae4f1d91207727a04540b8be06debcbd39a58248ae1dc053642979de0a2b8cb1a1726c4c21abb46c")[..],
            ),
            (
                DEV0,
                json!({"chainId": "0", "address": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "nonce": "0x0"}),
                &hex!("f85a809470997970c51812dc3a010c7d01b50e0d17dc79c88080a04d58e1c739276d830a3e68f00c6e2eef1ad46165f7d9c734656c526a8d244e7aa0552ac242ea8cff3b4d0f6126273f46fea74b80403724d7cfd8f68998e0a78e19")[..],
            ),
        ];
        for (key, req, expected) in cases {
            let key = PrivateKey::from_hex(key).unwrap();
            let signed = sign_authorization(&key, &request(req));
            assert_eq!(rlp(&signed), expected);
            assert!(signed.s <= SECP256K1N_HALF);
        }
    }

    #[test]
    fn json_shape_and_recovery() {
        let key = PrivateKey::from_hex(DEV1).unwrap();
        let req = request(json!({
            "chainId": 31337,
            "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
            "nonce": "0x0",
            "somethingElse": true,
        }));
        assert_eq!(req.chain_id(), U256::from(31337));
        assert_eq!(
            req.address(),
            address!("5FbDB2315678afecb367f032d93F642f64180aa3")
        );
        assert_eq!(req.nonce(), 0);
        let signed = sign_authorization(&key, &req);
        let v = serde_json::to_value(&signed).unwrap();
        assert_eq!(
            v,
            json!({
                "chainId": "0x7a69",
                "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "nonce": "0x0",
                "yParity": "0x0",
                "r": "0xa17b68dcbf7db8bafb45cbcbeb61316aa330f045e43425e1db41e6c794c2e64",
                "s": "0x1a7f46131075975b44ae67f3bc968a9bce64f257b24571d945bb9026812c114e",
            })
        );
        let back: SignedAuthorization = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, signed);

        // The same JSON is an `authorizationList` entry, and alloy recovers the authority.
        let tx = TransactionRequest::from_value(&json!({
            "chainId": 31337, "nonce": 0, "gas": 100000,
            "maxFeePerGas": 2, "maxPriorityFeePerGas": 1,
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "authorizationList": [v],
        }))
        .unwrap();
        assert_eq!(tx.tx_type(), 4);
        let alloy_consensus::TypedTransaction::Eip7702(t) = tx.to_typed() else {
            panic!("not a type 4 transaction");
        };
        assert_eq!(
            t.authorization_list[0].recover_authority().unwrap(),
            key.address()
        );
    }

    #[test]
    fn missing_and_invalid_fields() {
        let ok = json!({"chainId": 1, "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3", "nonce": 1});
        for field in ["chainId", "address", "nonce"] {
            let mut v = ok.clone();
            v.as_object_mut().unwrap().remove(field);
            assert_eq!(err(v.clone()), TxError::Missing { field });
            v[field] = Value::Null;
            assert_eq!(err(v), TxError::Missing { field });
        }
        let cases = [
            ("chainId", json!(-1)),
            ("chainId", json!(format!("0x1{}", "0".repeat(64)))),
            (
                "address",
                json!("0x5fbdb2315678afecb367f032d93f642f64180aa"),
            ),
            (
                "address",
                json!("0x5FBdb2315678afecb367f032d93f642f64180aa3"),
            ),
            ("nonce", json!("0x10000000000000000")),
            ("nonce", json!("0xffffffffffffffff")),
            ("nonce", json!(1.5)),
        ];
        for (field, bad) in cases {
            let mut v = ok.clone();
            v[field] = bad.clone();
            let e = err(v);
            assert!(
                matches!(e, TxError::Invalid { .. }),
                "{field} = {bad}: {e:?}"
            );
            assert_eq!(e.field(), Some(field), "{field} = {bad}");
        }
        assert_eq!(err(json!([])), TxError::NotAnObject);
        assert_eq!(
            AuthorizationRequest::from_json(b"{").unwrap_err(),
            TxError::NotAnObject
        );
        // Largest values that are accepted.
        let mut v = ok;
        v["chainId"] = json!(format!("0x{}", "f".repeat(64)));
        v["nonce"] = json!("0xfffffffffffffffe");
        assert_eq!(request(v).chain_id(), U256::MAX);
    }
}
