// Interop of firmware/proto/keytab.ts with MIT krb5: keytabs written by kadmin's
// ktadd are parsed and re-encoded byte for byte, keytabs we write are read by
// MIT's klist and used by kinit against a real (throwaway) MIT KDC.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { needTool } from './helpers/tools.ts';
import { startMitRealm, MIT_ENCTYPES, type MitRealm } from './helpers/mit.ts';
import { parseKeytab, encodeKeytab, principalName, findKeys, type KeytabEntry } from '../firmware/proto/keytab.ts';
import { toHex } from '../firmware/proto/bytes.ts';

const KEYLEN: { [etype: number]: number } = { 17: 16, 18: 32, 19: 16, 20: 32 };
const ALL = [17, 18, 19, 20];

/** Parses `klist -k -e -K [-t]` lines: kvno, principal, enctype name, key hex. */
function klistKeytab(out: string) {
  const rows: { kvno: number; principal: string; enctype: string; keyHex: string }[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+)\s+(?:\S+\s+\S+\s+)?(\S+) \(([^)]+)\)\s+\(0x([0-9a-f]*)\)\s*$/.exec(line);
    if (m) rows.push({ kvno: Number(m[1]), principal: m[2], enctype: m[3], keyHex: m[4] });
  }
  return rows;
}

function readBytes(path: string) {
  return new Uint8Array(readFileSync(path));
}

test('MIT keytab interop', async (t) => {
  for (const tool of ['kdb5_util', 'kadmin.local', 'krb5kdc', 'klist', 'kinit']) if (!needTool(t, tool)) return;
  const scPassword = randomBytes(12).toString('hex');
  const realm: MitRealm = await startMitRealm({
    realm: 'KTAB.EXAMPLE.NET',
    principals: [
      { name: 'cta/cta1.example.net', enctypes: ALL },
      { name: 'sc/sc1.example.net', enctypes: ALL, password: scPassword },
    ],
  });
  t.after(() => realm.stop());
  const R = realm.realm;

  // One keytab holding both principals, as ktadd wrote it (kvno unchanged: -norandkey).
  const mitFile = await realm.exportKeytab('cta/cta1.example.net', ALL);
  await realm.exportKeytab('sc/sc1.example.net', undefined, { file: mitFile });
  const mitBytes = readBytes(mitFile);

  await t.test('ktadd output parses to the expected principals, kvnos, enctypes and keys', async () => {
    const es = parseKeytab(mitBytes);
    assert.equal(es.length, 8);
    const now = Date.now() / 1000;
    for (const who of ['cta/cta1.example.net', 'sc/sc1.example.net']) {
      const mine = findKeys(es, `${who}@${R}`);
      const kdb = await realm.keys(who);
      assert.deepEqual(mine.map((e) => e.etype).sort(), ALL);
      for (const e of mine) {
        assert.equal(principalName(e), `${who}@${R}`);
        assert.deepEqual(e.principal.components, who.split('/'));
        assert.equal(e.principal.nameType, 1); // MIT writes KRB5_NT_PRINCIPAL
        assert.equal(e.key.length, KEYLEN[e.etype]);
        assert.ok(Math.abs(e.timestamp - now) < 3600, 'timestamp is the export time');
        const k = kdb.find((x) => x.enctype === MIT_ENCTYPES[e.etype]);
        assert.ok(k, `KDB has ${MIT_ENCTYPES[e.etype]}`);
        assert.equal(e.kvno, k.kvno);
      }
    }
    // The key bytes agree with what MIT's own klist -K reads from the same file.
    const rows = klistKeytab((await realm.run('klist', ['-k', '-e', '-K', '-t', mitFile])).stdout);
    assert.equal(rows.length, es.length);
    rows.forEach((row, i) => {
      assert.equal(row.principal, principalName(es[i]));
      assert.equal(row.kvno, es[i].kvno);
      assert.equal(row.enctype, MIT_ENCTYPES[es[i].etype]);
      assert.equal(row.keyHex, toHex(es[i].key));
    });
  });

  await t.test('encodeKeytab of the parsed entries is byte-identical to MIT\'s file', () => {
    const again = encodeKeytab(parseKeytab(mitBytes));
    assert.equal(again.length, mitBytes.length);
    assert.ok(Buffer.from(again).equals(Buffer.from(mitBytes)));
  });

  await t.test('re-randomized keys (kvno 2) and holes left by ktremove', async () => {
    // Own principals: re-randomizing would make the keytabs of the other subtests stale.
    const rot = 'cta/rotate.example.net';
    await realm.addPrincipal({ name: rot, enctypes: ALL });
    await realm.addPrincipal({ name: 'sc/rotate.example.net', enctypes: [17] });
    const file = await realm.exportKeytab(rot, undefined, { file: join(realm.dir, 'rotate.keytab') });
    // A different enctype set re-randomizes the keys: kvno goes up, new keys for 17 and 18 only.
    await realm.exportKeytab(rot, [17, 18], { file });
    let es = parseKeytab(readBytes(file));
    assert.deepEqual(
      es.map((e) => [e.kvno, e.etype]),
      [[1, 17], [1, 18], [1, 19], [1, 20], [2, 17], [2, 18]],
    );
    assert.deepEqual(findKeys(es, `${rot}@${R}`).map((e) => e.kvno), [2, 2, 1, 1, 1, 1]);
    // ktremove ... old deletes all but the newest kvno: MIT overwrites them with holes.
    const size = statSync(file).size;
    await realm.kadmin(`ktremove -k ${file} ${rot} old`);
    const holed = readBytes(file);
    assert.equal(holed.length, size, 'MIT keeps the file size: deleted entries become holes');
    es = parseKeytab(holed);
    assert.deepEqual(es.map((e) => [e.kvno, e.etype]), [[2, 17], [2, 18]]);
    const rows = klistKeytab((await realm.run('klist', ['-k', '-e', '-K', file])).stdout);
    assert.deepEqual(rows.map((r) => [r.kvno, r.enctype, r.keyHex]), es.map((e) => [e.kvno, MIT_ENCTYPES[e.etype], toHex(e.key)]));
    // We do not write holes: re-encoding a holed file gives the compact equivalent, which MIT reads the same.
    const compact = encodeKeytab(es);
    assert.ok(compact.length < holed.length);
    writeFileSync(join(realm.dir, 'compact.keytab'), compact);
    const rows2 = klistKeytab((await realm.run('klist', ['-k', '-e', '-K', join(realm.dir, 'compact.keytab')])).stdout);
    assert.deepEqual(rows2, rows);
    // ktadd into a file with holes may reuse them (a record then carries zero fill): still parses the same as klist.
    await realm.exportKeytab('sc/rotate.example.net', [18], { file });
    const reused = readBytes(file);
    // MIT put the 93-byte sc record into a 94-byte hole (one byte of fill): the file did not grow.
    assert.equal(reused.length, size);
    const es3 = parseKeytab(reused);
    const rows3 = klistKeytab((await realm.run('klist', ['-k', '-e', '-K', file])).stdout);
    assert.deepEqual(rows3.map((r) => [r.principal, r.kvno, r.enctype, r.keyHex]), es3.map((e) => [principalName(e), e.kvno, MIT_ENCTYPES[e.etype], toHex(e.key)]));
    assert.ok(es3.some((e) => principalName(e) === `sc/rotate.example.net@${R}` && e.etype === 18 && e.kvno === 2));
  });

  await t.test('a keytab we write is read by MIT klist', async () => {
    const ts = Math.floor(Date.now() / 1000);
    const mk = (comps: string[], kvno: number, etype: number): KeytabEntry => ({
      principal: { realm: R, components: comps, nameType: comps.length > 1 ? 3 : 1 },
      timestamp: ts,
      kvno,
      etype,
      key: new Uint8Array(randomBytes(KEYLEN[etype])),
    });
    const ours = [
      ...ALL.map((e) => mk(['cta', 'cta9.example.net'], 7, e)),
      mk(['sc', 'sc9.example.net'], 300, 18), // needs the 32-bit kvno
      mk(['alice'], 1, 19),
    ];
    const file = join(realm.dir, 'ours.keytab');
    writeFileSync(file, encodeKeytab(ours));
    const r = await realm.run('klist', ['-k', '-e', '-K', '-t', file]);
    assert.equal(r.code, 0, r.stderr);
    const rows = klistKeytab(r.stdout);
    assert.deepEqual(
      rows.map((x) => [x.principal, x.kvno, x.enctype, x.keyHex]),
      ours.map((e) => [principalName(e), e.kvno, MIT_ENCTYPES[e.etype], toHex(e.key)]),
    );
    assert.ok(r.stdout.includes(`cta/cta9.example.net@${R} (aes256-cts-hmac-sha384-192)`));
  });

  await t.test('kinit against the MIT KDC with MIT\'s keytab, our re-encoded keytab and the password', async () => {
    await realm.startKdc();
    assert.ok(realm.kdcPort > 0);
    await realm.kinit('cta/cta1.example.net', { keytab: mitFile });
    let k = await realm.run('klist', []);
    assert.equal(k.code, 0, k.stderr);
    assert.match(k.stdout, new RegExp(`Default principal: cta/cta1\\.example\\.net@${R.replace(/\./g, '\\.')}`));
    assert.ok(k.stdout.includes(`krbtgt/${R}@${R}`));
    assert.match(realm.kdcLog(), /AS_REQ .* ISSUE: .*cta\/cta1\.example\.net@/);

    // Only the aes256-sha1 key of sc, written by us, into a fresh file and ccache.
    const es = findKeys(parseKeytab(mitBytes), `sc/sc1.example.net@${R}`).filter((e) => e.etype === 18);
    assert.equal(es.length, 1);
    const ours = join(realm.dir, 'sc-ours.keytab');
    writeFileSync(ours, encodeKeytab(es));
    const cc = `FILE:${join(realm.dir, 'cc-sc')}`;
    await realm.kinit('sc/sc1.example.net', { keytab: ours, ccache: cc });
    k = await realm.run('klist', ['-c', cc]);
    assert.ok(k.stdout.includes(`sc/sc1.example.net@${R}`) && k.stdout.includes(`krbtgt/${R}@${R}`));

    // The password still works: exports used -norandkey.
    const cc2 = `FILE:${join(realm.dir, 'cc-pw')}`;
    await realm.kinit('sc/sc1.example.net', { password: scPassword, ccache: cc2 });
    // And a wrong key is refused by the KDC (the harness really talks to it).
    const bad = es.map((e) => ({ ...e, key: new Uint8Array(randomBytes(e.key.length)) }));
    writeFileSync(ours, encodeKeytab(bad));
    await assert.rejects(realm.kinit('sc/sc1.example.net', { keytab: ours, ccache: cc }), /kinit .* failed/);
  });

  await t.test('stop() ends the KDC and removes the directory', async () => {
    const port = realm.kdcPort;
    await realm.stop();
    assert.throws(() => statSync(realm.dir));
    const answered = await new Promise<boolean>((res) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        res(true);
      });
      s.once('error', () => res(false));
    });
    assert.equal(answered, false, 'no KDC left listening');
  });
});
