// The CTA's configuration: the Storage file "cta.cfg", written by `cta provision`.
// Written inside the Espruino subset.
//
// The host (host-tools/provision/config.ts) validates a configuration with named-field
// messages and writes it in this compact, positional form. The board checks only what it
// relies on: integrity (CRC), version, types, ranges and bounded lengths, so that a corrupt
// or hostile file cannot crash it or give it out-of-range values. A failed check throws
// DecodeError "cfg#N"; the host table CONFIG_ERRORS (host-tools/provision/config.ts) turns
// N into a sentence. Checks of meaning (a principal without a realm, SCs listed twice,
// retransmissions in increasing order, abortMs after the last retransmission, a 64-character
// WiFi password being hex) are the host's alone.
//
// Layout, version 2 (docs/protocol.md section 10): the CBOR encoding of one array of 17
// items, followed by 2 bytes, the CRC-16/CCITT-FALSE of those CBOR bytes, big-endian.
// null means "absent": the default (or, for slots and the board's timers, the board's).
//   [0]  2                          version                          cfg#3
//   [1]  principal (no realm)       text, 1-255 chars 0x20-0x7e      cfg#5
//   [2]  realm                      text                             cfg#6
//   [3]  keys: [[etype, kvno, key], ...]   1-8 entries               cfg#7-11
//          etype 1-65535, kvno 0-2^32-1, key a byte string of 16 or 32 bytes
//          (a board ignores keys of enctypes its image lacks, see decodeConfig)
//   [4]  scs: [[principal@REALM, address|null, port|null(, true)], ...]  1-16 entries   cfg#12-16
//          a 4th item true: key management from any port of the address (anyPort)
//   [5]  kdc address                text                             cfg#17
//   [6]  kdc port                   1-65535                          cfg#18
//   [7]  listenPort | null          0-65535, default 1293            cfg#19
//   [8]  signalingPort | null       0-65535, default 2427            cfg#20
//   [9]  slots | null               1-64, default the board's, else 4   cfg#21
//   [10] transport                  0 udp, 1 serial                  cfg#22
//   [11] clientInitiatedOnBoot      true | false                     cfg#23
//   [12] prefetchTicket             true | false                     cfg#24
//   [13] ciphersuites: [[authAlg, encTransform], ...]  1-16 pairs of 0-255   cfg#25-27
//   [14] spi | null                 256-2^32-1 (fixed CTA inbound SPI; null: random per SA)   cfg#28
//   [15] wifi: [ssid, password|null] | null   ssid 1-32 chars, password 1-64 (0x20-0x7e)
//                                   (WiFi boards only: the others ignore it)   cfg#29-31
//   [16] timers: an array of 12 items, each null for the default     cfg#32
//          [0] retransmitMs: [ms, ...] 0-8 entries of 1-600000       cfg#33-34
//          [1..11] the rows of TIMER_ROWS below, in order            cfg#35-45
// cfg#1: the file is shorter than 3 bytes or its CRC does not match; cfg#2: not CBOR;
// cfg#4: the array does not have 17 items.
//
// prefetchTicket (fetch each SC's ticket at boot after a random 0..prefetchDelayMs and
// refresh it before it stops being usable; an unreachable KDC is retried after
// prefetchRetryMs doubling (x0.75-1.25 jitter) prefetchRetries times, then every
// prefetchPeriodSec). The WiFi password is secret: nothing prints it.

import { DecodeError } from './proto/errors.ts';
import { cborDecode } from './proto/cbor.ts';
import { crc16 } from './proto/crc16.ts';
import { hasEnctype } from './proto/crypto/enctypes.ts';

// Build-time board fact (host-tools/build/build.ts boardDefines): folded in a bundle, so
// boards without WiFi carry no WiFi decoding; undefined in host tools.
declare const BOARD_WIFI: boolean;
declare const BOARD_RFC3962: boolean;

export const CONFIG_FILE = 'cta.cfg';
/** Item [0] of the compact form (the decoder below compares with the literal 2). */
export const CONFIG_VERSION = 2;

export type CtaKey = { etype: number; kvno: number; key: Uint8Array };
export type CtaScConfig = { principal: string; address?: string; port?: number; anyPort?: boolean };
export type CtaTimers = {
  retransmitMs: number[];
  abortMs: number;
  unsolicitedBaseMs: number;
  unsolicitedRetries: number;
  skewSec: number;
  ticketRefreshMarginSec: number;
  kdcTimeoutMs: number;
  kdcRetries: number;
  prefetchDelayMs: number;
  prefetchRetryMs: number;
  prefetchRetries: number;
  prefetchPeriodSec: number;
};
export type CtaConfig = {
  principal: string;
  realm: string;
  keys: CtaKey[];
  scs: CtaScConfig[];
  kdc: { address: string; port: number };
  listenPort: number;
  signalingPort: number;
  transport: string;
  slots: number;
  timers: CtaTimers;
  clientInitiatedOnBoot: boolean;
  prefetchTicket: boolean;
  ciphersuites: number[][];
  spi?: number;
  /** The WiFi network to join (WiFi boards only). `password` is secret. */
  wifi?: CtaWifi;
};

export type CtaWifi = { ssid: string; password?: string };

/** Board-level defaults (board-configs/<board>.json), all optional. */
export type ConfigDefaults = {
  slots?: number;
  timers?: {
    retransmitMs?: number[];
    solicitedTimeoutMs?: number;
    unsolicitedInitialMs?: number;
    unsolicitedRetries?: number;
    clockSkewSec?: number;
  };
};

type Obj = { [k: string]: unknown };

function fail(check: number): never {
  throw new DecodeError('cfg#' + check);
}

/** v if it is a whole number in lo..hi, else failure `check`; null (or undefined) is `def` when given. */
function num(v: unknown, lo: number, hi: number, check: number, def?: number): number {
  if (v == null && def !== undefined) return def;
  if (typeof v !== 'number' || v !== Math.floor(v) || v < lo || v > hi) fail(check);
  return v as number;
}

/** v if it is a string of 1..max printable ASCII characters (0x20-0x7e), else failure `check`. */
function text(v: unknown, max: number, check: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) fail(check);
  const s = v as string;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) fail(check);
  }
  return s;
}

/** v if it is an array of min..max items, else failure `check`. */
function list(v: unknown, min: number, max: number, check: number): unknown[] {
  if (!Array.isArray(v) || v.length < min || v.length > max) fail(check);
  return v as unknown[];
}

/**
 * Whole numbers from one table "name min max default [boardKey],...": row i is src[first + i]
 * (failure check + i), stored as dst[name]; null is the default, which a board value
 * (board[boardKey], for a row that names one) replaces unless it is absent, or 0 where 0
 * is out of range ("not set").
 * A string split at decode time: the table costs no interpreter variables while the agent runs.
 */
function ints(rows: string, src: unknown[], first: number, dst: Obj, board: Obj, check: number): void {
  const rs = rows.split(',');
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i].split(' ');
    const lo = +r[1];
    const bv = board[r[4]] as number | undefined;
    dst[r[0]] = num(src[first + i], lo, +r[2], check + i, bv || (bv === 0 && lo === 0) ? (bv as number) : +r[3]);
  }
}

/** Decodes "cta.cfg" (the layout above). Throws DecodeError "cfg#N" naming the failed check. */
export function decodeConfig(bytes: Uint8Array, defaults?: ConfigDefaults): CtaConfig {
  const n = bytes.length;
  if (n < 3 || crc16(bytes, 0, n - 2) !== bytes[n - 2] * 256 + bytes[n - 1]) fail(1);
  let a: unknown[] = [];
  try {
    a = cborDecode(bytes.subarray(0, n - 2)) as unknown[];
  } catch (e) {
    fail(2);
  }
  // The literal 2 (CONFIG_VERSION): a bundle then keeps no module variable for it.
  if (!Array.isArray(a) || a[0] !== 2) fail(3);
  if (a.length !== 17) fail(4);
  const d = (defaults || {}) as Obj;
  const dt = (d.timers || {}) as Obj;

  const cfg: Obj = { principal: text(a[1], 255, 5), realm: text(a[2], 255, 6) };
  const keysIn = list(a[3], 1, 8, 7);
  const keys: CtaKey[] = [];
  for (let i = 0; i < keysIn.length; i++) {
    const k = list(keysIn[i], 3, 3, 8);
    const key = k[2] as Uint8Array;
    if (!(key instanceof Uint8Array) || (key.length !== 16 && key.length !== 32)) fail(11);
    const etype = num(k[0], 1, 65535, 9);
    const kvno = num(k[1], 0, 4294967295, 10);
    // A board keeps only keys of the enctypes its image implements (board-configs "enctypes"):
    // its AS-REQ then announces only those, and with none left the KDC refuses it
    // (KDC_ERR_ETYPE_NOSUPP, logged kdc_error 14). `cta provision --board` refuses such a
    // configuration beforehand. Host tools (BOARD_* undefined) keep every key.
    if (typeof BOARD_RFC3962 === 'undefined' || hasEnctype(etype)) keys.push({ etype: etype, kvno: kvno, key: key });
  }
  cfg.keys = keys;
  const scsIn = list(a[4], 1, 16, 12);
  const scs: CtaScConfig[] = [];
  for (let i = 0; i < scsIn.length; i++) {
    const s = list(scsIn[i], 3, 4, 13);
    const sc: CtaScConfig = { principal: text(s[0], 255, 14) };
    if (s[1] != null) sc.address = text(s[1], 255, 15);
    if (s[2] != null) sc.port = num(s[2], 1, 65535, 16);
    // [3] true: key management from any port of the address (cta sc --workers).
    if (s.length > 3) {
      if (s[3] !== true) fail(13);
      sc.anyPort = true;
    }
    scs.push(sc);
  }
  cfg.scs = scs;
  cfg.kdc = { address: text(a[5], 255, 17), port: num(a[6], 1, 65535, 18) };
  // slots: the board's number replaces the default 4.
  ints('listenPort 0 65535 1293,signalingPort 0 65535 2427,slots 1 64 4 slots', a, 7, cfg, d, 19);
  cfg.transport = num(a[10], 0, 1, 22) ? 'serial' : 'udp';
  if (typeof a[11] !== 'boolean') fail(23);
  if (typeof a[12] !== 'boolean') fail(24);
  cfg.clientInitiatedOnBoot = a[11];
  cfg.prefetchTicket = a[12];
  const suites = list(a[13], 1, 16, 25);
  const ciphersuites: number[][] = [];
  for (let i = 0; i < suites.length; i++) {
    const p = list(suites[i], 2, 2, 26);
    ciphersuites.push([num(p[0], 0, 255, 27), num(p[1], 0, 255, 27)]);
  }
  cfg.ciphersuites = ciphersuites;
  if (a[14] != null) cfg.spi = num(a[14], 256, 4294967295, 28);
  if ((typeof BOARD_WIFI === 'undefined' || BOARD_WIFI) && a[15] != null) {
    const w = list(a[15], 2, 2, 29);
    const wifi: CtaWifi = { ssid: text(w[0], 32, 30) };
    if (w[1] != null) wifi.password = text(w[1], 64, 31);
    cfg.wifi = wifi;
  }

  const t = list(a[16], 12, 12, 32);
  // The board's list is not copied: nothing changes a config after decoding.
  let rt = (dt.retransmitMs || [1000, 2000]) as number[];
  if (t[0] != null) {
    const r = list(t[0], 0, 8, 33);
    rt = [];
    for (let i = 0; i < r.length; i++) rt.push(num(r[i], 1, 600000, 34));
  }
  const timers: Obj = { retransmitMs: rt };
  // TIMER_ROWS: timers [1..11], failures cfg#35-45.
  ints(
    'abortMs 1 600000 3000 solicitedTimeoutMs,unsolicitedBaseMs 1 600000 500 unsolicitedInitialMs,' +
      'unsolicitedRetries 0 16 5 unsolicitedRetries,skewSec 1 86400 300 clockSkewSec,ticketRefreshMarginSec 0 86400 300,' +
      'kdcTimeoutMs 1 600000 1500,kdcRetries 0 8 2,prefetchDelayMs 1 600000 2000,prefetchRetryMs 1 600000 5000,' +
      'prefetchRetries 0 16 4,prefetchPeriodSec 1 86400 600',
    t,
    1,
    timers,
    dt,
    35,
  );
  cfg.timers = timers;
  return cfg as CtaConfig;
}
