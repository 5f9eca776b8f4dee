//! A minimal deterministic CBOR encoder for the few shapes an attestation document needs.
//!
//! Decoding untrusted bytes goes through `ciborium` (see [`crate::document`]); encoding is ours
//! because it is tiny, infallible (no I/O error to handle when writing into a `Vec`) and always
//! produces the shortest-form heads the NSM itself emits.

/// Major types (RFC 8949 §3.1).
const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
/// Simple value `null` (major type 7, value 22).
const NULL: u8 = 0xf6;

fn head(out: &mut Vec<u8>, major: u8, value: u64) {
    let major = major << 5;
    if value < 24 {
        // Fits in the additional-information bits; the cast cannot truncate.
        out.push(major | value as u8);
    } else if let Ok(v) = u8::try_from(value) {
        out.push(major | 24);
        out.push(v);
    } else if let Ok(v) = u16::try_from(value) {
        out.push(major | 25);
        out.extend_from_slice(&v.to_be_bytes());
    } else if let Ok(v) = u32::try_from(value) {
        out.push(major | 26);
        out.extend_from_slice(&v.to_be_bytes());
    } else {
        out.push(major | 27);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

fn len(n: usize) -> u64 {
    // usize is at most 64 bits on every supported target.
    u64::try_from(n).unwrap_or(u64::MAX)
}

pub(crate) fn uint(out: &mut Vec<u8>, value: u64) {
    head(out, UNSIGNED, value);
}

/// Encodes a negative integer `value` (< 0).
pub(crate) fn nint(out: &mut Vec<u8>, value: i64) {
    // CBOR stores -1 - n; for value < 0 that is !value as u64 (two's complement).
    head(out, NEGATIVE, !value as u64);
}

pub(crate) fn bytes(out: &mut Vec<u8>, value: &[u8]) {
    head(out, BYTES, len(value.len()));
    out.extend_from_slice(value);
}

pub(crate) fn text(out: &mut Vec<u8>, value: &str) {
    head(out, TEXT, len(value.len()));
    out.extend_from_slice(value.as_bytes());
}

pub(crate) fn array(out: &mut Vec<u8>, items: usize) {
    head(out, ARRAY, len(items));
}

pub(crate) fn map(out: &mut Vec<u8>, entries: usize) {
    head(out, MAP, len(entries));
}

pub(crate) fn null(out: &mut Vec<u8>) {
    out.push(NULL);
}

pub(crate) fn opt_bytes(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(v) => bytes(out, v),
        None => null(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        f(&mut out);
        out
    }

    #[test]
    fn rfc8949_appendix_a_vectors() {
        assert_eq!(enc(|o| uint(o, 0)), [0x00]);
        assert_eq!(enc(|o| uint(o, 23)), [0x17]);
        assert_eq!(enc(|o| uint(o, 24)), [0x18, 0x18]);
        assert_eq!(enc(|o| uint(o, 1000)), [0x19, 0x03, 0xe8]);
        assert_eq!(enc(|o| uint(o, 1_000_000)), [0x1a, 0x00, 0x0f, 0x42, 0x40]);
        assert_eq!(
            enc(|o| uint(o, 1_000_000_000_000)),
            [0x1b, 0x00, 0x00, 0x00, 0xe8, 0xd4, 0xa5, 0x10, 0x00]
        );
        assert_eq!(enc(|o| nint(o, -1)), [0x20]);
        assert_eq!(enc(|o| nint(o, -35)), [0x38, 0x22]);
        assert_eq!(enc(|o| nint(o, -1000)), [0x39, 0x03, 0xe7]);
        assert_eq!(enc(|o| bytes(o, &[1, 2, 3, 4])), [0x44, 1, 2, 3, 4]);
        assert_eq!(enc(|o| text(o, "IETF")), [0x64, b'I', b'E', b'T', b'F']);
        assert_eq!(enc(|o| array(o, 3)), [0x83]);
        assert_eq!(enc(|o| map(o, 2)), [0xa2]);
        assert_eq!(enc(null), [0xf6]);
    }

    #[test]
    fn ciborium_reads_what_we_write() {
        let mut out = Vec::new();
        array(&mut out, 3);
        nint(&mut out, i64::MIN);
        uint(&mut out, u64::MAX);
        opt_bytes(&mut out, None);
        let value: ciborium::Value = ciborium::from_reader(out.as_slice()).expect("decodes");
        let ciborium::Value::Array(items) = value else {
            panic!("not an array")
        };
        assert_eq!(items[0], ciborium::Value::Integer(i64::MIN.into()));
        assert_eq!(items[1], ciborium::Value::Integer(u64::MAX.into()));
        assert_eq!(items[2], ciborium::Value::Null);
    }
}
