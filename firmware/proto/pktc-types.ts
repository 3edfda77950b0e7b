// PacketCable key-management message types (PROTOCOL.md): the plain objects pktc.ts
// encodes and decodes. Declarations only: nothing here reaches a bundle.
// Written inside the Espruino subset.

/** DOI IPsec application data: an inbound SPI. */
export interface IpsecAppData {
  spi: number;
}
/** DOI SNMPv3 application data. */
export interface SnmpAppData {
  engineId: Uint8Array;
  engineBoots: number;
  engineTime: number;
  userName: string;
}
export type AppData = IpsecAppData | SnmpAppData;

export interface Ciphersuite {
  /** Authentication algorithm (IPsec 0x02 HMAC-SHA1-96; SNMPv3 0x22 HMAC-SHA1). */
  auth: number;
  /** Encryption transform (IPsec 0x0c AES-128-CBC, 0x0b NULL; SNMPv3 0x20 NULL). */
  enc: number;
}

export interface WakeUp {
  kmmid: 1;
  doi: number;
  version?: number;
  serverNonce: number;
  serverPrincipal: string;
}
export interface ApRequest {
  kmmid: 2;
  doi: number;
  version?: number;
  /** KRB_AP_REQ, DER ([APPLICATION 14]). */
  apReq: Uint8Array;
  /** returned_nonce: the Wake Up's / Rekey's nonce, 0 = client-initiated. */
  serverNonce: number;
  appData: AppData;
  ciphersuites: Ciphersuite[];
  reestablish: boolean;
}
export interface ApReply {
  kmmid: 3;
  doi: number;
  version?: number;
  /** KRB_AP_REP, DER ([APPLICATION 15]). */
  apRep: Uint8Array;
  appData: AppData;
  /** The one selected ciphersuite (sent as a list of count 1). */
  ciphersuite: Ciphersuite;
  saLifetime: number;
  gracePeriod: number;
  reestablish: boolean;
  ackRequired: boolean;
}
export interface SaRecovered {
  kmmid: 4;
  doi: number;
  version?: number;
}
export interface Rekey {
  kmmid: 5;
  doi: number;
  version?: number;
  serverNonce: number;
  serverPrincipal: string;
  /** UTC, milliseconds since 1970 (whole seconds on the wire). */
  timestamp: number;
  appData: AppData;
  ciphersuites: Ciphersuite[];
  saLifetime: number;
  gracePeriod: number;
  reestablish: boolean;
}
export interface ErrorReply {
  kmmid: 6;
  doi: number;
  version?: number;
  /** KRB_ERROR, DER ([APPLICATION 30]). */
  krbError: Uint8Array;
}
export type PktcMessage = WakeUp | ApRequest | ApReply | SaRecovered | Rekey | ErrorReply;

/** What a decoder adds to a message that carries an HMAC. */
export interface Signed {
  version: number;
  /** The bytes the HMAC covers (SA Recovered: only the 3-byte header; see verifySaRecovered). */
  signed: Uint8Array;
  hmac: Uint8Array;
}
export type DecodedWakeUp = WakeUp & { version: number };
export type DecodedApRequest = ApRequest & Signed;
export type DecodedApReply = ApReply & Signed;
export type DecodedSaRecovered = SaRecovered & Signed;
export type DecodedRekey = Rekey & Signed;
export type DecodedErrorReply = ErrorReply & { version: number };
export type DecodedMessage =
  | DecodedWakeUp
  | DecodedApRequest
  | DecodedApReply
  | DecodedSaRecovered
  | DecodedRekey
  | DecodedErrorReply;

