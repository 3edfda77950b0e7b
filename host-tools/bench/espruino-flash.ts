// The firmware's RAM on a real Espruino interpreter, measured the way a board runs it:
// the stored image (what `cta flash` writes, build/image.ts) in Storage ".bootcde", the
// configuration in "cta.cfg", and the interpreter started with no program, so it boots
// from its flash. A measuring probe sits in Storage ".boot0" (run before ".bootcde"); it
// does nothing until a timer after boot, prints the figures on the interpreter's stdout,
// and its own variables are counted and taken off every figure.
//
// Figures are process.memory().usage: variables of the interpreter that ran. On a 32-bit
// build with the board's layout (13-byte blocks, 4 name characters per block, a fixed
// store) they are the board's own units; on the x86-64 Linux build (27-byte blocks, longer
// names per block) they are lower than a board's (the README gives the measured ratio).
//
// Nothing is written to the interpreter's stdin (an open pipe: at EOF the 32-bit builds
// spin), and no console is used: the Linux build's stdin thread races its event loop.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { buildFirmware } from '../build/build.ts';
import { loadBoard, type BoardConfig } from '../build/boards.ts';
import { KdcDatabase } from '../kdc/db.ts';
import { startKdc } from '../kdc/server.ts';
import { startSc, type EstablishedEvent } from '../sc/server.ts';
import { makeConfig } from '../provision/config.ts';
import { REALM, SC_PRINCIPAL } from './fixtures.ts';
import { attachSerialCta } from '../serial/attach.ts';
import { socatPair } from '../serial/pty.ts';
import { C_SESSIONS_ESTABLISHED } from '../../firmware/agent/counters.ts';

export type FlashFigures = {
  binary: string;
  /** The board whose image ran (a UDP board: the exchanges need the network). */
  image: string;
  imageBytes: number;
  /** process.memory() of the interpreter: its store and its block size (bytes). */
  variablesTotal: number;
  blockSize: number;
  /** The board whose layout the interpreter has (13-byte blocks and its variable count), or null. */
  boardLayout: string | null;
  /** Variables in use after boot (agent running, no SA yet). */
  boot: number;
  /** In use when idle with an SA established (after three exchanges). */
  idleWithSa: number;
  /** Largest use sampled inside an exchange: the first (with the AS exchange) and the next two. */
  peakFirst: number;
  peak: number;
  /** The probe's own variables (taken off the figures above). */
  probe: number;
  /** Wall ms of each exchange (Wake Up to SA at the SC), the first with the AS exchange. */
  exchangeMs: number[];
};

/** The board-configs entry whose layout an interpreter has (13-byte blocks and exactly its variable count), or null. */
export function layoutBoard(total: number, blockSize: number, boards: BoardConfig[]): BoardConfig | null {
  return boards.find((b) => b.blockSize === blockSize && b.variables === total) ?? null;
}

// In .boot0 (ES5, the interpreter's subset). U0/U1 bracket the probe's own definitions.
// A board without counter names (features.counterNames false) reports a list in C_ order.
// The peak is sampled around the crypto calls, each received datagram and (serial boards)
// each write to the serial port, where a frame and its copies are alive.
const PROBE = `var P={u0:process.memory().usage};
P.go=function(){
  var a=global.cta;
  if(!a){print("CTA-FLASH none "+global.ctaError);return;}
  var m=process.memory();
  print("CTA-FLASH boot "+m.usage+" "+m.total+" "+(m.blocksize||0)+" "+P.cost);
  var peak=0,est=0,c=a.platform.crypto,o={},names=["sha1","sha256","aesCbcEncrypt","aesCbcDecrypt","randomBytes"];
  function s(){var u=process.memory(false).usage;if(u>peak)peak=u;}
  names.forEach(function(k){var f=c[k];if(!f)return;o[k]=f;c[k]=function(x,y,z){s();var r=f(x,y,z);s();return r;};});
  var sw=global.Serial1&&Serial1.write;
  if(sw)Serial1.write=function(d){s();return sw.call(Serial1,d);};
  var recv=a.receive;
  a.receive=function(ch,d,ad,p){s();recv.call(a,ch,d,ad,p);s();
    var cs=a.counters,e=cs.length===undefined?cs.sessionsEstablished:cs[${C_SESSIONS_ESTABLISHED}];
    if(e!==est){est=e;var pk=peak;peak=0;print("CTA-FLASH est "+e+" "+pk+" "+process.memory().usage);}};
  print("CTA-FLASH wrapped "+process.memory().usage);
};
P.cost=process.memory().usage-P.u0;
setTimeout(function(){P.go();},200);
`;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
}

/** Runs the interpreter on a file until it prints `re` (stdin an open pipe). */
async function runUntil(bin: string, args: string[], cwd: string, re: RegExp, ms: number): Promise<string> {
  const child = spawn(bin, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  try {
    return await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`Espruino: no ${re} within ${ms} ms; output: ${out.slice(-400)}`)), ms);
      const on = (d: Buffer) => {
        out += d.toString('latin1');
        if (re.test(out)) {
          clearTimeout(t);
          resolve(out);
        }
      };
      child.stdout.on('data', on);
      child.stderr.on('data', on);
      child.once('exit', () => {
        clearTimeout(t);
        if (re.test(out)) resolve(out);
        else reject(new Error(`Espruino exited before ${re}; output: ${out.slice(-400)}`));
      });
    });
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/**
 * Writes Storage files into the interpreter's flash (./espruino.flash in dir), a few KB per
 * run: a program holding the whole image would need more variables than a Puck.js has.
 */
async function putFiles(bin: string, dir: string, files: { [name: string]: Buffer }): Promise<void> {
  const CHUNK = 3072;
  for (const [name, data] of Object.entries(files)) {
    for (let off = 0; off < data.length; off += CHUNK) {
      const part = data.subarray(off, off + CHUNK).toString('base64');
      const call = off === 0 ? `S.write(${JSON.stringify(name)},atob(${JSON.stringify(part)}),0,${data.length})` : `S.write(${JSON.stringify(name)},atob(${JSON.stringify(part)}),${off})`;
      writeFileSync(join(dir, 'put.js'), `var S=require("Storage");print(${call}?"PUT-OK":"PUT-FAIL");\n`);
      const out = await runUntil(bin, ['put.js'], dir, /PUT-(OK|FAIL)/, 60000);
      if (!/PUT-OK/.test(out)) throw new Error(`Storage.write("${name}") at ${off} of ${data.length} failed on the interpreter (Storage full?)`);
    }
  }
}

/**
 * A throwaway KDC (AES-128 keys), SC and the CTA's configuration on loopback, for the
 * interpreter benches (here and firmware-bench.ts); what to close goes to `cleanups`.
 */
export async function benchWorld(dir: string, cleanups: (() => Promise<void> | void)[], transport: 'udp' | 'serial' = 'udp') {
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
    ...(transport === 'serial' ? { transport } : {}),
  });
  return { cta, kdc, sc, cfg, listenPort };
}

/** Boots the image from the interpreter's flash, runs `exchanges` (>= 3) key exchanges, returns the figures. */
export async function measureFromFlash(o: { bin: string; image?: string; exchanges?: number; log?: (s: string) => void }): Promise<FlashFigures> {
  const image = o.image ?? 'linux';
  const n = Math.max(3, o.exchanges ?? 3);
  const log = o.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), 'cta-esp-flash-'));
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    const board = loadBoard(image);
    // A board image with a serial device file (Linux builds, board config serial.path) talks
    // to the SC over a real PTY pair (socat), as a serial board does; otherwise over UDP.
    const serialPath = board.transports.serial && board.serial.path ? board.serial.path : null;
    const world = await benchWorld(dir, cleanups, serialPath ? 'serial' : 'udp');
    const { cta, sc, cfg, listenPort } = world;
    const b = await buildFirmware({ board: image, outDir: dir });
    if (b.violations.length) throw new Error(`the ${image} bundle breaks the Espruino subset (${b.violations.length} violations)`);
    await putFiles(o.bin, dir, { 'cta.cfg': Buffer.from(cfg), '.bootcde': readFileSync(b.imagePath), '.boot0': Buffer.from(PROBE, 'latin1') });

    if (serialPath) {
      // The interpreter opens one end (serial.path, relative to its working directory).
      const pty = await socatPair('socat', [join(dir, serialPath), join(dir, 'host-serial')]).catch((e: Error) => {
        throw new Error(`socat (needed for a serial board's bench): ${e.message}`);
      });
      cleanups.push(() => pty.close());
    }
    const child = spawn(o.bin, [], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
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
        const line = out.slice(0, i).replace(/^[>\x1b[J\r]+/, '').trim();
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
    const boot = await wait(/CTA-FLASH (boot|none) (\S+) ?(\d*) ?(\d*) ?(\d*)/, 60000);
    if (boot[1] === 'none') throw new Error(`the agent did not start from flash: ${lines.slice(-5).join(' | ')}`);
    const total = Number(boot[3]);
    const blockSize = Number(boot[4]);
    const probeDefs = Number(boot[5]);
    const wrapped = Number((await wait(/CTA-FLASH wrapped (\d+)/, 10000))[1]);
    if (serialPath) {
      const attached = await attachSerialCta(sc, `${join(dir, 'host-serial')}:${board.serial.baud ?? 115200}`, {
        kdc: { host: '127.0.0.1', port: world.kdc.udpPort },
        principal: cta,
        wake: false,
        setTime: true,
        log: (ev, f) => log(`serial: ${ev} ${JSON.stringify(f)}`),
      });
      cleanups.push(() => attached.close());
    }
    // The probe's variables: its definitions (counted in .boot0) and its wrappers (installed after the boot figure).
    const wrapCost = wrapped - Number(boot[2]);
    const probe = probeDefs + wrapCost;
    if (!serialPath) sc.register(cta, '127.0.0.1', listenPort);
    const exchange = async (k: number) => {
      const done = new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`Espruino: exchange ${k} did not complete in 60 s; output:\n${lines.slice(-15).join('\n')}`)), 60000);
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
      const m = await wait(new RegExp(`CTA-FLASH est ${k} (\\d+) (\\d+)`), 30000);
      return { ms: t1 - t0, peak: Number(m[1]) - probe, after: Number(m[2]) - probe };
    };
    log(`firmware: ${o.bin}, ${image} image (${b.imageBytes} B) in Storage .bootcde, booted from flash: ${n} exchanges`);
    const xs = [];
    try {
      for (let k = 1; k <= n; k++) xs.push(await exchange(k));
    } catch (e) {
      const oom = lines.some((l) => /MEMORY|Not enough memory/.test(l)) ? ' (the interpreter ran out of memory)' : '';
      throw new Error(`${image} image from flash on ${o.bin}: ${Number(boot[2]) - probeDefs} of ${total} variables in use after boot (${blockSize}-byte blocks); exchange ${xs.length + 1} failed${oom}: ${(e as Error).message}`);
    }
    const layout = layoutBoard(total, blockSize, ['pico', 'puckjs', 'espruino-wifi', 'esp32'].map(loadBoard));
    return {
      binary: o.bin,
      image,
      imageBytes: b.imageBytes,
      variablesTotal: total,
      blockSize,
      boardLayout: layout ? layout.board : null,
      boot: Number(boot[2]) - probeDefs,
      idleWithSa: xs[xs.length - 1].after,
      peakFirst: xs[0].peak,
      peak: Math.max(...xs.slice(1).map((x) => x.peak)),
      probe,
      exchangeMs: xs.map((x) => x.ms),
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
