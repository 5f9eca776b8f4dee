//! The emulator's key policy for attested calls: what KMS checks with the
//! `kms:RecipientAttestation:*` condition keys, in one small JSON file.
//!
//! The file, `key-policy.json` beside the key file, is meant to be read and edited by hand:
//!
//! ```json
//! {
//!   "require_attestation": true,
//!   "root_pem": "-----BEGIN CERTIFICATE-----\n…\n-----END CERTIFICATE-----\n",
//!   "image_sha384": "<96 hex digits: PCR0 of the enclave image>",
//!   "pcrs": { "8": "<96 hex digits>" }
//! }
//! ```
//!
//! On `Decrypt` / `GenerateRandom` with a `Recipient`, the emulator verifies the attestation
//! document (COSE signature, certificate chain to `root_pem`, validity now, debug-mode documents
//! refused) and then every condition, the hex compared case-insensitively as KMS's
//! `StringEqualsIgnoreCase` does. It is loaded when the emulator opens; a malformed file makes
//! the open fail rather than run without the policy.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use nitro_wallet_attestation::document::MAX_PCR_INDEX;
use nitro_wallet_attestation::{verify, Pcr, VerifyOptions, PCR_LEN};
use serde::{Deserialize, Serialize};

use super::store::write_private;

/// Name of the policy file inside the emulator's directory.
pub const POLICY_FILE: &str = "key-policy.json";
/// Largest attestation document accepted in a `Recipient`.
pub(crate) const MAX_ATTESTATION_DOCUMENT: usize = 16 * 1024;
/// Largest policy file read.
const MAX_POLICY_FILE: u64 = 64 * 1024;
/// Most accepted documents whose verification is remembered (see [`Verified`]).
const MAX_VERIFIED: usize = 256;

/// The emulator's attestation policy, standing in for a KMS key policy's
/// `kms:RecipientAttestation:*` conditions. Serialized as the JSON of `key-policy.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationPolicy {
    /// Refuse `Decrypt` and `GenerateRandom` without a `Recipient` (`AccessDeniedException`),
    /// as a key policy that allows them only under a `kms:RecipientAttestation` condition.
    #[serde(default)]
    pub require_attestation: bool,
    /// The trust anchor for attestation documents, one PEM `CERTIFICATE` (the dev CA root in
    /// dev mode). Empty: every document is refused.
    #[serde(default)]
    pub root_pem: String,
    /// `kms:RecipientAttestation:ImageSha384`: the PCR0 the document must carry, hex.
    #[serde(default)]
    pub image_sha384: Option<String>,
    /// `kms:RecipientAttestation:PCR<n>`: PCR index → value the document must carry, hex.
    #[serde(default)]
    pub pcrs: BTreeMap<u8, String>,
}

/// One condition on a document's PCRs.
#[derive(Debug, Clone)]
struct Condition {
    /// The KMS condition key, for messages.
    key: String,
    index: u8,
    value: Pcr,
}

/// An [`AttestationPolicy`] checked and decoded, ready to enforce.
#[derive(Debug)]
pub(crate) struct Enforced {
    policy: AttestationPolicy,
    root_der: Option<Vec<u8>>,
    conditions: Vec<Condition>,
    /// Documents this policy accepted, by the SHA-256 of their bytes.
    verified: Mutex<HashMap<[u8; 32], Verified>>,
}

/// What the policy concluded about one document it accepted.
///
/// An enclave reuses one attestation document for many calls, and verifying it (three ECDSA
/// P-384 signatures) is most of the cost of an attested call. The verdict on the same bytes
/// under the same policy changes only with time, through the validity of the certificate
/// chain, so it is remembered with that validity and re-checked against the clock on every
/// use: the answer is the one a full verification would give. Any other bytes (a tampered
/// document) hash differently and are verified in full; refusals are not remembered.
#[derive(Debug, Clone)]
struct Verified {
    public_key: Vec<u8>,
    valid_from: SystemTime,
    valid_until: SystemTime,
}

/// Why a `Recipient` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The policy refuses the request: `AccessDeniedException`. Starts "attestation policy:".
    Denied(String),
    /// The request is malformed: `ValidationException`.
    Invalid(String),
}

fn invalid_input(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

fn decode_pcr(what: &str, value: &str) -> io::Result<Pcr> {
    let mut pcr = [0u8; PCR_LEN];
    hex::decode_to_slice(value, &mut pcr).map_err(|_| {
        invalid_input(format!(
            "{what}: expected {} hex digits, got {value:?}",
            2 * PCR_LEN
        ))
    })?;
    Ok(pcr)
}

impl Enforced {
    /// Checks and decodes `policy`.
    ///
    /// # Errors
    /// `InvalidInput` for a `root_pem` that is not one PEM certificate, a PCR value that is not
    /// 48 bytes of hex, or a PCR index above 31.
    pub(crate) fn new(policy: AttestationPolicy) -> io::Result<Enforced> {
        let root_der = if policy.root_pem.trim().is_empty() {
            None
        } else {
            let blocks = pem::parse_many(&policy.root_pem)
                .map_err(|err| invalid_input(format!("root_pem: {err}")))?;
            match <[pem::Pem; 1]>::try_from(blocks) {
                Ok([block]) if block.tag() == "CERTIFICATE" => Some(block.into_contents()),
                _ => {
                    return Err(invalid_input(
                        "root_pem must hold exactly one PEM CERTIFICATE".to_owned(),
                    ))
                }
            }
        };
        let mut conditions = Vec::new();
        if let Some(image) = &policy.image_sha384 {
            conditions.push(Condition {
                key: "kms:RecipientAttestation:ImageSha384".to_owned(),
                index: 0,
                value: decode_pcr("image_sha384", image)?,
            });
        }
        for (&index, value) in &policy.pcrs {
            if index > MAX_PCR_INDEX {
                return Err(invalid_input(format!(
                    "pcrs: PCR index {index} above {MAX_PCR_INDEX}"
                )));
            }
            conditions.push(Condition {
                key: format!("kms:RecipientAttestation:PCR{index}"),
                index,
                value: decode_pcr(&format!("pcrs.{index}"), value)?,
            });
        }
        Ok(Enforced {
            policy,
            root_der,
            conditions,
            verified: Mutex::default(),
        })
    }

    /// Loads `path`, or the default (permissive, no trust anchor) policy if there is no file.
    ///
    /// # Errors
    /// I/O errors; `InvalidData` for a malformed file (naming `path`).
    pub(crate) fn load(path: &Path) -> io::Result<Enforced> {
        let bytes = match fs::File::open(path) {
            Ok(file) => {
                let mut bytes = Vec::new();
                io::Read::read_to_end(&mut io::Read::take(file, MAX_POLICY_FILE + 1), &mut bytes)?;
                bytes
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Enforced::new(AttestationPolicy::default())
            }
            Err(err) => return Err(err),
        };
        let bad = |message: String| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {message}", path.display()),
            )
        };
        if bytes.len() as u64 > MAX_POLICY_FILE {
            return Err(bad("policy file too large".to_owned()));
        }
        let policy: AttestationPolicy =
            serde_json::from_slice(&bytes).map_err(|err| bad(err.to_string()))?;
        Enforced::new(policy).map_err(|err| bad(err.to_string()))
    }

    /// Atomically writes the policy to `path` (mode 0600), pretty-printed for hand editing.
    ///
    /// # Errors
    /// I/O errors.
    pub(crate) fn save(&self, path: &Path) -> io::Result<()> {
        let mut bytes = serde_json::to_vec_pretty(&self.policy).map_err(io::Error::other)?;
        bytes.push(b'\n');
        write_private(path, &bytes)
    }

    /// The policy as configured.
    pub(crate) fn policy(&self) -> &AttestationPolicy {
        &self.policy
    }

    /// Whether calls without a `Recipient` are refused.
    pub(crate) fn requires_attestation(&self) -> bool {
        self.policy.require_attestation
    }

    /// Checks a `Recipient`'s attestation document against the policy at time `now`; returns
    /// the `public_key` (SubjectPublicKeyInfo DER) it binds, to encrypt the response to.
    ///
    /// A document accepted before is not verified again while its certificate chain is valid
    /// at `now` (see [`Verified`]).
    pub(crate) fn check(&self, document: &[u8], now: SystemTime) -> Result<Vec<u8>, Refusal> {
        if document.is_empty() || document.len() > MAX_ATTESTATION_DOCUMENT {
            return Err(Refusal::Invalid(format!(
                "Recipient.AttestationDocument must have length between 1 and \
                 {MAX_ATTESTATION_DOCUMENT} bytes"
            )));
        }
        let digest: [u8; 32] = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, document)
            .as_ref()
            .try_into()
            .unwrap_or_default();
        if let Some(hit) = self.verified().get(&digest) {
            if hit.valid_from <= now && now <= hit.valid_until {
                return Ok(hit.public_key.clone());
            }
        }
        let verified = self.verify(document, now)?;
        let public_key = verified.public_key.clone();
        let mut cache = self.verified();
        if cache.len() >= MAX_VERIFIED {
            cache.retain(|_, v| now <= v.valid_until);
            if cache.len() >= MAX_VERIFIED {
                cache.clear();
            }
        }
        cache.insert(digest, verified);
        Ok(public_key)
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Verified>> {
        self.verified
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The full check of [`Enforced::check`], without the memory of earlier verdicts.
    fn verify(&self, document: &[u8], now: SystemTime) -> Result<Verified, Refusal> {
        let root = self.root_der.as_ref().ok_or_else(|| {
            Refusal::Denied(
                "attestation policy: no trust anchor (root_pem) is configured".to_owned(),
            )
        })?;
        let options = VerifyOptions::with_root(root.clone()).at(now);
        let verified = verify(document, &options).map_err(|err| {
            Refusal::Denied(format!(
                "attestation policy: attestation document refused: {err}"
            ))
        })?;
        let (valid_from, valid_until) = (verified.valid_from, verified.valid_until);
        let document = verified.document;
        for condition in &self.conditions {
            let index = condition.index;
            match document.pcr(index) {
                None => {
                    return Err(Refusal::Denied(format!(
                        "attestation policy: PCR{index} absent: {} requires {}, the document \
                         carries no PCR{index}",
                        condition.key,
                        hex::encode(condition.value)
                    )))
                }
                Some(actual) if *actual != condition.value => {
                    return Err(Refusal::Denied(format!(
                        "attestation policy: PCR{index} mismatch: {} requires {}, the \
                         document has {}",
                        condition.key,
                        hex::encode(condition.value),
                        hex::encode(actual)
                    )))
                }
                Some(_) => {}
            }
        }
        let public_key = document.public_key.ok_or_else(|| {
            Refusal::Invalid(
                "the attestation document in Recipient carries no public_key".to_owned(),
            )
        })?;
        Ok(Verified {
            public_key,
            valid_from,
            valid_until,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PCR_A: &str = "AB0000000000000000000000000000000000000000000000\
                         000000000000000000000000000000000000000000000001";

    #[test]
    fn validates_values() {
        assert!(Enforced::new(AttestationPolicy::default()).is_ok());
        let mut policy = AttestationPolicy {
            image_sha384: Some(PCR_A.to_owned()),
            ..AttestationPolicy::default()
        };
        let enforced = Enforced::new(policy.clone()).expect("upper-case hex accepted");
        assert_eq!(enforced.conditions[0].value[0], 0xab);
        policy.image_sha384 = Some("abcd".to_owned());
        assert!(Enforced::new(policy.clone()).is_err());
        policy.image_sha384 = None;
        policy.pcrs.insert(32, PCR_A.to_owned());
        assert!(Enforced::new(policy.clone()).is_err());
        policy.pcrs.clear();
        policy.root_pem = "not pem".to_owned();
        assert!(Enforced::new(policy.clone()).is_err());
        policy.root_pem = pem::encode(&pem::Pem::new("PRIVATE KEY", vec![1, 2, 3]));
        assert!(Enforced::new(policy).is_err());
    }

    #[test]
    fn json_form_is_hand_editable() {
        let json = format!(r#"{{"require_attestation": true, "pcrs": {{"8": "{PCR_A}"}}}}"#);
        let policy: AttestationPolicy = serde_json::from_str(&json).expect("parse");
        assert!(policy.require_attestation && policy.image_sha384.is_none());
        assert_eq!(policy.pcrs.get(&8).map(String::as_str), Some(PCR_A));
        // A typo is an error, not a silently ignored condition.
        assert!(serde_json::from_str::<AttestationPolicy>(r#"{"image_sha348": "00"}"#).is_err());
    }

    #[test]
    fn refusals_without_anchor_or_document() {
        let enforced = Enforced::new(AttestationPolicy::default()).expect("policy");
        let now = SystemTime::now();
        assert!(matches!(enforced.check(b"", now), Err(Refusal::Invalid(_))));
        assert!(matches!(
            enforced.check(&vec![0u8; MAX_ATTESTATION_DOCUMENT + 1], now),
            Err(Refusal::Invalid(_))
        ));
        match enforced.check(b"\x84", now) {
            Err(Refusal::Denied(message)) => {
                assert!(message.starts_with("attestation policy:"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    /// A policy trusting a new dev CA and pinning PCR0, and a dev NSM under that CA.
    fn dev_policy() -> (Enforced, nitro_wallet_attestation::DevNsm) {
        let ca = nitro_wallet_attestation::DevCa::generate().expect("dev CA");
        let root_pem = ca.root_pem();
        let nsm = nitro_wallet_attestation::DevNsm::new(ca, [0x42; PCR_LEN]).expect("dev NSM");
        let enforced = Enforced::new(AttestationPolicy {
            require_attestation: true,
            root_pem,
            image_sha384: Some(hex::encode([0x42; PCR_LEN])),
            pcrs: BTreeMap::new(),
        })
        .expect("policy");
        (enforced, nsm)
    }

    fn denied(result: Result<Vec<u8>, Refusal>) -> String {
        match result {
            Err(Refusal::Denied(message)) => message,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn accepted_documents_are_remembered_and_still_checked() {
        let (enforced, nsm) = dev_policy();
        let now = SystemTime::now();
        let document = nsm
            .attestation_at(now, Some(b"recipient spki"), None, None)
            .expect("document");
        assert_eq!(
            enforced.check(&document, now).expect("accepted"),
            b"recipient spki"
        );
        assert_eq!(enforced.verified().len(), 1);
        // The same bytes again: the remembered verdict, the same answer.
        assert_eq!(
            enforced.check(&document, now).expect("accepted"),
            b"recipient spki"
        );
        assert_eq!(enforced.verified().len(), 1);

        // A tampered copy (last byte of the COSE signature) is verified, and refused.
        let mut tampered = document.clone();
        *tampered.last_mut().expect("non-empty") ^= 1;
        let message = denied(enforced.check(&tampered, now));
        assert!(message.contains("signature"), "{message}");
        assert_eq!(enforced.verified().len(), 1);

        // The remembered document once its leaf certificate (3 h) has expired.
        let later = now + std::time::Duration::from_secs(4 * 3600);
        let message = denied(enforced.check(&document, later));
        assert!(message.contains("expired"), "{message}");
        // And before it is valid (the dev NSM backdates an hour).
        let earlier = now - std::time::Duration::from_secs(2 * 3600);
        let message = denied(enforced.check(&document, earlier));
        assert!(message.contains("not valid before"), "{message}");
        // Still accepted at a time inside its validity.
        assert!(enforced.check(&document, now).is_ok());

        // A new policy (a rebuilt enclave's PCR0) does not inherit the verdict.
        let mut policy = enforced.policy().clone();
        policy.image_sha384 = Some(hex::encode([0x43; PCR_LEN]));
        let replaced = Enforced::new(policy).expect("policy");
        let message = denied(replaced.check(&document, now));
        assert!(message.contains("PCR0 mismatch"), "{message}");
    }

    #[test]
    fn remembered_documents_are_bounded() {
        let (enforced, nsm) = dev_policy();
        let now = SystemTime::now();
        for i in 0..=MAX_VERIFIED {
            let document = nsm
                .attestation_at(now, Some(&i.to_be_bytes()), None, None)
                .expect("document");
            enforced.check(&document, now).expect("accepted");
            assert!(enforced.verified().len() <= MAX_VERIFIED);
        }
    }

    #[test]
    fn load_missing_and_malformed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(POLICY_FILE);
        let enforced = Enforced::load(&path).expect("default");
        assert_eq!(enforced.policy(), &AttestationPolicy::default());
        fs::write(&path, b"{").expect("write");
        let err = Enforced::load(&path).expect_err("malformed");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains(POLICY_FILE), "{err}");
        fs::write(&path, br#"{"image_sha384": "zz"}"#).expect("write");
        assert_eq!(
            Enforced::load(&path).expect_err("bad hex").kind(),
            io::ErrorKind::InvalidData
        );
    }
}
