//! The NSM attestation document: model, strict parser and encoder.
//!
//! The NSM returns an **untagged COSE_Sign1** (RFC 9052 §4.2):
//! `[protected: bstr, unprotected: {}, payload: bstr, signature: bstr]`, where `protected`
//! encodes `{1: -35}` (alg ES384) and `signature` is the 96-byte `r || s` of ECDSA P-384 over
//! the `Sig_structure`. The payload is a CBOR map (AWS's CDDL, abridged):
//!
//! ```text
//! { module_id: text, digest: "SHA384", timestamp: uint (ms), pcrs: { + 0..31 => bstr(48) },
//!   certificate: bstr(1..1024), cabundle: [ + bstr(1..1024) ] (root first),
//!   ? public_key: bstr / null, ? user_data: bstr / null, ? nonce: bstr / null }
//! ```
//!
//! These bytes arrive from the network (clients verifying an enclave, the KMS emulator), so the
//! parser is strict and bounded: every length has a limit, unknown or duplicate fields and any
//! other type are refused, trailing bytes are refused, and no input can make it panic (a
//! proptest and a fuzz target check that). Parsing proves nothing about authenticity: use
//! [`crate::verify()`] for that.

use std::collections::BTreeMap;

use ciborium::value::Integer;
use ciborium::Value;

use crate::cbor;
use crate::error::AttestationError;

/// Largest accepted document, in bytes (real ones are about 4.5 KiB).
pub const MAX_DOCUMENT_LEN: usize = 16 * 1024;
/// Largest number of PCRs in a document (indexes 0..=31).
pub const MAX_PCRS: usize = 32;
/// Largest PCR index.
pub const MAX_PCR_INDEX: u8 = 31;
/// Length of a PCR with the SHA-384 digest the NSM uses.
pub const PCR_LEN: usize = 48;
/// Largest number of certificates in `cabundle`.
pub const MAX_CABUNDLE_LEN: usize = 8;
/// Largest DER certificate (`cert = bytes .size (1..1024)` in AWS's CDDL).
pub const MAX_CERT_LEN: usize = 1024;
/// Largest `public_key`, `user_data` or `nonce` (AWS's CDDL and the NSM's own limit).
pub const MAX_BOUND_DATA_LEN: usize = 1024;
/// Largest `module_id`.
pub const MAX_MODULE_ID_LEN: usize = 256;
/// Length of an ES384 COSE signature (`r || s`, 48 bytes each).
pub const SIGNATURE_LEN: usize = 96;
/// COSE algorithm identifier of ES384 (ECDSA P-384 with SHA-384).
pub const COSE_ALG_ES384: i64 = -35;
/// The only digest the NSM uses for PCRs.
pub const DIGEST_SHA384: &str = "SHA384";

/// Deepest CBOR nesting accepted (the document needs 3: array > map > map).
const RECURSION_LIMIT: usize = 8;
/// Most entries in the payload map (9 fields are defined).
const MAX_PAYLOAD_FIELDS: usize = 16;

/// A platform configuration register value (SHA-384).
pub type Pcr = [u8; PCR_LEN];

/// The payload of an attestation document: what the NSM attests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationDocument {
    /// Identifier of the NSM that issued the document (`i-…-enc…` on AWS).
    pub module_id: String,
    /// Milliseconds since the UNIX epoch at which the NSM produced the document.
    pub timestamp: u64,
    /// PCR index → value. PCR0 measures the enclave image, PCR1 the kernel and bootstrap,
    /// PCR2 the application, PCR3 the parent's IAM role, PCR4 the parent instance, PCR8 the
    /// signing certificate.
    pub pcrs: BTreeMap<u8, Pcr>,
    /// The leaf certificate (DER) whose key signed the document.
    pub certificate: Vec<u8>,
    /// The issuing chain (DER), root first, leaf's issuer last.
    pub cabundle: Vec<Vec<u8>>,
    /// A public key the enclave binds to the document (KMS encrypts responses to it).
    pub public_key: Option<Vec<u8>>,
    /// Application data the enclave binds to the document.
    pub user_data: Option<Vec<u8>>,
    /// The requester's nonce, for freshness.
    pub nonce: Option<Vec<u8>>,
}

/// A parsed COSE_Sign1 attestation document: the signed bytes as they were, and the decoded
/// payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDocument {
    /// The serialized protected header (covered by the signature).
    pub protected: Vec<u8>,
    /// The serialized payload (covered by the signature).
    pub payload: Vec<u8>,
    /// ES384 signature, `r || s`.
    pub signature: [u8; SIGNATURE_LEN],
    /// The decoded payload.
    pub document: AttestationDocument,
}

impl SignedDocument {
    /// Parses an untagged COSE_Sign1 attestation document, strictly and within the bounds of
    /// this module. Does **not** check any signature.
    ///
    /// # Errors
    ///
    /// [`AttestationError::TooLarge`] above [`MAX_DOCUMENT_LEN`];
    /// [`AttestationError::UnsupportedAlgorithm`] if the protected header names another
    /// algorithm than ES384 or the digest is not SHA384; [`AttestationError::Malformed`] for
    /// anything else that is not exactly the NSM's format.
    pub fn parse(bytes: &[u8]) -> Result<Self, AttestationError> {
        if bytes.len() > MAX_DOCUMENT_LEN {
            return Err(AttestationError::TooLarge {
                len: bytes.len(),
                max: MAX_DOCUMENT_LEN,
            });
        }
        let Value::Array(items) = decode_exact(bytes)? else {
            return Err(malformed(
                "document is not a CBOR array (untagged COSE_Sign1)",
            ));
        };
        let [protected, unprotected, payload, signature]: [Value; 4] = items
            .try_into()
            .map_err(|_| malformed("COSE_Sign1 must have exactly 4 elements"))?;

        let Value::Bytes(protected) = protected else {
            return Err(malformed("protected header is not a byte string"));
        };
        check_protected_header(&protected)?;
        match unprotected {
            Value::Map(entries) if entries.is_empty() => {}
            Value::Map(_) => return Err(malformed("unprotected header is not empty")),
            _ => return Err(malformed("unprotected header is not a map")),
        }
        let Value::Bytes(payload) = payload else {
            return Err(malformed("payload is not a byte string"));
        };
        let Value::Bytes(signature) = signature else {
            return Err(malformed("signature is not a byte string"));
        };
        let signature: [u8; SIGNATURE_LEN] = signature
            .try_into()
            .map_err(|_| malformed("signature is not 96 bytes (ES384 r || s)"))?;
        let document = AttestationDocument::from_payload(&payload)?;
        Ok(Self {
            protected,
            payload,
            signature,
            document,
        })
    }

    /// Builds a document from a payload and a signing function, as the NSM does: the protected
    /// header is `{1: -35}`, the unprotected header empty, and `sign` receives the
    /// `Sig_structure` to sign with ES384.
    ///
    /// # Errors
    ///
    /// Whatever `sign` returns.
    pub fn sign<E>(
        document: AttestationDocument,
        sign: impl FnOnce(&[u8]) -> Result<[u8; SIGNATURE_LEN], E>,
    ) -> Result<Self, E> {
        let mut protected = Vec::with_capacity(4);
        cbor::map(&mut protected, 1);
        cbor::uint(&mut protected, 1);
        cbor::nint(&mut protected, COSE_ALG_ES384);
        let payload = document.to_payload();
        let signature = sign(&sig_structure(&protected, &payload))?;
        Ok(Self {
            protected,
            payload,
            signature,
            document,
        })
    }

    /// The bytes the signature covers: the COSE `Sig_structure`
    /// `["Signature1", protected, external_aad = h'', payload]`.
    pub fn sig_structure(&self) -> Vec<u8> {
        sig_structure(&self.protected, &self.payload)
    }

    /// Serializes the untagged COSE_Sign1, as the NSM returns it.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(self.protected.len() + self.payload.len() + SIGNATURE_LEN + 16);
        cbor::array(&mut out, 4);
        cbor::bytes(&mut out, &self.protected);
        cbor::map(&mut out, 0);
        cbor::bytes(&mut out, &self.payload);
        cbor::bytes(&mut out, &self.signature);
        out
    }
}

impl AttestationDocument {
    /// Decodes a payload map, strictly (see the module docs).
    ///
    /// # Errors
    ///
    /// [`AttestationError::Malformed`] or [`AttestationError::UnsupportedAlgorithm`] (digest
    /// other than SHA384).
    pub fn from_payload(payload: &[u8]) -> Result<Self, AttestationError> {
        let Value::Map(entries) = decode_exact(payload)? else {
            return Err(malformed("payload is not a CBOR map"));
        };
        if entries.len() > MAX_PAYLOAD_FIELDS {
            return Err(malformed("payload has too many fields"));
        }
        let mut module_id = None;
        let mut digest = None;
        let mut timestamp = None;
        let mut pcrs = None;
        let mut certificate = None;
        let mut cabundle = None;
        let mut public_key = None;
        let mut user_data = None;
        let mut nonce = None;
        for (key, value) in entries {
            let Value::Text(key) = key else {
                return Err(malformed("payload key is not a text string"));
            };
            match key.as_str() {
                "module_id" => set_once(&mut module_id, module_id_of(value)?)?,
                "digest" => set_once(&mut digest, digest_of(value)?)?,
                "timestamp" => set_once(&mut timestamp, timestamp_of(value)?)?,
                "pcrs" => set_once(&mut pcrs, pcrs_of(value)?)?,
                "certificate" => set_once(&mut certificate, cert_of(value, LEAF_ERRORS)?)?,
                "cabundle" => set_once(&mut cabundle, cabundle_of(value)?)?,
                "public_key" => set_once(&mut public_key, bound_data_of(value, "public_key")?)?,
                "user_data" => set_once(&mut user_data, bound_data_of(value, "user_data")?)?,
                "nonce" => set_once(&mut nonce, bound_data_of(value, "nonce")?)?,
                _ => return Err(malformed("unknown field in payload")),
            }
        }
        digest.ok_or(malformed("payload lacks digest"))?;
        Ok(Self {
            module_id: module_id.ok_or(malformed("payload lacks module_id"))?,
            timestamp: timestamp.ok_or(malformed("payload lacks timestamp"))?,
            pcrs: pcrs.ok_or(malformed("payload lacks pcrs"))?,
            certificate: certificate.ok_or(malformed("payload lacks certificate"))?,
            cabundle: cabundle.ok_or(malformed("payload lacks cabundle"))?,
            public_key: public_key.flatten(),
            user_data: user_data.flatten(),
            nonce: nonce.flatten(),
        })
    }

    /// Encodes the payload map in the NSM's field order, `null` for absent optional fields.
    pub fn to_payload(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            256 + self.certificate.len() + self.cabundle.iter().map(Vec::len).sum::<usize>(),
        );
        cbor::map(&mut out, 9);
        cbor::text(&mut out, "module_id");
        cbor::text(&mut out, &self.module_id);
        cbor::text(&mut out, "digest");
        cbor::text(&mut out, DIGEST_SHA384);
        cbor::text(&mut out, "timestamp");
        cbor::uint(&mut out, self.timestamp);
        cbor::text(&mut out, "pcrs");
        cbor::map(&mut out, self.pcrs.len());
        for (index, value) in &self.pcrs {
            cbor::uint(&mut out, u64::from(*index));
            cbor::bytes(&mut out, value);
        }
        cbor::text(&mut out, "certificate");
        cbor::bytes(&mut out, &self.certificate);
        cbor::text(&mut out, "cabundle");
        cbor::array(&mut out, self.cabundle.len());
        for cert in &self.cabundle {
            cbor::bytes(&mut out, cert);
        }
        cbor::text(&mut out, "public_key");
        cbor::opt_bytes(&mut out, self.public_key.as_deref());
        cbor::text(&mut out, "user_data");
        cbor::opt_bytes(&mut out, self.user_data.as_deref());
        cbor::text(&mut out, "nonce");
        cbor::opt_bytes(&mut out, self.nonce.as_deref());
        out
    }

    /// The value of PCR `index`, if the document has it.
    pub fn pcr(&self, index: u8) -> Option<&Pcr> {
        self.pcrs.get(&index)
    }

    /// True when PCR0, PCR1 and PCR2 are all present and zero: the NSM reports a debug-mode
    /// enclave that way (its memory is readable from the parent instance).
    pub fn is_debug(&self) -> bool {
        (0..=2).all(|i| self.pcr(i).is_some_and(|v| v.iter().all(|b| *b == 0)))
    }
}

fn malformed(reason: &'static str) -> AttestationError {
    AttestationError::Malformed(reason)
}

fn sig_structure(protected: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(protected.len() + payload.len() + 32);
    cbor::array(&mut out, 4);
    cbor::text(&mut out, "Signature1");
    cbor::bytes(&mut out, protected);
    cbor::bytes(&mut out, &[]);
    cbor::bytes(&mut out, payload);
    out
}

/// Decodes exactly one CBOR item spanning all of `bytes`.
fn decode_exact(bytes: &[u8]) -> Result<Value, AttestationError> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, RECURSION_LIMIT)
        .map_err(|_| malformed("invalid CBOR"))?;
    if !rest.is_empty() {
        return Err(malformed("trailing bytes after CBOR item"));
    }
    Ok(value)
}

fn check_protected_header(protected: &[u8]) -> Result<(), AttestationError> {
    if protected.len() > 64 {
        return Err(malformed("protected header too large"));
    }
    let Value::Map(entries) = decode_exact(protected)? else {
        return Err(malformed("protected header is not a CBOR map"));
    };
    let [(label, alg)]: [(Value, Value); 1] = entries
        .try_into()
        .map_err(|_| malformed("protected header must hold exactly the algorithm"))?;
    if label != Value::Integer(1.into()) {
        return Err(malformed(
            "protected header must hold exactly the algorithm",
        ));
    }
    match alg {
        Value::Integer(alg) if alg == Integer::from(COSE_ALG_ES384) => Ok(()),
        Value::Integer(_) | Value::Text(_) => Err(AttestationError::UnsupportedAlgorithm(
            "COSE algorithm is not ES384",
        )),
        _ => Err(malformed("COSE algorithm is not an integer or text")),
    }
}

fn set_once<T>(slot: &mut Option<T>, value: T) -> Result<(), AttestationError> {
    if slot.is_some() {
        return Err(malformed("duplicate field in payload"));
    }
    *slot = Some(value);
    Ok(())
}

fn module_id_of(value: Value) -> Result<String, AttestationError> {
    match value {
        Value::Text(s) if !s.is_empty() && s.len() <= MAX_MODULE_ID_LEN => Ok(s),
        Value::Text(_) => Err(malformed("module_id is empty or too long")),
        _ => Err(malformed("module_id is not a text string")),
    }
}

fn digest_of(value: Value) -> Result<(), AttestationError> {
    match value {
        Value::Text(s) if s == DIGEST_SHA384 => Ok(()),
        Value::Text(_) => Err(AttestationError::UnsupportedAlgorithm(
            "PCR digest is not SHA384",
        )),
        _ => Err(malformed("digest is not a text string")),
    }
}

fn timestamp_of(value: Value) -> Result<u64, AttestationError> {
    match value {
        Value::Integer(i) => u64::try_from(i).map_err(|_| malformed("timestamp is negative")),
        _ => Err(malformed("timestamp is not an unsigned integer")),
    }
}

fn pcrs_of(value: Value) -> Result<BTreeMap<u8, Pcr>, AttestationError> {
    let Value::Map(entries) = value else {
        return Err(malformed("pcrs is not a map"));
    };
    if entries.is_empty() || entries.len() > MAX_PCRS {
        return Err(malformed("pcrs must hold 1 to 32 registers"));
    }
    let mut pcrs = BTreeMap::new();
    for (index, pcr) in entries {
        let index = match index {
            Value::Integer(i) => u8::try_from(i)
                .ok()
                .filter(|i| *i <= MAX_PCR_INDEX)
                .ok_or(malformed("PCR index out of range 0..=31"))?,
            _ => return Err(malformed("PCR index is not an integer")),
        };
        let pcr: Pcr = match pcr {
            Value::Bytes(b) => b.try_into().map_err(|_| malformed("PCR is not 48 bytes"))?,
            _ => return Err(malformed("PCR is not a byte string")),
        };
        if pcrs.insert(index, pcr).is_some() {
            return Err(malformed("duplicate PCR index"));
        }
    }
    Ok(pcrs)
}

/// Reasons for a bad certificate entry: (wrong size, wrong type).
type CertErrors = (&'static str, &'static str);
const LEAF_ERRORS: CertErrors = (
    "certificate is empty or larger than 1024 bytes",
    "certificate is not a byte string",
);
const BUNDLE_ERRORS: CertErrors = (
    "cabundle certificate is empty or larger than 1024 bytes",
    "cabundle certificate is not a byte string",
);

fn cert_of(value: Value, (size, kind): CertErrors) -> Result<Vec<u8>, AttestationError> {
    match value {
        Value::Bytes(b) if !b.is_empty() && b.len() <= MAX_CERT_LEN => Ok(b),
        Value::Bytes(_) => Err(malformed(size)),
        _ => Err(malformed(kind)),
    }
}

fn cabundle_of(value: Value) -> Result<Vec<Vec<u8>>, AttestationError> {
    let Value::Array(items) = value else {
        return Err(malformed("cabundle is not an array"));
    };
    if items.is_empty() || items.len() > MAX_CABUNDLE_LEN {
        return Err(malformed("cabundle must hold 1 to 8 certificates"));
    }
    items
        .into_iter()
        .map(|v| cert_of(v, BUNDLE_ERRORS))
        .collect()
}

/// `public_key`, `user_data`, `nonce`: a bounded byte string, or `null`.
fn bound_data_of(value: Value, what: &'static str) -> Result<Option<Vec<u8>>, AttestationError> {
    match value {
        Value::Null => Ok(None),
        Value::Bytes(b) if b.len() <= MAX_BOUND_DATA_LEN => Ok(Some(b)),
        Value::Bytes(_) => Err(AttestationError::Malformed(match what {
            "public_key" => "public_key is larger than 1024 bytes",
            "user_data" => "user_data is larger than 1024 bytes",
            _ => "nonce is larger than 1024 bytes",
        })),
        _ => Err(AttestationError::Malformed(match what {
            "public_key" => "public_key is not a byte string or null",
            "user_data" => "user_data is not a byte string or null",
            _ => "nonce is not a byte string or null",
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed document with fake certificates (parsing does not look inside them).
    fn sample() -> AttestationDocument {
        AttestationDocument {
            module_id: "i-0123456789abcdef0-enc0123456789abcdef".to_owned(),
            timestamp: 1_665_651_482_136,
            pcrs: (0..16).map(|i| (i, [i; PCR_LEN])).collect(),
            certificate: vec![0x30; 600],
            cabundle: vec![vec![0x30; 500]; 4],
            public_key: Some(vec![1; 294]),
            user_data: None,
            nonce: Some(vec![2; 32]),
        }
    }

    fn signed(document: AttestationDocument) -> SignedDocument {
        SignedDocument::sign(document, |_| Ok::<_, ()>([7; SIGNATURE_LEN])).expect("infallible")
    }

    /// A COSE_Sign1 around raw payload bytes.
    fn wrap(payload: &[u8]) -> Vec<u8> {
        let mut signed = signed(sample());
        signed.payload = payload.to_vec();
        signed.to_bytes()
    }

    /// Writes one CBOR value.
    type Writer<'a> = &'a dyn Fn(&mut Vec<u8>);
    /// A payload field: name and value writer.
    type Field<'a> = (&'a str, Writer<'a>);

    /// A payload map built field by field.
    fn payload(fields: &[Field<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        cbor::map(&mut out, fields.len());
        for (name, write) in fields {
            cbor::text(&mut out, name);
            write(&mut out);
        }
        out
    }

    fn text(v: &'static str) -> impl Fn(&mut Vec<u8>) {
        move |o: &mut Vec<u8>| cbor::text(o, v)
    }
    fn bytes(v: Vec<u8>) -> impl Fn(&mut Vec<u8>) {
        move |o: &mut Vec<u8>| cbor::bytes(o, &v)
    }
    fn pcrs(entries: Vec<(u64, usize)>) -> impl Fn(&mut Vec<u8>) {
        move |o: &mut Vec<u8>| {
            cbor::map(o, entries.len());
            for (index, len) in &entries {
                cbor::uint(o, *index);
                cbor::bytes(o, &vec![0; *len]);
            }
        }
    }
    fn certs(n: usize, len: usize) -> impl Fn(&mut Vec<u8>) {
        move |o: &mut Vec<u8>| {
            cbor::array(o, n);
            for _ in 0..n {
                cbor::bytes(o, &vec![0x30; len]);
            }
        }
    }
    fn timestamp(o: &mut Vec<u8>) {
        cbor::uint(o, 1);
    }

    /// `base` with field `name` replaced by (or added as) `value`, parsed.
    fn with_field(
        base: &[Field<'_>],
        name: &str,
        value: Writer<'_>,
    ) -> Result<(), AttestationError> {
        let mut fields: Vec<Field<'_>> = base.iter().filter(|(n, _)| *n != name).copied().collect();
        fields.push((name, value));
        parse_payload(&fields)
    }

    fn parse_payload(fields: &[Field<'_>]) -> Result<(), AttestationError> {
        SignedDocument::parse(&wrap(&payload(fields))).map(drop)
    }

    #[test]
    fn round_trip() {
        let signed = signed(sample());
        let parsed = SignedDocument::parse(&signed.to_bytes()).expect("parses");
        assert_eq!(parsed, signed);
        assert_eq!(parsed.document, sample());
        assert!(!parsed.document.is_debug());
    }

    #[test]
    fn minimal_payload_parses_and_optional_fields_may_be_absent() {
        let pcr = pcrs(vec![(0, 48)]);
        let (module_id, digest, cert, bundle) = (
            text("m"),
            text("SHA384"),
            bytes(vec![0x30; 10]),
            certs(1, 10),
        );
        let fields: [Field<'_>; 6] = [
            ("module_id", &module_id),
            ("digest", &digest),
            ("timestamp", &timestamp),
            ("pcrs", &pcr),
            ("certificate", &cert),
            ("cabundle", &bundle),
        ];
        let doc = SignedDocument::parse(&wrap(&payload(&fields)))
            .expect("parses")
            .document;
        assert_eq!(
            (doc.public_key, doc.user_data, doc.nonce),
            (None, None, None)
        );
        for skip in 0..fields.len() {
            let partial: Vec<_> = fields
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, f)| *f)
                .collect();
            assert!(
                parse_payload(&partial).is_err(),
                "without {}",
                fields[skip].0
            );
        }
    }

    #[test]
    fn payload_fields_are_strict() {
        let ok_pcrs = pcrs(vec![(0, 48)]);
        let (module_id, digest, cert, bundle) = (
            text("m"),
            text("SHA384"),
            bytes(vec![0x30; 10]),
            certs(1, 10),
        );
        let base: Vec<Field<'_>> = vec![
            ("module_id", &module_id),
            ("digest", &digest),
            ("timestamp", &timestamp),
            ("pcrs", &ok_pcrs),
            ("certificate", &cert),
            ("cabundle", &bundle),
        ];
        assert_eq!(
            with_field(&base, "digest", &text("SHA256")),
            Err(AttestationError::UnsupportedAlgorithm(
                "PCR digest is not SHA384"
            ))
        );
        assert!(with_field(&base, "module_id", &text("")).is_err());
        assert!(with_field(&base, "module_id", &bytes(b"m".to_vec())).is_err());
        assert!(with_field(&base, "timestamp", &|o: &mut Vec<u8>| cbor::nint(o, -1)).is_err());
        assert!(with_field(&base, "pcrs", &pcrs(vec![])).is_err());
        assert!(with_field(&base, "pcrs", &pcrs(vec![(32, 48)])).is_err());
        assert!(with_field(&base, "pcrs", &pcrs(vec![(0, 32)])).is_err());
        assert!(with_field(&base, "pcrs", &pcrs(vec![(0, 48), (0, 48)])).is_err());
        assert!(with_field(
            &base,
            "pcrs",
            &pcrs((0..33).map(|i| (i % 32, 48)).collect())
        )
        .is_err());
        assert!(with_field(&base, "pcrs", &pcrs((0..32).map(|i| (i, 48)).collect())).is_ok());
        assert!(with_field(&base, "certificate", &bytes(vec![])).is_err());
        assert!(with_field(&base, "certificate", &bytes(vec![0x30; 1025])).is_err());
        assert!(with_field(&base, "certificate", &bytes(vec![0x30; 1024])).is_ok());
        assert!(with_field(&base, "cabundle", &certs(0, 10)).is_err());
        assert!(with_field(&base, "cabundle", &certs(9, 10)).is_err());
        assert!(with_field(&base, "cabundle", &certs(8, 10)).is_ok());
        assert!(with_field(&base, "nonce", &bytes(vec![0; 1025])).is_err());
        assert!(with_field(&base, "nonce", &text("n")).is_err());
        assert!(with_field(&base, "nonce", &|o: &mut Vec<u8>| cbor::null(o)).is_ok());
        assert_eq!(
            with_field(&base, "extra", &text("x")),
            Err(AttestationError::Malformed("unknown field in payload"))
        );
        // A duplicate field.
        let mut fields = base.clone();
        fields.push(("module_id", &module_id));
        assert_eq!(
            parse_payload(&fields),
            Err(AttestationError::Malformed("duplicate field in payload"))
        );
    }

    #[test]
    fn envelope_is_strict() {
        let good = signed(sample());
        let mut bytes = good.to_bytes();

        // Tagged COSE_Sign1 (tag 18) is not what the NSM sends.
        let mut tagged = vec![0xd2];
        tagged.extend_from_slice(&bytes);
        assert!(SignedDocument::parse(&tagged).is_err());

        // Another algorithm.
        let mut other = good.clone();
        other.protected = vec![0xa1, 0x01, 0x26]; // {1: -7} ES256
        assert_eq!(
            SignedDocument::parse(&other.to_bytes()),
            Err(AttestationError::UnsupportedAlgorithm(
                "COSE algorithm is not ES384"
            ))
        );
        other.protected = vec![0xa2, 0x01, 0x38, 0x22, 0x04, 0x41, 0x00]; // extra header
        assert!(SignedDocument::parse(&other.to_bytes()).is_err());

        // A non-empty unprotected header.
        let mut out = Vec::new();
        cbor::array(&mut out, 4);
        cbor::bytes(&mut out, &good.protected);
        cbor::map(&mut out, 1);
        cbor::uint(&mut out, 4);
        cbor::bytes(&mut out, b"kid");
        cbor::bytes(&mut out, &good.payload);
        cbor::bytes(&mut out, &good.signature);
        assert!(SignedDocument::parse(&out).is_err());

        // A short signature.
        let mut out = Vec::new();
        cbor::array(&mut out, 4);
        cbor::bytes(&mut out, &good.protected);
        cbor::map(&mut out, 0);
        cbor::bytes(&mut out, &good.payload);
        cbor::bytes(&mut out, &good.signature[..64]);
        assert!(SignedDocument::parse(&out).is_err());

        // Trailing bytes, and too large an input.
        bytes.push(0);
        assert_eq!(
            SignedDocument::parse(&bytes),
            Err(AttestationError::Malformed(
                "trailing bytes after CBOR item"
            ))
        );
        assert!(matches!(
            SignedDocument::parse(&vec![0; MAX_DOCUMENT_LEN + 1]),
            Err(AttestationError::TooLarge { .. })
        ));
    }

    #[test]
    fn deep_nesting_and_huge_claimed_lengths_are_refused() {
        // 10 000 nested arrays: refused by the recursion limit, no stack overflow.
        let deep = vec![0x81; 10_000];
        assert!(SignedDocument::parse(&deep).is_err());
        // A byte string claiming 2^63 bytes: refused without allocating it.
        let huge = [0x84, 0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0];
        assert!(SignedDocument::parse(&huge).is_err());
        // An array claiming 2^32 elements.
        let many = [0x9a, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert!(SignedDocument::parse(&many).is_err());
    }

    #[test]
    fn debug_mode_needs_pcr0_to_2_zero() {
        let mut doc = sample();
        assert!(!doc.is_debug());
        for i in 0..3 {
            doc.pcrs.insert(i, [0; PCR_LEN]);
        }
        assert!(doc.is_debug());
        doc.pcrs.insert(2, [1; PCR_LEN]);
        assert!(!doc.is_debug());
        doc.pcrs.remove(&2);
        assert!(!doc.is_debug());
    }
}
