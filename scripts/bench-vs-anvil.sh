#!/usr/bin/env bash
# eth_signTransaction side by side: anvil's own, with its unlocked dev account, and
# nitro-wallet's `/rpc`, with a key in the (dev) enclave, driven by the same load generator
# (`nitro-wallet bench`) with the same settings and the same transaction, one after the other
# on this machine. Both servers listen on 127.0.0.1 only and are stopped on exit.
#
# anvil speaks plain HTTP and keeps its key in its own process; nitro-wallet adds TLS, a bearer
# token, key policies, the audit log and the host↔enclave hop. The comparison shows what those
# cost, not which signer is "faster".
#
# Environment: CONCURRENCY (32), DURATION (10s), HTTP (1.1; or 2, which anvil must accept as
# HTTP/2 in the clear), MIX (eip1559=100), SKIP_BUILD=1, ANVIL (.tools/node_modules/.bin/anvil,
# installed by scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

CONCURRENCY=${CONCURRENCY:-32}
DURATION=${DURATION:-10s}
HTTP=${HTTP:-1.1}
MIX=${MIX:-eip1559=100}
ANVIL=${ANVIL:-.tools/node_modules/.bin/anvil}
BIN="${CARGO_TARGET_DIR:-target}/release/nitro-wallet"

[ -x "$ANVIL" ] || { echo "no anvil at $ANVIL: run scripts/test.sh once (it installs it) or set ANVIL" >&2; exit 1; }
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo build --release -p nitro-wallet >&2
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nitro-wallet-vs-anvil.XXXXXX")
ANVIL_PID=""
DEV_PID=""
stop() {
  local pid=$1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  stop "$DEV_PID"
  stop "$ANVIL_PID"
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# anvil on a port the OS picks (asked of a throw-away socket; anvil has no port 0).
ANVIL_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ANVIL" --host 127.0.0.1 --port "$ANVIL_PORT" --silent >"$WORK/anvil.log" 2>&1 &
ANVIL_PID=$!

"$BIN" dev --data-dir "$WORK/dev" --listen 127.0.0.1:0 >"$WORK/dev.out" 2>"$WORK/dev.err" &
DEV_PID=$!

URL=""
for _ in $(seq 1 300); do
  URL=$(sed -n '1s/^nitro-wallet dev is listening on \(https:\/\/[^ ]*\)$/\1/p' "$WORK/dev.out")
  [ -n "$URL" ] && break
  kill -0 "$DEV_PID" 2>/dev/null || { cat "$WORK/dev.err" >&2; echo "nitro-wallet dev exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { cat "$WORK/dev.err" >&2; echo "nitro-wallet dev did not start within 30 s" >&2; exit 1; }
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' \
    "http://127.0.0.1:$ANVIL_PORT" && break
  kill -0 "$ANVIL_PID" 2>/dev/null || { cat "$WORK/anvil.log" >&2; echo "anvil exited" >&2; exit 1; }
  sleep 0.1
done
# The npm package's `anvil` is a Node.js launcher; the server is its child process.
ANVIL_SERVER_PID=$(pgrep -n -P "$ANVIL_PID" anvil || echo "$ANVIL_PID")

SETTINGS=(--http "$HTTP" --concurrency "$CONCURRENCY" --duration "$DURATION" --mix "$MIX" --keys 1)
echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== settings: ${SETTINGS[*]}"
echo
status=0
"$BIN" bench --target node --url "http://127.0.0.1:$ANVIL_PORT" "${SETTINGS[@]}" \
  --server-pid "anvil=$ANVIL_SERVER_PID" | tee "$WORK/anvil.txt" || status=1
echo
"$BIN" bench --target rpc --url "$URL" --dev-dir "$WORK/dev" "${SETTINGS[@]}" \
  --server-pid "host=$DEV_PID" --server-pid "enclave=$(cat "$WORK/dev/enclave.pid")" \
  | tee "$WORK/nitro.txt" || status=1
echo

value() { sed -n "s/^$2: *\([0-9.]*\).*/\1/p" "$1" | head -n1; }
printf '%-34s %14s %12s %12s %16s\n' "eth_signTransaction" "signatures/s" "p50 ms" "p99 ms" "server µs/sig"
for row in "anvil (HTTP, unlocked account):$WORK/anvil.txt" "nitro-wallet /rpc (HTTPS, enclave):$WORK/nitro.txt"; do
  name=${row%%:*}
  file=${row#*:}
  printf '%-34s %14s %12s %12s %16s\n' "$name" "$(value "$file" 'signatures\/s')" \
    "$(value "$file" 'latency p50')" "$(value "$file" 'latency p99')" \
    "$(value "$file" 'server cpu µs\/signature')"
done
exit "$status"
