//! Message signing: EIP-191 personal messages and EIP-712 typed data.
//!
//! * [`PersonalMessage`], [`eip191_hash`], [`sign_personal_message`]: `personal_sign` /
//!   `eth_sign`, i.e. `keccak256("\x19Ethereum Signed Message:\n" ‖ len ‖ message)`.
//! * [`typed_data_hash`], [`sign_typed_data`]: the `eth_signTypedData_v4` document
//!   `{types, primaryType, domain, message}` hashed as
//!   `keccak256("\x19\x01" ‖ hashStruct(EIP712Domain, domain) ‖ hashStruct(primaryType, message))`.
//! * [`MessageSignature`]: the result of either, in the JSON shape of the REST API.
//!
//! # Why our own EIP-712 encoder
//!
//! alloy's `alloy_dyn_abi::TypedData` (what `cast` uses; ethers v6 does the same) computes the
//! domain separator from the fields present in `domain` in a fixed order and ignores the
//! `EIP712Domain` declaration in `types` (checked with `cast` 1.7.1: a reordered declaration
//! signs the same as the standard one), and it silently ignores message members that no type
//! declares. MetaMask (eth-sig-util) and viem hash the domain as the declared struct. We
//! follow the declaration, as the specification does, reject undeclared members (a wallet must
//! not show what it does not sign), check every value against its declared type (range,
//! length) and name the offending place in every error. The encoder agrees with `cast` on
//! every document where both accept it (see the known-answer tests).

use std::{
    cell::RefCell,
    collections::{BTreeSet, HashMap},
};

use alloy_primitives::{keccak256, Address, Bytes, Signature, B256, U256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::key::PrivateKey;

// ---------------------------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------------------------

/// A signature over a message hash (EIP-191 or EIP-712), in the forms clients expect.
///
/// JSON form (snake_case keys, byte strings and quantities as `0x` hex):
///
/// ```json
/// {
///   "hash": "0x…32 bytes",
///   "signature": "0x…65 bytes r ‖ s ‖ v",
///   "r": "0x…", "s": "0x…", "v": "0x1c", "y_parity": "0x1",
///   "signer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
/// }
/// ```
///
/// `signature` is what `personal_sign` and `eth_signTypedData_v4` return (v = 27 or 28).
/// `v` is written as a JSON-RPC quantity like the `v` of [`crate::SignatureParts`] (a JSON
/// number is accepted when reading); `signer` is EIP-55 checksummed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSignature {
    /// The 32-byte digest that was signed.
    pub hash: B256,
    /// `r ‖ s ‖ v`, 65 bytes, with `v` = 27 + `y_parity`.
    pub signature: Bytes,
    /// The `r` scalar.
    pub r: U256,
    /// The `s` scalar (always in the lower half of the group order).
    pub s: U256,
    /// 27 or 28.
    #[serde(with = "quantity")]
    pub v: u64,
    /// Whether the nonce point's y coordinate is odd (the recovery id); `"0x0"`/`"0x1"`.
    #[serde(with = "crate::sign::parity")]
    pub y_parity: bool,
    /// The signer's address (the key's), EIP-55 checksummed.
    #[serde(with = "crate::checksummed")]
    pub signer: Address,
}

impl MessageSignature {
    /// Signs `hash` with `key`.
    pub fn sign_hash(key: &PrivateKey, hash: B256) -> MessageSignature {
        let sig = key.sign_hash(&hash);
        MessageSignature::from_parts(hash, &sig, key.address())
    }

    fn from_parts(hash: B256, sig: &Signature, signer: Address) -> MessageSignature {
        let v = 27 + u64::from(sig.v());
        let mut bytes = [0u8; 65];
        bytes[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
        bytes[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
        bytes[64] = 27 + u8::from(sig.v());
        MessageSignature {
            hash,
            signature: Bytes::copy_from_slice(&bytes),
            r: sig.r(),
            s: sig.s(),
            v,
            y_parity: sig.v(),
            signer,
        }
    }

    /// Recovers the address that produced `signature` over `hash` (independently of the
    /// `signer` field); `None` if the signature is malformed.
    pub fn recover_signer(&self) -> Option<Address> {
        let sig = Signature::try_from(self.signature.as_ref()).ok()?;
        sig.recover_address_from_prehash(&self.hash).ok()
    }
}

/// Serde for a `u64` written as a `0x` quantity; reads that or a JSON number.
pub(crate) mod quantity {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:#x}"))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        Num(u64),
        Str(String),
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Repr::deserialize(d)? {
            Repr::Num(n) => Ok(n),
            Repr::Str(s) => s
                .strip_prefix("0x")
                .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .ok_or_else(|| D::Error::custom("expected a 0x-hex quantity")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// EIP-191
// ---------------------------------------------------------------------------------------------

/// An EIP-191 (version `0x45`, `personal_sign`) message.
///
/// # JSON input
///
/// Clients send the message as a JSON string; `personal_sign` callers hex-encode bytes. The
/// rule, the same as MetaMask's and `cast wallet sign`'s for valid hex:
///
/// * a string that starts with `0x` and continues with an even number of hex digits (either
///   case, possibly none) is [`PersonalMessage::Bytes`], decoded: `"0x68656c6c6f"` signs the
///   five bytes `hello`, and `"0x"` signs the empty message;
/// * any other string is [`PersonalMessage::Utf8`], signed as its UTF-8 bytes: `"hello"`,
///   `"0x123"` (odd length), `"0xzz"`, `"0X68"` (capital X) are all text.
///
/// To remove the ambiguity, send an object: `{"text": "0x68"}` is always the four characters,
/// `{"raw": "0x68"}` is always bytes (and must be valid hex). Serialization always writes
/// this explicit form, so a serialized message reads back as itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersonalMessage {
    /// Text, signed as its UTF-8 encoding.
    Utf8(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

/// Errors reading a [`PersonalMessage`] from JSON.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PersonalMessageError {
    /// Neither a string nor `{"text": …}` / `{"raw": …}`.
    #[error("message must be a string, {{\"text\": \"…\"}} or {{\"raw\": \"0x…\"}}")]
    Shape,
    /// `raw` was not `0x` followed by an even number of hex digits.
    #[error("`raw` must be 0x followed by an even number of hex digits")]
    RawHex,
}

impl PersonalMessage {
    /// Applies the string rule (see the type's documentation) to a bare string.
    pub fn from_client_string(s: &str) -> PersonalMessage {
        match decode_0x_hex(s) {
            Some(bytes) => PersonalMessage::Bytes(bytes),
            None => PersonalMessage::Utf8(s.to_owned()),
        }
    }

    /// Reads a JSON string, `{"text": "…"}` or `{"raw": "0x…"}`.
    ///
    /// # Errors
    ///
    /// [`PersonalMessageError::Shape`] for any other JSON value (including objects with
    /// other or additional keys), [`PersonalMessageError::RawHex`] for a `raw` that is not hex.
    pub fn from_value(v: &Value) -> Result<PersonalMessage, PersonalMessageError> {
        match v {
            Value::String(s) => Ok(PersonalMessage::from_client_string(s)),
            Value::Object(obj) if obj.len() == 1 => match obj.iter().next() {
                Some((k, Value::String(s))) if k == "text" => Ok(PersonalMessage::Utf8(s.clone())),
                Some((k, Value::String(s))) if k == "raw" => decode_0x_hex(s)
                    .map(PersonalMessage::Bytes)
                    .ok_or(PersonalMessageError::RawHex),
                _ => Err(PersonalMessageError::Shape),
            },
            _ => Err(PersonalMessageError::Shape),
        }
    }

    /// The bytes that are signed.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            PersonalMessage::Utf8(s) => s.as_bytes(),
            PersonalMessage::Bytes(b) => b,
        }
    }

    /// [`eip191_hash`] of the message.
    pub fn hash(&self) -> B256 {
        eip191_hash(self.as_bytes())
    }
}

impl Serialize for PersonalMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(1))?;
        match self {
            PersonalMessage::Utf8(text) => map.serialize_entry("text", text)?,
            PersonalMessage::Bytes(b) => {
                map.serialize_entry("raw", &format!("0x{}", hex::encode(b)))?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for PersonalMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PersonalMessage, D::Error> {
        let v = Value::deserialize(d)?;
        PersonalMessage::from_value(&v).map_err(serde::de::Error::custom)
    }
}

/// `0x` followed by an even number of hex digits (possibly none), decoded.
fn decode_0x_hex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.strip_prefix("0x")?).ok()
}

/// The EIP-191 version `0x45` digest:
/// `keccak256("\x19Ethereum Signed Message:\n" ‖ decimal(len(msg)) ‖ msg)`.
pub fn eip191_hash(msg: &[u8]) -> B256 {
    const PREFIX: &[u8] = b"\x19Ethereum Signed Message:\n";
    let len = msg.len().to_string();
    let mut buf = Vec::with_capacity(PREFIX.len() + len.len() + msg.len());
    buf.extend_from_slice(PREFIX);
    buf.extend_from_slice(len.as_bytes());
    buf.extend_from_slice(msg);
    keccak256(&buf)
}

/// Signs `msg` as an EIP-191 personal message (what `personal_sign` returns).
pub fn sign_personal_message(key: &PrivateKey, msg: &[u8]) -> MessageSignature {
    MessageSignature::sign_hash(key, eip191_hash(msg))
}

// ---------------------------------------------------------------------------------------------
// EIP-712
// ---------------------------------------------------------------------------------------------

/// Largest typed-data document accepted, in bytes.
pub const MAX_TYPED_DATA_LEN: usize = 1 << 20;
/// Most struct types a document may declare.
pub const MAX_TYPED_DATA_TYPES: usize = 128;
/// Most fields across all declared struct types.
pub const MAX_TYPED_DATA_FIELDS: usize = 2048;
/// Deepest nesting of structs and array dimensions below the primary type or the domain
/// (`Mail` → `Person` → `address` is 2; every `[]`/`[n]` counts one).
pub const MAX_TYPED_DATA_DEPTH: usize = 32;
/// Longest type or field name.
const MAX_NAME_LEN: usize = 256;

/// Errors hashing or signing EIP-712 typed data. Every message names the problem: the type,
/// the cycle, or the path of the offending value (`message.to[1].wallet`, `domain.chainId`).
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum TypedDataError {
    /// The input is not JSON (or a JSON string containing JSON).
    #[error("typed data is not valid JSON: {0}")]
    Json(String),
    /// The input is larger than [`MAX_TYPED_DATA_LEN`].
    #[error("typed data is larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A limit on the shape of `types` was exceeded ([`MAX_TYPED_DATA_TYPES`], [`MAX_TYPED_DATA_FIELDS`],
    /// [`MAX_TYPED_DATA_DEPTH`]).
    #[error("typed data is too complex: {0}")]
    TooComplex(String),
    /// The document is not an object.
    #[error("typed data must be a JSON object with types, primaryType, domain and message")]
    NotAnObject,
    /// A top-level member is absent.
    #[error("typed data is missing `{0}`")]
    MissingMember(&'static str),
    /// `types` is malformed: a name, a field definition or a type string.
    #[error("invalid types: {0}")]
    InvalidTypes(String),
    /// A field refers to a type that is neither atomic nor declared.
    #[error("missing type \"{name}\" (used by {used_by})")]
    MissingType {
        /// The undeclared type.
        name: String,
        /// `Struct.field`.
        used_by: String,
    },
    /// Struct types refer to each other in a cycle.
    #[error("cyclic types: cycle through {}", quoted_cycle(.0))]
    Cycle(Vec<String>),
    /// `primaryType` is not a declared struct type.
    #[error("unknown primaryType \"{0}\"")]
    UnknownPrimaryType(String),
    /// A value does not match its type.
    #[error("{reason} at {path}")]
    InvalidValue {
        /// Where: `message.from.wallet`, `domain.chainId`, `message.items[3]`.
        path: String,
        /// What: `value out of range for uint8`, `missing field`, …
        reason: String,
    },
}

fn quoted_cycle(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(" → ")
}

impl TypedDataError {
    fn types(msg: impl Into<String>) -> TypedDataError {
        TypedDataError::InvalidTypes(msg.into())
    }

    fn value(path: &str, reason: impl Into<String>) -> TypedDataError {
        TypedDataError::InvalidValue {
            path: path.to_owned(),
            reason: reason.into(),
        }
    }
}

/// The EIP-712 signing hash of an `eth_signTypedData_v4` document:
/// `keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(primaryType, message))`.
///
/// # Accepted documents
///
/// * `json` is the document object, or a JSON string containing it (`eth_signTypedData_v4`
///   passes it as a string). Members other than the four are ignored.
/// * `types` maps struct names to `[{"name": …, "type": …}, …]`. Field types are the atomic
///   types (`uint8`…`uint256` and `int8`…`int256` in steps of 8, bare `uint`/`int` as 256
///   bits, `bytes1`…`bytes32`, `address`, `bool`, `bytes`, `string`), declared struct names,
///   and arrays of either, fixed or dynamic and nested (`Person[2][]`). Every type used must
///   be declared, struct types must not refer to themselves, directly or through others
///   (alloy and `cast` reject such types too; eth-sig-util accepts recursion through arrays),
///   and nesting is bounded by [`MAX_TYPED_DATA_DEPTH`].
/// * The domain: if `types` declares `EIP712Domain` (with any fields, in any order), `domain`
///   is hashed as that struct. If it does not, the declaration is inferred from the members
///   present in `domain`, which must then be among `name` (string), `version` (string),
///   `chainId` (uint256), `verifyingContract` (address) and `salt` (bytes32), in that order;
///   this is what alloy, `cast` and viem do.
/// * `primaryType` `EIP712Domain` signs the domain alone: `keccak256("\x19\x01" ‖
///   domainSeparator)`, as eth-sig-util does.
/// * Values: every declared field must be present and no other member may be (a member that
///   is not signed must not be displayed as if it were). Integers are JSON integers or strings
///   in decimal or `0x` hex, optionally negative (`"-0x80"`), and are range-checked for their
///   width. `bytesN` must be exactly N bytes of `0x` hex, `bytes` any `0x` hex, `address`
///   `0x` and 40 hex digits (the checksum is not checked), `bool` a JSON boolean or
///   `"true"`/`"false"`, `string` a JSON string, arrays JSON arrays (of exactly the declared
///   length when fixed), structs JSON objects.
///
/// # Errors
///
/// A [`TypedDataError`] naming the type, cycle or value path that is wrong. Never panics, and
/// recursion is bounded by [`MAX_TYPED_DATA_DEPTH`] (and `serde_json`'s own nesting limit).
pub fn typed_data_hash(json: &[u8]) -> Result<B256, TypedDataError> {
    if json.len() > MAX_TYPED_DATA_LEN {
        return Err(TypedDataError::TooLarge {
            limit: MAX_TYPED_DATA_LEN,
        });
    }
    let mut doc: Value =
        serde_json::from_slice(json).map_err(|e| TypedDataError::Json(e.to_string()))?;
    if let Value::String(inner) = &doc {
        doc = serde_json::from_str(inner).map_err(|e| TypedDataError::Json(e.to_string()))?;
    }
    typed_data_hash_value(&doc)
}

/// [`typed_data_hash`] of an already parsed document (an object; a string is not unwrapped).
///
/// # Errors
///
/// As [`typed_data_hash`].
pub fn typed_data_hash_value(doc: &Value) -> Result<B256, TypedDataError> {
    let obj = doc.as_object().ok_or(TypedDataError::NotAnObject)?;
    let types = obj
        .get("types")
        .ok_or(TypedDataError::MissingMember("types"))?;
    let primary = obj
        .get("primaryType")
        .ok_or(TypedDataError::MissingMember("primaryType"))?;
    let domain = obj
        .get("domain")
        .ok_or(TypedDataError::MissingMember("domain"))?;
    let primary = primary
        .as_str()
        .ok_or_else(|| TypedDataError::types("primaryType must be a string"))?;
    let domain_obj = domain
        .as_object()
        .ok_or_else(|| TypedDataError::value("domain", "expected an object"))?;

    let encoder = Encoder::new(types, domain_obj)?;
    if !encoder.structs.contains_key(primary) {
        return Err(TypedDataError::UnknownPrimaryType(primary.to_owned()));
    }

    let mut path = String::from("domain");
    let domain_separator = encoder.hash_struct(DOMAIN, domain, &mut path)?;
    let mut buf = [0u8; 66];
    buf[0] = 0x19;
    buf[1] = 0x01;
    buf[2..34].copy_from_slice(domain_separator.as_slice());
    if primary == DOMAIN {
        return Ok(keccak256(&buf[..34]));
    }
    let message = obj
        .get("message")
        .ok_or(TypedDataError::MissingMember("message"))?;
    let mut path = String::from("message");
    let message_hash = encoder.hash_struct(primary, message, &mut path)?;
    buf[34..].copy_from_slice(message_hash.as_slice());
    Ok(keccak256(buf))
}

/// Signs an `eth_signTypedData_v4` document (see [`typed_data_hash`]).
///
/// # Errors
///
/// As [`typed_data_hash`].
pub fn sign_typed_data(key: &PrivateKey, json: &[u8]) -> Result<MessageSignature, TypedDataError> {
    let hash = typed_data_hash(json)?;
    Ok(MessageSignature::sign_hash(key, hash))
}

const DOMAIN: &str = "EIP712Domain";

/// The fields of `EIP712Domain` in the order the specification lists them.
const DOMAIN_FIELDS: [(&str, &str); 5] = [
    ("name", "string"),
    ("version", "string"),
    ("chainId", "uint256"),
    ("verifyingContract", "address"),
    ("salt", "bytes32"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Atomic {
    Uint(u16),
    Int(u16),
    FixedBytes(usize),
    Address,
    Bool,
    Bytes,
    String,
}

impl Atomic {
    fn parse(s: &str) -> Option<Atomic> {
        fn bits(digits: &str) -> Option<u16> {
            if digits.is_empty() {
                return Some(256);
            }
            if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u16 = digits.parse().ok()?;
            (n.is_multiple_of(8) && (8..=256).contains(&n)).then_some(n)
        }
        match s {
            "address" => Some(Atomic::Address),
            "bool" => Some(Atomic::Bool),
            "bytes" => Some(Atomic::Bytes),
            "string" => Some(Atomic::String),
            _ => {
                if let Some(d) = s.strip_prefix("uint") {
                    bits(d).map(Atomic::Uint)
                } else if let Some(d) = s.strip_prefix("int") {
                    bits(d).map(Atomic::Int)
                } else if let Some(d) = s.strip_prefix("bytes") {
                    if d.starts_with('0') || !d.bytes().all(|b| b.is_ascii_digit()) {
                        return None;
                    }
                    let n: usize = d.parse().ok()?;
                    (1..=32).contains(&n).then_some(Atomic::FixedBytes(n))
                } else {
                    None
                }
            }
        }
    }

    fn name(self) -> String {
        match self {
            Atomic::Uint(b) => format!("uint{b}"),
            Atomic::Int(b) => format!("int{b}"),
            Atomic::FixedBytes(n) => format!("bytes{n}"),
            Atomic::Address => "address".into(),
            Atomic::Bool => "bool".into(),
            Atomic::Bytes => "bytes".into(),
            Atomic::String => "string".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Base {
    Atomic(Atomic),
    Struct(String),
}

/// A field's type: a base and array dimensions as written (`T[2][]` → `[Some(2), None]`, the
/// last one outermost).
#[derive(Debug, Clone)]
struct FieldType {
    /// The type string exactly as declared (it goes into `encodeType`).
    raw: String,
    base: Base,
    dims: Vec<Option<usize>>,
}

#[derive(Debug, Clone)]
struct Field {
    name: String,
    ty: FieldType,
}

/// Validated `types` plus a cache of type hashes.
#[derive(Debug)]
struct Encoder {
    structs: HashMap<String, Vec<Field>>,
    type_hashes: RefCell<HashMap<String, B256>>,
}

/// A name usable in `encodeType` without ambiguity.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !"(),[]".contains(c))
}

/// Splits `Base[2][]` into `Base` and its dimensions.
fn split_type(raw: &str) -> Option<(&str, Vec<Option<usize>>)> {
    let mut dims = Vec::new();
    let mut rest = raw;
    while let Some(inner) = rest.strip_suffix(']') {
        let open = inner.rfind('[')?;
        let len = &inner[open + 1..];
        dims.push(if len.is_empty() {
            None
        } else {
            if !len.bytes().all(|b| b.is_ascii_digit()) || (len.len() > 1 && len.starts_with('0')) {
                return None;
            }
            Some(len.parse::<usize>().ok()?)
        });
        if dims.len() > MAX_TYPED_DATA_DEPTH {
            return None;
        }
        rest = &inner[..open];
    }
    dims.reverse();
    valid_name(rest).then_some((rest, dims))
}

impl Encoder {
    fn new(types: &Value, domain: &Map<String, Value>) -> Result<Encoder, TypedDataError> {
        let types = types
            .as_object()
            .ok_or_else(|| TypedDataError::types("`types` must be an object"))?;
        if types.len() > MAX_TYPED_DATA_TYPES + 1 {
            return Err(TypedDataError::TooComplex(format!(
                "more than {MAX_TYPED_DATA_TYPES} types"
            )));
        }
        // Pass 1: names and field lists.
        let mut decls: Vec<(String, Vec<(String, String)>)> = Vec::with_capacity(types.len() + 1);
        let mut total_fields = 0usize;
        for (name, fields) in types {
            if !valid_name(name) {
                return Err(TypedDataError::types(format!(
                    "invalid type name \"{}\"",
                    truncated(name)
                )));
            }
            if Atomic::parse(name).is_some() {
                return Err(TypedDataError::types(format!(
                    "type name \"{name}\" is reserved for an atomic type"
                )));
            }
            let fields = fields.as_array().ok_or_else(|| {
                TypedDataError::types(format!("type \"{name}\" must be an array of fields"))
            })?;
            total_fields += fields.len();
            if total_fields > MAX_TYPED_DATA_FIELDS {
                return Err(TypedDataError::TooComplex(format!(
                    "more than {MAX_TYPED_DATA_FIELDS} fields"
                )));
            }
            let mut list = Vec::with_capacity(fields.len());
            for (i, f) in fields.iter().enumerate() {
                let get = |key: &str| f.get(key).and_then(Value::as_str);
                let (Some(fname), Some(ftype)) = (get("name"), get("type")) else {
                    return Err(TypedDataError::types(format!(
                        "field {i} of type \"{name}\" must be an object with string `name` and `type`"
                    )));
                };
                if !valid_name(fname) {
                    return Err(TypedDataError::types(format!(
                        "invalid field name \"{}\" in type \"{name}\"",
                        truncated(fname)
                    )));
                }
                if list.iter().any(|(n, _): &(String, String)| n == fname) {
                    return Err(TypedDataError::types(format!(
                        "duplicate field \"{fname}\" in type \"{name}\""
                    )));
                }
                list.push((fname.to_owned(), ftype.to_owned()));
            }
            decls.push((name.clone(), list));
        }
        if !types.contains_key(DOMAIN) {
            let mut list = Vec::new();
            for key in domain.keys() {
                if !DOMAIN_FIELDS.iter().any(|(n, _)| n == key) {
                    return Err(TypedDataError::value(
                        "domain",
                        format!(
                            "field \"{}\" is not a standard EIP712Domain field (declare EIP712Domain in types to use it)",
                            truncated(key)
                        ),
                    ));
                }
            }
            for (n, t) in DOMAIN_FIELDS {
                if domain.contains_key(n) {
                    list.push((n.to_owned(), t.to_owned()));
                }
            }
            decls.push((DOMAIN.to_owned(), list));
        }

        // Pass 2: resolve field types.
        let mut structs: HashMap<String, Vec<Field>> = HashMap::with_capacity(decls.len());
        let declared: BTreeSet<&str> = decls.iter().map(|(n, _)| n.as_str()).collect();
        for (name, list) in &decls {
            let mut fields = Vec::with_capacity(list.len());
            for (fname, raw) in list {
                let (base, dims) = split_type(raw).ok_or_else(|| {
                    TypedDataError::types(format!(
                        "invalid type \"{}\" for {name}.{fname}",
                        truncated(raw)
                    ))
                })?;
                let base = match Atomic::parse(base) {
                    Some(a) => Base::Atomic(a),
                    None if declared.contains(base) => Base::Struct(base.to_owned()),
                    None => {
                        return Err(TypedDataError::MissingType {
                            name: base.to_owned(),
                            used_by: format!("{name}.{fname}"),
                        })
                    }
                };
                fields.push(Field {
                    name: fname.clone(),
                    ty: FieldType {
                        raw: raw.clone(),
                        base,
                        dims,
                    },
                });
            }
            structs.insert(name.clone(), fields);
        }

        let encoder = Encoder {
            structs,
            type_hashes: RefCell::new(HashMap::new()),
        };
        encoder.check_acyclic_and_depth()?;
        Ok(encoder)
    }

    /// Rejects cycles (naming them) and nesting deeper than [`MAX_TYPED_DATA_DEPTH`], over all declared
    /// types.
    fn check_acyclic_and_depth(&self) -> Result<(), TypedDataError> {
        let mut depth: HashMap<&str, usize> = HashMap::new();
        let mut names: Vec<&str> = self.structs.keys().map(String::as_str).collect();
        names.sort_unstable();
        for name in names {
            let mut stack = Vec::new();
            self.visit(name, &mut stack, &mut depth)?;
        }
        Ok(())
    }

    /// Depth-first search; `stack` is the current path. Recursion is at most `MAX_TYPED_DATA_DEPTH + 1`
    /// deep because each level adds at least one to the depth of the path.
    fn visit<'a>(
        &'a self,
        name: &'a str,
        stack: &mut Vec<&'a str>,
        depth: &mut HashMap<&'a str, usize>,
    ) -> Result<usize, TypedDataError> {
        if let Some(&d) = depth.get(name) {
            return Ok(d);
        }
        if let Some(pos) = stack.iter().position(|n| *n == name) {
            let mut cycle: Vec<String> = stack[pos..].iter().map(|s| (*s).to_owned()).collect();
            cycle.push(name.to_owned());
            return Err(TypedDataError::Cycle(cycle));
        }
        if stack.len() >= MAX_TYPED_DATA_DEPTH {
            return Err(TypedDataError::TooComplex(format!(
                "types nest deeper than {MAX_TYPED_DATA_DEPTH} levels"
            )));
        }
        stack.push(name);
        let mut max = 0;
        for field in self
            .structs
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let below = match &field.ty.base {
                Base::Atomic(_) => 0,
                Base::Struct(s) => self.visit(s, stack, depth)?,
            };
            max = max.max(below + field.ty.dims.len());
        }
        stack.pop();
        let d = max + 1;
        if d > MAX_TYPED_DATA_DEPTH {
            return Err(TypedDataError::TooComplex(format!(
                "types nest deeper than {MAX_TYPED_DATA_DEPTH} levels (at \"{name}\")"
            )));
        }
        depth.insert(name, d);
        Ok(d)
    }

    /// `encodeType(name)`: the struct itself, then the structs it references (transitively),
    /// sorted by name.
    fn encode_type(&self, name: &str) -> String {
        let mut deps = BTreeSet::new();
        let mut todo = vec![name];
        while let Some(n) = todo.pop() {
            for f in self.structs.get(n).map(Vec::as_slice).unwrap_or_default() {
                if let Base::Struct(s) = &f.ty.base {
                    if s != name && deps.insert(s.as_str()) {
                        todo.push(s);
                    }
                }
            }
        }
        let mut out = String::new();
        for n in std::iter::once(name).chain(deps) {
            out.push_str(n);
            out.push('(');
            let fields = self.structs.get(n).map(Vec::as_slice).unwrap_or_default();
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&f.ty.raw);
                out.push(' ');
                out.push_str(&f.name);
            }
            out.push(')');
        }
        out
    }

    fn type_hash(&self, name: &str) -> B256 {
        if let Some(h) = self.type_hashes.borrow().get(name) {
            return *h;
        }
        let h = keccak256(self.encode_type(name));
        self.type_hashes.borrow_mut().insert(name.to_owned(), h);
        h
    }

    /// `hashStruct(name, value)`. `path` names `value` and is restored before returning.
    fn hash_struct(
        &self,
        name: &str,
        value: &Value,
        path: &mut String,
    ) -> Result<B256, TypedDataError> {
        let obj = value
            .as_object()
            .ok_or_else(|| TypedDataError::value(path, format!("expected a {name} object")))?;
        let fields = self
            .structs
            .get(name)
            .map(Vec::as_slice)
            .unwrap_or_default();
        if let Some(extra) = obj.keys().find(|k| !fields.iter().any(|f| &f.name == *k)) {
            return Err(TypedDataError::value(
                path,
                format!(
                    "unexpected field \"{}\" (not in type {name})",
                    truncated(extra)
                ),
            ));
        }
        let mut buf = Vec::with_capacity(32 * (fields.len() + 1));
        buf.extend_from_slice(self.type_hash(name).as_slice());
        for f in fields {
            let len = path.len();
            path.push('.');
            path.push_str(&f.name);
            let v = obj.get(&f.name).ok_or_else(|| {
                TypedDataError::value(path, format!("missing field of type {}", f.ty.raw))
            })?;
            let word = self.encode_value(&f.ty.base, &f.ty.dims, v, path)?;
            buf.extend_from_slice(word.as_slice());
            path.truncate(len);
        }
        Ok(keccak256(&buf))
    }

    /// The 32-byte `encodeData` word of `value` as `base` with array dimensions `dims`
    /// (outermost last).
    fn encode_value(
        &self,
        base: &Base,
        dims: &[Option<usize>],
        value: &Value,
        path: &mut String,
    ) -> Result<B256, TypedDataError> {
        if let Some((outer, inner)) = dims.split_last() {
            let items = value
                .as_array()
                .ok_or_else(|| TypedDataError::value(path, "expected an array"))?;
            if let Some(n) = outer {
                if items.len() != *n {
                    return Err(TypedDataError::value(
                        path,
                        format!("expected {n} elements, got {}", items.len()),
                    ));
                }
            }
            let mut buf = Vec::with_capacity(32 * items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let word = self.encode_value(base, inner, item, path)?;
                buf.extend_from_slice(word.as_slice());
                path.truncate(len);
            }
            return Ok(keccak256(&buf));
        }
        match base {
            Base::Struct(name) => self.hash_struct(name, value, path),
            Base::Atomic(a) => encode_atomic(*a, value).map_err(|r| TypedDataError::value(path, r)),
        }
    }
}

/// At most 64 characters of a name that goes into an error message.
fn truncated(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

fn encode_atomic(a: Atomic, v: &Value) -> Result<B256, String> {
    match a {
        Atomic::Uint(bits) => {
            let (neg, mag) = parse_integer(v, a)?;
            let out_of_range = || format!("value out of range for uint{bits}");
            if neg && !mag.is_zero() {
                return Err(out_of_range());
            }
            if bits < 256 && mag >= (U256::from(1u8) << bits) {
                return Err(out_of_range());
            }
            Ok(B256::from(mag))
        }
        Atomic::Int(bits) => {
            let (neg, mag) = parse_integer(v, a)?;
            let limit = U256::from(1u8) << (bits - 1);
            if (neg && mag > limit) || (!neg && mag >= limit) {
                return Err(format!("value out of range for int{bits}"));
            }
            Ok(B256::from(if neg { mag.wrapping_neg() } else { mag }))
        }
        Atomic::FixedBytes(n) => {
            let bytes = v
                .as_str()
                .and_then(decode_hex_any_prefix)
                .filter(|b| b.len() == n)
                .ok_or_else(|| {
                    format!("expected 0x followed by {} hex digits for bytes{n}", 2 * n)
                })?;
            let mut word = B256::ZERO;
            word[..n].copy_from_slice(&bytes);
            Ok(word)
        }
        Atomic::Address => {
            let s = v.as_str().ok_or("expected an address string")?;
            let bytes = decode_hex_any_prefix(s)
                .filter(|b| b.len() == 20)
                .ok_or("expected an address: 0x followed by 40 hex digits")?;
            let mut word = B256::ZERO;
            word[12..].copy_from_slice(&bytes);
            Ok(word)
        }
        Atomic::Bool => {
            let b = match v {
                Value::Bool(b) => *b,
                Value::String(s) if s == "true" => true,
                Value::String(s) if s == "false" => false,
                _ => return Err("expected a boolean".into()),
            };
            Ok(B256::from(U256::from(u8::from(b))))
        }
        Atomic::Bytes => {
            let bytes = v
                .as_str()
                .and_then(decode_hex_any_prefix)
                .ok_or("expected 0x followed by an even number of hex digits for bytes")?;
            Ok(keccak256(bytes))
        }
        Atomic::String => {
            let s = v.as_str().ok_or("expected a string")?;
            Ok(keccak256(s.as_bytes()))
        }
    }
}

fn decode_hex_any_prefix(s: &str) -> Option<Vec<u8>> {
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    hex::decode(digits).ok()
}

/// An integer as (negative, magnitude): a JSON integer, or a string in decimal or `0x` hex
/// with an optional leading `-`.
fn parse_integer(v: &Value, a: Atomic) -> Result<(bool, U256), String> {
    let ty = a.name();
    match v {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok((false, U256::from(u)))
            } else if let Some(i) = n.as_i64() {
                Ok((i < 0, U256::from(i.unsigned_abs())))
            } else {
                Err(format!(
                    "expected an integer for {ty} (send large numbers as decimal or 0x-hex strings)"
                ))
            }
        }
        Value::String(s) => {
            let (neg, body) = match s.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, s.as_str()),
            };
            let (radix, digits) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X"))
            {
                Some(h) => (16, h),
                None => (10, body),
            };
            let ok = !digits.is_empty()
                && digits.bytes().all(|b| {
                    if radix == 16 {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                });
            if !ok {
                return Err(format!(
                    "expected an integer for {ty}: decimal or 0x-hex, optionally with a leading -"
                ));
            }
            let mag = U256::from_str_radix(digits, radix)
                .map_err(|_| format!("value out of range for {ty}"))?;
            Ok((neg, mag))
        }
        _ => Err(format!("expected an integer for {ty}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256, hex};
    use serde_json::json;

    /// keccak256("cow"), the key of the EIP-712 specification's example.
    const COW: &str = "c85ef7d79691fe79573b1a7064c19c1a9819ebdbd1faaab1a8ec92344438aaf4";
    /// Hardhat / anvil account 0.
    const HARDHAT0: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    const MAIL: &str = include_str!("../tests/vectors/eip712/mail.json");
    const ATOMICS: &str = include_str!("../tests/vectors/eip712/atomics.json");
    const ARRAYS: &str = include_str!("../tests/vectors/eip712/arrays.json");
    const EMPTY_DOMAIN: &str = include_str!("../tests/vectors/eip712/empty_domain.json");

    fn key(hex: &str) -> PrivateKey {
        PrivateKey::from_hex(hex).unwrap()
    }

    fn err(doc: &Value) -> TypedDataError {
        typed_data_hash(doc.to_string().as_bytes()).unwrap_err()
    }

    fn mail() -> Value {
        serde_json::from_str(MAIL).unwrap()
    }

    #[test]
    fn cow_key_is_the_eips() {
        assert_eq!(hex::encode(keccak256(b"cow")), COW);
        assert_eq!(
            key(COW).address(),
            address!("CD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")
        );
    }

    /// The example in EIP-712 itself (`Mail`): domain separator, struct hash, signing hash
    /// and signature as the EIP states them.
    #[test]
    fn eip712_specification_example() {
        let doc = mail();
        let enc = Encoder::new(&doc["types"], doc["domain"].as_object().unwrap()).unwrap();
        assert_eq!(
            enc.encode_type("Mail"),
            "Mail(Person from,Person to,string contents)Person(string name,address wallet)"
        );
        let mut p = String::new();
        assert_eq!(
            enc.hash_struct(DOMAIN, &doc["domain"], &mut p).unwrap(),
            b256!("f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f")
        );
        assert_eq!(
            enc.hash_struct("Mail", &doc["message"], &mut p).unwrap(),
            b256!("c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e")
        );
        let hash = typed_data_hash(MAIL.as_bytes()).unwrap();
        assert_eq!(
            hash,
            b256!("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
        );
        let sig = sign_typed_data(&key(COW), MAIL.as_bytes()).unwrap();
        assert_eq!(sig.hash, hash);
        assert_eq!(sig.v, 28);
        assert!(sig.y_parity);
        assert_eq!(
            sig.r,
            U256::from_be_bytes(hex!(
                "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d"
            ))
        );
        assert_eq!(
            sig.s,
            U256::from_be_bytes(hex!(
                "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562"
            ))
        );
        assert_eq!(sig.signer, key(COW).address());
        assert_eq!(sig.recover_signer(), Some(sig.signer));
    }

    /// Signatures made offline by Foundry's `cast` 1.7.1 (npm `@foundry-rs/cast`), from the
    /// repository root:
    ///
    /// ```sh
    /// cast wallet sign --private-key 0x<key> --data --from-file crates/eth/tests/vectors/eip712/<file>.json
    /// ```
    ///
    /// with `<key>` the cow key and Hardhat account 0. The cow/`mail.json` signature is the
    /// EIP's. `cast` uses alloy's encoder, an independent implementation of the same spec;
    /// these documents declare `EIP712Domain` in the standard order, where the two agree.
    #[test]
    fn cast_typed_data_vectors() {
        let vectors: [(&str, &str, &str); 8] = [
            (MAIL, COW, "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b915621c"),
            (MAIL, HARDHAT0, "6ea8bb309a3401225701f3565e32519f94a0ea91a5910ce9229fe488e773584c0390416a2190d9560219dab757ecca2029e63fa9d1c2aebf676cc25b9f03126a1b"),
            (ATOMICS, COW, "4e4ebb88f90ce4b2417cc8a674f5894a0cbcf7828e0d79e9250e8f9f5b284eee57585aa1460a444d7f60b142bc0b02efc230c2c731247fab76db8533af5d51ad1b"),
            (ATOMICS, HARDHAT0, "3cfa7df6b645b925a71c67772f2cc39680180bc4deada7b667caa04658ecd9d51fb81141d75eea017013ada0f7a1884e2ac09f86949c82418bd804a45a22466c1c"),
            (ARRAYS, COW, "1e5dd17d6e3fc6d49cf73db31cb4a9dd10ddad89640f1b0be9a95f39fcb42cc43ba119f2f836f2779cbe717f454d95c53711c20713fa65f5326cdd1412975f021b"),
            (ARRAYS, HARDHAT0, "2719c5839da023800b26d010b550a237a1d816de0ce7c6e055a22086784c943572a30acf787361718fc2f89e568042859e02f83a6b4fbb43d33aab5aa41663341b"),
            (EMPTY_DOMAIN, COW, "364666b6d59050e4ab7425e54d1b671ad6d75c59a7abffabddb49741f4b9f3b10932dd8f17090aaa853a122414fdc9e8c7bdeee833d96aaf196df3309967d3b41c"),
            (EMPTY_DOMAIN, HARDHAT0, "4151feeeb0eda45c316429969666e43bed8fdaa211a04a858719f748c147a5f071efda74a829ee59a9b93ec61e763d335ccd9ba42e4a67a57ba7d50f6ccb1aa81c"),
        ];
        for (doc, k, expected) in vectors {
            let k = key(k);
            let sig = sign_typed_data(&k, doc.as_bytes()).unwrap();
            assert_eq!(hex::encode(&sig.signature), expected);
            assert_eq!(sig.recover_signer(), Some(k.address()));
            assert_eq!(sig.signer, k.address());
        }
    }

    /// Without an `EIP712Domain` declaration the domain's type is inferred from its members
    /// (as alloy/cast/viem do); with the declaration it is hashed as declared.
    #[test]
    fn domain_declared_or_inferred() {
        let expected = typed_data_hash(MAIL.as_bytes()).unwrap();
        let mut doc = mail();
        doc["types"].as_object_mut().unwrap().remove(DOMAIN);
        assert_eq!(
            typed_data_hash(doc.to_string().as_bytes()).unwrap(),
            expected
        );

        // Declared in another order: a different (declared) type, so a different hash.
        let mut doc = mail();
        doc["types"][DOMAIN] = json!([
            { "name": "chainId", "type": "uint256" },
            { "name": "name", "type": "string" },
            { "name": "version", "type": "string" },
            { "name": "verifyingContract", "type": "address" },
        ]);
        let reordered = typed_data_hash(doc.to_string().as_bytes()).unwrap();
        assert_ne!(reordered, expected);

        // A subset: only chainId, declared and present.
        let mut doc = mail();
        doc["types"][DOMAIN] = json!([{ "name": "chainId", "type": "uint256" }]);
        doc["domain"] = json!({ "chainId": "0x1" });
        let h = typed_data_hash(doc.to_string().as_bytes()).unwrap();
        let mut inferred = doc.clone();
        inferred["types"].as_object_mut().unwrap().remove(DOMAIN);
        assert_eq!(typed_data_hash(inferred.to_string().as_bytes()).unwrap(), h);

        // Declared field absent from the domain, and a domain member not declared.
        let mut doc = mail();
        doc["domain"].as_object_mut().unwrap().remove("version");
        assert_eq!(
            err(&doc).to_string(),
            "missing field of type string at domain.version"
        );
        let mut doc = mail();
        doc["domain"]["salt"] = json!(format!("0x{}", "00".repeat(32)));
        assert_eq!(
            err(&doc).to_string(),
            "unexpected field \"salt\" (not in type EIP712Domain) at domain"
        );
        // Not declared and not standard.
        let mut doc = mail();
        doc["types"].as_object_mut().unwrap().remove(DOMAIN);
        doc["domain"]["foo"] = json!("bar");
        assert!(err(&doc)
            .to_string()
            .contains("\"foo\" is not a standard EIP712Domain field"));
        // Domain values are checked against the declared types.
        let mut doc = mail();
        doc["domain"]["chainId"] = json!("one");
        assert!(
            err(&doc).to_string().ends_with("at domain.chainId"),
            "{}",
            err(&doc)
        );
        let mut doc = mail();
        doc["domain"]["verifyingContract"] = json!("0x1234");
        assert_eq!(
            err(&doc).to_string(),
            "expected an address: 0x followed by 40 hex digits at domain.verifyingContract"
        );
    }

    /// `primaryType: EIP712Domain` signs `"\x19\x01" ‖ domainSeparator` (eth-sig-util).
    #[test]
    fn primary_type_domain() {
        let mut doc = mail();
        doc["primaryType"] = json!(DOMAIN);
        doc.as_object_mut().unwrap().remove("message");
        let mut buf = vec![0x19, 0x01];
        buf.extend_from_slice(&hex!(
            "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f"
        ));
        assert_eq!(
            typed_data_hash(doc.to_string().as_bytes()).unwrap(),
            keccak256(buf)
        );
    }

    /// `eth_signTypedData_v4` passes the document as a JSON string.
    #[test]
    fn document_as_json_string() {
        let wrapped = serde_json::to_vec(&Value::String(MAIL.to_owned())).unwrap();
        assert_eq!(
            typed_data_hash(&wrapped).unwrap(),
            typed_data_hash(MAIL.as_bytes()).unwrap()
        );
    }

    #[test]
    fn integer_forms_and_ranges() {
        let doc = |ty: &str, v: Value| {
            json!({
                "types": { "EIP712Domain": [], "T": [{ "name": "x", "type": ty }] },
                "primaryType": "T", "domain": {}, "message": { "x": v }
            })
        };
        let h = |ty: &str, v: Value| typed_data_hash(doc(ty, v).to_string().as_bytes());
        // The same value in every accepted form.
        let a = h("uint256", json!(255)).unwrap();
        for v in [json!("255"), json!("0xff"), json!("0XFF"), json!("0x00ff")] {
            assert_eq!(h("uint256", v).unwrap(), a);
        }
        let m = h("int256", json!(-128)).unwrap();
        for v in [json!("-128"), json!("-0x80")] {
            assert_eq!(h("int256", v).unwrap(), m);
        }
        // Boundaries.
        assert!(h("uint8", json!(255)).is_ok());
        assert_eq!(
            h("uint8", json!(256)).unwrap_err().to_string(),
            "value out of range for uint8 at message.x"
        );
        assert!(h("uint8", json!(-1)).is_err());
        assert!(h("uint8", json!("-0")).is_ok());
        assert!(h("int8", json!(-128)).is_ok());
        assert!(h("int8", json!(127)).is_ok());
        assert!(h("int8", json!(128)).is_err());
        assert!(h("int8", json!(-129)).is_err());
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935";
        assert!(h("uint256", json!(max)).is_ok());
        assert!(h("uint256", json!(format!("{max}0"))).is_err());
        assert!(h("uint", json!(max)).is_ok());
        assert!(h("int256", json!(max)).is_err());
        for bad in [
            json!(1.5),
            json!(1e30),
            json!(""),
            json!("0x"),
            json!("1_0"),
            json!(" 1"),
            json!(true),
            json!("+1"),
        ] {
            assert!(h("uint256", bad.clone()).is_err(), "{bad}");
        }
        // Not atomic, not declared.
        for ty in [
            "uint7", "uint264", "uint08", "int0", "bytes0", "bytes33", "byte",
        ] {
            assert!(
                matches!(h(ty, json!(1)), Err(TypedDataError::MissingType { .. })),
                "{ty}"
            );
        }
        // bytesN exact length, address length, bool, bytes, string.
        assert!(h("bytes2", json!("0x0102")).is_ok());
        assert_eq!(
            h("bytes2", json!("0x01")).unwrap_err().to_string(),
            "expected 0x followed by 4 hex digits for bytes2 at message.x"
        );
        assert!(h("bytes2", json!("0x010203")).is_err());
        assert!(h(
            "address",
            json!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
        )
        .is_ok());
        assert!(h("address", json!("70997970C51812dc3A010C7d01b50e0d17dc79C8")).is_err());
        assert_eq!(
            h("bool", json!(true)).unwrap(),
            h("bool", json!("true")).unwrap()
        );
        assert!(h("bool", json!(1)).is_err());
        assert!(h("bytes", json!("0x123")).is_err());
        assert!(h("bytes", json!("hello")).is_err());
        assert!(h("string", json!(1)).is_err());
        // Arrays.
        assert!(h("uint8[2]", json!([1, 2])).is_ok());
        assert_eq!(
            h("uint8[2]", json!([1, 2, 3])).unwrap_err().to_string(),
            "expected 2 elements, got 3 at message.x"
        );
        assert_eq!(
            h("uint8[][2]", json!([[1], [2, 300]]))
                .unwrap_err()
                .to_string(),
            "value out of range for uint8 at message.x[1][1]"
        );
        for ty in [
            "uint8[",
            "uint8]",
            "uint8[x]",
            "uint8[01]",
            "uint8[-1]",
            "[]",
            "uint8 []",
        ] {
            assert!(
                matches!(h(ty, json!([])), Err(TypedDataError::InvalidTypes(_))),
                "{ty}"
            );
        }
    }

    #[test]
    fn bad_documents_name_the_problem() {
        // Missing type.
        let mut doc = mail();
        doc["types"].as_object_mut().unwrap().remove("Person");
        assert_eq!(
            err(&doc).to_string(),
            "missing type \"Person\" (used by Mail.from)"
        );
        // Cycle A → B → A.
        let doc = json!({
            "types": {
                "EIP712Domain": [],
                "A": [{ "name": "b", "type": "B" }],
                "B": [{ "name": "a", "type": "A[]" }]
            },
            "primaryType": "A", "domain": {}, "message": { "b": { "a": [] } }
        });
        assert_eq!(
            err(&doc),
            TypedDataError::Cycle(vec!["A".into(), "B".into(), "A".into()])
        );
        assert_eq!(
            err(&doc).to_string(),
            "cyclic types: cycle through \"A\" → \"B\" → \"A\""
        );
        // Self reference.
        let doc = json!({
            "types": { "Node": [{ "name": "next", "type": "Node" }] },
            "primaryType": "Node", "domain": {}, "message": {}
        });
        assert_eq!(
            err(&doc),
            TypedDataError::Cycle(vec!["Node".into(), "Node".into()])
        );
        // Unknown primaryType.
        let mut doc = mail();
        doc["primaryType"] = json!("Letter");
        assert_eq!(err(&doc).to_string(), "unknown primaryType \"Letter\"");
        doc["primaryType"] = json!("uint256");
        assert_eq!(err(&doc).to_string(), "unknown primaryType \"uint256\"");
        // Value out of range, deep in the message.
        let mut doc = mail();
        doc["types"]["Person"][1]["type"] = json!("uint8");
        doc["message"]["from"]["wallet"] = json!(1000);
        assert_eq!(
            err(&doc).to_string(),
            "value out of range for uint8 at message.from.wallet"
        );
        // Missing and extra message fields.
        let mut doc = mail();
        doc["message"]["to"]
            .as_object_mut()
            .unwrap()
            .remove("wallet");
        assert_eq!(
            err(&doc).to_string(),
            "missing field of type address at message.to.wallet"
        );
        let mut doc = mail();
        doc["message"]["bcc"] = json!("x");
        assert_eq!(
            err(&doc).to_string(),
            "unexpected field \"bcc\" (not in type Mail) at message"
        );
        // Malformed JSON and shapes.
        assert!(matches!(
            typed_data_hash(b"{\"types\":"),
            Err(TypedDataError::Json(_))
        ));
        assert!(matches!(
            typed_data_hash(b"\"{\""),
            Err(TypedDataError::Json(_))
        ));
        assert_eq!(typed_data_hash(b"[]"), Err(TypedDataError::NotAnObject));
        let mut doc = mail();
        doc.as_object_mut().unwrap().remove("types");
        assert_eq!(err(&doc), TypedDataError::MissingMember("types"));
        let mut doc = mail();
        doc.as_object_mut().unwrap().remove("message");
        assert_eq!(err(&doc), TypedDataError::MissingMember("message"));
        // Bad names and declarations.
        let mut doc = mail();
        doc["types"]["Person"][0]["name"] = json!("na me");
        assert!(matches!(err(&doc), TypedDataError::InvalidTypes(_)));
        let mut doc = mail();
        doc["types"]["Person"][1]["name"] = json!("name");
        assert_eq!(
            err(&doc).to_string(),
            "invalid types: duplicate field \"name\" in type \"Person\""
        );
        let mut doc = mail();
        doc["types"]["uint256"] = json!([]);
        assert!(err(&doc).to_string().contains("reserved"));
        let mut doc = mail();
        doc["types"]["P[]"] = json!([]);
        assert!(matches!(err(&doc), TypedDataError::InvalidTypes(_)));
        let mut doc = mail();
        doc["types"]["Person"] = json!({});
        assert!(matches!(err(&doc), TypedDataError::InvalidTypes(_)));
    }

    #[test]
    fn depth_and_size_bombs() {
        // JSON nesting beyond serde_json's limit: an error, not a stack overflow.
        let bomb = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            typed_data_hash(bomb.as_bytes()),
            Err(TypedDataError::Json(_))
        ));
        // A chain of MAX_TYPED_DATA_DEPTH + 10 struct types.
        let n = MAX_TYPED_DATA_DEPTH + 10;
        let mut types = Map::new();
        for i in 0..n {
            let ty = if i + 1 == n {
                "uint8".to_owned()
            } else {
                format!("T{}", i + 1)
            };
            types.insert(format!("T{i}"), json!([{ "name": "x", "type": ty }]));
        }
        let doc = json!({ "types": types, "primaryType": "T0", "domain": {}, "message": {} });
        assert!(
            matches!(err(&doc), TypedDataError::TooComplex(_)),
            "{}",
            err(&doc)
        );
        // Array dimensions count towards the depth.
        let dims = |n: usize| {
            let ty = format!("uint8{}", "[]".repeat(n));
            json!({
                "types": { "T": [{ "name": "x", "type": ty }] },
                "primaryType": "T", "domain": {}, "message": { "x": [] }
            })
        };
        assert!(matches!(
            err(&dims(MAX_TYPED_DATA_DEPTH + 1)),
            TypedDataError::InvalidTypes(_)
        ));
        assert!(matches!(
            err(&dims(MAX_TYPED_DATA_DEPTH)),
            TypedDataError::TooComplex(_)
        ));
        typed_data_hash(dims(MAX_TYPED_DATA_DEPTH - 1).to_string().as_bytes()).unwrap();
        // Too many types, too large.
        let mut types = Map::new();
        for i in 0..=MAX_TYPED_DATA_TYPES + 1 {
            types.insert(format!("T{i}"), json!([]));
        }
        let doc = json!({ "types": types, "primaryType": "T0", "domain": {}, "message": {} });
        assert!(matches!(err(&doc), TypedDataError::TooComplex(_)));
        let big = vec![b' '; MAX_TYPED_DATA_LEN + 1];
        assert!(matches!(
            typed_data_hash(&big),
            Err(TypedDataError::TooLarge { .. })
        ));
        // Within limits: a chain exactly MAX_TYPED_DATA_DEPTH deep works.
        let n = MAX_TYPED_DATA_DEPTH - 1;
        let mut types = Map::new();
        for i in 0..n {
            let ty = if i + 1 == n {
                "uint8".to_owned()
            } else {
                format!("T{}", i + 1)
            };
            types.insert(format!("T{i}"), json!([{ "name": "x", "type": ty }]));
        }
        let mut msg = json!(1);
        for _ in 0..n {
            msg = json!({ "x": msg });
        }
        let doc = json!({ "types": types, "primaryType": "T0", "domain": {}, "message": msg });
        typed_data_hash(doc.to_string().as_bytes()).unwrap();
    }

    /// Made offline with Foundry's `cast` 1.7.1, Hardhat account 0:
    ///
    /// ```sh
    /// cast wallet sign --private-key 0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80 hello
    /// cast wallet sign --private-key 0xac09…ff80 0x68656c6c6f    # hex is bytes: the same
    /// cast wallet sign --private-key 0xac09…ff80 ""              # and "0x": the same
    /// cast wallet sign --private-key 0xac09…ff80 "héllo ✓"
    /// cast wallet sign --private-key 0xac09…ff80 0xDEADbeef
    /// cast hash-message hello
    /// ```
    #[test]
    fn eip191_cast_vectors() {
        assert_eq!(
            eip191_hash(b"hello"),
            b256!("50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750")
        );
        let k = key(HARDHAT0);
        let vectors = [
            ("hello", "f16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f94504311c"),
            ("0x68656c6c6f", "f16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f94504311c"),
            ("", "c1977b761f1dd36c29795783460d241885c8e7f9d962dbe7bba2753fd94e89b444a1cd9ed855dd09afa3b73f7c2bd097ec9abc2d2775d737505a02d3f0cafa591b"),
            ("0x", "c1977b761f1dd36c29795783460d241885c8e7f9d962dbe7bba2753fd94e89b444a1cd9ed855dd09afa3b73f7c2bd097ec9abc2d2775d737505a02d3f0cafa591b"),
            ("héllo ✓", "7b2c6bb34ec69fd5f66c802d7300a2a8205700e233478bbd197f91f39e9c4d9916c7430ee22270314a07105c2a807130e3dc8f1a74b186e863c49cdd977a7fbf1b"),
            ("0xDEADbeef", "a114c834af73872c6c9efe918d85b0b1b34a486d10f9011e2630e28417c828c060dbd65cda67e73d52ebb7c555260621dbc1b0b4036acb61086bba091ac3f1641b"),
        ];
        for (input, expected) in vectors {
            let msg: PersonalMessage = serde_json::from_value(json!(input)).unwrap();
            let sig = sign_personal_message(&k, msg.as_bytes());
            assert_eq!(hex::encode(&sig.signature), expected, "{input}");
            assert_eq!(sig.hash, msg.hash());
            assert_eq!(sig.recover_signer(), Some(k.address()));
            assert_eq!(u64::from(sig.signature[64]), sig.v);
        }
    }

    #[test]
    fn personal_message_rule() {
        let parse = |v: Value| serde_json::from_value::<PersonalMessage>(v);
        assert_eq!(
            parse(json!("hello")).unwrap(),
            PersonalMessage::Utf8("hello".into())
        );
        assert_eq!(
            parse(json!("0x68")).unwrap(),
            PersonalMessage::Bytes(vec![0x68])
        );
        assert_eq!(
            parse(json!("0xAbCd")).unwrap(),
            PersonalMessage::Bytes(vec![0xab, 0xcd])
        );
        assert_eq!(parse(json!("0x")).unwrap(), PersonalMessage::Bytes(vec![]));
        for text in ["0x123", "0xzz", "0X68", " 0x68", "68656c6c6f"] {
            assert_eq!(
                parse(json!(text)).unwrap(),
                PersonalMessage::Utf8(text.into()),
                "{text}"
            );
        }
        assert_eq!(
            parse(json!({ "text": "0x68" })).unwrap(),
            PersonalMessage::Utf8("0x68".into())
        );
        assert_eq!(
            parse(json!({ "raw": "0x68" })).unwrap(),
            PersonalMessage::Bytes(vec![0x68])
        );
        assert!(parse(json!({ "raw": "0x123" }))
            .unwrap_err()
            .to_string()
            .contains("even number"));
        for bad in [
            json!(1),
            json!(null),
            json!({}),
            json!({ "text": "a", "raw": "0x" }),
            json!({ "text": 1 }),
            json!(["0x"]),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        // Serialization is the explicit form and round-trips.
        for m in [
            PersonalMessage::Utf8("0x68".into()),
            PersonalMessage::Bytes(b"hi".to_vec()),
        ] {
            let v = serde_json::to_value(&m).unwrap();
            assert_eq!(parse(v).unwrap(), m);
        }
        assert_eq!(
            serde_json::to_value(PersonalMessage::Bytes(b"hi".to_vec())).unwrap(),
            json!({ "raw": "0x6869" })
        );
    }

    #[test]
    fn message_signature_json_shape() {
        let sig = sign_personal_message(&key(HARDHAT0), b"hello");
        let v = serde_json::to_value(&sig).unwrap();
        assert_eq!(
            v,
            json!({
                "hash": "0x50b2c43fd39106bafbba0da34fc430e1f91e3c96ea2acee2bc34119f92b37750",
                "signature": "0xf16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f94504311c",
                "r": "0xf16ea9a3478698f695fd1401bfe27e9e4a7e8e3da94aa72b021125e31fa899cc",
                "s": "0x573c48ea3fe1d4ab61a9db10c19032026e3ed2dbccba5a178235ac27f9450431",
                "v": "0x1c",
                "y_parity": "0x1",
                "signer": "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
            })
        );
        let back: MessageSignature = serde_json::from_value(v).unwrap();
        assert_eq!(back, sig);
        let mut v = serde_json::to_value(&sig).unwrap();
        v["v"] = json!(28);
        assert_eq!(serde_json::from_value::<MessageSignature>(v).unwrap(), sig);
    }

    mod proptests {
        use super::*;
        use proptest::prelude::*;

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(|n| json!(n)),
                prop_oneof![
                    Just("uint8".to_owned()),
                    Just("Person".to_owned()),
                    Just("Mail".to_owned()),
                    Just("EIP712Domain".to_owned()),
                    Just("0x".to_owned()),
                    Just("-0x80".to_owned()),
                    Just("bytes32[2][]".to_owned()),
                    "[a-zA-Z0-9\\[\\]x-]{0,12}",
                ]
                .prop_map(Value::String),
            ];
            leaf.prop_recursive(5, 64, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    prop::collection::btree_map(
                        prop_oneof![
                            Just("types".to_owned()),
                            Just("primaryType".to_owned()),
                            Just("domain".to_owned()),
                            Just("message".to_owned()),
                            Just("name".to_owned()),
                            Just("type".to_owned()),
                            "[a-zA-Z]{1,6}",
                        ],
                        inner,
                        0..6
                    )
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Random JSON (biased towards typed-data shapes) never panics.
            #[test]
            fn random_json_never_panics(v in json_value()) {
                let _ = typed_data_hash(v.to_string().as_bytes());
            }

            /// Random bytes never panic.
            #[test]
            fn random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..256)) {
                let _ = typed_data_hash(&b);
            }

            /// Mutating one value of the Mail message either fails cleanly or signs
            /// something that recovers to the key.
            #[test]
            fn mutated_mail(path in 0usize..6, v in json_value()) {
                let mut doc = mail();
                let slot = match path {
                    0 => &mut doc["message"]["from"]["name"],
                    1 => &mut doc["message"]["to"]["wallet"],
                    2 => &mut doc["message"]["contents"],
                    3 => &mut doc["domain"]["chainId"],
                    4 => &mut doc["types"]["Person"],
                    _ => &mut doc["message"],
                };
                *slot = v;
                let k = key(COW);
                if let Ok(sig) = sign_typed_data(&k, doc.to_string().as_bytes()) {
                    prop_assert_eq!(sig.recover_signer(), Some(k.address()));
                }
            }

            /// Any message, text or bytes: the signature recovers to the key.
            #[test]
            fn personal_sign_recovers(msg in prop::collection::vec(any::<u8>(), 0..200)) {
                let k = key(HARDHAT0);
                let sig = sign_personal_message(&k, &msg);
                prop_assert_eq!(sig.hash, eip191_hash(&msg));
                prop_assert_eq!(sig.recover_signer(), Some(k.address()));
                let sig2 = Signature::from_raw(&sig.signature).unwrap();
                prop_assert_eq!(sig2.recover_address_from_prehash(&sig.hash).unwrap(), k.address());
            }
        }
    }
}
