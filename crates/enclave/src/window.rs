//! Sealing of the rolling-window state that the host keeps for the enclave.
//!
//! The state (sequence number and entries, JSON) is authenticated with HMAC-SHA256 under a key
//! derived with HKDF-SHA256 from the signing key itself, so only an enclave holding that key can
//! seal or open it, across restarts and across the enclaves of a pool, with no extra secret to
//! manage. The MAC also covers the key's address and policy digest: a state cannot be moved to
//! another key, nor survive a policy change.

use alloy_primitives::Address;
use aws_lc_rs::{hkdf, hmac};
use nitro_wallet_eth::PrivateKey;
use nitro_wallet_policy::WindowState;
use nitro_wallet_protocol::SealedWindow;

/// HKDF salt and info: the purpose of the derived key.
const SALT: &[u8] = b"nitro-wallet";
const INFO: &[u8] = b"window-state-mac/v1";

fn mac_key(key: &PrivateKey) -> hmac::Key {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(key.to_bytes().as_slice());
    match prk.expand(&[INFO], hmac::HMAC_SHA256) {
        Ok(okm) => hmac::Key::from(okm),
        // Unreachable: 32 bytes is far below HKDF-SHA256's output limit. Fall back to a key
        // that still depends on the secret rather than panicking.
        Err(_) => hmac::Key::new(hmac::HMAC_SHA256, key.to_bytes().as_slice()),
    }
}

fn message(address: &Address, policy_digest: &str, state: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(20 + policy_digest.len() + state.len() + 2);
    m.extend_from_slice(address.as_slice());
    m.extend_from_slice(policy_digest.as_bytes());
    m.push(0);
    m.extend_from_slice(state.as_bytes());
    m
}

/// Seals `state` for the key.
pub(crate) fn seal(key: &PrivateKey, policy_digest: &str, state: &WindowState) -> SealedWindow {
    // Serialising a WindowState cannot fail (integers and strings only).
    let json = serde_json::to_string(state).unwrap_or_default();
    let tag = hmac::sign(
        &mac_key(key),
        &message(&key.address(), policy_digest, &json),
    );
    SealedWindow {
        state: json,
        mac: hex::encode(tag.as_ref()),
    }
}

/// Opens a sealed state, or `None` when its MAC does not verify for this key and policy or it
/// is not a window state.
pub(crate) fn open(
    key: &PrivateKey,
    policy_digest: &str,
    sealed: &SealedWindow,
) -> Option<WindowState> {
    let tag = hex::decode(&sealed.mac).ok()?;
    hmac::verify(
        &mac_key(key),
        &message(&key.address(), policy_digest, &sealed.state),
        &tag,
    )
    .ok()?;
    serde_json::from_str(&sealed.state).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use alloy_primitives::U256;

    #[test]
    fn only_the_same_key_and_policy_open_an_unaltered_state() {
        let key = PrivateKey::generate().unwrap();
        let mut state = WindowState::default();
        state.record(100, U256::from(5));
        let sealed = seal(&key, "digest-a", &state);
        assert_eq!(open(&key, "digest-a", &sealed), Some(state.clone()));
        assert_eq!(open(&key, "digest-b", &sealed), None);
        assert_eq!(
            open(&PrivateKey::generate().unwrap(), "digest-a", &sealed),
            None
        );
        let altered = SealedWindow {
            state: sealed.state.replace("\"5\"", "\"0\""),
            ..sealed.clone()
        };
        assert_eq!(open(&key, "digest-a", &altered), None);
        let bad_mac = SealedWindow {
            mac: "zz".into(),
            ..sealed
        };
        assert_eq!(open(&key, "digest-a", &bad_mac), None);
    }
}
