//! `nitro-wallet config init`: a commented configuration to start from, written from the
//! repository's `nitro-wallet.toml.example` (compiled in, so the two never disagree) with a
//! fresh API token in place of the example's placeholder.

use super::{Exit, Failure};
use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _, path::PathBuf};

/// `nitro-wallet config …`
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Write a commented configuration for `nitro-wallet serve`, every field explained, with
    /// a new full-access API token: the token is printed once on standard output, only its
    /// SHA-256 goes into the file.
    #[command(
        after_help = "Examples:\n  nitro-wallet config init\n  sudo nitro-wallet config \
                            init --output /etc/nitro-wallet/nitro-wallet.toml > admin-token\n  \
                            nitro-wallet serve --config nitro-wallet.toml"
    )]
    Init {
        /// Where to write it.
        #[arg(long, short, default_value = "nitro-wallet.toml")]
        output: PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// The example configuration, as committed.
const EXAMPLE: &str = include_str!("../../../../nitro-wallet.toml.example");
/// The example's token entry, which [`render`] replaces.
const EXAMPLE_TOKEN: &str = "name = \"example\"\nsha256 = \"0000000000000000000000000000000000000000000000000000000000000000\"\n";
/// The name of the token `config init` makes.
const TOKEN_NAME: &str = "admin";

/// The configuration text with a token entry for `token_sha256`.
fn render(token_sha256: &str) -> String {
    let entry = format!("name = \"{TOKEN_NAME}\"\nsha256 = \"{token_sha256}\"\n");
    format!(
        "# Written by `nitro-wallet config init` (nitro-wallet {}). The [[tokens]] entry `{TOKEN_NAME}`\n\
         # is the SHA-256 of the token that command printed once.\n\n{}",
        env!("CARGO_PKG_VERSION"),
        EXAMPLE.replacen(EXAMPLE_TOKEN, &entry, 1)
    )
}

/// Runs `config …`.
///
/// # Errors
/// When the file exists (without `--force`) or cannot be written.
pub fn config(command: ConfigCommand) -> crate::Result<()> {
    let ConfigCommand::Init { output, force } = command;
    let token = zeroize::Zeroizing::new(crate::tokens::new_token()?);
    let text = render(&crate::api::auth::Tokens::hash(&token));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).mode(0o640);
    if force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    let mut file = options.open(&output).map_err(|e| {
        let message = if e.kind() == std::io::ErrorKind::AlreadyExists {
            format!(
                "{} exists: not overwritten. Pass --force to replace it, or --output to write \
                 elsewhere",
                output.display()
            )
        } else {
            format!("cannot write {}: {e}", output.display())
        };
        Failure::new(Exit::Failed, message)
    })?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", output.display()))?;
    println!("{}", token.as_str());
    eprintln!(
        "wrote {path}: a commented configuration for `nitro-wallet serve`, with the token \
         `{TOKEN_NAME}` (full access) printed above, shown only now.\nReview it ([kms] key_id, \
         [key_store], and [credentials] source = \"aws\" in production), then run\n  \
         nitro-wallet serve --config {path}",
        path = output.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_written_configuration_parses_with_its_new_token() {
        assert_eq!(
            EXAMPLE.matches(EXAMPLE_TOKEN).count(),
            1,
            "nitro-wallet.toml.example must keep its placeholder token entry"
        );
        let hash = crate::api::auth::Tokens::hash("nw_test");
        let text = render(&hash);
        let config = crate::config::Config::parse(&text).unwrap();
        let token = &config.tokens[0];
        assert_eq!(
            (token.name.as_str(), token.sha256.as_str()),
            (TOKEN_NAME, hash.as_str())
        );
        assert!(text.starts_with("# Written by `nitro-wallet config init`"));
        assert!(!text.contains(&"0".repeat(64)));
    }
}
