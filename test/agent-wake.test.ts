// CTA agent: accepting Wake Ups, the AS exchange, the ticket cache, the AP Request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeWorld, SC_PRINCIPAL, CTA_PRINCIPAL, REALM } from './helpers/mini-sc.ts';
import * as P from '../firmware/proto/pktc.ts';
import * as K from '../firmware/proto/krb5.ts';
import { decrypt, usageHmacKey } from '../firmware/proto/crypto/index.ts';

const CTA = '10.0.0.2';

function ctaSent(w: ReturnType<typeof makeWorld>, port?: number) {
  return w.net.sentFrom(CTA, port);
}

test('Wake Up for an unknown SC principal is dropped and counted, nothing is sent', () => {
  const w = makeWorld();
  w.sc.wakeUp(undefined, 'sc/evil.example.net@' + REALM);
  w.sc.wakeUp(undefined, 'sc/sc1.example.net@OTHER.NET');
  assert.equal(w.agent.counters.drops.unknown_sc, 2);
  assert.equal(ctaSent(w).length, 0);
  assert.equal(w.kdc.requests, 0);
  assert.equal(w.agent.table.inUse(), 0);
});

test('Wake Up from an address other than the configured SC address is dropped', () => {
  const w = makeWorld();
  const wake = P.encodeWakeUp({ kmmid: 1, doi: 1, serverNonce: 77, serverPrincipal: SC_PRINCIPAL });
  w.net.inject('10.6.6.6', 1293, CTA, 1293, wake);
  assert.equal(w.agent.counters.drops.wrong_address, 1);
  assert.equal(ctaSent(w).length, 0);
  // Without a configured address the same Wake Up is accepted (the KDC is asked for a ticket).
  const w2 = makeWorld({ scs: [{ principal: SC_PRINCIPAL }] });
  w2.net.inject('10.6.6.6', 1293, CTA, 1293, wake);
  assert.equal(w2.agent.counters.drops.wrong_address, 0);
  assert.equal(w2.agent.counters.wakeUps, 1);
  assert.ok(w2.kdc.requests > 0);
});

test('Wake Up with the out-of-bounds nonce 0 is dropped before any work (claim 4)', () => {
  const w = makeWorld();
  w.sc.wakeUp(0);
  assert.equal(w.agent.counters.drops.nonce_zero, 1);
  assert.equal(w.agent.counters.wakeUps, 0);
  assert.equal(w.kdc.requests, 0);
  assert.equal(ctaSent(w).length, 0);
});

test('AS exchange: PREAUTH_REQUIRED, then PA-ENC-TIMESTAMP under the long-term key (usage 1), sname = SC', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  assert.deepEqual(w.kdc.errorsSent, [K.KDC_ERR_PREAUTH_REQUIRED]);
  assert.equal(w.kdc.issued, 1);
  const asReqs = ctaSent(w, 88).map((p) => K.decodeAsReq(p.data));
  assert.equal(asReqs.length, 2);
  assert.equal(asReqs[0].padata, undefined);
  for (const r of asReqs) {
    assert.equal(K.principalToString(r.reqBody.sname!, r.reqBody.realm), SC_PRINCIPAL);
    assert.equal(K.principalToString(r.reqBody.cname!), CTA_PRINCIPAL);
    assert.deepEqual(r.reqBody.etype, [18]);
  }
  assert.notEqual(asReqs[0].reqBody.nonce, asReqs[1].reqBody.nonce);
  const pa = K.findPaData(asReqs[1].padata, K.PA_ENC_TIMESTAMP)!;
  const ed = K.decodeEncryptedData(pa.padataValue);
  assert.equal(ed.etype, 18);
  const ts = K.decodePaEncTsEnc(decrypt(w.b, 18, w.ctaKey, 1, ed.cipher));
  assert.ok(Math.abs(ts.patimestamp - w.clock.now()) < 2000);
  const st = w.agent.status();
  assert.equal(st.scs[0].state, 'established');
  assert.equal(st.counters.ticketsCached, 1);
});

test('the ticket is cached: a second Wake Up needs no KDC trip', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  const kdcReqs = w.kdc.requests;
  w.clock.advance(60000);
  w.sc.wakeUp();
  assert.equal(w.kdc.requests, kdcReqs);
  assert.equal(w.sc.apRequests.length, 2);
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  // Same ticket bytes in both AP-REQs, different authenticators.
  const t0 = K.ticketDer(w.sc.apRequests[0].msg.apReq);
  const t1 = K.ticketDer(w.sc.apRequests[1].msg.apReq);
  assert.deepEqual(t0, t1);
  assert.notDeepEqual(w.sc.apRequests[0].msg.apReq, w.sc.apRequests[1].msg.apReq);
});

test('a ticket near its end is refreshed before use', () => {
  const w = makeWorld({ timers: { ticketRefreshMarginSec: 120 } });
  w.kdc.ticketLifetimeMs = 600000;
  w.sc.wakeUp();
  assert.equal(w.kdc.issued, 1);
  w.clock.advance(600000 - 119000);
  w.sc.wakeUp();
  assert.equal(w.kdc.issued, 2);
  assert.equal(w.agent.counters.sessionsEstablished, 2);
});

test('KRB_AP_ERR_TKT_EXPIRED from the SC: fresh ticket from the KDC and retry, only once', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  assert.equal(w.kdc.issued, 1);
  w.sc.failNext = K.KRB_AP_ERR_TKT_EXPIRED;
  const n = w.sc.wakeUp();
  assert.equal(w.kdc.issued, 2, 'a new ticket was fetched');
  assert.equal(w.agent.counters.ticketRefreshes, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  const last = w.sc.apRequests[w.sc.apRequests.length - 1].msg;
  assert.equal(last.serverNonce, n, 'the retry still echoes the Wake Up nonce');
  // A second TKT_EXPIRED for the same session aborts instead of looping.
  w.sc.alwaysFail = K.KRB_AP_ERR_TKT_EXPIRED;
  w.sc.wakeUp();
  assert.equal(w.kdc.issued, 3);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  // The failed re-key leaves the previous SA in force, and the state says so.
  assert.equal(w.agent.status().scs[0].state, 'established');
  assert.ok(w.agent.status().scs[0].sa, 'the previous SA is kept');
  assert.equal(w.agent.table.inUse(), 0);
});

test('KRB_AP_ERR_SKEW from the SC: adopt the stime offset once and retry', () => {
  const w = makeWorld();
  w.sc.offsetMs = 3600 * 1000; // the SC's clock is an hour ahead of the CTA's
  w.kdc.offsetMs = 100000; // the KDC is within the 300 s skew of the CTA
  w.sc.wakeUp();
  assert.equal(w.agent.counters.skewAdopted, 1);
  assert.ok(Math.abs(w.agent.offsetMs - 3600 * 1000) < 2000, 'offset adopted: ' + w.agent.offsetMs);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  const auths = w.sc.apRequests.map((r) => r.authenticator.ctime);
  assert.equal(auths.length, 2);
  assert.ok(Math.abs(auths[1] - w.sc.now()) < 2000);
});

test('KRB_AP_ERR_SKEW twice in one session: adopted once, then the session is aborted', () => {
  const w = makeWorld();
  w.sc.wakeUp(); // ticket cached
  w.sc.alwaysFail = K.KRB_AP_ERR_SKEW;
  w.sc.wakeUp();
  assert.equal(w.agent.counters.skewAdopted, 1);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  assert.equal(w.sc.apRequests.length, 3);
});

test('KRB_AP_ERR_SKEW from the KDC: adopt its stime and pre-authenticate again', () => {
  const w = makeWorld();
  w.kdc.offsetMs = -2 * 3600 * 1000;
  w.sc.offsetMs = -2 * 3600 * 1000;
  w.sc.wakeUp();
  assert.deepEqual(w.kdc.errorsSent, [K.KDC_ERR_PREAUTH_REQUIRED, K.KRB_AP_ERR_SKEW]);
  assert.equal(w.kdc.issued, 1);
  assert.equal(w.agent.counters.skewAdopted, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});

test('KRB_AP_ERR_SKEW from the KDC is unauthenticated: a forged one moves the clock only until the AS exchange fails', () => {
  // No ticket prefetch: its randomly timed AS exchange would add a second KDC failure.
  const w = makeWorld({ timers: { kdcTimeoutMs: 1000, kdcRetries: 1 }, prefetchTicket: false });
  w.kdc.silent = 1000; // the real KDC never answers; only the forger does
  w.sc.wakeUp();
  const asReq = w.net.log.filter((p) => p.to === '10.0.0.3' && p.toPort === 88).pop()!;
  const tenYears = 10 * 365 * 86400 * 1000;
  const stime = w.clock.now() + tenYears;
  const sname = K.decodeAsReq(asReq.data).reqBody.sname!;
  const forged = K.encodeKrbError({ stime: Math.floor(stime / 1000) * 1000, susec: 0, errorCode: K.KRB_AP_ERR_SKEW, realm: REALM, sname });
  w.net.inject('10.0.0.3', 88, asReq.from, asReq.fromPort, forged);
  assert.equal(w.agent.counters.skewAdopted, 1, 'adopted for the retry');
  assert.ok(w.agent.offsetMs > tenYears - 5000, 'offset during the retry: ' + w.agent.offsetMs);
  w.clock.advance(10000);
  assert.equal(w.agent.counters.kdcFailures, 1);
  assert.ok(Math.abs(w.agent.offsetMs) < 5000, 'the clock went back when no AS-REP confirmed it: ' + w.agent.offsetMs);
});

test('KRB_AP_ERR_SKEW from the KDC, then its AS-REP: the authenticated authtime sets the clock', () => {
  const w = makeWorld();
  w.kdc.offsetMs = -2 * 3600 * 1000;
  w.sc.offsetMs = -2 * 3600 * 1000;
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  assert.ok(Math.abs(w.agent.offsetMs + 2 * 3600 * 1000) < 2000, 'offset from the AS-REP: ' + w.agent.offsetMs);
});

test('KDC unreachable: AS-REQ retransmitted, then the pending session aborts', () => {
  const w = makeWorld({ timers: { kdcTimeoutMs: 1000, kdcRetries: 2 } });
  w.kdc.silent = 1000;
  w.sc.wakeUp();
  assert.equal(ctaSent(w, 88).length, 1);
  w.clock.advance(1000);
  assert.equal(ctaSent(w, 88).length, 2);
  w.clock.advance(2000);
  assert.equal(ctaSent(w, 88).length, 3);
  w.clock.advance(4000);
  assert.equal(ctaSent(w, 88).length, 3);
  assert.equal(w.agent.counters.kdcFailures, 1);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  assert.equal(w.agent.table.inUse(), 0);
});

test('AP Request: echoes the nonce, mutual-required, CTA SPI, ciphersuites, valid HMAC (usage 1101)', () => {
  const w = makeWorld({ spi: 0x1234567, ciphersuites: [[2, 12], [2, 11]] });
  const nonce = w.sc.wakeUp(0xdeadbeef);
  const sent = ctaSent(w, 1293);
  const reqs = sent.filter((p) => p.data[0] === P.KMMID.AP_REQUEST);
  assert.equal(reqs.length, 1);
  const m = P.decodeApRequest(reqs[0].data);
  assert.equal(m.serverNonce, nonce);
  assert.equal((m.appData as P.IpsecAppData).spi, 0x1234567);
  assert.deepEqual(m.ciphersuites, [
    { auth: 2, enc: 12 },
    { auth: 2, enc: 11 },
  ]);
  const apReq = K.decodeApReq(m.apReq);
  assert.ok(apReq.apOptions & K.AP_OPT_MUTUAL_REQUIRED);
  assert.equal(apReq.authenticator.etype, 18);
  // HMAC under the ticket session key, usage 1101 (key from the KDC's side).
  const hk = usageHmacKey(w.b, 18, w.kdc.lastSessionKey!, 1101);
  assert.ok(P.verifyHmac(w.b, hk, m.signed, m.hmac));
  const auth = K.decodeAuthenticator(decrypt(w.b, 18, w.kdc.lastSessionKey!, 11, apReq.authenticator.cipher));
  assert.equal(K.principalToString(auth.cname, auth.crealm), CTA_PRINCIPAL + '@' + REALM);
  assert.ok(Math.abs(auth.ctime - w.clock.now()) < 2000);
  assert.equal(w.agent.status().scs[0].sa!.ctaSpi, 0x1234567);
  // Random SPI (>= 256) when not configured, differing per session.
  const w2 = makeWorld();
  w2.sc.wakeUp();
  w2.sc.wakeUp();
  const spis = w2.sc.apRequests.map((r) => (r.msg.appData as P.IpsecAppData).spi);
  assert.ok(spis[0] >= 256 && spis[1] >= 256);
  assert.notEqual(spis[0], spis[1]);
  // Authenticators are fresh: strictly increasing (ctime, cusec) even at the same instant.
  const a = w2.sc.apRequests.map((r) => r.authenticator.ctime * 1000 + r.authenticator.cusec);
  assert.ok(a[1] > a[0]);
});

test('a duplicated Wake Up (same nonce) is dropped, pending or answered, and the exchange still completes', () => {
  const w = makeWorld();
  let holdReplies = true;
  w.net.filter = (p) => !(holdReplies && p.to === CTA && p.data[0] === P.KMMID.AP_REPLY);
  const n = w.sc.wakeUp();
  assert.equal(w.agent.table.inUse(), 1, 'AP Request sent, reply held back');
  const wake = P.encodeWakeUp({ kmmid: 1, doi: 1, serverNonce: n, serverPrincipal: SC_PRINCIPAL });
  w.net.inject(w.sc.address, 1293, CTA, 1293, wake);
  assert.equal(w.agent.counters.wakeUps, 1);
  assert.equal(w.agent.counters.drops.duplicate, 1);
  assert.equal(w.agent.counters.replaced, 0, 'the pending session was not replaced');
  holdReplies = false;
  w.clock.advance(1000); // the retransmitted AP Request gets its AP Reply
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  const sent = ctaSent(w, 1293).length;
  // Once answered, the same nonce again is still a duplicate: no new AP Request.
  w.net.inject(w.sc.address, 1293, CTA, 1293, wake);
  assert.equal(w.agent.counters.drops.duplicate, 2);
  assert.equal(ctaSent(w, 1293).length, sent);
  // A fresh nonce is served as usual.
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 2);
});
