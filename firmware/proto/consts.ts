// Protocol numbers of pktc.ts and esp.ts as plain exported constants. esbuild inlines
// a constant imported from another module, but keeps a module's own `const` as a
// variable (one interpreter variable each on the board): so these live here, and
// pktc.ts / esp.ts re-export the public ones.

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
