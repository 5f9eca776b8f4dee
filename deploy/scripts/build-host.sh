#!/usr/bin/env bash
# Builds the host image (deploy/docker/host.Dockerfile) and extracts its `nitro-wallet` binary
# to deploy/out/nitro-wallet, which the EC2 deployment installs natively (the CDK stack uploads
# it next to the EIF). Checks that the binary runs on Amazon Linux 2023 (glibc 2.34).
#
# usage: deploy/scripts/build-host.sh [--out DIR] [--tag TAG]
# environment: RUST_IMAGE, SOURCE_DATE_EPOCH as for build-eif.sh
set -euo pipefail

die() { printf 'build-host: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'build-host: %s\n' "$*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out="$repo/deploy/out"
tag=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
command -v docker >/dev/null 2>&1 || die "docker not found: install Docker (with BuildKit) and start its daemon"
command -v git >/dev/null 2>&1 || die "git not found"
docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer"

commit=$(git -C "$repo" rev-parse HEAD)
[ -n "$tag" ] || tag="nitro-wallet-host:${commit:0:12}"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}
export DOCKER_BUILDKIT=1
mkdir -p "$out"

log "docker build $tag"
docker build \
  --file "$repo/deploy/docker/host.Dockerfile" \
  --build-arg "RUST_IMAGE=${RUST_IMAGE:-rust:1.95.0-bookworm}" \
  --build-arg "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" \
  --tag "$tag" "$repo" >&2 || die "docker build failed"

container=$(docker create "$tag")
trap 'docker rm -f "$container" >/dev/null 2>&1 || true' EXIT
docker cp "$container:/usr/local/bin/nitro-wallet" "$out/nitro-wallet.tmp"
chmod 0755 "$out/nitro-wallet.tmp"

# Amazon Linux 2023 has glibc 2.34: refuse a binary that needs a newer symbol version.
if command -v objdump >/dev/null 2>&1; then
  newest=$(objdump -T "$out/nitro-wallet.tmp" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  if [ "$(printf '%s\n2.34\n' "$newest" | sort -V | tail -n 1)" != "2.34" ]; then
    die "the binary needs GLIBC_$newest, newer than Amazon Linux 2023's 2.34: build on an older base"
  fi
  log "newest glibc symbol version needed: $newest (Amazon Linux 2023 has 2.34)"
else
  log "WARNING: objdump not found (binutils): glibc compatibility with Amazon Linux 2023 not checked"
fi
mv "$out/nitro-wallet.tmp" "$out/nitro-wallet"
log "wrote $out/nitro-wallet (sha256 $(sha256sum "$out/nitro-wallet" | cut -d' ' -f1))"
