// The global-scope pass (host-tools/build/global-scope.ts): the bundle's wrapping function
// goes, its names move to the `$` namespace, locals that share a short name with a
// top-level one stay as they are, and the program computes the same.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'acorn';
import { globalScope } from '../host-tools/build/global-scope.ts';
import { buildFirmware } from '../host-tools/build/build.ts';

const run = (code: string, ctx: { [k: string]: unknown } = {}) => {
  vm.runInNewContext(code, ctx);
  return JSON.stringify(ctx.out);
};

/** Names a program declares at its top level (what a user's global or a pin could collide with). */
function topLevelNames(code: string): string[] {
  const ast = parse(code, { ecmaVersion: 2020 }) as any;
  const out: string[] = [];
  for (const s of ast.body) {
    if (s.type === 'FunctionDeclaration' || s.type === 'ClassDeclaration') out.push(s.id.name);
    if (s.type === 'VariableDeclaration') for (const d of s.declarations) out.push(d.id.name);
  }
  return out;
}

test('the wrapper goes, every top-level name is `$` plus one or two characters, and the program computes the same', () => {
  // `e` and `t` are top-level and also locals (parameters, a catch name) in functions that
  // do not use the top-level ones; `{t}` is a shorthand property of the top-level `t`.
  const src =
    '"use strict";(()=>{var t=3,n={a:1};function e(t){return t*2}function r(e,n){return e+n}' +
    'class i{constructor(t){this.t=t}get(){return e(this.t)}}' +
    'function o(){try{throw 1}catch(e){return{t,e,n:n.a}}}' +
    'for(var c=0;c<2;c++)n.a+=c;' +
    'globalThis.out=[e(t),r(1,2),new i(5).get(),o(),c]})();';
  const out = globalScope(src);
  assert.equal(run(out), run(src));
  assert.doesNotMatch(out, /=>\{var t|\}\)\(\);?$/, 'no wrapper left');
  const names = topLevelNames(out);
  assert.deepEqual(names.filter((n) => !/^\$[\w$]{1,2}$/.test(n)), [], `top-level names: ${names.join(' ')}`);
  assert.equal(names.length, 6, 't, n, e, r, i, o and c: the var c of the loop too');
  assert.match(out, /\{t:\$\w+,e,n:/, 'the shorthand keeps its key, the catch name stays local');
});

test('the most used names get the shortest, and names already in the bundle are not handed out', () => {
  const uses = Array.from({ length: 70 }, (_, i) => `var v${i}=${i};`).join('') + 'var hot=1;' + 'hot+=hot+hot+hot;'.repeat(5);
  const src = `(()=>{var $b=2;${uses}globalThis.out=[hot,$b,v69]})();`;
  const out = globalScope(src);
  assert.equal(run(out), run(src));
  const names = topLevelNames(out);
  assert.equal(names.length, 72);
  assert.equal(new Set(names).size, 72, 'all distinct');
  // `hot` (21 uses) gets the first name; 64 names of two characters, then three.
  assert.match(out, /var \$a=1;\$a\+=\$a/);
  assert.equal(names.filter((n) => n.length === 3).length, 8);
});

test('a bundle of another shape, or one that needs its wrapper, is refused', () => {
  assert.throws(() => globalScope('var a=1;'), /not one call of a wrapping function/);
  assert.throws(() => globalScope('(()=>{var a=1})();var b=2;'), /not one call of a wrapping function/);
  assert.throws(() => globalScope('((x)=>{var a=x})(1);'), /not one call of a wrapping function/);
  assert.throws(() => globalScope('(()=>{if(1)return;var a=1})();'), /returns/);
  assert.throws(() => globalScope('(function(){var a=this})();'), /this/);
  assert.throws(() => globalScope('(function(){var a=arguments.length})();'), /arguments/);
  // A `return` or `this` inside an inner function is fine.
  const ok = globalScope('(function(){function f(){return this}var a=f})();');
  assert.match(ok, /^function \$\w\(\)\{return this\}var \$\w=\$\w;?$/);
});

test('a board image declares nothing at the top level outside the `$` namespace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-global-'));
  try {
    const r = await buildFirmware({ board: 'puckjs', outDir: dir });
    const names = topLevelNames(readFileSync(r.path, 'utf8'));
    assert.ok(names.length > 50, `${names.length} top-level names`);
    assert.deepEqual(names.filter((n) => !/^\$[\w$]{1,2}$/.test(n)), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
