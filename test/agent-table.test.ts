// CTA agent: the fixed-size session table under load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { makeWorld, SC_PRINCIPAL, REALM } from './helpers/mini-sc.ts';
import * as P from '../firmware/proto/pktc.ts';
import { SessionTable, S_FREE, F_GEN, F_DEADLINE } from '../firmware/agent/table.ts';

const CTA = '10.0.0.2';
const SCS = [SC_PRINCIPAL, 'sc/sc2.example.net@' + REALM, 'sc/sc3.example.net@' + REALM];

function wake(nonce: number, principal: string): Uint8Array {
  return P.encodeWakeUp({ kmmid: 1, doi: 1, serverNonce: nonce, serverPrincipal: principal });
}

test('SessionTable: fixed slots, alloc until full, free and reuse, generation bumps', () => {
  const t = new SessionTable(3);
  const len = t.f.length;
  const a = t.alloc();
  t.set(a, 0, 1);
  const b = t.alloc();
  t.set(b, 0, 1);
  const c = t.alloc();
  t.set(c, 0, 1);
  assert.deepEqual([a, b, c], [0, 1, 2]);
  assert.equal(t.alloc(), -1);
  assert.equal(t.inUse(), 3);
  const g = t.get(b, F_GEN);
  t.free(b);
  assert.equal(t.state(b), S_FREE);
  assert.equal(t.alloc(), b);
  assert.ok(t.get(b, F_GEN) > g, 'a reused slot has a new generation');
  assert.equal(t.f.length, len);
  // ms times past 2^32 and 32-bit values round-trip exactly; reset clears both kinds.
  const u = new SessionTable(2);
  const x = u.alloc();
  u.set(x, 0, 1);
  u.set(x, F_DEADLINE, 1795840385143);
  u.set(x, 2, 0xffffffff);
  assert.equal(u.get(x, F_DEADLINE), 1795840385143);
  assert.equal(u.get(x, 2), 0xffffffff);
  assert.equal(u.earliest(), 1795840385143);
  u.free(x);
  assert.equal(u.get(x, F_DEADLINE), 0);
  assert.equal(u.get(x, 2), 0);
  assert.equal(u.earliest(), -1);
});

test('table full: triggers from more SCs than slots are dropped and counted', () => {
  const w = makeWorld({ slots: 2, scs: SCS.map((p) => ({ principal: p })) });
  w.kdc.silent = 1000; // sessions stay waiting for a ticket
  for (let i = 0; i < 3; i++) w.net.inject('10.0.0.1', 1293, CTA, 1293, wake(100 + i, SCS[i]));
  assert.equal(w.agent.table.inUse(), 2);
  assert.equal(w.agent.counters.drops.table_full, 1);
  assert.equal(w.agent.counters.wakeUps, 3);
  assert.deepEqual(
    w.agent.status().scs.map((s) => s.pendingNonce),
    [100, 101, null],
  );
});

// Issue 13 item 3 (rule): an unauthenticated Wake Up does not throw away an exchange still within its
// timers (claim 16: the CTA awaits the AP Reply and aborts only at its timeout); an authenticated
// Rekey is the "newer nonce from the same SC" that replaces it (PROTOCOL.md, nonce rules).
test('a newer Wake Up does not displace an exchange awaiting its AP Reply; an authenticated Rekey replaces it', () => {
  const w = makeWorld();
  w.sc.wakeUp(); // ticket cached, an SA (the Rekey key) established
  w.sc.silent = 1; // the next AP Request goes unanswered (its retransmission is answered)
  const a = w.sc.wakeUp();
  assert.equal(w.agent.status().scs[0].pendingNonce, a);
  w.sc.wakeUp();
  assert.equal(w.agent.counters.drops.busy, 1);
  assert.equal(w.agent.counters.replaced, 0);
  assert.equal(w.agent.counters.wakeUps, 2, 'the busy Wake Up is not counted as accepted');
  assert.equal(w.agent.status().scs[0].pendingNonce, a);
  w.clock.advance(1000); // the retransmission of the first exchange's AP Request gets its reply
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  assert.equal(w.sc.apRequests[w.sc.apRequests.length - 1].msg.serverNonce, a);
  assert.equal(w.agent.table.inUse(), 0);
  // A Rekey (HMAC under the SC's session key, fresh timestamp) replaces a pending Wake Up's exchange.
  w.clock.advance(1000);
  w.sc.silent = 1;
  const c = w.sc.wakeUp();
  assert.equal(w.agent.status().scs[0].pendingNonce, c);
  w.sc.rekey();
  assert.equal(w.agent.counters.replaced, 1);
  assert.equal(w.agent.table.inUse(), 0, 'the replacing session completed');
  assert.equal(w.agent.counters.sessionsEstablished, 3);
  // The replaced session's retransmission timer is gone with it.
  const rt = w.agent.counters.retransmits;
  w.clock.advance(5000);
  assert.equal(w.agent.counters.retransmits, rt);
  assert.equal(w.agent.counters.sessionsAborted, 0);
});

function gc(): (() => void) | null {
  try {
    setFlagsFromString('--expose-gc');
    const f = runInNewContext('gc') as () => void;
    return typeof f === 'function' ? f : null;
  } catch {
    return null;
  }
}

test('a flood of 10,000 Wake Ups leaves table and heap bounded; a legitimate Wake Up still succeeds', () => {
  const collect = gc();
  const w = makeWorld({ slots: 4 });
  w.net.logLimit = 0;
  w.sc.wakeUp(); // the ticket is cached: spoofed valid Wake Ups cost an AP Request each
  const tableBytes = w.agent.table.f.byteLength;
  const reqSlots = w.agent.table.req.length;
  collect?.();
  const heap0 = process.memoryUsage().heapUsed;
  let kinds = [0, 0, 0, 0];
  const evil = wake(1, 'sc/evil.example.net@' + REALM);
  const zero = wake(0, SC_PRINCIPAL);
  for (let i = 0; i < 10000; i++) {
    const k = i % 50 === 0 ? 3 : i % 3;
    kinds[k]++;
    if (k === 0) w.net.inject('10.0.0.1', 1293, CTA, 1293, evil);
    else if (k === 1) w.net.inject('10.0.0.1', 1293, CTA, 1293, zero);
    else if (k === 2) w.net.inject('10.6.6.6', 1293, CTA, 1293, wake(0x10000 + i, SC_PRINCIPAL));
    // k === 3: spoofed from the SC's address with the right principal and a fresh nonce:
    // it replaces the pending session (the SC will call it a false nonce).
    else w.net.inject('10.0.0.1', 1293, CTA, 1293, wake(0x20000 + i, SC_PRINCIPAL));
    if (i % 1000 === 999) w.clock.advance(100);
  }
  const c = w.agent.counters;
  assert.equal(c.drops.unknown_sc, kinds[0]);
  assert.equal(c.drops.nonce_zero, kinds[1]);
  assert.equal(c.drops.wrong_address, kinds[2]);
  assert.equal(c.drops.internal, 0);
  assert.ok(w.agent.table.inUse() <= 4);
  assert.equal(w.agent.table.f.byteLength, tableBytes, 'the session table never grows');
  assert.equal(w.agent.table.req.length, reqSlots);
  collect?.();
  const grown = process.memoryUsage().heapUsed - heap0;
  if (collect) assert.ok(grown < 8 * 1024 * 1024, `heap grew by ${grown} bytes`);
  // A legitimate Wake Up after the flood completes.
  w.clock.advance(10000);
  const est = c.sessionsEstablished;
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, est + 1);
  assert.equal(w.agent.status().scs[0].state, 'established');
});
