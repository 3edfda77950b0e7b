// A CTA's configuration (the CBOR "cta.cfg" that firmware/config.ts decodes) from
// the CTA principal's keys: what `cta provision` writes, and what the demo, the HIL
// runner, the firmware bench and the tests build directly. Never prints key bytes.
import { Encoder } from 'cbor-x';
import { UsageError } from '../args.ts';
import { parseKeytab, findKeys, principalName, ENCTYPE_NAMES } from '../../firmware/proto/keytab.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import { decodeConfig, CONFIG_VERSION } from '../../firmware/config.ts';
import type { CtaConfig } from '../../firmware/config.ts';
import { realmOf, withRealm } from '../principal.ts';

/** Enctypes the agent's crypto core implements. */
export const SUPPORTED_ETYPES = [17, 18, 19, 20];

export type ProvisionScOption = { principal: string; address?: string; port?: number };

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
};

const encoder = new Encoder({ tagUint8Array: false, useRecords: false, mapsAsObjects: true } as ConstructorParameters<typeof Encoder>[0]);

function stripRealm(name: string): string {
  const r = realmOf(name);
  return r === null ? name : name.slice(0, name.length - r.length - 1);
}

/** The keys makeConfig would pick: supported enctypes of the highest kvno, one per enctype. */
export function pickKeys(entries: KeytabEntry[], principal: string): { realm: string; name: string; keys: KeytabEntry[]; skipped: number[] } {
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
  return { realm: realms[0], name: stripRealm(principalName(hits[0])), keys, skipped };
}

/** Builds the CBOR configuration; the result decodes with firmware/config.ts decodeConfig. */
export function makeConfig(opts: ProvisionOptions): Uint8Array {
  let entries: KeytabEntry[];
  if (opts.keytab instanceof Uint8Array) {
    try {
      entries = parseKeytab(opts.keytab);
    } catch (e) {
      throw new UsageError(`bad keytab: ${(e as Error).message}`);
    }
  } else entries = opts.keytab;
  const picked = pickKeys(entries, opts.principal);
  if (!opts.scs || opts.scs.length === 0) throw new UsageError('at least one --sc is needed');
  const map: { [k: string]: unknown } = {
    v: CONFIG_VERSION,
    principal: picked.name,
    realm: picked.realm,
    keys: picked.keys.map((k) => ({ etype: k.etype, kvno: k.kvno, key: Buffer.from(k.key) })),
    scs: opts.scs.map((s) => {
      const o: { [k: string]: unknown } = { principal: withRealm(s.principal, picked.realm) };
      if (s.address !== undefined) o.address = s.address;
      if (s.port !== undefined) o.port = s.port;
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
  const bytes = new Uint8Array(encoder.encode(map));
  // The firmware's own decoder is the judge: a config it would refuse is never written.
  try {
    decodeConfig(bytes);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  return bytes;
}

/** One line per fact, no key bytes. */
export function summarize(cfg: CtaConfig, slotsFromBoard = false): string[] {
  const lines = [
    `principal  ${cfg.principal}@${cfg.realm}`,
    `keys       ${cfg.keys.map((k) => `${ENCTYPE_NAMES[k.etype] ?? 'etype ' + k.etype} kvno ${k.kvno}`).join(', ')}`,
  ];
  for (const s of cfg.scs) lines.push(`sc         ${s.principal}${s.address ? ` at ${s.address}:${s.port ?? 1293}` : ' (any address)'}`);
  lines.push(`kdc        ${cfg.kdc.address}:${cfg.kdc.port}`);
  lines.push(`transport  ${cfg.transport}, listen ${cfg.listenPort}, signaling ${cfg.signalingPort}, ${slotsFromBoard ? "the board's number of" : cfg.slots} slots`);
  lines.push(`boot       ${cfg.clientInitiatedOnBoot ? 'client-initiated session (nonce 0)' : 'wait for a Wake Up'}`);
  lines.push(`tickets    ${cfg.prefetchTicket ? 'fetched at boot, refreshed before expiry' : 'fetched on the first Wake Up'}`);
  // The password is key-like material: only whether there is one.
  if (cfg.wifi) lines.push(`wifi       join "${cfg.wifi.ssid}" (${cfg.wifi.password ? 'password set, not shown' : 'open network, no password'}) on WiFi boards`);
  else lines.push(`wifi       none (a WiFi board uses the network it has saved)`);
  return lines;
}
