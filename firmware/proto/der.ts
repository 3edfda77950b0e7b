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

import { DER_MAX_INPUT as MAX_INPUT, DER_MAX_DEPTH as MAX_DEPTH, DER_MAX_ITEMS as MAX_ITEMS, KERBEROS_TIME_END_MS, KERBEROS_TIME_MIN_MS } from './consts.ts';
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
    let v = NaN;
    if (k == 's' || k == 't') {
      let s = '';
      for (let i = p; i < p + n; i++) {
        if (!b[i]) throw new DecodeError(what + ': NUL byte in string');
        s += String.fromCharCode(b[i]);
      }
      if (k == 's') return s;
      if (n !== 15) throw new DecodeError(what + ': KerberosTime must be 15 bytes, got ' + n);
      v = parseKerberosTime(s);
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

// The firmware's one calendar: KerberosTime here, pktc's Rekey timestamp through
// these two. The interpreter's own Date does the arithmetic (Espruino has no
// Date.UTC: a UTC time goes in as an ISO string through Date.parse and comes out
// through toISOString), and a round trip makes it strict: a time is accepted only
// if formatting what Date.parse made of it gives back the very same text. Date.parse
// moves month 13, Feb 30 or hour 24 on to a later real date (Espruino) or refuses
// them (Node); either way they come back different. Espruino boards built with
// ESPR_LIMIT_DATE_RANGE (Pico) throw on years before 1500 (krb5's decodeAll turns
// that into a DecodeError).

/**
 * Milliseconds since the epoch -> "YYYYMMDDHHMMSSZ", years 0..9999, floored to the
 * second (a fraction of a millisecond before 1970 is first cut toward zero, as Date does).
 */
export function formatKerberosTime(ms: number): string {
  if (typeof ms != 'number' || !(ms >= KERBEROS_TIME_MIN_MS && ms < KERBEROS_TIME_END_MS)) throw new Error('KerberosTime ' + ms + ' out of range');
  // "YYYY-MM-DDTHH:MM:SS.sssZ", read from its end: Espruino does not pad years below 1000.
  const d = new Date(ms).toISOString();
  let out = ('000' + d.slice(0, -20)).slice(-4);
  for (let i = -19; i < -5; i += 3) out += d.slice(i, i + 2);
  return out + 'Z';
}

/** "YYYYMMDDHHMMSSZ" -> ms since the epoch; NaN unless exactly that, for a real UTC date and time of day. */
export function parseKerberosTime(s: string): number {
  if (s.length !== 15) return NaN;
  // Digits only (Date.parse sees nothing else), as "YYYY-MM-DDTHH:MM:SSZ"; s's own
  // Z is checked by the round trip.
  let iso = '';
  for (let i = 0; i < 14; i++) {
    const c = s.charCodeAt(i);
    if (!(c >= 48 && c <= 57)) return NaN;
    iso += (i > 3 && !(i & 1) ? '--T::'[i / 2 - 2] : '') + s[i];
  }
  // (Espruino takes year 0000 month 00 to year -1, 9999-12-32 to year 10000: not
  // formatted, refused; NaN, Node's answer to such dates, fails the same test.)
  const ms = Date.parse(iso + 'Z');
  return ms >= KERBEROS_TIME_MIN_MS && ms < KERBEROS_TIME_END_MS && formatKerberosTime(ms) === s ? ms : NaN;
}

/** parseKerberosTime of the 15 bytes at b[o]. */
export function parseKerberosTimeBytes(b: Uint8Array, o: number): number {
  let s = '';
  for (let i = o; i < o + 15; i++) s += String.fromCharCode(b[i]);
  return parseKerberosTime(s);
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
