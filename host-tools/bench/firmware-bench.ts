// Firmware: minified bundle size per board (with what dominates it, from esbuild's
// metafile), and -- given an Espruino Linux binary -- JS variables at idle and at the
// peak of an exchange, and ms per exchange, with the real bundle on the interpreter
// against our KDC and SC on loopback.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { buildFirmware } from '../build/build.ts';
import { listBoards } from '../build/boards.ts';
import type { EstablishedEvent } from '../sc/server.ts';
import { figure, type Figure } from './stats.ts';
import { benchWorld, measureFromFlash } from './espruino-flash.ts';

export const BUNDLE_TARGET = 24 * 1024;

export type BoardSize = { board: string; bytes: number; gzip: number; violations: number; overTarget: number };
export type ModuleSize = { module: string; bytes: number; pct: number };
export type EspruinoFigures = {
  binary: string;
  /** Where the code lives: 'ram' (the bundle file given to the interpreter) or 'flash' (the stored image in Storage .bootcde, booted). */
  mode: 'ram' | 'flash';
  variablesTotal: number;
  blockBytes: number | null;
  /** Flash mode: the board whose layout the interpreter has (13-byte blocks, its variable count): the figures are in its units; null: lower than a board's. */
  boardLayout?: string | null;
  idleBoot: number;
  idleEstablished: number;
  peakFirstExchange: number;
  peakExchange: number;
  firstExchangeMs: number;
  msPerExchange: Figure;
};
export type FirmwareBenchResult = {
  target: number;
  boards: BoardSize[];
  breakdownBoard: string;
  modules: ModuleSize[];
  groups: ModuleSize[];
  /** Code in RAM (the bundle file run directly). */
  espruino: EspruinoFigures | null;
  /** Code in flash: the stored image in Storage .bootcde, booted from flash (how a board runs it; espruino-flash.ts). */
  espruinoFlash: EspruinoFigures | null;
  espruinoSkipped: string | null;
};

/** What each module contributes to the board's real bundle (the build's own esbuild metafile). */
async function breakdown(board: string, dir: string): Promise<{ modules: ModuleSize[]; groups: ModuleSize[] }> {
  const r = await buildFirmware({ board, outDir: dir, outName: `${board}-breakdown.js` });
  const total = r.bytes;
  const modules: ModuleSize[] = r.modules.map((m) => ({ module: m.path, bytes: m.bytes, pct: (100 * m.bytes) / total }));
  const g = new Map<string, number>();
  for (const m of modules) {
    const parts = m.module.split('/');
    const key = parts.length > 2 ? parts.slice(0, parts.length - 1).join('/') + '/' : m.module;
    g.set(key, (g.get(key) ?? 0) + m.bytes);
  }
  const groups = [...g.entries()].map(([module, bytes]) => ({ module, bytes, pct: (100 * bytes) / total })).sort((a, b) => b.bytes - a.bytes);
  return { modules, groups };
}

/** Appended to the bundle: memory sampling around the agent's receive path and crypto calls. */
const PROBE = `
;(function(){
  var a = global.cta;
  if (!a) { print("CTA-BENCH none " + global.ctaError); return; }
  var m0 = process.memory();
  print("CTA-BENCH boot " + m0.usage + " " + m0.total + " " + (m0.blocksize || 0));
  var peak = 0;
  function s() { var u = process.memory(false).usage; if (u > peak) peak = u; }
  var c = a.platform.crypto, names = ["sha1", "sha256", "aesCbcEncrypt", "aesCbcDecrypt", "randomBytes"], orig = {};
  names.forEach(function (k) {
    var f = c[k]; if (!f) return; orig[k] = f;
    c[k] = function (x, y, z) { s(); var r = f(x, y, z); s(); return r; };
  });
  var recv = a.receive, est = 0, probing = true;
  a.receive = function (ch, d, ad, p) {
    if (probing) s();
    recv.call(a, ch, d, ad, p);
    if (probing) s();
    var e = a.counters.sessionsEstablished;
    if (e !== est) {
      est = e;
      var pk = peak; peak = 0;
      var m = process.memory();
      print("CTA-BENCH est " + e + " " + pk + " " + m.usage);
      if (probing && e >= 3) {
        probing = false;
        names.forEach(function (k) { if (orig[k]) c[k] = orig[k]; });
        print("CTA-BENCH probes-off");
      }
    }
  };
})();
`;

async function runOnEspruino(bin: string, quick: boolean, log: (s: string) => void, mode: 'ram' | 'flash'): Promise<EspruinoFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'cta-bench-esp-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    const { cta, sc, cfg, listenPort } = await benchWorld(dir, cleanups);
    const b = await buildFirmware({ board: 'linux', outDir: dir });
    if (b.violations.length) throw new Error(`the linux bundle breaks the Espruino subset (${b.violations.length} violations)`);
    const prog = join(dir, 'bench-agent.js');
    const writeCfg = `require("Storage").write("cta.cfg", atob("${Buffer.from(cfg).toString('base64')}"));\n`;
    writeFileSync(prog, writeCfg + readFileSync(b.path, 'utf8') + PROBE);

    const child = spawn(bin, [prog], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          if (child.exitCode !== null) return r();
          child.once('exit', () => r());
          child.kill('SIGKILL');
        }),
    );
    let out = '';
    const lines: string[] = [];
    const waiters: { re: RegExp; resolve: (m: RegExpExecArray) => void }[] = [];
    const onData = (d: Buffer) => {
      out += d.toString('latin1');
      let i;
      while ((i = out.indexOf('\n')) >= 0) {
        const line = out.slice(0, i).trim();
        out = out.slice(i + 1);
        lines.push(line);
        for (let k = 0; k < waiters.length; k++) {
          const m = waiters[k].re.exec(line);
          if (m) {
            waiters.splice(k, 1)[0].resolve(m);
            break;
          }
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const wait = (re: RegExp, ms: number) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        for (const l of lines) {
          const m = re.exec(l);
          if (m) return resolve(m);
        }
        const t = setTimeout(() => reject(new Error(`Espruino: no ${re} within ${ms} ms; output:\n${lines.slice(-15).join('\n')}`)), ms);
        waiters.push({ re, resolve: (m) => (clearTimeout(t), resolve(m)) });
      });
    const boot = await wait(/^CTA-BENCH (boot|none) (\S+) ?(\d*) ?(\d*)/, 30000);
    if (boot[1] === 'none') throw new Error(`the agent did not start on Espruino: ${lines.slice(-5).join(' | ')}`);
    sc.register(cta, '127.0.0.1', listenPort);
    const est = (n: number) => wait(new RegExp(`^CTA-BENCH est ${n} (\\d+) (\\d+)`), 60000);
    const exchange = async (n: number): Promise<{ ms: number; peak: number; after: number }> => {
      const done = new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`Espruino: exchange ${n} did not complete in 60 s; output:\n${lines.slice(-15).join('\n')}`)), 60000);
        const on = (e: EstablishedEvent) => {
          if (e.principal !== cta) return;
          clearTimeout(t);
          sc.off('established', on);
          resolve(performance.now());
        };
        sc.on('established', on);
      });
      const t0 = performance.now();
      sc.wake(cta);
      const t1 = await done;
      const m = await est(n);
      return { ms: t1 - t0, peak: Number(m[1]), after: Number(m[2]) };
    };
    const timed = quick ? 2 : 10;
    log(`firmware: Espruino ${bin}, code in ${mode === 'ram' ? 'RAM' : 'flash (Storage)'}: ${3 + timed} exchanges (the first with the AS exchange)`);
    const first = await exchange(1);
    const probed = [await exchange(2), await exchange(3)];
    await wait(/^CTA-BENCH probes-off/, 5000);
    const times: number[] = [];
    for (let k = 0; k < timed; k++) times.push((await exchange(4 + k)).ms);
    return {
      binary: bin,
      mode,
      variablesTotal: Number(boot[3]),
      blockBytes: Number(boot[4]) || null,
      idleBoot: Number(boot[2]),
      idleEstablished: probed[probed.length - 1].after,
      peakFirstExchange: first.peak,
      peakExchange: Math.max(...probed.map((p) => p.peak)),
      firstExchangeMs: first.ms,
      msPerExchange: figure(times),
    };
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        /* best effort */
      }
    }
  }
}

export async function runFirmwareBench(o: { espruino: string | null; espruinoBoard?: string; quick: boolean; log: (s: string) => void }): Promise<FirmwareBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cta-bench-fw-'));
  try {
    const boards: BoardSize[] = [];
    for (const board of listBoards()) {
      const r = await buildFirmware({ board, outDir: dir });
      const code = readFileSync(r.path);
      boards.push({ board, bytes: r.bytes, gzip: gzipSync(code, { level: 9 }).length, violations: r.violations.length, overTarget: r.bytes / BUNDLE_TARGET });
    }
    const breakdownBoard = boards.some((b) => b.board === 'puckjs') ? 'puckjs' : boards[0].board;
    const { modules, groups } = await breakdown(breakdownBoard, dir);
    let espruino: EspruinoFigures | null = null;
    let espruinoFlash: EspruinoFigures | null = null;
    let espruinoSkipped: string | null = null;
    if (!o.espruino) espruinoSkipped = 'no --espruino PATH given (an Espruino Linux binary)';
    else if (!existsSync(o.espruino)) espruinoSkipped = `--espruino ${o.espruino} does not exist`;
    else {
      // A board-sized store (a Pico- or Puck-sized 32-bit build) cannot hold the whole bundle
      // as code in RAM: no board runs it that way, so that run is reported, not fatal.
      try {
        espruino = await runOnEspruino(o.espruino, o.quick, o.log, 'ram');
      } catch (e) {
        const msg = String((e as Error).message);
        espruinoSkipped = /OUT OF MEMORY|LOW_MEMORY|Not enough memory/.test(msg)
          ? 'code in RAM: the interpreter ran out of memory holding the whole bundle in RAM (a board-sized store; boards run the stored image from flash, measured below)'
          : `code in RAM: ${msg.split('\n')[0]}`;
        o.log(`Espruino, code in RAM: not measured (${espruinoSkipped})`);
      }
      const f = await measureFromFlash({ bin: o.espruino, image: o.espruinoBoard, exchanges: o.quick ? 4 : 8, log: o.log });
      espruinoFlash = {
        binary: f.binary,
        mode: 'flash',
        variablesTotal: f.variablesTotal,
        blockBytes: f.blockSize,
        boardLayout: f.boardLayout,
        idleBoot: f.boot,
        idleEstablished: f.idleWithSa,
        peakFirstExchange: f.peakFirst,
        peakExchange: f.peak,
        firstExchangeMs: f.exchangeMs[0],
        msPerExchange: figure(f.exchangeMs.slice(1)),
      };
    }
    return { target: BUNDLE_TARGET, boards, breakdownBoard, modules, groups, espruino, espruinoFlash, espruinoSkipped };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
