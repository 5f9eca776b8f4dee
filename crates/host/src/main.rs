//! `nitro-wallet`: serve the signing API, run everything locally, or talk to a server.

use clap::{Parser, Subcommand};
use nitro_wallet::{cli, config::Config, dev, server, supervise, tls, tokens};
use std::{path::PathBuf, process::ExitCode};

/// Ethereum signing service with keys in an AWS Nitro Enclave.
#[derive(Debug, Parser)]
#[command(version, about, propagate_version = true)]
struct Cli {
    /// Log format.
    #[arg(long, value_enum, default_value = "human", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTPS API (on the EC2 parent instance).
    Serve {
        /// TOML configuration file (see nitro-wallet.toml.example).
        #[arg(
            long,
            short,
            env = "NITRO_WALLET_CONFIG",
            default_value = "/etc/nitro-wallet/nitro-wallet.toml"
        )]
        config: PathBuf,
    },
    /// Run the whole system locally: KMS emulator, enclave process, HTTPS API. Insecure.
    Dev(dev::DevArgs),
    /// Manage keys on a running server.
    Keys {
        #[command(flatten)]
        client: cli::ClientArgs,
        #[command(subcommand)]
        command: cli::KeysCommand,
    },
    /// Verify attestation documents; print the measurement a key policy must name.
    Attestation {
        #[command(flatten)]
        client: cli::ClientArgs,
        #[command(subcommand)]
        command: cli::AttestationCommand,
    },
    /// Check the audit log of signing decisions.
    Audit {
        #[command(subcommand)]
        command: nitro_wallet::audit::command::AuditCommand,
    },
    /// Keep the Nitro Enclaves running: start them with nitro-cli, check them, restart them
    /// with backoff when they die or hang (on the EC2 parent instance).
    Supervise(supervise::SuperviseArgs),
    /// Manage API tokens and their scopes in the tokens file that serve re-reads.
    Tokens(tokens::TokensArgs),
    /// Run the enclave signing server (what the enclave image runs; dev mode starts it as a
    /// child process).
    Enclave(nitro_wallet_enclave::cli::EnclaveArgs),
    /// Sign with a key on a running server.
    Sign {
        #[command(flatten)]
        client: cli::ClientArgs,
        #[command(subcommand)]
        command: cli::SignCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("NITRO_WALLET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    if let Command::Enclave(args) = cli.command {
        return nitro_wallet_enclave::cli::run(args);
    }
    tls::install_crypto_provider();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> nitro_wallet::Result<()> {
    match command {
        Command::Serve { config } => {
            let config = Config::load(&config)?;
            if matches!(
                config.credentials,
                nitro_wallet::config::CredentialsConfig::InsecureDev
            ) {
                tracing::warn!(
                    "INSECURE: credentials.source = \"insecure-dev\" only works with the local KMS \
                     emulator; use source = \"aws\" with AWS KMS"
                );
            }
            let listener = std::net::TcpListener::bind(config.server.listen)?;
            server::run(
                &config,
                listener,
                |addr, cert| {
                    tracing::info!(%addr, self_signed_cert = ?cert, "serving HTTPS");
                },
                nitro_wallet::shutdown_signal(),
            )
            .await
        }
        Command::Dev(args) => dev::run(args).await,
        Command::Supervise(args) => supervise::run(args).await,
        Command::Tokens(args) => tokens::run(args),
        Command::Keys { client, command } => cli::keys(&client, command).await,
        Command::Sign { client, command } => cli::sign(&client, command).await,
        Command::Attestation { client, command } => cli::attestation(&client, command).await,
        Command::Audit { command } => nitro_wallet::audit::command::run(command),
        Command::Enclave(_) => unreachable_enclave(),
    }
}

/// `enclave` runs on its own runtime before this one starts.
fn unreachable_enclave() -> nitro_wallet::Result<()> {
    Err("the enclave subcommand is dispatched before the host runtime starts".into())
}
