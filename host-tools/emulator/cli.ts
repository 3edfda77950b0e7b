// `cta emu`: run the firmware bundle in the host emulator until SIGINT/SIGTERM.
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { decodeConfig, explainConfigError, type CtaConfig } from '../provision/config.ts';
import type { BoardConfig } from '../build/boards.ts';
import { join, resolve } from 'node:path';
import { intOption, parseArgs, UsageError } from '../args.ts';
import { listBoards, loadBoard } from '../build/boards.ts';
import { buildFirmware, REPO_ROOT } from '../build/build.ts';
import { formatViolations } from '../build/subset-check.ts';
import { bundleStale } from '../build/stale.ts';
import { startEmulator, privateStorageDir } from './emulator.ts';
import { startConsoleEmulator } from './console.ts';

export const help = `usage: cta emu [--board emulator] --config cta.cbor [--udp PORT] [--serial PATH] [--storage DIR] [--bundle FILE] [--rebuild]
       cta emu --console tcp:PORT [--board B] [--config cta.cbor] [--storage DIR]

Runs the stored image (dist/firmware/<board>.img, built if missing or older than
the firmware sources) in a Node vm shaped like Espruino. The configuration is
checked as the board reads it and written into Storage as "cta.cfg" before the
bundle starts. Printed lines go to stdout. Stops on SIGINT/SIGTERM.

  --board B       board config (default emulator): ${listBoards().join(', ')}
  --config FILE   CTA configuration (CBOR, from cta provision)
  --udp PORT      host UDP port for the CTA's key-management port (default: the config's
                  listen port, 1293 unless cta provision --listen-port); the signaling
                  port is the config's
  --bind ADDR     address UDP sockets bind to (default 127.0.0.1)
  --serial PATH   pseudo-terminal or serial device for the board's serial port
  --storage DIR   Storage directory (default .tmp/emu/<board>/<CTA principal>, or
                  .tmp/emu/<board>/console-<port> for --console); made mode 0700,
                  its files 0600: it holds the CTA's keys
  --bundle FILE   run this image or .js bundle instead of dist/firmware/<board>.img
  --rebuild       build the bundle even if it is up to date
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
  if (v.udp !== undefined && !board.transports.udp) throw new UsageError(`board ${board.board} has no UDP transport; use --serial`);
  if (v.serial !== undefined && !board.transports.serial) throw new UsageError(`board ${board.board} has no serial transport; use --udp`);
  // The agent's config is checked as the board will read it; another --bundle gets the file as it is.
  const { bytes: config, cfg } = readConfig(v.config as string, board, !v.bundle);
  const udpPort = intOption(v.udp as string | undefined, 'udp', cfg ? cfg.listenPort : (board.transports.udpPort ?? 0), 0, 65535);
  // One default folder per CTA: two CTAs never share a Storage (each holds its keys in cta.cfg).
  const own = cfg ? `${cfg.principal}@${cfg.realm}` : 'cfg-' + createHash('sha256').update(config).digest('hex').slice(0, 16);
  const storageDir = makeStorageDir((v.storage as string) ?? join(REPO_ROOT, '.tmp', 'emu', board.board, encodeURIComponent(own)));
  const bindAddress = (v.bind as string) ?? '127.0.0.1';
  if (cfg && cfg.transport === 'udp') {
    // A port in use would only show as a "dgram error" line from the board: say it now.
    await checkUdpFree(bindAddress, udpPort, `the CTA key-management port${v.udp !== undefined ? ' (--udp)' : " (the config's listen port; --udp PORT picks another)"}`);
    if (cfg.signalingPort !== cfg.listenPort) await checkUdpFree(bindAddress, cfg.signalingPort, "the CTA signaling port (the config's)");
  }

  let bundlePath = v.bundle ? resolve(v.bundle as string) : join(REPO_ROOT, 'dist', 'firmware', `${board.board}.img`);
  if (v.bundle && !existsSync(bundlePath)) throw new UsageError(`bundle not found: ${v.bundle}`);
  if (!v.bundle && (v.rebuild || bundleStale(bundlePath, board.board))) {
    const r = await buildFirmware({ board: board.board });
    if (r.violations.length) {
      console.error(formatViolations(r.violations, r.path));
      console.error(`cta emu: the bundle for ${board.board} breaks the Espruino subset`);
      return 1;
    }
    bundlePath = r.imagePath;
    console.log(`emu: built ${r.imagePath} (stored image, ${r.imageBytes} bytes)`);
  }
  const portMap: { [p: number]: number } = {};
  const boardPort = cfg ? cfg.listenPort : board.transports.udpPort;
  if (boardPort) portMap[boardPort] = udpPort;
  const emu = await startEmulator({
    board: board.board,
    bundlePath,
    storageDir,
    files: { 'cta.cfg': config },
    udpBindAddress: bindAddress,
    udpPortMap: portMap,
    serialPath: v.serial as string | undefined,
    onLog: (line) => console.log(explainConfigError(line)),
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

/** Reads and checks the configuration the way the board will (its defaults, its transports). */
function readConfig(path: string, board: BoardConfig, strict: boolean): { bytes: Uint8Array; cfg: CtaConfig | null } {
  const full = resolve(path);
  if (!existsSync(full)) throw new UsageError(`config file not found: ${path}`);
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(readFileSync(full));
  } catch (e) {
    throw new UsageError(`cannot read --config ${path}: ${errText(e)}`);
  }
  let cfg: CtaConfig;
  try {
    cfg = decodeConfig(bytes, { slots: board.slots, timers: board.timers });
  } catch (e) {
    if (!strict) return { bytes, cfg: null };
    throw new UsageError(`--config ${path} is not a CTA configuration (make one with cta provision): ${(e as Error).message}`);
  }
  if (cfg.transport === 'udp' && !board.transports.udp) throw new UsageError(`--config ${path} uses transport udp, but board ${board.board} has no UDP (provision with --transport serial)`);
  if (cfg.transport === 'serial' && !board.transports.serial) throw new UsageError(`--config ${path} uses transport serial, but board ${board.board} has no serial transport`);
  return { bytes, cfg };
}

function errText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : code === 'ENOTDIR' ? 'a part of the path is not a directory' : (code ?? (e as Error).message);
}

/** The board's Storage directory, created if needed, mode 0700 (it holds the CTA's keys). */
function makeStorageDir(dir: string): string {
  const full = resolve(dir);
  try {
    privateStorageDir(full);
  } catch (e) {
    throw new UsageError(`cannot create the Storage directory ${full} (${errText(e)}); choose one with --storage DIR`);
  }
  return full;
}

/** Binds and closes a UDP socket: UsageError when the port is taken. */
async function checkUdpFree(host: string, port: number, what: string): Promise<void> {
  if (port === 0) return;
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((res, rej) => {
    s.once('error', (e: NodeJS.ErrnoException) => {
      s.close();
      if (e.code === 'EADDRINUSE') rej(new UsageError(`UDP ${host}:${port}, ${what}, is already in use`));
      else if (e.code === 'EADDRNOTAVAIL') rej(new UsageError(`--bind ${host}: address not available on this machine`));
      else if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') rej(new UsageError(`--bind ${host}: cannot resolve it`));
      else if (e.code === 'EACCES') rej(new UsageError(`not allowed to bind UDP ${host}:${port} (${what})`));
      else rej(e);
    });
    s.bind({ port, address: host, exclusive: true }, () => s.close(() => res()));
  });
}

/** `cta emu --console tcp:PORT`: a board with an Espruino-style console (console.ts). */
async function runConsole(v: { [k: string]: string | boolean | undefined }, board: string): Promise<number> {
  const m = /^tcp:(?:([^:]+):)?(\d+)$/.exec(v.console as string);
  if (!m) throw new UsageError(`bad --console '${v.console}': expected tcp:PORT (or tcp:HOST:PORT)`);
  const files: { [name: string]: Uint8Array } = {};
  if (v.config) files['cta.cfg'] = readConfig(v.config as string, loadBoard(board), true).bytes;
  const storageDir = makeStorageDir((v.storage as string) ?? join(REPO_ROOT, '.tmp', 'emu', board, `console-${m[2]}`));
  let con;
  try {
    con = await startConsoleEmulator({
      board,
      storageDir,
      files,
      udpBindAddress: (v.bind as string) ?? '127.0.0.1',
      serialPath: v.serial as string | undefined,
      onLog: (line) => console.log(explainConfigError(line)),
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
