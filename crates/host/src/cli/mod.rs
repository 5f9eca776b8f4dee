//! Client subcommands for a person at a terminal: `keys …`, `sign …` and `attestation …`
//! against a running server (by default the local `nitro-wallet dev`, whose token and
//! certificate they find in the dev data directory), and `config init`.
//!
//! Output is for people by default (tables, `name: value` blocks); `--json` prints the
//! server's answer unchanged for scripts. Failures print what went wrong and what to do, and
//! exit with a status that tells a script which kind of failure it was ([`Exit`]).

mod attestation;
mod client;
mod init;
mod keys;
mod output;
mod sign;

pub use attestation::{attestation, AttestationCommand};
pub use init::{config, ConfigCommand};
pub use keys::{keys, KeysCommand};
pub(crate) use output::Table;
pub use sign::{sign, SignCommand};

use alloy_primitives::Address;
use clap::Args;
use std::{fmt, io::Read as _, path::PathBuf};

/// Where the server is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// Server URL.
    #[arg(
        long,
        env = "NITRO_WALLET_URL",
        default_value = "https://127.0.0.1:8443",
        global = true
    )]
    pub url: String,
    /// API token (prefer NITRO_WALLET_TOKEN or --token-file: arguments show up in `ps`).
    #[arg(
        long,
        env = "NITRO_WALLET_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub token: Option<String>,
    /// File holding the API token [default: DEV_DIR/api-token].
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// PEM certificate to trust for the server [default: DEV_DIR/tls/cert.pem if present].
    #[arg(long, env = "NITRO_WALLET_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Data directory of `nitro-wallet dev`, for the defaults above.
    #[arg(
        long,
        env = "NITRO_WALLET_DEV_DIR",
        default_value = ".nitro-wallet-dev",
        global = true
    )]
    pub dev_dir: PathBuf,
    /// Print the server's JSON answer unchanged instead of a summary for people.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The exit status of a failed command, so that a script can tell failures apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 1: the server refused the request, a document did not verify, a file could not be
    /// read or written.
    Failed = 1,
    /// 2: invalid arguments or input (as clap reports its own), found before anything was
    /// sent.
    Usage = 2,
    /// 3: the server could not be reached (connection refused, TLS, timeout).
    Unreachable = 3,
}

/// The exit statuses as a string literal, for `--help` texts built with `concat!`.
macro_rules! exit_status {
    () => {
        "\
Exit status:
  0  success
  1  failure: the server refused the request (the message says why and what to do), a
     document did not verify, a file could not be read or written
  2  usage: invalid arguments or input (an address, JSON, hex), nothing was sent
  3  the server could not be reached: connection refused, TLS, timeout"
    };
}

/// The exit statuses, for `--help` and the README.
pub const EXIT_STATUS_HELP: &str = exit_status!();

/// A failure with its exit status and a message for a person.
#[derive(Debug)]
pub struct Failure {
    exit: Exit,
    message: String,
}

impl Failure {
    /// A failure of kind `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Failure {
        Failure {
            exit,
            message: message.into(),
        }
    }

    /// Invalid input, found before anything was sent.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::new(Exit::Usage, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit status for `error`: a [`Failure`]'s own, else [`Exit::Failed`].
pub fn exit_code(error: &(dyn std::error::Error + 'static)) -> u8 {
    error
        .downcast_ref::<Failure>()
        .map_or(Exit::Failed, |f| f.exit) as u8
}

/// Parses a key address argument: 0x + 40 hex digits; mixed case must be a valid EIP-55
/// checksum (a typo in a checksummed address is caught here, not signed with).
///
/// # Errors
/// A message saying what an address looks like.
pub fn parse_address(s: &str) -> Result<Address, String> {
    let bad = || {
        "not an address: expected 0x followed by 40 hex digits (EIP-55 checksum if mixed case)"
            .to_owned()
    };
    let hex = s.strip_prefix("0x").ok_or_else(bad)?;
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    let mixed =
        hex.bytes().any(|b| b.is_ascii_lowercase()) && hex.bytes().any(|b| b.is_ascii_uppercase());
    if mixed {
        Address::parse_checksummed(s, None).map_err(|_| {
            "not a valid EIP-55 address: the mixed-case checksum does not match (a typo?)"
                .to_owned()
        })
    } else {
        s.parse().map_err(|_| bad())
    }
}

/// The bytes of `source`: `-` means standard input (with a word to a person at a terminal,
/// who may not expect to be asked), anything else is a file.
fn read_source(source: &str, what: &str) -> crate::Result<Vec<u8>> {
    if source == "-" {
        use std::io::IsTerminal as _;
        if std::io::stdin().is_terminal() {
            eprintln!("reading {what} from standard input (end it with Ctrl-D)…");
        }
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {what} from standard input: {e}"))?;
        Ok(bytes)
    } else {
        std::fs::read(source).map_err(|e| format!("cannot read {what} from {source}: {e}").into())
    }
}

/// The DER of the first certificate in `pem`.
pub(crate) fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()
        .filter(|d| !d.is_empty())
}

/// Examples and exit statuses shown by `nitro-wallet --help`.
pub const TOP_HELP: &str = concat!(
    "\
Examples:
  nitro-wallet dev                                  run everything locally (insecure)
  nitro-wallet keys create --label \"hot wallet\"     a key generated in the enclave
  nitro-wallet keys list                            the keys, as a table
  nitro-wallet sign message 0xADDRESS 'hello'       an EIP-191 signature
  nitro-wallet config init --output nitro-wallet.toml
  nitro-wallet completions bash > ~/.local/share/bash-completion/completions/nitro-wallet

The client commands (keys, sign, attestation verify URL) talk to --url, by default the local
`nitro-wallet dev`, whose token and certificate they read from .nitro-wallet-dev/. Add --json
for the server's JSON answer, unchanged.

",
    exit_status!()
);

/// Examples shown by `nitro-wallet keys --help`.
pub const KEYS_HELP: &str = "\
Examples:
  nitro-wallet keys create --label \"hot wallet\"
  nitro-wallet keys list --json | jq -r '.keys[].address'
  nitro-wallet keys show 0x70997970C51812dc3A010C7d01b50e0d17dc79C8
  nitro-wallet keys import --label imported < key.hex
  nitro-wallet --url https://signer.internal:8443 --token-file /etc/nitro-wallet/token \\
    --ca-cert ca.pem keys list";

/// Examples shown by `nitro-wallet sign --help`.
pub const SIGN_HELP: &str = "\
Examples:
  nitro-wallet sign tx 0xADDRESS --tx '{\"chainId\":\"0x1\",\"nonce\":\"0x0\",\"gas\":\"21000\",
    \"gasPrice\":\"1000000000\",\"to\":\"0x70997970C51812dc3A010C7d01b50e0d17dc79C8\"}'
  nitro-wallet sign message 0xADDRESS 'Sign in to example.com'
  printf %s 0xdeadbeef | nitro-wallet sign message 0xADDRESS --hex
  nitro-wallet sign typed-data 0xADDRESS permit.json
  nitro-wallet sign authorization 0xADDRESS --chain-id 1 --contract 0xDELEGATE --nonce 0
  nitro-wallet sign message 0xADDRESS hi --json | jq -r .signature";

/// Examples shown by `nitro-wallet attestation --help`.
pub const ATTESTATION_HELP: &str = "\
Examples:
  nitro-wallet attestation verify https://127.0.0.1:8443 \\
    --root .nitro-wallet-dev/attestation/dev-ca-root.pem
  nitro-wallet attestation verify document.cbor --at 2025-01-01T00:00:00Z --expect-pcr0 7d9b…
  nitro-wallet attestation pcrs";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_are_checked_before_anything_is_sent() {
        let a = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
        assert_eq!(
            parse_address(a).map(|a| a.to_checksum(None)).as_deref(),
            Ok(a)
        );
        assert!(parse_address(&a.to_lowercase()).is_ok());
        for bad in ["70997970C51812dc3A010C7d01b50e0d17dc79C8", "0x1234", "0xzz"] {
            assert!(
                parse_address(bad)
                    .unwrap_err()
                    .contains("0x followed by 40"),
                "{bad}"
            );
        }
        let typo = "0x70997970C51812dc3A010C7d01b50e0d17dc79c8";
        assert!(parse_address(typo).unwrap_err().contains("checksum"));
    }

    #[test]
    fn failures_carry_their_exit_status() {
        let usage: crate::Error = Failure::usage("bad").into();
        assert_eq!(exit_code(&*usage), 2);
        let other: crate::Error = "plain".into();
        assert_eq!(exit_code(&*other), 1);
        assert!(TOP_HELP.ends_with(EXIT_STATUS_HELP));
    }
}
