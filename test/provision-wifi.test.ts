// cta provision --wifi-ssid with --wifi-password-stdin / --wifi-password-file: the
// config carries {ssid, password}; the password never appears in stdout/stderr (the
// summary says only whether there is one), is refused on the command line, and bad
// combinations are clear usage errors. Without the flags there is no wifi entry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKeytab } from '../firmware/proto/keytab.ts';
import { decodeConfig } from '../host-tools/provision/config.ts';
import { run } from '../host-tools/provision/cli.ts';
import { UsageError } from '../host-tools/args.ts';
import { CTA_BIN } from './helpers/cli.ts';

const PASSWORD = 'Tr0ub4dor&3-wifi-secret';
const key = new Uint8Array(32).fill(7);
const keytab = encodeKeytab([{ principal: { realm: 'EXAMPLE.NET', components: ['cta', 'cta1.example.net'], nameType: 1 }, timestamp: 0, kvno: 1, etype: 18, key }]);

/** run() in-process with console.log/error captured and `stdin` as standard input. */
async function provision(args: string[], stdin = ''): Promise<{ code: number | null; out: string; err: unknown }> {
  const orig = [console.log, console.error];
  let out = '';
  console.log = console.error = (...a: unknown[]) => {
    out += a.join(' ') + '\n';
  };
  try {
    return { code: await run(args, { stdin: Readable.from([Buffer.from(stdin)]) }), out, err: null };
  } catch (e) {
    return { code: null, out, err: e };
  } finally {
    [console.log, console.error] = orig;
  }
}

function setup(t: { after(fn: () => void): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'cta-prov-wifi-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const kt = join(dir, 'cta.keytab');
  writeFileSync(kt, keytab);
  const out = join(dir, 'cta.cbor');
  const base = ['--keytab', kt, '--principal', 'cta/cta1.example.net', '--sc', 'sc/sc1.example.net', '--kdc', '127.0.0.1:88', '-o', out];
  return { dir, out, base, cfg: () => decodeConfig(new Uint8Array(readFileSync(out))) };
}

test('provision without wifi flags: no wifi entry, the summary says so', async (t) => {
  const s = setup(t);
  const r = await provision(s.base);
  assert.equal(r.code, 0, String(r.err));
  assert.equal(s.cfg().wifi, undefined);
  assert.match(r.out, /^wifi +none/m);
});

test('provision --wifi-ssid --wifi-password-stdin / --wifi-password-file: stored, never printed', async (t) => {
  const s = setup(t);
  let r = await provision([...s.base, '--wifi-ssid', 'Lab Net', '--wifi-password-stdin'], PASSWORD + '\n');
  assert.equal(r.code, 0, String(r.err));
  assert.deepEqual(s.cfg().wifi, { ssid: 'Lab Net', password: PASSWORD });
  assert.match(r.out, /^wifi +join "Lab Net" \(password set, not shown\)/m);
  assert.ok(!r.out.includes(PASSWORD) && !r.out.includes(PASSWORD.slice(0, 8)), r.out);

  const pwFile = join(s.dir, 'wifi.pw');
  writeFileSync(pwFile, PASSWORD + '\r\nsecond line ignored\n');
  r = await provision([...s.base, '--wifi-ssid', 'Lab Net', '--wifi-password-file', pwFile]);
  assert.equal(r.code, 0, String(r.err));
  assert.deepEqual(s.cfg().wifi, { ssid: 'Lab Net', password: PASSWORD });
  assert.ok(!r.out.includes(PASSWORD.slice(0, 8)), r.out);

  r = await provision([...s.base, '--wifi-ssid', 'open-net']);
  assert.equal(r.code, 0, String(r.err));
  assert.deepEqual(s.cfg().wifi, { ssid: 'open-net' });
  assert.match(r.out, /open network, no password/);
});

test('provision wifi usage errors: password on the command line, password without SSID, both sources, bad password; none echoes it', async (t) => {
  const s = setup(t);
  const pwFile = join(s.dir, 'wifi.pw');
  writeFileSync(pwFile, PASSWORD);
  const cases: [string[], string, RegExp][] = [
    [['--wifi-ssid', 'n', `--wifi-password=${PASSWORD}`], '', /--wifi-password is not accepted.*--wifi-password-stdin or --wifi-password-file/],
    [['--wifi-ssid', 'n', '--wifi-password', PASSWORD], '', /--wifi-password is not accepted/],
    [['--wifi-password-stdin'], PASSWORD, /needs --wifi-ssid/],
    [['--wifi-password-file', pwFile], '', /needs --wifi-ssid/],
    [['--wifi-ssid', 'n', '--wifi-password-stdin', '--wifi-password-file', pwFile], PASSWORD, /one way/],
    [['--wifi-ssid', 'n', '--wifi-password-stdin'], '', /standard input is empty/],
    [['--wifi-ssid', 'n', '--wifi-password-file', join(s.dir, 'missing')], '', /cannot read --wifi-password-file .*no such file/],
    [['--wifi-ssid', 'n', '--wifi-password-stdin'], 'Tr0ub4\n', /wifi\.password must be 8 to 64/],
    [['--wifi-ssid', 'x'.repeat(33), '--wifi-password-stdin'], PASSWORD, /wifi\.ssid/],
  ];
  for (const [args, stdin, re] of cases) {
    const r = await provision([...s.base, ...args], stdin);
    assert.ok(r.err instanceof UsageError, `${args.join(' ')}: ${String(r.err)}`);
    assert.match((r.err as Error).message, re);
    assert.ok(!(r.err as Error).message.includes('Tr0ub4') && !r.out.includes('Tr0ub4'), `password echoed: ${(r.err as Error).message}`);
  }
});

test('bin/cta.js provision: the password comes through a pipe and is in neither stdout nor stderr', async (t) => {
  const s = setup(t);
  const go = (args: string[], input: string) =>
    new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const p = spawn(process.execPath, [CTA_BIN, 'provision', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (err += d));
      const timer = setTimeout(() => p.kill('SIGKILL'), 20000);
      p.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, out, err });
      });
      p.stdin.end(input);
    });
  const ok = await go([...s.base, '--wifi-ssid', 'Lab Net', '--wifi-password-stdin'], PASSWORD + '\n');
  assert.equal(ok.code, 0, ok.err);
  assert.deepEqual(s.cfg().wifi, { ssid: 'Lab Net', password: PASSWORD });
  const bad = await go([...s.base, '--wifi-ssid', 'n', '--wifi-password', PASSWORD], '');
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--wifi-password is not accepted/);
  for (const r of [ok, bad]) assert.ok(!(r.out + r.err).includes(PASSWORD.slice(0, 8)), r.out + r.err);
});
