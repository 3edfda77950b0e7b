// The CBOR codec as a board's image has it (BOARD_CBOR_FULL false, firmware/proto/cbor.ts):
// doubles only, text items as byte strings; still bounded, and errors are DecodeErrors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { Decoder, Encoder } from 'cbor-x';
import { loadBoard } from '../host-tools/build/boards.ts';
import { boardDefines, REPO_ROOT } from '../host-tools/build/build.ts';
import { Prng } from './helpers/fuzz.ts';

const cx = new Encoder({ tagUint8Array: false, useRecords: false, mapsAsObjects: true });
const cxd = new Decoder({ useRecords: false, mapsAsObjects: true } as ConstructorParameters<typeof Decoder>[0]);
const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

test('board CBOR: what cbor-x sends decodes, what the board sends cbor-x reads, the rest is a DecodeError', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-cbor-board-'));
  try {
    const out = join(dir, 'cbor.mjs');
    await esbuild.build({
      stdin: { contents: "export { cborDecode, cborEncode, CBOR_MAX_DEPTH } from './firmware/proto/cbor.ts';", resolveDir: REPO_ROOT, loader: 'ts' },
      bundle: true,
      format: 'esm',
      outfile: out,
      define: boardDefines(loadBoard('puckjs')),
      logLevel: 'silent',
    });
    const { cborDecode, cborEncode, CBOR_MAX_DEPTH } = await import(pathToFileURL(out).href);
    const isDecodeError = (e: unknown) => (e as Error).name === 'DecodeError';
    // Control requests as the host writes them (cbor-x defaults: a large time is a double).
    const req = { op: 'set-time', id: 7, time: 1733400000123, cfg: new Uint8Array([1, 2, 0xc0]), flag: true, none: null };
    const got = cborDecode(new Uint8Array(cx.encode(req)));
    assert.deepEqual({ ...got, cfg: Array.from(got.cfg) }, { ...req, cfg: [1, 2, 0xc0] });
    assert.equal(cborDecode(new Uint8Array(cx.encode(-2.5))), -2.5);
    // Replies and log events as the board writes them, read by cbor-x.
    const rep = { id: 7, ok: true, result: { now: 1733400000123, offsetMs: -5, principal: 'cta/a@R', list: [1, 'x', false] } };
    assert.deepEqual(cxd.decode(Buffer.from(cborEncode(rep))), rep);
    // Text is bytes, one char each: UTF-8 passes through unchanged in both directions.
    const cafe = cborDecode(hex('65636166c3a9'));
    assert.equal(cafe, 'caf\u00c3\u00a9');
    assert.equal(Buffer.from(cborEncode(cafe)).toString('hex'), '65636166c3a9');
    // Not for the board: half and single floats, and everything the full codec refuses.
    for (const h of ['f93e00', 'fa3fc00000', '', '5f4101ff', '9f01ff', 'c24101', '4501', '9a7fffffff', 'ba7fffffff', 'a201020103', 'a1f501', '0101', '81'.repeat(CBOR_MAX_DEPTH + 1) + '01']) {
      assert.throws(() => cborDecode(hex(h)), isDecodeError, h);
    }
    const r = new Prng(1234);
    for (let i = 0; i < 3000; i++) {
      const b = r.bytes(1 + r.int(40));
      try {
        cborDecode(b);
      } catch (e) {
        assert.ok(isDecodeError(e), `${Buffer.from(b).toString('hex')}: ${(e as Error).message}`);
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
