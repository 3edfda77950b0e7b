// `cta build`: bundling with the BOARD constant, the Espruino rewrites, the
// subset check on the output, and the real selftest bundle for every board.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import { buildFirmware, espruinoFixups, firmwareModules, throwHelpers, REPO_ROOT, SELFTEST_ENTRY } from '../host-tools/build/build.ts';
import { parse } from 'acorn';
import { listBoards, loadBoard } from '../host-tools/build/boards.ts';
import { checkSubset } from '../host-tools/build/subset-check.ts';
import { run } from '../host-tools/build/cli.ts';
import { UsageError } from '../host-tools/args.ts';

const FIX = 'test/fixtures/build';

function tmp(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cta-build-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function runBundle(code: string): string[] {
  const out: string[] = [];
  vm.runInNewContext(code, { print: (s: string) => out.push(String(s)) });
  return out;
}

test('board configs load and carry the facts the build and emulator need', () => {
  const boards = listBoards();
  for (const b of ['pico', 'puckjs', 'esp32', 'espruino-wifi', 'linux', 'emulator']) assert.ok(boards.includes(b), b);
  for (const b of boards) {
    const c = loadBoard(b);
    assert.equal(c.board, b);
    assert.ok(c.variables > 0 && c.slots > 0 && c.blockSize > 0);
    assert.equal(typeof c.transports.udp, 'boolean');
    assert.ok(c.transports.udp || c.transports.serial, `${b} has some transport`);
  }
  assert.equal(loadBoard('puckjs').transports.udp, false);
  assert.equal(loadBoard('puckjs').variables, 2630);
  assert.throws(() => loadBoard('nosuchboard'), (e: Error) => e instanceof UsageError && /unknown board 'nosuchboard'.*puckjs/.test(e.message));
  assert.throws(() => loadBoard('../package'), UsageError);
});

test('text codes number only modules with code: a module of declarations only (types) takes no number', () => {
  const mods = firmwareModules();
  for (const m of ['firmware/agent/agent.ts', 'firmware/proto/krb5.ts', 'firmware/proto/krb5-consts.ts']) assert.ok(mods.includes(m), m);
  // Types split out of agent.ts and krb5.ts: nothing of them is in a bundle, so they must
  // not shift the numbers (and so the bytes) of the modules sorted after them.
  for (const m of ['firmware/agent/agent-types.ts', 'firmware/proto/krb5-types.ts']) assert.ok(!mods.includes(m), m);
  assert.deepEqual([...mods].sort(), mods);
});

test('buildFirmware bundles with the BOARD constant and writes <board>-<entry>.js', async (t) => {
  const out = tmp(t);
  const r = await buildFirmware({ board: 'puckjs', entry: `${FIX}/board-echo.ts`, outDir: out });
  assert.equal(r.path, join(out, 'puckjs-board-echo.js'));
  const code = readFileSync(r.path, 'utf8');
  assert.equal(r.bytes, statSync(r.path).size);
  assert.deepEqual(r.violations, []);
  assert.ok(!/\n/.test(code.trim()), 'minified to one line');
  assert.deepEqual(runBundle(code), ['BOARD puckjs slots=4 udp=false chain=3']);
  const r2 = await buildFirmware({ board: 'emulator', entry: `${FIX}/board-echo.ts`, outDir: out, minify: false });
  assert.deepEqual(runBundle(readFileSync(r2.path, 'utf8')), ['BOARD emulator slots=16 udp=true chain=3']);
});

test('espruinoFixups removes self-referencing class-expression names and keeps behaviour', () => {
  const src = 'var A=class _A{static mk(){return new _A}m(){return 1}},B=class _B{m(){return 2}};print(String(A.mk() instanceof A)+A.mk().m()+new B().m());';
  assert.ok(checkSubset(src).some((v) => v.rule === 'class-expression-name'));
  const fixed = espruinoFixups(src);
  assert.deepEqual(checkSubset(fixed), []);
  assert.ok(!/class _[AB]/.test(fixed));
  assert.deepEqual(runBundle(fixed), ['true12']);
});

test('a bundle outside the subset is reported with its violations', async (t) => {
  const r = await buildFirmware({ board: 'emulator', entry: `${FIX}/uses-map.ts`, outDir: tmp(t) });
  assert.ok(r.violations.some((v) => v.rule === 'forbidden-global' && v.snippet === 'Map'));
});

test('a literal require of an Espruino module is refused at bundling', async (t) => {
  await assert.rejects(buildFirmware({ board: 'emulator', entry: `${FIX}/bare-import.ts`, outDir: tmp(t) }), /must not import or require 'dgram'.*espruinoRequire/s);
});

test('cta build: exit 0 when clean, 1 with violations, UsageError for bad flags', async (t) => {
  const out = tmp(t);
  const logs: string[] = [];
  const origLog = console.log;
  const origErr = console.error;
  console.log = (...a: unknown[]) => void logs.push(a.join(' '));
  console.error = (...a: unknown[]) => void logs.push(a.join(' '));
  try {
    assert.equal(await run(['--board', 'pico', '--entry', `${FIX}/board-echo.ts`, '--out', out]), 0);
    assert.match(logs.join('\n'), /pico: .*pico-board-echo\.js \d+ bytes \(\d+\.\d KB\), subset check passed/);
    assert.equal(await run(['--board', 'pico', '--entry', `${FIX}/uses-map.ts`, '--out', out]), 1);
    assert.match(logs.join('\n'), /forbidden-global: .*Map/);
  } finally {
    console.log = origLog;
    console.error = origErr;
  }
  await assert.rejects(run(['--board', 'nope']), UsageError);
  await assert.rejects(run(['--board', 'pico', '--all']), UsageError);
  await assert.rejects(run(['--bogus']), UsageError);
});

test('the selftest bundle is inside the Espruino subset for every board', async (t) => {
  const out = tmp(t);
  for (const board of listBoards()) {
    const r = await buildFirmware({ board, entry: SELFTEST_ENTRY, outDir: out });
    assert.deepEqual(r.violations, [], `${board}: ${JSON.stringify(r.violations.slice(0, 5))}`);
    assert.ok(r.bytes > 1000);
  }
});

test('short-error builds call the errors.ts throw helpers only for constructors that are errors.ts\'s (or the global Error)', async (t) => {
  const at = (rel: string) => join(REPO_ROOT, rel);
  const ast = (src: string) => parse(src, { ecmaVersion: 'latest', sourceType: 'module' }) as never;
  const imp = "import { DecodeError, CryptoError } from './errors.ts';\n";
  assert.deepEqual(throwHelpers(ast(imp + 'throw new DecodeError("x")'), at('firmware/proto/m.ts')), { DecodeError: '__tD', CryptoError: '__tC', Error: '__tE' });
  // Renamed or foreign imports, a local Error, errors.ts itself and a taken __t name: left alone.
  assert.deepEqual(throwHelpers(ast("import { DecodeError as D } from './errors.ts';"), at('firmware/proto/m.ts')), { Error: '__tE' });
  assert.deepEqual(throwHelpers(ast("import { DecodeError } from './other/errors.ts';"), at('firmware/proto/m.ts')), { Error: '__tE' });
  assert.deepEqual(throwHelpers(ast(imp + 'class Error {}'), at('firmware/proto/m.ts')), { DecodeError: '__tD', CryptoError: '__tC' });
  assert.deepEqual(throwHelpers(ast(imp + 'function f(Error) { throw new Error(1); }'), at('firmware/proto/m.ts')), { DecodeError: '__tD', CryptoError: '__tC' });
  assert.deepEqual(throwHelpers(ast('throw new Error("x")'), at('firmware/proto/errors.ts')), {});
  assert.deepEqual(throwHelpers(ast(imp + 'const __tD = 1;'), at('firmware/proto/m.ts')), {});
  // In a real bundle the thrown errors keep their class and short code.
  const dir = tmp(t);
  const r = await buildFirmware({ board: 'linux', outDir: dir });
  const code = readFileSync(r.path, 'utf8');
  assert.doesNotMatch(code, /throw new \w+\("#\d+"\)/, 'protocol throw sites go through the helpers');
  assert.ok(Object.keys(r.errorCodes).some((c) => code.includes(`"${c}"`)));
});
