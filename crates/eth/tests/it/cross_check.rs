//! libsecp256k1 (our signing path) against `k256` (alloy's default, an independent
//! implementation): identical RFC 6979 signatures, correct recovery, low s. Blob (type 3,
//! without blobs) and set-code (type 4) transactions decode with alloy's `TxEnvelope` and
//! recover, through alloy's k256 backend, to the signing key and the authority.

use alloy_consensus::{transaction::SignerRecoverable, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{B256, U256};
use k256::ecdsa::SigningKey;
use nitro_wallet_eth::{
    sign_authorization, sign_transaction, AuthorizationRequest, PrivateKey, TransactionRequest,
};
use proptest::prelude::*;
use serde_json::json;

/// secp256k1 group order / 2, the largest allowed low s.
const HALF_ORDER: U256 = U256::from_be_slice(&[
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
]);

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn same_signature_as_k256(secret in any::<[u8; 32]>(), hash in any::<[u8; 32]>()) {
        let Ok(key) = PrivateKey::from_bytes(&secret) else {
            // Zero or ≥ n: k256 must reject it too.
            prop_assert!(SigningKey::from_slice(&secret).is_err());
            return Ok(());
        };
        let hash = B256::from(hash);
        let ours = key.sign_hash(&hash);

        let k = SigningKey::from_slice(&secret).unwrap();
        let (theirs, recid) = k.sign_prehash_recoverable(hash.as_slice()).unwrap();
        let bytes = theirs.to_bytes();
        prop_assert_eq!(ours.r(), U256::from_be_slice(&bytes[..32]));
        prop_assert_eq!(ours.s(), U256::from_be_slice(&bytes[32..]));
        prop_assert_eq!(ours.v(), recid.is_y_odd());

        prop_assert!(ours.s() <= HALF_ORDER);
        prop_assert_eq!(ours.recover_address_from_prehash(&hash).unwrap(), key.address());

        // Address derivation agrees with alloy's k256-based helper.
        let alloy_addr = alloy_primitives::Address::from_private_key(&k);
        prop_assert_eq!(alloy_addr, key.address());
    }

    #[test]
    fn signed_transactions_recover(secret in any::<[u8; 32]>(), nonce in any::<u64>(),
                                   chain_id in 1u64..u64::MAX / 4, ty in 0u8..3) {
        let Ok(key) = PrivateKey::from_bytes(&secret) else { return Ok(()); };
        let mut v = json!({
            "chainId": chain_id, "nonce": nonce, "gas": 21000,
            "to": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "value": "0x1",
            "type": ty,
        });
        if ty == 2 {
            v["maxFeePerGas"] = json!(100);
            v["maxPriorityFeePerGas"] = json!(1);
        } else {
            v["gasPrice"] = json!(100);
        }
        let tx = TransactionRequest::from_value(&v).unwrap();
        let signed = sign_transaction(&key, &tx).unwrap();
        let sig = alloy_primitives::Signature::new(
            signed.signature.r, signed.signature.s, signed.signature.y_parity);
        prop_assert_eq!(
            sig.recover_address_from_prehash(&tx.signature_hash()).unwrap(),
            key.address()
        );
        prop_assert_eq!(signed.transaction_hash,
                        alloy_primitives::keccak256(&signed.raw_transaction));
        prop_assert_eq!(signed.raw_transaction.first().copied().map(|b| b >= 0xc0),
                        Some(ty == 0));
    }

    #[test]
    fn blob_and_set_code_transactions_decode(
        secret in any::<[u8; 32]>(), auth_secret in any::<[u8; 32]>(),
        nonce in any::<u64>(), chain_id in 1u64..u64::MAX / 4, four in any::<bool>(),
        auth_chain_id in any::<[u8; 32]>(), auth_nonce in 0..u64::MAX - 1,
        hashes in proptest::collection::vec(any::<[u8; 31]>(), 1..=9),
    ) {
        let (Ok(key), Ok(authority)) =
            (PrivateKey::from_bytes(&secret), PrivateKey::from_bytes(&auth_secret))
        else {
            return Ok(());
        };
        let mut v = json!({
            "chainId": chain_id, "nonce": nonce, "gas": 100000,
            "maxFeePerGas": 100, "maxPriorityFeePerGas": 1,
            "to": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "value": "0x1",
        });
        if four {
            let request = AuthorizationRequest::from_value(&json!({
                "chainId": U256::from_be_bytes(auth_chain_id),
                "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
                "nonce": auth_nonce,
            })).unwrap();
            let auth = sign_authorization(&authority, &request);
            prop_assert!(auth.s <= HALF_ORDER);
            v["authorizationList"] = json!([auth]);
        } else {
            let hashes: Vec<String> = hashes
                .iter()
                .map(|h| format!("0x01{}", alloy_primitives::hex::encode(h)))
                .collect();
            v["blobVersionedHashes"] = json!(hashes);
            v["maxFeePerBlobGas"] = json!(1);
        }
        let tx = TransactionRequest::from_value(&v).unwrap();
        let signed = sign_transaction(&key, &tx).unwrap();
        prop_assert_eq!(signed.transaction_hash,
                        alloy_primitives::keccak256(&signed.raw_transaction));

        let mut buf = signed.raw_transaction.as_ref();
        let envelope = TxEnvelope::decode_2718(&mut buf).unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(*envelope.tx_hash(), signed.transaction_hash);
        prop_assert_eq!(envelope.recover_signer().unwrap(), key.address());
        match &envelope {
            TxEnvelope::Eip7702(s) => {
                prop_assert!(four);
                prop_assert_eq!(
                    s.tx().authorization_list[0].recover_authority().unwrap(),
                    authority.address()
                );
            }
            TxEnvelope::Eip4844(s) => {
                prop_assert!(!four);
                prop_assert_eq!(s.tx().tx().blob_versioned_hashes.len(), hashes.len());
            }
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
