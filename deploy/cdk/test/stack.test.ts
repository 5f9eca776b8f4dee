// Assertion tests of the NitroWallet stack (node's test runner, aws-cdk-lib/assertions):
//
//   npm test        (node --require ts-node/register --test test/*.test.ts)
//
// Each stack is built by lib/app.ts from context values, as `cdk synth` builds it, with its own
// fixture measurements (a made-up EIF, PCR0 and host binary in a temporary directory), and
// with cdk-nag's AwsSolutions checks that lib/app.ts applies. No AWS account or network.
//
// NITRO_WALLET_TEMPLATES=DIR writes each synthesized template to DIR (deploy/test.sh runs
// cfn-lint on them).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { buildNitroWalletApp, DEPLOY_DIR } from '../lib/app';
import { ADMIN_ACTIONS, ATTESTATION_KEY, CONTEXT_KEY } from '../lib/key-policy';
import { DEBUG_PCR0 } from '../lib/measurements';
import { DEPLOY_FILES, USER_DATA_LIMIT } from '../lib/user-data';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const sha = (alg: string, s: string | Buffer) => crypto.createHash(alg).update(s).digest('hex');
// The same fixture PCR0s as deploy/test.sh.
const PCR0 = sha('sha384', 'nitro-wallet deploy/test.sh fixture');
const PREV_PCR0 = sha('sha384', 'nitro-wallet deploy/test.sh previous image');
const TOKENS = `ops=${sha('sha256', 'token one')},ci=${sha('sha256', 'token two')}`;
const ACCOUNT = '123456789012';
const VPC_CIDR = '10.42.0.0/16';

// The feature flags of cdk.json, which `cdk synth` passes to the app as context.
const CDK_JSON_CONTEXT: Record<string, unknown> = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf-8')).context;

let tmp: string;
const fixture = (name: string) => path.join(tmp, name, 'measurements.json');

/** A directory with measurements.json, the EIF it measures and a host binary. */
function writeFixture(name: string, pcr0: string, eifSha256?: string): void {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  const eif = Buffer.from('not a real EIF: stack.test.ts fixture\n');
  fs.writeFileSync(path.join(dir, 'nitro-wallet.eif'), eif);
  fs.writeFileSync(path.join(dir, 'nitro-wallet'), '#!/bin/sh\n[ "$1" = supervise ] && exit 2\nexit 0\n', { mode: 0o755 });
  const m = { format: 1, pcr0, pcr1: '1'.repeat(96), pcr2: '2'.repeat(96), region: 'eu-west-1', eif: 'nitro-wallet.eif', eif_sha256: eifSha256 ?? sha('sha256', eif) };
  fs.writeFileSync(path.join(dir, 'measurements.json'), JSON.stringify(m, null, 2));
}

interface Synth {
  outdir: string;
  stack: ReturnType<typeof buildNitroWalletApp>;
  template: Template;
  json: Json;
}
let appCount = 0;
/** Builds the app with these context values (measurements and tokens default to the fixture). */
function build(context: Record<string, string>): Synth {
  const outdir = path.join(tmp, `cdk.out.${appCount++}`);
  const app = new App({ outdir, context: { ...CDK_JSON_CONTEXT, measurements: fixture('current'), apiTokenSha256s: TOKENS, ...context } });
  const stack = buildNitroWalletApp(app);
  const template = Template.fromStack(stack);
  return { outdir, stack, template, json: template.toJSON() };
}
function synth(name: string, context: Record<string, string> = {}): Synth {
  const s = build(context);
  if (process.env.NITRO_WALLET_TEMPLATES) {
    fs.mkdirSync(process.env.NITRO_WALLET_TEMPLATES, { recursive: true });
    fs.writeFileSync(path.join(process.env.NITRO_WALLET_TEMPLATES, `${name}.template.json`), JSON.stringify(s.json, null, 1));
  }
  return s;
}

const resources = (s: Synth, type: string): [string, Json][] =>
  Object.entries(s.json.Resources as Record<string, Json>).filter(([, r]) => r.Type === type);
function one(s: Synth, type: string, props: Json = {}): [string, Json] {
  const found = Object.entries(s.template.findResources(type, { Properties: props }));
  assert.equal(found.length, 1, `${found.length} ${type} matching ${JSON.stringify(props)}`);
  return found[0];
}
const asArray = (v: Json): Json[] => (Array.isArray(v) ? v : [v]);
const sortDeep = (v: Json): Json =>
  Array.isArray(v)
    ? v.map(sortDeep).sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1))
    : v && typeof v === 'object'
      ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, sortDeep(x)]))
      : v;
const getAtt = (id: string, attr: string) => ({ 'Fn::GetAtt': [id, attr] });

function keyPolicy(s: Synth): Json {
  return one(s, 'AWS::KMS::Key')[1].Properties.KeyPolicy;
}
function statement(s: Synth, sid: string): Json {
  const st = keyPolicy(s).Statement.find((x: Json) => x.Sid === sid);
  assert.ok(st, `no key policy statement ${sid}`);
  return st;
}
function instanceRole(s: Synth): string {
  const ids = resources(s, 'AWS::IAM::Role')
    .filter(([, r]) => JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes('ec2.amazonaws.com'))
    .map(([id]) => id);
  assert.equal(ids.length, 1, `instance roles: ${ids}`);
  return ids[0];
}
function roleStatements(s: Synth, roleId: string): Json[] {
  return resources(s, 'AWS::IAM::Policy')
    .filter(([, p]) => asArray(p.Properties.Roles).some((r: Json) => JSON.stringify(r) === JSON.stringify({ Ref: roleId })))
    .flatMap(([, p]) => p.Properties.PolicyDocument.Statement);
}

/** The render-key-policy.py policy for these PCR0s (through their measurements files). */
function pythonPolicy(...measurements: string[]): Json {
  const args = [path.join(DEPLOY_DIR, 'scripts', 'render-key-policy.py')];
  for (const m of measurements) args.push('--measurements', m);
  args.push('--instance-role-arn', `arn:aws:iam::${ACCOUNT}:role/nitro-wallet-instance`, '--admin-arn', `arn:aws:iam::${ACCOUNT}:root`);
  return JSON.parse(execFileSync('python3', args, { encoding: 'utf-8' }));
}
/** A policy's statements with the principals reduced to their kind, arrays sorted. */
function comparable(policy: Json): Json {
  return policy.Statement.map((st: Json) =>
    sortDeep({ ...st, Action: asArray(st.Action), Principal: st.Principal === '*' ? '*' : 'role-or-admin' }),
  );
}

// ---- security group rules, inline or separate resources, normalized ----
interface Rule {
  proto: string;
  from: number;
  to: number;
  peer: string;
}
function peerOf(r: Json): string {
  if (r.CidrIp) return `cidr:${r.CidrIp}`;
  if (r.CidrIpv6) return `cidr6:${r.CidrIpv6}`;
  const sgRef = r.SourceSecurityGroupId ?? r.DestinationSecurityGroupId;
  if (sgRef) return `sg:${sgRef['Fn::GetAtt'][0]}`;
  const pl = r.SourcePrefixListId ?? r.DestinationPrefixListId;
  if (pl) return `prefix-list:${JSON.stringify(pl)}`;
  return `?${JSON.stringify(r)}`;
}
function rules(s: Synth, sgId: string, dir: 'ingress' | 'egress'): Rule[] {
  const inline = s.json.Resources[sgId].Properties[dir === 'ingress' ? 'SecurityGroupIngress' : 'SecurityGroupEgress'] ?? [];
  const separate = resources(s, dir === 'ingress' ? 'AWS::EC2::SecurityGroupIngress' : 'AWS::EC2::SecurityGroupEgress')
    .map(([, r]) => r.Properties)
    .filter((p) => JSON.stringify(p.GroupId) === JSON.stringify(getAtt(sgId, 'GroupId')));
  return [...inline, ...separate]
    .map((r: Json) => ({ proto: String(r.IpProtocol), from: r.FromPort, to: r.ToPort, peer: peerOf(r) }))
    .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
}
const tcp = (port: number, peer: string): Rule => ({ proto: 'tcp', from: port, to: port, peer });
function securityGroup(s: Synth, description: RegExp): string {
  const ids = resources(s, 'AWS::EC2::SecurityGroup')
    .filter(([, r]) => description.test(r.Properties.GroupDescription))
    .map(([id]) => id);
  assert.equal(ids.length, 1, `security groups matching ${description}: ${ids}`);
  return ids[0];
}

/** cdk-nag findings (AwsSolutions and validation failures) that are not acknowledged. */
function nagFindings(s: Synth): string[] {
  const a = Annotations.fromStack(s.stack);
  const pattern = Match.stringLikeRegexp('(AwsSolutions|CdkNagValidationFailure)');
  return [...a.findError('*', pattern), ...a.findWarning('*', pattern)].map(
    (m) => `${m.id}: ${String(m.entry.data).split('\n')[0].slice(0, 160)}`,
  );
}

let main: Synth;
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'nitro-wallet-stack-test-'));
  writeFixture('current', PCR0);
  writeFixture('previous', PREV_PCR0);
  writeFixture('zeros', DEBUG_PCR0);
  writeFixture('tampered', PCR0, 'f'.repeat(64));
  main = synth('main');
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('KMS key policy', () => {
  test('Decrypt: only the instance role, only with the fixture PCR0 under kms:RecipientAttestation:ImageSha384 and the address context key', () => {
    main.template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectEquals({
            Sid: 'EnclaveDecrypt',
            Effect: 'Allow',
            Principal: { AWS: getAtt(instanceRole(main), 'Arn') },
            Action: 'kms:Decrypt',
            Resource: '*',
            Condition: {
              StringEqualsIgnoreCase: { [ATTESTATION_KEY]: [PCR0] },
              'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [CONTEXT_KEY] },
              Null: { 'kms:EncryptionContextKeys': 'false' },
            },
          }),
        ]),
      },
    });
  });
  test('Encrypt: only the instance role, exactly the address context key with a 0x… value', () => {
    assert.deepEqual(statement(main, 'EnclaveEncrypt'), {
      Sid: 'EnclaveEncrypt',
      Effect: 'Allow',
      Principal: { AWS: getAtt(instanceRole(main), 'Arn') },
      Action: 'kms:Encrypt',
      Resource: '*',
      Condition: {
        StringLike: { [`kms:EncryptionContext:${CONTEXT_KEY}`]: '0x*' },
        'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': [CONTEXT_KEY] },
        Null: { 'kms:EncryptionContextKeys': 'false' },
      },
    });
  });
  test('Deny: Decrypt without an attestation document, for every principal', () => {
    main.template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectEquals({
            Sid: 'DenyDecryptWithoutAttestation',
            Effect: 'Deny',
            Principal: '*',
            Action: 'kms:Decrypt',
            Resource: '*',
            Condition: { Null: { [ATTESTATION_KEY]: 'true' } },
          }),
        ]),
      },
    });
  });
  test('Deny: Decrypt attested by any image but the measured one (debug zeros included), for every principal', () => {
    main.template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectEquals({
            Sid: 'DenyDecryptOutsideMeasuredImages',
            Effect: 'Deny',
            Principal: '*',
            Action: 'kms:Decrypt',
            Resource: '*',
            Condition: { StringNotEqualsIgnoreCase: { [ATTESTATION_KEY]: [PCR0] } },
          }),
        ]),
      },
    });
  });
  test('Deny: ReEncrypt and grants, for every principal', () => {
    assert.deepEqual(statement(main, 'DenyReEncryptAndGrants'), {
      Sid: 'DenyReEncryptAndGrants',
      Effect: 'Deny',
      Principal: '*',
      Action: ['kms:ReEncrypt*', 'kms:CreateGrant'],
      Resource: '*',
    });
  });
  test('no kms:* anywhere; the administrators (account root by default) manage but cannot use the key', () => {
    const policy = keyPolicy(main);
    assert.deepEqual(
      policy.Statement.map((s: Json) => s.Sid),
      ['KeyAdministration', 'EnclaveDecrypt', 'EnclaveEncrypt', 'DenyDecryptWithoutAttestation', 'DenyDecryptOutsideMeasuredImages', 'DenyReEncryptAndGrants'],
    );
    for (const s of policy.Statement.filter((x: Json) => x.Effect === 'Allow')) {
      assert.ok(!asArray(s.Action).some((a: string) => a === '*' || a === 'kms:*'), `${s.Sid} allows ${s.Action}`);
    }
    const admin = statement(main, 'KeyAdministration');
    assert.deepEqual(admin.Action, ADMIN_ACTIONS);
    assert.ok(!admin.Action.some((a: string) => /Decrypt|Encrypt|GenerateDataKey|CreateGrant|ReEncrypt/.test(a)), String(admin.Action));
    assert.equal(JSON.stringify(admin.Principal.AWS).includes(':root'), true, JSON.stringify(admin.Principal));
  });
  test('rotation on; kept when the stack is deleted or the key replaced', () => {
    main.template.hasResource('AWS::KMS::Key', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: { EnableKeyRotation: true, KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' },
    });
    main.template.hasResourceProperties('AWS::KMS::Alias', { AliasName: 'alias/nitro-wallet' });
  });
  test('equal to render-key-policy.py for the same measurements (principals aside)', () => {
    assert.deepEqual(comparable(keyPolicy(main)), comparable(pythonPolicy(fixture('current'))));
  });
});

describe('instance role', () => {
  test('no kms:Decrypt/Encrypt in IAM (the key policy alone decides)', () => {
    const actions = roleStatements(main, instanceRole(main)).flatMap((s) => asArray(s.Action));
    assert.ok(!actions.some((a: string) => /^kms:(Decrypt|Encrypt|ReEncrypt.*|GenerateDataKey.*|\*)$|^\*$/.test(a)), String(actions));
  });
  test('kms:GenerateRandom only with the attested PCR0', () => {
    const s = roleStatements(main, instanceRole(main)).find((x) => asArray(x.Action).includes('kms:GenerateRandom'));
    assert.deepEqual(s?.Condition, { StringEqualsIgnoreCase: { [ATTESTATION_KEY]: [PCR0] } });
  });
  test('Secrets Manager: create/read only under nitro-wallet/keys/, never overwrite or delete', () => {
    const statements = roleStatements(main, instanceRole(main));
    const s = statements.find((x) => asArray(x.Action).includes('secretsmanager:CreateSecret'));
    assert.ok(s);
    assert.deepEqual([...s.Action].sort(), ['secretsmanager:CreateSecret', 'secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue']);
    assert.match(JSON.stringify(s.Resource), /:secret:nitro-wallet\/keys\/\*"\]\]\}$/);
    const actions = statements.flatMap((x) => asArray(x.Action));
    assert.deepEqual(actions.filter((a: string) => /PutSecretValue|DeleteSecret|UpdateSecret|secretsmanager:\*/.test(a)), []);
  });
  test('only ListSecrets, BatchGetSecretValue and GenerateRandom (unscopable) on "*"', () => {
    const star = roleStatements(main, instanceRole(main))
      .filter((s) => s.Resource === '*')
      .flatMap((s) => asArray(s.Action));
    assert.deepEqual(star.sort(), ['kms:GenerateRandom', 'secretsmanager:BatchGetSecretValue', 'secretsmanager:ListSecrets']);
  });
  test('s3:GetObject on the three artifacts only; no managed policies', () => {
    const s = roleStatements(main, instanceRole(main)).find((x) => asArray(x.Action).includes('s3:GetObject'));
    assert.equal(asArray(s?.Resource).length, 3);
    assert.equal(main.json.Resources[instanceRole(main)].Properties.ManagedPolicyArns, undefined);
  });
});

describe('launch template', () => {
  test('Nitro Enclaves enabled (EnclaveOptions.Enabled)', () => {
    main.template.hasResourceProperties('AWS::EC2::LaunchTemplate', { LaunchTemplateData: { EnclaveOptions: { Enabled: true } } });
  });
  test('IMDSv2 required (HttpTokens=required), hop limit 1, no instance tags in IMDS', () => {
    main.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: {
        MetadataOptions: Match.objectEquals({
          HttpEndpoint: 'enabled',
          HttpTokens: 'required',
          HttpPutResponseHopLimit: 1,
          InstanceMetadataTags: 'disabled',
        }),
      },
    });
  });
  test('c6i.xlarge, encrypted gp3 root volume, no SSH key, the instance security group only', () => {
    const [, lt] = one(main, 'AWS::EC2::LaunchTemplate');
    const d = lt.Properties.LaunchTemplateData;
    assert.equal(d.InstanceType, 'c6i.xlarge');
    assert.deepEqual(d.BlockDeviceMappings[0].Ebs, { DeleteOnTermination: true, Encrypted: true, VolumeSize: 16, VolumeType: 'gp3' });
    assert.equal(d.KeyName, undefined);
    const sg = securityGroup(main, /^nitro-wallet instances/);
    assert.deepEqual(d.SecurityGroupIds, [getAtt(sg, 'GroupId')]);
  });
});

describe('network and security groups', () => {
  test('no NAT gateway, no internet gateway, no public subnet', () => {
    main.template.resourceCountIs('AWS::EC2::NatGateway', 0);
    main.template.resourceCountIs('AWS::EC2::InternetGateway', 0);
    main.template.resourceCountIs('AWS::EC2::EIP', 0);
    for (const [, subnet] of resources(main, 'AWS::EC2::Subnet')) assert.equal(subnet.Properties.MapPublicIpOnLaunch, false);
  });
  test('interface endpoints with private DNS (KMS, Secrets Manager, CloudFormation) and an S3 gateway endpoint', () => {
    const eps = resources(main, 'AWS::EC2::VPCEndpoint').map(([, r]) => r.Properties);
    const iface = eps.filter((p) => p.VpcEndpointType === 'Interface');
    assert.deepEqual(iface.map((p) => String(p.ServiceName).replace('com.amazonaws.eu-west-1.', '')).sort(), ['cloudformation', 'kms', 'secretsmanager']);
    assert.ok(iface.every((p) => p.PrivateDnsEnabled === true));
    const gw = eps.filter((p) => p.VpcEndpointType === 'Gateway');
    assert.equal(gw.length, 1);
    assert.match(JSON.stringify(gw[0].ServiceName), /\.s3"/);
  });
  test('instances: ingress only TCP 8443 from the load balancer security group', () => {
    const inst = securityGroup(main, /^nitro-wallet instances/);
    const nlb = securityGroup(main, /^nitro-wallet NLB/);
    assert.deepEqual(rules(main, inst, 'ingress'), [tcp(8443, `sg:${nlb}`)]);
  });
  test('instances: egress only TCP 443 to the interface endpoints and to the S3 prefix list', () => {
    const inst = securityGroup(main, /^nitro-wallet instances/);
    const endpoints = securityGroup(main, /^nitro-wallet interface endpoints/);
    const [lookup] = one(main, 'Custom::AWS');
    assert.deepEqual(rules(main, inst, 'egress'), [
      tcp(443, `prefix-list:${JSON.stringify(getAtt(lookup, 'PrefixLists.0.PrefixListId'))}`),
      tcp(443, `sg:${endpoints}`),
    ]);
    const props = main.json.Resources[inst].Properties;
    assert.equal(props.SecurityGroupEgress, undefined, 'no inline (allow-all) egress');
  });
  test('load balancer: ingress only TCP 443 from clientCidr (default: the VPC), egress only TCP 8443 to the instances', () => {
    const inst = securityGroup(main, /^nitro-wallet instances/);
    const nlb = securityGroup(main, /^nitro-wallet NLB/);
    assert.deepEqual(rules(main, nlb, 'ingress'), [tcp(443, `cidr:${VPC_CIDR}`)]);
    assert.deepEqual(rules(main, nlb, 'egress'), [tcp(8443, `sg:${inst}`)]);
  });
  test('interface endpoints: ingress only TCP 443 from the instances, nothing out', () => {
    const inst = securityGroup(main, /^nitro-wallet instances/);
    const endpoints = securityGroup(main, /^nitro-wallet interface endpoints/);
    assert.deepEqual(rules(main, endpoints, 'ingress'), [tcp(443, `sg:${inst}`)]);
    // CDK's placeholder for "no egress": ICMP type 252 code 86 to 255.255.255.255/32.
    assert.deepEqual(rules(main, endpoints, 'egress'), [{ proto: 'icmp', from: 252, to: 86, peer: 'cidr:255.255.255.255/32' }]);
    for (const [, ep] of resources(main, 'AWS::EC2::VPCEndpoint').filter(([, r]) => r.Properties.VpcEndpointType === 'Interface')) {
      assert.deepEqual(ep.Properties.SecurityGroupIds, [getAtt(endpoints, 'GroupId')]);
    }
  });
  test('no security group rule opens to 0.0.0.0/0 or ::/0', () => {
    for (const [id] of resources(main, 'AWS::EC2::SecurityGroup')) {
      for (const r of [...rules(main, id, 'ingress'), ...rules(main, id, 'egress')]) {
        assert.ok(r.peer !== 'cidr:0.0.0.0/0' && r.peer !== 'cidr6:::/0', `${id}: ${JSON.stringify(r)}`);
      }
    }
  });
  test('the S3 prefix list is looked up by name for the stack region (read-only call)', () => {
    const [, lookup] = one(main, 'Custom::AWS');
    const call = JSON.stringify(lookup.Properties.Create);
    assert.match(call, /describeManagedPrefixLists/);
    assert.match(call, /com\.amazonaws\.eu-west-1\.s3/);
    // Its function's role: that call, and writing to its own log group; no managed policy.
    const roleId = resources(main, 'AWS::IAM::Role').find(([id]) => id.startsWith('S3PrefixListLookupRole'))?.[0];
    assert.ok(roleId);
    assert.equal(main.json.Resources[roleId].Properties.ManagedPolicyArns, undefined);
    const statements = roleStatements(main, roleId);
    assert.deepEqual(statements.flatMap((s) => asArray(s.Action)).sort(), ['ec2:DescribeManagedPrefixLists', 'logs:CreateLogStream', 'logs:PutLogEvents']);
    const [logGroup] = resources(main, 'AWS::Logs::LogGroup').find(([id]) => id.startsWith('S3PrefixListLookupLogs')) ?? [];
    assert.deepEqual(statements.find((s) => asArray(s.Action).includes('logs:PutLogEvents'))?.Resource, getAtt(String(logGroup), 'Arn'));
  });
  test('VPC flow logs of all traffic to CloudWatch Logs, kept a year', () => {
    main.template.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL', LogDestinationType: 'cloud-watch-logs' });
    main.template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
  });
});

describe('load balancer and Auto Scaling group', () => {
  test('internal NLB with its security group, listener TCP 443 to targets TCP 8443', () => {
    const nlb = securityGroup(main, /^nitro-wallet NLB/);
    main.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', {
      Scheme: 'internal',
      Type: 'network',
      SecurityGroups: [getAtt(nlb, 'GroupId')],
    });
    main.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 443, Protocol: 'TCP' });
    main.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', { Port: 8443, Protocol: 'TCP', TargetType: 'instance' });
  });
  test('target group health check: HTTPS GET /readyz on 8443', () => {
    main.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::TargetGroup', {
      HealthCheckEnabled: Match.absent(),
      HealthCheckProtocol: 'HTTPS',
      HealthCheckPath: '/readyz',
      HealthCheckPort: '8443',
      HealthyThresholdCount: 2,
      UnhealthyThresholdCount: 2,
    });
  });
  test('ASG created after its security group rules and the VPC endpoints (DependsOn)', () => {
    const [, asg] = one(main, 'AWS::AutoScaling::AutoScalingGroup');
    const deps = new Set<string>(asg.DependsOn ?? []);
    const inst = securityGroup(main, /^nitro-wallet instances/);
    const endpoints = securityGroup(main, /^nitro-wallet interface endpoints/);
    const wanted = [
      ...resources(main, 'AWS::EC2::VPCEndpoint').map(([id]) => id),
      ...['AWS::EC2::SecurityGroupIngress', 'AWS::EC2::SecurityGroupEgress'].flatMap((t) =>
        resources(main, t)
          .filter(([, r]) => [inst, endpoints].includes(r.Properties.GroupId['Fn::GetAtt'][0]))
          .map(([id]) => id),
      ),
    ];
    assert.ok(wanted.length >= 7, String(wanted));
    assert.deepEqual(wanted.filter((id) => !deps.has(id)), []);
  });
  test('ASG in the isolated subnets: ELB health checks, waits for signals, rolls one instance at a time', () => {
    main.template.hasResource('AWS::AutoScaling::AutoScalingGroup', {
      Properties: { HealthCheckType: 'ELB', HealthCheckGracePeriod: 900, MinSize: '2', MaxSize: '4' },
      CreationPolicy: { ResourceSignal: { Count: 2, Timeout: 'PT20M' } },
      UpdatePolicy: {
        AutoScalingRollingUpdate: { MaxBatchSize: 1, MinInstancesInService: 2, WaitOnResourceSignals: true, PauseTime: 'PT20M' },
      },
    });
  });
});

describe('user data and artifacts', () => {
  const userData = (s: Synth): string =>
    one(s, 'AWS::EC2::LaunchTemplate')[1]
      .Properties.LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'][1]
      .map((p: Json) => (typeof p === 'string' ? p : '<ref>'))
      .join('');
  test(`user data under EC2's ${USER_DATA_LIMIT}-byte limit, every value filled in, the fixture PCR0 expected`, () => {
    const ud = userData(main);
    assert.ok(Buffer.byteLength(ud) < USER_DATA_LIMIT - 1024, `${Buffer.byteLength(ud)} bytes`);
    assert.doesNotMatch(ud, /@@[A-Z0-9_]+@@/);
    assert.ok(ud.includes(`EXPECTED_PCR0='${PCR0}'`));
  });
  test('deploy files bundle: exactly the repository files', () => {
    const bundle = JSON.parse(fs.readFileSync(path.join(main.outdir, 'nitro-wallet-deploy-files.json'), 'utf-8'));
    assert.deepEqual(Object.keys(bundle).sort(), [...DEPLOY_FILES].sort());
    for (const rel of DEPLOY_FILES) assert.equal(bundle[rel], fs.readFileSync(path.join(DEPLOY_DIR, rel), 'utf-8'), rel);
  });
});

describe('cdk-nag AwsSolutions', () => {
  test('no unacknowledged error or warning (default context)', () => {
    assert.deepEqual(nagFindings(main), []);
  });
  test('no unacknowledged error or warning (enableSsm, tlsSecretName, clientCidr)', () => {
    const s = synth('ssm-tls', { enableSsm: 'true', tlsSecretName: 'nitro-wallet/tls', clientCidr: '10.7.0.0/16', minCapacity: '3', maxCapacity: '6' });
    assert.deepEqual(nagFindings(s), []);
    // ... and what those values change.
    const iface = resources(s, 'AWS::EC2::VPCEndpoint').filter(([, r]) => r.Properties.VpcEndpointType === 'Interface');
    assert.equal(iface.length, 6);
    const nlb = securityGroup(s, /^nitro-wallet NLB/);
    assert.deepEqual(rules(s, nlb, 'ingress'), [tcp(443, 'cidr:10.7.0.0/16')]);
    const role = s.json.Resources[instanceRole(s)];
    assert.equal(JSON.stringify(role.Properties.ManagedPolicyArns).includes('AmazonSSMManagedInstanceCore'), true);
    const tls = roleStatements(s, instanceRole(s)).find((x) => x.Sid === 'TlsCertificate');
    assert.match(JSON.stringify(tls?.Resource), /:secret:nitro-wallet\/tls-\?{6}"\]\]\}$/);
  });
  test('no unacknowledged error or warning with a concrete account (the CLI sets CDK_DEFAULT_ACCOUNT when it has credentials)', () => {
    const saved = process.env.CDK_DEFAULT_ACCOUNT;
    process.env.CDK_DEFAULT_ACCOUNT = ACCOUNT;
    try {
      const s = build({ enableSsm: 'true' });
      assert.deepEqual(nagFindings(s), []);
      assert.ok(JSON.stringify(s.json).includes(`:${ACCOUNT}:secret:nitro-wallet/keys/*`));
    } finally {
      if (saved === undefined) delete process.env.CDK_DEFAULT_ACCOUNT;
      else process.env.CDK_DEFAULT_ACCOUNT = saved;
    }
  });
  test('the checks run: a load balancer open to 0.0.0.0/0 is reported (AwsSolutions-EC23)', () => {
    const s = build({ clientCidr: '0.0.0.0/0' });
    assert.ok(nagFindings(s).some((f) => f.includes('AwsSolutions-EC23')), String(nagFindings(s)));
  });
  test('every acknowledgement carries a specific reason', () => {
    const all = Object.values(main.json.Resources as Record<string, Json>).flatMap((r) => r.Metadata?.cdk_nag?.rules_to_suppress ?? []);
    assert.ok(all.length >= 4, `${all.length} acknowledgements`);
    for (const s of all) assert.ok(typeof s.reason === 'string' && s.reason.length >= 60, `${s.id}: ${s.reason}`);
  });
});

describe('inputs', () => {
  test('refuses a debug-mode PCR0 of zeros', () => {
    assert.throws(() => build({ measurements: fixture('zeros') }), /DEBUG-MODE/);
  });
  test('accepts zeros only with allowDebugPcr0=true, and pins them', () => {
    const s = synth('debug', { measurements: fixture('zeros'), allowDebugPcr0: 'true' });
    assert.deepEqual(statement(s, 'EnclaveDecrypt').Condition.StringEqualsIgnoreCase[ATTESTATION_KEY], [DEBUG_PCR0]);
  });
  test('refuses a missing measurements file, no measurements, no API token', () => {
    assert.throws(() => build({ measurements: path.join(tmp, 'nonexistent.json') }), /cannot read the enclave measurements/);
    assert.throws(() => build({ measurements: '' }), /missing -c measurements/);
    assert.throws(() => build({ apiTokenSha256s: '' }), /apiTokenSha256s/);
    assert.throws(() => build({ apiTokenSha256s: 'ops=not-a-hash' }), /apiTokenSha256s must be/);
  });
  test('refuses an EIF that is not the measured one', () => {
    assert.throws(() => build({ measurements: fixture('tampered') }), /is not the measured one/);
  });
  test('refuses burstable or small instance types, odd enclave CPU counts, maxCapacity ≤ minCapacity', () => {
    assert.throws(() => build({ instanceType: 't3.xlarge' }), /non-burstable/);
    assert.throws(() => build({ instanceType: 'c6i.large' }), /non-burstable/);
    assert.throws(() => build({ enclaveCpuCount: '3' }), /even number/);
    assert.throws(() => build({ minCapacity: '2', maxCapacity: '2' }), /minCapacity < maxCapacity/);
  });
  test('rolling (previousMeasurements): both PCR0s may decrypt, every other image is denied; equal to render-key-policy.py', () => {
    const s = synth('rolling', { previousMeasurements: fixture('previous') });
    assert.deepEqual(statement(s, 'EnclaveDecrypt').Condition.StringEqualsIgnoreCase[ATTESTATION_KEY], [PCR0, PREV_PCR0]);
    assert.deepEqual(statement(s, 'DenyDecryptOutsideMeasuredImages').Condition.StringNotEqualsIgnoreCase[ATTESTATION_KEY], [PCR0, PREV_PCR0]);
    const gr = roleStatements(s, instanceRole(s)).find((x) => asArray(x.Action).includes('kms:GenerateRandom'));
    assert.deepEqual(gr?.Condition.StringEqualsIgnoreCase[ATTESTATION_KEY], [PCR0, PREV_PCR0]);
    assert.deepEqual(comparable(keyPolicy(s)), comparable(pythonPolicy(fixture('current'), fixture('previous'))));
  });
});
