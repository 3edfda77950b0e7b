// Attacks end to end over real UDP (issue 6, "Hostile input"): the real Signaling
// Controller, the embedded KDC and CTAs running the real firmware bundle in the
// host emulator. Each CTA talks to the SC through a tap (UdpPair) so the attacker
// can capture real traffic, inject datagrams with the SC's address spoofed, and
// the test can see every datagram the SC sends to a CTA. The unit tests
// (sc*.test.ts, agent*.test.ts) check the same rules against test-side peers;
// here the genuine components are attacked over the network.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { EstablishedEvent, FalseNonceEvent, ScServer } from '../host-tools/sc/server.ts';
import { decodeErrorReply, decodeWakeUp, encodeWakeUp, KMMID, DOI } from '../firmware/proto/pktc.ts';
import { decodeKrbError, KRB_AP_ERR_REPEAT } from '../firmware/proto/krb5.ts';
import { UdpPair } from './helpers/impair-proxy.ts';
import { Realm, startEmuCta, startNodeCta, ctaName, nextEvent, until, sleep, SC_NAME, type EmuCta, type Endpoint } from './helpers/net-world.ts';

/** How long "no reply at all" is listened for (real time). */
const QUIET_MS = 700;
/** CTA timers: retransmit at 300/600 ms, abort at 1 s (the profile's 1/2/3 s, scaled down). */
const CTA_TIMERS = { retransmitMs: [300, 600], abortMs: 1000 };
/** SC: nonces and cached AP Replies live 1.5 s. */
const SC_TIMERS = { nonceLifetimeMs: 1500, saRecoveredTimeoutMs: 1500, wakeRetryMs: 2000, wakeRetries: 2 };

type Seen = { dir: 'toL' | 'toR'; data: Uint8Array; at: number };
type Tapped = EmuCta & { pair: UdpPair; seen: Seen[] };

let realm: Realm;
let sc: ScServer;
let A: Tapped;
let B: Tapped;
let attacker: dgram.Socket;
const atAttacker: Uint8Array[] = [];

async function tapped(i: number): Promise<Tapped> {
  const seen: Seen[] = [];
  const pair = await UdpPair.open({ seed: i, r: { host: sc.address.host, port: sc.address.port }, tap: (dir, data) => seen.push({ dir, data, at: Date.now() }) });
  realm.onClose(() => pair.close());
  const c = await startEmuCta(realm, ctaName(i), { sc: pair.forL, kdc: realm.kdcAddr, timers: CTA_TIMERS });
  pair.setL({ host: '127.0.0.1', port: c.km });
  sc.register(c.name, '127.0.0.1', pair.forR.port, c.sig);
  return { ...c, pair, seen };
}

/** Datagrams of a kind seen on a tap since index `from`. */
function kinds(t: Tapped, dir: 'toL' | 'toR', kmmid: number, from = 0): Uint8Array[] {
  return t.seen.slice(from).filter((s) => s.dir === dir && s.data[0] === kmmid).map((s) => s.data);
}
function stat(family: string, label: string): number {
  return (sc.stats() as unknown as { [f: string]: { [l: string]: number } })[family]?.[label] ?? 0;
}
async function establish(t: Tapped): Promise<EstablishedEvent> {
  const ev = nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === t.name);
  sc.wake(t.name);
  const e = await ev;
  await until(() => t.cta.status().scs[0].state === 'established', 3000, 'CTA established');
  return e;
}
function sendFromAttacker(d: Uint8Array, to: Endpoint): void {
  attacker.send(d, to.port, to.host);
}

before(async () => {
  realm = new Realm('cta-attack-');
  await realm.startKdc();
  sc = await realm.startSc({ timers: SC_TIMERS, policy: { allowClientInitiated: true } });
  attacker = dgram.createSocket('udp4');
  attacker.on('message', (m) => atAttacker.push(new Uint8Array(m)));
  await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', () => r()));
  realm.onClose(() => new Promise<void>((r) => attacker.close(() => r())));
  A = await tapped(1);
  B = await tapped(2);
  await establish(A);
  await establish(B);
});

after(async () => {
  // Nothing any attack did caused an internal error anywhere.
  const internal = stat('cta_sc_drops_total', 'internal_error');
  const errs = [A, B].flatMap((c) => c.emu.errors);
  const agentInternal = [A, B].map((c) => c.cta.counters.drops.internal);
  await realm.close();
  assert.equal(internal, 0);
  assert.deepEqual(errs, []);
  assert.deepEqual(agentInternal, [0, 0]);
});

test('forged Wake Up with a nonce the SC never sent: the real CTA answers, the SC disregards its AP Request silently and counts every copy as a false nonce', async () => {
  const mark = A.seen.length;
  const fn0 = stat('cta_sc_drops_total', 'false_nonce');
  const err0 = stat('cta_sc_tx_total', 'error_reply');
  const aborted0 = A.cta.counters.sessionsAborted;
  const events: FalseNonceEvent[] = [];
  const onFalse = (e: FalseNonceEvent) => events.push(e);
  sc.on('false_nonce', onFalse);
  try {
    // The attacker spoofs the SC's address: the Wake Up is unauthenticated by design.
    A.pair.injectToL(encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0x5eed1234, serverPrincipal: SC_NAME }));
    await until(() => A.cta.counters.sessionsAborted > aborted0, 5000, 'the CTA to abort its AP Request session');
    await sleep(QUIET_MS);
    const sent = kinds(A, 'toR', KMMID.AP_REQUEST, mark);
    assert.ok(sent.length >= 1, 'the CTA answered the forged trigger');
    assert.equal(A.seen.slice(mark).filter((s) => s.dir === 'toL').length, 0, 'the SC sent nothing at all to the CTA');
    assert.equal(stat('cta_sc_drops_total', 'false_nonce') - fn0, sent.length, 'each AP Request copy counted as a false nonce');
    assert.equal(stat('cta_sc_tx_total', 'error_reply'), err0, 'no Error Reply for a false nonce');
    assert.ok(events.length >= 1 && events.every((e) => e.principal === A.name && e.nonce === 0x5eed1234 && e.reason === 'unknown'));
    assert.equal(A.cta.status().scs[0].sa !== null, true, "the CTA's existing SA is untouched");
  } finally {
    sc.off('false_nonce', onFalse);
  }
});

test('a captured AP Request: replayed inside the window from another address/port gets nothing (the cached AP Reply goes only to its requester, issue 13), no new SA; replayed after its nonce was consumed and the window closed gets nothing and counts as a false nonce', async () => {
  const mark = A.seen.length;
  const est = await establish(A);
  const req = kinds(A, 'toR', KMMID.AP_REQUEST, mark)[0];
  const reply = kinds(A, 'toL', KMMID.AP_REPLY, mark)[0];
  assert.ok(req && reply);
  const accepted0 = stat('cta_sc_ap_requests_total', 'accepted');
  const established0 = stat('cta_sc_exchanges_total', 'established');
  // 1. Inside the window: byte-identical, but not from the requester -> nothing (counted).
  atAttacker.length = 0;
  const other0 = stat('cta_sc_drops_total', 'replay_other_address');
  sendFromAttacker(req, sc.address);
  await until(() => stat('cta_sc_drops_total', 'replay_other_address') > other0, 2000, 'the replay to be dropped');
  await sleep(QUIET_MS);
  assert.deepEqual(atAttacker, [], 'the cached AP Reply is not reflected to the replaying address');
  assert.equal(stat('cta_sc_ap_requests_total', 'accepted'), accepted0);
  // 2. After the window (nonce consumed, cached reply expired).
  await sleep(SC_TIMERS.nonceLifetimeMs + 300);
  atAttacker.length = 0;
  const fn0 = stat('cta_sc_drops_total', 'false_nonce');
  const err0 = stat('cta_sc_tx_total', 'error_reply');
  const ev = nextEvent<FalseNonceEvent>(sc, 'false_nonce', (e) => e.principal === A.name, 3000);
  sendFromAttacker(req, sc.address);
  const e = await ev;
  assert.equal(e.reason, 'unknown', 'a consumed nonce is no longer known');
  await sleep(QUIET_MS);
  assert.deepEqual(atAttacker, [], 'no reply of any kind');
  assert.equal(stat('cta_sc_drops_total', 'false_nonce') - fn0, 1);
  assert.equal(stat('cta_sc_tx_total', 'error_reply'), err0, 'no Error Reply: the SC did not initiate this session');
  assert.equal(stat('cta_sc_ap_requests_total', 'accepted'), accepted0);
  assert.equal(stat('cta_sc_exchanges_total', 'established'), established0, 'no new SA');
  assert.equal(sc.saKeys(A.name)?.scSpi, est.scSpi, 'the SC still holds the same SA');
});

test('a replayed client-initiated AP Request (nonce 0): nothing to another address inside the window, then KRB_AP_ERR_REPEAT from the replay cache (PROTOCOL.md), never a second SA', async () => {
  // A Node-platform CTA that starts a client-initiated exchange on boot, through a tap.
  const seen: Seen[] = [];
  const pair = await UdpPair.open({ seed: 9, r: { host: sc.address.host, port: sc.address.port }, tap: (dir, data) => seen.push({ dir, data, at: Date.now() }) });
  realm.onClose(() => pair.close());
  const name = ctaName(9);
  const ev = nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === name);
  const c = await startNodeCta(realm, name, { sc: pair.forL, kdc: realm.kdcAddr, timers: CTA_TIMERS, clientInitiatedOnBoot: true });
  pair.setL({ host: '127.0.0.1', port: c.km });
  const est = await ev;
  assert.equal(est.clientInitiated, true);
  const req = seen.find((s) => s.dir === 'toR' && s.data[0] === KMMID.AP_REQUEST)!.data;
  const reply = seen.find((s) => s.dir === 'toL' && s.data[0] === KMMID.AP_REPLY)!.data;
  const ci0 = stat('cta_sc_exchanges_total', 'established_client_initiated');
  assert.ok(reply);
  atAttacker.length = 0;
  const other0 = stat('cta_sc_drops_total', 'replay_other_address');
  sendFromAttacker(req, sc.address);
  await until(() => stat('cta_sc_drops_total', 'replay_other_address') > other0, 2000, 'the replay to be dropped');
  await sleep(QUIET_MS);
  assert.deepEqual(atAttacker, [], 'the cached AP Reply is not reflected');
  await sleep(SC_TIMERS.saRecoveredTimeoutMs + 300);
  atAttacker.length = 0;
  const rep0 = stat('cta_sc_error_replies_total', String(KRB_AP_ERR_REPEAT));
  sendFromAttacker(req, sc.address);
  await until(() => atAttacker.length > 0, 2000, 'an Error Reply');
  assert.equal(atAttacker[0][0], KMMID.ERROR_REPLY);
  assert.equal(decodeKrbError(decodeErrorReply(atAttacker[0]).krbError).errorCode, KRB_AP_ERR_REPEAT);
  assert.equal(stat('cta_sc_error_replies_total', String(KRB_AP_ERR_REPEAT)) - rep0, 1);
  await sleep(300);
  assert.equal(stat('cta_sc_exchanges_total', 'established_client_initiated'), ci0, 'no second SA');
  assert.equal(sc.saKeys(name)?.scSpi, est.scSpi);
  assert.equal(c.agent.counters.drops.internal, 0);
  await c.stop();
  sc.unregister(name);
});

test("the nonce the SC sent to CTA A, delivered to CTA B: B's genuine AP Request is disregarded (wrong CTA, counted, no reply) and A still completes with it", async () => {
  const markA = A.seen.length;
  const markB = B.seen.length;
  const wrong0 = stat('cta_sc_drops_total', 'false_nonce');
  const falseEv = nextEvent<FalseNonceEvent>(sc, 'false_nonce', (e) => e.principal === B.name, 5000);
  const estA = nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === A.name, 5000);
  // Hold A's copy of the Wake Up back a little so B answers first.
  A.pair.toL.imp = { delayMs: 300 };
  try {
    sc.wake(A.name);
    await until(() => A.seen.slice(markA).some((s) => s.dir === 'toL' && s.data[0] === KMMID.WAKE_UP), 2000, "A's Wake Up");
    const wake = kinds(A, 'toL', KMMID.WAKE_UP, markA)[0];
    B.pair.injectToL(wake); // the attacker relays it to B with the SC's address
    const e = await falseEv;
    assert.equal(e.reason, 'wrong_cta');
    assert.equal(e.nonce, decodeWakeUp(wake).serverNonce);
    await estA;
  } finally {
    A.pair.toL.imp = {};
  }
  await sleep(QUIET_MS);
  const bReqs = kinds(B, 'toR', KMMID.AP_REQUEST, markB).length;
  assert.ok(bReqs >= 1, 'B answered');
  assert.equal(B.seen.slice(markB).filter((s) => s.dir === 'toL').length, 0, 'the SC sent nothing to B');
  assert.equal(stat('cta_sc_drops_total', 'false_nonce') - wrong0, bReqs);
  assert.equal(A.cta.status().scs[0].state, 'established');
});

test('forged Rekey (bad HMAC) and a replayed Rekey (old timestamp) at the CTA: ignored, counted, SA unchanged, nothing sent', async () => {
  const mark = A.seen.length;
  const ev = nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === A.name);
  assert.equal(sc.rekey(A.name), 'rekey');
  await ev;
  await until(() => A.cta.status().scs[0].state === 'established', 3000, 'CTA re-keyed');
  const rekey = kinds(A, 'toL', KMMID.REKEY, mark)[0];
  assert.ok(rekey, 'captured the real Rekey');
  const sa0 = A.cta.status().scs[0].sa;
  const c0 = { ...A.cta.counters, drops: { ...A.cta.counters.drops } };
  const mark2 = A.seen.length;
  // Forged: a different SA lifetime, the HMAC left as it was.
  const forged = rekey.slice();
  forged[forged.length - 26] ^= 0x01; // last byte of SALifetime (HMAC 20, ReEstablish 1, GracePeriod 4 after it)
  A.pair.injectToL(forged);
  await until(() => A.cta.counters.drops.bad_hmac > c0.drops.bad_hmac, 2000, 'bad_hmac');
  // Replayed: the genuine bytes again (its timestamp is not newer than the last accepted one).
  A.pair.injectToL(rekey);
  await until(() => A.cta.counters.drops.stale_rekey > c0.drops.stale_rekey, 2000, 'stale_rekey');
  await sleep(QUIET_MS);
  const c1 = A.cta.counters;
  assert.equal(c1.drops.bad_hmac - c0.drops.bad_hmac, 1);
  assert.equal(c1.drops.stale_rekey - c0.drops.stale_rekey, 1);
  assert.equal(c1.rekeysAccepted, c0.rekeysAccepted);
  assert.equal(c1.apRequestsSent, c0.apRequestsSent, 'no AP Request sent');
  assert.equal(A.seen.slice(mark2).filter((s) => s.dir === 'toR').length, 0, 'nothing went to the SC');
  assert.deepEqual(A.cta.status().scs[0].sa, sa0, 'SA unchanged');
});

test('a Wake Up naming an unknown SC: dropped and counted, no AP Request, no KDC traffic', async () => {
  const c0 = { ...A.cta.counters, drops: { ...A.cta.counters.drops } };
  const mark = A.seen.length;
  const issued0 = realm.kdc!.stats().udpRequests;
  A.pair.injectToL(encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0x1234, serverPrincipal: 'sc/rogue.net.test@NET.CTA.TEST' }));
  sendFromAttacker(encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0x1235, serverPrincipal: 'sc/sc1.net.test@OTHER.REALM' }), { host: '127.0.0.1', port: A.km });
  // The attacker's copy comes from a port no SC is pinned to: dropped before its principal is read.
  await until(() => A.cta.counters.drops.unknown_sc - c0.drops.unknown_sc >= 1 && A.cta.counters.drops.wrong_address - c0.drops.wrong_address >= 1, 2000, 'unknown_sc and wrong_address');
  await sleep(QUIET_MS);
  assert.equal(A.cta.counters.drops.unknown_sc - c0.drops.unknown_sc, 1);
  assert.equal(A.cta.counters.drops.wrong_address - c0.drops.wrong_address, 1);
  assert.equal(A.cta.counters.wakeUps, c0.wakeUps);
  assert.equal(A.seen.slice(mark).filter((s) => s.dir === 'toR').length, 0);
  assert.equal(realm.kdc!.stats().udpRequests, issued0);
});

test('oversized (> 4096 and 65507-byte) and truncated datagrams at the SC and the CTA: no crash, counted as malformed; both still work', async () => {
  const mark = A.seen.length;
  const req = kinds(A, 'toR', KMMID.AP_REQUEST)[0];
  const wake = kinds(A, 'toL', KMMID.WAKE_UP)[0];
  const big = (n: number, first: number) => {
    const b = new Uint8Array(n).fill(0x41);
    b[0] = first;
    b[1] = 1;
    b[2] = 0x10;
    return b;
  };
  // The SC.
  const m0 = stat('cta_sc_drops_total', 'malformed');
  atAttacker.length = 0;
  for (const d of [big(4097, KMMID.AP_REQUEST), big(65507, KMMID.AP_REQUEST), big(5000, KMMID.SA_RECOVERED), req.subarray(0, req.length - 1), req.subarray(0, 40), req.subarray(0, 3), new Uint8Array(0)]) sendFromAttacker(d, sc.address);
  await until(() => stat('cta_sc_drops_total', 'malformed') - m0 >= 7, 3000, 'SC malformed drops');
  await sleep(QUIET_MS);
  assert.equal(stat('cta_sc_drops_total', 'malformed') - m0, 7);
  assert.deepEqual(atAttacker, [], 'no reply to malformed input');
  // The CTA (through the SC's spoofed address).
  const c0 = A.cta.counters.drops.malformed;
  const np0 = A.cta.counters.drops.no_pending;
  const rx0 = A.cta.counters.rx;
  for (const d of [big(4097, KMMID.WAKE_UP), big(65507, KMMID.WAKE_UP), big(5000, KMMID.AP_REPLY), wake.subarray(0, wake.length - 1), wake.subarray(0, 8), wake.subarray(0, 2)]) A.pair.injectToL(d);
  await until(() => A.cta.counters.rx - rx0 >= 6, 3000, 'CTA received them');
  await sleep(200);
  // The oversized AP Reply arrives cut at the board's 2048-byte receive buffer and is dropped
  // before decoding (no exchange pending); the other five are malformed.
  assert.equal(A.cta.counters.drops.malformed - c0, 5, 'five counted as malformed');
  assert.equal(A.cta.counters.drops.no_pending - np0, 1, 'the AP Reply dropped unread');
  assert.equal(A.seen.slice(mark).filter((s) => s.dir === 'toR').length, 0);
  await establish(A);
});

test('Wake Up flood: 10,000 genuine-looking Wake Ups at the emulated CTA keep device memory flat; then a legitimate Wake Up succeeds', { timeout: 120_000 }, async (t) => {
  const c = A;
  // The flood's AP Requests are not the point: drop them on the way to the SC.
  c.pair.toR.imp = { loss: 1 };
  const mem0 = c.emu.memory().usage;
  const rx0 = c.cta.counters.rx;
  const wake0 = c.cta.counters.wakeUps;
  let peak = mem0;
  const N = 10_000;
  try {
    for (let i = 0; i < N; i += 100) {
      for (let k = 0; k < 100; k++) c.pair.injectToL(encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0x10000 + i + k, serverPrincipal: SC_NAME }));
      let last = -1;
      let still = Date.now();
      while (c.cta.counters.rx - rx0 < i + 100) {
        const got = c.cta.counters.rx;
        if (got !== last) {
          last = got;
          still = Date.now();
        } else if (Date.now() - still > 200) break;
        await sleep(2);
      }
      peak = Math.max(peak, c.emu.memory().usage);
    }
    await sleep(200);
  } finally {
    c.pair.toR.imp = {};
  }
  const got = c.cta.counters.rx - rx0;
  const mem1 = c.emu.memory().usage;
  t.diagnostic(`flood: ${got}/${N} arrived, ${c.cta.counters.wakeUps - wake0} Wake Ups taken, memory ${mem0} -> peak ${peak} -> ${mem1} variables (of ${c.emu.memory().total}); slots in use ${c.cta.status().slotsInUse}/${c.cta.status().slots}`);
  assert.ok(got >= N * 0.9, `the CTA took in ${got}`);
  assert.ok(peak - mem0 <= 64, `device memory flat during the flood (${mem0} -> peak ${peak})`);
  assert.ok(c.cta.status().slotsInUse <= c.cta.status().slots);
  // Let the last pending session abort, then a legitimate Wake Up.
  await sleep(CTA_TIMERS.abortMs + 200);
  await establish(c);
  assert.ok(Math.abs(c.emu.memory().usage - mem0) <= 64, 'memory back to where it was');
});
