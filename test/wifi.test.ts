// WiFi boards (board-configs transports.wifi: esp32, espruino-wifi): the firmware joins
// the network from cta.cfg's `wifi` with require("Wifi").connect() before the agent
// binds, retrying with backoff; without `wifi` it says it assumes a saved network.
// The real bundles run in the emulator, whose Wifi stand-in exists only on those boards.
// Other boards' bundles carry no WiFi code. The password is never printed.
import { dictionaryPathFor, expandText, loadDictionary } from '../host-tools/build/text.ts';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFirmware, type BuildResult } from '../host-tools/build/build.ts';
import { listBoards, loadBoard } from '../host-tools/build/boards.ts';
import { startEmulator, type Emulator } from '../host-tools/emulator/emulator.ts';
import { encodeKeytab } from '../firmware/proto/keytab.ts';
import { makeConfig, type ProvisionOptions } from '../host-tools/provision/cli.ts';
import { configFromObject } from '../host-tools/provision/config.ts';
import { joinWifi, wifiRetryMs, WIFI_ATTEMPT_MS, type WifiModule } from '../firmware/platform/espruino.ts';
import { REALM, CTA_PRINCIPAL, SC_PRINCIPAL } from './helpers/mini-sc.ts';
import { FakeClock } from './helpers/fake-platform.ts';
import { loopbackMiniWorld } from './helpers/loopback-net.ts';

const PASSWORD = 'correct-horse-battery-staple-42';
const SSID = 'cta lab net';

async function until(fn: () => boolean, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const builds: { [board: string]: Promise<BuildResult> } = {};
let buildDir: string | null = null;
function bundle(board: string): Promise<BuildResult> {
  if (!buildDir) {
    const d = mkdtempSync(join(tmpdir(), 'cta-wifi-'));
    buildDir = d;
    process.once('exit', () => rmSync(d, { recursive: true, force: true }));
  }
  return (builds[board] ??= buildFirmware({ board, outDir: buildDir }));
}

/** A config for the emulated CTA (KDC/SC on loopback), with `wifi` as given. */
function config(ctaKey: Uint8Array, kdcPort: number, scPort: number, wifi?: ProvisionOptions['wifi']): Uint8Array {
  return makeConfig({
    keytab: encodeKeytab([{ principal: { realm: REALM, components: CTA_PRINCIPAL.split('/'), nameType: 1 }, timestamp: 0, kvno: 1, etype: 18, key: ctaKey }]),
    principal: CTA_PRINCIPAL,
    scs: [{ principal: SC_PRINCIPAL, address: '127.0.0.1', port: scPort }],
    kdc: { address: '127.0.0.1', port: kdcPort },
    prefetchTicket: false,
    wifi,
  });
}

function noPassword(lines: string[]): void {
  for (const l of lines) assert.ok(!l.includes(PASSWORD) && !l.includes(PASSWORD.slice(0, 10)), `password printed: ${l}`);
}

test('joinWifi: retries with backoff (1 s doubling, 60 s cap), a silent connect times out, then joins; the password is never printed', () => {
  const clock = new FakeClock();
  const lines: string[] = [];
  const calls: { ssid: string; options: { [k: string]: string }; at: number }[] = [];
  let answers = ['auth_fail', 'no_ap_found', 'silent', null] as (string | null)[];
  const pending: (() => void)[] = [];
  const w: WifiModule = {
    connect(ssid, options, cb) {
      calls.push({ ssid, options, at: clock.now() });
      const a = answers.shift();
      if (a === 'silent') return;
      clock.setTimeout(() => cb(a ?? null), 50);
    },
    getIP(cb) {
      pending.push(() => cb(null, { ip: '192.168.4.7' }));
      return undefined;
    },
  };
  let done = 0;
  joinWifi(w, { ssid: SSID, password: PASSWORD }, clock, (l) => lines.push(l), () => done++);
  const t0 = clock.now();
  clock.advance(50);
  assert.equal(done, 0);
  assert.match(lines.join('\n'), /failed: auth_fail; retry in 1 s/);
  clock.advance(1000); // attempt 2 at +1050
  clock.advance(50);
  assert.match(lines.at(-1)!, /failed: no_ap_found; retry in 2 s/);
  clock.advance(2000); // attempt 3 at +3100, never answers
  assert.equal(calls.length, 3);
  clock.advance(WIFI_ATTEMPT_MS);
  assert.match(lines.at(-1)!, /no answer in 30 s; retry in 4 s/);
  clock.advance(4000 + 50);
  assert.equal(calls.length, 4);
  assert.equal(done, 1, 'done once the connect succeeds');
  assert.deepEqual(
    calls.map((c) => c.at - t0),
    [0, 1050, 3100, 3100 + WIFI_ATTEMPT_MS + 4000],
  );
  for (const c of calls) assert.deepEqual([c.ssid, c.options.password], [SSID, PASSWORD]);
  assert.match(lines.join('\n'), /joining "cta lab net" \(attempt 4\)[\s\S]*joined "cta lab net"/);
  pending.forEach((f) => f());
  assert.match(lines.at(-1)!, /IP address 192\.168\.4\.7/);
  // A late answer of an abandoned attempt changes nothing.
  clock.advance(120000);
  assert.equal(done, 1);
  noPassword(lines);
  assert.deepEqual([1, 2, 3, 6, 7, 20].map(wifiRetryMs), [1000, 2000, 4000, 32000, 60000, 60000]);
  // An open network: no password option at all.
  answers = [null];
  const open: { [k: string]: string }[] = [];
  joinWifi({ connect: (s, o, cb) => (open.push(o), cb(null)), getIP: () => undefined }, { ssid: 'open' }, clock, () => {}, () => done++);
  assert.deepEqual(open, [{}]);
  assert.equal(done, 2);
});

test('config: wifi {ssid, password} validated, messages never contain the password', () => {
  const good = { principal: 'cta/a', realm: 'R', keys: [{ etype: 18, kvno: 1, key: new Uint8Array(32) }], scs: [{ principal: 'sc/b' }], kdc: { address: 'k' } };
  assert.equal(configFromObject(good).wifi, undefined);
  assert.deepEqual(configFromObject({ ...good, wifi: { ssid: SSID, password: PASSWORD } }).wifi, { ssid: SSID, password: PASSWORD });
  assert.deepEqual(configFromObject({ ...good, wifi: { ssid: 'open' } }).wifi, { ssid: 'open' });
  assert.deepEqual(configFromObject({ ...good, wifi: { ssid: 'x', password: 'ab'.repeat(32) } }).wifi, { ssid: 'x', password: 'ab'.repeat(32) });
  const bad: [unknown, RegExp][] = [
    ['net', /wifi must be a map/],
    [{ password: PASSWORD }, /wifi\.ssid/],
    [{ ssid: '' }, /wifi\.ssid/],
    [{ ssid: 'x'.repeat(33) }, /wifi\.ssid/],
    [{ ssid: 'a\nb' }, /wifi\.ssid must be printable/],
    [{ ssid: 's', password: 'short7!' }, /wifi\.password must be 8 to 64/],
    [{ ssid: 's', password: PASSWORD + '\u0001' }, /wifi\.password must be printable/],
    [{ ssid: 's', password: 'z'.repeat(64) }, /wifi\.password of 64 characters must be hex/],
    [{ ssid: 's', password: 12345678 }, /wifi\.password/],
  ];
  for (const [wifi, re] of bad) {
    assert.throws(
      () => configFromObject({ ...good, wifi }),
      (e: Error) => re.test(e.message) && !e.message.includes('short7') && !e.message.includes(PASSWORD) && !e.message.includes('zzzz'),
      JSON.stringify(wifi),
    );
  }
});

async function world(t: { after(fn: () => unknown): void }) {
  const { kdc, sc, net, ctaKey, kdcSock, scSock } = await loopbackMiniWorld();
  const dir = mkdtempSync(join(tmpdir(), 'cta-wifi-emu-'));
  const emus: Emulator[] = [];
  t.after(async () => {
    for (const e of emus) await e.stop();
    net.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    kdc,
    sc,
    cfg: (wifi?: ProvisionOptions['wifi']) => config(ctaKey, kdcSock.port, scSock.port, wifi),
    async start(board: string, cfg: Uint8Array, wifi?: { failTimes?: number }) {
      const built = await bundle(board);
      assert.deepEqual(built.violations, []);
      const emu = await startEmulator({ board, bundlePath: built.path, storageDir: join(dir, 'st' + emus.length), files: { 'cta.cfg': cfg }, udpPortMap: { 1293: 0, 2427: 0 }, wifi });
      emus.push(emu);
      return emu;
    },
  };
}

test('esp32 bundle in the emulator: joins the WiFi network, then the agent binds and completes a Wake Up exchange', async (t) => {
  const w = await world(t);
  const emu = await w.start('esp32', w.cfg({ ssid: SSID, password: PASSWORD }));
  assert.equal(emu.global.cta, null, 'no agent before the network is up');
  assert.equal(emu.udpAddresses().length, 0, 'nothing bound before the network is up');
  assert.equal(emu.global.ctaError, 'joining WiFi');
  await until(() => !!emu.global.cta);
  assert.deepEqual(emu.wifi!.connects, [{ ssid: SSID, password: PASSWORD }]);
  assert.equal(emu.wifi!.ssid, SSID);
  assert.equal(emu.global.ctaError, null);
  await emu.waitForLog(/WiFi: IP address 127\.0\.0\.1/);
  const joinLine = emu.logs.findIndex((l) => /joined "cta lab net"/.test(l));
  assert.ok(emu.logs.findIndex((l) => /joining "cta lab net" \(attempt 1\)/.test(l)) >= 0 && joinLine > 0);
  await until(() => emu.udpAddresses().length === 3);
  const ports = emu.udpAddresses().map((a) => a.port);
  w.sc.ctaAddress = '127.0.0.1';
  w.sc.ctaPort = ports[0];
  w.sc.ctaSigPort = ports[2];
  w.sc.wakeUp();
  const cta = emu.global.cta;
  await until(() => cta.counters.sessionsEstablished === 1 && w.sc.saRecovered === 1);
  assert.equal(w.kdc.issued, 1);
  assert.deepEqual(emu.errors, []);
  noPassword(emu.logs);
});

test('esp32: a failed connect is retried after the backoff, then the agent starts; espruino-wifi joins the same way', async (t) => {
  const w = await world(t);
  const emu = await w.start('esp32', w.cfg({ ssid: SSID, password: PASSWORD }), { failTimes: 1 });
  await emu.waitForLog(/failed: auth_fail; retry in 1 s/);
  assert.equal(emu.global.cta, null);
  await until(() => !!emu.global.cta);
  assert.equal(emu.wifi!.connects.length, 2);
  assert.match(emu.logs.join('\n'), /attempt 2\)[\s\S]*joined/);
  const ew = await w.start('espruino-wifi', w.cfg({ ssid: 'open-net' }));
  await until(() => !!ew.global.cta);
  assert.deepEqual(ew.wifi!.connects, [{ ssid: 'open-net', password: undefined }]);
  assert.deepEqual([...emu.errors, ...ew.errors], []);
  noPassword([...emu.logs, ...ew.logs]);
});

test('WiFi board without wifi settings: one line saying the network is assumed up, agent starts at once; non-WiFi boards have no Wifi module', async (t) => {
  const w = await world(t);
  const emu = await w.start('esp32', w.cfg());
  assert.ok(emu.global.cta, 'agent started without waiting');
  assert.equal(emu.logs.filter((l) => /assuming the board is already on a network/.test(l)).length, 1);
  assert.deepEqual(emu.wifi!.connects, []);
  // The emulator board (no WiFi): wifi settings are ignored, no Wifi module to require.
  const plain = await w.start('emulator', w.cfg({ ssid: SSID, password: PASSWORD }));
  assert.ok(plain.global.cta);
  assert.equal(plain.wifi, null);
  assert.throws(() => plain.global.require('Wifi'), /Module Wifi not found/);
  assert.ok(!plain.logs.some((l) => /WiFi|wifi/.test(l)), plain.logs.join('\n'));
});

test('every board: bundle inside the Espruino subset; only WiFi boards carry the WiFi code', async (t) => {
  const sizes: string[] = [];
  for (const board of listBoards()) {
    const r = await bundle(board);
    assert.deepEqual(r.violations, [], `${board}: subset violations`);
    // The bundle's text as a person reads it: codes of the text dictionary expanded.
    const code = expandText(readFileSync(r.path, 'latin1'), loadDictionary(dictionaryPathFor(r.path)));
    const wifi = !!loadBoard(board).transports.wifi;
    const marks = ['WiFi: joining', 'joining WiFi', 'assuming the board is already on a network', '"Wifi"', '.wifi=', '.connect('].filter((m) => code.includes(m));
    if (wifi) assert.equal(marks.length, 6, `${board}: WiFi code present (${marks.join(', ')})`);
    else assert.deepEqual(marks, [], `${board}: no WiFi code`);
    sizes.push(`${board} ${r.bytes} B`);
  }
  t.diagnostic(sizes.join(', '));
});
