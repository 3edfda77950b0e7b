// The CTA agent: the client side of server-initiated Kerberized key management
// (PROTOCOL.md; claims 2-6 and 12-17 of SEED-CLAIMS.md). Written inside the
// Espruino subset (ESPRUINO.md): it runs on the board, in the host emulator and
// in the unit tests unchanged.
//
// Shape:
//  - one receive path per channel (key management, KDC, signaling), each wrapped
//    so no input can throw out of the agent; every drop is counted by reason (the
//    receive paths return the D_ reason of a drop, receive() counts it);
//  - Wake Ups and Rekeys are rejected cheaply BEFORE any heavy work (header,
//    nonce and principal are peeked in place, no decoding, no allocation);
//  - pending sessions live in a fixed-size SessionTable (one Float64Array);
//  - one platform timer, armed for the earliest deadline of anything pending;
//  - per-SC state (ticket cache, SA, rekey timestamps) is allocated once at start;
//  - ticket prefetch (config.prefetchTicket, default on): each SC's service ticket is
//    fetched at boot after a small random delay and refreshed before it stops being
//    usable, so a Wake Up is answered with no KDC round trip (the AS exchange alone
//    takes seconds of interpreter time on a slow board, against the SC's 5 s nonce
//    lifetime). An unreachable KDC is retried with doubling, jittered backoff a
//    bounded number of times, then periodically.
//
// Footprint: the class keeps only what callers use (start, stop, receive, counters,
// status; the fields table, scs, transport, offsetMs, platform); everything else is a
// module function taking the agent as `a` (on the interpreter a function costs fewer
// variables than a method). Internal field names explain themselves: the build
// shortens every firmware-only property name (host-tools/build/mangle.ts), so a long
// name costs nothing on the board. A name that the host or a test reads is kept as
// written (lp below, read by a test, stays short for that reason).
//
// Length (about 1,080 lines, over the house's 600): the class, the receive path, the
// sessions, the AS exchange and the timers are one module on purpose. A text's code is
// numbered by its module's place (docs/design/FOOTPRINT.md "Text codes"): this module's
// codes are one or two digits; moved to a module of their own, the receive path's six
// texts get three and the modules sorted after it renumber (platform/espruino.ts's codes
// gain a digit): about 15-20 B more on every board by a count of the sites (not built),
// which the Puck.js (2 B of Storage left) does not have. The types are apart already (agent-types.ts: no code, no number).

import type { Platform } from '../platform/platform.ts';
import type { CryptoBackend } from '../proto/crypto/backend.ts';
import type { CtaConfig, CtaKey } from '../config.ts';
import { readU32, fromAscii, toAscii } from '../proto/bytes.ts';
// instanceof written out: no isDecodeError/isCryptoError functions on the board.
import { DecodeError, CryptoError } from '../proto/errors.ts';
import { encrypt, decrypt, usageHmacKey } from '../proto/crypto/index.ts';
import { HMAC_LEN, MAX_DATAGRAM, encodeApRequest, encodeSaRecovered, decodeApReply, decodeRekey, decodeErrorReply, verifyHmac } from '../proto/pktc.ts';
import type { Ciphersuite, IpsecAppData } from '../proto/pktc.ts';
import {
  krbEncode,
  krbDecode,
  messageType,
  parsePrincipal,
  principalNameEquals,
  AP_OPT_MUTUAL_REQUIRED,
  KU_AP_REQ_AUTH,
  KU_AP_REP_ENCPART,
  KRB_AS_REP,
  KRB_ERROR,
  KRB_AP_REP,
  KRB_AP_REQ,
  APP_AUTHENTICATOR,
  APP_ENC_AP_REP_PART,
  KDC_ERR_PREAUTH_REQUIRED,
  KRB_AP_ERR_SKEW,
  KRB_AP_ERR_TKT_EXPIRED,
} from '../proto/krb5.ts';
import type { PrincipalName, KrbError, EncApRepPart, AsRep, ApRep } from '../proto/krb5.ts';
import { KDC_REP, KRB_ERROR_TYPE, AP_REP, ENC_AP_REP_PART, AP_REQ, AUTHENTICATOR } from '../proto/krb5-schema.ts';
import { deriveSaKeys } from '../proto/sa.ts';
import type { SaKeys } from '../proto/sa.ts';
import { espSeal, espOpen, espPeekSpi, ReplayWindow, parseNcsCommand, buildNcsResponse } from '../proto/esp.ts';
import {
  SessionTable,
  F_STATE,
  F_SC,
  F_NONCE,
  F_DEADLINE,
  F_RETRIES,
  F_KIND,
  F_CTIME,
  F_CUSEC,
  F_SPI,
  F_FLAGS,
  F_STARTED,
  F_PORT,
  S_FREE,
  S_TICKET,
  S_AP_REQ_SENT,
  K_WAKE,
  K_REKEY,
  K_CLIENT,
  FL_SKEW_ADOPTED,
  FL_TKT_REFRESHED,
} from './table.ts';
import { makeTransport, CH_KM, CH_KDC, CH_SIG, SERIAL_ADDRESS } from './transport.ts';
import type { Transport } from './transport.ts';
import { buildAsReq, preauthKey, readAsRep, clientName } from './kdc.ts';
import type { TicketEntry } from './kdc.ts';
import {
  C_RX,
  C_TX,
  C_WAKE_UPS,
  C_REKEYS_ACCEPTED,
  C_REPLACED,
  C_AP_REQUESTS_SENT,
  C_RETRANSMITS,
  C_SESSIONS_ESTABLISHED,
  C_SESSIONS_ABORTED,
  C_SA_RECOVERED_SENT,
  C_AS_EXCHANGES,
  C_AS_REQUESTS_SENT,
  C_KDC_RETRANSMITS,
  C_KDC_FAILURES,
  C_TICKETS_CACHED,
  C_TICKET_REFRESHES,
  C_TICKET_PREFETCHES,
  C_SKEW_ADOPTED,
  C_KRB_ERRORS,
  C_CLIENT_INITIATED,
  C_SA_EXPIRED,
  C_SIGNALING_RECEIVED,
  C_SIGNALING_ANSWERED,
  N_COUNTERS,
  D_UNKNOWN_SC,
  D_WRONG_ADDRESS,
  D_NONCE_ZERO,
  D_TABLE_FULL,
  D_DUPLICATE,
  D_BAD_HMAC,
  D_MALFORMED,
  D_STALE_REKEY,
  D_NO_PENDING,
  D_NO_SESSION,
  D_BAD_AP_REP,
  D_NO_SUBKEY,
  D_BAD_CIPHERSUITE,
  D_UNEXPECTED,
  D_UNSUPPORTED_DOI,
  D_KDC_UNMATCHED,
  D_ESP_NO_SA,
  D_ESP_ICV,
  D_ESP_REPLAY,
  D_ESP_MALFORMED,
  D_INTERNAL,
  D_RATE_LIMITED,
  D_BUSY,
  C_SOCKETS_RECREATED,
  counterNames,
} from './counters.ts';
import {
  KM_WAKE_UP,
  KM_AP_REQUEST,
  KM_AP_REPLY,
  KM_SA_RECOVERED,
  KM_REKEY,
  KM_ERROR_REPLY,
  DOI_IPSEC,
  PKTC_MAJOR,
  USAGE_AP_REPLY as U_AP_REPLY,
  USAGE_SA_RECOVERED as U_SA_RECOVERED,
  USAGE_REKEY as U_REKEY,
  NH_NONE,
} from '../proto/consts.ts';

// Build-time board facts (host-tools/build/build.ts boardDefines). Tested inline as
// `(typeof BOARD_X === 'undefined' || BOARD_X)`: esbuild folds that at each use and
// drops the code a board cannot use (a module-level const would not fold in a module
// with imports); outside a bundle (host tools, unit tests) everything is kept.
declare const BOARD_UDP: boolean;
declare const BOARD_COUNTER_NAMES: boolean;
// Protected signaling (ESP + NCS, proto/esp.ts) is a board feature (board-configs
// "features"): a board built without it drops signaling datagrams as esp_no_sa.
declare const BOARD_SIGNALING: boolean;

// The agent's status, counters and per-SC state types: agent-types.ts.
export type { AgentCounters, ScStatus, AgentStatus } from './agent-types.ts';
import type { AgentCounters, AgentStatus, Sa, ScState, ScStatus } from './agent-types.ts';

/** A receive path's result: the D_ reason of a drop, or nothing. */
type Drop = number | void;

/** Math.floor (one module variable; shorter on the board at each of its uses). */
const floor = Math.floor;

function normHost(a: string): string {
  if (a.indexOf('::ffff:') === 0) a = a.substr(7);
  return a === 'localhost' || a === '::1' ? '127.0.0.1' : a;
}

export class CtaAgent {
  platform!: Platform;
  /** platform.crypto. */
  cryptoBackend!: CryptoBackend;
  /** The configuration. */
  agentConfig!: CtaConfig;
  /** Counter values (see C_ and D_ in counters.ts; read them as `counters`). */
  counterValues!: Uint32Array;
  table!: SessionTable;
  scs!: ScState[];
  /** Running? */
  running!: boolean;
  /** Adjusted clock = platform.now() + offsetMs (set by KRB_AP_ERR_SKEW). */
  offsetMs!: number;
  transport!: Transport | null;
  /** Our client name; the ciphersuites we offer. */
  clientPrincipal!: PrincipalName;
  offeredSuites!: Ciphersuite[];
  /** The platform timer and the deadline it is armed for. */
  timerHandle!: unknown;
  timerDeadline!: number;
  /** Last authenticator time (us): they only grow. */
  lastAuthUsec!: number;
  /** In tick() (arm() waits for its end)? */
  inTick!: boolean;
  /** offsetMs before the last KRB_AP_ERR_SKEW adopted from an Error Reply: restored if that exchange aborts. */
  offsetBeforeSkew!: number;
  /** UDP: datagrams of any kind that arrived on the key-management / KDC socket (a count: no clock read per datagram). */
  kmHeard!: number;
  kdcHeard!: number;

  constructor(platform: Platform, config: CtaConfig) {
    const a = this;
    a.platform = platform;
    a.cryptoBackend = platform.crypto;
    a.agentConfig = config;
    // The drop reasons after the counters, then (UDP boards) socketsRecreated.
    a.counterValues = new Uint32Array(N_COUNTERS + (typeof BOARD_UDP === 'undefined' || BOARD_UDP ? 24 : 23));
    a.table = new SessionTable(config.slots);
    if (typeof BOARD_UDP === 'undefined' || BOARD_UDP) a.kmHeard = a.kdcHeard = 0;
    a.running = false;
    a.offsetMs = 0;
    a.transport = null;
    a.timerHandle = null;
    a.clientPrincipal = clientName(config.principal);
    a.offeredSuites = [];
    a.scs = [];
    for (let i = 0; i < config.ciphersuites.length; i++) a.offeredSuites.push({ auth: config.ciphersuites[i][0], enc: config.ciphersuites[i][1] });
    for (let i = 0; i < config.scs.length; i++) {
      const c = config.scs[i];
      const ad = c.address === undefined ? null : c.address;
      a.scs.push({
        scIndex: i,
        principalText: c.principal,
        scPrincipalName: parsePrincipal(c.principal, config.realm).name,
        configuredAddress: ad,
        pinnedPort: c.anyPort ? undefined : c.port,
        replyAddress: ad,
        lp: c.port === undefined ? 1293 : c.port,
        state: 'idle',
        ticket: null,
        sa: null,
        lastRekeyTime: 0,
      } as ScState);
    }
  }

  // ------------------------------------------------------------ lifecycle

  start(): void {
    const a = this;
    if (a.running) return;
    const c = a.agentConfig;
    a.transport = makeTransport(a.platform, c, (ch, data, address, port) => a.receive(ch, data, address, port));
    a.running = true;
    log(a, 'start', { principal: c.principal + '@' + c.realm, transport: a.transport.kind, slots: a.table.n, scs: a.scs.length });
    const now = platformNow(a);
    for (const sc of a.scs) {
      if (c.clientInitiatedOnBoot) sc.clientInitiateAt = now;
      // Spread a fleet that powers up together: 1 .. prefetchDelayMs.
      if (c.prefetchTicket) sc.prefetchAt = now + 1 + floor((a.cryptoBackend.randomBytes(1)[0] / 256) * c.timers.prefetchDelayMs);
    }
    arm(a);
  }

  stop(): void {
    const a = this;
    if (!a.running) return;
    a.running = false;
    if (a.timerHandle !== null) a.platform.clearTimeout(a.timerHandle);
    a.timerHandle = null;
    a.timerDeadline = -1;
    if (a.transport) a.transport.close();
    a.transport = null;
    log(a, 'stop', {});
  }

  /** Entry point for every datagram: never throws. (A method: the firmware bench wraps it.) */
  receive(ch: number, data: Uint8Array, address: string, port: number): void {
    const a = this;
    if (!a.running) return;
    a.counterValues[C_RX]++;
    if (typeof BOARD_UDP === 'undefined' || BOARD_UDP) {
      // Heard on this socket (whatever it is, even a drop): see quietSocket.
      if (ch === CH_KM) a.kmHeard++;
      else if (ch === CH_KDC) a.kdcHeard++;
      if (ch === CH_KM && address !== SERIAL_ADDRESS) {
        // Key management from a port no SC can send from (every SC pinned to HOST:PORT, none
        // to this one) is dropped before anything else: a stream of forged Wake Ups costs one
        // loop each, so a slow board still takes the genuine Wake Up in time (issue 13 item 4).
        let mayBeSc = false;
        for (const sc of a.scs) if (!sc.pinnedPort || sc.pinnedPort === port) mayBeSc = true;
        if (!mayBeSc) {
          a.counterValues[N_COUNTERS + D_WRONG_ADDRESS]++;
          return;
        }
      }
    }
    let r!: Drop;
    try {
      r = rx(a, ch, data, address, port);
    } catch (e) {
      caught(a, e, 'rx');
    }
    if ((r as number) >= 0) a.counterValues[N_COUNTERS + (r as number)]++;
    arm(a);
  }

  /**
   * The counters by name (a fresh object: AgentCounters, drops by reason). On a board whose
   * counter names live in the build's dictionary (board config `features.counterNames`
   * false), the plain list of values instead, counters (C_ order) then drops (D_ order):
   * the host tools name them again (host-tools/build/text.ts nameCounters).
   */
  get counters(): AgentCounters {
    if (!(typeof BOARD_COUNTER_NAMES === 'undefined' || BOARD_COUNTER_NAMES)) {
      const values: number[] = [];
      for (let i = 0; i < this.counterValues.length; i++) values.push(this.counterValues[i]);
      return values as unknown as AgentCounters;
    }
    // One list: the counters (C_ order), then the drop reasons (D_ order).
    const names = counterNames();
    const c: { [k: string]: unknown } = {};
    const drops: { [k: string]: number } = {};
    for (let i = 0; i < names.length; i++) {
      if (i < N_COUNTERS) c[names[i]] = this.counterValues[i];
      else if ((typeof BOARD_UDP === 'undefined' || BOARD_UDP) && i === C_SOCKETS_RECREATED) c[names[i]] = this.counterValues[i];
      else drops[names[i]] = this.counterValues[i];
      if (i === 1) c.drops = drops;
    }
    return c as AgentCounters;
  }

  /** A snapshot: states, SPIs and expiry per SC, counters. Never key material. */
  status(): AgentStatus {
    const a = this;
    const t = a.table;
    const scs: ScStatus[] = [];
    for (let i = 0; i < a.scs.length; i++) {
      const sc = a.scs[i];
      const slot = t.findBySc(i);
      const sa = sc.sa;
      scs.push({
        principal: sc.principalText,
        state: sc.state,
        ticketEndtime: sc.ticket ? sc.ticket.endtime : null,
        sa: sa
          ? {
              ctaSpi: sa.ctaSpi,
              scSpi: sa.scSpi,
              ciphersuite: [sa.chosenSuite.auth, sa.chosenSuite.enc],
              establishedAt: sa.establishedMs,
              expiresAt: sa.expiresMs,
              lifetimeSec: sa.lifetimeSeconds,
              graceSec: sa.graceSeconds,
              seqOut: sa.lastSeqOut,
              seqInTop: sa.replayWindow ? sa.replayWindow.top : 0,
            }
          : null,
        pendingNonce: slot >= 0 ? t.get(slot, F_NONCE) : null,
      });
    }
    const mem = a.platform.memory();
    return {
      principal: a.agentConfig.principal + '@' + a.agentConfig.realm,
      running: a.running,
      transport: a.transport ? a.transport.kind : a.agentConfig.transport,
      clockOffsetMs: a.offsetMs,
      slots: t.n,
      slotsInUse: t.inUse(),
      scs: scs,
      counters: a.counters,
      memory: { free: mem.free, usage: mem.usage, total: mem.total },
    };
  }
}

// ------------------------------------------------------------ helpers

/** Logs event 'cta.' + ev. */
function log(a: CtaAgent, ev: string, fields: { [k: string]: string | number | boolean }): void {
  a.platform.log('cta.' + ev, fields);
}

/**
 * Platform clock in whole ms (Espruino's Date.now() has a fractional part): for
 * deadlines and timers. Kerberos timestamps and ticket lifetimes use the adjusted
 * wall clock, platformNow(a) + a.offsetMs.
 */
function platformNow(a: CtaAgent): number {
  return floor(a.platform.now());
}

/** 0.75 .. 1.25 */
function jitter(a: CtaAgent): number {
  return 0.75 + a.cryptoBackend.randomBytes(1)[0] / 510;
}

function usable(a: CtaAgent, tk: TicketEntry): boolean {
  return tk.endtime - a.agentConfig.timers.ticketRefreshMarginSec * 1000 > platformNow(a) + a.offsetMs;
}

/** Counts an exception caught at `where` (malformed input, else an internal error, logged). */
function caught(a: CtaAgent, e: unknown, where: string): void {
  if (e instanceof DecodeError || e instanceof CryptoError) a.counterValues[N_COUNTERS + D_MALFORMED]++;
  else {
    a.counterValues[N_COUNTERS + D_INTERNAL]++;
    log(a, 'error', { where: where, error: String(e && (e as Error).message ? (e as Error).message : e) });
  }
}

function send(a: CtaAgent, ch: number, data: Uint8Array, address: string, port: number): void {
  if (!a.transport) return;
  a.counterValues[C_TX]++;
  a.transport.send(ch, data, address, port);
}

/** Is `address` (and `port`, when given: key management) acceptable for SC `sc`? (nothing configured, or serial: yes) */
function fromSc(sc: ScState, address: string, port?: number): boolean {
  // A serial-only board (BOARD_UDP false) never sees an address.
  if ((typeof BOARD_UDP === 'undefined' || BOARD_UDP) && address !== SERIAL_ADDRESS) {
    // A pinned port (provisioned HOST:PORT) is the only one key management is taken from.
    if (port !== undefined && sc.pinnedPort && port !== sc.pinnedPort) return false;
    if (sc.configuredAddress !== null) return normHost(sc.configuredAddress) === normHost(address);
  }
  return true;
}

/** Adopts the KRB-ERROR's server time as our clock offset, if it moves the clock by at most `max` ms. */
function adoptSkew(a: CtaAgent, err: KrbError, max: number): boolean {
  const offset = floor(err.stime + floor(err.susec / 1000) - platformNow(a));
  if (offset - a.offsetMs > max || a.offsetMs - offset > max) return false;
  a.offsetBeforeSkew = a.offsetMs;
  a.offsetMs = offset;
  // Authenticator times only grow (lastAuthUsec); after a clock that was ahead is pulled
  // back, keeping the old high-water mark would send the skewed ctime again.
  a.lastAuthUsec = 0;
  a.counterValues[C_SKEW_ADOPTED]++;
  log(a, 'skew', { offsetMs: a.offsetMs });
  return true;
}

// ------------------------------------------------------------ receive

/**
 * Every datagram, by channel: KDC (AS-REP / KRB-ERROR for an AS exchange in flight),
 * protected signaling (ESP), key management (Wake Up / Rekey, dropped cheaply on the
 * header, nonce and principal first; AP Reply, Error Reply). Returns a drop's reason.
 * Long on purpose (about 280 lines): on the interpreter each function costs
 * variables and each call a frame, so the per-channel paths are written inline
 * (see "Footprint" at the top); each channel is one marked block.
 */
function rx(a: CtaAgent, ch: number, data: Uint8Array, address: string, port: number): Drop {
  if (ch === CH_KDC) {
    // ---------------------------------------------------------- KDC
    const c = a.agentConfig;
    if ((typeof BOARD_UDP === 'undefined' || BOARD_UDP) && address !== SERIAL_ADDRESS && (normHost(address) !== normHost(c.kdc.address) || port !== c.kdc.port)) return D_WRONG_ADDRESS;
    const msgType = messageType(data);
    if (msgType === KRB_AS_REP) {
      const rep = krbDecode(data, KDC_REP, KRB_AS_REP, 'AS-REP') as AsRep;
      for (const sc of a.scs) {
        if (!sc.asInFlight || !principalNameEquals(rep.ticket.sname, sc.scPrincipalName)) continue;
        let tk;
        try {
          tk = readAsRep(a.cryptoBackend, rep, c.keys, sc.asRequestNonce, sc.scPrincipalName);
        } catch (e) {
          continue;
        }
        return asEnd(a, sc, tk, '');
      }
      return D_KDC_UNMATCHED;
    }
    if (msgType !== KRB_ERROR) return D_MALFORMED;
    const err = krbDecode(data, KRB_ERROR_TYPE, KRB_ERROR, 'KRB-ERROR') as KrbError;
    let sc: ScState | null = null;
    for (const s of a.scs) if (s.asInFlight && principalNameEquals(err.sname, s.scPrincipalName)) sc = s;
    if (!sc) return D_KDC_UNMATCHED;
    const code = err.errorCode;
    // PREAUTH_REQUIRED to a first AS-REQ is the normal first round trip of pre-authentication.
    // (Event names as literals: the build codes them, build/text.ts.)
    const preauthRequired = code === KDC_ERR_PREAUTH_REQUIRED && !sc.asPreauthenticated;
    if (preauthRequired) log(a, 'kdc_preauth', { sc: sc.principalText, code: code });
    else log(a, 'kdc_error', { sc: sc.principalText, code: code });
    if (preauthRequired) {
      const key = preauthKey(err, c.keys);
      if (key) return asRequest(a, sc, key);
    } else if (code === KRB_AP_ERR_SKEW && !sc.asSkewAdopted) {
      sc.asSkewAdopted = true;
      // From the KDC's address and port: a board without a clock starts in 1970, so no bound.
      // A KRB-ERROR is not authenticated, so the offset holds only for the retry: asEnd keeps
      // it only when an AS-REP sealed in our key (and nonce) confirms the KDC's time.
      adoptSkew(a, err, 1 / 0);
      return asRequest(a, sc, c.keys[0]);
    }
    return asEnd(a, sc, null, 'kdc_error_' + code);
  }
  if (ch === CH_SIG) {
    // ---------------------------------------------------------- protected signaling
    if (!(typeof BOARD_SIGNALING === 'undefined' || BOARD_SIGNALING)) return D_ESP_NO_SA;
    const spi = espPeekSpi(data);
    let sc: ScState | null = null;
    for (const s of a.scs) if (s.sa && s.sa.ctaSpi === spi) sc = s;
    if (!sc || !sc.sa) return D_ESP_NO_SA;
    if (!fromSc(sc, address)) return D_WRONG_ADDRESS;
    const sa = sc.sa;
    if (platformNow(a) >= sa.expiresMs) return D_ESP_NO_SA;
    const replay = sa.replayWindow!;
    if (data.length < 8 || !replay.check(readU32(data, 4))) return D_ESP_REPLAY;
    const backend = a.cryptoBackend;
    const keys = sa.keys;
    const nullEncryption = sa.chosenSuite.enc === 0x0b;
    let opened;
    try {
      opened = espOpen(backend, { encKey: nullEncryption ? null : keys.encScToCta, authKey: keys.authScToCta }, data);
    } catch (e) {
      return e instanceof CryptoError ? D_ESP_ICV : D_ESP_MALFORMED;
    }
    if (!replay.update(opened.seq)) return D_ESP_REPLAY;
    a.counterValues[C_SIGNALING_RECEIVED]++;
    let response: string;
    try {
      const cmd = parseNcsCommand(toAscii(opened.payload));
      response = buildNcsResponse(cmd.txid, 200, 'OK');
      log(a, 'ncs', { sc: sc.principalText, verb: cmd.verb, txid: cmd.txid });
    } catch (e) {
      return D_ESP_MALFORMED;
    }
    sa.lastSeqOut++;
    const out = espSeal(backend, { spi: sa.scSpi, seq: sa.lastSeqOut, encKey: nullEncryption ? null : keys.encCtaToSc, authKey: keys.authCtaToSc }, fromAscii(response), NH_NONE);
    a.counterValues[C_SIGNALING_ANSWERED]++;
    return send(a, CH_SIG, out, address, port);
  }
  if (ch !== CH_KM) return;
  // ------------------------------------------------------------ key management
  const len = data.length;
  if (len < 3 || len > MAX_DATAGRAM || data[2] >> 4 !== PKTC_MAJOR) return D_MALFORMED;
  const kmmid = data[0];
  if (kmmid === KM_AP_REPLY || kmmid === KM_ERROR_REPLY) {
    // AP Reply or Error Reply (inline here: one call frame less), for the pending session it
    // answers: the AP Reply's encrypted part must decrypt under the slot's ticket and echo
    // its authenticator time; the KRB-ERROR must name the slot's SC (and echo the time when
    // it carries one). A byte-identical repeat of the last AP Reply (same HMAC) gets the
    // same SA Recovered again (ours was lost).
    const t = a.table;
    const backend = a.cryptoBackend;
    let slot = -1;
    let decodedReply = null;
    let part: EncApRepPart | null = null;
    let err: KrbError | null = null;
    if (t.anyIn(S_AP_REQ_SENT)) {
      let rep = null;
      if (kmmid === KM_AP_REPLY) {
        decodedReply = decodeApReply(data);
        if (decodedReply.doi !== DOI_IPSEC) return D_UNSUPPORTED_DOI;
        rep = krbDecode(decodedReply.apRep, AP_REP, KRB_AP_REP, 'AP-REP') as ApRep;
        // The HMAC is checked over `data` itself: the decoder's copies are dropped now.
        decodedReply.apRep = decodedReply.signed = null as unknown as Uint8Array;
      } else err = krbDecode(decodeErrorReply(data).krbError, KRB_ERROR_TYPE, KRB_ERROR, 'KRB-ERROR');
      for (let j = 0; j < t.n && slot < 0; j++) {
        if (t.state(j) !== S_AP_REQ_SENT) continue;
        const slotSc = a.scs[t.get(j, F_SC)];
        if (!fromSc(slotSc, address, port)) continue;
        if (rep) {
          const tk = t.tkt[j] as TicketEntry;
          if (!tk || rep.encPart.etype !== tk.etype) continue;
          let repPart;
          try {
            repPart = krbDecode(decrypt(backend, tk.etype, tk.key, KU_AP_REP_ENCPART, rep.encPart.cipher), ENC_AP_REP_PART, APP_ENC_AP_REP_PART, 'EncAPRepPart') as EncApRepPart;
          } catch (e) {
            continue;
          }
          if (floor(repPart.ctime / 1000) === t.get(j, F_CTIME) && repPart.cusec === t.get(j, F_CUSEC)) {
            slot = j;
            part = repPart;
          }
          repPart = null;
        } else if (
          // An error counts only for the exchange whose authenticator it echoes (ctime and cusec, as
          // Kerberos clients match a KRB-ERROR): one without them, or for another time, is ignored.
          principalNameEquals(slotSc.scPrincipalName, (err as KrbError).sname) &&
          floor(((err as KrbError).ctime as number) / 1000) === t.get(j, F_CTIME) &&
          (err as KrbError).cusec === t.get(j, F_CUSEC)
        )
          slot = j;
      }
      rep = null;
    }
    if (slot < 0) {
      if (kmmid !== KM_AP_REPLY) return D_NO_PENDING;
      // A repeated AP Reply for the SA just established: our SA Recovered was lost.
      if (data.length >= HMAC_LEN + 3) {
        const hmacAt = data.length - HMAC_LEN;
        for (const candidate of a.scs) {
          const hmac = candidate.establishedHmac;
          if (!candidate.saRecoveredMsg || !hmac || !fromSc(candidate, address, port)) continue;
          // Constant-time compare in place (no allocation for a dropped datagram).
          let diff = 0;
          for (let x = 0; x < HMAC_LEN; x++) diff |= hmac[x] ^ data[hmacAt + x];
          if (diff === 0) {
            send(a, CH_KM, candidate.saRecoveredMsg, candidate.replyAddress || address, candidate.lp);
            a.counterValues[C_SA_RECOVERED_SENT]++;
            return;
          }
        }
      }
      // Decoded (a session was pending) but matched none: counted as both.
      if (!decodedReply) return D_NO_PENDING;
      a.counterValues[N_COUNTERS + D_NO_PENDING]++;
      return D_BAD_AP_REP;
    }
    const replySc = a.scs[t.get(slot, F_SC)];
    if (err) {
      a.counterValues[C_KRB_ERRORS]++;
      const code = err.errorCode;
      const flags = t.get(slot, F_FLAGS);
      log(a, 'krb_error', { sc: replySc.principalText, code: code });
      // Skew: adopted once per exchange, by at most a day, only to retry it; kept if the retry's
      // AP Reply (authenticated) arrives, undone if the exchange aborts (abort()).
      if (code === KRB_AP_ERR_SKEW && !(flags & FL_SKEW_ADOPTED) && adoptSkew(a, err, 86400000)) {
        // A fresh authenticator for the same slot (nonce, kind and flags kept).
        apRequest(a, slot, replySc, t.tkt[slot] as TicketEntry);
        t.set(slot, F_FLAGS, flags | FL_SKEW_ADOPTED);
        return;
      }
      if (code === KRB_AP_ERR_TKT_EXPIRED && !(flags & FL_TKT_REFRESHED)) {
        t.set(slot, F_FLAGS, flags | FL_TKT_REFRESHED);
        if (replySc.ticket === t.tkt[slot]) replySc.ticket = null;
        a.counterValues[C_TICKET_REFRESHES]++;
        delete t.req[slot];
        delete t.tkt[slot];
        return apRequest(a, slot, replySc, null);
      }
      return abort(a, slot, 'krb_error_' + code);
    }
    let apReply = decodedReply as ReturnType<typeof decodeApReply>;
    const subkey = (part as EncApRepPart).subkey;
    part = null;
    if (!subkey || !subkey.keyvalue || subkey.keyvalue.length < 16) return D_NO_SUBKEY;
    const signedLen = data.length - HMAC_LEN;
    if (!verifyHmac(backend, usageHmacKey(backend, subkey.keytype, subkey.keyvalue, U_AP_REPLY), data.subarray(0, signedLen), data.subarray(signedLen))) return D_BAD_HMAC;
    const suite = apReply.ciphersuite;
    let offered = null;
    for (let j = 0; j < a.offeredSuites.length; j++) if (a.offeredSuites[j].auth === suite.auth && a.offeredSuites[j].enc === suite.enc) offered = a.offeredSuites[j];
    if (!offered) return D_BAD_CIPHERSUITE;
    const now = platformNow(a);
    const lifetimeSec = apReply.saLifetime;
    const graceSec = apReply.gracePeriod;
    const sa: Sa = {
      ctaSpi: t.get(slot, F_SPI),
      scSpi: (apReply.appData as IpsecAppData).spi,
      keys: null as unknown as SaKeys,
      chosenSuite: offered,
      establishedMs: now,
      expiresMs: now + lifetimeSec * 1000,
      lifetimeSeconds: lifetimeSec,
      graceSeconds: graceSec,
      replayWindow: typeof BOARD_SIGNALING === 'undefined' || BOARD_SIGNALING ? new ReplayWindow() : null,
      lastSeqOut: 0,
    };
    const replyNonce = t.get(slot, F_NONCE);
    const toAddress = t.addr[slot] || replySc.replyAddress;
    const toPort = t.addr[slot] ? t.get(slot, F_PORT) : replySc.lp;
    // The SA Recovered (if asked for) is built first, then the decoded message is dropped:
    // it is not live while the SA keys are derived.
    const saRecovered = apReply.ackRequired && toAddress !== null ? encodeSaRecovered(backend, usageHmacKey(backend, subkey.keytype, subkey.keyvalue, U_SA_RECOVERED), { kmmid: KM_SA_RECOVERED, doi: DOI_IPSEC }, apReply.hmac) : null;
    replySc.establishedHmac = apReply.hmac;
    decodedReply = apReply = null as unknown as ReturnType<typeof decodeApReply>;
    sa.keys = deriveSaKeys(backend, subkey.keyvalue, sa.ctaSpi, sa.scSpi);
    replySc.sa = sa;
    replySc.acceptedTicket = t.tkt[slot] as TicketEntry;
    replySc.state = 'established';
    replySc.saRecoveredMsg = saRecovered;
    replySc.clientBackoffMs = 0;
    // The client starts its own session half-way through the grace period if the SC has not re-keyed.
    const graceCapped = graceSec < lifetimeSec ? graceSec : lifetimeSec;
    replySc.clientInitiateAt = now + (lifetimeSec - graceCapped) * 1000 + floor((graceCapped * 1000) / 2);
    t.free(slot);
    a.counterValues[C_SESSIONS_ESTABLISHED]++;
    log(a, 'established', { sc: replySc.principalText, nonce: replyNonce, ctaSpi: sa.ctaSpi, scSpi: sa.scSpi, lifetime: lifetimeSec });
    if (saRecovered) {
      a.counterValues[C_SA_RECOVERED_SENT]++;
      send(a, CH_KM, saRecovered, toAddress as string, toPort);
    }
    return;
  }
  if (kmmid !== KM_WAKE_UP && kmmid !== KM_REKEY) return kmmid === KM_AP_REQUEST || kmmid === KM_SA_RECOVERED ? D_UNEXPECTED : D_MALFORMED;
  if (len < 9) return D_MALFORMED;
  const nonce = readU32(data, 3);
  if (nonce === 0) return D_NONCE_ZERO;
  // Principal: from offset 7 to the first NUL (a Wake Up ends with it).
  let end = -1;
  const limit = len < 7 + 257 ? len : 7 + 257;
  for (let i = 7; i < limit && end < 0; i++) if (data[i] === 0) end = i;
  if (end < 8) return D_MALFORMED;
  // The SC whose principal equals data[7, end) (its chars as bytes, compared in place: no allocation).
  let sc: ScState | null = null;
  for (const s of a.scs) {
    const p = s.principalText;
    let j = 0;
    if (p.length === end - 7) while (j < p.length && (p.charCodeAt(j) & 0xff) === data[7 + j]) j++;
    if (j === end - 7) {
      sc = s;
      break;
    }
  }
  if (!sc) return D_UNKNOWN_SC;
  if (!fromSc(sc, address, port)) return D_WRONG_ADDRESS;
  if (data[1] !== DOI_IPSEC) return D_UNSUPPORTED_DOI;
  // At most 4 triggers per second per SC get past here (an AP Request, or a Rekey's HMAC, each):
  // the work and the reply bytes a flood can cause are bounded, the rest counted.
  // A clock set back (set-time, an adopted skew) starts a new window too: otherwise the
  // window would not restart until the clock passed its start again.
  const now = platformNow(a);
  const sinceWindowStart = now - sc.triggerWindowStart;
  if (!(sinceWindowStart >= 0 && sinceWindowStart < 1000)) {
    sc.triggerWindowStart = now;
    sc.triggerCount = 0;
  }
  if (kmmid === KM_WAKE_UP) {
    if (end !== len - 1) return D_MALFORMED;
    // The SC never repeats a nonce: the same one again is the network duplicating
    // (or an attacker replaying) a Wake Up already answered. Answering it would
    // replace the pending session or start one the SC will disregard.
    if (nonce === sc.lastWakeUpNonce) return D_DUPLICATE;
    // An (unauthenticated) Wake Up never displaces an exchange of this SC's that awaits its
    // AP Reply: claim 16, the CTA awaits the reply and aborts only when its timer runs out.
    const pending = a.table.findBySc(sc.scIndex);
    if (pending >= 0 && a.table.state(pending) === S_AP_REQ_SENT && a.table.get(pending, F_KIND) !== K_CLIENT) return D_BUSY;
    if (++sc.triggerCount > 4) return D_RATE_LIMITED;
    sc.lastWakeUpNonce = nonce;
    a.counterValues[C_WAKE_UPS]++;
    return open(a, sc, nonce, K_WAKE, address, port);
  }
  // Rekey: HMAC under the ticket of the last exchange the SC accepted, fresh timestamp.
  const accepted = sc.acceptedTicket;
  if (!accepted) return D_NO_SESSION;
  if (len < HMAC_LEN + 30) return D_MALFORMED;
  if (++sc.triggerCount > 4) return D_RATE_LIMITED;
  const rekey = decodeRekey(data);
  const backend = a.cryptoBackend;
  if (!accepted.hmacRekey) accepted.hmacRekey = usageHmacKey(backend, accepted.etype, accepted.key, U_REKEY);
  if (!verifyHmac(backend, accepted.hmacRekey, rekey.signed, rekey.hmac)) return D_BAD_HMAC;
  const skew = a.agentConfig.timers.skewSec * 1000;
  const drift = rekey.timestamp - (platformNow(a) + a.offsetMs);
  if (drift > skew || drift < -skew || rekey.timestamp <= sc.lastRekeyTime) return D_STALE_REKEY;
  sc.lastRekeyTime = rekey.timestamp;
  a.counterValues[C_REKEYS_ACCEPTED]++;
  log(a, 'rekey', { sc: sc.principalText, nonce: rekey.serverNonce });
  // No KDC trip: keep a usable cached ticket (a prefetch may have refreshed it since
  // the SC's last accepted exchange), else fall back to the ticket the SC accepted last.
  const cached = sc.ticket;
  if (!cached || !usable(a, cached)) sc.ticket = usable(a, accepted) ? accepted : null;
  return open(a, sc, rekey.serverNonce, K_REKEY, address, port);
}

// ------------------------------------------------------------ sessions

/** Opens (or replaces) the pending session for `sc` (a Wake Up's, a Rekey's, or client-initiated). */
function open(a: CtaAgent, sc: ScState, nonce: number, kind: number, address: string | null, port: number): Drop {
  const t = a.table;
  let i = t.findBySc(sc.scIndex);
  if (i >= 0) {
    // A client-initiated attempt never displaces a server-triggered one.
    if (kind === K_CLIENT && t.get(i, F_KIND) !== K_CLIENT) return;
    a.counterValues[C_REPLACED]++;
    t.reset(i);
  } else {
    i = t.alloc();
    if (i < 0) return D_TABLE_FULL;
  }
  t.set(i, F_STATE, S_TICKET);
  t.set(i, F_SC, sc.scIndex);
  t.set(i, F_NONCE, nonce);
  t.set(i, F_KIND, kind);
  t.set(i, F_STARTED, platformNow(a));
  if (typeof BOARD_UDP === 'undefined' || BOARD_UDP) sc.kmHeardAtOpen = a.kmHeard;
  t.set(i, F_PORT, port);
  t.addr[i] = address;
  if (address !== null && address !== SERIAL_ADDRESS) {
    sc.replyAddress = address;
    sc.lp = port;
  }
  const tk = sc.ticket;
  apRequest(a, i, sc, tk && usable(a, tk) ? tk : null);
}

/**
 * Builds the AP Request (fresh authenticator) for slot i from ticket `tk` and sends it;
 * without a ticket the slot waits for the KDC: an AS exchange (started unless one is in
 * flight) has this long.
 */
function apRequest(a: CtaAgent, i: number, sc: ScState, tk: TicketEntry | null): void {
  const t = a.table;
  const c = a.agentConfig;
  const timers = c.timers;
  if (!tk) {
    t.set(i, F_STATE, S_TICKET);
    t.set(i, F_DEADLINE, platformNow(a) + timers.kdcTimeoutMs * (timers.kdcRetries + 1) * 3 + 1000);
    sc.state = 'ticket';
    return asRequest(a, sc, null);
  }
  const backend = a.cryptoBackend;
  const nowMs = platformNow(a) + a.offsetMs;
  let authUsec = floor(nowMs / 1000) * 1000000 + (nowMs % 1000) * 1000 + (backend.randomBytes(1)[0] & 0x3f);
  if (authUsec <= a.lastAuthUsec) authUsec = a.lastAuthUsec + 1;
  a.lastAuthUsec = authUsec;
  const ctimeS = floor(authUsec / 1000000);
  const cusec = authUsec - ctimeS * 1000000;
  // Nested: the authenticator and its ciphertext are garbage once the AP-REQ is built (and apReq once the message is).
  let apReq: Uint8Array | null = krbEncode(AP_REQ, {
    apOptions: AP_OPT_MUTUAL_REQUIRED,
    ticket: tk.ticket,
    authenticator: {
      etype: tk.etype,
      cipher: encrypt(backend, tk.etype, tk.key, KU_AP_REQ_AUTH, krbEncode(AUTHENTICATOR, { crealm: c.realm, cname: a.clientPrincipal, cusec: cusec, ctime: ctimeS * 1000 }, APP_AUTHENTICATOR)),
    },
  }, KRB_AP_REQ);
  let spi = c.spi === undefined ? 0 : c.spi;
  while (spi < 256) spi = readU32(backend.randomBytes(4), 0);
  t.req[i] = encodeApRequest(backend, tk.hmacReq, {
    kmmid: KM_AP_REQUEST,
    doi: DOI_IPSEC,
    apReq: apReq as Uint8Array,
    serverNonce: t.get(i, F_NONCE),
    appData: { spi: spi },
    ciphersuites: a.offeredSuites,
    reestablish: sc.sa !== null,
  });
  apReq = null;
  const p = platformNow(a);
  t.tkt[i] = tk;
  t.set(i, F_STATE, S_AP_REQ_SENT);
  t.set(i, F_CTIME, ctimeS);
  t.set(i, F_CUSEC, cusec);
  t.set(i, F_SPI, spi);
  t.set(i, F_STARTED, p);
  sc.state = 'ap_req_sent';
  a.counterValues[C_AP_REQUESTS_SENT]++;
  transmit(a, i, sc, 0, p);
}

/**
 * Sends slot i's AP Request (attempt r: 0 = first, then retransmissions of the same
 * bytes) to its reply address and sets the next deadline: client-initiated, the
 * jittered unsolicitedBaseMs doubled per attempt; solicited, retransmitMs[r] after
 * the first send, then abortMs.
 */
function transmit(a: CtaAgent, i: number, sc: ScState, r: number, now: number): void {
  const t = a.table;
  const timers = a.agentConfig.timers;
  t.set(i, F_RETRIES, r);
  t.set(
    i,
    F_DEADLINE,
    t.get(i, F_KIND) === K_CLIENT
      ? now + floor(timers.unsolicitedBaseMs * (1 << r) * jitter(a))
      : t.get(i, F_STARTED) + (r < timers.retransmitMs.length ? timers.retransmitMs[r] : timers.abortMs),
  );
  const msg = t.req[i];
  const toAddress = t.addr[i] || sc.replyAddress;
  if (msg && toAddress !== null) send(a, CH_KM, msg, toAddress, t.addr[i] ? t.get(i, F_PORT) : sc.lp);
}

function abort(a: CtaAgent, i: number, why: string): void {
  const t = a.table;
  const sc = a.scs[t.get(i, F_SC)];
  const kind = t.get(i, F_KIND);
  const nonce = t.get(i, F_NONCE);
  const tries = t.get(i, F_RETRIES);
  if (t.get(i, F_FLAGS) & FL_SKEW_ADOPTED) {
    // The skew adopted for this exchange was never confirmed by an AP Reply: undo it.
    a.offsetMs = a.offsetBeforeSkew;
    a.lastAuthUsec = 0;
  }
  t.free(i);
  a.counterValues[C_SESSIONS_ABORTED]++;
  // A failed re-key leaves the SA it would have replaced in force (a Wake Up that
  // arrives late, after its exchange completed, ends here: the SC disregards the
  // nonce it already consumed). The state says what holds; the counter and the log
  // say what failed.
  sc.state = sc.sa ? 'established' : 'aborted';
  log(a, 'abort', { sc: sc.principalText, nonce: nonce, why: why });
  if (kind === K_CLIENT && sc.sa) {
    // Keep trying (exponential backoff, capped) while the old SA is still up.
    let backoff = sc.clientBackoffMs ? sc.clientBackoffMs * 2 : a.agentConfig.timers.unsolicitedBaseMs * (2 << tries);
    if (backoff > 300000) backoff = 300000;
    sc.clientBackoffMs = backoff;
    sc.clientInitiateAt = platformNow(a) + floor(backoff * jitter(a));
  }
}

/**
 * UDP: the answer awaited on channel ch (key management: an AP Reply; KDC: an AS-REP) did not
 * come through all retransmissions, and nothing at all arrived on that socket since the request
 * was first sent (the socket's datagram count then, kept in sc). A network driver can wedge that way (the Espruino WiFi's
 * JavaScript ESP8266 driver after a burst; any dgram socket that stops delivering), and so can a
 * peer that is simply silent: the two look alike from here. The socket is closed and bound again,
 * counted and logged; the caller then ends its exchange as it would anyway (the protocol's timers
 * are unchanged), and the next exchange (the SC's next Wake Up, the next prefetch) runs on the new
 * socket. Nothing done on a transport without sockets (serial) or when the socket heard something.
 * Never throws (a failed bind is counted as an internal error).
 */
function quietSocket(a: CtaAgent, ch: number, sc: ScState): void {
  const tr = a.transport;
  if (!tr || !tr.reopen || (ch === CH_KDC ? a.kdcHeard !== sc.kdcHeardAtAsRequest : a.kmHeard !== sc.kmHeardAtOpen)) return;
  a.counterValues[C_SOCKETS_RECREATED]++;
  log(a, 'socket_recreated', { sc: sc.principalText, channel: ch });
  try {
    tr.reopen(ch);
  } catch (e) {
    caught(a, e, 'reopen');
  }
}

// ------------------------------------------------------------ KDC

/** Sends an AS-REQ for `sc` (pre-authenticated with `pa`); pa null starts the AS exchange (unless one is in flight). */
function asRequest(a: CtaAgent, sc: ScState, pa: CtaKey | null): void {
  if (pa === null) {
    if (sc.asInFlight) return;
    sc.asInFlight = true;
    sc.asSkewAdopted = false;
    a.counterValues[C_AS_EXCHANGES]++;
  }
  const c = a.agentConfig;
  sc.asRequestNonce = readU32(a.cryptoBackend.randomBytes(4), 0) & 0x7fffffff;
  sc.asRequestBytes = buildAsReq(a.cryptoBackend, a.clientPrincipal, c.realm, sc.scPrincipalName, c.keys, sc.asRequestNonce, platformNow(a) + a.offsetMs, pa);
  sc.asRetries = 0;
  if (typeof BOARD_UDP === 'undefined' || BOARD_UDP) sc.kdcHeardAtAsRequest = a.kdcHeard;
  sc.asDeadline = platformNow(a) + c.timers.kdcTimeoutMs;
  sc.asPreauthenticated = pa !== null;
  a.counterValues[C_AS_REQUESTS_SENT]++;
  send(a, CH_KDC, sc.asRequestBytes, c.kdc.address, c.kdc.port);
}

/**
 * The AS exchange for `sc` ended, with a ticket (the slots waiting for it send their
 * AP Request) or without (they abort with `why`); with prefetchTicket the next fetch is
 * scheduled either way. A ticket is refreshed ahead of the moment it stops being usable
 * (endtime - ticketRefreshMarginSec) by a jittered lead of half the margin (at least
 * 10 s), but never earlier than half-way there; a ticket that is (nearly) unusable
 * already is left to the on-demand path, so a KDC issuing short tickets cannot make
 * the CTA loop. A failure is retried after prefetchRetryMs doubling prefetchRetries
 * times, then every prefetchPeriodSec (jittered).
 */
function asEnd(a: CtaAgent, sc: ScState, tk: TicketEntry | null, why: string): void {
  sc.asInFlight = false;
  sc.asRequestBytes = null;
  const timers = a.agentConfig.timers;
  if (sc.asSkewAdopted) {
    // The clock moved on an unauthenticated KRB_AP_ERR_SKEW: the AS-REP's authtime (the KDC's
    // clock, authenticated) now sets it; with no AS-REP the clock goes back.
    sc.asSkewAdopted = false;
    if (tk) a.offsetMs = floor(tk.authtime - platformNow(a));
    else a.offsetMs = a.offsetBeforeSkew;
    a.lastAuthUsec = 0;
  }
  if (tk) {
    sc.ticket = tk;
    a.counterValues[C_TICKETS_CACHED]++;
    log(a, 'ticket', { sc: sc.principalText, endtime: tk.endtime });
  } else a.counterValues[C_KDC_FAILURES]++;
  if (a.agentConfig.prefetchTicket) {
    if (tk) {
      sc.prefetchFailures = 0;
      const margin = timers.ticketRefreshMarginSec * 1000;
      const left = tk.endtime - margin - (platformNow(a) + a.offsetMs);
      sc.prefetchAt = 0;
      if (left >= 2000) {
        let lead = floor((margin > 20000 ? margin / 2 : 10000) * jitter(a));
        if (lead > left / 2) lead = floor(left / 2);
        sc.prefetchAt = platformNow(a) + left - lead;
      }
    } else {
      const failures = (sc.prefetchFailures = (sc.prefetchFailures || 0) + 1);
      sc.prefetchAt = platformNow(a) + floor((failures <= timers.prefetchRetries ? timers.prefetchRetryMs * (1 << (failures - 1)) : timers.prefetchPeriodSec * 1000) * jitter(a));
    }
  }
  // The slots that waited for this ticket go on from a 0 ms timer, not from here: here the
  // callers' frames still hold the KDC's reply (the datagram and its decoded tree), which the
  // AP Request's crypto would add to. Measured (Puck.js features, x86-64 build): the first
  // exchange's peak 2,121 -> 2,044 variables, below a later exchange's.
  // As a datagram's handling does, it ends with the timers re-armed.
  a.platform.setTimeout(() => {
    if (!a.running) return;
    const t = a.table;
    try {
      for (let i = 0; i < t.n; i++) {
        if (t.state(i) === S_TICKET && t.get(i, F_SC) === sc.scIndex) {
          if (tk) apRequest(a, i, sc, tk);
          else abort(a, i, why);
        }
      }
    } catch (e) {
      caught(a, e, 'ticket');
    }
    arm(a);
  }, 0);
}

// ------------------------------------------------------------ timers

/** Arms the one platform timer for the earliest pending deadline. */
function arm(a: CtaAgent): void {
  if (!a.running || a.inTick) return;
  let earliest = a.table.earliest();
  for (const sc of a.scs) {
    if (sc.asInFlight && (earliest < 0 || sc.asDeadline < earliest)) earliest = sc.asDeadline;
    if (sc.clientInitiateAt && (earliest < 0 || sc.clientInitiateAt < earliest)) earliest = sc.clientInitiateAt;
    if (sc.prefetchAt && (earliest < 0 || sc.prefetchAt < earliest)) earliest = sc.prefetchAt;
    if (sc.sa && (earliest < 0 || sc.sa.expiresMs < earliest)) earliest = sc.sa.expiresMs;
  }
  if (earliest === a.timerDeadline) return;
  if (a.timerHandle !== null) a.platform.clearTimeout(a.timerHandle);
  a.timerHandle = null;
  a.timerDeadline = earliest;
  if (earliest < 0) return;
  let delay = earliest - platformNow(a);
  if (delay < 0) delay = 0;
  if (delay > 3600000) delay = 3600000; // at most an hour per platform timer
  a.timerHandle = a.platform.setTimeout(() => {
    a.timerHandle = null;
    a.timerDeadline = -1;
    tick(a);
  }, delay);
}

function tick(a: CtaAgent): void {
  if (!a.running) return;
  a.inTick = true;
  try {
    const now = platformNow(a);
    const t = a.table;
    const timers = a.agentConfig.timers;
    // Slot deadlines: a slot waiting for the KDC aborts; an AP Request is retransmitted
    // (same bytes) until its retries are spent, then aborts.
    for (let i = 0; i < t.n; i++) {
      const state = t.state(i);
      if (state === S_FREE || t.get(i, F_DEADLINE) > now) continue;
      const retries = t.get(i, F_RETRIES);
      if (state === S_TICKET) abort(a, i, 'kdc');
      else if (retries >= (t.get(i, F_KIND) === K_CLIENT ? timers.unsolicitedRetries : timers.retransmitMs.length)) {
        if (typeof BOARD_UDP === 'undefined' || BOARD_UDP) quietSocket(a, CH_KM, a.scs[t.get(i, F_SC)]);
        abort(a, i, 'timeout');
      } else {
        a.counterValues[C_RETRANSMITS]++;
        transmit(a, i, a.scs[t.get(i, F_SC)], retries + 1, now);
      }
    }
    for (const sc of a.scs) {
      if (sc.asInFlight && sc.asDeadline <= now && sc.asRequestBytes) {
        if (sc.asRetries >= timers.kdcRetries) {
          if (typeof BOARD_UDP === 'undefined' || BOARD_UDP) quietSocket(a, CH_KDC, sc);
          asEnd(a, sc, null, 'kdc_timeout');
        } else {
          const n = ++sc.asRetries;
          sc.asDeadline = now + timers.kdcTimeoutMs * (1 << n);
          a.counterValues[C_KDC_RETRANSMITS]++;
          send(a, CH_KDC, sc.asRequestBytes, a.agentConfig.kdc.address, a.agentConfig.kdc.port);
        }
      }
      if (sc.prefetchAt && sc.prefetchAt <= now) {
        sc.prefetchAt = 0;
        // An exchange in flight (a Wake Up's) reschedules on its outcome.
        if (!sc.asInFlight) {
          a.counterValues[C_TICKET_PREFETCHES]++;
          asRequest(a, sc, null);
        }
      }
      if (sc.sa && sc.sa.expiresMs <= now) {
        sc.sa = null;
        a.counterValues[C_SA_EXPIRED]++;
        if (sc.state === 'established') sc.state = 'idle';
        log(a, 'sa_expired', { sc: sc.principalText });
      }
      if (sc.clientInitiateAt && sc.clientInitiateAt <= now) {
        sc.clientInitiateAt = 0;
        if (t.findBySc(sc.scIndex) < 0) {
          if (sc.replyAddress === null) log(a, 'no_address', { sc: sc.principalText });
          else {
            a.counterValues[C_CLIENT_INITIATED]++;
            if (open(a, sc, 0, K_CLIENT, null, 0) === D_TABLE_FULL) a.counterValues[N_COUNTERS + D_TABLE_FULL]++;
          }
        }
      }
    }
  } catch (e) {
    caught(a, e, 'tick');
  }
  a.inTick = false;
  arm(a);
}
