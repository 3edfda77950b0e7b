// `cta hil` against the tcp:// and serial: targets, each as a separate process
// (bin/cta.js) against a board run here:
//  - tcp://: the emulator's Espruino-style console (what `cta emu --console` serves):
//    the runner flashes it with `cta flash` (config + firmware + load()), reads
//    status / memory through console queries, runs the whole suite over UDP.
//  - serial:: the firmware in the emulator with Serial1 on one end of a socat PTY
//    pair, unconfigured; the runner provisions it over control channel 0, resets it,
//    relays its KDC traffic on channel 2 and runs the scenarios through a link-level
//    proxy on channel 1. The flood (UDP only) and the clock skew (the emulated board
//    has no settable clock) are skipped with their reasons.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { needTool } from './helpers/tools.ts';
import { socatPair } from './helpers/cta-world.ts';
import { runCta, type CtaRun } from './helpers/cli.ts';
import { startConsoleEmulator } from '../host-tools/emulator/console.ts';
import { startEmulator } from '../host-tools/emulator/emulator.ts';
import { buildFirmware } from '../host-tools/build/build.ts';
import { scenarioNames } from '../host-tools/hil/runner.ts';
import { parseTarget, unavailableReason, LinkProxy } from '../host-tools/hil/targets.ts';
import { UsageError } from '../host-tools/args.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
type Ctx = { after: (fn: () => unknown) => void };

function tmp(t: Ctx): string {
  const d = mkdtempSync(join(tmpdir(), 'hil-targets-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** bin/cta.js hil ... as a child process (asynchronous: the board runs in this process). */
function hil(args: string[], timeoutMs = 180000): Promise<CtaRun> {
  return runCta(['hil', ...args], { timeoutMs, cwd: ROOT });
}

function junitCounts(path: string): { tests: number; failures: number; skipped: number } {
  const x = readFileSync(path, 'utf8');
  const m = /<testsuite [^>]*tests="(\d+)"[^>]*failures="(\d+)"[^>]*skipped="(\d+)"/.exec(x) ?? /<testsuite [^>]*/.exec(x);
  assert.ok(m, x.slice(0, 300));
  const attr = (n: string) => Number(new RegExp(`${n}="(\\d+)"`).exec(m[0])![1]);
  return { tests: attr('tests'), failures: attr('failures'), skipped: attr('skipped') };
}

test('targets: serial:/tcp:// parsing, a missing serial device is unavailable (skipped), tcp default board linux', () => {
  assert.deepEqual(parseTarget('serial:/dev/pts/7:9600'), { kind: 'serial', text: 'serial:/dev/pts/7:9600', path: '/dev/pts/7', baud: 9600 });
  assert.deepEqual(parseTarget('serial:/dev/ttyACM0'), { kind: 'serial', text: 'serial:/dev/ttyACM0', path: '/dev/ttyACM0', baud: null });
  assert.throws(() => parseTarget('serial:/dev/ttyACM0:1234'), UsageError);
  assert.throws(() => parseTarget('serial:ttyACM0'), UsageError);
  assert.throws(() => parseTarget('tcp://127.0.0.1:0'), UsageError);
  assert.deepEqual(parseTarget('tcp://127.0.0.1:2323'), { kind: 'tcp', text: 'tcp://127.0.0.1:2323', host: '127.0.0.1', port: 2323 });
  assert.match(unavailableReason(parseTarget('serial:/dev/no-such-tty-here')) ?? '', /does not exist/);
  assert.equal(unavailableReason(parseTarget('tcp://127.0.0.1:2323')), null);
});

test('LinkProxy: logs both directions, filters, injects, waitFor', async () => {
  const p = new LinkProxy();
  const toCta: number[] = [];
  const toSc: number[] = [];
  p.toCta = (d) => toCta.push(d[0]);
  p.toSc = (d) => toSc.push(d[0]);
  const mark = p.total;
  const w = p.waitFor((r) => r.dir === 'cta->sc' && r.data[0] === 4, 1000);
  p.relay(new Uint8Array([1]), 'sc->cta', false);
  p.filter = (d, dir) => !(dir === 'sc->cta' && d[0] === 3);
  p.relay(new Uint8Array([3]), 'sc->cta', false);
  p.inject(new Uint8Array([1, 9]));
  p.relay(new Uint8Array([4]), 'cta->sc', false);
  assert.deepEqual(toCta, [1, 1]);
  assert.deepEqual(toSc, [4]);
  const rs = p.since(mark);
  assert.deepEqual(
    rs.map((r) => [r.dir, r.data[0], r.dropped, r.injected]),
    [
      ['sc->cta', 1, false, false],
      ['sc->cta', 3, true, false],
      ['sc->cta', 1, false, true],
      ['cta->sc', 4, false, false],
    ],
  );
  assert.equal((await w)?.data[0], 4);
  assert.equal(await p.waitFor(() => true, 20), null);
});

test('cta hil --target tcp://: flashed through the console with cta flash, the whole suite passes (socket-stall skipped: no stall to inject there)', async (t) => {
  const dir = tmp(t);
  const storage = join(dir, 'storage');
  const con = await startConsoleEmulator({ board: 'emulator', storageDir: storage, port: 0 });
  t.after(() => con.close());
  assert.equal(con.current().global.cta, undefined, 'a blank board runs nothing');
  const junit = join(dir, 'hil.xml');
  const r = await hil(['--target', `tcp://127.0.0.1:${con.address.port}`, '--board', 'emulator', '--flood', '1000', '--junit', junit]);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}`);
  // Provisioned through cta flash: every step, both files checked back.
  assert.match(r.out, /^flash \[5\/6\] upload firmware: Storage "\.bootcde" \d+ bytes, crc32 [0-9a-f]+ verified$/m);
  assert.match(r.out, /^flash \[6\/6\] reset: load\(\): the CTA agent runs as cta\/hil-cta\.example\.net@HIL\.EXAMPLE\.NET \(transport udp\)$/m);
  const files = readdirSync(storage).map(decodeURIComponent);
  assert.ok(files.includes('.bootcde') && files.includes('cta.cfg'), files.join(','));
  // The board was restarted by the runner (client-initiated re-provisioning): flash's load() + one more.
  assert.ok(con.boots >= 3, `boots ${con.boots}`);
  const names = scenarioNames();
  // The socket stall is injected into the emulator's own UDP socket: a console target cannot.
  for (const n of names) {
    if (n === 'socket-stall') assert.match(r.out, /^SKIP socket-stall\s+\d+ ms  not on this target: .*cannot be made to stop delivering/m, r.out);
    else assert.match(r.out, new RegExp(`^PASS ${n}\\s+\\d+ ms`, 'm'), `no PASS line for ${n}:\n${r.out}`);
  }
  assert.match(r.out, /device memory after boot: usage \d+\/\d+ variables/);
  assert.match(r.out, /device received 10\d\d, accepted 0/);
  assert.deepEqual(junitCounts(junit), { tests: names.length, failures: 0, skipped: 1 });
  // At the end the runner stopped the agent on the board (it keeps the firmware in Storage).
  assert.equal(con.current().global.cta?.running, false);
});

test('cta hil --target tcp://: nothing listening is a quick setup failure', async (t) => {
  const dir = tmp(t);
  const con = await startConsoleEmulator({ board: 'emulator', storageDir: join(dir, 's'), port: 0 });
  const port = con.address.port;
  await con.close();
  const r = await hil(['--target', `tcp://127.0.0.1:${port}`, '--board', 'emulator', '--scenario', 'happy-path'], 90000);
  assert.equal(r.code, 1, r.out + r.err);
  assert.match(r.out, /^setup failed: cannot connect to the console at 127\.0\.0\.1:\d+: connect ECONNREFUSED/m);
  assert.match(r.out, /0 passed, 1 failed, 0 skipped/);
});

test('cta hil --target serial:/dev/pts/N: provisioned over channel 0, scenarios through the link proxy', async (t) => {
  const socat = needTool(t, 'socat');
  if (!socat) return;
  const dir = tmp(t);
  const pty = await socatPair(socat);
  t.after(() => pty.close());
  const fw = await buildFirmware({ board: 'emulator', outDir: join(dir, 'fw') });
  assert.deepEqual(fw.violations, []);
  // An unconfigured board: it serves control channel 0 on Serial1 until it is provisioned.
  const emu = await startEmulator({ board: 'emulator', bundlePath: fw.path, storageDir: join(dir, 'storage'), serialPath: pty.a });
  t.after(() => emu.stop());
  assert.equal(emu.global.cta, null);
  assert.equal(emu.global.ctaError, 'no configuration');
  const junit = join(dir, 'hil.xml');
  const r = await hil(['--target', `serial:${pty.b}`, '--board', 'emulator', '--junit', junit]);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}`);
  assert.match(r.out, /board answers on channel 0 \(unconfigured: no configuration\)/);
  assert.match(r.out, /SC sc\/hil-sc\.example\.net@HIL\.EXAMPLE\.NET attached to serial:\/dev\/pts\/\d+/);
  const skipped = ['clock-skew', 'wake-up-flood', 'socket-stall', 'forged-wake-stream'];
  for (const n of scenarioNames()) {
    if (skipped.includes(n)) assert.match(r.out, new RegExp(`^SKIP ${n}\\s+\\d+ ms  not on this target: .+`, 'm'), r.out);
    else assert.match(r.out, new RegExp(`^PASS ${n}\\s+\\d+ ms`, 'm'), `no PASS line for ${n}:\n${r.out}`);
  }
  assert.match(r.out, /^SKIP clock-skew .*set-time answered clock=agent/m);
  assert.match(r.out, /^PASS ap-reply-withheld .*AP Reply\(s\) withheld/m);
  assert.match(r.out, /^PASS client-initiated /m);
  assert.deepEqual(junitCounts(junit), { tests: scenarioNames().length, failures: 0, skipped: skipped.length });
  // The board now runs the provisioned agent on its serial transport (it was reset over channel 0).
  const st = emu.global.cta.status();
  assert.equal(st.principal, 'cta/hil-cta.example.net@HIL.EXAMPLE.NET');
  assert.equal(st.transport, 'serial');
  assert.ok(st.counters.sessionsEstablished >= 1);
});
