//! The dev NSM: attestation documents in exactly the real format, signed by a local dev CA.
//!
//! `nitro-wallet dev` runs the enclave as an ordinary process, without `/dev/nsm`. So that dev
//! mode still exercises the production path — the KMS emulator verifies documents and enforces
//! PCR0 like KMS does — [`DevNsm`] issues real-shaped documents: untagged COSE_Sign1, ES384,
//! `pcrs` 0..=15, a fresh leaf certificate, `cabundle` = [dev root, dev intermediate].
//!
//! PCR0 is the SHA-384 of the enclave *binary* ([`pcr0_of_file`]): not the same measurement as
//! a real enclave image file's PCR0, but it has the property that matters — a rebuilt enclave
//! gets a new PCR0 and the key policy refuses it until updated.
//!
//! The dev CA ([`DevCa`]) is persisted as PEM in a directory shared by the emulator (which
//! trusts its root) and the enclave (which issues with its intermediate). Its keys sit in plain
//! files: **it is insecure by design**; the AWS root never trusts it and the production
//! configuration refuses a dev NSM ([`Nsm::is_dev`]).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P384_SHA384_FIXED_SIGNING};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, DnType, IsCa, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P384_SHA384,
};
use time::OffsetDateTime;

use crate::document::{AttestationDocument, Pcr, SignedDocument, PCR_LEN, SIGNATURE_LEN};
use crate::nsm::{check_bound, check_random_len, Nsm, NsmError};
use crate::verify::{verify, VerifyOptions};

/// File holding the dev CA: root certificate, intermediate certificate, intermediate key (PEM).
pub const DEV_CA_FILE: &str = "dev-ca.pem";
/// File holding only the dev root certificate (PEM), the trust anchor for dev documents.
pub const DEV_ROOT_FILE: &str = "dev-ca-root.pem";

/// PCRs present in a dev document (the NSM reports 0..=15).
const DEV_PCR_COUNT: u8 = 16;
const ROOT_CN: &str = "nitro-wallet dev root (INSECURE)";
const INTERMEDIATE_CN: &str = "nitro-wallet dev intermediate (INSECURE)";
const ORGANIZATION: &str = "nitro-wallet dev NSM (INSECURE)";
/// Lifetime of the CA certificates.
const CA_LIFETIME: Duration = Duration::from_secs(20 * 365 * 24 * 3600);
/// Lifetime of a leaf certificate (the real NSM's are about 3 hours).
const LEAF_LIFETIME: Duration = Duration::from_secs(3 * 3600);
/// Backdating of every certificate, for clock skew between processes.
const BACKDATE: Duration = Duration::from_secs(3600);

/// SHA-384 of a file's bytes: the dev NSM's PCR0 for an enclave binary.
///
/// # Errors
///
/// [`NsmError::Io`] when the file cannot be read.
pub fn pcr0_of_file(path: &Path) -> Result<Pcr, NsmError> {
    let io = |source| NsmError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut context = digest::Context::new(&digest::SHA384);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => context.update(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    let mut pcr = [0u8; PCR_LEN];
    pcr.copy_from_slice(context.finish().as_ref());
    Ok(pcr)
}

/// A local certificate authority (root → intermediate, ECDSA P-384) issuing dev NSM leaf
/// certificates. Insecure: its keys live in plain files.
pub struct DevCa {
    root_der: Vec<u8>,
    intermediate_der: Vec<u8>,
    intermediate_key: KeyPair,
    /// The intermediate as rcgen needs it to issue (its subject and key identifier method).
    intermediate_issuer: Certificate,
}

impl fmt::Debug for DevCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fingerprint = digest::digest(&digest::SHA256, &self.root_der);
        f.debug_struct("DevCa")
            .field("root_sha256", &hex::encode(fingerprint.as_ref()))
            .finish_non_exhaustive()
    }
}

impl DevCa {
    /// Generates a new dev CA in memory (the root key is discarded once the intermediate is
    /// signed).
    ///
    /// # Errors
    ///
    /// [`NsmError::DevCa`] if key generation or certificate signing fails.
    pub fn generate() -> Result<Self, NsmError> {
        let now = SystemTime::now();
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(dev_ca)?;
        let root = ca_params(ROOT_CN, 1, now)?
            .self_signed(&root_key)
            .map_err(dev_ca)?;
        let intermediate_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(dev_ca)?;
        let intermediate = ca_params(INTERMEDIATE_CN, 0, now)?
            .signed_by(&intermediate_key, &root, &root_key)
            .map_err(dev_ca)?;
        Self::from_parts(
            root.der().to_vec(),
            intermediate.der().to_vec(),
            intermediate_key,
        )
    }

    /// Loads the dev CA from `dir`, or generates and saves one if there is none. Safe when
    /// several processes (emulator, enclave) race: exactly one CA ends up on disk and all of
    /// them load it.
    ///
    /// # Errors
    ///
    /// [`NsmError::Io`] on file errors, [`NsmError::DevCa`] if the files are unusable.
    pub fn load_or_create(dir: &Path) -> Result<Self, NsmError> {
        let path = dir.join(DEV_CA_FILE);
        let ca = match Self::load(dir) {
            Ok(ca) => ca,
            Err(NsmError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
                let ca = Self::generate()?;
                if ca.publish(&path)? {
                    ca
                } else {
                    // Another process won the race: use its CA.
                    Self::load(dir)?
                }
            }
            Err(e) => return Err(e),
        };
        write_atomically(&dir.join(DEV_ROOT_FILE), ca.root_pem().as_bytes(), false)?;
        Ok(ca)
    }

    /// Loads the dev CA saved in `dir` by [`DevCa::load_or_create`] or [`DevCa::save`].
    ///
    /// # Errors
    ///
    /// [`NsmError::Io`] (kind `NotFound` when there is none), [`NsmError::DevCa`] if the file
    /// is not a consistent dev CA.
    pub fn load(dir: &Path) -> Result<Self, NsmError> {
        let path = dir.join(DEV_CA_FILE);
        let text = fs::read_to_string(&path).map_err(|source| io_err(&path, source))?;
        let blocks = pem::parse_many(&text).map_err(|e| NsmError::DevCa(e.to_string()))?;
        let [root, intermediate, key]: [pem::Pem; 3] = blocks.try_into().map_err(|_| {
            NsmError::DevCa(format!("{} must hold exactly 3 PEM blocks", path.display()))
        })?;
        if root.tag() != "CERTIFICATE"
            || intermediate.tag() != "CERTIFICATE"
            || key.tag() != "PRIVATE KEY"
        {
            return Err(NsmError::DevCa(format!(
                "{}: expected CERTIFICATE, CERTIFICATE, PRIVATE KEY",
                path.display()
            )));
        }
        let intermediate_key = KeyPair::try_from(key.contents()).map_err(dev_ca)?;
        Self::from_parts(
            root.into_contents(),
            intermediate.into_contents(),
            intermediate_key,
        )
    }

    /// Reads only the dev root certificate (DER) saved in `dir`: what a verifier of dev
    /// documents (the KMS emulator, `attestation verify --root`) trusts.
    ///
    /// # Errors
    ///
    /// [`NsmError::Io`] or [`NsmError::DevCa`].
    pub fn load_root(dir: &Path) -> Result<Vec<u8>, NsmError> {
        let path = dir.join(DEV_CA_FILE);
        let text = fs::read_to_string(&path).map_err(|source| io_err(&path, source))?;
        match pem::parse_many(&text)
            .map_err(|e| NsmError::DevCa(e.to_string()))?
            .first()
        {
            Some(root) if root.tag() == "CERTIFICATE" => Ok(root.contents().to_vec()),
            _ => Err(NsmError::DevCa(format!(
                "{}: no root certificate",
                path.display()
            ))),
        }
    }

    /// Saves the CA into `dir` ([`DEV_CA_FILE`], mode 0600, and [`DEV_ROOT_FILE`]),
    /// replacing any previous one.
    ///
    /// # Errors
    ///
    /// [`NsmError::Io`].
    pub fn save(&self, dir: &Path) -> Result<(), NsmError> {
        fs::create_dir_all(dir).map_err(|source| io_err(dir, source))?;
        write_atomically(&dir.join(DEV_CA_FILE), self.bundle_pem().as_bytes(), true)?;
        write_atomically(&dir.join(DEV_ROOT_FILE), self.root_pem().as_bytes(), false)
    }

    /// The dev root certificate, DER: the trust anchor for dev documents.
    pub fn root_der(&self) -> &[u8] {
        &self.root_der
    }

    /// The dev root certificate, PEM.
    pub fn root_pem(&self) -> String {
        pem::encode(&pem::Pem::new("CERTIFICATE", self.root_der.clone()))
    }

    /// Issues a fresh leaf certificate valid from `now` (backdated an hour) for
    /// [`LEAF_LIFETIME`], returning its DER and its signing key.
    fn issue_leaf(&self, module_id: &str, now: SystemTime) -> Result<(Vec<u8>, KeyPair), NsmError> {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).map_err(dev_ca)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(module_id);
        params.is_ca = IsCa::NoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.not_before = offset_time(now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH))?;
        params.not_after = offset_time(now + LEAF_LIFETIME)?;
        let cert = params
            .signed_by(&key, &self.intermediate_issuer, &self.intermediate_key)
            .map_err(dev_ca)?;
        Ok((cert.der().to_vec(), key))
    }

    /// Signs `document` (whose `certificate` and `cabundle` this fills in) as the NSM would.
    fn sign(
        &self,
        mut document: AttestationDocument,
        now: SystemTime,
    ) -> Result<Vec<u8>, NsmError> {
        let (leaf, leaf_key) = self.issue_leaf(&document.module_id, now)?;
        document.certificate = leaf;
        document.cabundle = vec![self.root_der.clone(), self.intermediate_der.clone()];
        let signer =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &leaf_key.serialize_der())
                .map_err(|_| NsmError::Signing)?;
        let signed = SignedDocument::sign(document, |message| {
            let signature = signer
                .sign(&SystemRandom::new(), message)
                .map_err(|_| NsmError::Signing)?;
            <[u8; SIGNATURE_LEN]>::try_from(signature.as_ref()).map_err(|_| NsmError::Signing)
        })?;
        Ok(signed.to_bytes())
    }

    fn from_parts(
        root_der: Vec<u8>,
        intermediate_der: Vec<u8>,
        intermediate_key: KeyPair,
    ) -> Result<Self, NsmError> {
        // rcgen issues from the issuer's parameters (subject, key identifier method), rebuilt
        // here exactly as `generate` made them; the probe below proves they match the files.
        let intermediate_issuer = ca_params(INTERMEDIATE_CN, 0, SystemTime::now())?
            .self_signed(&intermediate_key)
            .map_err(dev_ca)?;
        let ca = Self {
            root_der,
            intermediate_der,
            intermediate_key,
            intermediate_issuer,
        };
        ca.probe()?;
        Ok(ca)
    }

    /// Issues and verifies a document: catches a key that does not match its certificate, a
    /// chain that does not link, or files written by an incompatible version.
    fn probe(&self) -> Result<(), NsmError> {
        let now = SystemTime::now();
        let document = dev_document("i-dev-enc-probe".to_owned(), [0u8; PCR_LEN], now);
        let bytes = self.sign(document, now)?;
        verify(
            &bytes,
            &VerifyOptions::with_root(self.root_der.clone())
                .at(now)
                .allow_debug(true),
        )
        .map(drop)
        .map_err(|e| NsmError::DevCa(format!("dev CA is inconsistent: {e}")))
    }

    fn bundle_pem(&self) -> String {
        pem::encode_many(&[
            pem::Pem::new("CERTIFICATE", self.root_der.clone()),
            pem::Pem::new("CERTIFICATE", self.intermediate_der.clone()),
            pem::Pem::new("PRIVATE KEY", self.intermediate_key.serialize_der()),
        ])
    }

    /// Writes the bundle to `path` unless a file is already there. Returns whether it did.
    fn publish(&self, path: &Path) -> Result<bool, NsmError> {
        let temp = temp_path(path);
        write_file(&temp, self.bundle_pem().as_bytes(), true)?;
        // `hard_link` refuses to replace an existing file: the first process to link wins.
        let linked = fs::hard_link(&temp, path);
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(io_err(path, source)),
        }
    }
}

/// A simulated NSM for dev mode and tests: documents in the real format signed by a
/// [`DevCa`], entropy from the OS.
pub struct DevNsm {
    ca: DevCa,
    module_id: String,
    pcrs: BTreeMap<u8, Pcr>,
}

impl fmt::Debug for DevNsm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DevNsm")
            .field("module_id", &self.module_id)
            .field("pcr0", &self.pcrs.get(&0).map(hex::encode))
            .field("ca", &self.ca)
            .finish()
    }
}

impl DevNsm {
    /// A dev NSM with PCR0 = `pcr0`, PCR1..=15 zero, and a random `i-dev-enc…` module id.
    ///
    /// # Errors
    ///
    /// [`NsmError::Random`] if the OS entropy source fails.
    pub fn new(ca: DevCa, pcr0: Pcr) -> Result<Self, NsmError> {
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|e| NsmError::Random(e.to_string()))?;
        let module_id = format!("i-dev-enc{}", hex::encode(id));
        let pcrs = dev_pcrs(pcr0);
        Ok(Self {
            ca,
            module_id,
            pcrs,
        })
    }

    /// A dev NSM measuring the enclave binary at `binary` ([`pcr0_of_file`]).
    ///
    /// # Errors
    ///
    /// [`NsmError::Io`] if the binary cannot be read, [`NsmError::Random`].
    pub fn for_binary(ca: DevCa, binary: &Path) -> Result<Self, NsmError> {
        Self::new(ca, pcr0_of_file(binary)?)
    }

    /// Sets PCR `index` (0..=15) to `value`.
    ///
    /// # Errors
    ///
    /// [`NsmError::InputTooLarge`] for an index above 15.
    pub fn with_pcr(mut self, index: u8, value: Pcr) -> Result<Self, NsmError> {
        if index >= DEV_PCR_COUNT {
            return Err(NsmError::InputTooLarge {
                field: "PCR index",
                len: usize::from(index),
                max: usize::from(DEV_PCR_COUNT - 1),
            });
        }
        self.pcrs.insert(index, value);
        Ok(self)
    }

    /// The module id reported in documents.
    pub fn module_id(&self) -> &str {
        &self.module_id
    }

    /// The PCRs reported in documents.
    pub fn pcrs(&self) -> &BTreeMap<u8, Pcr> {
        &self.pcrs
    }

    /// The CA that signs this NSM's documents.
    pub fn ca(&self) -> &DevCa {
        &self.ca
    }

    /// Like [`Nsm::attestation`], with the document's time (timestamp and certificate
    /// validity) given instead of read from the clock.
    ///
    /// # Errors
    ///
    /// As [`Nsm::attestation`].
    pub fn attestation_at(
        &self,
        now: SystemTime,
        public_key: Option<&[u8]>,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, NsmError> {
        check_bound("public_key", public_key)?;
        check_bound("user_data", user_data)?;
        check_bound("nonce", nonce)?;
        let mut document = dev_document(self.module_id.clone(), [0u8; PCR_LEN], now);
        document.pcrs.clone_from(&self.pcrs);
        document.public_key = public_key.map(<[u8]>::to_vec);
        document.user_data = user_data.map(<[u8]>::to_vec);
        document.nonce = nonce.map(<[u8]>::to_vec);
        self.ca.sign(document, now)
    }
}

impl Nsm for DevNsm {
    fn attestation(
        &self,
        public_key: Option<&[u8]>,
        user_data: Option<&[u8]>,
        nonce: Option<&[u8]>,
    ) -> Result<Vec<u8>, NsmError> {
        self.attestation_at(SystemTime::now(), public_key, user_data, nonce)
    }

    fn random(&self, n: usize) -> Result<Vec<u8>, NsmError> {
        check_random_len(n)?;
        let mut out = vec![0u8; n];
        getrandom::fill(&mut out).map_err(|e| NsmError::Random(e.to_string()))?;
        Ok(out)
    }

    fn is_dev(&self) -> bool {
        true
    }
}

fn dev_pcrs(pcr0: Pcr) -> BTreeMap<u8, Pcr> {
    let mut pcrs: BTreeMap<u8, Pcr> = (0..DEV_PCR_COUNT).map(|i| (i, [0u8; PCR_LEN])).collect();
    pcrs.insert(0, pcr0);
    pcrs
}

/// A document without certificates (filled in when signing).
fn dev_document(module_id: String, pcr0: Pcr, now: SystemTime) -> AttestationDocument {
    let timestamp = now
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    AttestationDocument {
        module_id,
        timestamp,
        pcrs: dev_pcrs(pcr0),
        certificate: Vec::new(),
        cabundle: Vec::new(),
        public_key: None,
        user_data: None,
        nonce: None,
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, ORGANIZATION);
    dn.push(DnType::CommonName, common_name);
    dn
}

fn ca_params(
    common_name: &str,
    path_len: u8,
    now: SystemTime,
) -> Result<CertificateParams, NsmError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = offset_time(now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH))?;
    params.not_after = offset_time(now + CA_LIFETIME)?;
    Ok(params)
}

fn offset_time(t: SystemTime) -> Result<OffsetDateTime, NsmError> {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| NsmError::DevCa("time out of range".to_owned()))
}

fn dev_ca(e: rcgen::Error) -> NsmError {
    NsmError::DevCa(e.to_string())
}

fn io_err(path: &Path, source: std::io::Error) -> NsmError {
    NsmError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn temp_path(path: &Path) -> PathBuf {
    let mut id = [0u8; 8];
    // Uniqueness only; a failing RNG falls back to the process id alone.
    let _ = getrandom::fill(&mut id);
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{}.{}.tmp", std::process::id(), hex::encode(id)));
    path.with_file_name(name)
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), NsmError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(|source| io_err(path, source))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| io_err(path, source))
}

/// Writes `path` through a temporary file and a rename, so readers never see a partial file.
fn write_atomically(path: &Path, contents: &[u8], private: bool) -> Result<(), NsmError> {
    let temp = temp_path(path);
    let result = write_file(&temp, contents, private)
        .and_then(|()| fs::rename(&temp, path).map_err(|source| io_err(path, source)));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
