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
import {
  DerReader,
  checkCount,
  decodeAll,
  encApp,
  encCtx,
  encFlags,
  encInt,
  encOctets,
  encSeq,
  encStr,
  encTime,
} from './der.ts';

// ---------------------------------------------------------------- constants

export const PVNO = 5;

// Message types (RFC 4120 7.5.7) = their [APPLICATION n] tags.
export const KRB_AS_REQ = 10;
export const KRB_AS_REP = 11;
export const KRB_TGS_REQ = 12;
export const KRB_TGS_REP = 13;
export const KRB_AP_REQ = 14;
export const KRB_AP_REP = 15;
export const KRB_SAFE = 20;
export const KRB_PRIV = 21;
export const KRB_CRED = 22;
export const KRB_ERROR = 30;
// Other [APPLICATION n] tags.
export const APP_TICKET = 1;
export const APP_AUTHENTICATOR = 2;
export const APP_ENC_TICKET_PART = 3;
export const APP_ENC_AS_REP_PART = 25;
export const APP_ENC_TGS_REP_PART = 26;
export const APP_ENC_AP_REP_PART = 27;

// Pre-authentication data types (RFC 4120 7.5.2, RFC 6113, RFC 6806).
export const PA_TGS_REQ = 1;
export const PA_ENC_TIMESTAMP = 2;
export const PA_PW_SALT = 3;
export const PA_ETYPE_INFO = 11;
export const PA_PK_AS_REQ = 16;
export const PA_PK_AS_REP = 17;
export const PA_ETYPE_INFO2 = 19;
export const PA_PAC_REQUEST = 128;
export const PA_FX_COOKIE = 133;
export const PA_FX_FAST = 136;
export const PA_FX_ERROR = 137;
export const PA_ENCRYPTED_CHALLENGE = 138;
export const PA_REQ_ENC_PA_REP = 149;

// Name types (RFC 4120 6.2).
export const NT_UNKNOWN = 0;
export const NT_PRINCIPAL = 1;
export const NT_SRV_INST = 2;
export const NT_SRV_HST = 3;
export const NT_SRV_XHST = 4;
export const NT_UID = 5;
export const NT_X500_PRINCIPAL = 6;
export const NT_SMTP_NAME = 7;
export const NT_ENTERPRISE = 10;

// KDCOptions masks (RFC 4120 5.4.1; canonicalize RFC 6806).
export const KDC_OPT_FORWARDABLE = 0x40000000;
export const KDC_OPT_FORWARDED = 0x20000000;
export const KDC_OPT_PROXIABLE = 0x10000000;
export const KDC_OPT_PROXY = 0x08000000;
export const KDC_OPT_ALLOW_POSTDATE = 0x04000000;
export const KDC_OPT_POSTDATED = 0x02000000;
export const KDC_OPT_RENEWABLE = 0x00800000;
export const KDC_OPT_CANONICALIZE = 0x00010000;
export const KDC_OPT_DISABLE_TRANSITED_CHECK = 0x00000020;
export const KDC_OPT_RENEWABLE_OK = 0x00000010;
export const KDC_OPT_ENC_TKT_IN_SKEY = 0x00000008;
export const KDC_OPT_RENEW = 0x00000002;
export const KDC_OPT_VALIDATE = 0x00000001;

// TicketFlags masks (RFC 4120 5.3; enc-pa-rep RFC 6806).
export const TKT_FLG_FORWARDABLE = 0x40000000;
export const TKT_FLG_FORWARDED = 0x20000000;
export const TKT_FLG_PROXIABLE = 0x10000000;
export const TKT_FLG_PROXY = 0x08000000;
export const TKT_FLG_MAY_POSTDATE = 0x04000000;
export const TKT_FLG_POSTDATED = 0x02000000;
export const TKT_FLG_INVALID = 0x01000000;
export const TKT_FLG_RENEWABLE = 0x00800000;
export const TKT_FLG_INITIAL = 0x00400000;
export const TKT_FLG_PRE_AUTHENT = 0x00200000;
export const TKT_FLG_HW_AUTHENT = 0x00100000;
export const TKT_FLG_TRANSIT_POLICY_CHECKED = 0x00080000;
export const TKT_FLG_OK_AS_DELEGATE = 0x00040000;
export const TKT_FLG_ENC_PA_REP = 0x00010000;

// APOptions masks (RFC 4120 5.5.1).
export const AP_OPT_USE_SESSION_KEY = 0x40000000;
export const AP_OPT_MUTUAL_REQUIRED = 0x20000000;

// Error codes (RFC 4120 7.5.9).
export const KDC_ERR_NONE = 0;
export const KDC_ERR_NAME_EXP = 1;
export const KDC_ERR_SERVICE_EXP = 2;
export const KDC_ERR_BAD_PVNO = 3;
export const KDC_ERR_C_OLD_MAST_KVNO = 4;
export const KDC_ERR_S_OLD_MAST_KVNO = 5;
export const KDC_ERR_C_PRINCIPAL_UNKNOWN = 6;
export const KDC_ERR_S_PRINCIPAL_UNKNOWN = 7;
export const KDC_ERR_PRINCIPAL_NOT_UNIQUE = 8;
export const KDC_ERR_NULL_KEY = 9;
export const KDC_ERR_CANNOT_POSTDATE = 10;
export const KDC_ERR_NEVER_VALID = 11;
export const KDC_ERR_POLICY = 12;
export const KDC_ERR_BADOPTION = 13;
export const KDC_ERR_ETYPE_NOSUPP = 14;
export const KDC_ERR_SUMTYPE_NOSUPP = 15;
export const KDC_ERR_PADATA_TYPE_NOSUPP = 16;
export const KDC_ERR_TRTYPE_NOSUPP = 17;
export const KDC_ERR_CLIENT_REVOKED = 18;
export const KDC_ERR_SERVICE_REVOKED = 19;
export const KDC_ERR_TGT_REVOKED = 20;
export const KDC_ERR_CLIENT_NOTYET = 21;
export const KDC_ERR_SERVICE_NOTYET = 22;
export const KDC_ERR_KEY_EXPIRED = 23;
export const KDC_ERR_PREAUTH_FAILED = 24;
export const KDC_ERR_PREAUTH_REQUIRED = 25;
export const KDC_ERR_SERVER_NOMATCH = 26;
export const KDC_ERR_MUST_USE_USER2USER = 27;
export const KDC_ERR_PATH_NOT_ACCEPTED = 28;
export const KDC_ERR_SVC_UNAVAILABLE = 29;
export const KRB_AP_ERR_BAD_INTEGRITY = 31;
export const KRB_AP_ERR_TKT_EXPIRED = 32;
export const KRB_AP_ERR_TKT_NYV = 33;
export const KRB_AP_ERR_REPEAT = 34;
export const KRB_AP_ERR_NOT_US = 35;
export const KRB_AP_ERR_BADMATCH = 36;
export const KRB_AP_ERR_SKEW = 37;
export const KRB_AP_ERR_BADADDR = 38;
export const KRB_AP_ERR_BADVERSION = 39;
export const KRB_AP_ERR_MSG_TYPE = 40;
export const KRB_AP_ERR_MODIFIED = 41;
export const KRB_AP_ERR_BADORDER = 42;
export const KRB_AP_ERR_BADKEYVER = 44;
export const KRB_AP_ERR_NOKEY = 45;
export const KRB_AP_ERR_MUT_FAIL = 46;
export const KRB_AP_ERR_BADDIRECTION = 47;
export const KRB_AP_ERR_METHOD = 48;
export const KRB_AP_ERR_BADSEQ = 49;
export const KRB_AP_ERR_INAPP_CKSUM = 50;
export const KRB_ERR_RESPONSE_TOO_BIG = 52;
export const KRB_ERR_GENERIC = 60;
export const KRB_ERR_FIELD_TOOLONG = 61;
export const KDC_ERR_WRONG_REALM = 68;

// Key usages (RFC 4120 7.5.1).
export const KU_AS_REQ_PA_ENC_TIMESTAMP = 1;
export const KU_KDC_REP_TICKET = 2;
export const KU_AS_REP_ENCPART = 3;
export const KU_TGS_REQ_AUTH_DAT_SESSKEY = 4;
export const KU_TGS_REQ_AUTH_DAT_SUBKEY = 5;
export const KU_TGS_REQ_AUTH_CKSUM = 6;
export const KU_TGS_REQ_AUTH = 7;
export const KU_TGS_REP_ENCPART_SESSKEY = 8;
export const KU_TGS_REP_ENCPART_SUBKEY = 9;
export const KU_AP_REQ_AUTH_CKSUM = 10;
export const KU_AP_REQ_AUTH = 11;
export const KU_AP_REP_ENCPART = 12;
export const KU_KRB_PRIV_ENCPART = 13;
export const KU_KRB_CRED_ENCPART = 14;
export const KU_KRB_SAFE_CKSUM = 15;

// Encryption and checksum types used by this project (RFC 3962, RFC 8009).
export const ETYPE_AES128_CTS_HMAC_SHA1_96 = 17;
export const ETYPE_AES256_CTS_HMAC_SHA1_96 = 18;
export const ETYPE_AES128_CTS_HMAC_SHA256_128 = 19;
export const ETYPE_AES256_CTS_HMAC_SHA384_192 = 20;
export const CKSUMTYPE_HMAC_SHA1_96_AES128 = 15;
export const CKSUMTYPE_HMAC_SHA1_96_AES256 = 16;
export const CKSUMTYPE_HMAC_SHA256_128_AES128 = 19;
export const CKSUMTYPE_HMAC_SHA384_192_AES256 = 20;

// Address types (RFC 4120 7.5.3).
export const ADDRTYPE_INET = 2;
export const ADDRTYPE_INET6 = 24;

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
/** name types */
export const NT = {
  NT_UNKNOWN: NT_UNKNOWN,
  NT_PRINCIPAL: NT_PRINCIPAL,
  NT_SRV_INST: NT_SRV_INST,
  NT_SRV_HST: NT_SRV_HST,
  NT_SRV_XHST: NT_SRV_XHST,
  NT_UID: NT_UID,
  NT_X500_PRINCIPAL: NT_X500_PRINCIPAL,
  NT_SMTP_NAME: NT_SMTP_NAME,
  NT_ENTERPRISE: NT_ENTERPRISE,
};
/** KDCOptions masks */
export const KDC_OPT = {
  KDC_OPT_FORWARDABLE: KDC_OPT_FORWARDABLE,
  KDC_OPT_FORWARDED: KDC_OPT_FORWARDED,
  KDC_OPT_PROXIABLE: KDC_OPT_PROXIABLE,
  KDC_OPT_PROXY: KDC_OPT_PROXY,
  KDC_OPT_ALLOW_POSTDATE: KDC_OPT_ALLOW_POSTDATE,
  KDC_OPT_POSTDATED: KDC_OPT_POSTDATED,
  KDC_OPT_RENEWABLE: KDC_OPT_RENEWABLE,
  KDC_OPT_CANONICALIZE: KDC_OPT_CANONICALIZE,
  KDC_OPT_DISABLE_TRANSITED_CHECK: KDC_OPT_DISABLE_TRANSITED_CHECK,
  KDC_OPT_RENEWABLE_OK: KDC_OPT_RENEWABLE_OK,
  KDC_OPT_ENC_TKT_IN_SKEY: KDC_OPT_ENC_TKT_IN_SKEY,
  KDC_OPT_RENEW: KDC_OPT_RENEW,
  KDC_OPT_VALIDATE: KDC_OPT_VALIDATE,
};
/** TicketFlags masks */
export const TKT_FLG = {
  TKT_FLG_FORWARDABLE: TKT_FLG_FORWARDABLE,
  TKT_FLG_FORWARDED: TKT_FLG_FORWARDED,
  TKT_FLG_PROXIABLE: TKT_FLG_PROXIABLE,
  TKT_FLG_PROXY: TKT_FLG_PROXY,
  TKT_FLG_MAY_POSTDATE: TKT_FLG_MAY_POSTDATE,
  TKT_FLG_POSTDATED: TKT_FLG_POSTDATED,
  TKT_FLG_INVALID: TKT_FLG_INVALID,
  TKT_FLG_RENEWABLE: TKT_FLG_RENEWABLE,
  TKT_FLG_INITIAL: TKT_FLG_INITIAL,
  TKT_FLG_PRE_AUTHENT: TKT_FLG_PRE_AUTHENT,
  TKT_FLG_HW_AUTHENT: TKT_FLG_HW_AUTHENT,
  TKT_FLG_TRANSIT_POLICY_CHECKED: TKT_FLG_TRANSIT_POLICY_CHECKED,
  TKT_FLG_OK_AS_DELEGATE: TKT_FLG_OK_AS_DELEGATE,
  TKT_FLG_ENC_PA_REP: TKT_FLG_ENC_PA_REP,
};
/** APOptions masks */
export const AP_OPT = {
  AP_OPT_USE_SESSION_KEY: AP_OPT_USE_SESSION_KEY,
  AP_OPT_MUTUAL_REQUIRED: AP_OPT_MUTUAL_REQUIRED,
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
/** encryption types */
export const ETYPE = {
  ETYPE_AES128_CTS_HMAC_SHA1_96: ETYPE_AES128_CTS_HMAC_SHA1_96,
  ETYPE_AES256_CTS_HMAC_SHA1_96: ETYPE_AES256_CTS_HMAC_SHA1_96,
  ETYPE_AES128_CTS_HMAC_SHA256_128: ETYPE_AES128_CTS_HMAC_SHA256_128,
  ETYPE_AES256_CTS_HMAC_SHA384_192: ETYPE_AES256_CTS_HMAC_SHA384_192,
};
/** checksum types */
export const CKSUMTYPE = {
  CKSUMTYPE_HMAC_SHA1_96_AES128: CKSUMTYPE_HMAC_SHA1_96_AES128,
  CKSUMTYPE_HMAC_SHA1_96_AES256: CKSUMTYPE_HMAC_SHA1_96_AES256,
  CKSUMTYPE_HMAC_SHA256_128_AES128: CKSUMTYPE_HMAC_SHA256_128_AES128,
  CKSUMTYPE_HMAC_SHA384_192_AES256: CKSUMTYPE_HMAC_SHA384_192_AES256,
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

// ---------------------------------------------------------------- small helpers

function opt(n: number, v: Uint8Array | null): Uint8Array | null {
  return v ? encCtx(n, v) : null;
}
function has(v: unknown): boolean {
  return v !== undefined && v !== null;
}
function pvnoMsg(r: DerReader, pvTag: number, msgType: number, what: string): void {
  r.ctxIntEq(pvTag, PVNO, what + '.pvno');
  r.ctxIntEq(pvTag + 1, msgType, what + '.msg-type');
}
function seqOfW<T>(items: T[], w: (x: T) => Uint8Array): Uint8Array {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < items.length; i++) parts.push(w(items[i]));
  return encSeq(parts);
}
/** Reads a SEQUENCE OF (bounded by MAX_ITEMS) with the element reader rd. */
function seqOfR<T>(r: DerReader, what: string, rd: (r: DerReader) => T): T[] {
  const s = r.seq(what);
  const out: T[] = [];
  while (s.more()) {
    checkCount(out.length, what);
    out.push(rd(s));
  }
  return out;
}
/** [n] EXPLICIT around one constructed value read by rd. */
function ctxR<T>(r: DerReader, n: number, what: string, rd: (r: DerReader) => T): T {
  const c = r.ctx(n, what);
  const v = rd(c);
  c.end(what);
  return v;
}
function ctxSeqOfR<T>(r: DerReader, n: number, what: string, rd: (r: DerReader) => T): T[] {
  const c = r.ctx(n, what);
  const v = seqOfR(c, what, rd);
  c.end(what);
  return v;
}

// ---------------------------------------------------------------- PrincipalName

function wPrincipalName(p: PrincipalName): Uint8Array {
  const s: Uint8Array[] = [];
  for (let i = 0; i < p.nameString.length; i++) s.push(encStr(p.nameString[i]));
  return encSeq([encCtx(0, encInt(p.nameType)), encCtx(1, encSeq(s))]);
}
function rPrincipalName(r: DerReader): PrincipalName {
  const s = r.seq('PrincipalName');
  const nameType = s.ctxInt32(0, 'PrincipalName.name-type');
  const c = s.ctx(1, 'PrincipalName.name-string');
  const l = c.seq('PrincipalName.name-string');
  const nameString: string[] = [];
  while (l.more()) {
    checkCount(nameString.length, 'PrincipalName.name-string');
    nameString.push(l.str('PrincipalName.name-string'));
  }
  c.end('PrincipalName.name-string');
  s.end('PrincipalName');
  return { nameType: nameType, nameString: nameString };
}
export function encodePrincipalName(p: PrincipalName): Uint8Array {
  return wPrincipalName(p);
}
export function decodePrincipalName(b: Uint8Array): PrincipalName {
  return decodeAll(b, 'PrincipalName', rPrincipalName);
}

// ---------------------------------------------------------------- EncryptedData / EncryptionKey / Checksum

function wEncryptedData(e: EncryptedData): Uint8Array {
  return encSeq([
    encCtx(0, encInt(e.etype)),
    has(e.kvno) ? encCtx(1, encUInt32(e.kvno as number)) : null,
    encCtx(2, encOctets(e.cipher)),
  ]);
}
function rEncryptedData(r: DerReader): EncryptedData {
  const s = r.seq('EncryptedData');
  const out: EncryptedData = { etype: s.ctxInt32(0, 'EncryptedData.etype'), cipher: new Uint8Array(0) };
  if (s.has(1)) out.kvno = s.ctxUInt32(1, 'EncryptedData.kvno');
  out.cipher = s.ctxOctets(2, 'EncryptedData.cipher');
  s.end('EncryptedData');
  return out;
}
export function encodeEncryptedData(e: EncryptedData): Uint8Array {
  return wEncryptedData(e);
}
export function decodeEncryptedData(b: Uint8Array): EncryptedData {
  return decodeAll(b, 'EncryptedData', rEncryptedData);
}

function wEncryptionKey(k: EncryptionKey): Uint8Array {
  return encSeq([encCtx(0, encInt(k.keytype)), encCtx(1, encOctets(k.keyvalue))]);
}
function rEncryptionKey(r: DerReader): EncryptionKey {
  const s = r.seq('EncryptionKey');
  const keytype = s.ctxInt32(0, 'EncryptionKey.keytype');
  const keyvalue = s.ctxOctets(1, 'EncryptionKey.keyvalue');
  s.end('EncryptionKey');
  return { keytype: keytype, keyvalue: keyvalue };
}
export function encodeEncryptionKey(k: EncryptionKey): Uint8Array {
  return wEncryptionKey(k);
}
export function decodeEncryptionKey(b: Uint8Array): EncryptionKey {
  return decodeAll(b, 'EncryptionKey', rEncryptionKey);
}

function wChecksum(c: Checksum): Uint8Array {
  return encSeq([encCtx(0, encInt(c.cksumtype)), encCtx(1, encOctets(c.checksum))]);
}
function rChecksum(r: DerReader): Checksum {
  const s = r.seq('Checksum');
  const cksumtype = s.ctxInt32(0, 'Checksum.cksumtype');
  const checksum = s.ctxOctets(1, 'Checksum.checksum');
  s.end('Checksum');
  return { cksumtype: cksumtype, checksum: checksum };
}
export function encodeChecksum(c: Checksum): Uint8Array {
  return wChecksum(c);
}
export function decodeChecksum(b: Uint8Array): Checksum {
  return decodeAll(b, 'Checksum', rChecksum);
}

// ---------------------------------------------------------------- HostAddress(es)

function wHostAddress(a: HostAddress): Uint8Array {
  return encSeq([encCtx(0, encInt(a.addrType)), encCtx(1, encOctets(a.address))]);
}
function rHostAddress(r: DerReader): HostAddress {
  const s = r.seq('HostAddress');
  const addrType = s.ctxInt32(0, 'HostAddress.addr-type');
  const address = s.ctxOctets(1, 'HostAddress.address');
  s.end('HostAddress');
  return { addrType: addrType, address: address };
}
export function encodeHostAddress(a: HostAddress): Uint8Array {
  return wHostAddress(a);
}
export function decodeHostAddress(b: Uint8Array): HostAddress {
  return decodeAll(b, 'HostAddress', rHostAddress);
}
export function encodeHostAddresses(a: HostAddress[]): Uint8Array {
  return seqOfW(a, wHostAddress);
}
export function decodeHostAddresses(b: Uint8Array): HostAddress[] {
  return decodeAll(b, 'HostAddresses', (r) => seqOfR(r, 'HostAddresses', rHostAddress));
}

// ---------------------------------------------------------------- PA-DATA, METHOD-DATA

function wPaData(p: PaData): Uint8Array {
  // PA-DATA's tags start at [1].
  return encSeq([encCtx(1, encInt(p.padataType)), encCtx(2, encOctets(p.padataValue))]);
}
function rPaData(r: DerReader): PaData {
  const s = r.seq('PA-DATA');
  const padataType = s.ctxInt32(1, 'PA-DATA.padata-type');
  const padataValue = s.ctxOctets(2, 'PA-DATA.padata-value');
  s.end('PA-DATA');
  return { padataType: padataType, padataValue: padataValue };
}
export function encodePaData(p: PaData): Uint8Array {
  return wPaData(p);
}
export function decodePaData(b: Uint8Array): PaData {
  return decodeAll(b, 'PA-DATA', rPaData);
}
/** METHOD-DATA ::= SEQUENCE OF PA-DATA (KRB-ERROR e-data for PREAUTH_REQUIRED). */
export function encodeMethodData(m: PaData[]): Uint8Array {
  return seqOfW(m, wPaData);
}
export function decodeMethodData(b: Uint8Array): PaData[] {
  return decodeAll(b, 'METHOD-DATA', (r) => seqOfR(r, 'METHOD-DATA', rPaData));
}
/** The first PA-DATA of the given type, or undefined. */
export function findPaData(list: PaData[] | undefined, type: number): PaData | undefined {
  if (!list) return undefined;
  for (let i = 0; i < list.length; i++) if (list[i].padataType === type) return list[i];
  return undefined;
}

// ---------------------------------------------------------------- PA-ENC-TS-ENC

export function encodePaEncTsEnc(p: PaEncTsEnc): Uint8Array {
  return encSeq([encCtx(0, encTime(p.patimestamp)), has(p.pausec) ? encCtx(1, encUsec(p.pausec as number)) : null]);
}
export function decodePaEncTsEnc(b: Uint8Array): PaEncTsEnc {
  return decodeAll(b, 'PA-ENC-TS-ENC', (r) => {
    const s = r.seq('PA-ENC-TS-ENC');
    const out: PaEncTsEnc = { patimestamp: s.ctxTime(0, 'PA-ENC-TS-ENC.patimestamp') };
    if (s.has(1)) out.pausec = s.ctxUsec(1, 'PA-ENC-TS-ENC.pausec');
    s.end('PA-ENC-TS-ENC');
    return out;
  });
}

// ---------------------------------------------------------------- ETYPE-INFO2

function wEtypeInfo2Entry(e: EtypeInfo2Entry): Uint8Array {
  return encSeq([
    encCtx(0, encInt(e.etype)),
    has(e.salt) ? encCtx(1, encStr(e.salt as string)) : null,
    has(e.s2kparams) ? encCtx(2, encOctets(e.s2kparams as Uint8Array)) : null,
  ]);
}
function rEtypeInfo2Entry(r: DerReader): EtypeInfo2Entry {
  const s = r.seq('ETYPE-INFO2-ENTRY');
  const out: EtypeInfo2Entry = { etype: s.ctxInt32(0, 'ETYPE-INFO2-ENTRY.etype') };
  if (s.has(1)) out.salt = s.ctxStr(1, 'ETYPE-INFO2-ENTRY.salt');
  if (s.has(2)) out.s2kparams = s.ctxOctets(2, 'ETYPE-INFO2-ENTRY.s2kparams');
  s.end('ETYPE-INFO2-ENTRY');
  return out;
}
export function encodeEtypeInfo2(list: EtypeInfo2Entry[]): Uint8Array {
  if (list.length < 1) throw new Error('ETYPE-INFO2: needs at least one entry');
  return seqOfW(list, wEtypeInfo2Entry);
}
export function decodeEtypeInfo2(b: Uint8Array): EtypeInfo2Entry[] {
  return decodeAll(b, 'ETYPE-INFO2', (r) => {
    const l = seqOfR(r, 'ETYPE-INFO2', rEtypeInfo2Entry);
    if (l.length < 1) throw new DecodeError('ETYPE-INFO2: empty');
    return l;
  });
}

// ---------------------------------------------------------------- AuthorizationData, LastReq, TransitedEncoding

function wAdEntry(a: AuthorizationDataEntry): Uint8Array {
  return encSeq([encCtx(0, encInt(a.adType)), encCtx(1, encOctets(a.adData))]);
}
function rAdEntry(r: DerReader): AuthorizationDataEntry {
  const s = r.seq('AuthorizationData');
  const adType = s.ctxInt32(0, 'AuthorizationData.ad-type');
  const adData = s.ctxOctets(1, 'AuthorizationData.ad-data');
  s.end('AuthorizationData');
  return { adType: adType, adData: adData };
}
export function encodeAuthorizationData(a: AuthorizationDataEntry[]): Uint8Array {
  return seqOfW(a, wAdEntry);
}
export function decodeAuthorizationData(b: Uint8Array): AuthorizationDataEntry[] {
  return decodeAll(b, 'AuthorizationData', (r) => seqOfR(r, 'AuthorizationData', rAdEntry));
}

function wLrEntry(l: LastReqEntry): Uint8Array {
  return encSeq([encCtx(0, encInt(l.lrType)), encCtx(1, encTime(l.lrValue))]);
}
function rLrEntry(r: DerReader): LastReqEntry {
  const s = r.seq('LastReq');
  const lrType = s.ctxInt32(0, 'LastReq.lr-type');
  const lrValue = s.ctxTime(1, 'LastReq.lr-value');
  s.end('LastReq');
  return { lrType: lrType, lrValue: lrValue };
}
export function encodeLastReq(l: LastReqEntry[]): Uint8Array {
  return seqOfW(l, wLrEntry);
}
export function decodeLastReq(b: Uint8Array): LastReqEntry[] {
  return decodeAll(b, 'LastReq', (r) => seqOfR(r, 'LastReq', rLrEntry));
}

function wTransited(t: TransitedEncoding): Uint8Array {
  return encSeq([encCtx(0, encInt(t.trType)), encCtx(1, encOctets(t.contents))]);
}
function rTransited(r: DerReader): TransitedEncoding {
  const s = r.seq('TransitedEncoding');
  const trType = s.ctxInt32(0, 'TransitedEncoding.tr-type');
  const contents = s.ctxOctets(1, 'TransitedEncoding.contents');
  s.end('TransitedEncoding');
  return { trType: trType, contents: contents };
}
export function encodeTransitedEncoding(t: TransitedEncoding): Uint8Array {
  return wTransited(t);
}
export function decodeTransitedEncoding(b: Uint8Array): TransitedEncoding {
  return decodeAll(b, 'TransitedEncoding', rTransited);
}

// ---------------------------------------------------------------- Ticket [APPLICATION 1]

function wTicket(t: Ticket): Uint8Array {
  if (t.raw) return t.raw;
  return encApp(
    APP_TICKET,
    encSeq([
      encCtx(0, encInt(PVNO)),
      encCtx(1, encStr(t.realm)),
      encCtx(2, wPrincipalName(t.sname)),
      encCtx(3, wEncryptedData(t.encPart)),
    ]),
  );
}
function rTicket(r: DerReader): Ticket {
  const start = r.p;
  const a = r.enter(0x60 | APP_TICKET, 'Ticket');
  const raw = r.b.slice(start, r.p);
  const s = a.seq('Ticket');
  s.ctxIntEq(0, PVNO, 'Ticket.tkt-vno');
  const realm = s.ctxStr(1, 'Ticket.realm');
  const sname = ctxR(s, 2, 'Ticket.sname', rPrincipalName);
  const encPart = ctxR(s, 3, 'Ticket.enc-part', rEncryptedData);
  s.end('Ticket');
  a.end('Ticket');
  return { realm: realm, sname: sname, encPart: encPart, raw: raw };
}
/** Encodes a Ticket; returns t.raw unchanged when present. */
export function encodeTicket(t: Ticket): Uint8Array {
  return wTicket(t);
}
/** Decodes a Ticket; the result's raw holds a copy of the exact input bytes. */
export function decodeTicket(b: Uint8Array): Ticket {
  return decodeAll(b, 'Ticket', rTicket);
}

// ---------------------------------------------------------------- EncTicketPart [APPLICATION 3]

export function encodeEncTicketPart(e: EncTicketPart): Uint8Array {
  return encApp(
    APP_ENC_TICKET_PART,
    encSeq([
      encCtx(0, encFlags(e.flags)),
      encCtx(1, wEncryptionKey(e.key)),
      encCtx(2, encStr(e.crealm)),
      encCtx(3, wPrincipalName(e.cname)),
      encCtx(4, wTransited(e.transited)),
      encCtx(5, encTime(e.authtime)),
      has(e.starttime) ? encCtx(6, encTime(e.starttime as number)) : null,
      encCtx(7, encTime(e.endtime)),
      has(e.renewTill) ? encCtx(8, encTime(e.renewTill as number)) : null,
      has(e.caddr) ? encCtx(9, seqOfW(e.caddr as HostAddress[], wHostAddress)) : null,
      has(e.authorizationData) ? encCtx(10, seqOfW(e.authorizationData as AuthorizationDataEntry[], wAdEntry)) : null,
    ]),
  );
}
export function decodeEncTicketPart(b: Uint8Array): EncTicketPart {
  return decodeAll(b, 'EncTicketPart', (r) => {
    const a = r.enter(0x60 | APP_ENC_TICKET_PART, 'EncTicketPart');
    const s = a.seq('EncTicketPart');
    const out: EncTicketPart = {
      flags: s.ctxFlags(0, 'EncTicketPart.flags'),
      key: ctxR(s, 1, 'EncTicketPart.key', rEncryptionKey),
      crealm: s.ctxStr(2, 'EncTicketPart.crealm'),
      cname: ctxR(s, 3, 'EncTicketPart.cname', rPrincipalName),
      transited: ctxR(s, 4, 'EncTicketPart.transited', rTransited),
      authtime: s.ctxTime(5, 'EncTicketPart.authtime'),
      endtime: 0,
    };
    if (s.has(6)) out.starttime = s.ctxTime(6, 'EncTicketPart.starttime');
    out.endtime = s.ctxTime(7, 'EncTicketPart.endtime');
    if (s.has(8)) out.renewTill = s.ctxTime(8, 'EncTicketPart.renew-till');
    if (s.has(9)) out.caddr = ctxSeqOfR(s, 9, 'EncTicketPart.caddr', rHostAddress);
    if (s.has(10)) out.authorizationData = ctxSeqOfR(s, 10, 'EncTicketPart.authorization-data', rAdEntry);
    s.end('EncTicketPart');
    a.end('EncTicketPart');
    return out;
  });
}

// ---------------------------------------------------------------- KDC-REQ-BODY, AS-REQ

function wKdcReqBody(b: KdcReqBody): Uint8Array {
  const et: Uint8Array[] = [];
  for (let i = 0; i < b.etype.length; i++) et.push(encInt(b.etype[i]));
  return encSeq([
    encCtx(0, encFlags(b.kdcOptions)),
    has(b.cname) ? encCtx(1, wPrincipalName(b.cname as PrincipalName)) : null,
    encCtx(2, encStr(b.realm)),
    has(b.sname) ? encCtx(3, wPrincipalName(b.sname as PrincipalName)) : null,
    has(b.from) ? encCtx(4, encTime(b.from as number)) : null,
    encCtx(5, encTime(b.till)),
    has(b.rtime) ? encCtx(6, encTime(b.rtime as number)) : null,
    encCtx(7, encUInt32(b.nonce)),
    encCtx(8, encSeq(et)),
    has(b.addresses) ? encCtx(9, seqOfW(b.addresses as HostAddress[], wHostAddress)) : null,
    has(b.encAuthorizationData) ? encCtx(10, wEncryptedData(b.encAuthorizationData as EncryptedData)) : null,
    has(b.additionalTickets) ? encCtx(11, seqOfW(b.additionalTickets as Ticket[], wTicket)) : null,
  ]);
}
function rEtype(r: DerReader): number {
  return r.int32('KDC-REQ-BODY.etype');
}
function rKdcReqBody(r: DerReader): KdcReqBody {
  const s = r.seq('KDC-REQ-BODY');
  const out: KdcReqBody = { kdcOptions: s.ctxFlags(0, 'KDC-REQ-BODY.kdc-options'), realm: '', till: 0, nonce: 0, etype: [] };
  if (s.has(1)) out.cname = ctxR(s, 1, 'KDC-REQ-BODY.cname', rPrincipalName);
  out.realm = s.ctxStr(2, 'KDC-REQ-BODY.realm');
  if (s.has(3)) out.sname = ctxR(s, 3, 'KDC-REQ-BODY.sname', rPrincipalName);
  if (s.has(4)) out.from = s.ctxTime(4, 'KDC-REQ-BODY.from');
  out.till = s.ctxTime(5, 'KDC-REQ-BODY.till');
  if (s.has(6)) out.rtime = s.ctxTime(6, 'KDC-REQ-BODY.rtime');
  out.nonce = s.ctxUInt32(7, 'KDC-REQ-BODY.nonce');
  out.etype = ctxSeqOfR(s, 8, 'KDC-REQ-BODY.etype', rEtype);
  if (s.has(9)) out.addresses = ctxSeqOfR(s, 9, 'KDC-REQ-BODY.addresses', rHostAddress);
  if (s.has(10)) out.encAuthorizationData = ctxR(s, 10, 'KDC-REQ-BODY.enc-authorization-data', rEncryptedData);
  if (s.has(11)) out.additionalTickets = ctxSeqOfR(s, 11, 'KDC-REQ-BODY.additional-tickets', rTicket);
  s.end('KDC-REQ-BODY');
  return out;
}
export function encodeKdcReqBody(b: KdcReqBody): Uint8Array {
  return wKdcReqBody(b);
}
export function decodeKdcReqBody(b: Uint8Array): KdcReqBody {
  return decodeAll(b, 'KDC-REQ-BODY', rKdcReqBody);
}

function wKdcReq(msgType: number, q: KdcReq): Uint8Array {
  return encApp(
    msgType,
    encSeq([
      encCtx(1, encInt(PVNO)),
      encCtx(2, encInt(msgType)),
      has(q.padata) ? encCtx(3, seqOfW(q.padata as PaData[], wPaData)) : null,
      encCtx(4, wKdcReqBody(q.reqBody)),
    ]),
  );
}
function rKdcReq(r: DerReader, msgType: number, what: string): KdcReq {
  const a = r.enter(0x60 | msgType, what);
  const s = a.seq(what);
  pvnoMsg(s, 1, msgType, what);
  const out: KdcReq = { msgType: msgType, reqBody: { kdcOptions: 0, realm: '', till: 0, nonce: 0, etype: [] } };
  if (s.has(3)) out.padata = ctxSeqOfR(s, 3, what + '.padata', rPaData);
  const c = s.ctx(4, what + '.req-body');
  const bodyStart = c.p;
  out.reqBody = rKdcReqBody(c);
  out.reqBodyRaw = c.b.slice(bodyStart, c.p);
  c.end(what + '.req-body');
  s.end(what);
  a.end(what);
  return out;
}
/** AS-REQ [APPLICATION 10]. */
export function encodeAsReq(q: AsReq): Uint8Array {
  return wKdcReq(KRB_AS_REQ, q);
}
export function decodeAsReq(b: Uint8Array): AsReq {
  return decodeAll(b, 'AS-REQ', (r) => rKdcReq(r, KRB_AS_REQ, 'AS-REQ'));
}
/** TGS-REQ [APPLICATION 12] (padata carries PA-TGS-REQ). */
export function encodeTgsReq(q: KdcReq): Uint8Array {
  return wKdcReq(KRB_TGS_REQ, q);
}
/** AS-REQ or TGS-REQ; msgType says which. */
export function decodeKdcReq(b: Uint8Array): KdcReq {
  const t = messageType(b);
  if (t !== KRB_AS_REQ && t !== KRB_TGS_REQ) throw new DecodeError('KDC-REQ: not an AS-REQ or TGS-REQ');
  return decodeAll(b, 'KDC-REQ', (r) => rKdcReq(r, t, t === KRB_AS_REQ ? 'AS-REQ' : 'TGS-REQ'));
}

// ---------------------------------------------------------------- AS-REP / TGS-REP

function wKdcRep(msgType: number, p: KdcRep): Uint8Array {
  return encApp(
    msgType,
    encSeq([
      encCtx(0, encInt(PVNO)),
      encCtx(1, encInt(msgType)),
      has(p.padata) ? encCtx(2, seqOfW(p.padata as PaData[], wPaData)) : null,
      encCtx(3, encStr(p.crealm)),
      encCtx(4, wPrincipalName(p.cname)),
      encCtx(5, wTicket(p.ticket)),
      encCtx(6, wEncryptedData(p.encPart)),
    ]),
  );
}
function rKdcRep(r: DerReader, msgType: number, what: string): KdcRep {
  const a = r.enter(0x60 | msgType, what);
  const s = a.seq(what);
  pvnoMsg(s, 0, msgType, what);
  let padata: PaData[] | undefined;
  if (s.has(2)) padata = ctxSeqOfR(s, 2, what + '.padata', rPaData);
  const crealm = s.ctxStr(3, what + '.crealm');
  const cname = ctxR(s, 4, what + '.cname', rPrincipalName);
  const ticket = ctxR(s, 5, what + '.ticket', rTicket);
  const encPart = ctxR(s, 6, what + '.enc-part', rEncryptedData);
  s.end(what);
  a.end(what);
  const out: KdcRep = { msgType: msgType, crealm: crealm, cname: cname, ticket: ticket, encPart: encPart };
  if (padata) out.padata = padata;
  return out;
}
/** AS-REP [APPLICATION 11]. */
export function encodeAsRep(p: AsRep): Uint8Array {
  return wKdcRep(KRB_AS_REP, p);
}
export function decodeAsRep(b: Uint8Array): AsRep {
  return decodeAll(b, 'AS-REP', (r) => rKdcRep(r, KRB_AS_REP, 'AS-REP'));
}
/** TGS-REP [APPLICATION 13]. */
export function encodeTgsRep(p: TgsRep): Uint8Array {
  return wKdcRep(KRB_TGS_REP, p);
}
export function decodeTgsRep(b: Uint8Array): TgsRep {
  return decodeAll(b, 'TGS-REP', (r) => rKdcRep(r, KRB_TGS_REP, 'TGS-REP'));
}
/** AS-REP or TGS-REP; msgType says which. */
export function decodeKdcRep(b: Uint8Array): KdcRep {
  const t = messageType(b);
  if (t !== KRB_AS_REP && t !== KRB_TGS_REP) throw new DecodeError('KDC-REP: not an AS-REP or TGS-REP');
  return decodeAll(b, 'KDC-REP', (r) => rKdcRep(r, t, t === KRB_AS_REP ? 'AS-REP' : 'TGS-REP'));
}

// ---------------------------------------------------------------- EncKDCRepPart [APPLICATION 25 / 26]

/** EncKDCRepPart, as EncASRepPart [APPLICATION 25] unless app = 26 (EncTGSRepPart). */
export function encodeEncKdcRepPart(e: EncKdcRepPart, app?: number): Uint8Array {
  const tag = app === APP_ENC_TGS_REP_PART ? APP_ENC_TGS_REP_PART : APP_ENC_AS_REP_PART;
  return encApp(
    tag,
    encSeq([
      encCtx(0, wEncryptionKey(e.key)),
      encCtx(1, seqOfW(e.lastReq, wLrEntry)),
      encCtx(2, encUInt32(e.nonce)),
      has(e.keyExpiration) ? encCtx(3, encTime(e.keyExpiration as number)) : null,
      encCtx(4, encFlags(e.flags)),
      encCtx(5, encTime(e.authtime)),
      has(e.starttime) ? encCtx(6, encTime(e.starttime as number)) : null,
      encCtx(7, encTime(e.endtime)),
      has(e.renewTill) ? encCtx(8, encTime(e.renewTill as number)) : null,
      encCtx(9, encStr(e.srealm)),
      encCtx(10, wPrincipalName(e.sname)),
      has(e.caddr) ? encCtx(11, seqOfW(e.caddr as HostAddress[], wHostAddress)) : null,
      has(e.encryptedPaData) ? encCtx(12, seqOfW(e.encryptedPaData as PaData[], wPaData)) : null,
    ]),
  );
}
/** Accepts EncASRepPart (25) and EncTGSRepPart (26): MIT's KDC sends 26 in AS-REPs. */
export function decodeEncKdcRepPart(b: Uint8Array): EncKdcRepPart {
  return decodeAll(b, 'EncKDCRepPart', (r) => {
    const t = r.peek();
    const a = r.enter(t === (0x60 | APP_ENC_TGS_REP_PART) ? t : 0x60 | APP_ENC_AS_REP_PART, 'EncKDCRepPart');
    const s = a.seq('EncKDCRepPart');
    const out: EncKdcRepPart = {
      key: ctxR(s, 0, 'EncKDCRepPart.key', rEncryptionKey),
      lastReq: ctxSeqOfR(s, 1, 'EncKDCRepPart.last-req', rLrEntry),
      nonce: s.ctxUInt32(2, 'EncKDCRepPart.nonce'),
      flags: 0,
      authtime: 0,
      endtime: 0,
      srealm: '',
      sname: { nameType: 0, nameString: [] },
    };
    if (s.has(3)) out.keyExpiration = s.ctxTime(3, 'EncKDCRepPart.key-expiration');
    out.flags = s.ctxFlags(4, 'EncKDCRepPart.flags');
    out.authtime = s.ctxTime(5, 'EncKDCRepPart.authtime');
    if (s.has(6)) out.starttime = s.ctxTime(6, 'EncKDCRepPart.starttime');
    out.endtime = s.ctxTime(7, 'EncKDCRepPart.endtime');
    if (s.has(8)) out.renewTill = s.ctxTime(8, 'EncKDCRepPart.renew-till');
    out.srealm = s.ctxStr(9, 'EncKDCRepPart.srealm');
    out.sname = ctxR(s, 10, 'EncKDCRepPart.sname', rPrincipalName);
    if (s.has(11)) out.caddr = ctxSeqOfR(s, 11, 'EncKDCRepPart.caddr', rHostAddress);
    if (s.has(12)) out.encryptedPaData = ctxSeqOfR(s, 12, 'EncKDCRepPart.encrypted-pa-data', rPaData);
    s.end('EncKDCRepPart');
    a.end('EncKDCRepPart');
    return out;
  });
}

// ---------------------------------------------------------------- Authenticator [APPLICATION 2]

export function encodeAuthenticator(x: Authenticator): Uint8Array {
  return encApp(
    APP_AUTHENTICATOR,
    encSeq([
      encCtx(0, encInt(PVNO)),
      encCtx(1, encStr(x.crealm)),
      encCtx(2, wPrincipalName(x.cname)),
      has(x.cksum) ? encCtx(3, wChecksum(x.cksum as Checksum)) : null,
      encCtx(4, encUsec(x.cusec)),
      encCtx(5, encTime(x.ctime)),
      has(x.subkey) ? encCtx(6, wEncryptionKey(x.subkey as EncryptionKey)) : null,
      has(x.seqNumber) ? encCtx(7, encUInt32(x.seqNumber as number)) : null,
      has(x.authorizationData) ? encCtx(8, seqOfW(x.authorizationData as AuthorizationDataEntry[], wAdEntry)) : null,
    ]),
  );
}
export function decodeAuthenticator(b: Uint8Array): Authenticator {
  return decodeAll(b, 'Authenticator', (r) => {
    const a = r.enter(0x60 | APP_AUTHENTICATOR, 'Authenticator');
    const s = a.seq('Authenticator');
    s.ctxIntEq(0, PVNO, 'Authenticator.authenticator-vno');
    const out: Authenticator = {
      crealm: s.ctxStr(1, 'Authenticator.crealm'),
      cname: ctxR(s, 2, 'Authenticator.cname', rPrincipalName),
      cusec: 0,
      ctime: 0,
    };
    if (s.has(3)) out.cksum = ctxR(s, 3, 'Authenticator.cksum', rChecksum);
    out.cusec = s.ctxUsec(4, 'Authenticator.cusec');
    out.ctime = s.ctxTime(5, 'Authenticator.ctime');
    if (s.has(6)) out.subkey = ctxR(s, 6, 'Authenticator.subkey', rEncryptionKey);
    if (s.has(7)) out.seqNumber = s.ctxUInt32(7, 'Authenticator.seq-number');
    if (s.has(8)) out.authorizationData = ctxSeqOfR(s, 8, 'Authenticator.authorization-data', rAdEntry);
    s.end('Authenticator');
    a.end('Authenticator');
    return out;
  });
}

function encUsec(v: number): Uint8Array {
  if (!(v >= 0 && v <= 999999)) throw new Error('Microseconds ' + v + ' out of range');
  return encInt(v);
}
function encUInt32(v: number): Uint8Array {
  if (!(v >= 0 && v <= 4294967295)) throw new Error('UInt32 ' + v + ' out of range');
  return encInt(v);
}

// ---------------------------------------------------------------- AP-REQ [APPLICATION 14]

export function encodeApReq(q: ApReq): Uint8Array {
  return encApp(
    KRB_AP_REQ,
    encSeq([
      encCtx(0, encInt(PVNO)),
      encCtx(1, encInt(KRB_AP_REQ)),
      encCtx(2, encFlags(q.apOptions)),
      encCtx(3, wTicket(q.ticket)),
      encCtx(4, wEncryptedData(q.authenticator)),
    ]),
  );
}
export function decodeApReq(b: Uint8Array): ApReq {
  return decodeAll(b, 'AP-REQ', (r) => {
    const a = r.enter(0x60 | KRB_AP_REQ, 'AP-REQ');
    const s = a.seq('AP-REQ');
    pvnoMsg(s, 0, KRB_AP_REQ, 'AP-REQ');
    const apOptions = s.ctxFlags(2, 'AP-REQ.ap-options');
    const ticket = ctxR(s, 3, 'AP-REQ.ticket', rTicket);
    const authenticator = ctxR(s, 4, 'AP-REQ.authenticator', rEncryptedData);
    s.end('AP-REQ');
    a.end('AP-REQ');
    return { apOptions: apOptions, ticket: ticket, authenticator: authenticator };
  });
}

// ---------------------------------------------------------------- AP-REP [APPLICATION 15], EncAPRepPart [27]

export function encodeApRep(p: ApRep): Uint8Array {
  return encApp(
    KRB_AP_REP,
    encSeq([encCtx(0, encInt(PVNO)), encCtx(1, encInt(KRB_AP_REP)), encCtx(2, wEncryptedData(p.encPart))]),
  );
}
export function decodeApRep(b: Uint8Array): ApRep {
  return decodeAll(b, 'AP-REP', (r) => {
    const a = r.enter(0x60 | KRB_AP_REP, 'AP-REP');
    const s = a.seq('AP-REP');
    pvnoMsg(s, 0, KRB_AP_REP, 'AP-REP');
    const encPart = ctxR(s, 2, 'AP-REP.enc-part', rEncryptedData);
    s.end('AP-REP');
    a.end('AP-REP');
    return { encPart: encPart };
  });
}

export function encodeEncApRepPart(p: EncApRepPart): Uint8Array {
  return encApp(
    APP_ENC_AP_REP_PART,
    encSeq([
      encCtx(0, encTime(p.ctime)),
      encCtx(1, encUsec(p.cusec)),
      has(p.subkey) ? encCtx(2, wEncryptionKey(p.subkey as EncryptionKey)) : null,
      has(p.seqNumber) ? encCtx(3, encUInt32(p.seqNumber as number)) : null,
    ]),
  );
}
export function decodeEncApRepPart(b: Uint8Array): EncApRepPart {
  return decodeAll(b, 'EncAPRepPart', (r) => {
    const a = r.enter(0x60 | APP_ENC_AP_REP_PART, 'EncAPRepPart');
    const s = a.seq('EncAPRepPart');
    const out: EncApRepPart = { ctime: s.ctxTime(0, 'EncAPRepPart.ctime'), cusec: s.ctxUsec(1, 'EncAPRepPart.cusec') };
    if (s.has(2)) out.subkey = ctxR(s, 2, 'EncAPRepPart.subkey', rEncryptionKey);
    if (s.has(3)) out.seqNumber = s.ctxUInt32(3, 'EncAPRepPart.seq-number');
    s.end('EncAPRepPart');
    a.end('EncAPRepPart');
    return out;
  });
}

// ---------------------------------------------------------------- KRB-ERROR [APPLICATION 30]

export function encodeKrbError(x: KrbError): Uint8Array {
  return encApp(
    KRB_ERROR,
    encSeq([
      encCtx(0, encInt(PVNO)),
      encCtx(1, encInt(KRB_ERROR)),
      has(x.ctime) ? encCtx(2, encTime(x.ctime as number)) : null,
      has(x.cusec) ? encCtx(3, encUsec(x.cusec as number)) : null,
      encCtx(4, encTime(x.stime)),
      encCtx(5, encUsec(x.susec)),
      encCtx(6, encInt(x.errorCode)),
      has(x.crealm) ? encCtx(7, encStr(x.crealm as string)) : null,
      has(x.cname) ? encCtx(8, wPrincipalName(x.cname as PrincipalName)) : null,
      encCtx(9, encStr(x.realm)),
      encCtx(10, wPrincipalName(x.sname)),
      has(x.eText) ? encCtx(11, encStr(x.eText as string)) : null,
      has(x.eData) ? encCtx(12, encOctets(x.eData as Uint8Array)) : null,
    ]),
  );
}
export function decodeKrbError(b: Uint8Array): KrbError {
  return decodeAll(b, 'KRB-ERROR', (r) => {
    const a = r.enter(0x60 | KRB_ERROR, 'KRB-ERROR');
    const s = a.seq('KRB-ERROR');
    pvnoMsg(s, 0, KRB_ERROR, 'KRB-ERROR');
    let ctime: number | undefined;
    let cusec: number | undefined;
    if (s.has(2)) ctime = s.ctxTime(2, 'KRB-ERROR.ctime');
    if (s.has(3)) cusec = s.ctxUsec(3, 'KRB-ERROR.cusec');
    const out: KrbError = {
      stime: s.ctxTime(4, 'KRB-ERROR.stime'),
      susec: s.ctxUsec(5, 'KRB-ERROR.susec'),
      errorCode: s.ctxInt32(6, 'KRB-ERROR.error-code'),
      realm: '',
      sname: { nameType: 0, nameString: [] },
    };
    if (ctime !== undefined) out.ctime = ctime;
    if (cusec !== undefined) out.cusec = cusec;
    if (s.has(7)) out.crealm = s.ctxStr(7, 'KRB-ERROR.crealm');
    if (s.has(8)) out.cname = ctxR(s, 8, 'KRB-ERROR.cname', rPrincipalName);
    out.realm = s.ctxStr(9, 'KRB-ERROR.realm');
    out.sname = ctxR(s, 10, 'KRB-ERROR.sname', rPrincipalName);
    if (s.has(11)) out.eText = s.ctxStr(11, 'KRB-ERROR.e-text');
    if (s.has(12)) out.eData = s.ctxOctets(12, 'KRB-ERROR.e-data');
    s.end('KRB-ERROR');
    a.end('KRB-ERROR');
    return out;
  });
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
  const field = t === KRB_AP_REQ ? 3 : t === KRB_AS_REP || t === KRB_TGS_REP ? 5 : -1;
  if (field < 0) throw new DecodeError('ticket: message is not an AP-REQ, AS-REP or TGS-REP');
  return decodeAll(msg, 'ticket', (r) => {
    const a = r.enter(0x60 | t, 'ticket');
    const s = a.seq('ticket');
    while (s.more() && !s.has(field)) s.skip('ticket');
    const c = s.ctx(field, 'ticket');
    const raw = c.raw(0x60 | APP_TICKET, 'ticket');
    c.end('ticket');
    return raw;
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
