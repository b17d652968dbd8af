#!/usr/bin/env node
// The `virtus` command. TypeScript sources run through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/host/node/cli.ts');
process.exitCode = await main(process.argv.slice(2));
