//! CMS envelopes for KMS `Recipient`: the enclave's RSA key, decryption of
//! `CiphertextForRecipient`, and encryption of the same shape for the local KMS emulator.
//!
//! When the enclave calls KMS `Decrypt` / `GenerateDataKeyPair` / `GenerateRandom` with a
//! `Recipient` (an attestation document carrying [`RecipientKey::spki_der`]), KMS does not
//! return the plaintext: it returns `CiphertextForRecipient`, a BER CMS `EnvelopedData` that
//! only the holder of the private key — the attested enclave — can open. This module:
//!
//! - holds that key ([`RecipientKey`]: RSA-2048 from aws-lc-rs, constant-time, never `Debug`ged
//!   or cloned) and identifies it the way KMS does (subjectKeyIdentifier = SHA-256 of the
//!   SubjectPublicKeyInfo DER);
//! - opens envelopes ([`RecipientKey::decrypt_envelope`]) with a small strict BER reader,
//!   accepting exactly the shape KMS produces (see `envelope.rs`);
//! - produces that same shape ([`encrypt_envelope`]) so the emulator answers like KMS.
//!
//! # No padding oracle
//!
//! Everything up to and including the recipient check is public data and fails with a precise
//! [`CmsError`]. Everything after it — RSAES-OAEP unwrapping of the content key, AES-256-CBC
//! decryption and PKCS#7 unpadding — fails with the one generic [`CmsError::Decrypt`], and an
//! OAEP failure does not return early: the content is still decrypted under a random key
//! (implicit rejection), so the two failure paths do the same work.
//!
//! # No integrity
//!
//! CMS `EnvelopedData` with AES-CBC is encryption only: anyone can build an envelope to our
//! public key, and CBC ciphertext is malleable (a flipped IV bit flips the same plaintext bit).
//! A successful decryption proves confidentiality to the enclave, not who wrote the envelope;
//! authenticity comes from the TLS session with KMS that delivered it.

mod ber;
mod envelope;

use aws_lc_rs::cipher::{
    DecryptionContext, EncryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey, AES_256,
};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey, OAEP_SHA256_MGF1SHA256,
};
use aws_lc_rs::{digest, rand};
use zeroize::Zeroizing;

pub use envelope::Envelope;

/// Largest envelope accepted by the parser (KMS envelopes are well under 8 KiB).
pub const MAX_ENVELOPE_LEN: usize = 64 * 1024;

/// Largest plaintext [`encrypt_envelope`] accepts, so that its output always parses.
pub const MAX_PLAINTEXT_LEN: usize = 48 * 1024;

/// AES-256 key length.
const CONTENT_KEY_LEN: usize = 32;

/// Smallest recipient RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

/// Why an envelope could not be parsed, opened or built.
///
/// Only [`CmsError::Decrypt`] can follow the use of a private key, and it carries no detail.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmsError {
    /// The bytes are not well-formed BER, or not the envelope structure.
    #[error("malformed CMS envelope: {0}")]
    Malformed(&'static str),
    /// Well-formed CMS of a kind this module refuses (another algorithm, recipient type, …).
    #[error("unsupported CMS envelope: {0}")]
    Unsupported(&'static str),
    /// The envelope is addressed to another key: its subjectKeyIdentifier is not ours.
    #[error("the CMS envelope is addressed to another recipient key")]
    WrongRecipient,
    /// The input is larger than [`MAX_ENVELOPE_LEN`] (or the plaintext than
    /// [`MAX_PLAINTEXT_LEN`]).
    #[error("CMS input too large")]
    TooLarge,
    /// The envelope is addressed to us but does not decrypt. Deliberately generic: wrong key,
    /// bad OAEP encoding and bad padding are indistinguishable.
    #[error("the CMS envelope could not be decrypted")]
    Decrypt,
    /// An RSA key was rejected (not RSA, too small, unparsable).
    #[error("invalid RSA key: {0}")]
    InvalidKey(&'static str),
    /// Key generation, the random generator or encryption failed.
    #[error("CMS cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

impl CmsError {
    /// A stable snake_case code for this error, for logs, metrics and the host↔enclave protocol.
    pub fn code(&self) -> &'static str {
        match self {
            CmsError::Malformed(_) => "cms_malformed",
            CmsError::Unsupported(_) => "cms_unsupported",
            CmsError::WrongRecipient => "cms_wrong_recipient",
            CmsError::TooLarge => "cms_too_large",
            CmsError::Decrypt => "cms_decrypt_failed",
            CmsError::InvalidKey(_) => "cms_invalid_key",
            CmsError::Crypto(_) => "cms_crypto_failure",
        }
    }
}

/// Parses an envelope's structure without decrypting it.
///
/// # Errors
/// [`CmsError::TooLarge`], [`CmsError::Malformed`] or [`CmsError::Unsupported`] when the input
/// is not exactly the envelope shape KMS produces (see the module documentation).
pub fn parse_envelope(ber: &[u8]) -> Result<Envelope, CmsError> {
    envelope::parse(ber)
}

/// The enclave's RSA key pair for KMS `Recipient`.
///
/// Not `Clone`, and its `Debug` shows only the public subjectKeyIdentifier.
pub struct RecipientKey {
    key: OaepPrivateDecryptingKey,
    spki_der: Vec<u8>,
    ski: [u8; 32],
}

impl std::fmt::Debug for RecipientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecipientKey")
            .field("subject_key_identifier", &hex::encode(self.ski))
            .finish_non_exhaustive()
    }
}

impl RecipientKey {
    /// Generates a fresh RSA-2048 key pair.
    ///
    /// # Errors
    /// [`CmsError::Crypto`] if key generation fails.
    pub fn generate() -> Result<Self, CmsError> {
        let key = PrivateDecryptingKey::generate(KeySize::Rsa2048)
            .map_err(|_| CmsError::Crypto("RSA key generation failed"))?;
        Self::from_private(key)
    }

    /// Loads an RSA private key (2048 to 8192 bits) from PKCS#8 v1 DER. For tests and tools;
    /// the enclave generates its key with [`RecipientKey::generate`].
    ///
    /// # Errors
    /// [`CmsError::InvalidKey`] if the bytes are not such a key.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, CmsError> {
        let key = PrivateDecryptingKey::from_pkcs8(der).map_err(|_| {
            CmsError::InvalidKey("not a PKCS#8 RSA private key of 2048 to 8192 bits")
        })?;
        Self::from_private(key)
    }

    fn from_private(key: PrivateDecryptingKey) -> Result<Self, CmsError> {
        if key.key_size_bits() < MIN_RSA_BITS {
            return Err(CmsError::InvalidKey("RSA key smaller than 2048 bits"));
        }
        let spki_der = key
            .public_key()
            .as_der()
            .map_err(|_| CmsError::Crypto("public key encoding failed"))?
            .as_ref()
            .to_vec();
        let ski = sha256(&spki_der);
        let key = OaepPrivateDecryptingKey::new(key)
            .map_err(|_| CmsError::Crypto("RSA-OAEP key setup failed"))?;
        Ok(RecipientKey { key, spki_der, ski })
    }

    /// The public key as X.509 SubjectPublicKeyInfo DER: what goes into the attestation
    /// document's `public_key` field.
    pub fn spki_der(&self) -> Vec<u8> {
        self.spki_der.clone()
    }

    /// SHA-256 of [`RecipientKey::spki_der`]: the subjectKeyIdentifier KMS addresses its
    /// envelopes to.
    pub fn subject_key_identifier(&self) -> [u8; 32] {
        self.ski
    }

    /// Opens a KMS `CiphertextForRecipient` envelope addressed to this key.
    ///
    /// # Errors
    /// [`CmsError::TooLarge`], [`CmsError::Malformed`] or [`CmsError::Unsupported`] for an
    /// envelope that is not of the KMS shape; [`CmsError::WrongRecipient`] if it is addressed
    /// to another subjectKeyIdentifier; [`CmsError::Decrypt`] for anything after that.
    pub fn decrypt_envelope(&self, ber: &[u8]) -> Result<Zeroizing<Vec<u8>>, CmsError> {
        let envelope = envelope::parse(ber)?;
        if envelope.subject_key_identifier != self.ski {
            return Err(CmsError::WrongRecipient);
        }
        self.open(&envelope)
    }

    /// As [`RecipientKey::decrypt_envelope`], but also accepts an envelope whose
    /// subjectKeyIdentifier is `expected_ski` rather than SHA-256 of our SPKI.
    ///
    /// For envelopes made by tools that identify the recipient by a certificate's own
    /// subjectKeyIdentifier extension (OpenSSL `cms -encrypt -keyid` uses the SHA-1 key hash).
    /// KMS always uses the SHA-256 form: production code calls
    /// [`RecipientKey::decrypt_envelope`].
    ///
    /// # Errors
    /// As [`RecipientKey::decrypt_envelope`]; [`CmsError::WrongRecipient`] if the envelope's
    /// identifier matches neither.
    pub fn decrypt_envelope_with_ski(
        &self,
        ber: &[u8],
        expected_ski: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CmsError> {
        let envelope = envelope::parse(ber)?;
        let ski = envelope.subject_key_identifier.as_slice();
        if ski != self.ski && ski != expected_ski {
            return Err(CmsError::WrongRecipient);
        }
        self.open(&envelope)
    }

    /// Unwraps the content key and decrypts the content. Every failure is [`CmsError::Decrypt`].
    fn open(&self, envelope: &Envelope) -> Result<Zeroizing<Vec<u8>>, CmsError> {
        if envelope.encrypted_key.len() != self.key.key_size_bytes() {
            return Err(CmsError::Decrypt);
        }
        let mut unwrapped = Zeroizing::new(vec![0u8; self.key.min_output_size()]);
        let oaep_ok = match self.key.decrypt(
            &OAEP_SHA256_MGF1SHA256,
            &envelope.encrypted_key,
            &mut unwrapped,
            None,
        ) {
            Ok(plain) => plain.len() == CONTENT_KEY_LEN,
            Err(_) => false,
        };

        // Implicit rejection: after an OAEP failure, decrypt under a random key anyway and
        // fail at the end, so both failures do the same work (the random key is drawn on
        // both paths).
        let mut content_key = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
        rand::fill(&mut content_key[..]).map_err(|_| CmsError::Decrypt)?;
        if oaep_ok {
            content_key.copy_from_slice(&unwrapped[..CONTENT_KEY_LEN]);
        }
        drop(unwrapped);

        let key = UnboundCipherKey::new(&AES_256, &content_key[..])
            .and_then(PaddedBlockDecryptingKey::cbc_pkcs7)
            .map_err(|_| CmsError::Decrypt)?;
        let mut buffer = Zeroizing::new(envelope.encrypted_content.clone());
        let context = DecryptionContext::Iv128(FixedLength::from(envelope.iv));
        let plain_len = key
            .decrypt(&mut buffer, context)
            .map(|plain| plain.len())
            .map_err(|_| CmsError::Decrypt)?;
        if !oaep_ok {
            return Err(CmsError::Decrypt);
        }
        buffer.truncate(plain_len);
        Ok(buffer)
    }
}

/// Builds an envelope of the shape KMS returns as `CiphertextForRecipient`, addressed to the
/// RSA public key `recipient_spki_der` (SubjectPublicKeyInfo DER, at least 2048 bits):
/// EnvelopedData v2, KeyTransRecipientInfo v2 with subjectKeyIdentifier = SHA-256 of those
/// exact bytes, RSAES-OAEP-SHA-256/MGF1-SHA-256, AES-256-CBC under a fresh random key and IV,
/// BER with indefinite lengths and the ciphertext in 1024-byte chunks.
///
/// # Errors
/// [`CmsError::TooLarge`] if `plaintext` exceeds [`MAX_PLAINTEXT_LEN`];
/// [`CmsError::InvalidKey`] if the recipient is not an RSA key of 2048 to 8192 bits;
/// [`CmsError::Crypto`] if the random generator or a cipher fails.
pub fn encrypt_envelope(recipient_spki_der: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CmsError> {
    if plaintext.len() > MAX_PLAINTEXT_LEN {
        return Err(CmsError::TooLarge);
    }
    let public = PublicEncryptingKey::from_der(recipient_spki_der).map_err(|_| {
        CmsError::InvalidKey("recipient is not an RSA public key of 2048 to 8192 bits")
    })?;
    if public.key_size_bits() < MIN_RSA_BITS {
        return Err(CmsError::InvalidKey(
            "recipient RSA key smaller than 2048 bits",
        ));
    }
    let oaep = OaepPublicEncryptingKey::new(public)
        .map_err(|_| CmsError::Crypto("RSA-OAEP key setup failed"))?;

    let mut content_key = Zeroizing::new([0u8; CONTENT_KEY_LEN]);
    rand::fill(&mut content_key[..]).map_err(|_| CmsError::Crypto("random generator failed"))?;
    let mut iv = [0u8; envelope::AES_BLOCK_LEN];
    rand::fill(&mut iv).map_err(|_| CmsError::Crypto("random generator failed"))?;

    let mut encrypted_key = vec![0u8; oaep.ciphertext_size()];
    let encrypted_key_len = oaep
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            &content_key[..],
            &mut encrypted_key,
            None,
        )
        .map_err(|_| CmsError::Crypto("RSA-OAEP encryption failed"))?
        .len();
    encrypted_key.truncate(encrypted_key_len);

    let cipher = UnboundCipherKey::new(&AES_256, &content_key[..])
        .and_then(PaddedBlockEncryptingKey::cbc_pkcs7)
        .map_err(|_| CmsError::Crypto("AES key setup failed"))?;
    // Holds plaintext until encrypted in place, hence zeroized.
    let mut content = Zeroizing::new(plaintext.to_vec());
    cipher
        .less_safe_encrypt(
            &mut *content,
            EncryptionContext::Iv128(FixedLength::from(iv)),
        )
        .map_err(|_| CmsError::Crypto("AES-CBC encryption failed"))?;

    Ok(envelope::encode(&Envelope {
        subject_key_identifier: sha256(recipient_spki_der).to_vec(),
        encrypted_key,
        iv,
        encrypted_content: content.to_vec(),
    }))
}

/// SHA-256 of `data`.
fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn key() -> &'static RecipientKey {
        static KEY: OnceLock<RecipientKey> = OnceLock::new();
        KEY.get_or_init(|| RecipientKey::generate().unwrap())
    }

    #[test]
    fn generated_key_identifies_itself_like_kms() {
        let key = key();
        assert_eq!(key.subject_key_identifier(), sha256(&key.spki_der()));
        // SubjectPublicKeyInfo of rsaEncryption, 2048-bit: 294 bytes.
        assert_eq!(key.spki_der().len(), 294);
        let debug = format!("{key:?}");
        assert!(debug.contains(&hex::encode(key.subject_key_identifier())));
    }

    #[test]
    fn round_trip_various_lengths() {
        let key = key();
        for len in [0usize, 1, 15, 16, 17, 1023, 1024, 1025, 5000] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let sealed = encrypt_envelope(&key.spki_der(), &plain).unwrap();
            assert_eq!(&key.decrypt_envelope(&sealed).unwrap()[..], &plain[..]);
            let parsed = parse_envelope(&sealed).unwrap();
            assert_eq!(parsed.encrypted_content().len(), (len / 16 + 1) * 16);
        }
    }

    #[test]
    fn plaintext_size_bounded() {
        let key = key();
        let max = vec![0u8; MAX_PLAINTEXT_LEN];
        let sealed = encrypt_envelope(&key.spki_der(), &max).unwrap();
        assert!(sealed.len() <= MAX_ENVELOPE_LEN);
        assert_eq!(
            key.decrypt_envelope(&sealed).unwrap().len(),
            MAX_PLAINTEXT_LEN
        );
        assert_eq!(
            encrypt_envelope(&key.spki_der(), &vec![0u8; MAX_PLAINTEXT_LEN + 1]),
            Err(CmsError::TooLarge)
        );
    }

    #[test]
    fn oaep_and_padding_failures_are_one_error() {
        let key = key();
        let sealed = encrypt_envelope(&key.spki_der(), b"secret").unwrap();
        let envelope = parse_envelope(&sealed).unwrap();

        let mut bad_oaep = envelope.clone();
        bad_oaep.encrypted_key[100] ^= 1;
        // "secret" is padded with ten 0x0a bytes; this IV change makes the last one 0x00.
        let mut bad_padding = envelope.clone();
        bad_padding.iv[15] ^= 0x0a;
        let mut short_key = envelope.clone();
        short_key.encrypted_key.pop();
        for tampered in [bad_oaep, bad_padding, short_key] {
            let ber = envelope::encode(&tampered);
            assert_eq!(key.decrypt_envelope(&ber), Err(CmsError::Decrypt));
        }
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(CmsError::Decrypt.code(), "cms_decrypt_failed");
        assert_eq!(CmsError::WrongRecipient.code(), "cms_wrong_recipient");
        assert_eq!(CmsError::Malformed("x").code(), "cms_malformed");
        assert_eq!(CmsError::Unsupported("x").code(), "cms_unsupported");
        assert_eq!(CmsError::TooLarge.code(), "cms_too_large");
        assert_eq!(CmsError::InvalidKey("x").code(), "cms_invalid_key");
        assert_eq!(CmsError::Crypto("x").code(), "cms_crypto_failure");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = parse_envelope(&bytes);
            let _ = key().decrypt_envelope(&bytes);
        }

        #[test]
        fn mutated_envelopes_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            static SEALED: OnceLock<Vec<u8>> = OnceLock::new();
            let sealed = SEALED.get_or_init(|| {
                encrypt_envelope(&key().spki_der(), &[0x42; 40]).unwrap()
            });
            let mut bytes = sealed.clone();
            for (at, value) in edits {
                let i = at.index(bytes.len());
                bytes[i] = value;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            if let Ok(envelope) = parse_envelope(&bytes) {
                let ski = envelope.subject_key_identifier().to_vec();
                let _ = key().decrypt_envelope_with_ski(&bytes, &ski);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn round_trip_arbitrary_plaintext(plain in proptest::collection::vec(any::<u8>(), 0..3000)) {
            let sealed = encrypt_envelope(&key().spki_der(), &plain).unwrap();
            prop_assert_eq!(&key().decrypt_envelope(&sealed).unwrap()[..], &plain[..]);
        }
    }
}
