// `cta emu`: flag errors, and a real run of a bundle until SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../host-tools/emulator/cli.ts';
import { buildFirmware, SELFTEST_ENTRY } from '../host-tools/build/build.ts';
import { UsageError } from '../host-tools/args.ts';
import { makeConfig } from '../host-tools/provision/cli.ts';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cta-emucli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('cta emu: usage errors', async (t) => {
  const dir = tmp(t);
  const cfg = join(dir, 'cta.cbor');
  writeFileSync(cfg, Buffer.from([0xa0]));
  await assert.rejects(run([]), /--config FILE is required/);
  await assert.rejects(run(['--config', join(dir, 'missing.cbor')]), /config file not found/);
  await assert.rejects(run(['--board', 'puckjs', '--config', cfg, '--udp', '4000']), (e: Error) => e instanceof UsageError && /no UDP/.test(e.message));
  await assert.rejects(run(['--board', 'esp32', '--config', cfg, '--serial', '/dev/null']), /no serial transport/);
  await assert.rejects(run(['--config', cfg, '--udp', '70000']), UsageError);
  await assert.rejects(run(['--board', 'mars', '--config', cfg]), /unknown board/);
});

test('cta emu runs a bundle with the config in Storage and stops cleanly on SIGTERM', async (t) => {
  const dir = tmp(t);
  const cfg = join(dir, 'cta.cbor');
  writeFileSync(cfg, Buffer.from([0xa1, 0x01, 0x02]));
  const r = await buildFirmware({ board: 'emulator', entry: SELFTEST_ENTRY, outDir: dir });
  const storage = join(dir, 'storage');
  const child = spawn(process.execPath, ['bin/cta.js', 'emu', '--bundle', r.path, '--config', cfg, '--storage', storage, '--udp', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (b) => (out += b));
  child.stderr.on('data', (b) => (out += b));
  const deadline = Date.now() + 20000;
  while (!/emu: board emulator running/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((res) => setTimeout(res, 50));
  assert.match(out, /SELFTEST PASS \d+/);
  assert.match(out, /emu: board emulator running/);
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((res) => child.on('exit', (c) => res(c)));
  assert.equal(code, 0, out);
  assert.match(out, /emu: stopped/);
  assert.deepEqual(readdirSync(storage), ['cta%2Ecfg']);
  assert.deepEqual([...readFileSync(join(storage, 'cta%2Ecfg'))], [0xa1, 0x01, 0x02]);
});

test('cta emu without --storage: each CTA gets a Storage of its own (two CTAs of one board do not share cta.cfg)', async (t) => {
  const dir = tmp(t);
  const storages: string[] = [];
  for (const name of ['cta/a1.emu.test', 'cta/a2.emu.test']) {
    const cfg = join(dir, `${name.slice(4)}.cbor`);
    writeFileSync(
      cfg,
      makeConfig({
        keytab: [{ principal: { realm: 'EMU.TEST', components: name.split('/'), nameType: 1 }, timestamp: 1700000000, kvno: 1, etype: 18, key: new Uint8Array(32).fill(7) }],
        principal: name,
        scs: [{ principal: 'sc/sc1.emu.test' }],
        kdc: { address: '127.0.0.1', port: 9 },
        listenPort: 1,
        signalingPort: 2,
      }),
    );
    const child = spawn(process.execPath, ['bin/cta.js', 'emu', '--config', cfg, '--udp', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    const deadline = Date.now() + 20000;
    while (!/emu: board emulator running/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((res) => setTimeout(res, 50));
    child.kill('SIGTERM');
    await new Promise((res) => child.on('exit', res));
    const m = /; storage ([^;]+);/.exec(out);
    assert.ok(m, out);
    storages.push(m[1]);
    t.after(() => rmSync(m[1], { recursive: true, force: true }));
  }
  assert.match(storages[0], /\.tmp\/emu\/emulator-cta_a1\.emu\.test@EMU\.TEST$/);
  assert.notEqual(storages[0], storages[1]);
});
