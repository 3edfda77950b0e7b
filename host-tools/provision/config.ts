// The CTA configuration on the host side: the full validator (named-field messages), the
// encoder to the compact form the board stores as "cta.cfg" (layout: firmware/config.ts and
// docs/protocol.md section 10), the host decoder, and the table that turns the board's
// numbered errors ("cfg#N") into sentences. Also the library half of `cta provision`
// (makeConfig from the CTA principal's keys, pickKeys, summarize): what the provision CLI,
// the demo, the HIL runner, the firmware bench and the tests call. Never prints key bytes.
//
// The board's decoder (firmware/config.ts decodeConfig) checks integrity, types and ranges
// only; the meaning of a configuration is checked here, before it is written, and again by
// decodeConfig below whenever a host tool reads a file.

import { UsageError } from '../args.ts';
import { realmOf, withRealm } from '../principal.ts';
import { DecodeError } from '../../firmware/proto/errors.ts';
import { parseKeytab, findKeys, principalName, ENCTYPE_NAMES } from '../../firmware/proto/keytab.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import { cborDecode, cborEncode, type CborValue } from '../../firmware/proto/cbor.ts';
import { crc16 } from '../../firmware/proto/crc16.ts';
import { CONFIG_VERSION, decodeConfig as decodeOnBoard } from '../../firmware/config.ts';
import type { ConfigDefaults, CtaConfig, CtaKey, CtaScConfig, CtaWifi } from '../../firmware/config.ts';

export { CONFIG_FILE, CONFIG_VERSION } from '../../firmware/config.ts';
export type { ConfigDefaults, CtaConfig, CtaKey, CtaScConfig, CtaTimers, CtaWifi } from '../../firmware/config.ts';

export const MAX_SLOTS = 64;
export const MAX_SCS = 16;
export const MAX_KEYS = 8;

/** The timers after retransmitMs, in the order of the compact form's timers array [1..11]. */
const TIMER_NAMES = [
  'abortMs',
  'unsolicitedBaseMs',
  'unsolicitedRetries',
  'skewSec',
  'ticketRefreshMarginSec',
  'kdcTimeoutMs',
  'kdcRetries',
  'prefetchDelayMs',
  'prefetchRetryMs',
  'prefetchRetries',
  'prefetchPeriodSec',
];

const whole = (field: string, lo: number, hi: number) => `${field} must be a whole number from ${lo} to ${hi}`;
const chars = (field: string, max: number) => `${field} must be 1 to ${max} printable ASCII characters`;

/** The board's numbered errors: CONFIG_ERRORS[N] explains "cfg#N" (firmware/config.ts). */
export const CONFIG_ERRORS: readonly string[] = [
  '',
  /* 1 */ 'the file is damaged or incomplete (its CRC-16 does not match)',
  /* 2 */ 'the file is not CBOR',
  /* 3 */ `not a version-${CONFIG_VERSION} configuration (made by another version of cta provision: make it again)`,
  /* 4 */ 'the configuration does not have 17 items',
  /* 5 */ chars('principal', 255),
  /* 6 */ chars('realm', 255),
  /* 7 */ 'keys must be a list of 1 to 8 keys',
  /* 8 */ 'a key must be [etype, kvno, key]',
  /* 9 */ whole("a key's etype", 1, 65535),
  /* 10 */ whole("a key's kvno", 0, 4294967295),
  /* 11 */ 'a key must be a byte string of 16 or 32 bytes',
  /* 12 */ 'scs must be a list of 1 to 16 Signaling Controllers',
  /* 13 */ 'an SC must be [principal, address, port] or [principal, address, port, true]',
  /* 14 */ chars("an SC's principal", 255),
  /* 15 */ chars("an SC's address", 255),
  /* 16 */ whole("an SC's port", 1, 65535),
  /* 17 */ chars('kdc.address', 255),
  /* 18 */ whole('kdc.port', 1, 65535),
  /* 19 */ whole('listenPort', 0, 65535),
  /* 20 */ whole('signalingPort', 0, 65535),
  /* 21 */ whole('slots', 1, MAX_SLOTS),
  /* 22 */ 'transport must be 0 (udp) or 1 (serial)',
  /* 23 */ 'clientInitiatedOnBoot must be true or false',
  /* 24 */ 'prefetchTicket must be true or false',
  /* 25 */ 'ciphersuites must be a list of 1 to 16 pairs',
  /* 26 */ 'a ciphersuite must be a pair [authAlg, encTransform]',
  /* 27 */ whole("a ciphersuite's authAlg and encTransform", 0, 255),
  /* 28 */ whole('spi', 256, 4294967295),
  /* 29 */ 'wifi must be [ssid, password]',
  /* 30 */ chars('wifi.ssid', 32),
  /* 31 */ chars('wifi.password', 64),
  /* 32 */ 'timers must be a list of 12 items',
  /* 33 */ 'timers.retransmitMs must be a list of 0 to 8 times',
  /* 34 */ whole('each of timers.retransmitMs', 1, 600000),
  /* 35 */ whole('timers.abortMs', 1, 600000),
  /* 36 */ whole('timers.unsolicitedBaseMs', 1, 600000),
  /* 37 */ whole('timers.unsolicitedRetries', 0, 16),
  /* 38 */ whole('timers.skewSec', 1, 86400),
  /* 39 */ whole('timers.ticketRefreshMarginSec', 0, 86400),
  /* 40 */ whole('timers.kdcTimeoutMs', 1, 600000),
  /* 41 */ whole('timers.kdcRetries', 0, 8),
  /* 42 */ whole('timers.prefetchDelayMs', 1, 600000),
  /* 43 */ whole('timers.prefetchRetryMs', 1, 600000),
  /* 44 */ whole('timers.prefetchRetries', 0, 16),
  /* 45 */ whole('timers.prefetchPeriodSec', 1, 86400),
];

/** Text from the board (a log line, a control reply) with each "cfg#N" followed by its sentence. */
export function explainConfigError(text: string): string {
  return text.replace(/cfg#(\d+)/g, (m, n: string) => (CONFIG_ERRORS[+n] ? `${m} (${CONFIG_ERRORS[+n]})` : m));
}

type Obj = { [k: string]: unknown };

function bad(field: string, why: string): never {
  throw new DecodeError('config: ' + field + ' ' + why);
}

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !(v instanceof Uint8Array) && !Array.isArray(v);
}

/** A whole number in lo..hi; when `def` is given, an absent value (undefined or null) is `def`. */
function int(v: unknown, field: string, lo: number, hi: number, def?: number): number {
  if (v == null && def !== undefined) return def;
  if (typeof v !== 'number' || v !== Math.floor(v) || v < lo || v > hi) bad(field, 'must be a whole number from ' + lo + ' to ' + hi);
  return v;
}

/**
 * Optional whole numbers from one table "name min max default boardKey,...": src[name]
 * (validated as `pre + name`) or the default into dst[name]. A board value (board[boardKey])
 * replaces the default unless it is absent, or 0 where 0 is out of range ("not set").
 * The same rule as the board's decoder (firmware/config.ts ints).
 */
function ints(rows: string, src: Obj, dst: Obj, board: Obj, pre: string): void {
  for (const row of rows.split(',')) {
    const r = row.split(' ');
    const lo = +r[1];
    const bv = board[r[4]] as number | undefined;
    dst[r[0]] = int(src[r[0]], pre + r[0], lo, +r[2], bv || (bv === 0 && lo === 0) ? (bv as number) : +r[3]);
  }
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > 255) bad(field, 'must be a non-empty string of at most 255 chars');
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) bad(field, 'must be printable ASCII without spaces');
  }
  return v;
}

function arr(v: unknown, field: string, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) bad(field, 'must be an array');
  if (v.length < min || v.length > max) bad(field, 'must have ' + min + ' to ' + max + ' entries');
  return v;
}

function text(v: unknown, field: string, lo: number, hi: number): string {
  if (typeof v !== 'string' || v.length < lo || v.length > hi) bad(field, 'must be ' + lo + ' to ' + hi + ' characters');
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) bad(field, 'must be printable ASCII');
  }
  return v;
}

/** wifi: {ssid, password?}. Error messages never include the password. */
function wifiOf(v: unknown): CtaWifi {
  if (!isObj(v)) bad('wifi', 'must be a map {ssid, password}');
  const w: CtaWifi = { ssid: text(v.ssid, 'wifi.ssid', 1, 32) };
  if (v.password != null) {
    const p = text(v.password, 'wifi.password', 8, 64);
    if (p.length === 64 && !/^[0-9a-fA-F]+$/.test(p)) bad('wifi.password', 'of 64 characters must be hex digits (a raw WPA key)');
    w.password = p;
  }
  return w;
}

/**
 * Validates a configuration given by field names (the CtaConfig fields; optional ones may be
 * absent) and fills defaults. Throws DecodeError naming the bad field.
 */
export function configFromObject(o: unknown, defaults?: ConfigDefaults): CtaConfig {
  if (!isObj(o)) bad('(top level)', 'must be a map');
  const m = o;
  const d = (defaults || {}) as Obj;
  const dt = (d.timers || {}) as Obj;

  const principal = str(m.principal, 'principal');
  if (principal.indexOf('@') >= 0) bad('principal', 'must not contain a realm (use realm)');
  const realm = str(m.realm, 'realm');

  const keysIn = arr(m.keys, 'keys', 1, MAX_KEYS);
  const keys: CtaKey[] = [];
  for (let i = 0; i < keysIn.length; i++) {
    const f = 'keys[' + i + ']';
    const k = keysIn[i];
    if (!isObj(k)) bad(f, 'must be a map');
    if (!(k.key instanceof Uint8Array)) bad(f + '.key', 'must be a byte string');
    const key = new Uint8Array(k.key);
    if (key.length !== 16 && key.length !== 32) bad(f + '.key', 'must be 16 or 32 bytes');
    keys.push({ etype: int(k.etype, f + '.etype', 1, 65535), kvno: int(k.kvno, f + '.kvno', 0, 4294967295), key: key });
  }

  const scsIn = arr(m.scs, 'scs', 1, MAX_SCS);
  const scs: CtaScConfig[] = [];
  for (let i = 0; i < scsIn.length; i++) {
    const f = 'scs[' + i + ']';
    const s = scsIn[i];
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

  const kd = m.kdc;
  if (!isObj(kd)) bad('kdc', 'must be a map {address, port}');
  const kdc = { address: str(kd.address, 'kdc.address'), port: int(kd.port, 'kdc.port', 1, 65535, 88) };

  const transport = m.transport == null ? 'udp' : m.transport;
  if (transport !== 'udp' && transport !== 'serial') bad('transport', 'must be "udp" or "serial"');

  const t = m.timers == null ? {} : m.timers;
  if (!isObj(t)) bad('timers', 'must be a map');
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

  const cfg: Obj = { principal, realm, keys, scs, kdc, transport, timers, ciphersuites };
  // slots: MAX_SLOTS (64); the board's number of slots replaces the default 4.
  ints(`listenPort 0 65535 1293 -,signalingPort 0 65535 2427 -,slots 1 ${MAX_SLOTS} 4 slots`, m, cfg, d, '');
  const bools = ['clientInitiatedOnBoot', 'prefetchTicket'];
  for (let i = 0; i < 2; i++) {
    const v = m[bools[i]];
    if (v != null && typeof v !== 'boolean') bad(bools[i], 'must be true or false');
    cfg[bools[i]] = v == null ? i > 0 : v;
  }
  if (m.spi != null) cfg.spi = int(m.spi, 'spi', 256, 4294967295);
  if (m.wifi != null) cfg.wifi = wifiOf(m.wifi);
  return cfg as CtaConfig;
}

/**
 * Validates a configuration given by field names (as configFromObject) and encodes it in the
 * compact form. Fields the board may default from its own board config (slots, timers) are
 * written as null when absent, so that the board's defaults apply. Throws DecodeError naming
 * the bad field; a configuration the board's decoder would refuse is never returned.
 */
export function encodeConfig(o: unknown): Uint8Array {
  const c = configFromObject(o);
  const m = o as Obj;
  const t = (m.timers ?? {}) as Obj;
  const absentAsNull = (v: unknown) => (v == null ? null : (v as CborValue));
  const items: CborValue[] = [
    CONFIG_VERSION,
    c.principal,
    c.realm,
    c.keys.map((k) => [k.etype, k.kvno, k.key]),
    c.scs.map((s) => (s.anyPort ? [s.principal, s.address ?? null, s.port ?? null, true] : [s.principal, s.address ?? null, s.port ?? null])),
    c.kdc.address,
    c.kdc.port,
    absentAsNull(m.listenPort),
    absentAsNull(m.signalingPort),
    absentAsNull(m.slots),
    c.transport === 'serial' ? 1 : 0,
    c.clientInitiatedOnBoot,
    c.prefetchTicket,
    c.ciphersuites,
    c.spi ?? null,
    c.wifi ? [c.wifi.ssid, c.wifi.password ?? null] : null,
    [t.retransmitMs == null ? null : (t.retransmitMs as number[]).slice(), ...TIMER_NAMES.map((name) => absentAsNull(t[name]))],
  ];
  const body = cborEncode(items);
  const bytes = new Uint8Array(body.length + 2);
  bytes.set(body, 0);
  const crc = crc16(body);
  bytes[body.length] = crc >> 8;
  bytes[body.length + 1] = crc & 0xff;
  decodeConfig(bytes); // the board's decoder and the validator, once more, on what is written
  return bytes;
}

/**
 * Decodes a compact configuration the way the board does (firmware/config.ts, with the
 * board's defaults), then validates its meaning as configFromObject does. Throws DecodeError
 * "config: <sentence>", with the board's check number when the board would refuse it too.
 */
export function decodeConfig(bytes: Uint8Array, defaults?: ConfigDefaults): CtaConfig {
  let cfg: CtaConfig;
  try {
    cfg = decodeOnBoard(bytes, defaults);
  } catch (e) {
    const m = /^cfg#(\d+)$/.exec((e as Error).message);
    if (!m) throw e;
    if (m[1] === '1' && isMapForm(bytes)) {
      throw new DecodeError('config: the file is in the map form of an older cta provision, which boards no longer read: make it again with cta provision');
    }
    throw new DecodeError(`config: ${CONFIG_ERRORS[+m[1]] || 'check failed'} (cfg#${m[1]})`);
  }
  return configFromObject(cfg, defaults);
}

/** A CBOR map (the configuration form of version 1), not a compact form. */
function isMapForm(bytes: Uint8Array): boolean {
  try {
    return isObj(cborDecode(bytes));
  } catch {
    return false;
  }
}

/** The full principal name "cta/x@REALM". */
export function fullPrincipal(cfg: CtaConfig): string {
  return cfg.principal + '@' + cfg.realm;
}

// ---- the library half of `cta provision` (./cli.ts parses its flags and calls these) ----

/** Enctypes the agent's crypto core implements. */
export const SUPPORTED_ETYPES = [17, 18, 19, 20];

export type ProvisionScOption = { principal: string; address?: string; port?: number; anyPort?: boolean };

export type ProvisionOptions = {
  /** Keytab bytes or parsed entries. */
  keytab: Uint8Array | KeytabEntry[];
  /** CTA principal, with or without realm. */
  principal: string;
  scs: ProvisionScOption[];
  kdc: { address: string; port: number };
  listenPort?: number;
  signalingPort?: number;
  slots?: number;
  transport?: 'udp' | 'serial';
  clientInitiatedOnBoot?: boolean;
  /** Default true (firmware/config.ts prefetchTicket). */
  prefetchTicket?: boolean;
  spi?: number;
  ciphersuites?: number[][];
  /** Timer overrides (firmware/config.ts CtaTimers fields). */
  timers?: { [k: string]: number | number[] };
  /** The WiFi network a WiFi board joins (firmware/config.ts wifi); password secret. */
  wifi?: { ssid: string; password?: string };
  /**
   * The board the configuration is for (board-configs/<board>.json): only keys of the
   * enctypes its image implements are kept, and a keytab with none is refused.
   */
  board?: { board: string; enctypes: number[] };
};

function stripRealm(name: string): string {
  const r = realmOf(name);
  return r === null ? name : name.slice(0, name.length - r.length - 1);
}

/**
 * The keys makeConfig would pick: supported enctypes of the highest kvno, one per enctype;
 * with a board, only the enctypes of its image (board-configs "enctypes").
 */
export function pickKeys(entries: KeytabEntry[], principal: string, board?: { board: string; enctypes: number[] }): { realm: string; name: string; keys: KeytabEntry[]; skipped: number[] } {
  const hits = findKeys(entries, principal);
  if (hits.length === 0) throw new UsageError(`principal '${principal}' is not in the keytab`);
  const realms: string[] = [];
  for (const e of hits) if (!realms.includes(e.principal.realm)) realms.push(e.principal.realm);
  if (realms.length > 1) throw new UsageError(`principal '${principal}' is in the keytab under several realms (${realms.join(', ')}): add @REALM`);
  const kvno = hits[0].kvno;
  const keys: KeytabEntry[] = [];
  const skipped: number[] = [];
  for (const e of hits) {
    if (e.kvno !== kvno) continue;
    if (!SUPPORTED_ETYPES.includes(e.etype) || (e.key.length !== 16 && e.key.length !== 32)) {
      if (!skipped.includes(e.etype)) skipped.push(e.etype);
      continue;
    }
    if (keys.some((k) => k.etype === e.etype)) continue;
    keys.push(e);
  }
  if (keys.length === 0) {
    throw new UsageError(`principal '${principal}' has no key of a supported enctype (${SUPPORTED_ETYPES.join(', ')}) at kvno ${kvno}`);
  }
  if (board) {
    const lacking = keys.filter((k) => !board.enctypes.includes(k.etype)).map((k) => k.etype);
    const usable = keys.filter((k) => board.enctypes.includes(k.etype));
    if (usable.length === 0) {
      const names = (l: number[]) => l.map((e) => `${ENCTYPE_NAMES[e] ?? 'etype'} (${e})`).join(', ');
      throw new UsageError(`principal '${principal}' has keys only of enctypes board ${board.board} lacks (${names(lacking)}) at kvno ${kvno}; its image implements ${names(board.enctypes)}`);
    }
    for (const e of lacking) if (!skipped.includes(e)) skipped.push(e);
    return { realm: realms[0], name: stripRealm(principalName(hits[0])), keys: usable, skipped };
  }
  return { realm: realms[0], name: stripRealm(principalName(hits[0])), keys, skipped };
}

/** Builds the configuration in its compact form (encodeConfig above); the result decodes with firmware/config.ts decodeConfig. */
export function makeConfig(opts: ProvisionOptions): Uint8Array {
  let entries: KeytabEntry[];
  if (opts.keytab instanceof Uint8Array) {
    try {
      entries = parseKeytab(opts.keytab);
    } catch (e) {
      throw new UsageError(`bad keytab: ${(e as Error).message}`);
    }
  } else entries = opts.keytab;
  const picked = pickKeys(entries, opts.principal, opts.board);
  if (!opts.scs || opts.scs.length === 0) throw new UsageError('at least one --sc is needed');
  const map: { [k: string]: unknown } = {
    principal: picked.name,
    realm: picked.realm,
    keys: picked.keys.map((k) => ({ etype: k.etype, kvno: k.kvno, key: k.key })),
    scs: opts.scs.map((s) => {
      const o: { [k: string]: unknown } = { principal: withRealm(s.principal, picked.realm) };
      if (s.address !== undefined) o.address = s.address;
      if (s.port !== undefined) o.port = s.port;
      if (s.anyPort) o.anyPort = true;
      return o;
    }),
    kdc: { address: opts.kdc.address, port: opts.kdc.port },
    listenPort: opts.listenPort ?? 1293,
    signalingPort: opts.signalingPort ?? 2427,
    transport: opts.transport ?? 'udp',
    clientInitiatedOnBoot: !!opts.clientInitiatedOnBoot,
  };
  if (opts.prefetchTicket === false) map.prefetchTicket = false;
  if (opts.slots !== undefined) map.slots = opts.slots;
  if (opts.spi !== undefined) map.spi = opts.spi;
  if (opts.ciphersuites) map.ciphersuites = opts.ciphersuites;
  if (opts.timers) map.timers = opts.timers;
  if (opts.wifi) map.wifi = opts.wifi.password === undefined ? { ssid: opts.wifi.ssid } : { ssid: opts.wifi.ssid, password: opts.wifi.password };
  // Validated with named-field messages; the board's own decoder also judges the result.
  try {
    return encodeConfig(map);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** One line per fact, no key bytes. */
export function summarize(cfg: CtaConfig, slotsFromBoard = false): string[] {
  const lines = [
    `principal  ${cfg.principal}@${cfg.realm}`,
    `keys       ${cfg.keys.map((k) => `${ENCTYPE_NAMES[k.etype] ?? 'etype ' + k.etype} kvno ${k.kvno}`).join(', ')}`,
  ];
  for (const s of cfg.scs) lines.push(`sc         ${s.principal}${s.address ? ` at ${s.address}:${s.port ?? 1293}${s.anyPort ? ' (Wake Ups from any port)' : ''}` : ' (any address)'}`);
  lines.push(`kdc        ${cfg.kdc.address}:${cfg.kdc.port}`);
  lines.push(`transport  ${cfg.transport}, listen ${cfg.listenPort}, signaling ${cfg.signalingPort}, ${slotsFromBoard ? "the board's number of" : cfg.slots} slots`);
  lines.push(`boot       ${cfg.clientInitiatedOnBoot ? 'client-initiated session (nonce 0)' : 'wait for a Wake Up'}`);
  lines.push(`tickets    ${cfg.prefetchTicket ? 'fetched at boot, refreshed before expiry' : 'fetched on the first Wake Up'}`);
  // The password is key-like material: only whether there is one.
  if (cfg.wifi) lines.push(`wifi       join "${cfg.wifi.ssid}" (${cfg.wifi.password ? 'password set, not shown' : 'open network, no password'}) on WiFi boards`);
  else lines.push(`wifi       none (a WiFi board uses the network it has saved)`);
  return lines;
}
