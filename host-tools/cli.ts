// `cta <command> ...`: dispatches to one module per command. Each module exports
// `run(argv: string[]): Promise<number>` (the exit code) and `help: string`.

interface CommandModule {
  run(argv: string[]): Promise<number>;
  help: string;
}

const COMMANDS: { [name: string]: { summary: string; load: () => Promise<CommandModule> } } = {
  demo: { summary: 'run KDC + SC + emulated CTAs on loopback and show a full key exchange (npm start)', load: () => import('./demo/cli.ts') },
  kdc: { summary: 'embedded KDC: init, add principals, serve AS exchanges', load: () => import('./kdc/cli.ts') },
  sc: { summary: 'Signaling Controller: serve, status, wake, rekey', load: () => import('./sc/cli.ts') },
  emu: { summary: 'run the firmware bundle in the host emulator', load: () => import('./emulator/cli.ts') },
  build: { summary: 'bundle the firmware for a board into dist/firmware/<board>.js', load: () => import('./build/cli.ts') },
  provision: { summary: 'make a CTA configuration (CBOR) from a keytab', load: () => import('./provision/cli.ts') },
  flash: { summary: 'upload firmware and configuration to a board', load: () => import('./flash/cli.ts') },
  hil: { summary: 'hardware-in-the-loop scenario suite against a target', load: () => import('./hil/cli.ts') },
  bench: { summary: 'benchmarks (npm run bench)', load: () => import('./bench/cli.ts') },
};

export function usage(): string {
  const lines = ['usage: cta <command> [options]   (cta <command> --help for its options)', '', 'commands:'];
  for (const name of Object.keys(COMMANDS)) lines.push(`  ${name.padEnd(10)} ${COMMANDS[name].summary}`);
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const cmd = argv[0];
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(usage());
    return cmd ? 0 : 2;
  }
  const entry = COMMANDS[cmd];
  if (!entry) {
    console.error(`cta: unknown command '${cmd}'\n\n${usage()}`);
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
    throw e;
  }
  const rest = argv.slice(1);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(mod.help);
    return 0;
  }
  try {
    return await mod.run(rest);
  } catch (e) {
    // A user mistake gets one clear line; anything else is a bug and keeps its stack.
    if (e instanceof UsageError) {
      console.error(`cta ${cmd}: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

/** Thrown for bad input from the user: printed as one line, exit code 2. */
export class UsageError extends Error {}
