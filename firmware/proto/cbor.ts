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
//
// A board's image (BOARD_CBOR_FULL false) keeps less: its peers are cbor-x with its
// defaults (non-integers and large integers as doubles, never half or single floats)
// and this encoder, so it decodes doubles only; and its strings are Espruino byte
// strings, so a text item is its bytes, one char each, both ways (UTF-8 passes
// through unchanged; non-ASCII text fails the board's printable-ASCII checks as it
// does on the host). The hand UTF-8 codec and the short floats stay on the host.

import { DecodeError } from './errors.ts';
import { fromAscii, fromUtf8, toAscii } from './bytes.ts';

// Build-time fact (host-tools/build/build.ts boardDefines): false in every board image,
// undefined in host tools (the full codec). Tested as `(typeof BOARD_CBOR_FULL === 'undefined'
// || BOARD_CBOR_FULL)` so that esbuild folds it and drops what a board does not use.
declare const BOARD_CBOR_FULL: boolean;

export type CborValue =
  | number
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | CborValue[]
  | { [key: string]: CborValue };

// CBOR_MAX_DEPTH: deepest nesting of arrays/maps accepted by the decoder (and the
// encoder); CBOR_MAX_INPUT: largest input accepted by cborDecode. In consts.ts (inlined).
import { CBOR_MAX_DEPTH, CBOR_MAX_INPUT, TWO32, MAX_SAFE } from './consts.ts';
export { CBOR_MAX_DEPTH, CBOR_MAX_INPUT };

// Encoder and decoder state lives in module variables, not objects: both are
// synchronous and re-entered only through their own recursion, and `ob[ol]`
// minifies to a few bytes where method names and `s.b[s.p]` did not. Between calls
// the buffers are released (null: no empty array kept for it).

// ---------------------------------------------------------------- encoding

let ob: Uint8Array = null as unknown as Uint8Array;
let ol = 0;

function oNeed(n: number): void {
  if (ol + n <= ob.length) return;
  let cap = ob.length * 2;
  while (cap < ol + n) cap *= 2;
  const nb = new Uint8Array(cap);
  nb.set(ob.subarray(0, ol), 0);
  ob = nb;
}
function oByte(b: number): void {
  oNeed(1);
  ob[ol++] = b;
}
function oBytes(b: Uint8Array): void {
  oNeed(b.length);
  ob.set(b, ol);
  ol += b.length;
}
function oHead(major: number, v: number): void {
  const m = major << 5;
  if (v < 24) oByte(m | v);
  else if (v < 0x100) {
    oByte(m | 24);
    oByte(v);
  } else if (v < 0x10000) {
    oByte(m | 25);
    oByte(v >> 8);
    oByte(v & 0xff);
  } else {
    oByte(m | 26);
    oByte((v >>> 24) & 0xff);
    oByte((v >>> 16) & 0xff);
    oByte((v >>> 8) & 0xff);
    oByte(v & 0xff);
  }
}

function enc(v: CborValue, depth: number): void {
  if (v === null) oByte(0xf6);
  else if (v === undefined) oByte(0xf7);
  else if (v === true) oByte(0xf5);
  else if (v === false) oByte(0xf4);
  else if (typeof v === 'number') {
    if (Math.floor(v) === v && v >= 0 && v < TWO32) oHead(0, v);
    else if (Math.floor(v) === v && v < 0 && v >= -TWO32) oHead(1, -1 - v);
    else {
      oNeed(9);
      ob[ol++] = 0xfb;
      new DataView(ob.buffer, ob.byteOffset + ol, 8).setFloat64(0, v, false);
      ol += 8;
    }
  } else if (typeof v === 'string') {
    const b = typeof BOARD_CBOR_FULL === 'undefined' || BOARD_CBOR_FULL ? fromUtf8(v) : fromAscii(v);
    oHead(3, b.length);
    oBytes(b);
  } else if (v instanceof Uint8Array) {
    oHead(2, v.length);
    oBytes(v);
  } else if (Array.isArray(v)) {
    if (depth >= CBOR_MAX_DEPTH) throw new DecodeError('cbor: nesting too deep to encode');
    oHead(4, v.length);
    for (let i = 0; i < v.length; i++) enc(v[i], depth + 1);
  } else if (typeof v === 'object') {
    if (depth >= CBOR_MAX_DEPTH) throw new DecodeError('cbor: nesting too deep to encode');
    const keys = Object.keys(v);
    oHead(5, keys.length);
    for (let i = 0; i < keys.length; i++) {
      enc(keys[i], depth + 1);
      enc((v as { [key: string]: CborValue })[keys[i]], depth + 1);
    }
  } else throw new DecodeError('cbor: cannot encode a ' + typeof v);
}

/** Encode a value (see the supported subset above). */
export function cborEncode(v: CborValue): Uint8Array {
  ob = new Uint8Array(64);
  ol = 0;
  enc(v, 0);
  const out = ob.slice(0, ol);
  ob = null as unknown as Uint8Array;
  return out;
}

// ---------------------------------------------------------------- decoding

let ib: Uint8Array = null as unknown as Uint8Array;
let ip = 0;

function truncated(n: number): void {
  if (ip + n > ib.length) throw new DecodeError('cbor: truncated');
}

/** Reads the argument of an initial byte; returns a number <= 2^53-1. */
function arg(info: number): number {
  if (info < 24) return info;
  if (info <= 27) {
    // 1, 2, 4 or 8 bytes, big-endian (read here: no be function on the board).
    const n = 1 << (info - 24);
    truncated(n);
    let v = 0;
    for (let i = 0; i < n; i++) {
      if (i === 4 && v > 0x1fffff) throw new DecodeError('cbor: integer beyond 2^53');
      v = v * 256 + ib[ip++];
    }
    return v;
  }
  if (info === 31) throw new DecodeError('cbor: indefinite length not supported');
  throw new DecodeError('cbor: reserved additional info ' + info);
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

// (Single-use helpers -- the first byte, half floats, byte/text strings -- are written
// into dec(): on the interpreter every function costs variables for good.)
function dec(depth: number): CborValue {
  truncated(1);
  const b0 = ib[ip++];
  const major = b0 >> 5;
  const info = b0 & 31;
  if (major === 7) {
    if (info === 20) return false;
    if (info === 21) return true;
    if (info === 22) return null;
    if (info === 23) return undefined;
    if ((typeof BOARD_CBOR_FULL === 'undefined' || BOARD_CBOR_FULL) && info === 25) {
      truncated(2);
      const h = ib[ip] * 256 + ib[ip + 1];
      ip += 2;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const x = e === 0 ? m * Math.pow(2, -24) : e === 31 ? (m === 0 ? Infinity : NaN) : (m + 1024) * Math.pow(2, e - 25);
      return h & 0x8000 ? -x : x;
    }
    if (info === 27 || ((typeof BOARD_CBOR_FULL === 'undefined' || BOARD_CBOR_FULL) && info === 26)) {
      const n = info === 26 ? 4 : 8;
      truncated(n);
      const dv = new DataView(ib.buffer, ib.byteOffset + ip, n);
      ip += n;
      return n === 4 ? dv.getFloat32(0, false) : dv.getFloat64(0, false);
    }
    throw new DecodeError('cbor: unsupported simple value ' + info);
  }
  const v = arg(info);
  if (major === 0) return v;
  if (major === 1) {
    if (v >= MAX_SAFE) throw new DecodeError('cbor: negative integer beyond -2^53');
    return -1 - v;
  }
  if (major === 2 || major === 3) {
    if (v > ib.length - ip) throw new DecodeError('cbor: string runs past the end');
    ip += v;
    const s = ib.slice(ip - v, ip);
    return major === 2 ? s : typeof BOARD_CBOR_FULL === 'undefined' || BOARD_CBOR_FULL ? utf8Decode(s) : toAscii(s);
  }
  if (major === 6) throw new DecodeError('cbor: tags not supported');
  if (depth >= CBOR_MAX_DEPTH) throw new DecodeError('cbor: nesting too deep');
  // Every item takes at least one byte: a count beyond what is left is a lie.
  if (major === 4) {
    if (v > ib.length - ip) throw new DecodeError('cbor: array count exceeds input');
    const a: CborValue[] = [];
    for (let i = 0; i < v; i++) a.push(dec(depth + 1));
    return a;
  }
  // major 5: map
  if (v * 2 > ib.length - ip) throw new DecodeError('cbor: map count exceeds input');
  const o: { [key: string]: CborValue } = {};
  for (let i = 0; i < v; i++) {
    const k = dec(depth + 1);
    let key: string;
    if (typeof k === 'string') key = k;
    else if (typeof k === 'number' && Math.floor(k) === k) key = String(k);
    else throw new DecodeError('cbor: map key must be text or integer');
    if (key === '__proto__') throw new DecodeError('cbor: forbidden map key');
    if (Object.prototype.hasOwnProperty.call(o, key)) throw new DecodeError('cbor: duplicate map key');
    o[key] = dec(depth + 1);
  }
  return o;
}

/** Decode exactly one item spanning all of `b` (trailing bytes are an error). */
export function cborDecode(b: Uint8Array): CborValue {
  if (b.length === 0) throw new DecodeError('cbor: empty input');
  if (b.length > CBOR_MAX_INPUT) throw new DecodeError('cbor: input too large');
  ib = b;
  ip = 0;
  try {
    const v = dec(0);
    if (ip !== b.length) throw new DecodeError('cbor: trailing bytes after item');
    return v;
  } finally {
    ib = null as unknown as Uint8Array;
  }
}
