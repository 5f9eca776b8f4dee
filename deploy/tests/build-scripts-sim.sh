#!/usr/bin/env bash
# Runs deploy/scripts/build-eif.sh and build-host.sh against stand-ins for docker and nitro-cli
# (there is no Docker engine and no nitro-cli on the development machines): the argument
# checks, the image checks before build-enclave, the parsing of nitro-cli's output into
# measurements.json, the reproducibility check, and the host binary's glibc check.
# What the stand-ins cannot show: that the real images build and that the real EIF boots.
#
# usage: deploy/tests/build-scripts-sim.sh WORKDIR
# Prints one "ok"/"FAIL" line per check and ends with "N passed, N failed".
set -uo pipefail

work=$1
deploy=$(cd "$(dirname "$0")/.." && pwd)
pass=0
fail=0
ok() { pass=$((pass + 1)); printf 'ok    build: %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf 'FAIL  build: %s\n' "$1"; sed 's/^/      /' "$work/out" | tail -n 15; }
# succeeds DESCRIPTION COMMAND... / fails DESCRIPTION PATTERN COMMAND...
succeeds() { local w=$1; shift; if "$@" >"$work/out" 2>&1; then ok "$w"; else bad "$w"; fi; }
fails() {
  local w=$1 p=$2
  shift 2
  if "$@" >"$work/out" 2>&1; then bad "$w (it succeeded)"; elif grep -qE -- "$p" "$work/out"; then ok "$w"; else bad "$w (no /$p/)"; fi
}

bin="$work/bin"
mkdir -p "$bin" "$work/state"
PCR0=$(printf 'build sim' | sha384sum | cut -d' ' -f1)
echo "$PCR0" >"$work/state/pcr0"
echo '{"Cmd": null, "Entrypoint": ["/nitro-wallet-enclave", "--listen", "vsock://any:5000"], "Env": ["NITRO_WALLET_KMS_REGION=eu-west-1"]}' >"$work/state/config"
# A binary for `docker cp` to hand out as the host binary.
host_src=$deploy/../target/release/nitro-wallet
[ -x "$host_src" ] || host_src=/bin/true

cat >"$bin/docker" <<EOF
#!/bin/sh
echo "docker \$*" >>"$work/calls"
case "\$1" in
  info | build | rm) exit 0 ;;
  create) echo c0ffee ;;
  cp) cp "$host_src" "\$3" ;;
  image)
    case "\$4" in
      *Config*) cat "$work/state/config" ;;
      *Id*) echo sha256:0123456789abcdef ;;
      *RepoDigests*) echo 'rust@sha256:feed' ;;
    esac ;;
esac
EOF
cat >"$bin/nitro-cli" <<EOF
#!/bin/sh
echo "nitro-cli \$*" >>"$work/calls"
case "\$1" in
  --version) echo "Nitro CLI 1.4.2" ;;
  build-enclave)
    while [ \$# -gt 0 ]; do [ "\$1" = --output-file ] && out=\$2; shift; done
    echo "fake eif" >"\$out"
    echo "Start building the Enclave Image..." >&2
    printf '{\n  "Measurements": {\n    "HashAlgorithm": "Sha384 { ... }",\n    "PCR0": "%s",\n    "PCR1": "%s",\n    "PCR2": "%s"\n  }\n}\n' \
      "\$(head -n 1 "$work/state/pcr0")" "\$(printf '1%.0s' \$(seq 96))" "\$(printf '2%.0s' \$(seq 96))"
    # Each build may report the next line of the file (to fake an unreproducible build).
    tail -n +2 "$work/state/pcr0" >"$work/state/pcr0.next"
    if [ -s "$work/state/pcr0.next" ]; then mv "$work/state/pcr0.next" "$work/state/pcr0"; fi
    ;;
esac
exit 0
EOF
chmod +x "$bin/docker" "$bin/nitro-cli"
eif_sh="$deploy/scripts/build-eif.sh"
host_sh="$deploy/scripts/build-host.sh"

# ---- without the tools ----
mkdir -p "$work/empty-path"
for t in python3 git sha256sum dirname; do ln -sf "$(command -v "$t")" "$work/empty-path/$t"; done
fails "build-eif.sh says docker is missing" "docker not found" env PATH="$work/empty-path" /bin/bash "$eif_sh" --region eu-west-1 --out "$work/o0"
ln -sf "$bin/docker" "$work/empty-path/docker"
fails "build-eif.sh says nitro-cli is missing, and how to get it" "nitro-cli not found: install aws-nitro-enclaves-cli" env PATH="$work/empty-path" /bin/bash "$eif_sh" --region eu-west-1 --out "$work/o0"
fails "build-eif.sh refuses a malformed region" "must be an AWS region" env PATH="$bin:$PATH" "$eif_sh" --region "eu west" --out "$work/o0"
fails "build-eif.sh --release refuses an unpinned builder image" "pin RUST_IMAGE by digest" env PATH="$bin:$PATH" RUST_IMAGE=rust:1.95.0-bookworm "$eif_sh" --region eu-west-1 --release --out "$work/o0"

# ---- a build ----
export PATH="$bin:$PATH"
succeeds "build-eif.sh writes measurements.json" "$eif_sh" --region eu-west-1 --out "$work/o1" --tag t:1
succeeds "measurements.json: PCR0/1/2, region, EIF path and digest, image, build time" python3 - "$work/o1" "$PCR0" <<'PY'
import hashlib, json, sys
d, pcr0 = sys.argv[1:]
m = json.load(open(d + "/measurements.json"))
assert m["pcr0"] == pcr0 and m["pcr1"] == "1" * 96 and m["pcr2"] == "2" * 96, m
assert m["region"] == "eu-west-1" and m["eif"] == "nitro-wallet.eif", m
assert m["eif_sha256"] == hashlib.sha256(open(d + "/nitro-wallet.eif", "rb").read()).hexdigest()
assert m["image"] == "t:1" and m["image_id"].startswith("sha256:") and m["built_at"].endswith("Z"), m
assert len(m["git_commit"]) == 40 and isinstance(m["source_date_epoch"], int), m
PY
succeeds "the region reaches docker build as a build argument" grep -q -- "--build-arg REGION=eu-west-1" "$work/calls"
succeeds "render-key-policy.py reads what build-eif.sh wrote" python3 "$deploy/scripts/render-key-policy.py" \
  --measurements "$work/o1/measurements.json" --instance-role-arn arn:aws:iam::123456789012:role/r --admin-arn arn:aws:iam::123456789012:root

# ---- what must stop it ----
echo '{"Cmd": ["/bin/sh"], "Entrypoint": ["/nitro-wallet-enclave"], "Env": ["NITRO_WALLET_KMS_REGION=eu-west-1"]}' >"$work/state/config"
fails "an image with a CMD is refused (nitro-cli would run the CMD)" "has a CMD" "$eif_sh" --region eu-west-1 --out "$work/o2"
echo '{"Cmd": null, "Entrypoint": ["/nitro-wallet-enclave"], "Env": ["NITRO_WALLET_KMS_REGION=us-east-1"]}' >"$work/state/config"
fails "an image for another region is refused" "does not set NITRO_WALLET_KMS_REGION=eu-west-1" "$eif_sh" --region eu-west-1 --out "$work/o2"
echo '{"Cmd": null, "Entrypoint": ["/nitro-wallet-enclave"], "Env": ["NITRO_WALLET_KMS_REGION=eu-west-1"]}' >"$work/state/config"
printf '%096d\n' 0 >"$work/state/pcr0"
fails "a PCR0 of zeros from nitro-cli is refused" "all zeros" "$eif_sh" --region eu-west-1 --out "$work/o3"
printf '%s\n%s\n' "$PCR0" "$(printf 'other' | sha384sum | cut -d' ' -f1)" >"$work/state/pcr0"
fails "--check-reproducible fails when the second build differs" "NOT REPRODUCIBLE" "$eif_sh" --region eu-west-1 --out "$work/o4" --check-reproducible
echo "$PCR0" >"$work/state/pcr0"
succeeds "--check-reproducible passes when both builds agree" "$eif_sh" --region eu-west-1 --out "$work/o5" --check-reproducible

# ---- the host binary ----
succeeds "build-host.sh extracts the binary" "$host_sh" --out "$work/o6"
cp "$work/out" "$work/host.log"
succeeds "  ... executable, glibc checked against Amazon Linux 2023" \
  sh -c "[ -x '$work/o6/nitro-wallet' ] && grep -q 'newest glibc symbol version needed\|objdump not found' '$work/host.log'"

printf '%s passed, %s failed\n' "$pass" "$fail"
[ "$fail" = 0 ]
