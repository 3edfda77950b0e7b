// CTA agent: AP Reply verification, SA derivation, SA Recovered, Rekey.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeWorld } from './helpers/mini-sc.ts';
import * as P from '../firmware/proto/pktc.ts';
import { toHex } from '../firmware/proto/bytes.ts';
import { deriveSaKeys } from '../firmware/proto/sa.ts';
import { ESP_NEXT_HEADER } from '../firmware/proto/esp.ts';
import * as K from '../firmware/proto/consts.ts';

const CTA = '10.0.0.2';

test('a good AP Reply establishes the SA: SPIs, lifetime, keys match the SC side; SA Recovered sent (claim 12)', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  const st = w.agent.status();
  const s = w.sc.session!;
  assert.equal(st.scs[0].state, 'established');
  assert.equal(st.scs[0].sa!.ctaSpi, s.ctaSpi);
  assert.equal(st.scs[0].sa!.scSpi, s.scSpi);
  assert.equal(st.scs[0].sa!.lifetimeSec, 7 * 86400);
  assert.equal(st.scs[0].sa!.graceSec, 3600);
  assert.deepEqual(st.scs[0].sa!.ciphersuite, [2, 12]);
  // The agent derived the same SA keys as the SC (checked by comparing with the SC's derivation).
  const agentSa = w.agent.scs[0].sa!;
  assert.deepEqual(agentSa.keys, deriveSaKeys(w.b, s.subkey, s.ctaSpi, s.scSpi));
  assert.equal(w.sc.saRecovered, 1, 'SA Recovered verified by the SC (usage 1103)');
  assert.equal(w.agent.counters.saRecoveredSent, 1);
  // status() never carries key material.
  const json = JSON.stringify(st);
  for (const k of [s.subkey, s.sessionKey, s.keys.encCtaToSc, s.keys.authScToCta, w.ctaKey]) {
    assert.ok(!json.includes(toHex(k)), 'status leaks key bytes');
    assert.ok(!json.includes(JSON.stringify(Array.from(k)).slice(1, 30)), 'status leaks key bytes');
  }
});

test('AckRequired = 0: no SA Recovered', () => {
  const w = makeWorld();
  w.sc.ackRequired = false;
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  assert.equal(w.agent.counters.saRecoveredSent, 0);
  assert.equal(w.net.sentFrom(CTA, 1293).filter((p) => p.data[0] === P.KMMID.SA_RECOVERED).length, 0);
});

test('a repeated AP Reply (SA Recovered lost) gets the same SA Recovered again', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  const reply = Object.values(w.sc.replies)[0];
  const srs = () => w.net.sentFrom(CTA, 1293).filter((p) => p.data[0] === P.KMMID.SA_RECOVERED);
  assert.equal(srs().length, 1);
  w.net.inject('10.0.0.1', 1293, CTA, 1293, reply);
  assert.equal(srs().length, 2);
  assert.equal(toHex(srs()[1].data), toHex(srs()[0].data));
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});

for (const [mut, counter] of [
  ['bad_hmac', 'bad_hmac'],
  ['ctime', 'bad_ap_rep'],
  ['no_subkey', 'no_subkey'],
  ['wrong_key', 'bad_ap_rep'],
  ['bad_cs', 'bad_ciphersuite'],
] as const) {
  test(`AP Reply rejected: ${mut} -> drop ${counter}, no SA, session still aborts on time`, () => {
    const w = makeWorld();
    w.sc.mutate = mut;
    w.sc.wakeUp();
    assert.ok(w.agent.counters.drops[counter] >= 1, JSON.stringify(w.agent.counters.drops));
    assert.equal(w.agent.counters.sessionsEstablished, 0);
    assert.equal(w.agent.status().scs[0].sa, null);
    assert.equal(w.agent.counters.saRecoveredSent, 0);
    w.clock.advance(3000);
    assert.equal(w.agent.counters.sessionsAborted, 1);
    assert.equal(w.agent.counters.drops.internal, 0);
  });
}

test('an AP Reply with no AP Request pending is dropped cheaply', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  const other = makeWorld();
  other.sc.wakeUp();
  const foreign = Object.values(other.sc.replies)[0];
  w.net.inject('10.0.0.1', 1293, CTA, 1293, foreign);
  assert.equal(w.agent.counters.drops.no_pending, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});

test('Rekey: HMAC (1104) and timestamp verified, AP Request from the cached ticket, no KDC trip', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  const kdcReqs = w.kdc.requests;
  const spi1 = w.agent.status().scs[0].sa!.ctaSpi;
  w.clock.advance(10000);
  const before = w.sc.apRequests.length;
  w.sc.rekey({ nonce: 4242 });
  assert.equal(w.agent.counters.rekeysAccepted, 1);
  assert.equal(w.kdc.requests, kdcReqs, 'no KDC round trip');
  assert.equal(w.sc.apRequests.length, before + 1);
  assert.equal(w.sc.apRequests[before].msg.serverNonce, 4242);
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  assert.notEqual(w.agent.status().scs[0].sa!.ctaSpi, spi1);
});

test('Rekey with a forged HMAC is ignored and counted', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  const n = w.sc.apRequests.length;
  w.sc.rekey({ forge: true });
  assert.equal(w.agent.counters.drops.bad_hmac, 1);
  assert.equal(w.agent.counters.rekeysAccepted, 0);
  assert.equal(w.sc.apRequests.length, n);
});

test('Rekey replayed or outside the skew window is ignored as stale', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  w.clock.advance(5000);
  const msg = w.sc.rekey();
  assert.equal(w.agent.counters.rekeysAccepted, 1);
  const n = w.sc.apRequests.length;
  w.clock.advance(2000);
  w.net.inject('10.0.0.1', 1293, CTA, 1293, msg); // the same bytes again
  assert.equal(w.agent.counters.drops.stale_rekey, 1);
  w.sc.rekey({ timestampMs: w.clock.now() - 301000 }); // too old
  w.sc.rekey({ timestampMs: w.clock.now() + 301000 }); // too far ahead
  assert.equal(w.agent.counters.drops.stale_rekey, 3);
  assert.equal(w.sc.apRequests.length, n);
  assert.equal(w.agent.counters.rekeysAccepted, 1);
});

test('Rekey before any accepted session, or with nonce 0, is dropped', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  const fresh = makeWorld();
  // A Rekey signed with a key the fresh agent never had.
  const msg = w.sc.rekey();
  fresh.net.inject('10.0.0.1', 1293, CTA, 1293, msg);
  assert.equal(fresh.agent.counters.drops.no_session, 1);
  w.sc.rekey({ nonce: 0 });
  assert.equal(w.agent.counters.drops.nonce_zero, 1);
});

test("the agent's inlinable protocol numbers (proto/consts.ts) are pktc's and esp's", () => {
  assert.deepEqual(
    [K.KM_WAKE_UP, K.KM_AP_REQUEST, K.KM_AP_REPLY, K.KM_SA_RECOVERED, K.KM_REKEY, K.KM_ERROR_REPLY],
    [P.KMMID.WAKE_UP, P.KMMID.AP_REQUEST, P.KMMID.AP_REPLY, P.KMMID.SA_RECOVERED, P.KMMID.REKEY, P.KMMID.ERROR_REPLY],
  );
  assert.equal(K.DOI_IPSEC, P.DOI.IPSEC);
  assert.equal(K.PKTC_MAJOR, P.VERSION >> 4);
  assert.deepEqual([K.USAGE_AP_REPLY, K.USAGE_SA_RECOVERED, K.USAGE_REKEY], [P.USAGE.AP_REPLY, P.USAGE.SA_RECOVERED, P.USAGE.REKEY]);
  assert.equal(K.NH_NONE, ESP_NEXT_HEADER.NONE);
});
