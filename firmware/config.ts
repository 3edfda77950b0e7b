// The CTA's configuration: one CBOR map in the Storage file "cta.cfg", written by
// `cta provision` (host-tools/provision/cli.ts). Written inside the Espruino subset.
//
// The map (text keys; byte strings for keys):
//   v                      1
//   principal              "cta/cta1.example.net" (without realm)
//   realm                  "EXAMPLE.NET"
//   keys                   [{etype, kvno, key: bytes}]   the CTA's long-term keys
//   scs                    [{principal: "sc/sc1.example.net@EXAMPLE.NET", address?, port?}]
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
export type CtaScConfig = { principal: string; address?: string; port?: number };
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

function bad(field: string, why: string): never {
  throw new DecodeError('config: ' + field + ' ' + why);
}

function isObj(v: unknown): boolean {
  return v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !Array.isArray(v);
}

function int(v: unknown, field: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || v !== Math.floor(v) || v < lo || v > hi) {
    bad(field, 'must be a whole number from ' + lo + ' to ' + hi);
  }
  return v as number;
}

function optInt(o: { [k: string]: unknown }, k: string, field: string, lo: number, hi: number, def: number): number {
  const v = o[k];
  if (v === undefined || v === null) return def;
  return int(v, field, lo, hi);
}

function optBool(o: { [k: string]: unknown }, k: string, def: boolean): boolean {
  const v = o[k];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'boolean') bad(k, 'must be true or false');
  return v as boolean;
}

function str(v: unknown, field: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) bad(field, 'must be a non-empty string of at most ' + max + ' chars');
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

function bytesOf(v: unknown, field: string): Uint8Array {
  if (!(v instanceof Uint8Array)) bad(field, 'must be a byte string');
  return new Uint8Array(v as Uint8Array);
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
  const o = v as { [k: string]: unknown };
  const w: CtaWifi = { ssid: text(o.ssid, 'wifi.ssid', 1, 32) };
  if (o.password !== undefined && o.password !== null) {
    const p = text(o.password, 'wifi.password', 8, 64);
    if (p.length === 64 && !/^[0-9a-fA-F]+$/.test(p)) bad('wifi.password', 'of 64 characters must be hex digits (a raw WPA key)');
    w.password = p;
  }
  return w;
}

/** Validates a decoded config map and fills defaults. Throws DecodeError naming the bad field. */
export function configFromObject(o: unknown, defaults?: ConfigDefaults): CtaConfig {
  if (!isObj(o)) bad('(top level)', 'must be a map');
  const m = o as { [k: string]: unknown };
  if (m.v !== undefined && m.v !== CONFIG_VERSION) bad('v', 'must be ' + CONFIG_VERSION);
  const d = defaults || {};
  const dt = d.timers || {};

  const principal = str(m.principal, 'principal', 255);
  if (principal.indexOf('@') >= 0) bad('principal', 'must not contain a realm (use realm)');
  const realm = str(m.realm, 'realm', 255);

  const keysIn = arr(m.keys, 'keys', 1, MAX_KEYS);
  const keys: CtaKey[] = [];
  for (let i = 0; i < keysIn.length; i++) {
    const f = 'keys[' + i + ']';
    if (!isObj(keysIn[i])) bad(f, 'must be a map');
    const k = keysIn[i] as { [k: string]: unknown };
    const key = bytesOf(k.key, f + '.key');
    if (key.length !== 16 && key.length !== 32) bad(f + '.key', 'must be 16 or 32 bytes');
    keys.push({ etype: int(k.etype, f + '.etype', 1, 65535), kvno: int(k.kvno, f + '.kvno', 0, 4294967295), key: key });
  }

  const scsIn = arr(m.scs, 'scs', 1, MAX_SCS);
  const scs: CtaScConfig[] = [];
  for (let i = 0; i < scsIn.length; i++) {
    const f = 'scs[' + i + ']';
    if (!isObj(scsIn[i])) bad(f, 'must be a map');
    const s = scsIn[i] as { [k: string]: unknown };
    let p = str(s.principal, f + '.principal', 255);
    if (p.indexOf('@') < 0) p = p + '@' + realm;
    const sc: CtaScConfig = { principal: p };
    if (s.address !== undefined && s.address !== null) sc.address = str(s.address, f + '.address', 255);
    if (s.port !== undefined && s.port !== null) sc.port = int(s.port, f + '.port', 1, 65535);
    for (let j = 0; j < scs.length; j++) if (scs[j].principal === p) bad(f + '.principal', 'is listed twice');
    scs.push(sc);
  }

  if (!isObj(m.kdc)) bad('kdc', 'must be a map {address, port}');
  const kd = m.kdc as { [k: string]: unknown };
  const kdc = { address: str(kd.address, 'kdc.address', 255), port: optInt(kd, 'port', 'kdc.port', 1, 65535, 88) };

  const transport = m.transport === undefined || m.transport === null ? 'udp' : m.transport;
  if (transport !== 'udp' && transport !== 'serial') bad('transport', 'must be "udp" or "serial"');

  const tm = m.timers === undefined || m.timers === null ? {} : m.timers;
  if (!isObj(tm)) bad('timers', 'must be a map');
  const t = tm as { [k: string]: unknown };
  let retransmitMs = dt.retransmitMs || [1000, 2000];
  if (t.retransmitMs !== undefined && t.retransmitMs !== null) {
    const r = arr(t.retransmitMs, 'timers.retransmitMs', 0, 8);
    retransmitMs = [];
    for (let i = 0; i < r.length; i++) {
      const v = int(r[i], 'timers.retransmitMs[' + i + ']', 1, 600000);
      if (i > 0 && v <= retransmitMs[i - 1]) bad('timers.retransmitMs', 'must be increasing');
      retransmitMs.push(v);
    }
  }
  // One table for the numeric timers: name, min, max, default, and the board-config key
  // whose value (if any) replaces the default. A string split at decode time, so the
  // table costs no interpreter variables while the agent runs.
  const timers = { retransmitMs: retransmitMs.slice() } as { [k: string]: unknown };
  const rows = (
    'abortMs 1 600000 3000 solicitedTimeoutMs,unsolicitedBaseMs 1 600000 500 unsolicitedInitialMs,' +
    'unsolicitedRetries 0 16 5 unsolicitedRetries,skewSec 1 86400 300 clockSkewSec,ticketRefreshMarginSec 0 86400 300 -,' +
    'kdcTimeoutMs 1 600000 1500 -,kdcRetries 0 8 2 -,prefetchDelayMs 1 600000 2000 -,prefetchRetryMs 1 600000 5000 -,' +
    'prefetchRetries 0 16 4 -,prefetchPeriodSec 1 86400 600 -'
  ).split(',');
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i].split(' ');
    const lo = +r[1];
    // A board value that is absent, or 0 where 0 is out of range, means "not set".
    const bv = (dt as { [k: string]: unknown })[r[4]] as number | undefined;
    const def = bv || (bv === 0 && lo === 0) ? (bv as number) : +r[3];
    timers[r[0]] = optInt(t, r[0], 'timers.' + r[0], lo, +r[2], def);
  }
  const last = retransmitMs.length ? retransmitMs[retransmitMs.length - 1] : 0;
  if ((timers.abortMs as number) <= last) bad('timers.abortMs', 'must be later than the last retransmission');

  let ciphersuites: number[][] = [[0x02, 0x0c]];
  if (m.ciphersuites !== undefined && m.ciphersuites !== null) {
    const c = arr(m.ciphersuites, 'ciphersuites', 1, 16);
    ciphersuites = [];
    for (let i = 0; i < c.length; i++) {
      const f = 'ciphersuites[' + i + ']';
      const pair = arr(c[i], f, 2, 2);
      ciphersuites.push([int(pair[0], f + '[0]', 0, 255), int(pair[1], f + '[1]', 0, 255)]);
    }
  }

  const cfg: CtaConfig = {
    principal: principal,
    realm: realm,
    keys: keys,
    scs: scs,
    kdc: kdc,
    listenPort: optInt(m, 'listenPort', 'listenPort', 0, 65535, 1293),
    signalingPort: optInt(m, 'signalingPort', 'signalingPort', 0, 65535, 2427),
    transport: transport as string,
    slots: optInt(m, 'slots', 'slots', 1, MAX_SLOTS, d.slots || 4),
    timers: timers as CtaTimers,
    clientInitiatedOnBoot: optBool(m, 'clientInitiatedOnBoot', false),
    prefetchTicket: optBool(m, 'prefetchTicket', true),
    ciphersuites: ciphersuites,
  };
  if (m.spi !== undefined && m.spi !== null) cfg.spi = int(m.spi, 'spi', 256, 4294967295);
  if ((typeof BOARD_WIFI === 'undefined' || BOARD_WIFI) && m.wifi !== undefined && m.wifi !== null) cfg.wifi = wifiOf(m.wifi);
  return cfg;
}

/** Decodes the CBOR bytes of "cta.cfg". Throws DecodeError (bad CBOR or a bad field, named). */
export function decodeConfig(bytes: Uint8Array, defaults?: ConfigDefaults): CtaConfig {
  return configFromObject(cborDecode(bytes), defaults);
}

/** The full principal name "cta/x@REALM". */
export function fullPrincipal(cfg: CtaConfig): string {
  return cfg.principal + '@' + cfg.realm;
}
