// A small, strict DER reader/writer for the Kerberos (RFC 4120) subset of ASN.1.
// Written inside the Espruino subset (see ESPRUINO.md): it runs on the board and
// in the host tools.
//
// Reader: definite lengths only (indefinite and non-minimal lengths are rejected),
// low tag numbers only (0..30), every length checked against the bytes that
// remain BEFORE anything is read or allocated, input capped at MAX_INPUT bytes,
// nesting capped at MAX_DEPTH, SEQUENCE OF capped at MAX_ITEMS. Every failure is
// a DecodeError('<field>: <what was wrong>').
//
// Writer: bottom-up; each helper returns the complete TLV as a Uint8Array.
// Encoders throw a plain Error for values they cannot represent (a programming
// error, not bad input).

import { DecodeError } from './errors.ts';

export const MAX_INPUT = 65535;
export const MAX_DEPTH = 16;
export const MAX_ITEMS = 64;

// Identifier octets used by Kerberos.
export const T_INTEGER = 0x02;
export const T_BIT_STRING = 0x03;
export const T_OCTET_STRING = 0x04;
export const T_GENERAL_STRING = 0x1b;
export const T_GENERALIZED_TIME = 0x18;
export const T_SEQUENCE = 0x30;
/** [n] EXPLICIT, context class, constructed. */
export function ctxTag(n: number): number {
  return 0xa0 | n;
}
/** [APPLICATION n], constructed. */
export function appTag(n: number): number {
  return 0x60 | n;
}

function hex2(v: number): string {
  return (v < 16 ? '0x0' : '0x') + v.toString(16);
}

// ---------------------------------------------------------------- reader

export class DerReader {
  b: Uint8Array;
  p: number;
  e: number;
  d: number;

  constructor(b: Uint8Array, start: number, end: number, depth: number) {
    this.b = b;
    this.p = start;
    this.e = end;
    this.d = depth;
  }

  /** A reader over a whole message; rejects non-Uint8Array, empty and oversized input. */
  static wrap(bytes: Uint8Array, what: string): DerReader {
    if (!(bytes instanceof Uint8Array)) throw new DecodeError(what + ': input is not a Uint8Array');
    if (bytes.length === 0) throw new DecodeError(what + ': empty input');
    if (bytes.length > MAX_INPUT) throw new DecodeError(what + ': input of ' + bytes.length + ' bytes exceeds ' + MAX_INPUT);
    return new DerReader(bytes, 0, bytes.length, 0);
  }

  /** True while unread bytes remain. */
  more(): boolean {
    return this.p < this.e;
  }

  /** The next identifier octet, or -1 at the end. */
  peek(): number {
    return this.p < this.e ? this.b[this.p] : -1;
  }

  /** True if the next element is [n] EXPLICIT (an optional field is present). */
  has(n: number): boolean {
    return this.p < this.e && this.b[this.p] === (0xa0 | n);
  }

  /** Throws unless every byte has been consumed. */
  end(what: string): void {
    if (this.p !== this.e) throw new DecodeError(what + ': ' + (this.e - this.p) + ' unexpected trailing bytes');
  }

  /**
   * Reads an identifier octet (must equal tag, or any tag when tag < 0) and a
   * length; leaves p at the first content byte and returns the content length.
   */
  hdr(tag: number, what: string): number {
    const b = this.b;
    const e = this.e;
    let p = this.p;
    if (p >= e) throw new DecodeError(what + ': missing (end of data)');
    const t = b[p];
    if ((t & 0x1f) === 0x1f) throw new DecodeError(what + ': high-tag-number form not supported');
    if (tag >= 0 && t !== tag) throw new DecodeError(what + ': expected tag ' + hex2(tag) + ', got ' + hex2(t));
    p++;
    if (p >= e) throw new DecodeError(what + ': truncated (no length)');
    let len = b[p++];
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) throw new DecodeError(what + ': indefinite length not allowed');
      if (n > 2) throw new DecodeError(what + ': length field of ' + n + ' bytes too long');
      if (n > e - p) throw new DecodeError(what + ': truncated length');
      if (b[p] === 0) throw new DecodeError(what + ': non-minimal length');
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[p++];
      if (len < 0x80) throw new DecodeError(what + ': non-minimal length');
    }
    if (len > e - p) throw new DecodeError(what + ': length ' + len + ' exceeds the ' + (e - p) + ' bytes left');
    this.p = p;
    return len;
  }

  /** Enters a constructed element with the given identifier; returns a reader over its content. */
  enter(tag: number, what: string): DerReader {
    if ((tag & 0x20) === 0) throw new DecodeError(what + ': not a constructed tag');
    if (this.d + 1 > MAX_DEPTH) throw new DecodeError(what + ': nesting deeper than ' + MAX_DEPTH);
    const len = this.hdr(tag, what);
    const r = new DerReader(this.b, this.p, this.p + len, this.d + 1);
    this.p += len;
    return r;
  }

  /** Enters [n] EXPLICIT. */
  ctx(n: number, what: string): DerReader {
    return this.enter(0xa0 | n, what);
  }

  /** Enters a SEQUENCE. */
  seq(what: string): DerReader {
    return this.enter(T_SEQUENCE, what);
  }

  /** Returns a copy of the complete next element (identifier, length and content) and skips it. */
  raw(tag: number, what: string): Uint8Array {
    const start = this.p;
    const len = this.hdr(tag, what);
    const stop = this.p + len;
    this.p = stop;
    return this.b.slice(start, stop);
  }

  /** Skips the next element, whatever its tag. */
  skip(what: string): void {
    const len = this.hdr(-1, what);
    this.p += len;
  }

  /** INTEGER within [min, max] (both within the safe range the reader can build: 5 content bytes). */
  int(what: string, min: number, max: number): number {
    const len = this.hdr(T_INTEGER, what);
    const b = this.b;
    const p = this.p;
    if (len === 0) throw new DecodeError(what + ': empty INTEGER');
    if (len > 5) throw new DecodeError(what + ': INTEGER of ' + len + ' bytes out of range');
    if (len > 1 && ((b[p] === 0 && b[p + 1] < 0x80) || (b[p] === 0xff && b[p + 1] >= 0x80))) {
      throw new DecodeError(what + ': non-minimal INTEGER');
    }
    let v = b[p] >= 0x80 ? b[p] - 256 : b[p];
    for (let i = 1; i < len; i++) v = v * 256 + b[p + i];
    this.p = p + len;
    if (v < min || v > max) throw new DecodeError(what + ': INTEGER ' + v + ' out of range');
    return v;
  }

  /** Int32. */
  int32(what: string): number {
    return this.int(what, -2147483648, 2147483647);
  }

  /**
   * UInt32. Negative Int32 encodings are accepted and mapped to their unsigned
   * value (RFC 4120 5.2.4 notes implementations that send nonces and sequence
   * numbers as signed); we always encode unsigned.
   */
  uint32(what: string): number {
    return this.int(what, -2147483648, 4294967295) >>> 0;
  }

  /** Microseconds (0..999999). */
  usec(what: string): number {
    return this.int(what, 0, 999999);
  }

  /** INTEGER that must equal v (pvno, msg-type). */
  intEq(v: number, what: string): void {
    const x = this.int(what, -2147483648, 4294967295);
    if (x !== v) throw new DecodeError(what + ': expected ' + v + ', got ' + x);
  }

  /** OCTET STRING (returns a copy). */
  octets(what: string): Uint8Array {
    const len = this.hdr(T_OCTET_STRING, what);
    const s = this.p;
    this.p = s + len;
    return this.b.slice(s, s + len);
  }

  /**
   * GeneralString / KerberosString: returned as a binary string, one char per
   * byte (ASCII for everything we send). NUL bytes are rejected.
   */
  str(what: string): string {
    const len = this.hdr(T_GENERAL_STRING, what);
    const b = this.b;
    const p = this.p;
    let s = '';
    for (let i = 0; i < len; i++) {
      const c = b[p + i];
      if (c === 0) throw new DecodeError(what + ': NUL byte in string');
      s += String.fromCharCode(c);
    }
    this.p = p + len;
    return s;
  }

  /** GeneralizedTime "YYYYMMDDHHMMSSZ" -> milliseconds since the epoch. */
  time(what: string): number {
    const len = this.hdr(T_GENERALIZED_TIME, what);
    if (len !== 15) throw new DecodeError(what + ': KerberosTime must be 15 bytes, got ' + len);
    const ms = parseKerberosTimeBytes(this.b, this.p);
    if (ms !== ms) throw new DecodeError(what + ': malformed KerberosTime');
    this.p += 15;
    return ms;
  }

  /** BIT STRING of at most 32 bits (KerberosFlags), bit 0 = 0x80000000; returned unsigned. */
  flags(what: string): number {
    const len = this.hdr(T_BIT_STRING, what);
    const b = this.b;
    const p = this.p;
    if (len === 0) throw new DecodeError(what + ': empty BIT STRING');
    const unused = b[p];
    if (unused > 7) throw new DecodeError(what + ': bad unused-bits count');
    if (len === 1 && unused !== 0) throw new DecodeError(what + ': bad unused-bits count');
    if (len > 5) throw new DecodeError(what + ': more than 32 flag bits');
    if (len > 1 && (b[p + len - 1] & ((1 << unused) - 1)) !== 0) throw new DecodeError(what + ': unused bits not zero');
    let v = 0;
    for (let i = 1; i <= 4; i++) v = v * 256 + (i < len ? b[p + i] : 0);
    this.p = p + len;
    return v;
  }

  // [n] EXPLICIT wrappers around one primitive: enter, read, check nothing trails.
  ctxInt32(n: number, what: string): number {
    const r = this.ctx(n, what);
    const v = r.int32(what);
    r.end(what);
    return v;
  }
  ctxUInt32(n: number, what: string): number {
    const r = this.ctx(n, what);
    const v = r.uint32(what);
    r.end(what);
    return v;
  }
  ctxUsec(n: number, what: string): number {
    const r = this.ctx(n, what);
    const v = r.usec(what);
    r.end(what);
    return v;
  }
  ctxIntEq(n: number, v: number, what: string): void {
    const r = this.ctx(n, what);
    r.intEq(v, what);
    r.end(what);
  }
  ctxOctets(n: number, what: string): Uint8Array {
    const r = this.ctx(n, what);
    const v = r.octets(what);
    r.end(what);
    return v;
  }
  ctxStr(n: number, what: string): string {
    const r = this.ctx(n, what);
    const v = r.str(what);
    r.end(what);
    return v;
  }
  ctxTime(n: number, what: string): number {
    const r = this.ctx(n, what);
    const v = r.time(what);
    r.end(what);
    return v;
  }
  ctxFlags(n: number, what: string): number {
    const r = this.ctx(n, what);
    const v = r.flags(what);
    r.end(what);
    return v;
  }
}

/** Throws if a SEQUENCE OF has reached MAX_ITEMS elements. */
export function checkCount(n: number, what: string): void {
  if (n >= MAX_ITEMS) throw new DecodeError(what + ': more than ' + MAX_ITEMS + ' elements');
}

/**
 * Runs a decoder over a whole message: every byte must be consumed, and any
 * non-DecodeError failure (a bug) is reported as a DecodeError tagged "internal".
 */
export function decodeAll<T>(bytes: Uint8Array, what: string, fn: (r: DerReader) => T): T {
  const r = DerReader.wrap(bytes, what);
  let v: T;
  try {
    v = fn(r);
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError(what + ': internal error: ' + (e && (e as Error).message));
  }
  r.end(what);
  return v;
}

// ---------------------------------------------------------------- time

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
export function daysFromCivil(y: number, m: number, d: number): number {
  if (m <= 2) y -= 1;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** Inverse of daysFromCivil: [year, month 1-12, day 1-31]. */
export function civilFromDays(z: number): number[] {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}
const MDAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
/** Days in month m (1-12) of year y. */
export function daysInMonth(y: number, m: number): number {
  return m === 2 && isLeap(y) ? 29 : MDAYS[m - 1];
}

function digits(b: Uint8Array, o: number, n: number): number {
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = b[o + i] - 48;
    if (c < 0 || c > 9) return NaN;
    v = v * 10 + c;
  }
  return v;
}

/** Parses 15 bytes "YYYYMMDDHHMMSSZ" at b[o]; NaN if malformed or not a real date/time. */
export function parseKerberosTimeBytes(b: Uint8Array, o: number): number {
  if (b[o + 14] !== 0x5a) return NaN;
  const y = digits(b, o, 4);
  const mo = digits(b, o + 4, 2);
  const d = digits(b, o + 6, 2);
  const h = digits(b, o + 8, 2);
  const mi = digits(b, o + 10, 2);
  const s = digits(b, o + 12, 2);
  // NaN compares false everywhere, so each test is written to fail on NaN.
  if (!(mo >= 1 && mo <= 12)) return NaN;
  if (!(d >= 1 && d <= daysInMonth(y, mo))) return NaN;
  if (!(h <= 23 && mi <= 59 && s <= 59)) return NaN;
  return ((daysFromCivil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + s * 1000;
}

/** "YYYYMMDDHHMMSSZ" -> ms since the epoch; NaN if malformed. */
export function parseKerberosTime(s: string): number {
  if (s.length !== 15) return NaN;
  const b = new Uint8Array(15);
  for (let i = 0; i < 15; i++) b[i] = s.charCodeAt(i) & 0xff;
  return parseKerberosTimeBytes(b, 0);
}

function pad(v: number, n: number): string {
  let s = '' + v;
  while (s.length < n) s = '0' + s;
  return s;
}

/** Milliseconds since the epoch -> "YYYYMMDDHHMMSSZ" (sub-second part dropped). Years 0..9999. */
export function formatKerberosTime(ms: number): string {
  if (typeof ms !== 'number' || ms !== ms) throw new Error('KerberosTime: not a number');
  const secs = Math.floor(ms / 1000);
  const days = Math.floor(secs / 86400);
  let rem = secs - days * 86400;
  const ymd = civilFromDays(days);
  if (ymd[0] < 0 || ymd[0] > 9999) throw new Error('KerberosTime: year ' + ymd[0] + ' out of range');
  const h = Math.floor(rem / 3600);
  rem -= h * 3600;
  const mi = Math.floor(rem / 60);
  return pad(ymd[0], 4) + pad(ymd[1], 2) + pad(ymd[2], 2) + pad(h, 2) + pad(mi, 2) + pad(rem - mi * 60, 2) + 'Z';
}

// ---------------------------------------------------------------- writer

function lenSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : 4;
}
function putHdr(out: Uint8Array, tag: number, n: number): number {
  out[0] = tag;
  if (n < 0x80) {
    out[1] = n;
    return 2;
  }
  const k = lenSize(n) - 1;
  out[1] = 0x80 | k;
  for (let i = k; i >= 1; i--) {
    out[1 + i] = n & 0xff;
    n = n >>> 8;
  }
  return 2 + k;
}

/** identifier + length + content. */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  const n = content.length;
  if (n > 0xffffff) throw new Error('DER: element too long');
  const out = new Uint8Array(1 + lenSize(n) + n);
  out.set(content, putHdr(out, tag, n));
  return out;
}

/** identifier + length + the concatenation of parts; null/undefined parts (absent OPTIONAL fields) are skipped. */
export function tlvParts(tag: number, parts: (Uint8Array | null | undefined)[]): Uint8Array {
  let n = 0;
  for (let i = 0; i < parts.length; i++) if (parts[i]) n += (parts[i] as Uint8Array).length;
  if (n > 0xffffff) throw new Error('DER: element too long');
  const out = new Uint8Array(1 + lenSize(n) + n);
  let o = putHdr(out, tag, n);
  for (let i = 0; i < parts.length; i++) {
    const x = parts[i];
    if (x) {
      out.set(x, o);
      o += x.length;
    }
  }
  return out;
}

/** SEQUENCE / SEQUENCE OF. */
export function encSeq(parts: (Uint8Array | null | undefined)[]): Uint8Array {
  return tlvParts(T_SEQUENCE, parts);
}
/** [n] EXPLICIT inner. */
export function encCtx(n: number, inner: Uint8Array): Uint8Array {
  return tlv(0xa0 | n, inner);
}
/** [APPLICATION n] inner. */
export function encApp(n: number, inner: Uint8Array): Uint8Array {
  return tlv(0x60 | n, inner);
}

/** INTEGER; v must be an integer in [-2^31, 2^32-1]. */
export function encInt(v: number): Uint8Array {
  if (typeof v !== 'number' || Math.floor(v) !== v || v < -2147483648 || v > 4294967295) {
    throw new Error('DER: INTEGER ' + v + ' out of range');
  }
  const t = new Uint8Array(5);
  let x = v < 0 ? v + 1099511627776 : v;
  for (let i = 4; i >= 0; i--) {
    t[i] = x % 256;
    x = Math.floor(x / 256);
  }
  let s = 0;
  while (s < 4 && ((t[s] === 0 && t[s + 1] < 0x80) || (t[s] === 0xff && t[s + 1] >= 0x80))) s++;
  return tlv(T_INTEGER, t.subarray(s));
}

/** OCTET STRING. */
export function encOctets(b: Uint8Array): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new Error('DER: OCTET STRING needs a Uint8Array');
  return tlv(T_OCTET_STRING, b);
}

/** GeneralString (KerberosString): one byte per char; chars must be 1..255. */
export function encStr(s: string): Uint8Array {
  if (typeof s !== 'string') throw new Error('DER: KerberosString needs a string');
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0 || c > 255) throw new Error('DER: KerberosString char code ' + c + ' not allowed');
    b[i] = c;
  }
  return tlv(T_GENERAL_STRING, b);
}

/** GeneralizedTime "YYYYMMDDHHMMSSZ" from ms since the epoch (sub-second part dropped). */
export function encTime(ms: number): Uint8Array {
  const s = formatKerberosTime(ms);
  const b = new Uint8Array(15);
  for (let i = 0; i < 15; i++) b[i] = s.charCodeAt(i);
  return tlv(T_GENERALIZED_TIME, b);
}

/** KerberosFlags: BIT STRING of exactly 32 bits (as MIT and RFC 4120 send), bit 0 = 0x80000000. */
export function encFlags(v: number): Uint8Array {
  if (typeof v !== 'number' || Math.floor(v) !== v || v < -2147483648 || v > 4294967295) {
    throw new Error('DER: flags ' + v + ' out of range');
  }
  v = v >>> 0;
  const b = new Uint8Array(5);
  b[1] = v >>> 24;
  b[2] = (v >>> 16) & 0xff;
  b[3] = (v >>> 8) & 0xff;
  b[4] = v & 0xff;
  return tlv(T_BIT_STRING, b);
}

/** Bit i of a KerberosFlags value as a mask (bit 0 is the most significant). */
export function flagBit(i: number): number {
  return 0x80000000 >>> i;
}
