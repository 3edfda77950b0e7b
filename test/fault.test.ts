// Faults (issue 6): lossy network, an SC killed with SIGKILL mid-campaign, a KDC
// that goes away. The CTAs here are the agent code (firmware/agent) on a Node
// platform with real UDP sockets (test/interop/node-platform.ts) -- not 50-100 vm
// emulators -- talking to the real SC and the embedded KDC over loopback.
// Timers are shortened through the configs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { join } from 'node:path';
import type { EstablishedEvent, UnreachableEvent } from '../host-tools/sc/server.ts';
import { REPO_ROOT } from '../host-tools/build/build.ts';
import { UdpPair, UdpRelay } from './helpers/impair-proxy.ts';
import { Realm, startNodeCta, ctaName, nextEvent, until, sleep, SC_NAME, type NodeCta } from './helpers/net-world.ts';

const LOSS = Number(process.env.FAULT_LOSS ?? 0.2);

test('20% loss both ways (SC<->CTA and CTA<->KDC) plus duplication, reordering and jitter, 50 CTAs: every CTA reaches an SA in bounded time, nothing left pending, the nonce table drains', { timeout: 120_000 }, async (t) => {
  const realm = new Realm('cta-fault-loss-');
  try {
    await realm.startKdc();
    const sc = await realm.startSc({
      timers: { wakeRetries: 12, wakeRetryMs: 700, nonceLifetimeMs: 1500, saRecoveredTimeoutMs: 1000, housekeepingMs: 200, restartWakeRatePerSec: 500 },
    });
    const kdcRelay = await UdpRelay.open({ seed: 100, target: realm.kdcAddr, toServer: { loss: LOSS }, toClient: { loss: LOSS } });
    realm.onClose(() => kdcRelay.close());
    const N = 50;
    const ctas: (NodeCta & { pair: UdpPair })[] = [];
    for (let i = 1; i <= N; i++) {
      const pair = await UdpPair.open({ seed: i, r: { host: sc.address.host, port: sc.address.port }, toL: { loss: LOSS, duplicate: 0.05, reorder: 0.05, reorderMs: 30, jitterMs: 5 }, toR: { loss: LOSS, duplicate: 0.05, reorder: 0.05, reorderMs: 30, jitterMs: 5 } });
      realm.onClose(() => pair.close());
      const c = await startNodeCta(realm, ctaName(i), {
        sc: pair.forL,
        kdc: { host: '127.0.0.1', port: kdcRelay.port },
        timers: { retransmitMs: [150, 300], abortMs: 500, kdcTimeoutMs: 150, kdcRetries: 4 },
      });
      pair.setL({ host: '127.0.0.1', port: c.km });
      sc.register(c.name, '127.0.0.1', pair.forR.port, c.sig);
      ctas.push({ ...c, pair });
    }
    const unreachable: string[] = [];
    sc.on('unreachable', (e: UnreachableEvent) => unreachable.push(e.principal));
    const established = new Map<string, EstablishedEvent>();
    sc.on('established', (e: EstablishedEvent) => established.set(e.principal, e));
    const t0 = Date.now();
    assert.equal(sc.wakeAll(), N);
    const BOUND_MS = 60_000;
    // Done when the SC holds an SA for every CTA and every CTA holds the same SA.
    const agree = (c: NodeCta) => {
      const k = sc.saKeys(c.name);
      const sa = c.agent.status().scs[0].sa;
      return sc.hasSa(c.name) && !!k && !!sa && sa.scSpi === k.scSpi && sa.ctaSpi === k.ctaSpi;
    };
    try {
      await until(() => ctas.every(agree), BOUND_MS, 'every CTA established');
    } catch (e) {
      const bad = ctas.filter((c) => !agree(c));
      throw new Error(`${(e as Error).message}: ${N - bad.length}/${N}; e.g. ${bad[0].name}: SC ${JSON.stringify(sc.get(bad[0].name))}, CTA ${JSON.stringify(bad[0].agent.status().scs[0])} counters ${JSON.stringify(bad[0].agent.counters)}; SC ${JSON.stringify(sc.stats())}`);
    }
    const took = Date.now() - t0;
    // Let in-flight duplicates and timers settle, then nothing may be left pending.
    await until(() => (sc.status() as { outstandingNonces: number }).outstandingNonces === 0, 5000, 'the nonce table to drain');
    await until(() => (sc.status() as { pendingSaRecovered: number; waking: number }).pendingSaRecovered === 0, 5000, 'pending SA Recovered to clear');
    const st = sc.status() as { outstandingNonces: number; pendingSaRecovered: number; waking: number; byState: { [s: string]: number } };
    const lost = ctas.reduce((a, c) => a + c.pair.toL.stats.dropped + c.pair.toR.stats.dropped, 0) + kdcRelay.toServer.stats.dropped + kdcRelay.toClient.stats.dropped;
    const kdcRetx = ctas.reduce((a, c) => a + c.agent.counters.kdcRetransmits, 0);
    const apRetx = ctas.reduce((a, c) => a + c.agent.counters.retransmits, 0);
    const dup = ctas.reduce((a, c) => a + c.pair.toL.stats.duplicated + c.pair.toR.stats.duplicated, 0);
    t.diagnostic(`50 CTAs established in ${took} ms under ${LOSS * 100}% loss both ways; ${lost} datagrams dropped, ${dup} duplicated by the proxy; CTA retransmits AP ${apRetx}, KDC ${kdcRetx}; SC ${JSON.stringify(sc.stats().cta_sc_exchanges_total)} drops ${JSON.stringify(sc.stats().cta_sc_drops_total)}`);
    assert.ok(lost > 50, 'the proxy really dropped traffic');
    assert.equal(st.outstandingNonces, 0);
    assert.equal(st.pendingSaRecovered, 0);
    assert.equal(st.waking, 0, 'no CTA still being woken');
    assert.equal(st.byState.established, N);
    assert.deepEqual(unreachable, [], 'nobody was given up on');
    for (const c of ctas) {
      const s = c.agent.status();
      assert.equal(s.slotsInUse, 0, `${c.name}: no pending session left`);
      assert.equal(s.scs[0].state, 'established');
      assert.equal(c.agent.counters.drops.internal, 0);
    }
    assert.equal(sc.stats().cta_sc_drops_total.internal_error, undefined);
  } finally {
    await realm.close();
  }
});

/** A free UDP port on 127.0.0.1 (bound and released). */
async function freePort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

type Line = { event: string; principal?: string; ctaSpi?: number; scSpi?: number; ctas?: number };
/** `node bin/cta.js sc ...` as a child process, its JSON log lines collected. */
function spawnSc(args: string[]): { child: ChildProcess; lines: Line[]; exited: Promise<number | null>; stderr: string[] } {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'cta.js'), 'sc', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  const stderr: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(l));
      } catch {
        /* not a log line */
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, lines, exited, stderr };
}

test('SC killed with SIGKILL in the middle of a campaign of 100 CTAs, restarted on the same state: every CTA re-keyed by the restart wake, none lost, none half-open', { timeout: 150_000 }, async (t) => {
  const realm = new Realm('cta-fault-kill-');
  const children: ChildProcess[] = [];
  try {
    await realm.startKdc();
    const keytab = join(realm.dir, 'sc.keytab');
    realm.db.exportKeytab(SC_NAME, keytab);
    const state = join(realm.dir, 'sc-state.db');
    const port = await freePort();
    const N = 100;
    const ctas: NodeCta[] = [];
    for (let i = 1; i <= N; i++) {
      ctas.push(await startNodeCta(realm, ctaName(i), { sc: { host: '127.0.0.1', port }, kdc: realm.kdcAddr, timers: { retransmitMs: [300, 600], abortMs: 1000 } }));
    }
    const common = ['--principal', SC_NAME, '--keytab', keytab, '--listen', `127.0.0.1:${port}`, '--state', state, '--control', 'none', '--wake-retry', '1000', '--wake-retries', '4', '--nonce-lifetime', '2000'];
    // Run 0: register all 100 (persisted in the SQLite state), no wake; clean stop.
    const r0 = spawnSc([...common, '--no-wake-on-start', ...ctas.map((c) => `--cta=${c.name}=127.0.0.1:${c.km}/${c.sig}`)]);
    children.push(r0.child);
    await until(() => r0.lines.filter((l) => l.event === 'registered').length === N, 30_000, `registration (stderr ${r0.stderr.join('')})`);
    r0.child.kill('SIGTERM');
    assert.equal(await r0.exited, 0);
    // Run 1: the start-up campaign wakes every registered CTA, paced at 25/s (4 s);
    // SIGKILL once about a third are established.
    const r1 = spawnSc([...common, '--restart-wake-rate', '25']);
    children.push(r1.child);
    const est1 = () => r1.lines.filter((l) => l.event === 'established').length;
    await until(() => est1() >= N / 3, 60_000, `a third of the campaign established (${est1()}; stderr ${r1.stderr.join('')})`);
    r1.child.kill('SIGKILL');
    await r1.exited;
    const before = est1();
    const halfway = ctas.filter((c) => c.agent.status().slotsInUse > 0).length;
    t.diagnostic(`killed the SC with ${before}/${N} established and ${halfway} CTAs mid-exchange`);
    assert.ok(before < N, 'killed in the middle of the campaign');
    // Run 2: same state, no --cta flags: the registry alone drives the restart wake.
    const r2 = spawnSc([...common, '--restart-wake-rate', '100']);
    children.push(r2.child);
    await until(() => r2.lines.some((l) => l.event === 'started'), 30_000, `restart (stderr ${r2.stderr.join('')})`);
    assert.equal(r2.lines.find((l) => l.event === 'started')!.ctas, N, 'every registered CTA survived the kill');
    const last = new Map<string, Line>();
    const agree = (c: NodeCta) => {
      for (const l of r2.lines) if (l.event === 'established' && l.principal) last.set(l.principal, l);
      const e = last.get(c.name);
      const s = c.agent.status();
      const sa = s.scs[0].sa;
      return !!e && !!sa && s.scs[0].state === 'established' && s.slotsInUse === 0 && sa.scSpi === e.scSpi && sa.ctaSpi === e.ctaSpi;
    };
    await until(() => ctas.every(agree), 60_000, `every CTA re-keyed by the restarted SC (${ctas.filter(agree).length}/${N})`);
    const unreachable = r2.lines.filter((l) => l.event === 'unreachable');
    assert.deepEqual(unreachable, [], 'no CTA lost');
    assert.equal(new Set(r2.lines.filter((l) => l.event === 'established').map((l) => l.principal)).size, N, 'the restarted SC established all 100');
    for (const c of ctas) assert.equal(c.agent.counters.drops.internal, 0);
    r2.child.kill('SIGTERM');
    assert.equal(await r2.exited, 0, 'clean shutdown');
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await realm.close();
  }
});

test('KDC unreachable: CTAs back off and fail (kdcRetransmits/kdcFailures), the SC reports them unreachable; KDC back on the same port: all recover', { timeout: 60_000 }, async () => {
  const realm = new Realm('cta-fault-kdc-');
  try {
    const kdc = await realm.startKdc();
    const kdcPort = kdc.udpPort;
    const sc = await realm.startSc({ timers: { wakeRetries: 2, wakeRetryMs: 1200, nonceLifetimeMs: 1500 } });
    const N = 3;
    const ctas: NodeCta[] = [];
    for (let i = 1; i <= N; i++) {
      const c = await startNodeCta(realm, ctaName(i), { sc: sc.address, kdc: realm.kdcAddr, timers: { retransmitMs: [200, 400], abortMs: 600, kdcTimeoutMs: 100, kdcRetries: 2 } });
      sc.register(c.name, '127.0.0.1', c.km, c.sig);
      ctas.push(c);
    }
    await realm.stopKdc();
    const unreachable = new Set<string>();
    sc.on('unreachable', (e: UnreachableEvent) => unreachable.add(e.principal));
    for (const c of ctas) sc.wake(c.name);
    await until(() => unreachable.size === N, 15_000, 'the SC to report every CTA unreachable');
    for (const c of ctas) {
      const k = c.agent.counters;
      // Each trigger: one AS-REQ, kdcRetries retransmissions with growing timeouts, then a failure.
      assert.ok(k.kdcFailures >= 1, `${c.name}: kdcFailures ${k.kdcFailures}`);
      assert.ok(k.kdcRetransmits >= 2 * k.kdcFailures, `${c.name}: ${k.kdcRetransmits} retransmits for ${k.kdcFailures} failures`);
      assert.equal(k.sessionsEstablished, 0);
      assert.equal(sc.get(c.name)?.state, 'unreachable');
    }
    assert.equal((sc.status() as { byState: { [s: string]: number } }).byState.unreachable, N);
    // The KDC comes back on the same port; the operator (or the SC's next campaign) wakes them again.
    await realm.startKdc(kdcPort);
    const done = Promise.all(ctas.map((c) => nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === c.name, 15_000)));
    assert.equal(sc.wakeAll(), N);
    await done;
    for (const c of ctas) {
      assert.equal(c.agent.status().scs[0].state, 'established');
      assert.equal(c.agent.status().scs[0].sa!.scSpi, sc.saKeys(c.name)!.scSpi);
      assert.equal(c.agent.counters.drops.internal, 0);
    }
    assert.equal((sc.status() as { byState: { [s: string]: number } }).byState.established, N);
  } finally {
    await realm.close();
  }
});
