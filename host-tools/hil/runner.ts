// The HIL runner: sets up a throwaway realm (our KDC and SC on loopback, free
// ports, a temp dir), provisions the target with short CTA timers, boots the
// firmware on it, runs the scenario suite and reports.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KdcDatabase } from '../kdc/db.ts';
import { startKdc, type RunningKdc } from '../kdc/server.ts';
import { startSc, type ScServer } from '../sc/server.ts';
import { makeConfig } from '../provision/config.ts';
import { buildFirmware } from '../build/build.ts';
import { loadBoard } from '../build/boards.ts';
import { formatViolations } from '../build/subset-check.ts';
import { UsageError } from '../args.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import { NT_PRINCIPAL } from '../../firmware/proto/krb5.ts';
import { HilProxy } from './proxy.ts';
import { parseTarget, unavailableReason, defaultBoard, startDevice, freeUdpPort, type HilDevice, type DeviceMemory, type FlashPassthrough } from './targets.ts';
import { SCENARIOS, Check, type HilTimers, type ScenarioContext, type ScenarioProxy } from './scenarios.ts';

export const REALM = 'HIL.EXAMPLE.NET';
export const CTA_NAME = 'cta/hil-cta.example.net';
export const SC_NAME = 'sc/hil-sc.example.net';
/** The HIL SC's wait for SA Recovered before it wakes the CTA again. */
const SC_SA_RECOVERED_MS = 2000;

/** Short CTA timers so the suite runs fast (the profile defaults are 1 s/2 s/3 s). */
export const HIL_TIMERS: HilTimers = { retransmitMs: [200, 400], abortMs: 600, unsolicitedBaseMs: 200, kdcTimeoutMs: 500 };

export type ScenarioResult = {
  name: string;
  title: string;
  status: 'pass' | 'fail' | 'skip';
  ms: number;
  details: string[];
  message?: string;
};

export type HilReport = {
  target: string;
  board: string;
  device: string | null;
  timers: HilTimers;
  skipped: string | null;
  results: ScenarioResult[];
  memory: { label: string; usage: number; total: number; free: number }[];
  ms: number;
};

export type HilOptions = {
  target: string;
  board?: string;
  /** Scenario names (default: every scenario that is not test-only). */
  scenarios?: string[];
  floodCount?: number;
  /** Progress lines (one per scenario as it finishes, plus setup lines). */
  out?: (line: string) => void;
  /** Test-only faults: 'sc-key' gives the SC a service key that does not match the KDC's. */
  fault?: 'sc-key' | null;
  /** Keep the temp dir (for debugging). */
  keep?: boolean;
  /** On a failure, print the device's last log lines. */
  verbose?: boolean;
  /** Passed to the flash step (espruino:, tcp://, serial: targets). */
  flash?: FlashPassthrough;
};

export function scenarioNames(includeTestOnly = false): string[] {
  return SCENARIOS.filter((s) => includeTestOnly || !s.testOnly).map((s) => s.name);
}

export function pickScenarios(names: string[] | undefined) {
  if (!names || names.length === 0) return SCENARIOS.filter((s) => !s.testOnly);
  const out: typeof SCENARIOS = [];
  for (const n of names) {
    const s = SCENARIOS.find((x) => x.name === n);
    if (!s) throw new Error(`unknown scenario '${n}' (known: ${scenarioNames(true).join(', ')})`);
    if (!out.includes(s)) out.push(s);
  }
  // Suite order, whatever order they were named in.
  return SCENARIOS.filter((s) => out.includes(s));
}

function timeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, rej) => {
      t = setTimeout(() => rej(new Check(`${what} did not finish within ${ms} ms`)), ms);
    }),
  ]);
}

function entries(db: KdcDatabase, name: string): KeytabEntry[] {
  const p = db.getKeys(name);
  if (!p) throw new Error(`principal ${name} missing`);
  return p.keys.map((k) => ({ principal: { realm: p.realm, components: p.components, nameType: NT_PRINCIPAL }, timestamp: 0, kvno: k.kvno, etype: k.etype, key: k.key }));
}

/**
 * One HIL run: temp dir, KDC, SC, device, the scenarios in order, the report.
 * About 170 lines: a straight sequence whose set-up and tear-down share one
 * try/finally; the scenarios themselves are in scenarios.ts.
 */
export async function runHil(opts: HilOptions): Promise<HilReport> {
  const out = opts.out ?? (() => {});
  const spec = parseTarget(opts.target);
  const board = loadBoard(opts.board ?? defaultBoard(spec));
  const scenarios = pickScenarios(opts.scenarios);
  const t0 = Date.now();
  const report: HilReport = { target: spec.text, board: board.board, device: null, timers: HIL_TIMERS, skipped: null, results: [], memory: [], ms: 0 };
  const skipAll = (reason: string) => {
    report.skipped = reason;
    report.results = scenarios.map((s) => ({ name: s.name, title: s.title, status: 'skip', ms: 0, details: [], message: reason }));
    report.ms = Date.now() - t0;
    return report;
  };
  const why = unavailableReason(spec);
  // An interpreter path that is not there is a mistake (a typo in a CI job must not pass), not a skip.
  if (why && spec.kind === 'espruino') throw new UsageError(why.replace(/^target not available: /, `--target ${spec.text}: `));
  if (why) return skipAll(why);
  const serial = spec.kind === 'serial';
  if (serial && !board.transports.serial) return skipAll(`board ${board.board} has no serial transport (board-configs/${board.board}.json)`);
  if (!serial && !board.transports.udp) return skipAll(`board ${board.board} has no UDP transport; use --target serial:/dev/ttyX`);

  const dir = mkdtempSync(join(tmpdir(), 'cta-hil-'));
  let kdc: RunningKdc | null = null;
  let sc: ScServer | null = null;
  let proxy: (ScenarioProxy & { close(): Promise<void> }) | null = null;
  let device: HilDevice | null = null;
  let db: KdcDatabase | null = null;
  try {
    // ---- firmware ----
    const built = await buildFirmware({ board: board.board, outDir: join(dir, 'dist') });
    if (built.violations.length) throw new Error(`the bundle breaks the Espruino subset:\n${formatViolations(built.violations, built.path)}`);

    // ---- realm: KDC with the CTA and SC principals ----
    db = KdcDatabase.init(join(dir, 'kdc.db'), REALM);
    const cta = `${CTA_NAME}@${REALM}`;
    const scp = `${SC_NAME}@${REALM}`;
    db.addPrincipal(cta, { randkey: true });
    db.addPrincipal(scp, { randkey: true });
    kdc = await startKdc({ db, host: '127.0.0.1', port: 0 });
    let scKeys = entries(db, scp);
    if (opts.fault === 'sc-key') {
      // A second realm's key for the same name: the SC cannot open the KDC's tickets.
      const other = KdcDatabase.init(join(dir, 'other.db'), REALM);
      other.addPrincipal(scp, { randkey: true });
      scKeys = entries(other, scp);
      other.close();
      out('fault injected: the SC has the wrong service key');
    }

    // ---- SC + proxy ----
    sc = await startSc({
      principal: scp,
      keytab: scKeys,
      listen: { host: '127.0.0.1', port: 0 },
      control: null,
      wakeOnStart: false,
      policy: { allowClientInitiated: true, clientInitiatedPerMinute: 60 },
      timers: { nonceLifetimeMs: 3000, wakeRetries: 0, wakeRetryMs: 3000, saRecoveredTimeoutMs: SC_SA_RECOVERED_MS, housekeepingMs: 250 },
    });
    sc.on('error', () => {}); // Error Replies (e.g. skew) are part of the scenarios
    const ctaKeys = entries(db, cta);
    const timers = { retransmitMs: HIL_TIMERS.retransmitMs, abortMs: HIL_TIMERS.abortMs, unsolicitedBaseMs: HIL_TIMERS.unsolicitedBaseMs, kdcTimeoutMs: HIL_TIMERS.kdcTimeoutMs };
    let config: (clientInitiatedOnBoot: boolean) => Uint8Array;
    const devOpts = { board: board.board, bundlePath: built.imagePath, workDir: join(dir, 'device'), out, flash: opts.flash };
    if (serial) {
      // ---- serial: the device's link is the CTA's only path; KM goes through its LinkProxy ----
      // (Over serial the host decides where KDC and SC traffic go: the configured addresses are
      // not used for sending, but the agent opens a client-initiated session only toward an SC
      // whose address it knows, so the SC's is given.)
      config = (clientInitiatedOnBoot) =>
        makeConfig({ keytab: ctaKeys, principal: cta, scs: [{ principal: scp, address: sc!.address.host, port: sc!.address.port }], kdc: { address: '192.0.2.1', port: 88 }, transport: 'serial', slots: 4, clientInitiatedOnBoot, timers, board });
      device = await startDevice(spec, { ...devOpts, config: config(false), kmPort: 0, sc, kdc: { host: '127.0.0.1', port: kdc.udpPort }, principal: cta });
      proxy = device.proxy!;
      sc.register(cta, device.scAddress!, 0);
      out(`realm ${REALM}: KDC 127.0.0.1:${kdc.udpPort} (relayed on channel 2), SC ${scp} attached to ${device.scAddress} (key management on channel 1 through the link proxy), CTA ${cta}`);
    } else {
      // ---- SC + UDP proxy ----
      const kmPort = await freeUdpPort();
      const sigPort = await freeUdpPort();
      const udpProxy = await HilProxy.start({ host: sc.address.host, port: sc.address.port }, { host: '127.0.0.1', port: kmPort });
      proxy = udpProxy;
      sc.register(cta, '127.0.0.1', udpProxy.scSidePort, sigPort);
      config = (clientInitiatedOnBoot) =>
        makeConfig({
          keytab: ctaKeys,
          principal: cta,
          scs: [{ principal: scp, address: '127.0.0.1', port: udpProxy.ctaSidePort }],
          kdc: { address: '127.0.0.1', port: kdc!.udpPort },
          listenPort: kmPort,
          signalingPort: sigPort,
          slots: 4,
          clientInitiatedOnBoot,
          timers,
          board,
        });
      device = await startDevice(spec, { ...devOpts, config: config(false), kmPort });
      out(`realm ${REALM}: KDC 127.0.0.1:${kdc.udpPort}, SC ${scp} at ${sc.address.host}:${sc.address.port} (via proxy ${udpProxy.scSidePort}/${udpProxy.ctaSidePort}), CTA ${cta}`);
    }
    const slow = spec.kind !== 'emu';
    report.device = device.description;
    out(`target ${device.description}`);
    out(`CTA timers shortened for HIL: retransmit at ${HIL_TIMERS.retransmitMs.join('/')} ms, abort at ${HIL_TIMERS.abortMs} ms, client-initiated ${HIL_TIMERS.unsolicitedBaseMs} ms, KDC ${HIL_TIMERS.kdcTimeoutMs} ms (profile defaults 1000/2000/3000 ms)`);
    const m0 = await device.memory();
    report.memory.push({ label: 'after boot', ...m0 });
    out(`device memory after boot: usage ${m0.usage}/${m0.total} variables (free ${m0.free})`);

    const memory: { label: string; m: DeviceMemory }[] = [];
    const ctx: ScenarioContext = {
      device,
      sc,
      kdc,
      proxy,
      ctaPrincipal: cta,
      scPrincipal: scp,
      timers: HIL_TIMERS,
      floodCount: opts.floodCount ?? 10000,
      exchangeTimeoutMs: slow ? 15000 : 5000,
      saRecoveredTimeoutMs: SC_SA_RECOVERED_MS,
      pollMs: slow ? 25 : 10,
      reprovision: async (o) => {
        await device!.restart(config(!!o.clientInitiatedOnBoot));
      },
      memory,
    };
    const budget = slow ? 300000 : 60000;
    for (const s of scenarios) {
      const ts = Date.now();
      let r: ScenarioResult;
      const cannot = device.unsupported?.[s.name] ?? s.unavailable?.(device) ?? null;
      if (cannot) {
        r = { name: s.name, title: s.title, status: 'skip', ms: 0, details: [], message: `not on this target: ${cannot}` };
        report.results.push(r);
        out(formatResult(r));
        continue;
      }
      try {
        const o = await timeout(s.run(ctx), budget, `scenario ${s.name}`);
        r = { name: s.name, title: s.title, status: 'pass', ms: Date.now() - ts, details: o.details };
      } catch (e) {
        const msg = e instanceof Check ? e.message : `${(e as Error).name}: ${(e as Error).message}`;
        r = { name: s.name, title: s.title, status: 'fail', ms: Date.now() - ts, details: [], message: msg };
        // A failed scenario can leave a filter behind.
        proxy.filter = null;
        if (opts.verbose) out(`device log tail:\n  ${device.logs().slice(-15).join('\n  ')}`);
      }
      report.results.push(r);
      out(formatResult(r));
    }
    for (const m of memory) report.memory.push({ label: m.label, ...m.m });
    const m1 = await device.memory();
    report.memory.push({ label: 'at end', ...m1 });
    out(`device memory at end: usage ${m1.usage}/${m1.total} variables (free ${m1.free})`);
  } catch (e) {
    // Setup failed: every scenario not run fails with the reason.
    const msg = `setup failed: ${(e as Error).message}`;
    for (const s of scenarios) {
      if (!report.results.some((r) => r.name === s.name)) report.results.push({ name: s.name, title: s.title, status: 'fail', ms: 0, details: [], message: msg });
    }
    out(msg);
  } finally {
    if (device) await device.stop().catch(() => {});
    if (proxy) await proxy.close().catch(() => {});
    if (sc) await sc.close().catch(() => {});
    if (kdc) await kdc.close().catch(() => {});
    if (db) db.close();
    if (!opts.keep) rmSync(dir, { recursive: true, force: true });
    else out(`work dir kept: ${dir}`);
  }
  report.ms = Date.now() - t0;
  return report;
}

export function formatResult(r: ScenarioResult): string {
  const head = `${r.status.toUpperCase().padEnd(4)} ${r.name.padEnd(18)} ${String(r.ms).padStart(6)} ms`;
  const tail = r.status === 'pass' ? r.details.join('; ') : (r.message ?? '');
  return `${head}  ${tail}`;
}
