// `cta <command> ...`: dispatches to one module per command. Each module exports
// `run(argv: string[]): Promise<number>` (the exit code) and `help: string`.
import { UsageError } from './args.ts';

interface CommandModule {
  run(argv: string[]): Promise<number>;
  help: string;
  /** Commands with subcommands (kdc, sc): the help of one, null if there is no such subcommand. */
  subcommandHelp?: (sub: string) => string | null;
}

const COMMANDS: { [name: string]: { summary: string; load: () => Promise<CommandModule> } } = {
  demo: { summary: 'run KDC + SC + emulated CTAs on loopback and show a full key exchange (npm start)', load: () => import('./demo/cli.ts') },
  kdc: { summary: 'embedded KDC: init, add, ktadd, list, serve (AS exchanges)', load: () => import('./kdc/cli.ts') },
  sc: { summary: 'Signaling Controller: serve; status, ctas, metrics, wake, rekey, register', load: () => import('./sc/cli.ts') },
  emu: { summary: 'run the firmware bundle in the host emulator', load: () => import('./emulator/cli.ts') },
  build: { summary: 'bundle the firmware for a board into dist/firmware/<board>.js', load: () => import('./build/cli.ts') },
  provision: { summary: 'make a CTA configuration (CBOR) from a keytab', load: () => import('./provision/cli.ts') },
  flash: { summary: 'upload firmware and configuration to a board', load: () => import('./flash/cli.ts') },
  hil: { summary: 'hardware-in-the-loop scenario suite against a target', load: () => import('./hil/cli.ts') },
  bench: { summary: 'performance suite: SC, KDC, firmware (npm run bench)', load: () => import('./bench/cli.ts') },
};

export function usage(): string {
  const lines = ['usage: cta <command> [options]   (cta <command> --help for its options)', '', 'commands:'];
  for (const name of Object.keys(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${COMMANDS[name].summary}`);
  lines.push('', 'Exit status: 0 success, 1 failure, 2 bad usage. CTA_DEBUG=1 prints stack traces of unexpected errors.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    // `cta help demo [SUB]` is `cta demo [SUB] --help`.
    if (cmd === 'help' && argv[1]) {
      if (!COMMANDS[argv[1]]) return unknownCommand(argv[1]);
      return main([...argv.slice(1, 3), '--help']);
    }
    console.log(usage());
    return 0;
  }
  if (!cmd) {
    console.error(usage());
    return 2;
  }
  const entry = COMMANDS[cmd];
  if (!entry) return unknownCommand(cmd);
  let mod: CommandModule;
  try {
    mod = await entry.load();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND') {
      console.error(`cta ${cmd}: not available in this build yet`);
      return 2;
    }
    return internalError(cmd, e);
  }
  const rest = argv.slice(1);
  if (rest.includes('--help') || rest.includes('-h')) {
    const sub = rest[0] && !rest[0].startsWith('-') && mod.subcommandHelp ? mod.subcommandHelp(rest[0]) : null;
    console.log(sub ?? mod.help);
    return 0;
  }
  try {
    return await mod.run(rest);
  } catch (e) {
    // A user mistake gets one clear line (exit 2); anything else is one line too
    // (exit 1), with the stack only when CTA_DEBUG is set.
    if (e instanceof UsageError) {
      console.error(`cta ${cmd}: ${e.message}`);
      return 2;
    }
    const path = pathError(e);
    if (path) {
      console.error(`cta ${cmd}: ${path}`);
      return 2;
    }
    return internalError(cmd, e);
  }
}

const PATH_ERRORS: { [code: string]: string } = {
  ENOTDIR: 'a part of the path is not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
};

/** A file-system error on a path the user gave (node's errors carry .path and .syscall), in one line. */
function pathError(e: unknown): string | null {
  const err = e as NodeJS.ErrnoException;
  if (!err || typeof err.path !== 'string' || !err.code || !PATH_ERRORS[err.code]) return null;
  return `cannot ${err.syscall ?? 'use'} '${err.path}': ${PATH_ERRORS[err.code]}`;
}

function unknownCommand(cmd: string): number {
  console.error(`cta: unknown ${cmd.startsWith('-') ? 'option' : 'command'} '${cmd}' (commands: ${Object.keys(COMMANDS).join(', ')}; cta --help)`);
  return 2;
}

/** An unexpected error: one line naming it; CTA_DEBUG=1 prints the stack. */
export function internalError(cmd: string | null, e: unknown): number {
  const err = e as NodeJS.ErrnoException;
  const msg = (err && typeof err.message === 'string' ? err.message : String(e)).split('\n')[0];
  const prefix = cmd ? `cta ${cmd}` : 'cta';
  if (process.env.CTA_DEBUG) console.error(`${prefix}: ${(err && err.stack) || msg}`);
  else console.error(`${prefix}: ${msg}${err && err.code && !msg.includes(err.code) ? ` (${err.code})` : ''} [unexpected error: CTA_DEBUG=1 shows the stack trace]`);
  return 1;
}
