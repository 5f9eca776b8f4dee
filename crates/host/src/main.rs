//! `nitro-wallet`: serve the signing API, run everything locally, or talk to a server.

use clap::{CommandFactory as _, Parser, Subcommand};
use nitro_wallet::{cli, config::Config, dev, server, supervise, tls, tokens};
use std::{path::PathBuf, process::ExitCode};

// mimalloc: the request path allocates many small, short-lived buffers across threads;
// glibc malloc cost ~10 % of the server's CPU in the profile (README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Ethereum signing service with keys in an AWS Nitro Enclave.
#[derive(Debug, Parser)]
#[command(version, about, propagate_version = true, after_help = cli::TOP_HELP)]
struct Cli {
    /// Log format (on stderr); `json` writes one object per line, request ids included.
    #[arg(
        long,
        value_enum,
        default_value = "human",
        global = true,
        env = "NITRO_WALLET_LOG_FORMAT"
    )]
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
    #[command(after_help = cli::KEYS_HELP)]
    Keys {
        #[command(flatten)]
        client: cli::ClientArgs,
        #[command(subcommand)]
        command: cli::KeysCommand,
    },
    /// Verify attestation documents; print the measurement a key policy must name.
    #[command(after_help = cli::ATTESTATION_HELP)]
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
    /// Load generator: signatures/s and latency of a running server (by default the local
    /// `nitro-wallet dev`) against the in-process signing limit of this machine.
    Bench(nitro_wallet_bench::BenchArgs),
    /// Sign with a key on a running server.
    #[command(after_help = cli::SIGN_HELP)]
    Sign {
        #[command(flatten)]
        client: cli::ClientArgs,
        #[command(subcommand)]
        command: cli::SignCommand,
    },
    /// Write a commented configuration file to start from.
    Config {
        #[command(subcommand)]
        command: cli::ConfigCommand,
    },
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
        nitro-wallet completions bash > ~/.local/share/bash-completion/completions/nitro-wallet\n  \
        nitro-wallet completions zsh > ~/.zfunc/_nitro-wallet   # with fpath+=~/.zfunc\n  \
        nitro-wallet completions fish > ~/.config/fish/completions/nitro-wallet.fish")]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "nitro-wallet",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
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
            ExitCode::from(cli::exit_code(&*e))
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
        Command::Bench(args) => nitro_wallet_bench::run(args).await,
        Command::Attestation { client, command } => cli::attestation(&client, command).await,
        Command::Audit { command } => nitro_wallet::audit::command::run(command),
        Command::Config { command } => cli::config(command),
        Command::Enclave(_) | Command::Completions { .. } => dispatched_before(),
    }
}

/// `enclave` runs on its own runtime, and `completions` needs none: both are dispatched
/// before this runtime starts.
fn dispatched_before() -> nitro_wallet::Result<()> {
    Err("this subcommand is dispatched before the host runtime starts".into())
}
