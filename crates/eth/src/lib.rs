//! Ethereum signing for nitro-wallet: keys, transaction requests, signed transactions.
//!
//! This crate is the pure core of the wallet: no I/O, no async, no global state beyond
//! libsecp256k1's read-only context. It is shared by the enclave (which holds keys and signs)
//! and the host (which parses and validates requests before they cross vsock), and it is the
//! place to fuzz and benchmark.
//!
//! * [`PrivateKey`]: a secp256k1 key that zeroizes itself and never prints its secret.
//! * [`TransactionRequest`]: a strictly parsed JSON-RPC transaction object (types 0 to 4:
//!   legacy, EIP-2930, EIP-1559, EIP-4844 blob and EIP-7702 set-code transactions).
//! * [`sign_transaction`] → [`SignedTransaction`]: EIP-155 / EIP-2718 raw transaction (for a
//!   blob transaction given its blobs, the network form with the KZG sidecar), hash and
//!   signature parts, in the JSON shape of the REST API.
//! * [`sign_authorization`] ([`AuthorizationRequest`]) → [`SignedAuthorization`]: an EIP-7702
//!   authorization, in the JSON shape of an `authorizationList` entry.
//! * [`sign_personal_message`] (EIP-191, [`PersonalMessage`]) and [`sign_typed_data`] (EIP-712)
//!   → [`MessageSignature`].
//!
//! ```
//! use nitro_wallet_eth::{sign_transaction, PrivateKey, TransactionRequest};
//!
//! let key = PrivateKey::from_hex(
//!     "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
//! )?;
//! let tx = TransactionRequest::from_json(br#"{
//!     "chainId": "0x1", "nonce": "0x0", "gas": "21000",
//!     "maxFeePerGas": "30000000000", "maxPriorityFeePerGas": "2000000000",
//!     "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "value": "0x1"
//! }"#)?;
//! let signed = sign_transaction(&key, &tx)?;
//! assert_eq!(signed.from, key.address());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod authorization;
mod key;
mod message;
mod request;
mod sign;

/// Serde for an [`Address`] that writes EIP-55 checksummed hex and reads any case
/// (`#[serde(with = "nitro_wallet_eth::checksummed")]`); alloy's own serde writes lowercase.
pub mod checksummed {
    use alloy_primitives::Address;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes the EIP-55 form.
    ///
    /// # Errors
    /// The serializer's.
    pub fn serialize<S: Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(a.to_checksum_buffer(None).as_str())
    }

    /// Reads any case.
    ///
    /// # Errors
    /// When the string is not an address.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        Address::deserialize(d)
    }
}

pub use authorization::{sign_authorization, AuthorizationRequest, SignedAuthorization};
pub use key::{Error, PrivateKey};
pub use message::{
    eip191_hash, sign_personal_message, sign_typed_data, typed_data_hash, typed_data_hash_value,
    MessageSignature, PersonalMessage, PersonalMessageError, TypedDataError, MAX_TYPED_DATA_DEPTH,
    MAX_TYPED_DATA_FIELDS, MAX_TYPED_DATA_LEN, MAX_TYPED_DATA_TYPES,
};
pub use request::{TransactionRequest, TxError};
pub use sign::{sign_transaction, SignatureParts, SignedTransaction};

/// Re-exported so that callers can name the types in this crate's API without depending on
/// matching alloy versions themselves.
pub use alloy_primitives::{Address, Bytes, Signature, B256, U256};
