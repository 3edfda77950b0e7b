// The Espruino subset checker: every rule catches its construct (bad) and
// leaves the nearest allowed construct alone (good).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSubset, RULES, formatViolations } from '../host-tools/build/subset-check.ts';

const CASES: { [rule: string]: { bad: string[]; good: string[] } } = {
  parse: { bad: ['var = ;'], good: ['var a = 1;'] },
  'default-param': { bad: ['function f(a = 1) { return a; }', 'var g = (a, b = 2) => a + b;'], good: ['function f(a) { if (a === undefined) a = 1; return a; }'] },
  destructuring: { bad: ['var { a } = o;', 'var [x, y] = arr;', 'function f({ a }) {}', '[a, b] = [b, a];'], good: ['var a = o.a, x = arr[0];'] },
  spread: { bad: ['f(...args);', 'var b = [...a];', 'var c = { ...o };'], good: ['f.apply(null, args); var b = a.slice();'] },
  rest: { bad: ['function f(...xs) { return xs; }'], good: ['function f() { return arguments.length; }'] },
  generator: { bad: ['function* g() { yield 1; }'], good: ['function g() { return 1; }'] },
  async: { bad: ['async function f() { await p; }', 'var f = async () => 1;'], good: ['function f() { return p.then(function (v) { return v; }); }'] },
  label: { bad: ['outer: for (var i = 0; i < 3; i++) { for (;;) { continue outer; } }'], good: ['for (var i = 0; i < 3; i++) { for (;;) { break; } }'] },
  exponent: { bad: ['var a = 2 ** 8;', 'a **= 2;'], good: ['var a = Math.pow(2, 8); a *= a;'] },
  'optional-chaining': { bad: ['var v = o?.a;', 'f?.();'], good: ['var v = o && o.a; var w = o ?? 1;'] },
  'logical-assignment': { bad: ['a ??= 1;', 'b ||= 2;', 'c &&= 3;'], good: ['a = a ?? 1; b = b || 2;'] },
  'computed-key': { bad: ['var o = { [k]: 1 };', 'class A { [k]() {} }'], good: ['var o = {}; o[k] = 1; var p = { a: 1, get b() { return 2; } };'] },
  'class-private': { bad: ['class A { #x = 1; }', 'class A { m() { return this.#y; } #y() {} }', 'class A { static { init(); } }'], good: ['class A { constructor() { this._x = 1; } static make() { return new A(); } }'] },
  'new-target': { bad: ['function F() { return new.target; }'], good: ['function F() { return this instanceof F; }'] },
  bigint: { bad: ['var n = 10n;'], good: ['var n = 10;'] },
  'forbidden-global': {
    bad: ['var m = new Map();', 'var s = new Set();', 'new WeakMap();', 'new WeakSet();', 'var k = Symbol("x");', 'BigInt(1);', 'Reflect.ownKeys(o);', 'new Proxy(o, {});', 'new TextEncoder();', 'new TextDecoder();', 'throw new RangeError("x");'],
    good: ['function f(Map) { return new Map(); }', 'var Set = function () {}; new Set();', 'o.Map = 1; o.Symbol();', 'var x = { Map: 1 };'],
  },
  'forbidden-static': {
    bad: ['Math.imul(a, b);', 'Math.clz32(x);', 'Math.trunc(x);', 'Number.isInteger(x);', 'Array.from(x);', 'Uint8Array.from(x);', 'Uint32Array.from(x);', 'Object.freeze(o);', 'Date.UTC(2000, 0, 1);', 'Number.MAX_SAFE_INTEGER;', 'Math["imul"](a, b);'],
    good: ['Math.floor(x); Math.sign(x); Math.pow(2, 3);', 'Object.keys(o); Object.assign({}, o); Object.defineProperty(o, "a", {});', 'new Uint8Array(x); Date.now();', 'var Math = { imul: 1 }; Math.imul;', 'o.Math.trunc(1);'],
  },
  'forbidden-method': { bad: ['a.flat();', 's.codePointAt(0);', 'a.at(-1);', 'for (var k of a.keys()) {}', 'u8.entries();'], good: ['a.slice(); s.charCodeAt(0); a[a.length - 1]; Object.keys(o); Object.entries(o); m.keys(1);'] },
  'builtin-prototype': { bad: ['var sl = Array.prototype.slice;', 'String.prototype.charCodeAt.call(s, 0);', 'Object.prototype.propertyIsEnumerable.call(o, "a");'], good: ['[].slice.call(u8); Object.prototype.hasOwnProperty.call(o, "a"); E.prototype = Object.create(Error.prototype);'] },
  'extends-error': { bad: ['class E extends Error {}', 'var X = class extends TypeError {};'], good: ['function E(m) { this.message = m; } E.prototype = Object.create(Error.prototype); class B extends A {}'] },
  'regex-unsupported': { bad: ['/(?<=a)b/.test(s);', '/(?<y>\\d+)/.exec(s);', '/a.b/s.test(s);'], good: ['/a(?=b)/.test(s); /^\\d+$/gi.test(s); /a/y.test(s);'] },
  'let-loop-closure': {
    bad: ['var fs = []; for (let i = 0; i < 3; i++) fs.push(function () { return i; });', 'for (const x of xs) setTimeout(() => use(x), 1);'],
    good: ['for (let i = 0; i < 3; i++) use(i);', 'for (var i = 0; i < 3; i++) { let j = i; fs.push(function () { return j; }); }', 'for (let i = 0; i < 3; i++) fs.push(function (i) { return i; });'],
  },
  'class-expression-name': {
    bad: ['var A = class _A { static mk() { return new _A(); } };'],
    good: ['var B = class _B { m() { return 1; } }; class C { static mk() { return new C(); } }'],
  },
  'reserved-name': {
    bad: ['class R { static of(b) { return new R(b); } }', 'class S { delete(k) {} }', 'class T { get default() { return 1; } }', 'var of = 1;', 'function f(static) {}'],
    good: ['var o = { of: 1, delete: 2, default: 3 }; o.of(); o.delete(k); x.static = 1;', 'class R { static from2(b) {} remove(k) {} }'],
  },
};

test('every rule has a case', () => {
  assert.deepEqual(Object.keys(CASES).sort(), Object.keys(RULES).sort());
});

for (const rule of Object.keys(CASES)) {
  test(`rule ${rule}: caught`, () => {
    for (const src of CASES[rule].bad) {
      const v = checkSubset(src);
      assert.ok(v.some((x) => x.rule === rule), `expected '${rule}' for: ${src}\n got: ${JSON.stringify(v)}`);
    }
  });
  test(`rule ${rule}: allowed code passes`, () => {
    for (const src of CASES[rule].good) {
      const v = checkSubset(src);
      assert.deepEqual(v, [], `expected no violation for: ${src}\n got: ${formatViolations(v, 'snippet')}`);
    }
  });
}

test('violations carry position and snippet', () => {
  const v = checkSubset('var a = 1;\nvar m = new Map();\n');
  assert.equal(v.length, 1);
  assert.equal(v[0].rule, 'forbidden-global');
  assert.equal(v[0].line, 2);
  assert.equal(v[0].column, 12);
  assert.equal(v[0].snippet, 'Map');
  assert.match(formatViolations(v, 'b.js'), /^b\.js:2:13 forbidden-global: .*Map/);
});
