//! Verification of attestation documents against a pinned root.
//!
//! [`verify()`] accepts a document only if all of this holds:
//!
//! 1. it parses strictly ([`SignedDocument::parse`]);
//! 2. its chain — `certificate`, then `cabundle` from last to first — ends at the pinned root:
//!    the first `cabundle` entry is byte-for-byte the trust anchor of [`VerifyOptions::root`];
//! 3. every certificate is issued by the next one (issuer name and an ECDSA P-384 / SHA-384
//!    signature over its TBS bytes), every issuer is a CA (basic constraints `cA`, `keyCertSign`
//!    when key usage is present, path length respected), no certificate carries a critical
//!    extension this verifier does not understand;
//! 4. every certificate is valid at [`VerifyOptions::at`] — the clock is an input, because NSM
//!    leaf certificates live about three hours and a stored document must be checkable at its own
//!    time;
//! 5. the COSE_Sign1 ES384 signature over the `Sig_structure` verifies with the leaf's key;
//! 6. the enclave is not in debug mode (PCR0–2 zero) unless [`VerifyOptions::allow_debug`];
//! 7. the expected PCRs, nonce, public key and user data match.
//!
//! Each failure has its own [`AttestationError`] variant. PCR values are public, so they are
//! compared with ordinary equality.
//!
//! The AWS Nitro Enclaves Root-G1 is embedded ([`AWS_NITRO_ROOT_G1_DER`]) and is the default
//! trust anchor; the dev NSM's root ([`crate::DevCa::root_der`]) is used in dev mode only.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P384_SHA384_ASN1, ECDSA_P384_SHA384_FIXED};
use x509_cert::der::asn1::ObjectIdentifier;
use x509_cert::der::oid::AssociatedOid;
use x509_cert::der::{Decode, Reader, SliceReader};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage};
use x509_cert::Certificate;

use crate::document::{AttestationDocument, SignedDocument};
use crate::error::AttestationError;

/// The AWS Nitro Enclaves Root-G1 certificate (CN=aws.nitro-enclaves, valid 2019-10-28 to
/// 2049-10-28), DER, as AWS publishes it.
pub const AWS_NITRO_ROOT_G1_DER: &[u8] = include_bytes!("../data/aws_nitro_enclaves_root_G1.der");
/// The same certificate in PEM.
pub const AWS_NITRO_ROOT_G1_PEM: &str = include_str!("../data/aws_nitro_enclaves_root_G1.pem");
/// SHA-256 of [`AWS_NITRO_ROOT_G1_DER`], hex, as AWS publishes it on its root-verification page.
pub const AWS_NITRO_ROOT_G1_SHA256: &str =
    "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";

/// id-ecPublicKey (RFC 5480).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp384r1 (RFC 5480).
const OID_SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
/// ecdsa-with-SHA384 (RFC 5758).
const OID_ECDSA_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");

/// What a document must satisfy, besides a valid signature chain.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// The trust anchor, DER. The document's `cabundle` must start with exactly this
    /// certificate. Default: [`AWS_NITRO_ROOT_G1_DER`].
    pub root: Vec<u8>,
    /// The time at which every certificate must be valid. Default: now.
    pub at: SystemTime,
    /// PCR index → expected value (48 bytes). Default: none.
    pub expected_pcrs: BTreeMap<u8, Vec<u8>>,
    /// The nonce the document must carry, if any.
    pub nonce: Option<Vec<u8>>,
    /// The public key the document must bind, if any.
    pub public_key: Option<Vec<u8>>,
    /// The user data the document must carry, if any.
    pub user_data: Option<Vec<u8>>,
    /// Accept debug-mode enclaves (PCR0–2 zero). Default: false. Never in production.
    pub allow_debug: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self::with_root(AWS_NITRO_ROOT_G1_DER.to_vec())
    }
}

impl VerifyOptions {
    /// Options trusting `root` (DER), verifying at the current time, expecting nothing else.
    pub fn with_root(root: Vec<u8>) -> Self {
        Self {
            root,
            at: SystemTime::now(),
            expected_pcrs: BTreeMap::new(),
            nonce: None,
            public_key: None,
            user_data: None,
            allow_debug: false,
        }
    }

    /// Verifies at `at` instead of now.
    #[must_use]
    pub fn at(mut self, at: SystemTime) -> Self {
        self.at = at;
        self
    }

    /// Verifies at `ms` milliseconds after the UNIX epoch (for example a document's own
    /// `timestamp`).
    #[must_use]
    pub fn at_unix_ms(self, ms: u64) -> Self {
        self.at(UNIX_EPOCH + Duration::from_millis(ms))
    }

    /// Requires PCR `index` to equal `value`.
    #[must_use]
    pub fn expect_pcr(mut self, index: u8, value: impl Into<Vec<u8>>) -> Self {
        self.expected_pcrs.insert(index, value.into());
        self
    }

    /// Requires the document to carry `nonce`.
    #[must_use]
    pub fn expect_nonce(mut self, nonce: impl Into<Vec<u8>>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Requires the document to bind `public_key`.
    #[must_use]
    pub fn expect_public_key(mut self, public_key: impl Into<Vec<u8>>) -> Self {
        self.public_key = Some(public_key.into());
        self
    }

    /// Requires the document to carry `user_data`.
    #[must_use]
    pub fn expect_user_data(mut self, user_data: impl Into<Vec<u8>>) -> Self {
        self.user_data = Some(user_data.into());
        self
    }

    /// Accepts (`true`) or refuses (`false`, the default) debug-mode enclaves.
    #[must_use]
    pub fn allow_debug(mut self, allow: bool) -> Self {
        self.allow_debug = allow;
        self
    }
}

/// A document that passed [`verify()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDocument {
    /// The attested payload.
    pub document: AttestationDocument,
    /// The enclave runs in debug mode (PCR0–2 zero); only possible with
    /// [`VerifyOptions::allow_debug`].
    pub debug: bool,
    /// Start of the span in which every certificate of the chain is valid (the latest
    /// `notBefore`). The same bytes verify with the same options at any time from here to
    /// [`VerifiedDocument::valid_until`]: a verifier may cache its result for that span.
    pub valid_from: SystemTime,
    /// End of that span (the earliest `notAfter`, inclusive).
    pub valid_until: SystemTime,
}

/// Parses and verifies an attestation document (see the module docs for every check).
///
/// # Errors
///
/// The [`AttestationError`] variant naming the first check that failed.
pub fn verify(
    document: &[u8],
    options: &VerifyOptions,
) -> Result<VerifiedDocument, AttestationError> {
    verify_signed(SignedDocument::parse(document)?, options)
}

/// Verifies an already parsed document (see [`verify()`]).
///
/// # Errors
///
/// The [`AttestationError`] variant naming the first check that failed.
pub fn verify_signed(
    signed: SignedDocument,
    options: &VerifyOptions,
) -> Result<VerifiedDocument, AttestationError> {
    let doc = &signed.document;

    // The chain, leaf first: depth d is chain[d].
    let mut chain: Vec<&[u8]> = Vec::with_capacity(doc.cabundle.len() + 1);
    chain.push(&doc.certificate);
    chain.extend(doc.cabundle.iter().rev().map(Vec::as_slice));
    let root_depth = chain.len() - 1;
    if chain[root_depth] != options.root.as_slice() {
        return Err(AttestationError::UntrustedRoot);
    }
    let certs = chain
        .iter()
        .enumerate()
        .map(|(depth, der)| ParsedCert::parse(der, depth))
        .collect::<Result<Vec<_>, _>>()?;

    for depth in 0..root_depth {
        let (cert, issuer) = (&certs[depth], &certs[depth + 1]);
        if cert.cert.tbs_certificate.issuer != issuer.cert.tbs_certificate.subject
            || UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &issuer.public_key)
                .verify(cert.tbs, cert.signature)
                .is_err()
        {
            return Err(AttestationError::ChainBroken { depth });
        }
    }
    for (depth, cert) in certs.iter().enumerate().skip(1) {
        // `depth - 1` CA certificates sit between this one and the leaf.
        cert.check_ca(depth, depth - 1)?;
    }
    let windows = certs
        .iter()
        .enumerate()
        .map(|(depth, cert)| cert.check_validity(depth, options.at))
        .collect::<Result<Vec<_>, _>>()?;
    // The chain is never empty; `at` itself is the (unreachable) fallback.
    let valid_from = windows.iter().map(|w| w.0).max().unwrap_or(options.at);
    let valid_until = windows.iter().map(|w| w.1).min().unwrap_or(options.at);

    UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &certs[0].public_key)
        .verify(&signed.sig_structure(), &signed.signature)
        .map_err(|_| AttestationError::BadSignature)?;

    let debug = doc.is_debug();
    if debug && !options.allow_debug {
        return Err(AttestationError::DebugMode);
    }
    for (&index, expected) in &options.expected_pcrs {
        let actual = doc
            .pcr(index)
            .ok_or(AttestationError::PcrMissing { index })?;
        if actual.as_slice() != expected.as_slice() {
            return Err(AttestationError::PcrMismatch { index });
        }
    }
    if let Some(nonce) = &options.nonce {
        if doc.nonce.as_ref() != Some(nonce) {
            return Err(AttestationError::NonceMismatch);
        }
    }
    if let Some(public_key) = &options.public_key {
        if doc.public_key.as_ref() != Some(public_key) {
            return Err(AttestationError::PublicKeyMismatch);
        }
    }
    if let Some(user_data) = &options.user_data {
        if doc.user_data.as_ref() != Some(user_data) {
            return Err(AttestationError::UserDataMismatch);
        }
    }
    Ok(VerifiedDocument {
        document: signed.document,
        debug,
        valid_from,
        valid_until,
    })
}

/// A decoded certificate and the raw pieces its verification needs.
struct ParsedCert<'a> {
    cert: Certificate,
    /// The DER `tbsCertificate` exactly as received (what the issuer signed).
    tbs: &'a [u8],
    /// The DER ECDSA signature value.
    signature: &'a [u8],
    /// The uncompressed P-384 public point.
    public_key: Vec<u8>,
}

impl<'a> ParsedCert<'a> {
    fn parse(der: &'a [u8], depth: usize) -> Result<Self, AttestationError> {
        let bad = |reason| AttestationError::BadCertificate { depth, reason };
        let cert = Certificate::from_der(der).map_err(|_| bad("not a DER X.509 certificate"))?;
        let (tbs, signature) = raw_parts(der).map_err(|_| bad("not a DER X.509 certificate"))?;

        let tbs_cert = &cert.tbs_certificate;
        if cert.signature_algorithm.oid != OID_ECDSA_SHA384
            || cert.signature_algorithm.parameters.is_some()
            || tbs_cert.signature != cert.signature_algorithm
        {
            return Err(AttestationError::UnsupportedAlgorithm(
                "certificate signature is not ecdsa-with-SHA384",
            ));
        }
        let spki = &tbs_cert.subject_public_key_info;
        let curve = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as().ok());
        if spki.algorithm.oid != OID_EC_PUBLIC_KEY || curve != Some(OID_SECP384R1) {
            return Err(AttestationError::UnsupportedAlgorithm(
                "certificate key is not ECDSA P-384",
            ));
        }
        let public_key = match spki.subject_public_key.as_bytes() {
            Some(point) if point.len() == 97 && point[0] == 0x04 => point.to_vec(),
            _ => return Err(bad("public key is not an uncompressed P-384 point")),
        };

        for ext in tbs_cert.extensions.iter().flatten() {
            if ext.critical && ![BasicConstraints::OID, KeyUsage::OID].contains(&ext.extn_id) {
                return Err(bad("unsupported critical extension"));
            }
        }
        Ok(Self {
            cert,
            tbs,
            signature,
            public_key,
        })
    }

    /// Checks that this certificate may issue a chain with `cas_below` CA certificates under
    /// it before the leaf.
    fn check_ca(&self, depth: usize, cas_below: usize) -> Result<(), AttestationError> {
        let not_ca = AttestationError::NotCa { depth };
        let bad = |reason| AttestationError::BadCertificate { depth, reason };
        let constraints = self
            .extension::<BasicConstraints>()
            .map_err(|_| bad("undecodable basic constraints"))?
            .ok_or(not_ca.clone())?;
        if !constraints.ca {
            return Err(not_ca);
        }
        if let Some(max) = constraints.path_len_constraint {
            if cas_below > usize::from(max) {
                return Err(not_ca);
            }
        }
        if let Some(usage) = self
            .extension::<KeyUsage>()
            .map_err(|_| bad("undecodable key usage"))?
        {
            if !usage.key_cert_sign() {
                return Err(not_ca);
            }
        }
        Ok(())
    }

    /// Checks that the certificate is valid at `at`; returns its `notBefore` and `notAfter`.
    fn check_validity(
        &self,
        depth: usize,
        at: SystemTime,
    ) -> Result<(SystemTime, SystemTime), AttestationError> {
        let validity = &self.cert.tbs_certificate.validity;
        let not_before = validity.not_before.to_unix_duration();
        let not_after = validity.not_after.to_unix_duration();
        // A time before the epoch precedes every certificate.
        let now = at.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        if now < not_before {
            return Err(AttestationError::NotYetValid {
                depth,
                not_before: not_before.as_secs(),
            });
        }
        if now > not_after {
            return Err(AttestationError::Expired {
                depth,
                not_after: not_after.as_secs(),
            });
        }
        Ok((UNIX_EPOCH + not_before, UNIX_EPOCH + not_after))
    }

    /// The extension of type `T`, decoded, if present (a duplicate is an error).
    fn extension<T: AssociatedOid + for<'d> Decode<'d>>(
        &self,
    ) -> Result<Option<T>, x509_cert::der::Error> {
        let mut found = None;
        for ext in self.cert.tbs_certificate.extensions.iter().flatten() {
            if ext.extn_id == T::OID {
                if found.is_some() {
                    return Err(x509_cert::der::ErrorKind::Failed.into());
                }
                found = Some(T::from_der(ext.extn_value.as_bytes())?);
            }
        }
        Ok(found)
    }
}

/// The raw `tbsCertificate` TLV and signature value of a DER certificate.
fn raw_parts(der: &[u8]) -> Result<(&[u8], &[u8]), x509_cert::der::Error> {
    let mut reader = SliceReader::new(der)?;
    let (tbs, signature) = reader.sequence(|seq| {
        let tbs = seq.tlv_bytes()?;
        let _algorithm = seq.tlv_bytes()?;
        let signature = x509_cert::der::asn1::BitStringRef::decode(seq)?;
        Ok((tbs, signature.raw_bytes()))
    })?;
    reader.finish((tbs, signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_root_is_aws_nitro_enclaves_root_g1() {
        let fingerprint =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, AWS_NITRO_ROOT_G1_DER);
        assert_eq!(hex::encode(fingerprint.as_ref()), AWS_NITRO_ROOT_G1_SHA256);
        let pem = pem::parse(AWS_NITRO_ROOT_G1_PEM).expect("PEM parses");
        assert_eq!(pem.tag(), "CERTIFICATE");
        assert_eq!(pem.contents(), AWS_NITRO_ROOT_G1_DER);
        assert_eq!(VerifyOptions::default().root, AWS_NITRO_ROOT_G1_DER);
    }

    #[test]
    fn embedded_root_parses_as_a_p384_ca() {
        let root = ParsedCert::parse(AWS_NITRO_ROOT_G1_DER, 1).expect("parses");
        root.check_ca(1, 0).expect("is a CA");
        // Self-signed: its own key verifies its signature.
        UnparsedPublicKey::new(&ECDSA_P384_SHA384_ASN1, &root.public_key)
            .verify(root.tbs, root.signature)
            .expect("self-signature verifies");
        let at = UNIX_EPOCH + Duration::from_secs(2_000_000_000); // 2033
        root.check_validity(1, at).expect("valid until 2049");
        let late = UNIX_EPOCH + Duration::from_secs(2_600_000_000); // 2052
        assert!(matches!(
            root.check_validity(1, late),
            Err(AttestationError::Expired { .. })
        ));
    }

    #[test]
    fn the_verified_span_is_where_the_whole_chain_is_valid() {
        let nsm = crate::DevNsm::new(crate::DevCa::generate().expect("CA"), [1; 48]).expect("NSM");
        let at = SystemTime::now();
        let bytes = nsm.attestation_at(at, None, None, None).expect("document");
        let options = VerifyOptions::with_root(nsm.ca().root_der().to_vec()).at(at);
        let verified = verify(&bytes, &options).expect("verifies");
        // The leaf bounds it: backdated an hour, valid three hours (whole seconds).
        let (hour, second) = (Duration::from_secs(3600), Duration::from_secs(1));
        let within_a_second_before =
            |t: SystemTime, bound: SystemTime| bound.duration_since(t).is_ok_and(|d| d < second);
        assert!(within_a_second_before(verified.valid_from, at - hour));
        assert!(within_a_second_before(verified.valid_until, at + 3 * hour));
        for inside in [verified.valid_from, verified.valid_until] {
            assert!(verify(&bytes, &options.clone().at(inside)).is_ok());
        }
        assert!(matches!(
            verify(&bytes, &options.clone().at(verified.valid_from - second)),
            Err(AttestationError::NotYetValid { depth: 0, .. })
        ));
        assert!(matches!(
            verify(&bytes, &options.at(verified.valid_until + second)),
            Err(AttestationError::Expired { depth: 0, .. })
        ));
    }

    #[test]
    fn options_builder() {
        let options = VerifyOptions::with_root(vec![1])
            .at_unix_ms(1_500)
            .expect_pcr(0, [7u8; 48])
            .expect_nonce(b"n".to_vec())
            .expect_public_key(b"k".to_vec())
            .expect_user_data(b"u".to_vec())
            .allow_debug(true);
        assert_eq!(options.at, UNIX_EPOCH + Duration::from_millis(1_500));
        assert_eq!(options.expected_pcrs[&0], vec![7u8; 48]);
        assert_eq!(options.nonce.as_deref(), Some(&b"n"[..]));
        assert!(options.allow_debug);
    }
}
