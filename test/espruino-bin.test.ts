// Runs bundles on a real Espruino interpreter (the Linux build), when one is given:
//   ESPRUINO_BIN=/path/to/espruino npm test -- espruino-bin
// The interpreter is the user's own Espruino Linux build; this test never builds
// or downloads it, and only takes its path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { buildFirmware, espruinoFixups, SELFTEST_ENTRY, DEFAULT_ENTRY, REPO_ROOT } from '../host-tools/build/build.ts';
import { formatKerberosTime, parseKerberosTime } from '../firmware/proto/der.ts';
import { prng } from './helpers/asn1.ts';
import { ESPRUINO_BIN as BIN, skipUnlessBin, codeInRamSkipReason } from './helpers/espruino-bin.ts';

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
  const skip = codeInRamSkipReason(out);
  if (skip) {
    console.log(`# skipped: ${skip}`);
    t.skip(skip);
    return;
  }
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

test('KerberosTime on the real interpreter (its own Date.parse and toISOString) agrees with Node', async (t) => {
  if (skipUnlessBin(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'cta-espruino-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The interpreter prints one line per case ("F <ms> <text>", "P <text> <ms|NaN>"), so a
  // Puck-sized build has the memory for it; Node then checks every line against its own
  // answer. Times across years 0..9999 (Linux builds have Espruino's full Date range),
  // and strings that are real times, impossible ones and malformed ones.
  const der = new URL('../firmware/proto/der.ts', import.meta.url).pathname;
  const entry = `import { formatKerberosTime, parseKerberosTime } from ${JSON.stringify(der)};
declare function print(s: string): void;
let seed = 2029;
const min = -62167219200000, max = 253402300799999;
const F = (ms: number) => print('F ' + ms + ' ' + formatKerberosTime(ms));
const P = (s: string) => { const v = parseKerberosTime(s); print('P ' + s + ' ' + (v === v ? v : 'NaN')); };
const fixed = [0, -1000, -1, min, max, -60589296000000, -30610224001000, 951782400000, 4107542400000, 1700000000999];
for (let i = 0; i < fixed.length; i++) F(fixed[i]);
for (let i = 0; i < 200; i++) {
  seed = (seed * 48271) % 2147483647;
  const ms = Math.floor(min + (seed / 2147483647) * (max - min));
  F(ms);
  P(formatKerberosTime(ms));
}
const ys = ['0000', '0099', '1900', '2000', '2023', '2024', '9999'];
const mds = ['0101', '0229', '0230', '0431', '1231', '1232', '1301', '0001', '0100', '0000'];
const hmss = ['000000', '235959', '240000', '006000', '000060', '999999'];
for (let i = 0; i < ys.length; i++) for (let j = 0; j < mds.length; j++) for (let k = 0; k < hmss.length; k++) P(ys[i] + mds[j] + hmss[k] + 'Z');
const odd = ['2023010100000+Z', '20230101000000Y', '_20230101000000', '2023-1-01000000', '20230101T00000Z', '0x230101000000Z', '"0230101000000Z', '/*230101000000Z', '1e230101000000Z'];
for (let i = 0; i < odd.length; i++) P(odd[i]);
print('KT END');`;
  const built = buildSync({ stdin: { contents: entry, loader: 'ts', resolveDir: '.' }, bundle: true, format: 'iife', target: 'es2015', minify: true, write: false });
  const file = join(dir, 'kt.js');
  writeFileSync(file, espruinoFixups(built.outputFiles[0].text));
  const out = await runOnEspruino(file, dir, /KT END/, 300000);
  assert.match(out, /KT END/, out.slice(-2000));
  assert.doesNotMatch(out, /Uncaught|Error/, out.slice(-2000));
  let f = 0;
  let p = 0;
  for (const line of out.split(/\r?\n/)) {
    const m = /^([FP]) (\S+) (\S+)$/.exec(line.replace(/^>+/, ''));
    if (!m) continue;
    if (m[1] === 'F') {
      f++;
      const ms = Number(m[2]);
      assert.equal(m[3], formatKerberosTime(ms), `format ${ms}`);
      assert.equal(m[3], new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/[-:T]|\.000/g, ''), `format ${ms}`);
    } else {
      p++;
      const v = parseKerberosTime(m[2]);
      assert.equal(m[3], v === v ? String(v) : 'NaN', `parse ${m[2]}`);
    }
  }
  assert.equal(f, 210);
  assert.equal(p, 200 + 7 * 10 * 6 + 9);
});
