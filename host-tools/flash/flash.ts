// The flasher: builds the firmware for a board and uploads it with its configuration
// through EspruinoTools (the `espruino` npm package, used as a library): first it
// checks that the board's free Storage holds both, then the config goes to Storage
// "cta.cfg" and the stored image (the bundle pretokenised, build/image.ts) to Storage
// ".bootcde" (run at every boot, from flash), each checked back by length and
// E.CRC32, then load() restarts the board into the new code and the console is
// checked for an agent that did not start (the board's text codes expanded with the
// build's dictionary). `cta flash` (./cli.ts) and the HIL runner's espruino:, TCP and
// serial targets call flash().
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { UsageError } from '../args.ts';
import { loadBoard, type BoardConfig } from '../build/boards.ts';
import { ramWarning } from '../build/capacity.ts';
import { buildFirmware } from '../build/build.ts';
import { STORAGE_FILE_HEADER } from '../build/image.ts';
import { dictionaryPathFor, expandText, loadDictionary } from '../build/text.ts';
import { CONFIG_FILE } from '../../firmware/config.ts';
import { decodeConfig, fullPrincipal } from '../provision/config.ts';
import { crc32 } from '../emulator/console.ts';

type Step = { name: string; n: number };
/** A step that failed (exit 1), as opposed to a UsageError (exit 2). */
export class StepError extends Error {}

const STEPS = ['config', 'build', 'connect', 'upload config', 'upload firmware', 'reset'];

function latin1(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new StepError(`${what}: no answer within ${Math.round(ms / 1000)} s`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

/** EspruinoTools, loaded once per process, its chatter captured instead of printed
 * (onLine sees each captured line as it comes). */
type Tools = { Espruino: any; log: string[]; onLine?: (line: string) => void };
let tools: Tools | null = null;
async function loadTools(verbose: boolean): Promise<Tools> {
  const log: string[] = [];
  const keep = { log: console.log, warn: console.warn, error: console.error, info: console.info };
  const capture = (...a: unknown[]) => {
    const line = a.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(' ');
    log.push(line);
    if (log.length > 400) log.splice(0, 100);
    if (verbose) process.stderr.write(`  espruino: ${line}\n`);
    tools?.onLine?.(line);
  };
  console.log = console.info = console.warn = console.error = capture;
  if (!tools) {
    const require = createRequire(import.meta.url);
    const esp = require('espruino');
    await new Promise<void>((res) => esp.init(() => res()));
    tools = { Espruino: (globalThis as any).Espruino, log };
  }
  tools.log = log;
  tools.onLine = undefined;
  const restore = () => Object.assign(console, keep);
  (tools as any).restore = restore;
  return tools;
}

/** The first console line after load() that says the agent's start failed, or null:
 * an uncaught error, or a socket error (the emulator's "dgram error: bind EADDRINUSE ..."). */
export function startFailure(text: string): string | null {
  const m = /^(?:>)?\s*((?:Uncaught |dgram error: |CTA: cannot start)[^\r\n]*)/m.exec(text);
  return m ? m[1].trim() : null;
}

/** A socket error of EspruinoTools' TCP transport (a Node error as JSON) in words. */
function socketError(port: string, e: { code?: string; syscall?: string; hostname?: string }): string {
  if (e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') return `cannot resolve the host of ${port} (${e.code} from the name lookup)`;
  if (e.code === 'ECONNREFUSED') return `${port} refused the connection: nothing listens there`;
  return `cannot connect to ${port} (${e.code ?? 'error'}${e.syscall ? ` in ${e.syscall}` : ''})`;
}

export type FlashOptions = {
  board: string;
  port: string;
  config: string;
  baud?: number;
  force?: boolean;
  timeoutSec?: number;
  verbose?: boolean;
  /** Progress lines (default: stdout). */
  out?: (line: string) => void;
};

/** The console connection: whether it is open, and what the board printed (scanned after the restart). */
type Console = { connected: boolean; text: string };

/** Step 3's connection: EspruinoTools set up for a serial or TCP port, the port opened. */
async function openConsole(T: Tools, o: FlashOptions, timeout: number, con: Console): Promise<void> {
  const E = T.Espruino;
  const isTcp = o.port.startsWith('tcp://');
  E.Config.BAUD_RATE = o.baud ?? 9600;
  // No Bluetooth scanning (as the espruino CLI's --no-ble): ports are serial or TCP.
  E.Config.BLUETOOTH_LOW_ENERGY = false;
  E.Config.BLUETOOTH_LOW_ENERGY_DBUS = false;
  E.Config.WEB_BLUETOOTH = false;
  if (isTcp) E.Config.SERIAL_TCPIP = [o.port]; // as the espruino CLI does for -p tcp://...
  E.Config.BOARD_JSON_URL = '/nonexistent/espruino-board-json'; // no network look-ups
  E.Config.ENV_ON_CONNECT = true;
  E.Config.SET_TIME_ON_WRITE = true;
  E.Config.STORAGE_UPLOAD_METHOD = isTcp ? 1 : 0; // TCP is reliable: no pause per Storage.write
  E.Config.SERIAL_THROTTLE_SEND = isTcp ? 2 : 0;
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      // EspruinoTools' TCP transport reports a failed connection only as a logged
      // "RECEIVE ERROR: {...}" (serial_node_socket.js): fail on it at once.
      T.onLine = (line) => {
        const m = /^RECEIVE ERROR: (\{.*\})$/.exec(line);
        if (m && !con.connected) reject(new StepError(socketError(o.port, JSON.parse(m[1]))));
      };
      E.Core.Serial.startListening((data: ArrayBuffer) => {
        con.text += latin1(new Uint8Array(data));
        if (con.text.length > 65536) con.text = con.text.slice(-32768);
      });
      E.Core.Serial.open(
        o.port,
        (status: unknown) => {
          if (status === undefined) reject(new StepError(`cannot open ${o.port}`));
          else {
            con.connected = true;
            resolve();
          }
        },
        () => {
          con.connected = false;
        },
      );
    }),
    timeout,
    `connect to ${o.port}`,
  );
}

/** Runs the six steps; throws StepError/UsageError naming the step that failed. */
export async function flash(o: FlashOptions): Promise<void> {
  const out = o.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const timeout = (o.timeoutSec ?? 20) * 1000;
  let step: Step = { name: STEPS[0], n: 1 };
  const begin = (n: number) => (step = { name: STEPS[n - 1], n });
  const done = (msg: string) => out(`[${step.n}/${STEPS.length}] ${step.name}: ${msg}`);
  let T: Tools | null = null;
  const con: Console = { connected: false, text: '' };
  try {
    // 1. config
    const board: BoardConfig = loadBoard(o.board);
    let cfgBytes: Uint8Array;
    try {
      cfgBytes = new Uint8Array(readFileSync(o.config));
    } catch (e) {
      throw new UsageError(`cannot read --config ${o.config}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
    let principal: string;
    try {
      const c = decodeConfig(cfgBytes, { slots: board.slots, timers: board.timers });
      principal = fullPrincipal(c);
      if (c.transport === 'udp' && !board.transports.udp) throw new Error(`transport "udp" but board ${board.board} has no UDP (provision with --transport serial)`);
      if (c.transport === 'serial' && !board.transports.serial) throw new Error(`transport "serial" but board ${board.board} has no serial transport`);
    } catch (e) {
      throw new UsageError(`--config ${o.config}: ${(e as Error).message}`);
    }
    done(`${o.config} (${cfgBytes.length} bytes) for ${principal}`);

    begin(2);
    // 2. build
    const r = await buildFirmware({ board: board.board });
    if (r.violations.length) throw new StepError(`the bundle breaks the Espruino subset (${r.violations.length} violation(s)); run cta build --board ${board.board}`);
    const code = readFileSync(r.imagePath, 'latin1');
    const dict = loadDictionary(dictionaryPathFor(r.path));
    done(`${r.imagePath} (stored image ${r.imageBytes} bytes; bundle ${r.bytes} bytes, inside the Espruino subset)`);
    const ramNote = ramWarning(board);
    if (ramNote) out(ramNote);

    // 3. connect
    begin(3);
    T = await loadTools(!!o.verbose);
    const E = T.Espruino;
    await openConsole(T, o, timeout, con);
    T.onLine = undefined;
    const env = E.Core.Env.getData();
    if (!env.BOARD || !env.VERSION) throw new StepError(`${o.port} did not answer the process.env query: is an Espruino console there?`);
    if (env.BOARD !== board.espruinoBuild && !o.force) {
      throw new StepError(`${o.port} is an Espruino ${env.BOARD} board, but --board ${board.board} is built for ${board.espruinoBuild} (use --force to flash anyway)`);
    }
    const expr = (js: string) =>
      withTimeout(
        new Promise<unknown>((resolve) => E.Core.Utils.executeExpression(js, (res: string | undefined) => resolve(res === undefined ? undefined : JSON.parse(res)), { maxTimeout: timeout / 1000 })),
        timeout,
        `evaluating on the board`,
      );
    // EspruinoTools (core/serial.js writeSerialWorker) calls a write back only when the data is
    // longer than its 512-byte block: a shorter upload (a compact cta.cfg is) is preceded by a
    // line of empty statements (a comment would be dropped) so that its end is noticed.
    const write = (js: string) =>
      withTimeout(
        new Promise<void>((resolve) => E.Core.CodeWriter.writeToEspruino(js.length > 600 ? js : ';'.repeat(600 - js.length) + '\n' + js, () => resolve())),
        timeout * 3,
        'upload',
      );
    const check = async (name: string, data: string) => {
      const got = (await expr(`(function(){var s=require("Storage").read(${JSON.stringify(name)});return s===undefined?null:[s.length,E.CRC32(s)>>>0];})()`)) as [number, number] | null | undefined;
      if (got === undefined) throw new StepError(`no answer when reading ${name} back`);
      if (got === null) throw new StepError(`${name} is not in Storage after the upload`);
      const want = [data.length, crc32(data)];
      if (got[0] !== want[0] || got[1] !== want[1]) throw new StepError(`${name} read back as ${got[0]} bytes crc ${got[1].toString(16)}, expected ${want[0]} bytes crc ${want[1].toString(16)}`);
      return want;
    };

    // Room for both files, before anything is erased or written: free space, the
    // erased files' space that compaction reclaims, and the two files this replaces.
    const room = (await expr(
      `(function(){var S=require("Storage"),t=S.getStats?S.getStats():{trashBytes:0},o=0;[".bootcde",${JSON.stringify(CONFIG_FILE)}].forEach(function(n){var s=S.read(n);if(s!==undefined)o+=s.length+${STORAGE_FILE_HEADER};});return [S.getFree(),t.trashBytes|0,o];})()`,
    )) as [number, number, number] | undefined;
    if (!Array.isArray(room) || room.some((x) => typeof x !== 'number')) throw new StepError(`${o.port} did not say how much Storage is free`);
    const need = code.length + STORAGE_FILE_HEADER + cfgBytes.length + STORAGE_FILE_HEADER;
    const avail = room[0] + room[1] + room[2];
    if (need > avail) {
      throw new StepError(
        `not enough Storage: the image (${code.length} B) and the configuration (${cfgBytes.length} B) need ${need} bytes with their headers; ` +
          `the board has ${avail} (${room[0]} free, ${room[1]} in erased files, ${room[2]} in the files this replaces). Nothing was written.`,
      );
    }
    done(`${o.port}: Espruino ${env.BOARD} ${env.VERSION}; Storage: ${need} bytes needed, ${avail} available`);

    // 4. config -> Storage "cta.cfg" (after reset(): nothing of the old firmware runs)
    begin(4);
    const cfgStr = latin1(cfgBytes);
    E.Config.RESET_BEFORE_SEND = true;
    E.Config.SAVE_ON_SEND = 0;
    await write(E.Core.Utils.getUploadFileCode(CONFIG_FILE, cfgStr));
    const c1 = await check(CONFIG_FILE, cfgStr);
    done(`Storage "${CONFIG_FILE}" ${c1[0]} bytes, crc32 ${c1[1].toString(16)} verified`);

    // 5. stored image -> Storage ".bootcde", byte for byte (it is already pretokenised:
    // no EspruinoTools transform runs on it)
    begin(5);
    E.Config.RESET_BEFORE_SEND = false;
    await write(E.Core.Utils.getUploadFileCode('.bootcde', code));
    const c2 = await check('.bootcde', code);
    done(`Storage ".bootcde" ${c2[0]} bytes, crc32 ${c2[1].toString(16)} verified`);

    // 6. reset into the new code
    begin(6);
    // (EspruinoTools calls a write's callback only for writes long enough to show progress.)
    con.text = '';
    E.Core.Serial.write('\x10load()\n', false);
    await new Promise((r) => setTimeout(r, 1500));
    // The agent object exists even when a socket failed to bind: the console says so
    // (in the board's text codes, expanded here with the build's dictionary).
    const failed = startFailure(expandText(con.text, dict));
    if (failed) throw new StepError(`the board restarted but the CTA agent did not start cleanly: the console printed '${failed}'`);
    const st = (await expr('global.cta?["running",cta.status().principal,cta.status().transport]:["idle",String(global.ctaError)]').catch(() => undefined)) as string[] | undefined;
    if (st === undefined) done(`load() sent; the console did not answer afterwards (the serial transport may have taken it), so the agent could not be checked`);
    else if (st[0] !== 'running') throw new StepError(`the board restarted but the CTA is idle: ${expandText(String(st[1]), dict)}`);
    else done(`load(): the CTA agent runs as ${st[1]} (transport ${st[2]})`);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    const why = (e as Error).message;
    const f = new StepError(`step ${step.n}/${STEPS.length} (${step.name}) failed: ${why}`);
    (f as any).toolLog = T ? T.log.slice(-15) : [];
    throw f;
  } finally {
    if (T) {
      if (con.connected) {
        const E = T.Espruino;
        await new Promise<void>((res) => {
          E.Core.Serial.close();
          setTimeout(res, 100);
        });
      }
      (T as any).restore();
    }
  }
}
