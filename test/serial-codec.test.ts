import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Encoder } from 'cbor-x';
import { crc16, crc16Update } from '../firmware/proto/crc16.ts';
import { slipEncode, SlipDecoder, SLIP_END, SLIP_ESC } from '../firmware/proto/slip.ts';
import { cborDecode, cborEncode, CBOR_MAX_DEPTH } from '../firmware/proto/cbor.ts';
import type { CborValue } from '../firmware/proto/cbor.ts';
import { encodeFrame, FrameDecoder, CHANNEL } from '../firmware/proto/serial-frame.ts';
import { fromAscii, toAscii, toHex } from '../firmware/proto/bytes.ts';
import { DecodeError } from '../firmware/proto/errors.ts';
import { Prng } from './helpers/fuzz.ts';

const cx = new Encoder({ tagUint8Array: false, useRecords: false, mapsAsObjects: true });


/** Bitwise reference CRC-16/CCITT-FALSE, straight from the definition. */
function crcRef(data: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of data) {
    crc ^= byte << 8;
    for (let k = 0; k < 8; k++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

test('crc16: CCITT-FALSE check value and agreement with the bitwise definition', () => {
  assert.equal(crc16(fromAscii('123456789')), 0x29b1);
  assert.equal(crc16(new Uint8Array(0)), 0xffff);
  const r = new Prng(7);
  for (let i = 0; i < 50; i++) {
    const d = r.bytes(r.int(300));
    assert.equal(crc16(d), crcRef(d));
    const cut = r.int(d.length + 1);
    assert.equal(crc16Update(crc16Update(0xffff, d, 0, cut), d, cut, d.length), crcRef(d), 'incremental');
    assert.equal(crc16(d, 1, d.length), crcRef(d.subarray(1)), 'range');
  }
});

test('slip: encode escapes END/ESC and the decoder inverts it across arbitrary chunking', () => {
  const r = new Prng(11);
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 40; i++) {
    const f = r.bytes(1 + r.int(200));
    if (i % 3 === 0) f[0] = SLIP_END;
    if (i % 5 === 0) f[f.length - 1] = SLIP_ESC;
    frames.push(f);
  }
  const wire = Buffer.concat(frames.map((f) => slipEncode(f)));
  for (const f of frames) {
    const e = slipEncode(f);
    assert.equal(e[0], SLIP_END);
    assert.equal(e[e.length - 1], SLIP_END);
    assert.equal(e.subarray(1, e.length - 1).indexOf(SLIP_END), -1, 'no raw END inside a frame');
  }
  const got: string[] = [];
  const d = new SlipDecoder((fr) => got.push(toHex(fr)));
  let i = 0;
  while (i < wire.length) {
    const n = 1 + r.int(17);
    d.feed(new Uint8Array(wire.subarray(i, i + n)));
    i += n;
  }
  assert.deepEqual(got, frames.map(toHex));
  assert.equal(d.stats.frames, frames.length);
  // Espruino delivers serial data as binary strings: same result.
  const got2: string[] = [];
  const d2 = new SlipDecoder((fr) => got2.push(toHex(fr)));
  d2.feed(toAscii(new Uint8Array(wire)));
  assert.deepEqual(got2, got);
});

test('slip: oversized frames and bad escapes are dropped, counted, and the decoder resyncs', () => {
  const got: string[] = [];
  const d = new SlipDecoder((fr) => got.push(toHex(fr)), 16);
  d.feed(slipEncode(new Uint8Array(17).fill(1))); // one too many
  d.feed(slipEncode(new Uint8Array(16).fill(2))); // exactly fits
  d.feed(new Uint8Array([SLIP_END, 5, SLIP_ESC, 0x42, 6, SLIP_END])); // bad escape
  d.feed(new Uint8Array([SLIP_END, SLIP_ESC, SLIP_END])); // ESC then END
  d.feed(new Uint8Array(5000).fill(9)); // a flood without END
  d.feed(slipEncode(new Uint8Array([7, 7])));
  assert.deepEqual(got, [toHex(new Uint8Array(16).fill(2)), '0707']);
  assert.equal(d.stats.oversized, 2);
  assert.equal(d.stats.badEscape, 2);
  assert.equal(d.stats.frames, 2);
});

test('slip: frames longer than the buffer step arrive whole; a frame a view may keep is not overwritten by the next', () => {
  // The receive buffer grows in steps while a frame arrives and is let go after it
  // (no preallocated 2 KB on the board): lengths around the steps, with escapes at
  // the step boundaries, and exactly maxFrame / one byte over.
  const max = 1000;
  const kept: Uint8Array[] = [];
  const d = new SlipDecoder((fr) => kept.push(fr), max);
  const frames: Uint8Array[] = [];
  for (const n of [1, 255, 256, 257, 511, 512, 513, 999, 1000]) {
    const f = new Uint8Array(n);
    for (let i = 0; i < n; i++) f[i] = i % 97 === 0 || i === 255 || i === 256 ? (i & 1 ? SLIP_END : SLIP_ESC) : (i * 7) & 0xff;
    frames.push(f);
  }
  for (const f of frames) d.feed(slipEncode(f));
  d.feed(slipEncode(new Uint8Array(max + 1).fill(3)));
  d.feed(slipEncode(new Uint8Array([1, 2])));
  // Each delivered view still holds its own frame after the later ones arrived.
  assert.deepEqual(kept.map(toHex), [...frames, new Uint8Array([1, 2])].map(toHex));
  assert.equal(d.stats.oversized, 1);
});

test('cbor: our encoder and cbor-x agree both ways on the supported subset', () => {
  const samples: CborValue[] = [
    0, 1, 23, 24, 255, 256, 65535, 65536, 4294967295, 4294967296, 2 ** 53 - 1, -1, -24, -25, -256, -257, -65537,
    -4294967296, -4294967297, -(2 ** 53) + 1, 1.5, -0.1, 1e300,
    '', 'a', 'héllo wörld', '\u{1f600} emoji', 'x'.repeat(300),
    new Uint8Array(0), new Uint8Array([1, 2, 3]), new Uint8Array(70000 >> 4).fill(0xaa),
    true, false, null,
    [], [1, [2, [3, []]]], { a: 1, b: [new Uint8Array([9]), 'z'], c: { d: null } },
    [1, { provision: { keytab: new Uint8Array([5, 6]), principal: 'cta1@EXAMPLE.NET' }, n: -3 }],
  ];
  for (const v of samples) {
    const ours = cborEncode(v);
    const theirs = new Uint8Array(cx.encode(v));
    // cbor-x -> ours
    assert.deepEqual(norm(cborDecode(theirs)), norm(v), `decode cbor-x bytes of ${show(v)}`);
    // ours -> cbor-x
    assert.deepEqual(norm(cx.decode(Buffer.from(ours))), norm(v), `cbor-x decodes our bytes of ${show(v)}`);
    // ours -> ours
    assert.deepEqual(norm(cborDecode(ours)), norm(v));
  }
  // Small ints use the shortest head; integers past 32 bits become doubles like cbor-x writes.
  assert.equal(toHex(cborEncode(24)), '1818');
  assert.equal(toHex(cborEncode(-1)), '20');
  assert.equal(toHex(cborEncode(2 ** 40)), toHex(new Uint8Array(cx.encode(2 ** 40))));
  // Integer map keys decode to their decimal string (like cbor-x's mapsAsObjects).
  assert.deepEqual(cborDecode(Uint8Array.from(Buffer.from('a2010263616263f5', 'hex'))), { '1': 2, abc: true });
  assert.deepEqual(cborDecode(Uint8Array.from(Buffer.from('1b001fffffffffffff', 'hex'))), 2 ** 53 - 1);
  assert.deepEqual(cborDecode(Uint8Array.from(Buffer.from('f93e00', 'hex'))), 1.5);
  assert.deepEqual(cborDecode(Uint8Array.from(Buffer.from('fa3fc00000', 'hex'))), 1.5);
});

function show(v: CborValue): string {
  return typeof v === 'string' ? JSON.stringify(v.slice(0, 20)) : String(v).slice(0, 30);
}
/** Buffers from cbor-x -> plain Uint8Array for deepEqual. */
function norm(v: unknown): unknown {
  if (v instanceof Uint8Array) return Array.from(v);
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === 'object') {
    const o: { [k: string]: unknown } = {};
    for (const k of Object.keys(v)) o[k] = norm((v as { [k: string]: unknown })[k]);
    return o;
  }
  return v;
}

test('cbor: malformed, unsupported and hostile inputs throw DecodeError only', () => {
  const bad = [
    '', // empty
    '18', // truncated uint8
    '1a0000', // truncated uint32
    '1b0020000000000000', // 2^53: beyond the safe range
    '3b0020000000000000',
    '5f4101ff', // indefinite byte string
    '9f01ff', // indefinite array
    '1c', // reserved additional info
    'c24101', // tag
    'f8ff', // simple value (extended)
    'e0', // simple value 0
    '4501', // byte string longer than input
    '6261', // text string longer than input
    '62c328', // invalid UTF-8 continuation
    '62c0af', // overlong
    '63eda080', // surrogate
    '9a7fffffff', // array count far beyond input
    'ba7fffffff', // map count far beyond input
    'a201020103', // duplicate key
    'a1f501', // boolean key
    'a1f93e0001', // non-integer float key
    '0101', // trailing bytes
    '81'.repeat(CBOR_MAX_DEPTH + 1) + '01', // too deep
  ];
  for (const h of bad) {
    assert.throws(() => cborDecode(Uint8Array.from(Buffer.from(h, 'hex'))), DecodeError, h);
  }
  assert.deepEqual(cborDecode(Uint8Array.from(Buffer.from('81'.repeat(CBOR_MAX_DEPTH) + '01', 'hex'))), nest(CBOR_MAX_DEPTH));
  // Random garbage: DecodeError or a value, never another exception.
  const r = new Prng(99);
  for (let i = 0; i < 3000; i++) {
    const b = r.bytes(1 + r.int(40));
    try {
      cborDecode(b);
    } catch (e) {
      assert.ok(e instanceof DecodeError, `${toHex(b)}: ${(e as Error).message}`);
    }
  }
});
function nest(n: number): CborValue {
  return n === 0 ? 1 : [nest(n - 1)];
}

test('frames: round trip on every channel, binary payloads and control maps', () => {
  const got: [number, unknown][] = [];
  const d = new FrameDecoder((ch, p) => got.push([ch, norm(p)]));
  const sent: [number, CborValue][] = [
    [CHANNEL.CONTROL, { cmd: 'status' }],
    [CHANNEL.KM, new Uint8Array([1, 1, 0x10, 0xc0, 0xdb, 0])],
    [CHANNEL.KDC, new Uint8Array(1500).fill(0xc0)],
    [CHANNEL.SIGNALING, new Uint8Array([0xdb, 0xdc, 0xdd])],
    [CHANNEL.LOG, { ev: 'boot', t: 12345 }],
  ];
  for (const [ch, p] of sent) d.feed(encodeFrame(ch, p));
  assert.deepEqual(got, sent.map(([ch, p]) => [ch, norm(p)]));
  assert.equal(d.stats.frames, sent.length);
  // The frame bytes are SLIP(CBOR || CRC16-BE): check against cbor-x and the reference CRC.
  const f = encodeFrame(1, new Uint8Array([1, 2, 3]));
  const inner: number[] = [];
  new SlipDecoder((x) => inner.push(...x)).feed(f);
  const body = Uint8Array.from(inner.slice(0, -2));
  assert.deepEqual(norm(cx.decode(Buffer.from(body))), [1, [1, 2, 3]]);
  const c = crcRef(body);
  assert.deepEqual(inner.slice(-2), [c >> 8, c & 0xff]);
  assert.throws(() => encodeFrame(1, new Uint8Array(3000)));
  assert.throws(() => encodeFrame(-1, null));
});

test('frames: datagrams at every CBOR length form (direct, 1-byte, 2-byte) round-trip byte for byte', () => {
  // The board's encoder against cborEncode + CRC + SLIP, and the decoder handing the
  // bytes back, across the length forms and up to the largest frame.
  for (const n of [0, 1, 23, 24, 255, 256, 700, 2040]) {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = (i * 37 + 0xc0) & 0xff;
    for (const ch of [CHANNEL.KM, CHANNEL.KDC, CHANNEL.SIGNALING, 15]) {
      const body = cborEncode([ch, data]);
      const c = crcRef(body);
      const generic = slipEncode(Uint8Array.from([...body, c >> 8, c & 0xff]));
      if (body.length + 2 > 2048) {
        assert.throws(() => encodeFrame(ch, data), /larger than/);
        continue;
      }
      assert.equal(toHex(encodeFrame(ch, data)), toHex(generic), `channel ${ch}, ${n} bytes`);
      const got: [number, CborValue][] = [];
      const d = new FrameDecoder((c2, p) => got.push([c2, p]));
      d.feed(generic);
      assert.equal(got.length, 1);
      assert.equal(got[0][0], ch);
      assert.ok(got[0][1] instanceof Uint8Array);
      assert.equal(toHex(got[0][1] as Uint8Array), toHex(data));
    }
  }
  // A channel beyond CHANNEL_MAX, or trailing bytes after the byte string: refused (badCbor).
  const d = new FrameDecoder(() => assert.fail('delivered'));
  for (const body of [Uint8Array.from([0x82, 16, 0x41, 7]), Uint8Array.from([0x82, 1, 0x41, 7, 0])]) {
    const c = crcRef(body);
    d.feed(slipEncode(Uint8Array.from([...body, c >> 8, c & 0xff])));
  }
  assert.equal(d.stats.badCbor, 2);
});

test('frames: garbage and flipped bits between frames are dropped, counted, and the stream resyncs', () => {
  const got: [number, unknown][] = [];
  const d = new FrameDecoder((ch, p) => got.push([ch, norm(p)]), 256);
  const good = (i: number) => encodeFrame(1, new Uint8Array([i, i + 1, i + 2]));
  const r = new Prng(5);
  let expected = 0;
  let flipped = 0;
  for (let i = 0; i < 60; i++) {
    d.feed(good(i));
    expected++;
    // line noise that contains no END byte
    const noise = r.bytes(1 + r.int(30)).map((x) => (x === SLIP_END ? 1 : x));
    d.feed(noise);
    // a frame with one flipped bit somewhere in its body (never in the END bytes)
    const bad = good(100 + i);
    const pos = 1 + r.int(bad.length - 2);
    bad[pos] ^= 1 << r.int(8);
    if (bad[pos] === SLIP_END) bad[pos] ^= 0x80; // keep framing; the corruption must still be caught
    d.feed(bad);
    flipped++;
  }
  d.feed(new Uint8Array(1000).fill(0x41)); // oversized run
  d.feed(new Uint8Array([SLIP_END]));
  // a frame whose CRC is right but whose CBOR is not [channel, payload]
  const body = cborEncode({ not: 'a frame' });
  const c = crc16(body);
  d.feed(slipEncode(Uint8Array.from([...body, c >> 8, c & 0xff])));
  d.feed(slipEncode(new Uint8Array([1])));
  d.feed(good(250));
  expected++;
  assert.equal(got.length, expected);
  assert.deepEqual(got[got.length - 1], [1, [250, 251, 252]]);
  const s = d.stats;
  assert.equal(s.frames, expected);
  // Every corrupted frame was dropped somewhere (CRC, escape or CBOR), none delivered.
  assert.ok(s.badCrc + s.badEscape + s.badCbor >= flipped, JSON.stringify(s));
  assert.ok(s.badCrc > 0);
  assert.ok(s.oversized >= 1);
  assert.ok(s.badCbor >= 1);
  assert.ok(s.runt >= 1);
});

test('frames: handed on once their chunk is read, when the SLIP buffer is no longer held (the board can reclaim it)', () => {
  const got: [number, CborValue, unknown][] = [];
  const dec = new FrameDecoder((ch, payload) => {
    // The chunk is read to its end before any frame is handed on: the SLIP decoder's
    // calls (whose locals hold the receive buffer on the interpreter) have returned.
    got.push([ch, payload, dec.stats.frames]);
  });
  const a = encodeFrame(CHANNEL.KDC, new Uint8Array(600).fill(7));
  const b = encodeFrame(CHANNEL.KM, new Uint8Array([1, 2, 3]));
  const tail = encodeFrame(CHANNEL.KM, new Uint8Array([9]));
  const chunk = new Uint8Array(a.length + b.length);
  chunk.set(a, 0);
  chunk.set(b, a.length);
  dec.feed(chunk);
  assert.deepEqual(got.map((g) => g[0]), [CHANNEL.KDC, CHANNEL.KM], 'both frames of the chunk, in order');
  assert.deepEqual(got.map((g) => g[2]), [2, 2], 'both frames decoded before the first is handed on');
  assert.equal((got[0][1] as Uint8Array).length, 600);
  dec.feed(tail.subarray(0, 3));
  assert.equal(got.length, 2, 'half a frame: nothing yet');
  dec.feed(tail.subarray(3));
  assert.equal(got.length, 3, 'the frame split across chunks arrives with its end');
  assert.deepEqual(Array.from(got[2][1] as Uint8Array), [9]);
});
