// Renders deploy/user-data.sh with the stack's values, and bundles the files it installs
// (deploy/systemd, deploy/enclave) into one JSON document uploaded next to the EIF: EC2 user
// data is limited to 16 KiB, which the script and the files together would exceed.

import * as fs from 'fs';
import * as path from 'path';
import { DeployInputError } from './measurements';

/** EC2's limit on user data, before base64. */
export const USER_DATA_LIMIT = 16 * 1024;

/** The files user-data.sh expects under /opt/nitro-wallet/deploy, relative to deploy/. */
export const DEPLOY_FILES = [
  'systemd/nitro-wallet.service',
  'systemd/nitro-wallet-supervise.service',
  'systemd/supervise.toml',
  'enclave/allocator.yaml',
  'enclave/vsock-proxy.yaml',
  'enclave/vsock-proxy.service.d/nitro-wallet.conf',
];

/** `{"systemd/nitro-wallet.service": "<text>", ...}` with sorted keys (a stable asset hash). */
export function deployFilesBundle(deployDir: string): string {
  const files: Record<string, string> = {};
  for (const rel of [...DEPLOY_FILES].sort()) {
    files[rel] = fs.readFileSync(path.join(deployDir, rel), 'utf-8');
  }
  return JSON.stringify(files, null, 1) + '\n';
}

/**
 * Fills in every `@@NAME@@` of the template. Values may be CDK tokens (resolved by
 * CloudFormation at deploy time); literal values must fit in the script's single quotes.
 * Full-line comments and blank lines are dropped (the commented script is deploy/user-data.sh
 * in the repository), keeping the result well under EC2's 16 KiB.
 */
export function renderUserData(template: string, values: Record<string, string>): string {
  const lines = template.split('\n');
  const kept = lines.filter((line, i) => i === 0 || !(/^\s*#/.test(line) || /^\s*$/.test(line)));
  const script = kept.join('\n') + '\n';
  const wanted = new Set([...script.matchAll(/@@([A-Z0-9_]+)@@/g)].map((m) => m[1]));
  for (const name of wanted) {
    if (!(name in values)) throw new DeployInputError(`user data: no value for @@${name}@@`);
  }
  for (const name of Object.keys(values)) {
    if (!wanted.has(name)) throw new DeployInputError(`user data: the template has no @@${name}@@`);
    if (/['\n\\]|@@/.test(values[name])) {
      throw new DeployInputError(`user data: the value of ${name} contains a quote, backslash, newline or @@`);
    }
  }
  return script.replace(/@@([A-Z0-9_]+)@@/g, (_, name: string) => values[name]);
}
