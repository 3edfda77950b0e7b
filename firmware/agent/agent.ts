// The CTA agent: the client side of server-initiated Kerberized key management
// (PROTOCOL.md; claims 2-6 and 12-17 of SEED-CLAIMS.md). Written inside the
// Espruino subset (ESPRUINO.md): it runs on the board, in the host emulator and
// in the unit tests unchanged.
//
// Shape:
//  - one receive path per channel (key management, KDC, signaling), each wrapped
//    so no input can throw out of the agent; every drop is counted by reason;
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

import type { Platform } from '../platform/platform.ts';
import type { CtaConfig, CtaKey } from '../config.ts';
import { readU32, fromAscii, toAscii } from '../proto/bytes.ts';
import { isDecodeError, isCryptoError } from '../proto/errors.ts';
import { encrypt, decrypt, usageHmacKey } from '../proto/crypto/index.ts';
import {
  KMMID,
  DOI,
  VERSION,
  USAGE,
  HMAC_LEN,
  MAX_DATAGRAM,
  encodeApRequest,
  encodeSaRecovered,
  decodeApReply,
  decodeRekey,
  decodeErrorReply,
  verifyHmac,
} from '../proto/pktc.ts';
import type { Ciphersuite, IpsecAppData } from '../proto/pktc.ts';
import {
  encodeApReq,
  encodeAuthenticator,
  decodeApRep,
  decodeEncApRepPart,
  decodeAsRep,
  decodeKrbError,
  messageType,
  parsePrincipal,
  principalNameEquals,
  AP_OPT_MUTUAL_REQUIRED,
  KU_AP_REQ_AUTH,
  KU_AP_REP_ENCPART,
  KRB_AS_REP,
  KRB_ERROR,
  KDC_ERR_PREAUTH_REQUIRED,
  KRB_AP_ERR_SKEW,
  KRB_AP_ERR_TKT_EXPIRED,
} from '../proto/krb5.ts';
import type { PrincipalName, KrbError } from '../proto/krb5.ts';
import { deriveSaKeys } from '../proto/sa.ts';
import type { SaKeys } from '../proto/sa.ts';
import { espSeal, espOpen, espPeekSpi, ReplayWindow, parseNcsCommand, buildNcsResponse, ESP_NEXT_HEADER } from '../proto/esp.ts';
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
  dropReasons,
  counterNames,
} from './counters.ts';

export { dropReasons } from './counters.ts';

// Build-time board facts (host-tools/build/build.ts boardDefines). Tested inline as
// `(typeof BOARD_X === 'undefined' || BOARD_X)`: esbuild folds that at each use and
// drops the code a board cannot use (a module-level const would not fold in a module
// with imports); outside a bundle (host tools, unit tests) everything is kept.
declare const BOARD_UDP: boolean;

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

type Sa = {
  ctaSpi: number;
  scSpi: number;
  keys: SaKeys;
  ciphersuite: Ciphersuite;
  establishedAt: number;
  expiresAt: number;
  lifetimeSec: number;
  graceSec: number;
  replay: ReplayWindow;
  seqOut: number;
};

type ScState = {
  idx: number;
  principal: string;
  /** ASCII principal bytes (no NUL) for in-place comparison. */
  pBytes: Uint8Array;
  name: PrincipalName;
  address: string | null;
  port: number;
  /** Where to send client-initiated AP Requests (configured, else last heard). */
  lAddr: string | null;
  lPort: number;
  state: string;
  ticket: TicketEntry | null;
  /** Ticket of the last AP exchange the SC accepted (Rekey HMAC key). */
  accepted: TicketEntry | null;
  sa: Sa | null;
  /** Timestamp of the last Rekey accepted. */
  rkTs: number;
  /** Nonce of the last Wake Up accepted (0 = none). */
  wkN: number;
  /** HMAC of the AP Reply that established `sa`, and the SA Recovered sent for it. */
  repH: Uint8Array | null;
  srMsg: Uint8Array | null;
  /** AS exchange in flight. */
  asActive: boolean;
  asNonce: number;
  asReq: Uint8Array | null;
  asTries: number;
  /** Deadline of the AS request in flight; pre-authenticated?; KRB_AP_ERR_SKEW adopted once? */
  asDl: number;
  asPa: boolean;
  asSkew: boolean;
  /** Next client-initiated attempt (platform ms), 0 = none. */
  ciAt: number;
  /** Backoff (ms) of the next client-initiated retry. */
  ciBo: number;
  /** Next ticket prefetch / refresh (platform ms), 0 = none; failed prefetches in a row. */
  tkAt: number;
  tkFails: number;
};

function normHost(a: string): string {
  if (a.indexOf('::ffff:') === 0) a = a.substr(7);
  return a === 'localhost' || a === '::1' ? '127.0.0.1' : a;
}

export class CtaAgent {
  platform: Platform;
  config: CtaConfig;
  /** Counter values (see C_ and D_ above; read them as `counters`). */
  cn: Uint32Array;
  table: SessionTable;
  scs: ScState[];
  running: boolean;
  /** Adjusted clock = platform.now() + offsetMs (set by KRB_AP_ERR_SKEW). */
  offsetMs: number;
  transport: Transport | null;
  cname: PrincipalName;
  suites: Ciphersuite[];
  timer: unknown;
  timerAt: number;
  authUs: number;
  inTick: boolean;

  constructor(platform: Platform, config: CtaConfig) {
    this.platform = platform;
    this.config = config;
    this.cn = new Uint32Array(N_COUNTERS + 21);
    this.table = new SessionTable(config.slots);
    this.running = false;
    this.offsetMs = 0;
    this.transport = null;
    this.timer = null;
    this.timerAt = -1;
    this.authUs = 0;
    this.inTick = false;
    this.cname = clientName(config.principal);
    this.suites = [];
    for (let i = 0; i < config.ciphersuites.length; i++) {
      this.suites.push({ auth: config.ciphersuites[i][0], enc: config.ciphersuites[i][1] });
    }
    this.scs = [];
    for (let i = 0; i < config.scs.length; i++) {
      const c = config.scs[i];
      const p = parsePrincipal(c.principal, config.realm);
      this.scs.push({
        idx: i,
        principal: c.principal,
        pBytes: fromAscii(c.principal),
        name: p.name,
        address: c.address === undefined ? null : c.address,
        port: c.port === undefined ? 1293 : c.port,
        lAddr: c.address === undefined ? null : c.address,
        lPort: c.port === undefined ? 1293 : c.port,
        state: 'idle',
        ticket: null,
        accepted: null,
        sa: null,
        rkTs: 0,
        wkN: 0,
        repH: null,
        srMsg: null,
        asActive: false,
        asNonce: 0,
        asReq: null,
        asTries: 0,
        asDl: 0,
        asPa: false,
        asSkew: false,
        ciAt: 0,
        ciBo: 0,
        tkAt: 0,
        tkFails: 0,
      });
    }
  }

  // ------------------------------------------------------------ lifecycle

  start(): void {
    if (this.running) return;
    this.transport = makeTransport(this.platform, this.config, (ch, data, address, port) => this.receive(ch, data, address, port));
    this.running = true;
    this.platform.log('cta.start', { principal: this.config.principal + '@' + this.config.realm, transport: this.transport.kind, slots: this.table.n, scs: this.scs.length });
    const now = this.pnow();
    for (let i = 0; i < this.scs.length; i++) {
      const sc = this.scs[i];
      if (this.config.clientInitiatedOnBoot) sc.ciAt = now;
      // Spread a fleet that powers up together: 1 .. prefetchDelayMs.
      if (this.config.prefetchTicket) sc.tkAt = now + 1 + Math.floor((this.platform.crypto.randomBytes(1)[0] / 256) * this.config.timers.prefetchDelayMs);
    }
    this.arm();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    if (this.timer !== null) this.platform.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = -1;
    if (this.transport) this.transport.close();
    this.transport = null;
    this.platform.log('cta.stop', {});
  }

  /** Adjusted wall clock (ms) used for Kerberos timestamps and ticket lifetimes. */
  now(): number {
    return this.pnow() + this.offsetMs;
  }

  /** Platform clock in whole ms (Espruino's Date.now() has a fractional part). */
  pnow(): number {
    return Math.floor(this.platform.now());
  }

  // ------------------------------------------------------------ receive

  /** Entry point for every datagram: never throws. */
  receive(ch: number, data: Uint8Array, address: string, port: number): void {
    if (!this.running) return;
    this.cn[C_RX]++;
    try {
      if (ch === CH_KM) this.onKm(data, address, port);
      else if (ch === CH_KDC) this.onKdc(data, address, port);
      else if (ch === CH_SIG) this.onSignaling(data, address, port);
    } catch (e) {
      this.caught(e, 'rx');
    }
    this.arm();
  }

  caught(e: unknown, where: string): void {
    if (isDecodeError(e) || isCryptoError(e)) this.drop(D_MALFORMED);
    else {
      this.drop(D_INTERNAL);
      this.platform.log('cta.error', { where: where, error: String(e && (e as Error).message ? (e as Error).message : e) });
    }
  }

  /** Counts a dropped input; `reason` is a D_ constant. */
  drop(reason: number): void {
    this.cn[N_COUNTERS + reason]++;
  }

  /** The counters by name (a fresh object: AgentCounters, drops by reason). */
  get counters(): AgentCounters {
    const names = counterNames();
    const dn = dropReasons();
    const c: { [k: string]: unknown } = {};
    const drops: { [k: string]: number } = {};
    for (let i = 0; i < dn.length; i++) drops[dn[i]] = this.cn[N_COUNTERS + i];
    for (let i = 0; i < names.length; i++) {
      c[names[i]] = this.cn[i];
      if (i === 1) c.drops = drops;
    }
    return c as AgentCounters;
  }

  send(ch: number, data: Uint8Array, address: string, port: number): void {
    if (!this.transport) return;
    this.cn[C_TX]++;
    this.transport.send(ch, data, address, port);
  }

  /** Is `address` acceptable for SC `sc`? (no configured address, or serial: yes) */
  fromSc(sc: ScState, address: string): boolean {
    // A serial-only board (BOARD_UDP false) never sees an address.
    if ((typeof BOARD_UDP === 'undefined' || BOARD_UDP) && sc.address !== null && address !== SERIAL_ADDRESS) return normHost(sc.address) === normHost(address);
    return true;
  }

  onKm(data: Uint8Array, address: string, port: number): void {
    const n = data.length;
    if (n < 3 || n > MAX_DATAGRAM) return this.drop(D_MALFORMED);
    if (data[2] >> 4 !== VERSION >> 4) return this.drop(D_MALFORMED);
    const k = data[0];
    if (k === KMMID.WAKE_UP || k === KMMID.REKEY) return this.onTrigger(k, data, address, port);
    if (k === KMMID.AP_REPLY) return this.onApReply(data, address);
    if (k === KMMID.ERROR_REPLY) return this.onErrorReply(data, address);
    if (k === KMMID.AP_REQUEST || k === KMMID.SA_RECOVERED) return this.drop(D_UNEXPECTED);
    return this.drop(D_MALFORMED);
  }

  /** Wake Up / Rekey: drop cheaply on the 3-byte header, nonce and principal first. */
  onTrigger(k: number, data: Uint8Array, address: string, port: number): void {
    const n = data.length;
    if (n < 9) return this.drop(D_MALFORMED);
    const nonce = readU32(data, 3);
    if (nonce === 0) return this.drop(D_NONCE_ZERO);
    // Principal: from offset 7 to the first NUL (a Wake Up ends with it).
    let end = -1;
    const lim = n < 7 + 257 ? n : 7 + 257;
    for (let i = 7; i < lim; i++) {
      if (data[i] === 0) {
        end = i;
        break;
      }
    }
    if (end < 8) return this.drop(D_MALFORMED);
    // The SC whose principal equals data[7, end) (ASCII, compared in place: no allocation).
    let sc: ScState | null = null;
    for (let i = 0; i < this.scs.length && !sc; i++) {
      const p = this.scs[i].pBytes;
      let k = 0;
      if (p.length === end - 7) while (k < p.length && p[k] === data[7 + k]) k++;
      if (k === end - 7) sc = this.scs[i];
    }
    if (!sc) return this.drop(D_UNKNOWN_SC);
    if (!this.fromSc(sc, address)) return this.drop(D_WRONG_ADDRESS);
    if (data[1] !== DOI.IPSEC) return this.drop(D_UNSUPPORTED_DOI);
    if (k === KMMID.WAKE_UP) {
      if (end !== n - 1) return this.drop(D_MALFORMED);
      // The SC never repeats a nonce: the same one again is the network duplicating
      // (or an attacker replaying) a Wake Up already answered. Answering it would
      // replace the pending session or start one the SC will disregard.
      if (nonce === sc.wkN) return this.drop(D_DUPLICATE);
      sc.wkN = nonce;
      this.cn[C_WAKE_UPS]++;
      this.openSession(sc, nonce, K_WAKE, address, port);
      return;
    }
    this.onRekey(sc, data, address, port);
  }

  onRekey(sc: ScState, data: Uint8Array, address: string, port: number): void {
    const acc = sc.accepted;
    if (!acc) return this.drop(D_NO_SESSION);
    if (data.length < HMAC_LEN + 30) return this.drop(D_MALFORMED);
    const m = decodeRekey(data);
    if (!acc.hmacRekey) acc.hmacRekey = usageHmacKey(this.platform.crypto, acc.etype, acc.key, USAGE.REKEY);
    if (!verifyHmac(this.platform.crypto, acc.hmacRekey, m.signed, m.hmac)) return this.drop(D_BAD_HMAC);
    const skew = this.config.timers.skewSec * 1000;
    const d = m.timestamp - this.now();
    if (d > skew || d < -skew || m.timestamp <= sc.rkTs) return this.drop(D_STALE_REKEY);
    sc.rkTs = m.timestamp;
    this.cn[C_REKEYS_ACCEPTED]++;
    this.platform.log('cta.rekey', { sc: sc.principal, nonce: m.serverNonce });
    // No KDC trip: keep a usable cached ticket (a prefetch may have refreshed it since
    // the SC's last accepted exchange), else fall back to the ticket the SC accepted last.
    const cur = sc.ticket;
    if (!cur || !this.ticketUsable(cur)) sc.ticket = this.ticketUsable(acc) ? acc : null;
    this.openSession(sc, m.serverNonce, K_REKEY, address, port);
  }

  // ------------------------------------------------------------ sessions

  /** Opens (or replaces) the pending session for `sc`. */
  openSession(sc: ScState, nonce: number, kind: number, address: string | null, port: number): void {
    const t = this.table;
    let i = t.findBySc(sc.idx);
    if (i >= 0) {
      // A client-initiated attempt never displaces a server-triggered one.
      if (kind === K_CLIENT && t.get(i, F_KIND) !== K_CLIENT) return;
      this.cn[C_REPLACED]++;
      t.reset(i);
    } else {
      i = t.alloc();
      if (i < 0) return this.drop(D_TABLE_FULL);
    }
    const now = this.pnow();
    t.set(i, F_STATE, S_TICKET);
    t.set(i, F_SC, sc.idx);
    t.set(i, F_NONCE, nonce);
    t.set(i, F_KIND, kind);
    t.set(i, F_STARTED, now);
    t.set(i, F_PORT, port);
    t.addr[i] = address;
    if (address !== null && address !== SERIAL_ADDRESS) {
      sc.lAddr = address;
      sc.lPort = port;
    }
    const tk = sc.ticket;
    if (tk && this.ticketUsable(tk)) {
      this.sendApRequest(i, sc, tk);
      return;
    }
    this.waitTicket(i, sc);
  }

  /** Slot i waits for the KDC: an AS exchange (started unless one is in flight) has this long. */
  waitTicket(i: number, sc: ScState): void {
    const tm = this.config.timers;
    this.table.set(i, F_STATE, S_TICKET);
    this.table.set(i, F_DEADLINE, this.pnow() + tm.kdcTimeoutMs * (tm.kdcRetries + 1) * 3 + 1000);
    sc.state = 'ticket';
    this.startAs(sc);
  }

  ticketUsable(tk: TicketEntry): boolean {
    return tk.endtime - this.config.timers.ticketRefreshMarginSec * 1000 > this.now();
  }

  /** 0.75 .. 1.25 */
  jitter(): number {
    const r = this.platform.crypto.randomBytes(1)[0];
    return 0.75 + r / 510;
  }

  /** Builds the AP Request (fresh authenticator) for slot i and sends it. */
  sendApRequest(i: number, sc: ScState, tk: TicketEntry): void {
    const b = this.platform.crypto;
    const t = this.table;
    const ms = this.now();
    let us = Math.floor(ms / 1000) * 1000000 + (ms % 1000) * 1000 + (b.randomBytes(1)[0] & 0x3f);
    if (us <= this.authUs) us = this.authUs + 1;
    this.authUs = us;
    const ctimeS = Math.floor(us / 1000000);
    const cusec = us - ctimeS * 1000000;
    const auth = encodeAuthenticator({ crealm: this.config.realm, cname: this.cname, cusec: cusec, ctime: ctimeS * 1000 });
    const apReq = encodeApReq({
      apOptions: AP_OPT_MUTUAL_REQUIRED,
      ticket: tk.ticket,
      authenticator: { etype: tk.etype, cipher: encrypt(b, tk.etype, tk.key, KU_AP_REQ_AUTH, auth) },
    });
    let spi = this.config.spi === undefined ? 0 : this.config.spi;
    while (spi < 256) spi = readU32(b.randomBytes(4), 0);
    const msg = encodeApRequest(b, tk.hmacReq, {
      kmmid: 2,
      doi: DOI.IPSEC,
      apReq: apReq,
      serverNonce: t.get(i, F_NONCE),
      appData: { spi: spi },
      ciphersuites: this.suites,
      reestablish: sc.sa !== null,
    });
    const now = this.pnow();
    t.req[i] = msg;
    t.tkt[i] = tk;
    t.set(i, F_STATE, S_AP_REQ_SENT);
    t.set(i, F_CTIME, ctimeS);
    t.set(i, F_CUSEC, cusec);
    t.set(i, F_SPI, spi);
    t.set(i, F_RETRIES, 0);
    t.set(i, F_STARTED, now);
    const tm = this.config.timers;
    const wait = t.get(i, F_KIND) === K_CLIENT ? Math.floor(tm.unsolicitedBaseMs * this.jitter()) : tm.retransmitMs.length ? tm.retransmitMs[0] : tm.abortMs;
    t.set(i, F_DEADLINE, now + wait);
    sc.state = 'ap_req_sent';
    this.cn[C_AP_REQUESTS_SENT]++;
    this.sendReq(i, sc);
  }

  sendReq(i: number, sc: ScState): void {
    const msg = this.table.req[i];
    const addr = this.table.addr[i] || sc.lAddr;
    if (!msg || addr === null) return;
    const port = this.table.addr[i] ? this.table.get(i, F_PORT) : sc.lPort;
    this.send(CH_KM, msg, addr, port);
  }

  abort(i: number, why: string): void {
    const t = this.table;
    const sc = this.scs[t.get(i, F_SC)];
    const kind = t.get(i, F_KIND);
    const nonce = t.get(i, F_NONCE);
    const tries = t.get(i, F_RETRIES);
    t.free(i);
    this.cn[C_SESSIONS_ABORTED]++;
    // A failed re-key leaves the SA it would have replaced in force (a Wake Up that
    // arrives late, after its exchange completed, ends here: the SC disregards the
    // nonce it already consumed). The state says what holds; the counter and the log
    // say what failed.
    sc.state = sc.sa ? 'established' : 'aborted';
    this.platform.log('cta.abort', { sc: sc.principal, nonce: nonce, why: why });
    if (kind === K_CLIENT && sc.sa) {
      // Keep trying (exponential backoff, capped) while the old SA is still up.
      sc.ciBo = sc.ciBo ? sc.ciBo * 2 : this.config.timers.unsolicitedBaseMs * Math.pow(2, tries + 1);
      if (sc.ciBo > 300000) sc.ciBo = 300000;
      sc.ciAt = this.pnow() + Math.floor(sc.ciBo * this.jitter());
    }
  }

  /** Slot deadline reached. */
  expire(i: number, now: number): void {
    const t = this.table;
    const st = t.state(i);
    const sc = this.scs[t.get(i, F_SC)];
    if (st === S_TICKET) return this.abort(i, 'kdc');
    const tm = this.config.timers;
    const r = t.get(i, F_RETRIES);
    if (t.get(i, F_KIND) === K_CLIENT) {
      if (r >= tm.unsolicitedRetries) return this.abort(i, 'timeout');
      t.set(i, F_RETRIES, r + 1);
      t.set(i, F_DEADLINE, now + Math.floor(tm.unsolicitedBaseMs * Math.pow(2, r + 1) * this.jitter()));
    } else {
      // Solicited: retransmit the same bytes at retransmitMs[k] after the first send; abort at abortMs.
      if (r >= tm.retransmitMs.length) return this.abort(i, 'timeout');
      t.set(i, F_RETRIES, r + 1);
      const base = t.get(i, F_STARTED);
      t.set(i, F_DEADLINE, base + (r + 1 < tm.retransmitMs.length ? tm.retransmitMs[r + 1] : tm.abortMs));
    }
    this.cn[C_RETRANSMITS]++;
    this.sendReq(i, sc);
  }

  // ------------------------------------------------------------ AP Reply / Error Reply

  onApReply(data: Uint8Array, address: string): void {
    const t = this.table;
    if (!t.anyIn(S_AP_REQ_SENT)) {
      // A repeated AP Reply for the SA just established: our SA Recovered was lost.
      this.repeatSaRecovered(data, address);
      return;
    }
    const m = decodeApReply(data);
    if (m.doi !== DOI.IPSEC) return this.drop(D_UNSUPPORTED_DOI);
    const rep = decodeApRep(m.apRep);
    const b = this.platform.crypto;
    let found = -1;
    let part = null;
    for (let i = 0; i < t.n && found < 0; i++) {
      if (t.state(i) !== S_AP_REQ_SENT) continue;
      const sc = this.scs[t.get(i, F_SC)];
      if (!this.fromSc(sc, address)) continue;
      const tk = t.tkt[i] as TicketEntry;
      if (!tk || rep.encPart.etype !== tk.etype) continue;
      let p;
      try {
        p = decodeEncApRepPart(decrypt(b, tk.etype, tk.key, KU_AP_REP_ENCPART, rep.encPart.cipher));
      } catch (e) {
        continue;
      }
      if (Math.floor(p.ctime / 1000) === t.get(i, F_CTIME) && p.cusec === t.get(i, F_CUSEC)) {
        found = i;
        part = p;
      }
    }
    if (found < 0 || !part) {
      if (this.repeatSaRecovered(data, address)) return;
      return this.drop(D_BAD_AP_REP);
    }
    const i = found;
    const sc = this.scs[t.get(i, F_SC)];
    const sub = part.subkey;
    if (!sub || !sub.keyvalue || sub.keyvalue.length < 16) return this.drop(D_NO_SUBKEY);
    const hk = usageHmacKey(b, sub.keytype, sub.keyvalue, USAGE.AP_REPLY);
    if (!verifyHmac(b, hk, m.signed, m.hmac)) return this.drop(D_BAD_HMAC);
    const cs = m.ciphersuite;
    let offered = false;
    for (let k = 0; k < this.suites.length; k++) {
      if (this.suites[k].auth === cs.auth && this.suites[k].enc === cs.enc) offered = true;
    }
    if (!offered) return this.drop(D_BAD_CIPHERSUITE);
    const scSpi = (m.appData as IpsecAppData).spi;
    const ctaSpi = t.get(i, F_SPI);
    const now = this.pnow();
    sc.sa = {
      ctaSpi: ctaSpi,
      scSpi: scSpi,
      keys: deriveSaKeys(b, sub.keyvalue, ctaSpi, scSpi),
      ciphersuite: cs,
      establishedAt: now,
      expiresAt: now + m.saLifetime * 1000,
      lifetimeSec: m.saLifetime,
      graceSec: m.gracePeriod,
      replay: new ReplayWindow(),
      seqOut: 0,
    };
    sc.accepted = t.tkt[i] as TicketEntry;
    sc.state = 'established';
    sc.repH = m.hmac;
    sc.srMsg = null;
    sc.ciBo = 0;
    // The client starts its own session half-way through the grace period if the SC has not re-keyed.
    const grace = m.gracePeriod < m.saLifetime ? m.gracePeriod : m.saLifetime;
    sc.ciAt = now + (m.saLifetime - grace) * 1000 + Math.floor((grace * 1000) / 2);
    const nonce = t.get(i, F_NONCE);
    const addr = t.addr[i] || sc.lAddr;
    const port = t.addr[i] ? t.get(i, F_PORT) : sc.lPort;
    t.free(i);
    this.cn[C_SESSIONS_ESTABLISHED]++;
    this.platform.log('cta.established', { sc: sc.principal, nonce: nonce, ctaSpi: ctaSpi, scSpi: scSpi, lifetime: m.saLifetime });
    if (m.ackRequired && addr !== null) {
      const rk = usageHmacKey(b, sub.keytype, sub.keyvalue, USAGE.SA_RECOVERED);
      const sr = encodeSaRecovered(b, rk, { kmmid: 4, doi: DOI.IPSEC }, m.hmac);
      sc.srMsg = sr;
      this.cn[C_SA_RECOVERED_SENT]++;
      this.send(CH_KM, sr, addr, port);
    }
  }

  /** A byte-identical repeat of the last AP Reply (same HMAC) gets the same SA Recovered again. */
  repeatSaRecovered(data: Uint8Array, address: string): boolean {
    if (data.length < HMAC_LEN + 3) {
      this.drop(D_NO_PENDING);
      return false;
    }
    const off = data.length - HMAC_LEN;
    for (let i = 0; i < this.scs.length; i++) {
      const sc = this.scs[i];
      const h = sc.repH;
      if (!sc.srMsg || !h || !this.fromSc(sc, address)) continue;
      // Constant-time compare in place (no allocation for a dropped datagram).
      let d = 0;
      for (let k = 0; k < HMAC_LEN; k++) d |= h[k] ^ data[off + k];
      if (d === 0) {
        this.send(CH_KM, sc.srMsg, sc.lAddr || address, sc.lPort);
        this.cn[C_SA_RECOVERED_SENT]++;
        return true;
      }
    }
    this.drop(D_NO_PENDING);
    return false;
  }

  onErrorReply(data: Uint8Array, address: string): void {
    const t = this.table;
    if (!t.anyIn(S_AP_REQ_SENT)) return this.drop(D_NO_PENDING);
    const err = decodeKrbError(decodeErrorReply(data).krbError);
    let i = -1;
    for (let k = 0; k < t.n; k++) {
      if (t.state(k) !== S_AP_REQ_SENT) continue;
      const sc = this.scs[t.get(k, F_SC)];
      if (!this.fromSc(sc, address) || !principalNameEquals(sc.name, err.sname)) continue;
      if (err.ctime !== undefined && (Math.floor(err.ctime / 1000) !== t.get(k, F_CTIME) || (err.cusec !== undefined && err.cusec !== t.get(k, F_CUSEC)))) continue;
      i = k;
      break;
    }
    if (i < 0) return this.drop(D_NO_PENDING);
    this.cn[C_KRB_ERRORS]++;
    const sc = this.scs[t.get(i, F_SC)];
    const flags = t.get(i, F_FLAGS);
    this.platform.log('cta.krb_error', { sc: sc.principal, code: err.errorCode });
    if (err.errorCode === KRB_AP_ERR_SKEW && !(flags & FL_SKEW_ADOPTED)) {
      this.adoptSkew(err);
      // A fresh authenticator for the same slot (nonce, kind and flags kept).
      this.sendApRequest(i, sc, t.tkt[i] as TicketEntry);
      t.set(i, F_FLAGS, flags | FL_SKEW_ADOPTED);
      return;
    }
    if (err.errorCode === KRB_AP_ERR_TKT_EXPIRED && !(flags & FL_TKT_REFRESHED)) {
      t.set(i, F_FLAGS, flags | FL_TKT_REFRESHED);
      if (sc.ticket === t.tkt[i]) sc.ticket = null;
      this.cn[C_TICKET_REFRESHES]++;
      delete t.req[i];
      delete t.tkt[i];
      this.waitTicket(i, sc);
      return;
    }
    this.abort(i, 'krb_error_' + err.errorCode);
  }

  adoptSkew(err: KrbError): void {
    const stime = err.stime + Math.floor(err.susec / 1000);
    this.offsetMs = Math.floor(stime - this.pnow());
    // Authenticator times only grow (lastAuthUs); after a clock that was ahead is pulled
    // back, keeping the old high-water mark would send the skewed ctime again.
    this.authUs = 0;
    this.cn[C_SKEW_ADOPTED]++;
    this.platform.log('cta.skew', { offsetMs: this.offsetMs });
  }

  // ------------------------------------------------------------ KDC

  startAs(sc: ScState): void {
    if (sc.asActive) return;
    sc.asActive = true;
    sc.asPa = false;
    sc.asSkew = false;
    this.cn[C_AS_EXCHANGES]++;
    this.sendAsReq(sc, null);
  }

  sendAsReq(sc: ScState, pa: CtaKey | null): void {
    const cfg = this.config;
    sc.asNonce = readU32(this.platform.crypto.randomBytes(4), 0) & 0x7fffffff;
    sc.asReq = buildAsReq(this.platform.crypto, this.cname, cfg.realm, sc.name, cfg.keys, sc.asNonce, this.now(), pa);
    sc.asTries = 0;
    sc.asDl = this.pnow() + cfg.timers.kdcTimeoutMs;
    sc.asPa = pa !== null;
    this.cn[C_AS_REQUESTS_SENT]++;
    this.send(CH_KDC, sc.asReq, cfg.kdc.address, cfg.kdc.port);
  }

  onKdc(data: Uint8Array, address: string, port: number): void {
    const kdc = this.config.kdc;
    if ((typeof BOARD_UDP === 'undefined' || BOARD_UDP) && address !== SERIAL_ADDRESS && (normHost(address) !== normHost(kdc.address) || port !== kdc.port)) return this.drop(D_WRONG_ADDRESS);
    const mt = messageType(data);
    if (mt === KRB_AS_REP) {
      const rep = decodeAsRep(data);
      for (let i = 0; i < this.scs.length; i++) {
        const sc = this.scs[i];
        if (!sc.asActive || !principalNameEquals(rep.ticket.sname, sc.name)) continue;
        let tk;
        try {
          tk = readAsRep(this.platform.crypto, rep, this.config.keys, sc.asNonce, sc.name);
        } catch (e) {
          continue;
        }
        this.asEnd(sc, tk, '');
        return;
      }
      return this.drop(D_KDC_UNMATCHED);
    }
    if (mt === KRB_ERROR) {
      const err = decodeKrbError(data);
      let sc: ScState | null = null;
      for (let i = 0; i < this.scs.length; i++) if (this.scs[i].asActive && principalNameEquals(err.sname, this.scs[i].name)) sc = this.scs[i];
      if (!sc) return this.drop(D_KDC_UNMATCHED);
      this.platform.log('cta.kdc_error', { sc: sc.principal, code: err.errorCode });
      if (err.errorCode === KDC_ERR_PREAUTH_REQUIRED && !sc.asPa) {
        const key = preauthKey(err, this.config.keys);
        if (key) return this.sendAsReq(sc, key);
      } else if (err.errorCode === KRB_AP_ERR_SKEW && !sc.asSkew) {
        sc.asSkew = true;
        this.adoptSkew(err);
        return this.sendAsReq(sc, this.config.keys[0]);
      }
      this.asEnd(sc, null, 'kdc_error_' + err.errorCode);
      return;
    }
    this.drop(D_MALFORMED);
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
  asEnd(sc: ScState, tk: TicketEntry | null, why: string): void {
    sc.asActive = false;
    sc.asReq = null;
    const tm = this.config.timers;
    if (tk) {
      sc.ticket = tk;
      this.cn[C_TICKETS_CACHED]++;
      this.platform.log('cta.ticket', { sc: sc.principal, endtime: tk.endtime });
    } else this.cn[C_KDC_FAILURES]++;
    if (this.config.prefetchTicket) {
      if (tk) {
        sc.tkFails = 0;
        const margin = tm.ticketRefreshMarginSec * 1000;
        const left = tk.endtime - margin - this.now();
        sc.tkAt = 0;
        if (left >= 2000) {
          let lead = Math.floor((margin > 20000 ? margin / 2 : 10000) * this.jitter());
          if (lead > left / 2) lead = Math.floor(left / 2);
          sc.tkAt = this.pnow() + left - lead;
        }
      } else {
        sc.tkFails++;
        const wait = sc.tkFails <= tm.prefetchRetries ? tm.prefetchRetryMs * Math.pow(2, sc.tkFails - 1) : tm.prefetchPeriodSec * 1000;
        sc.tkAt = this.pnow() + Math.floor(wait * this.jitter());
      }
    }
    const t = this.table;
    for (let i = 0; i < t.n; i++) {
      if (t.state(i) === S_TICKET && t.get(i, F_SC) === sc.idx) {
        if (tk) this.sendApRequest(i, sc, tk);
        else this.abort(i, why);
      }
    }
  }

  // ------------------------------------------------------------ protected signaling

  onSignaling(data: Uint8Array, address: string, port: number): void {
    const spi = espPeekSpi(data);
    let sc: ScState | null = null;
    for (let i = 0; i < this.scs.length; i++) {
      const s = this.scs[i];
      if (s.sa && s.sa.ctaSpi === spi) sc = s;
    }
    if (!sc || !sc.sa) return this.drop(D_ESP_NO_SA);
    if (!this.fromSc(sc, address)) return this.drop(D_WRONG_ADDRESS);
    const sa = sc.sa;
    if (this.pnow() >= sa.expiresAt) return this.drop(D_ESP_NO_SA);
    if (data.length < 8 || !sa.replay.check(readU32(data, 4))) return this.drop(D_ESP_REPLAY);
    const enc = sa.ciphersuite.enc === 0x0b ? null : sa.keys.encScToCta;
    let opened;
    try {
      opened = espOpen(this.platform.crypto, { encKey: enc, authKey: sa.keys.authScToCta }, data);
    } catch (e) {
      if (isCryptoError(e)) return this.drop(D_ESP_ICV);
      return this.drop(D_ESP_MALFORMED);
    }
    if (!sa.replay.update(opened.seq)) return this.drop(D_ESP_REPLAY);
    this.cn[C_SIGNALING_RECEIVED]++;
    let reply: string;
    try {
      const cmd = parseNcsCommand(toAscii(opened.payload));
      reply = buildNcsResponse(cmd.txid, 200, 'OK');
      this.platform.log('cta.ncs', { sc: sc.principal, verb: cmd.verb, txid: cmd.txid });
    } catch (e) {
      return this.drop(D_ESP_MALFORMED);
    }
    sa.seqOut++;
    const out = espSeal(this.platform.crypto, { spi: sa.scSpi, seq: sa.seqOut, encKey: sa.ciphersuite.enc === 0x0b ? null : sa.keys.encCtaToSc, authKey: sa.keys.authCtaToSc }, fromAscii(reply), ESP_NEXT_HEADER.NONE);
    this.cn[C_SIGNALING_ANSWERED]++;
    this.send(CH_SIG, out, address, port);
  }

  // ------------------------------------------------------------ timers

  /** Arms the one platform timer for the earliest pending deadline. */
  arm(): void {
    if (!this.running || this.inTick) return;
    let at = this.table.earliest();
    for (let i = 0; i < this.scs.length; i++) {
      const sc = this.scs[i];
      if (sc.asActive && (at < 0 || sc.asDl < at)) at = sc.asDl;
      if (sc.ciAt && (at < 0 || sc.ciAt < at)) at = sc.ciAt;
      if (sc.tkAt && (at < 0 || sc.tkAt < at)) at = sc.tkAt;
      if (sc.sa && (at < 0 || sc.sa.expiresAt < at)) at = sc.sa.expiresAt;
    }
    if (at === this.timerAt) return;
    if (this.timer !== null) this.platform.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (at < 0) return;
    let delay = at - this.pnow();
    if (delay < 0) delay = 0;
    if (delay > 3600000) delay = 3600000; // at most an hour per platform timer
    this.timer = this.platform.setTimeout(() => {
      this.timer = null;
      this.timerAt = -1;
      this.tick();
    }, delay);
  }

  tick(): void {
    if (!this.running) return;
    this.inTick = true;
    try {
      const now = this.pnow();
      const t = this.table;
      for (let i = 0; i < t.n; i++) {
        if (t.state(i) !== S_FREE && t.get(i, F_DEADLINE) <= now) this.expire(i, now);
      }
      const tm = this.config.timers;
      for (let k = 0; k < this.scs.length; k++) {
        const sc = this.scs[k];
        if (sc.asActive && sc.asDl <= now && sc.asReq) {
          if (sc.asTries >= tm.kdcRetries) this.asEnd(sc, null, 'kdc_timeout');
          else {
            sc.asTries++;
            sc.asDl = now + tm.kdcTimeoutMs * Math.pow(2, sc.asTries);
            this.cn[C_KDC_RETRANSMITS]++;
            this.send(CH_KDC, sc.asReq, this.config.kdc.address, this.config.kdc.port);
          }
        }
        if (sc.tkAt && sc.tkAt <= now) {
          sc.tkAt = 0;
          // An exchange in flight (a Wake Up's) reschedules on its outcome.
          if (!sc.asActive) {
            this.cn[C_TICKET_PREFETCHES]++;
            this.startAs(sc);
          }
        }
        if (sc.sa && sc.sa.expiresAt <= now) {
          sc.sa = null;
          this.cn[C_SA_EXPIRED]++;
          if (sc.state === 'established') sc.state = 'idle';
          this.platform.log('cta.sa_expired', { sc: sc.principal });
        }
        if (sc.ciAt && sc.ciAt <= now) {
          sc.ciAt = 0;
          if (t.findBySc(sc.idx) < 0) {
            if (sc.lAddr === null) this.platform.log('cta.no_address', { sc: sc.principal });
            else {
              this.cn[C_CLIENT_INITIATED]++;
              this.openSession(sc, 0, K_CLIENT, null, 0);
            }
          }
        }
      }
    } catch (e) {
      this.caught(e, 'tick');
    }
    this.inTick = false;
    this.arm();
  }

  // ------------------------------------------------------------ status

  /** A snapshot: states, SPIs and expiry per SC, counters. Never key material. */
  status(): AgentStatus {
    const scs: ScStatus[] = [];
    for (let i = 0; i < this.scs.length; i++) {
      const sc = this.scs[i];
      const slot = this.table.findBySc(i);
      const sa = sc.sa;
      scs.push({
        principal: sc.principal,
        state: sc.state,
        ticketEndtime: sc.ticket ? sc.ticket.endtime : null,
        sa: sa
          ? {
              ctaSpi: sa.ctaSpi,
              scSpi: sa.scSpi,
              ciphersuite: [sa.ciphersuite.auth, sa.ciphersuite.enc],
              establishedAt: sa.establishedAt,
              expiresAt: sa.expiresAt,
              lifetimeSec: sa.lifetimeSec,
              graceSec: sa.graceSec,
              seqOut: sa.seqOut,
              seqInTop: sa.replay.top,
            }
          : null,
        pendingNonce: slot >= 0 ? this.table.get(slot, F_NONCE) : null,
      });
    }
    const mem = this.platform.memory();
    return {
      principal: this.config.principal + '@' + this.config.realm,
      running: this.running,
      transport: this.transport ? this.transport.kind : this.config.transport,
      clockOffsetMs: this.offsetMs,
      slots: this.table.n,
      slotsInUse: this.table.inUse(),
      scs: scs,
      counters: this.counters,
      memory: { free: mem.free, usage: mem.usage, total: mem.total },
    };
  }
}
