// The demo (npm start = cta demo) as a test: embedded KDC, then a real MIT krb5kdc
// whose keytabs came from kadmin.local ktadd, then the one-line errors for bad input.
import test from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { needTool } from './helpers/tools.ts';
import { startMitRealm } from './helpers/mit.ts';

function cta(args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['bin/cta.js', ...args], { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function lastJson(stdout: string) {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

test('cta demo --json: every emulated CTA establishes an SA and answers an RQNT over it', { timeout: 120000 }, async () => {
  const r = await cta(['demo', '--json', '--ctas', '4']);
  assert.equal(r.code, 0, r.stderr);
  const res = lastJson(r.stdout);
  assert.equal(res.ctas, 4);
  assert.equal(res.established, 4);
  assert.equal(res.failed, 0);
  assert.equal(typeof res.elapsed_ms, 'number');
  // One Wake Up per CTA: no exchange needed a retry (the last CTA's first Wake Up
  // was once lost because its emulator's socket was not bound yet).
  assert.equal(res.wake_ups, 4, 'Wake Ups sent');
  assert.equal(res.rows.length, 4);
  for (const row of res.rows) {
    assert.equal(row.phase, 'done');
    assert.match(row.response, /^200 \d+ OK/);
    assert.ok(row.ctaSpi > 0 && row.scSpi > 0);
  }
  // Progress and the table went to stderr; stdout holds only the JSON line.
  assert.equal(r.stdout.trim().split('\n').length, 1);
  // Each CTA's phases appear as they happen, in order (the SC's events are reported at
  // once, so a fast exchange still shows its SA coming up).
  for (const row of res.rows) {
    const mine = r.stderr.split('\n').filter((l) => l.startsWith(`  ${row.principal}: `)).map((l) => l.slice(row.principal.length + 4));
    assert.equal(mine[0], 'woken, waiting', r.stderr);
    assert.ok(mine.includes('SA up, NCS request sent'), r.stderr);
    assert.equal(mine[mine.length - 1], 'done', r.stderr);
  }
});

test('cta demo against a real MIT krb5kdc with ktadd keytabs (one emulated CTA per cta/ principal)', { timeout: 180000 }, async (t) => {
  for (const tool of ['kdb5_util', 'kadmin.local', 'krb5kdc']) if (!needTool(t, tool)) return;
  const realm = await startMitRealm({
    realm: 'MIT.DEMO.TEST',
    principals: [
      { name: 'sc/sc1.example.net', enctypes: [18, 17, 19] },
      { name: 'cta/cta1.example.net', enctypes: [18] },
      { name: 'cta/cta2.example.net', enctypes: [17] },
      { name: 'cta/cta3.example.net', enctypes: [19] },
    ],
    start: true,
  });
  t.after(() => realm.stop());
  const dir = mkdtempSync(join(tmpdir(), 'demo-mit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const scKt = await realm.exportKeytab('sc/sc1.example.net', undefined, { file: join(dir, 'sc.keytab') });
  const ctaKt = join(dir, 'ctas.keytab');
  for (const n of ['cta/cta1.example.net', 'cta/cta2.example.net', 'cta/cta3.example.net']) await realm.exportKeytab(n, undefined, { file: ctaKt });
  const r = await cta([
    'demo', '--json',
    '--kdc', `127.0.0.1:${realm.kdcPort}`,
    '--realm', realm.realm,
    '--sc-principal', `sc/sc1.example.net@${realm.realm}`,
    '--sc-keytab', scKt,
    '--cta-keytab', ctaKt,
  ]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const res = lastJson(r.stdout);
  assert.equal(res.ctas, 3);
  assert.equal(res.failed, 0);
  assert.deepEqual(res.rows.map((x: { principal: string }) => x.principal).sort(), [1, 2, 3].map((i) => `cta/cta${i}.example.net@${realm.realm}`));
  // MIT's KDC really issued the tickets: its log names the CTA principals.
  for (let i = 1; i <= 3; i++) assert.match(realm.kdcLog(), new RegExp(`cta/cta${i}.example.net@${realm.realm}.*sc/sc1.example.net@${realm.realm}`));
});

test('cta demo: bad input gets one clear line and a non-zero exit', { timeout: 60000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'demo-bad-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // A port that was just free: nothing listens there, so the KDC is unreachable.
  const srv = createServer();
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  const deadPort = (srv.address() as AddressInfo).port;
  await new Promise<void>((res) => srv.close(() => res()));
  const base = ['demo', '--kdc', `127.0.0.1:${deadPort}`, '--realm', 'X.TEST', '--sc-principal', 'sc/a@X.TEST'];
  const check = (r: { code: number | null; stderr: string }, re: RegExp) => {
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  };
  check(await cta([...base, '--sc-keytab', join(dir, 'missing.keytab'), '--cta-keytab', join(dir, 'missing.keytab')]), /cannot read SC keytab .*no such file/);
  writeFileSync(join(dir, 'junk.keytab'), 'not a keytab');
  check(await cta([...base, '--sc-keytab', join(dir, 'junk.keytab'), '--cta-keytab', join(dir, 'junk.keytab')]), /not a valid keytab/);
  check(await cta(['demo', '--kdc', '127.0.0.1:1']), /external KDC needs all of/);
  check(await cta(['demo', '--ctas', 'many']), /--ctas must be a whole number/);
  check(await cta(['demo', '--bogus']), /Unknown option '--bogus'/);

  // A principal not in the keytab, and an unreachable KDC, with real keytabs from our KDC.
  const kt = await cta(['kdc', 'init', '--realm', 'X.TEST', '--db', join(dir, 'kdc.db')]);
  assert.equal(kt.code, 0, kt.stderr);
  for (const [p, f] of [['sc/a@X.TEST', 'sc.keytab'], ['cta/b@X.TEST', 'cta.keytab']]) {
    const a = await cta(['kdc', 'add', p, '--db', join(dir, 'kdc.db'), '--keytab', join(dir, f)]);
    assert.equal(a.code, 0, a.stderr);
  }
  check(
    await cta(['demo', '--kdc', '127.0.0.1:1', '--realm', 'X.TEST', '--sc-principal', 'sc/other@X.TEST', '--sc-keytab', join(dir, 'sc.keytab'), '--cta-keytab', join(dir, 'cta.keytab')]),
    /principal 'sc\/other@X.TEST' is not in the SC keytab/,
  );
  check(await cta([...base, '--sc-keytab', join(dir, 'sc.keytab'), '--cta-keytab', join(dir, 'cta.keytab')]), new RegExp(`KDC 127.0.0.1:${deadPort} is unreachable`));
});
