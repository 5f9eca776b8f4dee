#!/usr/bin/env node
// The nitro-wallet CDK app: `npx cdk synth|deploy -c measurements=... -c apiTokenSha256s=...`.
// The context values it reads are listed in lib/app.ts and deploy/README.md.

import { App } from 'aws-cdk-lib';
import { buildNitroWalletApp } from '../lib/app';

buildNitroWalletApp(new App());
