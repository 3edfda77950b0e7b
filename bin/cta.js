#!/usr/bin/env node
// The single CLI entry. TypeScript sources run through tsx's loader.
import { setFlagsFromString } from 'node:v8';
import { register } from 'tsx/esm/api';
register();
// `cta sc`: V8's young generation stays at its initial size (1 MiB per semi-space)
// instead of growing to 16 MiB when many long-lived objects are made in a row
// (registering or loading 100,000 CTAs): ~250 B of RSS per CTA that a GC never
// gives back. Set once tsx is registered (its loader thread's start-up resets it; so does
// the command line) and before the SC's modules load. The
// bench's SC processes get the same (SC_V8_FLAGS in host-tools/bench/proc.ts).
if (process.argv[2] === 'sc') setFlagsFromString('--semi-space-growth-factor=1');
const { main, internalError } = await import('../host-tools/cli.ts');
// An error thrown from an event handler (outside main's promise) is one line too.
const crash = (e) => {
  process.exitCode = internalError(process.argv[2] ?? null, e);
  process.exit();
};
process.on('uncaughtException', crash);
process.on('unhandledRejection', crash);
process.exitCode = await main(process.argv.slice(2));
