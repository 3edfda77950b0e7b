// CTA agent: every byte from the network is hostile. Thousands of random and
// mutated datagrams on every channel, in every agent state: nothing escapes, no
// internal error, and the agent still completes an exchange afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeWorld } from './helpers/mini-sc.ts';
import type { Packet } from './helpers/fake-platform.ts';
import * as P from '../firmware/proto/pktc.ts';
import * as K from '../firmware/proto/krb5.ts';

const CTA = '10.0.0.2';

// xorshift32: reproducible.
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function mutate(r: () => number, src: Uint8Array): Uint8Array {
  const op = Math.floor(r() * 7);
  let b = new Uint8Array(src);
  if (op === 0) {
    const n = 1 + Math.floor(r() * 8);
    for (let i = 0; i < n; i++) b[Math.floor(r() * b.length)] ^= 1 << Math.floor(r() * 8);
  } else if (op === 1) b = b.slice(0, Math.floor(r() * b.length));
  else if (op === 2) {
    const extra = new Uint8Array(1 + Math.floor(r() * 40));
    for (let i = 0; i < extra.length; i++) extra[i] = Math.floor(r() * 256);
    const o = new Uint8Array(b.length + extra.length);
    o.set(b);
    o.set(extra, b.length);
    b = o;
  } else if (op === 3) {
    const i = Math.floor(r() * b.length);
    b[i] = [0, 0x7f, 0x80, 0x81, 0x82, 0xff][Math.floor(r() * 6)];
  } else if (op === 4) {
    // Keep the header, randomize the rest.
    for (let i = 3; i < b.length; i++) if (r() < 0.2) b[i] = Math.floor(r() * 256);
  } else if (op === 5) {
    const i = Math.floor(r() * b.length);
    const j = Math.floor(r() * b.length);
    b = b.slice(Math.min(i, j), Math.max(i, j) + 1);
  } else {
    b = new Uint8Array(Math.floor(r() * 700));
    for (let i = 0; i < b.length; i++) b[i] = Math.floor(r() * 256);
    if (r() < 0.5 && b.length > 3) {
      b[0] = 1 + Math.floor(r() * 6);
      b[1] = 1;
      b[2] = 0x10;
    }
  }
  return b;
}

test('fuzz: 4000 random/mutated datagrams on all channels, then a clean exchange', () => {
  const w = makeWorld();
  // Collect genuine samples of everything the agent may receive.
  w.sc.wakeUp();
  w.sc.signal('RQNT', '77');
  w.sc.rekey();
  w.sc.failNext = K.KRB_AP_ERR_SKEW;
  w.sc.wakeUp();
  const fromSc: Uint8Array[] = [];
  const fromKdc: Uint8Array[] = [];
  const sig: Uint8Array[] = [];
  let kdcPort = 0;
  for (const p of w.net.log as Packet[]) {
    if (p.from === '10.0.0.1' && p.to === CTA && p.toPort === 1293) fromSc.push(p.data);
    if (p.from === '10.0.0.3' && p.to === CTA) {
      fromKdc.push(p.data);
      kdcPort = p.toPort;
    }
    if (p.from === '10.0.0.1' && p.toPort === 2427) sig.push(p.data);
  }
  assert.ok(fromSc.length >= 4 && fromKdc.length >= 2 && sig.length >= 1 && kdcPort > 0);
  assert.ok(fromSc.some((d) => d[0] === P.KMMID.ERROR_REPLY));
  w.net.logLimit = 0;

  const r = rng(0xc7a1);
  for (let i = 0; i < 4000; i++) {
    // Keep the agent in interesting states: sometimes a session is pending.
    if (i % 250 === 0) {
      w.sc.silent = 2;
      w.sc.wakeUp();
    }
    if (i % 97 === 0) w.clock.advance(700);
    const ch = Math.floor(r() * 3);
    if (ch === 0) w.net.inject('10.0.0.1', 1293, CTA, 1293, mutate(r, fromSc[Math.floor(r() * fromSc.length)]));
    else if (ch === 1) w.net.inject('10.0.0.3', 88, CTA, kdcPort, mutate(r, fromKdc[Math.floor(r() * fromKdc.length)]));
    else w.net.inject('10.0.0.1', 2427, CTA, 2427, mutate(r, sig[Math.floor(r() * sig.length)]));
  }
  const c = w.agent.counters;
  assert.equal(c.drops.internal, 0, 'no input reached an unexpected code path');
  const dropped = Object.values(c.drops).reduce((a, b) => a + b, 0);
  assert.ok(dropped > 3000, `most fuzz input was dropped (${dropped})`);
  assert.ok(w.agent.table.inUse() <= w.agent.table.n);
  // Still alive: a clean exchange completes.
  w.sc.silent = 0;
  w.sc.alwaysFail = null;
  w.clock.advance(10000);
  const est = c.sessionsEstablished;
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, est + 1);
  w.sc.signal('RQNT', '9001');
  assert.ok(w.sc.signalingIn.some((s) => s.startsWith('200 9001 OK')));
});

test('fuzz: hostile KDC answers while an AS exchange is pending', () => {
  const w = makeWorld();
  w.kdc.silent = 1e9;
  w.sc.wakeUp(); // the KDC does not answer: the agent waits for it
  const asReq = w.net.sentFrom(CTA, 88)[0];
  const r = rng(77);
  const good = makeWorld();
  good.sc.wakeUp();
  const samples = good.net.log.filter((p) => p.from === '10.0.0.3').map((p) => p.data);
  for (let i = 0; i < 1500; i++) w.net.inject('10.0.0.3', 88, CTA, asReq.fromPort, mutate(r, samples[Math.floor(r() * samples.length)]));
  assert.equal(w.agent.counters.drops.internal, 0);
  // Genuine answers from another KDC (other keys, other nonces) never yield a ticket.
  // (A forged KRB-ERROR can end the pending AS exchange - Kerberos errors are unauthenticated -
  // but it cannot make the agent accept anything.)
  assert.equal(w.agent.counters.ticketsCached, 0);
  assert.equal(w.agent.counters.sessionsEstablished, 0);
  w.kdc.silent = 0;
  w.clock.advance(20000);
  w.sc.wakeUp();
  assert.equal(w.agent.counters.ticketsCached, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});
