import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Decoder } from 'cbor-x';
import { encodeKeytab } from '../firmware/proto/keytab.ts';
import type { KeytabEntry } from '../firmware/proto/keytab.ts';
import { decodeConfig, configFromObject, encodeConfig } from '../host-tools/provision/config.ts';
import { decodeConfig as decodeOnBoard } from '../firmware/config.ts';
import { toHex } from '../firmware/proto/bytes.ts';
import { makeConfig, run } from '../host-tools/provision/cli.ts';
import { UsageError } from '../host-tools/args.ts';

function key(n: number, fill: number): Uint8Array {
  const k = new Uint8Array(n);
  for (let i = 0; i < n; i++) k[i] = (fill + i * 7) & 0xff;
  return k;
}
function entry(name: string, realm: string, kvno: number, etype: number, k: Uint8Array): KeytabEntry {
  return { principal: { realm, components: name.split('/'), nameType: 1 }, timestamp: 1700000000, kvno, etype, key: k };
}
const K18_OLD = key(32, 1);
const K18 = key(32, 2);
const K17 = key(16, 3);
const OTHER = key(32, 4);
const entries = [
  entry('cta/cta1.example.net', 'EXAMPLE.NET', 1, 18, K18_OLD),
  entry('cta/cta1.example.net', 'EXAMPLE.NET', 2, 18, K18),
  entry('cta/cta1.example.net', 'EXAMPLE.NET', 2, 17, K17),
  entry('cta/cta1.example.net', 'EXAMPLE.NET', 2, 23, key(16, 9)),
  entry('cta/cta2.example.net', 'EXAMPLE.NET', 5, 18, OTHER),
];

function capture(fn: () => Promise<number>): Promise<{ code: number; out: string }> {
  const orig = console.log;
  let out = '';
  console.log = (...a: unknown[]) => {
    out += a.join(' ') + '\n';
  };
  return fn().then(
    (code) => {
      console.log = orig;
      return { code, out };
    },
    (e) => {
      console.log = orig;
      throw e;
    },
  );
}

test('makeConfig picks the highest kvno, supported enctypes, and decodes in the firmware', () => {
  const bytes = makeConfig({
    keytab: encodeKeytab(entries),
    principal: 'cta/cta1.example.net',
    scs: [{ principal: 'sc/sc1.example.net', address: '10.0.0.1', port: 1293 }, { principal: 'sc/sc2.example.net@OTHER.NET' }],
    kdc: { address: '10.0.0.3', port: 88 },
    slots: 6,
    clientInitiatedOnBoot: true,
  });
  const cfg = decodeConfig(bytes);
  assert.equal(cfg.principal, 'cta/cta1.example.net');
  assert.equal(cfg.realm, 'EXAMPLE.NET');
  assert.deepEqual(
    cfg.keys.map((k) => [k.etype, k.kvno]),
    [
      [18, 2],
      [17, 2],
    ],
  );
  assert.equal(toHex(cfg.keys[0].key), toHex(K18));
  assert.equal(toHex(cfg.keys[1].key), toHex(K17));
  assert.equal(cfg.scs[0].principal, 'sc/sc1.example.net@EXAMPLE.NET');
  assert.equal(cfg.scs[0].address, '10.0.0.1');
  assert.equal(cfg.scs[1].principal, 'sc/sc2.example.net@OTHER.NET');
  assert.equal(cfg.scs[1].address, undefined);
  assert.equal(cfg.slots, 6);
  assert.equal(cfg.clientInitiatedOnBoot, true);
  assert.equal(cfg.listenPort, 1293);
  assert.equal(cfg.signalingPort, 2427);
  assert.deepEqual(cfg.ciphersuites, [[2, 12]]);
  assert.deepEqual(cfg.timers.retransmitMs, [1000, 2000]);
  assert.equal(cfg.timers.abortMs, 3000);
  // The board's decoder gives the same object; cbor-x reads the CBOR part too (an array,
  // version 2 first, byte strings as buffers, not tagged), the last 2 bytes being the CRC.
  assert.deepEqual(decodeOnBoard(bytes), cfg);
  const obj = new Decoder({ mapsAsObjects: true } as ConstructorParameters<typeof Decoder>[0]).decode(bytes.subarray(0, bytes.length - 2)) as unknown[];
  assert.equal(obj.length, 17);
  assert.equal(obj[0], 2);
  assert.ok((obj[3] as Uint8Array[][])[0][2] instanceof Uint8Array);
});

test('cta provision writes the file, prints a summary without key bytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-prov-'));
  try {
    const kt = join(dir, 'cta.keytab');
    writeFileSync(kt, encodeKeytab(entries));
    const out = join(dir, 'cta.cbor');
    const r = await capture(() =>
      run(['--keytab', kt, '--principal', 'cta/cta1.example.net@EXAMPLE.NET', '--sc', 'sc/sc1.example.net@EXAMPLE.NET=127.0.0.1:1400', '--kdc', '127.0.0.1:8888', '--transport', 'serial', '-o', out]),
    );
    assert.equal(r.code, 0);
    const cfg = decodeConfig(new Uint8Array(readFileSync(out)));
    assert.equal(cfg.transport, 'serial');
    assert.equal(cfg.kdc.port, 8888);
    assert.equal(cfg.scs[0].port, 1400);
    assert.match(r.out, /aes256-cts-hmac-sha1-96 kvno 2/);
    for (const k of [K18, K17, K18_OLD]) {
      assert.ok(!r.out.toLowerCase().includes(toHex(k).slice(0, 16)), 'summary must not contain key bytes');
    }
    assert.equal(statSync(out).mode & 0o077, 0, 'config file is private');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cta provision: clear UsageErrors', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-prov-'));
  try {
    const kt = join(dir, 'cta.keytab');
    writeFileSync(kt, encodeKeytab(entries));
    const base = ['--sc', 'sc/sc1.example.net', '-o', join(dir, 'x.cbor')];
    await assert.rejects(run(['--keytab', join(dir, 'missing.keytab'), '--principal', 'cta/cta1.example.net', '--kdc', 'h:88', ...base]), (e: Error) => e instanceof UsageError && /cannot read keytab/.test(e.message));
    await assert.rejects(run(['--keytab', kt, '--principal', 'cta/nobody.example.net', '--kdc', 'h:88', ...base]), (e: Error) => e instanceof UsageError && /not in the keytab/.test(e.message));
    await assert.rejects(run(['--keytab', kt, '--principal', 'cta/cta1.example.net', '--kdc', 'h:notaport', ...base]), (e: Error) => e instanceof UsageError && /--kdc/.test(e.message));
    await assert.rejects(run(['--keytab', kt, '--principal', 'cta/cta1.example.net', ...base]), (e: Error) => e instanceof UsageError && /--kdc/.test(e.message));
    writeFileSync(kt, new Uint8Array([5, 2, 0, 0, 0, 99]));
    await assert.rejects(run(['--keytab', kt, '--principal', 'cta/cta1.example.net', '--kdc', 'h:88', ...base]), (e: Error) => e instanceof UsageError && /bad keytab/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('decodeConfig names the bad field and fills defaults', () => {
  const good = {
    principal: 'cta/a',
    realm: 'R',
    keys: [{ etype: 18, kvno: 1, key: new Uint8Array(32) }],
    scs: [{ principal: 'sc/b' }],
    kdc: { address: 'k' },
  };
  const cfg = configFromObject(good, { slots: 9 });
  assert.equal(cfg.slots, 9);
  assert.equal(cfg.kdc.port, 88);
  assert.equal(cfg.scs[0].principal, 'sc/b@R');
  // Absent slots are written as null: the board's number applies where the file is read.
  assert.equal(decodeConfig(encodeConfig(good)).slots, 4);
  assert.equal(decodeConfig(encodeConfig(good), { slots: 9 }).slots, 9);
  assert.equal(decodeConfig(encodeConfig({ ...good, slots: 5 }), { slots: 9 }).slots, 5);
  const cases: [string, unknown][] = [
    ['keys[0].key', { ...good, keys: [{ etype: 18, kvno: 1, key: new Uint8Array(5) }] }],
    ['keys[0].etype', { ...good, keys: [{ etype: 'x', kvno: 1, key: new Uint8Array(16) }] }],
    ['scs', { ...good, scs: [] }],
    ['scs[0].port', { ...good, scs: [{ principal: 'sc/b', port: 70000 }] }],
    ['kdc', { ...good, kdc: 5 }],
    ['transport', { ...good, transport: 'tcp' }],
    ['slots', { ...good, slots: 0 }],
    ['timers.abortMs', { ...good, timers: { abortMs: 1500 } }],
    ['ciphersuites[0]', { ...good, ciphersuites: [[1]] }],
    ['principal', { ...good, principal: 'cta/a@R' }],
  ];
  for (const [field, obj] of cases) {
    assert.throws(
      () => configFromObject(obj),
      (e: Error) => e.name === 'DecodeError' && e.message.includes(field),
      field,
    );
    // cta provision validates the same way before it encodes.
    assert.throws(() => encodeConfig(obj), (e: Error) => e.name === 'DecodeError' && e.message.includes(field), field);
  }
  assert.throws(() => decodeConfig(new Uint8Array([0xff, 0x00])), (e: Error) => e.name === 'DecodeError');
});

// Issue 13 item 1 (whoever writes key material): an existing world-readable output becomes 0600;
// item 3: --sc-any-port (cta sc --workers) is the only way to accept an SC's Wake Ups from any port.
test('cta provision: over an existing 0644 file the config is 0600; --sc-any-port marks the SCs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-prov-'));
  try {
    const kt = join(dir, 'cta.keytab');
    writeFileSync(kt, encodeKeytab(entries));
    const out = join(dir, 'cta.cbor');
    writeFileSync(out, 'old', { mode: 0o644 });
    chmodSync(out, 0o644);
    const args = ['--keytab', kt, '--principal', 'cta/cta1.example.net@EXAMPLE.NET', '--sc', 'sc/sc1.example.net@EXAMPLE.NET=127.0.0.1:1400', '--kdc', '127.0.0.1:8888', '-o', out];
    let r = await capture(() => run(args));
    assert.equal(r.code, 0);
    assert.equal(statSync(out).mode & 0o777, 0o600);
    assert.equal(decodeConfig(new Uint8Array(readFileSync(out))).scs[0].anyPort, undefined, 'a provisioned port is pinned');
    r = await capture(() => run([...args, '--sc-any-port']));
    assert.equal(r.code, 0);
    assert.equal(decodeConfig(new Uint8Array(readFileSync(out))).scs[0].anyPort, true);
    assert.match(r.out, /127\.0\.0\.1:1400 \(Wake Ups from any port\)/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
