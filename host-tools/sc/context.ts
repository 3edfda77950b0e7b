// The SC's shared state: one ScContext per startSc, built here and handed to each
// job (exchange.ts, triggers.ts, signaling.ts, receive.ts, housekeeping.ts,
// surface.ts). It holds the settled options, the identity and keys, the per-CTA
// tables, the counters, the sockets and the few helpers every job uses (send,
// drop, emitError). The jobs keep their private state (timers, queues) to
// themselves and expose stop() for close().
import { EventEmitter } from 'node:events';
import dgram from 'node:dgram';
import { isIP, type AddressInfo } from 'node:net';
import { lookup as dnsLookup } from 'node:dns';

import { scCryptoBackend } from './fast-crypto.ts';
import type { SessionOps } from './session-crypto.ts';
import { IPSEC_AUTH, IPSEC_ENC, type Ciphersuite } from '../../firmware/proto/pktc.ts';
import type { SaKeys } from '../../firmware/proto/sa.ts';
import { realClock, type Clock } from './clock.ts';
import { Metrics, type Counter } from './metrics.ts';
import { NonceTable } from './nonces.ts';
import { ReplayCache, ResponseCache } from './replay.ts';
import { PendingTable } from './pending.ts';
import { Registry } from './registry.ts';
import { KeyStore } from './keys.ts';
import { randomBytes } from './rand.ts';
import type { ControlServer } from './control.ts';
import { loadIdentity, type ScIdentity } from './identity.ts';
import { bindUdp } from './start-io.ts';
import { DEFAULT_TIMERS, ScStartError, type DropEvent, type ScError, type ScLog, type ScOptions, type ScPolicy, type ScTimers } from './types.ts';

/** node:crypto with cached AES contexts, one-shot hashes and pooled randomness. */
export const B = scCryptoBackend;

export type Rinfo = { address: string; port: number };

/** An AP Reply sent, waiting for its SA Recovered. */
export type Pending = {
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
export type Waking = { slot: number; attempt: number; startedAt: number; due: number; nonces: number[]; rekey: boolean };

/** Sends one datagram to a CTA over a non-UDP path (attachLink): channel 1 key management, 3 signaling. */
export type LinkSend = (channel: number, data: Uint8Array) => void;

const DEFAULT_CIPHERSUITES: Ciphersuite[] = [
  { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC },
  { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.NULL },
];

/** The options with their defaults applied. */
type Settings = {
  timers: ScTimers;
  policy: ScPolicy;
  ackRequired: boolean;
  reestablish: boolean;
  /** Ciphersuites the SC accepts. */
  supported: Ciphersuite[];
  clock: Clock;
  log: ScLog;
  /** A log sink was given: only then are the hot path's log records built. */
  logging: boolean;
  limits: NonNullable<ScOptions['limits']>;
  /** Most CTAs registered at once (control API and auto-registration). */
  maxCtas: number;
};

/** The per-CTA tables and caches (all in memory but the registry's SQLite copy). */
type Tables = {
  registry: Registry;
  keys: KeyStore;
  nonces: NonceTable;
  replay: ReplayCache;
  responses: ResponseCache;
  /**
   * AP Replies awaiting SA Recovered, keyed by the SA Recovered HMAC expected for
   * them (header 04 01 10), so an SA Recovered finds its exchange in O(1) however
   * many CTAs share one address (NAT, a serial bridge). One fixed lifetime:
   * insertion order is expiry order.
   */
  pending: PendingTable<Pending>;
  /** Slots with a Wake Up / Rekey under way. */
  waking: Map<number, Waking>;
  /** Client-initiated exchanges per CTA in the current minute. */
  ciRate: Map<number, { windowStart: number; count: number }>;
  /** Consecutive exchanges per CTA that ended without SA Recovered (reset when one completes). */
  ackMisses: Map<number, number>;
  /** Derived HMAC keys per (etype, usage, session key). */
  hmacKeys: Map<string, Uint8Array>;
  hmacKeyMax: number;
  /** Derived SA keys of CTAs that signal. */
  saCache: Map<number, SaKeys>;
  /** Slots whose SA has the NULL enc transform (set by establish()). */
  saEncNull: Map<number, boolean>;
  /** slot -> session key's derived keys. */
  sessionCache: Map<number, SessionOps>;
  sessionCacheMax: number;
};

/** Counter cells of the per-exchange path (c.n++, no family/label lookups). */
type HotCounters = {
  TX: { wake_up: Counter; rekey: Counter; ap_reply: Counter; error_reply: Counter };
  cRxApRequest: Counter;
  cRxSaRecovered: Counter;
  cApAccepted: Counter;
  cApAcceptedCi: Counter;
  cEstablished: Counter;
  cEstablishedCi: Counter;
};

export type ScContext = Settings &
  ScIdentity &
  Tables &
  HotCounters & {
    metrics: Metrics;
    /** Becomes the ScServer (surface.ts assigns the public methods onto it). */
    em: EventEmitter;
    /** Key management (the listen address). */
    sock: dgram.Socket;
    /** Protected signaling goes out from here (an ephemeral port). */
    sigSock: dgram.Socket;
    bound: AddressInfo;
    sigBound: AddressInfo;
    /** Non-UDP paths to CTAs (attachLink): address -> sender(channel, bytes). */
    links: Map<string, LinkSend>;
    /** The control API, once started (server.ts). */
    control: ControlServer | null;
    startedAtMs: number;
    /** Set by close(): timers that fire afterwards do nothing. */
    closed: boolean;
    emitError(kind: 'krb_error' | 'internal', message: string, extra: { code?: number; principal?: string; address?: string; port?: number }): void;
    /** Counts a datagram disregarded, and tells 'drop' listeners. */
    drop(reason: string, r: Rinfo, principal?: string): void;
    /** Sends key management to a CTA (its link if it has one, else the UDP socket) and counts it. */
    send(buf: Uint8Array, port: number, address: string, kind: Counter): void;
    slotOfOrThrow(p: string): number;
    /** A fresh SC inbound SPI for the slot, different from `avoid`. */
    newScSpi(slot: number, avoid: number): number;
  };

function settle(opts: ScOptions): Settings {
  const limits = opts.limits || {};
  return {
    timers: { ...DEFAULT_TIMERS, ...(opts.timers || {}) },
    policy: { allowClientInitiated: false, clientInitiatedPerMinute: 6, registerClientInitiated: true, ...(opts.policy || {}) },
    ackRequired: opts.ackRequired !== false,
    reestablish: opts.reestablish === true,
    supported: opts.ciphersuites || DEFAULT_CIPHERSUITES,
    clock: opts.clock || realClock,
    log: opts.log || (() => {}),
    logging: !!opts.log,
    limits,
    maxCtas: limits.ctas ?? 1000000,
  };
}

function makeTables(statePath: string | undefined, limits: Settings['limits']): Tables {
  return {
    registry: new Registry(statePath || ':memory:'),
    keys: new KeyStore(),
    nonces: new NonceTable(limits.nonces ?? 262144),
    replay: new ReplayCache(limits.replayCache ?? 262144),
    responses: new ResponseCache(limits.responseCache ?? 8192),
    pending: new PendingTable<Pending>(),
    waking: new Map(),
    ciRate: new Map(),
    ackMisses: new Map(),
    hmacKeys: new Map(),
    hmacKeyMax: limits.hmacKeyCache ?? 4096,
    saCache: new Map(),
    saEncNull: new Map(),
    sessionCache: new Map(),
    sessionCacheMax: limits.sessionCache ?? 8192,
  };
}

function hotCounters(metrics: Metrics): HotCounters {
  return {
    TX: {
      wake_up: metrics.counter('cta_sc_tx_total', 'wake_up'),
      rekey: metrics.counter('cta_sc_tx_total', 'rekey'),
      ap_reply: metrics.counter('cta_sc_tx_total', 'ap_reply'),
      error_reply: metrics.counter('cta_sc_tx_total', 'error_reply'),
    },
    cRxApRequest: metrics.counter('cta_sc_rx_total', 'ap_request'),
    cRxSaRecovered: metrics.counter('cta_sc_rx_total', 'sa_recovered'),
    cApAccepted: metrics.counter('cta_sc_ap_requests_total', 'accepted'),
    cApAcceptedCi: metrics.counter('cta_sc_ap_requests_total', 'accepted_client_initiated'),
    cEstablished: metrics.counter('cta_sc_exchanges_total', 'established'),
    cEstablishedCi: metrics.counter('cta_sc_exchanges_total', 'established_client_initiated'),
  };
}

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

/** The key-management socket on the listen address and the signaling socket beside it. */
async function bindSockets(listen: ScOptions['listen']): Promise<{ sock: dgram.Socket; sigSock: dgram.Socket }> {
  const listenHost = listen?.host ?? '0.0.0.0';
  const listenPort = listen?.port ?? 1293;
  const sock = dgram.createSocket({ type: listenHost.includes(':') ? 'udp6' : 'udp4', lookup: ipLookup });
  await bindUdp(sock, listenHost, listenPort);
  const sigSock = dgram.createSocket({ type: listenHost.includes(':') ? 'udp6' : 'udp4', lookup: ipLookup });
  try {
    await bindUdp(sigSock, listenHost, 0);
  } catch (e) {
    sock.close();
    throw e;
  }
  return { sock, sigSock };
}

/** Settles the options, loads the identity, makes the tables and binds the sockets (throws ScStartError). */
export async function createContext(opts: ScOptions): Promise<ScContext> {
  const settings = settle(opts);
  const identity = loadIdentity(opts.principal, opts.keytab, settings.limits.hmacKeyCache);
  const tables = makeTables(opts.statePath, settings.limits);
  const metrics = new Metrics();
  const counters = hotCounters(metrics);
  const startedAtMs = settings.clock.now();
  const em = new EventEmitter();
  const { sock, sigSock } = await bindSockets(opts.listen);
  const links = new Map<string, LinkSend>();
  const { registry } = tables;

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
  function slotOfOrThrow(p: string): number {
    const s = registry.slotOf(p);
    if (s < 0) throw new Error(`no CTA '${p}' is registered`);
    return s;
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

  return {
    ...settings,
    ...identity,
    ...tables,
    ...counters,
    metrics,
    em,
    sock,
    sigSock,
    bound: sock.address() as AddressInfo,
    sigBound: sigSock.address() as AddressInfo,
    links,
    control: null,
    startedAtMs,
    closed: false,
    emitError,
    drop,
    send,
    slotOfOrThrow,
    newScSpi,
  };
}
