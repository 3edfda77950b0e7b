// What keeps the SC's resident memory per registered CTA small (bench `memory`):
// `cta sc` runs with V8's young generation held at its initial size, and a registry
// file's SQLite page cache is bounded instead of holding the whole file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from '../host-tools/sc/registry.ts';
import { SC_V8_FLAGS } from '../host-tools/bench/proc.ts';
import { REPO_ROOT } from '../host-tools/build/build.ts';

// 60,000 long-lived strings made in a loop (what registering or loading CTAs does),
// then the young generation's size. Without the flag V8 grows it towards 16 MiB per
// semi-space; with it, it stays where it started.
const YOUNG = `
const v8 = require('node:v8');
if (process.env.FLAGS) v8.setFlagsFromString(process.env.FLAGS);
const young = () => v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
const start = young();
const keep = [];
for (let i = 0; i < 60000; i++) keep.push('cta/c' + i + '.bench.test@BENCH.TEST');
console.log(JSON.stringify({ start, end: young(), kept: keep.length }));
`;
function youngGrowth(flags: string): { start: number; end: number } {
  const r = spawnSync(process.execPath, ['-e', YOUNG], { encoding: 'utf8', timeout: 30000, env: { ...process.env, FLAGS: flags } });
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  assert.equal(o.kept, 60000);
  return o;
}

test('SC_V8_FLAGS, set at run time, bound the young generation on this Node (it grows 16x without them)', () => {
  const without = youngGrowth('');
  assert.ok(without.end >= 8 * without.start, `without the flags the young generation grows (${without.start} -> ${without.end})`);
  const withFlags = youngGrowth(SC_V8_FLAGS);
  assert.ok(withFlags.end <= 2 * withFlags.start, `with them it stays small (${withFlags.start} -> ${withFlags.end})`);
});

test('bin/cta.js sets SC_V8_FLAGS for `cta sc` only, after tsx is registered and before the commands load', () => {
  const src = readFileSync(join(REPO_ROOT, 'bin', 'cta.js'), 'utf8');
  const set = /if \(process\.argv\[2\] === 'sc'\) setFlagsFromString\('([^']*)'\);/.exec(src);
  assert.ok(set, 'bin/cta.js has no setFlagsFromString for sc');
  assert.equal(set[1], SC_V8_FLAGS);
  assert.ok(set.index > src.indexOf('register();'), 'set after tsx register() (its loader thread resets V8 flags)');
  assert.ok(set.index < src.indexOf("import('../host-tools/cli.ts')"), 'set before the commands load');
});

test('registry file: bounded SQLite page cache; :memory: keeps its default (its pages are the database)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-memory-'));
  try {
    const file = new Registry(join(dir, 'sc.db'));
    const mem = new Registry(':memory:');
    const cacheOf = (r: Registry) => (r as unknown as { db: { pragma(s: string, o: object): number } }).db.pragma('cache_size', { simple: true });
    try {
      assert.equal(cacheOf(file), -2048);
      assert.equal(cacheOf(mem), -16000);
      // Many more rows than the cache holds: written, read back and reloaded intact.
      const n = 30000;
      for (let i = 0; i < n; i++) file.register(`cta/c${i}.t@R.TEST`, `10.0.${i >> 8 & 255}.${i & 255}`, 1024 + (i % 50000), undefined, 1000);
      file.flush();
      assert.equal(file.get(`cta/c${n - 1}.t@R.TEST`)?.address, `10.0.${(n - 1) >> 8 & 255}.${(n - 1) & 255}`);
    } finally {
      file.close();
      mem.close();
    }
    const again = new Registry(join(dir, 'sc.db'));
    try {
      assert.equal(again.count, 30000);
      const s = again.slotOf('cta/c12345.t@R.TEST');
      assert.equal(again.address(s), `10.0.${12345 >> 8 & 255}.${12345 & 255}`);
      assert.equal(again.port(s), 1024 + 12345);
    } finally {
      again.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
