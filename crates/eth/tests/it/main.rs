//! Integration tests for `nitro-wallet-eth`: known-answer vectors produced by independent
//! implementations, cross-checks against `k256`, and property tests of the parser.
//!
//! One integration binary per crate (see CONVENTIONS.md); modules by theme.

#![allow(clippy::unwrap_used)]

mod cross_check;
mod parser_props;
mod vectors;
