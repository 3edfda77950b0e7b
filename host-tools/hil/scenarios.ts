// The HIL scenario suite. Each scenario drives the real target through the SC,
// the KDC and the runner's proxy (proxy.ts), and judges by what the device reports
// back (cta.status() counters, process.memory()) and what crossed the wire. The
// protocol's scenarios are here; the stress ones in scenarios-stress.ts, what they
// share in scenario-kit.ts.
import { randomBytes } from 'node:crypto';
import { encodeWakeUp, KMMID, DOI } from '../../firmware/proto/pktc.ts';
import { ctEqual } from '../../firmware/proto/bytes.ts';
import type { Relayed } from './proxy.ts';
import { sleep } from './targets.ts';
import { check, c, drops, scMetric, until, sessionCounted, apRequests, wakeEstablished, established, kinds, nonceOf, freshFakeNonce, ensureEstablished, idle, seq } from './scenario-kit.ts';
import type { Scenario } from './scenario-kit.ts';
import { flood, socketStall, forgedStream } from './scenarios-stress.ts';
export { Check } from './scenario-kit.ts';
export type { HilTimers, ScenarioContext, ScenarioProxy, ScenarioOutcome, Scenario } from './scenario-kit.ts';

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
