import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  parseKeytab,
  encodeKeytab,
  principalName,
  findKeys,
  KEYTAB_MAX_COMPONENTS,
  type KeytabEntry,
} from '../firmware/proto/keytab.ts';
import { DecodeError } from '../firmware/proto/errors.ts';
import { fromAscii } from '../firmware/proto/bytes.ts';

function entry(name: string, realm: string, kvno: number, etype: number, keyLen: number, ts = 1700000000): KeytabEntry {
  return {
    principal: { realm, components: name.split('/'), nameType: name.includes('/') ? 3 : 1 },
    timestamp: ts,
    kvno,
    etype,
    key: new Uint8Array(randomBytes(keyLen)),
  };
}

function sample(): KeytabEntry[] {
  return [
    entry('cta/cta1.example.net', 'EXAMPLE.NET', 3, 17, 16),
    entry('cta/cta1.example.net', 'EXAMPLE.NET', 3, 18, 32),
    entry('cta/cta1.example.net', 'EXAMPLE.NET', 4, 18, 32),
    entry('sc/sc1.example.net', 'EXAMPLE.NET', 1, 20, 32),
    entry('alice', 'OTHER.ORG', 300, 19, 16), // kvno > 255: needs the 32-bit field
  ];
}

// Hand-built record bytes (independent of encodeKeytab) for one entry.
function u16(v: number) {
  return [(v >> 8) & 255, v & 255];
}
function u32(v: number) {
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
}
function data(s: string | number[]) {
  const b = typeof s === 'string' ? Array.prototype.slice.call(fromAscii(s)) : s;
  return [...u16(b.length), ...b];
}
function record(opts: { comps: string[]; realm: string; kvno8: number; kvno32?: number; etype: number; key: number[]; fill?: number }) {
  const body = [
    ...u16(opts.comps.length),
    ...data(opts.realm),
    ...opts.comps.flatMap((c) => data(c)),
    ...u32(1),
    ...u32(1600000000),
    opts.kvno8,
    ...u16(opts.etype),
    ...data(opts.key),
    ...(opts.kvno32 === undefined ? [] : u32(opts.kvno32)),
    ...new Array(opts.fill ?? 0).fill(0),
  ];
  return [...u32(body.length), ...body];
}

function same(a: KeytabEntry[], b: KeytabEntry[]) {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    assert.deepEqual(a[i].principal, b[i].principal);
    assert.equal(a[i].timestamp, b[i].timestamp);
    assert.equal(a[i].kvno, b[i].kvno);
    assert.equal(a[i].etype, b[i].etype);
    assert.deepEqual([...a[i].key], [...b[i].key]);
  }
}

test('round trip of several entries, incl. kvno > 255 and multi-component names', () => {
  const es = sample();
  const bytes = encodeKeytab(es);
  assert.equal(bytes[0], 5);
  assert.equal(bytes[1], 2);
  const back = parseKeytab(bytes);
  same(back, es);
  assert.deepEqual([...encodeKeytab(back)], [...bytes]);
  // the u8 kvno holds the low byte; the trailing u32 the full value
  assert.equal(back[4].kvno, 300);
});

test('the empty keytab is just the version', () => {
  assert.deepEqual([...encodeKeytab([])], [5, 2]);
  assert.deepEqual(parseKeytab(new Uint8Array([5, 2])), []);
});

test('hand-built records: 8-bit kvno only, zero 32-bit kvno, fill after the record, holes', () => {
  const bytes = new Uint8Array([
    5,
    2,
    ...record({ comps: ['host', 'a.example'], realm: 'R', kvno8: 7, etype: 17, key: new Array(16).fill(1) }),
    ...u32(-20 >>> 0),
    ...new Array(20).fill(0xee), // a hole: a deleted entry of 20 bytes
    ...record({ comps: ['b'], realm: 'R', kvno8: 9, kvno32: 0, etype: 18, key: new Array(32).fill(2) }),
    ...record({ comps: ['c'], realm: 'R', kvno8: 1, kvno32: 257, etype: 19, key: [3, 3], fill: 9 }),
    ...u32(0), // size 0 ends the list; what follows is ignored
    0xde,
    0xad,
  ]);
  const es = parseKeytab(bytes);
  assert.deepEqual(
    es.map((e) => [principalName(e), e.kvno, e.etype, e.key.length]),
    [
      ['host/a.example@R', 7, 17, 16],
      ['b@R', 9, 18, 32],
      ['c@R', 257, 19, 2],
    ],
  );
  assert.equal(es[0].timestamp, 1600000000);
  assert.equal(es[0].principal.nameType, 1);
});

test('version 0x0501 (host byte order, realm counted, no name type) is read', () => {
  // little-endian v1 record for "x/y@R", kvno 5, etype 17
  const le16 = (v: number) => [v & 255, (v >> 8) & 255];
  const le32 = (v: number) => [v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255];
  const d = (s: string) => [...le16(s.length), ...fromAscii(s)];
  const body = [...le16(3), ...d('R'), ...d('x'), ...d('y'), ...le32(1234), 5, ...le16(17), ...le16(4), 9, 9, 9, 9];
  const es = parseKeytab(new Uint8Array([5, 1, ...le32(body.length), ...body]));
  assert.equal(es.length, 1);
  assert.equal(principalName(es[0]), 'x/y@R');
  assert.equal(es[0].kvno, 5);
  assert.equal(es[0].etype, 17);
  assert.equal(es[0].timestamp, 1234);
  assert.deepEqual([...es[0].key], [9, 9, 9, 9]);
});

test('principalName quotes like MIT; findKeys sorts by kvno, realm optional', () => {
  const e = entry('a', 'R', 1, 17, 16);
  e.principal.components = ['we/ird', 'x@y'];
  assert.equal(principalName(e), 'we\\/ird/x\\@y@R');
  const es = sample();
  const hits = findKeys(es, 'cta/cta1.example.net@EXAMPLE.NET');
  assert.deepEqual(
    hits.map((h) => [h.kvno, h.etype]),
    [
      [4, 18],
      [3, 17],
      [3, 18],
    ],
  );
  assert.equal(findKeys(es, 'cta/cta1.example.net').length, 3);
  assert.equal(findKeys(es, 'cta/cta1.example.net@OTHER.ORG').length, 0);
  assert.equal(findKeys(es, 'alice@OTHER.ORG')[0].kvno, 300);
  assert.equal(findKeys([e], 'we\\/ird/x\\@y@R').length, 1);
});

test('malformed inputs throw DecodeError naming the problem', () => {
  const cases: [number[], RegExp][] = [
    [[], /truncated version/],
    [[4, 2], /not a keytab/],
    [[5, 3], /unsupported version/],
    [[5, 2, 0, 0], /truncated record size/],
    [[5, 2, 0, 0, 0, 50, 0, 1], /truncated record/],
    [[5, 2, 0xff, 0xff, 0xff, 0xf0, 1, 2], /hole runs past the end/],
    [[5, 2, 0x80, 0, 0, 0], /invalid record size/],
    [[5, 2, ...record({ comps: ['a'], realm: 'R', kvno8: 1, etype: 17, key: [1] }).slice(0, -1)], /truncated/],
    [[5, 2, ...u32(4), ...u16(KEYTAB_MAX_COMPONENTS + 1), 0, 0], /too many principal components/],
    [[5, 2, ...record({ comps: [String.fromCharCode(0xff)], realm: 'R', kvno8: 1, etype: 17, key: [1] })], /UTF-8/],
  ];
  for (const [bytes, re] of cases) {
    assert.throws(
      () => parseKeytab(new Uint8Array(bytes)),
      (e: unknown) => e instanceof DecodeError && re.test((e as Error).message),
      `input ${bytes.join(',')}`,
    );
  }
  // a record whose inner key length exceeds the record
  const r = record({ comps: ['a'], realm: 'R', kvno8: 1, etype: 17, key: [1, 2, 3] });
  const keyLenAt = r.length - 3 - 2; // u16 length just before the 3 key bytes
  r[keyLenAt] = 0x7f;
  assert.throws(() => parseKeytab(new Uint8Array([5, 2, ...r])), DecodeError);
});

test('every truncation and every single-byte mutation gives entries or a DecodeError, nothing else', () => {
  const bytes = encodeKeytab(sample());
  for (let n = 0; n < bytes.length; n++) {
    try {
      parseKeytab(bytes.subarray(0, n));
    } catch (e) {
      assert.ok(e instanceof DecodeError, `truncation at ${n}: ${e}`);
    }
  }
  let decodeErrors = 0;
  for (let i = 0; i < bytes.length; i++) {
    for (const v of [0x00, 0xff, 0x80, bytes[i] ^ 0x01, bytes[i] ^ 0x40]) {
      const m = bytes.slice();
      m[i] = v;
      try {
        const es = parseKeytab(m);
        for (const e of es) assert.ok(e.key instanceof Uint8Array && e.key.length <= bytes.length);
      } catch (e) {
        assert.ok(e instanceof DecodeError, `mutation ${i}=${v}: ${e}`);
        decodeErrors++;
      }
    }
  }
  assert.ok(decodeErrors > 0);
});

test('absurd lengths are rejected before anything is allocated', () => {
  // record size 0x7fffffff on a 6-byte input; u16 lengths of 65535 inside a tiny record
  const huge = new Uint8Array([5, 2, 0x7f, 0xff, 0xff, 0xff]);
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 1000; i++) assert.throws(() => parseKeytab(huge), DecodeError);
  const tiny = new Uint8Array([5, 2, 0, 0, 0, 6, 0, 1, 0xff, 0xff, 0, 0]);
  for (let i = 0; i < 1000; i++) assert.throws(() => parseKeytab(tiny), /truncated realm/);
  // key length over the cap, in a record that really is that long, is refused too
  const big = record({ comps: ['a'], realm: 'R', kvno8: 1, etype: 17, key: new Array(600).fill(7) });
  assert.throws(() => parseKeytab(new Uint8Array([5, 2, ...big])), /key length 600 too large/);
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
});

test('too many entries are refused', () => {
  const one = record({ comps: ['a'], realm: 'R', kvno8: 1, etype: 17, key: [1] });
  const many: number[] = [5, 2];
  for (let i = 0; i < 4097; i++) for (const b of one) many.push(b);
  assert.throws(() => parseKeytab(new Uint8Array(many)), /more than 4096 entries/);
});

test('keys are copies and error messages carry no key bytes', () => {
  const es = [entry('k', 'R', 1, 18, 32)];
  es[0].key.fill(0xab);
  const bytes = encodeKeytab(es);
  const back = parseKeytab(bytes);
  bytes.fill(0);
  assert.equal(back[0].key[0], 0xab);
  const bad = encodeKeytab(es).subarray(0, -6);
  try {
    parseKeytab(bad);
    assert.fail('should throw');
  } catch (e) {
    assert.ok(e instanceof DecodeError);
    const msg = (e as Error).message;
    assert.ok(!msg.toLowerCase().includes('abab') && !msg.includes('171,171') && msg.length < 100, msg);
  }
});

test('encodeKeytab refuses values that do not fit', () => {
  const e = entry('a', 'R', 1, 17, 16);
  assert.throws(() => encodeKeytab([{ ...e, kvno: -1 }]), /kvno/);
  assert.throws(() => encodeKeytab([{ ...e, kvno: 2 ** 32 }]), /kvno/);
  assert.throws(() => encodeKeytab([{ ...e, etype: 70000 }]), /enctype/);
  assert.throws(() => encodeKeytab([{ ...e, timestamp: 1.5 }]), /timestamp/);
  // negative enctypes / name types round-trip as signed values
  const n = { ...e, etype: -128, principal: { ...e.principal, nameType: -130 } };
  const back = parseKeytab(encodeKeytab([n]))[0];
  assert.equal(back.etype, -128);
  assert.equal(back.principal.nameType, -130);
});

test('DecodeError is the project error type', () => {
  assert.throws(() => parseKeytab('nope' as unknown as Uint8Array), DecodeError);
});
