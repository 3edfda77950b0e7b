// The strict DER layer: integers, lengths, strings, KerberosTime, flags, bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSync } from 'esbuild';
import { readFileSync } from 'node:fs';
import {
  DerReader,
  MAX_DEPTH,
  MAX_INPUT,
  decodeAll,
  encFlags,
  encInt,
  encOctets,
  encSeq,
  encStr,
  encTime,
  flagBit,
  formatKerberosTime,
  parseKerberosTime,
  tlv,
  tlvSize,
} from '../firmware/proto/der.ts';
import { DecodeError } from '../firmware/proto/errors.ts';
import { fromHex, toHex } from '../firmware/proto/bytes.ts';
import { decodeMethodData, encodeMethodData } from '../firmware/proto/krb5.ts';
import { checkSubset, formatViolations } from '../host-tools/build/subset-check.ts';
import { espruinoFixups } from '../host-tools/build/build.ts';
import { prng } from './helpers/asn1.ts';

function decodeErr(fn: () => unknown, re?: RegExp): DecodeError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DecodeError, `expected DecodeError, got ${e}`);
    if (re) assert.match((e as Error).message, re);
    return e as DecodeError;
  }
  assert.fail('expected a DecodeError');
}
const rd = (hex: string) => DerReader.wrap(fromHex(hex), 'test');

/** Reference INTEGER encoding via BigInt (minimal two's complement). */
function refInt(v: number): string {
  let x = BigInt(v);
  const out: number[] = [];
  for (;;) {
    const b = Number(x & 0xffn);
    out.unshift(b);
    x >>= 8n;
    if ((x === 0n && b < 0x80) || (x === -1n && b >= 0x80)) break;
  }
  return '02' + out.length.toString(16).padStart(2, '0') + Buffer.from(out).toString('hex');
}

test('INTEGER: minimal two-complement encoding matches a BigInt reference and round-trips', () => {
  const edge = [0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, 32768, -32768, -32769, 65535, 8388607, 8388608, -8388609,
    2147483647, 2147483648, -2147483648, 4294967295, 999999];
  const r = prng(7);
  for (let i = 0; i < 2000; i++) edge.push(r() | 0, r(), r() >>> (r() & 31), -(r() >>> ((r() & 31) | 1)) || 0);
  for (const v of edge) {
    const b = encInt(v);
    assert.equal(toHex(b), refInt(v), `encode ${v}`);
    assert.equal(DerReader.wrap(b, 'i').val(v < 0 ? 'i' : 'u', 'i'), v);
    if (v <= 2147483647) assert.equal(DerReader.wrap(b, 'i').val('i', 'i'), v);
  }
});

test('INTEGER: non-minimal, empty, oversize and out-of-range values are DecodeErrors', () => {
  decodeErr(() => rd('02020001').val('i', 'x'), /non-minimal/);
  decodeErr(() => rd('0202007f').val('i', 'x'), /non-minimal/);
  decodeErr(() => rd('0202ffff').val('i', 'x'), /non-minimal/);
  decodeErr(() => rd('0202ff80').val('i', 'x'), /non-minimal/);
  decodeErr(() => rd('0200').val('i', 'x'), /empty/);
  decodeErr(() => rd('0206010000000000').val('u', 'x'), /out of range/);
  decodeErr(() => rd('020500ffffffff').val('i', 'x'), /out of range/); // 2^32-1 is not an Int32
  decodeErr(() => rd('03020000').val('i', 'x'), /expected tag/);
  decodeErr(() => rd('02030f4240').val('m', 'x'), /out of range/); // 1000000
  assert.equal(rd('02030f423f').val('m', 'x'), 999999);
  // UInt32 accepts the signed encodings some implementations send and maps them to unsigned.
  assert.equal(rd('0201ff').val('u', 'x'), 0xffffffff);
  assert.equal(rd('020480000000').val('u', 'x'), 0x80000000);
  assert.equal(rd('020500ffffffff').val('u', 'x'), 0xffffffff);
  decodeErr(() => rd('0201ff').val('m', 'x'));
  assert.throws(() => encInt(2 ** 32), /out of range/);
  assert.throws(() => encInt(-(2 ** 31) - 1), /out of range/);
  assert.throws(() => encInt(1.5), /out of range/);
});

test('INTEGER -2^31 decodes as Int32', () => {
  assert.equal(rd('020480000000').val('i', 'x'), -2147483648);
});

test('lengths: short and long forms accepted; indefinite, non-minimal, oversized rejected', () => {
  for (const n of [0, 1, 127, 128, 200, 255, 256, 1000, 65000]) {
    const b = encOctets(new Uint8Array(n).fill(0xab));
    const hdr = n < 128 ? 2 : n < 256 ? 3 : 4;
    assert.equal(b.length, hdr + n);
    const v = DerReader.wrap(b, 'o').val('o', 'o');
    assert.equal(v.length, n);
  }
  decodeErr(() => rd('048105' + '00'.repeat(5)).val('o', 'o'), /non-minimal length/);
  decodeErr(() => rd('04820080' + '00'.repeat(128)).val('o', 'o'), /non-minimal length/);
  decodeErr(() => rd('30800201000000').enter(0x30, 's'), /indefinite/);
  decodeErr(() => rd('048300000100').val('o', 'o'), /too long/);
  decodeErr(() => rd('0484ffffffff00').val('o', 'o'), /too long/);
  decodeErr(() => rd('04ff00').val('o', 'o'), /too long/);
  decodeErr(() => rd('0482').val('o', 'o'), /truncated length/);
  decodeErr(() => rd('04').val('o', 'o'), /no length/);
  decodeErr(() => rd('0405010203').val('o', 'o'), /exceeds/);
  decodeErr(() => rd('1f2200').val('o', 'o'), /high-tag/);
});

test('tlvSize (pktc finds where a carried Kerberos message ends): the reader\'s length checks', () => {
  const ok = (h: string, n: number, o = 0) => assert.equal(tlvSize(fromHex(h), o, 0x6e, 'X'), n);
  const bad = (h: string, re: RegExp) => decodeErr(() => tlvSize(fromHex(h), 0, 0x6e, 'X'), re);
  ok('6e00', 2);
  ok('6e0101', 3);
  ok('00006e0101ff', 3, 2);
  ok('6e81' + '80' + '00'.repeat(128), 131);
  ok('6e820100' + '00'.repeat(256) + 'ffff', 260);
  bad('', /X: missing/);
  bad('6e', /X: truncated \(no length\)/);
  bad('6f00', /X: expected tag 0x6e, got 0x6f/);
  bad('6e80', /indefinite/);
  bad('6e817f' + '00'.repeat(127), /non-minimal/);
  bad('6e8200ff' + '00'.repeat(255), /non-minimal/);
  bad('6e83010000', /too long/);
  bad('6e0501', /exceeds/);
  bad('6e82ffff00', /exceeds/);
  bad('6e82', /truncated length/);
  bad('6e81', /truncated length/);
});

test('huge length fields fail before anything is allocated or read', () => {
  // 65535-byte claim in a 4-byte buffer: must fail on the length check, and fast.
  const b = fromHex('0482ffff');
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 10000; i++) decodeErr(() => DerReader.wrap(b, 'h').val('o', 'h'), /exceeds/);
  assert.ok(process.hrtime.bigint() - t0 < 2_000_000_000n);
  decodeErr(() => DerReader.wrap(new Uint8Array(MAX_INPUT + 1), 'big'), /exceeds 65535/);
  decodeErr(() => DerReader.wrap(new Uint8Array(0), 'empty'), /empty/);
  decodeErr(() => DerReader.wrap('0400' as unknown as Uint8Array, 'str'), /not a Uint8Array/);
});

test('trailing bytes after a complete element are rejected', () => {
  const ok = decodeAll(fromHex('020105'), 'x', (r) => r.val('i', 'x'));
  assert.equal(ok, 5);
  decodeErr(() => decodeAll(fromHex('02010500'), 'x', (r) => r.val('i', 'x')), /trailing/);
  // ...also inside a constructed element.
  decodeErr(() => decodeAll(fromHex('3004020105ff'), 'x', (r) => { const s = r.enter(0x30, 's'); s.val('i', 'i'); s.end('s'); }), /exceeds|trailing/);
  decodeErr(() => decodeAll(fromHex('30040201050000'), 'x', (r) => { const s = r.enter(0x30, 's'); s.val('i', 'i'); s.end('s'); }), /trailing/);
});

test('decodeAll turns an unexpected exception into a DecodeError marked internal', () => {
  decodeErr(() => decodeAll(fromHex('0500'), 'x', () => { throw new TypeError('boom'); }), /internal error: boom/);
});

test('nesting deeper than MAX_DEPTH is refused', () => {
  const nest = (d: number) => {
    let b = fromHex('0500');
    for (let i = 0; i < d; i++) b = encSeq([b]);
    return b;
  };
  const walk = (r: DerReader): void => {
    while (r.more()) {
      if (r.has(0x30)) walk(r.enter(0x30, 's'));
      else r.p = r.hdr(-1, 'p') + r.p;
    }
  };
  decodeAll(nest(MAX_DEPTH), 'ok', walk);
  decodeErr(() => decodeAll(nest(MAX_DEPTH + 1), 'deep', walk), /nesting deeper/);
});

test('SEQUENCE OF is capped at 64 elements', () => {
  const pa = { padataType: 2, padataValue: new Uint8Array(0) };
  const ok = encodeMethodData(new Array(64).fill(pa));
  assert.equal(decodeMethodData(ok).length, 64);
  decodeErr(() => decodeMethodData(encodeMethodData(new Array(65).fill(pa))), /more than 64/);
});

test('GeneralString: bytes map 1:1 to chars, NUL rejected', () => {
  const s = 'EXAMPLE.NET/sc@x ~';
  assert.equal(DerReader.wrap(encStr(s), 's').val('s', 's'), s);
  assert.equal(toHex(encStr('AB')), '1b024142');
  decodeErr(() => rd('1b03410042').val('s', 's'), /NUL/);
  decodeErr(() => rd('0c024142').val('s', 's'), /expected tag/); // UTF8String is not GeneralString
  assert.throws(() => encStr('\u0100'));
  assert.throws(() => encStr('a\u0000'));
  const hi = '\u00e9t\u00e9'; // binary-string chars (e.g. UTF-8 bytes) pass through unchanged
  assert.equal(DerReader.wrap(encStr(hi), 's').val('s', 's'), hi);
});

/** The reference: Date's UTC fields (not toISOString, which the implementation uses). */
function isoToKt(ms: number): string {
  const d = new Date(ms);
  const f = [d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()];
  return String(d.getUTCFullYear()).padStart(4, '0') + f.map((x) => String(x).padStart(2, '0')).join('') + 'Z';
}

test('KerberosTime: format and parse agree with Date over many dates, years 0..9999', () => {
  const r = prng(12345);
  const min = Date.parse('0000-01-01T00:00:00Z');
  const max = Date.parse('9999-12-31T23:59:59Z');
  const dates = [0, -1000, -1, 999, 951782400000, 951868800000, 4107542399000, 4107542400000, 2147483647000, 2147483648000, min, max, max + 999,
    Date.parse('1900-02-28T23:59:59Z'), Date.parse('1900-03-01T00:00:00Z'), Date.parse('2100-02-28T12:00:00Z'), Date.parse('2000-02-29T12:00:00Z'),
    Date.parse('1969-12-31T23:59:59Z'), Date.parse('2037-12-31T23:59:59Z'), Date.parse('2038-01-19T03:14:08Z'),
    // years 0..99, which Date.UTC and new Date(y, ...) would take as 1900..1999; 100..999, which Espruino prints unpadded
    Date.parse('0050-06-15T12:34:56Z'), Date.parse('0099-12-31T23:59:59Z'), Date.parse('0100-01-01T00:00:00Z'), Date.parse('0999-12-31T23:59:59Z'),
    Date.parse('1000-01-01T00:00:00Z')];
  for (let i = 0; i < 5000; i++) dates.push(Math.floor(min + ((r() * 2 ** 21 + (r() >>> 11)) / 2 ** 53) * (max - min)) * 1);
  for (let i = 0; i < 2000; i++) dates.push(Math.floor(Date.parse('1990-01-01T00:00:00Z') + (r() / 2 ** 32) * 100 * 365.25 * 86400000));
  for (const ms of dates) {
    const whole = Math.floor(ms / 1000) * 1000;
    const s = formatKerberosTime(ms);
    assert.equal(s, isoToKt(whole), `format ${new Date(ms).toISOString()}`);
    assert.equal(parseKerberosTime(s), whole, `parse ${s}`);
    const enc = encTime(ms);
    assert.equal(enc[0], 0x18);
    assert.equal(enc[1], 15);
    assert.equal(DerReader.wrap(enc, 't').val('t', 't'), whole);
  }
  // Every day of two full 400-year cycles (1600..2400), at a time of day that moves.
  for (let ms = Date.parse('1600-01-01T00:00:00Z'), i = 0; ms < Date.parse('2401-01-01T00:00:00Z'); ms += 86400000, i++) {
    const t = ms + ((i * 7919) % 86400) * 1000;
    const s = isoToKt(t);
    assert.equal(formatKerberosTime(t), s);
    assert.equal(parseKerberosTime(s), t, s);
  }
});

test('KerberosTime: malformed or impossible times are NaN / DecodeErrors', () => {
  const bad = ['20230229000000Z', '19000229000000Z', '21000229000000Z', '20231301000000Z', '20230001000000Z', '20230100000000Z',
    '20230431000000Z', '20230101240000Z', '20230101006000Z', '20230101000060Z', '20230101000000z', '2023010100000+Z',
    '2023010100000 Z', ' 20230101000000', '202301-1000000Z', '20230132000000Z', '20230230000000Z', '20239901000000Z',
    '20230101000099Z', '99991232000000Z', '00000100000000Z', '00000001000000Z', '+0230101000000Z', '-0010101000000Z',
    '2023-1-1T00000Z', '20230101T00000Z', '202301010000.0Z', '2O230101000000Z', '20230101000000+', '20230101000000 ',
    '2023\u0661\u0660101000000Z', '20230101000000\u005a'.replace('Z', 'Y')];
  for (const s of bad) {
    assert.ok(Number.isNaN(parseKerberosTime(s)), s);
    decodeErr(() => DerReader.wrap(tlv(0x18, Buffer.from(s, 'latin1')), 't').val('t', 't'), /malformed|15 bytes/);
  }
  // Every impossible day of every month, in leap, common and century years.
  for (const y of [1900, 2000, 2023, 2024, 2100, 9999]) {
    for (let m = 1; m <= 12; m++) {
      const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
      const kt = (d: number) => `${y}${String(m).padStart(2, '0')}${String(d).padStart(2, '0')}235959Z`;
      assert.equal(parseKerberosTime(kt(last)), Date.UTC(y, m - 1, last, 23, 59, 59), kt(last));
      for (const d of [0, last + 1, 31 + (last === 31 ? 1 : 0)]) assert.ok(Number.isNaN(parseKerberosTime(kt(d))), kt(d));
    }
  }
  // Every hour, minute and second value: 00..23 and 00..59 only (no leap second).
  for (let v = 0; v < 100; v++) {
    const two = String(v).padStart(2, '0');
    assert.equal(Number.isNaN(parseKerberosTime(`20230101${two}0000Z`)), v > 23, `hour ${two}`);
    assert.equal(Number.isNaN(parseKerberosTime(`2023010100${two}00Z`)), v > 59, `minute ${two}`);
    assert.equal(Number.isNaN(parseKerberosTime(`202301010000${two}Z`)), v > 59, `second ${two}`);
  }
  decodeErr(() => DerReader.wrap(tlv(0x18, Buffer.from('20230101000000\u0000', 'latin1')), 't').val('t', 't'), /NUL/);
  assert.equal(parseKerberosTime('20240229235959Z'), Date.parse('2024-02-29T23:59:59Z'));
  assert.equal(parseKerberosTime('20000229000000Z'), Date.parse('2000-02-29T00:00:00Z'));
  assert.equal(parseKerberosTime('00000101000000Z'), Date.parse('0000-01-01T00:00:00Z'));
  assert.equal(parseKerberosTime('00501231235959Z'), Date.parse('0050-12-31T23:59:59Z'));
  assert.equal(parseKerberosTime('99991231235959Z'), Date.parse('9999-12-31T23:59:59Z'));
  // Fractions, missing Z, two-digit years: wrong length.
  for (const s of ['20230101000000.5Z', '20230101000000', '230101000000Z', '2023010100000Z', '']) {
    assert.ok(Number.isNaN(parseKerberosTime(s)), s);
    if (s) decodeErr(() => DerReader.wrap(tlv(0x18, Buffer.from(s, 'latin1')), 't').val('t', 't'), /15 bytes/);
  }
  decodeErr(() => DerReader.wrap(tlv(0x17, Buffer.from('230101000000Z')), 't').val('t', 't'), /expected tag/); // UTCTime
  // Formatting: years 0..9999 only, numbers only.
  for (const ms of [Date.parse('+010000-01-01T00:00:00Z'), Date.parse('-000001-12-31T23:59:59Z'), NaN, Infinity, -Infinity, 8.64e15 + 1]) {
    assert.throws(() => formatKerberosTime(ms), /out of range/, String(ms));
  }
  for (const v of [null, undefined, '0', true, [0]]) assert.throws(() => formatKerberosTime(v as unknown as number), /out of range/, String(v));
});

test('KerberosFlags: 32-bit BIT STRING, bit 0 is the most significant', () => {
  assert.equal(toHex(encFlags(0)), '030500' + '00000000');
  assert.equal(toHex(encFlags(flagBit(2))), '030500' + '20000000');
  assert.equal(toHex(encFlags(flagBit(0) | flagBit(31))), '030500' + '80000001');
  const r = prng(99);
  for (let i = 0; i < 1000; i++) {
    const v = r();
    assert.equal(DerReader.wrap(encFlags(v), 'f').val('f', 'f'), v);
  }
  assert.equal(flagBit(0), 0x80000000);
  assert.equal(flagBit(31), 1);
  // Shorter (strict-DER named-bit) forms are accepted.
  assert.equal(rd('03020780').val('f', 'f'), 0x80000000);
  assert.equal(rd('030100').val('f', 'f'), 0);
  assert.equal(rd('0303004000').val('f', 'f'), 0x40000000);
  decodeErr(() => rd('0300').val('f', 'f'), /empty/);
  decodeErr(() => rd('030107').val('f', 'f'), /unused/);
  decodeErr(() => rd('03020801').val('f', 'f'), /unused/);
  decodeErr(() => rd('03020181').val('f', 'f'), /unused bits not zero/);
  decodeErr(() => rd('0306000000000000').val('f', 'f'), /more than 32/);
  decodeErr(() => rd('2305030100').val('f', 'f'), /expected tag/); // constructed BIT STRING
});

test('DerReader.hdr(-1) passes over any tag; has() looks at the next identifier only', () => {
  const inner = fromHex('6103020105');
  const b = encSeq([fromHex('0500'), inner, fromHex('0101ff')]);
  const s = DerReader.wrap(b, 'x').enter(0x30, 's');
  assert.equal(s.has(0x05), true);
  assert.equal(s.has(0x61), false);
  s.p = s.hdr(-1, 'a') + s.p;
  assert.equal(s.has(0x61), true);
  const st = s.p;
  assert.equal(s.hdr(0x61, 'raw'), 3);
  s.p += 3;
  assert.equal(toHex(b.slice(st, s.p)), toHex(inner));
  decodeErr(() => s.hdr(0x02, 'c'), /expected tag 0x02, got 0x01/);
  s.p = s.hdr(-1, 'c') + s.p;
  assert.equal(s.more(), false);
  assert.equal(s.has(0x01), false);
  s.end('s');
});

test('writer: long lengths, growth past the first buffer, parts in order', () => {
  for (const n of [0, 127, 128, 255, 256, 511, 512, 513, 4000, 65535, 70000]) {
    const c = new Uint8Array(n);
    for (let i = 0; i < n; i++) c[i] = i * 7;
    const b = encSeq([encOctets(c.subarray(0, n >> 1)), null, encOctets(c.subarray(n >> 1))]);
    const s = DerReader.wrap(b.length <= MAX_INPUT ? b : b.subarray(0, 4), 'w');
    if (b.length > MAX_INPUT) {
      assert.equal(b[0], 0x30);
      assert.equal(b[1], 0x83);
      continue;
    }
    const q = s.enter(0x30, 'q');
    const a = q.val('o', 'a');
    const z = q.val('o', 'z');
    q.end('q');
    assert.equal(toHex(a) + toHex(z), toHex(c));
  }
  assert.equal(toHex(tlv(0x04, new Uint8Array(0))), '0400');
});

test('der.ts and krb5.ts bundle inside the Espruino subset', () => {
  const exportsOf = (src: string) => [...src.matchAll(/^export (?:function|const|class) (\w+)/gm)].map((m) => m[1]);
  for (const mod of ['der', 'krb5']) {
    const path = new URL(`../firmware/proto/${mod}.ts`, import.meta.url).pathname;
    const names = exportsOf(readFileSync(path, 'utf8'));
    assert.ok(names.length > 10);
    const entry = `import { ${names.join(', ')} } from ${JSON.stringify(path)};\nthis.X = [${names.join(', ')}];`;
    const out = buildSync({ stdin: { contents: entry, loader: 'ts', resolveDir: '.' }, bundle: true, format: 'iife', target: 'es2015', minify: true, write: false });
    const v = checkSubset(espruinoFixups(out.outputFiles[0].text)); // what cta build emits
    assert.equal(v.length, 0, formatViolations(v, mod));
  }
});
