//! `nitro-wallet attestation …`: verify an attestation document (from a file or fetched
//! fresh from a server with a nonce of ours), and print the PCR0 of a dev-mode enclave binary.

use super::{client::Client, output::Fields, pem_to_der, ClientArgs, Failure};
use clap::Subcommand;
use std::path::PathBuf;

/// `nitro-wallet attestation …`
#[derive(Debug, Subcommand)]
pub enum AttestationCommand {
    /// Verify an attestation document and print what it attests. SOURCE is a file holding the
    /// raw document, `-` for standard input, or a server URL (https://…), from which a fresh
    /// document is fetched with a random nonce that must come back in it.
    ///
    /// Example: nitro-wallet attestation verify https://127.0.0.1:8443 --root
    /// .nitro-wallet-dev/attestation/dev-ca-root.pem
    Verify {
        /// File, `-`, or server URL.
        source: String,
        /// Verify at this time (RFC 3339) instead of now; real documents expire within hours.
        #[arg(long)]
        at: Option<String>,
        /// Trust anchor (PEM) instead of the embedded AWS Nitro Enclaves Root-G1.
        #[arg(long)]
        root: Option<PathBuf>,
        /// Expected PCR0 (hex), the enclave image measurement.
        #[arg(long)]
        expect_pcr0: Option<String>,
        /// Expected nonce (hex).
        #[arg(long)]
        nonce: Option<String>,
        /// Accept a debug-mode enclave (PCR0–2 zero), which proves nothing about its code.
        #[arg(long)]
        allow_debug: bool,
    },
    /// Print the PCR0 a KMS key policy must name for an enclave binary as dev mode measures it
    /// (SHA-384 of the file; a real EIF's PCR0 comes from `nitro-cli build-enclave`).
    Pcrs {
        /// The enclave binary [default: this executable, which dev mode runs as the enclave].
        #[arg(long)]
        binary: Option<PathBuf>,
    },
}

/// Runs `attestation …`.
///
/// # Errors
/// When the document cannot be obtained or does not verify (the reason is the message).
pub async fn attestation(args: &ClientArgs, command: AttestationCommand) -> crate::Result<()> {
    use nitro_wallet_attestation::{verify, VerifyOptions};
    match command {
        AttestationCommand::Pcrs { binary } => {
            let binary = match binary {
                Some(b) => b,
                None => std::env::current_exe()?,
            };
            let pcr0 = nitro_wallet_attestation::pcr0_of_file(&binary)?;
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "binary": binary, "pcr0": hex::encode(pcr0) })
                );
            } else {
                let fields = Fields::default()
                    .add("binary", binary.display().to_string())
                    .add("PCR0", hex::encode(pcr0));
                print!("{fields}");
            }
            Ok(())
        }
        AttestationCommand::Verify {
            source,
            at,
            root,
            expect_pcr0,
            nonce,
            allow_debug,
        } => {
            let mut nonce = nonce
                .map(|n| hex::decode(n.trim_start_matches("0x")))
                .transpose()
                .map_err(|_| Failure::usage("--nonce must be hex"))?;
            let document = if source.starts_with("https://") || source.starts_with("http://") {
                let fresh = nonce.clone().map_or_else(
                    || {
                        let mut n = vec![0u8; 32];
                        getrandom::fill(&mut n).map(|()| n)
                    },
                    Ok,
                )?;
                let client = Client::new(&ClientArgs {
                    url: source.clone(),
                    ..args.clone()
                })?;
                let path = format!("/v1/attestation?nonce={}", hex::encode(&fresh));
                let out = client.send(reqwest::Method::GET, &path, None).await?;
                nonce = Some(fresh);
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD
                    .decode(out.json["document"].as_str().unwrap_or_default())
                    .map_err(|_| "the server's document is not base64")?
            } else {
                super::read_source(&source, "the attestation document")?
            };
            let mut options = VerifyOptions::default();
            if let Some(root) = root {
                let pem = std::fs::read_to_string(&root)
                    .map_err(|e| format!("cannot read {}: {e}", root.display()))?;
                let der = pem_to_der(&pem)
                    .ok_or_else(|| format!("{} holds no PEM certificate", root.display()))?;
                options = VerifyOptions::with_root(der);
            }
            if let Some(at) = at {
                let t = time::OffsetDateTime::parse(
                    &at,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| {
                    Failure::usage(format!(
                        "--at must be an RFC 3339 time such as 2025-01-02T03:04:05Z: {e}"
                    ))
                })?;
                options = options.at(t.into());
            }
            if let Some(p) = expect_pcr0 {
                options = options.expect_pcr(
                    0,
                    hex::decode(p.trim_start_matches("0x"))
                        .map_err(|_| Failure::usage("--expect-pcr0 must be hex"))?,
                );
            }
            if let Some(n) = nonce {
                options = options.expect_nonce(n);
            }
            options = options.allow_debug(allow_debug);
            let verified = verify(&document, &options)
                .map_err(|e| format!("attestation document REJECTED: {e}"))?;
            print_document(&verified, args.json);
            Ok(())
        }
    }
}

fn print_document(v: &nitro_wallet_attestation::VerifiedDocument, json: bool) {
    let d = &v.document;
    let timestamp = i64::try_from(d.timestamp / 1000)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let pcrs: std::collections::BTreeMap<String, String> = d
        .pcrs
        .iter()
        .filter(|(i, v)| **i <= 2 || v.iter().any(|b| *b != 0))
        .map(|(i, v)| (format!("PCR{i}"), hex::encode(v)))
        .collect();
    let opt = |b: &Option<Vec<u8>>| b.as_ref().map(hex::encode);
    if json {
        let out = serde_json::json!({
            "verified": true, "module_id": d.module_id, "timestamp": timestamp, "debug": v.debug,
            "pcrs": pcrs, "public_key": opt(&d.public_key), "user_data": opt(&d.user_data), "nonce": opt(&d.nonce),
        });
        println!("{out}");
        return;
    }
    let show = |b: &Option<Vec<u8>>| {
        b.as_ref().map_or_else(
            || "-".to_owned(),
            |b| format!("{} ({} bytes)", hex::encode(b), b.len()),
        )
    };
    let debug = if v.debug {
        "YES (proves nothing about the code)"
    } else {
        "no"
    };
    let mut fields = Fields::default()
        .add("module_id", d.module_id.as_str())
        .add("timestamp", timestamp)
        .add("debug mode", debug);
    for (name, value) in &pcrs {
        fields = fields.add(name, value.as_str());
    }
    let fields = fields
        .add("public_key", show(&d.public_key))
        .add("user_data", show(&d.user_data))
        .add("nonce", show(&d.nonce));
    print!("attestation document VERIFIED\n{fields}");
}
