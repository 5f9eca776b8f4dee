//! API tokens as the operator manages them: the scopes a token carries (which operations, with
//! which keys, at what rate), the tokens file that `serve` re-reads while it runs, and the
//! `nitro-wallet tokens create|list|revoke` commands that edit it.
//!
//! A token is 256 random bits (`nw_` + 64 hex digits), printed once when it is made; only its
//! SHA-256 is written anywhere. Tokens live in two places: inline `[[tokens]]` in the
//! configuration (changed by editing it and restarting), and the file named by
//! `[auth] tokens_file`, which the commands here rewrite atomically and `serve` re-reads within
//! a second of a change or at once on `SIGHUP`, so a revocation takes effect without a
//! restart. Enforcement is [`crate::api::auth`]'s job.

use crate::config::{Config, TokenConfig};
use alloy_primitives::Address;
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeSet,
    fmt,
    io::Write as _,
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
    str::FromStr,
};

/// What a token may do. `admin` implies every other operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// Generate, import or migrate keys.
    #[serde(rename = "keys:create")]
    KeysCreate,
    /// List and show keys, their public keys, attestation documents; `eth_accounts`.
    #[serde(rename = "keys:read")]
    KeysRead,
    /// Sign transactions (REST, `POST /`, `eth_signTransaction`, `eth_sendTransaction`).
    #[serde(rename = "sign:transaction")]
    SignTransaction,
    /// Sign EIP-191 messages and EIP-712 typed data (REST, `eth_sign`, `personal_sign`,
    /// `eth_signTypedData_v4`).
    #[serde(rename = "sign:message")]
    SignMessage,
    /// Sign raw digests (`sign/hash`, Web3Signer's `eth1/sign`).
    #[serde(rename = "sign:hash")]
    SignHash,
    /// Sign EIP-7702 authorizations.
    #[serde(rename = "sign:authorization")]
    SignAuthorization,
    /// Replace key policies; implies every other operation.
    #[serde(rename = "admin")]
    Admin,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 7] = [
        Operation::KeysCreate,
        Operation::KeysRead,
        Operation::SignTransaction,
        Operation::SignMessage,
        Operation::SignHash,
        Operation::SignAuthorization,
        Operation::Admin,
    ];

    /// The name used in configuration, on the command line and in error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::KeysCreate => "keys:create",
            Operation::KeysRead => "keys:read",
            Operation::SignTransaction => "sign:transaction",
            Operation::SignMessage => "sign:message",
            Operation::SignHash => "sign:hash",
            Operation::SignAuthorization => "sign:authorization",
            Operation::Admin => "admin",
        }
    }

    /// Whether this is one of the signing operations.
    pub fn is_signing(self) -> bool {
        matches!(
            self,
            Operation::SignTransaction
                | Operation::SignMessage
                | Operation::SignHash
                | Operation::SignAuthorization
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Operation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Operation::ALL
            .into_iter()
            .find(|o| o.as_str() == s.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Operation::ALL.iter().map(|o| o.as_str()).collect();
                format!("unknown operation `{s}`; one of {}", names.join(", "))
            })
    }
}

/// The keys a token may use: all (`"*"`) or a list of addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyScope {
    /// Every key, including keys created later.
    #[default]
    Any,
    /// These keys only.
    Only(BTreeSet<Address>),
}

impl KeyScope {
    /// Whether `address` is in the scope.
    pub fn allows(&self, address: &Address) -> bool {
        match self {
            KeyScope::Any => true,
            KeyScope::Only(set) => set.contains(address),
        }
    }

    /// From `"*"` alone, or addresses (0x + 40 hex; mixed case must be a valid EIP-55
    /// checksum).
    ///
    /// # Errors
    /// When an entry is not an address, or `"*"` is mixed with addresses.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<KeyScope, String> {
        let entries: Vec<&str> = entries.iter().map(|e| e.as_ref().trim()).collect();
        if entries.contains(&"*") {
            if entries.len() != 1 {
                return Err("keys: \"*\" (every key) cannot be combined with addresses".into());
            }
            return Ok(KeyScope::Any);
        }
        entries
            .into_iter()
            .map(parse_address)
            .collect::<Result<BTreeSet<_>, _>>()
            .map(KeyScope::Only)
    }

    fn entries(&self) -> Vec<String> {
        match self {
            KeyScope::Any => vec!["*".to_owned()],
            KeyScope::Only(set) => set.iter().map(|a| a.to_checksum(None)).collect(),
        }
    }
}

impl fmt::Display for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyScope::Only(set) if set.is_empty() => f.write_str("(none)"),
            scope => f.write_str(&scope.entries().join(",")),
        }
    }
}

impl Serialize for KeyScope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.entries().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for KeyScope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            List(Vec<String>),
        }
        let entries = match Raw::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("keys must be \"*\" or a list of addresses"))?
        {
            Raw::One(s) => vec![s],
            Raw::List(l) => l,
        };
        KeyScope::parse(&entries).map_err(serde::de::Error::custom)
    }
}

fn parse_address(s: &str) -> Result<Address, String> {
    let bad = || {
        format!("keys: `{s}` is not an address (0x + 40 hex digits, EIP-55 checksum if mixed case)")
    };
    let hex = s.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mixed =
        hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    if mixed {
        Address::parse_checksummed(s, None).map_err(|_| bad())
    } else {
        s.parse().map_err(|_| bad())
    }
}

/// The operations of a token that has none configured: full access, as before scopes existed.
pub fn full_access() -> Vec<Operation> {
    vec![Operation::Admin]
}

/// Longest token name.
const MAX_NAME: usize = 64;

/// Checks one token entry.
///
/// # Errors
/// A message naming the token and the problem.
pub fn check_token(t: &TokenConfig) -> Result<(), String> {
    let name_ok = !t.name.is_empty()
        && t.name.len() <= MAX_NAME
        && t.name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-@".contains(&b));
    if !name_ok {
        return Err(format!(
            "token name `{}`: 1 to {MAX_NAME} letters, digits, `.`, `_`, `-` or `@`",
            t.name.escape_debug()
        ));
    }
    let what = |m: &str| format!("token `{}`: {m}", t.name);
    if t.sha256.len() != 64 || !t.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(what(
            "sha256 must be 64 hex characters (the SHA-256 of the token, not the token)",
        ));
    }
    if t.operations.is_empty() {
        return Err(what(&format!(
            "operations is empty; give at least one of {}",
            Operation::ALL.map(Operation::as_str).join(", ")
        )));
    }
    let distinct: BTreeSet<_> = t.operations.iter().collect();
    if distinct.len() != t.operations.len() {
        return Err(what("operations lists an operation twice"));
    }
    match (t.rate_per_second, t.burst) {
        (Some(r), _) if !(r.is_finite() && r > 0.0 && r <= 1e6) => {
            return Err(what("rate_per_second must be above 0 and at most 1000000"));
        }
        (None, Some(_)) => return Err(what("burst needs rate_per_second")),
        (_, Some(0)) => return Err(what("burst must be at least 1")),
        _ => {}
    }
    if let Some(created) = &t.created {
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .map_err(|_| what("created must be an RFC 3339 time"))?;
    }
    Ok(())
}

/// Checks a set of tokens: each one, and names and hashes unique across them.
///
/// # Errors
/// A message naming the first problem.
pub fn check_tokens<'a>(tokens: impl IntoIterator<Item = &'a TokenConfig>) -> Result<(), String> {
    let mut names = BTreeSet::new();
    let mut hashes = BTreeSet::new();
    for t in tokens {
        check_token(t)?;
        if !names.insert(t.name.as_str()) {
            return Err(format!("token name `{}` is used twice", t.name));
        }
        if !hashes.insert(t.sha256.to_ascii_lowercase()) {
            return Err(format!(
                "token `{}` has the same sha256 as another token",
                t.name
            ));
        }
    }
    Ok(())
}

/// The tokens file: `[[tokens]]` entries as in the configuration, each with its `created` time.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    /// The entries.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
}

const FILE_HEADER: &str = "\
# API tokens of `nitro-wallet serve`, written by `nitro-wallet tokens create|revoke`.
# Only SHA-256 hashes of the tokens are kept. serve re-reads this file within a second of a
# change (or at once on SIGHUP); a token removed from it is refused from then on.

";

impl TokensFile {
    /// Parses and checks a tokens file's text.
    ///
    /// # Errors
    /// When the text is not TOML of `[[tokens]]` or an entry is invalid.
    pub fn parse(text: &str) -> Result<TokensFile, String> {
        let file: TokensFile = toml::from_str(text).map_err(|e| e.to_string())?;
        check_tokens(&file.tokens)?;
        Ok(file)
    }

    /// Reads `path`; `None` when it does not exist.
    ///
    /// # Errors
    /// When it cannot be read or is invalid.
    pub fn read(path: &Path) -> Result<Option<TokensFile>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => TokensFile::parse(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Replaces `path` atomically (a temporary file beside it, synced, then renamed). An
    /// existing file keeps its mode, owner and group; a new one is 0640 with the directory's
    /// group, so that a service user of that group can read what root wrote.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&self, path: &Path) -> crate::Result<()> {
        let text = format!("{FILE_HEADER}{}", toml::to_string(self)?);
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let (mode, owner) = match std::fs::metadata(path) {
            Ok(m) => (m.mode() & 0o7777, Some((Some(m.uid()), Some(m.gid())))),
            Err(_) => (
                0o640,
                std::fs::metadata(dir).ok().map(|d| (None, Some(d.gid()))),
            ),
        };
        let mut rnd = [0u8; 8];
        getrandom::fill(&mut rnd)?;
        let tmp = dir.join(format!(".tokens-{}.tmp", hex::encode(rnd)));
        let result = (|| -> crate::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(text.as_bytes())?;
            if let Some((uid, gid)) = owner {
                if let Err(e) = std::os::unix::fs::fchown(&f, uid, gid) {
                    eprintln!(
                        "warning: cannot give {} its owner and group ({e}); check that serve \
                         can read it",
                        path.display()
                    );
                }
            }
            f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(mode))?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(())
        })();
        let _ = std::fs::remove_file(&tmp);
        result.map_err(|e| format!("cannot write {}: {e}", path.display()).into())
    }
}

/// Options of `nitro-wallet tokens`.
#[derive(Debug, clap::Args)]
pub struct TokensArgs {
    /// serve's configuration: the tokens file is its `[auth] tokens_file`, and its inline
    /// `[[tokens]]` are listed too.
    #[arg(
        long,
        short,
        env = "NITRO_WALLET_CONFIG",
        default_value = "/etc/nitro-wallet/nitro-wallet.toml",
        global = true
    )]
    pub config: PathBuf,
    /// The tokens file to manage, instead of the configuration's (which is then not read).
    #[arg(long, global = true)]
    pub file: Option<PathBuf>,
    /// Print JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: TokensCommand,
}

/// `nitro-wallet tokens …`
#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Make a token: prints it once on standard output (only its SHA-256 is stored).
    ///
    /// Example: nitro-wallet tokens create --name payments --operations sign:transaction
    /// --keys 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --rate-per-second 5 --burst 20
    Create {
        /// Who holds it (appears in logs): letters, digits, `.`, `_`, `-`, `@`.
        #[arg(long)]
        name: String,
        /// What it may do, comma-separated: keys:create, keys:read, sign:transaction,
        /// sign:message, sign:hash, sign:authorization, admin (everything). Required: there is
        /// no default, so that nobody hands out full access by accident.
        #[arg(long, value_delimiter = ',', required = true)]
        operations: Vec<Operation>,
        /// The keys it may use, comma-separated addresses, or `*` for every key.
        #[arg(long, value_delimiter = ',', default_value = "*")]
        keys: Vec<String>,
        /// Requests per second allowed on average (a token bucket; none: unlimited).
        #[arg(long)]
        rate_per_second: Option<f64>,
        /// Requests allowed in a burst [default: the rate, rounded up].
        #[arg(long, requires = "rate_per_second")]
        burst: Option<u32>,
    },
    /// List the tokens: names, scopes, rate limits, creation times (never hashes).
    List,
    /// Remove a token from the tokens file; a running serve refuses it within a second.
    Revoke {
        /// The token's name.
        #[arg(long)]
        name: String,
    },
}

/// Runs `tokens …`.
///
/// # Errors
/// When the configuration or the tokens file cannot be read or written, or the request is
/// invalid (a name in use, an unknown token, …).
pub fn run(args: TokensArgs) -> crate::Result<()> {
    let (file, inline) = match &args.file {
        Some(f) => (f.clone(), Vec::new()),
        None => {
            let config = Config::load(&args.config)?;
            let file = config.auth.tokens_file.clone().ok_or_else(|| {
                format!(
                    "{} has no [auth] tokens_file: add\n  [auth]\n  tokens_file = \
                     \"/etc/nitro-wallet/tokens.toml\"\nor pass --file",
                    args.config.display()
                )
            })?;
            (file, config.tokens)
        }
    };
    match args.command {
        TokensCommand::Create {
            name,
            operations,
            keys,
            rate_per_second,
            burst,
        } => {
            let keys = KeyScope::parse(&keys)?;
            let token = zeroize::Zeroizing::new(new_token()?);
            let entry = TokenConfig {
                name,
                sha256: crate::api::auth::Tokens::hash(&token),
                keys,
                operations,
                rate_per_second,
                burst,
                created: Some(now()),
            };
            check_token(&entry)?;
            let _lock = lock_dir(&file)?;
            let mut current = TokensFile::read(&file)?.unwrap_or_default();
            if inline.iter().any(|t| t.name == entry.name) {
                return Err(format!(
                    "token `{}` is defined in the configuration's [[tokens]]",
                    entry.name
                )
                .into());
            }
            if current.tokens.iter().any(|t| t.name == entry.name) {
                return Err(format!(
                    "a token named `{}` exists; revoke it first or pick another name",
                    entry.name
                )
                .into());
            }
            current.tokens.push(entry.clone());
            check_tokens(current.tokens.iter().chain(&inline))?;
            current.write(&file)?;
            if args.json {
                let mut out = token_json(&entry, "file");
                out["token"] = token.as_str().into();
                println!("{out}");
            } else {
                println!("{}", token.as_str());
                eprintln!(
                    "created token `{}` ({}; keys {}{}) in {}\nthe token above is shown only \
                     now: only its SHA-256 is stored",
                    entry.name,
                    join(&entry.operations),
                    entry.keys,
                    rate_text(&entry)
                        .map(|r| format!("; {r}"))
                        .unwrap_or_default(),
                    file.display()
                );
            }
        }
        TokensCommand::List => {
            let from_file = TokensFile::read(&file)?.unwrap_or_default().tokens;
            let all: Vec<(&TokenConfig, &str)> = inline
                .iter()
                .map(|t| (t, "config"))
                .chain(from_file.iter().map(|t| (t, "file")))
                .collect();
            if args.json {
                let list: Vec<_> = all.iter().map(|(t, src)| token_json(t, src)).collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                let mut table = crate::cli::Table::new([
                    "NAME",
                    "OPERATIONS",
                    "KEYS",
                    "RATE",
                    "CREATED",
                    "SOURCE",
                ]);
                for (t, source) in &all {
                    let keys = match &t.keys {
                        KeyScope::Any => "*".to_owned(),
                        KeyScope::Only(set) => format!("{} key(s)", set.len()),
                    };
                    table.row([
                        t.name.clone(),
                        join(&t.operations),
                        keys,
                        rate_text(t).unwrap_or_else(|| "-".into()),
                        t.created.clone().unwrap_or_else(|| "-".into()),
                        (*source).to_owned(),
                    ]);
                }
                print!("{table}");
                println!("{} token(s)", all.len());
            }
        }
        TokensCommand::Revoke { name } => {
            let _lock = lock_dir(&file)?;
            let mut current = TokensFile::read(&file)?.unwrap_or_default();
            let before = current.tokens.len();
            current.tokens.retain(|t| t.name != name);
            if current.tokens.len() == before {
                let why = if inline.iter().any(|t| t.name == name) {
                    "is defined inline in the configuration: remove it there and restart serve"
                } else {
                    "does not exist"
                };
                return Err(format!("token `{name}` {why}").into());
            }
            current.write(&file)?;
            if args.json {
                println!("{}", serde_json::json!({ "revoked": name }));
            } else {
                println!("revoked token `{name}`; a running serve refuses it within a second");
            }
        }
    }
    Ok(())
}

/// A fresh token: `nw_` + 64 hex digits (256 bits from the OS).
pub(crate) fn new_token() -> crate::Result<String> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    getrandom::fill(&mut *bytes)?;
    Ok(format!("nw_{}", hex::encode(*bytes)))
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Serializes writers of the tokens file: an advisory lock on its directory, released when
/// the returned handle is dropped.
fn lock_dir(file: &Path) -> crate::Result<std::fs::File> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let handle = std::fs::File::open(dir)
        .map_err(|e| format!("cannot open the directory {}: {e}", dir.display()))?;
    handle
        .lock()
        .map_err(|e| format!("cannot lock {}: {e}", dir.display()))?;
    Ok(handle)
}

fn join(operations: &[Operation]) -> String {
    operations
        .iter()
        .map(|o| o.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn rate_text(t: &TokenConfig) -> Option<String> {
    let rate = t.rate_per_second?;
    Some(format!(
        "{rate}/s burst {}",
        t.burst.unwrap_or_else(|| default_burst(rate))
    ))
}

/// The burst of a rate limit given without one: the rate, rounded up (at least 1).
pub fn default_burst(rate_per_second: f64) -> u32 {
    // `as` saturates; the rate is at most 1e6 after validation.
    (rate_per_second.ceil() as u32).max(1)
}

fn token_json(t: &TokenConfig, source: &str) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "operations": t.operations,
        "keys": t.keys,
        "rate_per_second": t.rate_per_second,
        "burst": t.rate_per_second.map(|r| t.burst.unwrap_or_else(|| default_burst(r))),
        "created": t.created,
        "source": source,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const A: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

    fn entry(toml_text: &str) -> Result<TokenConfig, String> {
        let file = TokensFile::parse(&format!(
            "[[tokens]]\nname = \"t\"\nsha256 = \"{}\"\n{toml_text}",
            "ab".repeat(32)
        ))?;
        Ok(file.tokens.into_iter().next().unwrap())
    }

    #[test]
    fn scopes_parse_with_full_access_by_default() {
        let t = entry("").unwrap();
        assert_eq!(t.keys, KeyScope::Any);
        assert_eq!(t.operations, [Operation::Admin]);
        let t = entry(&format!(
            "keys = [\"{A}\", \"{}\"]\noperations = [\"sign:message\", \"keys:read\"]\n\
             rate_per_second = 0.5\nburst = 3\ncreated = \"2025-01-02T03:04:05Z\"",
            "0x".to_owned() + &"11".repeat(20)
        ))
        .unwrap();
        assert!(t.keys.allows(&A.parse().unwrap()));
        assert!(!t.keys.allows(&Address::ZERO));
        assert_eq!(t.operations, [Operation::SignMessage, Operation::KeysRead]);
        assert_eq!((t.rate_per_second, t.burst), (Some(0.5), Some(3)));
        assert_eq!(entry("keys = \"*\"").unwrap().keys, KeyScope::Any);
        assert_eq!(
            entry("keys = []").unwrap().keys,
            KeyScope::Only(BTreeSet::new())
        );
    }

    #[test]
    fn bad_entries_are_refused_with_the_reason() {
        for (bad, why) in [
            ("operations = []", "operations is empty"),
            ("operations = [\"sign:everything\"]", "unknown variant"),
            ("operations = [\"admin\", \"admin\"]", "twice"),
            (
                "keys = [\"*\", \"0x0000000000000000000000000000000000000000\"]",
                "combined",
            ),
            ("keys = [\"0x1234\"]", "not an address"),
            // A mixed-case address with a wrong checksum.
            (
                "keys = [\"0x70997970c51812dc3A010C7d01b50e0d17dc79C8\"]",
                "not an address",
            ),
            ("rate_per_second = 0.0", "rate_per_second"),
            ("rate_per_second = -1.0", "rate_per_second"),
            ("burst = 3", "burst needs rate_per_second"),
            ("rate_per_second = 1.0\nburst = 0", "at least 1"),
            ("created = \"yesterday\"", "RFC 3339"),
            ("secret = \"x\"", "unknown field"),
        ] {
            let e = entry(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = TokensFile::parse(&format!(
            "[[tokens]]\nname = \"has space\"\nsha256 = \"{}\"",
            "ab".repeat(32)
        ))
        .unwrap_err();
        assert!(e.contains("token name"), "{e}");
        let twice = format!(
            "[[tokens]]\nname = \"a\"\nsha256 = \"{h}\"\n[[tokens]]\nname = \"a\"\nsha256 = \"{g}\"",
            h = "ab".repeat(32),
            g = "cd".repeat(32)
        );
        assert!(TokensFile::parse(&twice)
            .unwrap_err()
            .contains("used twice"));
        let same_hash = twice.replace(&"cd".repeat(32), &"ab".repeat(32)).replacen(
            "name = \"a\"",
            "name = \"b\"",
            1,
        );
        assert!(TokensFile::parse(&same_hash)
            .unwrap_err()
            .contains("same sha256"));
    }

    #[test]
    fn the_file_round_trips_and_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        assert!(TokensFile::read(&path).unwrap().is_none());
        let mut file = TokensFile::default();
        file.tokens.push(TokenConfig {
            keys: KeyScope::parse(&[A]).unwrap(),
            operations: vec![Operation::SignTransaction],
            rate_per_second: Some(2.0),
            created: Some(now()),
            ..TokenConfig::full_access("ci", &crate::api::auth::Tokens::hash("x"))
        });
        file.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# API tokens"), "{text}");
        assert!(
            text.contains(A),
            "addresses are written checksummed: {text}"
        );
        let back = TokensFile::read(&path).unwrap().unwrap();
        assert_eq!(back.tokens.len(), 1);
        assert_eq!(back.tokens[0].keys, file.tokens[0].keys);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        back.write(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an existing file keeps its mode");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn tokens_are_fresh_and_long() {
        let a = new_token().unwrap();
        assert!(a.starts_with("nw_") && a.len() == 67, "{a}");
        assert_ne!(a, new_token().unwrap());
        assert_eq!(default_burst(0.2), 1);
        assert_eq!(default_burst(2.5), 3);
    }
}
