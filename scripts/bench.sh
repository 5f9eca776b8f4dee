#!/usr/bin/env bash
# End-to-end signing throughput of nitro-wallet on this machine, layer by layer:
#   1. pure signing: `cargo bench -p nitro-wallet-eth --bench sign` (one thread, µs/op);
#   2. the enclave protocol straight on the enclave's Unix socket (no HTTP, no TLS);
#   3. the HTTPS API, over HTTP/2 and over HTTP/1.1 keep-alive.
# It starts a throw-away `nitro-wallet dev` on 127.0.0.1 (port picked by the OS), sends all
# traffic there, and always stops it on exit. Every run is bounded (REQUESTS per layer).
#
# The load generator runs on the same machine and competes with the server for the CPUs: the
# printed CPU time of the server processes (from /proc) gives signatures per server
# CPU-second, which does not depend on how much CPU the load generator took.
#
# Environment: CONCURRENCY (64), REQUESTS (20000), WARMUP (1000), BENCH_THREADS (0 = one
# per CPU; load-generator worker threads), SKIP_BUILD=1, SKIP_SIGN_BENCH=1.
set -euo pipefail

cd "$(dirname "$0")/.."
CONCURRENCY=${CONCURRENCY:-64}
REQUESTS=${REQUESTS:-20000}
WARMUP=${WARMUP:-1000}
BENCH_THREADS=${BENCH_THREADS:-0}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN="$TARGET_DIR/release"

echo "== machine =="
echo "nproc:                    $(nproc)"
echo "cpu:                      $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
echo "load average (before):    $(cut -d' ' -f1-3 /proc/loadavg)"
echo "note:                     the load generator shares these CPUs with the server"
echo

if [ -z "${SKIP_BUILD:-}" ]; then
    echo "building release binaries…" >&2
    cargo build --release --workspace --bins
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/nitro-wallet-bench.XXXXXX")
DEV_PID=""
ENCLAVE_PID=""

stop_dev() {
    if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
        kill -TERM "$DEV_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$DEV_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$DEV_PID" 2>/dev/null || true
        wait "$DEV_PID" 2>/dev/null || true
    fi
    # The dev server kills its enclave on exit; make sure, in case it died hard.
    if [ -n "$ENCLAVE_PID" ] && kill -0 "$ENCLAVE_PID" 2>/dev/null; then
        kill -TERM "$ENCLAVE_PID" 2>/dev/null || true
    fi
    DEV_PID=""
}
cleanup() {
    stop_dev
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 1. Pure signing cost, before the server starts so that nothing else of ours runs.
SIGN_US=""
if [ -z "${SKIP_SIGN_BENCH:-}" ]; then
    echo "== pure signing: cargo bench -p nitro-wallet-eth --bench sign (one thread) =="
    if cargo bench -q -p nitro-wallet-eth --bench sign >"$WORK/sign.txt" 2>"$WORK/sign.err"; then
        cat "$WORK/sign.txt"
        SIGN_US=$(sed -n 's/^from_json + sign_transaction + serde_json out *\([0-9.]*\) µs\/op.*/\1/p' "$WORK/sign.txt")
    else
        echo "(cargo bench failed; see below)"
        tail -n 20 "$WORK/sign.err"
    fi
    echo
fi

# 2. The dev server.
"$BIN/nitro-wallet" dev --data-dir "$WORK/data" --listen 127.0.0.1:0 \
    >"$WORK/dev.out" 2>"$WORK/dev.err" &
DEV_PID=$!
URL=""
for _ in $(seq 1 300); do
    URL=$(sed -n '1s/^nitro-wallet dev is listening on \(https:\/\/[^ ]*\)$/\1/p' "$WORK/dev.out")
    [ -n "$URL" ] && break
    if ! kill -0 "$DEV_PID" 2>/dev/null; then
        echo "nitro-wallet dev exited at start:" >&2
        cat "$WORK/dev.err" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$URL" ]; then
    echo "nitro-wallet dev did not print its URL within 30 s" >&2
    cat "$WORK/dev.err" >&2
    exit 1
fi
ENCLAVE_PID=$(cat "$WORK/data/enclave.pid")
echo "== server =="
echo "url:                      $URL"
echo "host pid:                 $DEV_PID  (nitro-wallet dev: HTTPS, auth, key store, KMS emulator)"
echo "enclave pid:              $ENCLAVE_PID  (nitro-wallet-enclave)"
echo

bench() {
    "$BIN/nitro-wallet-bench" --threads "$BENCH_THREADS" "$@" \
        --concurrency "$CONCURRENCY" --requests "$REQUESTS" --warmup "$WARMUP" \
        --server-pid "host=$DEV_PID" --server-pid "enclave=$ENCLAVE_PID"
}

status=0
bench enclave --socket "$WORK/data/enclave.sock" | tee "$WORK/enclave.txt" || status=1
echo
HTTP_ARGS=(--url "$URL" --token-file "$WORK/data/api-token" --ca-cert "$WORK/data/tls/cert.pem")
bench http "${HTTP_ARGS[@]}" | tee "$WORK/http2.txt" || status=1
echo
bench http "${HTTP_ARGS[@]}" --http1 | tee "$WORK/http1.txt" || status=1
echo

# 3. Side by side.
value() { sed -n "s/^$2: *\([0-9.]*\).*/\1/p" "$WORK/$1" | head -n1; }
NPROC=$(nproc)
echo "== summary (nproc $NPROC, concurrency $CONCURRENCY, $REQUESTS requests per layer) =="
printf '%-26s %14s %22s %16s\n' "layer" "signatures/s" "signatures/server-cpu-s" "server µs/sig"
if [ -n "$SIGN_US" ]; then
    printf '%-26s %14s %22s %16s\n' "pure signing, 1 thread" \
        "$(awk -v u="$SIGN_US" 'BEGIN { printf "%.0f", 1e6 / u }')" \
        "$(awk -v u="$SIGN_US" 'BEGIN { printf "%.0f", 1e6 / u }')" "$SIGN_US"
fi
for layer in "enclave protocol:enclave.txt" "HTTPS, HTTP/2:http2.txt" "HTTPS, HTTP/1.1:http1.txt"; do
    name=${layer%%:*}
    file=${layer#*:}
    printf '%-26s %14s %22s %16s\n' "$name" \
        "$(value "$file" 'signatures\/s')" \
        "$(value "$file" 'signatures\/server-cpu-s')" \
        "$(value "$file" 'server cpu µs\/signature')"
done
if [ -n "$SIGN_US" ]; then
    echo "ideal (nproc × pure signing): $(awk -v u="$SIGN_US" -v n="$NPROC" 'BEGIN { printf "%.0f", n * 1e6 / u }') signatures/s"
fi
echo "load average (after):     $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$status"
