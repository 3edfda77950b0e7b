// Host-only fast encoders for the SC's hot path: the Wake Up (a per-SC template
// with the nonce written in), the EncAPRepPart, and the signed AP Reply around its
// KRB_AP_REP, each written straight into one array with lengths computed up front
// (no TLV per field, no concatenations). Byte-identical to the generic firmware
// encoders (test/sc-fast-codec.test.ts).
import { appTag, ctxTag, encInt, formatKerberosTime, T_GENERALIZED_TIME, T_INTEGER, T_OCTET_STRING, T_SEQUENCE } from '../../firmware/proto/der.ts';
import { APP_ENC_AP_REP_PART, KRB_AP_REP, PVNO } from '../../firmware/proto/krb5.ts';
import { DER_TAG, DOI, HMAC_LEN, KMMID, MAX_DATAGRAM, MAX_PRINCIPAL, VERSION, type Ciphersuite } from '../../firmware/proto/pktc.ts';
import { hmacSha1Into, type HmacPads } from '../crypto/fast-krb.ts';

// Identifier octets, from the firmware's own definitions (no raw tag bytes here).
const TAG_AP_REP = DER_TAG.AP_REP;
const ENC_AP_REP_PART = appTag(APP_ENC_AP_REP_PART);
/** [0] EXPLICIT: context tag n is CTX | n. */
const CTX = ctxTag(0);

/** Tag + length bytes of a TLV with n content bytes. */
function hl(n: number): number {
  return n < 0x80 ? 2 : n < 0x100 ? 3 : 4;
}
function putHdr(o: Uint8Array, at: number, tag: number, n: number): number {
  o[at] = tag;
  if (n < 0x80) {
    o[at + 1] = n;
    return at + 2;
  }
  if (n < 0x100) {
    o[at + 1] = 0x81;
    o[at + 2] = n;
    return at + 3;
  }
  o[at + 1] = 0x82;
  o[at + 2] = n >>> 8;
  o[at + 3] = n & 255;
  return at + 4;
}
const ints = new Map<number, Uint8Array>();
/** DER INTEGER TLV of a small constant (etypes, key types), memoised. */
function intTlv(v: number): Uint8Array {
  let t = ints.get(v);
  if (!t) {
    t = encInt(v);
    if (ints.size < 64) ints.set(v, t);
  }
  return t;
}
function put32(o: Uint8Array, at: number, v: number): void {
  o[at] = v >>> 24;
  o[at + 1] = (v >>> 16) & 255;
  o[at + 2] = (v >>> 8) & 255;
  o[at + 3] = v & 255;
}

/** Wake Up bytes for one SC principal: a template copied per nonce (DOI IPsec, version 1.0). */
export class WakeUpTemplate {
  private t: Uint8Array;
  constructor(serverPrincipal: string) {
    const n = serverPrincipal.length;
    if (n === 0 || n > MAX_PRINCIPAL) throw new Error('server principal length');
    const t = new Uint8Array(3 + 4 + n + 1);
    t[0] = KMMID.WAKE_UP;
    t[1] = DOI.IPSEC;
    t[2] = VERSION;
    for (let i = 0; i < n; i++) {
      const c = serverPrincipal.charCodeAt(i);
      if (c < 0x21 || c > 0x7e) throw new Error('server principal is not printable ASCII');
      t[7 + i] = c;
    }
    this.t = t;
  }
  encode(nonce: number): Uint8Array {
    const o = this.t.slice();
    put32(o, 3, nonce);
    return o;
  }
}

// KerberosTime of the last second formatted (ctime echoes repeat within a second).
let lastSec = NaN;
const lastTime = new Uint8Array(15);
function putTime(o: Uint8Array, at: number, ms: number): void {
  const sec = Math.floor(ms / 1000);
  if (sec !== lastSec) {
    const s = formatKerberosTime(ms);
    for (let i = 0; i < 15; i++) lastTime[i] = s.charCodeAt(i);
    lastSec = sec;
  }
  o.set(lastTime, at);
}

/** EncAPRepPart [APPLICATION 27] { ctime, cusec, subkey } (no seq-number), as encodeEncApRepPart. */
export function encodeEncApRepPartFast(ctime: number, cusec: number, keytype: number, key: Uint8Array): Uint8Array {
  if (!(cusec >= 0 && cusec <= 999999) || key.length > 64) throw new Error('EncAPRepPart: value out of range');
  const cu = cusec < 0x80 ? 1 : cusec < 0x8000 ? 2 : cusec < 0x800000 ? 3 : 4;
  const kt = intTlv(keytype);
  const c0 = 2 + 17; // [0] { 18 0f time }
  const c1 = 2 + 2 + cu; // [1] { 02 cu cusec }
  const keySeq = 2 + kt.length + 2 + 2 + key.length; // SEQUENCE { [0] int, [1] { 04 len key } }
  const seqK = hl(keySeq) + keySeq;
  const c2 = hl(seqK) + seqK;
  const seq = c0 + c1 + c2;
  const app = hl(seq) + seq;
  const o = new Uint8Array(hl(app) + app);
  let at = putHdr(o, 0, ENC_AP_REP_PART, app);
  at = putHdr(o, at, T_SEQUENCE, seq);
  o[at++] = CTX | 0;
  o[at++] = 17;
  o[at++] = T_GENERALIZED_TIME;
  o[at++] = 15;
  putTime(o, at, ctime);
  at += 15;
  o[at++] = CTX | 1;
  o[at++] = 2 + cu;
  o[at++] = T_INTEGER;
  o[at++] = cu;
  for (let i = cu - 1; i >= 0; i--) o[at++] = (cusec / 2 ** (8 * i)) & 255;
  at = putHdr(o, at, CTX | 2, seqK);
  at = putHdr(o, at, T_SEQUENCE, keySeq);
  o[at++] = CTX | 0;
  o[at++] = kt.length;
  o.set(kt, at);
  at += kt.length;
  o[at++] = CTX | 1;
  o[at++] = 2 + key.length;
  o[at++] = T_OCTET_STRING;
  o[at++] = key.length;
  o.set(key, at);
  return o;
}

/**
 * The signed AP Reply (DOI IPsec, version 1.0) around KRB_AP_REP { pvno, msg-type,
 * enc-part { etype, cipher } }, HMAC'd with the pads of the usage-1102 key; as
 * encodeApReply(encodeApRep(...)). null when it would exceed MAX_DATAGRAM (the
 * generic encoder reports that).
 */
export function encodeApReplyFast(
  pads: HmacPads,
  etype: number,
  cipher: Uint8Array,
  scSpi: number,
  cs: Ciphersuite,
  saLifetime: number,
  gracePeriod: number,
  reestablish: boolean,
  ackRequired: boolean,
): Uint8Array | null {
  const et = intTlv(etype);
  const oct = hl(cipher.length) + cipher.length;
  const c2e = hl(oct) + oct;
  const ed = 2 + et.length + c2e;
  const c2 = hl(ed) + ed;
  const seq = 5 + 5 + hl(c2) + c2;
  const app = hl(seq) + seq;
  const der = hl(app) + app;
  const total = 3 + der + 4 + 3 + 4 + 4 + 1 + 1 + HMAC_LEN;
  if (total > MAX_DATAGRAM) return null;
  const o = new Uint8Array(total);
  o[0] = KMMID.AP_REPLY;
  o[1] = DOI.IPSEC;
  o[2] = VERSION;
  let at = putHdr(o, 3, TAG_AP_REP, app);
  at = putHdr(o, at, T_SEQUENCE, seq);
  o[at++] = CTX | 0; o[at++] = 3; o[at++] = T_INTEGER; o[at++] = 1; o[at++] = PVNO;
  o[at++] = CTX | 1; o[at++] = 3; o[at++] = T_INTEGER; o[at++] = 1; o[at++] = KRB_AP_REP;
  at = putHdr(o, at, CTX | 2, c2);
  at = putHdr(o, at, T_SEQUENCE, ed);
  o[at++] = CTX | 0;
  o[at++] = et.length;
  o.set(et, at);
  at += et.length;
  at = putHdr(o, at, CTX | 2, oct);
  at = putHdr(o, at, T_OCTET_STRING, cipher.length);
  o.set(cipher, at);
  at += cipher.length;
  put32(o, at, scSpi);
  at += 4;
  o[at++] = 1;
  o[at++] = cs.auth;
  o[at++] = cs.enc;
  put32(o, at, saLifetime);
  put32(o, at + 4, gracePeriod);
  at += 8;
  o[at++] = reestablish ? 1 : 0;
  o[at++] = ackRequired ? 1 : 0;
  hmacSha1Into(pads, o.subarray(0, at), o, at);
  return o;
}
