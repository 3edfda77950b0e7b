// Signaling Controller state: the SQLite registry survives a restart, a restart
// re-wakes every registered CTA at a bounded pace, and no key material ever
// reaches the database file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSc, type EstablishedEvent } from '../host-tools/sc/server.ts';
import { ManualClock } from '../host-tools/sc/clock.ts';
import { Registry } from '../host-tools/sc/registry.ts';
import { KMMID } from '../firmware/proto/pktc.ts';
import { TestCta, serviceEntry, sleep, REALM, SC_PRINCIPAL } from './helpers/ticket-mint.ts';

function totalWakes(ctas: TestCta[]): number {
  return ctas.reduce((n, c) => n + c.count(KMMID.WAKE_UP), 0);
}
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached');
    await sleep(10);
  }
}

test('restart: the registry survives and every registered CTA is woken again, paced', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-state-'));
  const statePath = join(dir, 'sc.db');
  const svc = serviceEntry();
  const clock = new ManualClock(Date.now());
  const ctas: TestCta[] = [];
  try {
    for (let i = 0; i < 5; i++) {
      const c = await TestCta.create(`cta${i}@${REALM}`, svc, () => clock.now());
      c.auto = false;
      ctas.push(c);
    }
    const opts = { principal: SC_PRINCIPAL, keytab: [svc], listen: { host: '127.0.0.1', port: 0 }, statePath, clock };
    const sc1 = await startSc(opts);
    for (const c of ctas) sc1.register(c.principal, '127.0.0.1', c.port, c.sigPort);
    assert.equal(sc1.size, 5);
    await sc1.close();
    await sleep(100);
    assert.equal(totalWakes(ctas), 0, 'registering does not wake');

    const sc2 = await startSc({ ...opts, timers: { restartWakeRatePerSec: 2 } });
    try {
      assert.equal(sc2.size, 5);
      assert.deepEqual(
        sc2.list().map((r) => [r.principal, r.port]),
        ctas.map((c) => [c.principal, c.port]),
      );
      for (const c of ctas) c.scAddress = sc2.address;
      await until(() => totalWakes(ctas) === 1);
      await sleep(150);
      assert.equal(totalWakes(ctas), 1, 'only one Wake Up before the clock moves (2/s)');
      clock.advance(500);
      await until(() => totalWakes(ctas) === 2);
      await sleep(100);
      assert.equal(totalWakes(ctas), 2);
      clock.advance(1500);
      await until(() => totalWakes(ctas) === 5);
      for (const c of ctas) assert.equal(c.count(KMMID.WAKE_UP), 1, `${c.principal} woken once`);
      assert.equal(sc2.list().filter((r) => r.state === 'waking').length, 5);
    } finally {
      await sc2.close();
    }
  } finally {
    for (const c of ctas) await c.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no key bytes in the SQLite file (service key, session key, subkey, SA keys)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-keys-'));
  const statePath = join(dir, 'sc.db');
  const svc = serviceEntry();
  const clock = new ManualClock(Date.now());
  const a = await TestCta.create(`cta1@${REALM}`, svc, () => clock.now());
  const secrets: Uint8Array[] = [svc.key];
  try {
    const sc = await startSc({ principal: SC_PRINCIPAL, keytab: [svc], listen: { host: '127.0.0.1', port: 0 }, statePath, clock });
    a.scAddress = sc.address;
    sc.register(a.principal, '127.0.0.1', a.port, a.sigPort);
    for (let i = 0; i < 2; i++) {
      const est = new Promise<EstablishedEvent>((r) => sc.once('established', r));
      if (i === 0) sc.wake(a.principal);
      else sc.rekey(a.principal);
      await est;
      secrets.push(a.minted!.sessionKey, a.subkey!, a.sa!.encCtaToSc, a.sa!.authCtaToSc, a.sa!.encScToCta, a.sa!.authScToCta);
    }
    sc.flush();
    const rec = sc.get(a.principal);
    assert.equal(rec?.state, 'established');
    assert.equal(rec?.ctaSpi, a.sa!.ctaSpi);
    await sc.close();
    const files = readdirSync(dir);
    assert.ok(files.includes('sc.db'));
    for (const f of files) {
      const bytes = readFileSync(join(dir, f));
      for (const s of secrets) {
        // Any 8-byte window of a secret would be a leak.
        for (let o = 0; o + 8 <= s.length; o += 4) {
          assert.equal(bytes.indexOf(Buffer.from(s.subarray(o, o + 8))), -1, `${f} holds key bytes`);
        }
      }
    }
    // What is there: metadata only.
    const reg = new Registry(statePath);
    const r = reg.get(a.principal);
    reg.close();
    assert.equal(r?.scSpi, a.sa!.scSpi);
    assert.equal(r?.ciphersuite, 'hmac-sha1-96/aes-128-cbc');
    assert.ok((r?.expiresAt ?? 0) > clock.now());
  } finally {
    await a.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('registry: register/unregister/list, IPv4 packing and other addresses, batched writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-reg-'));
  try {
    const path = join(dir, 'r.db');
    const r = new Registry(path);
    const s1 = r.register(`a@${REALM}`, '10.1.2.3', 1293, 2427, 1);
    const s2 = r.register(`b@${REALM}`, '::1', 1300, undefined, 1);
    assert.equal(r.address(s1), '10.1.2.3');
    assert.equal(r.address(s2), '::1');
    assert.equal(r.signalingPort(s2), 1300);
    assert.equal(r.port(s1), 1293);
    r.unregister(`a@${REALM}`);
    const s3 = r.register(`c@${REALM}`, '192.168.0.9', 5000, 5001, 2);
    assert.equal(s3, s1, 'slots are reused');
    r.close();
    const r2 = new Registry(path);
    assert.deepEqual(
      r2.list().map((x) => [x.principal, x.address, x.port, x.signalingPort, x.state]),
      [
        [`b@${REALM}`, '::1', 1300, 1300, 'registered'],
        [`c@${REALM}`, '192.168.0.9', 5000, 5001, 'registered'],
      ],
    );
    assert.equal(r2.count, 2);
    r2.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
