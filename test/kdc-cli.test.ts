// `cta kdc`: init/add/ktadd/list/serve, and the one-line errors a user sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../host-tools/cli.ts';
import { help } from '../host-tools/kdc/cli.ts';
import { KdcDatabase } from '../host-tools/kdc/db.ts';
import { startKdc } from '../host-tools/kdc/server.ts';
import { buildAsReq, sendUdp } from '../host-tools/kdc/client.ts';
import { parseKeytab, principalName } from '../firmware/proto/keytab.ts';
import { stringToKey } from '../firmware/proto/crypto/index.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { fromUtf8 } from '../firmware/proto/bytes.ts';
import { decodeKrbError, KDC_ERR_PREAUTH_REQUIRED } from '../firmware/proto/krb5.ts';

const BIN = join(import.meta.dirname, '..', 'bin', 'cta.js');

/** Runs `cta ...` in this process, capturing what it prints. */
async function cta(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log;
  const error = console.error;
  console.log = (...a: unknown[]) => void out.push(a.join(' '));
  console.error = (...a: unknown[]) => void err.push(a.join(' '));
  try {
    const code = await main(argv);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    console.log = log;
    console.error = error;
  }
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'kdc-cli-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('cta kdc --help describes every subcommand', async () => {
  const r = await cta('kdc', '--help');
  assert.equal(r.code, 0);
  assert.equal(r.out, help);
  for (const w of ['init', 'add', 'ktadd', 'list', 'serve', '--realm', '--stash', '--password-stdin', '--randkey', '--keytab', '--listen', '--enctypes']) {
    assert.ok(help.includes(w), w);
  }
});

test('init, add (randkey, keytab), ktadd, list; keys never printed', async (t) => {
  const d = tmp(t);
  const db = join(d, 'kdc.db');
  let r = await cta('kdc', 'init', '--realm', 'EXAMPLE.NET', '--db', db);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /krbtgt\/EXAMPLE\.NET@EXAMPLE\.NET/);
  assert.equal(statSync(db + '.stash').mode & 0o777, 0o600);
  const kt = join(d, 'cta1.keytab');
  r = await cta('kdc', 'add', 'cta/cta1.example.net', '--enctypes', 'aes256-cts-hmac-sha1-96,aes128-cts-hmac-sha1-96,aes128-cts-hmac-sha256-128', '--keytab', kt, '--db', db);
  assert.equal(r.code, 0, r.err);
  r = await cta('kdc', 'add', 'sc/sc1.example.net', '--enctypes', '18,17', '--randkey', '--db', db);
  assert.equal(r.code, 0, r.err);
  const entries = parseKeytab(new Uint8Array(readFileSync(kt)));
  assert.deepEqual(
    entries.map((e) => [principalName(e), e.etype, e.kvno]),
    [
      ['cta/cta1.example.net@EXAMPLE.NET', 18, 1],
      ['cta/cta1.example.net@EXAMPLE.NET', 17, 1],
      ['cta/cta1.example.net@EXAMPLE.NET', 19, 1],
    ],
  );
  const kt2 = join(d, 'sc1.keytab');
  r = await cta('kdc', 'ktadd', 'sc/sc1.example.net', '--keytab', kt2, '--db', db);
  assert.equal(r.code, 0, r.err);
  assert.equal(parseKeytab(new Uint8Array(readFileSync(kt2))).length, 2);
  r = await cta('kdc', 'list', '--db', db);
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n');
  assert.equal(lines.length, 3);
  assert.match(r.out, /cta\/cta1\.example\.net@EXAMPLE\.NET +kvno 1 +aes256-cts-hmac-sha1-96,aes128-cts-hmac-sha1-96,aes128-cts-hmac-sha256-128/);
  // Nothing printed holds a key, in hex or base64.
  const k = KdcDatabase.open(db);
  t.after(() => k.close());
  const printed = r.out;
  for (const p of k.listPrincipals()) {
    for (const key of k.getKeys(p.name)!.keys) {
      assert.ok(!printed.includes(Buffer.from(key.key).toString('hex')));
      assert.ok(!printed.includes(Buffer.from(key.key).toString('base64')));
    }
  }
});

test('clear one-line errors (exit 2): missing db, realm already initialised, unknown enctype, existing principal, bad syntax, port in use', async (t) => {
  const d = tmp(t);
  const db = join(d, 'kdc.db');
  const cases: [string[], RegExp][] = [
    [['kdc', 'list', '--db', join(d, 'nope.db')], /database .*nope\.db not found/],
    [['kdc', 'init', '--db', db], /needs --realm/],
    [['kdc', 'frobnicate'], /unknown subcommand 'frobnicate'/],
    [['kdc'], /missing subcommand/],
  ];
  for (const [argv, re] of cases) {
    const r = await cta(...argv);
    assert.equal(r.code, 2, argv.join(' '));
    assert.match(r.err, re);
    assert.equal(r.err.split('\n').length, 1, 'one line');
  }
  assert.equal((await cta('kdc', 'init', '--realm', 'EXAMPLE.NET', '--db', db)).code, 0);
  const more: [string[], RegExp][] = [
    [['kdc', 'init', '--realm', 'EXAMPLE.NET', '--db', db], /already initialised for realm EXAMPLE\.NET/],
    [['kdc', 'add', 'x', '--enctypes', 'des-cbc-crc', '--db', db], /unknown enctype 'des-cbc-crc'/],
    [['kdc', 'add', 'x', '--enctypes', '23', '--db', db], /unknown enctype '23'/],
    [['kdc', 'add', 'krbtgt/EXAMPLE.NET', '--db', db], /principal krbtgt\/EXAMPLE\.NET@EXAMPLE\.NET already exists/],
    [['kdc', 'add', 'a//b', '--db', db], /bad principal 'a\/\/b': empty component/],
    [['kdc', 'add', 'a@B@C', '--db', db], /bad principal/],
    [['kdc', 'add', 'x@OTHER.NET', '--db', db], /not in realm EXAMPLE\.NET/],
    [['kdc', 'add', 'x', '--randkey', '--password-stdin', '--db', db], /not both/],
    [['kdc', 'add', '--db', db], /needs a PRINCIPAL/],
    [['kdc', 'serve', '--listen', '127.0.0.1:99999', '--db', db], /bad --listen address/],
    [['kdc', 'list', '--bogus', '--db', db], /bogus/],
  ];
  for (const [argv, re] of more) {
    const r = await cta(...argv);
    assert.equal(r.code, 2, argv.join(' ') + ': ' + r.err);
    assert.match(r.err, re, argv.join(' '));
    assert.equal(r.err.split('\n').length, 1, 'one line');
  }
  // Port in use.
  const k = KdcDatabase.open(db);
  const busy = await startKdc({ db: k, port: 0 });
  t.after(async () => {
    await busy.close();
    k.close();
  });
  const r = await cta('kdc', 'serve', '--listen', `127.0.0.1:${busy.udpPort}`, '--db', db);
  assert.equal(r.code, 2);
  assert.match(r.err, new RegExp(`port ${busy.udpPort} on 127\\.0\\.0\\.1 is already in use`));
});

test('cta kdc add --password-stdin and cta kdc serve (prints ports, answers, stops cleanly on SIGTERM)', async (t) => {
  const d = tmp(t);
  const db = join(d, 'kdc.db');
  assert.equal((await cta('kdc', 'init', '--realm', 'EXAMPLE.NET', '--db', db)).code, 0);
  // --password-stdin through the real binary.
  const add = spawn(process.execPath, [BIN, 'kdc', 'add', 'alice', '--enctypes', '17', '--password-stdin', '--db', db], { stdio: ['pipe', 'pipe', 'pipe'] });
  add.stdin.end('s3cret pass\n');
  let addErr = '';
  add.stderr.on('data', (c) => (addErr += c));
  const [addCode] = await once(add, 'exit');
  assert.equal(addCode, 0, addErr);
  const k = KdcDatabase.open(db);
  const key = k.getKeys('alice')!.keys[0];
  k.close();
  assert.deepEqual(key.key, stringToKey(nodeBackend, 17, fromUtf8('s3cret pass'), fromUtf8('EXAMPLE.NETalice'), null));

  const srv = spawn(process.execPath, [BIN, 'kdc', 'serve', '--listen', '127.0.0.1:0', '--db', db], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (srv.exitCode === null) srv.kill('SIGKILL');
  });
  let err = '';
  let out = '';
  srv.stdout.on('data', (c) => (out += c));
  const port = await new Promise<number>((resolve, reject) => {
    srv.stderr.on('data', (c) => {
      err += c;
      const m = /udp (\d+) tcp (\d+)/.exec(err);
      if (m) resolve(Number(m[1]));
    });
    srv.on('exit', () => reject(new Error('serve exited: ' + err)));
  });
  const rep = await sendUdp('127.0.0.1', port, buildAsReq({ client: ['alice'], server: ['krbtgt', 'EXAMPLE.NET'], realm: 'EXAMPLE.NET', etypes: [17], nonce: 1 }));
  assert.equal(decodeKrbError(rep).errorCode, KDC_ERR_PREAUTH_REQUIRED);
  srv.kill('SIGTERM');
  const [code] = await once(srv, 'exit');
  assert.equal(code, 0, err);
  assert.match(err, /SIGTERM, shutting down/);
  assert.match(err, /stopped \(1 udp \+ 0 tcp requests/);
  // One JSON object per log line.
  const recs = out.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(recs.some((r) => r.ev === 'krb_error' && r.error === KDC_ERR_PREAUTH_REQUIRED && r.client === 'alice@EXAMPLE.NET'));
});
