// Firmware: minified bundle size per board (with what dominates it, from esbuild's
// metafile), and -- given an Espruino Linux binary -- JS variables at idle and at the
// peak of an exchange, and ms per exchange, with the real bundle on the interpreter
// against our KDC and SC on loopback.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { performance } from 'node:perf_hooks';
import { buildFirmware } from '../build/build.ts';
import { listBoards } from '../build/boards.ts';
import { KdcDatabase } from '../kdc/db.ts';
import { startKdc } from '../kdc/server.ts';
import { startSc, type EstablishedEvent } from '../sc/server.ts';
import { makeConfig } from '../provision/config.ts';
import { figure, type Figure } from './stats.ts';
import { REALM, SC_PRINCIPAL } from './fixtures.ts';

export const BUNDLE_TARGET = 24 * 1024;

export type BoardSize = { board: string; bytes: number; gzip: number; violations: number; overTarget: number };
export type ModuleSize = { module: string; bytes: number; pct: number };
export type EspruinoFigures = {
  binary: string;
  /** Where the bundle's code lives: 'ram' (the file given to the interpreter) or 'flash' (eval of a Storage file). */
  mode: 'ram' | 'flash';
  variablesTotal: number;
  blockBytes: number | null;
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
  /** Code in flash: the bundle written to Storage first, then eval'd from there (how a board runs it). */
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

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
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

/** Runs the interpreter on one file in a working directory until it prints `re` (or exits). */
async function runUntil(bin: string, file: string, cwd: string, re: RegExp, ms: number): Promise<void> {
  const child = spawn(bin, [file], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`Espruino: no ${re} within ${ms} ms; output: ${out.slice(-400)}`)), ms);
      const on = (d: Buffer) => {
        out += d.toString('latin1');
        if (re.test(out)) {
          clearTimeout(t);
          resolve();
        }
      };
      child.stdout.on('data', on);
      child.stderr.on('data', on);
      child.once('exit', () => {
        clearTimeout(t);
        if (re.test(out)) resolve();
        else reject(new Error(`Espruino exited before ${re}; output: ${out.slice(-400)}`));
      });
    });
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

async function runOnEspruino(bin: string, quick: boolean, log: (s: string) => void, mode: 'ram' | 'flash'): Promise<EspruinoFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'cta-bench-esp-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    const db = KdcDatabase.init(join(dir, 'kdc.db'), REALM, { enctypes: [17] });
    db.addPrincipal(SC_PRINCIPAL, { randkey: true, enctypes: [17] });
    const cta = `cta/e1.bench.test@${REALM}`;
    db.addPrincipal(cta, { randkey: true, enctypes: [17] });
    db.exportKeytab(SC_PRINCIPAL, join(dir, 'sc.keytab'));
    db.exportKeytab(cta, join(dir, 'cta.keytab'));
    const kdc = await startKdc({ db, host: '127.0.0.1', port: 0 });
    cleanups.push(async () => {
      await kdc.close();
      db.close();
    });
    const sc = await startSc({ principal: SC_PRINCIPAL, keytab: join(dir, 'sc.keytab'), listen: { host: '127.0.0.1', port: 0 }, control: null, wakeOnStart: false });
    cleanups.push(() => sc.close());
    const listenPort = await freePort();
    const cfg = makeConfig({
      keytab: new Uint8Array(readFileSync(join(dir, 'cta.keytab'))),
      principal: cta,
      scs: [{ principal: SC_PRINCIPAL, address: '127.0.0.1', port: sc.address.port }],
      kdc: { address: '127.0.0.1', port: kdc.udpPort },
      listenPort,
      signalingPort: await freePort(),
    });
    const b = await buildFirmware({ board: 'linux', outDir: dir });
    if (b.violations.length) throw new Error(`the linux bundle breaks the Espruino subset (${b.violations.length} violations)`);
    const prog = join(dir, 'bench-agent.js');
    const writeCfg = `require("Storage").write("cta.cfg", atob("${Buffer.from(cfg).toString('base64')}"));\n`;
    if (mode === 'ram') writeFileSync(prog, writeCfg + readFileSync(b.path, 'utf8') + PROBE);
    else {
      // A board runs its code from flash: put the bundle in Storage in a first run,
      // then start from a file that only evaluates it from there.
      const put = join(dir, 'put.js');
      writeFileSync(put, `require("Storage").write("cta.js",atob("${readFileSync(b.path).toString('base64')}"));print("STORED");\n`);
      await runUntil(bin, put, dir, /STORED/, 20000);
      // The Linux build sizes its variable store to what the program needed while it was
      // parsed and grows it only from the main context: a short program would leave it
      // at 4,096, and the agent's receive path (run from the event loop) would then fail
      // with "Not enough memory". Grow it once up front (the garbage is freed at once;
      // the figures count used variables, not the store's size).
      const grow = '(function(){var a=[];for(var i=0;i<6000;i++)a.push(i);})();\n';
      writeFileSync(prog, grow + writeCfg + 'eval(require("Storage").read("cta.js"));\n' + PROBE);
    }

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

export async function runFirmwareBench(o: { espruino: string | null; quick: boolean; log: (s: string) => void }): Promise<FirmwareBenchResult> {
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
      espruino = await runOnEspruino(o.espruino, o.quick, o.log, 'ram');
      espruinoFlash = await runOnEspruino(o.espruino, o.quick, o.log, 'flash');
    }
    return { target: BUNDLE_TARGET, boards, breakdownBoard, modules, groups, espruino, espruinoFlash, espruinoSkipped };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
