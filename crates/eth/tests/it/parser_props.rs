//! Property tests for the transaction parser: it never panics, and the hex, decimal and
//! number forms of a quantity parse identically.

use nitro_wallet_eth::{sign_transaction, PrivateKey, TransactionRequest, TxError};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

const KEYS: [&str; 26] = [
    "type",
    "chainId",
    "nonce",
    "gas",
    "gasLimit",
    "gasPrice",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "to",
    "from",
    "value",
    "data",
    "input",
    "accessList",
    "authorizationList",
    "maxFeePerBlobGas",
    "blobVersionedHashes",
    "blobs",
    "sidecar",
    "address",
    "yParity",
    "v",
    "r",
    "s",
    "hash",
    "unknown",
];

/// Arbitrary JSON values.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        "0x[0-9a-fA-F]{0,70}".prop_map(Value::String),
        "[0-9]{0,90}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(KEYS.to_vec()).prop_map(String::from),
                    ".{0,8}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Objects made of the keys the parser knows, with values that are often nearly right.
fn near_valid() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        any::<u64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(format!("{n:#x}"))),
        any::<u128>().prop_map(|n| json!(n.to_string())),
        "0x[0-9a-fA-F]{40}".prop_map(Value::String),
        "0x([0-9a-f]{2}){0,8}".prop_map(Value::String),
        Just(
            json!([{"address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
                     "storageKeys": [format!("0x{}", "11".repeat(32))]}])
        ),
        Just(json!([format!("0x01{}", "22".repeat(31))])),
        // A valid authorization (anvil account 1's, from `cast wallet sign-auth`).
        Just(json!([{
            "chainId": "0x7a69", "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
            "nonce": "0x0", "yParity": "0x0",
            "r": "0xa17b68dcbf7db8bafb45cbcbeb61316aa330f045e43425e1db41e6c794c2e64",
            "s": "0x1a7f46131075975b44ae67f3bc968a9bce64f257b24571d945bb9026812c114e",
        }])),
        any_json(),
    ];
    prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), value, 0..14)
        .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
}

fn key() -> PrivateKey {
    PrivateKey::from_bytes(&[7; 32]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_json(v in any_json()) {
        let _ = TransactionRequest::from_value(&v);
    }

    #[test]
    fn never_panics_near_valid(v in near_valid()) {
        if let Ok(tx) = TransactionRequest::from_value(&v) {
            match sign_transaction(&key(), &tx) {
                Ok(_) | Err(TxError::FromMismatch { .. }) => {}
                Err(e) => prop_assert!(false, "unexpected {e:?}"),
            }
        } else if let Err(e) = TransactionRequest::from_value(&v) {
            // Every error but NotAnObject names a field, and the message stays short.
            prop_assert!(e.field().is_some());
            prop_assert!(e.to_string().len() < 300, "{}", e);
        }
    }

    #[test]
    fn never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = TransactionRequest::from_json(&bytes);
    }

    /// (0 is covered by unit tests; chainId 0 is rejected by design.)
    #[test]
    fn quantity_forms_agree(n in 1..=u64::MAX, field in prop::sample::select(
        vec!["nonce", "gas", "chainId", "value", "gasPrice"])) {
        let base = json!({"chainId": 1, "nonce": 0, "gas": 21000, "gasPrice": 1});
        let parse = |x: Value| {
            let mut v = base.clone();
            v[field] = x;
            TransactionRequest::from_value(&v).unwrap()
        };
        let a = parse(json!(n));
        let b = parse(json!(n.to_string()));
        let c = parse(json!(format!("{n:#x}")));
        let d = parse(json!(format!("0x{n:040X}")));
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&b, &c);
        prop_assert_eq!(&c, &d);
    }
}
