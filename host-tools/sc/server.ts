// The Signaling Controller (SC): the server side of server-initiated Kerberized
// key management (claims 1, 2, 5-7, 10-12, 14, 15, 17-21; PROTOCOL.md).
//
//   Wake Up (fresh nonce)  ->  AP Request (returned nonce)  ->  AP Reply  ->  SA Recovered
//
// The SC initiates: it sends a trigger with a fresh CSPRNG nonce != 0 kept in a
// bounded nonce table; the AP Request that comes back must echo an unexpired
// nonce sent to that very CTA (the client principal of the ticket), which is then
// consumed. Anything else is a false nonce: the SC did not initiate that session
// and disregards the request silently -- no Error Reply, just a counter.
//
// Hot path: all per-CTA state is in compact in-memory tables (registry.ts,
// keys.ts); SQLite sees one batched transaction per event-loop turn and never key
// material; derived keys are cached per base key (crypto layer cache + a small
// HMAC-key cache here); crypto runs on node:crypto.
import { EventEmitter } from 'node:events';
import dgram from 'node:dgram';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

import { scCryptoBackend, clearCipherCache } from './fast-crypto.ts';
import { hmacRaw, sessionOps, subkeyHmacKeys, ticketKey, type SessionOps, type TicketKey } from './session-crypto.ts';
import { decodeApRequestAny, decodeAuthenticatorAny, decodeEncTicketPartAny, principalString, type ApRequestParts, type AuthParts, type TicketParts } from './fast-decode.ts';
import { encodeApReplyFast, encodeEncApRepPartFast, WakeUpTemplate } from './fast-encode.ts';
import { hmacPads } from '../crypto/fast-krb.ts';
import { isIP } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';
import { decrypt, encrypt, getProfile, keyCacheSize, randomKey, setKeyCacheSize, usageHmacKey } from '../../firmware/proto/crypto/index.ts';
import { wipe } from '../../firmware/proto/bytes.ts';
import { isCryptoError, isDecodeError } from '../../firmware/proto/errors.ts';
import { findKeys, parseKeytab, type KeytabEntry } from '../../firmware/proto/keytab.ts';
import {
  decodeApReq,
  decodeAuthenticator,
  decodeEncTicketPart,
  encodeApRep,
  encodeEncApRepPart,
  encodeKrbError,
  parsePrincipal,
  principalNameEquals,
  principalToString,
  KRB_AP_ERR_BAD_INTEGRITY,
  KRB_AP_ERR_BADKEYVER,
  KRB_AP_ERR_BADMATCH,
  KRB_AP_ERR_NOKEY,
  KRB_AP_ERR_NOT_US,
  KRB_AP_ERR_REPEAT,
  KRB_AP_ERR_SKEW,
  KRB_AP_ERR_TKT_EXPIRED,
  KRB_AP_ERR_TKT_NYV,
  KU_AP_REP_ENCPART,
  KU_AP_REQ_AUTH,
  KU_KDC_REP_TICKET,
  TKT_FLG_INVALID,
  type EncTicketPart,
  type PrincipalName,
} from '../../firmware/proto/krb5.ts';
import {
  decodeApRequest,
  decodeSaRecovered,
  encodeApReply,
  encodeErrorReply,
  encodeRekey,
  encodeWakeUp,
  saRecoveredSigned,
  DOI,
  HMAC_LEN,
  IPSEC_AUTH,
  IPSEC_ENC,
  KMMID,
  USAGE,
  type Ciphersuite,
  type IpsecAppData,
} from '../../firmware/proto/pktc.ts';
import { deriveSaKeys, type SaKeys } from '../../firmware/proto/sa.ts';
import { espOpen, espPeekSpi, espSeal, ESP_NEXT_HEADER, parseNcsCommand, parseNcsResponse } from '../../firmware/proto/esp.ts';

import { realClock, type Clock } from './clock.ts';
import { Metrics, type Counter } from './metrics.ts';
import { NonceTable } from './nonces.ts';
import { ReplayCache, ResponseCache, responseKey } from './replay.ts';
import { PendingTable } from './pending.ts';
import { Registry, CTA_STATE, STATE_NAMES, type CtaRecord } from './registry.ts';
import { KeyStore } from './keys.ts';
import { randomBytes } from './rand.ts';
import { startControl, ControlRefused, MAX_PRINCIPAL, type ControlServer } from './control.ts';
import {
  DEFAULT_TIMERS,
  ScStartError,
  ciphersuiteName,
  type ScTimers,
  type ScPolicy,
  type ScLog,
  type ScOptions,
  type EstablishedEvent,
  type UnreachableEvent,
  type FalseNonceEvent,
  type DropEvent,
  type WakeEvent,
  type ScError,
  type ScServer,
} from './types.ts';
export {
  DEFAULT_TIMERS,
  ScStartError,
  ciphersuiteName,
  type ScTimers,
  type ScPolicy,
  type ScLog,
  type ScOptions,
  type EstablishedEvent,
  type UnreachableEvent,
  type FalseNonceEvent,
  type DropEvent,
  type WakeEvent,
  type ScError,
  type ScServer,
};

// node:crypto with cached AES contexts, one-shot hashes and pooled randomness.
const B = scCryptoBackend;
const EMPTY = new Uint8Array(0);
/** Scratch: SA Recovered header (04 01 10) + the AP Reply's HMAC. */
const ackIn = new Uint8Array(3 + HMAC_LEN);
/** The SA Recovered header this profile sends: KMMID 4, DOI IPsec, version 1.0. */
const SA_RECOVERED_HEADER = new Uint8Array([KMMID.SA_RECOVERED, DOI.IPSEC, 0x10]);
ackIn.set(SA_RECOVERED_HEADER, 0);

const DEFAULT_CIPHERSUITES: Ciphersuite[] = [
  { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC },
  { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.NULL },
];


type Rinfo = { address: string; port: number };

/**
 * dgram's address lookup: an IP literal (every CTA address the SC sends to) is
 * answered synchronously, so a send is not deferred through dns.lookup and
 * process.nextTick; names still go to dns.lookup.
 */
function ipLookup(address: string, options: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  const fam = isIP(address);
  if (fam !== 0) return cb(null, address, fam);
  (dnsLookup as unknown as (a: string, o: unknown, c: typeof cb) => void)(address, options, cb);
}

/** An AP Reply sent, waiting for its SA Recovered. */
type Pending = {
  slot: number;
  principal: string;
  etype: number;
  subkey: Uint8Array;
  /** The AP Reply sent (its last HMAC_LEN bytes are its HMAC); also held by the response cache, never modified. */
  apReply: Uint8Array;
  ctaSpi: number;
  scSpi: number;
  cs: Ciphersuite;
  startedAt: number;
  clientInitiated: boolean;
  expires: number;
  /** The SA Recovered HMAC expected (PendingTable's key). */
  ack: Uint8Array;
  xkey: string | null;
};

/** A CTA being woken: attempt count, when the current attempt times out, and the nonces sent. */
type Waking = { slot: number; attempt: number; startedAt: number; due: number; nonces: number[]; rekey: boolean };

type SigWaiter = { resolve: (s: string) => void; reject: (e: Error) => void; timer: unknown; slot: number };

function u8(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

function loadKeytab(k: KeytabEntry[] | string): KeytabEntry[] {
  if (Array.isArray(k)) return k;
  let bytes: Buffer;
  try {
    bytes = readFileSync(k);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ScStartError('keytab', code === 'ENOENT' ? `keytab '${k}' does not exist` : `cannot read keytab '${k}': ${(e as Error).message}`);
  }
  try {
    return parseKeytab(u8(bytes));
  } catch (e) {
    throw new ScStartError('keytab', `keytab '${k}' is not a valid keytab: ${(e as Error).message}`);
  }
}

function bindUdp(sock: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: NodeJS.ErrnoException) => {
      sock.close();
      if (e.code === 'EADDRINUSE') reject(new ScStartError('port_in_use', `UDP ${host}:${port} is already in use`));
      else if (e.code === 'EACCES') reject(new ScStartError('port_denied', `not allowed to bind UDP ${host}:${port}`));
      else if (e.code === 'EADDRNOTAVAIL') reject(new ScStartError('bad_address', `cannot bind UDP ${host}:${port}: address not available here`));
      else reject(e);
    };
    sock.once('error', onErr);
    sock.bind(port, host, () => {
      sock.off('error', onErr);
      resolve();
    });
  });
}

export async function startSc(opts: ScOptions): Promise<ScServer> {
  const timers: ScTimers = { ...DEFAULT_TIMERS, ...(opts.timers || {}) };
  const policy: ScPolicy = { allowClientInitiated: false, clientInitiatedPerMinute: 6, registerClientInitiated: true, ...(opts.policy || {}) };
  const ackRequired = opts.ackRequired !== false;
  const reestablish = opts.reestablish === true;
  const supported = opts.ciphersuites || DEFAULT_CIPHERSUITES;
  const clock = opts.clock || realClock;
  const log: ScLog = opts.log || (() => {});
  /** A log sink was given: only then are the hot path's log records built. */
  const logging = !!opts.log;
  const limits = opts.limits || {};
  /** Most CTAs registered at once (control API and auto-registration). */
  const maxCtas = limits.ctas ?? 1000000;

  // ---- identity and keys ----
  let scName: { name: PrincipalName; realm: string };
  try {
    scName = parsePrincipal(opts.principal);
  } catch (e) {
    throw new ScStartError('principal', `bad SC principal '${opts.principal}': ${(e as Error).message}`);
  }
  const principal = principalToString(scName.name, scName.realm);
  const wakeUpTemplate = new WakeUpTemplate(principal);
  const entries = loadKeytab(opts.keytab);
  const myKeys = findKeys(entries, principal).filter((e) => getProfile(e.etype) !== null);
  if (myKeys.length === 0) {
    const any = findKeys(entries, principal).length > 0;
    throw new ScStartError(
      'principal_not_in_keytab',
      any ? `keytab has no supported (AES) key for ${principal}` : `principal ${principal} is not in the keytab`,
    );
  }
  // etype -> kvno -> key; and the newest kvno per etype (for tickets without a kvno).
  const serviceKeys = new Map<number, Map<number, Uint8Array>>();
  const ticketKeys = new Map<string, TicketKey>(); // etype:kvno -> prepared Ke/Ki of usage 2
  const newestKvno = new Map<number, number>();
  for (const e of myKeys) {
    let m = serviceKeys.get(e.etype);
    if (!m) serviceKeys.set(e.etype, (m = new Map()));
    if (!m.has(e.kvno)) {
      m.set(e.kvno, e.key.slice());
      ticketKeys.set(e.etype + ':' + e.kvno, ticketKey(B, e.etype, e.key));
    }
    if (!newestKvno.has(e.etype) || e.kvno > (newestKvno.get(e.etype) as number)) newestKvno.set(e.etype, e.kvno);
  }
  // The crypto layer caches derived keys per (key, usage); the SC has several live keys.
  setKeyCacheSize(Math.max(keyCacheSize(), limits.hmacKeyCache ?? 4096, 64));

  // ---- state ----
  const registry = new Registry(opts.statePath || ':memory:');
  const keys = new KeyStore();
  const nonces = new NonceTable(limits.nonces ?? 262144);
  const replay = new ReplayCache(limits.replayCache ?? 262144);
  const responses = new ResponseCache(limits.responseCache ?? 8192);
  const metrics = new Metrics();
  // Counter cells of the per-exchange path (c.n++, no family/label lookups).
  const TX = {
    wake_up: metrics.counter('cta_sc_tx_total', 'wake_up'),
    rekey: metrics.counter('cta_sc_tx_total', 'rekey'),
    ap_reply: metrics.counter('cta_sc_tx_total', 'ap_reply'),
    error_reply: metrics.counter('cta_sc_tx_total', 'error_reply'),
  };
  const cRxApRequest = metrics.counter('cta_sc_rx_total', 'ap_request');
  const cRxSaRecovered = metrics.counter('cta_sc_rx_total', 'sa_recovered');
  const cApAccepted = metrics.counter('cta_sc_ap_requests_total', 'accepted');
  const cApAcceptedCi = metrics.counter('cta_sc_ap_requests_total', 'accepted_client_initiated');
  const cEstablished = metrics.counter('cta_sc_exchanges_total', 'established');
  const cEstablishedCi = metrics.counter('cta_sc_exchanges_total', 'established_client_initiated');
  // AP Replies awaiting SA Recovered, keyed by the SA Recovered HMAC expected for
  // them (header 04 01 10), so an SA Recovered finds its exchange in O(1) however
  // many CTAs share one address (NAT, a serial bridge). One fixed lifetime:
  // insertion order is expiry order.
  const pending = new PendingTable<Pending>();
  const waking = new Map<number, Waking>();
  const ciRate = new Map<number, { windowStart: number; count: number }>();
  const hmacKeys = new Map<string, Uint8Array>(); // derived HMAC keys per (etype, usage, session key)
  const hmacKeyMax = limits.hmacKeyCache ?? 4096;
  const saCache = new Map<number, SaKeys>(); // derived SA keys of CTAs that signal
  const sessionCache = new Map<number, SessionOps>(); // slot -> session key's derived keys
  const sessionCacheMax = limits.sessionCache ?? 8192;
  const sigWaiters = new Map<string, SigWaiter>();
  let sigTxid = 1000 + (randomBytes(2)[0] << 4);
  const wakeQueue: number[] = [];
  let wakeQueueHead = 0;
  let wakeQueueTimer: unknown = null;
  let closed = false;
  const startedAtMs = clock.now();

  const em = new EventEmitter();

  function emitError(kind: 'krb_error' | 'internal', message: string, extra: { code?: number; principal?: string; address?: string; port?: number }): void {
    if (em.listenerCount('error') === 0) return;
    const e = new Error(message) as ScError;
    e.kind = kind;
    Object.assign(e, extra);
    em.emit('error', e);
  }
  function drop(reason: string, r: Rinfo, principal?: string): void {
    metrics.inc('cta_sc_drops_total', reason);
    if (em.listenerCount('drop')) em.emit('drop', { reason, address: r.address, port: r.port, principal } satisfies DropEvent);
  }

  // ---- sockets ----
  const listenHost = opts.listen?.host ?? '0.0.0.0';
  const listenPort = opts.listen?.port ?? 1293;
  const sock = dgram.createSocket({ type: listenHost.includes(':') ? 'udp6' : 'udp4', lookup: ipLookup });
  await bindUdp(sock, listenHost, listenPort);
  const sigSock = dgram.createSocket({ type: listenHost.includes(':') ? 'udp6' : 'udp4', lookup: ipLookup });
  try {
    await bindUdp(sigSock, listenHost, 0);
  } catch (e) {
    sock.close();
    throw e;
  }
  const bound = sock.address() as AddressInfo;
  const sigBound = sigSock.address() as AddressInfo;

  // Non-UDP paths to CTAs (attachLink): address -> sender(channel, bytes).
  const links = new Map<string, (channel: number, data: Uint8Array) => void>();

  function send(buf: Uint8Array, port: number, address: string, kind: Counter): void {
    kind.n++;
    const link = links.get(address);
    if (link) {
      link(1, buf);
      return;
    }
    sock.send(buf, port, address, onSent);
  }

  // One shared callback (no closure per datagram); send errors are rare and are
  // reported without the destination.
  function onSent(err: Error | null): void {
    if (err) {
      metrics.inc('cta_sc_drops_total', 'send_failed');
      emitError('internal', `send failed: ${err.message}`, {});
    }
  }

  // ---- helpers ----
  function hmacKey(etype: number, base: Uint8Array, usage: number): Uint8Array {
    const id = etype + ':' + usage + ':' + Buffer.from(base.buffer, base.byteOffset, base.length).toString('latin1');
    let k = hmacKeys.get(id);
    if (!k) {
      k = usageHmacKey(B, etype, base, usage);
      if (hmacKeys.size >= hmacKeyMax) {
        const first = hmacKeys.keys().next();
        if (!first.done) hmacKeys.delete(first.value);
      }
      hmacKeys.set(id, k);
    }
    return k;
  }
  function macOk(h: Uint8Array, mac: Uint8Array): boolean {
    if (mac.length !== HMAC_LEN || h.length !== HMAC_LEN) return false;
    let d = 0;
    for (let i = 0; i < HMAC_LEN; i++) d |= h[i] ^ mac[i];
    return d === 0;
  }
  function newScSpi(slot: number, avoid: number): number {
    // SC inbound SPI = gen (11 bits, 512..2047) << 21 | slot: finds the CTA without a map.
    for (;;) {
      const r = randomBytes(2);
      const gen = 512 + (((r[0] << 8) | r[1]) % 1536);
      const spi = ((gen << 21) | slot) >>> 0;
      if (spi !== avoid) return spi;
    }
  }
  function slotOfOrThrow(p: string): number {
    const s = registry.slotOf(p);
    if (s < 0) throw new Error(`no CTA '${p}' is registered`);
    return s;
  }
  function selectCiphersuite(offered: Ciphersuite[]): Ciphersuite | null {
    for (const o of offered) for (const s of supported) if (o.auth === s.auth && o.enc === s.enc) return o;
    return null;
  }
  function krbError(code: number, r: Rinfo, doi: number, ctx: { ctime?: number; cusec?: number; crealm?: string; cname?: PrincipalName }, text: string, principal?: string): void {
    const now = clock.now();
    const body = encodeKrbError({
      ctime: ctx.ctime,
      cusec: ctx.cusec,
      stime: now - (now % 1000),
      susec: (now % 1000) * 1000,
      errorCode: code,
      crealm: ctx.crealm,
      cname: ctx.cname,
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

  // ---- triggers: Wake Up / Rekey ----
  // Trigger retries: one clock timer for all of them, armed for the earliest
  // deadline. Every attempt waits the same wakeRetryMs, so deadlines join the
  // queue in order; an exchange that completes (or a newer trigger for the slot)
  // leaves its entry behind, skipped when it comes up. No timer is made or
  // cleared per exchange.
  const trigQueue: Waking[] = [];
  let trigHead = 0;
  let trigTimer: unknown = null;
  let trigTimerDue = 0;
  let trigSweeping = false;
  function trigLive(w: Waking): boolean {
    return waking.get(w.slot) === w;
  }
  function armTriggers(now: number): void {
    while (trigHead < trigQueue.length && !trigLive(trigQueue[trigHead])) trigHead++;
    if (trigHead >= 1024 && trigHead * 2 >= trigQueue.length) {
      trigQueue.splice(0, trigHead);
      trigHead = 0;
    }
    if (trigHead >= trigQueue.length) {
      trigQueue.length = 0;
      trigHead = 0;
      return;
    }
    const due = trigQueue[trigHead].due;
    if (trigTimer !== null) {
      if (trigTimerDue <= due) return;
      clock.clearTimeout(trigTimer);
    }
    trigTimerDue = due;
    // (bounded by one retry gap in case the wall clock stepped back)
    trigTimer = clock.setTimeout(onTriggerTimer, Math.min(Math.max(0, due - now), timers.wakeRetryMs));
  }
  function onTriggerTimer(): void {
    trigTimer = null;
    if (closed) return;
    const now = clock.now();
    trigSweeping = true;
    try {
      while (trigHead < trigQueue.length) {
        const w = trigQueue[trigHead];
        if (!trigLive(w)) {
          trigHead++;
          continue;
        }
        if (w.due > now) break;
        trigHead++;
        onTriggerTimeout(w);
      }
    } finally {
      trigSweeping = false;
      armTriggers(now);
    }
  }

  function sendTrigger(slot: number, w: Waking): void {
    const now = clock.now();
    const useRekey = w.rekey && w.attempt === 0;
    const nonce = nonces.issue(slot, now, timers.nonceLifetimeMs, w.startedAt, useRekey ? 'rekey' : 'wake');
    const p = registry.principalOf(slot);
    if (nonce === 0) {
      metrics.inc('cta_sc_drops_total', 'nonce_table_full');
      log('nonce_table_full', { principal: p });
    } else {
      w.nonces.push(nonce);
      let msg: Uint8Array | null = null;
      if (useRekey) {
        const sess = keys.getSession(slot);
        if (sess) {
          msg = encodeRekey(B, hmacKey(sess.etype, sess.key, USAGE.REKEY), {
            kmmid: KMMID.REKEY,
            doi: DOI.IPSEC,
            serverNonce: nonce,
            serverPrincipal: principal,
            timestamp: now,
            appData: { spi: newScSpi(slot, registry.scSpi(slot)) },
            ciphersuites: supported,
            saLifetime: timers.saLifetimeSec,
            gracePeriod: timers.graceSec,
            reestablish,
          });
          wipe(sess.key);
        }
      }
      if (!msg) msg = wakeUpTemplate.encode(nonce);
      const kind = msg[0] === KMMID.REKEY ? 'rekey' : 'wake_up';
      send(msg, registry.port(slot), registry.address(slot), kind === 'rekey' ? TX.rekey : TX.wake_up);
      if (em.listenerCount('wake')) em.emit('wake', { principal: p, kind: kind === 'rekey' ? 'rekey' : 'wake', attempt: w.attempt } satisfies WakeEvent);
    }
    w.due = now + timers.wakeRetryMs;
    trigQueue.push(w);
    if (trigTimer === null && !trigSweeping) armTriggers(now);
  }
  function onTriggerTimeout(w: Waking): void {
    const slot = w.slot;
    if (closed || waking.get(slot) !== w) return;
    w.attempt++;
    if (w.attempt > timers.wakeRetries) {
      waking.delete(slot);
      const p = registry.principalOf(slot);
      registry.setState(slot, CTA_STATE.UNREACHABLE, clock.now(), `no AP Request after ${w.attempt} trigger(s)`);
      metrics.inc('cta_sc_exchanges_total', 'unreachable');
      log('unreachable', { principal: p, attempts: w.attempt });
      em.emit('unreachable', { principal: p, attempts: w.attempt } satisfies UnreachableEvent);
      return;
    }
    sendTrigger(slot, w);
  }
  function startTrigger(slot: number, rekey: boolean): void {
    // A trigger already under way is replaced (its queue entry goes stale); its
    // nonces stay valid until they expire: a late answer to them still counts.
    const now = clock.now();
    const w: Waking = { slot, attempt: 0, startedAt: now, due: now, nonces: [], rekey };
    waking.set(slot, w);
    registry.markWaking(slot, w.startedAt);
    sendTrigger(slot, w);
  }
  function endTrigger(slot: number): void {
    const w = waking.get(slot);
    if (!w) return;
    for (const n of w.nonces) nonces.drop(n);
    waking.delete(slot);
  }
  function rekeyOrWake(slot: number): 'rekey' | 'wake' {
    const sess = keys.getSession(slot);
    const usable = !!sess && sess.ticketEndMs > clock.now() + 60000;
    if (sess) wipe(sess.key);
    startTrigger(slot, usable);
    return usable ? 'rekey' : 'wake';
  }

  // Paced wake of many CTAs (start-up, wakeAll): restartWakeRatePerSec.
  function queueWakes(slots: number[]): number {
    for (const s of slots) wakeQueue.push(s);
    if (!wakeQueueTimer) drainWakes();
    return slots.length;
  }
  function drainWakes(): void {
    wakeQueueTimer = null;
    if (closed) return;
    const rate = timers.restartWakeRatePerSec;
    const tickMs = rate > 0 && isFinite(rate) ? Math.max(10, 1000 / rate) : 0;
    const perTick = tickMs ? Math.max(1, Math.round((rate * tickMs) / 1000)) : Infinity;
    let sent = 0;
    while (wakeQueueHead < wakeQueue.length && sent < perTick) {
      const slot = wakeQueue[wakeQueueHead++];
      const st = registry.state(slot);
      if (st === CTA_STATE.FREE || waking.has(slot)) continue;
      startTrigger(slot, false);
      sent++;
    }
    if (wakeQueueHead >= wakeQueue.length) {
      wakeQueue.length = 0;
      wakeQueueHead = 0;
      return;
    }
    wakeQueueTimer = clock.setTimeout(drainWakes, tickMs);
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
      onAuthenticated(buf, r, now, digest, msg, etp, clientName, slot0, sk, auth, so, msg.authCipher);
    } finally {
      if (!keep) so.wipe();
      wipe(sk.keyvalue);
    }
  }

  function onAuthenticated(
    buf: Uint8Array,
    r: Rinfo,
    now: number,
    digest: number,
    msg: ApRequestParts,
    etp: TicketParts,
    clientName: string,
    slot0: number,
    sk: TicketParts['key'],
    auth: AuthParts,
    ops: SessionOps,
    authCipher: Uint8Array,
  ): void {
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

    // ---- AP Reply ----
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

  /** Consecutive exchanges per CTA that ended without SA Recovered (reset when one completes). */
  const ackMisses = new Map<number, number>();
  function retriggerAfterNoAck(slot: number, p: string, now: number): void {
    const n = (ackMisses.get(slot) ?? 0) + 1;
    if (n > timers.wakeRetries + 1) {
      ackMisses.delete(slot);
      registry.setState(slot, CTA_STATE.UNREACHABLE, now, `no SA Recovered after ${n - 1} exchange(s)`);
      metrics.inc('cta_sc_exchanges_total', 'unreachable');
      log('unreachable', { principal: p, attempts: n - 1 });
      em.emit('unreachable', { principal: p, attempts: n - 1 } satisfies UnreachableEvent);
      return;
    }
    ackMisses.set(slot, n);
    startTrigger(slot, false);
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
      if (current && !force && !closed && !p.clientInitiated && !waking.has(p.slot)) retriggerAfterNoAck(p.slot, p.principal, now);
      wipe(p.subkey);
    }
  }

  // ---- protected signaling (ESP) ----
  function saKeysOf(slot: number): SaKeys | null {
    let k = saCache.get(slot);
    if (k) return k;
    const sub = keys.saSubkey(slot);
    if (!sub) return null;
    k = deriveSaKeys(B, sub, registry.ctaSpi(slot), registry.scSpi(slot));
    wipe(sub);
    if (saCache.size >= 1024) {
      const first = saCache.keys().next();
      if (!first.done) saCache.delete(first.value);
    }
    saCache.set(slot, k);
    return k;
  }
  function hasSaSlot(slot: number): boolean {
    return keys.hasSa(slot) && registry.saExpiresSec(slot) * 1000 > clock.now();
  }
  function encNull(slot: number): boolean {
    // The ciphersuite is recorded in SQLite; the in-memory copy is the SPI pair only,
    // so keep the enc transform next to the cached keys.
    return saEncNull.get(slot) === true;
  }
  /** Slots whose SA has the NULL enc transform (set by establish()). */
  const saEncNull = new Map<number, boolean>();

  function onEsp(buf: Uint8Array, r: Rinfo): void {
    const spi = espPeekSpi(buf);
    if (spi < 0) return drop('malformed_esp', r);
    const slot = spi & 0x1fffff;
    if (registry.state(slot) === CTA_STATE.FREE || registry.scSpi(slot) !== spi || !hasSaSlot(slot)) return drop('unknown_spi', r);
    const k = saKeysOf(slot);
    if (!k) return drop('unknown_spi', r);
    const seq = buf.length >= 8 ? ((buf[4] << 24) | (buf[5] << 16) | (buf[6] << 8) | buf[7]) >>> 0 : 0;
    if (!keys.rxCheck(slot, seq)) return drop('esp_replay', r);
    let opened;
    try {
      opened = espOpen(B, { encKey: encNull(slot) ? null : k.encCtaToSc, authKey: k.authCtaToSc }, buf);
    } catch (e) {
      if (!isDecodeError(e) && !isCryptoError(e)) throw e;
      return drop(isCryptoError(e) ? 'esp_bad_icv' : 'malformed_esp', r);
    }
    keys.rxAccept(slot, seq);
    let text: string;
    try {
      text = Buffer.from(opened.payload).toString('latin1');
      const resp = parseNcsResponse(text);
      const w = sigWaiters.get(slot + ':' + resp.txid);
      if (!w) return drop('esp_unsolicited', r);
      sigWaiters.delete(slot + ':' + resp.txid);
      clock.clearTimeout(w.timer);
      metrics.inc('cta_sc_signaling_total', 'response');
      w.resolve(text);
    } catch (e) {
      if (!isDecodeError(e)) throw e;
      return drop('malformed_ncs', r);
    }
  }

  function sendSignaling(p: string, text: string, timeoutMs?: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const slot = registry.slotOf(p);
      if (slot < 0) return reject(new Error(`no CTA '${p}' is registered`));
      if (!hasSaSlot(slot)) return reject(new Error(`no SA established with ${p}`));
      let cmd;
      try {
        cmd = parseNcsCommand(text);
      } catch (e) {
        return reject(new Error(`not an NCS command: ${(e as Error).message}`));
      }
      // Our transaction ids are unique per CTA: rewrite the caller's if it collides.
      let txid = cmd.txid;
      if (sigWaiters.has(slot + ':' + txid)) {
        txid = String((sigTxid = (sigTxid % 999999999) + 1));
        text = text.replace(/^(\S+\s+)\S+/, `$1${txid}`);
      }
      const k = saKeysOf(slot) as SaKeys;
      const seq = keys.nextTxSeq(slot);
      if (seq === 0) return reject(new Error(`ESP sequence numbers exhausted for ${p}: re-key`));
      const pkt = espSeal(
        B,
        { spi: registry.ctaSpi(slot), seq, encKey: encNull(slot) ? null : k.encScToCta, authKey: k.authScToCta },
        new Uint8Array(Buffer.from(text, 'latin1')),
        ESP_NEXT_HEADER.UDP,
      );
      const key = slot + ':' + txid;
      const timer = clock.setTimeout(() => {
        if (sigWaiters.get(key)?.timer !== timer) return;
        sigWaiters.delete(key);
        metrics.inc('cta_sc_signaling_total', 'timeout');
        reject(new Error(`no signaling response from ${p} (transaction ${txid})`));
      }, timeoutMs ?? timers.signalingTimeoutMs);
      sigWaiters.set(key, { resolve, reject, timer, slot });
      metrics.inc('cta_sc_signaling_total', 'request');
      metrics.inc('cta_sc_tx_total', 'esp');
      const link = links.get(registry.address(slot));
      if (link) link(3, pkt);
      else sigSock.send(pkt, registry.signalingPort(slot), registry.address(slot));
    });
  }

  // ---- receive ----
  sock.on('message', (msg: Buffer, rinfo) => onKmDatagram(u8(msg), { address: rinfo.address, port: rinfo.port }));
  function onKmDatagram(buf: Uint8Array, r: Rinfo): void {
    try {
      const k = buf.length >= 3 ? buf[0] : 0;
      if (k === KMMID.AP_REQUEST) {
        cRxApRequest.n++;
        onApRequest(buf, r);
      } else if (k === KMMID.SA_RECOVERED) {
        cRxSaRecovered.n++;
        onSaRecovered(buf, r);
      } else if (k >= 1 && k <= 6) {
        metrics.inc('cta_sc_rx_total', 'unexpected');
        drop('unexpected_kmmid', r);
      } else if (buf.length >= 8 && buf[0] >= 0x40) {
        metrics.inc('cta_sc_rx_total', 'esp');
        onEsp(buf, r);
      } else {
        metrics.inc('cta_sc_rx_total', 'unknown');
        drop('malformed', r);
      }
    } catch (e) {
      metrics.inc('cta_sc_drops_total', 'internal_error');
      log('internal_error', { error: (e as Error).message, address: r.address, port: r.port });
      emitError('internal', (e as Error).message, { address: r.address, port: r.port });
    }
  }
  sigSock.on('message', (msg: Buffer, rinfo) => {
    metrics.inc('cta_sc_rx_total', 'esp');
    try {
      onEsp(u8(msg), { address: rinfo.address, port: rinfo.port });
    } catch (e) {
      metrics.inc('cta_sc_drops_total', 'internal_error');
      emitError('internal', (e as Error).message, { address: rinfo.address, port: rinfo.port });
    }
  });
  sock.on('error', (e) => emitError('internal', `UDP socket: ${e.message}`, {}));
  sigSock.on('error', (e) => emitError('internal', `signaling socket: ${e.message}`, {}));

  // ---- housekeeping: sweeps and the SA-lifetime re-key scan ----
  let hkTimer: unknown = null;
  function housekeeping(): void {
    hkTimer = null;
    if (closed) return;
    const now = clock.now();
    nonces.sweep(now);
    replay.sweep(now);
    sweepPending(now, false);
    for (const [slot, w] of ciRate) if (now - w.windowStart >= 60000) ciRate.delete(slot);
    // Re-key CTAs whose SA has less than the grace period left.
    const dueSec = Math.floor(now / 1000) + timers.graceSec;
    const due = registry.expiringBy(dueSec);
    for (const slot of due) {
      if (waking.has(slot)) continue;
      const how = rekeyOrWake(slot);
      log('sa_expiring', { principal: registry.principalOf(slot), method: how });
    }
    hkTimer = clock.setTimeout(housekeeping, timers.housekeepingMs);
  }
  hkTimer = clock.setTimeout(housekeeping, timers.housekeepingMs);

  // ---- public object ----
  const server = Object.assign(em, {
    address: { host: bound.address, port: bound.port },
    signalingAddress: { host: sigBound.address, port: sigBound.port },
    controlAddress: null as { host: string; port: number } | null,
    controlToken: null as string | null,
    principal,
    metrics,
    timers,
    register(p: string, address: string, port: number, signalingPort?: number): void {
      if (!p.includes('@')) throw new Error(`CTA principal '${p}' has no @REALM`);
      if (!(port >= 1 && port <= 65535) && !(port === 0 && links.has(address))) throw new Error(`bad port ${port} for ${p}`);
      if (p.length > MAX_PRINCIPAL) throw new Error(`CTA principal longer than ${MAX_PRINCIPAL} characters`);
      if (registry.slotOf(p) < 0 && registry.count >= maxCtas) throw new Error(`registry full: ${maxCtas} CTAs registered (the SC's limit)`);
      const slot = registry.register(p, address, port, signalingPort ?? 2427, clock.now());
      saCache.delete(slot);
      log('registered', { principal: p, address, port, signalingPort: signalingPort ?? 2427 });
    },
    unregister(p: string): boolean {
      const slot = registry.slotOf(p);
      if (slot < 0) return false;
      endTrigger(slot);
      nonces.dropSlot(slot);
      keys.clear(slot);
      saCache.delete(slot);
      saEncNull.delete(slot);
      sessionCache.get(slot)?.wipe();
      sessionCache.delete(slot);
      ciRate.delete(slot);
      ackMisses.delete(slot);
      registry.unregister(p);
      log('unregistered', { principal: p });
      return true;
    },
    isRegistered: (p: string) => registry.slotOf(p) >= 0,
    get: (p: string) => registry.get(p),
    list: (limit?: number, offset?: number) => registry.list(limit, offset),
    listCtas: (limit?: number, offset?: number) => registry.list(limit, offset),
    wake(p: string): void {
      startTrigger(slotOfOrThrow(p), false);
    },
    wakeAll: () => queueWakes(registry.slots()),
    rekey: (p: string) => rekeyOrWake(slotOfOrThrow(p)),
    sendSignaling,
    attachLink(address: string, sendFn: (channel: number, data: Uint8Array) => void) {
      links.set(address, sendFn);
      return (channel: number, data: Uint8Array) => {
        if (closed || links.get(address) !== sendFn) return;
        const r = { address, port: 0 };
        if (channel === 1) onKmDatagram(data, r);
        else if (channel === 3) {
          metrics.inc('cta_sc_rx_total', 'esp');
          try {
            onEsp(data, r);
          } catch (e) {
            metrics.inc('cta_sc_drops_total', 'internal_error');
            emitError('internal', (e as Error).message, r);
          }
        }
      };
    },
    receiveKm(data: Uint8Array, from: { address: string; port: number }): void {
      // A plain Uint8Array view, as the socket path gives (a Buffer's slice() would not copy).
      if (!closed) onKmDatagram(new Uint8Array(data.buffer, data.byteOffset, data.length), { address: from.address, port: from.port });
    },
    detachLink(address: string): void {
      links.delete(address);
    },
    hasSa(p: string): boolean {
      const slot = registry.slotOf(p);
      return slot >= 0 && hasSaSlot(slot);
    },
    saKeys(p: string) {
      const slot = registry.slotOf(p);
      if (slot < 0 || !keys.hasSa(slot)) return null;
      const k = saKeysOf(slot) as SaKeys;
      return { ...k, ctaSpi: registry.ctaSpi(slot), scSpi: registry.scSpi(slot) };
    },
    status() {
      const byState: { [s: string]: number } = {};
      for (const slot of registry.slots()) {
        const n = STATE_NAMES[registry.state(slot)];
        byState[n] = (byState[n] || 0) + 1;
      }
      return {
        principal,
        listen: { host: bound.address, port: bound.port },
        signaling: { host: sigBound.address, port: sigBound.port },
        uptimeSec: Math.floor((clock.now() - startedAtMs) / 1000),
        ctas: registry.count,
        byState,
        waking: waking.size,
        wakeQueue: wakeQueue.length - wakeQueueHead,
        outstandingNonces: nonces.size,
        replayCache: replay.size,
        pendingSaRecovered: pending.size,
        policy,
        ackRequired,
        counters: metrics.snapshot(),
      };
    },
    stats: () => metrics.snapshot(),
    metricsText(): string {
      return metrics.render({
        cta_sc_registered_ctas: { help: 'Registered CTAs', value: registry.count },
        cta_sc_waking_ctas: { help: 'CTAs with a Wake Up / Rekey outstanding', value: waking.size },
        cta_sc_outstanding_nonces: { help: 'Entries in the nonce table', value: nonces.size },
        cta_sc_replay_cache_entries: { help: 'Entries in the Kerberos replay cache', value: replay.size },
        cta_sc_pending_sa_recovered: { help: 'AP Replies awaiting SA Recovered', value: pending.size },
      });
    },
    flush: () => registry.flush(),
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      if (hkTimer) clock.clearTimeout(hkTimer);
      if (wakeQueueTimer) clock.clearTimeout(wakeQueueTimer);
      if (trigTimer !== null) clock.clearTimeout(trigTimer);
      trigTimer = null;
      waking.clear();
      trigQueue.length = 0;
      for (const w of sigWaiters.values()) {
        clock.clearTimeout(w.timer);
        w.reject(new Error('SC closed'));
      }
      sigWaiters.clear();
      if (control) await control.close();
      await Promise.all([new Promise<void>((r) => sock.close(() => r())), new Promise<void>((r) => sigSock.close(() => r()))]);
      registry.close();
      keys.wipeAll();
      for (const p of pending.values()) wipe(p.subkey);
      pending.clear();
      for (const m of serviceKeys.values()) for (const k of m.values()) wipe(k);
      for (const k of hmacKeys.values()) wipe(k);
      hmacKeys.clear();
      saCache.clear();
      for (const o of sessionCache.values()) o.wipe();
      sessionCache.clear();
      for (const k of ticketKeys.values()) k.wipe();
      ticketKeys.clear();
      clearCipherCache();
      log('stopped', {});
    },
  });

  // (Object.assign would snapshot a getter's value.)
  Object.defineProperty(server, 'size', { get: () => registry.count, enumerable: true });

  let control: ControlServer | null = null;
  if (opts.control) {
    try {
      control = await startControl(server, opts.control, log);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      await server.close();
      const where = `${opts.control.host || '127.0.0.1'}:${opts.control.port ?? 0}`;
      if (e instanceof ControlRefused) throw new ScStartError('control', `control API ${where}: ${err.message}`);
      if (err.code === 'EADDRINUSE') throw new ScStartError('port_in_use', `control API port ${where} is already in use`);
      throw new ScStartError('control', `cannot start the control API on ${where}: ${err.message}`);
    }
    server.controlAddress = control.address;
    server.controlToken = control.token;
  }

  log('started', { principal, listen: `${bound.address}:${bound.port}`, control: control ? `${control.address.host}:${control.address.port}` : null, ctas: registry.count });
  // Start-up: keys were only ever in memory, so every registered CTA needs a new SA.
  if (opts.wakeOnStart !== false && registry.count > 0) queueWakes(registry.slots());
  return server as unknown as ScServer;
}
