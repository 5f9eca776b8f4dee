#!/usr/bin/env bash
# The README's Performance table, measured on this machine in one run with release binaries
# and `nitro-wallet bench` against a throw-away `nitro-wallet dev` on 127.0.0.1:
#   1. peak: closed loop, EIP-1559, HTTP/2 and HTTP/1.1, with the in-process limit and ratio;
#   2. latency at half of the HTTP/2 peak (open loop, fixed rate);
#   3. overload: open loop at twice the peak (load shedding: 503 + Retry-After);
#   4. cold start: KEYS keys in the store, time from `nitro-wallet dev` start until the
#      enclave holds all of them (the warm-up unwraps them in the background), and the
#      enclave's memory per cached key (VmRSS with and without KEYS keys, divided by KEYS).
# Every run is bounded; both servers are stopped on exit.
#
# Environment: DURATION (10s per measurement), KEYS (10000), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
KEYS=${KEYS:-10000}
BIN="${CARGO_TARGET_DIR:-target}/release/nitro-wallet"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release -p nitro-wallet >&2

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nitro-wallet-perf.XXXXXX")
DEV_PID=""
stop_dev() {
  [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null || { DEV_PID=""; return 0; }
  kill -TERM "$DEV_PID" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$DEV_PID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$DEV_PID" 2>/dev/null || true
  wait "$DEV_PID" 2>/dev/null || true
  DEV_PID=""
}
trap 'stop_dev; rm -rf "$WORK"' EXIT
trap 'exit 130' INT TERM

# Starts dev on $WORK/dev; sets URL and DEV_PID; prints the start time (ns).
start_dev() {
  : >"$WORK/dev.out"
  "$BIN" dev --data-dir "$WORK/dev" --listen 127.0.0.1:0 >"$WORK/dev.out" 2>>"$WORK/dev.err" &
  DEV_PID=$!
  URL=""
  for _ in $(seq 1 600); do
    URL=$(sed -n '1s/^nitro-wallet dev is listening on \(https:\/\/[^ ]*\)$/\1/p' "$WORK/dev.out")
    [ -n "$URL" ] && return 0
    kill -0 "$DEV_PID" 2>/dev/null || break
    sleep 0.05
  done
  cat "$WORK/dev.err" >&2
  echo "nitro-wallet dev did not start" >&2
  exit 1
}
cached_keys() {
  curl -s --cacert "$WORK/dev/tls/cert.pem" "$URL/readyz" |
    sed -n 's/.*"cached_keys":\([0-9]*\).*/\1/p' | head -n1
}
rss_kb() { sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"; }
bench() {
  "$BIN" bench --url "$URL" --dev-dir "$WORK/dev" --server-pid "host=$DEV_PID" \
    --server-pid "enclave=$(cat "$WORK/dev/enclave.pid")" "$@"
}
value() { sed -n "s/^$2: *\([0-9.]*\).*/\1/p" "$1" | head -n1; }

echo "== machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "== commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
echo "== load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

start_dev
ENCLAVE_PID=$(cat "$WORK/dev/enclave.pid")
echo "== 1. peak, closed loop, 64 in flight, EIP-1559, one key"
bench --duration "$DURATION" --concurrency 64 --http 2 | tee "$WORK/h2.txt"
echo
bench --duration "$DURATION" --concurrency 64 --http 1.1 --limit-duration 0 | tee "$WORK/h1.txt"
PEAK=$(value "$WORK/h2.txt" 'signatures\/s')
echo
echo "== 2. half of the HTTP/2 peak ($PEAK/2 per second), open loop"
bench --duration "$DURATION" --rate "$((${PEAK%.*} / 2))" --concurrency 1024 --limit-duration 0 |
  tee "$WORK/half.txt"
echo
metrics() {
  curl -s --cacert "$WORK/dev/tls/cert.pem" -H "Authorization: Bearer $(cat "$WORK/dev/api-token")" \
    "$URL/metrics"
}
# The server's own view of the signing route between two scrapes: answers by status, and the
# latency histogram's buckets (its time from reading a request to answering it).
server_side() {
  python3 - "$1" "$2" <<'PY'
import re, sys
def read(path):
    status, buckets = {}, {}
    for line in open(path):
        m = re.match(r'nitro_wallet_http_requests_total\{.*route="/v1/keys/\{address\}/sign/transaction".*status="(\d+)".*\} (\d+)', line)
        if m: status[m[1]] = status.get(m[1], 0) + int(m[2])
        m = re.match(r'nitro_wallet_http_request_duration_seconds_bucket\{route="/v1/keys/\{address\}/sign/transaction",le="([^"]+)"\} (\d+)', line)
        if m: buckets[m[1]] = int(m[2])
    return status, buckets
(s0, b0), (s1, b1) = read(sys.argv[1]), read(sys.argv[2])
print("server side, answers by status:", {k: v - s0.get(k, 0) for k, v in s1.items() if v - s0.get(k, 0)})
total = b1.get("+Inf", 0) - b0.get("+Inf", 0)
def within(share):  # the first bucket holding `share` of the answers
    return next((le for le in b1 if b1[le] - b0.get(le, 0) >= share * total), "?")
if total:
    print(f"server side, latency: half of {total} answers within {within(0.5)} s")
    print(f"server side, latency: 99 % within {within(0.99)} s")
    print(f"server side, latency: all within {within(1.0)} s")
PY
}

echo "== 3. twice the HTTP/2 peak, open loop, 16 connections (the server sheds past 1024 in progress)"
metrics >"$WORK/metrics-before"
bench --duration "$DURATION" --rate "$((${PEAK%.*} * 2))" --concurrency 4096 --connections 16 \
  --limit-duration 0 --warmup 0 --timeout 30s | tee "$WORK/over.txt" || true
metrics >"$WORK/metrics-after"
server_side "$WORK/metrics-before" "$WORK/metrics-after"
echo

echo "== 4. cold start with $KEYS keys"
RSS0=$(rss_kb "$ENCLAVE_PID")
C0=$(cached_keys)
bench --keys "$KEYS" --requests 1 --warmup 0 --limit-duration 0 >/dev/null
sleep 1 # /readyz reports the enclave's last health probe (every 500 ms in dev mode)
C1=$(cached_keys)
RSS1=$(rss_kb "$ENCLAVE_PID")
stop_dev
T0=$(date +%s%N)
start_dev
T_LISTEN=$(date +%s%N)
N=0
for _ in $(seq 1 1200); do
  N=$(cached_keys)
  [ "${N:-0}" -ge "$KEYS" ] && break
  sleep 0.05
done
T1=$(date +%s%N)
RSS2=$(rss_kb "$(cat "$WORK/dev/enclave.pid")")
# The warm-up's own account of its pass (the last one logged: the second start's).
grep 'warm-up: keys' "$WORK/dev.err" | tail -n1 | sed 's/\x1b\[[0-9;]*m//g' || true
echo "keys in the store:        $(find "$WORK/dev/keys" -name '*.json' | wc -l)"
echo "listening after:          $(((T_LISTEN - T0) / 1000000)) ms"
echo "all $KEYS keys cached after: $(((T1 - T0) / 1000000)) ms (cached: $N; polled on /readyz, which lags by up to 500 ms)"
echo "enclave VmRSS:            ${RSS0} kB with ${C0:-?} keys cached, ${RSS1} kB with ${C1:-?} (first run), ${RSS2} kB with ${N} (after warm-up)"
echo "memory per cached key:    $(awk -v a="$RSS0" -v b="$RSS1" -v n="$((C1 - C0))" 'BEGIN { printf "%.2f KiB", (b - a) / n }')"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
