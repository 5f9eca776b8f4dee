//! Integration tests of the host: the API in process (`Router::oneshot` against a real
//! enclave server and the KMS emulator), and end to end through the real binaries, anvil and
//! the CLI.

#![allow(clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

mod api;
mod attestation;
mod audit;
mod cli;
mod credentials;
mod e2e;
mod leaks;
mod load;
mod metrics;
mod mtls;
mod new_types;
mod openapi;
mod pool;
mod rpc;
mod sample_compat;
mod secrets_manager;
mod signing;
mod supervise;
mod support;
mod tokens;
