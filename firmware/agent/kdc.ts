// The CTA side of the AS exchange (PROTOCOL.md "Getting the ticket"): build the
// AS-REQ for a service ticket to an SC, pick the pre-authentication enctype from
// a PREAUTH_REQUIRED error's ETYPE-INFO2, and turn an AS-REP into a ticket-cache
// entry. Pure functions; the agent keeps the state. Espruino subset.

import type { CryptoBackend } from '../proto/crypto/backend.ts';
import { encrypt, decrypt, usageHmacKey } from '../proto/crypto/index.ts';
import {
  krbEncode,
  krbDecode,
  principalNameEquals,
  PA_ENC_TIMESTAMP,
  PA_ETYPE_INFO2,
  NT_PRINCIPAL,
  KU_AS_REQ_PA_ENC_TIMESTAMP,
  KU_AS_REP_ENCPART,
  KRB_AS_REQ,
  APP_ENC_AS_REP_PART,
  APP_ENC_TGS_REP_PART,
} from '../proto/krb5.ts';
import type { PrincipalName, PaData, AsRep, KrbError, Ticket, EncKdcRepPart, EtypeInfo2Entry } from '../proto/krb5.ts';
import { PA_ENC_TS_ENC, ENCRYPTED_DATA, KDC_REQ, METHOD_DATA, ETYPE_INFO2, ENC_KDC_REP_PART } from '../proto/krb5-schema.ts';
import { DecodeError } from '../proto/errors.ts';
import type { CtaKey } from '../config.ts';
import { USAGE_AP_REQUEST, AS_TILL_MS } from '../proto/consts.ts';

/** A cached service ticket for one SC, with its session key and derived HMAC keys. */
export type TicketEntry = {
  ticket: Ticket;
  etype: number;
  key: Uint8Array;
  /** KDC times, ms. */
  authtime: number;
  endtime: number;
  /** HMAC key of the AP Request (usage 1101 under the session key). */
  hmacReq: Uint8Array;
  /** HMAC key of the Rekey (usage 1104), derived on first use. */
  hmacRekey: Uint8Array | null;
};

/** Ticket lifetime asked for (the KDC caps it): AS_TILL_MS, one day (consts.ts, inlined). */
export { AS_TILL_MS };

export function clientName(principal: string): PrincipalName {
  return { nameType: NT_PRINCIPAL, nameString: principal.split('/') };
}

/**
 * The AS-REQ bytes. `pa` = the long-term key to pre-authenticate with (PA-ENC-TIMESTAMP,
 * key usage 1, timestamp from the adjusted clock), or null for the first, bare request.
 */
export function buildAsReq(
  b: CryptoBackend,
  cname: PrincipalName,
  realm: string,
  sname: PrincipalName,
  keys: CtaKey[],
  nonce: number,
  nowMs: number,
  pa: CtaKey | null,
): Uint8Array {
  const etypes: number[] = [];
  for (let i = 0; i < keys.length; i++) if (etypes.indexOf(keys[i].etype) < 0) etypes.push(keys[i].etype);
  let padata: PaData[] | undefined;
  if (pa) {
    const ms = Math.floor(nowMs);
    const ts = krbEncode(PA_ENC_TS_ENC, { patimestamp: Math.floor(ms / 1000) * 1000, pausec: (ms % 1000) * 1000 }, 0);
    const enc = { etype: pa.etype, kvno: pa.kvno, cipher: encrypt(b, pa.etype, pa.key, KU_AS_REQ_PA_ENC_TIMESTAMP, ts) };
    padata = [{ padataType: PA_ENC_TIMESTAMP, padataValue: krbEncode(ENCRYPTED_DATA, enc, 0) }];
  }
  return krbEncode(
    KDC_REQ,
    {
      padata: padata,
      reqBody: { kdcOptions: 0, cname: cname, realm: realm, sname: sname, till: nowMs + AS_TILL_MS, nonce: nonce, etype: etypes },
    },
    KRB_AS_REQ,
  );
}

/**
 * The key to pre-authenticate with after KDC_ERR_PREAUTH_REQUIRED: the first
 * ETYPE-INFO2 entry we hold a key for (the KDC lists its preference first); with
 * no usable ETYPE-INFO2, our first key. null if we hold none of the listed etypes.
 */
export function preauthKey(err: KrbError, keys: CtaKey[]): CtaKey | null {
  if (!err.eData) return keys[0];
  let list: EtypeInfo2Entry[] | null = null;
  try {
    // METHOD-DATA, its first PA-ETYPE-INFO2 and that (non-empty) ETYPE-INFO2.
    const md: PaData[] = krbDecode(err.eData, METHOD_DATA, 0, 'METHOD-DATA');
    for (let i = 0; i < md.length && !list; i++) if (md[i].padataType === PA_ETYPE_INFO2) list = krbDecode(md[i].padataValue, ETYPE_INFO2, 0, 'ETYPE-INFO2');
  } catch (e) {
    return keys[0];
  }
  if (!list || !list.length) return keys[0];
  for (let i = 0; i < list.length; i++) {
    for (let k = 0; k < keys.length; k++) if (keys[k].etype === list[i].etype) return keys[k];
  }
  return null;
}

/**
 * Checks an AS-REP against the request (enc-part under our long-term key, usage 3;
 * nonce; server name) and returns the cache entry. Throws DecodeError / CryptoError.
 */
export function readAsRep(b: CryptoBackend, rep: AsRep, keys: CtaKey[], nonce: number, sname: PrincipalName): TicketEntry {
  let key: CtaKey | null = null;
  for (let i = 0; i < keys.length; i++) {
    if (keys[i].etype === rep.encPart.etype && (rep.encPart.kvno === undefined || rep.encPart.kvno === keys[i].kvno)) key = keys[i];
  }
  if (!key) for (let i = 0; i < keys.length; i++) if (keys[i].etype === rep.encPart.etype) key = keys[i];
  if (!key) throw new DecodeError('AS-REP: enc-part etype ' + rep.encPart.etype + ' is not one of our keys');
  // The ticket is kept for as long as it is valid and re-sent as its raw DER. Its
  // enc-part cipher is the last field of that DER: point it into raw instead of
  // keeping a second copy of the largest part of the ticket. Done first, so that the
  // copy is not held through the decryption and the key derivation below (the
  // interpreter's peak in the first exchange).
  const tkt = rep.ticket;
  const raw = tkt.raw;
  const cipher = tkt.encPart.cipher;
  if (raw && raw.length >= cipher.length) {
    const view = raw.subarray(raw.length - cipher.length);
    let same = true;
    for (let i = 0; i < cipher.length; i++) if (view[i] !== cipher[i]) same = false;
    if (same) tkt.encPart.cipher = view;
  }
  const pt = decrypt(b, key.etype, key.key, KU_AS_REP_ENCPART, rep.encPart.cipher);
  // EncASRepPart (25) or EncTGSRepPart (26): MIT's KDC sends 26 in AS-REPs.
  const part: EncKdcRepPart = krbDecode(pt, ENC_KDC_REP_PART, pt[0] === (0x60 | APP_ENC_TGS_REP_PART) ? APP_ENC_TGS_REP_PART : APP_ENC_AS_REP_PART, 'EncKDCRepPart');
  if (part.nonce !== nonce) throw new DecodeError('AS-REP: nonce does not match the request');
  if (!principalNameEquals(part.sname, sname) || !principalNameEquals(tkt.sname, sname)) {
    throw new DecodeError('AS-REP: ticket is for another server');
  }
  const kv = part.key.keyvalue;
  return {
    ticket: tkt,
    etype: part.key.keytype,
    key: kv,
    authtime: part.authtime,
    endtime: part.endtime,
    hmacReq: usageHmacKey(b, part.key.keytype, kv, USAGE_AP_REQUEST),
    hmacRekey: null,
  };
}
