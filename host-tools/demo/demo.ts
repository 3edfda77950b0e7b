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

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const t0 = performance.now();
  const log = opts.log ?? (() => {});
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'cta-demo-'));
  const cleanups: (() => Promise<void> | void)[] = [() => fs.rmSync(dir, { recursive: true, force: true })];
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
    // 1. KDC: the given external one (checked first), or an embedded throwaway realm.
    let realm = '';
    let kdcAddr = { host: '', port: 0 };
    let scPrincipal = '';
    let scKeytab: KeytabEntry[] = [];
    let ctaKeytab: KeytabEntry[] = [];
    let ctaNames: string[] = [];
    if (opts.external) {
      const x = opts.external;
      realm = x.realm;
      kdcAddr = x.kdc;
      scPrincipal = withRealm(x.scPrincipal, realm);
      scKeytab = readKeytabFile(x.scKeytab, 'SC keytab');
      if (!scKeytab.some((e) => principalName(e) === scPrincipal)) {
        throw new UsageError(`principal '${scPrincipal}' is not in the SC keytab '${x.scKeytab}'`);
      }
      ctaKeytab = readKeytabFile(x.ctaKeytab, 'CTA keytab');
      ctaNames = ctaPrincipals(ctaKeytab).filter((n) => n.endsWith('@' + realm));
      if (ctaNames.length === 0) throw new UsageError(`the CTA keytab '${x.ctaKeytab}' holds no cta/...@${realm} principal`);
      if (opts.ctas < ctaNames.length) ctaNames = ctaNames.slice(0, opts.ctas);
      await checkKdcReachable(kdcAddr);
      log(`external KDC ${kdcAddr.host}:${kdcAddr.port}, realm ${realm}, ${ctaNames.length} CTA principal(s) from the keytab`);
    }

    // 2. Firmware bundle (built if missing, so the demo runs on a fresh clone), after the
    // external KDC's inputs are checked, before the embedded KDC or any server starts.
    const bundle = join(REPO_ROOT, 'dist', 'firmware', `${opts.board}.js`);
    let bundlePath = bundle;
    if (bundleStale(bundle, opts.board)) {
      log(`building the firmware bundle for board '${opts.board}'`);
      const r = await buildFirmware({ board: opts.board });
      if (r.violations.length) throw new Error(`the firmware bundle breaks the Espruino subset (${r.violations.length} violations): run cta build --board ${opts.board}`);
      bundlePath = r.path;
      log(`built ${r.path} (${r.bytes} bytes)`);
    }

    if (!opts.external) {
      realm = 'DEMO.CTA.TEST';
      const db = KdcDatabase.init(join(dir, 'kdc.db'), realm);
      scPrincipal = `sc/sc1.demo.test@${realm}`;
      db.addPrincipal(scPrincipal, { randkey: true });
      db.exportKeytab(scPrincipal, join(dir, 'sc.keytab'));
      ctaNames = [];
      for (let i = 1; i <= opts.ctas; i++) {
        const name = `cta/cta${i}.demo.test@${realm}`;
        db.addPrincipal(name, { randkey: true });
        db.exportKeytab(name, join(dir, `cta${i}.keytab`));
        ctaNames.push(name);
      }
      scKeytab = parseKeytab(new Uint8Array(fs.readFileSync(join(dir, 'sc.keytab'))));
      ctaKeytab = [];
      for (let i = 1; i <= opts.ctas; i++) ctaKeytab.push(...parseKeytab(new Uint8Array(fs.readFileSync(join(dir, `cta${i}.keytab`)))));
      const kdc = await startKdc({ db, host: '127.0.0.1', port: 0 });
      cleanups.push(async () => {
        await kdc.close();
        db.close();
      });
      kdcAddr = { host: '127.0.0.1', port: kdc.udpPort };
      log(`embedded KDC for realm ${realm} on 127.0.0.1:${kdc.udpPort} (UDP+TCP), ${ctaNames.length + 2} principals`);
    }

    // 3. Signaling Controller.
    let sc: ScServer;
    try {
      sc = await startSc({
        principal: scPrincipal,
        keytab: scKeytab,
        listen: { host: '127.0.0.1', port: 0 },
        statePath: join(dir, 'sc.db'),
        control: opts.keepRunning ? { host: '127.0.0.1', port: 0 } : null,
        wakeOnStart: false,
        log: () => {},
      });
    } catch (e) {
      throw new UsageError(`cannot start the Signaling Controller: ${(e as Error).message}`);
    }
    cleanups.push(() => sc.close());
    log(`Signaling Controller ${scPrincipal} on 127.0.0.1:${sc.address.port}`);

    // 4. Emulated CTAs, each running the firmware bundle with its own Storage.
    const rows: CtaRow[] = ctaNames.map((p) => ({
      principal: p,
      phase: 'starting' as CtaPhase,
      exchangeMs: null,
      signalingMs: null,
      response: null,
      error: null,
      ctaSpi: null,
      scSpi: null,
    }));
    const emus: Emulator[] = [];
    cleanups.push(async () => {
      for (const e of emus) await e.stop();
    });
    for (let i = 0; i < ctaNames.length; i++) {
      const listenPort = await freeUdpPort();
      const signalingPort = await freeUdpPort();
      const cfg = makeConfig({
        keytab: ctaKeytab,
        principal: ctaNames[i],
        scs: [{ principal: scPrincipal, address: '127.0.0.1', port: sc.address.port }],
        kdc: { address: kdcAddr.host, port: kdcAddr.port },
        listenPort,
        signalingPort,
      });
      const emu = await startEmulator({
        board: opts.board,
        bundlePath,
        storageDir: join(dir, `cta${i + 1}-storage`),
        files: { 'cta.cfg': cfg },
        onLog: (line) => {
          if (/uncaught|exception/i.test(line)) log(`[${ctaNames[i]}] ${line}`);
        },
      });
      emus.push(emu);
      if (!emu.global.cta) throw new Error(`emulated CTA ${ctaNames[i]} did not start: ${emu.global.ctaError ?? emu.logs.join(' | ')}`);
      sc.register(ctaNames[i], '127.0.0.1', listenPort, signalingPort);
      rows[i].phase = 'waiting';
    }

    // 5. Wake every CTA and follow their progress.
    const byName: { [p: string]: number } = {};
    rows.forEach((r, i) => (byName[r.principal] = i));
    const signaling: Promise<void>[] = [];
    let txid = 1000;
    sc.on('established', (ev: { principal: string; latencyMs: number | null; ctaSpi: number; scSpi: number }) => {
      const i = byName[ev.principal];
      if (i === undefined || rows[i].phase === 'signaling' || rows[i].phase === 'done') return;
      const row = rows[i];
      row.phase = 'signaling';
      row.exchangeMs = ev.latencyMs;
      row.ctaSpi = ev.ctaSpi;
      row.scSpi = ev.scSpi;
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
          },
          (e: Error) => {
            row.phase = 'failed';
            row.error = `signaling: ${e.message}`;
          },
        ),
      );
    });
    sc.on('unreachable', (ev: { principal: string; attempts: number }) => {
      const i = byName[ev.principal];
      if (i === undefined || rows[i].phase === 'done') return;
      rows[i].phase = 'failed';
      rows[i].error = `unreachable after ${ev.attempts} Wake Ups`;
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
      opts.onProgress?.(rows, '');
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
    const established = rows.filter((r) => r.exchangeMs !== null || r.phase === 'done').length;
    const signaled = rows.filter((r) => r.phase === 'done').length;
    const result: DemoResult = {
      ctas: rows.length,
      established,
      signaled,
      failed: rows.length - signaled,
      elapsed_ms: Math.round(performance.now() - t0),
      wake_ups: sc.metrics.get('cta_sc_tx_total', 'wake_up'),
      realm,
      kdc: `${kdcAddr.host}:${kdcAddr.port}`,
      sc: `127.0.0.1:${sc.address.port}`,
      control: sc.controlAddress ? `${sc.controlAddress.host}:${sc.controlAddress.port}` : null,
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
