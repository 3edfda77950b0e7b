// The host emulator: the selftest bundle passes, code outside the Espruino subset
// fails, dgram carries binary strings, transports the board lacks are refused,
// Storage / serial / memory / timers behave as on the interpreter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import { PassThrough, Duplex } from 'node:stream';
import { buildFirmware, SELFTEST_ENTRY } from '../host-tools/build/build.ts';
import { startEmulator, type Emulator } from '../host-tools/emulator/emulator.ts';
import { UsageError } from '../host-tools/args.ts';

const FIX = 'test/fixtures';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cta-emu-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function bundle(t: { after: (fn: () => void) => void }, board: string, entry: string): Promise<string> {
  const r = await buildFirmware({ board, entry, outDir: tmp(t) });
  assert.deepEqual(r.violations, [], JSON.stringify(r.violations.slice(0, 3)));
  return r.path;
}

function stopAfter(t: { after: (fn: () => Promise<void>) => void }, emu: Emulator): Emulator {
  t.after(() => emu.stop());
  return emu;
}

test('the selftest bundle passes in the emulator', async (t) => {
  const path = await bundle(t, 'emulator', SELFTEST_ENTRY);
  const emu = stopAfter(t, await startEmulator({ board: 'emulator', bundlePath: path, storageDir: tmp(t) }));
  const line = await emu.waitForLog(/^SELFTEST /);
  assert.match(line, /^SELFTEST PASS \d+/, emu.logs.join('\n'));
  assert.equal(emu.global.selftest.pass, true);
  assert.ok(emu.global.selftest.n >= 10);
});

test('the selftest passes on a board without SHA-384 (puckjs)', async (t) => {
  const path = await bundle(t, 'puckjs', SELFTEST_ENTRY);
  const emu = stopAfter(t, await startEmulator({ board: 'puckjs', bundlePath: path, storageDir: tmp(t) }));
  assert.match(await emu.waitForLog(/^SELFTEST /), /^SELFTEST PASS/);
});

test('a bundle using what Espruino lacks fails in the emulator', async (t) => {
  const r = await buildFirmware({ board: 'emulator', entry: `${FIX}/build/uses-map.ts`, outDir: tmp(t) });
  await assert.rejects(startEmulator({ board: 'emulator', bundlePath: r.path, storageDir: tmp(t) }), /failed at load.*Map is not defined/);
  for (const code of ['Math.imul(2, 3)', 'Uint8Array.from([1])', 'Array.from([1])', 'Object.freeze({})', 'Date.UTC(2000, 0)', 'new Set()', 'Symbol("x")', 'BigInt(1)', 'new TextEncoder()', 'Number.isInteger(1)', '[1].at(0)']) {
    await assert.rejects(startEmulator({ board: 'emulator', code, storageDir: tmp(t) }), /failed at load/, code);
  }
});

test('typed-array slice returns a plain Array, as on Espruino; the platform module fixes it', async (t) => {
  const emu = stopAfter(t, await startEmulator({ board: 'emulator', code: 'print(String(Array.isArray(new Uint8Array(2).slice(0))))', storageDir: tmp(t) }));
  assert.deepEqual(emu.logs, ['true']);
});

test('clearTimeout(undefined) throws and clearTimeout() clears every timer, as on Espruino', async (t) => {
  const code = `
    try { clearTimeout(undefined); print('no throw'); } catch (e) { print('threw'); }
    setTimeout(function () { print('should not fire'); }, 1);
    clearTimeout();
    setTimeout(function () { print('fired'); }, 5);`;
  const emu = stopAfter(t, await startEmulator({ board: 'emulator', code, storageDir: tmp(t) }));
  await emu.waitForLog(/^fired$/);
  assert.deepEqual(emu.logs, ['threw', 'fired']);
});

test('UDP through emulated dgram: binary strings on the raw socket, bytes through the platform', async (t) => {
  const path = await bundle(t, 'emulator', `${FIX}/emulator/udp-echo.ts`);
  const emu = stopAfter(t, await startEmulator({ board: 'emulator', bundlePath: path, storageDir: tmp(t) }));
  await emu.waitForLog(/^RAW BOUND$/);
  assert.ok(emu.logs.includes('PLATFORM BOUND true'));
  const ports = emu.udpAddresses();
  assert.equal(ports.length, 2);
  for (const a of ports) assert.equal(a.address, '127.0.0.1');
  const client = dgram.createSocket('udp4');
  t.after(() => client.close());
  await new Promise<void>((res) => client.bind(0, '127.0.0.1', () => res()));
  const replies: Buffer[] = [];
  client.on('message', (m) => replies.push(m));
  const payload = Buffer.from([0x00, 0xff, 0x80, 0x41, 0x0a, 0x0d]);
  for (const a of ports) client.send(payload, a.port, '127.0.0.1');
  const deadline = Date.now() + 5000;
  while (replies.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(replies.length, 2, emu.logs.join('\n'));
  const echo = replies.find((r) => r.subarray(0, 5).toString('latin1') === 'echo:');
  const rev = replies.find((r) => r.subarray(0, 5).toString('latin1') !== 'echo:');
  assert.ok(echo && rev);
  assert.deepEqual(echo.subarray(5), payload);
  assert.deepEqual(rev, Buffer.from([...payload].reverse()));
  assert.ok(emu.logs.includes('RAW string 6 6'), emu.logs.join('\n'));
  assert.ok(emu.logs.includes('PLATFORM true 6'));
  assert.deepEqual(emu.errors, []);
});

test('dgram send refuses non-string data, as the firmware requires', async (t) => {
  const code = `var s = require('dgram').createSocket('udp4'); try { s.send(new Uint8Array(2), 9, '127.0.0.1'); } catch (e) { print('refused: ' + e.message); } s.close();`;
  const emu = stopAfter(t, await startEmulator({ board: 'emulator', code, storageDir: tmp(t) }));
  assert.match(emu.logs[0], /^refused: .*String/);
});

test('puckjs refuses UDP: require("dgram") throws, platform.udpBind gives null', async (t) => {
  await assert.rejects(
    startEmulator({ board: 'puckjs', code: 'require("dgram").createSocket("udp4")', storageDir: tmp(t) }),
    /board puckjs has no UDP transport/,
  );
  const path = await bundle(t, 'puckjs', `${FIX}/emulator/platform-io.ts`);
  const emu = stopAfter(t, await startEmulator({ board: 'puckjs', bundlePath: path, storageDir: tmp(t) }));
  assert.ok(emu.logs.includes('UDP null'), emu.logs.join('\n'));
  await assert.rejects(startEmulator({ board: 'esp32', code: '1', storageDir: tmp(t), serialStream: new PassThrough() }), UsageError);
});

test('Storage is file-backed with pre-written files; serial carries bytes; memory and timers', async (t) => {
  const path = await bundle(t, 'emulator', `${FIX}/emulator/platform-io.ts`);
  const storageDir = tmp(t);
  // Host side of the serial link: what the board writes lands in `fromBoard`.
  const toBoard = new PassThrough();
  const fromBoard = new PassThrough();
  const link = Duplex.from({ readable: toBoard, writable: fromBoard });
  const emu = stopAfter(t, await startEmulator({ board: 'emulator', bundlePath: path, storageDir, files: { 'cta.cfg': Uint8Array.from([0xa1, 0x00, 0xff]) }, serialStream: link }));
  await emu.waitForLog(/^READY$/);
  assert.ok(emu.logs.includes('CFG a100ff'), emu.logs.join('\n'));
  assert.ok(emu.logs.includes('STATE 0001feff true'));
  assert.ok(emu.logs.includes('ERASED true'));
  assert.ok(emu.logs.includes('UDP socket'));
  assert.ok(emu.logs.includes('MEM 5000 true true'));
  assert.ok(emu.logs.includes('NOW true'));
  assert.ok(emu.logs.includes('SERIAL yes'));
  assert.deepEqual(readdirSync(storageDir), ['cta%2Ecfg']);
  await emu.waitForLog(/^TIMER fired$/);

  const got: Buffer[] = [];
  fromBoard.on('data', (b: Buffer) => got.push(b));
  toBoard.write(Buffer.from([0x00, 0x0f, 0xf0, 0xff]));
  const deadline = Date.now() + 5000;
  while (Buffer.concat(got).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(Buffer.concat(got), Buffer.from([0xff, 0xf0, 0x0f, 0x00]));

  const before = emu.memory();
  assert.equal(before.total, 5000);
  emu.global.grow(100);
  const after = emu.memory();
  assert.ok(after.usage >= before.usage + 300, `${before.usage} -> ${after.usage}`);
  assert.equal(after.free, after.total - after.usage);
  assert.equal(emu.global.process.memory().usage, after.usage);
  assert.deepEqual(emu.errors, []);
});

test('errors in callbacks are reported as Uncaught and do not stop the emulator', async (t) => {
  const code = `setTimeout(function () { throw new Error('boom'); }, 1); setTimeout(function () { print('still running'); }, 20);`;
  const emu = stopAfter(t, await startEmulator({ board: 'emulator', code, storageDir: tmp(t) }));
  await emu.waitForLog(/still running/);
  assert.ok(emu.logs.includes('Uncaught Error: boom'));
  assert.equal(emu.errors.length, 1);
});
