// The SC's public face: its options and timers, the events it emits, the ScServer
// interface that startSc (server.ts) returns, and its start-up error. Types only,
// plus the defaults and ciphersuiteName; server.ts re-exports all of it.
import type { EventEmitter } from 'node:events';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import { IPSEC_AUTH, IPSEC_ENC, type Ciphersuite } from '../../firmware/proto/pktc.ts';
import type { SaKeys } from '../../firmware/proto/sa.ts';
import type { Clock } from './clock.ts';
import type { Metrics } from './metrics.ts';
import type { CtaRecord } from './registry.ts';
import type { ControlOptions } from './control.ts';

export type ScTimers = {
  /** Lifetime of a Wake Up / Rekey nonce (ms). */
  nonceLifetimeMs: number;
  /** Wake Ups sent after the first one, each with a fresh nonce. */
  wakeRetries: number;
  /** Gap between Wake Ups (ms). */
  wakeRetryMs: number;
  /** Allowed clock skew (s); replay-cache entries live twice this. */
  skewSec: number;
  /** SA lifetime announced in the AP Reply (s). */
  saLifetimeSec: number;
  /** Grace period announced in the AP Reply; the SC re-keys when less SA lifetime than this is left (s). */
  graceSec: number;
  /** Pace of the Wake Ups sent to every registered CTA at start-up and by wakeAll(). */
  restartWakeRatePerSec: number;
  /** How long an AP Reply waits for its SA Recovered (ms). */
  saRecoveredTimeoutMs: number;
  /** Period of the housekeeping tick: cache sweeps, SA-lifetime scan (ms). */
  housekeepingMs: number;
  /** Default timeout of sendSignaling (ms). */
  signalingTimeoutMs: number;
};

export const DEFAULT_TIMERS: ScTimers = {
  nonceLifetimeMs: 5000,
  wakeRetries: 2,
  wakeRetryMs: 3000,
  skewSec: 300,
  saLifetimeSec: 7 * 24 * 3600,
  graceSec: 3600,
  restartWakeRatePerSec: 200,
  saRecoveredTimeoutMs: 5000,
  housekeepingMs: 1000,
  signalingTimeoutMs: 2000,
};

export type ScPolicy = {
  /** Accept AP Requests with nonce 0 (client-initiated). Default false. */
  allowClientInitiated: boolean;
  /** Per-CTA cap on accepted client-initiated exchanges per minute. Default 6. */
  clientInitiatedPerMinute: number;
  /** Auto-register an unknown CTA that starts a client-initiated exchange. Default true. */
  registerClientInitiated: boolean;
};

export type ScLog = (event: string, fields: { [k: string]: unknown }) => void;

export type ScOptions = {
  /** The SC's service principal, "sc/host@REALM"; must be in the keytab. */
  principal: string;
  /** Parsed entries, or the path of an MIT keytab file. */
  keytab: KeytabEntry[] | string;
  /** UDP listen address; default 0.0.0.0:1293 (tests: 127.0.0.1:0). */
  listen?: { host?: string; port?: number };
  /** SQLite file of the CTA registry; default ':memory:'. */
  statePath?: string;
  /** Control API (HTTP on 127.0.0.1, bearer token: control.ts); omitted = none. */
  control?: ControlOptions | null;
  policy?: Partial<ScPolicy>;
  timers?: Partial<ScTimers>;
  /** Ask the CTA for an SA Recovered (AckRequired). Default true; false = established when the AP Reply is sent. */
  ackRequired?: boolean;
  /** ReEstablish flag sent in AP Reply / Rekey. Default false (the SC drives re-keying). */
  reestablish?: boolean;
  /** Ciphersuites the SC accepts, in no particular order (the CTA's order decides). Default HMAC-SHA1-96 with AES-128-CBC or NULL. */
  ciphersuites?: Ciphersuite[];
  /** Wake every registered CTA at start-up (default true). */
  wakeOnStart?: boolean;
  /** Injectable clock/timers (tests, benchmarks). */
  clock?: Clock;
  log?: ScLog;
  /** Table bounds. */
  limits?: { nonces?: number; replayCache?: number; responseCache?: number; pending?: number; hmacKeyCache?: number; sessionCache?: number; ctas?: number };
};

export type EstablishedEvent = {
  principal: string;
  ctaSpi: number;
  scSpi: number;
  ciphersuite: Ciphersuite;
  /** ms since epoch. */
  establishedAt: number;
  expiresAt: number;
  clientInitiated: boolean;
  /** First Wake Up / Rekey of the exchange -> established (ms); null for client-initiated. */
  latencyMs: number | null;
};
export type UnreachableEvent = { principal: string; attempts: number };
export type FalseNonceEvent = { principal: string; nonce: number; reason: 'unknown' | 'expired' | 'wrong_cta' | 'unregistered'; address: string; port: number };
export type DropEvent = { reason: string; address: string; port: number; principal?: string };
export type WakeEvent = { principal: string; kind: 'wake' | 'rekey'; attempt: number };
/** Emitted as 'error' (only when someone listens): a Kerberos failure answered with an Error Reply, or an internal failure. */
export type ScError = Error & { kind: 'krb_error' | 'internal'; code?: number; principal?: string; address?: string; port?: number };

export interface ScServer extends EventEmitter {
  /** The bound UDP address (key management). */
  readonly address: { host: string; port: number };
  /** The UDP socket protected signaling is sent from. */
  readonly signalingAddress: { host: string; port: number };
  readonly controlAddress: { host: string; port: number } | null;
  /** The control API's bearer token (null without a control API). */
  readonly controlToken: string | null;
  readonly principal: string;
  readonly metrics: Metrics;
  readonly timers: Readonly<ScTimers>;
  register(principal: string, address: string, port: number, signalingPort?: number): void;
  unregister(principal: string): boolean;
  isRegistered(principal: string): boolean;
  /** From SQLite (flushed first). */
  get(principal: string): CtaRecord | null;
  list(limit?: number, offset?: number): CtaRecord[];
  listCtas(limit?: number, offset?: number): CtaRecord[];
  /** Number of registered CTAs. */
  readonly size: number;
  /** Sends a Wake Up now (retries with fresh nonces, then 'unreachable'). Throws for an unknown CTA. */
  wake(principal: string): void;
  /** Queues a paced Wake Up to every registered CTA; returns how many were queued. */
  wakeAll(): number;
  /** Rekey (authenticated) if the session key is held, else Wake Up; says which. */
  rekey(principal: string): 'rekey' | 'wake';
  /**
   * Attaches a non-UDP path to CTAs (a serial line, host-tools/serial): datagrams for
   * CTAs registered at `address` (e.g. "serial:/dev/ttyACM0", port 0) go to send()
   * (channel 1 key management, 3 signaling) instead of the UDP sockets. Returns the
   * function that feeds datagrams received from that path into the SC.
   */
  attachLink(address: string, send: (channel: number, data: Uint8Array) => void): (channel: number, data: Uint8Array) => void;
  detachLink(address: string): void;
  /**
   * Feeds one key-management datagram into the SC as if its UDP socket had received
   * it from `from` (answers still leave from that socket): a `--workers` worker gets
   * datagrams the primary routed to it this way, and the AP-REQ bench drives the
   * receive path without UDP.
   */
  receiveKm(data: Uint8Array, from: { address: string; port: number }): void;
  /** NCS text over the CTA's SA (ESP) to its signaling port; resolves with the response text. */
  sendSignaling(principal: string, text: string, timeoutMs?: number): Promise<string>;
  /** True when the SC holds an established, unexpired SA for the CTA. */
  hasSa(principal: string): boolean;
  /** The SA keys the SC holds for a CTA (for tests / tooling; never logged). */
  saKeys(principal: string): (SaKeys & { ctaSpi: number; scSpi: number }) | null;
  status(): object;
  stats(): ReturnType<Metrics['snapshot']>;
  metricsText(): string;
  /** Writes queued registry changes to SQLite now. */
  flush(): void;
  close(): Promise<void>;
}

export class ScStartError extends Error {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const csNames = new Map<number, string>();
export function ciphersuiteName(c: Ciphersuite): string {
  // (memoised: one name per exchange, from a handful of values)
  const id = (c.auth & 0xffff) * 65536 + (c.enc & 0xffff);
  let n = c.auth === (c.auth & 0xffff) && c.enc === (c.enc & 0xffff) ? csNames.get(id) : undefined;
  if (n === undefined) {
    const a = c.auth === IPSEC_AUTH.HMAC_SHA1_96 ? 'hmac-sha1-96' : c.auth === IPSEC_AUTH.HMAC_MD5_96 ? 'hmac-md5-96' : `auth-${c.auth}`;
    const e = c.enc === IPSEC_ENC.AES128_CBC ? 'aes-128-cbc' : c.enc === IPSEC_ENC.NULL ? 'null' : `enc-${c.enc}`;
    n = `${a}/${e}`;
    if (c.auth === (c.auth & 0xffff) && c.enc === (c.enc & 0xffff) && csNames.size < 256) csNames.set(id, n);
  }
  return n;
}
