//! Integration tests of nitro-wallet-attestation: real AWS documents, the dev NSM, and
//! property tests of the parser.

#![allow(clippy::unwrap_used)]

mod dev_nsm;
mod parser_props;
mod real_documents;

use std::path::PathBuf;

/// Reads a file from `tests/data/`.
pub(crate) fn data(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) const PROD: &str = "evervault_prod_2022-10-13_us-east-1.cose";
pub(crate) const DEBUG: &str = "evervault_debug_2022-10-12_us-east-1.cose";
