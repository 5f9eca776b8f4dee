#!/usr/bin/env python3
"""Renders the KMS key policy of the nitro-wallet key from measurements.json.

usage:
  deploy/scripts/render-key-policy.py --measurements deploy/out/measurements.json \\
      --instance-role-arn arn:aws:iam::111122223333:role/nitro-wallet-instance \\
      --admin-arn arn:aws:iam::111122223333:root [--admin-arn ...] \\
      [--measurements previous/measurements.json] [--allow-debug] [--output policy.json]

Give --measurements twice while rolling a new enclave image: the old and the new PCR0 are
both allowed until every instance runs the new image; then render again with the new one only.

The policy (the CDK stack builds the same statements in deploy/cdk/lib/key-policy.ts, and
deploy/test.sh checks that the two agree):
  - KeyAdministration: the admin principals may manage the key (policy, rotation, aliases,
    tags, deletion) but not use it, nor create grants. Name the principal that deploys the
    stack (account root delegates to IAM, which covers the CloudFormation execution role);
    KMS refuses a policy that would lock the caller out.
  - EnclaveDecrypt: kms:Decrypt for the instance role only with an attestation document
    whose PCR0 (kms:RecipientAttestation:ImageSha384) is one of the measured images, and only
    with the key records' encryption context key (nitro-wallet:address).
  - EnclaveEncrypt: kms:Encrypt (wrapping a new key) for the instance role only with exactly
    that encryption context key and an address value; it returns no key material.
  - DenyDecryptWithoutAttestation: nobody gets plaintext without an attestation document.
  - DenyDecryptOutsideMeasuredImages: nobody decrypts with the attestation of any other image
    (a debug-mode enclave's zeros included), whatever Allow is added to this policy, to IAM or
    by a grant later: a Deny wins over every Allow.
  - DenyReEncryptAndGrants: no ReEncrypt (it would move key records under another key) and no
    grants (they would bypass the statements above).
There is no account-root "kms:*" statement, so IAM policies cannot widen any of this.
kms:GenerateRandom is not a key operation and cannot appear in a key policy: the stack grants
it in the instance role's IAM policy, with the same PCR0 condition.

A PCR0 of 96 zeros is what a debug-mode enclave reports (anyone can read its memory through the
console): it is refused unless --allow-debug.
"""

import argparse
import json
import os
import re
import sys

CONTEXT_KEY = "nitro-wallet:address"  # crates/protocol/src/message.rs ENCRYPTION_CONTEXT_ADDRESS
ATTESTATION_KEY = "kms:RecipientAttestation:ImageSha384"
DEBUG_PCR0 = "0" * 96
ADMIN_ACTIONS = [
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
]
ARN = re.compile(r"^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)$")


class PolicyError(Exception):
    """A measurement or argument that must not become a key policy."""


def read_pcr0(path, allow_debug):
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as e:
        raise PolicyError("cannot read %s: %s" % (path, e.strerror)) from None
    except ValueError as e:
        raise PolicyError("%s is not JSON: %s" % (path, e)) from None
    pcr0 = str(doc.get("pcr0", "")).lower() if isinstance(doc, dict) else ""
    if not re.fullmatch(r"[0-9a-f]{96}", pcr0):
        raise PolicyError("%s: pcr0 must be 96 hex characters (SHA-384), got %r" % (path, pcr0))
    if pcr0 == DEBUG_PCR0 and not allow_debug:
        raise PolicyError(
            "%s: PCR0 is all zeros, the measurement of a DEBUG-MODE enclave whose memory the "
            "parent can read; refusing to allow it (pass --allow-debug for a throw-away test key "
            "only)" % path
        )
    return pcr0


def key_policy(pcr0s, instance_role_arn, admin_arns):
    """The policy document; the CDK stack's key-policy.ts must produce the same statements."""
    context_keys_only_address = {
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": [CONTEXT_KEY]},
        "Null": {"kms:EncryptionContextKeys": "false"},
    }
    decrypt_condition = {"StringEqualsIgnoreCase": {ATTESTATION_KEY: list(pcr0s)}}
    decrypt_condition.update(context_keys_only_address)
    encrypt_condition = {"StringLike": {"kms:EncryptionContext:" + CONTEXT_KEY: "0x*"}}
    encrypt_condition.update(context_keys_only_address)
    return {
        "Version": "2012-10-17",
        "Id": "nitro-wallet-key-policy",
        "Statement": [
            {
                "Sid": "KeyAdministration",
                "Effect": "Allow",
                "Principal": {"AWS": list(admin_arns)},
                "Action": ADMIN_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "EnclaveDecrypt",
                "Effect": "Allow",
                "Principal": {"AWS": instance_role_arn},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": decrypt_condition,
            },
            {
                "Sid": "EnclaveEncrypt",
                "Effect": "Allow",
                "Principal": {"AWS": instance_role_arn},
                "Action": "kms:Encrypt",
                "Resource": "*",
                "Condition": encrypt_condition,
            },
            {
                "Sid": "DenyDecryptWithoutAttestation",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"Null": {ATTESTATION_KEY: "true"}},
            },
            {
                "Sid": "DenyDecryptOutsideMeasuredImages",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringNotEqualsIgnoreCase": {ATTESTATION_KEY: list(pcr0s)}},
            },
            {
                "Sid": "DenyReEncryptAndGrants",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["kms:ReEncrypt*", "kms:CreateGrant"],
                "Resource": "*",
            },
        ],
    }


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Render the nitro-wallet KMS key policy from measurements.json.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    p.add_argument("--measurements", action="append", required=True,
                   help="measurements.json written by build-eif.sh (twice while rolling)")
    p.add_argument("--instance-role-arn", required=True, help="the EC2 instance role")
    p.add_argument("--admin-arn", action="append", required=True,
                   help="key administrator (repeatable); include whoever deploys")
    p.add_argument("--allow-debug", action="store_true",
                   help="allow a PCR0 of zeros (debug-mode enclave): test keys only")
    p.add_argument("--output", help="write here instead of stdout")
    args = p.parse_args(argv)
    try:
        for arn in [args.instance_role_arn] + args.admin_arn:
            if not ARN.match(arn):
                raise PolicyError("not an IAM role, user or account-root ARN: %r" % arn)
        if not args.instance_role_arn.split(":", 5)[5].startswith("role/"):
            raise PolicyError("--instance-role-arn must be a role ARN")
        pcr0s = []
        for path in args.measurements:
            pcr0 = read_pcr0(path, args.allow_debug)
            if pcr0 not in pcr0s:
                pcr0s.append(pcr0)
    except PolicyError as e:
        print("render-key-policy: error: %s" % e, file=sys.stderr)
        return 1
    if DEBUG_PCR0 in pcr0s:
        print("render-key-policy: WARNING: the policy allows a DEBUG-MODE enclave", file=sys.stderr)
    text = json.dumps(key_policy(pcr0s, args.instance_role_arn, args.admin_arn), indent=2) + "\n"
    if args.output:
        tmp = args.output + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, args.output)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
