//! Parsing an Ethereum JSON-RPC transaction object into a typed, validated transaction.
//!
//! This is the one parser of untrusted transaction JSON in the project (the REST
//! `sign/transaction` body and the `eth_signTransaction` parameter both come here), so it is
//! strict, never guesses, never panics, and names the offending field in every error.
//!
//! The rules are documented on [`TransactionRequest`]. The field parsers at the bottom are
//! shared with [`crate::AuthorizationRequest`].

use alloy_consensus::{
    Transaction, TxEip1559, TxEip2930, TxEip4844, TxEip4844Variant, TxEip4844WithSidecar,
    TxEip7702, TxLegacy, TypedTransaction,
};
use alloy_eips::{
    eip2930::{AccessList, AccessListItem},
    eip4844::{
        Blob, BlobTransactionSidecar, BLS_MODULUS_BYTES, BYTES_PER_BLOB, FIELD_ELEMENT_BYTES_USIZE,
        VERSIONED_HASH_VERSION_KZG,
    },
    eip7702::{constants::SECP256K1N_HALF, Authorization, SignedAuthorization},
    eip7840::BlobParams,
};
use alloy_primitives::{Address, Bytes, Signature, TxKind, B256, U256};
use serde_json::{Map, Value};

/// The longest piece of client input ever quoted back in an error reason.
const MAX_QUOTED: usize = 32;

/// The most blobs one transaction may carry: Prague's limit (EIP-7691), 9. Osaka (EIP-7594)
/// lowers it to 6 (`alloy_eips::eip7594::MAX_BLOBS_PER_TX_FUSAKA`); nodes of later forks
/// reject the extra blobs themselves.
const MAX_BLOBS_PER_TX: usize = BlobParams::prague().max_blobs_per_tx as usize;

/// The secp256k1 group order n (`r` must be below it).
const SECP256K1_N: U256 = U256::from_be_slice(&[
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
]);

/// Why a transaction (or authorization) request was rejected.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TxError {
    /// A required field is absent (or `null`).
    #[error("missing field `{field}`")]
    Missing {
        /// The camelCase JSON name of the field.
        field: &'static str,
    },
    /// A field is present but malformed or contradicts another field.
    #[error("invalid field `{field}`: {reason}")]
    Invalid {
        /// The camelCase JSON name of the field, with a path for nested fields
        /// (`accessList[0].storageKeys[1]`, `authorizationList[0].s`).
        field: String,
        /// What is wrong; quotes at most a short, truncated piece of the input.
        reason: String,
    },
    /// The transaction type is not one this crate signs (5 and above).
    #[error("unsupported transaction type {0}")]
    UnsupportedType(u64),
    /// The request's `from` is not the address of the signing key.
    #[error("`from` is {got} but the signing key's address is {expected}")]
    FromMismatch {
        /// The signing key's address.
        expected: Address,
        /// The `from` given in the request.
        got: Address,
    },
    /// The body is not a JSON object (or not JSON at all).
    #[error("the request must be a JSON object")]
    NotAnObject,
}

impl TxError {
    /// The JSON field this error is about, if any.
    pub fn field(&self) -> Option<&str> {
        match self {
            TxError::Missing { field } => Some(field),
            TxError::Invalid { field, .. } => Some(field),
            TxError::UnsupportedType(_) => Some("type"),
            TxError::FromMismatch { .. } => Some("from"),
            TxError::NotAnObject => None,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> TxError {
        TxError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The unsigned transaction inside a [`TransactionRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnsignedTx {
    /// Type 0, always with an EIP-155 chain id.
    Legacy(TxLegacy),
    /// Type 1.
    Eip2930(TxEip2930),
    /// Type 2.
    Eip1559(TxEip1559),
    /// Type 3: with the sidecar (blobs, commitments, proofs) when the request gave `blobs`,
    /// without when it gave only `blobVersionedHashes`.
    Eip4844(TxEip4844Variant<BlobTransactionSidecar>),
    /// Type 4.
    Eip7702(TxEip7702),
}

/// A parsed, validated transaction, ready to be signed with [`crate::sign_transaction`].
///
/// # Parsing rules
///
/// In the order they are applied:
///
/// * The body must be a JSON object ([`TxError::NotAnObject`]). Keys are the camelCase names
///   of `eth_signTransaction`. Unknown keys are **ignored** (clients send extras such as
///   `hash`, `blockHash` or `v`), and a key whose value is `null` counts as absent.
/// * Quantities accept a `0x`-hex string (`"0x0"`, leading zeros allowed, `"0x"` rejected), a
///   decimal string (`"21000"`) or a non-negative JSON integer. Floats, negatives, signs,
///   whitespace and values that overflow the field (u64 for `nonce`, `gas`, `chainId`, `type`
///   and authorization nonces; u128 for fees; U256 for `value` and for an authorization's
///   `chainId`, `r` and `s`) are rejected.
/// * `sidecar` is rejected ([`TxError::Invalid`]): blob data is given as `blobs`, and the
///   commitments and proofs are computed here.
/// * The type is the explicit `type` (0 to 4; anything else is [`TxError::UnsupportedType`])
///   or is inferred: `authorizationList` → 4, else `maxFeePerBlobGas`/`blobVersionedHashes`/
///   `blobs` → 3, else `maxFeePerGas`/`maxPriorityFeePerGas` → 2, else `accessList` → 1,
///   else 0. Fields of one type (`authorizationList` of 4, the three blob fields of 3) are
///   never silently dropped: on a transaction of another type they are invalid.
/// * Required: `chainId` (always: legacy transactions are signed with EIP-155 replay
///   protection only; it must not be 0), `nonce`, `gas` (alias `gasLimit`; both present and
///   different is invalid), and the fees of the type: `gasPrice` for 0 and 1, `maxFeePerGas`
///   and `maxPriorityFeePerGas` for 2, 3 and 4 (priority must not exceed max). Fee fields of
///   another type are invalid, and so is a non-empty `accessList` on a type 0 transaction.
/// * `to`: absent or `null` means contract creation, which only types 0 to 2 can do (types 3
///   and 4 require `to`, [`TxError::Missing`]); an address in any single case, or in mixed
///   case only if it is a valid EIP-55 checksum. `value` defaults to 0. `data` or `input`
///   (aliases; both present and different is invalid) are `0x` hex bytes, empty if absent.
///   `from` is optional; [`crate::sign_transaction`] checks it against the key.
/// * Type 4 (EIP-7702): `authorizationList` is required, with at least one entry, each
///   `{chainId, address, nonce, yParity, r, s}` (other keys ignored, errors name the entry:
///   `authorizationList[0].s`). `chainId` may be 0 (valid on every chain); `nonce` must be
///   below 2^64 − 1 (EIP-7702); `yParity` is 0 or 1, with `v` accepted as an alias of the same
///   meaning, as alloy accepts it (both present must agree; a legacy 27/28 is rejected); `r`
///   must be in [1, n) and `s` in [1, n/2] (EIP-2 low s, which EIP-7702 requires), and the
///   signature must recover to an address. Entries are not checked against anything else:
///   an authorization whose chain id or nonce does not match is skipped by the chain, not
///   rejected.
/// * Type 3 (EIP-4844): `maxFeePerBlobGas` is required and at least 1 (the minimum blob base
///   fee). The blobs, at least 1 and at most 9 (Prague's limit, EIP-7691; Osaka allows 6 per
///   transaction and its nodes enforce that), are given as `blobVersionedHashes` (32 bytes
///   each, version byte `0x01`), as `blobs` (`0x` hex, exactly 131072 bytes each, every
///   32-byte field element below the BLS12-381 modulus), or both. Given `blobs`, the KZG
///   commitments and proofs are computed (c-kzg with the Ethereum mainnet trusted setup,
///   loaded on first use, about 2 s) and the versioned hashes derived from the commitments;
///   `blobVersionedHashes`, if also given, must equal them in order. With `blobs`,
///   [`crate::sign_transaction`] returns the network encoding that carries them.
/// * No size limit is applied here; that is the transport's job (one blob is 256 KiB of hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRequest {
    pub(crate) tx: UnsignedTx,
    from: Option<Address>,
}

impl TransactionRequest {
    /// Parses a JSON-RPC transaction object from raw JSON bytes.
    ///
    /// # Errors
    ///
    /// [`TxError::NotAnObject`] if the bytes are not JSON or not an object; otherwise as
    /// [`TransactionRequest::from_value`].
    pub fn from_json(json: &[u8]) -> Result<TransactionRequest, TxError> {
        let value: Value = serde_json::from_slice(json).map_err(|_| TxError::NotAnObject)?;
        Self::from_value(&value)
    }

    /// Parses a JSON-RPC transaction object (see the [type documentation](TransactionRequest) for
    /// the rules).
    ///
    /// # Errors
    ///
    /// [`TxError::NotAnObject`] if `v` is not an object, [`TxError::Missing`] for a required
    /// field that is absent, [`TxError::Invalid`] for a malformed or contradictory field,
    /// [`TxError::UnsupportedType`] for a type above 4.
    pub fn from_value(v: &Value) -> Result<TransactionRequest, TxError> {
        let obj = v.as_object().ok_or(TxError::NotAnObject)?;
        parse(obj)
    }

    /// The `from` field as given in the request, if any.
    pub fn from(&self) -> Option<Address> {
        self.from
    }

    /// The EIP-155 chain id (always present).
    pub fn chain_id(&self) -> u64 {
        // Always `Some` by construction; 0 is unreachable.
        self.inner().chain_id().unwrap_or_default()
    }

    /// The recipient, or `None` for a contract creation.
    pub fn to(&self) -> Option<Address> {
        self.inner().to()
    }

    /// The value transferred, in wei.
    pub fn value(&self) -> U256 {
        self.inner().value()
    }

    /// The EIP-2718 transaction type: 0 (legacy), 1 (EIP-2930), 2 (EIP-1559), 3 (EIP-4844)
    /// or 4 (EIP-7702).
    pub fn tx_type(&self) -> u8 {
        self.inner().ty()
    }

    /// The nonce.
    pub fn nonce(&self) -> u64 {
        self.inner().nonce()
    }

    /// The gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.inner().gas_limit()
    }

    /// The most the sender can pay per gas: `gasPrice` for types 0 and 1, `maxFeePerGas`
    /// for types 2 to 4. `gas_limit() * max_fee_per_gas() + value()` bounds the total cost,
    /// plus, for type 3, `blob_versioned_hashes().len() * 131072 * max_fee_per_blob_gas()`
    /// (the blob gas).
    pub fn max_fee_per_gas(&self) -> u128 {
        self.inner().max_fee_per_gas()
    }

    /// `maxFeePerBlobGas` for type 3, `None` for the other types.
    pub fn max_fee_per_blob_gas(&self) -> Option<u128> {
        self.inner().max_fee_per_blob_gas()
    }

    /// The versioned hashes of the blobs (type 3; empty for the other types), computed from
    /// the blobs when the request gave them.
    pub fn blob_versioned_hashes(&self) -> &[B256] {
        self.inner().blob_versioned_hashes().unwrap_or_default()
    }

    /// The call data (or init code for a contract creation).
    pub fn input(&self) -> &Bytes {
        self.inner().input()
    }

    /// The hash that gets signed (keccak256 of the type byte and the RLP signing payload;
    /// for type 3 the blobs themselves are not part of it, only their versioned hashes).
    pub fn signature_hash(&self) -> B256 {
        use alloy_consensus::SignableTransaction;
        match &self.tx {
            UnsignedTx::Legacy(tx) => tx.signature_hash(),
            UnsignedTx::Eip2930(tx) => tx.signature_hash(),
            UnsignedTx::Eip1559(tx) => tx.signature_hash(),
            UnsignedTx::Eip4844(tx) => tx.signature_hash(),
            UnsignedTx::Eip7702(tx) => tx.signature_hash(),
        }
    }

    /// The transaction as alloy's [`TypedTransaction`], for anything this type does not
    /// expose directly (such as the authorization list of a type 4 transaction). A type 3
    /// transaction keeps its sidecar, if any.
    pub fn to_typed(&self) -> TypedTransaction {
        match &self.tx {
            UnsignedTx::Legacy(tx) => TypedTransaction::Legacy(tx.clone()),
            UnsignedTx::Eip2930(tx) => TypedTransaction::Eip2930(tx.clone()),
            UnsignedTx::Eip1559(tx) => TypedTransaction::Eip1559(tx.clone()),
            UnsignedTx::Eip4844(tx) => {
                TypedTransaction::Eip4844(tx.clone().map_sidecar(Into::into))
            }
            UnsignedTx::Eip7702(tx) => TypedTransaction::Eip7702(tx.clone()),
        }
    }

    fn inner(&self) -> &dyn Transaction {
        match &self.tx {
            UnsignedTx::Legacy(tx) => tx,
            UnsignedTx::Eip2930(tx) => tx,
            UnsignedTx::Eip1559(tx) => tx,
            UnsignedTx::Eip4844(tx) => tx,
            UnsignedTx::Eip7702(tx) => tx,
        }
    }
}

/// Fields that only one transaction type carries, with that type.
const TYPE_FIELDS: [(&str, u64); 4] = [
    ("authorizationList", 4),
    ("maxFeePerBlobGas", 3),
    ("blobVersionedHashes", 3),
    ("blobs", 3),
];

fn parse(obj: &Map<String, Value>) -> Result<TransactionRequest, TxError> {
    let has = |key: &str| field(obj, key).is_some();

    // 1. Blob sidecars are computed here, never taken from the client.
    if has("sidecar") {
        return Err(TxError::invalid(
            "sidecar",
            "not supported: give the blob data in `blobs` (commitments and proofs are computed)",
        ));
    }

    // 2. The type, and no field of another type.
    let tx_type = match field(obj, "type") {
        Some(v) => {
            let t = quantity_u64("type", v)?;
            if t > 4 {
                return Err(TxError::UnsupportedType(t));
            }
            t
        }
        None => {
            if has("authorizationList") {
                4
            } else if TYPE_FIELDS.iter().any(|(k, t)| *t == 3 && has(k)) {
                3
            } else if has("maxFeePerGas") || has("maxPriorityFeePerGas") {
                2
            } else if has("accessList") {
                1
            } else {
                0
            }
        }
    };
    if let Some((name, _)) = TYPE_FIELDS.iter().find(|(k, t)| *t != tx_type && has(k)) {
        return Err(TxError::invalid(
            *name,
            format!("not allowed in a type {tx_type} transaction"),
        ));
    }

    // 3. Common fields.
    let chain_id = required(obj, "chainId", quantity_u64)?;
    if chain_id == 0 {
        // EIP-155 v = 35/36 would be ambiguous and no network uses chain id 0.
        return Err(TxError::invalid("chainId", "must not be 0"));
    }
    let nonce = required(obj, "nonce", quantity_u64)?;
    let gas_limit = gas_limit(obj)?;
    let to = match field(obj, "to") {
        None => TxKind::Create,
        Some(v) => TxKind::Call(address("to", v)?),
    };
    let value = optional(obj, "value", quantity_u256)?.unwrap_or_default();
    let input = input(obj)?;
    let access_list = optional(obj, "accessList", access_list)?;
    let from = optional(obj, "from", address)?;

    // 4. Fees and type-specific fields.
    let tx = if tx_type <= 1 {
        for name in ["maxFeePerGas", "maxPriorityFeePerGas"] {
            if has(name) {
                return Err(TxError::invalid(
                    name,
                    format!("not allowed in a type {tx_type} transaction (use gasPrice)"),
                ));
            }
        }
        let gas_price = required(obj, "gasPrice", quantity_u128)?;
        if tx_type == 0 {
            if access_list.as_ref().is_some_and(|l| !l.0.is_empty()) {
                return Err(TxError::invalid(
                    "accessList",
                    "not allowed in a type 0 transaction",
                ));
            }
            UnsignedTx::Legacy(TxLegacy {
                chain_id: Some(chain_id),
                nonce,
                gas_price,
                gas_limit,
                to,
                value,
                input,
            })
        } else {
            UnsignedTx::Eip2930(TxEip2930 {
                chain_id,
                nonce,
                gas_price,
                gas_limit,
                to,
                value,
                access_list: access_list.unwrap_or_default(),
                input,
            })
        }
    } else {
        if has("gasPrice") {
            return Err(TxError::invalid(
                "gasPrice",
                format!("not allowed in a type {tx_type} transaction (use maxFeePerGas)"),
            ));
        }
        let max_fee_per_gas = required(obj, "maxFeePerGas", quantity_u128)?;
        let max_priority_fee_per_gas = required(obj, "maxPriorityFeePerGas", quantity_u128)?;
        if max_priority_fee_per_gas > max_fee_per_gas {
            return Err(TxError::invalid(
                "maxPriorityFeePerGas",
                "greater than maxFeePerGas",
            ));
        }
        let access_list = access_list.unwrap_or_default();
        match (tx_type, to) {
            (2, to) => UnsignedTx::Eip1559(TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to,
                value,
                access_list,
                input,
            }),
            // Neither blob nor set-code transactions can create contracts.
            (_, TxKind::Create) => return Err(TxError::Missing { field: "to" }),
            (3, TxKind::Call(to)) => {
                let max_fee_per_blob_gas = required(obj, "maxFeePerBlobGas", quantity_u128)?;
                if max_fee_per_blob_gas == 0 {
                    return Err(TxError::invalid(
                        "maxFeePerBlobGas",
                        "must be at least 1 (the minimum blob base fee)",
                    ));
                }
                let (blob_versioned_hashes, sidecar) = blobs_and_hashes(obj)?;
                let tx = TxEip4844 {
                    chain_id,
                    nonce,
                    gas_limit,
                    max_fee_per_gas,
                    max_priority_fee_per_gas,
                    to,
                    value,
                    access_list,
                    blob_versioned_hashes,
                    max_fee_per_blob_gas,
                    input,
                };
                UnsignedTx::Eip4844(match sidecar {
                    Some(sidecar) => TxEip4844Variant::TxEip4844WithSidecar(
                        TxEip4844WithSidecar::from_tx_and_sidecar(tx, sidecar),
                    ),
                    None => TxEip4844Variant::TxEip4844(tx),
                })
            }
            (_, TxKind::Call(to)) => UnsignedTx::Eip7702(TxEip7702 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to,
                value,
                access_list,
                authorization_list: required(obj, "authorizationList", authorization_list)?,
                input,
            }),
        }
    };
    Ok(TransactionRequest { tx, from })
}

/// The versioned hashes of a type 3 transaction and, when the request gave `blobs`, the
/// sidecar computed from them. The KZG step comes last, after every cheap check.
fn blobs_and_hashes(
    obj: &Map<String, Value>,
) -> Result<(Vec<B256>, Option<BlobTransactionSidecar>), TxError> {
    let given = optional(obj, "blobVersionedHashes", versioned_hashes)?;
    let Some(blobs) = optional(obj, "blobs", blobs)? else {
        return match given {
            Some(hashes) => Ok((hashes, None)),
            None => Err(TxError::Missing {
                field: "blobVersionedHashes",
            }),
        };
    };
    let sidecar = BlobTransactionSidecar::try_from_blobs_with_settings(
        blobs,
        c_kzg::ethereum_kzg_settings(0),
    )
    // Unreachable for blobs that passed `blobs()`: every field element is canonical.
    .map_err(|_| TxError::invalid("blobs", "KZG commitment or proof failed"))?;
    let computed: Vec<B256> = sidecar.versioned_hashes().collect();
    if let Some(given) = given {
        if given.len() != computed.len() {
            return Err(TxError::invalid(
                "blobVersionedHashes",
                format!("{} hashes for {} blobs", given.len(), computed.len()),
            ));
        }
        if let Some(i) = (0..given.len()).find(|&i| given[i] != computed[i]) {
            return Err(TxError::invalid(
                "blobVersionedHashes",
                format!("hash {i} is not the versioned hash of blob {i}'s KZG commitment"),
            ));
        }
    }
    Ok((computed, Some(sidecar)))
}

/// A present, non-null field.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn required<T>(
    obj: &Map<String, Value>,
    key: &'static str,
    parse: impl FnOnce(&str, &Value) -> Result<T, TxError>,
) -> Result<T, TxError> {
    let v = field(obj, key).ok_or(TxError::Missing { field: key })?;
    parse(key, v)
}

fn optional<T>(
    obj: &Map<String, Value>,
    key: &'static str,
    parse: impl FnOnce(&str, &Value) -> Result<T, TxError>,
) -> Result<Option<T>, TxError> {
    field(obj, key).map(|v| parse(key, v)).transpose()
}

/// `gas`, with `gasLimit` accepted as an alias.
fn gas_limit(obj: &Map<String, Value>) -> Result<u64, TxError> {
    let gas = optional(obj, "gas", quantity_u64)?;
    let gas_limit = optional(obj, "gasLimit", quantity_u64)?;
    match (gas, gas_limit) {
        (Some(a), Some(b)) if a != b => Err(TxError::invalid("gas", "`gas` and `gasLimit` differ")),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(TxError::Missing { field: "gas" }),
    }
}

/// `input`, with `data` accepted as an alias.
fn input(obj: &Map<String, Value>) -> Result<Bytes, TxError> {
    let input = optional(obj, "input", hex_bytes)?;
    let data = optional(obj, "data", hex_bytes)?;
    match (input, data) {
        (Some(a), Some(b)) if a != b => Err(TxError::invalid("input", "`input` and `data` differ")),
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Ok(Bytes::new()),
    }
}

/// A short, printable excerpt of client input for error messages.
fn quote(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_QUOTED)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if s.chars().nth(MAX_QUOTED).is_some() {
        out.push('…');
    }
    format!("\"{out}\"")
}

/// Any quantity, as a U256.
fn quantity_u256(name: &str, v: &Value) -> Result<U256, TxError> {
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(U256::from(u))
            } else if n.is_i64() {
                Err(TxError::invalid(name, "negative"))
            } else {
                Err(TxError::invalid(
                    name,
                    "not an integer (use a hex or decimal string for large values)",
                ))
            }
        }
        Value::String(s) => {
            if let Some(digits) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                if digits.is_empty() {
                    return Err(TxError::invalid(name, "empty hex quantity \"0x\""));
                }
                if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(TxError::invalid(
                        name,
                        format!("not a hex quantity: {}", quote(s)),
                    ));
                }
                let significant = digits.trim_start_matches('0');
                if significant.len() > 64 {
                    return Err(TxError::invalid(name, "too large"));
                }
                U256::from_str_radix(significant, 16)
                    .map_err(|_| TxError::invalid(name, "too large"))
            } else {
                if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(TxError::invalid(
                        name,
                        format!(
                            "not a quantity (expected 0x-hex or decimal digits): {}",
                            quote(s)
                        ),
                    ));
                }
                let significant = s.trim_start_matches('0');
                if significant.len() > 78 {
                    return Err(TxError::invalid(name, "too large"));
                }
                U256::from_str_radix(significant, 10)
                    .map_err(|_| TxError::invalid(name, "too large"))
            }
        }
        _ => Err(TxError::invalid(
            name,
            "expected a hex string, a decimal string or an integer",
        )),
    }
}

fn quantity_u64(name: &str, v: &Value) -> Result<u64, TxError> {
    u64::try_from(quantity_u256(name, v)?)
        .map_err(|_| TxError::invalid(name, "does not fit in 64 bits"))
}

fn quantity_u128(name: &str, v: &Value) -> Result<u128, TxError> {
    u128::try_from(quantity_u256(name, v)?)
        .map_err(|_| TxError::invalid(name, "does not fit in 128 bits"))
}

/// `0x`-prefixed hex of exactly `N` bytes.
fn fixed_hex<const N: usize>(name: &str, v: &Value) -> Result<[u8; N], TxError> {
    let s = v
        .as_str()
        .ok_or_else(|| TxError::invalid(name, "expected a 0x-prefixed hex string"))?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| TxError::invalid(name, "expected a 0x-prefixed hex string"))?;
    let mut out = [0u8; N];
    if digits.len() != 2 * N {
        return Err(TxError::invalid(
            name,
            format!("expected {N} bytes ({} hex digits)", 2 * N),
        ));
    }
    hex::decode_to_slice(digits, &mut out)
        .map_err(|_| TxError::invalid(name, format!("not hex: {}", quote(s))))?;
    Ok(out)
}

/// An address: all-lowercase or all-uppercase hex, or mixed case with a valid EIP-55
/// checksum.
fn address(name: &str, v: &Value) -> Result<Address, TxError> {
    let addr = Address::from(fixed_hex::<20>(name, v)?);
    let digits = v.as_str().and_then(|s| s.get(2..)).unwrap_or_default();
    let has_lower = digits.bytes().any(|b| b.is_ascii_lowercase());
    let has_upper = digits.bytes().any(|b| b.is_ascii_uppercase());
    if has_lower && has_upper {
        let checksummed = addr.to_checksum_buffer(None);
        if checksummed.as_str().get(2..) != Some(digits) {
            return Err(TxError::invalid(name, "bad EIP-55 checksum"));
        }
    }
    Ok(addr)
}

/// `0x`-prefixed hex bytes of any even length (`"0x"` is empty).
fn hex_bytes(name: &str, v: &Value) -> Result<Bytes, TxError> {
    let s = v
        .as_str()
        .ok_or_else(|| TxError::invalid(name, "expected a 0x-prefixed hex string"))?;
    let digits = s
        .strip_prefix("0x")
        .ok_or_else(|| TxError::invalid(name, "expected a 0x-prefixed hex string"))?;
    if digits.len() % 2 != 0 {
        return Err(TxError::invalid(name, "odd number of hex digits"));
    }
    hex::decode(digits)
        .map(Bytes::from)
        .map_err(|_| TxError::invalid(name, "not hex"))
}

/// `[{ "address": "0x…", "storageKeys": ["0x…32 bytes", …] }, …]`.
fn access_list(name: &str, v: &Value) -> Result<AccessList, TxError> {
    let entries = v
        .as_array()
        .ok_or_else(|| TxError::invalid(name, "expected an array"))?;
    let mut items = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let entry_name = format!("{name}[{i}]");
        let obj = entry
            .as_object()
            .ok_or_else(|| TxError::invalid(&*entry_name, "expected an object"))?;
        let address_name = format!("{entry_name}.address");
        let address = match field(obj, "address") {
            Some(a) => address(&address_name, a)?,
            None => return Err(TxError::invalid(address_name, "missing")),
        };
        let keys_name = format!("{entry_name}.storageKeys");
        let storage_keys = match field(obj, "storageKeys") {
            None => Vec::new(),
            Some(keys) => {
                let keys = keys
                    .as_array()
                    .ok_or_else(|| TxError::invalid(&*keys_name, "expected an array"))?;
                keys.iter()
                    .enumerate()
                    .map(|(j, k)| fixed_hex::<32>(&format!("{keys_name}[{j}]"), k).map(B256::from))
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        items.push(AccessListItem {
            address,
            storage_keys,
        });
    }
    Ok(AccessList(items))
}

/// `[ "0x…32 bytes", … ]`: 1 to [`MAX_BLOBS_PER_TX`] hashes, each of KZG version `0x01`.
fn versioned_hashes(name: &str, v: &Value) -> Result<Vec<B256>, TxError> {
    let items = bounded_array(name, v, ("hash", "hashes"), MAX_BLOBS_PER_TX)?;
    items
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let item_name = format!("{name}[{i}]");
            let hash = B256::from(fixed_hex::<32>(&item_name, h)?);
            if hash[0] != VERSIONED_HASH_VERSION_KZG {
                return Err(TxError::invalid(
                    item_name,
                    format!(
                        "version byte is {:#04x}, expected {VERSIONED_HASH_VERSION_KZG:#04x} (KZG)",
                        hash[0]
                    ),
                ));
            }
            Ok(hash)
        })
        .collect()
}

/// `[ "0x…131072 bytes", … ]`: 1 to [`MAX_BLOBS_PER_TX`] blobs, each a sequence of 4096
/// canonical BLS12-381 field elements (big-endian, below the modulus).
fn blobs(name: &str, v: &Value) -> Result<Vec<Blob>, TxError> {
    let items = bounded_array(name, v, ("blob", "blobs"), MAX_BLOBS_PER_TX)?;
    // Check every size before allocating 128 KiB per blob.
    let mut digits = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let item_name = format!("{name}[{i}]");
        let hex = item
            .as_str()
            .and_then(|s| s.strip_prefix("0x"))
            .ok_or_else(|| TxError::invalid(&*item_name, "expected a 0x-prefixed hex string"))?;
        if hex.len() != 2 * BYTES_PER_BLOB {
            return Err(TxError::invalid(
                item_name,
                format!(
                    "expected exactly {BYTES_PER_BLOB} bytes, got {} hex digits",
                    hex.len()
                ),
            ));
        }
        digits.push(hex);
    }
    let mut out = vec![Blob::ZERO; digits.len()];
    for (i, (hex, blob)) in digits.iter().zip(out.iter_mut()).enumerate() {
        let item_name = format!("{name}[{i}]");
        hex::decode_to_slice(hex, blob.as_mut_slice())
            .map_err(|_| TxError::invalid(&*item_name, "not hex"))?;
        if let Some(j) = blob
            .chunks_exact(FIELD_ELEMENT_BYTES_USIZE)
            .position(|fe| fe >= BLS_MODULUS_BYTES.as_slice())
        {
            return Err(TxError::invalid(
                item_name,
                format!("field element {j} is not below the BLS12-381 modulus"),
            ));
        }
    }
    Ok(out)
}

/// A JSON array of 1 to `max` items.
fn bounded_array<'a>(
    name: &str,
    v: &'a Value,
    (one, many): (&str, &str),
    max: usize,
) -> Result<&'a [Value], TxError> {
    let items = v
        .as_array()
        .ok_or_else(|| TxError::invalid(name, "expected an array"))?;
    if items.is_empty() {
        return Err(TxError::invalid(
            name,
            format!("at least one {one} is required"),
        ));
    }
    if items.len() > max {
        return Err(TxError::invalid(
            name,
            format!("{} {many}, more than the maximum of {max}", items.len()),
        ));
    }
    Ok(items)
}

/// `[{ "chainId", "address", "nonce", "yParity", "r", "s" }, …]`, at least one entry.
fn authorization_list(name: &str, v: &Value) -> Result<Vec<SignedAuthorization>, TxError> {
    let entries = v
        .as_array()
        .ok_or_else(|| TxError::invalid(name, "expected an array"))?;
    if entries.is_empty() {
        return Err(TxError::invalid(
            name,
            "at least one authorization is required",
        ));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("{name}[{i}]");
        let obj = entry
            .as_object()
            .ok_or_else(|| TxError::invalid(&*path, "expected an object"))?;
        let auth = authorization(obj, &path)?;

        let y_parity = optional_member(obj, &path, "yParity", quantity_u64)?;
        let v = optional_member(obj, &path, "v", quantity_u64)?;
        let y_parity = match (y_parity, v) {
            (Some(y), Some(v)) if y != v => {
                return Err(TxError::invalid(
                    format!("{path}.v"),
                    "`v` and `yParity` differ (`v` is accepted as an alias of `yParity` only)",
                ))
            }
            (Some(y), _) => y,
            (None, Some(v)) => v,
            (None, None) => return Err(TxError::invalid(format!("{path}.yParity"), "missing")),
        };
        let y_parity_name = if field(obj, "yParity").is_some() {
            format!("{path}.yParity")
        } else {
            format!("{path}.v")
        };
        let y_parity = match y_parity {
            0 => false,
            1 => true,
            _ => {
                return Err(TxError::invalid(
                    y_parity_name,
                    "must be 0 or 1 (the y parity; a legacy 27/28 `v` is not accepted)",
                ))
            }
        };
        let r = member(obj, &path, "r", quantity_u256)?;
        if r.is_zero() || r >= SECP256K1_N {
            return Err(TxError::invalid(
                format!("{path}.r"),
                "must be in [1, n) (secp256k1 group order n)",
            ));
        }
        let s = member(obj, &path, "s", quantity_u256)?;
        if s.is_zero() || s > SECP256K1N_HALF {
            return Err(TxError::invalid(
                format!("{path}.s"),
                "must be in [1, n/2]: EIP-7702 requires a low s (EIP-2)",
            ));
        }
        let signature = Signature::new(r, s, y_parity);
        if signature
            .recover_address_from_prehash(&auth.signature_hash())
            .is_err()
        {
            return Err(TxError::invalid(
                path,
                "the signature does not recover to an address",
            ));
        }
        out.push(auth.into_signed(signature));
    }
    Ok(out)
}

/// The unsigned part of an EIP-7702 authorization, `{chainId, address, nonce}`, from a
/// top-level object (`path` empty: absent fields are [`TxError::Missing`]) or from an entry of
/// a list (`path` like `authorizationList[0]`: absent fields are invalid with their path).
pub(crate) fn authorization(
    obj: &Map<String, Value>,
    path: &str,
) -> Result<Authorization, TxError> {
    let chain_id = member(obj, path, "chainId", quantity_u256)?;
    let address = member(obj, path, "address", address)?;
    let nonce = member(obj, path, "nonce", quantity_u64)?;
    if nonce == u64::MAX {
        return Err(TxError::invalid(
            member_name(path, "nonce"),
            "must be below 2^64 - 1 (EIP-7702)",
        ));
    }
    Ok(Authorization {
        chain_id,
        address,
        nonce,
    })
}

fn member_name(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A required field of a possibly nested object (see [`authorization`]).
fn member<T>(
    obj: &Map<String, Value>,
    path: &str,
    key: &'static str,
    parse: impl FnOnce(&str, &Value) -> Result<T, TxError>,
) -> Result<T, TxError> {
    match optional_member(obj, path, key, parse)? {
        Some(v) => Ok(v),
        None if path.is_empty() => Err(TxError::Missing { field: key }),
        None => Err(TxError::invalid(member_name(path, key), "missing")),
    }
}

fn optional_member<T>(
    obj: &Map<String, Value>,
    path: &str,
    key: &'static str,
    parse: impl FnOnce(&str, &Value) -> Result<T, TxError>,
) -> Result<Option<T>, TxError> {
    field(obj, key)
        .map(|v| parse(&member_name(path, key), v))
        .transpose()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;
    use alloy_primitives::address;
    use serde_json::json;

    fn base1559() -> Value {
        json!({
            "chainId": "0x1",
            "nonce": "0x2a",
            "gas": "0x186a0",
            "maxFeePerGas": "0x6fc23ac00",
            "maxPriorityFeePerGas": "0x77359400",
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "value": "0xde0b6b3a7640000",
            "data": "0xa9059cbb",
        })
    }

    fn base_legacy() -> Value {
        json!({
            "chainId": 1,
            "nonce": 9,
            "gas": 21000,
            "gasPrice": "20000000000",
            "to": "0x3535353535353535353535353535353535353535",
            "value": "1000000000000000000",
        })
    }

    fn with(mut v: Value, key: &str, x: Value) -> Value {
        v.as_object_mut().unwrap().insert(key.to_owned(), x);
        v
    }

    fn without(mut v: Value, key: &str) -> Value {
        v.as_object_mut().unwrap().remove(key);
        v
    }

    fn err(v: &Value) -> TxError {
        TransactionRequest::from_value(v).unwrap_err()
    }

    #[test]
    fn parses_1559() {
        let tx = TransactionRequest::from_value(&base1559()).unwrap();
        assert_eq!(tx.tx_type(), 2);
        assert_eq!(tx.chain_id(), 1);
        assert_eq!(tx.nonce(), 42);
        assert_eq!(tx.gas_limit(), 100_000);
        assert_eq!(tx.max_fee_per_gas(), 30_000_000_000);
        assert_eq!(
            tx.to(),
            Some(address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"))
        );
        assert_eq!(tx.value(), U256::from(10u64).pow(U256::from(18)));
        assert_eq!(tx.input().as_ref(), &[0xa9, 0x05, 0x9c, 0xbb]);
        assert_eq!(tx.from(), None);
    }

    #[test]
    fn infers_types() {
        let legacy = TransactionRequest::from_value(&base_legacy()).unwrap();
        assert_eq!(legacy.tx_type(), 0);
        let al = with(base_legacy(), "accessList", json!([]));
        assert_eq!(TransactionRequest::from_value(&al).unwrap().tx_type(), 1);
        let explicit0 = with(al, "type", json!("0x0"));
        assert_eq!(
            TransactionRequest::from_value(&explicit0)
                .unwrap()
                .tx_type(),
            0
        );
    }

    #[test]
    fn missing_fields_are_named() {
        for field in [
            "chainId",
            "nonce",
            "gas",
            "maxFeePerGas",
            "maxPriorityFeePerGas",
        ] {
            let v = without(base1559(), field);
            // Removing both 1559 fee fields would change the inferred type; one at a time
            // keeps it 2.
            assert_eq!(err(&v), TxError::Missing { field }, "{field}");
            assert_eq!(err(&v).to_string(), format!("missing field `{field}`"));
        }
        let v = without(base_legacy(), "gasPrice");
        assert_eq!(err(&v), TxError::Missing { field: "gasPrice" });
        let v = with(base_legacy(), "nonce", Value::Null);
        assert_eq!(err(&v), TxError::Missing { field: "nonce" });
        let v = with(without(base1559(), "gasPrice"), "type", json!(2));
        let v = without(without(v, "maxFeePerGas"), "maxPriorityFeePerGas");
        assert_eq!(
            err(&v),
            TxError::Missing {
                field: "maxFeePerGas"
            }
        );
    }

    #[test]
    fn invalid_fields_are_named() {
        let cases: Vec<(&str, Value)> = vec![
            ("nonce", json!(-1)),
            ("nonce", json!(1.5)),
            ("nonce", json!("0x")),
            ("nonce", json!("0x1g")),
            ("nonce", json!("12a")),
            ("nonce", json!(" 1")),
            ("nonce", json!("+1")),
            ("nonce", json!("")),
            ("nonce", json!("0x10000000000000000")),
            ("nonce", json!(true)),
            ("nonce", json!([1])),
            ("chainId", json!("18446744073709551616")),
            ("chainId", json!("0x0")),
            ("gas", json!({})),
            ("maxFeePerGas", json!("0x1ffffffffffffffffffffffffffffffff")),
            ("value", json!(format!("0x1{}", "0".repeat(64)))),
            ("value", json!("1".repeat(100))),
            ("to", json!("0x123")),
            ("to", json!("70997970C51812dc3A010C7d01b50e0d17dc79C8")),
            ("to", json!("0x70997970c51812dc3a010c7d01b50e0d17dc79C8")),
            ("to", json!(5)),
            ("data", json!("0xabc")),
            ("data", json!("abcd")),
            ("data", json!("0xzz")),
            ("from", json!("0xnothex")),
            ("accessList", json!({})),
        ];
        for (field, bad) in cases {
            let v = with(base1559(), field, bad.clone());
            let e = err(&v);
            assert_eq!(e.field(), Some(field), "{field} = {bad}: {e}");
            assert!(matches!(e, TxError::Invalid { .. }), "{e:?}");
            assert!(e.to_string().contains(field));
        }
    }

    #[test]
    fn access_list_paths() {
        let v = with(
            base1559(),
            "accessList",
            json!([{"address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
                    "storageKeys": ["0x00", "0x01"]}]),
        );
        assert_eq!(err(&v).field(), Some("accessList[0].storageKeys[0]"));
        let v = with(base1559(), "accessList", json!([{"storageKeys": []}]));
        assert_eq!(err(&v).field(), Some("accessList[0].address"));
        let v = with(base1559(), "accessList", json!([1]));
        assert_eq!(err(&v).field(), Some("accessList[0]"));
        let ok = with(
            base1559(),
            "accessList",
            json!([{"address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
                    "storageKeys": [format!("0x{}", "00".repeat(32))]}]),
        );
        let tx = TransactionRequest::from_value(&ok).unwrap();
        match tx.tx {
            UnsignedTx::Eip1559(t) => assert_eq!(t.access_list.0[0].storage_keys.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn contradictions() {
        let v = with(base1559(), "gasPrice", json!("0x1"));
        assert_eq!(err(&v).field(), Some("gasPrice"));
        let v = with(base_legacy(), "type", json!(0));
        let v = with(v, "maxFeePerGas", json!(1));
        assert_eq!(err(&v).field(), Some("maxFeePerGas"));
        let v = with(base_legacy(), "type", json!("0x1"));
        let v = with(v, "maxPriorityFeePerGas", json!(1));
        assert_eq!(err(&v).field(), Some("maxPriorityFeePerGas"));
        let v = with(base_legacy(), "type", json!(0));
        let v = with(
            v,
            "accessList",
            json!([{"address": "0x5fbdb2315678afecb367f032d93f642f64180aa3"}]),
        );
        assert_eq!(err(&v).field(), Some("accessList"));
        let v = with(base1559(), "maxPriorityFeePerGas", json!("0x6fc23ac01"));
        assert_eq!(err(&v).field(), Some("maxPriorityFeePerGas"));
        let v = with(base1559(), "gasLimit", json!("0x186a1"));
        assert_eq!(err(&v).field(), Some("gas"));
        let v = with(base1559(), "gasLimit", json!(100_000));
        assert_eq!(
            TransactionRequest::from_value(&v).unwrap().gas_limit(),
            100_000
        );
        let v = with(without(base1559(), "gas"), "gasLimit", json!(5));
        assert_eq!(TransactionRequest::from_value(&v).unwrap().gas_limit(), 5);
        let v = with(base1559(), "input", json!("0xa9059cbc"));
        assert_eq!(err(&v).field(), Some("input"));
        let v = with(base1559(), "input", json!("0xa9059cbb"));
        assert!(TransactionRequest::from_value(&v).is_ok());
    }

    #[test]
    fn unsupported_types() {
        for t in [
            json!(5),
            json!("0x5"),
            json!("126"),
            json!("0xffffffffffffffff"),
        ] {
            let v = with(base1559(), "type", t);
            assert!(matches!(err(&v), TxError::UnsupportedType(_)));
            assert_eq!(err(&v).field(), Some("type"));
        }
        let v = with(base1559(), "type", json!("0x10000000000000000"));
        assert!(matches!(err(&v), TxError::Invalid { .. }));
    }

    /// A blob whose field elements are all canonical: `data` in the low bytes of the first
    /// elements, the top byte of every element zero.
    pub(crate) fn blob_hex(data: &[u8]) -> String {
        let mut blob = vec![0u8; BYTES_PER_BLOB];
        for (i, b) in data.iter().enumerate() {
            blob[(i / 31) * 32 + 1 + i % 31] = *b;
        }
        format!("0x{}", hex::encode(blob))
    }

    fn versioned_hash(first: u8, fill: u8) -> String {
        format!("0x{first:02x}{}", format!("{fill:02x}").repeat(31))
    }

    fn base4844() -> Value {
        json!({
            "chainId": "0x7a69",
            "nonce": "0x0",
            "gas": "0x5208",
            "maxFeePerGas": "0x77359400",
            "maxPriorityFeePerGas": "0x3b9aca00",
            "maxFeePerBlobGas": "0x7",
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "blobVersionedHashes": [versioned_hash(1, 0xab)],
        })
    }

    fn signed_auth(chain_id: u64, nonce: u64) -> Value {
        let key = crate::PrivateKey::from_bytes(&[0x46; 32]).unwrap();
        let req = crate::AuthorizationRequest::from_value(&json!({
            "chainId": chain_id,
            "address": "0x5fbdb2315678afecb367f032d93f642f64180aa3",
            "nonce": nonce,
        }))
        .unwrap();
        serde_json::to_value(crate::sign_authorization(&key, &req)).unwrap()
    }

    fn base7702() -> Value {
        json!({
            "chainId": 1,
            "nonce": 3,
            "gas": 100000,
            "maxFeePerGas": "30000000000",
            "maxPriorityFeePerGas": "2000000000",
            "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
            "authorizationList": [signed_auth(1, 0)],
        })
    }

    fn with_auth(key: &str, x: Value) -> Value {
        let mut v = base7702();
        v["authorizationList"][0][key] = x;
        v
    }

    #[test]
    fn infers_new_types() {
        let ok = |v: &Value| TransactionRequest::from_value(v).unwrap().tx_type();
        assert_eq!(ok(&base4844()), 3);
        assert_eq!(ok(&base7702()), 4);
        assert_eq!(ok(&with(base7702(), "type", json!("0x4"))), 4);
        assert_eq!(ok(&with(base4844(), "type", json!(3))), 3);
        // Any one blob field implies type 3; the others are then required or optional.
        let v = without(base4844(), "blobVersionedHashes");
        assert_eq!(
            err(&v),
            TxError::Missing {
                field: "blobVersionedHashes"
            }
        );
        let v = without(base4844(), "maxFeePerBlobGas");
        assert_eq!(
            err(&v),
            TxError::Missing {
                field: "maxFeePerBlobGas"
            }
        );
        let v = with(without(base1559(), "to"), "blobs", json!([]));
        assert_eq!(err(&v).field(), Some("to"));
        // authorizationList wins the inference; blob fields are then of another type.
        let v = with(base7702(), "maxFeePerBlobGas", json!(1));
        let e = err(&v);
        assert_eq!(e.field(), Some("maxFeePerBlobGas"));
        assert!(e.to_string().contains("type 4"), "{e}");
    }

    #[test]
    fn fields_of_other_types() {
        let cases = [
            (
                with(base1559(), "type", json!(2)),
                "maxFeePerBlobGas",
                json!(1),
            ),
            (
                with(base1559(), "type", json!(2)),
                "blobVersionedHashes",
                json!([]),
            ),
            (with(base1559(), "type", json!(2)), "blobs", json!([])),
            (
                with(base1559(), "type", json!(2)),
                "authorizationList",
                json!([]),
            ),
            (
                with(base_legacy(), "type", json!(0)),
                "authorizationList",
                json!([]),
            ),
            (
                with(base4844(), "type", json!(3)),
                "authorizationList",
                json!([]),
            ),
            (
                with(base7702(), "type", json!(4)),
                "blobVersionedHashes",
                json!([]),
            ),
            (base4844(), "gasPrice", json!(1)),
            (base7702(), "gasPrice", json!(1)),
        ];
        for (base, field, x) in cases {
            let e = err(&with(base, field, x));
            assert_eq!(e.field(), Some(field), "{e}");
            assert!(matches!(e, TxError::Invalid { .. }), "{e:?}");
        }
    }

    #[test]
    fn sidecar_is_rejected() {
        for base in [
            base1559(),
            base4844(),
            without(base4844(), "maxFeePerBlobGas"),
        ] {
            let e = err(&with(base, "sidecar", json!({"blobs": []})));
            assert_eq!(e.field(), Some("sidecar"));
            assert!(e.to_string().contains("blobs"), "{e}");
        }
    }

    #[test]
    fn parses_4844_without_blobs() {
        let tx = TransactionRequest::from_value(&base4844()).unwrap();
        assert_eq!(tx.tx_type(), 3);
        assert_eq!(tx.chain_id(), 31337);
        assert_eq!(tx.max_fee_per_gas(), 2_000_000_000);
        assert_eq!(tx.max_fee_per_blob_gas(), Some(7));
        assert_eq!(tx.blob_versioned_hashes().len(), 1);
        assert_eq!(tx.blob_versioned_hashes()[0][0], 1);
        assert!(matches!(
            tx.tx,
            UnsignedTx::Eip4844(TxEip4844Variant::TxEip4844(_))
        ));
        let legacy = TransactionRequest::from_value(&base_legacy()).unwrap();
        assert_eq!(legacy.max_fee_per_blob_gas(), None);
        assert!(legacy.blob_versioned_hashes().is_empty());
    }

    #[test]
    fn blob_transactions_need_to() {
        for base in [base4844(), base7702()] {
            assert_eq!(
                err(&without(base.clone(), "to")),
                TxError::Missing { field: "to" }
            );
            assert_eq!(
                err(&with(base, "to", Value::Null)),
                TxError::Missing { field: "to" }
            );
        }
    }

    #[test]
    fn invalid_blob_fields() {
        let ten: Vec<String> = (0..10).map(|i| versioned_hash(1, i)).collect();
        let cases: Vec<(&str, Value, &str)> = vec![
            ("maxFeePerBlobGas", json!(0), "maxFeePerBlobGas"),
            (
                "maxFeePerBlobGas",
                json!("0x1ffffffffffffffffffffffffffffffff"),
                "maxFeePerBlobGas",
            ),
            ("blobVersionedHashes", json!({}), "blobVersionedHashes"),
            ("blobVersionedHashes", json!([]), "blobVersionedHashes"),
            ("blobVersionedHashes", json!(ten), "blobVersionedHashes"),
            (
                "blobVersionedHashes",
                json!([versioned_hash(0, 1)]),
                "blobVersionedHashes[0]",
            ),
            (
                "blobVersionedHashes",
                json!([versioned_hash(1, 1), versioned_hash(2, 1)]),
                "blobVersionedHashes[1]",
            ),
            (
                "blobVersionedHashes",
                json!(["0x01"]),
                "blobVersionedHashes[0]",
            ),
            ("blobVersionedHashes", json!([1]), "blobVersionedHashes[0]"),
            ("blobs", json!("0x00"), "blobs"),
            ("blobs", json!([]), "blobs"),
            ("blobs", json!(vec!["0x00"; 10]), "blobs"),
            ("blobs", json!(["0x00"]), "blobs[0]"),
            ("blobs", json!([blob_hex(b""), 7]), "blobs[1]"),
            ("blobs", json!([blob_hex(b"")[2..]]), "blobs[0]"),
            (
                "blobs",
                json!([format!("0x{}", "zz".repeat(BYTES_PER_BLOB))]),
                "blobs[0]",
            ),
            (
                "blobs",
                json!([format!("0x{}", "00".repeat(BYTES_PER_BLOB + 1))]),
                "blobs[0]",
            ),
        ];
        for (key, bad, field) in cases {
            let e = err(&with(base4844(), key, bad));
            assert_eq!(e.field(), Some(field), "{key}: {e}");
            assert!(matches!(e, TxError::Invalid { .. }), "{e:?}");
            assert!(e.to_string().len() < 200, "{e}");
        }
        let e = err(&with(
            base4844(),
            "blobVersionedHashes",
            json!([versioned_hash(0, 1)]),
        ));
        assert!(e.to_string().contains("0x01"), "{e}");
        let e = err(&with(base4844(), "blobs", json!(["0x00"])));
        assert!(e.to_string().contains("131072"), "{e}");
        let e = err(&with(base4844(), "blobs", json!(vec!["0x00"; 10])));
        assert!(e.to_string().contains("maximum of 9"), "{e}");
    }

    #[test]
    fn blob_field_elements_must_be_canonical() {
        // The BLS12-381 modulus itself, as the third field element.
        let mut blob = vec![0u8; BYTES_PER_BLOB];
        blob[64..96].copy_from_slice(BLS_MODULUS_BYTES.as_slice());
        let v = with(
            base4844(),
            "blobs",
            json!([format!("0x{}", hex::encode(&blob))]),
        );
        let e = err(&v);
        assert_eq!(e.field(), Some("blobs[0]"));
        assert!(e.to_string().contains("field element 2"), "{e}");
        // One below the modulus is canonical (and its KZG commitment computes).
        blob[95] -= 1;
        let v = with(
            without(base4844(), "blobVersionedHashes"),
            "blobs",
            json!([format!("0x{}", hex::encode(&blob))]),
        );
        assert!(TransactionRequest::from_value(&v).is_ok());
    }

    #[test]
    fn blobs_give_hashes_and_sidecar() {
        let blobs = json!([blob_hex(b"first blob"), blob_hex(b"second blob")]);
        let v = with(
            without(base4844(), "blobVersionedHashes"),
            "blobs",
            blobs.clone(),
        );
        let tx = TransactionRequest::from_value(&v).unwrap();
        let hashes = tx.blob_versioned_hashes().to_vec();
        assert_eq!(hashes.len(), 2);
        let UnsignedTx::Eip4844(TxEip4844Variant::TxEip4844WithSidecar(t)) = &tx.tx else {
            panic!("no sidecar: {:?}", tx.tx);
        };
        assert_eq!(t.sidecar.blobs.len(), 2);
        // alloy's check: commitments match the hashes, and every proof verifies.
        t.sidecar
            .validate(&hashes, c_kzg::ethereum_kzg_settings(0))
            .unwrap();
        for (h, c) in hashes.iter().zip(&t.sidecar.commitments) {
            assert_eq!(*h, alloy_eips::eip4844::kzg_to_versioned_hash(c.as_slice()));
        }

        // The same hashes given alongside: accepted, same transaction.
        let given: Vec<String> = hashes.iter().map(|h| h.to_string()).collect();
        let both = with(v.clone(), "blobVersionedHashes", json!(given));
        assert_eq!(TransactionRequest::from_value(&both).unwrap(), tx);

        // Other hashes, fewer, more or reordered: rejected, naming the hashes.
        let mut wrong = given.clone();
        wrong[1] = versioned_hash(1, 0xab);
        let mut reordered = given.clone();
        reordered.swap(0, 1);
        for bad in [wrong, vec![given[0].clone()], reordered] {
            let e = err(&with(v.clone(), "blobVersionedHashes", json!(bad)));
            assert_eq!(e.field(), Some("blobVersionedHashes"), "{e}");
            assert!(matches!(e, TxError::Invalid { .. }));
        }
        let mut three = given;
        three.push(versioned_hash(1, 0xab));
        let e = err(&with(v, "blobVersionedHashes", json!(three)));
        assert!(e.to_string().contains("3 hashes for 2 blobs"), "{e}");
    }

    #[test]
    fn parses_7702() {
        let tx = TransactionRequest::from_value(&base7702()).unwrap();
        assert_eq!(tx.tx_type(), 4);
        assert_eq!(tx.nonce(), 3);
        assert_eq!(tx.max_fee_per_blob_gas(), None);
        let UnsignedTx::Eip7702(t) = &tx.tx else {
            panic!("{:?}", tx.tx);
        };
        assert_eq!(t.authorization_list.len(), 1);
        let auth = &t.authorization_list[0];
        assert_eq!(auth.chain_id, U256::from(1));
        assert_eq!(auth.nonce, 0);
        let key = crate::PrivateKey::from_bytes(&[0x46; 32]).unwrap();
        assert_eq!(auth.recover_authority().unwrap(), key.address());

        // chainId 0 (every chain) and other keys in an entry are fine.
        let mut v = with_auth("somethingElse", json!(1));
        v["authorizationList"][0] = signed_auth(0, 5);
        v["authorizationList"][0]["extra"] = json!("ignored");
        assert!(TransactionRequest::from_value(&v).is_ok());
    }

    #[test]
    fn authorization_list_rules() {
        assert_eq!(
            err(&without(
                with(base7702(), "type", json!(4)),
                "authorizationList"
            )),
            TxError::Missing {
                field: "authorizationList"
            }
        );
        let e = err(&with(base7702(), "authorizationList", json!([])));
        assert_eq!(e.field(), Some("authorizationList"));
        assert!(e.to_string().contains("at least one"), "{e}");
        let e = err(&with(base7702(), "authorizationList", json!({})));
        assert_eq!(e.field(), Some("authorizationList"));
        let e = err(&with(base7702(), "authorizationList", json!([1])));
        assert_eq!(e.field(), Some("authorizationList[0]"));

        // n, as written out above, is 2 * (n/2) + 1 with alloy's n/2.
        assert_eq!(SECP256K1_N, SECP256K1N_HALF * U256::from(2) + U256::from(1));
        let auth = signed_auth(1, 0);
        let s =
            U256::from_str_radix(auth["s"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        let high_s = format!("{:#x}", SECP256K1_N - s);
        let cases: Vec<(&str, Value, &str)> = vec![
            ("chainId", json!(-1), "authorizationList[0].chainId"),
            ("chainId", Value::Null, "authorizationList[0].chainId"),
            ("address", json!("0x00"), "authorizationList[0].address"),
            ("address", Value::Null, "authorizationList[0].address"),
            (
                "nonce",
                json!("0xffffffffffffffff"),
                "authorizationList[0].nonce",
            ),
            (
                "nonce",
                json!("0x10000000000000000"),
                "authorizationList[0].nonce",
            ),
            ("nonce", Value::Null, "authorizationList[0].nonce"),
            ("yParity", json!(2), "authorizationList[0].yParity"),
            ("yParity", json!("0x1b"), "authorizationList[0].yParity"),
            ("yParity", json!(true), "authorizationList[0].yParity"),
            ("yParity", Value::Null, "authorizationList[0].yParity"),
            ("r", json!("0x0"), "authorizationList[0].r"),
            (
                "r",
                json!(format!("{SECP256K1_N:#x}")),
                "authorizationList[0].r",
            ),
            (
                "r",
                json!(format!("0x1{}", "0".repeat(64))),
                "authorizationList[0].r",
            ),
            ("r", Value::Null, "authorizationList[0].r"),
            ("s", json!(0), "authorizationList[0].s"),
            ("s", json!(high_s), "authorizationList[0].s"),
            (
                "s",
                json!(format!("{:#x}", SECP256K1N_HALF + U256::from(1))),
                "authorizationList[0].s",
            ),
            ("s", Value::Null, "authorizationList[0].s"),
        ];
        for (key, bad, field) in cases {
            let e = err(&with_auth(key, bad.clone()));
            assert_eq!(e.field(), Some(field), "{key} = {bad}: {e}");
            assert!(matches!(e, TxError::Invalid { .. }), "{e:?}");
        }
        let e = err(&with_auth("s", json!(high_s)));
        assert!(e.to_string().contains("low s"), "{e}");
        // s = n/2 exactly is still low (the signature then recovers to some other address).
        let v = with_auth("s", json!(format!("{SECP256K1N_HALF:#x}")));
        assert!(TransactionRequest::from_value(&v).is_ok());
    }

    #[test]
    fn authorization_v_alias() {
        let parsed = |v: &Value| TransactionRequest::from_value(v).unwrap();
        let canonical = parsed(&base7702());
        let y = base7702()["authorizationList"][0]["yParity"].clone();

        // `v` alone, with yParity's meaning.
        let mut v = base7702();
        let entry = v["authorizationList"][0].as_object_mut().unwrap();
        entry.remove("yParity");
        entry.insert("v".into(), y.clone());
        assert_eq!(parsed(&v), canonical);
        // Both, agreeing.
        assert_eq!(parsed(&with_auth("v", y.clone())), canonical);
        // Both, disagreeing: the alias is named.
        let other = if y == json!("0x0") {
            json!(1)
        } else {
            json!(0)
        };
        let e = err(&with_auth("v", other.clone()));
        assert_eq!(e.field(), Some("authorizationList[0].v"));
        // A legacy 27/28 `v` is not guessed into a parity.
        let v27 = if y == json!("0x0") {
            json!(27)
        } else {
            json!(28)
        };
        let mut v = base7702();
        let entry = v["authorizationList"][0].as_object_mut().unwrap();
        entry.remove("yParity");
        entry.insert("v".into(), v27);
        let e = err(&v);
        assert_eq!(e.field(), Some("authorizationList[0].v"));
        assert!(e.to_string().contains("27/28"), "{e}");
    }

    #[test]
    fn authorization_must_recover() {
        // An r that is not the x coordinate of any curve point: nothing recovers from it.
        let auth = signed_auth(1, 0);
        let hash = Authorization {
            chain_id: U256::from(1),
            address: address!("5fbdb2315678afecb367f032d93f642f64180aa3"),
            nonce: 0,
        }
        .signature_hash();
        let s = U256::from(1);
        let r = (1u64..1000)
            .map(U256::from)
            .find(|r| {
                Signature::new(*r, s, false)
                    .recover_address_from_prehash(&hash)
                    .is_err()
            })
            .unwrap();
        let mut v = base7702();
        v["authorizationList"][0] = auth;
        v["authorizationList"][0]["r"] = json!(format!("{r:#x}"));
        v["authorizationList"][0]["s"] = json!("0x1");
        v["authorizationList"][0]["yParity"] = json!("0x0");
        let e = err(&v);
        assert_eq!(e.field(), Some("authorizationList[0]"), "{e}");
        assert!(e.to_string().contains("recover"), "{e}");
    }

    #[test]
    fn second_entry_is_named() {
        let mut v = base7702();
        v["authorizationList"] = json!([signed_auth(1, 0), signed_auth(1, 1)]);
        assert!(TransactionRequest::from_value(&v).is_ok());
        v["authorizationList"][1]["s"] = json!("0x0");
        assert_eq!(err(&v).field(), Some("authorizationList[1].s"));
    }

    #[test]
    fn quantity_forms_agree() {
        let forms = [
            (json!("0x5208"), json!("21000"), json!(21000)),
            (json!("0x0"), json!("0"), json!(0)),
            (json!("0x000001"), json!("0001"), json!(1)),
            (
                json!("0xFFFFFFFFFFFFFFFF"),
                json!("18446744073709551615"),
                json!(u64::MAX),
            ),
        ];
        for (hex, dec, num) in forms {
            let parse = |x: &Value| {
                let v = with(base1559(), "nonce", x.clone());
                TransactionRequest::from_value(&v).unwrap().nonce()
            };
            assert_eq!(parse(&hex), parse(&dec));
            assert_eq!(parse(&dec), parse(&num));
        }
    }

    #[test]
    fn addresses() {
        for to in [
            "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
            "0x70997970C51812DC3A010C7D01B50E0D17DC79C8",
            "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
        ] {
            let v = with(base1559(), "to", json!(to));
            assert_eq!(
                TransactionRequest::from_value(&v).unwrap().to(),
                Some(address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"))
            );
        }
        let v = with(base1559(), "to", Value::Null);
        assert_eq!(TransactionRequest::from_value(&v).unwrap().to(), None);
        let v = with(
            base1559(),
            "from",
            json!("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"),
        );
        assert_eq!(
            TransactionRequest::from_value(&v).unwrap().from(),
            Some(address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"))
        );
    }

    #[test]
    fn not_objects() {
        assert_eq!(
            TransactionRequest::from_json(b"[]").unwrap_err(),
            TxError::NotAnObject
        );
        assert_eq!(
            TransactionRequest::from_json(b"{").unwrap_err(),
            TxError::NotAnObject
        );
        assert_eq!(
            TransactionRequest::from_json(b"").unwrap_err(),
            TxError::NotAnObject
        );
        assert_eq!(err(&json!("0x")), TxError::NotAnObject);
        assert_eq!(TxError::NotAnObject.field(), None);
    }

    #[test]
    fn reasons_do_not_echo_huge_input() {
        let huge = format!("0x{}", "z".repeat(100_000));
        let v = with(base1559(), "nonce", json!(huge));
        let msg = err(&v).to_string();
        assert!(msg.len() < 200, "{msg}");
        let v = with(base1559(), "to", json!(huge));
        assert!(err(&v).to_string().len() < 200);
        let v = with(
            base1559(),
            "data",
            json!(format!("0x{}", "zz".repeat(100_000))),
        );
        assert!(err(&v).to_string().len() < 200);
    }

    #[test]
    fn unknown_fields_ignored() {
        let v = with(base1559(), "hash", json!("0xdead"));
        let v = with(v, "somethingElse", json!({"nested": [1, 2, 3]}));
        assert!(TransactionRequest::from_value(&v).is_ok());
    }
}
