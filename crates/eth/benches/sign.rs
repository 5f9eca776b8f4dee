//! Signing throughput: our libsecp256k1 path against alloy's default `k256`, and the full
//! JSON → signed transaction path. No criterion: a plain timing loop, `cargo bench -p
//! nitro-wallet-eth` prints µs per operation (single thread, release profile).

#![allow(clippy::unwrap_used)]

use std::{hint::black_box, time::Instant};

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{address, Signature, TxKind, U256};
use k256::ecdsa::SigningKey;
use nitro_wallet_eth::{sign_transaction, PrivateKey, TransactionRequest};

const N: u32 = 20_000;
const SECRET: [u8; 32] = [0x46; 32];
const JSON: &[u8] = br#"{
    "chainId": "0x1", "nonce": "0x2a", "gas": "0x186a0",
    "maxFeePerGas": "0x6fc23ac00", "maxPriorityFeePerGas": "0x77359400",
    "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "value": "0xde0b6b3a7640000", "data": "0xa9059cbb"
}"#;

fn time(name: &str, mut f: impl FnMut(u32)) {
    for i in 0..N / 10 {
        f(i); // warm-up
    }
    let start = Instant::now();
    for i in 0..N {
        f(i);
    }
    let per_op = start.elapsed().as_secs_f64() * 1e6 / f64::from(N);
    println!("{name:<48} {per_op:>8.2} µs/op  (N = {N})");
}

fn tx(nonce: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id: 1,
        nonce,
        gas_limit: 100_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 2_000_000_000,
        to: TxKind::Call(address!("70997970C51812dc3A010C7d01b50e0d17dc79C8")),
        value: U256::from(10u64).pow(U256::from(18)),
        input: vec![0xa9, 0x05, 0x9c, 0xbb].into(),
        ..Default::default()
    }
}

fn main() {
    let key = PrivateKey::from_bytes(&SECRET).unwrap();
    let k256_key = SigningKey::from_slice(&SECRET).unwrap();
    let hash = tx(0).signature_hash();

    time("sign_hash, libsecp256k1 (ours)", |_| {
        black_box(key.sign_hash(black_box(&hash)));
    });
    time("sign_prehash_recoverable, k256 0.13", |_| {
        black_box(
            k256_key
                .sign_prehash_recoverable(black_box(hash.as_slice()))
                .unwrap(),
        );
    });

    time("EIP-1559 hash+sign+encode, libsecp256k1 (ours)", |i| {
        let t = tx(u64::from(i));
        let sig = key.sign_hash(&t.signature_hash());
        black_box(t.into_signed(sig).encoded_2718());
    });
    time("EIP-1559 hash+sign+encode, k256 0.13", |i| {
        let t = tx(u64::from(i));
        let (s, recid) = k256_key
            .sign_prehash_recoverable(t.signature_hash().as_slice())
            .unwrap();
        let sig = Signature::from_signature_and_parity(s, recid.is_y_odd());
        black_box(t.into_signed(sig).encoded_2718());
    });

    let request = TransactionRequest::from_json(JSON).unwrap();
    time("sign_transaction (parsed request)", |_| {
        black_box(sign_transaction(&key, black_box(&request)).unwrap());
    });
    time("TransactionRequest::from_json only", |_| {
        black_box(TransactionRequest::from_json(black_box(JSON)).unwrap());
    });
    time("from_json + sign_transaction + serde_json out", |_| {
        let request = TransactionRequest::from_json(black_box(JSON)).unwrap();
        let signed = sign_transaction(&key, &request).unwrap();
        black_box(serde_json::to_vec(&signed).unwrap());
    });
}
