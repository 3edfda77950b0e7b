// The firmware bundle (firmware/main.ts, built by `cta build`) running in the host
// emulator, against the test-side KDC and SC over real loopback UDP: the same
// code that goes to the board completes a key exchange, answers signaling and a
// Rekey; global.cta exposes the agent. Without "cta.cfg" it idles with a message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFirmware } from '../host-tools/build/build.ts';
import { startEmulator } from '../host-tools/emulator/emulator.ts';
import { makeConfig } from '../host-tools/provision/cli.ts';
import { CTA_PRINCIPAL, SC_PRINCIPAL } from './helpers/mini-sc.ts';
import { loopbackMiniWorld } from './helpers/loopback-net.ts';
import { KdcDatabase } from '../host-tools/kdc/db.ts';
import { startKdc, type KdcLogRecord } from '../host-tools/kdc/server.ts';
import { parseKeytab } from '../firmware/proto/keytab.ts';
import { readFileSync } from 'node:fs';


async function until(fn: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the firmware bundle in the emulator: Wake Up -> AS exchange -> AP exchange -> SA, signaling, Rekey', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-emu-'));
  let emu: Awaited<ReturnType<typeof startEmulator>> | null = null;
  let net: { close(): void } | null = null;
  try {
    const built = await buildFirmware({ board: 'emulator', outDir: dir });
    assert.deepEqual(built.violations, []);
    const w = await loopbackMiniWorld();
    net = w.net;
    const { kdc, sc, keytab, kdcSock, scSock, sigSock } = w;
    const cfg = makeConfig({
      keytab,
      principal: CTA_PRINCIPAL,
      scs: [{ principal: SC_PRINCIPAL, address: '127.0.0.1', port: scSock.port }],
      kdc: { address: '127.0.0.1', port: kdcSock.port },
    });
    emu = await startEmulator({ board: 'emulator', bundlePath: built.path, storageDir: join(dir, 'storage'), files: { 'cta.cfg': cfg }, udpPortMap: { 1293: 0, 2427: 0 } });
    const cta = emu.global.cta;
    assert.ok(cta, 'main.ts sets global.cta');
    assert.equal(cta.status().scs[0].state, 'idle');
    await until(() => emu!.udpAddresses().length === 3);
    const ports = emu.udpAddresses().map((a) => a.port);
    // Sockets in bind order: key management, KDC, signaling.
    sc.ctaAddress = '127.0.0.1';
    sc.ctaPort = ports[0];
    sc.ctaSigPort = ports[2];
    sc.wakeUp();
    await until(() => cta.counters.sessionsEstablished === 1 && sc.saRecovered === 1);
    assert.equal(kdc.issued, 1);
    assert.equal(cta.status().scs[0].sa.scSpi, sc.session!.scSpi);
    sc.signal('RQNT', '4711');
    await until(() => sc.signalingIn.length === 1);
    assert.equal(sc.signalingIn[0], '200 4711 OK\r\n');
    sc.rekey();
    await until(() => cta.counters.sessionsEstablished === 2);
    assert.equal(kdc.requests, 2, 'Rekey answered from the cached ticket');
    assert.equal(cta.counters.drops.internal, 0);
    assert.deepEqual(emu.errors, []);
    t.diagnostic(`bundle ${built.bytes} bytes; emulator memory estimate ${JSON.stringify(emu.memory())}`);
  } finally {
    if (emu) await emu.stop();
    net?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the firmware bundle without cta.cfg prints a clear message and idles', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-emu-'));
  try {
    const built = await buildFirmware({ board: 'emulator', outDir: dir });
    const emu = await startEmulator({ board: 'emulator', bundlePath: built.path, storageDir: join(dir, 'storage') });
    try {
      await emu.waitForLog(/no configuration/, 5000);
      assert.equal(emu.global.cta, null);
      assert.equal(emu.global.ctaError, 'no configuration');
    } finally {
      await emu.stop();
    }
    const bad = await startEmulator({ board: 'emulator', bundlePath: built.path, storageDir: join(dir, 'storage2'), files: { 'cta.cfg': new Uint8Array([0xa1, 0x61, 0x76, 0x05]) } });
    try {
      await bad.waitForLog(/bad configuration/, 5000);
      assert.equal(bad.global.cta, null);
      // A map (the old form) is not the compact form: its CRC check (cfg#1) fails.
      assert.match(bad.global.ctaError, /^bad configuration: cfg#1$/);
    } finally {
      await bad.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the boot AS exchange: PREAUTH_REQUIRED is logged as the first round trip of pre-authentication, not as an error', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-emu-preauth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const built = await buildFirmware({ board: 'emulator', outDir: dir });
  const realm = 'PREAUTH.TEST';
  const db = KdcDatabase.init(join(dir, 'kdc.db'), realm);
  t.after(() => db.close());
  for (const p of [`sc/sc1@${realm}`, `cta/cta1@${realm}`]) db.addPrincipal(p, { randkey: true });
  db.exportKeytab(`cta/cta1@${realm}`, join(dir, 'cta.keytab'));
  const kdcLog: KdcLogRecord[] = [];
  const kdc = await startKdc({ db, host: '127.0.0.1', port: 0, log: (r) => kdcLog.push(r) });
  t.after(() => kdc.close());
  const cfg = makeConfig({
    keytab: parseKeytab(new Uint8Array(readFileSync(join(dir, 'cta.keytab')))),
    principal: `cta/cta1@${realm}`,
    scs: [{ principal: `sc/sc1@${realm}` }],
    kdc: { address: '127.0.0.1', port: kdc.udpPort },
  });
  const emu = await startEmulator({ board: 'emulator', bundlePath: built.path, storageDir: join(dir, 'storage'), files: { 'cta.cfg': cfg }, udpPortMap: { 1293: 0, 2427: 0 } });
  t.after(() => emu.stop());
  await emu.waitForLog(/"ev":"cta.ticket"/, 10000);
  const events = emu.logs.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).ev as string);
  assert.ok(events.includes('cta.kdc_preauth'), events.join(' '));
  assert.ok(!events.includes('cta.kdc_error'), events.join(' '));
  const pre = kdcLog.find((r) => r.error === 25);
  assert.ok(pre, 'the KDC asked for pre-authentication');
  assert.equal(pre.step, 'preauth');
  assert.doesNotMatch(String(pre.reason), /required/);
});
