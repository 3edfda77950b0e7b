// The CTA agent's types: what status() and the counters report, a security
// association, and the per-SC state (agent.ts). Declarations only: nothing here reaches
// a bundle. Written inside the Espruino subset.

import type { Ciphersuite } from '../proto/pktc.ts';
import type { PrincipalName } from '../proto/krb5.ts';
import type { SaKeys } from '../proto/sa.ts';
import type { ReplayWindow } from '../proto/esp.ts';
import type { TicketEntry } from './kdc.ts';

export type AgentCounters = {
  rx: number;
  tx: number;
  drops: { [reason: string]: number };
  wakeUps: number;
  rekeysAccepted: number;
  replaced: number;
  apRequestsSent: number;
  retransmits: number;
  sessionsEstablished: number;
  sessionsAborted: number;
  saRecoveredSent: number;
  asExchanges: number;
  asRequestsSent: number;
  kdcRetransmits: number;
  kdcFailures: number;
  ticketsCached: number;
  ticketRefreshes: number;
  ticketPrefetches: number;
  skewAdopted: number;
  krbErrors: number;
  clientInitiated: number;
  saExpired: number;
  signalingReceived: number;
  signalingAnswered: number;
  /** UDP boards only: sockets closed and bound again because they had gone quiet while an answer was awaited. */
  socketsRecreated?: number;
};

export type ScStatus = {
  principal: string;
  state: string;
  ticketEndtime: number | null;
  sa: null | {
    ctaSpi: number;
    scSpi: number;
    ciphersuite: number[];
    establishedAt: number;
    expiresAt: number;
    lifetimeSec: number;
    graceSec: number;
    seqOut: number;
    seqInTop: number;
  };
  pendingNonce: number | null;
};

export type AgentStatus = {
  principal: string;
  running: boolean;
  transport: string;
  clockOffsetMs: number;
  slots: number;
  slotsInUse: number;
  scs: ScStatus[];
  counters: AgentCounters;
  memory: { free: number; usage: number; total: number };
};

/** A security association (ctaSpi, scSpi and keys are read by tools and tests). */
export type Sa = {
  ctaSpi: number;
  scSpi: number;
  keys: SaKeys;
  /** Ciphersuite (our offered entry the SC chose). */
  chosenSuite: Ciphersuite;
  /** Established at / expires at (platform ms), lifetime and grace (s). */
  establishedMs: number;
  expiresMs: number;
  lifetimeSeconds: number;
  graceSeconds: number;
  /** Inbound replay window; last outbound sequence number. */
  replayWindow: ReplayWindow | null;
  lastSeqOut: number;
};

/** Per-SC state (state, ticket and sa are read by tools and tests). The fields after lastRekeyTime are unset (undefined) until first used. */
export type ScState = {
  /** Index in config.scs / agent.scs. */
  scIndex: number;
  /** Principal; parsed name. */
  principalText: string;
  scPrincipalName: PrincipalName;
  /** Configured address (null = any); configured (pinned) port (undefined = any). */
  configuredAddress: string | null;
  pinnedPort: number | undefined;
  /** Where to send client-initiated AP Requests (configured, else last heard): address and port
   * (lp, the last port: test/agent-forged.test.ts reads it, so a longer name would be kept long). */
  replyAddress: string | null;
  lp: number;
  state: string;
  ticket: TicketEntry | null;
  sa: Sa | null;
  /** Ticket of the last AP exchange the SC accepted (Rekey HMAC key). */
  acceptedTicket: TicketEntry | undefined;
  /** Timestamp of the last Rekey accepted. */
  lastRekeyTime: number;
  /** Nonce of the last Wake Up accepted. */
  lastWakeUpNonce: number;
  /** HMAC of the AP Reply that established `sa`, and the SA Recovered sent for it. */
  establishedHmac: Uint8Array | undefined;
  saRecoveredMsg: Uint8Array | null | undefined;
  /** AS exchange: in flight?, nonce, request bytes, retransmissions, deadline, pre-authenticated?, KRB_AP_ERR_SKEW adopted once? */
  asInFlight: boolean;
  asRequestNonce: number;
  asRequestBytes: Uint8Array | null | undefined;
  asRetries: number;
  asDeadline: number;
  asPreauthenticated: boolean;
  asSkewAdopted: boolean;
  /** UDP: the KDC / key-management socket's datagram count when the current AS-REQ was first
   * sent / the pending session opened: quietSocket re-creates a socket that heard nothing since. */
  kdcHeardAtAsRequest: number;
  kmHeardAtOpen: number;
  /** Next client-initiated attempt (platform ms, 0/unset = none); backoff (ms) of the next retry. */
  clientInitiateAt: number;
  clientBackoffMs: number;
  /** Next ticket prefetch / refresh (platform ms, 0/unset = none); failed prefetches in a row. */
  prefetchAt: number;
  prefetchFailures: number;
  /** Trigger rate limit: start of the current second (platform ms), triggers let through in it. */
  triggerWindowStart: number;
  triggerCount: number;
};
