// CTA agent: protected signaling over the SA (ESP-style, 64-packet replay window).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeWorld } from './helpers/mini-sc.ts';
import { parseNcsResponse } from '../firmware/proto/esp.ts';

const CTA = '10.0.0.2';

test('an RQNT over the SA gets "200 <txid> OK" back through the same SA', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  w.sc.signal('RQNT', '1201');
  w.sc.signal('RQNT', '1202');
  assert.equal(w.sc.signalingIn.length, 2);
  const r = parseNcsResponse(w.sc.signalingIn[0]);
  assert.equal(r.code, 200);
  assert.equal(r.txid, '1201');
  assert.equal(r.comment, 'OK');
  assert.equal(parseNcsResponse(w.sc.signalingIn[1]).txid, '1202');
  const st = w.agent.status().scs[0].sa!;
  assert.equal(st.seqOut, 2);
  assert.equal(st.seqInTop, 2);
  assert.equal(w.agent.counters.signalingAnswered, 2);
  // The response left from the signaling port.
  assert.ok(w.net.sentFrom(CTA).some((p) => p.fromPort === 2427 && p.toPort === 2427));
});

test('replayed, corrupted, unknown-SPI and pre-SA packets are dropped and counted', () => {
  const w = makeWorld();
  const early = makeWorld();
  early.sc.wakeUp();
  const pkt0 = early.sc.signal('RQNT', '1');
  w.net.inject('10.0.0.1', 2427, CTA, 2427, pkt0); // no SA with that SPI here
  assert.equal(w.agent.counters.drops.esp_no_sa, 1);

  w.sc.wakeUp();
  const pkt = w.sc.signal('RQNT', '1201');
  assert.equal(w.sc.signalingIn.length, 1);
  w.sc.sendRawSignal(pkt);
  assert.equal(w.agent.counters.drops.esp_replay, 1);
  w.sc.signal('RQNT', '1202', { corrupt: true });
  assert.equal(w.agent.counters.drops.esp_icv, 1);
  // Out of order inside the window is fine; older than 64 behind is a replay.
  w.sc.signal('RQNT', '1300', { seq: 100 });
  w.sc.signal('RQNT', '1301', { seq: 90 });
  w.sc.signal('RQNT', '1302', { seq: 30 });
  assert.equal(w.sc.signalingIn.length, 3);
  assert.equal(w.agent.counters.drops.esp_replay, 2);
  // From a stranger's address.
  w.net.inject('10.6.6.6', 2427, CTA, 2427, w.sc.signal('RQNT', '1400', { seq: 101 }));
  assert.ok(w.agent.counters.drops.wrong_address >= 1);
  assert.equal(w.agent.counters.drops.internal, 0);
});

test('after the SA expires, signaling is refused', () => {
  const w = makeWorld();
  w.sc.saLifetime = 60;
  w.sc.gracePeriod = 10;
  w.sc.allowClientInitiated = false;
  w.sc.wakeUp();
  w.clock.advance(61000);
  w.sc.signal('RQNT', '1201');
  assert.equal(w.sc.signalingIn.length, 0);
  assert.equal(w.agent.counters.drops.esp_no_sa, 1);
});
