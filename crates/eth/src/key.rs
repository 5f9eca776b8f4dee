//! secp256k1 private keys: generation, import, address derivation and hash signing.
//!
//! This module exists so that exactly one type in the workspace ever holds plaintext key
//! material, and so that its handling rules live in one place; they are documented on
//! [`PrivateKey`].

use std::fmt;

use alloy_primitives::{keccak256, Address, Signature, B256, U256};
use secp256k1::{ecdsa::RecoveryId, Message, PublicKey, SecretKey, SECP256K1};
use zeroize::{Zeroize, Zeroizing};

/// How many fresh 32-byte draws [`PrivateKey::generate`] makes before giving up.
///
/// A uniformly random 32-byte string is an invalid scalar (zero or ≥ n) with probability
/// about 2^-128, so needing even a second draw means the RNG is broken.
const MAX_GENERATE_ATTEMPTS: usize = 8;

/// Domain separator for hashing caller-supplied entropy in
/// [`PrivateKey::generate_with_entropy`].
const ENTROPY_DOMAIN: &[u8] = b"nitro-wallet/eth/key-entropy/v1";

/// Errors about private keys.
///
/// No variant ever carries key bytes or any part of the input that was rejected.
#[non_exhaustive]
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The bytes are not a valid secp256k1 secret key: wrong length, zero, or not below the
    /// curve order.
    #[error("invalid private key")]
    InvalidKey,
    /// The hex text is not 64 hex digits (with an optional `0x` prefix).
    ///
    /// The message deliberately never contains the input.
    #[error("invalid private key hex: expected 64 hex digits with an optional 0x prefix")]
    InvalidHex,
    /// The operating system's random number generator failed, or kept producing invalid
    /// scalars.
    #[error("random number generator failure")]
    Rng,
}

/// A secp256k1 private key together with its Ethereum address.
///
/// # Handling of the secret
///
/// * [`PrivateKey`] is not `Clone`, `Copy`, `Serialize` or `PartialEq`, and its hand-written
///   `Debug` prints only the (public) address.
/// * Signing uses libsecp256k1 (the `secp256k1` crate with its global context), which is
///   measurably faster than the pure-Rust `k256` that alloy uses by default (see DESIGN.md §5).
///   Nonces are RFC 6979 and signatures are low-s, exactly as `k256` would produce them; the
///   test suite checks both implementations agree bit for bit.
/// * Zeroization: `secp256k1::SecretKey` is `Copy` and does not clear itself on drop. We keep a
///   single `SecretKey` inside `PrivateKey`, never copy it out (the only exported form is
///   [`PrivateKey::to_bytes`], wrapped in [`Zeroizing`]), and call
///   `SecretKey::non_secure_erase` from our `Drop`. Temporary byte buffers used while
///   constructing a key are wrapped in [`Zeroizing`]. What Rust cannot promise is that the
///   compiler never leaves a stray copy behind when it moves a value (on the stack or in a
///   register); the `zeroize` crate documents the same limit. We keep moves of the key rare
///   (construct in place, hand out references), which is the practical mitigation.
pub struct PrivateKey {
    /// The one and only copy of the secret scalar; erased in `Drop`.
    secret: SecretKey,
    /// Derived once at construction.
    address: Address,
}

impl PrivateKey {
    /// Generates a new key from the operating system's random number generator.
    ///
    /// # Errors
    ///
    /// [`Error::Rng`] if the OS RNG fails or (with negligible probability for a working RNG)
    /// keeps producing invalid scalars.
    pub fn generate() -> Result<PrivateKey, Error> {
        Self::generate_with_entropy(&[])
    }

    /// Generates a new key from the OS RNG mixed with caller-supplied entropy (for instance
    /// bytes from the Nitro Security Module).
    ///
    /// Each candidate scalar is `os_random_32_bytes XOR keccak256(domain || extra)`. The XOR
    /// of two independent sources is at least as unpredictable as the better one, so the key
    /// stays secure if `extra` is empty, public or weak, and also if the OS RNG is weak but
    /// `extra` is good. Only public-ish `extra` passes through the (non-zeroizing) hasher;
    /// the OS bytes are only ever in a [`Zeroizing`] buffer.
    ///
    /// # Errors
    ///
    /// [`Error::Rng`] if the OS RNG fails or keeps producing invalid scalars.
    pub fn generate_with_entropy(extra: &[u8]) -> Result<PrivateKey, Error> {
        let mask = if extra.is_empty() {
            None
        } else {
            let mut input = Vec::with_capacity(ENTROPY_DOMAIN.len() + extra.len());
            input.extend_from_slice(ENTROPY_DOMAIN);
            input.extend_from_slice(extra);
            let mask = Zeroizing::new(keccak256(&input).0);
            input.zeroize();
            Some(mask)
        };
        for _ in 0..MAX_GENERATE_ATTEMPTS {
            let mut candidate = Zeroizing::new([0u8; 32]);
            getrandom::fill(candidate.as_mut()).map_err(|_| Error::Rng)?;
            if let Some(mask) = &mask {
                for (c, m) in candidate.iter_mut().zip(mask.iter()) {
                    *c ^= m;
                }
            }
            if let Ok(key) = Self::from_array(&candidate) {
                return Ok(key);
            }
        }
        Err(Error::Rng)
    }

    /// Imports a key from its 32-byte big-endian scalar.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidKey`] unless `bytes` is exactly 32 bytes holding a scalar in
    /// `1..n`.
    pub fn from_bytes(bytes: &[u8]) -> Result<PrivateKey, Error> {
        let array: &[u8; 32] = bytes.try_into().map_err(|_| Error::InvalidKey)?;
        Self::from_array(array)
    }

    /// Imports a key from 64 hex digits, with or without a `0x` prefix.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHex`] if the text is not 64 hex digits, [`Error::InvalidKey`] if the
    /// scalar is zero or not below the curve order. Neither message contains the input.
    pub fn from_hex(s: &str) -> Result<PrivateKey, Error> {
        let digits = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(digits, bytes.as_mut()).map_err(|_| Error::InvalidHex)?;
        Self::from_array(&bytes)
    }

    /// Builds the key from a borrowed array so the caller decides how its buffer is cleared.
    fn from_array(bytes: &[u8; 32]) -> Result<PrivateKey, Error> {
        // `from_byte_array` takes the array by value: that copy lives in this frame only and
        // becomes the `SecretKey`, which is moved into `Self` below.
        let secret = SecretKey::from_byte_array(*bytes).map_err(|_| Error::InvalidKey)?;
        let public = PublicKey::from_secret_key_global(&secret);
        let address = public_key_address(&public);
        Ok(PrivateKey { secret, address })
    }

    /// The secret scalar, big-endian, for wrapping with KMS. The buffer clears itself on
    /// drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.secret_bytes())
    }

    /// The uncompressed SEC1 public key: `0x04 ‖ x ‖ y`, 65 bytes.
    pub fn public_key(&self) -> [u8; 65] {
        secp256k1::PublicKey::from_secret_key_global(&self.secret).serialize_uncompressed()
    }

    /// The Ethereum address of this key (computed once at construction).
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte prehash: recoverable ECDSA, RFC 6979 nonce, low-s.
    ///
    /// The returned signature's `y_parity` is the recovery id (0 or 1). libsecp256k1 can in
    /// theory return recovery id 2 or 3 (when the nonce point's x-coordinate is not below the
    /// group order, probability about 2^-127), which Ethereum cannot express; in that case we
    /// re-sign with RFC 6979 extra data (a counter), which yields a different valid nonce.
    pub fn sign_hash(&self, hash: &B256) -> Signature {
        let message = Message::from_digest(hash.0);
        let mut recoverable = SECP256K1.sign_ecdsa_recoverable(message, &self.secret);
        let mut counter: u64 = 0;
        loop {
            let (recovery_id, compact) = recoverable.serialize_compact();
            let odd = match recovery_id {
                RecoveryId::Zero => Some(false),
                RecoveryId::One => Some(true),
                RecoveryId::Two | RecoveryId::Three => None,
            };
            if let Some(odd) = odd {
                let r = U256::from_be_slice(&compact[..32]);
                let s = U256::from_be_slice(&compact[32..]);
                return Signature::new(r, s, odd);
            }
            counter = counter.wrapping_add(1);
            let mut extra = [0u8; 32];
            extra[24..].copy_from_slice(&counter.to_be_bytes());
            recoverable =
                SECP256K1.sign_ecdsa_recoverable_with_noncedata(message, &self.secret, &extra);
        }
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.secret.non_secure_erase();
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("address", &format_args!("{}", self.address))
            .finish_non_exhaustive()
    }
}

/// The Ethereum address of a public key: the last 20 bytes of
/// `keccak256(uncompressed_point[1..])`.
pub(crate) fn public_key_address(public: &PublicKey) -> Address {
    let uncompressed = public.serialize_uncompressed();
    Address::from_slice(&keccak256(&uncompressed[1..])[12..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloy_primitives::address;

    /// Hardhat / anvil default accounts (from the `test test … junk` mnemonic), published in
    /// the Hardhat and Foundry documentation.
    const HARDHAT: [(&str, Address); 3] = [
        (
            "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
            address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
        ),
        (
            "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
            address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        ),
        (
            "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
            address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        ),
    ];

    #[test]
    fn known_addresses() {
        for (hex, addr) in HARDHAT {
            assert_eq!(PrivateKey::from_hex(hex).unwrap().address(), addr);
            let prefixed = format!("0x{hex}");
            assert_eq!(PrivateKey::from_hex(&prefixed).unwrap().address(), addr);
        }
        // EIP-155 example key.
        let key = PrivateKey::from_bytes(&[0x46; 32]).unwrap();
        assert_eq!(
            key.address(),
            address!("9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F")
        );
    }

    #[test]
    fn rejects_bad_keys() {
        assert_eq!(
            PrivateKey::from_bytes(&[0; 32]).unwrap_err(),
            Error::InvalidKey
        );
        assert_eq!(
            PrivateKey::from_bytes(&[1; 31]).unwrap_err(),
            Error::InvalidKey
        );
        assert_eq!(
            PrivateKey::from_bytes(&[1; 33]).unwrap_err(),
            Error::InvalidKey
        );
        assert_eq!(
            PrivateKey::from_bytes(&[0xff; 32]).unwrap_err(),
            Error::InvalidKey
        );
        // The group order n itself is invalid.
        let n = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
        assert_eq!(PrivateKey::from_hex(n).unwrap_err(), Error::InvalidKey);
        let secret_like = "zz0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
        let err = PrivateKey::from_hex(secret_like).unwrap_err();
        assert_eq!(err, Error::InvalidHex);
        assert!(!err.to_string().contains("0974bec3"));
        assert_eq!(
            PrivateKey::from_hex("0x1234").unwrap_err(),
            Error::InvalidHex
        );
        assert_eq!(PrivateKey::from_hex("").unwrap_err(), Error::InvalidHex);
    }

    #[test]
    fn debug_hides_secret() {
        let (hex, addr) = HARDHAT[0];
        let key = PrivateKey::from_hex(hex).unwrap();
        let debug = format!("{key:?}");
        assert!(!debug.to_lowercase().contains(hex));
        assert!(!debug.to_lowercase().contains(&hex[..16]));
        assert!(debug.contains(&format!("{addr}")), "{debug}");
    }

    #[test]
    fn round_trip_bytes() {
        let (hex, _) = HARDHAT[1];
        let key = PrivateKey::from_hex(hex).unwrap();
        assert_eq!(hex::encode(*key.to_bytes()), hex);
    }

    #[test]
    fn generate_gives_distinct_valid_keys() {
        let a = PrivateKey::generate().unwrap();
        let b = PrivateKey::generate().unwrap();
        let c = PrivateKey::generate_with_entropy(b"nsm entropy").unwrap();
        assert_ne!(a.address(), b.address());
        assert_ne!(b.address(), c.address());
        let again = PrivateKey::from_bytes(&*c.to_bytes()).unwrap();
        assert_eq!(again.address(), c.address());
    }

    #[test]
    fn signature_recovers_and_is_low_s() {
        let key = PrivateKey::from_hex(HARDHAT[0].0).unwrap();
        let hash = keccak256(b"hello");
        let sig = key.sign_hash(&hash);
        assert_eq!(
            sig.recover_address_from_prehash(&hash).unwrap(),
            key.address()
        );
        assert!(sig.normalize_s().is_none(), "s must already be low");
        // Deterministic (RFC 6979).
        assert_eq!(sig, key.sign_hash(&hash));
    }
}
