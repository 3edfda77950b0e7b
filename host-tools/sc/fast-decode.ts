// Host-only fast decoders for the SC's hot path: the pktc AP Request with its
// KRB_AP_REQ (Ticket, EncryptedData), the decrypted EncTicketPart and
// Authenticator. They walk the bytes directly (one cursor, no reader object per
// DER level, no copies: ciphertexts are views) and read exactly the fields the SC
// checks.
//
// Contract (test/sc-fast-codec.test.ts checks it differentially against the
// generic firmware decoders on valid, mutated and truncated inputs): each fast
// decoder returns null for anything outside the common, strictly well-formed
// shape it handles (other DOI, optional fields it does not read, any encoding
// irregularity); otherwise the generic decoder accepts the same bytes and yields
// the same values. The *Any() wrappers fall back to the generic decoders on null,
// so which inputs are rejected, and with which DecodeError, is the generic code's.
//
// The identifier/length reader hdr() below is a second copy of firmware der.ts's
// (DerReader.hdr, tlvSize), kept for speed: with der.ts's reader (a DerReader per
// header, or the same checks as a free function returning its position in module
// state) decoding an AP Request, EncTicketPart and Authenticator took 1.5-1.7x as
// long on Node 20 (1.3-2 us more per exchange, about 1 % of the SC's ~190 us): its
// DecodeError messages make it too large to inline, and it throws where this path
// wants a null. Same checks (definite, minimal, at most 2 length bytes, within the
// enclosing element); test/sc-fast-codec.test.ts holds the two to the same verdicts.
// KerberosTimes are der.ts's alone (time15() only remembers its answers).
import { appTag, ctxTag, parseKerberosTimeBytes, T_BIT_STRING, T_GENERAL_STRING, T_GENERALIZED_TIME, T_INTEGER, T_OCTET_STRING, T_SEQUENCE } from '../../firmware/proto/der.ts';
import { APP_AUTHENTICATOR, APP_ENC_TICKET_PART, APP_TICKET, decodeApReq, decodeAuthenticator, decodeEncTicketPart, principalToString, type PrincipalName } from '../../firmware/proto/krb5.ts';
import { TAG_AP_REQ } from '../../firmware/proto/consts.ts';
import { decodeApRequest, DOI, HMAC_LEN, KMMID, MAX_CIPHERSUITES, MAX_DATAGRAM, type Ciphersuite, type IpsecAppData } from '../../firmware/proto/pktc.ts';

// Identifier octets, from the firmware's own definitions (no raw tag bytes here).
const TICKET = appTag(APP_TICKET);
const AUTHENTICATOR = appTag(APP_AUTHENTICATOR);
const ENC_TICKET_PART = appTag(APP_ENC_TICKET_PART);
/** [0] EXPLICIT: context tag n is CTX | n. */
const CTX = ctxTag(0);

/** The parts of a pktc AP Request (DOI IPsec) and its AP-REQ the SC uses. */
export type ApRequestParts = {
  doi: number;
  serverNonce: number;
  /** The CTA's inbound SPI (DOI IPsec). */
  spi: number;
  ciphersuites: Ciphersuite[];
  /** Every byte before the HMAC (a view). */
  signed: Uint8Array;
  /** The HMAC field (a view). */
  hmac: Uint8Array;
  realm: string;
  sname: PrincipalName;
  tktEtype: number;
  tktKvno: number | undefined;
  tktCipher: Uint8Array;
  authEtype: number;
  authCipher: Uint8Array;
};

/** What the SC reads from an EncTicketPart (key value copied). */
export type TicketParts = {
  flags: number;
  key: { keytype: number; keyvalue: Uint8Array };
  crealm: string;
  cname: PrincipalName;
  authtime: number;
  starttime?: number;
  endtime: number;
};

/** What the SC reads from an Authenticator. */
export type AuthParts = { crealm: string; cname: PrincipalName; cusec: number; ctime: number };

// ---- the cursor ----
const IRREGULAR = { irregular: true };
let b: Uint8Array = new Uint8Array(0);
let p = 0;
function no(): never {
  throw IRREGULAR;
}
/** Identifier tag (exact), minimal definite length (<= 2 length bytes) within end: the content length; p at the content. */
function hdr(tag: number, end: number): number {
  if (end - p < 2 || b[p] !== tag) no();
  let len = b[p + 1];
  let q = p + 2;
  if (len >= 0x80) {
    if (len === 0x81) {
      if (q >= end) no();
      len = b[q++];
      if (len < 0x80) no();
    } else if (len === 0x82) {
      if (end - q < 2) no();
      len = (b[q] << 8) | b[q + 1];
      q += 2;
      if (len < 0x100) no();
    } else no();
  }
  if (len > end - q) no();
  p = q;
  return len;
}
function int(end: number, min: number, max: number): number {
  const len = hdr(T_INTEGER, end);
  if (len === 0 || len > 5) no();
  if (len > 1 && ((b[p] === 0 && b[p + 1] < 0x80) || (b[p] === 0xff && b[p + 1] >= 0x80))) no();
  let v = b[p] >= 0x80 ? b[p] - 256 : b[p];
  for (let i = 1; i < len; i++) v = v * 256 + b[p + i];
  p += len;
  if (v < min || v > max) no();
  return v;
}
function ctxInt(n: number, end: number, min: number, max: number): number {
  const e = hdr(CTX | n, end) + p;
  const v = int(e, min, max);
  if (p !== e) no();
  return v;
}
function str(end: number): string {
  const len = hdr(T_GENERAL_STRING, end);
  let s = '';
  for (let i = 0; i < len; i++) {
    const c = b[p + i];
    if (c === 0) no();
    s += String.fromCharCode(c);
  }
  p += len;
  return s;
}
function ctxTime(n: number, end: number): number {
  const e = hdr(CTX | n, end) + p;
  if (hdr(T_GENERALIZED_TIME, e) !== 15) no();
  const ms = time15();
  p += 15;
  if (p !== e) no();
  return ms;
}
// KerberosTimes already seen. der.ts's parseKerberosTime (the firmware's one calendar:
// Date.parse and a round trip) costs about 1.3 us, 10x the hand arithmetic it replaced;
// a ticket's times recur with each use of the ticket and ctimes within a second, so
// valid times are remembered by their 14 digits (YYYYMMDDHHMMSS as one number, exact
// in a double) in a direct-mapped table. Only der.ts decides what is a valid time.
const TIME_SLOTS = 4096;
const Z = 'Z'.charCodeAt(0);
const timeKeys = new Float64Array(TIME_SLOTS).fill(-1);
const timeVals = new Float64Array(TIME_SLOTS);
/** The KerberosTime "YYYYMMDDHHMMSSZ" at p (15 bytes, not consumed), in ms. */
function time15(): number {
  if (b[p + 14] !== Z) no();
  let k = 0;
  for (let i = p; i < p + 14; i++) {
    const c = b[i] - 48;
    if (c < 0 || c > 9) no();
    k = k * 10 + c;
  }
  const h = k % TIME_SLOTS;
  if (timeKeys[h] === k) return timeVals[h];
  const ms = parseKerberosTimeBytes(b, p);
  if (ms !== ms) no();
  timeKeys[h] = k;
  timeVals[h] = ms;
  return ms;
}
/** [n] { OCTET STRING }: the content's offset (p moves past it); length in lastLen. */
let lastLen = 0;
function ctxOctetsAt(n: number, end: number): number {
  const e = hdr(CTX | n, end) + p;
  lastLen = hdr(T_OCTET_STRING, e);
  const at = p;
  p += lastLen;
  if (p !== e) no();
  return at;
}
function principalName(end: number): PrincipalName {
  const e = hdr(T_SEQUENCE, end) + p;
  const nameType = ctxInt(0, e, -2147483648, 2147483647);
  const ce = hdr(CTX | 1, e) + p;
  const se = hdr(T_SEQUENCE, ce) + p;
  const nameString: string[] = [];
  while (p < se) {
    if (nameString.length >= 64) no();
    nameString.push(str(se));
  }
  if (p !== ce || p !== e) no();
  return { nameType: nameType, nameString: nameString };
}
function ctxFlags(n: number, end: number): number {
  const e = hdr(CTX | n, end) + p;
  const len = hdr(T_BIT_STRING, e);
  if (len === 0) no();
  const unused = b[p];
  if (unused > 7 || (len === 1 && unused !== 0) || len > 5) no();
  if (len > 1 && (b[p + len - 1] & ((1 << unused) - 1)) !== 0) no();
  let v = 0;
  for (let i = 1; i <= 4; i++) v = v * 256 + (i < len ? b[p + i] : 0);
  p += len;
  if (p !== e) no();
  return v;
}

// ---- interned (realm, PrincipalName) pairs ----
// A realm field followed by a PrincipalName field (ticket sname, EncTicketPart and
// Authenticator crealm + cname) is looked up by its exact DER bytes in a bounded
// direct-mapped cache before it is parsed: a hit returns the strings and the
// PrincipalName object decoded from those same bytes before (no strings or
// objects per message; the returned objects are shared and never modified). A
// miss parses as usual and remembers the result. Names only, never key material.
type NameEntry = { key: Uint8Array; realm: string; name: PrincipalName; full: string | null };
const NAME_SLOTS = 16384;
const names: (NameEntry | undefined)[] = new Array(NAME_SLOTS);
function hashBytes(h: number, s: number, e: number): number {
  for (let i = s; i < e; i++) h = Math.imul(h ^ b[i], 16777619);
  return h;
}
/** [nr] realm then [nr+1] PrincipalName, both within end. */
function ctxRealmName(nr: number, end: number): NameEntry {
  const e1 = hdr(CTX | nr, end) + p;
  return realmName(p, e1, nr + 1, end);
}
function realmName(rs: number, e1: number, nn: number, end: number): NameEntry {
  // realm TLV is [rs, e1); the [nn] header follows at e1
  p = e1;
  const e2 = hdr(CTX | nn, end) + p;
  const ns = p;
  const rl = e1 - rs;
  const kl = rl + (e2 - ns);
  const h = (hashBytes(hashBytes(0x811c9dc5 ^ kl, rs, e1), ns, e2) >>> 0) & (NAME_SLOTS - 1);
  const c = names[h];
  if (c !== undefined && c.key.length === kl) {
    const k = c.key;
    let i = 0;
    while (i < rl && k[i] === b[rs + i]) i++;
    if (i === rl) {
      while (i < kl && k[i] === b[ns + i - rl]) i++;
      if (i === kl) {
        p = e2;
        return c;
      }
    }
  }
  p = rs;
  const realm = str(e1);
  if (p !== e1) no();
  p = ns;
  const name = principalName(e2);
  if (p !== e2) no();
  const key = new Uint8Array(kl);
  key.set(b.subarray(rs, e1), 0);
  key.set(b.subarray(ns, e2), rl);
  const n: NameEntry = { key: key, realm: realm, name: name, full: null };
  names[h] = n;
  return n;
}
const fullNames = new WeakMap<PrincipalName, NameEntry>();
/** principalToString(name, realm), from the intern cache when name came from it. */
export function principalString(name: PrincipalName, realm: string): string {
  const e = fullNames.get(name);
  if (e !== undefined && e.realm === realm) {
    if (e.full === null) e.full = principalToString(name, realm);
    return e.full;
  }
  return principalToString(name, realm);
}
function remember(e: NameEntry): NameEntry {
  if (e.full === null && !fullNames.has(e.name)) fullNames.set(e.name, e);
  return e;
}

/** One shared { auth, enc } object per byte pair (never modified by the SC): no object per offered suite. */
const suites: (Ciphersuite | undefined)[] = new Array(65536);
function suite(auth: number, enc: number): Ciphersuite {
  const i = (auth << 8) | enc;
  let c = suites[i];
  if (c === undefined) suites[i] = c = { auth: auth, enc: enc };
  return c;
}

function run<T>(bytes: Uint8Array, start: number, f: () => T): T | null {
  b = bytes;
  p = start;
  try {
    return f();
  } catch (e) {
    if (e === IRREGULAR) return null;
    throw e;
  } finally {
    b = EMPTY;
  }
}
const EMPTY = new Uint8Array(0);

/**
 * A pktc AP Request of DOI IPsec with a KRB_AP_REQ whose Ticket and authenticator
 * EncryptedData are read in place; null for anything else (use decodeApRequestAny).
 */
export function fastApRequest(buf: Uint8Array): ApRequestParts | null {
  const n = buf.length;
  if (n < 3 || n > MAX_DATAGRAM || buf[0] !== KMMID.AP_REQUEST || buf[1] !== DOI.IPSEC || buf[2] >> 4 !== 1) return null;
  return run(buf, 3, () => {
    // KRB_AP_REQ [APPLICATION 14] SEQUENCE { [0] pvno 5, [1] msg-type 14, [2] ap-options, [3] Ticket, [4] EncryptedData }
    const apEnd = hdr(TAG_AP_REQ, n) + p;
    const se = hdr(T_SEQUENCE, apEnd) + p;
    if (ctxInt(0, se, -2147483648, 4294967295) !== 5) no();
    if (ctxInt(1, se, -2147483648, 4294967295) !== 14) no();
    ctxFlags(2, se);
    // [3] Ticket [APPLICATION 1] SEQUENCE { [0] 5, [1] realm, [2] sname, [3] enc-part }
    const t3 = hdr(CTX | 3, se) + p;
    const ta = hdr(TICKET, t3) + p;
    const ts = hdr(T_SEQUENCE, ta) + p;
    if (ctxInt(0, ts, -2147483648, 4294967295) !== 5) no();
    const rn = ctxRealmName(1, ts);
    const realm = rn.realm;
    const sname = rn.name;
    const te = hdr(CTX | 3, ts) + p;
    const ed = hdr(T_SEQUENCE, te) + p;
    const tktEtype = ctxInt(0, ed, -2147483648, 2147483647);
    let tktKvno: number | undefined;
    if (p < ed && b[p] === (CTX | 1)) tktKvno = ctxInt(1, ed, -2147483648, 4294967295) >>> 0;
    const tc = ctxOctetsAt(2, ed);
    const tcLen = lastLen;
    if (p !== ed || p !== te || p !== ts || p !== ta || p !== t3) no();
    // [4] EncryptedData (the authenticator): no kvno expected, but accepted as the generic code does.
    const a4 = hdr(CTX | 4, se) + p;
    const ae = hdr(T_SEQUENCE, a4) + p;
    const authEtype = ctxInt(0, ae, -2147483648, 2147483647);
    if (p < ae && b[p] === (CTX | 1)) ctxInt(1, ae, -2147483648, 4294967295);
    const ac = ctxOctetsAt(2, ae);
    const acLen = lastLen;
    if (p !== ae || p !== a4 || p !== se || p !== apEnd) no();
    // returned nonce, AppData (SPI), ciphersuites, ReEstablish, HMAC: exactly to the end.
    if (n - p !== 4 + 4 + 1 + 1 + HMAC_LEN + 2 * b[p + 8]) no();
    const serverNonce = ((b[p] << 24) | (b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]) >>> 0;
    const spi = ((b[p + 4] << 24) | (b[p + 5] << 16) | (b[p + 6] << 8) | b[p + 7]) >>> 0;
    const count = b[p + 8];
    if (count < 1 || count > MAX_CIPHERSUITES) no();
    p += 9;
    const ciphersuites: Ciphersuite[] = new Array(count);
    for (let i = 0; i < count; i++, p += 2) ciphersuites[i] = suite(b[p], b[p + 1]);
    if (b[p] > 1) no();
    p++;
    return {
      doi: DOI.IPSEC,
      serverNonce: serverNonce,
      spi: spi,
      ciphersuites: ciphersuites,
      signed: buf.subarray(0, p),
      hmac: buf.subarray(p, p + HMAC_LEN),
      realm: realm,
      sname: sname,
      tktEtype: tktEtype,
      tktKvno: tktKvno,
      tktCipher: buf.subarray(tc, tc + tcLen),
      authEtype: authEtype,
      authCipher: buf.subarray(ac, ac + acLen),
    };
  });
}

/** fastApRequest, else the generic decoders (their DecodeErrors, their results); doi other than IPsec: spi 0 (the SC drops it). */
export function decodeApRequestAny(buf: Uint8Array): ApRequestParts {
  const f = fastApRequest(buf);
  if (f) return f;
  const m = decodeApRequest(buf);
  const q = decodeApReq(m.apReq);
  return {
    doi: m.doi,
    serverNonce: m.serverNonce,
    spi: m.doi === DOI.IPSEC ? (m.appData as IpsecAppData).spi : 0,
    ciphersuites: m.ciphersuites,
    signed: m.signed,
    hmac: m.hmac,
    realm: q.ticket.realm,
    sname: q.ticket.sname,
    tktEtype: q.ticket.encPart.etype,
    tktKvno: q.ticket.encPart.kvno,
    tktCipher: q.ticket.encPart.cipher,
    authEtype: q.authenticator.etype,
    authCipher: q.authenticator.cipher,
  };
}

/**
 * EncTicketPart with flags, key, crealm, cname, transited, authtime, [starttime],
 * endtime, [renew-till]; null when it carries caddr / authorization-data or is
 * irregular (use decodeEncTicketPartAny).
 */
export function fastEncTicketPart(pt: Uint8Array): TicketParts | null {
  const n = pt.length;
  if (n === 0 || n > 65535) return null;
  return run(pt, 0, () => {
    const ae = hdr(ENC_TICKET_PART, n) + p;
    const se = hdr(T_SEQUENCE, ae) + p;
    const flags = ctxFlags(0, se);
    // [1] EncryptionKey SEQUENCE { [0] keytype, [1] keyvalue }
    const k1 = hdr(CTX | 1, se) + p;
    const ks = hdr(T_SEQUENCE, k1) + p;
    const keytype = ctxInt(0, ks, -2147483648, 2147483647);
    const kv = ctxOctetsAt(1, ks);
    const kvLen = lastLen;
    if (p !== ks || p !== k1) no();
    const cn = remember(ctxRealmName(2, se));
    const crealm = cn.realm;
    const cname = cn.name;
    // [4] TransitedEncoding SEQUENCE { [0] tr-type, [1] contents }
    const t4 = hdr(CTX | 4, se) + p;
    const tr = hdr(T_SEQUENCE, t4) + p;
    ctxInt(0, tr, -2147483648, 2147483647);
    ctxOctetsAt(1, tr);
    if (p !== tr || p !== t4) no();
    const authtime = ctxTime(5, se);
    let starttime: number | undefined;
    if (p < se && b[p] === (CTX | 6)) starttime = ctxTime(6, se);
    const endtime = ctxTime(7, se);
    if (p < se && b[p] === (CTX | 8)) ctxTime(8, se);
    if (p !== se || p !== ae) no(); // caddr, authorization-data or trailing bytes: generic path
    const out: TicketParts = { flags: flags, key: { keytype: keytype, keyvalue: pt.slice(kv, kv + kvLen) }, crealm: crealm, cname: cname, authtime: authtime, endtime: endtime };
    if (starttime !== undefined) out.starttime = starttime;
    return out;
  });
}

export function decodeEncTicketPartAny(pt: Uint8Array): TicketParts {
  return fastEncTicketPart(pt) ?? decodeEncTicketPart(pt);
}

/** Authenticator with crealm, cname, cusec, ctime only; null otherwise (use decodeAuthenticatorAny). */
export function fastAuthenticator(pt: Uint8Array): AuthParts | null {
  const n = pt.length;
  if (n === 0 || n > 65535) return null;
  return run(pt, 0, () => {
    const ae = hdr(AUTHENTICATOR, n) + p;
    const se = hdr(T_SEQUENCE, ae) + p;
    if (ctxInt(0, se, -2147483648, 4294967295) !== 5) no();
    const cn = ctxRealmName(1, se);
    const crealm = cn.realm;
    const cname = cn.name;
    const cusec = ctxInt(4, se, 0, 999999);
    const ctime = ctxTime(5, se);
    if (p !== se || p !== ae) no(); // cksum, subkey, seq-number, authorization-data: generic path
    return { crealm: crealm, cname: cname, cusec: cusec, ctime: ctime };
  });
}

export function decodeAuthenticatorAny(pt: Uint8Array): AuthParts {
  return fastAuthenticator(pt) ?? decodeAuthenticator(pt);
}
