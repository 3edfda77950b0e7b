// The HIL scenario suite. Each scenario drives the real target through the SC,
// the KDC and the runner's proxy (proxy.ts), and judges by what the device reports
// back (cta.status() counters, process.memory()) and what crossed the wire.
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { encodeWakeUp, decodeApRequest, KMMID, DOI } from '../../firmware/proto/pktc.ts';
import { ctEqual } from '../../firmware/proto/bytes.ts';
import type { AgentStatus } from '../../firmware/agent/agent.ts';
import type { ScServer, EstablishedEvent } from '../sc/server.ts';
import type { RunningKdc } from '../kdc/server.ts';
import type { HilProxy, Relayed } from './proxy.ts';
import type { HilDevice, DeviceMemory } from './targets.ts';
import { sleep } from './targets.ts';

/** What the scenarios use of a key-management relay (the UDP HilProxy, or a serial target's LinkProxy). */
export type ScenarioProxy = Pick<HilProxy, 'total' | 'since' | 'inject' | 'waitFor' | 'filter'>;

export type HilTimers = { retransmitMs: number[]; abortMs: number; unsolicitedBaseMs: number; kdcTimeoutMs: number };

export type ScenarioContext = {
  device: HilDevice;
  sc: ScServer;
  kdc: RunningKdc;
  proxy: ScenarioProxy;
  ctaPrincipal: string;
  scPrincipal: string;
  timers: HilTimers;
  /** Number of Wake Ups in the flood. */
  floodCount: number;
  /** Default wait for an exchange (ms); longer on slow targets. */
  exchangeTimeoutMs: number;
  /** The SC's wait for SA Recovered before it wakes the CTA again (its saRecoveredTimeoutMs). */
  saRecoveredTimeoutMs: number;
  /** Status poll period (ms). */
  pollMs: number;
  /** Re-provision the device with config overrides (e.g. clientInitiatedOnBoot) and reboot it. */
  reprovision(overrides: { clientInitiatedOnBoot?: boolean }): Promise<void>;
  /** Device memory samples the scenarios took (for the summary). */
  memory: { label: string; m: DeviceMemory }[];
};

export type ScenarioOutcome = { details: string[] };

export type Scenario = {
  name: string;
  title: string;
  run(ctx: ScenarioContext): Promise<ScenarioOutcome>;
  /** Test-only scenarios are run only when named with --scenario. */
  testOnly?: boolean;
  /** Why this target cannot run the scenario (printed as SKIP), or null. */
  unavailable?(device: HilDevice): string | null;
};

export class Check extends Error {}

function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Check(msg);
}

const c = (s: AgentStatus) => s.counters;
const drops = (s: AgentStatus, r: string) => s.counters.drops[r] ?? 0;

function scMetric(sc: ScServer, family: string, label: string): number {
  const snap = sc.stats() as unknown as { [f: string]: { [l: string]: number } };
  return snap[family]?.[label] ?? 0;
}

/** Polls the device status until pred holds; the last status, or a Check failure. */
async function until(ctx: ScenarioContext, pred: (s: AgentStatus) => boolean, timeoutMs: number, what: string): Promise<AgentStatus> {
  const t0 = Date.now();
  for (;;) {
    const s = await ctx.device.status();
    if (pred(s)) return s;
    if (Date.now() - t0 > timeoutMs) throw new Check(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(ctx.pollMs);
  }
}

/** Polls until the CTA has counted a session more than in s0. */
function sessionCounted(ctx: ScenarioContext, s0: AgentStatus): Promise<AgentStatus> {
  return until(ctx, (s) => c(s).sessionsEstablished > c(s0).sessionsEstablished, ctx.exchangeTimeoutMs, 'the CTA to count the session');
}

/** The AP Requests the CTA sent, among relayed datagrams. */
function apRequests(rs: Relayed[]): Relayed[] {
  return rs.filter((r) => r.dir === 'cta->sc' && r.data[0] === KMMID.AP_REQUEST);
}

/** Has the SC wake the CTA; resolves with the SC's 'established' event for it. */
function wakeEstablished(ctx: ScenarioContext, timeoutMs: number, what?: string): Promise<EstablishedEvent> {
  const est = established(ctx, timeoutMs, what);
  ctx.sc.wake(ctx.ctaPrincipal);
  return est;
}

/** Resolves with the SC's next 'established' event for the CTA. */
function established(ctx: ScenarioContext, timeoutMs: number, what = 'SA established at the SC'): Promise<EstablishedEvent> {
  return new Promise((resolve, reject) => {
    const on = (e: EstablishedEvent) => {
      if (e.principal !== ctx.ctaPrincipal) return;
      clearTimeout(t);
      ctx.sc.off('established', on);
      resolve(e);
    };
    const t = setTimeout(() => {
      ctx.sc.off('established', on);
      reject(new Check(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    ctx.sc.on('established', on);
  });
}

function kinds(rs: Relayed[], dir: Relayed['dir'] | null, opts: { dropped?: boolean; injected?: boolean } = {}): number[] {
  return rs
    .filter((r) => (dir === null || r.dir === dir) && (opts.dropped === undefined || r.dropped === opts.dropped) && (opts.injected === undefined || r.injected === opts.injected))
    .map((r) => r.data[0]);
}

function nonceOf(apRequest: Uint8Array): number {
  return decodeApRequest(apRequest).serverNonce;
}

function freshFakeNonce(): number {
  let n = 0;
  while (n === 0) n = randomBytes(4).readUInt32BE(0);
  return n;
}

/** An SC session exists (earlier scenario, or one Wake Up now): tickets are cached. */
async function ensureEstablished(ctx: ScenarioContext): Promise<void> {
  const s = await ctx.device.status();
  if (ctx.sc.hasSa(ctx.ctaPrincipal) && s.scs[0]?.state === 'established') return;
  await wakeEstablished(ctx, ctx.exchangeTimeoutMs, 'a preparatory exchange');
  await until(ctx, (x) => x.scs[0]?.state === 'established', ctx.exchangeTimeoutMs, 'the CTA to report its SA');
}

/** Waits until the CTA has no pending session (a slot left from an earlier scenario expired). */
async function idle(ctx: ScenarioContext): Promise<AgentStatus> {
  return until(ctx, (s) => s.slotsInUse === 0, ctx.timers.abortMs * 3 + ctx.exchangeTimeoutMs, 'the CTA session table to be empty');
}

function seq(rs: Relayed[]): string {
  const names: { [k: number]: string } = { 1: 'WakeUp', 2: 'APReq', 3: 'APRep', 4: 'SARecovered', 5: 'Rekey', 6: 'ErrorReply' };
  return rs.map((r) => (r.dropped ? '(x)' : '') + (names[r.data[0]] ?? `kmmid${r.data[0]}`)).join(' ');
}

// ------------------------------------------------------------------ scenarios

const happyPath: Scenario = {
  name: 'happy-path',
  title: 'Wake Up -> AS -> AP Request -> AP Reply -> SA Recovered',
  async run(ctx) {
    const s0 = await idle(ctx);
    const hadTicket = s0.scs[0]?.ticketEndtime !== null;
    const kdc0 = ctx.kdc.stats().issued;
    const mark = ctx.proxy.total;
    const e = await wakeEstablished(ctx, ctx.exchangeTimeoutMs);
    const s1 = await until(ctx, (s) => c(s).saRecoveredSent > c(s0).saRecoveredSent && c(s).sessionsEstablished > c(s0).sessionsEstablished, ctx.exchangeTimeoutMs, 'the CTA to count the session');
    const rs = ctx.proxy.since(mark);
    const k = kinds(rs, null, { dropped: false });
    const order = [KMMID.WAKE_UP, KMMID.AP_REQUEST, KMMID.AP_REPLY, KMMID.SA_RECOVERED].map((x) => k.indexOf(x));
    check(order.every((i, j) => i >= 0 && (j === 0 || i > order[j - 1])), `expected Wake Up, AP Request, AP Reply, SA Recovered in order on the wire, saw: ${seq(rs)}`);
    check(!e.clientInitiated, 'the SC counted the session as client-initiated');
    check(ctx.sc.hasSa(ctx.ctaPrincipal), 'the SC holds no SA');
    check(s1.scs[0].state === 'established' && s1.scs[0].sa !== null, `CTA state ${s1.scs[0].state}`);
    check(s1.scs[0].sa!.scSpi === e.scSpi && s1.scs[0].sa!.ctaSpi === e.ctaSpi, 'SPIs differ between the CTA and the SC');
    const as = c(s1).asExchanges - c(s0).asExchanges;
    if (!hadTicket) {
      check(as >= 1 && ctx.kdc.stats().issued > kdc0, `no AS exchange with the KDC although the CTA had no ticket (CTA AS exchanges +${as}, KDC issued +${ctx.kdc.stats().issued - kdc0})`);
    }
    // The SA carries protected signaling (ESP) both ways.
    const txid = String(1000 + (randomBytes(2).readUInt16BE(0) % 9000));
    const reply = await ctx.sc.sendSignaling(ctx.ctaPrincipal, `RQNT ${txid} aaln/1@cta.hil MGCP 1.0 NCS 1.0\r\n`, Math.max(2000, ctx.exchangeTimeoutMs / 2));
    check(reply.startsWith(`200 ${txid}`), `signaling over the SA answered '${reply.trim()}'`);
    return {
      details: [
        `Wake Up -> SA established ${e.latencyMs} ms (SC)`,
        hadTicket ? 'ticket cached (no AS)' : `AS exchange ${as} (KDC issued ${ctx.kdc.stats().issued - kdc0})`,
        `wire: ${seq(rs)}`,
        `CTA SPI ${e.ctaSpi >>> 0}, SC SPI ${e.scSpi >>> 0}; NCS RQNT over the SA -> 200`,
      ],
    };
  },
};

const falseNonce: Scenario = {
  name: 'false-nonce',
  title: 'AP Request with a nonce the SC never issued is disregarded; the CTA aborts at its timeout',
  async run(ctx) {
    await ensureEstablished(ctx);
    const s0 = await idle(ctx);
    const fn0 = scMetric(ctx.sc, 'cta_sc_drops_total', 'false_nonce');
    const fake = freshFakeNonce();
    const mark = ctx.proxy.total;
    const t0 = Date.now();
    ctx.proxy.inject(encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: fake, serverPrincipal: ctx.scPrincipal }));
    const s1 = await until(ctx, (s) => c(s).sessionsAborted > c(s0).sessionsAborted, ctx.timers.abortMs + ctx.exchangeTimeoutMs, 'the CTA to abort');
    const abortedAfter = Date.now() - t0;
    await sleep(50);
    const rs = ctx.proxy.since(mark);
    const reqs = apRequests(rs);
    check(reqs.length >= 1, 'the CTA sent no AP Request for the Wake Up');
    check(reqs.every((r) => nonceOf(r.data) === fake), 'an AP Request did not echo the injected nonce');
    check(reqs.every((r) => ctEqual(r.data, reqs[0].data)), 'retransmitted AP Requests differ from the first');
    const fromSc = kinds(rs, 'sc->cta', { injected: false });
    check(fromSc.length === 0, `the SC answered a false nonce: ${fromSc.join(',')}`);
    const fn = scMetric(ctx.sc, 'cta_sc_drops_total', 'false_nonce') - fn0;
    check(fn >= 1, 'the SC did not count a false_nonce');
    check(c(s1).retransmits - c(s0).retransmits === ctx.timers.retransmitMs.length, `retransmissions: ${c(s1).retransmits - c(s0).retransmits}, expected ${ctx.timers.retransmitMs.length}`);
    const firstToLast = reqs[reqs.length - 1].at - reqs[0].at;
    check(abortedAfter + 20 >= ctx.timers.abortMs, `aborted after ${abortedAfter} ms, before the ${ctx.timers.abortMs} ms timeout`);
    return {
      details: [
        `nonce 0x${fake.toString(16)}: ${reqs.length} identical AP Request(s) over ${firstToLast} ms, SC false_nonce +${fn}, no reply`,
        `CTA aborted after ${abortedAfter} ms (timeout ${ctx.timers.abortMs} ms)`,
      ],
    };
  },
};

const nonceZero: Scenario = {
  name: 'nonce-zero',
  title: 'Wake Up with the out-of-bounds nonce 0 is dropped by the CTA',
  async run(ctx) {
    const s0 = await idle(ctx);
    const mark = ctx.proxy.total;
    ctx.proxy.inject(encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0, serverPrincipal: ctx.scPrincipal }));
    const s1 = await until(ctx, (s) => drops(s, 'nonce_zero') > drops(s0, 'nonce_zero'), ctx.exchangeTimeoutMs, 'the nonce_zero drop');
    await sleep(Math.max(200, ctx.timers.retransmitMs[0] ?? 200));
    const s2 = await ctx.device.status();
    const out = kinds(ctx.proxy.since(mark), 'cta->sc');
    check(drops(s1, 'nonce_zero') - drops(s0, 'nonce_zero') === 1, 'nonce_zero counted more than once');
    check(out.length === 0 && c(s2).apRequestsSent === c(s0).apRequestsSent, 'the CTA answered a nonce-0 Wake Up');
    check(c(s2).wakeUps === c(s0).wakeUps, 'the CTA accepted the Wake Up');
    return { details: ['dropped (nonce_zero +1), no AP Request'] };
  },
};

const replyWithheld: Scenario = {
  name: 'ap-reply-withheld',
  title: 'AP Reply withheld -> the CTA retransmits, then aborts at its timeout',
  async run(ctx) {
    const s0 = await idle(ctx);
    const est0 = c(s0).sessionsEstablished;
    ctx.proxy.filter = (d, dir) => !(dir === 'sc->cta' && d[0] === KMMID.AP_REPLY);
    const mark = ctx.proxy.total;
    try {
      ctx.sc.wake(ctx.ctaPrincipal);
      const s1 = await until(ctx, (s) => c(s).sessionsAborted > c(s0).sessionsAborted, ctx.timers.abortMs + ctx.exchangeTimeoutMs, 'the CTA to abort');
      const done = Date.now();
      const rs = ctx.proxy.since(mark);
      const reqs = apRequests(rs);
      const withheld = rs.filter((r) => r.dropped && r.data[0] === KMMID.AP_REPLY).length;
      check(reqs.length === 1 + ctx.timers.retransmitMs.length, `AP Requests on the wire: ${reqs.length}, expected ${1 + ctx.timers.retransmitMs.length}`);
      check(reqs.every((r) => ctEqual(r.data, reqs[0].data)), 'retransmitted AP Requests differ');
      check(withheld >= 1, 'the SC sent no AP Reply to withhold');
      check(c(s1).sessionsEstablished === est0, 'the CTA established a session without an AP Reply');
      const sinceFirst = done - reqs[0].at;
      check(sinceFirst + 20 >= ctx.timers.abortMs, `aborted ${sinceFirst} ms after the first AP Request, before ${ctx.timers.abortMs} ms`);
      const gaps = reqs.slice(1).map((r) => r.at - reqs[0].at);
      ctx.proxy.filter = null;
      // The SC sent AP Replies and got no SA Recovered: once its SA Recovered timeout passes
      // it wakes the CTA again. Wait for that exchange here, so it cannot land in a later
      // scenario (on a slower target it reached client-initiated as "a Wake Up was sent").
      const again = await established(ctx, ctx.saRecoveredTimeoutMs + ctx.exchangeTimeoutMs, 'the SC to wake the CTA again after the exchange without SA Recovered');
      await sessionCounted(ctx, s1);
      return {
        details: [
          `${withheld} AP Reply(s) withheld; retransmits at +${gaps.join('/+')} ms; abort seen ${sinceFirst} ms after the first AP Request (timeout ${ctx.timers.abortMs} ms)`,
          `the SC woke the CTA again after its SA Recovered timeout: established in ${again.latencyMs} ms`,
        ],
      };
    } finally {
      ctx.proxy.filter = null;
    }
  },
};

const lostPacket: Scenario = {
  name: 'lost-ap-request',
  title: 'first AP Request lost -> the CTA retransmits the same bytes and completes',
  async run(ctx) {
    const s0 = await idle(ctx);
    let lost: Relayed | null = null;
    const mark = ctx.proxy.total;
    ctx.proxy.filter = (d, dir) => {
      if (!lost && dir === 'cta->sc' && d[0] === KMMID.AP_REQUEST) {
        lost = { dir, at: Date.now(), data: d, dropped: true, injected: false };
        return false;
      }
      return true;
    };
    try {
      await wakeEstablished(ctx, ctx.exchangeTimeoutMs + ctx.timers.abortMs);
      const s1 = await sessionCounted(ctx, s0);
      const rs = ctx.proxy.since(mark);
      const reqs = apRequests(rs);
      check(lost !== null, 'no AP Request was seen');
      const passed = reqs.find((r) => !r.dropped);
      check(passed, 'no AP Request reached the SC');
      check(ctEqual(passed.data, (lost as Relayed).data), 'the retransmitted AP Request is not byte-identical to the lost one');
      check(c(s1).retransmits > c(s0).retransmits, 'the CTA counted no retransmission');
      return { details: [`retransmitted ${passed.at - (lost as Relayed).at} ms after the lost one (timer ${ctx.timers.retransmitMs[0]} ms), identical bytes, established`] };
    } finally {
      ctx.proxy.filter = null;
    }
  },
};

const clientInitiated: Scenario = {
  name: 'client-initiated',
  title: 'client-initiated session (nonce 0) at boot, accepted by SC policy',
  async run(ctx) {
    const ci0 = scMetric(ctx.sc, 'cta_sc_exchanges_total', 'established_client_initiated');
    const mark = ctx.proxy.total;
    const est = established(ctx, ctx.exchangeTimeoutMs * 2, 'a client-initiated session');
    await ctx.reprovision({ clientInitiatedOnBoot: true });
    const e = await est;
    const s1 = await until(ctx, (s) => s.scs[0]?.state === 'established', ctx.exchangeTimeoutMs, 'the CTA to report its SA');
    const rs = ctx.proxy.since(mark);
    const reqs = rs.filter((r) => r.dir === 'cta->sc' && r.data[0] === KMMID.AP_REQUEST && !r.dropped);
    check(e.clientInitiated, 'the SC did not see a client-initiated session');
    check(reqs.length >= 1 && nonceOf(reqs[0].data) === 0, 'the AP Request did not carry nonce 0');
    check(kinds(rs, 'sc->cta').indexOf(KMMID.WAKE_UP) < 0, 'a Wake Up was sent');
    check(c(s1).clientInitiated >= 1, 'the CTA counted no client-initiated session');
    check(scMetric(ctx.sc, 'cta_sc_exchanges_total', 'established_client_initiated') > ci0, 'SC metric established_client_initiated did not move');
    return { details: [`rebooted with clientInitiatedOnBoot; wire: ${seq(rs)}`] };
  },
};

const rekey: Scenario = {
  name: 'rekey',
  title: 'Rekey (authenticated trigger) -> AP Request with the cached ticket -> new SA',
  async run(ctx) {
    await ensureEstablished(ctx);
    const s0 = await idle(ctx);
    const spi0 = s0.scs[0].sa?.scSpi;
    const mark = ctx.proxy.total;
    const est = established(ctx, ctx.exchangeTimeoutMs);
    const how = ctx.sc.rekey(ctx.ctaPrincipal);
    check(how === 'rekey', `the SC sent a ${how}, not a Rekey (no session key held)`);
    const e = await est;
    const s1 = await sessionCounted(ctx, s0);
    const rs = ctx.proxy.since(mark);
    check(kinds(rs, 'sc->cta')[0] === KMMID.REKEY, `expected a Rekey first, saw: ${seq(rs)}`);
    check(c(s1).rekeysAccepted === c(s0).rekeysAccepted + 1, 'the CTA did not accept the Rekey');
    check(c(s1).asExchanges === c(s0).asExchanges, 'the CTA went to the KDC for a Rekey');
    check(s1.scs[0].sa?.scSpi === e.scSpi && e.scSpi !== spi0, 'the SA was not replaced');
    return { details: [`Rekey -> new SA in ${e.latencyMs} ms, no KDC trip; wire: ${seq(rs)}`] };
  },
};

const SKEW_MS = 400_000;

const clockSkew: Scenario = {
  name: 'clock-skew',
  title: 'device clock 400 s ahead (> 300 s): KRB_AP_ERR_SKEW, the CTA adopts the offset once and completes',
  async run(ctx) {
    await ensureEstablished(ctx);
    const s0 = await idle(ctx);
    const e37 = scMetric(ctx.sc, 'cta_sc_error_replies_total', '37');
    await ctx.device.setClockOffset(SKEW_MS);
    const details: string[] = [];
    try {
      const e = await wakeEstablished(ctx, ctx.exchangeTimeoutMs);
      const s1 = await sessionCounted(ctx, s0);
      check(c(s1).skewAdopted - c(s0).skewAdopted === 1, `skew adopted ${c(s1).skewAdopted - c(s0).skewAdopted} times, expected once`);
      check(scMetric(ctx.sc, 'cta_sc_error_replies_total', '37') > e37 || c(s1).asExchanges > c(s0).asExchanges, 'no KRB_AP_ERR_SKEW from the SC (or the KDC)');
      check(Math.abs(s1.clockOffsetMs + SKEW_MS) < 5000, `adopted offset ${s1.clockOffsetMs} ms, expected about ${-SKEW_MS}`);
      details.push(`offset adopted ${s1.clockOffsetMs} ms, established in ${e.latencyMs} ms`);
    } finally {
      await ctx.device.setClockOffset(0);
    }
    // Back to the right time: the CTA recovers the same way (its offset is now wrong the other way).
    const s2 = await idle(ctx);
    await wakeEstablished(ctx, ctx.exchangeTimeoutMs);
    const s3 = await until(ctx, (s) => c(s).sessionsEstablished > c(s2).sessionsEstablished, ctx.exchangeTimeoutMs, 'the CTA to count the session');
    // (Its authenticator times never go backwards, so it may not need to re-adopt yet.)
    details.push(`clock restored: still completes (CTA offset ${s3.clockOffsetMs} ms, skew adopted ${c(s3).skewAdopted - c(s2).skewAdopted} more time(s))`);
    return { details };
  },
};

const flood: Scenario = {
  name: 'wake-up-flood',
  title: 'Wake Up flood: device memory flat, every datagram dropped and counted, then a legitimate Wake Up succeeds',
  async run(ctx) {
    // A fresh exchange: its AP Reply, replayed through the proxy (from the SC's provisioned
    // address and port), is the in-band marker below.
    await idle(ctx);
    const mark0 = ctx.proxy.total;
    await wakeEstablished(ctx, ctx.exchangeTimeoutMs, 'a preparatory exchange');
    await until(ctx, (x) => x.scs[0]?.state === 'established', ctx.exchangeTimeoutMs, 'the CTA to report its SA');
    const apRep = ctx.proxy.since(mark0).filter((r) => r.dir === 'sc->cta' && !r.dropped && r.data[0] === KMMID.AP_REPLY).pop();
    check(apRep !== undefined, 'no AP Reply seen for the preparatory exchange');
    const s0 = await idle(ctx);
    const m0 = await ctx.device.memory();
    ctx.memory.push({ label: 'before flood', m: m0 });
    const a = dgram.createSocket('udp4');
    const b = dgram.createSocket('udp4');
    await new Promise<void>((r) => a.bind({ port: 0, address: '127.0.0.1' }, () => r()));
    // Another loopback address for Wake Ups from the wrong host (Linux routes all of 127/8).
    let wrongHost = true;
    await new Promise<void>((r) => {
      b.once('error', () => {
        wrongHost = false;
        r();
      });
      b.bind({ port: 0, address: '127.0.0.2' }, () => r());
    });
    const evil = encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 1, serverPrincipal: 'sc/evil.example.net@EVIL.NET' });
    const zero = encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0, serverPrincipal: ctx.scPrincipal });
    const sent = [0, 0, 0, 0];
    const port = ctx.device.kmPort;
    // Flow control in band, without touching the device's console (on the Espruino Linux
    // build, console input during a UDP burst corrupts its IO queue): after every batch the
    // preparatory exchange's AP Reply is replayed through the proxy; the CTA answers a
    // repeated AP Reply with its SA Recovered again -- the sign that it has worked through
    // the batch before it. Every 50th datagram is a spoofed Wake Up from the SC's host with
    // the right principal and a fresh nonce, but not from the SC's provisioned port: the CTA
    // drops it (wrong_address) instead of answering the flooder with an AP Request.
    const batch = 50;
    const t0 = Date.now();
    let lostBatches = 0;
    let stalledAt = -1;
    let markers = 0;
    try {
      for (let i = 0; i < ctx.floodCount; ) {
        const end = Math.min(ctx.floodCount, i + batch);
        const jobs: Promise<void>[] = [];
        for (; i < end; i++) {
          let k = i % batch === batch - 1 ? 3 : i % 3;
          if (k === 2 && !wrongHost) k = 0;
          sent[k]++;
          const msg = k === 0 ? evil : k === 1 ? zero : encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0x10000 + i, serverPrincipal: ctx.scPrincipal });
          const sock = k === 2 ? b : a;
          jobs.push(new Promise((r) => sock.send(msg, port, '127.0.0.1', () => r())));
        }
        await Promise.all(jobs);
        const answered = ctx.proxy.waitFor((r) => r.dir === 'cta->sc' && r.data[0] === KMMID.SA_RECOVERED, ctx.exchangeTimeoutMs);
        markers++;
        ctx.proxy.inject(apRep!.data);
        if (!(await answered)) {
          lostBatches++;
          // Two batches in a row without an answer: the device has stopped taking datagrams.
          if (lostBatches >= 2) {
            stalledAt = i;
            break;
          }
        } else lostBatches = 0;
      }
    } finally {
      a.close();
      if (wrongHost) b.close();
    }
    const floodMs = Date.now() - t0;
    // Let the last session (if any) run out, then read memory back.
    const s1 = await idle(ctx);
    const m1 = await ctx.device.memory();
    ctx.memory.push({ label: 'after flood', m: m1 });
    const rx = c(s1).rx - c(s0).rx;
    const d = (r: string) => drops(s1, r) - drops(s0, r);
    const accepted = c(s1).wakeUps - c(s0).wakeUps;
    const accounted = d('unknown_sc') + d('nonce_zero') + d('wrong_address') + d('table_full') + d('busy') + d('rate_limited') + accepted + markers;
    check(stalledAt < 0, `the device stopped answering during the flood: no SA Recovered for the in-band markers after ${stalledAt} datagrams (it received ${rx})`);
    check(d('internal') === 0, `${d('internal')} internal errors on the device`);
    check(rx >= (ctx.floodCount + markers) * 0.99, `the device received only ${rx} of ${ctx.floodCount + markers} datagrams`);
    check(accounted === rx, `received ${rx} datagrams, but only ${accounted} were counted as dropped, accepted or markers`);
    // The CTA is provisioned with the SC's HOST:PORT, so everything from another port is dropped
    // first, as wrong_address, before its principal or nonce is read.
    const flooded = sent[0] + sent[1] + (wrongHost ? sent[2] : 0) + sent[3];
    check(d('wrong_address') >= flooded * 0.99, `wrong_address ${d('wrong_address')}/${flooded} (unknown_sc ${d('unknown_sc')}, nonce_zero ${d('nonce_zero')})`);
    check(accepted === 0, `${accepted} spoofed Wake Up(s) from a port other than the SC's were answered`);
    check(s1.slotsInUse <= s1.slots, 'session table over its size');
    const grew = m1.usage - m0.usage;
    const bound = Math.max(48, Math.ceil(m0.total * 0.02));
    check(grew <= bound, `device memory grew by ${grew} variables (bound ${bound})`);
    // A legitimate Wake Up then succeeds.
    const e = await wakeEstablished(ctx, ctx.exchangeTimeoutMs);
    await until(ctx, (s) => c(s).sessionsEstablished > c(s1).sessionsEstablished, ctx.exchangeTimeoutMs, 'the CTA to count the session');
    return {
      details: [
        `sent ${ctx.floodCount} in ${floodMs} ms (unknown SC ${sent[0]}, nonce 0 ${sent[1]}, wrong host ${wrongHost ? sent[2] : 'n/a'}, spoofed from the wrong port ${sent[3]}) and ${markers} markers; device received ${rx}, accepted ${accepted}${lostBatches ? `, ${lostBatches} batch marker(s) unanswered` : ''}`,
        `device memory usage ${m0.usage} -> ${m1.usage} of ${m1.total} variables (${grew >= 0 ? '+' : ''}${grew}, bound ${bound})`,
        `legitimate Wake Up after the flood: established in ${e.latencyMs} ms`,
      ],
    };
  },
};

const socketStall: Scenario = {
  name: 'socket-stall',
  title: "the CTA's UDP socket stops delivering mid-exchange: the CTA aborts at its usual timeout and re-creates the socket; the SC's next Wake Up completes on it",
  unavailable: (device) =>
    device.stallKmSocket ? null : "the stall is injected into the emulator's UDP socket; this target's network stack cannot be made to stop delivering from here",
  async run(ctx) {
    await ensureEstablished(ctx);
    const s0 = await idle(ctx);
    const r0 = c(s0).socketsRecreated ?? 0;
    // The CTA lets at most 4 triggers per second per SC through: a second of quiet first, so
    // the scenarios before this one cannot have used up the current one. (Placed before
    // clock-skew in the suite: after the device clock has been set back, the CTA's trigger
    // window does not restart until the clock passes its start again.)
    await sleep(1000);
    const mark = ctx.proxy.total;
    // The socket wedges as the CTA's AP Request passes the proxy: the Wake Up got through, and
    // every answer to it (the AP Reply, again for each retransmission) is lost in the socket.
    let stall: { sockets: number; dropped: number } | null = null;
    ctx.proxy.filter = (d, dir) => {
      if (!stall && dir === 'cta->sc' && d[0] === KMMID.AP_REQUEST) stall = ctx.device.stallKmSocket!(0);
      return true;
    };
    try {
      ctx.sc.wake(ctx.ctaPrincipal);
      // The stalled exchange ends as any unanswered one does, at the CTA's abort timeout; the
      // socket, quiet since the AP Request left, is re-created as it ends.
      const s1 = await until(ctx, (s) => c(s).sessionsAborted > c(s0).sessionsAborted, ctx.timers.abortMs + ctx.exchangeTimeoutMs, 'the CTA to abort the stalled exchange').catch(async (err: Error) => {
        throw new Check(`${err.message}; wire: ${seq(ctx.proxy.since(mark))}; stalled ${stall ? (stall as { dropped: number }).dropped : 'never'}`);
      });
      const done = Date.now();
      const reqs = apRequests(ctx.proxy.since(mark));
      const st = stall as { sockets: number; dropped: number } | null;
      check(st !== null && st.sockets === 1, `the stall was not injected into one socket (${st ? st.sockets : 'no AP Request seen'})`);
      check(st.dropped >= 1, 'the stalled socket dropped nothing: the SC sent no AP Reply into it');
      const recreated = (c(s1).socketsRecreated ?? 0) - r0;
      check(recreated === 1, `socketsRecreated +${recreated} at the abort, expected +1`);
      check(c(s1).sessionsEstablished === c(s0).sessionsEstablished, 'the CTA established a session through the stalled socket');
      check(reqs.length === 1 + ctx.timers.retransmitMs.length, `AP Requests on the wire: ${reqs.length}, expected ${1 + ctx.timers.retransmitMs.length} (no retry: the protocol's timers are unchanged)`);
      check(reqs.every((r) => ctEqual(r.data, reqs[0].data)), 'retransmitted AP Requests differ');
      check(c(s1).retransmits - c(s0).retransmits === ctx.timers.retransmitMs.length, `retransmissions: ${c(s1).retransmits - c(s0).retransmits}, expected ${ctx.timers.retransmitMs.length}`);
      const sinceFirst = done - reqs[0].at;
      check(sinceFirst + 20 >= ctx.timers.abortMs, `aborted ${sinceFirst} ms after the first AP Request, before ${ctx.timers.abortMs} ms`);
      const lost = st.dropped;
      // The SC got no SA Recovered: after its timeout it wakes the CTA again. That Wake Up and
      // the exchange it starts reach the CTA only on the re-created socket (the stalled one
      // stays stalled: without the re-creation this times out).
      const mark2 = ctx.proxy.total;
      const e = await established(ctx, ctx.saRecoveredTimeoutMs + ctx.exchangeTimeoutMs, "the SC's next Wake Up to complete on the re-created socket").catch(async (err: Error) => {
        throw new Check(`${err.message}; wire: ${seq(ctx.proxy.since(mark2))}; dropped in the stalled socket ${(stall as { dropped: number }).dropped}`);
      });
      const s2 = await until(ctx, (s) => c(s).sessionsEstablished > c(s1).sessionsEstablished && s.scs[0]?.state === 'established', ctx.exchangeTimeoutMs, 'the CTA to count the session');
      check(s2.scs[0].sa!.scSpi === e.scSpi, 'SPIs differ between the CTA and the SC');
      check((c(s2).socketsRecreated ?? 0) - r0 === 1, `socketsRecreated +${(c(s2).socketsRecreated ?? 0) - r0} after the next exchange, expected +1`);
      return {
        details: [
          `socket stalled at the AP Request: ${lost} datagram(s) lost in it; ${reqs.length} identical AP Request(s); abort seen ${sinceFirst} ms after the first (timeout ${ctx.timers.abortMs} ms), socketsRecreated +${recreated}`,
          `the SC woke the CTA again after its SA Recovered timeout: established on the re-created socket in ${e.latencyMs} ms (socketsRecreated now ${c(s2).socketsRecreated})`,
        ],
      };
    } finally {
      ctx.proxy.filter = null;
    }
  },
};

/**
 * Issue 13 item 4 on the target: Wake Ups forged from the SC's host (the right principal,
 * fresh nonces, another port) stream in at about 200 a second while the SC wakes the CTA.
 * The CTA was provisioned with the SC's HOST:PORT, so it drops every forged one
 * (wrong_address) and the genuine exchange completes on its first Wake Up.
 */
const forgedStream: Scenario = {
  name: 'forged-wake-stream',
  title: 'Wake Ups forged from the SC host at ~200/s (or half what the device can drop): the genuine exchange completes on its first Wake Up, none forged is answered',
  async run(ctx) {
    const idle0 = await idle(ctx);
    const attacker = dgram.createSocket('udp4');
    await new Promise<void>((r) => attacker.bind({ port: 0, address: '127.0.0.1' }, () => r()));
    const forged = (n: number) => encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0x20000000 + n, serverPrincipal: ctx.scPrincipal });
    // How fast this device drops them: 100 at once, timed until counted. A stream faster than
    // that only queues up in front of the genuine Wake Up (no CTA design can help then), so the
    // stream runs at 200/s or at half the measured rate, whichever is lower, and says which.
    const tp = Date.now();
    for (let i = 0; i < 100; i++) attacker.send(forged(1000000 + i), ctx.device.kmPort, '127.0.0.1');
    const s0 = await until(ctx, (s) => drops(s, 'wrong_address') - drops(idle0, 'wrong_address') >= 100, ctx.exchangeTimeoutMs * 4, 'the CTA to drop 100 forged Wake Ups');
    const dropRate = Math.round(100000 / Math.max(1, Date.now() - tp));
    const rate = Math.min(200, Math.floor(dropRate / 2));
    const answeredToAttacker: number[] = [];
    attacker.on('message', (m) => answeredToAttacker.push(m[0]));
    const wakes: number[] = [];
    const onWake = (w: { principal: string; attempt: number }) => {
      if (w.principal === ctx.ctaPrincipal) wakes.push(w.attempt);
    };
    let flooding = true;
    let sent = 0;
    const stream = (async () => {
      // `rate` per second, in steps of 10 ms.
      const t0 = Date.now();
      while (flooding) {
        const due = Math.floor(((Date.now() - t0) * rate) / 1000);
        while (sent < due) attacker.send(forged(sent++), ctx.device.kmPort, '127.0.0.1');
        await sleep(10);
      }
    })();
    let latency: number | null = null;
    const mark = ctx.proxy.total;
    try {
      await sleep(500); // the stream is well under way
      ctx.sc.on('wake', onWake);
      const e = await wakeEstablished(ctx, ctx.exchangeTimeoutMs, 'the genuine exchange under the forged stream');
      latency = e.latencyMs;
      await sleep(200);
    } finally {
      flooding = false;
      await stream;
      ctx.sc.off('wake', onWake);
      attacker.close();
    }
    const s1 = await sessionCounted(ctx, s0);
    check(wakes.length === 1 && wakes[0] === 0, `the SC sent Wake Up attempts [${wakes.join(', ')}]: the genuine exchange needed a retry`);
    const reqs = apRequests(ctx.proxy.since(mark));
    check(reqs.length === 1, `${reqs.length} AP Requests reached the SC (expected the one genuine answer)`);
    check(answeredToAttacker.length === 0, `${answeredToAttacker.length} datagrams went back to the forger`);
    const dropped = drops(s1, 'wrong_address') - drops(s0, 'wrong_address');
    check(dropped >= 1, 'no forged Wake Up was counted as wrong_address');
    check(c(s1).wakeUps - c(s0).wakeUps === 1, `${c(s1).wakeUps - c(s0).wakeUps} Wake Ups taken (only the genuine one should be)`);
    return {
      details: [
        `device drops forged Wake Ups at about ${dropRate}/s; stream at ${rate}/s${rate < 200 ? ' (half of that: this target is slower than 200/s)' : ''}: ${sent} sent, ${dropped} counted as wrong_address; genuine exchange established on its first Wake Up in ${latency} ms`,
      ],
    };
  },
};

/** Test-only: an expectation no CTA can meet (checks that a failure fails the run). */
const impossible: Scenario = {
  name: 'impossible',
  title: 'test-only: expects an AP Reply to a nonce-0 Wake Up',
  testOnly: true,
  async run(ctx) {
    const mark = ctx.proxy.total;
    ctx.proxy.inject(encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0, serverPrincipal: ctx.scPrincipal }));
    const r = await ctx.proxy.waitFor((x) => x.dir === 'sc->cta' && x.data[0] === KMMID.AP_REPLY, 300);
    check(r !== null, `no AP Reply (as it should be); wire: ${seq(ctx.proxy.since(mark))}`);
    return { details: [] };
  },
};

export const SCENARIOS: Scenario[] = [happyPath, falseNonce, nonceZero, replyWithheld, lostPacket, socketStall, clientInitiated, rekey, clockSkew, forgedStream, flood, impossible];
