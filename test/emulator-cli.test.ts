// `cta emu`: flag errors, and a real run of a bundle until SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync, readdirSync, readFileSync } from 'node:fs';
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
  // The merged layout (main's): .tmp/emu/<board>/<CTA principal, URI-encoded>.
  assert.match(storages[0], /\.tmp\/emu\/emulator\/cta%2Fa1\.emu\.test%40EMU\.TEST$/);
  assert.notEqual(storages[0], storages[1]);
});

// Issue 13 item 1: Storage holds cta.cfg, the CTA's long-term keys.
test('cta emu keeps Storage private: folder 0700, cta.cfg 0600 (also over an existing 0755/0644 one), one default folder per CTA', async (t) => {
  const dir = tmp(t);
  const r = await buildFirmware({ board: 'emulator', entry: SELFTEST_ENTRY, outDir: dir });
  const runEmu = async (args: string[]): Promise<string> => {
    const child = spawn(process.execPath, ['bin/cta.js', 'emu', '--bundle', r.path, '--udp', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => child.kill('SIGKILL'));
    let out = '';
    child.stdout.on('data', (b) => (out += b));
    child.stderr.on('data', (b) => (out += b));
    const deadline = Date.now() + 20000;
    while (!/emu: board emulator running/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((res) => setTimeout(res, 50));
    child.kill('SIGTERM');
    assert.equal(await new Promise<number | null>((res) => child.on('exit', (c) => res(c))), 0, out);
    return out;
  };
  // An existing, world-readable Storage with a world-readable cta.cfg in it.
  const storage = join(dir, 'storage');
  mkdirSync(storage, { mode: 0o755 });
  chmodSync(storage, 0o755);
  writeFileSync(join(storage, 'cta%2Ecfg'), 'old', { mode: 0o644 });
  chmodSync(join(storage, 'cta%2Ecfg'), 0o644);
  const cfg = join(dir, 'a.cbor');
  writeFileSync(cfg, Buffer.from([0xa1, 0x01, 0x02]));
  await runEmu(['--config', cfg, '--storage', storage]);
  assert.equal(statSync(storage).mode & 0o777, 0o700);
  assert.equal(statSync(join(storage, 'cta%2Ecfg')).mode & 0o777, 0o600);
  assert.deepEqual([...readFileSync(join(storage, 'cta%2Ecfg'))], [0xa1, 0x01, 0x02]);
  // Two CTAs without --storage: two folders, each 0700 with a 0600 cta.cfg.
  const cfg2 = join(dir, 'b.cbor');
  writeFileSync(cfg2, Buffer.from([0xa1, 0x01, 0x03]));
  const dirs = [];
  for (const c of [cfg, cfg2]) {
    const out = await runEmu(['--config', c]);
    const m = /storage (\S+);/.exec(out);
    assert.ok(m, out);
    const d = m![1];
    t.after(() => rmSync(d, { recursive: true, force: true }));
    assert.equal(statSync(d).mode & 0o777, 0o700);
    assert.equal(statSync(join(d, 'cta%2Ecfg')).mode & 0o777, 0o600);
    dirs.push(d);
  }
  assert.notEqual(dirs[0], dirs[1]);
});
