//! Against real tools, Foundry 1.7.1: anvil (`--hardfork prague`) must accept and mine the
//! blob and set-code transactions we sign, and `cast` must compute the same bytes.
//!
//! The tools are those `scripts/test.sh` installs into `.tools/` (npm `@foundry-rs/anvil`,
//! `@foundry-rs/cast`), found as the host's tests find them; `ANVIL_BIN`/`CAST_BIN` override.
//! Without them these tests fail (they never skip) and say to run `./scripts/test.sh`.
//! JSON-RPC goes over a plain `std::net::TcpStream` (HTTP/1.1, `Connection: close`).

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use alloy_consensus::{EthereumTxEnvelope, TxEip4844WithSidecar};
use alloy_eips::{eip2718::Decodable2718, eip7594::BlobTransactionSidecarVariant};
use alloy_primitives::{address, hex, Address};
use nitro_wallet_eth::{
    sign_authorization, sign_transaction, AuthorizationRequest, PrivateKey, SignedTransaction,
    TransactionRequest,
};
use serde_json::{json, Value};

/// Anvil / Hardhat account 0 and 1 (published development keys, prefunded by anvil).
const DEV0: &str = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const DEV1: &str = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";

/// Where accounts delegate to: any address works, code or not (EIP-7702 does not check).
const DELEGATE: Address = address!("5FbDB2315678afecb367f032d93F642f64180aa3");

/// How long any one JSON-RPC exchange may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(60);

use nitro_wallet_testkit::find_tool;

/// Runs a tool to completion and returns its trimmed stdout.
fn run(tool: &str, args: &[&str]) -> String {
    let out = Command::new(find_tool(tool))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {tool}: {e} (run ./scripts/test.sh)"));
    assert!(
        out.status.success(),
        "{tool} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A fresh anvil on a free port of 127.0.0.1, killed on drop.
struct Anvil {
    port: u16,
    child: Child,
}

impl Anvil {
    fn start() -> Anvil {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(find_tool("anvil"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--hardfork", "prague"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting anvil: {e} (run ./scripts/test.sh)"));
        let mut anvil = Anvil { port, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = anvil.child.try_wait() {
                panic!("anvil exited before listening: {status}");
            }
            assert!(Instant::now() < deadline, "anvil did not start in 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(anvil.rpc("eth_chainId", json!([])), json!("0x7a69"));
        anvil
    }

    /// One JSON-RPC call; panics on a transport error or a JSON-RPC error.
    fn rpc(&mut self, method: &str, params: Value) -> Value {
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}),
        )
        .unwrap();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(RPC_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(RPC_TIMEOUT)).unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.port,
            body.len()
        );
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&body).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();

        let split = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("no end of HTTP headers");
        let headers = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
        let mut body = response[split + 4..].to_vec();
        assert!(
            headers.starts_with("http/1.1 200"),
            "{method}: {}",
            headers.lines().next().unwrap_or_default()
        );
        if headers.contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        let reply: Value = serde_json::from_slice(&body).unwrap();
        if let Some(e) = reply.get("error") {
            panic!("{method} failed: {e}");
        }
        reply["result"].clone()
    }

    fn nonce(&mut self, who: Address) -> u64 {
        let n = self.rpc("eth_getTransactionCount", json!([who, "pending"]));
        u64::from_str_radix(n.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
    }

    /// Sends a signed transaction and returns its receipt (anvil mines on arrival).
    fn send(&mut self, signed: &SignedTransaction) -> Value {
        let hash = self.rpc("eth_sendRawTransaction", json!([signed.raw_transaction]));
        assert_eq!(hash, json!(signed.transaction_hash));
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                return receipt;
            }
            assert!(Instant::now() < deadline, "not mined in 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Decodes an HTTP/1.1 chunked body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = body.windows(2).position(|w| w == b"\r\n").unwrap();
        let size_line = std::str::from_utf8(&body[..eol]).unwrap();
        let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16).unwrap();
        body = &body[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&body[..size]);
        body = &body[size + 2..];
    }
}

/// A blob of canonical field elements: `data` in the low 31 bytes of the first elements.
fn blob_hex(data: &[u8]) -> String {
    let mut blob = vec![0u8; 131_072];
    for (i, b) in data.iter().enumerate() {
        blob[(i / 31) * 32 + 1 + i % 31] = *b;
    }
    format!("0x{}", hex::encode(blob))
}

#[test]
fn anvil_mines_our_blob_transaction() {
    let mut anvil = Anvil::start();
    let key = PrivateKey::from_hex(DEV0).unwrap();
    let recipient = PrivateKey::from_hex(DEV1).unwrap().address();
    let tx = TransactionRequest::from_value(&json!({
        "chainId": "0x7a69",
        "nonce": anvil.nonce(key.address()),
        "gas": 21000,
        "maxFeePerGas": "10000000000",
        "maxPriorityFeePerGas": "1000000000",
        "maxFeePerBlobGas": "1000000000",
        "to": recipient,
        "value": "0x1",
        "blobs": [blob_hex(b"signed by nitro-wallet")],
    }))
    .unwrap();
    assert_eq!(tx.tx_type(), 3);
    let signed = sign_transaction(&key, &tx).unwrap();

    let receipt = anvil.send(&signed);
    assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
    assert_eq!(receipt["type"], json!("0x3"), "{receipt}");
    assert_eq!(receipt["blobGasUsed"], json!("0x20000"), "{receipt}");
    let mined = anvil.rpc("eth_getTransactionByHash", json!([signed.transaction_hash]));
    assert_eq!(
        mined["blobVersionedHashes"],
        json!(tx.blob_versioned_hashes())
    );
    assert_eq!(
        mined["from"].as_str().unwrap(),
        key.address().to_string().to_lowercase()
    );
}

#[test]
fn anvil_applies_our_eip7702_delegation() {
    let mut anvil = Anvil::start();
    let sender = PrivateKey::from_hex(DEV0).unwrap();
    let authority = PrivateKey::from_hex(DEV1).unwrap();
    assert_eq!(
        anvil.rpc("eth_getCode", json!([authority.address(), "latest"])),
        json!("0x")
    );

    let request = AuthorizationRequest::from_value(&json!({
        "chainId": "0x7a69",
        "address": DELEGATE,
        "nonce": anvil.nonce(authority.address()),
    }))
    .unwrap();
    let authorization = sign_authorization(&authority, &request);
    // The signed authorization goes into the transaction's JSON as it is.
    let tx = TransactionRequest::from_value(&json!({
        "chainId": 31337,
        "nonce": anvil.nonce(sender.address()),
        "gas": 100000,
        "maxFeePerGas": "10000000000",
        "maxPriorityFeePerGas": "1000000000",
        "to": authority.address(),
        "authorizationList": [authorization],
    }))
    .unwrap();
    assert_eq!(tx.tx_type(), 4);
    let signed = sign_transaction(&sender, &tx).unwrap();

    let receipt = anvil.send(&signed);
    assert_eq!(receipt["status"], json!("0x1"), "{receipt}");
    assert_eq!(receipt["type"], json!("0x4"), "{receipt}");
    // The delegation designator: 0xef0100 ‖ delegate.
    let code = anvil.rpc("eth_getCode", json!([authority.address(), "latest"]));
    assert_eq!(code, json!(format!("0xef0100{}", hex::encode(DELEGATE))));
}

/// `cast wallet sign-auth`, run now, signs the same authorization bytes as we do.
#[test]
fn cast_signs_the_same_authorization() {
    let key = PrivateKey::from_hex(DEV1).unwrap();
    for (chain_id, nonce) in [(31337u64, 0u64), (1, 7), (0, 12345)] {
        let theirs = run(
            "cast",
            &[
                "wallet",
                "sign-auth",
                "--private-key",
                DEV1,
                "--chain",
                &chain_id.to_string(),
                "--nonce",
                &nonce.to_string(),
                &DELEGATE.to_string(),
            ],
        );
        let request = AuthorizationRequest::from_value(&json!({
            "chainId": chain_id, "address": DELEGATE, "nonce": nonce,
        }))
        .unwrap();
        let ours = sign_authorization(&key, &request);
        let ours = alloy_eips::eip7702::Authorization {
            chain_id: ours.chain_id,
            address: ours.address,
            nonce: ours.nonce,
        }
        .into_signed(alloy_primitives::Signature::new(
            ours.r,
            ours.s,
            ours.y_parity,
        ));
        let mut rlp = Vec::new();
        alloy_rlp::Encodable::encode(&ours, &mut rlp);
        assert_eq!(
            format!("0x{}", hex::encode(rlp)),
            theirs,
            "chain {chain_id}"
        );
    }
}

/// `cast mktx --blob --eip4844`, run now (offline), builds the same network-form bytes as we
/// do for the blob it made.
#[test]
fn cast_builds_the_same_blob_transaction() {
    let data = std::env::temp_dir().join(format!("nitro-wallet-eth-blob-{}", std::process::id()));
    std::fs::write(&data, b"a blob built by cast").unwrap();
    let theirs = run(
        "cast",
        &[
            "mktx",
            "--private-key",
            DEV0,
            "--chain",
            "31337",
            "--nonce",
            "4",
            "--gas-limit",
            "21000",
            "--gas-price",
            "2000000000",
            "--priority-gas-price",
            "1000000000",
            "--blob",
            "--eip4844",
            "--blob-gas-price",
            "7",
            "--path",
            data.to_str().unwrap(),
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        ],
    );
    let _ = std::fs::remove_file(&data);
    let theirs = hex::decode(theirs).unwrap();

    // The blob cast encoded the file into, read back with alloy.
    let mut buf = theirs.as_slice();
    let decoded =
        EthereumTxEnvelope::<TxEip4844WithSidecar<BlobTransactionSidecarVariant>>::decode_2718(
            &mut buf,
        )
        .unwrap();
    let EthereumTxEnvelope::Eip4844(decoded) = decoded else {
        panic!("cast did not build a blob transaction");
    };
    let BlobTransactionSidecarVariant::Eip4844(sidecar) = &decoded.tx().sidecar else {
        panic!("cast built an EIP-7594 sidecar despite --eip4844");
    };
    let blobs: Vec<String> = sidecar.blobs.iter().map(|b| b.to_string()).collect();

    let key = PrivateKey::from_hex(DEV0).unwrap();
    let tx = TransactionRequest::from_value(&json!({
        "chainId": 31337, "nonce": 4, "gas": 21000,
        "maxFeePerGas": 2000000000u64, "maxPriorityFeePerGas": 1000000000u64,
        "maxFeePerBlobGas": 7,
        "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        "blobs": blobs,
    }))
    .unwrap();
    let ours = sign_transaction(&key, &tx).unwrap();
    assert!(
        ours.raw_transaction.as_ref() == theirs.as_slice(),
        "raw bytes differ from cast's"
    );
    assert_eq!(ours.transaction_hash, *decoded.hash());
}

/// The tool lookup works for both tools (so a missing one fails here with the message).
#[test]
fn tools_are_foundry_1_7_1() {
    for tool in ["anvil", "cast"] {
        let version = run(tool, &["--version"]);
        assert!(version.contains("1.7.1"), "{tool}: {version}");
    }
}
