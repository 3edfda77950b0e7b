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
  KRB_SAFE,
  KRB_PRIV,
  KRB_CRED,
  KRB_ERROR,
  APP_TICKET,
  APP_AUTHENTICATOR,
  APP_ENC_TICKET_PART,
  APP_ENC_AS_REP_PART,
  APP_ENC_TGS_REP_PART,
  APP_ENC_AP_REP_PART,
  PA_TGS_REQ,
  PA_ENC_TIMESTAMP,
  PA_PW_SALT,
  PA_ETYPE_INFO,
  PA_PK_AS_REQ,
  PA_PK_AS_REP,
  PA_ETYPE_INFO2,
  PA_PAC_REQUEST,
  PA_FX_COOKIE,
  PA_FX_FAST,
  PA_FX_ERROR,
  PA_ENCRYPTED_CHALLENGE,
  PA_REQ_ENC_PA_REP,
  NT_PRINCIPAL,
  NT_SRV_INST,
  KDC_ERR_NONE,
  KDC_ERR_NAME_EXP,
  KDC_ERR_SERVICE_EXP,
  KDC_ERR_BAD_PVNO,
  KDC_ERR_C_OLD_MAST_KVNO,
  KDC_ERR_S_OLD_MAST_KVNO,
  KDC_ERR_C_PRINCIPAL_UNKNOWN,
  KDC_ERR_S_PRINCIPAL_UNKNOWN,
  KDC_ERR_PRINCIPAL_NOT_UNIQUE,
  KDC_ERR_NULL_KEY,
  KDC_ERR_CANNOT_POSTDATE,
  KDC_ERR_NEVER_VALID,
  KDC_ERR_POLICY,
  KDC_ERR_BADOPTION,
  KDC_ERR_ETYPE_NOSUPP,
  KDC_ERR_SUMTYPE_NOSUPP,
  KDC_ERR_PADATA_TYPE_NOSUPP,
  KDC_ERR_TRTYPE_NOSUPP,
  KDC_ERR_CLIENT_REVOKED,
  KDC_ERR_SERVICE_REVOKED,
  KDC_ERR_TGT_REVOKED,
  KDC_ERR_CLIENT_NOTYET,
  KDC_ERR_SERVICE_NOTYET,
  KDC_ERR_KEY_EXPIRED,
  KDC_ERR_PREAUTH_FAILED,
  KDC_ERR_PREAUTH_REQUIRED,
  KDC_ERR_SERVER_NOMATCH,
  KDC_ERR_MUST_USE_USER2USER,
  KDC_ERR_PATH_NOT_ACCEPTED,
  KDC_ERR_SVC_UNAVAILABLE,
  KRB_AP_ERR_BAD_INTEGRITY,
  KRB_AP_ERR_TKT_EXPIRED,
  KRB_AP_ERR_TKT_NYV,
  KRB_AP_ERR_REPEAT,
  KRB_AP_ERR_NOT_US,
  KRB_AP_ERR_BADMATCH,
  KRB_AP_ERR_SKEW,
  KRB_AP_ERR_BADADDR,
  KRB_AP_ERR_BADVERSION,
  KRB_AP_ERR_MSG_TYPE,
  KRB_AP_ERR_MODIFIED,
  KRB_AP_ERR_BADORDER,
  KRB_AP_ERR_BADKEYVER,
  KRB_AP_ERR_NOKEY,
  KRB_AP_ERR_MUT_FAIL,
  KRB_AP_ERR_BADDIRECTION,
  KRB_AP_ERR_METHOD,
  KRB_AP_ERR_BADSEQ,
  KRB_AP_ERR_INAPP_CKSUM,
  KRB_ERR_RESPONSE_TOO_BIG,
  KRB_ERR_GENERIC,
  KRB_ERR_FIELD_TOOLONG,
  KDC_ERR_WRONG_REALM,
  KU_AS_REQ_PA_ENC_TIMESTAMP,
  KU_KDC_REP_TICKET,
  KU_AS_REP_ENCPART,
  KU_TGS_REQ_AUTH_DAT_SESSKEY,
  KU_TGS_REQ_AUTH_DAT_SUBKEY,
  KU_TGS_REQ_AUTH_CKSUM,
  KU_TGS_REQ_AUTH,
  KU_TGS_REP_ENCPART_SESSKEY,
  KU_TGS_REP_ENCPART_SUBKEY,
  KU_AP_REQ_AUTH_CKSUM,
  KU_AP_REQ_AUTH,
  KU_AP_REP_ENCPART,
  KU_KRB_PRIV_ENCPART,
  KU_KRB_CRED_ENCPART,
  KU_KRB_SAFE_CKSUM,
} from './krb5-consts.ts';

// The same constants grouped (ERR.KDC_ERR_PREAUTH_REQUIRED, ...), for code that
// prefers one import; the firmware should use the flat names (tree-shaken).
/** message types and [APPLICATION n] tags */
export const MSG = {
  KRB_AS_REQ: KRB_AS_REQ,
  KRB_AS_REP: KRB_AS_REP,
  KRB_TGS_REQ: KRB_TGS_REQ,
  KRB_TGS_REP: KRB_TGS_REP,
  KRB_AP_REQ: KRB_AP_REQ,
  KRB_AP_REP: KRB_AP_REP,
  KRB_SAFE: KRB_SAFE,
  KRB_PRIV: KRB_PRIV,
  KRB_CRED: KRB_CRED,
  KRB_ERROR: KRB_ERROR,
  APP_TICKET: APP_TICKET,
  APP_AUTHENTICATOR: APP_AUTHENTICATOR,
  APP_ENC_TICKET_PART: APP_ENC_TICKET_PART,
  APP_ENC_AS_REP_PART: APP_ENC_AS_REP_PART,
  APP_ENC_TGS_REP_PART: APP_ENC_TGS_REP_PART,
  APP_ENC_AP_REP_PART: APP_ENC_AP_REP_PART,
};
/** PA-DATA types */
export const PA = {
  PA_TGS_REQ: PA_TGS_REQ,
  PA_ENC_TIMESTAMP: PA_ENC_TIMESTAMP,
  PA_PW_SALT: PA_PW_SALT,
  PA_ETYPE_INFO: PA_ETYPE_INFO,
  PA_PK_AS_REQ: PA_PK_AS_REQ,
  PA_PK_AS_REP: PA_PK_AS_REP,
  PA_ETYPE_INFO2: PA_ETYPE_INFO2,
  PA_PAC_REQUEST: PA_PAC_REQUEST,
  PA_FX_COOKIE: PA_FX_COOKIE,
  PA_FX_FAST: PA_FX_FAST,
  PA_FX_ERROR: PA_FX_ERROR,
  PA_ENCRYPTED_CHALLENGE: PA_ENCRYPTED_CHALLENGE,
  PA_REQ_ENC_PA_REP: PA_REQ_ENC_PA_REP,
};
/** error codes */
export const ERR = {
  KDC_ERR_NONE: KDC_ERR_NONE,
  KDC_ERR_NAME_EXP: KDC_ERR_NAME_EXP,
  KDC_ERR_SERVICE_EXP: KDC_ERR_SERVICE_EXP,
  KDC_ERR_BAD_PVNO: KDC_ERR_BAD_PVNO,
  KDC_ERR_C_OLD_MAST_KVNO: KDC_ERR_C_OLD_MAST_KVNO,
  KDC_ERR_S_OLD_MAST_KVNO: KDC_ERR_S_OLD_MAST_KVNO,
  KDC_ERR_C_PRINCIPAL_UNKNOWN: KDC_ERR_C_PRINCIPAL_UNKNOWN,
  KDC_ERR_S_PRINCIPAL_UNKNOWN: KDC_ERR_S_PRINCIPAL_UNKNOWN,
  KDC_ERR_PRINCIPAL_NOT_UNIQUE: KDC_ERR_PRINCIPAL_NOT_UNIQUE,
  KDC_ERR_NULL_KEY: KDC_ERR_NULL_KEY,
  KDC_ERR_CANNOT_POSTDATE: KDC_ERR_CANNOT_POSTDATE,
  KDC_ERR_NEVER_VALID: KDC_ERR_NEVER_VALID,
  KDC_ERR_POLICY: KDC_ERR_POLICY,
  KDC_ERR_BADOPTION: KDC_ERR_BADOPTION,
  KDC_ERR_ETYPE_NOSUPP: KDC_ERR_ETYPE_NOSUPP,
  KDC_ERR_SUMTYPE_NOSUPP: KDC_ERR_SUMTYPE_NOSUPP,
  KDC_ERR_PADATA_TYPE_NOSUPP: KDC_ERR_PADATA_TYPE_NOSUPP,
  KDC_ERR_TRTYPE_NOSUPP: KDC_ERR_TRTYPE_NOSUPP,
  KDC_ERR_CLIENT_REVOKED: KDC_ERR_CLIENT_REVOKED,
  KDC_ERR_SERVICE_REVOKED: KDC_ERR_SERVICE_REVOKED,
  KDC_ERR_TGT_REVOKED: KDC_ERR_TGT_REVOKED,
  KDC_ERR_CLIENT_NOTYET: KDC_ERR_CLIENT_NOTYET,
  KDC_ERR_SERVICE_NOTYET: KDC_ERR_SERVICE_NOTYET,
  KDC_ERR_KEY_EXPIRED: KDC_ERR_KEY_EXPIRED,
  KDC_ERR_PREAUTH_FAILED: KDC_ERR_PREAUTH_FAILED,
  KDC_ERR_PREAUTH_REQUIRED: KDC_ERR_PREAUTH_REQUIRED,
  KDC_ERR_SERVER_NOMATCH: KDC_ERR_SERVER_NOMATCH,
  KDC_ERR_MUST_USE_USER2USER: KDC_ERR_MUST_USE_USER2USER,
  KDC_ERR_PATH_NOT_ACCEPTED: KDC_ERR_PATH_NOT_ACCEPTED,
  KDC_ERR_SVC_UNAVAILABLE: KDC_ERR_SVC_UNAVAILABLE,
  KRB_AP_ERR_BAD_INTEGRITY: KRB_AP_ERR_BAD_INTEGRITY,
  KRB_AP_ERR_TKT_EXPIRED: KRB_AP_ERR_TKT_EXPIRED,
  KRB_AP_ERR_TKT_NYV: KRB_AP_ERR_TKT_NYV,
  KRB_AP_ERR_REPEAT: KRB_AP_ERR_REPEAT,
  KRB_AP_ERR_NOT_US: KRB_AP_ERR_NOT_US,
  KRB_AP_ERR_BADMATCH: KRB_AP_ERR_BADMATCH,
  KRB_AP_ERR_SKEW: KRB_AP_ERR_SKEW,
  KRB_AP_ERR_BADADDR: KRB_AP_ERR_BADADDR,
  KRB_AP_ERR_BADVERSION: KRB_AP_ERR_BADVERSION,
  KRB_AP_ERR_MSG_TYPE: KRB_AP_ERR_MSG_TYPE,
  KRB_AP_ERR_MODIFIED: KRB_AP_ERR_MODIFIED,
  KRB_AP_ERR_BADORDER: KRB_AP_ERR_BADORDER,
  KRB_AP_ERR_BADKEYVER: KRB_AP_ERR_BADKEYVER,
  KRB_AP_ERR_NOKEY: KRB_AP_ERR_NOKEY,
  KRB_AP_ERR_MUT_FAIL: KRB_AP_ERR_MUT_FAIL,
  KRB_AP_ERR_BADDIRECTION: KRB_AP_ERR_BADDIRECTION,
  KRB_AP_ERR_METHOD: KRB_AP_ERR_METHOD,
  KRB_AP_ERR_BADSEQ: KRB_AP_ERR_BADSEQ,
  KRB_AP_ERR_INAPP_CKSUM: KRB_AP_ERR_INAPP_CKSUM,
  KRB_ERR_RESPONSE_TOO_BIG: KRB_ERR_RESPONSE_TOO_BIG,
  KRB_ERR_GENERIC: KRB_ERR_GENERIC,
  KRB_ERR_FIELD_TOOLONG: KRB_ERR_FIELD_TOOLONG,
  KDC_ERR_WRONG_REALM: KDC_ERR_WRONG_REALM,
};
/** key usages */
export const KU = {
  KU_AS_REQ_PA_ENC_TIMESTAMP: KU_AS_REQ_PA_ENC_TIMESTAMP,
  KU_KDC_REP_TICKET: KU_KDC_REP_TICKET,
  KU_AS_REP_ENCPART: KU_AS_REP_ENCPART,
  KU_TGS_REQ_AUTH_DAT_SESSKEY: KU_TGS_REQ_AUTH_DAT_SESSKEY,
  KU_TGS_REQ_AUTH_DAT_SUBKEY: KU_TGS_REQ_AUTH_DAT_SUBKEY,
  KU_TGS_REQ_AUTH_CKSUM: KU_TGS_REQ_AUTH_CKSUM,
  KU_TGS_REQ_AUTH: KU_TGS_REQ_AUTH,
  KU_TGS_REP_ENCPART_SESSKEY: KU_TGS_REP_ENCPART_SESSKEY,
  KU_TGS_REP_ENCPART_SUBKEY: KU_TGS_REP_ENCPART_SUBKEY,
  KU_AP_REQ_AUTH_CKSUM: KU_AP_REQ_AUTH_CKSUM,
  KU_AP_REQ_AUTH: KU_AP_REQ_AUTH,
  KU_AP_REP_ENCPART: KU_AP_REP_ENCPART,
  KU_KRB_PRIV_ENCPART: KU_KRB_PRIV_ENCPART,
  KU_KRB_CRED_ENCPART: KU_KRB_CRED_ENCPART,
  KU_KRB_SAFE_CKSUM: KU_KRB_SAFE_CKSUM,
};

// ---------------------------------------------------------------- types

export interface PrincipalName {
  nameType: number;
  nameString: string[];
}
export interface EncryptedData {
  etype: number;
  kvno?: number;
  cipher: Uint8Array;
}
export interface EncryptionKey {
  keytype: number;
  keyvalue: Uint8Array;
}
export interface Checksum {
  cksumtype: number;
  checksum: Uint8Array;
}
export interface HostAddress {
  addrType: number;
  address: Uint8Array;
}
export interface PaData {
  padataType: number;
  padataValue: Uint8Array;
}
export interface PaEncTsEnc {
  /** ms since the epoch (whole seconds on the wire) */
  patimestamp: number;
  pausec?: number;
}
export interface EtypeInfo2Entry {
  etype: number;
  salt?: string;
  s2kparams?: Uint8Array;
}
export interface AuthorizationDataEntry {
  adType: number;
  adData: Uint8Array;
}
export interface LastReqEntry {
  lrType: number;
  /** ms since the epoch */
  lrValue: number;
}
export interface TransitedEncoding {
  trType: number;
  contents: Uint8Array;
}
export interface Ticket {
  realm: string;
  sname: PrincipalName;
  encPart: EncryptedData;
  /** Exact DER of the Ticket as received; encoders re-send it unchanged. */
  raw?: Uint8Array;
}
export interface EncTicketPart {
  flags: number;
  key: EncryptionKey;
  crealm: string;
  cname: PrincipalName;
  transited: TransitedEncoding;
  authtime: number;
  starttime?: number;
  endtime: number;
  renewTill?: number;
  caddr?: HostAddress[];
  authorizationData?: AuthorizationDataEntry[];
}
export interface KdcReqBody {
  kdcOptions: number;
  cname?: PrincipalName;
  realm: string;
  sname?: PrincipalName;
  from?: number;
  till: number;
  rtime?: number;
  nonce: number;
  etype: number[];
  addresses?: HostAddress[];
  encAuthorizationData?: EncryptedData;
  additionalTickets?: Ticket[];
}
export interface KdcReq {
  padata?: PaData[];
  reqBody: KdcReqBody;
  /** Decode only: msg-type (10 AS-REQ, 12 TGS-REQ). */
  msgType?: number;
  /** Decode only: the exact DER of req-body (checksummed by TGS-REQ / FAST). */
  reqBodyRaw?: Uint8Array;
}
export type AsReq = KdcReq;
export interface KdcRep {
  padata?: PaData[];
  crealm: string;
  cname: PrincipalName;
  ticket: Ticket;
  encPart: EncryptedData;
  /** Decode only: msg-type (11 AS-REP, 13 TGS-REP). */
  msgType?: number;
}
export type AsRep = KdcRep;
export type TgsRep = KdcRep;
export interface EncKdcRepPart {
  key: EncryptionKey;
  lastReq: LastReqEntry[];
  nonce: number;
  keyExpiration?: number;
  flags: number;
  authtime: number;
  starttime?: number;
  endtime: number;
  renewTill?: number;
  srealm: string;
  sname: PrincipalName;
  caddr?: HostAddress[];
  /** RFC 6806 encrypted-pa-data [12]. */
  encryptedPaData?: PaData[];
}
export interface Authenticator {
  crealm: string;
  cname: PrincipalName;
  cksum?: Checksum;
  cusec: number;
  ctime: number;
  subkey?: EncryptionKey;
  seqNumber?: number;
  authorizationData?: AuthorizationDataEntry[];
}
export interface ApReq {
  apOptions: number;
  ticket: Ticket;
  authenticator: EncryptedData;
}
export interface ApRep {
  encPart: EncryptedData;
}
export interface EncApRepPart {
  ctime: number;
  cusec: number;
  subkey?: EncryptionKey;
  seqNumber?: number;
}
export interface KrbError {
  ctime?: number;
  cusec?: number;
  stime: number;
  susec: number;
  errorCode: number;
  crealm?: string;
  cname?: PrincipalName;
  realm: string;
  sname: PrincipalName;
  eText?: string;
  eData?: Uint8Array;
}

// ---------------------------------------------------------------- type tables
//
// Every SEQUENCE is one line of text walked by one encoder (wSeq) and one decoder
// (rSeq), the way MIT's asn1_encode.c describes types with tables. A field is
// "<tag><kind><mode><name>", fields separated by one space:
//   tag   the [n] EXPLICIT context tag, as the char '0' + n ('0'..'<' for 0..12);
//   kind  a primitive (der.ts: i Int32, u UInt32, m Microseconds, s KerberosString,
//         o OCTET STRING, t KerberosTime, f KerberosFlags; v pvno, must be 5;
//         n msg-type, must be the message's [APPLICATION] number), or an upper-case
//         letter naming another table (spec());
//   mode  '-' required, '?' OPTIONAL, '*' SEQUENCE OF, '+' OPTIONAL SEQUENCE OF;
//   name  the property of the plain object (fields are in tag order).
// Fields of kind v and n are checked on decode and not stored.

/**
 * The table of type letter k. One chain of literals in code, not objects: on the
 * board a table costs no variables until it is used (most used first).
 */
function spec(k: string): string {
  // prettier-ignore
  return (
    k == 'P' ? '0i-nameType 1s*nameString' : // PrincipalName
    k == 'E' ? '0i-etype 1u?kvno 2o-cipher' : // EncryptedData
    k == 'T' ? '0v-tkt-vno 1s-realm 2P-sname 3E-encPart' : // Ticket [APPLICATION 1]
    k == 'K' ? '0i-keytype 1o-keyvalue' : // EncryptionKey
    k == 'M' ? '0v-pvno 1n-msg-type 2f-apOptions 3T-ticket 4E-authenticator' : // AP-REQ
    k == 'U' ? '0v-authenticator-vno 1s-crealm 2P-cname 3C?cksum 4m-cusec 5t-ctime 6K?subkey 7u?seqNumber 8A+authorizationData' : // Authenticator
    k == 'N' ? '0v-pvno 1n-msg-type 2E-encPart' : // AP-REP
    k == 'O' ? '0t-ctime 1m-cusec 2K?subkey 3u?seqNumber' : // EncAPRepPart
    k == 'D' ? '1i-padataType 2o-padataValue' : // PA-DATA
    k == 'I' ? '0i-etype 1s?salt 2o?s2kparams' : // ETYPE-INFO2-ENTRY
    k == 'L' ? '0i-lrType 1t-lrValue' : // LastReq entry
    k == 'H' ? '0i-addrType 1o-address' : // HostAddress
    k == 'C' ? '0i-cksumtype 1o-checksum' : // Checksum
    k == 'A' ? '0i-adType 1o-adData' : // AuthorizationData entry
    k == 'B' ? '0f-kdcOptions 1P?cname 2s-realm 3P?sname 4t?from 5t-till 6t?rtime 7u-nonce 8i*etype 9H+addresses :E?encAuthorizationData ;T+additionalTickets' : // KDC-REQ-BODY
    k == 'Q' ? '1v-pvno 2n-msg-type 3D+padata 4B-reqBody' : // KDC-REQ
    k == 'Y' ? '0v-pvno 1n-msg-type 2D+padata 3s-crealm 4P-cname 5T-ticket 6E-encPart' : // KDC-REP
    k == 'Z' ? '0K-key 1L*lastReq 2u-nonce 3t?keyExpiration 4f-flags 5t-authtime 6t?starttime 7t-endtime 8t?renewTill 9s-srealm :P-sname ;H+caddr <D+encryptedPaData' : // EncKDCRepPart
    k == 'W' ? '0v-pvno 1n-msg-type 2t?ctime 3m?cusec 4t-stime 5m-susec 6i-errorCode 7s?crealm 8P?cname 9s-realm :P-sname ;s?eText <o?eData' : // KRB-ERROR
    k == 'S' ? '0t-patimestamp 1m?pausec' : // PA-ENC-TS-ENC
    '0i-trType 1o-contents' // R: TransitedEncoding
  );
}
/** EncTicketPart (KDC and SC only: left out of the firmware bundle). */
const ENC_TICKET_PART =
  '0f-flags 1K-key 2s-crealm 3P-cname 4R-transited 5t-authtime 6t?starttime 7t-endtime 8t?renewTill 9H+caddr :A+authorizationData';

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
    const v = k == 'v' ? PVNO : k == 'n' ? app : o[f.slice(i + 3, j)];
    if (v != null || m == '-' || m == '*') {
      const m1 = wMark();
      if (m == '*' || m == '+') wList(k, v);
      else if (k < 'a') wSeq(spec(k), v, k == 'T' ? 1 : 0);
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
    if (k < 'a') wSeq(spec(k), l[i], k == 'T' ? 1 : 0);
    else wPrim(k, l[i]);
  }
  wHdr(0x30, m);
}
/**
 * Encodes a whole message or value of type t: a type letter (spec(), in
 * [APPLICATION app] unless 0), a whole table string, or '*' + letter for a
 * SEQUENCE OF that type. The firmware calls this (and krbDecode) directly
 * instead of one named encoder per message: one function on the board.
 */
export function krbEncode(t: string, o: any, app: number): Uint8Array {
  wBegin();
  if (t.charAt(0) == '*') wList(t.charAt(1), o);
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
    if (m == '-' || m == '*' || s.has(tag)) {
      // (The label is spelled out per call: short-error builds drop it.)
      const c = s.enter(tag, what + '.' + key);
      const cs = c.p;
      const v = m == '*' || m == '+' ? rList(c, k, what + '.' + key) : k < 'a' ? rSeq(c, spec(k), k == 'T' ? 1 : 0, what + '.' + key) : c.val(k, what + '.' + key);
      // KDC-REQ: the exact req-body DER (what TGS-REQ/FAST checksums cover).
      if (k == 'B') o.reqBodyRaw = c.b.slice(cs, c.p);
      c.end(what + '.' + key);
      if (k == 'v' || k == 'n') {
        if (v !== (k == 'v' ? PVNO : app)) throw new DecodeError(what + '.' + key + ': expected ' + (k == 'v' ? PVNO : app) + ', got ' + v);
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
    l.push(k < 'a' ? rSeq(s, spec(k), k == 'T' ? 1 : 0, what) : s.val(k, what));
  }
  return l;
}
/** Decodes a whole message or value of type t (as krbEncode's), labelled what in errors. */
export function krbDecode(b: Uint8Array, t: string, app: number, what: string): any {
  return decodeAll(b, what, (r) => (t.charAt(0) == '*' ? rList(r, t.charAt(1), what) : rSeq(r, t.length == 1 ? spec(t) : t, app, what)));
}

// ---------------------------------------------------------------- PrincipalName, EncryptedData, EncryptionKey, Checksum

export function encodePrincipalName(p: PrincipalName): Uint8Array {
  return krbEncode('P', p, 0);
}
export function decodePrincipalName(b: Uint8Array): PrincipalName {
  return krbDecode(b, 'P', 0, 'PrincipalName');
}
export function encodeEncryptedData(e: EncryptedData): Uint8Array {
  return krbEncode('E', e, 0);
}
export function decodeEncryptedData(b: Uint8Array): EncryptedData {
  return krbDecode(b, 'E', 0, 'EncryptedData');
}
export function encodeEncryptionKey(k: EncryptionKey): Uint8Array {
  return krbEncode('K', k, 0);
}
export function decodeEncryptionKey(b: Uint8Array): EncryptionKey {
  return krbDecode(b, 'K', 0, 'EncryptionKey');
}
export function encodeChecksum(c: Checksum): Uint8Array {
  return krbEncode('C', c, 0);
}
export function decodeChecksum(b: Uint8Array): Checksum {
  return krbDecode(b, 'C', 0, 'Checksum');
}

// ---------------------------------------------------------------- HostAddress(es)

export function encodeHostAddress(a: HostAddress): Uint8Array {
  return krbEncode('H', a, 0);
}
export function decodeHostAddress(b: Uint8Array): HostAddress {
  return krbDecode(b, 'H', 0, 'HostAddress');
}
export function encodeHostAddresses(a: HostAddress[]): Uint8Array {
  return krbEncode('*H', a, 0);
}
export function decodeHostAddresses(b: Uint8Array): HostAddress[] {
  return krbDecode(b, '*H', 0, 'HostAddresses');
}

// ---------------------------------------------------------------- PA-DATA, METHOD-DATA

export function encodePaData(p: PaData): Uint8Array {
  return krbEncode('D', p, 0);
}
export function decodePaData(b: Uint8Array): PaData {
  return krbDecode(b, 'D', 0, 'PA-DATA');
}
/** METHOD-DATA ::= SEQUENCE OF PA-DATA (KRB-ERROR e-data for PREAUTH_REQUIRED). */
export function encodeMethodData(m: PaData[]): Uint8Array {
  return krbEncode('*D', m, 0);
}
export function decodeMethodData(b: Uint8Array): PaData[] {
  return krbDecode(b, '*D', 0, 'METHOD-DATA');
}
/** The first PA-DATA of the given type, or undefined. */
export function findPaData(list: PaData[] | undefined, type: number): PaData | undefined {
  if (list) for (let i = 0; i < list.length; i++) if (list[i].padataType === type) return list[i];
  return undefined;
}

// ---------------------------------------------------------------- PA-ENC-TS-ENC, ETYPE-INFO2

export function encodePaEncTsEnc(p: PaEncTsEnc): Uint8Array {
  return krbEncode('S', p, 0);
}
export function decodePaEncTsEnc(b: Uint8Array): PaEncTsEnc {
  return krbDecode(b, 'S', 0, 'PA-ENC-TS-ENC');
}
export function encodeEtypeInfo2(list: EtypeInfo2Entry[]): Uint8Array {
  if (list.length < 1) throw new Error('ETYPE-INFO2: needs at least one entry');
  return krbEncode('*I', list, 0);
}
export function decodeEtypeInfo2(b: Uint8Array): EtypeInfo2Entry[] {
  const l = krbDecode(b, '*I', 0, 'ETYPE-INFO2');
  if (l.length < 1) throw new DecodeError('ETYPE-INFO2: empty');
  return l;
}

// ---------------------------------------------------------------- AuthorizationData, LastReq, TransitedEncoding

export function encodeAuthorizationData(a: AuthorizationDataEntry[]): Uint8Array {
  return krbEncode('*A', a, 0);
}
export function decodeAuthorizationData(b: Uint8Array): AuthorizationDataEntry[] {
  return krbDecode(b, '*A', 0, 'AuthorizationData');
}
export function encodeLastReq(l: LastReqEntry[]): Uint8Array {
  return krbEncode('*L', l, 0);
}
export function decodeLastReq(b: Uint8Array): LastReqEntry[] {
  return krbDecode(b, '*L', 0, 'LastReq');
}
export function encodeTransitedEncoding(t: TransitedEncoding): Uint8Array {
  return krbEncode('R', t, 0);
}
export function decodeTransitedEncoding(b: Uint8Array): TransitedEncoding {
  return krbDecode(b, 'R', 0, 'TransitedEncoding');
}

// ---------------------------------------------------------------- Ticket [APPLICATION 1], EncTicketPart [APPLICATION 3]

/** Encodes a Ticket; returns t.raw unchanged when present. */
export function encodeTicket(t: Ticket): Uint8Array {
  return t.raw ? t.raw : krbEncode('T', t, APP_TICKET);
}
/** Decodes a Ticket; the result's raw holds a copy of the exact input bytes. */
export function decodeTicket(b: Uint8Array): Ticket {
  return krbDecode(b, 'T', APP_TICKET, 'Ticket');
}
export function encodeEncTicketPart(e: EncTicketPart): Uint8Array {
  return krbEncode(ENC_TICKET_PART, e, APP_ENC_TICKET_PART);
}
export function decodeEncTicketPart(b: Uint8Array): EncTicketPart {
  return krbDecode(b, ENC_TICKET_PART, APP_ENC_TICKET_PART, 'EncTicketPart');
}

// ---------------------------------------------------------------- KDC-REQ-BODY, AS-REQ, TGS-REQ

export function encodeKdcReqBody(b: KdcReqBody): Uint8Array {
  return krbEncode('B', b, 0);
}
export function decodeKdcReqBody(b: Uint8Array): KdcReqBody {
  return krbDecode(b, 'B', 0, 'KDC-REQ-BODY');
}
/** AS-REQ [APPLICATION 10]. */
export function encodeAsReq(q: AsReq): Uint8Array {
  return krbEncode('Q', q, KRB_AS_REQ);
}
export function decodeAsReq(b: Uint8Array): AsReq {
  return decodeKdcReqAs(b, KRB_AS_REQ);
}
/** TGS-REQ [APPLICATION 12] (padata carries PA-TGS-REQ). */
export function encodeTgsReq(q: KdcReq): Uint8Array {
  return krbEncode('Q', q, KRB_TGS_REQ);
}
/** AS-REQ or TGS-REQ; msgType says which. */
export function decodeKdcReq(b: Uint8Array): KdcReq {
  const t = messageType(b);
  if (t !== KRB_AS_REQ && t !== KRB_TGS_REQ) throw new DecodeError('KDC-REQ: not an AS-REQ or TGS-REQ');
  return decodeKdcReqAs(b, t);
}
function decodeKdcReqAs(b: Uint8Array, t: number): KdcReq {
  const q: KdcReq = krbDecode(b, 'Q', t, t === KRB_AS_REQ ? 'AS-REQ' : 'TGS-REQ');
  q.msgType = t;
  return q;
}

// ---------------------------------------------------------------- AS-REP / TGS-REP

/** AS-REP [APPLICATION 11]. */
export function encodeAsRep(p: AsRep): Uint8Array {
  return krbEncode('Y', p, KRB_AS_REP);
}
export function decodeAsRep(b: Uint8Array): AsRep {
  return decodeKdcRepAs(b, KRB_AS_REP);
}
/** TGS-REP [APPLICATION 13]. */
export function encodeTgsRep(p: TgsRep): Uint8Array {
  return krbEncode('Y', p, KRB_TGS_REP);
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
  const p: KdcRep = krbDecode(b, 'Y', t, t === KRB_AS_REP ? 'AS-REP' : 'TGS-REP');
  p.msgType = t;
  return p;
}

// ---------------------------------------------------------------- EncKDCRepPart [APPLICATION 25 / 26]

/** EncKDCRepPart, as EncASRepPart [APPLICATION 25] unless app = 26 (EncTGSRepPart). */
export function encodeEncKdcRepPart(e: EncKdcRepPart, app?: number): Uint8Array {
  return krbEncode('Z', e, app === APP_ENC_TGS_REP_PART ? app : APP_ENC_AS_REP_PART);
}
/** Accepts EncASRepPart (25) and EncTGSRepPart (26): MIT's KDC sends 26 in AS-REPs. */
export function decodeEncKdcRepPart(b: Uint8Array): EncKdcRepPart {
  const app = b instanceof Uint8Array && b[0] === (0x60 | APP_ENC_TGS_REP_PART) ? APP_ENC_TGS_REP_PART : APP_ENC_AS_REP_PART;
  return krbDecode(b, 'Z', app, 'EncKDCRepPart');
}

// ---------------------------------------------------------------- Authenticator [APPLICATION 2], AP-REQ [14], AP-REP [15], EncAPRepPart [27]

export function encodeAuthenticator(x: Authenticator): Uint8Array {
  return krbEncode('U', x, APP_AUTHENTICATOR);
}
export function decodeAuthenticator(b: Uint8Array): Authenticator {
  return krbDecode(b, 'U', APP_AUTHENTICATOR, 'Authenticator');
}
export function encodeApReq(q: ApReq): Uint8Array {
  return krbEncode('M', q, KRB_AP_REQ);
}
export function decodeApReq(b: Uint8Array): ApReq {
  return krbDecode(b, 'M', KRB_AP_REQ, 'AP-REQ');
}
export function encodeApRep(p: ApRep): Uint8Array {
  return krbEncode('N', p, KRB_AP_REP);
}
export function decodeApRep(b: Uint8Array): ApRep {
  return krbDecode(b, 'N', KRB_AP_REP, 'AP-REP');
}
export function encodeEncApRepPart(p: EncApRepPart): Uint8Array {
  return krbEncode('O', p, APP_ENC_AP_REP_PART);
}
export function decodeEncApRepPart(b: Uint8Array): EncApRepPart {
  return krbDecode(b, 'O', APP_ENC_AP_REP_PART, 'EncAPRepPart');
}

// ---------------------------------------------------------------- KRB-ERROR [APPLICATION 30]

export function encodeKrbError(x: KrbError): Uint8Array {
  return krbEncode('W', x, KRB_ERROR);
}
export function decodeKrbError(b: Uint8Array): KrbError {
  return krbDecode(b, 'W', KRB_ERROR, 'KRB-ERROR');
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

function escapeComponent(s: string, isRealm: boolean): string {
  let o = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if (c === '\\' || c === '@' || (!isRealm && c === '/')) o += '\\' + c;
    else if (c === '\n') o += '\\n';
    else if (c === '\t') o += '\\t';
    else if (c === '\b') o += '\\b';
    else o += c;
  }
  return o;
}

/** "comp1/comp2@REALM" with MIT-style backslash escapes; realm omitted when undefined. */
export function principalToString(name: PrincipalName, realm?: string): string {
  let s = '';
  for (let i = 0; i < name.nameString.length; i++) {
    if (i) s += '/';
    s += escapeComponent(name.nameString[i], false);
  }
  if (realm !== undefined) s += '@' + escapeComponent(realm, true);
  return s;
}

/**
 * Parses "a/b@REALM" (MIT escapes: \/ \@ \\ \n \t \b \0). The realm is
 * required unless defaultRealm is given. Name type: nameType when given,
 * else NT_SRV_INST for krbtgt/..., else NT_PRINCIPAL. DecodeError on bad syntax.
 */
export function parsePrincipal(s: string, defaultRealm?: string, nameType?: number): { name: PrincipalName; realm: string } {
  if (typeof s !== 'string' || s.length === 0 || s.length > 1024) throw new DecodeError('principal: empty or too long');
  const comps: string[] = [];
  let cur = '';
  let realm: string | undefined;
  let inRealm = false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charAt(i);
    if (c === '\\') {
      i++;
      if (i >= s.length) throw new DecodeError('principal: trailing backslash');
      c = s.charAt(i);
      if (c === 'n') c = '\n';
      else if (c === 't') c = '\t';
      else if (c === 'b') c = '\b';
      else if (c === '0') throw new DecodeError('principal: NUL not allowed');
      cur += c;
    } else if (c === '@') {
      if (inRealm) throw new DecodeError('principal: more than one @');
      comps.push(cur);
      cur = '';
      inRealm = true;
    } else if (c === '/' && !inRealm) {
      comps.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (inRealm) realm = cur;
  else comps.push(cur);
  if (realm === undefined) {
    if (defaultRealm === undefined) throw new DecodeError('principal: no realm');
    realm = defaultRealm;
  }
  if (realm.length === 0) throw new DecodeError('principal: empty realm');
  for (let i = 0; i < comps.length; i++) if (comps[i].length === 0) throw new DecodeError('principal: empty component');
  if (comps.length > 16) throw new DecodeError('principal: too many components');
  let nt = nameType;
  if (nt === undefined) nt = comps.length === 2 && comps[0] === 'krbtgt' ? NT_SRV_INST : NT_PRINCIPAL;
  return { name: { nameType: nt, nameString: comps }, realm: realm };
}

/** Component-wise equality of two names (name types are ignored, as MIT does). */
export function principalNameEquals(a: PrincipalName, b: PrincipalName): boolean {
  if (a.nameString.length !== b.nameString.length) return false;
  for (let i = 0; i < a.nameString.length; i++) if (a.nameString[i] !== b.nameString[i]) return false;
  return true;
}
