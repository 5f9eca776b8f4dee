#!/usr/bin/env bash
# Runs the user data that `cdk synth` rendered, for real, against stand-ins for the things only
# an EC2 instance has (dnf, systemctl, systemd-run, aws, nitro-cli, cfn-signal, curl), inside a
# private mount namespace where /etc, /opt, /usr/local/bin and /var/log are throw-away copies.
# Checks what it installs, that a second run changes nothing, the switch to a binary that has
# `supervise`, and that a wrong PCR0 or an unfilled value stops it.
#
# usage (as root): [SIM_DIR=dir] unshare --mount --propagation private \
#   deploy/tests/user-data-sim.sh RENDERED_USER_DATA TEMPLATE_USER_DATA CDK_OUT PCR0 KEY_ARN
# Prints one "ok"/"FAIL" line per check and ends with "N passed, N failed".
set -euo pipefail

script=$1 template=$2 cdk_out=$3 pcr0=$4 key_arn=$5
pass=0
fail=0
ok() { pass=$((pass + 1)); printf 'ok    user-data: %s\n' "$1"; }
bad() { fail=$((fail + 1)); printf 'FAIL  user-data: %s\n' "$1"; }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

# SIM_DIR: where the throw-away copies go (deploy/test.sh gives one it deletes afterwards,
# once this namespace and its mounts are gone).
sim=${SIM_DIR:-$(mktemp -d /tmp/nitro-wallet-sim.XXXXXX)}
mkdir -p "$sim"
# Private copies: nothing below reaches the real system.
cp -a /etc "$sim/etc"
mount --bind "$sim/etc" /etc
mount -t tmpfs tmpfs /opt
mount -t tmpfs tmpfs /usr/local/bin
mount -t tmpfs tmpfs /var/log
mkdir -p "$sim/bin" "$sim/state" "$sim/s3" /opt/aws/bin

# ---- stand-ins ----
cat >"$sim/bin/dnf" <<EOF
#!/bin/sh
echo "dnf \$*" >>"$sim/calls"
getent group ne >/dev/null || groupadd --system ne
touch "$sim/state/installed"
EOF
cat >"$sim/bin/rpm" <<EOF
#!/bin/sh
[ -f "$sim/state/installed" ]
EOF
cat >"$sim/bin/systemctl" <<EOF
#!/bin/sh
echo "systemctl \$*" >>"$sim/calls"
case "\$1" in
  is-active) [ -f "$sim/state/active.\$3" ]; exit ;;
  stop) rm -f "$sim/state/active.\$2" ;;
  disable) [ "\$2" != --now ] || rm -f "$sim/state/active.\$3" ;;
esac
exit 0
EOF
cat >"$sim/bin/systemd-run" <<EOF
#!/bin/sh
echo "systemd-run \$*" >>"$sim/calls"
unit=\$(echo "\$*" | sed -n 's/.*--unit=\([^ ]*\).*/\1/p')
touch "$sim/state/active.\$unit.service"
EOF
# aws s3 cp URL DEST: the object is the cdk.out asset named by the key's hash (or an override).
cat >"$sim/bin/aws" <<EOF
#!/bin/sh
echo "aws \$*" >>"$sim/calls"
[ "\$1 \$2" = "s3 cp" ] || exit 2
for a in "\$@"; do case "\$a" in s3://*) url=\$a ;; esac; dest=\$a; done
key=\$(basename "\$url")
if [ -f "$sim/s3/\$key" ]; then cp "$sim/s3/\$key" "\$dest"; exit 0; fi
for f in "$cdk_out"/asset."\${key%%.*}"*; do [ -f "\$f" ] && cp "\$f" "\$dest" && exit 0; done
echo "no such object \$url" >&2
exit 1
EOF
cat >"$sim/bin/nitro-cli" <<EOF
#!/bin/sh
echo "nitro-cli \$*" >>"$sim/calls"
case "\$1" in
  describe-eif) [ "\$2" = --help ] || printf '{"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": "%s"}}\n' "\$(cat "$sim/state/pcr0")" ;;
esac
EOF
cat >"$sim/bin/curl" <<EOF
#!/bin/sh
echo "curl \$*" >>"$sim/calls"
EOF
cat >/opt/aws/bin/cfn-signal <<EOF
#!/bin/sh
echo "cfn-signal \$*" >>"$sim/calls"
EOF
chmod +x "$sim"/bin/* /opt/aws/bin/cfn-signal
echo "$pcr0" >"$sim/state/pcr0"
export PATH="$sim/bin:$PATH"

run() { # run SCRIPT: its status; its output in $sim/out
  : >"$sim/calls"
  set +e
  bash "$1" >"$sim/out" 2>&1
  local rc=$?
  set -e
  return $rc
}
called() {
  grep -qF -- "$1" "$sim/calls" && return 0
  printf '    not among the calls:\n' && sed 's/^/      /' "$sim/calls"
  return 1
}
not_called() { ! grep -qF -- "$1" "$sim/calls"; }
mode_owner() { [ "$(stat -c '%a %U:%G' "$1")" = "$2" ]; }

# ---- 1. an unfilled template stops before touching anything ----
if run "$template"; then bad "the unrendered template is refused"; else
  check "the unrendered template is refused" grep -q 'was not filled in' "$sim/out"
fi

# ---- 2. first boot ----
if run "$script"; then ok "first run succeeds"; else bad "first run succeeds"; sed 's/^/    /' "$sim/out"; fi
check "installs aws-nitro-enclaves-cli and aws-cfn-bootstrap" called "dnf install -y --quiet aws-nitro-enclaves-cli python3 aws-cfn-bootstrap"
check "creates the service users, supervisor in group ne" sh -c 'id nitro-wallet >/dev/null && id -nG nitro-wallet-supervise | grep -qw ne'
check "allocator.yaml: 2048 MiB, 2 CPUs" sh -c 'grep -qx "memory_mib: 2048" /etc/nitro_enclaves/allocator.yaml && grep -qx "cpu_count: 2" /etc/nitro_enclaves/allocator.yaml'
check "vsock-proxy allowlist: only KMS of the region" python3 - <<'PY'
import re, sys
text = open("/etc/nitro_enclaves/nitro-wallet-vsock-proxy.yaml").read()
entries = [l for l in text.splitlines() if l.startswith("- ")]
sys.exit(0 if entries == ["- {address: kms.eu-west-1.amazonaws.com, port: 443}"] and "{{" not in text else 1)
PY
check "vsock-proxy override: port 8000 to kms.eu-west-1 with the allowlist" grep -qx 'ExecStart=/usr/bin/vsock-proxy 8000 kms.eu-west-1.amazonaws.com 443 --config /etc/nitro_enclaves/nitro-wallet-vsock-proxy.yaml' /etc/systemd/system/nitro-enclaves-vsock-proxy.service.d/nitro-wallet.conf
check "vsock-proxy and allocator enabled and started" sh -c "grep -q 'enable nitro-enclaves-vsock-proxy.service' '$sim/calls' && grep -q 'restart nitro-enclaves-vsock-proxy.service' '$sim/calls' && grep -q 'restart nitro-enclaves-allocator.service' '$sim/calls'"
check "EIF downloaded and installed 0644" mode_owner /opt/nitro-wallet/nitro-wallet.eif "644 root:root"
check "host binary installed 0755" mode_owner /usr/local/bin/nitro-wallet "755 root:root"
check "the EIF's PCR0 is checked" called "nitro-cli describe-eif --eif-path /opt/nitro-wallet/nitro-wallet.eif"
check "config.toml is root:nitro-wallet 0640" mode_owner /etc/nitro-wallet/config.toml "640 root:nitro-wallet"
check "config.toml has the production settings and only known fields" python3 - "$key_arn" <<'PY'
import sys, tomllib
c = tomllib.load(open("/etc/nitro-wallet/config.toml", "rb"))
# The fields of crates/host/src/config.rs (deny_unknown_fields there).
known = {
    "server": {"listen", "tls_cert", "tls_key", "state_dir", "body_limit_bytes", "request_timeout_secs", "max_concurrent_requests"},
    "enclave": {"endpoint", "endpoints", "call_timeout_secs", "health_interval_ms", "health_timeout_ms", "warm_keys", "warm_concurrency"},
    "kms": {"key_id"},
    "key_store": {"kind", "dir", "prefix", "region", "endpoint"},
    "credentials": {"source", "region"},
    "auth": {"tokens_file"},
    "rpc": {"upstream", "upstream_timeout_secs"},
    "audit": {"path"},
}
errors = []
for section, fields in c.items():
    if section == "tokens":
        continue
    if section not in known:
        errors.append("unknown section " + section)
    elif set(fields) - known[section]:
        errors.append("unknown fields %s in [%s]" % (set(fields) - known[section], section))
expect = [
    (c["server"]["listen"], "0.0.0.0:8443"),
    (c["enclave"]["endpoint"], "vsock://16:5000"),
    (c["kms"]["key_id"], sys.argv[1]),
    (c["key_store"], {"kind": "secrets_manager", "region": "eu-west-1", "prefix": "nitro-wallet/keys/"}),
    (c["credentials"], {"source": "aws", "region": "eu-west-1"}),
    ([t["name"] for t in c["tokens"]], ["ops", "ci"]),
]
errors += ["%r != %r" % (a, b) for a, b in expect if a != b]
errors += ["token hash %r" % t for t in c["tokens"] if len(t["sha256"]) != 64]
for e in errors:
    print("    " + e)
sys.exit(1 if errors else 0)
PY
check "supervise.toml carries the expected PCR0" python3 -c "
import tomllib, sys
c = tomllib.load(open('/etc/nitro-wallet/supervise.toml', 'rb'))
e = c['enclaves'][0]
sys.exit(0 if e['expected_pcr0'] == '$pcr0' and e['cid'] == 16 and e['name'] == 'nitro-wallet-16' else 1)"
check "nitro-wallet.service installed" cmp -s /etc/systemd/system/nitro-wallet.service /opt/nitro-wallet/deploy/systemd/nitro-wallet.service
check "without 'supervise' the supervisor unit is not installed" test ! -e /etc/systemd/system/nitro-wallet-supervise.service
check "without 'supervise' the enclave is started once with nitro-cli" called "systemd-run --unit=nitro-wallet-enclave --description=nitro-wallet enclave (unsupervised) --property=Type=oneshot --property=RemainAfterExit=yes --property=After=nitro-enclaves-allocator.service /usr/bin/nitro-cli run-enclave --eif-path /opt/nitro-wallet/nitro-wallet.eif --cpu-count 2 --memory 2048 --enclave-cid 16"
check "the API is enabled and started" sh -c "grep -q 'systemctl enable nitro-wallet.service' '$sim/calls' && grep -q 'systemctl restart nitro-wallet.service' '$sim/calls'"
check "readiness polled on /readyz" called "https://127.0.0.1:8443/readyz"
check "CloudFormation signalled success" called "cfn-signal -e 0 --stack NitroWallet --resource WalletInstances --region eu-west-1"
check "logs to /var/log/nitro-wallet-user-data.log" grep -q 'nitro-wallet-user-data: ready' /var/log/nitro-wallet-user-data.log

# ---- 3. a second run changes nothing ----
if run "$script"; then ok "second run succeeds"; else bad "second run succeeds"; sed 's/^/    /' "$sim/out"; fi
check "second run installs nothing" not_called "dnf install"
check "second run rewrites no file" sh -c "! grep -q 'installed /' '$sim/out'"
check "second run restarts nothing" not_called "restart"
check "second run does not start a second enclave" not_called "systemd-run"

# ---- 4. a host binary with 'supervise': the supervisor takes over ----
host_key=$(sed -n "s|^HOST_BINARY_URL='s3://[^/]*/\(.*\)'$|\1|p" "$script")
printf '#!/bin/sh\nexit 0\n' >"$sim/s3/$host_key"
sha=$(sha256sum "$sim/s3/$host_key" | cut -d' ' -f1)
sed "s|^HOST_BINARY_SHA256=.*|HOST_BINARY_SHA256='$sha'|" "$script" >"$sim/with-supervise.sh"
if run "$sim/with-supervise.sh"; then ok "run with a supervising binary succeeds"; else bad "run with a supervising binary succeeds"; sed 's/^/    /' "$sim/out"; fi
check "supervisor unit installed" cmp -s /etc/systemd/system/nitro-wallet-supervise.service /opt/nitro-wallet/deploy/systemd/nitro-wallet-supervise.service
check "the unsupervised enclave is stopped" called "systemctl stop nitro-wallet-enclave.service"
check "supervisor enabled and started" sh -c "grep -q 'enable nitro-wallet-supervise.service' '$sim/calls' && grep -q 'restart nitro-wallet-supervise.service' '$sim/calls'"
check "the API restarts on the new binary" called "systemctl restart nitro-wallet.service"

# ---- 5. an EIF that is not the measured one stops the boot and signals failure ----
printf '%096d\n' 7 >"$sim/state/pcr0"
if run "$sim/with-supervise.sh"; then bad "a wrong PCR0 is refused"; else
  check "a wrong PCR0 is refused" grep -q "the EIF's PCR0 is" "$sim/out"
  check "and CloudFormation is signalled failure" called "cfn-signal -e 1"
fi

printf '%s passed, %s failed\n' "$pass" "$fail"
[ "$fail" = 0 ]
