#!/usr/bin/env bash
# Builds the enclave image and the EIF, and writes deploy/out/measurements.json: the single
# source of the PCR0 that the KMS key policy pins (render-key-policy.py and the CDK stack read
# it; nobody copies PCR0 by hand).
#
# usage: deploy/scripts/build-eif.sh --region REGION [--out DIR] [--tag TAG] [--release]
#                                    [--check-reproducible]
#   --region REGION        AWS region of the KMS key; baked into the image, so part of PCR0
#   --out DIR              output directory (default deploy/out)
#   --tag TAG              docker tag of the enclave image (default nitro-wallet-enclave:<commit>)
#   --release              refuse a builder image not pinned by digest and a dirty work tree
#   --check-reproducible   build a second time without the docker cache and fail unless the
#                          second PCR0 equals the first
# environment:
#   RUST_IMAGE         builder image (default rust:1.95.0-bookworm; pin @sha256:... for releases)
#   SOURCE_DATE_EPOCH  mtime of every file in the image (default: the commit's time)
#
# Needs docker (with BuildKit) and nitro-cli (package aws-nitro-enclaves-cli; build-enclave
# works on any Linux x86_64 host with docker, no Nitro hardware needed), python3 and git.
set -euo pipefail

die() { printf 'build-eif: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'build-eif: %s\n' "$*" >&2; }

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
region=""
out="$repo/deploy/out"
tag=""
release=0
check_repro=0
while [ "$#" -gt 0 ]; do
  case "$1" in
    --region) region=${2:?--region needs a value}; shift 2 ;;
    --out) out=${2:?--out needs a value}; shift 2 ;;
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --release) release=1; shift ;;
    --check-reproducible) check_repro=1; shift ;;
    -h | --help) sed -n '2,21p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[[ "$region" =~ ^[a-z]{2}(-gov)?-[a-z]+-[0-9]$ ]] || die "--region must be an AWS region such as eu-west-1 (got '${region}')"
for tool in docker nitro-cli python3 git; do
  command -v "$tool" >/dev/null 2>&1 || case "$tool" in
    docker) die "docker not found: install Docker (with BuildKit) and start its daemon" ;;
    nitro-cli) die "nitro-cli not found: install aws-nitro-enclaves-cli (Amazon Linux: dnf install aws-nitro-enclaves-cli aws-nitro-enclaves-cli-devel; elsewhere build it from github.com/aws/aws-nitro-enclaves-cli)" ;;
    *) die "$tool not found" ;;
  esac
done
docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer (is it running, may this user use it?)"

rust_image=${RUST_IMAGE:-rust:1.95.0-bookworm}
commit=$(git -C "$repo" rev-parse HEAD)
dirty=false
[ -z "$(git -C "$repo" status --porcelain -- Cargo.toml Cargo.lock crates deploy/docker)" ] || dirty=true
if [ "$release" = 1 ]; then
  [[ "$rust_image" == *@sha256:* ]] || die "--release: pin RUST_IMAGE by digest (e.g. rust:1.95.0-bookworm@sha256:...), a tag can move and change PCR0"
  [ "$dirty" = false ] || die "--release: uncommitted changes under Cargo.toml, Cargo.lock, crates/ or deploy/docker/"
fi
[ -n "$tag" ] || tag="nitro-wallet-enclave:${commit:0:12}"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct)}
export DOCKER_BUILDKIT=1
mkdir -p "$out"

# build_eif TAG EIF JSON [extra docker build args...]
build_eif() {
  local image=$1 eif=$2 json=$3
  shift 3
  log "docker build $image (region $region, builder $rust_image, SOURCE_DATE_EPOCH $SOURCE_DATE_EPOCH)"
  docker build "$@" \
    --file "$repo/deploy/docker/enclave.Dockerfile" \
    --build-arg "RUST_IMAGE=$rust_image" \
    --build-arg "REGION=$region" \
    --build-arg "SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH" \
    --tag "$image" "$repo" >&2 || die "docker build failed"

  # nitro-cli runs CMD when the image has one and ignores ENTRYPOINT then: make sure the
  # enclave will run what the Dockerfile says, in the region asked for.
  docker image inspect --format '{{json .Config}}' "$image" | python3 -c '
import json, sys
c = json.load(sys.stdin)
region = sys.argv[1]
if c.get("Cmd"):
    sys.exit("the image has a CMD %r: nitro-cli would run it instead of the ENTRYPOINT" % c["Cmd"])
ep = c.get("Entrypoint") or []
if not ep or ep[0] != "/nitro-wallet-enclave":
    sys.exit("unexpected ENTRYPOINT %r" % ep)
if "NITRO_WALLET_KMS_REGION=" + region not in (c.get("Env") or []):
    sys.exit("the image does not set NITRO_WALLET_KMS_REGION=" + region)
' "$region" || die "the enclave image $image is not what the EIF must run"

  log "nitro-cli build-enclave --docker-uri $image --output-file $eif"
  rm -f "$eif"
  # The JSON with the measurements goes to stdout; progress lines may precede it.
  nitro-cli build-enclave --docker-uri "$image" --output-file "$eif" >"$json" \
    || die "nitro-cli build-enclave failed (output in $json; logs in /var/log/nitro_enclaves)"
  [ -s "$eif" ] || die "nitro-cli reported success but $eif is missing or empty"
}

eif="$out/nitro-wallet.eif"
build_json="$out/build-enclave.json"
build_eif "$tag" "$eif" "$build_json"

if [ "$check_repro" = 1 ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  build_eif "${tag}-repro" "$tmp/second.eif" "$tmp/second.json" --no-cache --pull
fi

image_id=$(docker image inspect --format '{{.Id}}' "$tag")
builder_digest=$(docker image inspect --format '{{join .RepoDigests ","}}' "$rust_image" 2>/dev/null || true)
nitro_cli_version=$(nitro-cli --version 2>/dev/null | head -n 1 || true)

# Parse, check, and write measurements.json atomically.
python3 - "$build_json" "$eif" "$out/measurements.json" "$region" "$tag" "$image_id" \
  "$rust_image" "$builder_digest" "$commit" "$dirty" "$nitro_cli_version" "$SOURCE_DATE_EPOCH" \
  "${tmp:+$tmp/second.json}" <<'PY'
import hashlib, json, os, re, sys, time

(build_json, eif, dest, region, tag, image_id, rust_image, builder_digest, commit, dirty,
 nitro_cli_version, sde, second) = sys.argv[1:14]

def measurements(path):
    text = open(path, encoding="utf-8").read()
    start = text.find("{")
    if start < 0:
        sys.exit("build-eif: no JSON in the output of nitro-cli build-enclave (%s)" % path)
    try:
        m = json.loads(text[start:])["Measurements"]
    except (ValueError, KeyError) as e:
        sys.exit("build-eif: cannot read the measurements in %s: %s" % (path, e))
    pcrs = {}
    for k in ("PCR0", "PCR1", "PCR2"):
        v = str(m.get(k, "")).lower()
        if not re.fullmatch(r"[0-9a-f]{96}", v):
            sys.exit("build-eif: %s in %s is not 96 hex characters: %r" % (k, path, v))
        pcrs[k.lower()] = v
    if pcrs["pcr0"] == "0" * 96:
        sys.exit("build-eif: PCR0 is all zeros, which only a debug-mode enclave reports")
    return pcrs, m.get("HashAlgorithm", "")

pcrs, algo = measurements(build_json)
if second:
    again, _ = measurements(second)
    if again != pcrs:
        sys.exit("build-eif: NOT REPRODUCIBLE: a second build without cache gave PCR0 %s, "
                 "the first %s" % (again["pcr0"], pcrs["pcr0"]))
    print("build-eif: reproducible: a second build without cache gave the same PCR0/1/2",
          file=sys.stderr)

h = hashlib.sha256()
with open(eif, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)

doc = {
    "format": 1,
    "pcr0": pcrs["pcr0"],
    "pcr1": pcrs["pcr1"],
    "pcr2": pcrs["pcr2"],
    "hash_algorithm": algo,
    "region": region,
    "eif": os.path.relpath(eif, os.path.dirname(os.path.abspath(dest))),
    "eif_sha256": h.hexdigest(),
    "eif_bytes": os.path.getsize(eif),
    "image": tag,
    "image_id": image_id,
    "builder_image": rust_image,
    "builder_repo_digests": [d for d in builder_digest.split(",") if d],
    "git_commit": commit,
    "git_dirty": dirty == "true",
    "source_date_epoch": int(sde),
    "nitro_cli": nitro_cli_version,
    "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
}
tmp = dest + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
os.replace(tmp, dest)
print("build-eif: wrote %s\nPCR0 %s" % (dest, doc["pcr0"]), file=sys.stderr)
PY
