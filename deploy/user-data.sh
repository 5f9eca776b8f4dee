#!/bin/bash
# nitro-wallet EC2 user data (Amazon Linux 2023). Installs the Nitro Enclaves tooling, reserves
# the enclave's CPUs and memory, starts the vsock-proxy for KMS only, downloads the EIF and the
# host binary built and measured in CI (never built here: PCR0 must be the measured one), writes
# the configuration and systemd units, and starts the service.
#
# The CDK stack (deploy/cdk) replaces every @@NAME@@ below; the files of deploy/systemd and
# deploy/enclave come as one JSON bundle next to the EIF (user data is limited to 16 KiB).
# Used without CDK: fill in the values, leave DEPLOY_FILES_URL empty, copy those files under
# /opt/nitro-wallet/deploy/{systemd,enclave}/ and run this as root. Running it again is safe:
# it changes only what differs and restarts only what changed.
set -Eeuo pipefail
umask 022
LOG=/var/log/nitro-wallet-user-data.log
exec > >(tee -a "$LOG") 2>&1

REGION='@@REGION@@'
EIF_URL='@@EIF_URL@@'
EIF_SHA256='@@EIF_SHA256@@'
EXPECTED_PCR0='@@EXPECTED_PCR0@@'
HOST_BINARY_URL='@@HOST_BINARY_URL@@'
HOST_BINARY_SHA256='@@HOST_BINARY_SHA256@@'
# {"systemd/nitro-wallet.service": "<text>", ...}; empty: the files are already in $STAGE.
DEPLOY_FILES_URL='@@DEPLOY_FILES_URL@@'
DEPLOY_FILES_SHA256='@@DEPLOY_FILES_SHA256@@'
KMS_KEY_ID='@@KMS_KEY_ID@@'
SECRETS_PREFIX='@@SECRETS_PREFIX@@'
# name=sha256hex,name=sha256hex: SHA-256 of each API token, never the token.
API_TOKEN_SHA256S='@@API_TOKEN_SHA256S@@'
# Empty: a self-signed certificate. Else a secret holding {"cert": PEM chain, "key": PEM key}.
TLS_SECRET_ID='@@TLS_SECRET_ID@@'
ENCLAVE_CPU_COUNT='@@ENCLAVE_CPU_COUNT@@'
ENCLAVE_MEMORY_MIB='@@ENCLAVE_MEMORY_MIB@@'
ENCLAVE_CID='@@ENCLAVE_CID@@'
LISTEN_PORT='@@LISTEN_PORT@@'
# Empty outside CloudFormation: no cfn-signal.
CFN_STACK='@@CFN_STACK@@'
CFN_RESOURCE='@@CFN_RESOURCE@@'

STAGE=/opt/nitro-wallet/deploy
EIF=/opt/nitro-wallet/nitro-wallet.eif
BIN=/usr/local/bin/nitro-wallet
ETC=/etc/nitro-wallet
SIGNALLED=0

log() { printf '%s nitro-wallet-user-data: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

signal_cfn() {
  [ -n "$CFN_STACK" ] && [ "$SIGNALLED" = 0 ] || return 0
  SIGNALLED=1
  /opt/aws/bin/cfn-signal -e "$1" --stack "$CFN_STACK" --resource "$CFN_RESOURCE" \
    --region "$REGION" || log "cfn-signal failed"
}

die() {
  log "ERROR: $*"
  signal_cfn 1
  exit 1
}
trap 'die "line $LINENO: $BASH_COMMAND failed"' ERR

# ---- check the values before touching anything ----
for v in REGION EIF_URL EIF_SHA256 EXPECTED_PCR0 HOST_BINARY_URL HOST_BINARY_SHA256 \
  DEPLOY_FILES_URL DEPLOY_FILES_SHA256 KMS_KEY_ID SECRETS_PREFIX API_TOKEN_SHA256S TLS_SECRET_ID ENCLAVE_CPU_COUNT ENCLAVE_MEMORY_MIB \
  ENCLAVE_CID LISTEN_PORT CFN_STACK CFN_RESOURCE; do
  case "${!v}" in *@@*) die "$v was not filled in" ;; esac
done
[[ "$REGION" =~ ^[a-z]{2}(-gov)?-[a-z]+-[0-9]$ ]] || die "REGION '$REGION' is not an AWS region"
[[ "$EIF_URL" == s3://* && "$HOST_BINARY_URL" == s3://* ]] || die "EIF_URL and HOST_BINARY_URL must be s3:// URLs"
[[ "$EIF_SHA256" =~ ^[0-9a-f]{64}$ && "$HOST_BINARY_SHA256" =~ ^[0-9a-f]{64}$ ]] || die "EIF_SHA256 and HOST_BINARY_SHA256 must be 64 lowercase hex characters"
[ -z "$DEPLOY_FILES_URL" ] || [[ "$DEPLOY_FILES_URL" == s3://* && "$DEPLOY_FILES_SHA256" =~ ^[0-9a-f]{64}$ ]] || die "DEPLOY_FILES_URL must be an s3:// URL with its SHA-256"
[[ "$EXPECTED_PCR0" =~ ^[0-9a-f]{96}$ ]] || die "EXPECTED_PCR0 must be 96 lowercase hex characters"
[ "$EXPECTED_PCR0" != "$(printf '0%.0s' {1..96})" ] || die "EXPECTED_PCR0 is a debug-mode measurement"
[[ "$KMS_KEY_ID" =~ ^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+|alias/[A-Za-z0-9/_-]+|[0-9a-f-]{36})$ ]] || die "KMS_KEY_ID '$KMS_KEY_ID' is not a key id, ARN or alias"
[[ "$SECRETS_PREFIX" =~ ^[A-Za-z0-9/_+=.@-]+$ ]] || die "SECRETS_PREFIX has characters secret names do not allow"
[[ "$TLS_SECRET_ID" =~ ^[A-Za-z0-9/_+=.@:-]*$ ]] || die "TLS_SECRET_ID is not a secret name or ARN"
for n in ENCLAVE_CPU_COUNT ENCLAVE_MEMORY_MIB ENCLAVE_CID LISTEN_PORT; do
  [[ "${!n}" =~ ^[1-9][0-9]{0,5}$ ]] || die "$n must be a positive integer"
done
[ "$ENCLAVE_CID" -ge 4 ] || die "ENCLAVE_CID must be 4 or more (0-3 are reserved)"
IFS=',' read -r -a TOKENS <<<"$API_TOKEN_SHA256S"
[ "${#TOKENS[@]}" -gt 0 ] || die "API_TOKEN_SHA256S is empty: every /v1 route needs a token"
for t in "${TOKENS[@]}"; do
  [[ "$t" =~ ^[A-Za-z0-9_.-]+=[0-9a-f]{64}$ ]] || die "API_TOKEN_SHA256S entry '${t%%=*}' is not name=<sha256 hex>"
done
log "start: region $REGION, PCR0 $EXPECTED_PCR0"

# ---- helpers ----
# render TEMPLATE: fill in the {{NAME}} placeholders (values checked above, so sed-safe).
render() {
  sed -e "s|{{REGION}}|$REGION|g" -e "s|{{EXPECTED_PCR0}}|$EXPECTED_PCR0|g" \
    -e "s|{{ENCLAVE_CPU_COUNT}}|$ENCLAVE_CPU_COUNT|g" \
    -e "s|{{ENCLAVE_MEMORY_MIB}}|$ENCLAVE_MEMORY_MIB|g" \
    -e "s|{{ENCLAVE_CID}}|$ENCLAVE_CID|g" "$1"
}
# put SRC DEST MODE OWNER: install SRC as DEST unless identical; status 0 when DEST changed.
put() {
  if [ -f "$2" ] && cmp -s "$1" "$2" && [ "$(stat -c '%a %U:%G' "$2")" = "$3 $4" ]; then
    rm -f "$1"
    return 1
  fi
  install -D -m "$3" -o "${4%%:*}" -g "${4##*:}" "$1" "$2"
  rm -f "$1"
  log "installed $2"
}
# fetch URL SHA256 DEST MODE: download unless DEST already has that digest; status 0 when changed.
fetch() {
  if [ -f "$3" ] && [ "$(sha256sum "$3" | cut -d' ' -f1)" = "$2" ]; then
    return 1
  fi
  local tmp
  tmp=$(mktemp /opt/nitro-wallet/.download.XXXXXX)
  aws s3 cp --only-show-errors --region "$REGION" "$1" "$tmp" || die "cannot download $1"
  [ "$(sha256sum "$tmp" | cut -d' ' -f1)" = "$2" ] || { rm -f "$tmp"; die "$1 does not have SHA-256 $2"; }
  put "$tmp" "$3" "$4" root:root
}

# ---- the files of deploy/systemd and deploy/enclave ----
mkdir -p /opt/nitro-wallet "$STAGE"
if [ -n "$DEPLOY_FILES_URL" ]; then
  fetch "$DEPLOY_FILES_URL" "$DEPLOY_FILES_SHA256" /opt/nitro-wallet/deploy-files.json 644 || true
  python3 - /opt/nitro-wallet/deploy-files.json "$STAGE" <<'PY' || die "cannot unpack the deploy files"
import json, os, sys
for rel, text in json.load(open(sys.argv[1], encoding="utf-8")).items():
    if rel.startswith("/") or ".." in rel.split("/"):
        sys.exit("unsafe path in the deploy files: " + rel)
    dest = os.path.join(sys.argv[2], rel)
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "w", encoding="utf-8") as f:
        f.write(text)
PY
fi
for f in systemd/nitro-wallet.service systemd/nitro-wallet-supervise.service systemd/supervise.toml \
  enclave/allocator.yaml enclave/vsock-proxy.yaml enclave/vsock-proxy.service.d/nitro-wallet.conf; do
  [ -f "$STAGE/$f" ] || die "$STAGE/$f is missing"
done

# ---- packages and users ----
pkgs=(aws-nitro-enclaves-cli python3)
[ -z "$CFN_STACK" ] || pkgs+=(aws-cfn-bootstrap)
rpm -q "${pkgs[@]}" >/dev/null 2>&1 || dnf install -y --quiet "${pkgs[@]}"
getent group ne >/dev/null || die "group ne missing after installing aws-nitro-enclaves-cli"
for u in nitro-wallet nitro-wallet-supervise; do
  id -u "$u" >/dev/null 2>&1 || useradd --system --user-group --no-create-home \
    --home-dir /nonexistent --shell /sbin/nologin "$u"
done
id -nG nitro-wallet-supervise | grep -qw ne || usermod -a -G ne nitro-wallet-supervise

# ---- enclave resources and the KMS proxy ----
tmp=$(mktemp)
render "$STAGE/enclave/allocator.yaml" >"$tmp"
if put "$tmp" /etc/nitro_enclaves/allocator.yaml 644 root:root; then
  systemctl enable nitro-enclaves-allocator.service
  systemctl restart nitro-enclaves-allocator.service \
    || die "the allocator cannot reserve $ENCLAVE_CPU_COUNT CPUs and $ENCLAVE_MEMORY_MIB MiB (a running enclave holds them? see journalctl -u nitro-enclaves-allocator)"
else
  systemctl enable --now nitro-enclaves-allocator.service
fi

proxy_changed=0
tmp=$(mktemp)
render "$STAGE/enclave/vsock-proxy.yaml" >"$tmp"
put "$tmp" /etc/nitro_enclaves/nitro-wallet-vsock-proxy.yaml 644 root:root && proxy_changed=1
tmp=$(mktemp)
render "$STAGE/enclave/vsock-proxy.service.d/nitro-wallet.conf" >"$tmp"
put "$tmp" /etc/systemd/system/nitro-enclaves-vsock-proxy.service.d/nitro-wallet.conf 644 root:root && proxy_changed=1
systemctl daemon-reload
systemctl enable nitro-enclaves-vsock-proxy.service
if [ "$proxy_changed" = 1 ]; then
  systemctl restart nitro-enclaves-vsock-proxy.service
else
  systemctl start nitro-enclaves-vsock-proxy.service
fi

# ---- artifacts: the measured EIF and the host binary ----
eif_changed=0
host_changed=0
fetch "$EIF_URL" "$EIF_SHA256" "$EIF" 644 && eif_changed=1
fetch "$HOST_BINARY_URL" "$HOST_BINARY_SHA256" "$BIN" 755 && host_changed=1
if nitro-cli describe-eif --help >/dev/null 2>&1; then
  pcr0=$(nitro-cli describe-eif --eif-path "$EIF" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Measurements"]["PCR0"].lower())')
  [ "$pcr0" = "$EXPECTED_PCR0" ] || die "the EIF's PCR0 is $pcr0, not the expected $EXPECTED_PCR0"
  log "EIF PCR0 checked: $pcr0"
else
  log "WARNING: this nitro-cli has no describe-eif; the EIF's PCR0 is checked by KMS only"
fi

# ---- configuration ----
install -d -m 750 -o root -g nitro-wallet "$ETC"
if [ -n "$TLS_SECRET_ID" ]; then
  install -d -m 750 -o root -g nitro-wallet "$ETC/tls"
  secret=$(aws secretsmanager get-secret-value --region "$REGION" --secret-id "$TLS_SECRET_ID" \
    --query SecretString --output text) || die "cannot read the TLS secret $TLS_SECRET_ID"
  for part in cert key; do
    tmp=$(mktemp)
    SECRET="$secret" python3 -c 'import json,os,sys; sys.stdout.write(json.loads(os.environ["SECRET"])[sys.argv[1]])' "$part" >"$tmp" \
      || die "the TLS secret must be JSON with \"cert\" and \"key\" (PEM)"
    put "$tmp" "$ETC/tls/$part.pem" 640 root:nitro-wallet && host_changed=1
  done
  unset secret
fi
tmp=$(mktemp)
{
  printf '# Written by the nitro-wallet user data (deploy/user-data.sh); edits are overwritten.\n'
  printf '[server]\nlisten = "0.0.0.0:%s"\nstate_dir = "/var/lib/nitro-wallet"\n' "$LISTEN_PORT"
  [ -z "$TLS_SECRET_ID" ] || printf 'tls_cert = "%s/tls/cert.pem"\ntls_key = "%s/tls/key.pem"\n' "$ETC" "$ETC"
  printf '\n[enclave]\nendpoint = "vsock://%s:5000"\n' "$ENCLAVE_CID"
  printf '\n[kms]\nkey_id = "%s"\n' "$KMS_KEY_ID"
  printf '\n[key_store]\nkind = "secrets_manager"\nregion = "%s"\nprefix = "%s"\n' "$REGION" "$SECRETS_PREFIX"
  # The instance role's credentials from IMDSv2, handed to the enclave for its KMS calls.
  printf '\n[credentials]\nsource = "aws"\nregion = "%s"\n' "$REGION"
  # Every signing decision, recorded and signed inside the enclave, synced here before its
  # outcome is released (nitro-wallet audit verify checks it).
  printf '\n[audit]\npath = "/var/lib/nitro-wallet/audit.jsonl"\n'
  for t in "${TOKENS[@]}"; do
    printf '\n[[tokens]]\nname = "%s"\nsha256 = "%s"\n' "${t%%=*}" "${t#*=}"
  done
} >"$tmp"
put "$tmp" "$ETC/config.toml" 640 root:nitro-wallet && host_changed=1
tmp=$(mktemp)
render "$STAGE/systemd/supervise.toml" >"$tmp"
put "$tmp" "$ETC/supervise.toml" 640 root:nitro-wallet-supervise && eif_changed=1

# The supervisor's unit is installed only with a binary that has the command: the API unit
# "Wants" it, and a unit whose command does not exist would fail every 2 seconds.
supervise=0
"$BIN" supervise --help >/dev/null 2>&1 && supervise=1
units=(nitro-wallet.service)
[ "$supervise" = 0 ] || units+=(nitro-wallet-supervise.service)
units_changed=0
for unit in "${units[@]}"; do
  tmp=$(mktemp)
  cp "$STAGE/systemd/$unit" "$tmp"
  put "$tmp" "/etc/systemd/system/$unit" 644 root:root && units_changed=1
done
if [ "$supervise" = 0 ] && [ -f /etc/systemd/system/nitro-wallet-supervise.service ]; then
  systemctl disable --now nitro-wallet-supervise.service || true
  rm -f /etc/systemd/system/nitro-wallet-supervise.service
  units_changed=1
fi
[ "$units_changed" = 0 ] || systemctl daemon-reload

# ---- start: the enclave, then the API ----
if [ "$supervise" = 1 ]; then
  systemctl stop nitro-wallet-enclave.service >/dev/null 2>&1 || true
  systemctl enable nitro-wallet-supervise.service
  if [ "$eif_changed" = 1 ] || [ "$units_changed" = 1 ]; then
    systemctl restart nitro-wallet-supervise.service
  else
    systemctl start nitro-wallet-supervise.service
  fi
else
  # Interim, until `nitro-wallet supervise` exists: start the enclave once, in a transient
  # unit whose cgroup keeps nitro-cli's enclave process (stop it: systemctl stop
  # nitro-wallet-enclave). Nothing restarts it if it dies.
  log "WARNING: this nitro-wallet has no 'supervise' command: starting the enclave once, unsupervised"
  if [ "$eif_changed" = 1 ] && systemctl is-active --quiet nitro-wallet-enclave.service; then
    systemctl stop nitro-wallet-enclave.service
  fi
  if ! systemctl is-active --quiet nitro-wallet-enclave.service; then
    systemctl reset-failed nitro-wallet-enclave.service >/dev/null 2>&1 || true
    systemd-run --unit=nitro-wallet-enclave --description="nitro-wallet enclave (unsupervised)" \
      --property=Type=oneshot --property=RemainAfterExit=yes \
      --property=After=nitro-enclaves-allocator.service \
      /usr/bin/nitro-cli run-enclave --eif-path "$EIF" --cpu-count "$ENCLAVE_CPU_COUNT" \
      --memory "$ENCLAVE_MEMORY_MIB" --enclave-cid "$ENCLAVE_CID"
  fi
fi
systemctl enable nitro-wallet.service
if [ "$host_changed" = 1 ] || [ "$units_changed" = 1 ]; then
  systemctl restart nitro-wallet.service
else
  systemctl start nitro-wallet.service
fi

# ---- ready: the enclave answers and signs its self-test ----
for _ in $(seq 1 120); do
  if curl --silent --fail --insecure --max-time 5 "https://127.0.0.1:$LISTEN_PORT/readyz" >/dev/null; then
    log "ready"
    signal_cfn 0
    exit 0
  fi
  sleep 5
done
die "not ready after 10 minutes (journalctl -u nitro-wallet -u nitro-wallet-supervise; nitro-cli describe-enclaves)"
