// `cta hil`: the hardware-in-the-loop scenario suite against a target.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, intOption, UsageError } from '../args.ts';
import { listBoards } from '../build/boards.ts';
import { runHil, scenarioNames, HIL_TIMERS, formatResult } from './runner.ts';
import { toJunit } from './junit.ts';
import { parseTarget, parseFlashOptions, unavailableReason } from './targets.ts';

export const help = `usage: cta hil --target T [--board B] [--scenario NAME ...] [--junit out.xml] [--json]

Provisions the target, starts a KDC and a Signaling Controller on loopback (free
ports, temp dir), boots the firmware and runs the scenario suite over UDP:
${scenarioNames().map((n) => `  ${n}`).join('\n')}
One line per scenario (PASS/FAIL/SKIP, time, what was measured), device memory
(process.memory() usage) before and after. Exit 1 if any scenario failed; a
serial device that is not there is skipped with the reason (exit 0); an espruino:
interpreter path that is missing or not executable is an error (exit 2).

The CTA's timers are shortened for HIL speed: retransmit at
${HIL_TIMERS.retransmitMs.join('/')} ms, abort at ${HIL_TIMERS.abortMs} ms (profile defaults 1000/2000/3000 ms).

  --target T          emu                      the host emulator (default board: emulator)
                      espruino:/path/espruino  an Espruino Linux build: started with --telnet in a
                                               temp dir, flashed like tcp:// (cta.cfg and the stored
                                               image to Storage, booted from flash with load()); one
                                               such run at a time per host (port 2323 is fixed in the
                                               build: runs queue); a missing or non-executable path
                                               is an error (exit 2) (default board: linux)
                      serial:/dev/ttyX[:baud]  a board on the serial link: provisioned over control
                                               channel 0 (flashed first if its console shares the
                                               line), scenarios through a link proxy (default board:
                                               emulator; the UDP flood is skipped)
                      tcp://HOST:PORT          a board behind an Espruino console on TCP (Espruino
                                               Linux --telnet, cta emu --console): flashed with
                                               cta flash, read through the console (default board: linux)
  --board B           board config: ${listBoards().join(', ')}
  --scenario NAME     run only these (repeatable; suite order is kept)
  --flash-option O    passed to the flash step (repeatable): force (as cta flash --force: flash
                      although the board reports another Espruino build), timeout=S, baud=N
  --flood N           Wake Ups in the flood (default 10000)
  --junit FILE        write JUnit XML
  --json              print the report as JSON on stdout (progress goes to stderr)
  --keep              keep the temp dir (firmware, KDC database, device storage)
  -v, --verbose       on a failure, print the device's last log lines`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    target: { type: 'string' },
    board: { type: 'string' },
    scenario: { type: 'string', multiple: true },
    flood: { type: 'string' },
    junit: { type: 'string' },
    json: { type: 'boolean' },
    keep: { type: 'boolean' },
    verbose: { type: 'boolean', short: 'v' },
    'flash-option': { type: 'string', multiple: true },
    // Testing the runner itself: a fault that must make scenarios fail.
    'inject-fault': { type: 'string' },
  });
  const v = values as { [k: string]: string | string[] | boolean | undefined };
  if (!v.target) throw new UsageError('--target is required (emu, espruino:/path/to/espruino, serial:/dev/ttyX[:baud], tcp://HOST:PORT)');
  const spec = parseTarget(v.target as string);
  // A missing or non-executable interpreter is a usage error (exit 2), never a skip.
  const why = spec.kind === 'espruino' ? unavailableReason(spec) : null;
  if (why) throw new UsageError(why.replace(/^target not available: /, `--target ${spec.text}: `));
  const flashOpts = parseFlashOptions((v['flash-option'] as string[] | undefined) ?? []);
  const names = (v.scenario as string[] | undefined) ?? [];
  // Test-only scenarios run when named but are not offered (as in --help).
  const known = scenarioNames(true);
  for (const n of names) if (!known.includes(n)) throw new UsageError(`unknown scenario '${n}' (known: ${scenarioNames().join(', ')})`);
  const fault = v['inject-fault'] as string | undefined;
  if (fault !== undefined && fault !== 'sc-key') throw new UsageError(`unknown --inject-fault '${fault}' (known: sc-key)`);
  const floodCount = intOption(v.flood as string | undefined, 'flood', 10000, 1, 1000000);
  const json = v.json === true;
  const say = (line: string) => (json ? process.stderr.write(line + '\n') : console.log(line));

  const report = await runHil({ target: v.target as string, board: v.board as string | undefined, scenarios: names, floodCount, out: say, fault: (fault as 'sc-key') ?? null, keep: v.keep === true, verbose: v.verbose === true, flash: flashOpts });
  if (report.skipped) {
    say(`SKIP ${report.target}: ${report.skipped}`);
    for (const r of report.results) say(formatResult(r));
  }
  const pass = report.results.filter((r) => r.status === 'pass').length;
  const fail = report.results.filter((r) => r.status === 'fail').length;
  const skip = report.results.filter((r) => r.status === 'skip').length;
  say(`hil ${report.target} (${report.board}): ${pass} passed, ${fail} failed, ${skip} skipped in ${(report.ms / 1000).toFixed(1)} s`);
  if (v.junit) {
    const path = resolve(v.junit as string);
    writeFileSync(path, toJunit(report));
    say(`JUnit: ${path}`);
  }
  if (json) console.log(JSON.stringify(report, null, 2));
  return fail > 0 ? 1 : 0;
}
