// Benchmark fixtures: a throwaway SC identity and service tickets minted with its
// key (what the KDC would issue), so load generators start with pre-fetched tickets.
import { nodeBackend } from '../crypto/node.ts';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import { encrypt, randomKey, usageHmacKey } from '../../firmware/proto/crypto/index.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import {
  encodeApReq,
  encodeAuthenticator,
  encodeEncTicketPart,
  parsePrincipal,
  AP_OPT_MUTUAL_REQUIRED,
  KU_AP_REQ_AUTH,
  KU_KDC_REP_TICKET,
  TKT_FLG_INITIAL,
  TKT_FLG_PRE_AUTHENT,
  type PrincipalName,
  type Ticket,
} from '../../firmware/proto/krb5.ts';
import { encodeApRequest, DOI, IPSEC_AUTH, IPSEC_ENC, KMMID, USAGE } from '../../firmware/proto/pktc.ts';

export const REALM = 'BENCH.TEST';
export const SC_PRINCIPAL = `sc/sc1.bench.test@${REALM}`;
export const ETYPE = 17; // aes128-cts-hmac-sha1-96

export function ctaPrincipal(i: number): string {
  return `cta/c${i}.bench.test@${REALM}`;
}

export function scEntry(key: Uint8Array, etype = ETYPE, kvno = 2): KeytabEntry {
  const p = parsePrincipal(SC_PRINCIPAL);
  return { principal: { realm: p.realm, components: p.name.nameString, nameType: 1 }, timestamp: 0, kvno, etype, key };
}

export function newScKey(etype = ETYPE): Uint8Array {
  return randomKey(nodeBackend, etype);
}

export type Minted = {
  principal: string;
  cname: PrincipalName;
  ticket: Ticket;
  etype: number;
  sessionKey: Uint8Array;
  /** Derived HMAC key of the AP Request (usage 1101): the CTA caches it with the ticket. */
  hmacReq: Uint8Array;
};

/** A service ticket for the SC, sealed with the SC's key (usage 2), valid for 10 h from now. */
export function mintTicket(scKey: Uint8Array, client: string, now: number, b: CryptoBackend = nodeBackend, etype = ETYPE, kvno = 2): Minted {
  const c = parsePrincipal(client);
  const s = parsePrincipal(SC_PRINCIPAL);
  const sessionKey = randomKey(b, etype);
  const etp = encodeEncTicketPart({
    flags: TKT_FLG_INITIAL | TKT_FLG_PRE_AUTHENT,
    key: { keytype: etype, keyvalue: sessionKey },
    crealm: c.realm,
    cname: c.name,
    transited: { trType: 1, contents: new Uint8Array(0) },
    authtime: now - (now % 1000),
    starttime: now - (now % 1000),
    endtime: now - (now % 1000) + 10 * 3600 * 1000,
  });
  const cipher = encrypt(b, etype, scKey, KU_KDC_REP_TICKET, etp);
  return {
    principal: client,
    cname: c.name,
    ticket: { realm: s.realm, sname: s.name, encPart: { etype, kvno, cipher } },
    etype,
    sessionKey,
    hmacReq: usageHmacKey(b, etype, sessionKey, USAGE.AP_REQUEST),
  };
}

/** A KRB_AP_REQ (mutual-required) with a fresh authenticator (usage 11) for time ms + cusec. */
export function apReqDer(m: Minted, ms: number, cusec: number, b: CryptoBackend = nodeBackend): Uint8Array {
  const auth = encodeAuthenticator({ crealm: REALM, cname: m.cname, ctime: ms - (ms % 1000), cusec });
  return encodeApReq({
    apOptions: AP_OPT_MUTUAL_REQUIRED,
    ticket: m.ticket,
    authenticator: { etype: m.etype, cipher: encrypt(b, m.etype, m.sessionKey, KU_AP_REQ_AUTH, auth) },
  });
}

/** The pktc AP Request around an AP-REQ, HMAC'd with the ticket's usage-1101 key. */
export function pktcApRequest(m: Minted, apReq: Uint8Array, nonce: number, spi: number, b: CryptoBackend = nodeBackend): Uint8Array {
  return encodeApRequest(b, m.hmacReq, {
    kmmid: KMMID.AP_REQUEST,
    doi: DOI.IPSEC,
    apReq,
    serverNonce: nonce,
    appData: { spi },
    ciphersuites: [{ auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC }],
    reestablish: false,
  });
}

export function toHex(u: Uint8Array): string {
  return Buffer.from(u.buffer, u.byteOffset, u.length).toString('hex');
}
export function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'hex'));
}
