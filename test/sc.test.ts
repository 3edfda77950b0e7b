// Signaling Controller: the server-initiated exchange end to end over real UDP
// sockets on 127.0.0.1, with a test-side CTA and a manual clock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { startSc, type ScOptions, type ScServer, type EstablishedEvent, type FalseNonceEvent } from '../host-tools/sc/server.ts';
import { ManualClock } from '../host-tools/sc/clock.ts';
import { decodeWakeUp, decodeErrorReply, decodeApReply, decodeRekey, KMMID } from '../firmware/proto/pktc.ts';
import { decodeKrbError, KRB_AP_ERR_REPEAT, KRB_AP_ERR_SKEW, KRB_AP_ERR_TKT_EXPIRED, KRB_AP_ERR_BADKEYVER, KRB_AP_ERR_BAD_INTEGRITY } from '../firmware/proto/krb5.ts';
import { buildNcsCommand, parseNcsResponse } from '../firmware/proto/esp.ts';
import { TestCta, serviceEntry, sleep, REALM, SC_PRINCIPAL } from './helpers/ticket-mint.ts';
import { nextEvent } from './helpers/events.ts';

/** How long "no reply" is listened for (real time). */
const QUIET_MS = 300;

async function setup(o: Partial<ScOptions> = {}) {
  const clock = new ManualClock(Date.now());
  const svc = serviceEntry();
  const sc = await startSc({ principal: SC_PRINCIPAL, keytab: [svc], listen: { host: '127.0.0.1', port: 0 }, statePath: ':memory:', clock, ...o });
  const ctas: TestCta[] = [];
  async function cta(name: string, auto = true): Promise<TestCta> {
    const c = await TestCta.create(`${name}@${REALM}`, svc, () => clock.now());
    c.scAddress = sc.address;
    c.auto = auto;
    sc.register(c.principal, '127.0.0.1', c.port, c.sigPort);
    ctas.push(c);
    return c;
  }
  async function close() {
    await sc.close();
    for (const c of ctas) await c.close();
  }
  return { clock, svc, sc, cta, close };
}

type Sc = Awaited<ReturnType<typeof setup>>;

/** Runs `body` against a fresh SC (see setup) and closes the SC and its CTAs however the body ends. */
async function withSc(o: Partial<ScOptions>, body: (w: Sc) => Promise<void>): Promise<void> {
  const w = await setup(o);
  try {
    await body(w);
  } finally {
    await w.close();
  }
}

/** The server nonce of the next Wake Up the CTA receives. */
async function nextWakeNonce(a: TestCta): Promise<number> {
  return decodeWakeUp((await a.nextKind(KMMID.WAKE_UP)).data).serverNonce;
}

/** Has the SC wake the CTA and returns the Wake Up's nonce. */
function wakeNonce(sc: ScServer, a: TestCta): Promise<number> {
  sc.wake(a.principal);
  return nextWakeNonce(a);
}

/** The SC's next event `ev` satisfying pred, within 3 s. */
function once<T>(sc: ScServer, ev: string, pred?: (e: T) => boolean): Promise<T> {
  return nextEvent<T>(sc, ev, pred, 3000);
}

test('happy path: Wake Up -> AP Request -> AP Reply -> SA Recovered -> established, same SA keys on both sides', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1');
    const est = once<EstablishedEvent>(sc, 'established');
    sc.wake(a.principal);
    const e = await est;
    assert.equal(e.principal, a.principal);
    assert.equal(e.clientInitiated, false);
    assert.ok(a.sa, 'CTA derived an SA');
    assert.equal(e.ctaSpi, a.sa.ctaSpi);
    assert.equal(e.scSpi, a.sa.scSpi);
    const k = sc.saKeys(a.principal);
    assert.ok(k);
    assert.deepEqual(k.encCtaToSc, a.sa.encCtaToSc);
    assert.deepEqual(k.authCtaToSc, a.sa.authCtaToSc);
    assert.deepEqual(k.encScToCta, a.sa.encScToCta);
    assert.deepEqual(k.authScToCta, a.sa.authScToCta);
    assert.equal(sc.hasSa(a.principal), true);
    const rec = sc.get(a.principal);
    assert.equal(rec?.state, 'established');
    assert.equal(rec?.ctaSpi, a.sa.ctaSpi);
    assert.equal(rec?.scSpi, a.sa.scSpi);
    assert.equal(rec?.ciphersuite, 'hmac-sha1-96/aes-128-cbc');
    const s = sc.stats();
    assert.equal(s.cta_sc_tx_total.wake_up, 1);
    assert.equal(s.cta_sc_ap_requests_total.accepted, 1);
    assert.equal(s.cta_sc_exchanges_total.established, 1);
    assert.equal(s.latency.count, 1);
    // The Wake Up carried a nonce != 0 and our principal.
    const w = decodeWakeUp(a.received.find((r) => r.data[0] === KMMID.WAKE_UP)!.data);
    assert.notEqual(w.serverNonce, 0);
    assert.equal(w.serverPrincipal, SC_PRINCIPAL);
  });
});

test('false nonce: disregarded with no reply at all, counted; the real nonce still works', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1', false);
    const falseEv: FalseNonceEvent[] = [];
    sc.on('false_nonce', (e: FalseNonceEvent) => falseEv.push(e));
    const nonce = await wakeNonce(sc, a);
    const before = a.received.length;
    const bogus = nonce === 0xffffffff ? 1 : nonce + 1;
    a.send(a.apRequest(bogus).bytes);
    await sleep(QUIET_MS);
    assert.equal(a.received.length, before, 'no reply of any kind to a false nonce');
    assert.equal(sc.stats().cta_sc_drops_total.false_nonce, 1);
    assert.equal(falseEv.length, 1);
    assert.equal(falseEv[0].reason, 'unknown');
    assert.equal(falseEv[0].principal, a.principal);
    assert.equal(sc.stats().cta_sc_tx_total.error_reply, undefined);
    // The genuine nonce is still outstanding.
    const rep = a.nextKind(KMMID.AP_REPLY);
    a.send(a.apRequest(nonce).bytes);
    assert.ok(a.acceptApReply((await rep).data, false));
  });
});

test('expired nonce is false', async () => {
  // No housekeeping sweep in between, so the entry is still there and seen as expired.
  await withSc({ timers: { wakeRetries: 0, wakeRetryMs: 60000, housekeepingMs: 600000 } }, async ({ sc, cta, clock }) => {
    const a = await cta('cta1', false);
    const ev = once<FalseNonceEvent>(sc, 'false_nonce');
    const nonce = await wakeNonce(sc, a);
    clock.advance(sc.timers.nonceLifetimeMs + 1);
    const before = a.received.length;
    a.send(a.apRequest(nonce).bytes);
    assert.equal((await ev).reason, 'expired');
    await sleep(QUIET_MS);
    assert.equal(a.received.length, before);
    assert.equal(sc.stats().cta_sc_drops_total.false_nonce, 1);
  });
});

test("CTA A's nonce in CTA B's AP Request is false; A can still use it", async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('ctaA', false);
    const b = await cta('ctaB', false);
    const nonceA = await wakeNonce(sc, a);
    const ev = once<FalseNonceEvent>(sc, 'false_nonce');
    const beforeB = b.received.length;
    b.send(b.apRequest(nonceA).bytes);
    const e = await ev;
    assert.equal(e.principal, b.principal);
    assert.equal(e.reason, 'wrong_cta');
    await sleep(QUIET_MS);
    assert.equal(b.received.length, beforeB, 'B gets nothing');
    const rep = a.nextKind(KMMID.AP_REPLY);
    a.send(a.apRequest(nonceA).bytes);
    assert.ok(a.acceptApReply((await rep).data, false));
  });
});

test('a nonce is consumed: a second AP Request with it and a new authenticator is disregarded', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1', false);
    const nonce = await wakeNonce(sc, a);
    const rep = a.nextKind(KMMID.AP_REPLY);
    a.send(a.apRequest(nonce).bytes);
    await rep;
    const before = a.received.length;
    const ev = once<FalseNonceEvent>(sc, 'false_nonce');
    a.send(a.apRequest(nonce).bytes);
    await ev;
    await sleep(QUIET_MS);
    assert.equal(a.received.length, before);
    assert.equal(sc.stats().cta_sc_drops_total.false_nonce, 1);
  });
});

test('byte-identical retransmission gets the same AP Reply bytes', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1', false);
    const nonce = await wakeNonce(sc, a);
    const req = a.apRequest(nonce).bytes;
    let rep = a.nextKind(KMMID.AP_REPLY);
    a.send(req);
    const r1 = (await rep).data;
    rep = a.nextKind(KMMID.AP_REPLY);
    a.send(req);
    const r2 = (await rep).data;
    assert.deepEqual(r2, r1);
    assert.equal(sc.stats().cta_sc_ap_requests_total.retransmit, 1);
    assert.equal(sc.stats().cta_sc_ap_requests_total.accepted, 1);
    assert.equal(sc.stats().cta_sc_drops_total.false_nonce, undefined);
    // The subkey in it is fresh: a new exchange gives a different one.
    assert.ok(a.acceptApReply(r1, true));
    const s1 = a.subkey!;
    await once(sc, 'established');
    const n2 = await wakeNonce(sc, a);
    rep = a.nextKind(KMMID.AP_REPLY);
    a.send(a.apRequest(n2).bytes);
    assert.ok(a.acceptApReply((await rep).data, false));
    assert.notDeepEqual(a.subkey, s1);
  });
});

test('a replayed authenticator with a different (valid) nonce gets KRB_AP_ERR_REPEAT', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1', false);
    const n1 = await wakeNonce(sc, a);
    const first = a.apRequest(n1);
    const rep = a.nextKind(KMMID.AP_REPLY);
    a.send(first.bytes);
    await rep;
    const n2 = await wakeNonce(sc, a);
    const err = a.nextKind(KMMID.ERROR_REPLY);
    a.send(a.apRequest(n2, { authCipher: first.authCipher }).bytes);
    const ke = decodeKrbError(decodeErrorReply((await err).data).krbError);
    assert.equal(ke.errorCode, KRB_AP_ERR_REPEAT);
    assert.equal(sc.stats().cta_sc_error_replies_total['34'], 1);
  });
});

test('client-initiated (nonce 0): denied by default policy, silently', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1', false);
    a.send(a.apRequest(0).bytes);
    await sleep(QUIET_MS);
    assert.equal(a.received.length, 0);
    assert.equal(sc.stats().cta_sc_drops_total.client_initiated_denied, 1);
  });
});

test('client-initiated allowed by policy, rate-limited per CTA, window resets after a minute', async () => {
  await withSc({ policy: { allowClientInitiated: true, clientInitiatedPerMinute: 2 } }, async ({ sc, cta, clock }) => {
    const a = await cta('cta1', false);
    for (let i = 0; i < 2; i++) {
      const rep = a.nextKind(KMMID.AP_REPLY);
      a.send(a.apRequest(0).bytes);
      assert.ok(a.acceptApReply((await rep).data, false));
    }
    const before = a.received.length;
    a.send(a.apRequest(0).bytes);
    await sleep(QUIET_MS);
    assert.equal(a.received.length, before);
    assert.equal(sc.stats().cta_sc_drops_total.client_initiated_rate, 1);
    assert.equal(sc.stats().cta_sc_ap_requests_total.accepted_client_initiated, 2);
    clock.advance(61000);
    const rep = a.nextKind(KMMID.AP_REPLY);
    const est = once<EstablishedEvent>(sc, 'established');
    a.auto = true;
    a.send(a.apRequest(0).bytes);
    await rep;
    const e = await est;
    assert.equal(e.clientInitiated, true);
    assert.equal(e.latencyMs, null);
  });
});

test('client-initiated from an unregistered CTA auto-registers it when allowed', async () => {
  const { sc, svc, clock, close } = await setup({ policy: { allowClientInitiated: true } });
  const c = await TestCta.create(`new1@${REALM}`, svc, () => clock.now());
  try {
    c.scAddress = sc.address;
    const est = once<EstablishedEvent>(sc, 'established');
    c.send(c.apRequest(0).bytes);
    await est;
    assert.equal(sc.isRegistered(c.principal), true);
    assert.equal(sc.get(c.principal)?.port, c.port);
  } finally {
    await close();
    await c.close();
  }
});

test('clock skew beyond the limit -> Error Reply 37 carrying stime/susec', async () => {
  await withSc({}, async ({ sc, cta, clock }) => {
    const a = await cta('cta1', false);
    const nonce = await wakeNonce(sc, a);
    const err = a.nextKind(KMMID.ERROR_REPLY);
    a.send(a.apRequest(nonce, { ctime: clock.now() - (sc.timers.skewSec + 100) * 1000 }).bytes);
    const ke = decodeKrbError(decodeErrorReply((await err).data).krbError);
    assert.equal(ke.errorCode, KRB_AP_ERR_SKEW);
    assert.equal(ke.stime, clock.now() - (clock.now() % 1000));
    assert.equal(ke.susec, (clock.now() % 1000) * 1000);
    // Skew is a Kerberos failure, not a nonce one: the nonce was not consumed.
    const rep = a.nextKind(KMMID.AP_REPLY);
    a.send(a.apRequest(nonce).bytes);
    await rep;
  });
});

test('expired ticket -> Error Reply 32; unknown kvno -> 44; wrong service key -> 31', async () => {
  await withSc({}, async ({ sc, cta, clock, svc }) => {
    const a = await cta('cta1', false);
    const nonce = await wakeNonce(sc, a);
    const codes: number[] = [];
    const cases = [
      () => a.newTicket({ starttime: clock.now() - 20 * 3600e3, endtime: clock.now() - 3600e3 }),
      () => a.newTicket({ kvno: svc.kvno + 5 }),
      () => a.newTicket({ service: serviceEntry() }), // same name and kvno, different key
    ];
    for (const mk of cases) {
      mk();
      const err = a.nextKind(KMMID.ERROR_REPLY);
      a.send(a.apRequest(nonce).bytes);
      codes.push(decodeKrbError(decodeErrorReply((await err).data).krbError).errorCode);
    }
    assert.deepEqual(codes, [KRB_AP_ERR_TKT_EXPIRED, KRB_AP_ERR_BADKEYVER, KRB_AP_ERR_BAD_INTEGRITY]);
    assert.equal(sc.stats().cta_sc_drops_total.false_nonce, undefined);
  });
});

test('bad HMAC: dropped without a reply, counted', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1', false);
    const nonce = await wakeNonce(sc, a);
    const req = a.apRequest(nonce).bytes;
    req[req.length - 1] ^= 1;
    const before = a.received.length;
    a.send(req);
    await sleep(QUIET_MS);
    assert.equal(a.received.length, before);
    assert.equal(sc.stats().cta_sc_drops_total.bad_hmac, 1);
    // Garbage is counted as malformed.
    a.send(new Uint8Array([2, 1, 0x10, 0x6e, 0x05, 1, 2]));
    await sleep(100);
    assert.equal(sc.stats().cta_sc_drops_total.malformed, 1);
  });
});

test('Wake Up retries with fresh nonces, then the CTA is unreachable', async () => {
  await withSc({}, async ({ sc, cta, clock }) => {
    const a = await cta('cta1', false);
    const unreachable = once<{ principal: string; attempts: number }>(sc, 'unreachable');
    sc.wake(a.principal);
    const nonces = [await nextWakeNonce(a)];
    for (let i = 0; i < sc.timers.wakeRetries; i++) {
      const next = a.nextKind(KMMID.WAKE_UP);
      clock.advance(sc.timers.wakeRetryMs);
      nonces.push(decodeWakeUp((await next).data).serverNonce);
    }
    assert.equal(nonces.length, 3);
    assert.equal(new Set(nonces).size, 3, 'each Wake Up has a fresh nonce');
    for (const n of nonces) assert.notEqual(n, 0);
    clock.advance(sc.timers.wakeRetryMs);
    const u = await unreachable;
    assert.equal(u.principal, a.principal);
    assert.equal(u.attempts, 3);
    assert.equal(sc.get(a.principal)?.state, 'unreachable');
    await sleep(100);
    assert.equal(a.count(KMMID.WAKE_UP), 3);
  });
});

test('Rekey: authenticated trigger under the held session key; the CTA re-uses its ticket', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1');
    let est = once<EstablishedEvent>(sc, 'established');
    sc.wake(a.principal);
    const e1 = await est;
    const ticket = a.minted;
    est = once<EstablishedEvent>(sc, 'established');
    const rk = a.nextKind(KMMID.REKEY);
    assert.equal(sc.rekey(a.principal), 'rekey');
    const r = decodeRekey((await rk).data);
    assert.notEqual(r.serverNonce, 0);
    assert.equal(r.serverPrincipal, SC_PRINCIPAL);
    const e2 = await est;
    assert.equal(a.minted, ticket, 'same ticket');
    assert.notEqual(e2.scSpi, e1.scSpi);
    assert.deepEqual(sc.saKeys(a.principal)?.authScToCta, a.sa?.authScToCta);
    assert.equal(sc.stats().cta_sc_tx_total.rekey, 1);
    assert.equal(sc.stats().cta_sc_tx_total.wake_up, 1);
    // Without a held session key, rekey falls back to Wake Up.
    const b = await cta('cta2', false);
    assert.equal(sc.rekey(b.principal), 'wake');
    await b.nextKind(KMMID.WAKE_UP);
  });
});

test('SA lifetime minus grace triggers a re-key from the housekeeping timer', async () => {
  await withSc({ timers: { saLifetimeSec: 7200, graceSec: 3600, housekeepingMs: 1000 } }, async ({ sc, cta, clock }) => {
    const a = await cta('cta1');
    let est = once<EstablishedEvent>(sc, 'established');
    sc.wake(a.principal);
    await est;
    est = once<EstablishedEvent>(sc, 'established');
    const rk = a.nextKind(KMMID.REKEY);
    clock.advance(3600 * 1000 + 1000);
    await rk;
    await est;
    assert.equal(sc.stats().cta_sc_exchanges_total.established, 2);
  });
});

test('AckRequired false: established when the AP Reply is sent', async () => {
  await withSc({ ackRequired: false }, async ({ sc, cta }) => {
    const a = await cta('cta1', false);
    const est = once<EstablishedEvent>(sc, 'established');
    const nonce = await wakeNonce(sc, a);
    const rep = a.nextKind(KMMID.AP_REPLY);
    a.send(a.apRequest(nonce).bytes);
    await est;
    assert.equal(decodeApReply((await rep).data).ackRequired, false);
  });
});

test('protected signaling: RQNT crosses the SA (ESP) and the 200 comes back', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1');
    const est = once<EstablishedEvent>(sc, 'established');
    sc.wake(a.principal);
    await est;
    const cmd = buildNcsCommand('RQNT', '1201', 'aaln/1@cta1.example.net', ['X: 0123456789AB', 'R: hd(N)']);
    const resp = await sc.sendSignaling(a.principal, cmd);
    const r = parseNcsResponse(resp);
    assert.equal(r.code, 200);
    assert.equal(r.txid, '1201');
    assert.equal(a.sigHandled[0], cmd, 'the CTA decrypted exactly the command');
    const r2 = parseNcsResponse(await sc.sendSignaling(a.principal, buildNcsCommand('NTFY', '1202', 'aaln/1@cta1.example.net')));
    assert.equal(r2.txid, '1202');
    assert.equal(sc.stats().cta_sc_signaling_total.response, 2);
    await assert.rejects(sc.sendSignaling(`nobody@${REALM}`, cmd), /no CTA/);
  });
});

// Issue 13 item 6: the cached AP Reply goes only to the requester it answered.
test('a replayed AP Request from another address or port gets no cached AP Reply', async () => {
  await withSc({}, async ({ sc, cta }) => {
    const a = await cta('cta1', false);
    const nonce = await wakeNonce(sc, a);
    const req = a.apRequest(nonce).bytes;
    const rep = a.nextKind(KMMID.AP_REPLY);
    a.send(req);
    await rep;
    // The attacker: a real socket on another port replays the captured bytes inside the 5 s window.
    const evil = dgram.createSocket('udp4');
    await new Promise<void>((r) => evil.bind(0, '127.0.0.1', () => r()));
    const got: Buffer[] = [];
    evil.on('message', (m) => got.push(m));
    try {
      for (let i = 0; i < 3; i++) evil.send(req, sc.address.port, '127.0.0.1');
      await sleep(QUIET_MS);
      assert.equal(got.length, 0, 'nothing is reflected to the replaying address');
      assert.equal(sc.stats().cta_sc_drops_total.replay_other_address, 3);
      assert.equal(sc.stats().cta_sc_ap_requests_total.retransmit, undefined);
      // The genuine requester still gets its retransmission answered.
      const again = a.nextKind(KMMID.AP_REPLY);
      a.send(req);
      await again;
      assert.equal(sc.stats().cta_sc_ap_requests_total.retransmit, 1);
    } finally {
      evil.close();
    }
  });
});

// Issue 13 item 9: auto-registration gives the protocol's signaling port, and can be turned off.
test('auto-registered CTA gets signaling port 2427 (not its key-management port); registerClientInitiated false drops it', async () => {
  const { sc, svc, clock, close } = await setup({ policy: { allowClientInitiated: true } });
  const c = await TestCta.create(`new1@${REALM}`, svc, () => clock.now());
  try {
    c.scAddress = sc.address;
    const est = once<EstablishedEvent>(sc, 'established');
    c.send(c.apRequest(0).bytes);
    await est;
    assert.equal(sc.get(c.principal)?.port, c.port);
    assert.equal(sc.get(c.principal)?.signalingPort, 2427);
  } finally {
    await close();
    await c.close();
  }
  const w = await setup({ policy: { allowClientInitiated: true, registerClientInitiated: false } });
  const d = await TestCta.create(`new2@${REALM}`, w.svc, () => w.clock.now());
  try {
    d.scAddress = w.sc.address;
    d.send(d.apRequest(0).bytes);
    await sleep(QUIET_MS);
    assert.equal(w.sc.isRegistered(d.principal), false);
    assert.equal(d.received.length, 0);
    assert.equal(w.sc.stats().cta_sc_drops_total.client_initiated_unknown_cta, 1);
  } finally {
    await w.close();
    await d.close();
  }
});

test('cta sc --no-register-client-initiated is accepted and documented', async () => {
  const { help } = await import('../host-tools/sc/cli.ts');
  assert.match(help, /--no-register-client-initiated/);
});
