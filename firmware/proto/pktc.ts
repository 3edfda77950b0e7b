// PacketCable-style Kerberized key-management messages (PROTOCOL.md), byte for
// byte as Wireshark's `pktc` dissector (epan/dissectors/packet-pktc.c) reads
// them. Runs on the board and in the Signaling Controller: written inside the
// Espruino subset. docs/protocol.md describes the format.
//
// KRB_AP_REQ / KRB_AP_REP / KRB_ERROR are carried as raw DER; this module only
// finds where each one ends (outer TLV length) - decode them with krb5.ts.

import { DecodeError } from './errors.ts';
import { formatKerberosTime, parseKerberosTime, tlvSize } from './der.ts';
import { concat, ctEqual, readU32, u32 } from './bytes.ts';
import type { CryptoBackend } from './crypto/backend.ts';
import { hmac as hmacH } from './crypto/index.ts';
import {
  KM_WAKE_UP,
  KM_AP_REQUEST,
  KM_AP_REPLY,
  KM_SA_RECOVERED,
  KM_REKEY,
  KM_ERROR_REPLY,
  USAGE_AP_REQUEST,
  USAGE_AP_REPLY,
  USAGE_SA_RECOVERED,
  USAGE_REKEY,
  DOI_IPSEC as IPSEC,
  DOI_SNMPV3 as SNMPV3,
  TAG_AP_REQ,
  TAG_AP_REP,
  TAG_KRB_ERROR,
  VERSION,
  MAX_DATAGRAM,
  HMAC_LEN,
  MAX_PRINCIPAL,
  MAX_CIPHERSUITES,
  SNMP_ENGINE_ID_MIN,
  SNMP_ENGINE_ID_MAX,
  SNMP_USER_MAX,
  PKTC_TIME_END_MS,
  PKTC_TIME_MIN_MS,
} from './consts.ts';

// The protocol numbers have one home, consts.ts (plain constants, which the minifier
// inlines); these objects group them for host code and tests.
export const KMMID = {
  WAKE_UP: KM_WAKE_UP,
  AP_REQUEST: KM_AP_REQUEST,
  AP_REPLY: KM_AP_REPLY,
  SA_RECOVERED: KM_SA_RECOVERED,
  REKEY: KM_REKEY,
  ERROR_REPLY: KM_ERROR_REPLY,
} as const;
export const DOI = { IPSEC: IPSEC, SNMPV3: SNMPV3 };
/** Application key usages of the HMAC keys (PROTOCOL.md "HMACs and keys"). */
export const USAGE = { AP_REQUEST: USAGE_AP_REQUEST, AP_REPLY: USAGE_AP_REPLY, SA_RECOVERED: USAGE_SA_RECOVERED, REKEY: USAGE_REKEY };
/** Ciphersuite algorithm numbers as the dissector names them. */
export const IPSEC_AUTH = { HMAC_MD5_96: 0x01, HMAC_SHA1_96: 0x02 };
export const IPSEC_ENC = { NULL: 0x0b, AES128_CBC: 0x0c };
export const SNMP_AUTH = { HMAC_MD5: 0x21, HMAC_SHA1: 0x22 };
export const SNMP_ENC = { NULL: 0x20, DES: 0x21 };
/** Outer DER tags of the carried Kerberos messages. */
export const DER_TAG = { AP_REQ: TAG_AP_REQ, AP_REP: TAG_AP_REP, KRB_ERROR: TAG_KRB_ERROR };
// Firmware code uses the plain constants (the minifier inlines an imported constant,
// not an object's property): import them (USAGE_AP_REQUEST, DOI_IPSEC, ...) from consts.ts.
export {
  VERSION,
  MAX_DATAGRAM,
  HMAC_LEN,
  MAX_PRINCIPAL,
  MAX_CIPHERSUITES,
  SNMP_ENGINE_ID_MIN,
  SNMP_ENGINE_ID_MAX,
  SNMP_USER_MAX,
} from './consts.ts';

// ------------------------------------------------------------------ types
// The messages as plain objects are in pktc-types.ts (declarations only: nothing of them
// reaches the bundle).
export type * from './pktc-types.ts';
import type {
  IpsecAppData,
  SnmpAppData,
  AppData,
  Ciphersuite,
  WakeUp,
  ApRequest,
  ApReply,
  SaRecovered,
  Rekey,
  ErrorReply,
  PktcMessage,
  DecodedWakeUp,
  DecodedApRequest,
  DecodedApReply,
  DecodedSaRecovered,
  DecodedRekey,
  DecodedErrorReply,
  DecodedMessage,
} from './pktc-types.ts';

// ------------------------------------------------------------------ helpers

/** DecodeError "pktc: <message name>: <what>" (the name while a decoder runs). */
function fail(what: string): never {
  const k = rk;
  rk = 0;
  throw new DecodeError('pktc: ' + (k ? ['Wake Up', 'AP Request', 'AP Reply', 'SA Recovered', 'Rekey', 'Error Reply'][k - 1] + ': ' : '') + what);
}

/** An integer in 0..max (0xff or 0xffffffff). */
function checkUint(v: number, max: number, what: string): void {
  if (!(typeof v === 'number' && v >= 0 && v <= max && Math.floor(v) === v)) fail(what + ' is not a u' + (max > 255 ? 32 : 8));
}

function header(kmmid: number, doi: number, version: number | undefined): Uint8Array {
  if (doi !== IPSEC && doi !== SNMPV3) fail('unknown DOI ' + doi);
  const v = version === undefined ? VERSION : version;
  if (v >> 4 !== VERSION >> 4) fail('unsupported version ' + v);
  const h = new Uint8Array(3);
  h[0] = kmmid;
  h[1] = doi;
  h[2] = v;
  return h;
}

/** Printable ASCII (0x21..0x7e) only. */
function asciiBytes(s: string, max: number, what: string, allowSpace: boolean): Uint8Array {
  if (typeof s !== 'string' || s.length === 0) fail(what + ' is empty');
  if (s.length > max) fail(what + ' longer than ' + max);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < (allowSpace ? 0x20 : 0x21) || c > 0x7e) fail(what + ' is not printable ASCII');
    out[i] = c;
  }
  return out;
}

function principalBytes(p: string): Uint8Array {
  const b = asciiBytes(p, MAX_PRINCIPAL, 'server principal', false);
  const out = new Uint8Array(b.length + 1);
  out.set(b, 0);
  return out; // trailing NUL
}

function appDataBytes(doi: number, a: AppData): Uint8Array {
  if (!a || typeof a !== 'object') fail('AppData missing');
  if (doi === IPSEC) {
    const spi = (a as IpsecAppData).spi;
    checkUint(spi, 0xffffffff, 'AppData SPI');
    return u32(spi);
  }
  const s = a as SnmpAppData;
  if (!(s.engineId instanceof Uint8Array)) fail('AppData snmpEngineID missing');
  if (s.engineId.length < SNMP_ENGINE_ID_MIN || s.engineId.length > SNMP_ENGINE_ID_MAX) fail('AppData snmpEngineID length');
  checkUint(s.engineBoots, 0xffffffff, 'AppData snmpEngineBoots');
  checkUint(s.engineTime, 0xffffffff, 'AppData snmpEngineTime');
  const name = asciiBytes(s.userName, SNMP_USER_MAX, 'AppData usmUserName', true);
  const out = new Uint8Array(1 + s.engineId.length + 8 + 1 + name.length);
  let o = 0;
  out[o++] = s.engineId.length;
  out.set(s.engineId, o);
  o += s.engineId.length;
  out.set(u32(s.engineBoots), o);
  out.set(u32(s.engineTime), o + 4);
  o += 8;
  out[o++] = name.length;
  out.set(name, o);
  return out;
}

function ciphersuitesBytes(list: Ciphersuite[], min: number, max: number): Uint8Array {
  if (!Array.isArray(list)) fail('ciphersuite list missing');
  if (list.length < min || list.length > max) fail('ciphersuite count ' + list.length);
  const out = new Uint8Array(1 + list.length * 2);
  out[0] = list.length;
  for (let i = 0; i < list.length; i++) {
    checkUint(list[i].auth, 255, 'ciphersuite auth algorithm');
    checkUint(list[i].enc, 255, 'ciphersuite encryption transform');
    out[1 + i * 2] = list[i].auth;
    out[2 + i * 2] = list[i].enc;
  }
  return out;
}

function derBlob(der: Uint8Array, tag: number, what: string): Uint8Array {
  if (!(der instanceof Uint8Array)) fail(what + ' missing');
  if (tlvSize(der, 0, tag, 'pktc: ' + what) !== der.length) fail(what + ' has bytes after its DER TLV');
  return der;
}

function finish(parts: Uint8Array[]): Uint8Array {
  const out = concat(parts);
  if (out.length > MAX_DATAGRAM) fail('message larger than ' + MAX_DATAGRAM + ' bytes');
  return out;
}

function sign(b: CryptoBackend, key: Uint8Array, parts: Uint8Array[]): Uint8Array {
  const body = concat(parts);
  if (body.length + HMAC_LEN > MAX_DATAGRAM) fail('message larger than ' + MAX_DATAGRAM + ' bytes');
  const mac = hmacH(b, 'sha1', key, body);
  if (mac.length !== HMAC_LEN) throw new DecodeError('pktc: HMAC-SHA1 returned ' + mac.length + ' bytes');
  return concat([body, mac]);
}

// ------------------------------------------------------------ timestamps

// (der.ts's KerberosTime with the century cut off: one calendar in the firmware.)

/**
 * `YYMMDDhhmmssZ` (UTC; YY 50-99 = 19YY, 00-49 = 20YY as in X.509 UTCTime)
 * to milliseconds since 1970. DecodeError on anything else.
 */
export function timestampToMs(s: string): number {
  // The century by the first character (anything but a digit fails in der.ts).
  const v = parseKerberosTime((s < '5' ? '20' : '19') + s);
  if (v !== v) fail('timestamp is not a real YYMMDDhhmmssZ time');
  return v;
}

/** Milliseconds since 1970 (1950..2049, floored to the second) to `YYMMDDhhmmssZ`. */
export function msToTimestamp(ms: number): string {
  if (typeof ms != 'number' || !(ms >= PKTC_TIME_MIN_MS && ms < PKTC_TIME_END_MS)) fail('timestamp ' + ms + ' outside 1950..2049');
  return formatKerberosTime(ms).slice(2);
}

// --------------------------------------------------------------- encoders

export function encodeWakeUp(m: WakeUp): Uint8Array {
  checkUint(m.serverNonce, 0xffffffff, 'server nonce');
  return finish([header(1, m.doi, m.version), u32(m.serverNonce), principalBytes(m.serverPrincipal)]);
}

/** AP Request; `key` is the derived HMAC key (usage 1101 under the ticket session key). */
export function encodeApRequest(b: CryptoBackend, key: Uint8Array, m: ApRequest): Uint8Array {
  checkUint(m.serverNonce, 0xffffffff, 'server nonce');
  return sign(b, key, [
    header(2, m.doi, m.version),
    derBlob(m.apReq, TAG_AP_REQ, 'KRB_AP_REQ'),
    u32(m.serverNonce),
    appDataBytes(m.doi, m.appData),
    ciphersuitesBytes(m.ciphersuites, 1, MAX_CIPHERSUITES),
    new Uint8Array([m.reestablish ? 1 : 0]),
  ]);
}

/** AP Reply; `key` is the derived HMAC key (usage 1102 under the AP-REP subkey). */
export function encodeApReply(b: CryptoBackend, key: Uint8Array, m: ApReply): Uint8Array {
  checkUint(m.saLifetime, 0xffffffff, 'SA lifetime');
  checkUint(m.gracePeriod, 0xffffffff, 'grace period');
  return sign(b, key, [
    header(3, m.doi, m.version),
    derBlob(m.apRep, TAG_AP_REP, 'KRB_AP_REP'),
    appDataBytes(m.doi, m.appData),
    ciphersuitesBytes([m.ciphersuite], 1, 1),
    u32(m.saLifetime),
    u32(m.gracePeriod),
    new Uint8Array([m.reestablish ? 1 : 0]),
    new Uint8Array([m.ackRequired ? 1 : 0]),
  ]);
}

/** The bytes an SA Recovered HMAC covers: its 3-byte header || the AP Reply's HMAC. */
export function saRecoveredSigned(hdr: Uint8Array, apReplyHmac: Uint8Array): Uint8Array {
  if (hdr.length !== 3) fail('SA Recovered header length');
  if (apReplyHmac.length !== HMAC_LEN) fail('AP Reply HMAC length');
  return concat([hdr, apReplyHmac]);
}

/** SA Recovered; `key` is the derived HMAC key (usage 1103 under the AP-REP subkey). */
export function encodeSaRecovered(b: CryptoBackend, key: Uint8Array, m: SaRecovered, apReplyHmac: Uint8Array): Uint8Array {
  const h = header(4, m.doi, m.version);
  if (apReplyHmac.length !== HMAC_LEN) fail('AP Reply HMAC length');
  // The signed bytes of saRecoveredSigned(h, apReplyHmac), written here (the firmware
  // bundle then needs no saRecoveredSigned).
  return concat([h, hmacH(b, 'sha1', key, concat([h, apReplyHmac]))]);
}

/** Rekey (DOI IPsec only, as the dissector); `key`: usage 1104 under the last ticket's session key. */
export function encodeRekey(b: CryptoBackend, key: Uint8Array, m: Rekey): Uint8Array {
  if (m.doi !== IPSEC) fail('Rekey is defined for DOI IPsec only');
  checkUint(m.serverNonce, 0xffffffff, 'server nonce');
  checkUint(m.saLifetime, 0xffffffff, 'SA lifetime');
  checkUint(m.gracePeriod, 0xffffffff, 'grace period');
  const ts = msToTimestamp(m.timestamp);
  const tsb = new Uint8Array(13);
  for (let i = 0; i < 13; i++) tsb[i] = ts.charCodeAt(i);
  return sign(b, key, [
    header(5, m.doi, m.version),
    u32(m.serverNonce),
    principalBytes(m.serverPrincipal),
    tsb,
    appDataBytes(m.doi, m.appData),
    ciphersuitesBytes(m.ciphersuites, 1, MAX_CIPHERSUITES),
    u32(m.saLifetime),
    u32(m.gracePeriod),
    new Uint8Array([m.reestablish ? 1 : 0]),
  ]);
}

export function encodeErrorReply(m: ErrorReply): Uint8Array {
  return finish([header(6, m.doi, m.version), derBlob(m.krbError, TAG_KRB_ERROR, 'KRB_ERROR')]);
}

/**
 * Encode any message. `b` and `key` are needed for AP Request, AP Reply,
 * SA Recovered (which also needs apReplyHmac) and Rekey; pass null otherwise.
 */
export function encodeMessage(
  b: CryptoBackend | null,
  key: Uint8Array | null,
  m: PktcMessage,
  apReplyHmac?: Uint8Array,
): Uint8Array {
  if (m.kmmid === KMMID.WAKE_UP) return encodeWakeUp(m as WakeUp);
  if (m.kmmid === KMMID.ERROR_REPLY) return encodeErrorReply(m as ErrorReply);
  if (!b || !key) fail('an HMAC key and crypto backend are required for KMMID ' + m.kmmid);
  if (m.kmmid === KMMID.AP_REQUEST) return encodeApRequest(b, key, m as ApRequest);
  if (m.kmmid === KMMID.AP_REPLY) return encodeApReply(b, key, m as ApReply);
  if (m.kmmid === KMMID.REKEY) return encodeRekey(b, key, m as Rekey);
  if (m.kmmid === KMMID.SA_RECOVERED) {
    if (!apReplyHmac) fail('SA Recovered needs the AP Reply HMAC');
    return encodeSaRecovered(b, key, m as SaRecovered, apReplyHmac);
  }
  return fail('unknown KMMID ' + (m as { kmmid: number }).kmmid);
}

// --------------------------------------------------------------- decoders

// The reader is module state, not an object: decoders are synchronous and never
// re-entered, and `rb[rp]` minifies to a few bytes where `this.b[this.p]` and
// unminifiable method names did not (the firmware bundle is size-bound).
let rb: Uint8Array = null as unknown as Uint8Array;
let rp = 0;
/** KMMID of the message being decoded (names it in errors), 0 outside a decoder. */
let rk = 0;

// (Each reader checks its length itself: no shared rNeed function on the board.)
/** One byte; with flag set, a flag byte (0 or 1: compare with 1). */
function rU8(field: string, flag?: boolean): number {
  if (rp >= rb.length) fail(field + ' truncated');
  const v = rb[rp++];
  if (flag && v > 1) fail(field + ' is ' + v + ', not 0 or 1');
  return v;
}
function rU32(field: string): number {
  if (4 > rb.length - rp) fail(field + ' truncated');
  rp += 4;
  return readU32(rb, rp - 4);
}
function rBytes(n: number, field: string): Uint8Array {
  if (n > rb.length - rp) fail(field + ' truncated');
  rp += n;
  return rb.slice(rp - n, rp);
}
function rAscii(n: number, field: string, allowSpace: boolean): string {
  if (n > rb.length - rp) fail(field + ' truncated');
  let s = '';
  for (let i = 0; i < n; i++) {
    const c = rb[rp + i];
    if (c < (allowSpace ? 0x20 : 0x21) || c > 0x7e) fail(field + ' is not printable ASCII');
    s += String.fromCharCode(c);
  }
  rp += n;
  return s;
}
function rPrincipal(): string {
  const n = rb.subarray(rp).indexOf(0);
  if (n < 0) fail('server principal has no NUL terminator');
  if (n === 0) fail('server principal is empty');
  if (n > MAX_PRINCIPAL) fail('server principal longer than ' + MAX_PRINCIPAL);
  const s = rAscii(n, 'server principal', false);
  rp++; // NUL
  return s;
}
function rAppData(doi: number): AppData {
  if (doi === IPSEC) return { spi: rU32('AppData SPI') };
  const idLen = rU8('AppData snmpEngineID length');
  if (idLen < SNMP_ENGINE_ID_MIN || idLen > SNMP_ENGINE_ID_MAX) fail('AppData snmpEngineID length ' + idLen);
  const engineId = rBytes(idLen, 'AppData snmpEngineID');
  const engineBoots = rU32('AppData snmpEngineBoots');
  const engineTime = rU32('AppData snmpEngineTime');
  const nameLen = rU8('AppData usmUserName length');
  if (nameLen < 1 || nameLen > SNMP_USER_MAX) fail('AppData usmUserName length ' + nameLen);
  const userName = rAscii(nameLen, 'AppData usmUserName', true);
  return { engineId: engineId, engineBoots: engineBoots, engineTime: engineTime, userName: userName };
}
function rCiphersuites(min: number, max: number): Ciphersuite[] {
  const n = rU8('ciphersuite count');
  if (n < min || n > max) fail('ciphersuite count ' + n);
  if (n * 2 > rb.length - rp) fail('ciphersuite list truncated');
  const out: Ciphersuite[] = [];
  for (let i = 0; i < n; i++) {
    out.push({ auth: rb[rp], enc: rb[rp + 1] });
    rp += 2;
  }
  return out;
}
/** The carried Kerberos message (KRB_AP_REQ, ...) at rp, its outer TLV checked by der.ts; a copy. */
function rDer(tag: number, field: string): Uint8Array {
  // der.ts throws its own DecodeError, past fail(): no message name may stay behind in rk.
  const k = rk;
  rk = 0;
  const n = tlvSize(rb, rp, tag, 'pktc: ' + field);
  rk = k;
  return rBytes(n, field);
}
/**
 * The end of the message, after the HMAC when `hmac` (returned, else null); drops
 * the reader's hold on the input.
 */
function rEnd(hmac: boolean): Uint8Array | null {
  const mac = hmac ? rBytes(HMAC_LEN, 'HMAC') : null;
  const left = rb.length - rp;
  if (left) fail(left + ' trailing bytes');
  rb = null as unknown as Uint8Array;
  rk = 0;
  return mac;
}

/** Cheap look at the first byte: the KMMID (1..6), or 0 if this is not a plausible message. */
export function peekKmmid(bytes: Uint8Array): number {
  if (!bytes || bytes.length < 3 || bytes.length > MAX_DATAGRAM) return 0;
  const k = bytes[0];
  return k >= 1 && k <= 6 ? k : 0;
}

function start(bytes: Uint8Array, kmmid: number): void {
  rk = kmmid;
  if (!(bytes instanceof Uint8Array)) fail('not bytes');
  if (bytes.length > MAX_DATAGRAM) fail('datagram larger than ' + MAX_DATAGRAM + ' bytes');
  if (bytes.length < 3) fail('header truncated');
  const k = bytes[0];
  const doi = bytes[1];
  const v = bytes[2];
  if (k !== kmmid) fail('KMMID is ' + k);
  if (doi !== IPSEC && doi !== SNMPV3) fail('unknown DOI ' + doi);
  if (v >> 4 !== VERSION >> 4) fail('unsupported version 0x' + v.toString(16));
  rb = bytes;
  rp = 3;
}

export function decodeWakeUp(bytes: Uint8Array): DecodedWakeUp {
  start(bytes, 1);
  const serverNonce = rU32('server nonce');
  const serverPrincipal = rPrincipal();
  rEnd(false);
  return { kmmid: 1, doi: bytes[1], version: bytes[2], serverNonce: serverNonce, serverPrincipal: serverPrincipal };
}

export function decodeApRequest(bytes: Uint8Array): DecodedApRequest {
  start(bytes, 2);
  const doi = bytes[1];
  const apReq = rDer(TAG_AP_REQ, 'KRB_AP_REQ');
  const serverNonce = rU32('server nonce');
  const appData = rAppData(doi);
  const ciphersuites = rCiphersuites(1, MAX_CIPHERSUITES);
  const reestablish = rU8('re-establish flag', true) === 1;
  const signedLen = rp;
  const hmac = rEnd(true) as Uint8Array;
  return {
    kmmid: 2,
    doi: doi,
    version: bytes[2],
    apReq: apReq,
    serverNonce: serverNonce,
    appData: appData,
    ciphersuites: ciphersuites,
    reestablish: reestablish,
    signed: bytes.slice(0, signedLen),
    hmac: hmac,
  };
}

export function decodeApReply(bytes: Uint8Array): DecodedApReply {
  start(bytes, 3);
  const doi = bytes[1];
  const apRep = rDer(TAG_AP_REP, 'KRB_AP_REP');
  const appData = rAppData(doi);
  const cs = rCiphersuites(1, 1);
  const saLifetime = rU32('SA lifetime');
  const gracePeriod = rU32('grace period');
  const reestablish = rU8('re-establish flag', true) === 1;
  const ackRequired = rU8('ACK-required flag', true) === 1;
  const signedLen = rp;
  const hmac = rEnd(true) as Uint8Array;
  return {
    kmmid: 3,
    doi: doi,
    version: bytes[2],
    apRep: apRep,
    appData: appData,
    ciphersuite: cs[0],
    saLifetime: saLifetime,
    gracePeriod: gracePeriod,
    reestablish: reestablish,
    ackRequired: ackRequired,
    signed: bytes.slice(0, signedLen),
    hmac: hmac,
  };
}

/**
 * SA Recovered. `signed` is only the 3-byte header: the HMAC also covers the
 * AP Reply's HMAC, which the receiver must supply (verifySaRecovered).
 */
export function decodeSaRecovered(bytes: Uint8Array): DecodedSaRecovered {
  start(bytes, 4);
  const hmac = rEnd(true) as Uint8Array;
  return { kmmid: 4, doi: bytes[1], version: bytes[2], signed: bytes.slice(0, 3), hmac: hmac };
}

export function decodeRekey(bytes: Uint8Array): DecodedRekey {
  start(bytes, 5);
  const doi = bytes[1];
  if (doi !== IPSEC) fail('Rekey: DOI ' + doi + ' has no Rekey AppData layout (IPsec only)');
  const serverNonce = rU32('server nonce');
  const serverPrincipal = rPrincipal();
  const timestamp = timestampToMs(rAscii(13, 'timestamp', false));
  const appData = rAppData(doi);
  const ciphersuites = rCiphersuites(1, MAX_CIPHERSUITES);
  const saLifetime = rU32('SA lifetime');
  const gracePeriod = rU32('grace period');
  const reestablish = rU8('re-establish flag', true) === 1;
  const signedLen = rp;
  const hmac = rEnd(true) as Uint8Array;
  return {
    kmmid: 5,
    doi: doi,
    version: bytes[2],
    serverNonce: serverNonce,
    serverPrincipal: serverPrincipal,
    timestamp: timestamp,
    appData: appData,
    ciphersuites: ciphersuites,
    saLifetime: saLifetime,
    gracePeriod: gracePeriod,
    reestablish: reestablish,
    signed: bytes.slice(0, signedLen),
    hmac: hmac,
  };
}

export function decodeErrorReply(bytes: Uint8Array): DecodedErrorReply {
  start(bytes, 6);
  const krbError = rDer(TAG_KRB_ERROR, 'KRB_ERROR');
  rEnd(false);
  return { kmmid: 6, doi: bytes[1], version: bytes[2], krbError: krbError };
}

/** Decode any message by its KMMID. DecodeError on anything malformed. */
export function decodeMessage(bytes: Uint8Array): DecodedMessage {
  if (!(bytes instanceof Uint8Array)) fail('not bytes');
  if (bytes.length > MAX_DATAGRAM) fail('datagram larger than ' + MAX_DATAGRAM + ' bytes');
  if (bytes.length < 3) fail('header truncated');
  const k = bytes[0];
  if (k === KMMID.WAKE_UP) return decodeWakeUp(bytes);
  if (k === KMMID.AP_REQUEST) return decodeApRequest(bytes);
  if (k === KMMID.AP_REPLY) return decodeApReply(bytes);
  if (k === KMMID.SA_RECOVERED) return decodeSaRecovered(bytes);
  if (k === KMMID.REKEY) return decodeRekey(bytes);
  if (k === KMMID.ERROR_REPLY) return decodeErrorReply(bytes);
  return fail('unknown KMMID ' + k);
}

// ------------------------------------------------------------ verification

/** Constant-time check of a message HMAC: HMAC-SHA1(key, signed) == hmac. */
export function verifyHmac(b: CryptoBackend, key: Uint8Array, signed: Uint8Array, hmac: Uint8Array): boolean {
  if (hmac.length !== HMAC_LEN) return false;
  return ctEqual(hmacH(b, 'sha1', key, signed), hmac);
}

/** Verify a decoded SA Recovered against the AP Reply HMAC it acknowledges. */
export function verifySaRecovered(b: CryptoBackend, key: Uint8Array, m: DecodedSaRecovered, apReplyHmac: Uint8Array): boolean {
  if (apReplyHmac.length !== HMAC_LEN) return false;
  return verifyHmac(b, key, saRecoveredSigned(m.signed, apReplyHmac), m.hmac);
}
