//! `nitro-wallet`: the host side of the signing service.
//!
//! It runs on the EC2 parent instance, which is trusted for availability only: it serves the
//! HTTPS API ([`api`]), keeps key records ([`keystore`]) that hold nothing but KMS ciphertext,
//! and forwards every key operation to an enclave over one multiplexed connection per enclave
//! ([`enclave_client`]), balanced over several enclaves with health checks and failover
//! ([`enclave_pool`]). [`supervise`] starts enclaves and restarts them when they die or hang;
//! [`dev`] runs the whole system on one machine with no cloud.

pub mod api;
pub mod audit;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod dev;
pub mod enclave_client;
pub mod enclave_pool;
pub mod fsutil;
pub mod keystore;
pub mod legacy;
pub mod metrics;
pub mod request_id;
pub mod server;
pub mod supervise;
pub mod tls;
pub mod tokens;
pub mod upstream;
pub mod warmup;

/// Error type of the binary's top-level operations: a message, never a secret.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub use nitro_wallet_enclave::cli::shutdown_signal;
