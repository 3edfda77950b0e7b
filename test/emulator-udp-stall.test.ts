// The emulator's UDP fault hook (stallUdp: a socket that stops delivering, as a wedged driver
// does) and its Espruino-like port release (a closed socket's port can be bound again only
// after the current turn of the event loop), on a small bundle of its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator } from '../host-tools/emulator/emulator.ts';

const CODE = `
var dgram = require('dgram');
global.got = [];
function open() {
  var s = dgram.createSocket({ type: 'udp4', recvBufferSize: 2048 });
  s.on('message', function (m) { global.got.push(m); });
  s.bind(1293);
  return s;
}
global.sock = open();
global.rebindNow = function () {
  global.sock.close();
  try { global.sock = open(); return 'bound'; } catch (e) { return 'threw ' + e.message; }
};
global.rebindLater = function () {
  global.sock.close();
  setTimeout(function () { global.sock = open(); }, 0);
};
`;

function sendTo(port: number, text: string): Promise<void> {
  const c = dgram.createSocket('udp4');
  return new Promise((r) => c.send(text, port, '127.0.0.1', () => c.close(() => r())));
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('stallUdp: the socket drops everything after N datagrams; closed and bound again (a turn later) on the same mapped port, it delivers again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'emu-stall-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const emu = await startEmulator({ board: 'emulator', code: CODE, storageDir: dir, udpPortMap: { 1293: 0 }, dictionary: null });
  t.after(() => emu.stop());
  const port = emu.udpAddresses()[0].port;
  const stall = emu.stallUdp(port, 1);
  assert.equal(stall.sockets, 1);
  for (const m of ['a', 'b', 'c']) await sendTo(port, m);
  await sleep(50);
  assert.deepEqual([...emu.global.got], ['a']);
  assert.equal(stall.dropped, 2);
  // Bound again at once: refused, as on Espruino 2v29.
  assert.equal(emu.global.rebindNow(), 'threw Unable to create socket');
  assert.ok(emu.logs.includes('ERROR: Socket bind failed'));
  emu.global.rebindLater();
  await sleep(50);
  assert.deepEqual(emu.udpAddresses().map((a) => a.port), [port], 'the same host port');
  await sendTo(port, 'd');
  await sleep(50);
  assert.deepEqual([...emu.global.got], ['a', 'd']);
  assert.equal(stall.dropped, 2);
});
