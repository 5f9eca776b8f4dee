// Writes the user data of a synthesized NitroWallet template as the instance would run it,
// with its CloudFormation references replaced by sample values (deploy/test.sh runs bash -n,
// shellcheck and the simulated boot on it):
//
//   npx ts-node --transpile-only test/user-data-from-template.ts CDK_OUT OUT_FILE [KEY_ARN]
//
// The template's contents are checked by test/stack.test.ts; this only renders.

import * as fs from 'fs';
import * as path from 'path';

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const [cdkOut, outFile, keyArn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab'] = process.argv.slice(2);
if (!cdkOut || !outFile) {
  console.error('usage: user-data-from-template.ts CDK_OUT OUT_FILE [KEY_ARN]');
  process.exit(2);
}
const ACCOUNT = '123456789012';

function resolve(v: Json): string {
  if (typeof v === 'string') return v;
  if (v['Fn::Sub']) return String(v['Fn::Sub']).replace(/\$\{AWS::AccountId\}/g, ACCOUNT);
  if (v['Fn::GetAtt'] && String(v['Fn::GetAtt'][0]).startsWith('WalletKey')) return keyArn;
  if (v.Ref === 'AWS::AccountId') return ACCOUNT;
  if (v.Ref === 'AWS::Partition') return 'aws';
  throw new Error(`unexpected reference in user data: ${JSON.stringify(v)}`);
}

const template: Json = JSON.parse(fs.readFileSync(path.join(cdkOut, 'NitroWallet.template.json'), 'utf-8'));
const templates = Object.values(template.Resources as Record<string, Json>).filter((r) => r.Type === 'AWS::EC2::LaunchTemplate');
if (templates.length !== 1) throw new Error(`${templates.length} launch templates`);
const parts: Json[] = templates[0].Properties.LaunchTemplateData.UserData['Fn::Base64']['Fn::Join'][1];
fs.writeFileSync(outFile, parts.map(resolve).join(''));
