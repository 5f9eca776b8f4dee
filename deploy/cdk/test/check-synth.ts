// Assertions on a synthesized NitroWallet template (run by deploy/test.sh):
//
//   npx ts-node --transpile-only test/check-synth.ts CDK_OUT PCR0 [--previous-pcr0 P]
//       [--python-policy FILE] [--user-data-out FILE --key-arn ARN]
//
// --python-policy: the policy render-key-policy.py wrote for the same PCR0s; its statements
// must equal the template's, principals aside. --user-data-out: writes the rendered user data
// with CloudFormation references replaced by sample values (for bash -n, shellcheck and the
// simulated boot). Prints one "ok"/"FAIL" line per check and ends with "N passed, N failed".

import * as fs from 'fs';
import * as path from 'path';
import { DEPLOY_FILES, USER_DATA_LIMIT } from '../lib/user-data';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const args = process.argv.slice(2);
const [cdkOut, pcr0] = args;
function opt(name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}
const previousPcr0 = opt('--previous-pcr0');
const pythonPolicy = opt('--python-policy');
const userDataOut = opt('--user-data-out');
const keyArn = opt('--key-arn') ?? 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const ACCOUNT = '123456789012';

let passed = 0;
let failed = 0;
function check(what: string, fn: () => boolean | string): void {
  let result: boolean | string;
  try {
    result = fn();
  } catch (e) {
    result = `threw ${(e as Error).message}`;
  }
  if (result === true) {
    passed++;
    console.log(`ok    synth: ${what}`);
  } else {
    failed++;
    console.log(`FAIL  synth: ${what}${typeof result === 'string' ? `: ${result}` : ''}`);
  }
}

const template: Json = JSON.parse(fs.readFileSync(path.join(cdkOut, 'NitroWallet.template.json'), 'utf-8'));
const resources: [string, Json][] = Object.entries(template.Resources);
const ofType = (t: string) => resources.filter(([, r]) => r.Type === t);
const one = (t: string): [string, Json] => {
  const found = ofType(t);
  if (found.length !== 1) throw new Error(`${found.length} resources of type ${t}`);
  return found[0];
};
const asArray = (v: Json): Json[] => (Array.isArray(v) ? v : [v]);
const sorted = (v: Json): Json => (Array.isArray(v) ? [...v].map(sorted).sort() : v);

// ---- the key policy ----
const [, key] = one('AWS::KMS::Key');
const policy = key.Properties.KeyPolicy;
const statement = (sid: string): Json => {
  const s = policy.Statement.find((x: Json) => x.Sid === sid);
  if (!s) throw new Error(`no statement ${sid}`);
  return s;
};
const roleId = ofType('AWS::IAM::Role').map(([id]) => id).find((id) => id.startsWith('InstanceRole')) ?? '(no InstanceRole)';

check('key policy: Decrypt needs the fixture PCR0 under kms:RecipientAttestation:ImageSha384', () => {
  const s = statement('EnclaveDecrypt');
  const pcrs = asArray(s.Condition.StringEqualsIgnoreCase['kms:RecipientAttestation:ImageSha384']);
  const want = previousPcr0 ? [pcr0, previousPcr0] : [pcr0];
  return (
    (s.Effect === 'Allow' && s.Action === 'kms:Decrypt' && JSON.stringify(sorted(pcrs)) === JSON.stringify(sorted(want))) ||
    `got ${JSON.stringify(pcrs)}`
  );
});
check('key policy: only the instance role may Decrypt and Encrypt', () => {
  for (const sid of ['EnclaveDecrypt', 'EnclaveEncrypt']) {
    const p = statement(sid).Principal.AWS;
    if (JSON.stringify(p) !== JSON.stringify({ 'Fn::GetAtt': [roleId, 'Arn'] })) return `${sid}: ${JSON.stringify(p)}`;
  }
  return true;
});
check('key policy: Encrypt and Decrypt need the nitro-wallet:address context key only', () => {
  for (const sid of ['EnclaveDecrypt', 'EnclaveEncrypt']) {
    const c = statement(sid).Condition;
    const keys = asArray(c['ForAllValues:StringEquals']['kms:EncryptionContextKeys']);
    if (JSON.stringify(keys) !== '["nitro-wallet:address"]' || c.Null['kms:EncryptionContextKeys'] !== 'false') return sid;
  }
  return statement('EnclaveEncrypt').Condition.StringLike['kms:EncryptionContext:nitro-wallet:address'] === '0x*';
});
check('key policy: Decrypt without attestation is denied to everyone', () => {
  const s = statement('DenyDecryptWithoutAttestation');
  return s.Effect === 'Deny' && s.Principal === '*' && s.Condition.Null['kms:RecipientAttestation:ImageSha384'] === 'true';
});
check('key policy: no wildcard kms:* and no use by the administrators', () => {
  for (const s of policy.Statement) {
    const actions = asArray(s.Action);
    if (s.Effect === 'Allow' && actions.some((a: string) => a === 'kms:*' || a === '*')) return `${s.Sid} allows ${actions}`;
    if (s.Sid === 'KeyAdministration' && actions.some((a: string) => /Decrypt|Encrypt|GenerateDataKey|CreateGrant|ReEncrypt/.test(a))) {
      return `administrators may ${actions}`;
    }
  }
  return true;
});
check('the key is kept when the stack is deleted and rotates', () => key.DeletionPolicy === 'Retain' && key.Properties.EnableKeyRotation === true);
if (pythonPolicy) {
  check('key policy equals render-key-policy.py (principals aside)', () => {
    const strip = (p: Json) =>
      JSON.stringify(
        p.Statement.map((s: Json) => ({
          Sid: s.Sid,
          Effect: s.Effect,
          Action: sorted(asArray(s.Action)),
          Resource: s.Resource,
          Condition: JSON.parse(JSON.stringify(s.Condition ?? {}), (_, v) => (Array.isArray(v) ? sorted(v) : v)),
          Principal: s.Principal === '*' ? '*' : 'role-or-admin',
        })),
      );
    const py = JSON.parse(fs.readFileSync(pythonPolicy, 'utf-8'));
    return strip(py) === strip(policy) || `\n  python: ${strip(py)}\n  cdk:    ${strip(policy)}`;
  });
}

// ---- the instance role ----
const rolePolicies = ofType('AWS::IAM::Policy').filter(([, p]) =>
  asArray(p.Properties.Roles).some((r: Json) => JSON.stringify(r) === JSON.stringify({ Ref: roleId })),
);
const roleStatements: Json[] = rolePolicies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
const roleActions = roleStatements.flatMap((s) => asArray(s.Action));
check('instance role: no kms:Decrypt/Encrypt in IAM (the key policy alone decides)', () =>
  !roleActions.some((a: string) => /^kms:(Decrypt|Encrypt|\*)$/.test(a)) || String(roleActions),
);
check('instance role: GenerateRandom only with the PCR0 condition', () => {
  const s = roleStatements.find((x) => asArray(x.Action).includes('kms:GenerateRandom'));
  return !!s && asArray(s.Condition.StringEqualsIgnoreCase['kms:RecipientAttestation:ImageSha384']).includes(pcr0);
});
check('instance role: Secrets Manager writes only under nitro-wallet/keys/, never overwrite or delete', () => {
  const s = roleStatements.find((x) => asArray(x.Action).includes('secretsmanager:CreateSecret'));
  const resource = JSON.stringify(s?.Resource);
  if (!s || !resource.endsWith(':secret:nitro-wallet/keys/*"]]}')) return resource;
  const forbidden = roleActions.filter((a: string) => /PutSecretValue|DeleteSecret|UpdateSecret|secretsmanager:\*/.test(a));
  return forbidden.length === 0 || String(forbidden);
});
check('instance role: only ListSecrets/BatchGetSecretValue (which cannot be scoped) on "*"', () => {
  const star = roleStatements.filter((s) => s.Resource === '*').flatMap((s) => asArray(s.Action));
  return JSON.stringify(sorted(star)) === JSON.stringify(sorted(['secretsmanager:ListSecrets', 'secretsmanager:BatchGetSecretValue', 'kms:GenerateRandom'])) || String(star);
});

// ---- launch template, instances, network ----
const [, lt] = one('AWS::EC2::LaunchTemplate');
const ltData = lt.Properties.LaunchTemplateData;
check('launch template: EnclaveOptions.Enabled = true', () => ltData.EnclaveOptions?.Enabled === true);
check('launch template: MetadataOptions.HttpTokens = required, hop limit 1', () =>
  (ltData.MetadataOptions?.HttpTokens === 'required' && ltData.MetadataOptions?.HttpPutResponseHopLimit === 1) || JSON.stringify(ltData.MetadataOptions),
);
check('launch template: an enclave-capable instance type', () => /^(c6i|m5|c5|m6i|r5|c7i|m7i)\.\d*xlarge$/.test(ltData.InstanceType) || ltData.InstanceType);
check('launch template: encrypted root volume', () => ltData.BlockDeviceMappings?.[0]?.Ebs?.Encrypted === true);
check('no NAT gateway and no internet gateway', () => ofType('AWS::EC2::NatGateway').length + ofType('AWS::EC2::InternetGateway').length === 0);
check('interface endpoints for KMS and Secrets Manager, gateway endpoint for S3', () => {
  const names = ofType('AWS::EC2::VPCEndpoint').map(([, r]) => JSON.stringify(r.Properties.ServiceName));
  return ['.kms"', '.secretsmanager"', '.s3"'].every((s) => names.some((n) => n.includes(s))) || names.join(' ');
});
const [, asg] = one('AWS::AutoScaling::AutoScalingGroup');
check('Auto Scaling group: ELB health checks, signals, rolling updates', () =>
  asg.Properties.HealthCheckType === 'ELB' &&
  asg.CreationPolicy?.ResourceSignal?.Count !== undefined &&
  asg.UpdatePolicy?.AutoScalingRollingUpdate?.WaitOnResourceSignals === true,
);
const [, lb] = one('AWS::ElasticLoadBalancingV2::LoadBalancer');
const [, listener] = one('AWS::ElasticLoadBalancingV2::Listener');
const [, tg] = one('AWS::ElasticLoadBalancingV2::TargetGroup');
check('internal NLB, TCP 443 to 8443', () =>
  lb.Properties.Scheme === 'internal' && lb.Properties.Type === 'network' && listener.Properties.Port === 443 && listener.Properties.Protocol === 'TCP' && tg.Properties.Port === 8443,
);
check('health check: HTTPS GET /readyz on 8443', () =>
  (tg.Properties.HealthCheckProtocol === 'HTTPS' && tg.Properties.HealthCheckPath === '/readyz' && tg.Properties.HealthCheckPort === '8443') ||
  JSON.stringify(tg.Properties),
);

// ---- user data and the deploy files ----
function resolve(v: Json): string {
  if (typeof v === 'string') return v;
  if (v['Fn::Sub']) return String(v['Fn::Sub']).replace(/\$\{AWS::AccountId\}/g, ACCOUNT);
  if (v['Fn::GetAtt'] && v['Fn::GetAtt'][0] === 'WalletKey') return keyArn;
  if (v.Ref === 'AWS::AccountId') return ACCOUNT;
  if (v.Ref === 'AWS::Partition') return 'aws';
  throw new Error(`unexpected reference in user data: ${JSON.stringify(v)}`);
}
const userDataParts: Json[] = ltData.UserData['Fn::Base64']['Fn::Join'][1];
const userData = userDataParts.map(resolve).join('');
check(`user data under EC2's ${USER_DATA_LIMIT}-byte limit (${Buffer.byteLength(userData)} bytes)`, () => Buffer.byteLength(userData) < USER_DATA_LIMIT);
check('user data: every value filled in, the fixture PCR0 expected', () =>
  (!/'@@[A-Z0-9_]+@@'/.test(userData) && userData.includes(`EXPECTED_PCR0='${pcr0}'`)) || 'placeholder left or PCR0 missing',
);
const assetFiles = fs.readdirSync(cdkOut).filter((f) => f.startsWith('asset.') && f.endsWith('.json'));
check('deploy files bundle: exactly the repository files', () => {
  const deployDir = path.resolve(__dirname, '..', '..');
  for (const f of assetFiles) {
    const bundle = JSON.parse(fs.readFileSync(path.join(cdkOut, f), 'utf-8'));
    if (JSON.stringify(Object.keys(bundle).sort()) !== JSON.stringify([...DEPLOY_FILES].sort())) continue;
    return DEPLOY_FILES.every((rel) => bundle[rel] === fs.readFileSync(path.join(deployDir, rel), 'utf-8')) || 'contents differ';
  }
  return `no bundle among ${assetFiles}`;
});
if (userDataOut) fs.writeFileSync(userDataOut, userData);

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
