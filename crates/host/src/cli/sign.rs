//! `nitro-wallet sign …`: transactions, EIP-191 messages, EIP-712 typed data, raw digests and
//! EIP-7702 authorizations, each a `POST /v1/keys/{address}/sign/…` on a running server.
//!
//! Input that is not what the server expects (JSON that does not parse, hex that is not hex)
//! is refused here with a usage error, before anything is sent.

use super::{
    client::Client,
    output::{text, Fields},
    parse_address, read_source, ClientArgs, Failure,
};
use alloy_primitives::{Address, B256};
use clap::Subcommand;

/// `nitro-wallet sign …`
#[derive(Debug, Subcommand)]
pub enum SignCommand {
    /// Sign a transaction given as an Ethereum JSON-RPC transaction object (legacy, EIP-2930,
    /// EIP-1559, EIP-4844 or EIP-7702, by its fields).
    #[command(after_help = "Example:\n  nitro-wallet sign tx 0xADDRESS --tx \
                            '{\"chainId\":\"0x1\",\"nonce\":\"0x0\",\"gas\":\"21000\",\
                            \"gasPrice\":\"1000000000\",\"to\":\"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\"}'\n  \
                            nitro-wallet sign tx 0xADDRESS < tx.json")]
    Tx {
        /// The signing key's address.
        #[arg(value_parser = parse_address)]
        address: Address,
        /// The transaction JSON; `-` reads standard input.
        #[arg(long = "tx", default_value = "-")]
        transaction: String,
    },
    /// Sign an EIP-191 personal message, as `personal_sign` does: the message's UTF-8 text,
    /// or with --hex the bytes it spells.
    #[command(
        after_help = "Examples:\n  nitro-wallet sign message 0xADDRESS 'Sign in to \
                            example.com'\n  nitro-wallet sign message 0xADDRESS --hex \
                            0x48656c6c6f\n  printf %s 'hello' | nitro-wallet sign message \
                            0xADDRESS"
    )]
    Message {
        /// The signing key's address.
        #[arg(value_parser = parse_address)]
        address: Address,
        /// The message; `-` reads standard input, signed exactly as read (use `printf %s`,
        /// not `echo`, to leave out a trailing newline).
        #[arg(default_value = "-")]
        message: String,
        /// The message is hex (an optional 0x prefix) of the bytes to sign.
        #[arg(long)]
        hex: bool,
    },
    /// Sign EIP-712 typed data, as `eth_signTypedData_v4` does: a JSON document with `types`,
    /// `primaryType`, `domain` and `message`.
    #[command(
        after_help = "Examples:\n  nitro-wallet sign typed-data 0xADDRESS permit.json\n  \
                            cat permit.json | nitro-wallet sign typed-data 0xADDRESS"
    )]
    TypedData {
        /// The signing key's address.
        #[arg(value_parser = parse_address)]
        address: Address,
        /// File holding the JSON document; `-` reads standard input.
        #[arg(default_value = "-")]
        file: String,
    },
    /// Sign a raw 32-byte digest. Off unless the key's policy has `"raw_hash": true`: a
    /// digest can be anything, a transaction included.
    Hash {
        /// The signing key's address.
        #[arg(value_parser = parse_address)]
        address: Address,
        /// The digest: 0x followed by 64 hex digits.
        #[arg(value_parser = parse_hash)]
        hash: B256,
    },
    /// Sign an EIP-7702 authorization: the key's account delegates to a contract's code.
    #[command(
        after_help = "Example:\n  nitro-wallet sign authorization 0xADDRESS --chain-id \
                            1 --contract 0x63c0c19a282a1B52b07dD5a65b58948A07DAE32B --nonce 0"
    )]
    Authorization {
        /// The signing key's address (the authority).
        #[arg(value_parser = parse_address)]
        address: Address,
        /// The chain it is valid on (0: every chain, which the key's policy must allow).
        #[arg(long)]
        chain_id: u64,
        /// The contract whose code the account takes on.
        #[arg(long, value_parser = parse_address)]
        contract: Address,
        /// The authority account's nonce when the authorization is used.
        #[arg(long)]
        nonce: u64,
    },
}

/// Runs `sign …`.
///
/// # Errors
/// A usage [`Failure`] for input that cannot be sent; otherwise when the server is
/// unreachable or refuses.
pub async fn sign(args: &ClientArgs, command: SignCommand) -> crate::Result<()> {
    let (address, kind, body) = request(command)?;
    let client = Client::new(args)?;
    let path = format!("/v1/keys/{}/sign/{kind}", address.to_checksum(None));
    let reply = client
        .send(reqwest::Method::POST, &path, Some(&body))
        .await?;
    reply.print(args.json, |out| match kind {
        "transaction" => Fields::default()
            .add("raw_transaction", text(&out["raw_transaction"]))
            .add("transaction_hash", text(&out["transaction_hash"]))
            .add("from", text(&out["from"]))
            .to_string(),
        "authorization" => Fields::default()
            .add("chain_id", text(&out["chainId"]))
            .add("address", text(&out["address"]))
            .add("nonce", text(&out["nonce"]))
            .add("y_parity", text(&out["yParity"]))
            .add("r", text(&out["r"]))
            .add("s", text(&out["s"]))
            .to_string(),
        _ => Fields::default()
            .add("signature", text(&out["signature"]))
            .add("signer", text(&out["signer"]))
            .add("hash", text(&out["hash"]))
            .to_string(),
    });
    Ok(())
}

/// The key, the kind of signature (the last segment of the route) and the request body.
fn request(command: SignCommand) -> crate::Result<(Address, &'static str, serde_json::Value)> {
    Ok(match command {
        SignCommand::Tx {
            address,
            transaction,
        } => {
            let text = if transaction == "-" {
                String::from_utf8(read_source("-", "the transaction")?)
                    .map_err(|_| Failure::usage("the transaction is not UTF-8 text"))?
            } else {
                transaction
            };
            let tx = serde_json::from_str(&text).map_err(|e| {
                Failure::usage(format!(
                    "the transaction is not valid JSON: {e}\n  Give a JSON-RPC transaction \
                     object, e.g. {{\"chainId\":\"0x1\",\"nonce\":\"0x0\",\"gas\":\"21000\",…}}"
                ))
            })?;
            (address, "transaction", tx)
        }
        SignCommand::Message {
            address,
            message,
            hex,
        } => {
            let bytes = if message == "-" {
                read_source("-", "the message")?
            } else {
                message.into_bytes()
            };
            let message = if hex {
                let digits = String::from_utf8_lossy(&bytes);
                let digits = digits.trim();
                let raw = hex::decode(digits.strip_prefix("0x").unwrap_or(digits))
                    .map_err(|e| Failure::usage(format!("--hex: the message is not hex: {e}")))?;
                serde_json::json!({ "raw": format!("0x{}", hex::encode(raw)) })
            } else {
                match String::from_utf8(bytes) {
                    Ok(text) => serde_json::json!({ "text": text }),
                    // Bytes that are not text are signed as they are, like --hex.
                    Err(e) => {
                        serde_json::json!({ "raw": format!("0x{}", hex::encode(e.as_bytes())) })
                    }
                }
            };
            (
                address,
                "message",
                serde_json::json!({ "message": message }),
            )
        }
        SignCommand::TypedData { address, file } => {
            let bytes = read_source(&file, "the typed data")?;
            let name = if file == "-" { "standard input" } else { &file };
            let doc: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
                Failure::usage(format!(
                    "the typed data in {name} is not valid JSON: {e}\n  Give an EIP-712 \
                     document: {{\"types\": …, \"primaryType\": …, \"domain\": …, \"message\": …}}"
                ))
            })?;
            (address, "typed-data", doc)
        }
        SignCommand::Hash { address, hash } => {
            (address, "hash", serde_json::json!({ "hash": hash }))
        }
        SignCommand::Authorization {
            address,
            chain_id,
            contract,
            nonce,
        } => {
            let body = serde_json::json!({
                "chainId": format!("{chain_id:#x}"),
                "address": contract.to_checksum(None),
                "nonce": format!("{nonce:#x}"),
            });
            (address, "authorization", body)
        }
    })
}

/// A digest argument: 0x + 64 hex digits.
fn parse_hash(s: &str) -> Result<B256, String> {
    s.strip_prefix("0x")
        .filter(|h| h.len() == 64)
        .and_then(|_| s.parse().ok())
        .ok_or_else(|| "not a digest: expected 0x followed by 64 hex digits".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

    fn address() -> Address {
        A.parse().unwrap()
    }

    #[test]
    fn messages_are_sent_as_text_or_as_bytes() {
        let body = |message: &str, hex| {
            request(SignCommand::Message {
                address: address(),
                message: message.into(),
                hex,
            })
            .map(|(_, kind, body)| (kind, body))
            .map_err(|e| e.to_string())
        };
        assert_eq!(
            body("0xdead", false),
            Ok((
                "message",
                serde_json::json!({ "message": { "text": "0xdead" } })
            ))
        );
        assert_eq!(
            body("DEAD", true),
            Ok((
                "message",
                serde_json::json!({ "message": { "raw": "0xdead" } })
            ))
        );
        let e = body("0xnope", true).unwrap_err();
        assert!(e.contains("not hex"), "{e}");
    }

    #[test]
    fn bad_input_is_a_usage_error() {
        let e = request(SignCommand::Tx {
            address: address(),
            transaction: "{not json".into(),
        })
        .unwrap_err();
        assert_eq!(super::super::exit_code(&*e), 2);
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        assert!(parse_hash(&format!("0x{}", "ab".repeat(32))).is_ok());
        assert!(parse_hash(&"ab".repeat(32)).is_err());
        assert!(parse_hash("0x1234").is_err());
    }

    #[test]
    fn authorizations_are_sent_as_quantities() {
        let (_, kind, body) = request(SignCommand::Authorization {
            address: address(),
            chain_id: 10,
            contract: address(),
            nonce: 0,
        })
        .unwrap();
        assert_eq!(kind, "authorization");
        assert_eq!(
            body,
            serde_json::json!({ "chainId": "0xa", "address": A, "nonce": "0x0" })
        );
    }
}
