#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs the
# format, lint and doc gates and every test (unit, integration, end to end against anvil,
# the KMS emulator and moto).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "tools: anvil, cast and viem (npm), moto and eth-account (pip)"
# viem is the JavaScript client the JSON-RPC tests drive. One npm command installs all three:
# a later `npm install --no-save` into the same prefix would prune what an earlier one added.
VIEM_VERSION=2.57.20
viem_installed() {
  [ "$(node -p "require('./.tools/node_modules/viem/package.json').version" 2>/dev/null)" = "$VIEM_VERSION" ]
}
if [ ! -x .tools/node_modules/.bin/anvil ] || [ ! -x .tools/node_modules/.bin/cast ] || ! viem_installed; then
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --no-save \
    @foundry-rs/anvil@1.7.1 @foundry-rs/cast@1.7.1 "viem@$VIEM_VERSION"
fi
.tools/node_modules/.bin/anvil --version | head -n 1
viem_installed || { echo "viem $VIEM_VERSION did not install into .tools" >&2; exit 1; }
echo "viem $VIEM_VERSION"
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet "moto[server]>=5,<6"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
command -v moto_server
# eth-account signs the reference transactions of the AWS-sample compatibility test and
# recovers the signers of the JSON-RPC test's signatures.
if ! python3 -c 'import eth_account' >/dev/null 2>&1; then
  python3 -m pip install --quiet "eth-account>=0.13,<0.14"
fi
export PATH="$PWD/.tools/node_modules/.bin:$PATH"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "cargo deny: licenses, sources, bans (deny.toml)"
# Advisories are not checked here: their database is cloned from GitHub, which CI cannot
# reach. Where it can, run `cargo deny --locked check advisories` (see deny.toml).
CARGO_DENY_VERSION=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  cargo install cargo-deny --locked --version "$CARGO_DENY_VERSION"
fi
cargo deny --locked -L error check --show-stats licenses sources bans

step "cargo test"
cargo test --workspace --locked

step "deploy/: scripts, Dockerfiles, systemd units, CDK synth, user data (deploy/test.sh)"
DEPLOY_TEST_STRICT=1 ENCLAVE_BIN="$PWD/target/debug/nitro-wallet-enclave" bash deploy/test.sh

step "fuzz smoke: every cargo-fuzz target for a few seconds from its seeds"
# A smoke run, not a fuzzing campaign (fuzz/README.md has the longer runs and their results):
# it proves each target builds with the sanitizers and survives its seeds and a few seconds of
# mutation. The corpus grows in a temporary directory, never in the repository.
CARGO_FUZZ_VERSION=0.13.2
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
fuzz_tmp=$(mktemp -d)
for target in $(RUSTC_BOOTSTRAP=1 cargo fuzz list --fuzz-dir fuzz); do
  mkdir -p "$fuzz_tmp/$target"
  if ! RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz "$target" "$fuzz_tmp/$target" \
      "fuzz/seeds/$target" -- -max_total_time="${FUZZ_SMOKE_SECONDS:-10}" \
      >"$fuzz_tmp/$target.log" 2>&1; then
    tail -n 60 "$fuzz_tmp/$target.log"
    echo "fuzz target $target failed (its crash input is under fuzz/artifacts/$target/)"
    exit 1
  fi
  grep -E '^Done' "$fuzz_tmp/$target.log" | sed "s/^/$target: /"
done
rm -rf "$fuzz_tmp"
