// Network fuzzing of the RUNNING servers (issue 6, "Hostile input"): tens of
// thousands of mutated datagrams, seeded from traffic captured off a real
// exchange, at the real Signaling Controller (UDP), the embedded KDC (UDP) and
// an emulated CTA (the firmware bundle in the host emulator: its key-management,
// KDC and signaling sockets). Afterwards each still completes a fresh exchange
// and nothing logged an internal/uncaught error.
// FUZZ_NET_ITERATIONS=N scales the number of datagrams per target.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { EstablishedEvent, ScError } from '../host-tools/sc/server.ts';
import { espSeal, ESP_NEXT_HEADER, buildNcsCommand, parseNcsResponse } from '../firmware/proto/esp.ts';
import { encodeMessage } from '../firmware/proto/pktc.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { errorReply } from './helpers/pktc-fixtures.ts';
import { Prng, mutate, fuzzSeed } from './helpers/fuzz.ts';
import { UdpPair, UdpRelay } from './helpers/impair-proxy.ts';
import { Realm, startEmuCta, startNodeCta, ctaName, nextEvent, until, sleep, type Endpoint } from './helpers/net-world.ts';

const N = (() => {
  const v = Number(process.env.FUZZ_NET_ITERATIONS);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : 10_000;
})();
const SEED = fuzzSeed(0x6e657466);

function sum(o: { [k: string]: number } | undefined): number {
  return Object.values(o ?? {}).reduce((a, b) => a + b, 0);
}

/**
 * Sends n datagrams from gen() to `to`, in batches, waiting after each batch until
 * the receiver's own counter shows it has taken them in (so the socket buffer never
 * overflows and the count of what arrived is exact). Returns how many arrived.
 */
type Sender = (d: Uint8Array) => void;
async function blast(send: Sender, n: number, gen: () => Uint8Array, received: () => number, batch = 200): Promise<number> {
  const base = received();
  let sent = 0;
  while (sent < n) {
    const k = Math.min(batch, n - sent);
    for (let i = 0; i < k; i++) send(gen());
    sent += k;
    // Wait until the receiver has counted them, or until it stops making progress.
    let last = -1;
    let still = Date.now();
    for (;;) {
      const got = received() - base;
      if (got >= sent) break;
      if (got !== last) {
        last = got;
        still = Date.now();
      } else if (Date.now() - still > 40) break;
      await sleep(2);
    }
  }
  await sleep(50);
  return received() - base;
}
const from = (sock: dgram.Socket, to: Endpoint): Sender => (d) => sock.send(d, to.port, to.host);

test('mutated datagrams at the running SC, KDC and emulated CTA; all still complete fresh exchanges, no internal errors', { timeout: 180_000 }, async (t) => {
  const realm = new Realm('cta-fuzznet-');
  const rng = new Prng(SEED);
  const attacker = dgram.createSocket('udp4');
  await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', () => r()));
  attacker.on('message', () => undefined); // Error Replies from the SC / KDC errors: ignored
  realm.onClose(() => new Promise<void>((r) => attacker.close(() => r())));
  try {
    await realm.startKdc();
    // Taps: capture the real traffic of one exchange as fuzz seeds.
    const cap = { toSc: [] as Uint8Array[], toCta: [] as Uint8Array[], asReq: [] as Uint8Array[], asRep: [] as Uint8Array[] };
    const kdcRelay = await UdpRelay.open({ seed: 1, target: realm.kdcAddr, tap: (dir, d) => (dir === 'toServer' ? cap.asReq : cap.asRep).push(d) });
    realm.onClose(() => kdcRelay.close());
    const sc = await realm.startSc({ timers: { wakeRetryMs: 1500, nonceLifetimeMs: 3000 } });
    const scInternal: ScError[] = [];
    sc.on('error', (e: ScError) => {
      if (e.kind === 'internal') scInternal.push(e);
    });
    const pair = await UdpPair.open({ seed: 2, r: { host: sc.address.host, port: sc.address.port }, tap: (dir, d) => (dir === 'toR' ? cap.toSc : cap.toCta).push(d) });
    realm.onClose(() => pair.close());
    const a = await startEmuCta(realm, ctaName(1), { sc: pair.forL, kdc: { host: '127.0.0.1', port: kdcRelay.port } });
    pair.setL({ host: '127.0.0.1', port: a.km });
    sc.register(a.name, '127.0.0.1', pair.forR.port, a.sig);
    let est = nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === a.name);
    sc.wake(a.name);
    await est;
    est = nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === a.name);
    assert.equal(sc.rekey(a.name), 'rekey');
    const firstSa = await est;
    const sig1 = await sc.sendSignaling(a.name, buildNcsCommand('RQNT', '501', 'aaln/1@cta1'));
    assert.equal(parseNcsResponse(sig1).code, 200);
    assert.ok(cap.toSc.length >= 4 && cap.toCta.length >= 4 && cap.asReq.length >= 2 && cap.asRep.length >= 2, 'captured a full exchange');

    // ---- the SC ----
    const scRx = () => sum(sc.stats().cta_sc_rx_total);
    const scSeeds = cap.toSc.concat(cap.toCta);
    const rs = rng.fork();
    const scGot = await blast(from(attacker, sc.address), 2 * N, () => mutate(rs, rs.pick(scSeeds), scSeeds), scRx);
    const s1 = sc.stats();
    t.diagnostic(`SC: ${scGot}/${2 * N} datagrams arrived; drops ${JSON.stringify(s1.cta_sc_drops_total)}; error replies ${sum(s1.cta_sc_error_replies_total)}`);
    assert.ok(scGot >= 2 * N * 0.9, `the SC took in ${scGot} of ${2 * N}`);
    assert.ok((s1.cta_sc_drops_total.malformed ?? 0) > N / 4, 'most mutants were refused as malformed');
    assert.equal(s1.cta_sc_drops_total.internal_error, undefined);
    assert.deepEqual(scInternal, []);
    assert.equal(s1.cta_sc_exchanges_total.established, 2, 'no mutant established a session');

    // ---- the KDC ----
    const kdc = realm.kdc!;
    const kdcRx = () => kdc.stats().udpRequests;
    const rk = rng.fork();
    const kdcGot = await blast(from(attacker, realm.kdcAddr), N, () => mutate(rk, rk.pick(cap.asReq), cap.asReq), kdcRx);
    const ks = kdc.stats();
    t.diagnostic(`KDC: ${kdcGot}/${N} arrived; issued ${ks.issued}; errors ${JSON.stringify(ks.errors)}; dropped ${ks.dropped}`);
    assert.ok(kdcGot >= N * 0.9, `the KDC took in ${kdcGot} of ${N}`);
    assert.deepEqual(realm.kdcInternalErrors, []);

    // ---- the emulated CTA: key management, KDC and signaling sockets ----
    const ctaRx = () => a.cta.counters.rx as number;
    const ctaSeeds = cap.toCta.concat([encodeMessage(null, null, errorReply())]);
    const st = a.cta.status().scs[0];
    const espSeeds = [0, 40, 300].map((n, i) =>
      espSeal(nodeBackend, { spi: st.sa.ctaSpi, seq: 1000 + i, encKey: rng.bytes(16), authKey: rng.bytes(20) }, rng.bytes(n), ESP_NEXT_HEADER.UDP),
    );
    const rc = rng.fork();
    const third = Math.ceil(N / 3);
    // The emulator's receive buffer is the board's (2048 bytes); longer datagrams are cut there, as on the board.
    // Key management: half from the attacker's own address, half with the SC's address spoofed (through the pair).
    const toKm = from(attacker, { host: '127.0.0.1', port: a.km });
    let flip = 0;
    const kmGot = await blast((d) => (flip++ & 1 ? toKm(d) : pair.injectToL(d)), third, () => mutate(rc, rc.pick(ctaSeeds), ctaSeeds), ctaRx, 50);
    // KDC answers are only taken from the KDC's address: spoof it (from the relay the CTA talks to).
    const kdcSideGot = await blast((d) => kdcRelay.injectToClient(d, { host: '127.0.0.1', port: a.kdcPort }), third, () => mutate(rc, rc.pick(cap.asRep), cap.asRep), ctaRx, 50);
    const sigGot = await blast(from(attacker, { host: '127.0.0.1', port: a.sig }), third, () => mutate(rc, rc.pick(espSeeds), espSeeds), ctaRx, 50);
    const c = a.cta.counters;
    t.diagnostic(`CTA: ${kmGot}+${kdcSideGot}+${sigGot}/${3 * third} arrived; drops ${JSON.stringify(c.drops)}; wakeUps ${c.wakeUps}; memory ${JSON.stringify(a.emu.memory())}`);
    assert.ok(kmGot + kdcSideGot + sigGot >= 3 * third * 0.9, 'the CTA took in the datagrams');
    assert.equal(c.drops.internal, 0, 'no internal error in the agent');
    assert.deepEqual(a.emu.errors, [], 'no uncaught error in the emulator');
    assert.ok(!a.emu.logs.some((l) => /uncaught|exception/i.test(l)), 'no uncaught error printed');
    assert.equal(c.rekeysAccepted, 1, 'no mutated Rekey was accepted');

    // ---- afterwards: fresh exchanges everywhere ----
    await sleep(100);
    est = nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === a.name, 15000);
    sc.wake(a.name);
    const again = await est;
    assert.notEqual(again.scSpi, firstSa.scSpi, 'a new SA');
    assert.equal(a.cta.status().scs[0].sa.scSpi, again.scSpi, 'the CTA holds the SC SA');
    const sig2 = await sc.sendSignaling(a.name, buildNcsCommand('RQNT', '502', 'aaln/1@cta1'));
    assert.equal(parseNcsResponse(sig2).code, 200);
    // A CTA that never had a ticket: a fresh AS exchange at the fuzzed KDC, then the AP exchange.
    const issuedBefore = kdc.stats().issued;
    const b = await startNodeCta(realm, ctaName(2), { sc: sc.address, kdc: realm.kdcAddr });
    sc.register(b.name, '127.0.0.1', b.km, b.sig);
    est = nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === b.name, 15000);
    sc.wake(b.name);
    await est;
    assert.equal(kdc.stats().issued, issuedBefore + 1, 'the KDC issued a fresh ticket');
    assert.equal(b.agent.counters.drops.internal, 0);
    await until(() => sc.status().hasOwnProperty('outstandingNonces'), 100, 'status');
    const status = sc.status() as { outstandingNonces: number; pendingSaRecovered: number };
    assert.ok(status.pendingSaRecovered <= 2, `pending SA Recovered bounded (${status.pendingSaRecovered})`);
    assert.deepEqual(scInternal, []);
    assert.deepEqual(realm.kdcInternalErrors, []);
    assert.equal(a.cta.counters.drops.internal, 0);
  } finally {
    await realm.close();
  }
});
