// CTA agent against forged key-management traffic (issue 13, items 3-5): a pinned SC
// port is honoured, Wake Ups are rate-limited per SC and never displace an exchange
// awaiting its AP Reply, and an Error Reply counts only for the exchange whose
// authenticator it echoes, with the skew it carries adopted within a bound and only
// for the retry of that exchange.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeWorld, SC_PRINCIPAL, REALM } from './helpers/mini-sc.ts';
import * as P from '../firmware/proto/pktc.ts';
import * as K from '../firmware/proto/krb5.ts';

const CTA = '10.0.0.2';
const SC = '10.0.0.1';
const SNAME = K.parsePrincipal(SC_PRINCIPAL, REALM).name;

function wake(nonce: number): Uint8Array {
  return P.encodeWakeUp({ kmmid: 1, doi: 1, serverNonce: nonce, serverPrincipal: SC_PRINCIPAL });
}

/** An Error Reply (KRB-ERROR `code`, server time `stimeMs`), echoing ctime/cusec when given. */
function errorReply(code: number, stimeMs: number, ctime?: number, cusec?: number): Uint8Array {
  const err = K.encodeKrbError({ stime: Math.floor(stimeMs / 1000) * 1000, susec: (stimeMs % 1000) * 1000, errorCode: code, realm: REALM, sname: SNAME, ctime, cusec });
  return P.encodeErrorReply({ kmmid: 6, doi: 1, krbError: err });
}

type World = ReturnType<typeof makeWorld>;

/** Holds the SC's AP Replies back; returns the pending exchange's authenticator (ctime ms, cusec) and a release. */
function pendingExchange(w: World): { ctime: number; cusec: number; release(): void } {
  let hold = true;
  w.net.filter = (p) => !(hold && p.to === CTA && p.data[0] === P.KMMID.AP_REPLY);
  w.sc.wakeUp();
  assert.equal(w.agent.table.inUse(), 1, 'AP Request sent, its reply held back');
  const a = w.sc.apRequests[w.sc.apRequests.length - 1].authenticator;
  return { ctime: a.ctime, cusec: a.cusec, release: () => (hold = false) };
}

test('a pinned SC port (provisioned HOST:PORT) is honoured: Wake Ups and replies from another port are dropped, the remembered port stays', () => {
  const w = makeWorld(); // scs: 10.0.0.1:1293
  w.sc.wakeUp(); // an SA, a cached ticket
  const before = w.net.sentFrom(CTA).length;
  w.net.inject(SC, 4444, CTA, 1293, wake(0x7001));
  assert.equal(w.agent.counters.drops.wrong_address, 1);
  assert.equal(w.agent.counters.wakeUps, 1);
  assert.equal(w.net.sentFrom(CTA).length, before, 'no AP Request to the other port');
  assert.equal(w.agent.table.inUse(), 0);
  assert.equal((w.agent.scs[0] as unknown as { lp: number }).lp, 1293, 'the SC port for client-initiated sessions did not move');
  // A replayed AP Reply from another port gets no SA Recovered either.
  const rep = w.net.log.filter((p) => p.to === CTA && p.data[0] === P.KMMID.AP_REPLY).pop()!.data;
  const sr = w.agent.counters.saRecoveredSent;
  w.net.inject(SC, 4444, CTA, 1293, rep);
  assert.equal(w.agent.counters.saRecoveredSent, sr);
  w.net.inject(SC, 1293, CTA, 1293, rep);
  assert.equal(w.agent.counters.saRecoveredSent, sr + 1, 'from the SC port it is answered');
  // Without a provisioned port (address only) or with anyPort (cta sc --workers), the port is the sender's.
  for (const sc of [{ principal: SC_PRINCIPAL, address: SC }, { principal: SC_PRINCIPAL, address: SC, port: 1293, anyPort: true }]) {
    const u = makeWorld({ scs: [sc] });
    u.net.inject(SC, 4444, CTA, 1293, wake(0x7002));
    assert.equal(u.agent.counters.wakeUps, 1);
    u.clock.advance(10);
    assert.ok(u.net.sentFrom(CTA, 4444).some((p) => p.data[0] === P.KMMID.AP_REQUEST), 'answered to the sender port');
  }
});

test('Wake Ups are rate-limited per SC (counted), and a flood of 200/s costs at most one exchange per abort period', () => {
  // Rate limit: no ticket yet, the KDC silent: every Wake Up could open an exchange.
  const w = makeWorld({ scs: [{ principal: SC_PRINCIPAL, address: SC }], prefetchTicket: false });
  w.kdc.silent = 1000;
  for (let i = 0; i < 100; i++) w.net.inject(SC, 5000 + i, CTA, 1293, wake(0x8000 + i));
  assert.equal(w.agent.counters.wakeUps, 4);
  assert.equal(w.agent.counters.drops.rate_limited, 96);
  assert.equal(w.kdc.requests, 1, 'one AS exchange');
  w.clock.advance(1000);
  for (let i = 0; i < 10; i++) w.net.inject(SC, 6000 + i, CTA, 1293, wake(0x9000 + i));
  assert.equal(w.agent.counters.wakeUps, 8, 'four more in the next second');
  // A clock set back (as after set-time or a skew adopted) starts a new window at once,
  // instead of rate-limiting everything until the clock passes the old window's start.
  w.clock.t -= 400000;
  for (let i = 0; i < 10; i++) w.net.inject(SC, 7000 + i, CTA, 1293, wake(0xa000 + i));
  assert.equal(w.agent.counters.wakeUps, 12, 'four in the first second after the clock went back');

  // Bounded work: with a ticket cached, 1,000 forged Wake Ups at 200/s from the SC's address
  // (any port: the CTA was provisioned without one) over 5 s.
  const u = makeWorld({ scs: [{ principal: SC_PRINCIPAL, address: SC }] });
  u.sc.wakeUp();
  const req0 = u.agent.counters.apRequestsSent;
  const sent0 = u.net.sentFrom(CTA).length;
  for (let i = 0; i < 1000; i++) {
    u.net.inject(SC, 20000 + (i % 1000), CTA, 1293, wake(0x10000 + i));
    u.clock.advance(5);
  }
  const c = u.agent.counters;
  const exchanges = c.apRequestsSent - req0;
  assert.ok(exchanges >= 1 && exchanges <= 2, `AP Requests built: ${exchanges}`);
  assert.ok(u.net.sentFrom(CTA).length - sent0 <= 3 * exchanges, 'each with at most its two retransmissions');
  assert.equal(c.wakeUps - 1 + c.drops.busy + (c.drops.rate_limited ?? 0), 1000, 'every forged Wake Up accepted or counted');
  assert.ok(c.drops.busy >= 990);
});

test('an Error Reply counts only if it echoes the pending authenticator (ctime and cusec)', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  const pe = pendingExchange(w);
  const now = w.clock.now();
  const ten = 10 * 365 * 86400 * 1000;
  // No ctime/cusec, another ctime, another cusec, any code: ignored, from the right address and port.
  w.net.inject(SC, 1293, CTA, 1293, errorReply(K.KRB_AP_ERR_SKEW, now + ten));
  w.net.inject(SC, 1293, CTA, 1293, errorReply(K.KRB_AP_ERR_SKEW, now + ten, pe.ctime + 1000, pe.cusec));
  w.net.inject(SC, 1293, CTA, 1293, errorReply(K.KRB_AP_ERR_SKEW, now + ten, pe.ctime, (pe.cusec + 1) % 1000000));
  w.net.inject(SC, 1293, CTA, 1293, errorReply(K.KRB_AP_ERR_BAD_INTEGRITY, now));
  w.net.inject(SC, 1293, CTA, 1293, errorReply(K.KRB_AP_ERR_TKT_EXPIRED, now));
  // The right echo from another port (the SC's is pinned): ignored as well.
  w.net.inject(SC, 4444, CTA, 1293, errorReply(K.KRB_AP_ERR_SKEW, now + ten, pe.ctime, pe.cusec));
  assert.equal(w.agent.offsetMs, 0, 'the clock did not move');
  assert.equal(w.agent.counters.skewAdopted, 0);
  assert.equal(w.agent.counters.krbErrors, 0);
  assert.equal(w.agent.counters.sessionsAborted, 0);
  assert.equal(w.agent.table.inUse(), 1, 'the exchange is still pending');
  pe.release();
  w.clock.advance(1000); // the retransmission gets its AP Reply
  assert.equal(w.agent.counters.sessionsEstablished, 2);
});

test('a matching KRB_AP_ERR_SKEW is adopted only within a day, and undone when the retried exchange fails', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  // 10 years ahead, echoing the authenticator (an on-path forger): not adopted, that exchange ends.
  let pe = pendingExchange(w);
  w.net.inject(SC, 1293, CTA, 1293, errorReply(K.KRB_AP_ERR_SKEW, w.clock.now() + 10 * 365 * 86400 * 1000, pe.ctime, pe.cusec));
  assert.equal(w.agent.counters.krbErrors, 1);
  assert.equal(w.agent.counters.skewAdopted, 0);
  assert.equal(w.agent.offsetMs, 0);
  assert.equal(w.agent.table.inUse(), 0);
  pe.release();
  // An hour ahead: adopted for the retry; the SC (whose clock is right) refuses the retried
  // authenticator with its own KRB_AP_ERR_SKEW, the exchange aborts and the offset is undone.
  w.clock.advance(1000);
  pe = pendingExchange(w);
  w.net.inject(SC, 1293, CTA, 1293, errorReply(K.KRB_AP_ERR_SKEW, w.clock.now() + 3600 * 1000, pe.ctime, pe.cusec));
  assert.equal(w.agent.counters.skewAdopted, 1);
  assert.equal(w.agent.counters.sessionsAborted, 2);
  assert.equal(w.agent.offsetMs, 0, 'the unconfirmed offset was undone');
  pe.release();
  // Genuine Rekeys (the SC's right time) are still accepted, with fresh authenticators.
  w.clock.advance(1000);
  const est = w.agent.counters.sessionsEstablished;
  w.sc.rekey();
  assert.equal(w.agent.counters.rekeysAccepted, 1);
  assert.equal(w.agent.counters.sessionsEstablished, est + 1);
  const last = w.sc.apRequests[w.sc.apRequests.length - 1].authenticator;
  assert.ok(Math.abs(last.ctime - w.clock.now()) < 2000, 'the authenticator carries the right time');
});
