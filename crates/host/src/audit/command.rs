//! `nitro-wallet audit verify <log>`: checks an audit log and names its first broken link.

use nitro_wallet_audit::{verify_log, VerifyOptions};
use std::path::PathBuf;

/// `nitro-wallet audit …`
#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Verify an audit log: every chain's genesis attestation document (signature chain to
    /// the AWS Nitro root, or --root; PCR0 with --expect-pcr0; the audit key in its user
    /// data), then every entry's hash, signature, sequence number and link. Prints a summary
    /// and exits 0, or names the first broken line (modified, deleted, reordered, duplicated
    /// or forged entry) and exits 1.
    ///
    /// Example (dev mode): nitro-wallet audit verify .nitro-wallet-dev/audit.jsonl --root
    /// .nitro-wallet-dev/attestation/dev-ca-root.pem
    Verify {
        /// The log file (JSON Lines, as `[audit] path` names it).
        log: PathBuf,
        /// Trust anchor (PEM) for the attestation documents instead of the embedded AWS Nitro
        /// Enclaves Root-G1 (dev mode: DEV_DIR/attestation/dev-ca-root.pem).
        #[arg(long)]
        root: Option<PathBuf>,
        /// Expected PCR0 (hex) of every enclave that wrote to the log.
        #[arg(long)]
        expect_pcr0: Option<String>,
        /// Accept chains of debug-mode enclaves (PCR0–2 zero), which prove nothing.
        #[arg(long)]
        allow_debug: bool,
        /// Accept the gaps the host declared (entries it was owed but could not obtain)
        /// instead of failing on them; they are listed.
        #[arg(long)]
        allow_declared_gaps: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `audit …`.
///
/// # Errors
/// When the log does not verify (the message names the line and what is wrong there), or the
/// options are unusable.
pub fn run(command: AuditCommand) -> crate::Result<()> {
    let AuditCommand::Verify {
        log,
        root,
        expect_pcr0,
        allow_debug,
        allow_declared_gaps,
        json,
    } = command;
    let mut attestation = nitro_wallet_attestation::VerifyOptions::default();
    if let Some(root) = root {
        let pem = std::fs::read_to_string(&root)
            .map_err(|e| format!("cannot read {}: {e}", root.display()))?;
        let der = crate::cli::pem_to_der(&pem)
            .ok_or_else(|| format!("{} holds no PEM certificate", root.display()))?;
        attestation = nitro_wallet_attestation::VerifyOptions::with_root(der);
    }
    if let Some(p) = expect_pcr0 {
        let pcr0 =
            hex::decode(p.trim_start_matches("0x")).map_err(|_| "--expect-pcr0 must be hex")?;
        attestation = attestation.expect_pcr(0, pcr0);
    }
    let options = VerifyOptions {
        attestation: attestation.allow_debug(allow_debug),
        allow_declared_gaps,
    };
    let open = || std::fs::File::open(&log).map(std::io::BufReader::new);
    match verify_log(open, &options) {
        Ok(summary) => {
            print_summary(&summary, json);
            Ok(())
        }
        Err(broken) if broken.line == 0 => {
            let why = match &broken.problem {
                nitro_wallet_audit::Problem::Io(e) => e.clone(),
                other => other.to_string(),
            };
            Err(format!("cannot read the audit log {}: {why}", log.display()).into())
        }
        Err(broken) => {
            if json {
                let out = serde_json::json!({
                    "verified": false,
                    "line": broken.line,
                    "chain": broken.chain.map(|c| c.to_string()),
                    "seq": broken.seq,
                    "problem": broken.problem.to_string(),
                });
                println!("{out}");
            }
            Err(format!("audit log {} BROKEN at {broken}", log.display()).into())
        }
    }
}

fn rfc3339(ms: u64) -> String {
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn print_summary(summary: &nitro_wallet_audit::Summary, json: bool) {
    if json {
        let chains: Vec<serde_json::Value> = summary
            .chains
            .iter()
            .map(|c| {
                serde_json::json!({
                    "chain": c.chain.to_string(),
                    "genesis_line": c.genesis_line,
                    "last_line": c.last_line,
                    "entries": c.entries,
                    "last_seq": c.last_seq,
                    "last_hash": c.last_hash.to_string(),
                    "from": rfc3339(c.time_ms.0),
                    "to": rfc3339(c.time_ms.1),
                    "module_id": c.module_id,
                    "pcr0": c.pcr0,
                    "debug": c.debug,
                    "dev": c.dev,
                })
            })
            .collect();
        let gaps: Vec<serde_json::Value> = summary
            .declared_gaps
            .iter()
            .map(|(line, g)| {
                serde_json::json!({
                    "line": line, "chain": g.chain.to_string(), "from": g.from, "to": g.to,
                    "reason": g.reason,
                })
            })
            .collect();
        let out = serde_json::json!({
            "verified": true,
            "lines": summary.lines,
            "entries": summary.entries,
            "chains": chains,
            "declared_gaps": gaps,
            "last_hash": summary.last_hash.map(|h| h.to_string()),
        });
        println!("{out}");
        return;
    }
    let chains = summary.chains.len();
    println!(
        "audit log VERIFIED: {} entries in {chains} chain{} ({} lines)",
        summary.entries,
        if chains == 1 { "" } else { "s" },
        summary.lines
    );
    for c in &summary.chains {
        let mut flags = String::new();
        if c.dev {
            flags.push_str(" [dev: proves nothing]");
        }
        if c.debug {
            flags.push_str(" [DEBUG MODE enclave]");
        }
        println!(
            "chain {}: lines {}-{}, seq 0-{}, {} to {}, PCR0 {}, module {}{flags}",
            c.chain.short(),
            c.genesis_line,
            c.last_line,
            c.last_seq,
            rfc3339(c.time_ms.0),
            rfc3339(c.time_ms.1),
            c.pcr0,
            c.module_id
        );
    }
    for (line, g) in &summary.declared_gaps {
        println!(
            "ACCEPTED GAP at line {line}: entries {} to {} of chain {} ({})",
            g.from,
            g.to,
            g.chain.short(),
            g.reason
        );
    }
    if let Some(h) = summary.last_hash {
        println!(
            "last entry: {h} (keep it outside this host: a log cut after it would still verify)"
        );
    }
}
