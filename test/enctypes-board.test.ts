// Enctypes per board (board-configs "enctypes"): the build passes the list to the
// firmware as BOARD_* constants, a board's image drops the enctype family it lacks,
// the CTA keeps, announces and uses only its enctypes, and `cta provision --board`
// refuses a keytab with none of them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { listBoards, loadBoard } from '../host-tools/build/boards.ts';
import { boardDefines, buildFirmware, REPO_ROOT } from '../host-tools/build/build.ts';
import { dictionaryPathFor } from '../host-tools/build/text.ts';
import { makeConfig, pickKeys, run } from '../host-tools/provision/cli.ts';
import { UsageError } from '../host-tools/args.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { encodeKeytab, type KeytabEntry } from '../firmware/proto/keytab.ts';
import { hasEnctype } from '../firmware/proto/crypto/index.ts';
import * as K from '../firmware/proto/krb5.ts';
import { carriesCode } from './helpers/codes.ts';

function entry(etype: number, kvno = 1): KeytabEntry {
  return { principal: { realm: 'EXAMPLE.NET', components: ['cta', 'cta1.example.net'], nameType: 1 }, timestamp: 0, kvno, etype, key: new Uint8Array(etype & 1 ? 16 : 32).fill(etype) };
}
const BASE = { principal: 'cta/cta1.example.net', scs: [{ principal: 'sc/sc1.example.net' }], kdc: { address: '192.0.2.1', port: 88 }, transport: 'serial' as const };

test('every board lists its enctypes; the Puck.js one family (RFC 3962), the others all their crypto runs', () => {
  for (const b of listBoards()) {
    const cfg = loadBoard(b);
    assert.ok(cfg.enctypes.length > 0 && cfg.enctypes.every((e) => [17, 18, 19, 20].includes(e)), b);
    assert.equal(cfg.enctypes.includes(20), cfg.nativeCrypto.sha384 && b !== 'puckjs', b);
  }
  assert.deepEqual(loadBoard('puckjs').enctypes, [17, 18]);
  const d = boardDefines(loadBoard('puckjs'));
  assert.equal(d.BOARD_ENCTYPES, '[17,18]');
  assert.equal(d.BOARD_RFC3962, 'true');
  assert.equal(d.BOARD_RFC8009, 'false');
  assert.equal(boardDefines(loadBoard('pico')).BOARD_RFC8009, 'true');
  // Host code (no BOARD_* constants) keeps all four.
  assert.deepEqual([16, 17, 18, 19, 20, 21].map(hasEnctype), [false, true, true, true, true, false]);
});

test('the puckjs image has no RFC 8009 key derivation; the emulator image has both families', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-enctypes-'));
  try {
    // The texts' codes are the same on every board (text.ts); a bundle holds the codes of what it throws.
    const coded = async (board: string) => {
      const r = await buildFirmware({ board, outDir: dir });
      const dict = JSON.parse(readFileSync(dictionaryPathFor(r.path), 'utf8')).text as { [code: string]: string };
      const bundle = readFileSync(r.path, 'utf8');
      return (text: string) => Object.keys(dict).some((c) => dict[c] === text && carriesCode(bundle, c));
    };
    const puck = await coded('puckjs');
    assert.equal(puck('bad KDF output length'), false);
    assert.equal(puck('enctype 20 needs sha384, not on backend \u2026'), false);
    assert.equal(puck('unsupported enctype \u2026'), true);
    assert.equal(puck('bad n-fold size'), true);
    const emu = await coded('emulator');
    assert.equal(emu('bad KDF output length'), true);
    assert.equal(emu('enctype 20 needs sha384, not on backend \u2026'), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the firmware built with the puckjs constants keeps, announces and uses only enctypes 17 and 18', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-enctypes-'));
  try {
    const out = join(dir, 'fw.mjs');
    await esbuild.build({
      stdin: {
        contents: [
          "export { decodeConfig } from './firmware/config.ts';",
          "export { buildAsReq, clientName } from './firmware/agent/kdc.ts';",
          "export { encrypt, hasEnctype, usageHmacKey } from './firmware/proto/crypto/enctypes.ts';",
        ].join('\n'),
        resolveDir: REPO_ROOT,
        loader: 'ts',
      },
      bundle: true,
      format: 'esm',
      outfile: out,
      define: boardDefines(loadBoard('puckjs')),
      logLevel: 'silent',
    });
    const fw = await import(pathToFileURL(out).href);
    assert.deepEqual([17, 18, 19, 20].map(fw.hasEnctype), [true, true, false, false]);
    // A configuration made for every board (keys 18, 19, 17): the Puck.js keeps 18 and 17.
    const cfg = fw.decodeConfig(makeConfig({ ...BASE, keytab: [entry(18), entry(19), entry(17)] }));
    assert.deepEqual(cfg.keys.map((k: { etype: number }) => k.etype), [18, 17]);
    const sname = fw.clientName('sc/sc1.example.net');
    const bare = K.decodeAsReq(fw.buildAsReq(nodeBackend, fw.clientName('cta/cta1.example.net'), 'EXAMPLE.NET', sname, cfg.keys, 5, 1.7e12, null));
    assert.deepEqual(bare.reqBody.etype, [18, 17]);
    // Keys of enctype 19 only: none left, so the AS-REQ announces nothing (the KDC refuses it).
    const none = fw.decodeConfig(makeConfig({ ...BASE, keytab: [entry(19)] }));
    assert.deepEqual(none.keys, []);
    assert.deepEqual(K.decodeAsReq(fw.buildAsReq(nodeBackend, fw.clientName('cta/x'), 'EXAMPLE.NET', sname, none.keys, 5, 1.7e12, null)).reqBody.etype, []);
    // An enctype-19 key or session key is refused with a CryptoError, not a crash.
    for (const f of [() => fw.encrypt(nodeBackend, 19, new Uint8Array(16), 1, new Uint8Array(1)), () => fw.usageHmacKey(nodeBackend, 20, new Uint8Array(32), 1101)]) {
      assert.throws(f, (e: Error) => e.name === 'CryptoError' && /unsupported enctype/.test(e.message));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cta provision --board keeps only the board\'s enctypes and refuses a keytab with none of them', async () => {
  const puck = { board: 'puckjs', enctypes: [17, 18] };
  assert.deepEqual(pickKeys([entry(19), entry(18), entry(17)], 'cta/cta1.example.net', puck).keys.map((k) => k.etype), [18, 17]);
  assert.deepEqual(pickKeys([entry(19), entry(18)], 'cta/cta1.example.net', puck).skipped, [19]);
  assert.throws(
    () => makeConfig({ ...BASE, keytab: [entry(19, 3), entry(20, 3)], board: puck }),
    (e: Error) => e instanceof UsageError && !e.message.includes('\n') && /only of enctypes board puckjs lacks .*19.*20.* at kvno 3; its image implements .*17.*18/.test(e.message),
  );
  // Without --board every supported enctype is kept (as before).
  assert.deepEqual(pickKeys([entry(19), entry(18)], 'cta/cta1.example.net').keys.map((k) => k.etype), [19, 18]);
  const dir = mkdtempSync(join(tmpdir(), 'cta-enctypes-'));
  try {
    const kt = join(dir, 'cta.keytab');
    writeFileSync(kt, encodeKeytab([entry(19)]));
    const args = ['--keytab', kt, '--principal', 'cta/cta1.example.net', '--sc', 'sc/sc1.example.net', '--kdc', '192.0.2.1:88', '--transport', 'serial', '-o', join(dir, 'cta.cbor')];
    await assert.rejects(run([...args, '--board', 'puckjs']), (e: Error) => e instanceof UsageError && /board puckjs lacks/.test(e.message));
    await assert.rejects(run([...args, '--board', 'nosuch']), (e: Error) => e instanceof UsageError && /unknown board/.test(e.message));
    const log = console.log;
    console.log = () => {};
    try {
      assert.equal(await run([...args, '--board', 'pico']), 0);
    } finally {
      console.log = log;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
