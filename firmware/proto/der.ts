// A small, strict DER reader/writer for the Kerberos (RFC 4120) subset of ASN.1.
// Written inside the Espruino subset (see ESPRUINO.md): it runs on the board and
// in the host tools.
//
// Primitives are named by one letter ("kinds", shared with krb5.ts's type tables):
//   i Int32          u UInt32 (also v, n: pvno / msg-type)     m Microseconds
//   s KerberosString o OCTET STRING   t KerberosTime   f KerberosFlags
//
// Reader: definite lengths only (indefinite and non-minimal lengths are rejected),
// low tag numbers only (0..30), every length checked against the bytes that
// remain BEFORE anything is read or allocated, input capped at MAX_INPUT bytes,
// nesting capped at MAX_DEPTH, SEQUENCE OF capped at MAX_ITEMS (by the caller:
// checkCount). Every failure is a DecodeError('<field>: <what was wrong>').
//
// Writer: MIT-style, back to front into one growing buffer (wBegin ... wEnd), so a
// whole message costs one allocation and no per-field arrays: write the content
// (last field first), then wHdr(tag, mark) puts identifier and length in front of
// everything written since wMark(). Encoders throw a plain Error for values they
// cannot represent (a programming error, not bad input).

import { DecodeError } from './errors.ts';

import { DER_MAX_INPUT as MAX_INPUT, DER_MAX_DEPTH as MAX_DEPTH, DER_MAX_ITEMS as MAX_ITEMS } from './consts.ts';
export { MAX_INPUT, MAX_DEPTH, MAX_ITEMS };

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

/** The universal tag of a primitive kind. */
function kindTag(k: string): number {
  return k == 's' ? 0x1b : k == 'o' ? 4 : k == 't' ? 0x18 : k == 'f' ? 3 : 2;
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

  /** True if the next identifier octet is tag (an optional field is present). */
  has(tag: number): boolean {
    return this.p < this.e && this.b[this.p] === tag;
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
    const t = b[p++];
    if ((t & 0x1f) === 0x1f) throw new DecodeError(what + ': high-tag-number form not supported');
    if (tag >= 0 && t !== tag) throw new DecodeError(what + ': expected tag ' + hex2(tag) + ', got ' + hex2(t));
    if (p >= e) throw new DecodeError(what + ': truncated (no length)');
    let len = b[p++];
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) throw new DecodeError(what + ': indefinite length not allowed');
      if (n > 2) throw new DecodeError(what + ': length field of ' + n + ' bytes too long');
      if (n > e - p) throw new DecodeError(what + ': truncated length');
      len = n === 1 ? b[p] : b[p] * 256 + b[p + 1];
      if (len < 0x80 || (n === 2 && len < 0x100)) throw new DecodeError(what + ': non-minimal length');
      p += n;
    }
    if (len > e - p) throw new DecodeError(what + ': length ' + len + ' exceeds the ' + (e - p) + ' bytes left');
    this.p = p;
    return len;
  }

  /** Enters a constructed element with the given identifier; returns a reader over its content. */
  enter(tag: number, what: string): DerReader {
    if (this.d >= MAX_DEPTH) throw new DecodeError(what + ': nesting deeper than ' + MAX_DEPTH);
    const len = this.hdr(tag, what);
    const r = new DerReader(this.b, this.p, this.p + len, this.d + 1);
    this.p += len;
    return r;
  }

  /**
   * The next element, a primitive of kind k (see the top of this file). INTEGERs
   * have at most 5 content bytes; 'i' must be an Int32, 'm' 0..999999, the others
   * fit an Int32 or UInt32 and come back unsigned (RFC 4120 5.2.4 notes peers that
   * send nonces and sequence numbers as signed; we always encode unsigned). Strings
   * come back as binary strings (one char per byte, NUL rejected), OCTET STRINGs
   * as copies, times as ms since the epoch, flags as unsigned 32-bit numbers.
   */
  val(k: string, what: string): any {
    const n = this.hdr(kindTag(k), what);
    const b = this.b;
    const p = this.p;
    this.p = p + n;
    if (k == 'o') return b.slice(p, p + n);
    if (k == 's') {
      let s = '';
      for (let i = p; i < p + n; i++) {
        if (!b[i]) throw new DecodeError(what + ': NUL byte in string');
        s += String.fromCharCode(b[i]);
      }
      return s;
    }
    let v = NaN;
    if (k == 't') {
      if (n !== 15) throw new DecodeError(what + ': KerberosTime must be 15 bytes, got ' + n);
      v = parseKerberosTimeBytes(b, p);
      if (v !== v) throw new DecodeError(what + ': malformed KerberosTime');
      return v;
    }
    if (!n) throw new DecodeError(what + ': empty');
    v = b[p];
    if (k == 'f') {
      // BIT STRING of at most 32 bits, bit 0 = 0x80000000.
      if (v > 7 || (n === 1 && v)) throw new DecodeError(what + ': bad unused-bits count');
      if (n > 5) throw new DecodeError(what + ': more than 32 flag bits');
      if (b[p + n - 1] & ((1 << v) - 1)) throw new DecodeError(what + ': unused bits not zero');
      v = 0;
      for (let i = 1; i <= 4; i++) v = v * 256 + (i < n ? b[p + i] : 0);
      return v;
    }
    if (n > 5) throw new DecodeError(what + ': INTEGER of ' + n + ' bytes out of range');
    if (n > 1 && ((v === 0 && b[p + 1] < 0x80) || (v === 0xff && b[p + 1] >= 0x80))) throw new DecodeError(what + ': non-minimal INTEGER');
    if (v >= 0x80) v -= 256;
    for (let i = 1; i < n; i++) v = v * 256 + b[p + i];
    if (v < (k == 'm' ? 0 : -2147483648) || v > (k == 'i' ? 2147483647 : k == 'm' ? 999999 : 4294967295)) {
      throw new DecodeError(what + ': INTEGER ' + v + ' out of range');
    }
    return k == 'i' || k == 'm' ? v : v >>> 0;
  }
}

/** Throws if a SEQUENCE OF has reached MAX_ITEMS elements. */
export function checkCount(n: number, what: string): void {
  if (n >= MAX_ITEMS) throw new DecodeError(what + ': more than ' + MAX_ITEMS + ' elements');
}

/**
 * Size in bytes (identifier, length and content) of the TLV at b[o], which must
 * carry tag, read with DerReader.hdr's checks (pktc finds where a carried Kerberos
 * message ends with it).
 */
export function tlvSize(b: Uint8Array, o: number, tag: number, what: string): number {
  const r = new DerReader(b, o, b.length, 0);
  return r.hdr(tag, what) + r.p - o;
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

/**
 * The one calendar check of the firmware (KerberosTime here, pktc's Rekey timestamp):
 * '' for a real UTC date and time of day, else the field that is wrong ('month',
 * 'day', 'time of day'). Each test is written to fail on NaN.
 */
export function dateFault(y: number, mo: number, d: number, h: number, mi: number, s: number): string {
  if (!(mo >= 1 && mo <= 12)) return 'month';
  if (!(d >= 1 && d <= daysFromCivil(mo > 11 ? y + 1 : y, mo > 11 ? 1 : mo + 1, 1) - daysFromCivil(y, mo, 1))) return 'day';
  if (!(h <= 23 && mi <= 59 && s <= 59)) return 'time of day';
  return '';
}

/** Parses 15 bytes "YYYYMMDDHHMMSSZ" at b[o]; NaN if malformed or not a real date/time. */
export function parseKerberosTimeBytes(b: Uint8Array, o: number): number {
  if (b[o + 14] !== 0x5a) return NaN;
  // The fields YYYY MM DD HH MM SS, read in one loop (no digits function on the board).
  const f: number[] = [];
  for (let i = 0, w = 4; i < 14; i += w, w = 2) {
    let v = 0;
    for (let j = i; j < i + w; j++) {
      const c = b[o + j] - 48;
      if (c < 0 || c > 9) return NaN;
      v = v * 10 + c;
    }
    f.push(v);
  }
  if (dateFault(f[0], f[1], f[2], f[3], f[4], f[5])) return NaN;
  return ((daysFromCivil(f[0], f[1], f[2]) * 24 + f[3]) * 60 + f[4]) * 60000 + f[5] * 1000;
}

/** "YYYYMMDDHHMMSSZ" -> ms since the epoch; NaN if malformed. */
export function parseKerberosTime(s: string): number {
  if (s.length !== 15) return NaN;
  const b = new Uint8Array(15);
  for (let i = 0; i < 15; i++) b[i] = s.charCodeAt(i) & 0xff;
  return parseKerberosTimeBytes(b, 0);
}

/** Milliseconds since the epoch -> "YYYYMMDDHHMMSSZ" (sub-second part dropped). Years 0..9999. */
export function formatKerberosTime(ms: number): string {
  if (typeof ms !== 'number' || ms !== ms) throw new Error('KerberosTime: not a number');
  const secs = Math.floor(ms / 1000);
  const days = Math.floor(secs / 86400);
  const rem = secs - days * 86400;
  const ymd = civilFromDays(days);
  if (ymd[0] < 0 || ymd[0] > 9999) throw new Error('KerberosTime: year ' + ymd[0] + ' out of range');
  // Each field v as exactly as many digits as 100 (10000 for the year) has zeros.
  const f = [ymd[0], ymd[1], ymd[2], Math.floor(rem / 3600), Math.floor(rem / 60) % 60, rem % 60];
  let out = '';
  for (let i = 0; i < 6; i++) out += ('' + ((i ? 100 : 10000) + f[i])).slice(1);
  return out + 'Z';
}

// ---------------------------------------------------------------- writer

// One buffer for the life of the program, grown on demand and kept: on the board,
// a fresh 512-byte buffer per message would take a contiguous (flat) block of
// variables each time, and the interpreter's native crypto needs those for its
// outputs ("Not enough memory for result" once they are used up).
let wb = new Uint8Array(512);
let wp = 0;

/** Starts a message: an empty buffer, written from its end. */
export function wBegin(): void {
  wp = wb.length;
}
/** Ends a message: its bytes (a copy; the buffer is wiped, messages carry keys). */
export function wEnd(): Uint8Array {
  const out = wb.slice(wp);
  wb.fill(0, wp);
  return out;
}
/** Bytes written so far (a mark for wHdr; stays valid when the buffer grows). */
export function wMark(): number {
  return wb.length - wp;
}
/** Makes room for n more bytes in front. */
function room(n: number): void {
  if (wp < n) {
    const used = wb.length - wp;
    const nb = new Uint8Array(wb.length * 2 + n);
    wp = nb.length - used;
    nb.set(wb.subarray(wb.length - used), wp);
    wb = nb;
  }
}
/** Puts bytes in front. */
export function wBytes(b: Uint8Array): void {
  room(b.length);
  wp -= b.length;
  wb.set(b, wp);
}
/** Puts identifier and length in front of everything written since wMark() returned mark. */
export function wHdr(tag: number, mark: number): void {
  let n = wb.length - wp - mark;
  if (n > 0xffffff) throw new Error('DER: element too long');
  room(5);
  if (n < 0x80) wb[--wp] = n;
  else {
    let k = 0x80;
    for (; n; k++) {
      wb[--wp] = n & 0xff;
      n = n >>> 8;
    }
    wb[--wp] = k;
  }
  wb[--wp] = tag;
}

/** Puts a primitive of kind k (see the top of this file) in front. */
export function wPrim(k: string, v: any): void {
  const m = wMark();
  if (k == 'o') {
    if (!(v instanceof Uint8Array)) throw new Error('DER: OCTET STRING needs a Uint8Array');
    wBytes(v);
  } else if (k == 's' || k == 't') {
    // (Written out here: no wChars/isInt functions on the board.)
    if (k == 't') v = formatKerberosTime(v);
    else if (typeof v !== 'string') throw new Error('DER: KerberosString needs a string');
    // Chars 1..255, as bytes.
    room(v.length);
    for (let i = v.length - 1; i >= 0; i--) {
      const c = v.charCodeAt(i);
      if (c === 0 || c > 255) throw new Error('DER: KerberosString char code ' + c + ' not allowed');
      wb[--wp] = c;
    }
  } else if (k == 'f') {
    // KerberosFlags: BIT STRING of exactly 32 bits (as MIT and RFC 4120 send).
    if (!(typeof v === 'number' && Math.floor(v) === v && v >= -2147483648 && v <= 4294967295)) throw new Error('DER: flags ' + v + ' out of range');
    room(5);
    for (let i = 0; i < 4; i++, v = v >>> 8) wb[--wp] = v & 0xff;
    wb[--wp] = 0;
  } else {
    if (k == 'u' && !(v >= 0 && v <= 4294967295)) throw new Error('UInt32 ' + v + ' out of range');
    if (k == 'm' && !(v >= 0 && v <= 999999)) throw new Error('Microseconds ' + v + ' out of range');
    if (!(typeof v === 'number' && Math.floor(v) === v && v >= -2147483648 && v <= 4294967295)) throw new Error('DER: INTEGER ' + v + ' out of range');
    // Minimal two's complement, low byte first.
    room(5);
    let c;
    do {
      c = v & 0xff;
      wb[--wp] = c;
      v = Math.floor(v / 256);
    } while (v !== (c & 0x80 ? -1 : 0));
  }
  wHdr(kindTag(k), m);
}

// Whole-element helpers (host tools and tests; the krb5 codecs use the writer above).

/** identifier + length + the concatenation of parts; null/undefined parts (absent OPTIONAL fields) are skipped. */
export function tlvParts(tag: number, parts: (Uint8Array | null | undefined)[]): Uint8Array {
  wBegin();
  for (let i = parts.length - 1; i >= 0; i--) if (parts[i]) wBytes(parts[i] as Uint8Array);
  wHdr(tag, 0);
  return wEnd();
}
/** identifier + length + content. */
export function tlv(tag: number, content: Uint8Array): Uint8Array {
  return tlvParts(tag, [content]);
}
/** SEQUENCE / SEQUENCE OF. */
export function encSeq(parts: (Uint8Array | null | undefined)[]): Uint8Array {
  return tlvParts(0x30, parts);
}
/** [n] EXPLICIT inner. */
export function encCtx(n: number, inner: Uint8Array): Uint8Array {
  return tlv(0xa0 | n, inner);
}
/** [APPLICATION n] inner. */
export function encApp(n: number, inner: Uint8Array): Uint8Array {
  return tlv(0x60 | n, inner);
}
function prim(k: string, v: any): Uint8Array {
  wBegin();
  wPrim(k, v);
  return wEnd();
}
/** INTEGER; v must be an integer in [-2^31, 2^32-1]. */
export function encInt(v: number): Uint8Array {
  return prim('i', v);
}
/** OCTET STRING. */
export function encOctets(b: Uint8Array): Uint8Array {
  return prim('o', b);
}
/** GeneralString (KerberosString): one byte per char; chars must be 1..255. */
export function encStr(s: string): Uint8Array {
  return prim('s', s);
}
/** GeneralizedTime "YYYYMMDDHHMMSSZ" from ms since the epoch (sub-second part dropped). */
export function encTime(ms: number): Uint8Array {
  return prim('t', ms);
}
/** KerberosFlags: BIT STRING of exactly 32 bits (as MIT and RFC 4120 send), bit 0 = 0x80000000. */
export function encFlags(v: number): Uint8Array {
  return prim('f', v);
}

/** Bit i of a KerberosFlags value as a mask (bit 0 is the most significant). */
export function flagBit(i: number): number {
  return 0x80000000 >>> i;
}
