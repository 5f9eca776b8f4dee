// Builds the nitro-wallet app from its context values (-c name=value). bin/app.ts is this plus
// `new App()`; the tests (test/stack.test.ts) call it with their own context, so they check
// the same parsing, refusals and cdk-nag checks as `cdk synth`.
//
//   measurements          (required) deploy/out/measurements.json from build-eif.sh
//   apiTokenSha256s       (required) name=<sha256 hex>[,...] of the API tokens
//   previousMeasurements  measurements.json of the image being replaced, while rolling
//   hostBinary            the nitro-wallet binary (default: nitro-wallet next to measurements.json)
//   allowDebugPcr0        true to accept a debug-mode PCR0 of zeros (throw-away tests only)
//   adminPrincipalArns    comma-separated key administrators (default: the account root)
//   instanceType          default c6i.xlarge
//   enclaveCpuCount, enclaveMemoryMib, minCapacity, maxCapacity, secretsPrefix,
//   tlsSecretName, clientCidr, keyAlias, enableSsm, stackName
//
// The stack's region is the one baked into the enclave image (measurements.json).

import * as path from 'path';
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { DeployInputError, readMeasurements } from './measurements';
import { NitroWalletStack } from './nitro-wallet-stack';

/** deploy/ in the repository (user-data.sh, systemd/, enclave/). */
export const DEPLOY_DIR = path.resolve(__dirname, '..', '..');

export function buildNitroWalletApp(app: App): NitroWalletStack {
  function ctx(name: string): string | undefined {
    const v = app.node.tryGetContext(name);
    return v === undefined || v === null || v === '' ? undefined : String(v);
  }
  function ctxBool(name: string): boolean {
    const v = ctx(name);
    if (v === undefined) return false;
    if (/^(true|1|yes)$/i.test(v)) return true;
    if (/^(false|0|no)$/i.test(v)) return false;
    throw new DeployInputError(`-c ${name}=${v}: expected true or false`);
  }
  function ctxInt(name: string): number | undefined {
    const v = ctx(name);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v)) throw new DeployInputError(`-c ${name}=${v}: expected an integer`);
    return Number(v);
  }
  function required(name: string, hint: string): string {
    const v = ctx(name);
    if (v === undefined) throw new DeployInputError(`missing -c ${name}=...: ${hint}`);
    return v;
  }

  const allowDebugPcr0 = ctxBool('allowDebugPcr0');
  const measurementsFile = required(
    'measurements',
    'the measurements.json written by deploy/scripts/build-eif.sh (the PCR0 the key policy pins)',
  );
  const measurements = readMeasurements(measurementsFile, allowDebugPcr0);
  // While rolling to a new image, the one being replaced keeps decrypting (its EIF is not needed).
  const previousPcr0s: string[] = [];
  const previousFile = ctx('previousMeasurements');
  if (previousFile) {
    const prev = readMeasurements(previousFile, allowDebugPcr0, false);
    if (prev.region !== measurements.region) {
      throw new DeployInputError(`previousMeasurements is for ${prev.region}, measurements for ${measurements.region}`);
    }
    previousPcr0s.push(prev.pcr0);
  }

  const stack = new NitroWalletStack(app, ctx('stackName') ?? 'NitroWallet', {
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: measurements.region },
    description: 'nitro-wallet: Ethereum signing with keys only in an AWS Nitro Enclave',
    measurements,
    previousPcr0s,
    hostBinaryPath: path.resolve(ctx('hostBinary') ?? path.join(path.dirname(measurements.file), 'nitro-wallet')),
    deployDir: DEPLOY_DIR,
    adminPrincipalArns: ctx('adminPrincipalArns')?.split(',').map((s) => s.trim()).filter((s) => s.length > 0),
    apiTokenSha256s: required('apiTokenSha256s', 'name=<sha256 hex of the token>[,...]'),
    instanceType: ctx('instanceType'),
    enclaveCpuCount: ctxInt('enclaveCpuCount'),
    enclaveMemoryMib: ctxInt('enclaveMemoryMib'),
    minCapacity: ctxInt('minCapacity'),
    maxCapacity: ctxInt('maxCapacity'),
    secretsPrefix: ctx('secretsPrefix'),
    tlsSecretName: ctx('tlsSecretName'),
    clientCidr: ctx('clientCidr'),
    keyAlias: ctx('keyAlias'),
    enableSsm: ctxBool('enableSsm'),
  });

  // cdk-nag's AWS Solutions rules run on every synth (and deploy): an unacknowledged finding of
  // level error fails `cdk synth`, and the tests fail on warnings too. Each acknowledgement is
  // in nitro-wallet-stack.ts next to what it is about, with its reason.
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  return stack;
}
