#!/usr/bin/env node
// The single CLI entry. TypeScript sources run through tsx's loader.
import { register } from 'tsx/esm/api';
register();
const { main, internalError } = await import('../host-tools/cli.ts');
// An error thrown from an event handler (outside main's promise) is one line too.
const crash = (e) => {
  process.exitCode = internalError(process.argv[2] ?? null, e);
  process.exit();
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);
process.exitCode = await main(process.argv.slice(2));
