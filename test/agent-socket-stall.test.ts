// A UDP socket that stops delivering (a wedged network driver) while the CTA awaits an answer
// (agent.ts quietSocket): when the retransmissions run out with nothing at all heard on the
// socket, it is re-created, counted and logged, and the exchange ends as it always did (the
// protocol's timers are unchanged); the next exchange runs on the new socket. Fake clock,
// in-memory network (FakeNet.stall drops everything to one bound socket; a socket bound there
// again works).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeWorld, type World } from './helpers/mini-sc.ts';
import * as P from '../firmware/proto/pktc.ts';

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

test('stalled key-management socket: the exchange aborts at the usual 3 s with the socket re-created; the next Wake Up completes on the new socket', () => {
  const w = makeWorld();
  w.sc.wakeUp(); // ticket cached, SA established
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  stallAtApRequest(w);
  const n0 = apRequests(w).length;
  w.sc.wakeUp();
  w.clock.advance(2999);
  assert.equal(apRequests(w).length, n0 + 3, 'the AP Request and 2 retransmissions');
  assert.ok(w.net.stalledDrops >= 3, `the SC's AP Replies were lost in the socket (${w.net.stalledDrops})`);
  assert.equal(w.agent.counters.sessionsAborted, 0);
  assert.equal(w.agent.counters.socketsRecreated, 0);
  w.clock.advance(1);
  // 3 s (abortMs), as without a stall: nothing heard since the first send, so the socket is
  // re-created, and the exchange ends (no extra AP Request).
  assert.equal(w.agent.counters.socketsRecreated, 1);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  assert.equal(w.agent.counters.retransmits, 2);
  const ev = w.platform.logs.find((l) => l.event === 'cta.socket_recreated');
  assert.ok(ev, 'logged');
  assert.equal(ev.fields.channel, 1);
  assert.equal(w.agent.status().counters.socketsRecreated, 1);
  w.clock.advance(60000);
  assert.equal(apRequests(w).length, n0 + 3, 'nothing more after the abort');
  // The SC's next Wake Up reaches the new socket (same port) and completes.
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  assert.equal(w.sc.saRecovered, 2);
  const reqs = apRequests(w).slice(n0);
  assert.equal(reqs.length, 4);
  assert.equal(reqs[3].fromPort, reqs[0].fromPort, 're-bound on the same port');
  // The new socket keeps working: a later exchange needs no re-creation.
  w.net.filter = null;
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 3);
  w.clock.advance(10000);
  assert.equal(w.agent.counters.socketsRecreated, 1);
});

test('a re-bind that fails (port not free yet, driver refusing) is tried again each second; the next Wake Up then completes', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  stallAtApRequest(w);
  const bind = w.platform.udpBind;
  let refused = 0;
  w.platform.udpBind = (port, fn) => {
    if (refused < 2) {
      refused++;
      throw new Error('Unable to create socket');
    }
    return bind(port, fn);
  };
  w.sc.wakeUp();
  w.clock.advance(3000);
  assert.equal(w.agent.counters.socketsRecreated, 1);
  assert.equal(refused, 1, 'the first re-bind was refused');
  w.clock.advance(1000);
  assert.equal(refused, 2, 'tried again a second later, refused again');
  w.clock.advance(1000);
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 2, 'bound on the third try: the Wake Up completes');
  assert.equal(w.agent.counters.drops.internal, 0);
});

test('without the re-creation (transport.reopen removed) the socket stays stalled: the next Wake Up never completes', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  (w.agent.transport as { reopen?: unknown }).reopen = undefined;
  stallAtApRequest(w);
  w.sc.wakeUp();
  w.clock.advance(3000);
  assert.equal(w.agent.counters.socketsRecreated, 0);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  w.clock.advance(60000);
  w.sc.wakeUp();
  w.clock.advance(60000);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});

test('a socket that heard anything since the request was sent is not re-created (the SC is silent, the socket is not)', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  w.sc.silent = 1000;
  w.sc.wakeUp();
  w.clock.advance(1500);
  // Any datagram counts, even junk dropped at once (from a port no SC sends from).
  const port = apRequests(w)[0].fromPort;
  w.net.inject('10.0.0.9', 5000, CTA, port, new Uint8Array([0xff, 0, 0]));
  assert.equal(w.agent.counters.drops.wrong_address, 1);
  w.clock.advance(1500);
  assert.equal(w.agent.counters.socketsRecreated, 0);
  assert.equal(w.agent.counters.sessionsAborted, 1);
});

test('a silent SC looks the same: re-created at the usual timeout, no extra AP Request, one per unanswered exchange', () => {
  const w = makeWorld();
  w.sc.wakeUp();
  w.sc.silent = 1000;
  const n0 = apRequests(w).length;
  w.sc.wakeUp();
  w.clock.advance(3000);
  assert.equal(w.agent.counters.socketsRecreated, 1);
  assert.equal(w.agent.counters.sessionsAborted, 1);
  w.clock.advance(60000);
  assert.equal(apRequests(w).length, n0 + 3);
  assert.equal(w.agent.counters.socketsRecreated, 1);
  w.sc.wakeUp();
  w.clock.advance(3000);
  assert.equal(w.agent.counters.socketsRecreated, 2);
  assert.equal(w.agent.counters.sessionsAborted, 2);
});

function stallKdcSocket(w: World): () => number {
  let stalledPort = 0;
  w.net.filter = (p) => {
    if (!stalledPort && p.from === CTA && p.toPort === 88) {
      stalledPort = p.fromPort;
      w.net.stall(CTA, p.fromPort);
    }
    return true;
  };
  return () => stalledPort;
}

test('stalled KDC socket: the AS exchange fails at its usual timeout with the socket re-created; the next Wake Up gets its ticket on the new socket', () => {
  const w = makeWorld({ prefetchTicket: false, timers: { kdcTimeoutMs: 1000, kdcRetries: 1 } });
  const stalledPort = stallKdcSocket(w);
  w.sc.wakeUp();
  w.clock.advance(2999); // AS-REQ at 0 and 1 s, both answers lost in the socket
  assert.equal(w.net.sentFrom(CTA, 88).length, 2);
  assert.equal(w.agent.counters.socketsRecreated, 0);
  w.clock.advance(1);
  assert.equal(w.agent.counters.socketsRecreated, 1);
  assert.equal(w.agent.counters.kdcFailures, 1);
  assert.equal(w.agent.counters.sessionsAborted, 1, 'the session waiting for the ticket ends with the AS exchange');
  assert.equal(w.net.sentFrom(CTA, 88).length, 2, 'no extra AS-REQ');
  const ev = w.platform.logs.find((l) => l.event === 'cta.socket_recreated');
  assert.ok(ev);
  assert.equal(ev.fields.channel, 2);
  w.sc.wakeUp();
  w.clock.advance(100);
  assert.equal(w.agent.counters.ticketsCached, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  const again = w.net.sentFrom(CTA, 88)[2];
  assert.notEqual(again.fromPort, stalledPort(), 'the KDC socket is bound again on a fresh ephemeral port');
});

test('stalled KDC socket without the re-creation: the next Wake Up gets no ticket', () => {
  const w = makeWorld({ prefetchTicket: false, timers: { kdcTimeoutMs: 1000, kdcRetries: 1 } });
  (w.agent.transport as { reopen?: unknown }).reopen = undefined;
  stallKdcSocket(w);
  w.sc.wakeUp();
  w.clock.advance(3000);
  assert.equal(w.agent.counters.kdcFailures, 1);
  w.sc.wakeUp();
  w.clock.advance(60000);
  assert.equal(w.agent.counters.socketsRecreated, 0);
  assert.equal(w.agent.counters.ticketsCached, 0);
  assert.equal(w.agent.counters.sessionsEstablished, 0);
});
