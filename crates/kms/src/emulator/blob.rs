//! The emulator's ciphertext blob format and the encryption-context AAD.
//!
//! ```text
//! "NWKE" | version (1 byte, = 1) | key-id length (1 byte) | key id (ASCII)
//!        | nonce (12 bytes) | AES-256-GCM ciphertext and 16-byte tag
//! ```
//!
//! The AAD is the header (everything before the nonce) followed by the canonical encoding of
//! the encryption context, so neither the key id nor the context can be changed without the
//! tag failing. The canonical encoding is the entry count, then for every entry in sorted key
//! order the key and the value, each as a 4-byte big-endian length and the UTF-8 bytes; the
//! lengths keep `{"a":"bc"}` and `{"ab":"c"}` apart. An empty context and no context are the
//! same, as in KMS.

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use zeroize::Zeroizing;

use crate::EncryptionContext;

/// First bytes of every blob.
const MAGIC: &[u8; 4] = b"NWKE";
/// The only format version so far.
const VERSION: u8 = 1;
/// Length of the AES-GCM tag appended to the ciphertext.
const TAG_LEN: usize = 16;

/// A syntactically valid blob, borrowed from the request bytes. Authenticity is only known
/// after [`open`].
#[derive(Debug)]
pub(crate) struct ParsedBlob<'a> {
    /// The KMS key id the blob claims to be under.
    pub(crate) key_id: &'a str,
    header: &'a [u8],
    nonce: [u8; NONCE_LEN],
    sealed: &'a [u8],
}

/// Parses the blob's framing; `None` when it is not one of ours.
pub(crate) fn parse(bytes: &[u8]) -> Option<ParsedBlob<'_>> {
    let rest = bytes.strip_prefix(MAGIC.as_slice())?;
    let (&version, rest) = rest.split_first()?;
    if version != VERSION {
        return None;
    }
    let (&id_len, rest) = rest.split_first()?;
    let id_len = usize::from(id_len);
    if id_len == 0 || rest.len() < id_len + NONCE_LEN + TAG_LEN {
        return None;
    }
    let (id, rest) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(id).ok()?;
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let header_len = MAGIC.len() + 2 + id_len;
    Some(ParsedBlob {
        key_id,
        header: bytes.get(..header_len)?,
        nonce: nonce.try_into().ok()?,
        sealed,
    })
}

/// Encrypts `plaintext` under `master` for `key_id`, binding `context`; `None` when the key id
/// does not fit the format or the random source fails.
pub(crate) fn seal(
    key_id: &str,
    master: &[u8; 32],
    plaintext: &[u8],
    context: &EncryptionContext,
) -> Option<Vec<u8>> {
    let id_len = u8::try_from(key_id.len()).ok().filter(|len| *len > 0)?;
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).ok()?;

    let mut blob =
        Vec::with_capacity(MAGIC.len() + 2 + key_id.len() + NONCE_LEN + plaintext.len() + TAG_LEN);
    blob.extend_from_slice(MAGIC);
    blob.push(VERSION);
    blob.push(id_len);
    blob.extend_from_slice(key_id.as_bytes());
    let mut aad = blob.clone();
    aad.extend_from_slice(&canonical_context(context));
    blob.extend_from_slice(&nonce);

    let mut sealed = Zeroizing::new(plaintext.to_vec());
    cipher(master)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_slice()),
            &mut *sealed,
        )
        .ok()?;
    blob.extend_from_slice(&sealed);
    Some(blob)
}

/// Authenticates and decrypts `blob` under `master` with `context`; `None` when the tag does
/// not verify (wrong key, wrong context, tampering).
pub(crate) fn open(
    blob: &ParsedBlob<'_>,
    master: &[u8; 32],
    context: &EncryptionContext,
) -> Option<Zeroizing<Vec<u8>>> {
    let mut aad = blob.header.to_vec();
    aad.extend_from_slice(&canonical_context(context));
    let mut buffer = Zeroizing::new(blob.sealed.to_vec());
    let plain_len = cipher(master)?
        .open_in_place(
            Nonce::assume_unique_for_key(blob.nonce),
            Aad::from(aad.as_slice()),
            &mut buffer,
        )
        .ok()?
        .len();
    buffer.truncate(plain_len);
    Some(buffer)
}

/// The canonical byte encoding of an encryption context (see the module docs).
///
/// Callers bound the context's size, so every length fits in 32 bits.
pub(crate) fn canonical_context(context: &EncryptionContext) -> Vec<u8> {
    fn put(out: &mut Vec<u8>, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(bytes);
    }
    let mut out = Vec::new();
    let count = u32::try_from(context.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for (key, value) in context {
        put(&mut out, key.as_bytes());
        put(&mut out, value.as_bytes());
    }
    out
}

fn cipher(master: &[u8; 32]) -> Option<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, master)
        .ok()
        .map(LessSafeKey::new)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const OTHER: [u8; 32] = [8; 32];

    fn ctx(pairs: &[(&str, &str)]) -> EncryptionContext {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn canonical_context_is_unambiguous() {
        assert_ne!(
            canonical_context(&ctx(&[("a", "bc")])),
            canonical_context(&ctx(&[("ab", "c")]))
        );
        assert_ne!(
            canonical_context(&ctx(&[("a", "b"), ("c", "d")])),
            canonical_context(&ctx(&[("a", "b\0\0\0\x01c")]))
        );
        assert_ne!(
            canonical_context(&ctx(&[])),
            canonical_context(&ctx(&[("", "")]))
        );
    }

    #[test]
    fn canonical_context_known_answer() {
        let encoded = canonical_context(&ctx(&[("b", "2"), ("a", "1")]));
        let expected: &[u8] = b"\0\0\0\x02\0\0\0\x01a\0\0\0\x011\0\0\0\x01b\0\0\0\x012";
        assert_eq!(encoded, expected);
        assert_eq!(canonical_context(&ctx(&[])), vec![0, 0, 0, 0]);
    }

    #[test]
    fn round_trip_and_layout() {
        let context = ctx(&[("address", "0xabc")]);
        let blob = seal("key-1", &KEY, b"hello", &context).expect("seal");
        assert_eq!(&blob[..4], b"NWKE");
        assert_eq!(blob[4], 1);
        assert_eq!(blob[5], 5);
        assert_eq!(&blob[6..11], b"key-1");
        assert_eq!(blob.len(), 11 + NONCE_LEN + 5 + TAG_LEN);
        let parsed = parse(&blob).expect("parse");
        assert_eq!(parsed.key_id, "key-1");
        assert_eq!(&open(&parsed, &KEY, &context).expect("open")[..], b"hello");
        // Fresh nonce each time.
        assert_ne!(blob, seal("key-1", &KEY, b"hello", &context).expect("seal"));
    }

    #[test]
    fn wrong_key_context_or_bytes_fail() {
        let context = ctx(&[("a", "bc")]);
        let blob = seal("key-1", &KEY, b"hello", &context).expect("seal");
        let parsed = parse(&blob).expect("parse");
        assert!(open(&parsed, &OTHER, &context).is_none());
        assert!(open(&parsed, &KEY, &ctx(&[("ab", "c")])).is_none());
        assert!(open(&parsed, &KEY, &ctx(&[])).is_none());
        assert!(open(&parsed, &KEY, &ctx(&[("a", "bc"), ("x", "y")])).is_none());
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            if let Some(parsed) = parse(&bad) {
                assert!(
                    open(&parsed, &KEY, &context).is_none(),
                    "flip at {i} accepted"
                );
            }
        }
        // A blob relabelled to another key id fails too (the header is AAD).
        let mut relabelled = blob.clone();
        relabelled[10] = b'2';
        let parsed = parse(&relabelled).expect("parse");
        assert_eq!(parsed.key_id, "key-2");
        assert!(open(&parsed, &KEY, &context).is_none());
    }

    #[test]
    fn malformed_blobs_are_rejected() {
        let blob = seal("key-1", &KEY, b"", &ctx(&[])).expect("seal");
        assert!(parse(&blob).is_some());
        for len in 0..blob.len() {
            assert!(parse(&blob[..len]).is_none(), "truncated to {len} accepted");
        }
        let mut bad_version = blob.clone();
        bad_version[4] = 2;
        assert!(parse(&bad_version).is_none());
        let mut zero_id = blob;
        zero_id[5] = 0;
        assert!(parse(&zero_id).is_none());
        assert!(seal("", &KEY, b"x", &ctx(&[])).is_none());
        assert!(seal(&"k".repeat(256), &KEY, b"x", &ctx(&[])).is_none());
    }
}
