// `cta emu`: run the firmware bundle in the host emulator until SIGINT/SIGTERM.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { intOption, parseArgs, UsageError } from '../args.ts';
import { listBoards, loadBoard } from '../build/boards.ts';
import { buildFirmware, REPO_ROOT } from '../build/build.ts';
import { formatViolations } from '../build/subset-check.ts';
import { startEmulator } from './emulator.ts';
import { startConsoleEmulator } from './console.ts';

export const help = `usage: cta emu [--board emulator] --config cta.cbor [--udp PORT] [--serial PATH] [--storage DIR] [--bundle FILE] [--rebuild]

Runs the firmware bundle (dist/firmware/<board>.js, built if missing) in a Node vm
shaped like Espruino. The configuration is written into Storage as "cta.cfg"
before the bundle starts. Printed lines go to stdout. Stops on SIGINT/SIGTERM.

  --board B       board config (default emulator): ${listBoards().join(', ')}
  --config FILE   CTA configuration (CBOR, from cta provision)
  --udp PORT      host UDP port for the board's key-management port (default: the board's, 1293)
  --bind ADDR     address UDP sockets bind to (default 127.0.0.1)
  --serial PATH   pseudo-terminal or serial device for the board's serial port
  --storage DIR   Storage directory (default .tmp/emu/<board>)
  --bundle FILE   run this bundle instead of dist/firmware/<board>.js
  --rebuild       build the bundle even if it exists
  --console tcp:PORT  instead of running the bundle, be a board with an Espruino-style
                  console on 127.0.0.1:PORT (what EspruinoTools / cta flash talk to):
                  it boots whatever Storage ".bootcde" holds, as a board does; --config
                  is optional there (cta flash writes it)`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    board: { type: 'string' },
    config: { type: 'string' },
    udp: { type: 'string' },
    bind: { type: 'string' },
    serial: { type: 'string' },
    storage: { type: 'string' },
    bundle: { type: 'string' },
    rebuild: { type: 'boolean' },
    console: { type: 'string' },
  });
  const v = values as { [k: string]: string | boolean | undefined };
  const board = loadBoard((v.board as string) ?? 'emulator');
  if (v.console !== undefined) return runConsole(v, board.board);
  if (!v.config) throw new UsageError('--config FILE is required (make one with cta provision)');
  const configPath = resolve(v.config as string);
  if (!existsSync(configPath)) throw new UsageError(`config file not found: ${v.config}`);
  const config = new Uint8Array(readFileSync(configPath));
  if (v.udp !== undefined && !board.transports.udp) throw new UsageError(`board ${board.board} has no UDP transport; use --serial`);
  if (v.serial !== undefined && !board.transports.serial) throw new UsageError(`board ${board.board} has no serial transport; use --udp`);
  const udpPort = intOption(v.udp as string | undefined, 'udp', board.transports.udpPort ?? 0, 0, 65535);

  let bundlePath = v.bundle ? resolve(v.bundle as string) : join(REPO_ROOT, 'dist', 'firmware', `${board.board}.js`);
  if (v.bundle && !existsSync(bundlePath)) throw new UsageError(`bundle not found: ${v.bundle}`);
  if (!v.bundle && (v.rebuild || !existsSync(bundlePath))) {
    const r = await buildFirmware({ board: board.board });
    if (r.violations.length) {
      console.error(formatViolations(r.violations, r.path));
      console.error(`cta emu: the bundle for ${board.board} breaks the Espruino subset`);
      return 1;
    }
    bundlePath = r.path;
    console.log(`emu: built ${r.path} (${r.bytes} bytes)`);
  }
  const storageDir = resolve((v.storage as string) ?? join(REPO_ROOT, '.tmp', 'emu', board.board));
  const portMap: { [p: number]: number } = {};
  if (board.transports.udpPort) portMap[board.transports.udpPort] = udpPort;
  const emu = await startEmulator({
    board: board.board,
    bundlePath,
    storageDir,
    files: { 'cta.cfg': config },
    udpBindAddress: (v.bind as string) ?? '127.0.0.1',
    udpPortMap: portMap,
    serialPath: v.serial as string | undefined,
    onLog: (line) => console.log(line),
  });
  setTimeout(() => {
    const udp = emu.udpAddresses().map((a) => `${a.address}:${a.port}`);
    console.log(`emu: board ${board.board} running ${bundlePath}; storage ${storageDir}; udp ${udp.join(', ') || 'none'}${v.serial ? `; serial ${v.serial}` : ''}`);
  }, 200);
  const keepAlive = setInterval(() => {}, 1 << 30); // the emulated board runs until a signal
  await new Promise<void>((res) => {
    const stop = () => res();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  clearInterval(keepAlive);
  const m = emu.memory();
  await emu.stop();
  console.log(`emu: stopped (memory usage ${m.usage}/${m.total} variables, ${emu.errors.length} uncaught error(s))`);
  return 0;
}

/** `cta emu --console tcp:PORT`: a board with an Espruino-style console (console.ts). */
async function runConsole(v: { [k: string]: string | boolean | undefined }, board: string): Promise<number> {
  const m = /^tcp:(?:([^:]+):)?(\d+)$/.exec(v.console as string);
  if (!m) throw new UsageError(`bad --console '${v.console}': expected tcp:PORT (or tcp:HOST:PORT)`);
  const files: { [name: string]: Uint8Array } = {};
  if (v.config) {
    if (!existsSync(resolve(v.config as string))) throw new UsageError(`config file not found: ${v.config}`);
    files['cta.cfg'] = new Uint8Array(readFileSync(resolve(v.config as string)));
  }
  const storageDir = resolve((v.storage as string) ?? join(REPO_ROOT, '.tmp', 'emu', board));
  let con;
  try {
    con = await startConsoleEmulator({
      board,
      storageDir,
      files,
      udpBindAddress: (v.bind as string) ?? '127.0.0.1',
      serialPath: v.serial as string | undefined,
      onLog: (line) => console.log(line),
      host: m[1] ?? '127.0.0.1',
      port: intOption(m[2], 'console port', 0, 0, 65535),
    });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new UsageError(`console port ${m[2]} is already in use`);
    throw e;
  }
  console.log(`emu: board ${board} with an Espruino console on tcp://${con.address.host}:${con.address.port}; storage ${storageDir}`);
  const keepAlive = setInterval(() => {}, 1 << 30);
  await new Promise<void>((res) => {
    process.once('SIGINT', () => res());
    process.once('SIGTERM', () => res());
  });
  clearInterval(keepAlive);
  await con.close();
  console.log(`emu: stopped after ${con.boots} boot(s)`);
  return 0;
}
