// Reads deploy/out/measurements.json (written by deploy/scripts/build-eif.sh), the single
// source of the PCR0 that the key policy pins. Everything here fails synth with a message
// that says what to do, never with a half-built stack.

import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

/** PCR0 of a debug-mode enclave: the parent can read its memory; never in production. */
export const DEBUG_PCR0 = '0'.repeat(96);

/** What the stack needs from measurements.json. */
export interface Measurements {
  /** The file it was read from (absolute). */
  readonly file: string;
  /** SHA-384 of the enclave image, 96 lowercase hex characters. */
  readonly pcr0: string;
  readonly pcr1: string;
  readonly pcr2: string;
  /** Region baked into the enclave image (its KMS region). */
  readonly region: string;
  /** The EIF (absolute path). */
  readonly eifPath: string;
  /** SHA-256 of the EIF, checked against the file at synth time and on the instance. */
  readonly eifSha256: string;
}

/** An error in the inputs of the stack, reported as-is by `cdk synth`. */
export class DeployInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DeployInputError';
  }
}

const HEX96 = /^[0-9a-f]{96}$/;
export const REGION = /^[a-z]{2}(-gov)?-[a-z]+-[0-9]$/;

/** SHA-256 (hex) of a file. */
export function sha256File(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/**
 * Checks a PCR0 value: 96 hex characters, and not the debug-mode zeros unless allowed.
 */
export function checkPcr0(pcr0: unknown, where: string, allowDebug: boolean): string {
  const v = typeof pcr0 === 'string' ? pcr0.toLowerCase() : '';
  if (!HEX96.test(v)) {
    throw new DeployInputError(`${where}: pcr0 must be 96 hex characters (SHA-384), got ${JSON.stringify(pcr0)}`);
  }
  if (v === DEBUG_PCR0 && !allowDebug) {
    throw new DeployInputError(
      `${where}: PCR0 is all zeros, the measurement of a DEBUG-MODE enclave whose memory the parent ` +
        'can read. Refusing to pin it in the key policy; pass -c allowDebugPcr0=true for a throw-away ' +
        'test deployment only.',
    );
  }
  return v;
}

/** Reads and checks measurements.json; `requireEif` also checks the EIF's presence and digest. */
export function readMeasurements(file: string, allowDebug: boolean, requireEif = true): Measurements {
  const abs = path.resolve(file);
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(fs.readFileSync(abs, 'utf-8'));
  } catch (e) {
    throw new DeployInputError(
      `cannot read the enclave measurements ${abs}: ${(e as Error).message}. Build them with ` +
        'deploy/scripts/build-eif.sh --region <region> and pass -c measurements=<path>.',
    );
  }
  if (typeof doc !== 'object' || doc === null) {
    throw new DeployInputError(`${abs}: not a JSON object`);
  }
  const pcr0 = checkPcr0(doc.pcr0, abs, allowDebug);
  const pcr = (k: string): string => {
    const v = String(doc[k] ?? '').toLowerCase();
    if (!HEX96.test(v)) throw new DeployInputError(`${abs}: ${k} must be 96 hex characters`);
    return v;
  };
  const region = String(doc.region ?? '');
  if (!REGION.test(region)) {
    throw new DeployInputError(`${abs}: region ${JSON.stringify(doc.region)} is not an AWS region`);
  }
  const eifRel = String(doc.eif ?? '');
  const eifSha256 = String(doc.eif_sha256 ?? '').toLowerCase();
  if (!eifRel || !/^[0-9a-f]{64}$/.test(eifSha256)) {
    throw new DeployInputError(`${abs}: eif and eif_sha256 are required`);
  }
  const eifPath = path.resolve(path.dirname(abs), eifRel);
  if (requireEif) {
    if (!fs.existsSync(eifPath)) {
      throw new DeployInputError(`${abs}: the EIF ${eifPath} does not exist`);
    }
    const actual = sha256File(eifPath);
    if (actual !== eifSha256) {
      throw new DeployInputError(
        `${eifPath} has SHA-256 ${actual}, but ${abs} measured ${eifSha256}: the EIF is not the ` +
          'measured one (rebuild both with build-eif.sh)',
      );
    }
  }
  return { file: abs, pcr0, pcr1: pcr('pcr1'), pcr2: pcr('pcr2'), region, eifPath, eifSha256 };
}
