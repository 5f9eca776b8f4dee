//! Parsing an Ethereum JSON-RPC transaction object into a typed, validated transaction.
//!
//! This is the one parser of untrusted transaction JSON in the project (the REST
//! `sign/transaction` body and the `eth_signTransaction` parameter both come here), so it is
//! strict, never guesses, never panics, and names the offending field in every error.
//!
//! The rules are documented on [`TransactionRequest`].

use alloy_consensus::{TxEip1559, TxEip2930, TxLegacy, TypedTransaction};
use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use serde_json::{Map, Value};

/// The longest piece of client input ever quoted back in an error reason.
const MAX_QUOTED: usize = 32;

/// Why a transaction request was rejected.
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
        /// (`accessList[0].storageKeys[1]`).
        field: String,
        /// What is wrong; quotes at most a short, truncated piece of the input.
        reason: String,
    },
    /// The transaction type is not one this crate signs (yet).
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
    #[error("transaction request must be a JSON object")]
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

    fn invalid(field: impl Into<String>, reason: impl Into<String>) -> TxError {
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
///   whitespace and values that overflow the field (u64 for `nonce`, `gas`, `chainId`, `type`;
///   u128 for fees; U256 for `value`) are rejected.
/// * The type is the explicit `type` (0, 1 or 2; anything else is
///   [`TxError::UnsupportedType`]) or is inferred: `maxFeePerGas`/`maxPriorityFeePerGas` → 2,
///   else `accessList` → 1, else 0. Fields of unsupported types (`authorizationList` → 4,
///   `blobVersionedHashes`/`maxFeePerBlobGas`/`blobs`/`sidecar` → 3) are never silently
///   dropped: without an explicit type they make the request `UnsupportedType`, with an
///   explicit supported type they are `Invalid`.
/// * Required: `chainId` (always: legacy transactions are signed with EIP-155 replay
///   protection only; it must not be 0), `nonce`, `gas` (alias `gasLimit`; both present and different is
///   invalid), and the fees of the type: `gasPrice` for 0 and 1, `maxFeePerGas` and
///   `maxPriorityFeePerGas` for 2 (priority must not exceed max). Fee fields of another
///   type are invalid, and so is a non-empty `accessList` on a type 0 transaction.
/// * `to`: absent or `null` means contract creation; an address in any single case, or in
///   mixed case only if it is a valid EIP-55 checksum. `value` defaults to 0. `data` or
///   `input` (aliases; both present and different is invalid) are `0x` hex bytes, empty if
///   absent. `from` is optional; [`crate::sign_transaction`] checks it against the key.
/// * No size limit is applied here; that is the transport's job.
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
    /// [`TxError::UnsupportedType`] for a type other than 0, 1 or 2.
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
        match &self.tx {
            // Always `Some` by construction; 0 is unreachable.
            UnsignedTx::Legacy(tx) => tx.chain_id.unwrap_or_default(),
            UnsignedTx::Eip2930(tx) => tx.chain_id,
            UnsignedTx::Eip1559(tx) => tx.chain_id,
        }
    }

    /// The recipient, or `None` for a contract creation.
    pub fn to(&self) -> Option<Address> {
        self.kind().to().copied()
    }

    /// The value transferred, in wei.
    pub fn value(&self) -> U256 {
        match &self.tx {
            UnsignedTx::Legacy(tx) => tx.value,
            UnsignedTx::Eip2930(tx) => tx.value,
            UnsignedTx::Eip1559(tx) => tx.value,
        }
    }

    /// The EIP-2718 transaction type: 0 (legacy), 1 (EIP-2930) or 2 (EIP-1559).
    pub fn tx_type(&self) -> u8 {
        match &self.tx {
            UnsignedTx::Legacy(_) => 0,
            UnsignedTx::Eip2930(_) => 1,
            UnsignedTx::Eip1559(_) => 2,
        }
    }

    /// The nonce.
    pub fn nonce(&self) -> u64 {
        match &self.tx {
            UnsignedTx::Legacy(tx) => tx.nonce,
            UnsignedTx::Eip2930(tx) => tx.nonce,
            UnsignedTx::Eip1559(tx) => tx.nonce,
        }
    }

    /// The gas limit.
    pub fn gas_limit(&self) -> u64 {
        match &self.tx {
            UnsignedTx::Legacy(tx) => tx.gas_limit,
            UnsignedTx::Eip2930(tx) => tx.gas_limit,
            UnsignedTx::Eip1559(tx) => tx.gas_limit,
        }
    }

    /// The most the sender can pay per gas: `gasPrice` for types 0 and 1, `maxFeePerGas`
    /// for type 2. `gas_limit() * max_fee_per_gas() + value()` bounds the total cost.
    pub fn max_fee_per_gas(&self) -> u128 {
        match &self.tx {
            UnsignedTx::Legacy(tx) => tx.gas_price,
            UnsignedTx::Eip2930(tx) => tx.gas_price,
            UnsignedTx::Eip1559(tx) => tx.max_fee_per_gas,
        }
    }

    /// The call data (or init code for a contract creation).
    pub fn input(&self) -> &Bytes {
        match &self.tx {
            UnsignedTx::Legacy(tx) => &tx.input,
            UnsignedTx::Eip2930(tx) => &tx.input,
            UnsignedTx::Eip1559(tx) => &tx.input,
        }
    }

    /// The hash that gets signed (keccak256 of the type byte and the RLP signing payload).
    pub fn signature_hash(&self) -> B256 {
        use alloy_consensus::SignableTransaction;
        match &self.tx {
            UnsignedTx::Legacy(tx) => tx.signature_hash(),
            UnsignedTx::Eip2930(tx) => tx.signature_hash(),
            UnsignedTx::Eip1559(tx) => tx.signature_hash(),
        }
    }

    /// The transaction as alloy's [`TypedTransaction`], for anything this type does not
    /// expose directly.
    pub fn to_typed(&self) -> TypedTransaction {
        match &self.tx {
            UnsignedTx::Legacy(tx) => TypedTransaction::Legacy(tx.clone()),
            UnsignedTx::Eip2930(tx) => TypedTransaction::Eip2930(tx.clone()),
            UnsignedTx::Eip1559(tx) => TypedTransaction::Eip1559(tx.clone()),
        }
    }

    fn kind(&self) -> &TxKind {
        match &self.tx {
            UnsignedTx::Legacy(tx) => &tx.to,
            UnsignedTx::Eip2930(tx) => &tx.to,
            UnsignedTx::Eip1559(tx) => &tx.to,
        }
    }
}

/// Fields that belong to transaction types we do not sign, with the type they imply.
const UNSUPPORTED_TYPE_FIELDS: [(&str, u64); 5] = [
    ("authorizationList", 4),
    ("blobVersionedHashes", 3),
    ("maxFeePerBlobGas", 3),
    ("blobs", 3),
    ("sidecar", 3),
];

fn parse(obj: &Map<String, Value>) -> Result<TransactionRequest, TxError> {
    let has = |key: &str| field(obj, key).is_some();

    // 1. The type.
    let tx_type = match field(obj, "type") {
        Some(v) => {
            let t = quantity_u64("type", v)?;
            if t > 2 {
                return Err(TxError::UnsupportedType(t));
            }
            if let Some((name, _)) = UNSUPPORTED_TYPE_FIELDS.iter().find(|(k, _)| has(k)) {
                return Err(TxError::invalid(
                    *name,
                    format!("not allowed in a type {t} transaction"),
                ));
            }
            t
        }
        None => {
            if let Some((_, t)) = UNSUPPORTED_TYPE_FIELDS.iter().find(|(k, _)| has(k)) {
                return Err(TxError::UnsupportedType(*t));
            }
            if has("maxFeePerGas") || has("maxPriorityFeePerGas") {
                2
            } else if has("accessList") {
                1
            } else {
                0
            }
        }
    };

    // 2. Common fields.
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

    // 3. Fees and type-specific fields.
    let tx = match tx_type {
        0 | 1 => {
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
        }
        _ => {
            if has("gasPrice") {
                return Err(TxError::invalid(
                    "gasPrice",
                    "not allowed in a type 2 transaction (use maxFeePerGas)",
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
            UnsignedTx::Eip1559(TxEip1559 {
                chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas,
                max_priority_fee_per_gas,
                to,
                value,
                access_list: access_list.unwrap_or_default(),
                input,
            })
        }
    };
    Ok(TransactionRequest { tx, from })
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
            json!(3),
            json!("0x4"),
            json!("126"),
            json!("0xffffffffffffffff"),
        ] {
            let v = with(base1559(), "type", t);
            assert!(matches!(err(&v), TxError::UnsupportedType(_)));
            assert_eq!(err(&v).field(), Some("type"));
        }
        let v = with(base1559(), "authorizationList", json!([]));
        assert_eq!(err(&v), TxError::UnsupportedType(4));
        let v = with(base1559(), "blobVersionedHashes", json!([]));
        assert_eq!(err(&v), TxError::UnsupportedType(3));
        let v = with(
            with(base1559(), "type", json!(2)),
            "maxFeePerBlobGas",
            json!(1),
        );
        assert_eq!(err(&v).field(), Some("maxFeePerBlobGas"));
        let v = with(base1559(), "type", json!("0x10000000000000000"));
        assert!(matches!(err(&v), TxError::Invalid { .. }));
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
