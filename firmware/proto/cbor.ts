// A minimal CBOR (RFC 8949) codec for what the firmware exchanges with the host
// over the serial link. Written inside the Espruino subset.
//
// Supported: unsigned/negative integers (magnitude up to 2^53), byte strings
// (-> Uint8Array), UTF-8 text strings, arrays, maps (text or integer keys ->
// plain objects, integer keys become their decimal string), true/false/null/
// undefined, and floats (half/single/double on decode; non-integers and
// integers beyond 32 bits are encoded as doubles, which is what cbor-x does,
// so the host never sees a BigInt). Definite lengths only; no tags.
//
// Compatible with cbor-x's `new Encoder({tagUint8Array: false, useRecords:
// false, mapsAsObjects: true})` in both directions (cbor-x writes
// non-minimal length headers such as map16 for small maps; they are accepted).
// Every decode error is a DecodeError; depth, item counts and sizes are bounded.

import { DecodeError } from './errors.ts';
import { fromUtf8 } from './bytes.ts';

export type CborValue =
  | number
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | CborValue[]
  | { [key: string]: CborValue };

/** Deepest nesting of arrays/maps accepted by the decoder (and the encoder). */
export const CBOR_MAX_DEPTH = 8;
/** Largest input accepted by cborDecode. */
export const CBOR_MAX_INPUT = 65536;

const TWO32 = 4294967296;
const MAX_SAFE = 9007199254740991;

// ---------------------------------------------------------------- encoding

class Out {
  buf: Uint8Array;
  len: number;
  constructor() {
    this.buf = new Uint8Array(64);
    this.len = 0;
  }
  need(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.buf.subarray(0, this.len), 0);
    this.buf = nb;
  }
  byte(b: number): void {
    this.need(1);
    this.buf[this.len++] = b;
  }
  bytes(b: Uint8Array): void {
    this.need(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  head(major: number, v: number): void {
    const m = major << 5;
    if (v < 24) this.byte(m | v);
    else if (v < 0x100) {
      this.byte(m | 24);
      this.byte(v);
    } else if (v < 0x10000) {
      this.byte(m | 25);
      this.byte(v >> 8);
      this.byte(v & 0xff);
    } else {
      this.byte(m | 26);
      this.byte((v >>> 24) & 0xff);
      this.byte((v >>> 16) & 0xff);
      this.byte((v >>> 8) & 0xff);
      this.byte(v & 0xff);
    }
  }
  f64(v: number): void {
    this.need(9);
    this.buf[this.len++] = 0xfb;
    new DataView(this.buf.buffer, this.buf.byteOffset + this.len, 8).setFloat64(0, v, false);
    this.len += 8;
  }
}

function enc(o: Out, v: CborValue, depth: number): void {
  if (v === null) o.byte(0xf6);
  else if (v === undefined) o.byte(0xf7);
  else if (v === true) o.byte(0xf5);
  else if (v === false) o.byte(0xf4);
  else if (typeof v === 'number') {
    if (Math.floor(v) === v && v >= 0 && v < TWO32) o.head(0, v);
    else if (Math.floor(v) === v && v < 0 && v >= -TWO32) o.head(1, -1 - v);
    else o.f64(v);
  } else if (typeof v === 'string') {
    const b = fromUtf8(v);
    o.head(3, b.length);
    o.bytes(b);
  } else if (v instanceof Uint8Array) {
    o.head(2, v.length);
    o.bytes(v);
  } else if (Array.isArray(v)) {
    if (depth >= CBOR_MAX_DEPTH) throw new DecodeError('cbor: nesting too deep to encode');
    o.head(4, v.length);
    for (let i = 0; i < v.length; i++) enc(o, v[i], depth + 1);
  } else if (typeof v === 'object') {
    if (depth >= CBOR_MAX_DEPTH) throw new DecodeError('cbor: nesting too deep to encode');
    const keys = Object.keys(v);
    o.head(5, keys.length);
    for (let i = 0; i < keys.length; i++) {
      const kb = fromUtf8(keys[i]);
      o.head(3, kb.length);
      o.bytes(kb);
      enc(o, (v as { [key: string]: CborValue })[keys[i]], depth + 1);
    }
  } else throw new DecodeError('cbor: cannot encode a ' + typeof v);
}

/** Encode a value (see the supported subset above). */
export function cborEncode(v: CborValue): Uint8Array {
  const o = new Out();
  enc(o, v, 0);
  return o.buf.slice(0, o.len);
}

// ---------------------------------------------------------------- decoding

class In {
  b: Uint8Array;
  p: number;
  constructor(b: Uint8Array) {
    this.b = b;
    this.p = 0;
  }
}

function u8(s: In): number {
  if (s.p >= s.b.length) throw new DecodeError('cbor: truncated');
  return s.b[s.p++];
}

/** Reads the argument of an initial byte; returns a number <= 2^53-1. */
function arg(s: In, info: number): number {
  if (info < 24) return info;
  if (info === 24) return u8(s);
  if (info === 25) {
    if (s.p + 2 > s.b.length) throw new DecodeError('cbor: truncated');
    const v = (s.b[s.p] << 8) | s.b[s.p + 1];
    s.p += 2;
    return v;
  }
  if (info === 26) {
    if (s.p + 4 > s.b.length) throw new DecodeError('cbor: truncated');
    const b = s.b;
    const v = ((b[s.p] << 24) | (b[s.p + 1] << 16) | (b[s.p + 2] << 8) | b[s.p + 3]) >>> 0;
    s.p += 4;
    return v;
  }
  if (info === 27) {
    if (s.p + 8 > s.b.length) throw new DecodeError('cbor: truncated');
    const b = s.b;
    const hi = ((b[s.p] << 24) | (b[s.p + 1] << 16) | (b[s.p + 2] << 8) | b[s.p + 3]) >>> 0;
    const lo = ((b[s.p + 4] << 24) | (b[s.p + 5] << 16) | (b[s.p + 6] << 8) | b[s.p + 7]) >>> 0;
    if (hi > 0x1fffff) throw new DecodeError('cbor: integer beyond 2^53');
    s.p += 8;
    return hi * TWO32 + lo;
  }
  if (info === 31) throw new DecodeError('cbor: indefinite length not supported');
  throw new DecodeError('cbor: reserved additional info ' + info);
}

function take(s: In, n: number): Uint8Array {
  if (n > s.b.length - s.p) throw new DecodeError('cbor: string runs past the end');
  const out = s.b.slice(s.p, s.p + n);
  s.p += n;
  return out;
}

/** Strict UTF-8 decode (no overlongs, no surrogates, <= U+10FFFF). */
export function utf8Decode(b: Uint8Array): string {
  let s = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i++];
    if (c < 0x80) {
      s += String.fromCharCode(c);
      continue;
    }
    let n = 0;
    let cp = 0;
    let min = 0;
    if (c >= 0xc2 && c < 0xe0) {
      n = 1;
      cp = c & 0x1f;
      min = 0x80;
    } else if (c >= 0xe0 && c < 0xf0) {
      n = 2;
      cp = c & 0x0f;
      min = 0x800;
    } else if (c >= 0xf0 && c < 0xf5) {
      n = 3;
      cp = c & 0x07;
      min = 0x10000;
    } else throw new DecodeError('cbor: invalid UTF-8 lead byte');
    if (i + n > b.length) throw new DecodeError('cbor: truncated UTF-8 sequence');
    for (let k = 0; k < n; k++) {
      const d = b[i++];
      if ((d & 0xc0) !== 0x80) throw new DecodeError('cbor: invalid UTF-8 continuation');
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) throw new DecodeError('cbor: invalid UTF-8 code point');
    if (cp >= 0x10000) {
      cp -= 0x10000;
      s += String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    } else s += String.fromCharCode(cp);
  }
  return s;
}

function half(h: number): number {
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  let v: number;
  if (e === 0) v = m * Math.pow(2, -24);
  else if (e === 31) v = m === 0 ? Infinity : NaN;
  else v = (m + 1024) * Math.pow(2, e - 25);
  return h & 0x8000 ? -v : v;
}

function dec(s: In, depth: number): CborValue {
  const ib = u8(s);
  const major = ib >> 5;
  const info = ib & 31;
  if (major === 7) {
    if (info === 20) return false;
    if (info === 21) return true;
    if (info === 22) return null;
    if (info === 23) return undefined;
    if (info === 25) {
      if (s.p + 2 > s.b.length) throw new DecodeError('cbor: truncated');
      const h = (s.b[s.p] << 8) | s.b[s.p + 1];
      s.p += 2;
      return half(h);
    }
    if (info === 26 || info === 27) {
      const n = info === 26 ? 4 : 8;
      if (s.p + n > s.b.length) throw new DecodeError('cbor: truncated');
      const dv = new DataView(s.b.buffer, s.b.byteOffset + s.p, n);
      s.p += n;
      return n === 4 ? dv.getFloat32(0, false) : dv.getFloat64(0, false);
    }
    throw new DecodeError('cbor: unsupported simple value ' + info);
  }
  const v = arg(s, info);
  if (major === 0) return v;
  if (major === 1) {
    if (v >= MAX_SAFE) throw new DecodeError('cbor: negative integer beyond -2^53');
    return -1 - v;
  }
  if (major === 2) return take(s, v);
  if (major === 3) return utf8Decode(take(s, v));
  if (major === 6) throw new DecodeError('cbor: tags not supported');
  if (depth >= CBOR_MAX_DEPTH) throw new DecodeError('cbor: nesting too deep');
  // Every item takes at least one byte: a count beyond what is left is a lie.
  if (major === 4) {
    if (v > s.b.length - s.p) throw new DecodeError('cbor: array count exceeds input');
    const a: CborValue[] = [];
    for (let i = 0; i < v; i++) a.push(dec(s, depth + 1));
    return a;
  }
  // major 5: map
  if (v * 2 > s.b.length - s.p) throw new DecodeError('cbor: map count exceeds input');
  const o: { [key: string]: CborValue } = {};
  for (let i = 0; i < v; i++) {
    const k = dec(s, depth + 1);
    let key: string;
    if (typeof k === 'string') key = k;
    else if (typeof k === 'number' && Math.floor(k) === k) key = String(k);
    else throw new DecodeError('cbor: map key must be text or integer');
    if (key === '__proto__') throw new DecodeError('cbor: forbidden map key');
    if (Object.prototype.hasOwnProperty.call(o, key)) throw new DecodeError('cbor: duplicate map key');
    o[key] = dec(s, depth + 1);
  }
  return o;
}

/** Decode exactly one item spanning all of `b` (trailing bytes are an error). */
export function cborDecode(b: Uint8Array): CborValue {
  if (b.length === 0) throw new DecodeError('cbor: empty input');
  if (b.length > CBOR_MAX_INPUT) throw new DecodeError('cbor: input too large');
  const s = new In(b);
  const v = dec(s, 0);
  if (s.p !== b.length) throw new DecodeError('cbor: trailing bytes after item');
  return v;
}
