// Runs bundles on a real Espruino interpreter (the Linux build), when one is given:
//   ESPRUINO_BIN=/path/to/espruino npm test -- espruino-bin
// The interpreter is the user's own Espruino Linux build; this test never builds
// or downloads it, and only takes its path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFirmware, SELFTEST_ENTRY, DEFAULT_ENTRY, REPO_ROOT } from '../host-tools/build/build.ts';
import { ESPRUINO_BIN as BIN, skipUnlessBin } from './helpers/espruino-bin.ts';

/** Runs `file` on the interpreter (stdin closed, cwd = a temp dir for its flash file) until `until` matches or it exits. */
function runOnEspruino(file: string, cwd: string, until: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(BIN as string, [file], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const done = () => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(out);
    };
    const onData = (b: Buffer) => {
      out += b.toString('latin1');
      if (until.test(out)) done();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(out);
    });
    const timer = setTimeout(done, timeoutMs);
  });
}

test('the selftest bundle passes on the real Espruino interpreter', async (t) => {
  if (skipUnlessBin(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'cta-espruino-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await buildFirmware({ board: 'linux', entry: SELFTEST_ENTRY, outDir: dir });
  assert.deepEqual(r.violations, []);
  const out = await runOnEspruino(r.path, dir, /SELFTEST (PASS \d+|FAIL[^\n]*)/, 60000);
  const line = /SELFTEST [^\r\n]*/.exec(out)?.[0] ?? '(no SELFTEST line)';
  assert.match(line, /^SELFTEST PASS \d+/, out.slice(-2000));
  assert.doesNotMatch(out, /Uncaught|SyntaxError/);
});

test('the agent bundle loads on the real Espruino interpreter', async (t) => {
  if (skipUnlessBin(t)) return;
  if (!existsSync(join(REPO_ROOT, DEFAULT_ENTRY))) {
    console.log(`# skipped: ${DEFAULT_ENTRY} does not exist yet`);
    t.skip(`${DEFAULT_ENTRY} does not exist yet`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'cta-espruino-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await buildFirmware({ board: 'linux', outDir: dir });
  assert.deepEqual(r.violations, []);
  // No configuration in its Storage: it must load and report, not crash.
  const out = await runOnEspruino(r.path, dir, /Uncaught|SyntaxError/, 3000);
  assert.doesNotMatch(out, /Uncaught|SyntaxError|Got .* expected/, out.slice(-2000));
});
