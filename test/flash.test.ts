// cta flash end to end against the emulator's Espruino-style console: the emulator
// listens like an Espruino Linux build with --telnet; `cta flash --board emulator
// --port tcp://127.0.0.1:PORT --config cta.cbor` (a separate process, EspruinoTools
// inside) builds, uploads cta.cfg and .bootcde, verifies them and resets the board;
// after the reset the CTA completes a key exchange with our SC + KDC over UDP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { kdcWorld, waitFor } from './helpers/cta-world.ts';
import { runCta, type CtaRun } from './helpers/cli.ts';
import { startConsoleEmulator, bracketDepth, crc32 } from '../host-tools/emulator/console.ts';
import { startSc } from '../host-tools/sc/server.ts';
import { makeConfig } from '../host-tools/provision/cli.ts';
import { run as runFlash } from '../host-tools/flash/cli.ts';
import { UsageError } from '../host-tools/args.ts';

type Ctx = { after: (fn: () => unknown) => void };

function tmp(t: Ctx): string {
  const d = mkdtempSync(join(tmpdir(), 'cta-flash-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

async function freeUdpPort(): Promise<number> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const p = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** bin/cta.js ... as a child process (the console it talks to runs in this process). */
function cta(args: string[], timeoutMs = 90000): Promise<CtaRun> {
  return runCta(args, { timeoutMs });
}

/** Talks to the console like a terminal: sends a line, collects what comes back for a while. */
async function talk(port: number, lines: string[], settleMs = 300): Promise<string> {
  const s = net.createConnection(port, '127.0.0.1');
  let got = '';
  s.on('data', (d) => (got += d.toString('latin1')));
  await new Promise<void>((r) => s.once('connect', () => r()));
  for (const l of lines) {
    s.write(l);
    await new Promise((r) => setTimeout(r, settleMs));
  }
  s.destroy();
  return got;
}

test('console helpers: bracket depth skips strings and comments; CRC-32 matches the IEEE check value', () => {
  assert.equal(bracketDepth('function f() {'), 1);
  assert.equal(bracketDepth('var s = "{[("; // {'), 0);
  assert.equal(bracketDepth('x = `}` + /* ) */ [1, (2'), 2);
  assert.equal(crc32(new TextEncoder().encode('123456789')), 0xcbf43926);
  assert.equal(crc32('123456789'), 0xcbf43926);
});

test('the emulator console speaks the Espruino REPL: echo, =result, DLE lines, multi-line input, Storage, reset/load', async (t) => {
  const dir = tmp(t);
  const con = await startConsoleEmulator({ board: 'emulator', storageDir: join(dir, 'st'), port: 0 });
  t.after(() => con.close());
  const port = con.address.port;
  const a = await talk(port, ['1+2\n', '\x10print("<","<<",JSON.stringify(process.env),">>",">")\n', 'function f(x) {\n  return x * 2;\n}\n', 'f(21)\r\n']);
  assert.match(a, /1\+2\r\n=3\r\n>/);
  const env = JSON.parse(/< << (.*) >> >/.exec(a)![1]);
  assert.equal(env.BOARD, 'LINUX');
  assert.equal(env.CONSOLE, 'Telnet');
  assert.match(a, /=42\r\n>/);
  assert.doesNotMatch(a, /print\("<"/, 'a DLE line is not echoed');
  const b = await talk(port, ['\x10require("Storage").write(".bootcde","global.booted=(global.booted||0)+1;print(\\"BOOT\\")")\n', 'nosuch()\n', '\x10load()\n']);
  assert.match(b, /Uncaught ReferenceError: nosuch is not defined/);
  const emu2 = await con.waitForBoot(2);
  assert.equal(emu2.global.booted, 1);
  assert.ok(emu2.logs.includes('BOOT'));
  await talk(port, ['\x10reset()\n']);
  const emu3 = await con.waitForBoot(3);
  assert.equal(emu3.global.booted, undefined, 'reset() does not run .bootcde');
  await talk(port, ['\x10E.setBootCode("global.viaSetBootCode=1")\n', '\x10E.reboot()\n']);
  const emu4 = await con.waitForBoot(4);
  assert.equal(emu4.global.viaSetBootCode, 1);
});

test('cta flash --board emulator --port tcp://...: build, upload, verify, reset; then a key exchange over UDP', async (t) => {
  const dir = tmp(t);
  const w = await kdcWorld(dir);
  t.after(() => w.close());
  const sc = await startSc({ principal: w.scPrincipal, keytab: w.scKeytab, listen: { host: '127.0.0.1', port: 0 }, statePath: ':memory:', control: null, wakeOnStart: false });
  t.after(() => sc.close());
  const listenPort = await freeUdpPort();
  const signalingPort = await freeUdpPort();
  const cfgPath = join(dir, 'cta.cbor');
  writeFileSync(
    cfgPath,
    makeConfig({
      keytab: w.ctaKeytab,
      principal: w.ctaPrincipal,
      scs: [{ principal: w.scPrincipal, address: '127.0.0.1', port: sc.address.port }],
      kdc: { address: '127.0.0.1', port: w.kdc.udpPort },
      listenPort,
      signalingPort,
    }),
  );
  const storage = join(dir, 'storage');
  const con = await startConsoleEmulator({ board: 'emulator', storageDir: storage, port: 0 });
  t.after(() => con.close());
  assert.equal(con.current().global.cta, undefined, 'a blank board runs nothing');

  const r = await cta(['flash', '--board', 'emulator', '--port', `tcp://127.0.0.1:${con.address.port}`, '--config', cfgPath]);
  assert.equal(r.code, 0, r.out + r.err);
  const steps = r.out.split('\n').filter((l) => /^\[\d\/6\] /.test(l));
  assert.deepEqual(
    steps.map((l) => /^\[(\d)\/6\] ([a-z ]+):/.exec(l)![2]),
    ['config', 'build', 'connect', 'upload config', 'upload firmware', 'reset'],
    r.out,
  );
  assert.match(r.out, /connect: tcp:\/\/127\.0\.0\.1:\d+: Espruino LINUX 2v29/);
  assert.match(r.out, /Storage "cta\.cfg" \d+ bytes, crc32 [0-9a-f]+ verified/);
  assert.match(r.out, /Storage "\.bootcde" \d+ bytes, crc32 [0-9a-f]+ verified/);
  assert.match(r.out, new RegExp(`the CTA agent runs as ${w.ctaPrincipal.replace(/[/.]/g, '\\$&')} \\(transport udp\\)`));
  const files = readdirSync(storage).map(decodeURIComponent);
  assert.ok(files.includes('.bootcde') && files.includes('cta.cfg'), files.join(','));

  // The flashed board runs the agent from Storage; our SC wakes it; the AS exchange goes to our KDC.
  const emu = con.current();
  assert.ok(con.boots >= 2);
  assert.ok(emu.global.cta, `no agent after the reset: ${emu.global.ctaError}`);
  sc.register(w.ctaPrincipal, '127.0.0.1', listenPort, signalingPort);
  sc.wake(w.ctaPrincipal);
  await waitFor(() => sc.hasSa(w.ctaPrincipal) && emu.global.cta.status().scs[0].state === 'established', 'the SA after flashing', 20000);
  assert.equal(emu.global.cta.counters.sessionsEstablished, 1);
  assert.match(await sc.sendSignaling(w.ctaPrincipal, 'RQNT 77 aaln/1@cta1 MGCP 1.0 NCS 1.0\r\n', 5000), /^200 77 /);
});

test('cta flash: a missing port / unknown board / missing or bad config is a UsageError', async (t) => {
  const dir = tmp(t);
  const cfg = join(dir, 'cta.cbor');
  writeFileSync(cfg, new Uint8Array([0xa0]));
  const cases: [string[], RegExp][] = [
    [['--board', 'nosuchboard', '--port', '/dev/ttyACM0', '--config', cfg], /^unknown board 'nosuchboard': expected one of /],
    [['--board', 'pico', '--config', cfg], /^--port is required/],
    [['--board', 'pico', '--port', '/dev/ttyACM0'], /^--config cta\.cbor is required/],
    [['--port', '/dev/ttyACM0', '--config', cfg], /^--board is required/],
    [['--board', 'pico', '--port', 'COM3:x', '--config', cfg], /^bad --port 'COM3:x'/],
    [['--board', 'emulator', '--port', '/dev/ttyACM0', '--config', join(dir, 'missing.cbor')], /^cannot read --config .*missing\.cbor: no such file$/],
    [['--board', 'emulator', '--port', '/dev/ttyACM0', '--config', cfg], /^--config .*: config: the file is in the map form of an older cta provision/],
  ];
  for (const [args, re] of cases) await assert.rejects(runFlash(args), (e: unknown) => e instanceof UsageError && re.test((e as Error).message), args.join(' '));
});

test('cta flash: a step that fails is named in one line, exit code 1', async (t) => {
  const dir = tmp(t);
  // Nothing listens on the port: step 3 fails, after the config check and the build.
  const srv = net.createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const deadPort = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((res) => srv.close(() => res()));
  const w = await kdcWorld(dir);
  t.after(() => w.close());
  const good = join(dir, 'good.cbor');
  writeFileSync(good, makeConfig({ keytab: w.ctaKeytab, principal: w.ctaPrincipal, scs: [{ principal: w.scPrincipal }], kdc: { address: '127.0.0.1', port: 88 } }));
  const r = await cta(['flash', '--board', 'emulator', '--port', `tcp://127.0.0.1:${deadPort}`, '--config', good, '--timeout', '2']);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /^\[1\/6\] config: /m);
  assert.match(r.out, /^\[2\/6\] build: /m);
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
  assert.match(r.err.trim(), /^cta flash: step 3\/6 \(connect\) failed: /);
  assert.doesNotMatch(r.out, /run out of memory/, 'no RAM warning for a board whose exchanges fit');
  // A Puck.js image: its measured peak fits its variables with room (board-configs
  // ramMeasured), so no warning (the warning's texts for a board that does not fit, or
  // fits with little to spare: footprint.test.ts).
  const puck = join(dir, 'puck.cbor');
  writeFileSync(puck, makeConfig({ keytab: w.ctaKeytab, principal: w.ctaPrincipal, scs: [{ principal: w.scPrincipal }], kdc: { address: '127.0.0.1', port: 88 }, transport: 'serial' }));
  const p = await cta(['flash', '--board', 'puckjs', '--port', `tcp://127.0.0.1:${deadPort}`, '--config', puck, '--timeout', '2']);
  assert.equal(p.code, 1, p.out + p.err);
  assert.doesNotMatch(p.out, /run out of memory/, p.out);
  assert.match(p.out, /^\[2\/6\] build: /m);
  assert.match(p.err.trim(), /^cta flash: step 3\/6 \(connect\) failed: /);
});

test('cta flash: a CTA agent that cannot bind its port after the restart fails step 6 instead of "the CTA agent runs"', async (t) => {
  const dir = tmp(t);
  const w = await kdcWorld(dir);
  t.after(() => w.close());
  // The CTA's key-management port is taken: its socket fails to bind after load().
  const held = dgram.createSocket('udp4');
  await new Promise<void>((r) => held.bind(0, '127.0.0.1', () => r()));
  t.after(() => held.close());
  const cfgPath = join(dir, 'cta.cbor');
  writeFileSync(
    cfgPath,
    makeConfig({
      keytab: w.ctaKeytab,
      principal: w.ctaPrincipal,
      scs: [{ principal: w.scPrincipal, address: '127.0.0.1', port: 1293 }],
      kdc: { address: '127.0.0.1', port: w.kdc.udpPort },
      listenPort: held.address().port,
      signalingPort: await freeUdpPort(),
    }),
  );
  const con = await startConsoleEmulator({ board: 'emulator', storageDir: join(dir, 'storage'), port: 0 });
  t.after(() => con.close());
  const r = await cta(['flash', '--board', 'emulator', '--port', `tcp://127.0.0.1:${con.address.port}`, '--config', cfgPath]);
  assert.equal(r.code, 1, r.out + r.err);
  assert.doesNotMatch(r.out, /the CTA agent runs/);
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
  assert.match(r.err.trim(), /^cta flash: step 6\/6 \(reset\) failed: the board restarted but the CTA agent did not start cleanly: .*EADDRINUSE/);
});

test('cta flash: a board whose Storage cannot hold image + config is refused before anything is erased or written', async (t) => {
  const dir = tmp(t);
  const w = await kdcWorld(dir);
  t.after(() => w.close());
  const cfgPath = join(dir, 'cta.cbor');
  writeFileSync(cfgPath, makeConfig({ keytab: w.ctaKeytab, principal: w.ctaPrincipal, scs: [{ principal: w.scPrincipal, address: '127.0.0.1', port: 1293 }], kdc: { address: '127.0.0.1', port: 88 } }));
  const storage = join(dir, 'storage');
  const con = await startConsoleEmulator({ board: 'emulator', storageDir: storage, port: 0 });
  t.after(() => con.close());
  // The user's own file fills the emulated board (262,144 B of Storage) but for 10 KB.
  const Storage = con.current().global.require('Storage');
  const junk = 'j'.repeat(262144 - 10240 - 32);
  assert.equal(Storage.write('user.dat', junk), true);
  const free = Storage.getFree();
  assert.ok(free >= 10000 && free <= 10240, `free ${free}`);
  const r = await cta(['flash', '--board', 'emulator', '--port', `tcp://127.0.0.1:${con.address.port}`, '--config', cfgPath]);
  assert.equal(r.code, 1, r.out + r.err);
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
  assert.match(r.err, /^cta flash: step 3\/6 \(connect\) failed: not enough Storage: the image \(\d+ B\) and the configuration \(\d+ B\) need (\d+) bytes with their headers; the board has (\d+) \((\d+) free, 0 in erased files, 0 in the files this replaces\)\. Nothing was written\./);
  const m = /need (\d+) bytes .* the board has (\d+)/.exec(r.err)!;
  assert.ok(Number(m[1]) > Number(m[2]));
  assert.doesNotMatch(r.out, /upload config|upload firmware/);
  // Nothing erased, nothing written.
  assert.deepEqual(readdirSync(storage).map(decodeURIComponent), ['user.dat']);
  assert.equal(con.current().global.require('Storage').read('user.dat').length, junk.length);
  // The emulated Storage itself refuses a file it cannot hold, as a board does.
  assert.throws(() => Storage.write('big.dat', 'x'.repeat(20000)), /Unable to find or create file/);
});
