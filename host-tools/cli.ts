// `cta <command> ...`: dispatches to one module per command. Each module exports
// `run(argv: string[]): Promise<number>` (the exit code) and `help: string`.

interface CommandModule {
  run(argv: string[]): Promise<number>;
  help: string;
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
    // `cta help demo` is `cta demo --help`.
    if (cmd === 'help' && argv[1] && COMMANDS[argv[1]]) return main([argv[1], '--help']);
    console.log(usage());
    return 0;
  }
  if (!cmd) {
    console.error(usage());
    return 2;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    console.error(`cta: unknown ${cmd.startsWith('-') ? 'option' : 'command'} '${cmd}' (commands: ${Object.keys(COMMANDS).join(', ')}; cta --help)`);
    return 2;
  }
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
    console.log(mod.help);
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
    return internalError(cmd, e);
  }
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

/** Thrown for bad input from the user: printed as one line, exit code 2. */
export class UsageError extends Error {}
