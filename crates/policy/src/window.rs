//! The rolling window's spending history.

use crate::{deny, Denied, Window};
use alloy_primitives::U256;
use serde::{Deserialize, Serialize};

/// Most transactions a window remembers; also the largest `window.max_count`.
pub const MAX_WINDOW_ENTRIES: usize = 4096;

/// What a key signed within its window: `(unix seconds, value in wei)` per transaction, oldest
/// first, and a sequence number that grows with every change so that an older copy can be told
/// from a newer one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct WindowState {
    /// Incremented on every recorded transaction.
    pub seq: u64,
    /// `(time, value)` of each transaction still inside the window, oldest first.
    #[serde(with = "entries")]
    pub entries: Vec<(u64, U256)>,
}

impl WindowState {
    /// Drops what has left the window at time `now`.
    pub fn expire(&mut self, window: &Window, now: u64) {
        let start = now.saturating_sub(window.seconds);
        let keep_from = self.entries.partition_point(|(t, _)| *t <= start);
        self.entries.drain(..keep_from);
    }

    /// Checks that one more transaction of `value` at `now` stays within `window`, without
    /// recording it. Call [`WindowState::expire`] first.
    ///
    /// # Errors
    /// [`Denied`] with rule `window.max_count` or `window.max_value_wei`.
    pub fn check(&self, window: &Window, value: U256) -> Result<(), Denied> {
        let count = self.entries.len() as u64;
        let max_count = window.max_count.unwrap_or(MAX_WINDOW_ENTRIES as u64);
        if count >= max_count {
            return Err(deny(
                "window.max_count",
                format!(
                    "{count} transaction(s) in the last {} s already: the limit is {max_count}",
                    window.seconds
                ),
            ));
        }
        if let Some(max) = window.max_value_wei {
            let spent = self
                .entries
                .iter()
                .fold(U256::ZERO, |acc, (_, v)| acc.saturating_add(*v));
            if spent.saturating_add(value) > max {
                return Err(deny(
                    "window.max_value_wei",
                    format!(
                        "{spent} wei spent in the last {} s; {value} more would pass the limit \
                         of {max} wei",
                        window.seconds
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Records a transaction of `value` at `now` (after a successful [`WindowState::check`]).
    /// Times never go backwards: a clock that did is taken as the last entry's time.
    pub fn record(&mut self, now: u64, value: U256) {
        let now = self.entries.last().map_or(now, |(t, _)| now.max(*t));
        self.entries.push((now, value));
        self.seq += 1;
    }
}

/// `[[time, "wei"], …]`, the value as a decimal string.
mod entries {
    use alloy_primitives::U256;
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    use super::MAX_WINDOW_ENTRIES;

    pub(super) fn serialize<S: Serializer>(v: &[(u64, U256)], s: S) -> Result<S::Ok, S::Error> {
        let as_text: Vec<(u64, String)> = v.iter().map(|(t, w)| (*t, w.to_string())).collect();
        as_text.serialize(s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Vec<(u64, U256)>, D::Error> {
        let raw: Vec<(u64, String)> = Vec::deserialize(d)?;
        if raw.len() > MAX_WINDOW_ENTRIES {
            return Err(D::Error::custom("too many window entries"));
        }
        let mut out = Vec::with_capacity(raw.len());
        for (t, w) in raw {
            if out.last().is_some_and(|(last, _)| *last > t) {
                return Err(D::Error::custom("window entries out of order"));
            }
            let value = U256::from_str_radix(&w, 10)
                .map_err(|_| D::Error::custom("a window value is a decimal string of wei"))?;
            out.push((t, value));
        }
        Ok(out)
    }
}
