// Wiring for the network-level hostile-input and fault tests (fuzz-net, attack,
// fault): a throwaway realm in the embedded KDC (real UDP), the real Signaling
// Controller, and CTAs that are either the real firmware bundle in the host
// emulator or the same agent code on a Node platform with real UDP sockets.
// Everything binds 127.0.0.1 port 0; close() removes the temp directory.
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { KdcDatabase } from '../../host-tools/kdc/db.ts';
import { startKdc, type RunningKdc } from '../../host-tools/kdc/server.ts';
import { startSc, type ScOptions, type ScServer } from '../../host-tools/sc/server.ts';
import { startEmulator, type Emulator } from '../../host-tools/emulator/emulator.ts';
import { buildFirmware } from '../../host-tools/build/build.ts';
import { makeConfig } from '../../host-tools/provision/cli.ts';
import { nobleBackend } from '../../host-tools/crypto/noble.ts';
import { decodeConfig } from '../../host-tools/provision/config.ts';
import { CtaAgent } from '../../firmware/agent/agent.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import { makeNodePlatform, type NodePlatform } from '../interop/node-platform.ts';

export { nextEvent } from './events.ts';

export const REALM = 'NET.CTA.TEST';
export const SC_NAME = `sc/sc1.net.test@${REALM}`;
export const ctaName = (i: number) => `cta/cta${i}.net.test@${REALM}`;

export type Endpoint = { host: string; port: number };
/** anyPort: take the SC's Wake Ups from any port of its address (cta sc --workers); scPort false: no port provisioned. */
export type CtaOptions = { sc: Endpoint; kdc: Endpoint; timers?: { [k: string]: number | number[] }; slots?: number; clientInitiatedOnBoot?: boolean; anyPort?: boolean; scPort?: false };

export class Realm {
  readonly dir: string;
  readonly db: KdcDatabase;
  kdc: RunningKdc | null = null;
  /** KDC log records with ev 'internal_error' (must stay empty). */
  readonly kdcInternalErrors: unknown[] = [];
  private cleanups: (() => Promise<void> | void)[] = [];
  constructor(prefix = 'cta-net-') {
    this.dir = fs.mkdtempSync(join(os.tmpdir(), prefix));
    // aes128 only: random keys (no string-to-key), the cheapest enctype for many CTAs.
    this.db = KdcDatabase.init(join(this.dir, 'kdc.db'), REALM, { enctypes: [17], krbtgt: false });
    this.db.addPrincipal(SC_NAME, { randkey: true });
  }
  /** Keytab entries of a principal, straight from the KDC database. */
  keytab(name: string): KeytabEntry[] {
    const e = this.db.getKeys(name);
    if (!e) throw new Error(`no principal ${name}`);
    return e.keys.map((k) => ({ principal: { realm: e.realm, components: e.components, nameType: 1 }, timestamp: 0, kvno: k.kvno, etype: k.etype, key: k.key }));
  }
  addCta(name: string): void {
    if (!this.db.getPrincipal(name)) this.db.addPrincipal(name, { randkey: true });
  }
  async startKdc(port = 0): Promise<RunningKdc> {
    this.kdc = await startKdc({
      db: this.db,
      host: '127.0.0.1',
      port,
      log: (rec) => {
        if (rec.ev === 'internal_error') this.kdcInternalErrors.push(rec);
      },
    });
    return this.kdc;
  }
  async stopKdc(): Promise<void> {
    if (this.kdc) await this.kdc.close();
    this.kdc = null;
  }
  get kdcAddr(): Endpoint {
    if (!this.kdc) throw new Error('KDC not running');
    return { host: '127.0.0.1', port: this.kdc.udpPort };
  }
  async startSc(o: Partial<ScOptions> = {}): Promise<ScServer> {
    const sc = await startSc({
      principal: SC_NAME,
      keytab: this.keytab(SC_NAME),
      listen: { host: '127.0.0.1', port: 0 },
      statePath: ':memory:',
      control: null,
      wakeOnStart: false,
      ...o,
    });
    this.onClose(() => sc.close());
    return sc;
  }
  /** CBOR cta.cfg for a CTA. */
  config(name: string, o: CtaOptions & { listenPort?: number; signalingPort?: number }): Uint8Array {
    this.addCta(name);
    return makeConfig({
      keytab: this.keytab(name),
      principal: name,
      scs: [{ principal: SC_NAME, address: o.sc.host, port: o.scPort === false ? undefined : o.sc.port, anyPort: o.anyPort }],
      kdc: { address: o.kdc.host, port: o.kdc.port },
      listenPort: o.listenPort ?? 0,
      signalingPort: o.signalingPort ?? 0,
      timers: o.timers,
      slots: o.slots,
      clientInitiatedOnBoot: o.clientInitiatedOnBoot,
    });
  }
  onClose(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }
  async close(): Promise<void> {
    for (const c of this.cleanups.reverse()) {
      try {
        await c();
      } catch {
        /* best effort */
      }
    }
    await this.stopKdc();
    this.db.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

export type NodeCta = { name: string; agent: CtaAgent; plat: NodePlatform; km: number; kdcPort: number; sig: number; stop(): Promise<void> };

/** The agent (firmware/agent) on a Node platform with real UDP sockets. */
export async function startNodeCta(realm: Realm, name: string, o: CtaOptions): Promise<NodeCta> {
  const cfg = decodeConfig(realm.config(name, { ...o, listenPort: 0, signalingPort: 0 }));
  const plat = makeNodePlatform({ crypto: nobleBackend });
  const agent = new CtaAgent(plat, cfg);
  agent.start();
  const [km, kdcPort, sig] = await plat.bound();
  let stopped = false;
  const c: NodeCta = {
    name,
    agent,
    plat,
    km,
    kdcPort,
    sig,
    async stop() {
      if (stopped) return;
      stopped = true;
      agent.stop();
      await plat.close();
    },
  };
  realm.onClose(() => c.stop());
  return c;
}

let bundleCache: { dir: string; path: string } | null = null;
/** Builds the emulator bundle from the current firmware source once per process. */
export async function emulatorBundle(): Promise<string> {
  if (bundleCache) return bundleCache.path;
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'cta-net-bundle-'));
  const built = await buildFirmware({ board: 'emulator', outDir: dir });
  if (built.violations.length) throw new Error(`bundle breaks the Espruino subset: ${JSON.stringify(built.violations.slice(0, 3))}`);
  bundleCache = { dir, path: built.path };
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return built.path;
}

export type EmuCta = { name: string; emu: Emulator; cta: any; km: number; kdcPort: number; sig: number };

/** The real firmware bundle in the host emulator, its UDP ports mapped to free ones. */
export async function startEmuCta(realm: Realm, name: string, o: CtaOptions): Promise<EmuCta> {
  const cfg = realm.config(name, { ...o, listenPort: 1293, signalingPort: 2427 });
  const emu = await startEmulator({
    board: 'emulator',
    bundlePath: await emulatorBundle(),
    storageDir: join(realm.dir, 'emu-' + name.replace(/[^a-z0-9]/gi, '_')),
    files: { 'cta.cfg': cfg },
    udpPortMap: { 1293: 0, 2427: 0 },
  });
  realm.onClose(() => emu.stop());
  if (!emu.global.cta) throw new Error(`emulated CTA did not start: ${emu.global.ctaError ?? emu.logs.join(' | ')}`);
  await until(() => emu.udpAddresses().length >= 3, 5000, 'emulator sockets');
  const [km, kdcPort, sig] = emu.udpAddresses().map((a) => a.port);
  return { name, emu, cta: emu.global.cta, km, kdcPort, sig };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls fn every 20 ms; rejects with `what` after ms. */
export async function until(fn: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}
