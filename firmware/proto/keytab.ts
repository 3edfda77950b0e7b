// MIT keytab files (the FILE: keytab format of MIT krb5 and Heimdal).
//
// Written inside the Espruino subset (ESPRUINO.md). Keytabs come from users, so
// the parser is bounded: every length is checked against the bytes that are
// really there before anything is read or allocated, counts are capped, and
// malformed input throws only DecodeError. Key bytes are copied out of the
// input and never printed (no message here contains key material).
//
// Layout (version 0x0502, all integers big-endian):
//   u16 version = 0x0502
//   repeated: i32 size; size > 0: a record of `size` bytes; size < 0: a hole of
//             -size bytes (a deleted entry, skipped); size == 0 or end of file: end
//   record:   u16 count, data realm, count x data component, u32 name_type,
//             u32 timestamp, u8 kvno, u16 enctype, data key,
//             [u32 kvno: present when >= 4 bytes remain; 0 means "use the u8"]
//             then zero fill up to `size` (MIT reuses larger holes)
//   data:     u16 length, bytes
// Version 0x0501 (MIT's first format) stores integers in the writing host's
// byte order, counts the realm in `count` and has no name_type; it is read
// (byte order detected from the first record size), never written.

import { DecodeError } from './errors.ts';
import { fromUtf8 } from './bytes.ts';

export type KeytabPrincipal = { realm: string; components: string[]; nameType: number };
export type KeytabEntry = {
  principal: KeytabPrincipal;
  /** Seconds since 1970 (u32). */
  timestamp: number;
  /** Key version number (the trailing u32 when present and non-zero, else the u8). */
  kvno: number;
  /** Kerberos enctype number (signed 16-bit in the file: 17, 18, 19, 20, ...). */
  etype: number;
  key: Uint8Array;
};

export const KEYTAB_VERSION_1 = 0x0501;
export const KEYTAB_VERSION_2 = 0x0502;
/** Caps: a keytab with more live entries, or a principal with more components, is rejected. */
export const KEYTAB_MAX_ENTRIES = 4096;
export const KEYTAB_MAX_COMPONENTS = 32;
/** Largest key accepted (AES-256 needs 32; leave room for future enctypes). */
export const KEYTAB_MAX_KEY = 512;

/** Common enctype names (MIT spelling), for messages and tests. */
export const ENCTYPE_NAMES: { [etype: number]: string } = {
  17: 'aes128-cts-hmac-sha1-96',
  18: 'aes256-cts-hmac-sha1-96',
  19: 'aes128-cts-hmac-sha256-128',
  20: 'aes256-cts-hmac-sha384-192',
  23: 'arcfour-hmac',
  25: 'camellia128-cts-cmac',
  26: 'camellia256-cts-cmac',
};

// A bounded cursor over one region [pos, end) of the input.
class Reader {
  b: Uint8Array;
  pos: number;
  end: number;
  le: boolean;
  constructor(b: Uint8Array, pos: number, end: number, le: boolean) {
    this.b = b;
    this.pos = pos;
    this.end = end;
    this.le = le;
  }
  need(n: number, what: string): void {
    if (n < 0 || this.pos + n > this.end) throw new DecodeError('keytab: truncated ' + what);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.b[this.pos++];
  }
  u16(what: string): number {
    this.need(2, what);
    const b = this.b;
    const p = this.pos;
    this.pos += 2;
    return this.le ? b[p] | (b[p + 1] << 8) : (b[p] << 8) | b[p + 1];
  }
  u32(what: string): number {
    this.need(4, what);
    const b = this.b;
    const p = this.pos;
    this.pos += 4;
    if (this.le) return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
    return ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
  }
  data(what: string): Uint8Array {
    const n = this.u16(what + ' length');
    this.need(n, what);
    const out = this.b.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  str(what: string): string {
    return utf8Decode(this.data(what), what);
  }
}

// Strict UTF-8 decode (no overlongs, no surrogates, nothing above U+10FFFF), so
// that encodeKeytab(parseKeytab(x)) gives back the same bytes.
function utf8Decode(b: Uint8Array, what: string): string {
  let s = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i];
    let cp = -1;
    let n = 0;
    let min = 0;
    if (c < 0x80) {
      cp = c;
      n = 0;
    } else if (c >= 0xc2 && c < 0xe0) {
      cp = c & 0x1f;
      n = 1;
      min = 0x80;
    } else if (c >= 0xe0 && c < 0xf0) {
      cp = c & 0x0f;
      n = 2;
      min = 0x800;
    } else if (c >= 0xf0 && c < 0xf5) {
      cp = c & 0x07;
      n = 3;
      min = 0x10000;
    } else {
      throw new DecodeError('keytab: ' + what + ' is not valid UTF-8');
    }
    if (i + n >= b.length) throw new DecodeError('keytab: ' + what + ' is not valid UTF-8');
    for (let k = 1; k <= n; k++) {
      const d = b[i + k];
      if ((d & 0xc0) !== 0x80) throw new DecodeError('keytab: ' + what + ' is not valid UTF-8');
      cp = (cp << 6) | (d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
      throw new DecodeError('keytab: ' + what + ' is not valid UTF-8');
    }
    if (cp < 0x10000) s += String.fromCharCode(cp);
    else {
      cp -= 0x10000;
      s += String.fromCharCode(0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
    }
    i += n + 1;
  }
  return s;
}

function readSize(b: Uint8Array, p: number, le: boolean): number {
  if (le) return b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24);
  return (b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3];
}

// For version 0x0501: the byte order under which the first record size fits.
function detectLittleEndian(b: Uint8Array): boolean {
  if (b.length < 6) return false;
  const room = b.length - 6;
  const be = readSize(b, 2, false);
  const le = readSize(b, 2, true);
  const beOk = be !== -2147483648 && (be < 0 ? -be : be) <= room;
  const leOk = le !== -2147483648 && (le < 0 ? -le : le) <= room;
  return leOk && !beOk;
}

function parseRecord(b: Uint8Array, start: number, end: number, v1: boolean, le: boolean): KeytabEntry {
  const r = new Reader(b, start, end, le);
  let count = r.u16('component count');
  if (v1) {
    if (count < 1) throw new DecodeError('keytab: component count 0 (v1 counts the realm)');
    count -= 1;
  }
  if (count > KEYTAB_MAX_COMPONENTS) throw new DecodeError('keytab: too many principal components (' + count + ')');
  const realm = r.str('realm');
  const components: string[] = [];
  for (let i = 0; i < count; i++) components.push(r.str('principal component'));
  // name_type is stored as u32; keep it as a signed 32-bit number (some are negative).
  const nameType = v1 ? 1 : r.u32('name type') | 0;
  const timestamp = r.u32('timestamp');
  let kvno = r.u8('kvno');
  let etype = r.u16('enctype');
  if (etype & 0x8000) etype -= 0x10000;
  const klen = r.u16('key length');
  if (klen > KEYTAB_MAX_KEY) throw new DecodeError('keytab: key length ' + klen + ' too large');
  r.need(klen, 'key');
  const key = b.slice(r.pos, r.pos + klen);
  r.pos += klen;
  if (r.end - r.pos >= 4) {
    const k32 = r.u32('kvno32');
    if (k32 !== 0) kvno = k32;
  }
  // The rest of the record (if any) is fill from a reused hole: ignored, like MIT does.
  return { principal: { realm: realm, components: components, nameType: nameType }, timestamp: timestamp, kvno: kvno, etype: etype, key: key };
}

/** Parses an MIT keytab (0x0502, or 0x0501). Deleted entries (holes) are skipped. Throws DecodeError. */
export function parseKeytab(bytes: Uint8Array): KeytabEntry[] {
  if (!(bytes instanceof Uint8Array)) throw new DecodeError('keytab: input is not bytes');
  if (bytes.length < 2) throw new DecodeError('keytab: truncated version');
  if (bytes[0] !== 5) throw new DecodeError('keytab: not a keytab (first byte ' + bytes[0] + ', expected 5)');
  const version = (bytes[0] << 8) | bytes[1];
  if (version !== KEYTAB_VERSION_2 && version !== KEYTAB_VERSION_1) {
    throw new DecodeError('keytab: unsupported version 0x' + version.toString(16));
  }
  const v1 = version === KEYTAB_VERSION_1;
  const le = v1 ? detectLittleEndian(bytes) : false;
  const out: KeytabEntry[] = [];
  let p = 2;
  while (p < bytes.length) {
    if (bytes.length - p < 4) throw new DecodeError('keytab: truncated record size');
    const size = readSize(bytes, p, le);
    p += 4;
    if (size === 0) break; // MIT: a zero size marks the end of the entries
    if (size === -2147483648) throw new DecodeError('keytab: invalid record size');
    const n = size < 0 ? -size : size;
    if (n > bytes.length - p) throw new DecodeError(size < 0 ? 'keytab: hole runs past the end' : 'keytab: truncated record (size ' + n + ')');
    if (size > 0) {
      if (out.length >= KEYTAB_MAX_ENTRIES) throw new DecodeError('keytab: more than ' + KEYTAB_MAX_ENTRIES + ' entries');
      out.push(parseRecord(bytes, p, p + n, v1, le));
    }
    p += n;
  }
  return out;
}

function checkInt(v: number, lo: number, hi: number, what: string): void {
  if (typeof v !== 'number' || v !== Math.floor(v) || v < lo || v > hi) {
    throw new Error('keytab: ' + what + ' out of range');
  }
}

/** Encodes entries as an MIT keytab, version 0x0502, with the trailing 32-bit kvno (as MIT writes). */
export function encodeKeytab(entries: KeytabEntry[]): Uint8Array {
  const recs: Uint8Array[][] = [];
  let total = 2;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const pr = e.principal;
    if (pr.components.length > KEYTAB_MAX_COMPONENTS) throw new Error('keytab: too many principal components');
    checkInt(pr.nameType, -2147483648, 4294967295, 'name type');
    checkInt(e.timestamp, 0, 4294967295, 'timestamp');
    checkInt(e.kvno, 0, 4294967295, 'kvno');
    checkInt(e.etype, -32768, 65535, 'enctype');
    if (e.key.length > 65535) throw new Error('keytab: key too long');
    const strs: Uint8Array[] = [fromUtf8(pr.realm)];
    for (let k = 0; k < pr.components.length; k++) strs.push(fromUtf8(pr.components[k]));
    let size = 2 + 4 + 4 + 1 + 2 + 2 + e.key.length + 4;
    for (let k = 0; k < strs.length; k++) {
      if (strs[k].length > 65535) throw new Error('keytab: principal name part too long');
      size += 2 + strs[k].length;
    }
    recs.push(strs);
    total += 4 + size;
  }
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, KEYTAB_VERSION_2);
  let p = 2;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    const strs = recs[i];
    const start = p;
    p += 4;
    dv.setUint16(p, strs.length - 1);
    p += 2;
    for (let k = 0; k < strs.length; k++) {
      dv.setUint16(p, strs[k].length);
      out.set(strs[k], p + 2);
      p += 2 + strs[k].length;
    }
    dv.setUint32(p, e.principal.nameType >>> 0);
    dv.setUint32(p + 4, e.timestamp >>> 0);
    out[p + 8] = e.kvno & 0xff;
    dv.setUint16(p + 9, e.etype & 0xffff);
    dv.setUint16(p + 11, e.key.length);
    p += 13;
    out.set(e.key, p);
    p += e.key.length;
    dv.setUint32(p, e.kvno >>> 0);
    p += 4;
    dv.setInt32(start, p - start - 4);
  }
  return out;
}

function quote(s: string, realm: boolean): string {
  let o = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' || c === '@' || (!realm && c === '/')) o += '\\' + c;
    else if (c === '\n') o += '\\n';
    else if (c === '\t') o += '\\t';
    else if (c === '\b') o += '\\b';
    else if (c === '\0') o += '\\0';
    else o += c;
  }
  return o;
}

/** "a/b@REALM", with MIT's quoting of '/', '@' and '\' inside components. */
export function principalName(entry: KeytabEntry | { principal: KeytabPrincipal }): string {
  const pr = entry.principal;
  const parts: string[] = [];
  for (let i = 0; i < pr.components.length; i++) parts.push(quote(pr.components[i], false));
  return parts.join('/') + '@' + quote(pr.realm, true);
}

/** Index of the first '@' not escaped by a backslash, or -1. */
export function realmAt(name: string): number {
  for (let i = 0; i < name.length; i++) {
    if (name[i] === '\\') i++;
    else if (name[i] === '@') return i;
  }
  return -1;
}

/**
 * Entries of `principal` ("a/b@REALM"; without "@REALM" any realm matches),
 * highest kvno first (file order kept among equal kvnos).
 */
export function findKeys(entries: KeytabEntry[], principal: string): KeytabEntry[] {
  const withRealm = realmAt(principal) >= 0;
  const hits: { e: KeytabEntry; i: number }[] = [];
  for (let i = 0; i < entries.length; i++) {
    let n = principalName(entries[i]);
    if (!withRealm) n = n.substring(0, realmAt(n));
    if (n === principal) hits.push({ e: entries[i], i: i });
  }
  hits.sort(function (a, b) {
    return b.e.kvno - a.e.kvno || a.i - b.i;
  });
  const out: KeytabEntry[] = [];
  for (let i = 0; i < hits.length; i++) out.push(hits[i].e);
  return out;
}
