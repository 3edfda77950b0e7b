// `cta demo` (= npm start): an embedded KDC with a throwaway realm (or an external
// KDC, e.g. MIT krb5kdc), a Signaling Controller and N emulated CTAs running the real
// firmware bundle, all on loopback. The SC wakes every CTA; each CTA gets its ticket
// from the KDC, answers with an AP Request, the SC replies, the CTA confirms with SA
// Recovered; then each CTA answers one NCS request over its new SA.
import fs from 'node:fs';
import os from 'node:os';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseKeytab, principalName, type KeytabEntry } from '../../firmware/proto/keytab.ts';
import { UsageError } from '../args.ts';
import { KdcDatabase } from '../kdc/db.ts';
import { withRealm } from '../principal.ts';
import { startKdc } from '../kdc/server.ts';
import { startSc, type ScServer } from '../sc/server.ts';
import { startEmulator, type Emulator } from '../emulator/emulator.ts';
import { buildFirmware, REPO_ROOT } from '../build/build.ts';
import { bundleStale } from '../build/stale.ts';
import { makeConfig } from '../provision/config.ts';

export type CtaPhase = 'starting' | 'waiting' | 'ticket' | 'ap_req_sent' | 'established' | 'signaling' | 'done' | 'failed';

export interface CtaRow {
  principal: string;
  phase: CtaPhase;
  /** Wake Up sent -> SA established (ms), as the SC measured it. */
  exchangeMs: number | null;
  /** NCS request sent -> response decrypted (ms). */
  signalingMs: number | null;
  response: string | null;
  error: string | null;
  ctaSpi: number | null;
  scSpi: number | null;
}

export interface DemoOptions {
  ctas: number;
  board: string;
  /** External KDC mode (all four needed together). */
  external?: { kdc: { host: string; port: number }; realm: string; scPrincipal: string; scKeytab: string; ctaKeytab: string };
  timeoutMs: number;
  onProgress?: (rows: CtaRow[], note: string) => void;
  log?: (line: string) => void;
  /** Keep everything running after the exchange until the returned stop() is called
   * (the SC then also serves its control API on a free loopback port). */
  keepRunning?: boolean;
  /** Stops waiting for the CTAs (Ctrl-C): unfinished ones are marked failed. */
  signal?: AbortSignal;
}

export interface DemoResult {
  ctas: number;
  established: number;
  signaled: number;
  failed: number;
  elapsed_ms: number;
  /** Wake Ups the SC sent: one per CTA unless an exchange needed a retry. */
  wake_ups: number;
  realm: string;
  kdc: string;
  sc: string;
  /** The SC's control API (HOST:PORT) with keepRunning, else null. */
  control: string | null;
  /** The file holding the control API's bearer token (cta sc ... --token-file), with keepRunning. */
  controlTokenFile: string | null;
  rows: CtaRow[];
  stop: () => Promise<void>;
}

export { bundleStale };

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((res, rej) => {
    s.once('error', rej);
    s.bind(0, '127.0.0.1', () => res());
  });
  const port = s.address().port;
  await new Promise<void>((res) => s.close(() => res()));
  return port;
}

function readKeytabFile(path: string, what: string): KeytabEntry[] {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${what} '${path}': ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    return parseKeytab(new Uint8Array(bytes));
  } catch (e) {
    throw new UsageError(`${what} '${path}' is not a valid keytab: ${(e as Error).message}`);
  }
}

/** Distinct cta/... principals of a keytab, in file order. */
function ctaPrincipals(entries: KeytabEntry[]): string[] {
  const out: string[] = [];
  for (const e of entries) {
    const n = principalName(e);
    if (e.principal.components[0] === 'cta' && !out.includes(n)) out.push(n);
  }
  return out;
}

/** The realm the demo runs in: its KDC, the SC's principal and keys, the CTAs'. */
interface DemoRealm {
  realm: string;
  kdcAddr: { host: string; port: number };
  scPrincipal: string;
  scKeytab: KeytabEntry[];
  ctaKeytab: KeytabEntry[];
  ctaNames: string[];
}

type Cleanups = (() => Promise<void> | void)[];

/** An external KDC's realm from the given keytabs (checked before anything starts). */
async function externalRealm(x: NonNullable<DemoOptions['external']>, ctas: number, log: (l: string) => void): Promise<DemoRealm> {
  const scPrincipal = withRealm(x.scPrincipal, x.realm);
  const scKeytab = readKeytabFile(x.scKeytab, 'SC keytab');
  if (!scKeytab.some((e) => principalName(e) === scPrincipal)) {
    throw new UsageError(`principal '${scPrincipal}' is not in the SC keytab '${x.scKeytab}'`);
  }
  const ctaKeytab = readKeytabFile(x.ctaKeytab, 'CTA keytab');
  let ctaNames = ctaPrincipals(ctaKeytab).filter((n) => n.endsWith('@' + x.realm));
  if (ctaNames.length === 0) throw new UsageError(`the CTA keytab '${x.ctaKeytab}' holds no cta/...@${x.realm} principal`);
  if (ctas < ctaNames.length) ctaNames = ctaNames.slice(0, ctas);
  await checkKdcReachable(x.kdc);
  log(`external KDC ${x.kdc.host}:${x.kdc.port}, realm ${x.realm}, ${ctaNames.length} CTA principal(s) from the keytab`);
  return { realm: x.realm, kdcAddr: x.kdc, scPrincipal, scKeytab, ctaKeytab, ctaNames };
}

/** The firmware's stored image for the board (<board>.img), built if missing or older than the sources. */
async function demoBundle(board: string, log: (l: string) => void): Promise<string> {
  const bundle = join(REPO_ROOT, 'dist', 'firmware', `${board}.img`);
  if (!bundleStale(bundle, board)) return bundle;
  log(`building the firmware bundle for board '${board}'`);
  const r = await buildFirmware({ board });
  if (r.violations.length) throw new Error(`the firmware bundle breaks the Espruino subset (${r.violations.length} violations): run cta build --board ${board}`);
  log(`built ${r.imagePath} (stored image, ${r.imageBytes} bytes)`);
  return r.imagePath;
}

/** A throwaway realm with an SC and `ctas` CTA principals, and its embedded KDC on a free port. */
async function embeddedRealm(dir: string, ctas: number, cleanups: Cleanups, log: (l: string) => void): Promise<DemoRealm> {
  const realm = 'DEMO.CTA.TEST';
  const db = KdcDatabase.init(join(dir, 'kdc.db'), realm);
  const scPrincipal = `sc/sc1.demo.test@${realm}`;
  db.addPrincipal(scPrincipal, { randkey: true });
  db.exportKeytab(scPrincipal, join(dir, 'sc.keytab'));
  const ctaNames: string[] = [];
  const ctaKeytab: KeytabEntry[] = [];
  for (let i = 1; i <= ctas; i++) {
    const name = `cta/cta${i}.demo.test@${realm}`;
    db.addPrincipal(name, { randkey: true });
    db.exportKeytab(name, join(dir, `cta${i}.keytab`));
    ctaNames.push(name);
    ctaKeytab.push(...parseKeytab(new Uint8Array(fs.readFileSync(join(dir, `cta${i}.keytab`)))));
  }
  const scKeytab = parseKeytab(new Uint8Array(fs.readFileSync(join(dir, 'sc.keytab'))));
  const kdc = await startKdc({ db, host: '127.0.0.1', port: 0 });
  cleanups.push(async () => {
    await kdc.close();
    db.close();
  });
  log(`embedded KDC for realm ${realm} on 127.0.0.1:${kdc.udpPort} (UDP+TCP), ${ctaNames.length + 2} principals`);
  return { realm, kdcAddr: { host: '127.0.0.1', port: kdc.udpPort }, scPrincipal, scKeytab, ctaKeytab, ctaNames };
}

/** One emulated CTA per principal, each with its own Storage, registered with the SC. */
async function startCtas(r: DemoRealm, sc: ScServer, board: string, bundlePath: string, dir: string, emus: Emulator[], log: (l: string) => void): Promise<CtaRow[]> {
  const rows: CtaRow[] = r.ctaNames.map((p) => ({ principal: p, phase: 'starting' as CtaPhase, exchangeMs: null, signalingMs: null, response: null, error: null, ctaSpi: null, scSpi: null }));
  for (let i = 0; i < r.ctaNames.length; i++) {
    const listenPort = await freeUdpPort();
    const signalingPort = await freeUdpPort();
    const cfg = makeConfig({
      keytab: r.ctaKeytab,
      principal: r.ctaNames[i],
      scs: [{ principal: r.scPrincipal, address: '127.0.0.1', port: sc.address.port }],
      kdc: { address: r.kdcAddr.host, port: r.kdcAddr.port },
      listenPort,
      signalingPort,
    });
    // startEmulator resolves once the CTA's sockets are bound: the SC's first Wake Up is not lost.
    const emu = await startEmulator({
      board,
      bundlePath,
      storageDir: join(dir, `cta${i + 1}-storage`),
      files: { 'cta.cfg': cfg },
      onLog: (line) => {
        if (/uncaught|exception/i.test(line)) log(`[${r.ctaNames[i]}] ${line}`);
      },
    });
    emus.push(emu);
    if (!emu.global.cta) throw new Error(`emulated CTA ${r.ctaNames[i]} did not start: ${emu.global.ctaError ?? emu.logs.join(' | ')}`);
    sc.register(r.ctaNames[i], '127.0.0.1', listenPort, signalingPort);
    rows[i].phase = 'waiting';
  }
  return rows;
}

/** Wakes every CTA, sends each an RQNT over its new SA, and follows the rows until all are done, failed or out of time. */
async function wakeAndFollow(sc: ScServer, rows: CtaRow[], emus: Emulator[], opts: DemoOptions, log: (l: string) => void): Promise<void> {
  const byName: { [p: string]: number } = {};
  rows.forEach((r, i) => (byName[r.principal] = i));
  const signaling: Promise<void>[] = [];
  let txid = 1000;
  // Phase changes the SC reports are shown as they happen, not at the next poll:
  // an exchange can start and finish between two polls.
  const report = () => opts.onProgress?.(rows, '');
  sc.on('established', (ev: { principal: string; latencyMs: number | null; ctaSpi: number; scSpi: number }) => {
    const i = byName[ev.principal];
    if (i === undefined || rows[i].phase === 'signaling' || rows[i].phase === 'done') return;
    const row = rows[i];
    row.phase = 'signaling';
    row.exchangeMs = ev.latencyMs;
    row.ctaSpi = ev.ctaSpi;
    row.scSpi = ev.scSpi;
    report();
    const id = ++txid;
    const endpoint = `aaln/1@${ev.principal.split('/')[1].split('@')[0]}`;
    const rqnt = `RQNT ${id} ${endpoint} MGCP 1.0 NCS 1.0\r\nX: ${id.toString(16)}\r\nR: hd(N)\r\n`;
    const t = performance.now();
    signaling.push(
      sc.sendSignaling(ev.principal, rqnt).then(
        (resp) => {
          row.signalingMs = Math.round(performance.now() - t);
          row.response = resp.split(/\r?\n/)[0];
          if (new RegExp(`^200 ${id}\\b`).test(row.response)) row.phase = 'done';
          else {
            row.phase = 'failed';
            row.error = `unexpected NCS response '${row.response}'`;
          }
          report();
        },
        (e: Error) => {
          row.phase = 'failed';
          row.error = `signaling: ${e.message}`;
          report();
        },
      ),
    );
  });
  sc.on('unreachable', (ev: { principal: string; attempts: number }) => {
    const i = byName[ev.principal];
    if (i === undefined || rows[i].phase === 'done') return;
    rows[i].phase = 'failed';
    rows[i].error = `unreachable after ${ev.attempts} Wake Ups`;
    report();
  });
  for (const r of rows) sc.wake(r.principal);
  log(`woke ${rows.length} CTA(s)`);

  const deadline = performance.now() + opts.timeoutMs;
  const finished = () => rows.every((r) => r.phase === 'done' || r.phase === 'failed');
  while (!finished() && performance.now() < deadline && !opts.signal?.aborted) {
    rows.forEach((r, i) => {
      if (r.phase === 'waiting' || r.phase === 'ticket' || r.phase === 'ap_req_sent') {
        const st = emus[i].global.cta.status();
        const s = st.scs[0]?.state;
        if (s === 'ticket' || s === 'ap_req_sent') r.phase = s;
        if (s === 'aborted') r.error = 'CTA aborted its AP Request (no AP Reply in time); SC retries';
      }
    });
    report();
    await new Promise((res) => setTimeout(res, 50));
  }
  await Promise.allSettled(signaling);
  for (const r of rows) {
    if (r.phase !== 'done' && r.phase !== 'failed') {
      r.error = r.error ?? (opts.signal?.aborted ? `interrupted in phase ${r.phase}` : `timed out in phase ${r.phase} after ${opts.timeoutMs} ms`);
      r.phase = 'failed';
    }
  }
  opts.onProgress?.(rows, 'final');
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'cta-demo-'));
  const cleanups: Cleanups = [() => fs.rmSync(dir, { recursive: true, force: true })];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        /* best effort */
      }
    }
  };

  try {
    // 1. An external KDC's inputs are checked first; 2. the firmware bundle (built if
    // missing, so the demo runs on a fresh clone) before any server starts; 3. the
    // embedded KDC otherwise.
    const external = opts.external ? await externalRealm(opts.external, opts.ctas, log) : null;
    const bundlePath = await demoBundle(opts.board, log);
    const r = external ?? (await embeddedRealm(dir, opts.ctas, cleanups, log));

    // 4. Signaling Controller.
    let sc: ScServer;
    try {
      sc = await startSc({
        principal: r.scPrincipal,
        keytab: r.scKeytab,
        listen: { host: '127.0.0.1', port: 0 },
        statePath: join(dir, 'sc.db'),
        control: opts.keepRunning ? { host: '127.0.0.1', port: 0, tokenFile: join(dir, 'sc.db.token') } : null,
        wakeOnStart: false,
        log: () => {},
      });
    } catch (e) {
      throw new UsageError(`cannot start the Signaling Controller: ${(e as Error).message}`);
    }
    cleanups.push(() => sc.close());
    log(`Signaling Controller ${r.scPrincipal} on 127.0.0.1:${sc.address.port}`);

    // 5. Emulated CTAs running the bundle; 6. wake them and follow their progress.
    const emus: Emulator[] = [];
    cleanups.push(async () => {
      for (const e of emus) await e.stop();
    });
    const rows = await startCtas(r, sc, opts.board, bundlePath, dir, emus, log);
    await wakeAndFollow(sc, rows, emus, opts, log);

    const signaled = rows.filter((x) => x.phase === 'done').length;
    const result: DemoResult = {
      ctas: rows.length,
      established: rows.filter((x) => x.exchangeMs !== null || x.phase === 'done').length,
      signaled,
      failed: rows.length - signaled,
      elapsed_ms: Math.round(performance.now() - t0),
      wake_ups: sc.metrics.get('cta_sc_tx_total', 'wake_up'),
      realm: r.realm,
      kdc: `${r.kdcAddr.host}:${r.kdcAddr.port}`,
      sc: `127.0.0.1:${sc.address.port}`,
      control: sc.controlAddress ? `${sc.controlAddress.host}:${sc.controlAddress.port}` : null,
      controlTokenFile: sc.controlAddress ? join(dir, 'sc.db.token') : null,
      rows,
      stop,
    };
    if (!opts.keepRunning) await stop();
    return result;
  } catch (e) {
    await stop();
    throw e;
  }
}

/** One AS-REQ-shaped probe is overkill; a UDP send plus a TCP connect tells "unreachable" early. */
async function checkKdcReachable(kdc: { host: string; port: number }): Promise<void> {
  const net = await import('node:net');
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host: kdc.host, port: kdc.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new UsageError(`KDC ${kdc.host}:${kdc.port} is unreachable (no answer in 3 s)`));
    }, 3000);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    });
    s.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new UsageError(`KDC ${kdc.host}:${kdc.port} is unreachable (${e.code ?? e.message})`));
    });
  });
}
