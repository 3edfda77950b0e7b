// Kerberos V5 (RFC 4120) message types: the plain objects krb5.ts encodes and decodes
// (conventions at the top of krb5.ts). Declarations only: nothing here reaches a bundle.
// Written inside the Espruino subset.

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

