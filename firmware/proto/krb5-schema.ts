// The names of krb5.ts's schema mini-language: what krbEncode/krbDecode are asked to
// encode or decode (a Kerberos type such as AP_REQ or METHOD_DATA), and the parts each
// table of krb5.ts spec() is written with. Espruino subset.
//
// Every SEQUENCE is one line of text walked by one encoder and one decoder (krb5.ts
// wSeq/rSeq), the way MIT's asn1_encode.c describes types with tables. A field is
// tag + kind + mode + name, fields separated by one space:
//   tag   the [n] EXPLICIT context tag, as the char '0' + n: '0'..'9', then TAG_10,
//         TAG_11, TAG_12;
//   kind  a primitive (INT .. FLAGS, encoded by der.ts wPrim / DerReader.val; PVNO_FIELD
//         and MSG_TYPE are checked on decode and not stored) or a Kerberos type below,
//         whose own table is then walked;
//   mode  REQUIRED, OPTIONAL, SEQ_OF or OPTIONAL_SEQ_OF;
//   name  the property of the plain object (fields are in tag order).
//
// Each name is one character of that text. They are plain exported constants in a
// module of their own: esbuild inlines a constant imported from another module (a
// module's own `const` would stay a variable, one interpreter variable each), and
// the bundler then folds a table's concatenation back into the one string literal
// it was before these names existed: on the board they cost nothing.

// ---------------------------------------------------------------- primitive kinds
// (lower case: der.ts reads these letters)

/** INTEGER, an Int32. */
export const INT = 'i';
/** INTEGER, a UInt32 (nonces, kvno, sequence numbers). */
export const UINT = 'u';
/** Microseconds: INTEGER 0..999999. */
export const MICROSECONDS = 'm';
/** KerberosString (GeneralString; one char per byte, NUL rejected). */
export const KSTRING = 's';
/** OCTET STRING (a Uint8Array). */
export const OCTETS = 'o';
/** KerberosTime: GeneralizedTime, ms since the epoch in the object. */
export const TIME = 't';
/** KerberosFlags: a BIT STRING of 32 bits, an unsigned number in the object. */
export const FLAGS = 'f';
/** pvno: always 5 (written; checked on decode, not stored). */
export const PVNO_FIELD = 'v';
/** msg-type: the message's [APPLICATION] number (written; checked on decode, not stored). */
export const MSG_TYPE = 'n';

// ---------------------------------------------------------------- modes

export const REQUIRED = '-';
export const OPTIONAL = '?';
/** SEQUENCE OF the kind (required; may be empty). */
export const SEQ_OF = '*';
export const OPTIONAL_SEQ_OF = '+';

// ---------------------------------------------------------------- context tags past 9

export const TAG_10 = ':';
export const TAG_11 = ';';
export const TAG_12 = '<';

// ---------------------------------------------------------------- Kerberos types
// (upper case: each names a table of krb5.ts spec(); RFC 4120 names)

export const PRINCIPAL_NAME = 'P';
export const ENCRYPTED_DATA = 'E';
/** Ticket [APPLICATION 1] (the walkers wrap it and keep its raw DER). */
export const TICKET = 'T';
export const ENCRYPTION_KEY = 'K';
export const AP_REQ = 'M';
export const AUTHENTICATOR = 'U';
export const AP_REP = 'N';
export const ENC_AP_REP_PART = 'O';
export const PA_DATA = 'D';
export const ETYPE_INFO2_ENTRY = 'I';
export const LAST_REQ_ENTRY = 'L';
export const HOST_ADDRESS = 'H';
export const CHECKSUM = 'C';
export const AUTHORIZATION_DATA_ENTRY = 'A';
/** KDC-REQ-BODY (decoding also keeps its exact DER, reqBodyRaw). */
export const KDC_REQ_BODY = 'B';
/** AS-REQ and TGS-REQ. */
export const KDC_REQ = 'Q';
/** AS-REP and TGS-REP. */
export const KDC_REP = 'Y';
/** EncASRepPart and EncTGSRepPart. */
export const ENC_KDC_REP_PART = 'Z';
/** KRB-ERROR (KRB_ERROR is its msg-type number). */
export const KRB_ERROR_TYPE = 'W';
export const PA_ENC_TS_ENC = 'S';
export const TRANSITED_ENCODING = 'R';

// ---------------------------------------------------------------- SEQUENCE OF types
// (SEQ_OF + the element type: krbEncode/krbDecode take them whole)

/** METHOD-DATA ::= SEQUENCE OF PA-DATA */
export const METHOD_DATA = '*D';
/** ETYPE-INFO2 ::= SEQUENCE OF ETYPE-INFO2-ENTRY */
export const ETYPE_INFO2 = '*I';
/** HostAddresses ::= SEQUENCE OF HostAddress */
export const HOST_ADDRESSES = '*H';
/** AuthorizationData ::= SEQUENCE OF AuthorizationData entries */
export const AUTHORIZATION_DATA = '*A';
/** LastReq ::= SEQUENCE OF LastReq entries */
export const LAST_REQ = '*L';

/** A Kerberos type with a table (one of the upper-case names above). */
export type KrbType =
  | typeof PRINCIPAL_NAME
  | typeof ENCRYPTED_DATA
  | typeof TICKET
  | typeof ENCRYPTION_KEY
  | typeof AP_REQ
  | typeof AUTHENTICATOR
  | typeof AP_REP
  | typeof ENC_AP_REP_PART
  | typeof PA_DATA
  | typeof ETYPE_INFO2_ENTRY
  | typeof LAST_REQ_ENTRY
  | typeof HOST_ADDRESS
  | typeof CHECKSUM
  | typeof AUTHORIZATION_DATA_ENTRY
  | typeof KDC_REQ_BODY
  | typeof KDC_REQ
  | typeof KDC_REP
  | typeof ENC_KDC_REP_PART
  | typeof KRB_ERROR_TYPE
  | typeof PA_ENC_TS_ENC
  | typeof TRANSITED_ENCODING;
/** A SEQUENCE OF type (the names above). */
export type KrbListType = typeof METHOD_DATA | typeof ETYPE_INFO2 | typeof HOST_ADDRESSES | typeof AUTHORIZATION_DATA | typeof LAST_REQ;
/** A whole table written out (a type kept out of spec(), such as krb5.ts ENC_TICKET_PART). */
export type KrbTable = string & { readonly krbTable: true };
/** What krbEncode/krbDecode take. */
export type KrbSchema = KrbType | KrbListType | KrbTable;
/** The kind of a field: a primitive or a Kerberos type. */
export type KrbKind = typeof INT | typeof UINT | typeof MICROSECONDS | typeof KSTRING | typeof OCTETS | typeof TIME | typeof FLAGS | typeof PVNO_FIELD | typeof MSG_TYPE | KrbType;

declare const BUILD_LABELS: boolean;
/**
 * Whether field labels exist (host code, long-error builds). A version (PVNO_FIELD) or
 * message-type (MSG_TYPE) field is checked on decode and never stored, so its name in a
 * table is only a label for error messages; a board's short-error build drops those labels,
 * and the tables there write such names as '' (about 80 bytes of image).
 */
export const LABELS = typeof BUILD_LABELS === 'undefined' || BUILD_LABELS;
/** The label of a message's pvno and msg-type fields ('' where labels are dropped). */
export const PVNO_LABEL = LABELS ? 'pvno' : '';
export const MSG_TYPE_LABEL = LABELS ? 'msg-type' : '';
