//! Signing policies: what a key may sign, decided inside the enclave before every signature.
//!
//! A [`Policy`] is a small JSON document kept with the key's record. Its SHA-256
//! ([`Policy::digest`], over the canonical form [`Policy::canonical_json`]) is part of the key's
//! KMS encryption context, so the host cannot swap a key's policy: a record whose policy was
//! edited no longer decrypts. Changing a policy goes through the enclave, which re-wraps the key.
//!
//! Rules ([`Policy::check`]) are stateless except the rolling window ([`Window`]), whose spending
//! history ([`WindowState`]) the enclave keeps and hands to the host for safe keeping.
//!
//! This crate is pure (no I/O, no clock: callers pass the time), so it is fuzzed and
//! property-tested on its own.

mod window;

pub use window::{WindowState, MAX_WINDOW_ENTRIES};

use alloy_primitives::{Address, U256};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Largest policy document accepted, in bytes.
pub const MAX_POLICY_LEN: usize = 64 * 1024;
/// Most recipients, selectors per recipient, typed-data domains or chain ids in a policy.
pub const MAX_LIST_LEN: usize = 256;

/// A key's signing policy. Every member is optional; an absent member does not restrict.
/// The booleans say which kinds of signature beyond transactions are allowed.
///
/// ```json
/// {
///   "chain_ids": [1, 8453],
///   "recipients": {
///     "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48": {"selectors": ["0xa9059cbb"]},
///     "0x70997970C51812dc3A010C7d01b50e0d17dc79C8": {}
///   },
///   "max_value_wei": "1000000000000000000",
///   "max_fee_per_gas_wei": "200000000000",
///   "window": {"seconds": 86400, "max_value_wei": "5000000000000000000", "max_count": 100},
///   "personal_messages": false,
///   "typed_data_domains": [{"name": "Permit2", "chainId": 1}]
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Chains that transactions, typed-data domains (when they name one) and authorizations may
    /// be for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_ids: Option<BTreeSet<u64>>,
    /// Transaction recipients, each with the function selectors it may be called with (absent:
    /// any call data). A transaction to anyone else is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipients: Option<BTreeMap<Address, RecipientRule>>,
    /// Whether contract-creation transactions (no `to`) are allowed; default: only when
    /// `recipients` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_creation: Option<bool>,
    /// Largest `value` of one transaction, in wei.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "decimal_u256_opt"
    )]
    pub max_value_wei: Option<U256>,
    /// Largest fee per gas (`gasPrice`, or `maxFeePerGas`), in wei.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "decimal_u256_opt"
    )]
    pub max_fee_per_gas_wei: Option<U256>,
    /// Limits on the total value and number of transactions over a rolling window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Whether EIP-191 personal messages may be signed (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub personal_messages: bool,
    /// Whether EIP-712 typed data may be signed (default true).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub typed_data: bool,
    /// When present, typed data is signed only if its domain matches one entry: every member
    /// the entry names must equal the document's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typed_data_domains: Option<Vec<DomainRule>>,
    /// Whether raw 32-byte digests may be signed (default false: a digest can be anything,
    /// a transaction included).
    #[serde(default, skip_serializing_if = "is_false")]
    pub raw_hash: bool,
    /// Whether EIP-7702 authorizations may be signed (default true), and whether for chain id
    /// 0, valid on every chain (default false).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub authorizations: bool,
    /// See `authorizations`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub authorization_any_chain: bool,
}

impl Default for Policy {
    /// What a key without a policy may do: sign anything but raw digests and chain id 0
    /// authorizations.
    fn default() -> Self {
        Self {
            chain_ids: None,
            recipients: None,
            contract_creation: None,
            max_value_wei: None,
            max_fee_per_gas_wei: None,
            window: None,
            personal_messages: true,
            typed_data: true,
            typed_data_domains: None,
            raw_hash: false,
            authorizations: true,
            authorization_any_chain: false,
        }
    }
}

/// Calls a recipient may receive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RecipientRule {
    /// Allowed 4-byte function selectors (`0xa9059cbb`); absent means any call data. With
    /// selectors, a transaction without call data (a plain transfer) is refused unless the list
    /// holds `0x00000000`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selectors: Option<BTreeSet<Selector>>,
}

/// A 4-byte function selector, written `0x` + 8 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Selector(pub [u8; 4]);

/// The plain-transfer pseudo-selector (a transaction without call data).
pub const TRANSFER: Selector = Selector([0; 4]);

impl Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(self.0)))
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let bytes = s
            .strip_prefix("0x")
            .filter(|h| h.len() == 8)
            .and_then(|h| hex::decode(h).ok())
            .ok_or_else(|| serde::de::Error::custom("a selector is 0x followed by 8 hex digits"))?;
        let mut out = [0u8; 4];
        out.copy_from_slice(&bytes);
        Ok(Selector(out))
    }
}

/// A typed-data domain pattern: the members it names must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DomainRule {
    /// `domain.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `domain.version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `domain.chainId`.
    #[serde(default, rename = "chainId", skip_serializing_if = "Option::is_none")]
    pub chain_id: Option<u64>,
    /// `domain.verifyingContract`.
    #[serde(
        default,
        rename = "verifyingContract",
        skip_serializing_if = "Option::is_none"
    )]
    pub verifying_contract: Option<Address>,
}

/// A rolling window: over the last `seconds`, at most `max_value_wei` in total and at most
/// `max_count` transactions (at most [`MAX_WINDOW_ENTRIES`], which is also the implicit count
/// limit).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Length of the window, 1 s to 366 days.
    pub seconds: u64,
    /// Total value over the window, in wei.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "decimal_u256_opt"
    )]
    pub max_value_wei: Option<U256>,
    /// Number of transactions over the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<u64>,
}

/// What is about to be signed, as the policy sees it.
#[derive(Debug, Clone, Copy)]
pub enum Intent<'a> {
    /// A transaction.
    Transaction {
        /// Its chain id.
        chain_id: u64,
        /// Its recipient (`None`: contract creation).
        to: Option<Address>,
        /// Its value, wei.
        value: U256,
        /// Its call data.
        input: &'a [u8],
        /// `gasPrice` or `maxFeePerGas`, wei.
        max_fee_per_gas: u128,
    },
    /// An EIP-191 personal message.
    PersonalMessage,
    /// EIP-712 typed data with this `domain` object.
    TypedData {
        /// The document's `domain`.
        domain: &'a serde_json::Value,
    },
    /// A raw digest.
    RawHash,
    /// An EIP-7702 authorization for this chain id.
    Authorization {
        /// Its chain id (0: every chain).
        chain_id: U256,
    },
}

/// A refusal: the rule that decided, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("denied by policy rule `{rule}`: {reason}")]
pub struct Denied {
    /// The rule's stable name: the policy member that refused (`chain_ids`, `recipients`,
    /// `max_value_wei`, `window.max_count`, …).
    pub rule: &'static str,
    /// What was refused, in words (public data only).
    pub reason: String,
}

fn deny(rule: &'static str, reason: impl Into<String>) -> Denied {
    Denied {
        rule,
        reason: reason.into(),
    }
}

/// Why a policy document is unusable.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// Larger than [`MAX_POLICY_LEN`].
    #[error("the policy is larger than {MAX_POLICY_LEN} bytes")]
    TooLarge,
    /// Not a policy document (serde's message names the member).
    #[error("invalid policy: {0}")]
    Invalid(String),
}

impl Policy {
    /// Parses and checks a policy document.
    ///
    /// # Errors
    /// [`PolicyError`] naming what is wrong: unknown members, malformed values, empty or
    /// oversized lists, a window out of range.
    pub fn from_json(json: &[u8]) -> Result<Policy, PolicyError> {
        if json.len() > MAX_POLICY_LEN {
            return Err(PolicyError::TooLarge);
        }
        // serde would also read a struct from a JSON array: only an object is a policy.
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err(PolicyError::Invalid("a policy is a JSON object".into()));
        }
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        // The same holds for its rules.
        if let Some(rule) = rule_given_as_array(&value) {
            return Err(PolicyError::Invalid(format!(
                "{rule} must be a JSON object"
            )));
        }
        let policy =
            Policy::deserialize(&value).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |m: &str| Err(PolicyError::Invalid(m.to_owned()));
        let too_long = |n: usize| n == 0 || n > MAX_LIST_LEN;
        if self.chain_ids.as_ref().is_some_and(|c| too_long(c.len())) {
            return invalid("chain_ids must list 1 to 256 chain ids");
        }
        if self.chain_ids.as_ref().is_some_and(|c| c.contains(&0)) {
            return invalid("chain_ids cannot hold 0");
        }
        if let Some(recipients) = &self.recipients {
            if recipients.len() > MAX_LIST_LEN {
                return invalid("recipients may list at most 256 addresses");
            }
            for rule in recipients.values() {
                if rule.selectors.as_ref().is_some_and(|s| too_long(s.len())) {
                    return invalid("a recipient's selectors must list 1 to 256 selectors");
                }
            }
        }
        if self
            .typed_data_domains
            .as_ref()
            .is_some_and(|d| too_long(d.len()))
        {
            return invalid("typed_data_domains must list 1 to 256 domains");
        }
        if let Some(w) = &self.window {
            if !(1..=366 * 86_400).contains(&w.seconds) {
                return invalid("window.seconds must be between 1 and 31622400 (366 days)");
            }
            if w.max_value_wei.is_none() && w.max_count.is_none() {
                return invalid("window needs max_value_wei, max_count or both");
            }
            if w.max_count
                .is_some_and(|c| c == 0 || c > MAX_WINDOW_ENTRIES as u64)
            {
                return invalid("window.max_count must be between 1 and 4096");
            }
        }
        Ok(())
    }

    /// The canonical form: members in a fixed order, sets and maps sorted, defaults left out,
    /// addresses in lowercase hex, amounts in decimal. Equal policies have equal canonical forms.
    pub fn canonical_json(&self) -> String {
        // Serialization of these types cannot fail: no maps with non-string keys, no floats.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// SHA-256 of [`Policy::canonical_json`], hex: what the key's encryption context binds.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }

    /// Whether this policy restricts nothing beyond the defaults of a key without a policy.
    pub fn is_default(&self) -> bool {
        *self == Policy::default()
    }

    /// The stateless rules. The rolling window is [`WindowState::check`].
    ///
    /// # Errors
    /// [`Denied`] naming the rule.
    pub fn check(&self, intent: &Intent<'_>) -> Result<(), Denied> {
        match *intent {
            Intent::Transaction {
                chain_id,
                to,
                value,
                input,
                max_fee_per_gas,
            } => {
                self.check_chain(chain_id)?;
                self.check_recipient(to, input)?;
                if let Some(max) = self.max_value_wei {
                    if value > max {
                        return Err(deny(
                            "max_value_wei",
                            format!("value {value} wei is above the limit of {max} wei"),
                        ));
                    }
                }
                if let Some(max) = self.max_fee_per_gas_wei {
                    if U256::from(max_fee_per_gas) > max {
                        return Err(deny(
                            "max_fee_per_gas_wei",
                            format!(
                                "a fee of {max_fee_per_gas} wei per gas is above the limit of \
                                 {max} wei"
                            ),
                        ));
                    }
                }
                Ok(())
            }
            Intent::PersonalMessage => {
                if self.personal_messages {
                    Ok(())
                } else {
                    Err(deny(
                        "personal_messages",
                        "this key does not sign personal messages",
                    ))
                }
            }
            Intent::TypedData { domain } => self.check_typed_data(domain),
            Intent::RawHash => {
                if self.raw_hash {
                    Ok(())
                } else {
                    Err(deny(
                        "raw_hash",
                        "this key does not sign raw digests (a digest can be a transaction)",
                    ))
                }
            }
            Intent::Authorization { chain_id } => {
                if !self.authorizations {
                    return Err(deny(
                        "authorizations",
                        "this key does not sign EIP-7702 authorizations",
                    ));
                }
                if chain_id.is_zero() {
                    return if self.authorization_any_chain {
                        Ok(())
                    } else {
                        Err(deny(
                            "authorization_any_chain",
                            "chain id 0 makes an authorization valid on every chain",
                        ))
                    };
                }
                let chain = u64::try_from(chain_id).map_err(|_| {
                    deny("chain_ids", format!("chain id {chain_id} is not allowed"))
                })?;
                self.check_chain(chain)
            }
        }
    }

    fn check_chain(&self, chain_id: u64) -> Result<(), Denied> {
        match &self.chain_ids {
            Some(allowed) if !allowed.contains(&chain_id) => Err(deny(
                "chain_ids",
                format!("chain id {chain_id} is not allowed"),
            )),
            _ => Ok(()),
        }
    }

    fn check_recipient(&self, to: Option<Address>, input: &[u8]) -> Result<(), Denied> {
        let Some(to) = to else {
            let allowed = self.contract_creation.unwrap_or(self.recipients.is_none());
            return if allowed {
                Ok(())
            } else {
                Err(deny(
                    "contract_creation",
                    "contract creation is not allowed",
                ))
            };
        };
        let Some(recipients) = &self.recipients else {
            return Ok(());
        };
        let rule = recipients
            .get(&to)
            .ok_or_else(|| deny("recipients", format!("recipient {to} is not allowed")))?;
        let Some(selectors) = &rule.selectors else {
            return Ok(());
        };
        let selector = match input {
            [] => TRANSFER,
            [a, b, c, d, ..] => Selector([*a, *b, *c, *d]),
            _ => {
                return Err(deny(
                    "recipients.selectors",
                    format!("call data to {to} is shorter than a selector"),
                ))
            }
        };
        if selectors.contains(&selector) {
            Ok(())
        } else if selector == TRANSFER {
            Err(deny(
                "recipients.selectors",
                format!("plain transfers to {to} are not allowed, only calls"),
            ))
        } else {
            Err(deny(
                "recipients.selectors",
                format!(
                    "function 0x{} of {to} is not allowed",
                    hex::encode(selector.0)
                ),
            ))
        }
    }

    fn check_typed_data(&self, domain: &serde_json::Value) -> Result<(), Denied> {
        if !self.typed_data {
            return Err(deny("typed_data", "this key does not sign typed data"));
        }
        let chain = domain.get("chainId").map(domain_chain_id);
        if let (Some(allowed), Some(chain)) = (&self.chain_ids, &chain) {
            match chain {
                Some(c) if allowed.contains(c) => {}
                _ => {
                    return Err(deny(
                        "chain_ids",
                        "the typed-data domain's chainId is not allowed",
                    ))
                }
            }
        }
        let Some(rules) = &self.typed_data_domains else {
            return Ok(());
        };
        let text = |k: &str| domain.get(k).and_then(serde_json::Value::as_str);
        let contract = domain
            .get("verifyingContract")
            .and_then(serde_json::Value::as_str)
            .and_then(|s| s.parse::<Address>().ok());
        let matches = |r: &DomainRule| {
            r.name.as_deref().is_none_or(|n| text("name") == Some(n))
                && r.version
                    .as_deref()
                    .is_none_or(|v| text("version") == Some(v))
                && r.chain_id.is_none_or(|c| chain.flatten() == Some(c))
                && r.verifying_contract.is_none_or(|a| contract == Some(a))
        };
        if rules.iter().any(matches) {
            Ok(())
        } else {
            Err(deny(
                "typed_data_domains",
                "the typed-data domain matches no allowed domain",
            ))
        }
    }
}

/// A domain's `chainId` as EIP-712 documents write it: a JSON integer, or a decimal or
/// `0x`-hex string. `None` when it is none of these or does not fit in u64.
fn domain_chain_id(v: &serde_json::Value) -> Option<u64> {
    match v {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

fn yes() -> bool {
    true
}
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(b: &bool) -> bool {
    *b
}
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_false(b: &bool) -> bool {
    !*b
}

/// The first rule of a policy document given as a JSON array (which serde would read as the
/// rule's members in order), if any.
fn rule_given_as_array(policy: &serde_json::Value) -> Option<&'static str> {
    use serde_json::Value;
    if policy.get("window").is_some_and(Value::is_array) {
        return Some("window");
    }
    let recipients = policy.get("recipients").and_then(Value::as_object);
    if recipients.is_some_and(|r| r.values().any(Value::is_array)) {
        return Some("a recipient's rule");
    }
    let domains = policy.get("typed_data_domains").and_then(Value::as_array);
    if domains.is_some_and(|d| d.iter().any(Value::is_array)) {
        return Some("a typed_data_domains entry");
    }
    None
}

/// Serde for an optional U256 written as a decimal string (also read from a JSON integer).
mod decimal_u256_opt {
    use alloy_primitives::U256;
    use serde::{Deserialize, Deserializer, Serializer};

    #[allow(clippy::ref_option)]
    pub(super) fn serialize<S: Serializer>(v: &Option<U256>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    const EXPECTED: &str = "an amount is a decimal string of wei, such as \"1000000000000000000\"";

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<U256>, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Number(n) => n
                .as_u64()
                .map(|n| Some(U256::from(n)))
                .ok_or_else(|| serde::de::Error::custom(EXPECTED)),
            serde_json::Value::String(s)
                if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) =>
            {
                U256::from_str_radix(&s, 10)
                    .map(Some)
                    .map_err(|_| serde::de::Error::custom("amount above 2^256 - 1"))
            }
            _ => Err(serde::de::Error::custom(EXPECTED)),
        }
    }
}

#[cfg(test)]
mod tests;
