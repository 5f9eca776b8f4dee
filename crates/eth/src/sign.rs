//! Signing a [`TransactionRequest`] and the signed result as it is returned to clients.
//!
//! The transaction encodings (EIP-155 legacy RLP, EIP-2718 typed envelopes, the EIP-4844
//! network form with its sidecar) come from alloy-consensus; only the ECDSA step is ours
//! ([`PrivateKey::sign_hash`], libsecp256k1).
//! [`SignedTransaction`] is the wire shape of the REST response (DESIGN.md §4), so its serde
//! form is part of the API and is pinned by tests.

use alloy_consensus::{transaction::RlpEcdsaEncodableTx, SignableTransaction, Signed};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, Signature, B256, U256};
use serde::{Deserialize, Serialize};

use crate::{
    key::PrivateKey,
    request::{TransactionRequest, TxError, UnsignedTx},
};

/// A signed transaction, ready for `eth_sendRawTransaction`.
///
/// JSON form (snake_case keys; every number and byte string is `0x` hex):
///
/// ```json
/// {
///   "raw_transaction": "0x02f8…",
///   "transaction_hash": "0x…32 bytes",
///   "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
///   "signature": { "r": "0x…", "s": "0x…", "y_parity": "0x1", "v": "0x1" }
/// }
/// ```
///
/// `from` is serialized EIP-55 checksummed (deserialization accepts any case). Quantities
/// (`r`, `s`, `v`) are minimal hex without leading zeros, as in JSON-RPC.
///
/// A type 3 (blob) transaction whose request gave `blobs` is returned in the network form
/// that `eth_sendRawTransaction` requires for blob transactions (EIP-4844 "networking"):
/// `0x03 ‖ rlp([tx_payload_body, blobs, commitments, proofs])`, one KZG proof per blob, as
/// nodes accept up to Prague (Osaka's EIP-7594 cell-proof form is not produced). Its
/// `transaction_hash` is still the hash of the EIP-2718 encoding without the sidecar, the
/// hash the chain knows the transaction by. Given only `blobVersionedHashes`, the plain
/// EIP-2718 encoding is returned (what goes into a block; a node will not accept it without
/// the blobs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The raw transaction: plain RLP for legacy transactions, `type ‖ rlp` otherwise, and
    /// the network form with the sidecar for a blob transaction given its blobs.
    pub raw_transaction: Bytes,
    /// The transaction hash: keccak256 of the EIP-2718 encoding, which is `raw_transaction`
    /// except for a blob transaction in network form (then the sidecar is left out).
    pub transaction_hash: B256,
    /// The signer's address.
    #[serde(with = "crate::checksummed")]
    pub from: Address,
    /// The signature, in the forms clients expect.
    pub signature: SignatureParts,
}

/// The parts of an ECDSA signature.
///
/// `y_parity` serializes as the JSON-RPC quantity `"0x0"` or `"0x1"` (as in `yParity` of
/// `eth_getTransactionByHash`); deserialization accepts those strings or a JSON bool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureParts {
    /// The `r` scalar.
    pub r: U256,
    /// The `s` scalar (always in the lower half of the group order).
    pub s: U256,
    /// Whether the nonce point's y coordinate is odd (the recovery id).
    #[serde(with = "parity")]
    pub y_parity: bool,
    /// For legacy transactions the EIP-155 `v = chain_id * 2 + 35 + y_parity`; for typed
    /// transactions `y_parity` as 0 or 1.
    pub v: U256,
}

impl SignatureParts {
    fn new(signature: &Signature, legacy_chain_id: Option<u64>) -> SignatureParts {
        let parity = U256::from(u8::from(signature.v()));
        let v = match legacy_chain_id {
            Some(chain_id) => U256::from(chain_id) * U256::from(2) + U256::from(35) + parity,
            None => parity,
        };
        SignatureParts {
            r: signature.r(),
            s: signature.s(),
            y_parity: signature.v(),
            v,
        }
    }
}

/// Signs `tx` with `key`.
///
/// # Errors
///
/// [`TxError::FromMismatch`] if the request names a `from` that is not `key`'s address.
pub fn sign_transaction(
    key: &PrivateKey,
    tx: &TransactionRequest,
) -> Result<SignedTransaction, TxError> {
    let address = key.address();
    if let Some(from) = tx.from() {
        if from != address {
            return Err(TxError::FromMismatch {
                expected: address,
                got: from,
            });
        }
    }
    let (raw_transaction, transaction_hash, signature) = match &tx.tx {
        UnsignedTx::Legacy(t) => {
            let (raw, hash, sig) = sign_one(key, t.clone());
            (raw, hash, SignatureParts::new(&sig, t.chain_id))
        }
        UnsignedTx::Eip2930(t) => {
            let (raw, hash, sig) = sign_one(key, t.clone());
            (raw, hash, SignatureParts::new(&sig, None))
        }
        UnsignedTx::Eip1559(t) => {
            let (raw, hash, sig) = sign_one(key, t.clone());
            (raw, hash, SignatureParts::new(&sig, None))
        }
        UnsignedTx::Eip4844(t) => {
            // With a sidecar, alloy encodes the network form and hashes without it.
            let (raw, hash, sig) = sign_one(key, t.clone());
            (raw, hash, SignatureParts::new(&sig, None))
        }
        UnsignedTx::Eip7702(t) => {
            let (raw, hash, sig) = sign_one(key, t.clone());
            (raw, hash, SignatureParts::new(&sig, None))
        }
    };
    Ok(SignedTransaction {
        raw_transaction,
        transaction_hash,
        from: address,
        signature,
    })
}

/// Signs one concrete alloy transaction type and encodes it.
fn sign_one<T>(key: &PrivateKey, tx: T) -> (Bytes, B256, Signature)
where
    T: SignableTransaction<Signature> + RlpEcdsaEncodableTx,
    Signed<T>: Encodable2718,
{
    let signature = key.sign_hash(&tx.signature_hash());
    let signed = tx.into_signed(signature);
    let raw = Bytes::from(signed.encoded_2718());
    (raw, *signed.hash(), signature)
}

/// Serde for `y_parity`: writes `"0x0"`/`"0x1"`, reads those or a bool.
pub(crate) mod parity {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(p: &bool, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(if *p { "0x1" } else { "0x0" })
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Bool(bool),
        Str(String),
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Bool(b) => Ok(b),
            Repr::Str(s) => match s.as_str() {
                "0x0" => Ok(false),
                "0x1" => Ok(true),
                _ => Err(D::Error::custom("y_parity must be \"0x0\" or \"0x1\"")),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256, hex};
    use serde_json::json;

    fn eip155_key() -> PrivateKey {
        PrivateKey::from_bytes(&[0x46; 32]).unwrap()
    }

    fn eip155_request() -> TransactionRequest {
        TransactionRequest::from_value(&json!({
            "chainId": 1,
            "nonce": 9,
            "gasPrice": "20000000000",
            "gas": 21000,
            "to": "0x3535353535353535353535353535353535353535",
            "value": "1000000000000000000",
        }))
        .unwrap()
    }

    /// The example in EIP-155 itself.
    #[test]
    fn eip155_example() {
        let tx = eip155_request();
        assert_eq!(
            tx.signature_hash(),
            b256!("daf5a779ae972f972197303d7b574746c7ef83eadac0f2791ad23db92e4c8e53")
        );
        let signed = sign_transaction(&eip155_key(), &tx).unwrap();
        assert_eq!(
            signed.raw_transaction.as_ref(),
            hex!(
                "f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"
            )
        );
        assert_eq!(signed.signature.v, U256::from(37));
        assert!(!signed.signature.y_parity);
        assert_eq!(
            signed.from,
            address!("9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F")
        );
        assert_eq!(
            signed.transaction_hash,
            alloy_primitives::keccak256(&signed.raw_transaction)
        );
    }

    #[test]
    fn from_mismatch() {
        let mut v = json!({
            "chainId": 1, "nonce": 9, "gasPrice": 1, "gas": 21000,
            "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        });
        let tx = TransactionRequest::from_value(&v).unwrap();
        let err = sign_transaction(&eip155_key(), &tx).unwrap_err();
        assert_eq!(
            err,
            TxError::FromMismatch {
                expected: address!("9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F"),
                got: address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
            }
        );
        assert_eq!(err.field(), Some("from"));
        v["from"] = json!("0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f");
        let tx = TransactionRequest::from_value(&v).unwrap();
        assert!(sign_transaction(&eip155_key(), &tx).is_ok());
    }

    #[test]
    fn json_shape() {
        let signed = sign_transaction(&eip155_key(), &eip155_request()).unwrap();
        let v = serde_json::to_value(&signed).unwrap();
        assert_eq!(
            v,
            json!({
                "raw_transaction": "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83",
                "transaction_hash": "0x33469b22e9f636356c4160a87eb19df52b7412e8eac32a4a55ffe88ea8350788",
                "from": "0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F",
                "signature": {
                    "r": "0x28ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276",
                    "s": "0x67cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83",
                    "y_parity": "0x0",
                    "v": "0x25",
                }
            })
        );
        let back: SignedTransaction = serde_json::from_value(v).unwrap();
        assert_eq!(back, signed);
        let mut lower = serde_json::to_value(&signed).unwrap();
        lower["from"] = json!("0x9d8a62f656a8d1615c1294fd71e9cfb3e4855a4f");
        lower["signature"]["y_parity"] = json!(false);
        let back: SignedTransaction = serde_json::from_value(lower).unwrap();
        assert_eq!(back, signed);
    }

    const HARDHAT0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    fn blob_request(blobs: bool) -> serde_json::Value {
        let mut v = json!({
            "chainId": 31337, "nonce": 1, "gas": 21000,
            "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
            "maxFeePerBlobGas": "0x3b9aca00",
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        });
        if blobs {
            v["blobs"] = json!([crate::request::tests::blob_hex(b"nitro-wallet")]);
        } else {
            v["blobVersionedHashes"] =
                json!(["0x01b0a4cdd5f55589f5c5b4d46c76704bb6ce95c0a8c09f77f197a57808dded28"]);
        }
        v
    }

    /// With blobs: alloy decodes our bytes as the EIP-4844 network form (one proof per blob,
    /// not EIP-7594 cells), the proofs verify, the signer recovers, and the hash is that of
    /// the encoding without the sidecar.
    #[test]
    fn blob_transaction_network_form() {
        use alloy_consensus::{EthereumTxEnvelope, TxEip4844WithSidecar};
        use alloy_eips::{eip2718::Decodable2718, eip7594::BlobTransactionSidecarVariant};

        let key = PrivateKey::from_hex(HARDHAT0).unwrap();
        let tx = TransactionRequest::from_value(&blob_request(true)).unwrap();
        let signed = sign_transaction(&key, &tx).unwrap();
        assert_eq!(signed.raw_transaction.first(), Some(&3));
        assert!(signed.raw_transaction.len() > 131_072);

        let mut buf = signed.raw_transaction.as_ref();
        let decoded =
            EthereumTxEnvelope::<TxEip4844WithSidecar<BlobTransactionSidecarVariant>>::decode_2718(
                &mut buf,
            )
            .unwrap();
        assert!(buf.is_empty());
        let EthereumTxEnvelope::Eip4844(decoded) = decoded else {
            panic!("not a blob transaction");
        };
        let BlobTransactionSidecarVariant::Eip4844(sidecar) = &decoded.tx().sidecar else {
            panic!("EIP-7594 sidecar");
        };
        sidecar
            .validate(
                &decoded.tx().tx.blob_versioned_hashes,
                c_kzg::ethereum_kzg_settings(0),
            )
            .unwrap();
        assert_eq!(
            decoded.tx().tx.blob_versioned_hashes,
            tx.blob_versioned_hashes()
        );
        assert_eq!(*decoded.hash(), signed.transaction_hash);
        assert_eq!(
            decoded
                .signature()
                .recover_address_from_prehash(&decoded.tx().signature_hash())
                .unwrap(),
            key.address()
        );

        // The transaction hash is keccak256 of the sidecar-less EIP-2718 encoding, which is
        // exactly what signing the same transaction given only its hashes returns.
        let mut without = blob_request(false);
        without["blobVersionedHashes"] = json!(tx.blob_versioned_hashes());
        let plain = sign_transaction(&key, &TransactionRequest::from_value(&without).unwrap());
        let plain = plain.unwrap();
        assert_eq!(plain.transaction_hash, signed.transaction_hash);
        assert_eq!(
            alloy_primitives::keccak256(&plain.raw_transaction),
            signed.transaction_hash
        );
        assert_ne!(
            alloy_primitives::keccak256(&signed.raw_transaction),
            signed.transaction_hash
        );
        assert_eq!(plain.signature, signed.signature);
    }

    /// Without blobs, and for type 4: the plain EIP-2718 encoding that alloy's `TxEnvelope`
    /// decodes to the same transaction, signed by the key.
    #[test]
    fn typed_round_trip() {
        use alloy_consensus::{SignableTransaction, TxEnvelope};
        use alloy_eips::eip2718::Decodable2718;

        let key = PrivateKey::from_hex(HARDHAT0).unwrap();
        let auth_key = eip155_key();
        let auth = crate::sign_authorization(
            &auth_key,
            &crate::AuthorizationRequest::from_value(&json!({
                "chainId": 31337, "nonce": 0,
                "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            }))
            .unwrap(),
        );
        let set_code = json!({
            "chainId": 31337, "nonce": 2, "gas": 100000,
            "maxFeePerGas": 2000000000u64, "maxPriorityFeePerGas": 1000000000u64,
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "data": "0xdeadbeef",
            "authorizationList": [auth],
        });
        for (v, ty) in [(blob_request(false), 3u8), (set_code, 4)] {
            let tx = TransactionRequest::from_value(&v).unwrap();
            let signed = sign_transaction(&key, &tx).unwrap();
            assert_eq!(signed.raw_transaction.first(), Some(&ty));
            assert_eq!(
                signed.transaction_hash,
                alloy_primitives::keccak256(&signed.raw_transaction)
            );
            let mut buf = signed.raw_transaction.as_ref();
            let envelope = TxEnvelope::decode_2718(&mut buf).unwrap();
            assert!(buf.is_empty());
            assert_eq!(*envelope.tx_hash(), signed.transaction_hash);
            let (hash, sig) = match &envelope {
                TxEnvelope::Eip4844(s) => {
                    assert_eq!(
                        alloy_consensus::TypedTransaction::Eip4844(s.tx().clone()),
                        tx.to_typed()
                    );
                    (s.tx().signature_hash(), *s.signature())
                }
                TxEnvelope::Eip7702(s) => {
                    assert_eq!(
                        alloy_consensus::TypedTransaction::Eip7702(s.tx().clone()),
                        tx.to_typed()
                    );
                    assert_eq!(
                        s.tx().authorization_list[0].recover_authority().unwrap(),
                        auth_key.address()
                    );
                    (s.tx().signature_hash(), *s.signature())
                }
                other => panic!("{other:?}"),
            };
            assert_eq!(hash, tx.signature_hash());
            assert_eq!(
                sig.recover_address_from_prehash(&hash).unwrap(),
                key.address()
            );
            assert_eq!(signed.signature.v, U256::from(u8::from(sig.v())));
        }
    }
}
