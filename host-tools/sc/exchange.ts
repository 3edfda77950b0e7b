// The key-management exchange, as the SC sees it after its trigger went out:
//
//   AP Request in  ->  checks (ticket, authenticator, replay cache, HMAC, nonce)  ->  AP Reply out  ->  SA Recovered in  ->  established
//
// A nonce that this SC did not send to this very CTA (unknown, expired, another
// CTA's, consumed) is a false nonce: the request is disregarded silently -- no
// Error Reply, just a counter. Kerberos failures before that point get an Error
// Reply. Exchanges whose SA Recovered never comes are swept here too.
import { createHmac, timingSafeEqual } from 'node:crypto';

import { hmacRaw, sessionOps, subkeyHmacKeys, type SessionOps } from './session-crypto.ts';
import { decodeApRequestAny, decodeAuthenticatorAny, decodeEncTicketPartAny, principalString, type ApRequestParts, type AuthParts, type TicketParts } from './fast-decode.ts';
import { encodeApReplyFast, encodeEncApRepPartFast } from './fast-encode.ts';
import { hmacPads } from '../crypto/fast-krb.ts';
import { getProfile, randomKey, usageHmacKey } from '../../firmware/proto/crypto/index.ts';
import { wipe } from '../../firmware/proto/bytes.ts';
import { isCryptoError, isDecodeError } from '../../firmware/proto/errors.ts';
import {
  encodeApRep,
  encodeKrbError,
  principalNameEquals,
  KRB_AP_ERR_BAD_INTEGRITY,
  KRB_AP_ERR_BADKEYVER,
  KRB_AP_ERR_BADMATCH,
  KRB_AP_ERR_NOKEY,
  KRB_AP_ERR_NOT_US,
  KRB_AP_ERR_REPEAT,
  KRB_AP_ERR_SKEW,
  KRB_AP_ERR_TKT_EXPIRED,
  KRB_AP_ERR_TKT_NYV,
  TKT_FLG_INVALID,
  type PrincipalName,
} from '../../firmware/proto/krb5.ts';
import { decodeSaRecovered, encodeApReply, encodeErrorReply, saRecoveredSigned, DOI, HMAC_LEN, IPSEC_ENC, KMMID, USAGE, type Ciphersuite } from '../../firmware/proto/pktc.ts';
import { responseKey } from './replay.ts';
import { CTA_STATE } from './registry.ts';
import { B, type Pending, type Rinfo, type ScContext } from './context.ts';
import type { Triggers } from './triggers.ts';
import { ciphersuiteName, type EstablishedEvent, type FalseNonceEvent } from './types.ts';

const EMPTY = new Uint8Array(0);
/** Scratch: SA Recovered header (04 01 10) + the AP Reply's HMAC. */
const ackIn = new Uint8Array(3 + HMAC_LEN);
/** The SA Recovered header this profile sends: KMMID 4, DOI IPsec, version 1.0. */
const SA_RECOVERED_HEADER = new Uint8Array([KMMID.SA_RECOVERED, DOI.IPSEC, 0x10]);
ackIn.set(SA_RECOVERED_HEADER, 0);

export type Exchange = {
  onApRequest(buf: Uint8Array, r: Rinfo): void;
  onSaRecovered(buf: Uint8Array, r: Rinfo): void;
  /** Drops expired exchanges (force: also the oldest live ones, to make room). */
  sweepPending(now: number, force: boolean): void;
};

/** An AP Request whose ticket and authenticator decrypted and decoded: what the checks after that and the AP Reply need. */
type Authenticated = {
  /** The datagram, where it came from, when, and its digest (the response cache's key). */
  buf: Uint8Array;
  r: Rinfo;
  now: number;
  digest: number;
  msg: ApRequestParts;
  /** The decrypted ticket, its client, its session key. */
  etp: TicketParts;
  clientName: string;
  sk: TicketParts['key'];
  auth: AuthParts;
  /** The session key's derived keys and cipher contexts. */
  ops: SessionOps;
};

export function createExchange(ctx: ScContext, triggers: Triggers): Exchange {
  // (long as a whole: a factory; its inner functions are the units, and they close over the context's tables because this is the hot path)
  const { clock, timers, policy, supported, ackRequired, reestablish, log, logging, limits, maxCtas, scName, principal, serviceKeys, ticketKeys, newestKvno } = ctx;
  const { registry, keys, nonces, replay, responses, pending, waking, ciRate, ackMisses, saCache, saEncNull, sessionCache, sessionCacheMax } = ctx;
  const { metrics, TX, cApAccepted, cApAcceptedCi, cEstablished, cEstablishedCi, em, send, drop, emitError, newScSpi } = ctx;
  const { endTrigger, retriggerAfterNoAck } = triggers;

  function selectCiphersuite(offered: Ciphersuite[]): Ciphersuite | null {
    for (const o of offered) for (const s of supported) if (o.auth === s.auth && o.enc === s.enc) return o;
    return null;
  }
  function krbError(code: number, r: Rinfo, doi: number, about: { ctime?: number; cusec?: number; crealm?: string; cname?: PrincipalName }, text: string, principal?: string): void {
    const now = clock.now();
    const body = encodeKrbError({
      ctime: about.ctime,
      cusec: about.cusec,
      stime: now - (now % 1000),
      susec: (now % 1000) * 1000,
      errorCode: code,
      crealm: about.crealm,
      cname: about.cname,
      realm: scName.realm,
      sname: scName.name,
      eText: text,
    });
    send(encodeErrorReply({ kmmid: KMMID.ERROR_REPLY, doi, krbError: body }), r.port, r.address, TX.error_reply);
    metrics.inc('cta_sc_error_replies_total', String(code));
    metrics.inc('cta_sc_ap_requests_total', 'error');
    log('krb_error', { code, text, address: r.address, port: r.port, principal });
    emitError('krb_error', text, { code, principal, address: r.address, port: r.port });
  }

  // ---- AP Request ----
  function onApRequest(buf: Uint8Array, r: Rinfo): void {
    const now = clock.now();
    // A byte-identical retransmission of an answered AP Request gets the same AP Reply.
    // Looked up by its last 20 bytes (the HMAC of a well-formed request), then the
    // whole datagram compared with the one answered.
    const digest = responseKey(buf);
    const cached = responses.get(digest, now, buf);
    if (cached) {
      // Only to the address and port that sent the request answered: a copy replayed
      // from elsewhere gets nothing (no reflection of the 5 s cached reply).
      if (cached.port !== r.port || cached.address !== r.address) return drop('replay_other_address', r);
      metrics.inc('cta_sc_ap_requests_total', 'retransmit');
      send(cached.reply, r.port, r.address, TX.ap_reply);
      return;
    }
    // Host fast decoders (fast-decode.ts) with the generic ones behind them.
    let msg: ApRequestParts;
    try {
      msg = decodeApRequestAny(buf);
    } catch (e) {
      if (!isDecodeError(e)) throw e;
      return drop('malformed', r);
    }
    if (msg.doi !== DOI.IPSEC) return drop('unsupported_doi', r);
    const doi = msg.doi;
    // The ticket must be for us.
    if (msg.realm !== scName.realm || !principalNameEquals(msg.sname, scName.name)) {
      return krbError(KRB_AP_ERR_NOT_US, r, doi, {}, 'ticket is not for ' + principal);
    }
    // Service key by the ticket's enctype and kvno.
    const byKvno = serviceKeys.get(msg.tktEtype);
    if (!byKvno) return krbError(KRB_AP_ERR_NOKEY, r, doi, {}, `no key for enctype ${msg.tktEtype}`);
    const kvno = msg.tktKvno ?? (newestKvno.get(msg.tktEtype) as number);
    const tkey = byKvno.has(kvno) ? ticketKeys.get(msg.tktEtype + ':' + kvno) : undefined;
    if (!tkey) return krbError(KRB_AP_ERR_BADKEYVER, r, doi, {}, `no key with kvno ${kvno}`);
    let etp: TicketParts;
    let tpt: Uint8Array | null = null;
    try {
      tpt = tkey.decrypt(msg.tktCipher);
      etp = decodeEncTicketPartAny(tpt);
    } catch (e) {
      if (!isCryptoError(e) && !isDecodeError(e)) throw e;
      return krbError(KRB_AP_ERR_BAD_INTEGRITY, r, doi, {}, 'ticket integrity check failed');
    } finally {
      if (tpt) tpt.fill(0); // the decoded ticket holds a copy of the session key
    }
    const clientName = principalString(etp.cname, etp.crealm);
    const skewMs = timers.skewSec * 1000;
    const start = etp.starttime ?? etp.authtime;
    if (start - skewMs > now || etp.flags & TKT_FLG_INVALID) {
      return krbError(KRB_AP_ERR_TKT_NYV, r, doi, { crealm: etp.crealm, cname: etp.cname }, 'ticket not yet valid', clientName);
    }
    if (etp.endtime + skewMs < now) {
      return krbError(KRB_AP_ERR_TKT_EXPIRED, r, doi, { crealm: etp.crealm, cname: etp.cname }, 'ticket expired', clientName);
    }
    const sk = etp.key;
    if (!getProfile(sk.keytype)) return krbError(KRB_AP_ERR_NOKEY, r, doi, {}, `unsupported session key type ${sk.keytype}`, clientName);
    // The session key's derived keys and cipher contexts, kept per registered CTA
    // while it reuses its ticket (bounded FIFO; checked against the key itself).
    const slot0 = registry.slotOf(clientName);
    let ops = slot0 >= 0 ? sessionCache.get(slot0) : undefined;
    const hit = !!ops && (ops as SessionOps).isFor(sk.keytype, sk.keyvalue);
    let auth: AuthParts;
    let apt: Uint8Array | null = null;
    try {
      if (msg.authEtype !== sk.keytype) throw new Error('etype');
      if (!hit) ops = sessionOps(B, sk.keytype, sk.keyvalue);
      apt = (ops as SessionOps).decryptAuthenticator(msg.authCipher);
      auth = decodeAuthenticatorAny(apt);
    } catch (e) {
      if (ops && !hit) ops.wipe();
      if (!isCryptoError(e) && !isDecodeError(e) && (e as Error).message !== 'etype') throw e;
      wipe(sk.keyvalue);
      return krbError(KRB_AP_ERR_BAD_INTEGRITY, r, doi, { crealm: etp.crealm, cname: etp.cname }, 'authenticator integrity check failed', clientName);
    } finally {
      if (apt) apt.fill(0);
    }
    const so = ops as SessionOps;
    let keep = hit;
    if (!hit && slot0 >= 0 && sessionCacheMax > 0) {
      const old = sessionCache.get(slot0);
      if (old) {
        sessionCache.delete(slot0);
        old.wipe();
      } else if (sessionCache.size >= sessionCacheMax) {
        const first = sessionCache.entries().next();
        if (!first.done) {
          sessionCache.delete(first.value[0]);
          first.value[1].wipe();
        }
      }
      sessionCache.set(slot0, so);
      keep = true;
    }
    try {
      onAuthenticated({ buf, r, now, digest, msg, etp, clientName, sk, auth, ops: so }, slot0);
    } finally {
      if (!keep) so.wipe();
      wipe(sk.keyvalue);
    }
  }

  function onAuthenticated(v: Authenticated, slot0: number): void {
    const { r, now, msg, etp, clientName, auth, ops } = v;
    const authCipher = msg.authCipher;
    const doi = msg.doi;
    const skewMs = timers.skewSec * 1000;
    if (auth.crealm !== etp.crealm || (auth.cname !== etp.cname && !principalNameEquals(auth.cname, etp.cname))) {
      return krbError(KRB_AP_ERR_BADMATCH, r, doi, { ctime: auth.ctime, cusec: auth.cusec, crealm: etp.crealm, cname: etp.cname }, 'authenticator and ticket name different clients', clientName);
    }
    if (Math.abs(auth.ctime - now) > skewMs) {
      return krbError(KRB_AP_ERR_SKEW, r, doi, { ctime: auth.ctime, cusec: auth.cusec, crealm: etp.crealm, cname: etp.cname }, 'clock skew too great', clientName);
    }
    // Kerberos replay cache: client + ctime + cusec + authenticator hash.
    // A replay is answered with KRB_AP_ERR_REPEAT only once the HMAC and the nonce
    // check out: a replayed AP Request whose nonce was consumed (or never ours) is a
    // false nonce like any other -- disregarded silently, never an Error Reply.
    const isReplay = replay.has(clientName, auth.ctime, auth.cusec, authCipher, now);
    // The key-management HMAC (usage 1101 under the session key), compared in constant time.
    if (msg.hmac.length !== HMAC_LEN || !ops.apRequestMacOk(msg.signed, msg.hmac)) {
      return drop('bad_hmac', r, clientName);
    }
    // The nonce: did this SC initiate this session?
    let slot = slot0; // registry.slotOf(clientName), looked up by onApRequest (nothing registered since)
    let startedAt = now;
    const clientInitiated = msg.serverNonce === 0;
    if (!clientInitiated) {
      const c = slot < 0 ? 'unregistered' : isReplay ? (nonces.peek(msg.serverNonce, slot, now) ?? 'replay') : nonces.consume(msg.serverNonce, slot, now);
      if (c === 'replay') return krbError(KRB_AP_ERR_REPEAT, r, doi, { ctime: auth.ctime, cusec: auth.cusec, crealm: etp.crealm, cname: etp.cname }, 'request is a replay', clientName);
      if (typeof c === 'string') {
        // Claims 6, 11, 15: not initiated by us -> disregard silently.
        metrics.inc('cta_sc_drops_total', 'false_nonce');
        metrics.inc('cta_sc_ap_requests_total', 'false_nonce');
        if (logging) log('false_nonce', { principal: clientName, reason: c, address: r.address, port: r.port });
        if (em.listenerCount('false_nonce')) em.emit('false_nonce', { principal: clientName, nonce: msg.serverNonce, reason: c, address: r.address, port: r.port } satisfies FalseNonceEvent);
        return;
      }
      startedAt = c.startedAt;
    } else {
      if (!policy.allowClientInitiated) return drop('client_initiated_denied', r, clientName);
      if (isReplay) return krbError(KRB_AP_ERR_REPEAT, r, doi, { ctime: auth.ctime, cusec: auth.cusec, crealm: etp.crealm, cname: etp.cname }, 'request is a replay', clientName);
      if (slot >= 0) {
        let w = ciRate.get(slot);
        if (!w || now - w.windowStart >= 60000) ciRate.set(slot, (w = { windowStart: now, count: 0 }));
        if (w.count >= policy.clientInitiatedPerMinute) return drop('client_initiated_rate', r, clientName);
        w.count++;
      } else if (!policy.registerClientInitiated) {
        return drop('client_initiated_unknown_cta', r, clientName);
      }
    }
    const cs = selectCiphersuite(msg.ciphersuites);
    if (!cs) return drop('no_common_ciphersuite', r, clientName);
    if (!replay.add(clientName, auth.ctime, auth.cusec, authCipher, now + 2 * skewMs, now)) {
      // Full of live entries: a server-initiated request is still protected by its
      // single-use nonce (covered by the HMAC); a client-initiated one is not.
      metrics.inc('cta_sc_drops_total', 'replay_cache_full');
      if (clientInitiated) return;
    }
    if (slot < 0) {
      if (registry.count >= maxCtas) return drop('registry_full', r, clientName);
      // The CTA's signaling port is not in its AP Request: the protocol default (2427),
      // as for a CTA registered without one; its key-management port is another socket.
      slot = registry.register(clientName, r.address, r.port, 2427, now);
      ciRate.set(slot, { windowStart: now, count: 1 });
      log('registered', { principal: clientName, address: r.address, port: r.port, by: 'client_initiated' });
    } else if (registry.port(slot) !== r.port || registry.address(slot) !== r.address) {
      registry.updateAddress(slot, r.address, r.port, now);
    }
    endTrigger(slot);
    sendApReply(v, slot, startedAt, clientInitiated, cs);
  }

  /** The request checked out: a fresh subkey and SC SPI in an AP Reply; then wait for SA Recovered (or, without AckRequired, established now). */
  function sendApReply(v: Authenticated, slot: number, startedAt: number, clientInitiated: boolean, cs: Ciphersuite): void {
    const { buf, r, now, digest, msg, etp, clientName, sk, auth, ops } = v;
    const doi = msg.doi;
    const subkey = randomKey(B, sk.keytype);
    const repPart = encodeEncApRepPartFast(auth.ctime, auth.cusec, sk.keytype, subkey);
    const encPart = ops.encryptApRepPart(repPart);
    wipe(repPart);
    const [kiReply, kiAck] = subkeyHmacKeys(B, sk.keytype, subkey);
    const ctaSpi = msg.spi;
    const scSpi = newScSpi(slot, registry.scSpi(slot));
    const replyPads = hmacPads(kiReply);
    const reply =
      encodeApReplyFast(replyPads, sk.keytype, encPart, scSpi, cs, timers.saLifetimeSec, timers.graceSec, reestablish, ackRequired) ??
      encodeApReply(B, kiReply, {
        kmmid: KMMID.AP_REPLY,
        doi,
        apRep: encodeApRep({ encPart: { etype: sk.keytype, cipher: encPart } }),
        appData: { spi: scSpi },
        ciphersuite: cs,
        saLifetime: timers.saLifetimeSec,
        gracePeriod: timers.graceSec,
        reestablish,
        ackRequired,
      });
    replyPads.fill(0);
    keys.setSession(slot, sk.keytype, sk.keyvalue, etp.endtime);
    responses.set(digest, { request: new Uint8Array(buf), reply, expires: now + Math.max(timers.nonceLifetimeMs, timers.saRecoveredTimeoutMs), address: r.address, port: r.port });
    (clientInitiated ? cApAcceptedCi : cApAccepted).n++;
    const p: Pending = {
      slot,
      principal: clientName,
      etype: sk.keytype,
      subkey,
      apReply: reply,
      ctaSpi,
      scSpi,
      cs,
      startedAt,
      clientInitiated,
      expires: now + timers.saRecoveredTimeoutMs,
      ack: EMPTY,
      xkey: null,
    };
    wipe(kiReply);
    if (!ackRequired) {
      wipe(kiAck);
      send(reply, r.port, r.address, TX.ap_reply);
      establish(p, now);
      wipe(subkey);
      return;
    }
    registry.setState(slot, CTA_STATE.REPLIED, now);
    if (pending.size >= (limits.pending ?? 65536)) sweepPending(now, true);
    // SA Recovered's signed bytes (header, AP Reply HMAC) in a scratch array: nothing secret, nothing kept.
    ackIn.set(reply.subarray(reply.length - HMAC_LEN), 3);
    p.ack = hmacRaw(B, kiAck, ackIn);
    wipe(kiAck);
    pending.add(p);
    send(reply, r.port, r.address, TX.ap_reply);
  }

  function expectedSaRecovered(p: Pending, header: Uint8Array): string {
    return createHmac('sha1', usageHmacKey(B, p.etype, p.subkey, USAGE.SA_RECOVERED))
      .update(saRecoveredSigned(header, p.apReply.subarray(p.apReply.length - HMAC_LEN)))
      .digest()
      .toString('latin1');
  }

  function establish(p: Pending, now: number): void {
    ackMisses.delete(p.slot);
    const expiresAt = now + timers.saLifetimeSec * 1000;
    keys.setSa(p.slot, p.subkey);
    saCache.delete(p.slot);
    registry.setSa(p.slot, { ctaSpi: p.ctaSpi, scSpi: p.scSpi, ciphersuite: ciphersuiteName(p.cs), establishedAt: now, expiresAt }, now);
    const latencyMs = p.clientInitiated ? null : now - p.startedAt;
    if (latencyMs !== null) metrics.observeLatency(latencyMs / 1000);
    (p.clientInitiated ? cEstablishedCi : cEstablished).n++;
    if (p.cs.enc === IPSEC_ENC.NULL) saEncNull.set(p.slot, true);
    else if (saEncNull.size) saEncNull.delete(p.slot);
    if (logging) log('established', { principal: p.principal, ctaSpi: p.ctaSpi, scSpi: p.scSpi, ciphersuite: ciphersuiteName(p.cs), latencyMs });
    if (em.listenerCount('established')) em.emit('established', {
      principal: p.principal,
      ctaSpi: p.ctaSpi,
      scSpi: p.scSpi,
      ciphersuite: p.cs,
      establishedAt: now,
      expiresAt,
      clientInitiated: p.clientInitiated,
      latencyMs,
    } satisfies EstablishedEvent);
  }

  // ---- SA Recovered ----
  function onSaRecovered(buf: Uint8Array, r: Rinfo): void {
    const now = clock.now();
    let p: Pending | undefined;
    if (buf.length === 3 + HMAC_LEN && buf[0] === KMMID.SA_RECOVERED && buf[1] === SA_RECOVERED_HEADER[1] && buf[2] === SA_RECOVERED_HEADER[2]) {
      // The header this profile sends (what decodeSaRecovered accepts, checked in place).
      if (pending.size === 0) return drop('no_pending_exchange', r);
      p = pending.get(buf, 3);
    } else {
    let m;
    try {
      m = decodeSaRecovered(buf);
    } catch (e) {
      if (!isDecodeError(e)) throw e;
      return drop('malformed', r);
    }
    if (pending.size === 0) return drop('no_pending_exchange', r);
    const h = m.signed;
    if (h[1] === SA_RECOVERED_HEADER[1] && h[2] === SA_RECOVERED_HEADER[2]) {
      p = pending.get(m.hmac, 0);
    } else {
      // Another minor version / DOI in the header: compute per pending exchange (rare).
      for (const q of pending.values()) {
        if (q.expires > now && timingSafeEqual(Buffer.from(expectedSaRecovered(q, h), 'latin1'), m.hmac)) {
          p = q;
          break;
        }
      }
    }
    }
    if (!p || p.expires <= now) return drop(pending.size ? 'bad_hmac' : 'no_pending_exchange', r);
    pending.delete(p);
    if (registry.slotOf(p.principal) !== p.slot) {
      wipe(p.subkey);
      return drop('unregistered', r, p.principal);
    }
    establish(p, now);
    wipe(p.subkey);
  }

  /** Drops expired exchanges (force: also the oldest live ones, to make room). */
  function sweepPending(now: number, force: boolean): void {
    let room = force ? Math.max(1, pending.size >> 4) : 0;
    for (const p of pending.values()) {
      if (p.expires > now) {
        if (room <= 0) break;
        room--;
      }
      pending.delete(p);
      metrics.inc('cta_sc_exchanges_total', 'no_sa_recovered');
      const current = registry.slotOf(p.principal) === p.slot && registry.state(p.slot) === CTA_STATE.REPLIED;
      if (current) {
        const back = keys.hasSa(p.slot) && registry.saExpiresSec(p.slot) * 1000 > now ? CTA_STATE.ESTABLISHED : CTA_STATE.REGISTERED;
        registry.setState(p.slot, back, now, 'no SA Recovered');
      }
      log('no_sa_recovered', { principal: p.principal });
      // The CTA may hold the new SA (its SA Recovered was lost) or none (it gave up on our
      // AP Reply): the two sides disagree, so start over with a fresh trigger -- a bounded
      // number of times in a row, then the CTA is unreachable like after unanswered Wake Ups.
      if (current && !force && !ctx.closed && !p.clientInitiated && !waking.has(p.slot)) retriggerAfterNoAck(p.slot, p.principal, now);
      wipe(p.subkey);
    }
  }

  return { onApRequest, onSaRecovered, sweepPending };
}
