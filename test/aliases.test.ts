// The built-in alias pass (host-tools/build/aliases.ts): frequent globals and static
// methods get one local name each; the program computes the same; a name the bundle
// declares itself, a write to a built-in, and anything outside an IIFE are left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import vm from 'node:vm';
import { aliasBuiltins } from '../host-tools/build/aliases.ts';

const run = (code: string) => {
  const ctx: { out?: unknown } = {};
  vm.runInNewContext(code, ctx);
  return JSON.stringify(ctx.out);
};

test('frequent built-ins are aliased once at the top of the IIFE, and the program computes the same', () => {
  const src =
    '"use strict";(()=>{function f(n){let a=new Uint8Array(n);for(let i=0;i<n;i++)a[i]=Math.floor(i*2.5);return a}' +
    'function g(a){return Array.isArray(a)?a.length:new Uint8Array(a).length+Uint8Array.BYTES_PER_ELEMENT}' +
    'function h(a){return String.fromCharCode.apply(null,a)+String.fromCharCode(65)+Math.floor(a.length/3)+(a instanceof Uint8Array)}' +
    'globalThis.out=[Array.from(f(7)),g([1,2]),g(new Uint8Array(3)),h(f(20)),Math.floor(-1.5),Math.floor(9.9),Uint8Array.name]})();';
  const out = aliasBuiltins(src);
  assert.ok(out.length < src.length, `smaller: ${out.length} < ${src.length}`);
  assert.match(out, /^"use strict";\(\(\)=>\{var \$a=/, 'one declaration just inside the IIFE');
  assert.equal(out.match(/Uint8Array/g)!.length, 1, 'Uint8Array spelled once (the declaration)');
  assert.equal(out.match(/Math\.floor/g)!.length, 1, 'Math.floor spelled once');
  assert.equal(run(out), run(src));
});

test('a name the bundle declares, a write to a built-in, and uses too rare to pay are left alone', () => {
  const shadowed = '(()=>{function f(Uint8Array){return new Uint8Array(2)}globalThis.out=[new Uint8Array(1),new Uint8Array(1),new Uint8Array(1),new Uint8Array(1),f(Array)]})();';
  assert.equal(aliasBuiltins(shadowed), shadowed, 'declared somewhere: no alias at all');
  const written = '(()=>{Math.floor=Math.floor;globalThis.out=[Math.floor(1.5),Math.floor(2.5),Math.floor(3.5),Math.floor(4.5),Math.floor(5.5)]})();';
  const w = aliasBuiltins(written);
  assert.match(w, /Math\.floor=/, 'the assignment target keeps the member');
  assert.equal(run(w), run(written));
  const rare = '(()=>{globalThis.out=Math.floor(1.5)})();';
  assert.equal(aliasBuiltins(rare), rare);
  const notIife = 'var x=new Uint8Array(1),y=new Uint8Array(1),z=new Uint8Array(1),w=new Uint8Array(1);';
  assert.equal(aliasBuiltins(notIife), notIife);
});

test('the alias names are fresh: a bundle that already uses $a gets another name', () => {
  const src = '(()=>{let $a=1;globalThis.out=[$a,new Uint8Array(1).length,new Uint8Array(2).length,new Uint8Array(3).length,new Uint8Array(4).length]})();';
  const out = aliasBuiltins(src);
  assert.doesNotMatch(out, /var \$a=/);
  assert.equal(out.match(/Uint8Array/g)!.length, 1);
  assert.equal(run(out), run(src));
});
