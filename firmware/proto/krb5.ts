// Kerberos V5 (RFC 4120) messages: plain-object types, DER encoders and strict
// decoders. Written inside the Espruino subset: runs on the board and in the
// host tools (KDC, SC, emulator).
//
// Conventions:
// - field names are RFC 4120 names in camelCase (padata-type -> padataType);
// - KerberosTime values are milliseconds since the epoch (whole seconds on the
//   wire: the sub-second part is dropped when encoding; microseconds travel in
//   their own cusec/susec/pausec fields);
// - KerberosFlags (kdc-options, ticket flags, ap-options) are unsigned 32-bit
//   numbers, RFC bit 0 = 0x80000000 (see the *_OPT_* / TKT_FLG_* masks);
// - pvno (5) and msg-type are implied by the function and checked on decode;
// - decoders throw only DecodeError; encoders throw Error on unencodable values;
// - a decoded Ticket keeps its exact DER in `raw`, and every encoder that embeds
//   a Ticket re-sends `raw` unchanged when present (delete it to re-encode from
//   the fields).

import { DecodeError } from './errors.ts';
import { DER_MAX_ITEMS } from './consts.ts';
import { DerReader, decodeAll, wBegin, wBytes, wEnd, wHdr, wMark, wPrim } from './der.ts';
import {
  AP_REP,
  AP_REQ,
  AUTHENTICATOR,
  AUTHORIZATION_DATA,
  AUTHORIZATION_DATA_ENTRY,
  CHECKSUM,
  ENCRYPTED_DATA,
  ENCRYPTION_KEY,
  ENC_AP_REP_PART,
  ENC_KDC_REP_PART,
  ETYPE_INFO2,
  ETYPE_INFO2_ENTRY,
  FLAGS,
  HOST_ADDRESS,
  HOST_ADDRESSES,
  INT,
  KDC_REP,
  KDC_REQ,
  KDC_REQ_BODY,
  KRB_ERROR_TYPE,
  KSTRING,
  LAST_REQ,
  LAST_REQ_ENTRY,
  METHOD_DATA,
  MICROSECONDS,
  MSG_TYPE,
  OCTETS,
  OPTIONAL,
  OPTIONAL_SEQ_OF,
  PA_DATA,
  PA_ENC_TS_ENC,
  PRINCIPAL_NAME,
  PVNO_FIELD,
  REQUIRED,
  SEQ_OF,
  TAG_10,
  TAG_11,
  TAG_12,
  TICKET,
  TIME,
  TRANSITED_ENCODING,
  UINT,
  LABELS,
  PVNO_LABEL,
  MSG_TYPE_LABEL,
} from './krb5-schema.ts';
import type { KrbSchema, KrbTable } from './krb5-schema.ts';

// ---------------------------------------------------------------- constants
// (in krb5-consts.ts, so that the bundle inlines them)

export * from './krb5-consts.ts';
import {
  PVNO,
  KRB_AS_REQ,
  KRB_AS_REP,
  KRB_TGS_REQ,
  KRB_TGS_REP,
  KRB_AP_REQ,
  KRB_AP_REP,
  KRB_ERROR,
  APP_TICKET,
  APP_AUTHENTICATOR,
  APP_ENC_TICKET_PART,
  APP_ENC_AS_REP_PART,
  APP_ENC_TGS_REP_PART,
  APP_ENC_AP_REP_PART,
} from './krb5-consts.ts';

// ---------------------------------------------------------------- types
// The message types (plain objects) are in krb5-types.ts: declarations only, nothing
// of them reaches the bundle.
export type * from './krb5-types.ts';
import type {
  PrincipalName,
  EncryptedData,
  EncryptionKey,
  Checksum,
  HostAddress,
  PaData,
  PaEncTsEnc,
  EtypeInfo2Entry,
  AuthorizationDataEntry,
  LastReqEntry,
  TransitedEncoding,
  Ticket,
  EncTicketPart,
  KdcReqBody,
  KdcReq,
  AsReq,
  KdcRep,
  AsRep,
  TgsRep,
  EncKdcRepPart,
  Authenticator,
  ApReq,
  ApRep,
  EncApRepPart,
  KrbError,
} from './krb5-types.ts';

// ---------------------------------------------------------------- type tables
//
// Every SEQUENCE is one line of text, its fields written tag + kind + mode + name with
// the names of krb5-schema.ts (which explains them), e.g. PrincipalName:
//   '0' + INT + REQUIRED + 'nameType ' + '1' + KSTRING + SEQ_OF + 'nameString'
// The bundler inlines those names and folds each table back into one string literal.

/**
 * The table of Kerberos type k (krb5-schema.ts). One chain of literals in code, not
 * objects: on the board a table costs no variables until it is used (most used first).
 */
function spec(k: string): string {
  // prettier-ignore
  return (
    // PrincipalName
    k == PRINCIPAL_NAME ?
      '0' + INT + REQUIRED + 'nameType ' +
      '1' + KSTRING + SEQ_OF + 'nameString' :
    // EncryptedData
    k == ENCRYPTED_DATA ?
      '0' + INT + REQUIRED + 'etype ' +
      '1' + UINT + OPTIONAL + 'kvno ' +
      '2' + OCTETS + REQUIRED + 'cipher' :
    // Ticket [APPLICATION 1]
    k == TICKET ?
      '0' + PVNO_FIELD + REQUIRED + (LABELS ? 'tkt-vno' : '') + ' ' +
      '1' + KSTRING + REQUIRED + 'realm ' +
      '2' + PRINCIPAL_NAME + REQUIRED + 'sname ' +
      '3' + ENCRYPTED_DATA + REQUIRED + 'encPart' :
    // EncryptionKey
    k == ENCRYPTION_KEY ?
      '0' + INT + REQUIRED + 'keytype ' +
      '1' + OCTETS + REQUIRED + 'keyvalue' :
    // AP-REQ
    k == AP_REQ ?
      '0' + PVNO_FIELD + REQUIRED + PVNO_LABEL + ' ' +
      '1' + MSG_TYPE + REQUIRED + MSG_TYPE_LABEL + ' ' +
      '2' + FLAGS + REQUIRED + 'apOptions ' +
      '3' + TICKET + REQUIRED + 'ticket ' +
      '4' + ENCRYPTED_DATA + REQUIRED + 'authenticator' :
    // Authenticator
    k == AUTHENTICATOR ?
      '0' + PVNO_FIELD + REQUIRED + (LABELS ? 'authenticator-vno' : '') + ' ' +
      '1' + KSTRING + REQUIRED + 'crealm ' +
      '2' + PRINCIPAL_NAME + REQUIRED + 'cname ' +
      '3' + CHECKSUM + OPTIONAL + 'cksum ' +
      '4' + MICROSECONDS + REQUIRED + 'cusec ' +
      '5' + TIME + REQUIRED + 'ctime ' +
      '6' + ENCRYPTION_KEY + OPTIONAL + 'subkey ' +
      '7' + UINT + OPTIONAL + 'seqNumber ' +
      '8' + AUTHORIZATION_DATA_ENTRY + OPTIONAL_SEQ_OF + 'authorizationData' :
    // AP-REP
    k == AP_REP ?
      '0' + PVNO_FIELD + REQUIRED + PVNO_LABEL + ' ' +
      '1' + MSG_TYPE + REQUIRED + MSG_TYPE_LABEL + ' ' +
      '2' + ENCRYPTED_DATA + REQUIRED + 'encPart' :
    // EncAPRepPart
    k == ENC_AP_REP_PART ?
      '0' + TIME + REQUIRED + 'ctime ' +
      '1' + MICROSECONDS + REQUIRED + 'cusec ' +
      '2' + ENCRYPTION_KEY + OPTIONAL + 'subkey ' +
      '3' + UINT + OPTIONAL + 'seqNumber' :
    // PA-DATA
    k == PA_DATA ?
      '1' + INT + REQUIRED + 'padataType ' +
      '2' + OCTETS + REQUIRED + 'padataValue' :
    // ETYPE-INFO2-ENTRY
    k == ETYPE_INFO2_ENTRY ?
      '0' + INT + REQUIRED + 'etype ' +
      '1' + KSTRING + OPTIONAL + 'salt ' +
      '2' + OCTETS + OPTIONAL + 's2kparams' :
    // LastReq entry
    k == LAST_REQ_ENTRY ?
      '0' + INT + REQUIRED + 'lrType ' +
      '1' + TIME + REQUIRED + 'lrValue' :
    // HostAddress
    k == HOST_ADDRESS ?
      '0' + INT + REQUIRED + 'addrType ' +
      '1' + OCTETS + REQUIRED + 'address' :
    // Checksum
    k == CHECKSUM ?
      '0' + INT + REQUIRED + 'cksumtype ' +
      '1' + OCTETS + REQUIRED + 'checksum' :
    // AuthorizationData entry
    k == AUTHORIZATION_DATA_ENTRY ?
      '0' + INT + REQUIRED + 'adType ' +
      '1' + OCTETS + REQUIRED + 'adData' :
    // KDC-REQ-BODY
    k == KDC_REQ_BODY ?
      '0' + FLAGS + REQUIRED + 'kdcOptions ' +
      '1' + PRINCIPAL_NAME + OPTIONAL + 'cname ' +
      '2' + KSTRING + REQUIRED + 'realm ' +
      '3' + PRINCIPAL_NAME + OPTIONAL + 'sname ' +
      '4' + TIME + OPTIONAL + 'from ' +
      '5' + TIME + REQUIRED + 'till ' +
      '6' + TIME + OPTIONAL + 'rtime ' +
      '7' + UINT + REQUIRED + 'nonce ' +
      '8' + INT + SEQ_OF + 'etype ' +
      '9' + HOST_ADDRESS + OPTIONAL_SEQ_OF + 'addresses ' +
      TAG_10 + ENCRYPTED_DATA + OPTIONAL + 'encAuthorizationData ' +
      TAG_11 + TICKET + OPTIONAL_SEQ_OF + 'additionalTickets' :
    // KDC-REQ
    k == KDC_REQ ?
      '1' + PVNO_FIELD + REQUIRED + PVNO_LABEL + ' ' +
      '2' + MSG_TYPE + REQUIRED + MSG_TYPE_LABEL + ' ' +
      '3' + PA_DATA + OPTIONAL_SEQ_OF + 'padata ' +
      '4' + KDC_REQ_BODY + REQUIRED + 'reqBody' :
    // KDC-REP
    k == KDC_REP ?
      '0' + PVNO_FIELD + REQUIRED + PVNO_LABEL + ' ' +
      '1' + MSG_TYPE + REQUIRED + MSG_TYPE_LABEL + ' ' +
      '2' + PA_DATA + OPTIONAL_SEQ_OF + 'padata ' +
      '3' + KSTRING + REQUIRED + 'crealm ' +
      '4' + PRINCIPAL_NAME + REQUIRED + 'cname ' +
      '5' + TICKET + REQUIRED + 'ticket ' +
      '6' + ENCRYPTED_DATA + REQUIRED + 'encPart' :
    // EncKDCRepPart
    k == ENC_KDC_REP_PART ?
      '0' + ENCRYPTION_KEY + REQUIRED + 'key ' +
      '1' + LAST_REQ_ENTRY + SEQ_OF + 'lastReq ' +
      '2' + UINT + REQUIRED + 'nonce ' +
      '3' + TIME + OPTIONAL + 'keyExpiration ' +
      '4' + FLAGS + REQUIRED + 'flags ' +
      '5' + TIME + REQUIRED + 'authtime ' +
      '6' + TIME + OPTIONAL + 'starttime ' +
      '7' + TIME + REQUIRED + 'endtime ' +
      '8' + TIME + OPTIONAL + 'renewTill ' +
      '9' + KSTRING + REQUIRED + 'srealm ' +
      TAG_10 + PRINCIPAL_NAME + REQUIRED + 'sname ' +
      TAG_11 + HOST_ADDRESS + OPTIONAL_SEQ_OF + 'caddr ' +
      TAG_12 + PA_DATA + OPTIONAL_SEQ_OF + 'encryptedPaData' :
    // KRB-ERROR
    k == KRB_ERROR_TYPE ?
      '0' + PVNO_FIELD + REQUIRED + PVNO_LABEL + ' ' +
      '1' + MSG_TYPE + REQUIRED + MSG_TYPE_LABEL + ' ' +
      '2' + TIME + OPTIONAL + 'ctime ' +
      '3' + MICROSECONDS + OPTIONAL + 'cusec ' +
      '4' + TIME + REQUIRED + 'stime ' +
      '5' + MICROSECONDS + REQUIRED + 'susec ' +
      '6' + INT + REQUIRED + 'errorCode ' +
      '7' + KSTRING + OPTIONAL + 'crealm ' +
      '8' + PRINCIPAL_NAME + OPTIONAL + 'cname ' +
      '9' + KSTRING + REQUIRED + 'realm ' +
      TAG_10 + PRINCIPAL_NAME + REQUIRED + 'sname ' +
      TAG_11 + KSTRING + OPTIONAL + 'eText ' +
      TAG_12 + OCTETS + OPTIONAL + 'eData' :
    // PA-ENC-TS-ENC
    k == PA_ENC_TS_ENC ?
      '0' + TIME + REQUIRED + 'patimestamp ' +
      '1' + MICROSECONDS + OPTIONAL + 'pausec' :
    // TransitedEncoding (k == TRANSITED_ENCODING)
    '0' + INT + REQUIRED + 'trType ' +
    '1' + OCTETS + REQUIRED + 'contents'
  );
}
/** EncTicketPart (KDC and SC only: left out of the firmware bundle). */
// prettier-ignore
const ENC_TICKET_PART = (
  '0' + FLAGS + REQUIRED + 'flags ' +
  '1' + ENCRYPTION_KEY + REQUIRED + 'key ' +
  '2' + KSTRING + REQUIRED + 'crealm ' +
  '3' + PRINCIPAL_NAME + REQUIRED + 'cname ' +
  '4' + TRANSITED_ENCODING + REQUIRED + 'transited ' +
  '5' + TIME + REQUIRED + 'authtime ' +
  '6' + TIME + OPTIONAL + 'starttime ' +
  '7' + TIME + REQUIRED + 'endtime ' +
  '8' + TIME + OPTIONAL + 'renewTill ' +
  '9' + HOST_ADDRESS + OPTIONAL_SEQ_OF + 'caddr ' +
  TAG_10 + AUTHORIZATION_DATA_ENTRY + OPTIONAL_SEQ_OF + 'authorizationData'
) as KrbTable;

// ---------------------------------------------------------------- table walkers

/**
 * Writes (in front) the SEQUENCE described by table f from object o, wrapped in
 * [APPLICATION app] unless app is 0; a Ticket (app 1) with raw is re-sent as is.
 */
function wSeq(f: string, o: any, app: number): void {
  if (app == 1 && o.raw) return wBytes(o.raw);
  const m0 = wMark();
  // Back to front: the last field is written first.
  for (let j = f.length; j > 0; ) {
    const i = f.lastIndexOf(' ', j - 1) + 1;
    const k = f.charAt(i + 1);
    const m = f.charAt(i + 2);
    const v = k == PVNO_FIELD ? PVNO : k == MSG_TYPE ? app : o[f.slice(i + 3, j)];
    if (v != null || m == REQUIRED || m == SEQ_OF) {
      const m1 = wMark();
      if (m == SEQ_OF || m == OPTIONAL_SEQ_OF) wList(k, v);
      else if (k < 'a') wSeq(spec(k), v, k == TICKET ? 1 : 0); // upper case: a Kerberos type
      else wPrim(k, v);
      wHdr(f.charCodeAt(i) + 112, m1); // [n] EXPLICIT: 0xa0 + (char - '0')
    }
    j = i - 1;
  }
  wHdr(0x30, m0);
  if (app) wHdr(0x60 | app, m0);
}
/** A SEQUENCE OF kind k. (One value is written out in both walkers: no wOne/rOne functions.) */
function wList(k: string, l: any[]): void {
  const m = wMark();
  for (let i = l.length - 1; i >= 0; i--) {
    if (k < 'a') wSeq(spec(k), l[i], k == TICKET ? 1 : 0);
    else wPrim(k, l[i]);
  }
  wHdr(0x30, m);
}
/**
 * Encodes a whole message or value of type t (krb5-schema.ts): a Kerberos type (in
 * [APPLICATION app] unless 0), a SEQUENCE OF type such as METHOD_DATA, or a whole
 * table. The firmware calls this (and krbDecode) directly instead of one named
 * encoder per message: one function on the board.
 */
export function krbEncode(t: KrbSchema, o: any, app: number): Uint8Array {
  wBegin();
  if (t.charAt(0) == SEQ_OF) wList(t.charAt(1), o);
  else wSeq(t.length == 1 ? spec(t) : t, o, app);
  return wEnd();
}

/** Reads the SEQUENCE described by table f (in [APPLICATION app] unless 0) into a new object. */
function rSeq(r: DerReader, f: string, app: number, what: string): any {
  const st = r.p;
  const a = app ? r.enter(0x60 | app, what) : r;
  const s = a.enter(0x30, what);
  const o: any = {};
  if (app == 1) o.raw = r.b.slice(st, r.p);
  for (let i = 0; i < f.length; ) {
    let j = f.indexOf(' ', i);
    if (j < 0) j = f.length;
    const tag = f.charCodeAt(i) + 112; // [n] EXPLICIT: 0xa0 + (char - '0')
    const k = f.charAt(i + 1);
    const m = f.charAt(i + 2);
    const key = f.slice(i + 3, j);
    if (m == REQUIRED || m == SEQ_OF || s.has(tag)) {
      // (The label is spelled out per call: short-error builds drop it.)
      const c = s.enter(tag, what + '.' + key);
      const cs = c.p;
      const v = m == SEQ_OF || m == OPTIONAL_SEQ_OF ? rList(c, k, what + '.' + key) : k < 'a' ? rSeq(c, spec(k), k == TICKET ? 1 : 0, what + '.' + key) : c.val(k, what + '.' + key);
      // KDC-REQ: the exact req-body DER (what TGS-REQ/FAST checksums cover).
      if (k == KDC_REQ_BODY) o.reqBodyRaw = c.b.slice(cs, c.p);
      c.end(what + '.' + key);
      if (k == PVNO_FIELD || k == MSG_TYPE) {
        if (v !== (k == PVNO_FIELD ? PVNO : app)) throw new DecodeError(what + '.' + key + ': expected ' + (k == PVNO_FIELD ? PVNO : app) + ', got ' + v);
      } else o[key] = v;
    }
    i = j + 1;
  }
  s.end(what);
  if (app) a.end(what);
  return o;
}
/** A SEQUENCE OF kind k, at most MAX_ITEMS elements. */
function rList(r: DerReader, k: string, what: string): any[] {
  const s = r.enter(0x30, what);
  const l: any[] = [];
  while (s.more()) {
    if (l.length >= DER_MAX_ITEMS) throw new DecodeError(what + ': more than ' + DER_MAX_ITEMS + ' elements');
    l.push(k < 'a' ? rSeq(s, spec(k), k == TICKET ? 1 : 0, what) : s.val(k, what));
  }
  return l;
}
/** Decodes a whole message or value of type t (as krbEncode's), labelled what in errors. */
export function krbDecode(b: Uint8Array, t: KrbSchema, app: number, what: string): any {
  return decodeAll(b, what, (r) => (t.charAt(0) == SEQ_OF ? rList(r, t.charAt(1), what) : rSeq(r, t.length == 1 ? spec(t) : t, app, what)));
}

// ---------------------------------------------------------------- PrincipalName, EncryptedData, EncryptionKey, Checksum

export function encodePrincipalName(p: PrincipalName): Uint8Array {
  return krbEncode(PRINCIPAL_NAME, p, 0);
}
export function decodePrincipalName(b: Uint8Array): PrincipalName {
  return krbDecode(b, PRINCIPAL_NAME, 0, 'PrincipalName');
}
export function encodeEncryptedData(e: EncryptedData): Uint8Array {
  return krbEncode(ENCRYPTED_DATA, e, 0);
}
export function decodeEncryptedData(b: Uint8Array): EncryptedData {
  return krbDecode(b, ENCRYPTED_DATA, 0, 'EncryptedData');
}
export function encodeEncryptionKey(k: EncryptionKey): Uint8Array {
  return krbEncode(ENCRYPTION_KEY, k, 0);
}
export function decodeEncryptionKey(b: Uint8Array): EncryptionKey {
  return krbDecode(b, ENCRYPTION_KEY, 0, 'EncryptionKey');
}
export function encodeChecksum(c: Checksum): Uint8Array {
  return krbEncode(CHECKSUM, c, 0);
}
export function decodeChecksum(b: Uint8Array): Checksum {
  return krbDecode(b, CHECKSUM, 0, 'Checksum');
}

// ---------------------------------------------------------------- HostAddress(es)

export function encodeHostAddress(a: HostAddress): Uint8Array {
  return krbEncode(HOST_ADDRESS, a, 0);
}
export function decodeHostAddress(b: Uint8Array): HostAddress {
  return krbDecode(b, HOST_ADDRESS, 0, 'HostAddress');
}
export function encodeHostAddresses(a: HostAddress[]): Uint8Array {
  return krbEncode(HOST_ADDRESSES, a, 0);
}
export function decodeHostAddresses(b: Uint8Array): HostAddress[] {
  return krbDecode(b, HOST_ADDRESSES, 0, 'HostAddresses');
}

// ---------------------------------------------------------------- PA-DATA, METHOD-DATA

export function encodePaData(p: PaData): Uint8Array {
  return krbEncode(PA_DATA, p, 0);
}
export function decodePaData(b: Uint8Array): PaData {
  return krbDecode(b, PA_DATA, 0, 'PA-DATA');
}
/** METHOD-DATA ::= SEQUENCE OF PA-DATA (KRB-ERROR e-data for PREAUTH_REQUIRED). */
export function encodeMethodData(m: PaData[]): Uint8Array {
  return krbEncode(METHOD_DATA, m, 0);
}
export function decodeMethodData(b: Uint8Array): PaData[] {
  return krbDecode(b, METHOD_DATA, 0, 'METHOD-DATA');
}
/** The first PA-DATA of the given type, or undefined. */
export function findPaData(list: PaData[] | undefined, type: number): PaData | undefined {
  if (list) for (let i = 0; i < list.length; i++) if (list[i].padataType === type) return list[i];
  return undefined;
}

// ---------------------------------------------------------------- PA-ENC-TS-ENC, ETYPE-INFO2

export function encodePaEncTsEnc(p: PaEncTsEnc): Uint8Array {
  return krbEncode(PA_ENC_TS_ENC, p, 0);
}
export function decodePaEncTsEnc(b: Uint8Array): PaEncTsEnc {
  return krbDecode(b, PA_ENC_TS_ENC, 0, 'PA-ENC-TS-ENC');
}
export function encodeEtypeInfo2(list: EtypeInfo2Entry[]): Uint8Array {
  if (list.length < 1) throw new Error('ETYPE-INFO2: needs at least one entry');
  return krbEncode(ETYPE_INFO2, list, 0);
}
export function decodeEtypeInfo2(b: Uint8Array): EtypeInfo2Entry[] {
  const l = krbDecode(b, ETYPE_INFO2, 0, 'ETYPE-INFO2');
  if (l.length < 1) throw new DecodeError('ETYPE-INFO2: empty');
  return l;
}

// ---------------------------------------------------------------- AuthorizationData, LastReq, TransitedEncoding

export function encodeAuthorizationData(a: AuthorizationDataEntry[]): Uint8Array {
  return krbEncode(AUTHORIZATION_DATA, a, 0);
}
export function decodeAuthorizationData(b: Uint8Array): AuthorizationDataEntry[] {
  return krbDecode(b, AUTHORIZATION_DATA, 0, 'AuthorizationData');
}
export function encodeLastReq(l: LastReqEntry[]): Uint8Array {
  return krbEncode(LAST_REQ, l, 0);
}
export function decodeLastReq(b: Uint8Array): LastReqEntry[] {
  return krbDecode(b, LAST_REQ, 0, 'LastReq');
}
export function encodeTransitedEncoding(t: TransitedEncoding): Uint8Array {
  return krbEncode(TRANSITED_ENCODING, t, 0);
}
export function decodeTransitedEncoding(b: Uint8Array): TransitedEncoding {
  return krbDecode(b, TRANSITED_ENCODING, 0, 'TransitedEncoding');
}

// ---------------------------------------------------------------- Ticket [APPLICATION 1], EncTicketPart [APPLICATION 3]

/** Encodes a Ticket; returns t.raw unchanged when present. */
export function encodeTicket(t: Ticket): Uint8Array {
  return t.raw ? t.raw : krbEncode(TICKET, t, APP_TICKET);
}
/** Decodes a Ticket; the result's raw holds a copy of the exact input bytes. */
export function decodeTicket(b: Uint8Array): Ticket {
  return krbDecode(b, TICKET, APP_TICKET, 'Ticket');
}
export function encodeEncTicketPart(e: EncTicketPart): Uint8Array {
  return krbEncode(ENC_TICKET_PART, e, APP_ENC_TICKET_PART);
}
export function decodeEncTicketPart(b: Uint8Array): EncTicketPart {
  return krbDecode(b, ENC_TICKET_PART, APP_ENC_TICKET_PART, 'EncTicketPart');
}

// ---------------------------------------------------------------- KDC-REQ-BODY, AS-REQ, TGS-REQ

export function encodeKdcReqBody(b: KdcReqBody): Uint8Array {
  return krbEncode(KDC_REQ_BODY, b, 0);
}
export function decodeKdcReqBody(b: Uint8Array): KdcReqBody {
  return krbDecode(b, KDC_REQ_BODY, 0, 'KDC-REQ-BODY');
}
/** AS-REQ [APPLICATION 10]. */
export function encodeAsReq(q: AsReq): Uint8Array {
  return krbEncode(KDC_REQ, q, KRB_AS_REQ);
}
export function decodeAsReq(b: Uint8Array): AsReq {
  return decodeKdcReqAs(b, KRB_AS_REQ);
}
/** TGS-REQ [APPLICATION 12] (padata carries PA-TGS-REQ). */
export function encodeTgsReq(q: KdcReq): Uint8Array {
  return krbEncode(KDC_REQ, q, KRB_TGS_REQ);
}
/** AS-REQ or TGS-REQ; msgType says which. */
export function decodeKdcReq(b: Uint8Array): KdcReq {
  const t = messageType(b);
  if (t !== KRB_AS_REQ && t !== KRB_TGS_REQ) throw new DecodeError('KDC-REQ: not an AS-REQ or TGS-REQ');
  return decodeKdcReqAs(b, t);
}
function decodeKdcReqAs(b: Uint8Array, t: number): KdcReq {
  const q: KdcReq = krbDecode(b, KDC_REQ, t, t === KRB_AS_REQ ? 'AS-REQ' : 'TGS-REQ');
  q.msgType = t;
  return q;
}

// ---------------------------------------------------------------- AS-REP / TGS-REP

/** AS-REP [APPLICATION 11]. */
export function encodeAsRep(p: AsRep): Uint8Array {
  return krbEncode(KDC_REP, p, KRB_AS_REP);
}
export function decodeAsRep(b: Uint8Array): AsRep {
  return decodeKdcRepAs(b, KRB_AS_REP);
}
/** TGS-REP [APPLICATION 13]. */
export function encodeTgsRep(p: TgsRep): Uint8Array {
  return krbEncode(KDC_REP, p, KRB_TGS_REP);
}
export function decodeTgsRep(b: Uint8Array): TgsRep {
  return decodeKdcRepAs(b, KRB_TGS_REP);
}
/** AS-REP or TGS-REP; msgType says which. */
export function decodeKdcRep(b: Uint8Array): KdcRep {
  const t = messageType(b);
  if (t !== KRB_AS_REP && t !== KRB_TGS_REP) throw new DecodeError('KDC-REP: not an AS-REP or TGS-REP');
  return decodeKdcRepAs(b, t);
}
function decodeKdcRepAs(b: Uint8Array, t: number): KdcRep {
  const p: KdcRep = krbDecode(b, KDC_REP, t, t === KRB_AS_REP ? 'AS-REP' : 'TGS-REP');
  p.msgType = t;
  return p;
}

// ---------------------------------------------------------------- EncKDCRepPart [APPLICATION 25 / 26]

/** EncKDCRepPart, as EncASRepPart [APPLICATION 25] unless app = 26 (EncTGSRepPart). */
export function encodeEncKdcRepPart(e: EncKdcRepPart, app?: number): Uint8Array {
  return krbEncode(ENC_KDC_REP_PART, e, app === APP_ENC_TGS_REP_PART ? app : APP_ENC_AS_REP_PART);
}
/** Accepts EncASRepPart (25) and EncTGSRepPart (26): MIT's KDC sends 26 in AS-REPs. */
export function decodeEncKdcRepPart(b: Uint8Array): EncKdcRepPart {
  const app = b instanceof Uint8Array && b[0] === (0x60 | APP_ENC_TGS_REP_PART) ? APP_ENC_TGS_REP_PART : APP_ENC_AS_REP_PART;
  return krbDecode(b, ENC_KDC_REP_PART, app, 'EncKDCRepPart');
}

// ---------------------------------------------------------------- Authenticator [APPLICATION 2], AP-REQ [14], AP-REP [15], EncAPRepPart [27]

export function encodeAuthenticator(x: Authenticator): Uint8Array {
  return krbEncode(AUTHENTICATOR, x, APP_AUTHENTICATOR);
}
export function decodeAuthenticator(b: Uint8Array): Authenticator {
  return krbDecode(b, AUTHENTICATOR, APP_AUTHENTICATOR, 'Authenticator');
}
export function encodeApReq(q: ApReq): Uint8Array {
  return krbEncode(AP_REQ, q, KRB_AP_REQ);
}
export function decodeApReq(b: Uint8Array): ApReq {
  return krbDecode(b, AP_REQ, KRB_AP_REQ, 'AP-REQ');
}
export function encodeApRep(p: ApRep): Uint8Array {
  return krbEncode(AP_REP, p, KRB_AP_REP);
}
export function decodeApRep(b: Uint8Array): ApRep {
  return krbDecode(b, AP_REP, KRB_AP_REP, 'AP-REP');
}
export function encodeEncApRepPart(p: EncApRepPart): Uint8Array {
  return krbEncode(ENC_AP_REP_PART, p, APP_ENC_AP_REP_PART);
}
export function decodeEncApRepPart(b: Uint8Array): EncApRepPart {
  return krbDecode(b, ENC_AP_REP_PART, APP_ENC_AP_REP_PART, 'EncAPRepPart');
}

// ---------------------------------------------------------------- KRB-ERROR [APPLICATION 30]

export function encodeKrbError(x: KrbError): Uint8Array {
  return krbEncode(KRB_ERROR_TYPE, x, KRB_ERROR);
}
export function decodeKrbError(b: Uint8Array): KrbError {
  return krbDecode(b, KRB_ERROR_TYPE, KRB_ERROR, 'KRB-ERROR');
}

// ---------------------------------------------------------------- message helpers

/**
 * The [APPLICATION n] number of a message (KRB_AS_REP, KRB_ERROR, ...), or -1
 * if the first byte is not an application-class constructed tag. Never throws.
 */
export function messageType(b: Uint8Array): number {
  if (!(b instanceof Uint8Array) || b.length === 0) return -1;
  const t = b[0];
  if ((t & 0xe0) !== 0x60 || (t & 0x1f) === 0x1f) return -1;
  return t & 0x1f;
}

/**
 * The exact DER bytes (a copy) of the Ticket inside an AP-REQ, AS-REP or
 * TGS-REP, without decoding the rest; DecodeError if there is none.
 */
export function ticketDer(msg: Uint8Array): Uint8Array {
  const t = messageType(msg);
  const field = t === KRB_AP_REQ ? 0xa3 : t === KRB_AS_REP || t === KRB_TGS_REP ? 0xa5 : -1;
  if (field < 0) throw new DecodeError('ticket: message is not an AP-REQ, AS-REP or TGS-REP');
  return decodeAll(msg, 'ticket', (r) => {
    const s = r.enter(0x60 | t, 'ticket').enter(0x30, 'ticket');
    while (s.more() && !s.has(field)) s.p = s.hdr(-1, 'ticket') + s.p; // skip (hdr moves p first)
    const c = s.enter(field, 'ticket');
    const st = c.p;
    const n = c.hdr(0x60 | APP_TICKET, 'ticket');
    c.p += n;
    c.end('ticket');
    return c.b.slice(st, c.p);
  });
}

// ---------------------------------------------------------------- principal strings
// In principal.ts (RFC 1964 section 2.1.1 text form, parsed and printed).
export * from './principal.ts';
