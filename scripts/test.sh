#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need, then runs the
# format, lint and doc gates and every test (unit, integration, end to end against anvil,
# the KMS emulator and moto).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "tools: anvil and cast (npm @foundry-rs), moto and eth-account (pip)"
if [ ! -x .tools/node_modules/.bin/anvil ] || [ ! -x .tools/node_modules/.bin/cast ]; then
  mkdir -p .tools
  npm install --prefix .tools --no-audit --no-fund --no-save \
    @foundry-rs/anvil@1.7.1 @foundry-rs/cast@1.7.1
fi
.tools/node_modules/.bin/anvil --version | head -n 1
if ! command -v moto_server >/dev/null 2>&1; then
  python3 -m pip install --quiet "moto[server]>=5,<6"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
command -v moto_server
# eth-account signs the reference transactions of the AWS-sample compatibility test.
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

step "cargo test"
cargo test --workspace --locked

step "deploy/: scripts, Dockerfiles, systemd units, CDK synth, user data (deploy/test.sh)"
DEPLOY_TEST_STRICT=1 ENCLAVE_BIN="$PWD/target/debug/nitro-wallet-enclave" bash deploy/test.sh
