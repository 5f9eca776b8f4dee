//! The one CMS structure we read and write: an `EnvelopedData` for a single RSAES-OAEP
//! recipient with AES-256-CBC content, exactly as AWS KMS returns `CiphertextForRecipient`.
//!
//! ```text
//! ContentInfo ::= SEQUENCE { id-envelopedData, [0] EXPLICIT EnvelopedData }
//! EnvelopedData ::= SEQUENCE {
//!   version 2, -- no originatorInfo
//!   recipientInfos SET SIZE (1) OF KeyTransRecipientInfo {
//!     version 2, rid [0] SubjectKeyIdentifier,
//!     keyEncryptionAlgorithm { id-RSAES-OAEP, { [0] sha256, [1] mgf1(sha256), [2] empty label } },
//!     encryptedKey OCTET STRING },
//!   encryptedContentInfo SEQUENCE {
//!     id-data, { aes256-CBC, IV OCTET STRING (16) }, [0] IMPLICIT OCTET STRING (chunked) }
//!   -- no unprotectedAttrs
//! }
//! ```
//!
//! Parsing is purely structural (no secret is touched) so its errors may say what is wrong.
//! Anything else CMS allows (other recipient kinds, several recipients, other algorithms,
//! SHA-1 OAEP defaults, a label, originator info, attributes) is refused as unsupported.

use super::ber::{self, Element, Reader};
use super::{CmsError, MAX_ENVELOPE_LEN};

/// id-envelopedData, 1.2.840.113549.1.7.3.
const OID_ENVELOPED_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x03];
/// id-data, 1.2.840.113549.1.7.1.
const OID_DATA: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x01];
/// id-RSAES-OAEP, 1.2.840.113549.1.1.7.
const OID_RSAES_OAEP: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x07];
/// id-mgf1, 1.2.840.113549.1.1.8.
const OID_MGF1: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x08];
/// id-pSpecified, 1.2.840.113549.1.1.9.
const OID_P_SPECIFIED: &[u8] = &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x09];
/// id-sha256, 2.16.840.1.101.3.4.2.1.
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
/// id-aes256-CBC, 2.16.840.1.101.3.4.1.42.
const OID_AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2A];

/// AES block and CBC IV length.
pub(crate) const AES_BLOCK_LEN: usize = 16;
/// Longest subjectKeyIdentifier accepted (SHA-256 is 32, SHA-1 is 20).
const MAX_SKI_LEN: usize = 64;
/// Longest RSA ciphertext accepted (8192-bit modulus).
const MAX_ENCRYPTED_KEY_LEN: usize = 1024;
/// Size of the encrypted-content chunks [`encode`] writes, as KMS splits its output.
pub(crate) const CHUNK_LEN: usize = 1024;

/// The parts of a parsed envelope. Every field is ciphertext or public metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub(crate) subject_key_identifier: Vec<u8>,
    pub(crate) encrypted_key: Vec<u8>,
    pub(crate) iv: [u8; AES_BLOCK_LEN],
    pub(crate) encrypted_content: Vec<u8>,
}

impl Envelope {
    /// The recipient's subjectKeyIdentifier (for KMS: SHA-256 of its SubjectPublicKeyInfo DER).
    pub fn subject_key_identifier(&self) -> &[u8] {
        &self.subject_key_identifier
    }

    /// The RSAES-OAEP-encrypted content-encryption key.
    pub fn encrypted_key(&self) -> &[u8] {
        &self.encrypted_key
    }

    /// The AES-256-CBC initialisation vector.
    pub fn iv(&self) -> &[u8; AES_BLOCK_LEN] {
        &self.iv
    }

    /// The AES-256-CBC ciphertext, chunks concatenated.
    pub fn encrypted_content(&self) -> &[u8] {
        &self.encrypted_content
    }
}

/// Parses a BER `ContentInfo` holding the envelope.
///
/// # Errors
/// [`CmsError::TooLarge`] beyond [`MAX_ENVELOPE_LEN`], [`CmsError::Malformed`] for bad BER or
/// a structure that is not an envelope, [`CmsError::Unsupported`] for a valid envelope of a
/// kind this module does not accept.
pub(crate) fn parse(input: &[u8]) -> Result<Envelope, CmsError> {
    if input.len() > MAX_ENVELOPE_LEN {
        return Err(CmsError::TooLarge);
    }
    let mut top = Reader::new(input);
    let content_info = top.read_tag(ber::SEQUENCE, "ContentInfo is not a SEQUENCE")?;
    top.finish("trailing data after the ContentInfo")?;

    let mut content_info = content_info.children()?;
    let content_type = content_info.read_tag(ber::OID, "ContentInfo contentType missing")?;
    if content_type.content != OID_ENVELOPED_DATA {
        return Err(CmsError::Unsupported(
            "content type is not id-envelopedData",
        ));
    }
    let explicit = content_info.read_tag(
        ber::CONTEXT_0_CONSTRUCTED,
        "ContentInfo content [0] missing",
    )?;
    content_info.finish("trailing data in the ContentInfo")?;
    let mut explicit = explicit.children()?;
    let enveloped = explicit.read_tag(ber::SEQUENCE, "EnvelopedData is not a SEQUENCE")?;
    explicit.finish("trailing data after the EnvelopedData")?;

    let mut enveloped = enveloped.children()?;
    let version = read_small_integer(&mut enveloped, "EnvelopedData version")?;
    if version != 2 {
        return Err(CmsError::Unsupported("EnvelopedData version is not 2"));
    }
    if enveloped.peek_tag() == Some(ber::CONTEXT_0_CONSTRUCTED) {
        return Err(CmsError::Unsupported("originatorInfo is present"));
    }
    let recipients = enveloped.read_tag(ber::SET, "recipientInfos is not a SET")?;
    let mut recipients = recipients.children()?;
    if recipients.is_empty() {
        return Err(CmsError::Malformed("recipientInfos is empty"));
    }
    if recipients.peek_tag() != Some(ber::SEQUENCE) {
        return Err(CmsError::Unsupported(
            "the RecipientInfo is not a KeyTransRecipientInfo",
        ));
    }
    let recipient = recipients.read()?;
    if !recipients.is_empty() {
        return Err(CmsError::Unsupported("more than one RecipientInfo"));
    }
    let (subject_key_identifier, encrypted_key) = parse_key_trans_recipient(&recipient)?;

    let content = enveloped.read_tag(ber::SEQUENCE, "encryptedContentInfo is not a SEQUENCE")?;
    if !enveloped.is_empty() {
        return Err(CmsError::Unsupported(
            "unprotectedAttrs or other trailing data in the EnvelopedData",
        ));
    }
    let (iv, encrypted_content) = parse_encrypted_content_info(&content)?;

    Ok(Envelope {
        subject_key_identifier,
        encrypted_key,
        iv,
        encrypted_content,
    })
}

/// KeyTransRecipientInfo: (subjectKeyIdentifier, encryptedKey).
fn parse_key_trans_recipient(element: &Element<'_>) -> Result<(Vec<u8>, Vec<u8>), CmsError> {
    let mut ktri = element.children()?;
    let version = read_small_integer(&mut ktri, "KeyTransRecipientInfo version")?;
    let ski = match ktri.peek_tag() {
        Some(ber::CONTEXT_0 | ber::CONTEXT_0_CONSTRUCTED) => ktri.read()?.octets()?,
        Some(ber::SEQUENCE) => {
            return Err(CmsError::Unsupported(
                "recipient identified by issuer and serial number, not subjectKeyIdentifier",
            ))
        }
        _ => return Err(CmsError::Malformed("KeyTransRecipientInfo rid missing")),
    };
    if version != 2 {
        return Err(CmsError::Malformed(
            "KeyTransRecipientInfo with a subjectKeyIdentifier is not version 2",
        ));
    }
    if ski.is_empty() || ski.len() > MAX_SKI_LEN {
        return Err(CmsError::Malformed(
            "subjectKeyIdentifier length out of range",
        ));
    }

    let algorithm = ktri.read_tag(ber::SEQUENCE, "keyEncryptionAlgorithm is not a SEQUENCE")?;
    parse_oaep_algorithm(&algorithm)?;

    let encrypted_key = match ktri.peek_tag() {
        Some(ber::OCTET_STRING | ber::OCTET_STRING_CONSTRUCTED) => ktri.read()?.octets()?,
        _ => return Err(CmsError::Malformed("encryptedKey is not an OCTET STRING")),
    };
    if encrypted_key.is_empty() || encrypted_key.len() > MAX_ENCRYPTED_KEY_LEN {
        return Err(CmsError::Malformed("encryptedKey length out of range"));
    }
    ktri.finish("trailing data in the KeyTransRecipientInfo")?;
    Ok((ski, encrypted_key))
}

/// `{ id-RSAES-OAEP, { [0] sha256, [1] mgf1(sha256), [2] pSpecified(empty) OPTIONAL } }`.
/// The hash and mask functions must be explicit: their defaults are SHA-1.
fn parse_oaep_algorithm(element: &Element<'_>) -> Result<(), CmsError> {
    const NOT_OAEP_SHA256: CmsError =
        CmsError::Unsupported("key encryption is not RSAES-OAEP with SHA-256 and MGF1-SHA-256");
    let mut algorithm = element.children()?;
    let oid = algorithm.read_tag(ber::OID, "keyEncryptionAlgorithm OID missing")?;
    if oid.content != OID_RSAES_OAEP {
        return Err(NOT_OAEP_SHA256);
    }
    if algorithm.peek_tag() != Some(ber::SEQUENCE) {
        // Absent parameters mean SHA-1 everywhere.
        return Err(NOT_OAEP_SHA256);
    }
    let params = algorithm.read()?;
    algorithm.finish("trailing data in keyEncryptionAlgorithm")?;

    let mut params = params.children()?;
    if params.peek_tag() != Some(ber::CONTEXT_0_CONSTRUCTED) {
        return Err(NOT_OAEP_SHA256);
    }
    let hash = params.read()?;
    let mut hash = hash.children()?;
    let hash_algorithm = hash.read_tag(ber::SEQUENCE, "OAEP hashFunc is not a SEQUENCE")?;
    hash.finish("trailing data in OAEP hashFunc")?;
    if !is_sha256(&hash_algorithm)? {
        return Err(NOT_OAEP_SHA256);
    }

    if params.peek_tag() != Some(ber::CONTEXT_1_CONSTRUCTED) {
        return Err(NOT_OAEP_SHA256);
    }
    let mask = params.read()?;
    let mut mask = mask.children()?;
    let mask_algorithm = mask.read_tag(ber::SEQUENCE, "OAEP maskGenFunc is not a SEQUENCE")?;
    mask.finish("trailing data in OAEP maskGenFunc")?;
    let mut mask_algorithm = mask_algorithm.children()?;
    let mgf = mask_algorithm.read_tag(ber::OID, "OAEP maskGenFunc OID missing")?;
    if mgf.content != OID_MGF1 {
        return Err(NOT_OAEP_SHA256);
    }
    let mgf_hash = mask_algorithm.read_tag(ber::SEQUENCE, "MGF1 hash is not a SEQUENCE")?;
    mask_algorithm.finish("trailing data in OAEP maskGenFunc")?;
    if !is_sha256(&mgf_hash)? {
        return Err(NOT_OAEP_SHA256);
    }

    if params.peek_tag() == Some(ber::CONTEXT_2_CONSTRUCTED) {
        let source = params.read()?;
        let mut source = source.children()?;
        let source_algorithm =
            source.read_tag(ber::SEQUENCE, "OAEP pSourceFunc is not a SEQUENCE")?;
        source.finish("trailing data in OAEP pSourceFunc")?;
        let mut source_algorithm = source_algorithm.children()?;
        let oid = source_algorithm.read_tag(ber::OID, "OAEP pSourceFunc OID missing")?;
        let label = match source_algorithm.peek_tag() {
            Some(ber::OCTET_STRING | ber::OCTET_STRING_CONSTRUCTED) => {
                source_algorithm.read()?.octets()?
            }
            _ => return Err(CmsError::Malformed("OAEP label is not an OCTET STRING")),
        };
        source_algorithm.finish("trailing data in OAEP pSourceFunc")?;
        if oid.content != OID_P_SPECIFIED || !label.is_empty() {
            return Err(CmsError::Unsupported("RSAES-OAEP label is not empty"));
        }
    }
    params.finish("trailing data in RSAES-OAEP-params")
}

/// Whether an AlgorithmIdentifier is id-sha256 with absent or NULL parameters (both occur:
/// KMS writes NULL, OpenSSL omits them).
fn is_sha256(element: &Element<'_>) -> Result<bool, CmsError> {
    let mut algorithm = element.children()?;
    let oid = algorithm.read_tag(ber::OID, "hash AlgorithmIdentifier OID missing")?;
    if !algorithm.is_empty() {
        let null = algorithm.read_tag(ber::NULL, "hash parameters are not NULL")?;
        if !null.content.is_empty() {
            return Err(CmsError::Malformed("NULL with contents"));
        }
        algorithm.finish("trailing data in hash AlgorithmIdentifier")?;
    }
    Ok(oid.content == OID_SHA256)
}

/// EncryptedContentInfo: (IV, ciphertext).
fn parse_encrypted_content_info(
    element: &Element<'_>,
) -> Result<([u8; AES_BLOCK_LEN], Vec<u8>), CmsError> {
    let mut info = element.children()?;
    let content_type = info.read_tag(ber::OID, "encrypted contentType missing")?;
    if content_type.content != OID_DATA {
        return Err(CmsError::Unsupported(
            "encrypted content type is not id-data",
        ));
    }
    let algorithm = info.read_tag(
        ber::SEQUENCE,
        "contentEncryptionAlgorithm is not a SEQUENCE",
    )?;
    let mut algorithm = algorithm.children()?;
    let oid = algorithm.read_tag(ber::OID, "contentEncryptionAlgorithm OID missing")?;
    if oid.content != OID_AES256_CBC {
        return Err(CmsError::Unsupported(
            "content encryption is not AES-256-CBC",
        ));
    }
    let iv = match algorithm.peek_tag() {
        Some(ber::OCTET_STRING | ber::OCTET_STRING_CONSTRUCTED) => algorithm.read()?.octets()?,
        _ => return Err(CmsError::Malformed("AES-CBC IV is not an OCTET STRING")),
    };
    algorithm.finish("trailing data in contentEncryptionAlgorithm")?;
    let iv: [u8; AES_BLOCK_LEN] = iv
        .as_slice()
        .try_into()
        .map_err(|_| CmsError::Malformed("AES-CBC IV is not 16 bytes"))?;

    let encrypted_content = match info.peek_tag() {
        Some(ber::CONTEXT_0 | ber::CONTEXT_0_CONSTRUCTED) => info.read()?.octets()?,
        None => {
            return Err(CmsError::Unsupported(
                "encryptedContent is absent (detached)",
            ))
        }
        _ => return Err(CmsError::Malformed("encryptedContent is not [0]")),
    };
    info.finish("trailing data in encryptedContentInfo")?;
    if encrypted_content.is_empty() || encrypted_content.len() % AES_BLOCK_LEN != 0 {
        return Err(CmsError::Malformed(
            "encrypted content is not a positive number of AES blocks",
        ));
    }
    Ok((iv, encrypted_content))
}

/// Reads an INTEGER between 0 and 127 (the only versions CMS defines).
fn read_small_integer(reader: &mut Reader<'_>, what: &'static str) -> Result<u8, CmsError> {
    let integer = reader.read_tag(ber::INTEGER, what)?;
    match integer.content {
        [value] if *value < 0x80 => Ok(*value),
        _ => Err(CmsError::Malformed(what)),
    }
}

/// Encodes an envelope the way KMS does: indefinite lengths on the outer structures, the
/// recipient info in definite form, OAEP hash parameters as explicit NULLs, and the
/// ciphertext in [`CHUNK_LEN`]-byte OCTET STRING chunks.
pub(crate) fn encode(envelope: &Envelope) -> Vec<u8> {
    let mut sha256 = Vec::new();
    ber::push_tlv(&mut sha256, ber::OID, OID_SHA256);
    ber::push_tlv(&mut sha256, ber::NULL, &[]);
    let mut sha256_algorithm = Vec::new();
    ber::push_tlv(&mut sha256_algorithm, ber::SEQUENCE, &sha256);

    let mut mgf1 = Vec::new();
    ber::push_tlv(&mut mgf1, ber::OID, OID_MGF1);
    mgf1.extend_from_slice(&sha256_algorithm);
    let mut mgf1_algorithm = Vec::new();
    ber::push_tlv(&mut mgf1_algorithm, ber::SEQUENCE, &mgf1);

    let mut oaep_params = Vec::new();
    ber::push_tlv(
        &mut oaep_params,
        ber::CONTEXT_0_CONSTRUCTED,
        &sha256_algorithm,
    );
    ber::push_tlv(
        &mut oaep_params,
        ber::CONTEXT_1_CONSTRUCTED,
        &mgf1_algorithm,
    );
    let mut oaep = Vec::new();
    ber::push_tlv(&mut oaep, ber::OID, OID_RSAES_OAEP);
    ber::push_tlv(&mut oaep, ber::SEQUENCE, &oaep_params);

    let mut ktri = Vec::new();
    ber::push_tlv(&mut ktri, ber::INTEGER, &[2]);
    ber::push_tlv(&mut ktri, ber::CONTEXT_0, &envelope.subject_key_identifier);
    ber::push_tlv(&mut ktri, ber::SEQUENCE, &oaep);
    ber::push_tlv(&mut ktri, ber::OCTET_STRING, &envelope.encrypted_key);
    let mut recipient = Vec::new();
    ber::push_tlv(&mut recipient, ber::SEQUENCE, &ktri);

    let mut aes = Vec::new();
    ber::push_tlv(&mut aes, ber::OID, OID_AES256_CBC);
    ber::push_tlv(&mut aes, ber::OCTET_STRING, &envelope.iv);

    let mut out = Vec::with_capacity(envelope.encrypted_content.len() + 512);
    ber::push_indefinite(&mut out, ber::SEQUENCE); // ContentInfo
    ber::push_tlv(&mut out, ber::OID, OID_ENVELOPED_DATA);
    ber::push_indefinite(&mut out, ber::CONTEXT_0_CONSTRUCTED);
    ber::push_indefinite(&mut out, ber::SEQUENCE); // EnvelopedData
    ber::push_tlv(&mut out, ber::INTEGER, &[2]);
    ber::push_tlv(&mut out, ber::SET, &recipient);
    ber::push_indefinite(&mut out, ber::SEQUENCE); // EncryptedContentInfo
    ber::push_tlv(&mut out, ber::OID, OID_DATA);
    ber::push_tlv(&mut out, ber::SEQUENCE, &aes);
    ber::push_indefinite(&mut out, ber::CONTEXT_0_CONSTRUCTED); // encryptedContent
    for chunk in envelope.encrypted_content.chunks(CHUNK_LEN) {
        ber::push_tlv(&mut out, ber::OCTET_STRING, chunk);
    }
    for _ in 0..5 {
        ber::push_end_of_contents(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn sample() -> Envelope {
        Envelope {
            subject_key_identifier: vec![0x5A; 32],
            encrypted_key: vec![0xEE; 256],
            iv: [0x11; 16],
            encrypted_content: (0..2080u32).map(|i| i as u8).collect(),
        }
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let envelope = sample();
        let encoded = encode(&envelope);
        assert_eq!(parse(&encoded).unwrap(), envelope);
        // Outer structures use indefinite lengths, as KMS does.
        assert_eq!(&encoded[..4], &[0x30, 0x80, 0x06, 0x09]);
        assert_eq!(&encoded[encoded.len() - 10..], &[0; 10]);
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        assert!(matches!(
            parse(&vec![0x30; MAX_ENVELOPE_LEN + 1]),
            Err(CmsError::TooLarge)
        ));
    }

    #[test]
    fn sha256_identifier_forms() {
        let check = |bytes: &[u8]| {
            let mut r = Reader::new(bytes);
            is_sha256(&r.read().unwrap())
        };
        let mut absent = Vec::new();
        ber::push_tlv(&mut absent, ber::OID, OID_SHA256);
        let mut with_null = absent.clone();
        ber::push_tlv(&mut with_null, ber::NULL, &[]);
        let mut sha1 = Vec::new();
        ber::push_tlv(&mut sha1, ber::OID, &[0x2B, 0x0E, 0x03, 0x02, 0x1A]);
        let mut bad_params = absent.clone();
        ber::push_tlv(&mut bad_params, ber::OCTET_STRING, &[]);
        let wrap = |c: &[u8]| {
            let mut o = Vec::new();
            ber::push_tlv(&mut o, ber::SEQUENCE, c);
            o
        };
        assert!(check(&wrap(&absent)).unwrap());
        assert!(check(&wrap(&with_null)).unwrap());
        assert!(!check(&wrap(&sha1)).unwrap());
        assert!(check(&wrap(&bad_params)).is_err());
    }
}
