#!/usr/bin/env node
// The single CLI entry. TypeScript sources run through tsx's loader.
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../host-tools/cli.ts');
process.exitCode = await main(process.argv.slice(2));
