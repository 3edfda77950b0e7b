// Smoke test of `cta bench`: the whole suite with the tiny --quick budget writes a
// valid results.json. No timing assertions: the figures of a quick run mean nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

function bench(args: string[]) {
  return spawnSync(process.execPath, [join(ROOT, 'bin', 'cta.js'), 'bench', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 240000 });
}

test('cta bench --quick runs every benchmark and writes a valid results.json', { timeout: 300000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-bench-test-'));
  try {
    const out = join(dir, 'results.json');
    const r = bench(['--quick', '--out', out]);
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    const j = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(j.version, 1);
    assert.equal(j.quick, true);
    assert.ok(j.machine.nproc >= 1 && typeof j.machine.cpu === 'string' && j.machine.node === process.version);
    // SC: a figure per size with median/min/max over the runs, and exchanges actually completed.
    assert.ok(j.sc.throughput.length >= 1);
    for (const t of j.sc.throughput) {
      assert.equal(t.rate.runs.length, j.runs);
      assert.ok(t.rate.min <= t.rate.median && t.rate.median <= t.rate.max);
      assert.ok(t.rate.median > 0, 'no exchange completed');
    }
    assert.ok(j.sc.paced.rate.median > 0);
    assert.ok(j.sc.scaling.one.median > 0 && j.sc.scaling.two.median > 0 && j.sc.scaling.ratio > 0);
    assert.ok(j.memory.bytesPerCta > 0 && j.memory.ctas > 0);
    assert.ok(j.kdc.ours.median > 0);
    if (j.kdc.mit) assert.ok(j.kdc.mit.median > 0 && j.kdc.ratio > 0);
    else assert.match(j.kdc.skipped, /not installed/);
    assert.ok(j.apreq.ours.median > 0);
    if (j.apreq.mit) assert.ok(j.apreq.ratio > 0);
    else assert.equal(typeof j.apreq.skipped, 'string');
    assert.deepEqual(
      j.crypto.rows.map((x: { backend: string }) => x.backend),
      ['node', 'noble', 'espruino-shape-on-noble'],
    );
    for (const x of j.crypto.rows) assert.ok(x.usPerExchange.median > 0);
    assert.ok(j.firmware.boards.length >= 1);
    for (const b of j.firmware.boards) assert.ok(b.bytes > 1000 && b.gzip > 0 && b.gzip < b.bytes);
    assert.ok(j.firmware.modules.length > 5);
    assert.ok(j.targets.length >= 5);
    for (const t of j.targets) assert.equal(typeof t.met, 'boolean');
    // The printed report names the sections and the targets.
    assert.match(r.stdout, /SC throughput/);
    assert.match(r.stdout, /Targets/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cta bench rejects an unknown benchmark name and a bad --runs', () => {
  const a = bench(['--only', 'nope']);
  assert.equal(a.status, 2);
  assert.match(a.stderr, /unknown benchmark 'nope'/);
  const b = bench(['--runs', '0']);
  assert.equal(b.status, 2);
  assert.match(b.stderr, /--runs must be/);
});

test('cta bench --only crypto --json prints JSON with only that section', { timeout: 120000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-bench-test-'));
  try {
    const r = bench(['--quick', '--only', 'crypto', '--runs', '1', '--json', '--out', join(dir, 'r.json')]);
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const j = JSON.parse(r.stdout);
    assert.ok(j.crypto);
    assert.equal(j.sc, undefined);
    assert.equal(j.crypto.rows[0].usPerExchange.runs.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
