// CTA agent: service-ticket prefetch. At boot (after a small random delay) the CTA
// gets its ticket for every configured SC, refreshes it before it stops being
// usable (ticketRefreshMarginSec), and backs off (with jitter, bounded retries,
// then periodically) while the KDC is unreachable; so a Wake Up is answered with
// no KDC round trip, well inside the SC's 5 s nonce lifetime even on a slow board.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeWorld, SC_PRINCIPAL, REALM } from './helpers/mini-sc.ts';
import { makeConfig, run } from '../host-tools/provision/cli.ts';
import { configFromObject, decodeConfig } from '../host-tools/provision/config.ts';
import { encodeKeytab } from '../firmware/proto/keytab.ts';

const CTA = '10.0.0.2';
type World = ReturnType<typeof makeWorld>;

function asReqs(w: World) {
  return w.net.sentFrom(CTA, 88).length;
}
function kmSent(w: World) {
  return w.net.sentFrom(CTA, 1293).length;
}
/** Records the fake-clock time of every datagram the CTA sends to the KDC. */
function kdcTimes(w: World): number[] {
  const times: number[] = [];
  w.net.filter = (p) => {
    if (p.from === CTA && p.toPort === 88) times.push(w.clock.now());
    return true;
  };
  return times;
}

test('boot: the ticket for the SC is fetched after a small random delay, without any Wake Up', () => {
  const w = makeWorld({ timers: { prefetchDelayMs: 2000 } });
  assert.equal(w.config.prefetchTicket, true, 'prefetch is on by default');
  assert.equal(asReqs(w), 0, 'not at the very instant of boot (a fleet powering up together spreads out)');
  w.clock.advance(2001);
  assert.equal(w.kdc.issued, 1);
  assert.equal(asReqs(w), 2, 'AS-REQ, PREAUTH_REQUIRED, AS-REQ with PA-ENC-TIMESTAMP');
  assert.equal(kmSent(w), 0, 'nothing sent to the SC');
  const st = w.agent.status();
  assert.ok(st.scs[0].ticketEndtime! > w.clock.now());
  assert.equal(st.scs[0].state, 'idle');
  assert.equal(st.counters.ticketPrefetches, 1);
  assert.equal(st.counters.asExchanges, 1);
  assert.equal(st.slotsInUse, 0);
});

test('boot with several SCs: one ticket per SC, each fetched once', () => {
  const sc2 = 'sc/sc2.example.net@' + REALM;
  const w = makeWorld({ scs: [{ principal: SC_PRINCIPAL, address: '10.0.0.1', port: 1293 }, { principal: sc2 }] });
  w.kdc.addPrincipal(sc2, 18, new Uint8Array(32).fill(7), 1);
  w.clock.advance(10000);
  assert.equal(w.kdc.issued, 2);
  const st = w.agent.status();
  assert.ok(st.scs[0].ticketEndtime !== null && st.scs[1].ticketEndtime !== null);
  assert.equal(st.counters.ticketPrefetches, 2);
});

test('Wake Up after boot: the AP Request goes out at once, with no KDC round trip', () => {
  const w = makeWorld();
  w.clock.advance(5000);
  const kdcBefore = w.kdc.requests;
  const asBefore = asReqs(w);
  const t0 = w.clock.now();
  const nonce = w.sc.wakeUp();
  assert.equal(w.clock.now(), t0);
  assert.equal(w.kdc.requests, kdcBefore, 'no KDC trip');
  assert.equal(asReqs(w), asBefore);
  assert.equal(w.sc.apRequests.length, 1);
  assert.equal(w.sc.apRequests[0].msg.serverNonce, nonce);
  assert.equal(w.sc.falseNonces, 0);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  assert.equal(w.agent.status().scs[0].state, 'established');
});

test('the ticket is refreshed before it stops being usable, so it always is', () => {
  const w = makeWorld({ timers: { ticketRefreshMarginSec: 120 } });
  w.kdc.ticketLifetimeMs = 600000; // 10 min tickets, usable for 8 min
  w.clock.advance(3000);
  assert.equal(w.kdc.issued, 1);
  const first = w.agent.status().scs[0].ticketEndtime!;
  // Sample the whole next hour: whenever the boot ticket's successor is due, it is there in time.
  for (let i = 0; i < 360; i++) {
    w.clock.advance(10000);
    const end = w.agent.status().scs[0].ticketEndtime!;
    assert.ok(end - 120000 > w.clock.now(), `usable ticket cached at +${i * 10}s`);
  }
  assert.ok(w.agent.status().scs[0].ticketEndtime! > first);
  // About one refresh per 8 minutes of usable life (the lead is jittered): not a storm.
  assert.ok(w.kdc.issued >= 1 + 6 && w.kdc.issued <= 1 + 12, `issued ${w.kdc.issued}`);
  assert.equal(w.agent.counters.kdcFailures, 0);
  // A Wake Up now: no KDC trip.
  const before = w.kdc.requests;
  w.sc.wakeUp();
  assert.equal(w.kdc.requests, before);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});

test('a ticket too short-lived to refresh ahead is not re-fetched in a loop', () => {
  const w = makeWorld({ timers: { ticketRefreshMarginSec: 300 } });
  w.kdc.ticketLifetimeMs = 200000; // ends inside the margin: never usable
  w.clock.advance(600000);
  assert.equal(w.kdc.issued, 1);
  // A Wake Up still works the old way (fresh ticket on demand).
  w.sc.wakeUp();
  assert.equal(w.kdc.issued, 2);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});

test('KDC down at boot: backoff with jitter, bounded retries then periodic; recovers when the KDC is back', () => {
  const timers = { prefetchDelayMs: 1000, kdcTimeoutMs: 1000, kdcRetries: 1, prefetchRetryMs: 4000, prefetchRetries: 3, prefetchPeriodSec: 120 };
  const w = makeWorld({ timers });
  const times = kdcTimes(w);
  w.kdc.silent = 1e9;
  w.clock.advance(1200000);
  // Exchange starts: AS-REQs not preceded by another one within the exchange's own retransmit time.
  const starts = times.filter((t, i) => i === 0 || t - times[i - 1] > 1000 + 2000);
  // ~45 s for the first 4 attempts, then one per 93..153 s over the rest of the 20 minutes.
  assert.ok(starts.length >= 4 + 6 && starts.length <= 4 + 13, `attempts: ${starts.length}`);
  // Each exchange: first send + 1 retransmission (the last one may still be in flight).
  const inFlight = starts.length * 2 - times.length;
  assert.ok(inFlight === 0 || inFlight === 1, `${times.length} AS-REQs in ${starts.length} exchanges`);
  const ends = starts.map((s) => s + 1000 + 2000); // kdcTimeoutMs * (1 + 2): the failure
  const waits = starts.slice(1).map((s, i) => s - ends[i]);
  // Backoff 4 s, 8 s, 16 s (each x0.75..1.25), then every 120 s (x0.75..1.25).
  for (let k = 0; k < 3; k++) {
    const base = 4000 * 2 ** k;
    assert.ok(waits[k] >= base * 0.75 - 1 && waits[k] <= base * 1.25 + 1, `retry ${k + 1} after ${waits[k]} ms`);
  }
  for (const wt of waits.slice(3)) assert.ok(wt >= 90000 - 1 && wt <= 150000 + 1, `periodic retry after ${wt} ms`);
  const failed = w.agent.counters.kdcFailures;
  assert.ok(failed === starts.length || failed === starts.length - 1, `kdcFailures ${failed}`);
  assert.equal(w.agent.table.inUse(), 0);
  // The KDC comes back: the next periodic attempt gets the ticket, then no more retries.
  w.kdc.silent = 0;
  w.clock.advance(160000);
  assert.equal(w.kdc.issued, 1);
  const failures = w.agent.counters.kdcFailures;
  const n = times.length;
  w.clock.advance(600000);
  assert.equal(w.agent.counters.kdcFailures, failures);
  assert.equal(times.length, n, 'no KDC traffic while the ticket is fresh');
  const before = w.kdc.requests;
  w.sc.wakeUp();
  assert.equal(w.kdc.requests, before);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});

test('a Wake Up while the prefetch is in flight waits for that one AS exchange', () => {
  const w = makeWorld({ timers: { prefetchDelayMs: 1000, kdcTimeoutMs: 3000, kdcRetries: 2 } });
  w.kdc.silent = 1; // the first AS-REQ is lost, the retransmission gets PREAUTH_REQUIRED
  w.clock.advance(1001);
  assert.equal(asReqs(w), 1);
  w.sc.wakeUp();
  assert.equal(asReqs(w), 1, 'no second AS exchange');
  w.clock.advance(3000);
  assert.equal(w.kdc.issued, 1);
  assert.equal(w.agent.counters.asExchanges, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});

test('prefetch off: no KDC traffic until a Wake Up, ticket fetched on demand (the old behaviour)', () => {
  const w = makeWorld({ prefetchTicket: false, timers: { ticketRefreshMarginSec: 120 } });
  w.kdc.ticketLifetimeMs = 600000;
  w.clock.advance(3600000);
  assert.equal(w.kdc.requests, 0);
  assert.equal(w.agent.status().scs[0].ticketEndtime, null);
  w.sc.wakeUp();
  assert.equal(w.kdc.issued, 1);
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  // No refresh ahead of time: the ticket just ages out of use.
  w.clock.advance(3600000);
  assert.equal(w.kdc.issued, 1);
  w.sc.wakeUp();
  assert.equal(w.kdc.issued, 2);
  assert.equal(w.agent.counters.ticketPrefetches, 0);
  // KDC down with prefetch off: the Wake Up's session aborts and nothing retries on its own.
  const w2 = makeWorld({ prefetchTicket: false, timers: { kdcTimeoutMs: 1000, kdcRetries: 1 } });
  w2.kdc.silent = 1e9;
  w2.sc.wakeUp();
  w2.clock.advance(600000);
  assert.equal(w2.net.sentFrom(CTA, 88).length, 2);
  assert.equal(w2.agent.counters.kdcFailures, 1);
});

test('a Rekey after a refresh keeps the fresher cached ticket (no KDC trip, no fall back to the older one)', () => {
  const w = makeWorld({ timers: { ticketRefreshMarginSec: 120 } });
  w.kdc.ticketLifetimeMs = 600000;
  w.clock.advance(3000);
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  w.clock.advance(440000); // the boot ticket has been refreshed (lead 45-75 s; usable until ~482 s)
  assert.equal(w.kdc.issued, 2);
  const fresh = w.agent.status().scs[0].ticketEndtime!;
  w.sc.rekey();
  assert.equal(w.agent.counters.sessionsEstablished, 2);
  assert.equal(w.kdc.issued, 2);
  assert.equal(w.agent.status().scs[0].ticketEndtime, fresh);
  w.clock.advance(60000); // past the boot ticket's usable life: still no on-demand fetch needed
  const before = w.kdc.requests;
  w.sc.wakeUp();
  assert.equal(w.kdc.requests, before);
  assert.equal(w.agent.counters.sessionsEstablished, 3);
});

test('config: prefetchTicket defaults to true, must be a boolean; prefetch timers validated; cta provision --no-prefetch-ticket', () => {
  const base = { principal: 'cta/x', realm: REALM, keys: [{ etype: 18, kvno: 1, key: new Uint8Array(32) }], scs: [{ principal: SC_PRINCIPAL }], kdc: { address: '10.0.0.3' } };
  const c = configFromObject(base);
  assert.equal(c.prefetchTicket, true);
  assert.ok(c.timers.prefetchDelayMs > 0 && c.timers.prefetchRetryMs > 0 && c.timers.prefetchRetries >= 0 && c.timers.prefetchPeriodSec > 0);
  assert.equal(configFromObject({ ...base, prefetchTicket: false }).prefetchTicket, false);
  assert.throws(() => configFromObject({ ...base, prefetchTicket: 'no' }), /prefetchTicket/);
  assert.throws(() => configFromObject({ ...base, timers: { prefetchPeriodSec: 0 } }), /prefetchPeriodSec/);
  const keytab = encodeKeytab([{ principal: { realm: REALM, components: ['cta', 'x'], nameType: 1 }, timestamp: 0, kvno: 1, etype: 18, key: new Uint8Array(32).fill(1) }]);
  const opts = { keytab, principal: 'cta/x@' + REALM, scs: [{ principal: SC_PRINCIPAL }], kdc: { address: '10.0.0.3', port: 88 } };
  assert.equal(decodeConfig(makeConfig(opts)).prefetchTicket, true);
  assert.equal(decodeConfig(makeConfig({ ...opts, prefetchTicket: false })).prefetchTicket, false);
});

test('cta provision --no-prefetch-ticket writes prefetchTicket false (default: on)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-prefetch-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kt = join(dir, 'cta.keytab');
  writeFileSync(kt, encodeKeytab([{ principal: { realm: REALM, components: ['cta', 'x'], nameType: 1 }, timestamp: 0, kvno: 1, etype: 18, key: new Uint8Array(32).fill(1) }]));
  const args = ['--keytab', kt, '--principal', 'cta/x@' + REALM, '--sc', SC_PRINCIPAL, '--kdc', '10.0.0.3:88'];
  const log = console.log;
  const lines: string[] = [];
  console.log = (s: string) => lines.push(s);
  try {
    assert.equal(await run([...args, '-o', join(dir, 'a.cbor')]), 0);
    assert.equal(await run([...args, '--no-prefetch-ticket', '-o', join(dir, 'b.cbor')]), 0);
  } finally {
    console.log = log;
  }
  assert.equal(decodeConfig(readFileSync(join(dir, 'a.cbor'))).prefetchTicket, true);
  assert.equal(decodeConfig(readFileSync(join(dir, 'b.cbor'))).prefetchTicket, false);
  assert.ok(lines.some((l) => /^tickets\s+fetched on the first Wake Up/.test(l)));
});
