// `cta sc --serial /dev/pts/N:115200` as a user runs it: a separate process serving an
// emulated CTA (the real firmware bundle, Serial1 on the other end of a socat PTY
// pair) with the KDC relayed on channel 2; the SA comes up; SIGTERM stops it cleanly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from './helpers/tools.ts';
import { socatPair, kdcWorld, waitFor, serialCtaConfig } from './helpers/cta-world.ts';
import { buildFirmware } from '../host-tools/build/build.ts';
import { startEmulator } from '../host-tools/emulator/emulator.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'cta.js');

test('cta sc --serial: serves a CTA on a PTY, SA established, clean SIGTERM', async (t) => {
  const socat = needTool(t, 'socat');
  if (!socat) return;
  const dir = mkdtempSync(join(tmpdir(), 'cta-serial-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pty = await socatPair(socat);
  t.after(() => pty.close());
  const w = await kdcWorld(dir);
  t.after(() => w.close());
  const fw = await buildFirmware({ board: 'emulator', outDir: join(dir, 'fw') });
  const cfg = serialCtaConfig(w);
  const emu = await startEmulator({ board: 'emulator', bundlePath: fw.path, storageDir: join(dir, 'st'), files: { 'cta.cfg': cfg }, serialPath: pty.a });
  t.after(() => emu.stop());

  const sc = spawn(
    process.execPath,
    [BIN, 'sc', '--principal', w.scPrincipal, '--keytab', w.scKeytabPath, '--listen', '127.0.0.1:0', '--control', 'none', '--state', ':memory:', '--serial', `${pty.b}:115200`, '--kdc', `127.0.0.1:${w.kdc.udpPort}`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  let err = '';
  sc.stdout.on('data', (d) => (out += d));
  sc.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((res) => sc.on('exit', (code) => res(code)));
  t.after(() => {
    if (sc.exitCode === null) sc.kill('SIGKILL');
  });
  await waitFor(() => /"event":"serial_cta_attached"/.test(out) || sc.exitCode !== null, 'the SC to attach the serial CTA', 20000);
  assert.match(out, new RegExp(`"event":"serial_cta_attached".*"principal":"${w.ctaPrincipal.replace(/[/.]/g, '\\$&')}"`), out + err);
  await waitFor(() => emu.global.cta.status().scs[0].state === 'established', 'the SA on the CTA', 20000);
  await waitFor(() => /"event":"established"/.test(out), 'the SC to log the SA', 10000);
  sc.kill('SIGTERM');
  assert.equal(await exited, 0, err);
  assert.match(out, /"event":"stopped"/);
});

test('cta sc --serial: a missing device is one clear line and exit code 2', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-serial-cli-'));
  try {
    const w = await kdcWorld(dir);
    try {
      const r = spawn(process.execPath, [BIN, 'sc', '--principal', w.scPrincipal, '--keytab', w.scKeytabPath, '--listen', '127.0.0.1:0', '--control', 'none', '--state', ':memory:', '--serial', '/dev/does-not-exist-cta'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      r.stderr.on('data', (d) => (err += d));
      const code = await new Promise<number | null>((res) => r.on('exit', (c) => res(c)));
      assert.equal(code, 2);
      assert.match(err.trim(), /^cta sc: --serial \/dev\/does-not-exist-cta: cannot open serial port \/dev\/does-not-exist-cta: no such device$/);
    } finally {
      await w.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
