//! Integration tests for `nitro-wallet-eth`: known-answer vectors produced by independent
//! implementations, cross-checks against `k256`, property tests of the parser, and real
//! Foundry tools (anvil mines what we sign, cast computes the same bytes).
//!
//! One integration binary per crate (see CONVENTIONS.md); modules by theme.

#![allow(clippy::unwrap_used)]

mod cross_check;
mod node;
mod parser_props;
mod vectors;
