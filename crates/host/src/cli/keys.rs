//! `nitro-wallet keys …`: create, import, migrate, list and show keys on a running server.

use super::{
    client::Client,
    output::{text, Fields, Table},
    parse_address, ClientArgs, Failure,
};
use alloy_primitives::Address;
use clap::Subcommand;
use reqwest::Method;
use std::io::Read as _;

/// `nitro-wallet keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Generate a key inside the enclave.
    Create {
        /// A label for people.
        #[arg(long)]
        label: Option<String>,
    },
    /// Import a private key, read from standard input (never from the command line).
    ///
    /// Example: nitro-wallet keys import --label imported < key.hex
    Import {
        /// A label for people.
        #[arg(long)]
        label: Option<String>,
    },
    /// List the keys the token may use, as a table.
    List,
    /// Show one key.
    Show {
        /// The key's address (0x + 40 hex digits).
        #[arg(value_parser = parse_address)]
        address: Address,
    },
    /// Migrate a key stored by the reference sample's `set_key` (the base64 KMS ciphertext of
    /// the hex key in a Secrets Manager secret). The enclave unwraps it and wraps it again
    /// bound to its address; the plaintext never leaves the enclave, and the secret is left
    /// as it is. The sample's clients keep working: `POST /` with the same `secret_id`.
    ///
    /// Example: nitro-wallet keys migrate --secret-id arn:aws:secretsmanager:…:secret:eth-key-AbCdEf
    Migrate {
        /// Name or ARN of the sample's secret.
        #[arg(long)]
        secret_id: String,
        /// KMS key that encrypted it, when known (KMS finds it in the ciphertext otherwise).
        #[arg(long)]
        legacy_kms_key_id: Option<String>,
        /// A label for people.
        #[arg(long)]
        label: Option<String>,
    },
}

/// Runs `keys …`.
///
/// # Errors
/// When the server is unreachable or refuses (a [`Failure`] saying what to do).
pub async fn keys(args: &ClientArgs, command: KeysCommand) -> crate::Result<()> {
    let client = Client::new(args)?;
    let reply = match command {
        KeysCommand::Create { label } => {
            let body = serde_json::json!({ "label": label });
            client.send(Method::POST, "/v1/keys", Some(&body)).await?
        }
        KeysCommand::Import { label } => {
            let mut secret = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_to_string(&mut secret)?;
            if secret.trim().is_empty() {
                return Err(Failure::usage(
                    "no private key on standard input: pipe it in (nitro-wallet keys import < \
                     key.hex), never on the command line",
                )
                .into());
            }
            let body = serde_json::json!({ "private_key": secret.trim(), "label": label });
            client
                .send(Method::POST, "/v1/keys/import", Some(&body))
                .await?
        }
        KeysCommand::Migrate {
            secret_id,
            legacy_kms_key_id,
            label,
        } => {
            let body = serde_json::json!({
                "secret_id": secret_id,
                "legacy_kms_key_id": legacy_kms_key_id,
                "label": label,
            });
            client
                .send(Method::POST, "/v1/keys/migrate", Some(&body))
                .await?
        }
        KeysCommand::List => {
            let reply = client.send(Method::GET, "/v1/keys", None).await?;
            reply.print(args.json, key_table);
            return Ok(());
        }
        KeysCommand::Show { address } => {
            let path = format!("/v1/keys/{}", address.to_checksum(None));
            client.send(Method::GET, &path, None).await?
        }
    };
    reply.print(args.json, key_fields);
    Ok(())
}

/// `GET /v1/keys` as a table.
fn key_table(out: &serde_json::Value) -> String {
    let keys = out["keys"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut table = Table::new(["ADDRESS", "LABEL", "CREATED", "POLICY"]);
    for k in keys {
        table.row([
            text(&k["address"]),
            text(&k["label"]),
            text(&k["created_at"]),
            policy_summary(&k["policy"]),
        ]);
    }
    format!("{table}{} key(s)\n", keys.len())
}

/// One key as `name: value` lines.
fn key_fields(k: &serde_json::Value) -> String {
    let mut fields = Fields::default()
        .add("address", text(&k["address"]))
        .add("label", text(&k["label"]))
        .add("created_at", text(&k["created_at"]))
        .add("kms_key_id", text(&k["kms_key_id"]))
        .add("policy", text(&k["policy"]));
    if let Some(public_key) = k.get("public_key") {
        fields = fields.add("public_key", text(public_key));
    }
    if let Some(from) = k.get("migrated_from") {
        fields = fields.add("migrated_from", text(&from["secret_arn"]));
    }
    fields.to_string()
}

/// `-` without a policy, else how many rules it has (`keys show` prints it whole).
fn policy_summary(policy: &serde_json::Value) -> String {
    match policy.as_object() {
        Some(rules) => format!("{} rule(s)", rules.len()),
        None => text(policy),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_print_as_a_table_and_as_fields() {
        let list = serde_json::json!({ "keys": [
            { "address": "0xAb", "label": "hot wallet", "created_at": "2025-01-02T03:04:05Z",
              "kms_key_id": "alias/k", "policy": null },
            { "address": "0xCdEf", "label": null, "created_at": "2025-01-02T03:04:06Z",
              "kms_key_id": "alias/k", "policy": { "max_value": "1", "allowed_to": [] } },
        ]});
        assert_eq!(
            key_table(&list),
            "ADDRESS  LABEL       CREATED               POLICY\n\
             0xAb     hot wallet  2025-01-02T03:04:05Z  -\n\
             0xCdEf   -           2025-01-02T03:04:06Z  2 rule(s)\n\
             2 key(s)\n"
        );
        let shown = key_fields(&list["keys"][0]);
        assert!(
            shown.starts_with("address:    0xAb\nlabel:      hot wallet\n"),
            "{shown}"
        );
    }
}
