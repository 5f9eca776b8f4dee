//! Known-answer vectors from outside this project.
//!
//! * The EIP-155 example (text of EIP-155).
//! * Transactions produced by Foundry's `cast` 1.7.1 (`cast mktx`, offline, no RPC), each with
//!   the exact command that produced it. Transaction hashes are `cast keccak <raw>`.
//! * EIP-7702 authorizations: see `authorization.rs`'s unit tests (`cast wallet sign-auth`)
//!   and, computed by `cast` at test time, `node.rs`.

use alloy_primitives::{address, b256, hex, keccak256, U256};
use nitro_wallet_eth::{sign_transaction, PrivateKey, TransactionRequest};
use serde_json::{json, Value};

/// Hardhat / anvil account 0 (published default development key).
const HARDHAT0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

struct Vector {
    key: &'static str,
    request: Value,
    raw: &'static [u8],
    hash: alloy_primitives::B256,
}

fn access_list() -> Value {
    json!([{
        "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
        "storageKeys": [
            "0x0000000000000000000000000000000000000000000000000000000000000000",
            "0x0000000000000000000000000000000000000000000000000000000000000001"
        ]
    }])
}

fn vectors() -> Vec<Vector> {
    vec![
        // EIP-155 example; also reproduced by:
        // cast mktx --private-key 0x4646464646464646464646464646464646464646464646464646464646464646 \
        //   --legacy --chain 1 --nonce 9 --gas-limit 21000 --gas-price 20000000000 \
        //   --value 1000000000000000000 0x3535353535353535353535353535353535353535
        Vector {
            key: "4646464646464646464646464646464646464646464646464646464646464646",
            request: json!({
                "chainId": "0x1", "nonce": "0x9", "gasPrice": "0x4a817c800", "gas": "0x5208",
                "to": "0x3535353535353535353535353535353535353535",
                "value": "0xde0b6b3a7640000",
            }),
            raw: &hex!("f86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a028ef61340bd939bc2195fe537567866003e1a15d3c71ff63e1590620aa636276a067cbe9d8997f761aecb703304b3800ccf555c9f3dc64214b297fb1966a3b6d83"),
            hash: b256!("33469b22e9f636356c4160a87eb19df52b7412e8eac32a4a55ffe88ea8350788"),
        },
        // EIP-2930:
        // cast mktx --private-key $HARDHAT0 --legacy --chain 31337 --nonce 7 --gas-limit 60000 \
        //   --gas-price 1000000000 --value 12345 --access-list "$AL" \
        //   0x70997970C51812dc3A010C7d01b50e0d17dc79C8 0xdeadbeef
        // with AL='[{"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","storageKeys":
        //   ["0x00…00","0x00…01"]}]' (the two 32-byte keys of access_list() above).
        Vector {
            key: HARDHAT0,
            request: json!({
                "type": "0x1", "chainId": 31337, "nonce": 7, "gasPrice": "1000000000",
                "gas": 60000, "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                "value": 12345, "input": "0xdeadbeef", "accessList": access_list(),
            }),
            raw: &hex!("01f8c9827a6907843b9aca0082ea609470997970c51812dc3a010c7d01b50e0d17dc79c882303984deadbeeff85bf859945fbdb2315678afecb367f032d93f642f64180aa3f842a00000000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000000000000101a027c99efeb7203fddc7bddc678524af0991e46ae52e15cdecf100ae5fa0d6db6ea0358060fc03c29bbea8da9f76cb6e237d580d7cf41a44a95a3775e81990b489b8"),
            hash: b256!("23a239a0fa2b767edd9f100d77a095f5858f611ed856975aa506965956bf4563"),
        },
        // EIP-1559 with access list:
        // cast mktx --private-key $HARDHAT0 --chain 1 --nonce 42 --gas-limit 100000 \
        //   --gas-price 30000000000 --priority-gas-price 2000000000 \
        //   --value 1000000000000000000 --access-list "$AL" \
        //   0x70997970C51812dc3A010C7d01b50e0d17dc79C8 0xa9059cbb
        Vector {
            key: HARDHAT0,
            request: json!({
                "chainId": "0x1", "nonce": "0x2a", "gas": "0x186a0",
                "maxFeePerGas": "0x6fc23ac00", "maxPriorityFeePerGas": "0x77359400",
                "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
                "value": "0xde0b6b3a7640000", "data": "0xa9059cbb",
                "accessList": access_list(),
                "from": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            }),
            raw: &hex!("02f8d4012a84773594008506fc23ac00830186a09470997970c51812dc3a010c7d01b50e0d17dc79c8880de0b6b3a764000084a9059cbbf85bf859945fbdb2315678afecb367f032d93f642f64180aa3f842a00000000000000000000000000000000000000000000000000000000000000000a0000000000000000000000000000000000000000000000000000000000000000101a052609525c3713559ce9060e5a9b031e2420ae424e8fe61ed1e5741578ec0237da07c430a2082988d5095745b091f5d616a734e59d275d5518035c4ac92d32f2c0b"),
            hash: b256!("c0f9664e3c011fc53a7e8cb207d64c7a5d81e4a2c2bbb289c7289184ad73f8c1"),
        },
        // EIP-1559 plain transfer:
        // cast mktx --private-key $HARDHAT0 --chain 1 --nonce 0 --gas-limit 21000 \
        //   --gas-price 30000000000 --priority-gas-price 2000000000 --value 1 \
        //   0x70997970C51812dc3A010C7d01b50e0d17dc79C8
        Vector {
            key: HARDHAT0,
            request: json!({
                "chainId": 1, "nonce": 0, "gasLimit": "21000",
                "maxFeePerGas": "30000000000", "maxPriorityFeePerGas": "2000000000",
                "to": "0x70997970c51812dc3a010c7d01b50e0d17dc79c8", "value": "1",
            }),
            raw: &hex!("02f86b018084773594008506fc23ac008252089470997970c51812dc3a010c7d01b50e0d17dc79c80180c001a035d203f44af25573e0465733b9c4a57a0b32a6a19e132925ab1fad15d3222b0da06c8c840dc72ca8747cd56eae41699e1487381b2448f960fd0dea90e42884e149"),
            hash: keccak256(hex!("02f86b018084773594008506fc23ac008252089470997970c51812dc3a010c7d01b50e0d17dc79c80180c001a035d203f44af25573e0465733b9c4a57a0b32a6a19e132925ab1fad15d3222b0da06c8c840dc72ca8747cd56eae41699e1487381b2448f960fd0dea90e42884e149")),
        },
        // EIP-7702, with an authorization signed by anvil account 1
        // (DEV1=0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d; `cast wallet
        // sign-auth --private-key $DEV1 --chain 31337 --nonce 0
        // 0x5FbDB2315678afecb367f032d93F642f64180aa3` printed its RLP, AUTH below):
        // cast mktx --private-key $HARDHAT0 --chain 31337 --nonce 3 --gas-limit 100000 \
        //   --gas-price 2000000000 --priority-gas-price 1000000000 --auth $AUTH \
        //   0x70997970C51812dc3A010C7d01b50e0d17dc79C8 0xdeadbeef
        // AUTH=0xf85c827a69945fbdb2315678afecb367f032d93f642f64180aa38080a00a17b68dcbf7db8bafb45
        //   cbcbeb61316aa330f045e43425e1db41e6c794c2e64a01a7f46131075975b44ae67f3bc968a9bce64f257
        //   b24571d945bb9026812c114e
        Vector {
            key: HARDHAT0,
            request: json!({
                "chainId": "0x7a69", "nonce": "0x3", "gas": "0x186a0",
                "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
                "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "input": "0xdeadbeef",
                "authorizationList": [{
                    "chainId": "0x7a69",
                    "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
                    "nonce": "0x0",
                    "yParity": "0x0",
                    "r": "0xa17b68dcbf7db8bafb45cbcbeb61316aa330f045e43425e1db41e6c794c2e64",
                    "s": "0x1a7f46131075975b44ae67f3bc968a9bce64f257b24571d945bb9026812c114e",
                }],
            }),
            raw: &hex!("04f8d1827a6903843b9aca008477359400830186a09470997970c51812dc3a010c7d01b50e0d17dc79c88084deadbeefc0f85ef85c827a69945fbdb2315678afecb367f032d93f642f64180aa38080a00a17b68dcbf7db8bafb45cbcbeb61316aa330f045e43425e1db41e6c794c2e64a01a7f46131075975b44ae67f3bc968a9bce64f257b24571d945bb9026812c114e01a07be6eceb8aae1738fef29b6c144e6cfbeaa2b94fc7f4ea310a7ed3328325cb1ea06e2324de0bbdcf25357212ca16fa3353ffd1566a5f4dbad63a0d5ea6f84b013c"),
            hash: keccak256(hex!("04f8d1827a6903843b9aca008477359400830186a09470997970c51812dc3a010c7d01b50e0d17dc79c88084deadbeefc0f85ef85c827a69945fbdb2315678afecb367f032d93f642f64180aa38080a00a17b68dcbf7db8bafb45cbcbeb61316aa330f045e43425e1db41e6c794c2e64a01a7f46131075975b44ae67f3bc968a9bce64f257b24571d945bb9026812c114e01a07be6eceb8aae1738fef29b6c144e6cfbeaa2b94fc7f4ea310a7ed3328325cb1ea06e2324de0bbdcf25357212ca16fa3353ffd1566a5f4dbad63a0d5ea6f84b013c")),
        },
        // EIP-1559 contract creation (`to` absent):
        // cast mktx --private-key $HARDHAT0 --chain 5 --nonce 3 --gas-limit 200000 \
        //   --gas-price 2000000000 --priority-gas-price 1000000000 \
        //   --create 0x6080604052348015600f57600080fd5b50
        Vector {
            key: HARDHAT0,
            request: json!({
                "type": 2, "chainId": 5, "nonce": 3, "gas": 200000,
                "maxFeePerGas": 2000000000u64, "maxPriorityFeePerGas": 1000000000u64,
                "to": null, "input": "0x6080604052348015600f57600080fd5b50",
            }),
            raw: &hex!("02f8680503843b9aca00847735940083030d408080916080604052348015600f57600080fd5b50c080a079667867998c9a34ff49e237acfbf57db6e2cc4af8756ab6bbfd13187c776df0a043f352648bd0314c15228e437d58c18b27d1beff33f2f498883e05ea15182fac"),
            hash: keccak256(hex!("02f8680503843b9aca00847735940083030d408080916080604052348015600f57600080fd5b50c080a079667867998c9a34ff49e237acfbf57db6e2cc4af8756ab6bbfd13187c776df0a043f352648bd0314c15228e437d58c18b27d1beff33f2f498883e05ea15182fac")),
        },
    ]
}

#[test]
fn known_answers() {
    for (i, v) in vectors().into_iter().enumerate() {
        let key = PrivateKey::from_hex(v.key).unwrap();
        let tx = TransactionRequest::from_value(&v.request).unwrap();
        let signed = sign_transaction(&key, &tx).unwrap();
        assert_eq!(signed.raw_transaction.as_ref(), v.raw, "vector {i}");
        assert_eq!(signed.transaction_hash, v.hash, "vector {i}");
        assert_eq!(signed.transaction_hash, keccak256(v.raw), "vector {i}");
        assert_eq!(signed.from, key.address());
        // The same bytes through from_json.
        let json = serde_json::to_vec(&v.request).unwrap();
        let again = sign_transaction(&key, &TransactionRequest::from_json(&json).unwrap());
        assert_eq!(again.unwrap(), signed, "vector {i}");
        // v: EIP-155 for legacy, parity for typed.
        let parity = U256::from(u8::from(signed.signature.y_parity));
        let expected_v = if tx.tx_type() == 0 {
            U256::from(tx.chain_id()) * U256::from(2) + U256::from(35) + parity
        } else {
            parity
        };
        assert_eq!(signed.signature.v, expected_v, "vector {i}");
    }
}

#[test]
fn hardhat_address() {
    let key = PrivateKey::from_hex(HARDHAT0).unwrap();
    assert_eq!(
        key.address(),
        address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
    );
}
