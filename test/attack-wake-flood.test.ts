// Issue 13 item 4, end to end over real UDP on loopback: the real SC and embedded KDC, a CTA
// running the real firmware bundle in the host emulator (provisioned with the SC's HOST:PORT,
// as `cta provision --sc NAME=HOST:PORT` does), and an attacker on the SC's host sending
// ~200 forged Wake Ups per second (right principal, fresh nonces, from its own port) while
// the SC wakes the CTA. The genuine exchange must complete on the first Wake Up.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import type { EstablishedEvent, WakeEvent } from '../host-tools/sc/server.ts';
import { encodeWakeUp, KMMID, DOI } from '../firmware/proto/pktc.ts';
import { Realm, startEmuCta, ctaName, nextEvent, until, sleep, SC_NAME } from './helpers/net-world.ts';

test('a genuine exchange completes on the first Wake Up under 200 forged Wake Ups/s from the SC host', { timeout: 60000 }, async () => {
  const realm = new Realm('cta-wake-flood-');
  const attacker = dgram.createSocket('udp4');
  let flooding = true;
  try {
    await realm.startKdc();
    const sc = await realm.startSc({ timers: { nonceLifetimeMs: 5000, wakeRetryMs: 3000, wakeRetries: 2 } });
    const name = ctaName(1);
    const c = await startEmuCta(realm, name, { sc: sc.address, kdc: realm.kdcAddr });
    sc.register(name, '127.0.0.1', c.km, c.sig);
    // The ticket is prefetched at boot: wait for it, so the measured exchange needs no KDC trip.
    await until(() => c.cta.status().counters.ticketsCached >= 1, 10000, 'ticket prefetch');

    await new Promise<void>((r) => attacker.bind(0, '127.0.0.1', () => r()));
    const answered: Buffer[] = [];
    attacker.on('message', (m) => answered.push(m));
    let sent = 0;
    const flood = (async () => {
      // 200/s: a burst of 2 every 10 ms.
      while (flooding) {
        for (let k = 0; k < 2; k++) attacker.send(encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: 0x40000000 + sent++, serverPrincipal: SC_NAME }), c.km, '127.0.0.1');
        await sleep(10);
      }
    })();
    await sleep(500); // the flood is well under way

    const wakes: WakeEvent[] = [];
    sc.on('wake', (w: WakeEvent) => wakes.push(w));
    const est = nextEvent<EstablishedEvent>(sc, 'established', (e) => e.principal === name, 15000);
    const t0 = Date.now();
    sc.wake(name);
    const e = await est;
    const tookMs = Date.now() - t0;
    await sleep(300);
    flooding = false;
    await flood;

    assert.deepEqual(
      wakes.filter((w) => w.principal === name).map((w) => w.attempt),
      [0],
      'one Wake Up (attempt 0): no retry was needed',
    );
    assert.ok(tookMs < 3000, `established in ${tookMs} ms (the SC's Wake Up retry is 3 s)`);
    assert.ok(e.latencyMs !== null && e.latencyMs < 3000);
    const st = c.cta.status();
    assert.equal(st.scs[0].state, 'established');
    assert.ok(sent >= 100, `the attacker sent ${sent}`);
    const d = st.counters.drops;
    assert.ok(d.wrong_address >= sent * 0.9, `wrong_address ${d.wrong_address} of ${sent} forged`);
    assert.equal(answered.filter((m) => m[0] === KMMID.AP_REQUEST).length, 0, 'no AP Request went to the attacker');
  } finally {
    flooding = false;
    attacker.close();
    await realm.close();
  }
});
