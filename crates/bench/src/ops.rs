//! The operations a run mixes, what each sends, and the same work done in-process.
//!
//! Every request signs something different (the nonce or message carries the request's
//! sequence number), so no layer can answer from a cache.

use std::{fmt, str::FromStr};

/// One kind of signing request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// An EIP-1559 (type 2) transaction.
    Eip1559,
    /// A legacy (type 0) transaction with EIP-155 replay protection.
    Legacy,
    /// An EIP-191 personal message.
    Message,
    /// EIP-712 typed data.
    TypedData,
}

impl Op {
    /// All operations, in the order reports list them.
    pub const ALL: [Op; 4] = [Op::Eip1559, Op::Legacy, Op::Message, Op::TypedData];

    /// The name used in `--mix` and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Op::Eip1559 => "eip1559",
            Op::Legacy => "legacy",
            Op::Message => "message",
            Op::TypedData => "typed-data",
        }
    }

    /// Whether the operation signs a transaction (and so answers with a raw transaction).
    pub fn is_transaction(self) -> bool {
        matches!(self, Op::Eip1559 | Op::Legacy)
    }

    /// The JSON document the operation signs, for request number `seq`: a transaction object
    /// (with `from` when given), a message string or a typed-data document.
    pub fn payload(self, seq: u64, from: Option<&str>) -> serde_json::Value {
        let mut v = match self {
            Op::Eip1559 => serde_json::json!({
                "chainId": "0x7a69", "nonce": format!("{seq:#x}"), "gas": "0x5208",
                "maxFeePerGas": "0x77359400", "maxPriorityFeePerGas": "0x3b9aca00",
                "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "value": "0x1",
            }),
            Op::Legacy => serde_json::json!({
                "chainId": "0x7a69", "nonce": format!("{seq:#x}"), "gas": "0x5208",
                "gasPrice": "0x77359400",
                "to": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "value": "0x1",
            }),
            Op::Message => return serde_json::Value::String(format!("nitro-wallet bench {seq}")),
            Op::TypedData => typed_data(seq),
        };
        if let (Some(from), Some(obj)) = (from, v.as_object_mut()) {
            obj.insert("from".into(), from.into());
        }
        v
    }
}

/// The EIP-712 "Ether Mail" example, its contents numbered.
fn typed_data(seq: u64) -> serde_json::Value {
    serde_json::json!({
        "types": {
            "EIP712Domain": [
                { "name": "name", "type": "string" },
                { "name": "version", "type": "string" },
                { "name": "chainId", "type": "uint256" },
                { "name": "verifyingContract", "type": "address" }
            ],
            "Person": [
                { "name": "name", "type": "string" },
                { "name": "wallet", "type": "address" }
            ],
            "Mail": [
                { "name": "from", "type": "Person" },
                { "name": "to", "type": "Person" },
                { "name": "contents", "type": "string" }
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail", "version": "1", "chainId": 31337,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": { "name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826" },
            "to": { "name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB" },
            "contents": format!("Hello, Bob! #{seq}")
        }
    })
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Op::ALL
            .into_iter()
            .find(|op| op.name() == s)
            .ok_or_else(|| {
                format!("unknown operation `{s}`: expected eip1559, legacy, message or typed-data")
            })
    }
}

/// Weighted operations, e.g. `eip1559=70,legacy=10,message=10,typed-data=10`. Requests take
/// operations in a fixed interleaved order (a smooth weighted round robin), so that any
/// stretch of a run has the mix's proportions and runs are repeatable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix {
    /// One period of the schedule: `sum(weights)` entries.
    cycle: Vec<Op>,
    weights: Vec<(Op, u32)>,
}

impl Mix {
    /// The operation of request number `seq`.
    pub fn op(&self, seq: u64) -> Op {
        // The cycle is never empty (parsing refuses a zero total).
        let len = self.cycle.len() as u64;
        self.cycle[usize::try_from(seq % len).unwrap_or(0)]
    }

    /// The operations and their weights, as given.
    pub fn weights(&self) -> &[(Op, u32)] {
        &self.weights
    }

    fn new(weights: Vec<(Op, u32)>) -> Result<Mix, String> {
        let total: u32 = weights.iter().map(|(_, w)| w).sum();
        if total == 0 {
            return Err("the mix needs at least one operation with a weight above 0".into());
        }
        if total > 10_000 {
            return Err("mix weights add up to more than 10000; use smaller numbers".into());
        }
        // Smooth weighted round robin: each step every entry gains its weight, the largest
        // is picked and pays the total.
        let mut credit: Vec<i64> = vec![0; weights.len()];
        let mut cycle = Vec::with_capacity(total as usize);
        for _ in 0..total {
            for (c, (_, w)) in credit.iter_mut().zip(&weights) {
                *c += i64::from(*w);
            }
            let (best, _) = credit
                .iter()
                .enumerate()
                .max_by_key(|(i, c)| (**c, std::cmp::Reverse(*i)))
                .unwrap_or((0, &0));
            credit[best] -= i64::from(total);
            cycle.push(weights[best].0);
        }
        Ok(Mix { cycle, weights })
    }
}

impl Default for Mix {
    fn default() -> Self {
        Mix {
            cycle: vec![Op::Eip1559],
            weights: vec![(Op::Eip1559, 1)],
        }
    }
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut weights: Vec<(Op, u32)> = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, weight) = part.split_once('=').unwrap_or((part, "1"));
            let op: Op = name.trim().parse()?;
            let weight: u32 = weight
                .trim()
                .parse()
                .map_err(|_| format!("`{part}`: the weight must be a whole number"))?;
            if weights.iter().any(|(o, _)| *o == op) {
                return Err(format!("`{op}` appears twice in the mix"));
            }
            if weight > 0 {
                weights.push((op, weight));
            }
        }
        Mix::new(weights)
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .weights
            .iter()
            .map(|(op, w)| format!("{op}={w}"))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_interleaves_a_mix() {
        let mix: Mix = "eip1559=70,legacy=10,message=10,typed-data=10"
            .parse()
            .unwrap();
        assert_eq!(mix.cycle.len(), 100);
        let count = |op| mix.cycle.iter().filter(|o| **o == op).count();
        assert_eq!(
            (
                count(Op::Eip1559),
                count(Op::Legacy),
                count(Op::Message),
                count(Op::TypedData)
            ),
            (70, 10, 10, 10)
        );
        // Interleaved, not in blocks: no ten legacy requests in a row.
        assert!(mix.cycle.windows(2).any(|w| w[0] != w[1]));
        assert!(!mix
            .cycle
            .windows(3)
            .any(|w| w.iter().all(|o| *o == Op::Legacy)));
        assert_eq!(mix.op(100), mix.op(0));
        assert_eq!(
            mix.to_string(),
            "eip1559=70,legacy=10,message=10,typed-data=10"
        );
    }

    #[test]
    fn refuses_bad_mixes() {
        assert!("".parse::<Mix>().is_err());
        assert!("eip1559=0".parse::<Mix>().is_err());
        assert!("eip4844=1".parse::<Mix>().is_err());
        assert!("message=1,message=2".parse::<Mix>().is_err());
        assert!("message=x".parse::<Mix>().is_err());
        assert_eq!("message".parse::<Mix>().unwrap().op(7), Op::Message);
    }

    #[test]
    fn payloads_differ_per_request() {
        for op in Op::ALL {
            assert_ne!(op.payload(1, None), op.payload(2, None), "{op}");
        }
        let tx = Op::Legacy.payload(3, Some("0xabc"));
        assert_eq!(tx["from"], "0xabc");
        assert_eq!(tx["nonce"], "0x3");
    }
}
