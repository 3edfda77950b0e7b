// A UDP socket that stops delivering (a wedged network driver) while the CTA awaits an answer
// (agent.ts socketRecreated): the socket is re-created once, counted, logged, and the exchange
// retried on it. Fake clock, in-memory network (FakeNet.stall drops everything to one bound
// socket; a socket bound there again works).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeWorld, type World } from './helpers/mini-sc.ts';
import * as P from '../firmware/proto/pktc.ts';
import { toHex } from '../firmware/proto/bytes.ts';

const CTA = '10.0.0.2';

function apRequests(w: World) {
  return w.net.sentFrom(CTA, 1293).filter((p) => p.data[0] === P.KMMID.AP_REQUEST);
}

/** The CTA's key-management socket stalls as its next AP Request leaves: the answers are lost in it. */
function stallAtApRequest(w: World): void {
  let done = false;
  w.net.filter = (p) => {
    if (!done && p.from === CTA && p.data[0] === P.KMMID.AP_REQUEST) {
      done = true;
      w.net.stall(CTA, p.fromPort);
    }
    return true;
  };
}

test('stalled key-management socket: quiet through the retransmissions, re-created at the timeout, the same AP Request completes on the new socket', () => {
  const w = makeWorld();
  w.sc.wakeUp(); // ticket cached, SA established
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  stallAtApRequest(w);
  const n0 = apRequests(w).length;
  w.sc.wakeUp();
  w.clock.advance(2999);
  assert.equal(apRequests(w).length, n0 + 3, 'the AP Request and 2 retransmissions');
  assert.ok(w.net.stalledDrops >= 3, `the SC's AP Replies were lost in the socket (${w.net.stalledDrops})`);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  assert.equal(w.agent.counters.socketsRecreated, 0);
  w.clock.advance(1);
  // 3 s (abortMs): nothing heard since the first send: re-created; the retry is answered.
  assert.equal(w.agent.counters.socketsRecreated, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  assert.equal(w.agent.counters.sessionsAborted, 0);
  assert.equal(w.sc.saRecovered, 2);
  const reqs = apRequests(w).slice(n0);
  assert.equal(reqs.length, 4);
  assert.ok(reqs.every((p) => toHex(p.data) === toHex(reqs[0].data)), 'the retry is the same AP Request');
  assert.equal(reqs[3].fromPort, reqs[0].fromPort, 're-bound on the same port');
  const ev = w.platform.logs.find((l) => l.event === 'cta.socket_recreated');
  assert.ok(ev, 'logged');
  assert.equal(ev.fields.channel, 1);
  assert.equal(w.agent.status().counters.socketsRecreated, 1);
  // The new socket keeps working: a later exchange needs no re-creation.
  w.net.filter = null;
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 3);
  w.clock.advance(10000);
  assert.equal(w.agent.counters.socketsRecreated, 1);
});

test('without the re-creation (transport.reopen removed) the stalled exchange aborts: the recovery is what completes it', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  (w.agent.transport as { reopen?: unknown }).reopen = undefined;
  stallAtApRequest(w);
  w.sc.wakeUp();
  w.clock.advance(60000);
  assert.equal(w.agent.counters.socketsRecreated, 0);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  assert.equal(w.agent.counters.sessionsAborted, 1);
});

test('a socket that heard anything since the request was sent is not re-created (the SC is silent, the socket is not)', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  w.sc.silent = 1000;
  w.sc.wakeUp();
  w.clock.advance(1500);
  // Any datagram counts, even one dropped as malformed.
  const port = apRequests(w)[0].fromPort;
  w.net.inject('10.0.0.9', 5000, CTA, port, new Uint8Array([0xff, 0, 0]));
  assert.equal(w.agent.counters.drops.malformed, 1);
  w.clock.advance(1500);
  assert.equal(w.agent.counters.socketsRecreated, 0);
  assert.equal(w.agent.counters.sessionsAborted, 1);
});

test('re-created once per exchange: a socket still quiet after the retry ends the exchange', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  w.sc.silent = 1000;
  w.sc.wakeUp();
  w.clock.advance(3000);
  assert.equal(w.agent.counters.socketsRecreated, 1);
  w.clock.advance(3000);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  assert.equal(w.agent.counters.socketsRecreated, 1);
  w.clock.advance(60000);
  assert.equal(w.agent.counters.socketsRecreated, 1);
});

test('stalled KDC socket: the AS exchange is retried once on a re-created socket and the Wake Up completes', () => {
  const w = makeWorld({ prefetchTicket: false, timers: { kdcTimeoutMs: 1000, kdcRetries: 1 } });
  let stalledPort = 0;
  w.net.filter = (p) => {
    if (!stalledPort && p.from === CTA && p.toPort === 88) {
      stalledPort = p.fromPort;
      w.net.stall(CTA, p.fromPort);
    }
    return true;
  };
  w.sc.wakeUp();
  w.clock.advance(2999); // AS-REQ at 0 and 1 s, both answers lost in the socket
  assert.equal(w.net.sentFrom(CTA, 88).length, 2);
  assert.equal(w.agent.counters.socketsRecreated, 0);
  w.clock.advance(1);
  assert.equal(w.agent.counters.socketsRecreated, 1);
  assert.equal(w.agent.counters.kdcFailures, 0);
  assert.equal(w.agent.counters.ticketsCached, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  const again = w.net.sentFrom(CTA, 88)[2];
  assert.notEqual(again.fromPort, stalledPort, 'the KDC socket is bound again on a fresh ephemeral port');
});
