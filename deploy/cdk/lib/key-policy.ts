// The KMS key policy of the nitro-wallet key. The same statements as
// deploy/scripts/render-key-policy.py (what an operator uses outside CDK, e.g. to stage a roll
// with `aws kms put-key-policy`); deploy/test.sh renders both and checks that they agree.
//
// - KeyAdministration: manage, not use, the key; no grants.
// - EnclaveDecrypt: kms:Decrypt for the instance role only with an attestation document whose
//   PCR0 (kms:RecipientAttestation:ImageSha384) is a measured image, and only for key records
//   (encryption context key nitro-wallet:address).
// - EnclaveEncrypt: kms:Encrypt (wrapping a new key; returns no key material) with exactly that
//   context key and an address value.
// - DenyDecryptWithoutAttestation, DenyDecryptOutsideMeasuredImages, DenyReEncryptAndGrants:
//   explicit denies. An Allow only says who may; any other Allow (a statement added later in
//   the console, e.g. the default "Enable IAM User Permissions" kms:* for the account root,
//   which would let every IAM policy in the account grant kms:Decrypt) would add to it. A Deny
//   wins over every Allow, from the key policy, IAM or a grant, so these make the pin hold for
//   every principal, whatever is added next to them:
//     * no Decrypt without an attestation document (KMS would return the plaintext to the
//       caller, i.e. to the parent instance, instead of encrypting it to the enclave's key);
//     * no Decrypt with an attestation of any image but the measured ones. This keeps a
//       debug-mode enclave out whatever else is allowed (its PCR0 is all zeros, never in the
//       list unless deployed with allowDebugPcr0): a debug enclave's memory is readable from
//       the parent, so a key released to it would be released to the parent;
//     * no ReEncrypt (it would move records under a key this policy does not govern) and no
//       grants (a grant is an Allow outside this document).
//   They do not protect against the key administrators, who can rewrite the whole policy:
//   kms:PutKeyPolicy is part of the trust base (deploy/README.md).
// There is deliberately no account-root "kms:*" statement: IAM policies cannot widen any of
// this, so the instance role's IAM policy carries no kms:Decrypt/Encrypt (it would be inert).

/** Encryption context key binding a ciphertext to its address (crates/protocol/src/message.rs). */
export const CONTEXT_KEY = 'nitro-wallet:address';
/** KMS condition key carrying the attested enclave image's PCR0. */
export const ATTESTATION_KEY = 'kms:RecipientAttestation:ImageSha384';

export const ADMIN_ACTIONS = [
  'kms:CancelKeyDeletion',
  'kms:CreateAlias',
  'kms:DeleteAlias',
  'kms:DescribeKey',
  'kms:DisableKey',
  'kms:DisableKeyRotation',
  'kms:EnableKey',
  'kms:EnableKeyRotation',
  'kms:GetKeyPolicy',
  'kms:GetKeyRotationStatus',
  'kms:ListGrants',
  'kms:ListKeyPolicies',
  'kms:ListKeyRotations',
  'kms:ListResourceTags',
  'kms:PutKeyPolicy',
  'kms:RevokeGrant',
  'kms:RotateKeyOnDemand',
  'kms:ScheduleKeyDeletion',
  'kms:TagResource',
  'kms:UntagResource',
  'kms:UpdateAlias',
  'kms:UpdateKeyDescription',
];

/** Condition: the request's encryption context has exactly the address key. */
function onlyAddressContext(): Record<string, unknown> {
  return {
    'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [CONTEXT_KEY] },
    Null: { 'kms:EncryptionContextKeys': 'false' },
  };
}

/**
 * The key policy document. `instanceRoleArn` and `adminArns` may be CDK tokens. `pcr0s` are the
 * images allowed to decrypt: the current one, plus the previous one while rolling.
 */
export function keyPolicy(pcr0s: string[], instanceRoleArn: string, adminArns: string[]): Record<string, unknown> {
  if (pcr0s.length === 0) throw new Error('keyPolicy: no PCR0');
  return {
    Version: '2012-10-17',
    Id: 'nitro-wallet-key-policy',
    Statement: [
      {
        Sid: 'KeyAdministration',
        Effect: 'Allow',
        Principal: { AWS: adminArns },
        Action: ADMIN_ACTIONS,
        Resource: '*',
      },
      {
        Sid: 'EnclaveDecrypt',
        Effect: 'Allow',
        Principal: { AWS: instanceRoleArn },
        Action: 'kms:Decrypt',
        Resource: '*',
        Condition: {
          StringEqualsIgnoreCase: { [ATTESTATION_KEY]: pcr0s },
          ...onlyAddressContext(),
        },
      },
      {
        Sid: 'EnclaveEncrypt',
        Effect: 'Allow',
        Principal: { AWS: instanceRoleArn },
        Action: 'kms:Encrypt',
        Resource: '*',
        Condition: {
          StringLike: { [`kms:EncryptionContext:${CONTEXT_KEY}`]: '0x*' },
          ...onlyAddressContext(),
        },
      },
      {
        Sid: 'DenyDecryptWithoutAttestation',
        Effect: 'Deny',
        Principal: '*',
        Action: 'kms:Decrypt',
        Resource: '*',
        Condition: { Null: { [ATTESTATION_KEY]: 'true' } },
      },
      {
        Sid: 'DenyDecryptOutsideMeasuredImages',
        Effect: 'Deny',
        Principal: '*',
        Action: 'kms:Decrypt',
        Resource: '*',
        // Negated operator: true when the request's PCR0 is none of these (and when it has none,
        // which the statement above also denies, independently of that rule of IAM).
        Condition: { StringNotEqualsIgnoreCase: { [ATTESTATION_KEY]: pcr0s } },
      },
      {
        Sid: 'DenyReEncryptAndGrants',
        Effect: 'Deny',
        Principal: '*',
        Action: ['kms:ReEncrypt*', 'kms:CreateGrant'],
        Resource: '*',
      },
    ],
  };
}
