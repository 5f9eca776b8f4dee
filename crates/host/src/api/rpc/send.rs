//! `eth_sendTransaction`: complete the transaction from the upstream node, sign it in the
//! enclave, send it.
//!
//! What the caller gave is kept; what is missing is filled:
//!
//! * `chainId`: the node's `eth_chainId` (a given one must equal it);
//! * fees: legacy `gasPrice` from `eth_gasPrice` when the caller gave `gasPrice` or asked
//!   for type 0 or 1; otherwise EIP-1559: `maxPriorityFeePerGas` from
//!   `eth_maxPriorityFeePerGas` (falling back to the median reward of `eth_feeHistory` when
//!   the node lacks that method; never above a given `maxFeePerGas`), and `maxFeePerGas` =
//!   2 × the next block's base fee (`eth_feeHistory`) + the priority fee, the usual headroom
//!   for six full blocks of base-fee rises;
//! * `gas`: `eth_estimateGas` on the transaction so far (without the nonce);
//! * `nonce`: `eth_getTransactionCount(from, "pending")`, serialized per address with a local
//!   floor ([`super::nonce`]); when the node answers "nonce too low" to a nonce filled here,
//!   the nonce is read again and the send retried once.
//!
//! Errors of the node (an estimate that reverts, insufficient funds, …) are passed on as the
//! node gave them.

use super::{
    account,
    nonce::Slot,
    parse_address, positional,
    wire::{code, RpcError},
    AppState,
};
use crate::{
    api::{auth::Caller, keys},
    keystore::KeyRecord,
    tokens::Operation,
    upstream::{Upstream, UpstreamError},
};
use serde_json::{json, value::RawValue, Value};
use std::{collections::BTreeMap, time::Instant};

/// A transaction object, member values as sent.
type TxObject = BTreeMap<String, Box<RawValue>>;

/// `eth_sendTransaction [transaction]` → the transaction hash.
pub(super) async fn send_transaction(
    state: &AppState,
    caller: &Caller,
    params: Option<&RawValue>,
) -> Result<Value, RpcError> {
    let upstream = state.rpc.upstream("eth_sendTransaction")?;
    let [tx] = positional::<1>(params, "eth_sendTransaction takes [transaction]")?;
    let mut tx: TxObject = serde_json::from_str(tx.get())
        .map_err(|_| RpcError::invalid_params("the transaction must be a JSON object"))?;
    let from = match tx.get("from").filter(|v| v.get() != "null") {
        Some(v) => parse_address(v, "from")?,
        None => {
            return Err(RpcError::invalid_params(
                "the transaction needs `from`: the address of the key that sends it",
            ))
        }
    };
    let record = account(state, caller, Operation::SignTransaction, from).await?;

    let chain_id = state.rpc.chain_id().await?;
    match quantity(&tx, "chainId")? {
        Some(given) if given != u128::from(chain_id) => {
            return Err(RpcError::invalid_params(format!(
                "chainId {given} is not the upstream node's chain ({chain_id})"
            )))
        }
        Some(_) => {}
        None => set(&mut tx, "chainId", chain_id.into()),
    }
    fill_fees(upstream, &mut tx).await?;
    if !present(&tx, "gas") && !present(&tx, "gasLimit") {
        let mut estimate = tx.clone();
        estimate.remove("nonce");
        let gas = upstream
            .call("eth_estimateGas", json!([estimate]))
            .await
            .map_err(RpcError::from)?;
        set(&mut tx, "gas", result_quantity(&gas, "eth_estimateGas")?);
    }

    if let Some(nonce) = quantity(&tx, "nonce")? {
        // The caller chose the nonce: no retry, but later filled nonces start above it.
        let nonce = u64::try_from(nonce)
            .map_err(|_| RpcError::invalid_params("invalid field `nonce`: over 2^64 - 1"))?;
        let result = sign_and_send(state, upstream, &record, &tx).await;
        let mut slot = state.rpc.nonces.lock(from).await;
        match &result {
            Ok(_) => slot.sent(nonce, Instant::now()),
            Err(Failure::Refused(_)) => slot.forget(),
            Err(Failure::Other(_)) => {}
        }
        return result.map_err(Failure::into_rpc);
    }

    let mut slot = state.rpc.nonces.lock(from).await;
    let nonce = next_nonce(upstream, &slot, &record).await?;
    set(&mut tx, "nonce", nonce.into());
    match sign_and_send(state, upstream, &record, &tx).await {
        Ok(hash) => {
            slot.sent(nonce, Instant::now());
            Ok(hash)
        }
        Err(Failure::Refused(error)) if nonce_too_low(&error) => {
            slot.forget();
            let retry = next_nonce(upstream, &slot, &record)
                .await?
                .max(nonce.saturating_add(1));
            tracing::info!(from = %from, nonce, retry, "nonce too low; retrying once");
            set(&mut tx, "nonce", retry.into());
            let result = sign_and_send(state, upstream, &record, &tx).await;
            if result.is_ok() {
                slot.sent(retry, Instant::now());
            }
            result.map_err(Failure::into_rpc)
        }
        Err(failure) => {
            if matches!(failure, Failure::Refused(_)) {
                slot.forget();
            }
            Err(failure.into_rpc())
        }
    }
}

/// Why a send failed: the node refused the transaction, or something before that.
enum Failure {
    Refused(Value),
    Other(RpcError),
}

impl Failure {
    fn into_rpc(self) -> RpcError {
        match self {
            Failure::Refused(error) => RpcError::from_upstream(error),
            Failure::Other(e) => e,
        }
    }
}

async fn sign_and_send(
    state: &AppState,
    upstream: &Upstream,
    record: &KeyRecord,
    tx: &TxObject,
) -> Result<Value, Failure> {
    let raw = serde_json::value::to_raw_value(tx)
        .map_err(|_| Failure::Other(RpcError::new(code::INTERNAL_ERROR, "internal error")))?;
    let signed = keys::sign_with(state, record, raw)
        .await
        .map_err(|e| Failure::Other(e.into()))?;
    match upstream
        .call("eth_sendRawTransaction", json!([signed.raw_transaction]))
        .await
    {
        Ok(hash) => {
            tracing::info!(
                from = %signed.from,
                hash = %signed.transaction_hash,
                "transaction sent upstream"
            );
            Ok(hash)
        }
        Err(UpstreamError::Rpc(error)) => Err(Failure::Refused(error)),
        Err(other) => Err(Failure::Other(other.into())),
    }
}

/// The pending nonce of the key, floored by the local hint.
async fn next_nonce(upstream: &Upstream, slot: &Slot, record: &KeyRecord) -> Result<u64, RpcError> {
    let count = upstream
        .call(
            "eth_getTransactionCount",
            json!([record.address.to_checksum(None), "pending"]),
        )
        .await?;
    let pending = u64::try_from(result_quantity(&count, "eth_getTransactionCount")?)
        .map_err(|_| bad_answer("eth_getTransactionCount"))?;
    Ok(slot.choose(pending, Instant::now()))
}

/// Whether a node's refusal means the nonce was already used (geth, reth, anvil, Erigon:
/// "nonce too low"; Nethermind: "OldNonce"; Besu: "NONCE_TOO_LOW").
fn nonce_too_low(error: &Value) -> bool {
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_ascii_lowercase();
    message.contains("nonce too low")
        || message.contains("nonce_too_low")
        || message.contains("oldnonce")
}

async fn fill_fees(upstream: &Upstream, tx: &mut TxObject) -> Result<(), RpcError> {
    let legacy = present(tx, "gasPrice") || matches!(quantity(tx, "type")?, Some(0 | 1));
    if legacy {
        if !present(tx, "gasPrice") {
            let price = upstream.call("eth_gasPrice", json!([])).await?;
            set(tx, "gasPrice", result_quantity(&price, "eth_gasPrice")?);
        }
        return Ok(());
    }
    let given_max = quantity(tx, "maxFeePerGas")?;
    let given_priority = quantity(tx, "maxPriorityFeePerGas")?;
    if given_max.is_some() && given_priority.is_some() {
        return Ok(());
    }
    let priority = match given_priority {
        Some(p) => p,
        None => priority_fee(upstream).await?,
    };
    let max = match given_max {
        Some(m) => m,
        None => max_fee(next_base_fee(upstream).await?, priority),
    };
    if given_priority.is_none() {
        set(tx, "maxPriorityFeePerGas", priority.min(max));
    }
    if given_max.is_none() {
        set(tx, "maxFeePerGas", max);
    }
    Ok(())
}

/// 2 × base fee + priority fee, saturating.
fn max_fee(base_fee: u128, priority: u128) -> u128 {
    base_fee.saturating_mul(2).saturating_add(priority)
}

async fn priority_fee(upstream: &Upstream) -> Result<u128, RpcError> {
    match upstream.call("eth_maxPriorityFeePerGas", json!([])).await {
        Ok(v) => result_quantity(&v, "eth_maxPriorityFeePerGas"),
        // A node without the method: the median reward of the last blocks.
        Err(UpstreamError::Rpc(_)) => {
            let history = upstream
                .call("eth_feeHistory", json!(["0x5", "latest", [50]]))
                .await?;
            median_reward(&history).ok_or_else(|| bad_answer("eth_feeHistory"))
        }
        Err(e) => Err(e.into()),
    }
}

fn median_reward(history: &Value) -> Option<u128> {
    let mut rewards: Vec<u128> = history
        .get("reward")?
        .as_array()?
        .iter()
        .filter_map(|block| block.get(0).and_then(value_quantity))
        .collect();
    rewards.sort_unstable();
    rewards.get(rewards.len() / 2).copied()
}

/// The base fee of the next block: the last entry of `eth_feeHistory`'s `baseFeePerGas`.
async fn next_base_fee(upstream: &Upstream) -> Result<u128, RpcError> {
    let history = upstream
        .call("eth_feeHistory", json!(["0x1", "latest", []]))
        .await?;
    history
        .get("baseFeePerGas")
        .and_then(Value::as_array)
        .and_then(|fees| fees.last())
        .and_then(value_quantity)
        .ok_or_else(|| {
            RpcError::new(
                code::INTERNAL_ERROR,
                "the upstream node reports no base fee: give `gasPrice` for a legacy transaction",
            )
        })
}

fn present(tx: &TxObject, name: &str) -> bool {
    tx.get(name).is_some_and(|v| v.get() != "null")
}

/// A quantity member (hex string, decimal string or JSON integer), `None` when absent or
/// `null`.
fn quantity(tx: &TxObject, name: &str) -> Result<Option<u128>, RpcError> {
    let Some(raw) = tx.get(name).filter(|v| v.get() != "null") else {
        return Ok(None);
    };
    serde_json::from_str::<Value>(raw.get())
        .ok()
        .as_ref()
        .and_then(value_quantity)
        .or_else(|| serde_json::from_str::<u128>(raw.get()).ok())
        .map(Some)
        .ok_or_else(|| {
            RpcError::invalid_params(format!(
                "invalid field `{name}`: expected a quantity (0x hex, decimal string or integer)"
            ))
        })
}

fn value_quantity(v: &Value) -> Option<u128> {
    match v {
        Value::String(s) => match s.strip_prefix("0x") {
            Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                u128::from_str_radix(h, 16).ok()
            }
            Some(_) => None,
            None if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s.parse().ok(),
            None => None,
        },
        Value::Number(n) => n.as_u64().map(u128::from),
        _ => None,
    }
}

fn result_quantity(v: &Value, method: &str) -> Result<u128, RpcError> {
    value_quantity(v).ok_or_else(|| bad_answer(method))
}

fn bad_answer(method: &str) -> RpcError {
    RpcError::new(
        code::INTERNAL_ERROR,
        format!("the upstream node's answer to {method} is not usable"),
    )
    .with_code("upstream_bad_answer")
}

fn set(tx: &mut TxObject, name: &str, value: u128) {
    if let Ok(raw) = RawValue::from_string(format!("\"{value:#x}\"")) {
        tx.insert(name.to_owned(), raw);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn obj(json: &str) -> TxObject {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn quantities_in_every_accepted_form() {
        let tx = obj(
            r#"{"a":"0x1f","b":"31","c":31,"d":null,"e":"0x","f":"-1","g":1.5,"h":"0xzz",
                "i":340282366920938463463374607431768211455}"#,
        );
        assert_eq!(quantity(&tx, "a").unwrap(), Some(31));
        assert_eq!(quantity(&tx, "b").unwrap(), Some(31));
        assert_eq!(quantity(&tx, "c").unwrap(), Some(31));
        assert_eq!(quantity(&tx, "d").unwrap(), None);
        assert_eq!(quantity(&tx, "absent").unwrap(), None);
        assert_eq!(quantity(&tx, "i").unwrap(), Some(u128::MAX));
        for bad in ["e", "f", "g", "h"] {
            let e = quantity(&tx, bad).unwrap_err();
            assert_eq!(e.code, code::INVALID_PARAMS);
            assert!(e.message.contains(bad));
        }
        let mut tx = tx;
        set(&mut tx, "a", 255);
        assert_eq!(tx["a"].get(), "\"0xff\"");
        assert!(!present(&tx, "d") && present(&tx, "a"));
    }

    #[test]
    fn fee_rules() {
        assert_eq!(max_fee(7, 1), 15);
        assert_eq!(max_fee(u128::MAX, 1), u128::MAX);
        let history = json!({"reward": [["0x3"], ["0x1"], ["0x2"], []], "baseFeePerGas": []});
        assert_eq!(median_reward(&history), Some(2));
        assert_eq!(median_reward(&json!({})), None);
    }

    #[test]
    fn nonce_too_low_in_the_words_of_several_nodes() {
        for m in [
            "nonce too low",
            "nonce too low: next nonce 5, tx nonce 3",
            "Nonce too low",
            "NONCE_TOO_LOW",
            "OldNonce, Current nonce: 5, nonce of rejected tx: 3",
        ] {
            assert!(nonce_too_low(&json!({"code": -32000, "message": m})), "{m}");
        }
        assert!(!nonce_too_low(
            &json!({"code": -32000, "message": "insufficient funds"})
        ));
        assert!(!nonce_too_low(&json!("nonce too low")));
    }
}
