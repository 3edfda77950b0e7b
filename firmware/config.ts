// The CTA's configuration: one CBOR map in the Storage file "cta.cfg", written by
// `cta provision` (host-tools/provision/cli.ts). Written inside the Espruino subset.
//
// The map (text keys; byte strings for keys):
//   v                      1
//   principal              "cta/cta1.example.net" (without realm)
//   realm                  "EXAMPLE.NET"
//   keys                   [{etype, kvno, key: bytes}]   the CTA's long-term keys
//   scs                    [{principal: "sc/sc1.example.net@EXAMPLE.NET", address?, port?, anyPort?}]
//                          port: key management only from there (pinned) unless anyPort
//                          (cta sc --workers: Wake Ups leave from each worker's port)
//   kdc                    {address, port}
//   listenPort             default 1293 (key management)
//   signalingPort          default 2427 (ESP-over-UDP protected signaling)
//   transport              "udp" (default) | "serial"
//   slots                  session-table size (default: the board's, else 4)
//   timers                 {retransmitMs: [1000, 2000], abortMs: 3000, unsolicitedBaseMs: 500,
//                           unsolicitedRetries: 5, skewSec: 300, ticketRefreshMarginSec: 300,
//                           kdcTimeoutMs: 1500, kdcRetries: 2, prefetchDelayMs: 2000,
//                           prefetchRetryMs: 5000, prefetchRetries: 4, prefetchPeriodSec: 600}
//   prefetchTicket         default true: fetch each SC's ticket at boot (after a random
//                          0..prefetchDelayMs), refresh it before it stops being usable;
//                          an unreachable KDC is retried after prefetchRetryMs doubling
//                          (x0.75-1.25 jitter) prefetchRetries times, then every prefetchPeriodSec
//   clientInitiatedOnBoot  default false
//   ciphersuites           [[authAlg, encTransform], ...] default [[0x02, 0x0c]]
//   spi                    optional fixed CTA inbound SPI (>= 256); default: random per SA
//   wifi                   optional {ssid, password?}: the network a WiFi board (BOARD_WIFI)
//                          joins before the agent binds; ssid 1-32 chars, password 8-63
//                          printable ASCII or 64 hex digits, absent for an open network.
//                          The password is secret: nothing prints it. Other boards ignore it.
// Everything is validated; a bad field throws DecodeError naming it.

import { DecodeError } from './proto/errors.ts';
import { cborDecode } from './proto/cbor.ts';

// Build-time board fact (host-tools/build/build.ts boardDefines): folded in a bundle, so
// boards without WiFi carry no WiFi validation; undefined in host tools (full checks).
declare const BOARD_WIFI: boolean;

export const CONFIG_FILE = 'cta.cfg';
export const CONFIG_VERSION = 1;

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

export const MAX_SLOTS = 64;
export const MAX_SCS = 16;
export const MAX_KEYS = 8;

type Obj = { [k: string]: unknown };

function bad(field: string, why: string): never {
  throw new DecodeError('config: ' + field + ' ' + why);
}

function isObj(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !Array.isArray(v);
}

/** A whole number in lo..hi; when `def` is given, an absent value (undefined or null) is `def`. */
function int(v: unknown, field: string, lo: number, hi: number, def?: number): number {
  if (v == null && def !== undefined) return def;
  if (typeof v !== 'number' || v !== Math.floor(v) || v < lo || v > hi) bad(field, 'must be a whole number from ' + lo + ' to ' + hi);
  return v as number;
}

/**
 * Optional whole numbers from one table "name min max default boardKey,...": src[name]
 * (validated as `pre + name`) or the default into dst[name]. A board value (board[boardKey])
 * replaces the default unless it is absent, or 0 where 0 is out of range ("not set").
 * A string split at decode time: the table costs no interpreter variables while the agent runs.
 */
function ints(rows: string, src: Obj, dst: Obj, board: Obj, pre: string): void {
  const rs = rows.split(',');
  for (let i = 0; i < rs.length; i++) {
    const r = rs[i].split(' ');
    const lo = +r[1];
    const bv = board[r[4]] as number | undefined;
    dst[r[0]] = int(src[r[0]], pre + r[0], lo, +r[2], bv || (bv === 0 && lo === 0) ? (bv as number) : +r[3]);
  }
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 255) bad(field, 'must be a non-empty string of at most 255 chars');
  const s = v as string;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) bad(field, 'must be printable ASCII without spaces');
  }
  return s;
}

function arr(v: unknown, field: string, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) bad(field, 'must be an array');
  const a = v as unknown[];
  if (a.length < min || a.length > max) bad(field, 'must have ' + min + ' to ' + max + ' entries');
  return a;
}

function text(v: unknown, field: string, lo: number, hi: number): string {
  if (typeof v !== 'string' || v.length < lo || v.length > hi) bad(field, 'must be ' + lo + ' to ' + hi + ' characters');
  const s = v as string;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) bad(field, 'must be printable ASCII');
  }
  return s;
}

/** wifi: {ssid, password?}. Error messages never include the password. */
function wifiOf(v: unknown): CtaWifi {
  if (!isObj(v)) bad('wifi', 'must be a map {ssid, password}');
  const o = v as Obj;
  const w: CtaWifi = { ssid: text(o.ssid, 'wifi.ssid', 1, 32) };
  if (o.password != null) {
    const p = text(o.password, 'wifi.password', 8, 64);
    if (p.length === 64 && !/^[0-9a-fA-F]+$/.test(p)) bad('wifi.password', 'of 64 characters must be hex digits (a raw WPA key)');
    w.password = p;
  }
  return w;
}

/** Validates a decoded config map and fills defaults. Throws DecodeError naming the bad field. */
export function configFromObject(o: unknown, defaults?: ConfigDefaults): CtaConfig {
  if (!isObj(o)) bad('(top level)', 'must be a map');
  const m = o as Obj;
  // Literals instead of CONFIG_VERSION / MAX_KEYS / MAX_SCS: a bundle then keeps no module
  // variables for them (esbuild keeps a module's own constants as variables).
  if (m.v !== undefined && m.v !== 1) bad('v', 'must be 1');
  const d = (defaults || {}) as Obj;
  const dt = (d.timers || {}) as Obj;

  const principal = str(m.principal, 'principal');
  if (principal.indexOf('@') >= 0) bad('principal', 'must not contain a realm (use realm)');
  const realm = str(m.realm, 'realm');

  const keysIn = arr(m.keys, 'keys', 1, 8);
  const keys: CtaKey[] = [];
  for (let i = 0; i < keysIn.length; i++) {
    const f = 'keys[' + i + ']';
    const k = keysIn[i] as Obj;
    if (!isObj(k)) bad(f, 'must be a map');
    if (!(k.key instanceof Uint8Array)) bad(f + '.key', 'must be a byte string');
    const key = new Uint8Array(k.key as Uint8Array);
    if (key.length !== 16 && key.length !== 32) bad(f + '.key', 'must be 16 or 32 bytes');
    keys.push({ etype: int(k.etype, f + '.etype', 1, 65535), kvno: int(k.kvno, f + '.kvno', 0, 4294967295), key: key });
  }

  const scsIn = arr(m.scs, 'scs', 1, 16);
  const scs: CtaScConfig[] = [];
  for (let i = 0; i < scsIn.length; i++) {
    const f = 'scs[' + i + ']';
    const s = scsIn[i] as Obj;
    if (!isObj(s)) bad(f, 'must be a map');
    let p = str(s.principal, f + '.principal');
    if (p.indexOf('@') < 0) p = p + '@' + realm;
    const sc: CtaScConfig = { principal: p };
    if (s.address != null) sc.address = str(s.address, f + '.address');
    if (s.port != null) sc.port = int(s.port, f + '.port', 1, 65535);
    if (s.anyPort === true) sc.anyPort = true;
    for (let j = 0; j < scs.length; j++) if (scs[j].principal === p) bad(f + '.principal', 'is listed twice');
    scs.push(sc);
  }

  const kd = m.kdc as Obj;
  if (!isObj(kd)) bad('kdc', 'must be a map {address, port}');
  const kdc = { address: str(kd.address, 'kdc.address'), port: int(kd.port, 'kdc.port', 1, 65535, 88) };

  const transport = m.transport == null ? 'udp' : m.transport;
  if (transport !== 'udp' && transport !== 'serial') bad('transport', 'must be "udp" or "serial"');

  const t = (m.timers == null ? {} : m.timers) as Obj;
  if (!isObj(t)) bad('timers', 'must be a map');
  // The board's list is not copied: nothing changes a config after decoding.
  let rt = (dt.retransmitMs || [1000, 2000]) as number[];
  if (t.retransmitMs != null) {
    const r = arr(t.retransmitMs, 'timers.retransmitMs', 0, 8);
    rt = [];
    for (let i = 0; i < r.length; i++) {
      const v = int(r[i], 'timers.retransmitMs[' + i + ']', 1, 600000);
      if (i > 0 && v <= rt[i - 1]) bad('timers.retransmitMs', 'must be increasing');
      rt.push(v);
    }
  }
  const timers: Obj = { retransmitMs: rt };
  ints(
    'abortMs 1 600000 3000 solicitedTimeoutMs,unsolicitedBaseMs 1 600000 500 unsolicitedInitialMs,' +
      'unsolicitedRetries 0 16 5 unsolicitedRetries,skewSec 1 86400 300 clockSkewSec,ticketRefreshMarginSec 0 86400 300 -,' +
      'kdcTimeoutMs 1 600000 1500 -,kdcRetries 0 8 2 -,prefetchDelayMs 1 600000 2000 -,prefetchRetryMs 1 600000 5000 -,' +
      'prefetchRetries 0 16 4 -,prefetchPeriodSec 1 86400 600 -',
    t,
    timers,
    dt,
    'timers.',
  );
  if ((timers.abortMs as number) <= (rt.length ? rt[rt.length - 1] : 0)) bad('timers.abortMs', 'must be later than the last retransmission');

  let ciphersuites: number[][] = [[0x02, 0x0c]];
  if (m.ciphersuites != null) {
    const c = arr(m.ciphersuites, 'ciphersuites', 1, 16);
    ciphersuites = [];
    for (let i = 0; i < c.length; i++) {
      const f = 'ciphersuites[' + i + ']';
      const pair = arr(c[i], f, 2, 2);
      ciphersuites.push([int(pair[0], f + '[0]', 0, 255), int(pair[1], f + '[1]', 0, 255)]);
    }
  }

  const cfg: Obj = { principal: principal, realm: realm, keys: keys, scs: scs, kdc: kdc, transport: transport, timers: timers, ciphersuites: ciphersuites };
  // slots: MAX_SLOTS (64); the board's number of slots replaces the default 4.
  ints('listenPort 0 65535 1293 -,signalingPort 0 65535 2427 -,slots 1 64 4 slots', m, cfg, d, '');
  const bools = ['clientInitiatedOnBoot', 'prefetchTicket'];
  for (let i = 0; i < 2; i++) {
    const v = m[bools[i]];
    if (v != null && typeof v !== 'boolean') bad(bools[i], 'must be true or false');
    cfg[bools[i]] = v == null ? i > 0 : v;
  }
  if (m.spi != null) cfg.spi = int(m.spi, 'spi', 256, 4294967295);
  if ((typeof BOARD_WIFI === 'undefined' || BOARD_WIFI) && m.wifi != null) cfg.wifi = wifiOf(m.wifi);
  return cfg as CtaConfig;
}

/** Decodes the CBOR bytes of "cta.cfg". Throws DecodeError (bad CBOR or a bad field, named). */
export function decodeConfig(bytes: Uint8Array, defaults?: ConfigDefaults): CtaConfig {
  return configFromObject(cborDecode(bytes), defaults);
}

/** The full principal name "cta/x@REALM". */
export function fullPrincipal(cfg: CtaConfig): string {
  return cfg.principal + '@' + cfg.realm;
}
