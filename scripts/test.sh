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
# prometheus_client's parser checks /metrics in the observability tests (an independent
# implementation of the Prometheus text format).
if ! python3 -c 'import prometheus_client' >/dev/null 2>&1; then
  python3 -m pip install --quiet "prometheus-client>=0.20,<1"
fi
# schemathesis contract-tests the REST API against its OpenAPI document (scripts/schemathesis.sh).
SCHEMATHESIS_VERSION=4.32.5
if [ "$(schemathesis --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  python3 -m pip install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
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

step "schemathesis: the REST API of nitro-wallet dev against docs/openapi.json (scripts/schemathesis.sh)"
bash scripts/schemathesis.sh

step "bench smoke: nitro-wallet bench for 3 s against nitro-wallet dev, no failed request"
# Proves the load generator and the path it drives work end to end (it exits non-zero on any
# failed request); no speed is asserted. The README's Performance section has the real runs.
(
  dir=$(mktemp -d)
  dev=""
  trap '[ -n "$dev" ] && kill "$dev" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
  target/debug/nitro-wallet dev --data-dir "$dir" --listen 127.0.0.1:0 >"$dir/out" 2>"$dir/err" &
  dev=$!
  url=""
  for _ in $(seq 1 300); do
    url=$(sed -n 's/^nitro-wallet dev is listening on \(https:[^ ]*\)$/\1/p' "$dir/out")
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$dir/err"; echo "nitro-wallet dev did not start"; exit 1; }
  target/debug/nitro-wallet bench --url "$url" --dev-dir "$dir" --duration 3s --concurrency 8 \
    --keys 2 --mix eip1559=70,legacy=10,message=10,typed-data=10 --limit-duration 1s
)

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
