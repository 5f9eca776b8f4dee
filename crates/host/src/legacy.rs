//! Compatibility with the reference sample (`aws-samples/aws-nitro-enclave-blockchain-wallet`).
//!
//! The sample's clients POST `{"transaction_payload": {…}, "secret_id": "…"}` to `/` with
//! `value` in ether, and its `set_key` stores a key in a Secrets Manager secret as the base64
//! KMS ciphertext of the key's hex digits, without encryption context. This module reads such
//! secrets ([`LegacySecrets`]), converts ether amounts exactly ([`ether_to_wei`]), turns a
//! sample payload into our transaction request ([`payload_to_request`]), and remembers which
//! migrated key a sample secret names ([`SecretIndex`]). The API routes are in
//! [`crate::api::compat`].

use crate::keystore::{secrets_manager, KeyRecord, KeyStore, MigratedFrom, StoreError};
use alloy_primitives::{Address, U256};
use base64::Engine as _;
use serde_json::value::RawValue;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

/// Wei per ether, as a power of ten.
const ETHER_DECIMALS: i64 = 18;
/// Most significant digits accepted in an ether amount (U256 has 78).
const MAX_DIGITS: usize = 100;
/// Largest exponent magnitude accepted in an ether amount.
const MAX_EXPONENT: i64 = 100;
/// Least time between two rebuilds of the [`SecretIndex`] from the key store.
const INDEX_REFRESH: Duration = Duration::from_secs(2);

/// Converts an amount in ether, written as a decimal number (`1`, `0.01`, `1.5e-3`), to wei,
/// exactly: no floating point, and an amount that is not a whole number of wei is refused
/// rather than rounded. This is what the sample does with `Web3.toWei(value, "ether")`, minus
/// its silent truncation of sub-wei digits.
///
/// # Errors
/// A message (which does not quote the input) when the text is not a non-negative decimal
/// number, has more than 18 decimal places of ether, or exceeds 2^256 - 1 wei.
pub fn ether_to_wei(text: &str) -> Result<U256, String> {
    let syntax = || "must be a non-negative decimal number of ether, such as 0.01".to_owned();
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    };
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(syntax());
            }
            e.parse().map_err(|_| syntax())?
        }
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err(syntax());
    }
    if !(-MAX_EXPONENT..=MAX_EXPONENT).contains(&exponent) {
        return Err("the exponent is out of range".to_owned());
    }
    let digits = format!("{int_part}{frac_part}");
    let digits = digits.trim_start_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    if digits.len() > MAX_DIGITS {
        return Err(format!("has more than {MAX_DIGITS} significant digits"));
    }
    // value = digits * 10^(exponent - len(frac)) ether = digits * 10^scale wei.
    let scale = ETHER_DECIMALS + exponent - i64::try_from(frac_part.len()).map_err(|_| syntax())?;
    let too_large = || "exceeds 2^256 - 1 wei".to_owned();
    let (kept, shift) = if scale >= 0 {
        (digits, scale)
    } else {
        let cut = usize::try_from(-scale).map_err(|_| syntax())?;
        let keep = digits.len().saturating_sub(cut);
        if !digits[keep..].bytes().all(|b| b == b'0') {
            return Err(
                "has more than 18 decimal places of ether: not a whole number of wei".to_owned(),
            );
        }
        (if keep == 0 { "0" } else { &digits[..keep] }, 0)
    };
    let base = U256::from_str_radix(kept, 10).map_err(|_| too_large())?;
    let power = U256::from(10u8)
        .checked_pow(U256::from(shift))
        .ok_or_else(too_large)?;
    base.checked_mul(power).ok_or_else(too_large)
}

/// Why a sample payload cannot be turned into a transaction request.
#[derive(Debug, PartialEq, Eq)]
pub struct PayloadError {
    /// The offending field, with the `transaction_payload.` path.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Turns the sample's `transaction_payload` into our transaction request JSON: the same
/// camelCase fields (which the enclave parses and validates), with `value` converted from ether
/// (JSON number or string, exactly, see [`ether_to_wei`]) to a decimal string of wei.
///
/// # Errors
/// When the payload is not a JSON object or `value` is not an ether amount.
pub fn payload_to_request(payload: &RawValue) -> Result<Box<RawValue>, PayloadError> {
    let mut fields: BTreeMap<String, Box<RawValue>> =
        serde_json::from_str(payload.get()).map_err(|_| PayloadError {
            field: "transaction_payload".into(),
            message: "transaction_payload must be a JSON object".into(),
        })?;
    if let Some(value) = fields.remove("value") {
        let invalid = |message: String| PayloadError {
            field: "transaction_payload.value".into(),
            message: format!("value (in ether) {message}"),
        };
        let raw = value.get();
        let text = if raw.starts_with('"') {
            Some(serde_json::from_str::<String>(raw).map_err(|_| invalid("is unreadable".into()))?)
        } else if raw == "null" {
            None
        } else if raw.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
            // A JSON number, read from its literal text: no f64 on the way.
            Some(raw.to_owned())
        } else {
            return Err(invalid("must be a number or a string".into()));
        };
        if let Some(text) = text {
            let wei = ether_to_wei(&text).map_err(invalid)?;
            let wei = RawValue::from_string(format!("\"{wei}\"")).map_err(|_| {
                invalid("cannot be converted".into()) // unreachable: digits in quotes
            })?;
            fields.insert("value".to_owned(), wei);
        }
    }
    let json = serde_json::to_string(&fields).map_err(|_| PayloadError {
        field: "transaction_payload".into(),
        message: "transaction_payload cannot be re-encoded".into(),
    })?;
    RawValue::from_string(json).map_err(|_| PayloadError {
        field: "transaction_payload".into(),
        message: "transaction_payload cannot be re-encoded".into(),
    })
}

/// A secret written by the sample's `set_key`.
#[derive(Debug)]
pub struct LegacySecret {
    /// Its ARN and name.
    pub source: MigratedFrom,
    /// The KMS ciphertext blob (of the key's hex digits).
    pub ciphertext: Vec<u8>,
}

/// Why a legacy secret cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LegacyError {
    /// No such secret.
    #[error("no secret `{0}` in Secrets Manager")]
    NotFound(String),
    /// The secret is not in the sample's format.
    #[error("secret `{0}` does not hold a base64 KMS ciphertext as the reference sample's set_key writes it")]
    NotLegacy(String),
    /// Secrets Manager refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads the sample's secrets from Secrets Manager with the host's own credentials.
#[derive(Debug, Clone)]
pub struct LegacySecrets {
    client: aws_sdk_secretsmanager::Client,
}

impl LegacySecrets {
    /// Reads through `client`.
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }

    /// The secret named by `secret_id` (name or ARN).
    ///
    /// # Errors
    /// [`LegacyError::NotFound`], [`LegacyError::NotLegacy`] (a binary secret, or a string
    /// that is not base64), or the store's error (denied, throttled, unreachable).
    pub async fn read(&self, secret_id: &str) -> Result<LegacySecret, LegacyError> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(secret_id)
            .send()
            .await
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception())
                {
                    LegacyError::NotFound(secret_id.to_owned())
                } else {
                    LegacyError::Store(secrets_manager::failure("GetSecretValue", secret_id, &e))
                }
            })?;
        let not_legacy = || LegacyError::NotLegacy(secret_id.to_owned());
        let text = output.secret_string().ok_or_else(not_legacy)?;
        let ciphertext = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| not_legacy())?;
        if ciphertext.is_empty() {
            return Err(not_legacy());
        }
        Ok(LegacySecret {
            source: MigratedFrom {
                secret_arn: output.arn().unwrap_or_default().to_owned(),
                secret_name: output.name().unwrap_or(secret_id).to_owned(),
            },
            ciphertext,
        })
    }
}

/// Which key each migrated sample secret (by name and by ARN) now is.
///
/// Built from the key store's records on the first miss, and rebuilt on later misses at most
/// every two seconds, so a key migrated by another host instance is found without a restart
/// while unknown ids cannot make every request list the store.
#[derive(Debug, Default)]
pub struct SecretIndex {
    map: RwLock<HashMap<String, Address>>,
    refreshed: tokio::sync::Mutex<Option<Instant>>,
}

impl SecretIndex {
    /// The key that `secret_id` names: an address names itself; otherwise the key migrated
    /// from the secret with that name or ARN, if any.
    ///
    /// # Errors
    /// When the key store cannot be listed.
    pub async fn resolve(
        &self,
        store: &dyn KeyStore,
        secret_id: &str,
    ) -> Result<Option<Address>, StoreError> {
        if let Ok(address) = secret_id.parse::<Address>() {
            return Ok(Some(address));
        }
        if let Some(address) = self.lookup(secret_id) {
            return Ok(Some(address));
        }
        let mut refreshed = self.refreshed.lock().await;
        // Another request may have rebuilt the index while this one waited.
        if let Some(address) = self.lookup(secret_id) {
            return Ok(Some(address));
        }
        if refreshed.is_some_and(|t| t.elapsed() < INDEX_REFRESH) {
            return Ok(None);
        }
        let records = store.list().await?;
        let mut map = HashMap::new();
        for record in &records {
            insert(&mut map, record);
        }
        *self.map.write().unwrap_or_else(|p| p.into_inner()) = map;
        *refreshed = Some(Instant::now());
        Ok(self.lookup(secret_id))
    }

    /// Adds a record just migrated.
    pub fn remember(&self, record: &Arc<KeyRecord>) {
        insert(
            &mut self.map.write().unwrap_or_else(|p| p.into_inner()),
            record,
        );
    }

    fn lookup(&self, secret_id: &str) -> Option<Address> {
        self.map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(secret_id)
            .copied()
    }
}

fn insert(map: &mut HashMap<String, Address>, record: &KeyRecord) {
    if let Some(from) = &record.migrated_from {
        for id in [&from.secret_arn, &from.secret_name] {
            if !id.is_empty() {
                map.insert(id.clone(), record.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn wei(s: &str) -> Result<U256, String> {
        ether_to_wei(s)
    }

    #[test]
    fn ether_amounts_convert_exactly() {
        let e18 = U256::from(10u64).pow(U256::from(18));
        for (text, expected) in [
            ("0", U256::ZERO),
            ("0.0", U256::ZERO),
            ("1", e18),
            ("1.", e18),
            ("01", e18),
            ("0.01", U256::from(10_000_000_000_000_000u64)),
            (".5", U256::from(500_000_000_000_000_000u64)),
            ("0.000000000000000001", U256::from(1u8)),
            ("1e-18", U256::from(1u8)),
            ("1E-18", U256::from(1u8)),
            ("1.5e3", U256::from(1500u64) * e18),
            ("2.50e+1", U256::from(25u64) * e18),
            (
                "0.1000000000000000000000",
                U256::from(100_000_000_000_000_000u64),
            ),
            (
                "123456789.123456789123456789",
                U256::from(123_456_789_123_456_789_123_456_789u128),
            ),
            // Beyond f64's 53 bits: exact.
            (
                "9007199254740993",
                U256::from(9_007_199_254_740_993u64) * e18,
            ),
        ] {
            assert_eq!(wei(text), Ok(expected), "{text}");
        }
        let max = U256::MAX.to_string();
        assert_eq!(wei(&format!("{max}e-18")), Ok(U256::MAX));
    }

    #[test]
    fn inexact_malformed_and_huge_amounts_are_refused() {
        for text in ["0.0000000000000000001", "1e-19", "1.0000000000000000001"] {
            assert!(
                wei(text).unwrap_err().contains("whole number of wei"),
                "{text}"
            );
        }
        for text in [
            "", ".", "-1", "+1", " 1", "1 ", "0x10", "1,5", "1e", "1e+", "e5", "1.2.3", "NaN",
            "inf", "1e99999", "1_000",
        ] {
            assert!(wei(text).is_err(), "{text:?}");
        }
        let max = U256::MAX.to_string();
        assert!(wei(&format!("{max}e-17")).unwrap_err().contains("2^256"));
        assert!(wei("1e100").unwrap_err().contains("2^256"));
        assert!(wei("1e101").unwrap_err().contains("exponent"));
        assert!(wei(&"9".repeat(101)).unwrap_err().contains("digits"));
    }

    fn convert(json: &str) -> Result<serde_json::Value, PayloadError> {
        let raw: Box<RawValue> = serde_json::from_str(json).unwrap();
        payload_to_request(&raw).map(|r| serde_json::from_str(r.get()).unwrap())
    }

    #[test]
    fn payload_value_is_converted_from_the_literal_text_and_the_rest_kept() {
        let out = convert(
            r#"{"value": 0.01, "to": "0xa5D3241A1591061F2a4bB69CA0215F66520E67cf", "nonce": 0,
                "type": 2, "chainId": 4, "gas": 100000, "maxFeePerGas": 100000000000,
                "maxPriorityFeePerGas": 3000000000}"#,
        )
        .unwrap();
        assert_eq!(out["value"], "10000000000000000");
        assert_eq!(out["to"], "0xa5D3241A1591061F2a4bB69CA0215F66520E67cf");
        assert_eq!(out["maxFeePerGas"], 100_000_000_000u64);
        assert_eq!(out["type"], 2);

        // 0.1 + 0.2 style literals that f64 cannot hold stay exact.
        let out = convert(r#"{"value": 0.30000000000000001}"#).unwrap();
        assert_eq!(out["value"], "300000000000000010");
        let out = convert(r#"{"value": "1.5"}"#).unwrap();
        assert_eq!(out["value"], "1500000000000000000");
        let out = convert(r#"{"value": null, "nonce": 1}"#).unwrap();
        assert!(out.get("value").is_none());
        assert!(convert(r#"{"nonce": 1}"#).unwrap().get("value").is_none());
    }

    #[test]
    fn bad_payloads_name_the_field() {
        for (json, field) in [
            (r#"[1, 2]"#, "transaction_payload"),
            (r#""x""#, "transaction_payload"),
            (r#"{"value": true}"#, "transaction_payload.value"),
            (r#"{"value": {"ether": 1}}"#, "transaction_payload.value"),
            (r#"{"value": -1}"#, "transaction_payload.value"),
            (r#"{"value": "0x1"}"#, "transaction_payload.value"),
            (r#"{"value": 1e-19}"#, "transaction_payload.value"),
        ] {
            assert_eq!(convert(json).unwrap_err().field, field, "{json}");
        }
    }
}
