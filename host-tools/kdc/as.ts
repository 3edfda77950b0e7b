// The AS exchange (RFC 4120 section 3.1) as a pure function of the database,
// the request bytes and the time: no sockets, no global state, so it can be
// unit-tested and benchmarked directly.
//
// It issues a ticket for ANY service principal in the database, not only
// krbtgt: a PacketCable-style CTA gets its Signaling Controller ticket straight
// from the AS exchange. Order of checks (as MIT's KDC): client known, server
// known, a common enctype, pre-authentication (PA-ENC-TIMESTAMP, key usage 1,
// within the allowed skew), then the ticket (EncTicketPart under the service
// key, usage 2) and the reply (EncASRepPart under the client key, usage 3).
// Malformed input gets a KRB-ERROR (or nothing, for bytes that are not a
// Kerberos message at all), never an exception.

import { isCryptoError, isDecodeError } from '../../firmware/proto/errors.ts';
import { encrypt, decrypt, randomKey } from '../../firmware/proto/crypto/index.ts';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import {
  decodeAsReq,
  decodeEncryptedData,
  decodePaEncTsEnc,
  encodeAsRep,
  encodeEncKdcRepPart,
  encodeEncTicketPart,
  encodeEtypeInfo2,
  encodeKrbError,
  encodeMethodData,
  findPaData,
  messageType,
  KRB_AS_REQ,
  KRB_TGS_REQ,
  NT_SRV_INST,
  PA_ENC_TIMESTAMP,
  PA_ETYPE_INFO2,
  KDC_OPT_FORWARDABLE,
  KDC_OPT_PROXIABLE,
  KDC_OPT_RENEWABLE,
  KDC_OPT_RENEWABLE_OK,
  KDC_OPT_POSTDATED,
  KDC_OPT_ENC_TKT_IN_SKEY,
  KDC_OPT_RENEW,
  KDC_OPT_VALIDATE,
  KDC_OPT_FORWARDED,
  KDC_OPT_PROXY,
  TKT_FLG_FORWARDABLE,
  TKT_FLG_INITIAL,
  TKT_FLG_PRE_AUTHENT,
  TKT_FLG_PROXIABLE,
  TKT_FLG_RENEWABLE,
  KU_AS_REQ_PA_ENC_TIMESTAMP,
  KU_KDC_REP_TICKET,
  KU_AS_REP_ENCPART,
  KDC_ERR_BADOPTION,
  KDC_ERR_C_PRINCIPAL_UNKNOWN,
  KDC_ERR_ETYPE_NOSUPP,
  KDC_ERR_NEVER_VALID,
  KDC_ERR_PREAUTH_FAILED,
  KDC_ERR_PREAUTH_REQUIRED,
  KDC_ERR_S_PRINCIPAL_UNKNOWN,
  KDC_ERR_CANNOT_POSTDATE,
  KRB_AP_ERR_MSG_TYPE,
  KRB_AP_ERR_SKEW,
  KRB_ERR_GENERIC,
  type AsReq,
  type EtypeInfo2Entry,
  type PaData,
  type PrincipalName,
} from '../../firmware/proto/krb5.ts';
import { toAscii, wipe } from '../../firmware/proto/bytes.ts';
import type { KdcDatabase, PrincipalEntry, PrincipalKey } from './db.ts';
import { formatPrincipal } from '../principal.ts';

export type AsOptions = {
  /** Allowed clock skew for PA-ENC-TIMESTAMP, seconds (default 300). */
  skewSec?: number;
  /** Crypto backend; default the database's. */
  backend?: CryptoBackend;
};

/** What happened, for logs and stats: names and numbers only, never keys. */
export type AsOutcome = {
  /** KRB-ERROR code sent, absent when an AS-REP was sent. */
  error?: number;
  reason?: string;
  client?: string;
  server?: string;
  /** Session key enctype (success). */
  etype?: number;
  /** Enctype of the client key the reply is sealed with (success). */
  replyEtype?: number;
  preauth?: boolean;
  /** 'preauth': the KRB-ERROR is the normal first round trip of pre-authentication, not a failure. */
  step?: 'preauth';
  /** endtime, seconds since 1970 (success). */
  endtime?: number;
};

export type ErrorExtra = {
  sname?: PrincipalName;
  crealm?: string;
  cname?: PrincipalName;
  eText?: string;
  eData?: Uint8Array;
};

/** A KRB-ERROR from this KDC (stime/susec = now, realm = the KDC's realm). */
export function krbErrorReply(code: number, nowMs: number, realm: string, extra: ErrorExtra = {}): Uint8Array {
  const ms = Math.floor(nowMs);
  return encodeKrbError({
    stime: ms - (ms % 1000),
    susec: (ms % 1000) * 1000,
    errorCode: code,
    crealm: extra.crealm,
    cname: extra.cname,
    realm,
    sname: extra.sname ?? { nameType: NT_SRV_INST, nameString: ['krbtgt', realm] },
    eText: extra.eText,
    eData: extra.eData,
  });
}

/** Kerberos "infinite" (MIT sends till = 0 / 1970 for no limit). */
function unlimited(t: number | undefined): boolean {
  return t === undefined || t <= 0;
}

function keyFor(p: PrincipalEntry, etype: number): PrincipalKey | null {
  for (const k of p.keys) if (k.etype === etype) return k;
  return null;
}

function saltString(k: PrincipalKey): string {
  // Salts are UTF-8 in the database; GeneralString on the wire carries the same bytes.
  return toAscii(k.salt);
}

/**
 * Handles one request; returns the reply (AS-REP or KRB-ERROR DER) and what
 * happened, or reply null when the bytes are not a Kerberos message at all
 * (dropped: no reflection of garbage).
 * One function of about 180 lines on purpose: it is RFC 4120 3.1.3-3.1.5 in the
 * RFC's order, each check a return; split, the order of the checks (which error a
 * request that breaks several rules gets) would no longer read top to bottom.
 */
export function processAsReq(db: KdcDatabase, req: Uint8Array, nowMs: number, opts: AsOptions = {}): { reply: Uint8Array | null; outcome: AsOutcome } {
  const backend = opts.backend ?? db.backend;
  const skewMs = (opts.skewSec ?? 300) * 1000;
  const realm = db.realm;
  const now = Math.floor(nowMs);
  const nowSec = now - (now % 1000);

  const mt = messageType(req);
  if (mt < 0) return { reply: null, outcome: { reason: 'not a Kerberos message' } };
  if (mt !== KRB_AS_REQ) {
    const why = mt === KRB_TGS_REQ ? 'this KDC serves the AS exchange only (no TGS)' : 'unexpected message type';
    return { reply: krbErrorReply(KRB_AP_ERR_MSG_TYPE, now, realm, { eText: why }), outcome: { error: KRB_AP_ERR_MSG_TYPE, reason: `message type ${mt}` } };
  }

  let asReq: AsReq;
  try {
    asReq = decodeAsReq(req);
  } catch (e) {
    if (!isDecodeError(e)) throw e;
    return { reply: krbErrorReply(KRB_ERR_GENERIC, now, realm, { eText: 'malformed AS-REQ' }), outcome: { error: KRB_ERR_GENERIC, reason: 'decode: ' + (e as Error).message } };
  }
  const body = asReq.reqBody;
  const sname = body.sname;
  const cname = body.cname;
  const err = (code: number, reason: string, eText?: string, eData?: Uint8Array, o: AsOutcome = {}) => ({
    reply: krbErrorReply(code, now, realm, { sname, crealm: cname ? body.realm : undefined, cname, eText: eText ?? reason, eData }),
    outcome: { ...o, error: code, reason },
  });

  if (!cname) return err(KDC_ERR_C_PRINCIPAL_UNKNOWN, 'no client name in AS-REQ');
  if (!sname) return err(KDC_ERR_S_PRINCIPAL_UNKNOWN, 'no server name in AS-REQ');
  const clientName = formatPrincipal({ components: cname.nameString, realm: body.realm });
  const serverName = formatPrincipal({ components: sname.nameString, realm: body.realm });
  const names = { client: clientName, server: serverName };

  const client = body.realm === realm ? db.getKeysCanonical(clientName) : null;
  if (!client) return err(KDC_ERR_C_PRINCIPAL_UNKNOWN, 'client not found in Kerberos database', undefined, undefined, names);
  const server = body.realm === realm ? db.getKeysCanonical(serverName) : null;
  if (!server) return err(KDC_ERR_S_PRINCIPAL_UNKNOWN, 'server not found in Kerberos database', undefined, undefined, names);

  try {
    return issue();
  } finally {
    for (const k of client.keys) wipe(k.key);
    for (const k of server.keys) wipe(k.key);
  }

  function issue(): { reply: Uint8Array; outcome: AsOutcome } {
    const c = client!;
    const s = server!;
    const cn = cname!;
    const sn = sname!;
    // Unsupported options of the AS exchange.
    if (body.kdcOptions & (KDC_OPT_ENC_TKT_IN_SKEY | KDC_OPT_RENEW | KDC_OPT_VALIDATE | KDC_OPT_FORWARDED | KDC_OPT_PROXY)) {
      return err(KDC_ERR_BADOPTION, 'option not valid in an AS-REQ', undefined, undefined, names);
    }
    if (body.kdcOptions & KDC_OPT_POSTDATED) return err(KDC_ERR_CANNOT_POSTDATE, 'postdated tickets are not issued', undefined, undefined, names);

    // Enctypes, in the client's order: its keys (reply), and the session key
    // (the first requested enctype the service has a key for).
    const clientKeys: PrincipalKey[] = [];
    let sessionEtype = -1;
    for (const et of body.etype) {
      const ck = keyFor(c, et);
      if (ck && clientKeys.indexOf(ck) < 0) clientKeys.push(ck);
      if (sessionEtype < 0 && keyFor(s, et)) sessionEtype = et;
    }
    if (clientKeys.length === 0) return err(KDC_ERR_ETYPE_NOSUPP, 'no requested enctype matches a client key', 'KDC has no support for encryption type', undefined, names);
    if (sessionEtype < 0) return err(KDC_ERR_ETYPE_NOSUPP, 'no requested enctype is supported by the service', 'KDC has no support for encryption type', undefined, names);

    // Pre-authentication.
    let replyKey = clientKeys[0];
    let preauth = false;
    const pa = findPaData(asReq.padata, PA_ENC_TIMESTAMP);
    if (pa) {
      let ts;
      try {
        const ed = decodeEncryptedData(pa.padataValue);
        const k = keyFor(c, ed.etype);
        if (!k) return err(KDC_ERR_PREAUTH_FAILED, `PA-ENC-TIMESTAMP in enctype ${ed.etype}, which the client has no key for`, 'Preauthentication failed', undefined, names);
        const plain = decrypt(backend, ed.etype, k.key, KU_AS_REQ_PA_ENC_TIMESTAMP, ed.cipher);
        ts = decodePaEncTsEnc(plain);
        replyKey = k;
      } catch (e) {
        if (!isDecodeError(e) && !isCryptoError(e)) throw e;
        return err(KDC_ERR_PREAUTH_FAILED, isCryptoError(e) ? 'PA-ENC-TIMESTAMP did not decrypt' : 'malformed PA-ENC-TIMESTAMP', 'Preauthentication failed', undefined, names);
      }
      const t = ts.patimestamp + Math.floor((ts.pausec ?? 0) / 1000);
      if (Math.abs(t - now) > skewMs) return err(KRB_AP_ERR_SKEW, `client clock off by ${Math.round((t - now) / 1000)} s`, 'Clock skew too great', undefined, names);
      preauth = true;
    } else if (c.requiresPreauth) {
      // METHOD-DATA: ETYPE-INFO2 (the client's keys in its order, with salts) and PA-ENC-TIMESTAMP.
      const info: EtypeInfo2Entry[] = clientKeys.map((k) => {
        const e: EtypeInfo2Entry = { etype: k.etype, salt: saltString(k) };
        if (k.s2kparams) e.s2kparams = k.s2kparams;
        return e;
      });
      const md: PaData[] = [
        { padataType: PA_ETYPE_INFO2, padataValue: encodeEtypeInfo2(info) },
        { padataType: PA_ENC_TIMESTAMP, padataValue: new Uint8Array(0) },
      ];
      // Not a failure: the normal first round trip of pre-authentication (the log says so;
      // the wire keeps MIT's e-text).
      const r = err(KDC_ERR_PREAUTH_REQUIRED, 'pre-authentication asked for (the first round trip; the client retries with PA-ENC-TIMESTAMP)', 'Additional pre-authentication required', encodeMethodData(md), names);
      r.outcome.step = 'preauth';
      return r;
    }

    // Times (whole seconds, as on the wire).
    const maxLife = Math.min(c.maxLifeSec, s.maxLifeSec) * 1000;
    const maxRenew = Math.min(c.maxRenewSec, s.maxRenewSec) * 1000;
    let endtime = nowSec + maxLife;
    if (!unlimited(body.till) && body.till < endtime) endtime = body.till;
    if (endtime <= nowSec) return err(KDC_ERR_NEVER_VALID, 'requested end time is in the past', undefined, undefined, names);
    let flags = TKT_FLG_INITIAL;
    if (preauth) flags |= TKT_FLG_PRE_AUTHENT;
    if (body.kdcOptions & KDC_OPT_FORWARDABLE) flags |= TKT_FLG_FORWARDABLE;
    if (body.kdcOptions & KDC_OPT_PROXIABLE) flags |= TKT_FLG_PROXIABLE;
    let renewTill: number | undefined;
    if (maxRenew > 0) {
      let want: number | undefined;
      if (body.kdcOptions & KDC_OPT_RENEWABLE) want = unlimited(body.rtime) ? Infinity : body.rtime;
      else if (body.kdcOptions & KDC_OPT_RENEWABLE_OK && (unlimited(body.till) || body.till > endtime)) want = unlimited(body.till) ? Infinity : body.till;
      if (want !== undefined) {
        const rt = Math.min(want as number, nowSec + maxRenew);
        if (rt > endtime) {
          renewTill = rt - (rt % 1000);
          flags |= TKT_FLG_RENEWABLE;
        }
      }
    }
    endtime -= endtime % 1000;

    const sessionKey = randomKey(backend, sessionEtype);
    const caddr = body.addresses && body.addresses.length ? body.addresses : undefined;
    const ticketKey = s.keys[0];
    const etp = encodeEncTicketPart({
      flags,
      key: { keytype: sessionEtype, keyvalue: sessionKey },
      crealm: realm,
      cname: cn,
      transited: { trType: 1, contents: new Uint8Array(0) },
      authtime: nowSec,
      starttime: nowSec,
      endtime,
      renewTill,
      caddr,
    });
    const ticket = {
      realm,
      sname: sn,
      encPart: { etype: ticketKey.etype, kvno: ticketKey.kvno, cipher: encrypt(backend, ticketKey.etype, ticketKey.key, KU_KDC_REP_TICKET, etp) },
    };
    wipe(etp);
    const encPart = encodeEncKdcRepPart({
      key: { keytype: sessionEtype, keyvalue: sessionKey },
      lastReq: [{ lrType: 0, lrValue: nowSec }],
      nonce: body.nonce,
      flags,
      authtime: nowSec,
      starttime: nowSec,
      endtime,
      renewTill,
      srealm: realm,
      sname: sn,
      caddr,
    });
    wipe(sessionKey);
    const info: EtypeInfo2Entry = { etype: replyKey.etype, salt: saltString(replyKey) };
    if (replyKey.s2kparams) info.s2kparams = replyKey.s2kparams;
    const rep = encodeAsRep({
      // ETYPE-INFO2 of the reply key: a password client needs the salt to open the reply.
      padata: [{ padataType: PA_ETYPE_INFO2, padataValue: encodeEtypeInfo2([info]) }],
      crealm: realm,
      cname: cn,
      ticket,
      encPart: { etype: replyKey.etype, kvno: replyKey.kvno, cipher: encrypt(backend, replyKey.etype, replyKey.key, KU_AS_REP_ENCPART, encPart) },
    });
    wipe(encPart);
    return { reply: rep, outcome: { ...names, etype: sessionEtype, replyEtype: replyKey.etype, preauth, endtime: endtime / 1000 } };
  }
}

/** The AS exchange: request bytes in, reply bytes out (empty array: nothing to send). */
export function handleAsReq(db: KdcDatabase, reqBytes: Uint8Array, now: number, opts: AsOptions = {}): Uint8Array {
  return processAsReq(db, reqBytes, now, opts).reply ?? new Uint8Array(0);
}
