// CTA agent timers (fake clock): retransmission and abort of a solicited AP Request
// (claim 16), client-initiated sessions on boot and near SA expiry with backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeWorld } from './helpers/mini-sc.ts';
import * as P from '../firmware/proto/pktc.ts';
import { toHex } from '../firmware/proto/bytes.ts';

const CTA = '10.0.0.2';

function apRequestsSent(w: ReturnType<typeof makeWorld>) {
  return w.net.sentFrom(CTA, 1293).filter((p) => p.data[0] === P.KMMID.AP_REQUEST);
}

test('unanswered AP Request: the same bytes again at 1 s and 2 s, abort at 3 s (claim 16)', () => {
  const w = makeWorld();
  w.sc.wakeUp(); // fetch and cache the ticket
  w.sc.silent = 1000;
  const t0 = w.clock.now();
  w.sc.wakeUp();
  const at = () => apRequestsSent(w).slice(1);
  assert.equal(at().length, 1);
  w.clock.advance(999);
  assert.equal(at().length, 1);
  w.clock.advance(1);
  assert.equal(at().length, 2);
  w.clock.advance(999);
  assert.equal(at().length, 2);
  w.clock.advance(1);
  assert.equal(at().length, 3);
  const bytes = at().map((p) => toHex(p.data));
  assert.equal(bytes[1], bytes[0], 'retransmission is byte-identical');
  assert.equal(bytes[2], bytes[0], 'retransmission is byte-identical');
  assert.equal(w.agent.status().scs[0].state, 'ap_req_sent');
  w.clock.advance(999);
  assert.equal(w.agent.counters.sessionsAborted, 0);
  w.clock.advance(1);
  assert.equal(w.clock.now() - t0, 3000);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  assert.equal(w.agent.counters.retransmits, 2);
  // The first exchange's SA is still in force: the failed re-key does not hide it.
  assert.equal(w.agent.status().scs[0].state, 'established');
  assert.ok(w.agent.status().scs[0].sa);
  assert.equal(w.agent.table.inUse(), 0);
  w.clock.advance(60000);
  assert.equal(at().length, 3, 'nothing more after the abort');
});

test('an unanswered first exchange (no SA yet) ends in state aborted', () => {
  const w = makeWorld();
  w.sc.silent = 1000;
  w.sc.wakeUp();
  assert.equal(w.agent.status().scs[0].state, 'ap_req_sent');
  w.clock.advance(3000);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  assert.equal(w.agent.status().scs[0].state, 'aborted');
  assert.equal(w.agent.status().scs[0].sa, null);
  assert.equal(w.agent.table.inUse(), 0);
});

test('a retransmission answered by the SC completes the session (idempotent AP Reply)', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  w.sc.silent = 1; // the first AP Request is lost on the way back
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  w.clock.advance(1000);
  assert.equal(w.agent.counters.retransmits, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  w.clock.advance(5000);
  assert.equal(w.agent.counters.sessionsAborted, 0);
});

test('timers are configurable: retransmit at 300 ms, abort at 800 ms', () => {
  const w = makeWorld({ timers: { retransmitMs: [300], abortMs: 800 } });
  w.sc.wakeUp();
  w.sc.silent = 1000;
  w.sc.wakeUp();
  const n0 = apRequestsSent(w).length;
  w.clock.advance(300);
  assert.equal(apRequestsSent(w).length, n0 + 1);
  w.clock.advance(499);
  assert.equal(w.agent.counters.sessionsAborted, 0);
  w.clock.advance(1);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  assert.equal(apRequestsSent(w).length, n0 + 1);
});

test('client-initiated session on boot: AP Request with nonce 0, accepted, SA established', () => {
  const w = makeWorld({ clientInitiatedOnBoot: true });
  w.clock.advance(0);
  const reqs = apRequestsSent(w);
  assert.equal(reqs.length, 1);
  assert.equal(P.decodeApRequest(reqs[0].data).serverNonce, 0);
  assert.equal(w.agent.counters.clientInitiated, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  assert.equal(w.sc.saRecovered, 1);
  // Without the option the agent waits for a Wake Up.
  const w2 = makeWorld();
  w2.clock.advance(10000);
  assert.equal(apRequestsSent(w2).length, 0);
});

test('client-initiated retries back off exponentially with jitter, then give up', () => {
  const w = makeWorld({ clientInitiatedOnBoot: true, timers: { unsolicitedBaseMs: 500, unsolicitedRetries: 5 } });
  w.sc.silent = 1000;
  w.clock.advance(0);
  for (let i = 0; i < 200; i++) w.clock.advance(500);
  const times = apRequestsSent(w).map((p, i) => i); // count
  assert.equal(times.length, 6, '1 + 5 retries');
  assert.equal(w.agent.counters.sessionsAborted, 1);
  // Intervals: base * 2^k * [0.75, 1.25], measured from the send log.
  const w2 = makeWorld({ clientInitiatedOnBoot: true, timers: { unsolicitedBaseMs: 500, unsolicitedRetries: 5 } });
  w2.sc.silent = 1000;
  const sendTimes: number[] = [];
  w2.net.filter = (p) => {
    if (p.from === CTA && p.data[0] === P.KMMID.AP_REQUEST) sendTimes.push(w2.clock.now());
    return true;
  };
  w2.clock.advance(0);
  for (let i = 0; i < 1000; i++) w2.clock.advance(50);
  assert.equal(sendTimes.length, 6);
  for (let k = 1; k < sendTimes.length; k++) {
    const d = sendTimes[k] - sendTimes[k - 1];
    const nominal = 500 * Math.pow(2, k - 1);
    assert.ok(d >= nominal * 0.75 - 50 && d <= nominal * 1.25 + 50, `interval ${k}: ${d} ms vs nominal ${nominal}`);
  }
  // All retries resend the same bytes (same authenticator: the SC treats them as one).
  const bytes = w2.net.sentFrom(CTA, 1293).filter((p) => p.data[0] === 2).map((p) => toHex(p.data));
  assert.equal(new Set(bytes).size, 1);
});

test('SA near expiry without a server trigger: client-initiated session at lifetime - grace/2', () => {
  const w = makeWorld();
  w.sc.saLifetime = 100;
  w.sc.gracePeriod = 20;
  w.sc.wakeUp();
  const spi1 = w.agent.status().scs[0].sa!.ctaSpi;
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  w.clock.advance(89000);
  assert.equal(w.agent.counters.clientInitiated, 0);
  w.clock.advance(1000);
  assert.equal(w.agent.counters.clientInitiated, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  const last = w.sc.apRequests[w.sc.apRequests.length - 1].msg;
  assert.equal(last.serverNonce, 0);
  assert.equal(last.reestablish, true);
  const st = w.agent.status().scs[0];
  assert.notEqual(st.sa!.ctaSpi, spi1);
  assert.equal(st.sa!.expiresAt, w.clock.now() + 100000);
});

test('SA near expiry, SC silent: client retries back off; the SA expires and is dropped', () => {
  const w = makeWorld({ timers: { unsolicitedBaseMs: 500, unsolicitedRetries: 2 } });
  w.sc.saLifetime = 100;
  w.sc.gracePeriod = 20;
  w.sc.wakeUp();
  w.sc.silent = 1000;
  w.clock.advance(90000);
  assert.equal(w.agent.counters.clientInitiated, 1);
  for (let i = 0; i < 20; i++) w.clock.advance(500);
  assert.ok(w.agent.counters.clientInitiated >= 2, 'tries again after the first attempt gave up');
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  w.clock.advance(20000);
  const st = w.agent.status().scs[0];
  assert.equal(st.sa, null);
  assert.equal(w.agent.counters.saExpired, 1);
  const attempts = w.agent.counters.clientInitiated;
  w.clock.advance(600000);
  assert.equal(w.agent.counters.clientInitiated, attempts, 'no more attempts once the SA is gone');
});

test('a Rekey from the SC before lifetime - grace/2 makes the client-initiated session unnecessary', () => {
  const w = makeWorld();
  w.sc.saLifetime = 100;
  w.sc.gracePeriod = 20;
  w.sc.wakeUp();
  w.clock.advance(81000);
  w.sc.rekey();
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  w.clock.advance(15000);
  assert.equal(w.agent.counters.clientInitiated, 0);
});

test('after an AS exchange the AP Request goes out once the AS-REP has been handled, from a timer, not from inside its handling', () => {
  const w = makeWorld({ prefetchTicket: false });
  // Where the CTA's AP Request is sent from: the call stack at the moment it leaves.
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 100;
  let stack = '';
  w.net.filter = (p) => {
    if (p.from === CTA && p.data[0] === P.KMMID.AP_REQUEST && !stack) stack = new Error().stack ?? '';
    return true;
  };
  try {
    w.sc.wakeUp(); // no ticket yet: AS exchange, then the AP Request
  } finally {
    Error.stackTraceLimit = limit;
  }
  assert.equal(w.agent.counters.sessionsEstablished, 1, 'the exchange still completes within the same Wake Up');
  assert.ok(stack, 'an AP Request was sent');
  assert.doesNotMatch(stack, /\basEnd\b/, 'not sent from within the handling of the AS-REP');
  assert.match(stack, /advance/, 'sent from a due timer');
});
