// The stored image (host-tools/build/image.ts): every board's bundle pretokenised by
// EspruinoTools' plugin, and untokenised back for the host emulator to run. The
// round trip must give the same program (same AST), token bytes must really be
// there, and integers must keep their sign (the plugin's own untokenise loses it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'acorn';
import { buildFirmware } from '../host-tools/build/build.ts';
import { listBoards } from '../host-tools/build/boards.ts';
import { isPretokenised, pretokenise, runnableSource, untokenise } from '../host-tools/build/image.ts';

/** The AST without positions; a template literal without substitutions is the string it stands for. */
function shape(n: any): any {
  if (n && n.type === 'TemplateLiteral' && n.expressions.length === 0) return { type: 'Literal', value: n.quasis[0].value.cooked };
  if (Array.isArray(n)) return n.map(shape);
  if (n && typeof n === 'object') {
    const o: any = {};
    for (const k of Object.keys(n)) if (!['start', 'end', 'raw', 'loc', 'range'].includes(k)) o[k] = shape(n[k]);
    return o;
  }
  return n;
}
const program = (src: string) => JSON.stringify(shape(parse(src, { ecmaVersion: 2020 })));

test('every board: the stored image is the bundle pretokenised, smaller, and untokenises to the same program', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-image-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  for (const board of listBoards()) {
    const r = await buildFirmware({ board, outDir: dir });
    const code = readFileSync(r.path, 'utf8');
    const img = readFileSync(r.imagePath);
    assert.equal(img.length, r.imageBytes);
    assert.ok(isPretokenised(img.toString('latin1')), `${board}: no token bytes in the image`);
    assert.ok(img.length < code.length * 0.9, `${board}: image ${img.length} vs bundle ${code.length}`);
    assert.equal(program(untokenise(img)), program(code), `${board}: the untokenised image is another program`);
    t.diagnostic(`${board}: bundle ${code.length} B, image ${img.length} B`);
  }
});

test('tokens: keywords, operators, strings and signed integers round-trip; plain source passes through', () => {
  const src = 'var a=-1,b=-200,c=300,d=0,e=[-128,127,-32768,32767,65536,1.5];function f(x){if(x>=1&&x!==2)return x>>>3;for(let i=0;i<2;i++)x+=i;return typeof x==="number"?"ok\\n\\xff":null}';
  const img = pretokenise(src);
  assert.ok(img.length < src.length);
  assert.ok(isPretokenised(img.toString('latin1')));
  const back = untokenise(img);
  assert.equal(program(back), program(src));
  // Evaluated, both give the same values.
  const run = (s: string) => new Function(s + ';return [a,b,c,d,e,f(5),f(2)]')();
  assert.deepEqual(run(back), run(src));
  assert.deepEqual(run(back).slice(0, 4), [-1, -200, 300, 0]);
  assert.equal(runnableSource(src), src);
  assert.throws(() => untokenise(Buffer.from([0xd1, 10, 0x41])), /runs past the end/);
  assert.throws(() => untokenise(Buffer.from([0xcf])), /unknown token/);
});
