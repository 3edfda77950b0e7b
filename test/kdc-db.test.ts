// The embedded KDC's database: keys encrypted at rest, the stash's permissions,
// refusal of a wrong or exposed stash, principals, keytab export.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { KdcDatabase, KdcDbError, parseEnctypes, kdcEtypes } from '../host-tools/kdc/db.ts';
import { UsageError } from '../host-tools/args.ts';
import { parseKeytab, principalName } from '../firmware/proto/keytab.ts';
import { stringToKey } from '../firmware/proto/crypto/index.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { fromUtf8 } from '../firmware/proto/bytes.ts';

const REALM = 'EXAMPLE.NET';

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'kdc-db-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

function contains(hay: Buffer, needle: Uint8Array): boolean {
  return hay.indexOf(Buffer.from(needle)) >= 0;
}

test('init: stash is 0600 in MIT stash layout, database is 0600, krbtgt exists, realm re-init refused', (t) => {
  const d = tmp(t);
  const dbPath = join(d, 'kdc.db');
  const db = KdcDatabase.init(dbPath, REALM);
  t.after(() => db.close());
  assert.equal(db.stashPath, dbPath + '.stash');
  assert.equal(statSync(db.stashPath).mode & 0o777, 0o600);
  assert.equal(statSync(dbPath).mode & 0o777, 0o600);
  const stash = parseKeytab(new Uint8Array(readFileSync(db.stashPath)));
  assert.equal(stash.length, 1);
  assert.equal(principalName(stash[0]), `K/M@${REALM}`);
  assert.equal(stash[0].etype, 18);
  assert.equal(stash[0].key.length, 32);
  const tgt = db.getPrincipal(`krbtgt/${REALM}@${REALM}`);
  assert.ok(tgt);
  assert.deepEqual(tgt.enctypes, kdcEtypes());
  assert.throws(() => KdcDatabase.init(dbPath, REALM), (e: unknown) => e instanceof KdcDbError && e.code === 'EXISTS' && /already initialised for realm EXAMPLE\.NET/.test(e.message));
  assert.throws(() => KdcDatabase.init(dbPath, 'OTHER.NET'), (e: unknown) => e instanceof KdcDbError && e.code === 'EXISTS');
  // A stash of our choosing elsewhere.
  const d2 = join(d, 'b.db');
  const db2 = KdcDatabase.init(d2, REALM, { stashPath: join(d, 'keys', '..', 'other.stash') });
  db2.close();
  assert.equal(statSync(join(d, 'other.stash')).mode & 0o777, 0o600);
  KdcDatabase.open(d2, { stashPath: join(d, 'other.stash') }).close();
});

test('keys are encrypted at rest: no key (nor the master key) appears in the database file', (t) => {
  const d = tmp(t);
  const dbPath = join(d, 'kdc.db');
  const db = KdcDatabase.init(dbPath, REALM);
  db.addPrincipal('cta/cta1.example.net');
  db.addPrincipal('sc/sc1.example.net', { enctypes: [18, 17] });
  db.addPrincipal('alice', { password: 'correct horse battery staple', enctypes: [18] });
  const all: Uint8Array[] = [];
  for (const p of db.listPrincipals()) {
    const e = db.getKeys(p.name)!;
    assert.equal(e.keys.length, p.enctypes.length);
    for (const k of e.keys) {
      assert.ok(k.key.length === 16 || k.key.length === 32, 'key length');
      all.push(k.key);
    }
  }
  assert.equal(all.length, 2 * kdcEtypes().length + 2 + 1);
  db.close();
  const file = readFileSync(dbPath);
  for (const k of all) {
    assert.ok(!contains(file, k), 'a raw key is in the database file');
    assert.ok(!contains(file, k.subarray(0, 8)), 'a key prefix is in the database file');
  }
  const mkey = parseKeytab(new Uint8Array(readFileSync(dbPath + '.stash')))[0].key;
  assert.ok(!contains(file, mkey), 'the master key is in the database file');
  // The key column holds ciphertext of the right size (confounder + record + MAC).
  const sql = new Database(dbPath, { readonly: true });
  t.after(() => sql.close());
  const row = sql.prepare("SELECT key_enc FROM keys WHERE principal = 'cta/cta1.example.net@EXAMPLE.NET' AND etype = 18").get() as { key_enc: Buffer };
  assert.ok(row.key_enc.length > 32 + 16);
});

test('password keys are MIT string-to-key with the default salt (realm + components)', (t) => {
  const d = tmp(t);
  const db = KdcDatabase.init(join(d, 'kdc.db'), REALM);
  t.after(() => db.close());
  db.addPrincipal('cta/cta9.example.net', { password: 'pw-1', enctypes: [17, 18, 19] });
  const e = db.getKeys('cta/cta9.example.net')!;
  for (const k of e.keys) {
    assert.equal(new TextDecoder().decode(k.salt), 'EXAMPLE.NETctacta9.example.net');
    const want = stringToKey(nodeBackend, k.etype, fromUtf8('pw-1'), fromUtf8('EXAMPLE.NETctacta9.example.net'), null);
    assert.deepEqual(k.key, want, `etype ${k.etype}`);
  }
  // Random keys differ between principals and enctypes.
  db.addPrincipal('r1', { enctypes: [18] });
  db.addPrincipal('r2', { enctypes: [18] });
  assert.notDeepEqual(db.getKeys('r1')!.keys[0].key, db.getKeys('r2')!.keys[0].key);
});

test('open refuses a group/world-accessible stash, a wrong master key, a missing stash or db', (t) => {
  const d = tmp(t);
  const dbPath = join(d, 'kdc.db');
  KdcDatabase.init(dbPath, REALM).close();
  const other = join(d, 'other.db');
  KdcDatabase.init(other, REALM).close();

  for (const mode of [0o644, 0o640, 0o604, 0o660]) {
    chmodSync(dbPath + '.stash', mode);
    assert.throws(() => KdcDatabase.open(dbPath), (e: unknown) => e instanceof KdcDbError && e.code === 'STASH_PERMS' && /chmod 600/.test(e.message), mode.toString(8));
  }
  chmodSync(dbPath + '.stash', 0o600);
  KdcDatabase.open(dbPath).close();

  assert.throws(
    () => KdcDatabase.open(dbPath, { stashPath: other + '.stash' }),
    (e: unknown) => e instanceof KdcDbError && e.code === 'BAD_MASTER_KEY' && !/[0-9a-f]{32}/.test(e.message),
  );
  assert.throws(() => KdcDatabase.open(dbPath, { stashPath: join(d, 'nope') }), (e: unknown) => e instanceof KdcDbError && e.code === 'NO_STASH');
  assert.throws(() => KdcDatabase.open(join(d, 'missing.db')), (e: unknown) => e instanceof KdcDbError && e.code === 'NO_DB');
  // A stash file that is not a stash.
  copyFileSync(dbPath, join(d, 'junk.stash'));
  chmodSync(join(d, 'junk.stash'), 0o600);
  assert.throws(() => KdcDatabase.open(dbPath, { stashPath: join(d, 'junk.stash') }), (e: unknown) => e instanceof KdcDbError && e.code === 'BAD_STASH');
  // All of these are one-line user errors for the CLI.
  assert.ok(new KdcDbError('X', 'y') instanceof UsageError);
});

test('a key row moved onto another principal does not open (records are bound to name, enctype, kvno)', (t) => {
  const d = tmp(t);
  const dbPath = join(d, 'kdc.db');
  const db = KdcDatabase.init(dbPath, REALM);
  db.addPrincipal('a', { enctypes: [18] });
  db.addPrincipal('b', { enctypes: [18] });
  db.close();
  const sql = new Database(dbPath);
  sql.prepare("UPDATE keys SET key_enc = (SELECT key_enc FROM keys WHERE principal = 'a@EXAMPLE.NET') WHERE principal = 'b@EXAMPLE.NET'").run();
  sql.close();
  const db2 = KdcDatabase.open(dbPath);
  t.after(() => db2.close());
  assert.ok(db2.getKeys('a'));
  assert.throws(() => db2.getKeys('b'), (e: unknown) => e instanceof KdcDbError && e.code === 'CORRUPT');
});

test('principals: defaults, duplicates, syntax, realm, attributes, listing', (t) => {
  const d = tmp(t);
  const db = KdcDatabase.init(join(d, 'kdc.db'), REALM);
  t.after(() => db.close());
  const p = db.addPrincipal('cta/cta1.example.net');
  assert.equal(p.name, 'cta/cta1.example.net@EXAMPLE.NET');
  assert.deepEqual(p.components, ['cta', 'cta1.example.net']);
  assert.equal(p.kvno, 1);
  assert.equal(p.requiresPreauth, true);
  assert.equal(p.maxLifeSec, 10 * 3600);
  assert.deepEqual(p.enctypes.slice(0, 3), [18, 17, 19]);
  assert.throws(() => db.addPrincipal('cta/cta1.example.net@EXAMPLE.NET'), (e: unknown) => e instanceof KdcDbError && e.code === 'EXISTS');
  for (const bad of ['', 'a//b', 'a@', '@R', 'a@b@c', 'a/b@R/S', 'x\\', 'tab\there', 'é']) {
    assert.throws(() => db.addPrincipal(bad), UsageError, JSON.stringify(bad));
  }
  assert.throws(() => db.addPrincipal('x@OTHER.REALM'), (e: unknown) => e instanceof KdcDbError && e.code === 'BAD_REALM');
  const q = db.addPrincipal('weird\\/name@EXAMPLE.NET', { requiresPreauth: false, maxLifeSec: 600, enctypes: [17] });
  assert.deepEqual(q.components, ['weird/name']);
  assert.equal(q.name, 'weird\\/name@EXAMPLE.NET');
  assert.equal(q.requiresPreauth, false);
  assert.equal(q.maxLifeSec, 600);
  assert.deepEqual(q.enctypes, [17]);
  assert.deepEqual(
    db.listPrincipals().map((x) => x.name),
    ['cta/cta1.example.net@EXAMPLE.NET', 'krbtgt/EXAMPLE.NET@EXAMPLE.NET', 'weird\\/name@EXAMPLE.NET'],
  );
  assert.equal(db.getPrincipal('nobody'), null);
  assert.equal(db.getKeys('nobody'), null);
  // Listing never carries keys.
  assert.ok(!JSON.stringify(db.listPrincipals()).includes('key"'));
});

test('keytab export is read back by parseKeytab with the keys the KDC uses', (t) => {
  const d = tmp(t);
  const db = KdcDatabase.init(join(d, 'kdc.db'), REALM, { now: () => 1_700_000_000_000 });
  t.after(() => db.close());
  db.addPrincipal('cta/cta1.example.net', { enctypes: [17, 18, 19] });
  const kt = join(d, 'cta1.keytab');
  assert.equal(db.exportKeytab('cta/cta1.example.net', kt), 3);
  assert.equal(statSync(kt).mode & 0o777, 0o600);
  const entries = parseKeytab(new Uint8Array(readFileSync(kt)));
  const keys = db.getKeys('cta/cta1.example.net')!.keys;
  assert.equal(entries.length, keys.length);
  for (let i = 0; i < keys.length; i++) {
    assert.equal(principalName(entries[i]), 'cta/cta1.example.net@EXAMPLE.NET');
    assert.equal(entries[i].etype, keys[i].etype);
    assert.equal(entries[i].kvno, keys[i].kvno);
    assert.equal(entries[i].timestamp, 1_700_000_000);
    assert.deepEqual(entries[i].key, keys[i].key);
  }
  assert.throws(() => db.exportKeytab('nobody', join(d, 'x.keytab')), (e: unknown) => e instanceof KdcDbError && e.code === 'NOT_FOUND');
});

test('a principal added through another connection is seen at once (cache follows data_version); callers may wipe keys', (t) => {
  const d = tmp(t);
  const dbPath = join(d, 'kdc.db');
  const a = KdcDatabase.init(dbPath, REALM);
  t.after(() => a.close());
  a.addPrincipal('one', { enctypes: [18] });
  const first = a.getKeys('one')!.keys[0].key;
  const again = a.getKeys('one')!.keys[0].key;
  assert.deepEqual(again, first);
  first.fill(0); // the caller's copy: the cached key is unharmed
  assert.deepEqual(a.getKeys('one')!.keys[0].key, again);
  assert.equal(a.getKeys('two'), null);
  const b = KdcDatabase.open(dbPath);
  b.addPrincipal('two', { enctypes: [17] });
  b.close();
  const two = a.getKeys('two');
  assert.ok(two);
  assert.deepEqual(two.enctypes, [17]);
});

test('parseEnctypes: MIT names and numbers, unknown ones refused', () => {
  assert.deepEqual(parseEnctypes('aes256-cts-hmac-sha1-96,aes128-cts-hmac-sha1-96,aes128-cts-hmac-sha256-128'), [18, 17, 19]);
  assert.deepEqual(parseEnctypes('18,17,19'), [18, 17, 19]);
  assert.deepEqual(parseEnctypes('17, 17 ,aes128-cts'), [17]);
  for (const bad of ['des', '23', 'rc4-hmac', '', ',', '16']) assert.throws(() => parseEnctypes(bad), UsageError, bad);
});
