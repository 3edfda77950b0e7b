// Protocol numbers of pktc.ts and esp.ts as plain exported constants. esbuild inlines
// a constant imported from another module, but keeps a module's own `const` as a
// variable (one interpreter variable each on the board): so these live here, and
// pktc.ts / esp.ts re-export the public ones.

/** Message ids (pktc KMMID). */
export const KM_WAKE_UP = 1;
export const KM_AP_REQUEST = 2;
export const KM_AP_REPLY = 3;
export const KM_SA_RECOVERED = 4;
export const KM_REKEY = 5;
export const KM_ERROR_REPLY = 6;
/** Major version nibble of the pktc header (VERSION >> 4). */
export const PKTC_MAJOR = 1;
/** ESP next header "no next header" (esp ESP_NEXT_HEADER.NONE). */
export const NH_NONE = 59;
/** DOI values (pktc DOI.IPSEC / DOI.SNMPV3). */
export const DOI_IPSEC = 1;
export const DOI_SNMPV3 = 2;
/** Outer DER tags of the carried Kerberos messages (pktc DER_TAG). */
export const TAG_AP_REQ = 0x6e;
export const TAG_AP_REP = 0x6f;
export const TAG_KRB_ERROR = 0x7e;
/** major<<4 | minor: this profile is 1.0. */
export const VERSION = 0x10;
/** Largest datagram accepted or produced. */
export const MAX_DATAGRAM = 4096;
export const HMAC_LEN = 20;
/** Longest server principal (bytes, excluding the NUL). */
export const MAX_PRINCIPAL = 255;
/** Most ciphersuites in one list. */
export const MAX_CIPHERSUITES = 16;
/** SNMPv3 engineID length bounds (RFC 3411 SnmpEngineID SIZE(5..32)). */
export const SNMP_ENGINE_ID_MIN = 5;
export const SNMP_ENGINE_ID_MAX = 32;
/** usmUserName length bounds (RFC 3414 SnmpAdminString SIZE(1..32)). */
export const SNMP_USER_MAX = 32;
/** Application key usages of the HMAC keys (pktc USAGE). */
export const USAGE_AP_REQUEST = 1101;
export const USAGE_AP_REPLY = 1102;
export const USAGE_SA_RECOVERED = 1103;
export const USAGE_REKEY = 1104;

/** ESP (esp.ts). */
export const ESP_ICV_LEN = 12;
export const ESP_IV_LEN = 16;
export const ESP_HEADER_LEN = 8;
/** Largest ESP packet sealed or opened. */
export const ESP_MAX_PACKET = 4096;
/** Largest NCS message text handled. */
export const NCS_MAX = 2048;
export const REPLAY_WINDOW_SIZE = 64;

/** CBOR (cbor.ts): nesting and input bounds, integer limits. */
export const CBOR_MAX_DEPTH = 8;
export const CBOR_MAX_INPUT = 65536;
export const TWO32 = 4294967296;
export const MAX_SAFE = 9007199254740991;

/** DER (der.ts) reader bounds. */
export const DER_MAX_INPUT = 65535;
export const DER_MAX_DEPTH = 16;
export const DER_MAX_ITEMS = 64;

/** SA key material (sa.ts): 2 x (16-byte AES key + 20-byte HMAC-SHA1 key). */
export const SA_KEYMAT_LEN = 72;

/** Transport channels (agent/transport.ts) and the address of a datagram from a serial link. */
export const CH_CTL = 0;
export const CH_KM = 1;
export const CH_KDC = 2;
export const CH_SIG = 3;
export const SERIAL_ADDRESS = 'serial';

/** AS-REQ till: one day after now (agent/kdc.ts). */
export const AS_TILL_MS = 86400000;

/** The KerberosTime range (years 0000..9999), ms since 1970: 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z (exclusive). */
export const KERBEROS_TIME_MIN_MS = -62167219200000;
export const KERBEROS_TIME_END_MS = 253402300800000;
/** The pktc timestamp range (YY = 1950..2049), ms since 1970: 1950-01-01T00:00:00Z and 2050-01-01T00:00:00Z (exclusive). */
export const PKTC_TIME_MIN_MS = -631152000000;
export const PKTC_TIME_END_MS = 2524608000000;
