// `cta provision`: make a CTA configuration (the CBOR "cta.cfg" that
// firmware/config.ts decodes) from an MIT keytab. Prints a summary, never key bytes.
import { readFileSync, writeFileSync } from 'node:fs';
import { Encoder } from 'cbor-x';
import { parseArgs, parseHostPort, intOption, UsageError } from '../args.ts';
import { parseKeytab, findKeys, principalName, ENCTYPE_NAMES } from '../../firmware/proto/keytab.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import { decodeConfig, CONFIG_VERSION, CONFIG_FILE, MAX_SLOTS } from '../../firmware/config.ts';
import type { CtaConfig } from '../../firmware/config.ts';
import { realmOf, withRealm } from '../kdc/principal.ts';

/** Enctypes the agent's crypto core implements. */
export const SUPPORTED_ETYPES = [17, 18, 19, 20];

export const help = `usage: cta provision --keytab FILE --principal cta/NAME[@REALM] --sc sc/NAME[@REALM][=HOST:PORT] ... --kdc HOST[:PORT] [options] [-o cta.cbor]

Makes the CTA's configuration (CBOR, stored on the board as "${CONFIG_FILE}")
from the CTA principal's keys in an MIT keytab (all supported enctypes of the
highest kvno). The output holds the long-term keys: keep it private.

  --keytab FILE              MIT keytab holding the CTA principal's keys
  --principal NAME           the CTA principal, e.g. cta/cta1.example.net@EXAMPLE.NET
                             (without @REALM: the realm found in the keytab)
  --sc NAME[=HOST:PORT]      a Signaling Controller allowed to wake this CTA
                             (without @REALM: the CTA's realm)
                             (repeatable); with =HOST:PORT, Wake Ups are only
                             accepted from that address, and client-initiated
                             sessions go there
  --kdc HOST:PORT            the KDC for the AS exchange (port default 88)
  --listen-port N            key-management UDP port (default 1293)
  --signaling-port N         protected-signaling UDP port (default 2427)
  --slots N                  session-table size, 1 to ${MAX_SLOTS} (default: the board's, 4 to 16)
  --transport udp|serial     how the board reaches the network (default udp)
  --client-initiated-on-boot start a client-initiated session (nonce 0) at boot
  --no-prefetch-ticket       do not fetch the SC tickets at boot and refresh them
                             ahead of expiry (default: prefetch, so a Wake Up
                             needs no KDC round trip); tickets are then fetched
                             on the first Wake Up
  --spi N                    fixed CTA inbound SPI (default: random per SA)
  --wifi-ssid SSID           WiFi boards (esp32, espruino-wifi): the network the
                             board joins before the agent starts (without it such
                             a board assumes a network saved with
                             require("Wifi").save()); other boards ignore it
  --wifi-password-stdin      read the WiFi password from standard input (one line)
  --wifi-password-file FILE  read the WiFi password from FILE (first line);
                             without either, an open network. The password is
                             never taken on the command line and never printed
  -o, --output FILE          where to write the CBOR (default cta.cbor)`;

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

function parseSc(s: string): ProvisionScOption {
  const eq = s.indexOf('=');
  const principal = eq >= 0 ? s.slice(0, eq) : s;
  if (!/^[^\s@]+(@[^\s@]+)?$/.test(principal)) throw new UsageError(`bad --sc '${s}': expected sc/NAME[@REALM][=HOST:PORT]`);
  if (eq < 0) return { principal };
  const hp = parseHostPort(s.slice(eq + 1), '', '--sc address');
  if (!hp.host) throw new UsageError(`bad --sc '${s}': no host before the port`);
  if (hp.port === 0) throw new UsageError(`bad --sc '${s}': port 0`);
  return { principal, address: hp.host, port: hp.port };
}

function parseKdc(s: string | undefined): { address: string; port: number } {
  if (!s) throw new UsageError('--kdc HOST:PORT is required');
  const hp = s.includes(':') ? parseHostPort(s, '', '--kdc') : { host: s, port: 88 };
  if (!hp.host || hp.port === 0 || /\s/.test(hp.host)) throw new UsageError(`bad --kdc '${s}': expected HOST:PORT`);
  return { address: hp.host, port: hp.port };
}

/** The first line of a password source, without its line end. */
function firstLine(text: string): string {
  const nl = text.search(/\r?\n/);
  return nl < 0 ? text : text.slice(0, nl);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
    if (text.length > 4096) throw new UsageError('--wifi-password-stdin: standard input is longer than a WiFi password');
  }
  return text;
}

/** --wifi-* flags to ProvisionOptions.wifi; never puts the password in a message. */
async function wifiOption(v: { [k: string]: string | string[] | boolean | undefined }, stdin: NodeJS.ReadableStream): Promise<ProvisionOptions['wifi']> {
  const ssid = v['wifi-ssid'] as string | undefined;
  const file = v['wifi-password-file'] as string | undefined;
  const fromStdin = !!v['wifi-password-stdin'];
  if (ssid === undefined) {
    if (file !== undefined || fromStdin) throw new UsageError('a WiFi password needs --wifi-ssid SSID');
    return undefined;
  }
  if (file !== undefined && fromStdin) throw new UsageError('give the WiFi password one way: --wifi-password-stdin or --wifi-password-file, not both');
  let password: string | undefined;
  if (fromStdin) {
    password = firstLine(await readAll(stdin));
    if (password === '') throw new UsageError('--wifi-password-stdin: standard input is empty (for an open network leave out the password flags)');
  } else if (file !== undefined) {
    try {
      password = firstLine(readFileSync(file, 'utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new UsageError(`cannot read --wifi-password-file '${file}': ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message)}`);
    }
    if (password === '') throw new UsageError(`--wifi-password-file '${file}' is empty`);
  }
  return password === undefined ? { ssid } : { ssid, password };
}

export async function run(argv: string[], io: { stdin?: NodeJS.ReadableStream } = {}): Promise<number> {
  const { values } = parseArgs(argv, {
    keytab: { type: 'string' },
    principal: { type: 'string' },
    sc: { type: 'string', multiple: true },
    kdc: { type: 'string' },
    'listen-port': { type: 'string' },
    'signaling-port': { type: 'string' },
    slots: { type: 'string' },
    transport: { type: 'string' },
    'client-initiated-on-boot': { type: 'boolean' },
    'no-prefetch-ticket': { type: 'boolean' },
    spi: { type: 'string' },
    'wifi-ssid': { type: 'string' },
    'wifi-password-stdin': { type: 'boolean' },
    'wifi-password-file': { type: 'string' },
    // Only to refuse it with a clear message (and without echoing the value).
    'wifi-password': { type: 'string' },
    output: { type: 'string', short: 'o' },
  });
  const v = values as { [k: string]: string | string[] | boolean | undefined };
  if (v['wifi-password'] !== undefined) {
    throw new UsageError('--wifi-password is not accepted (a password on the command line ends up in shell history and process lists): use --wifi-password-stdin or --wifi-password-file FILE');
  }
  if (!v.keytab) throw new UsageError('--keytab FILE is required');
  if (!v.principal) throw new UsageError('--principal NAME is required');
  const scList = (v.sc as string[] | undefined) ?? [];
  if (scList.length === 0) throw new UsageError('at least one --sc NAME[=HOST:PORT] is required');
  const kdc = parseKdc(v.kdc as string | undefined);
  const transport = (v.transport as string | undefined) ?? 'udp';
  if (transport !== 'udp' && transport !== 'serial') throw new UsageError(`--transport must be udp or serial, not '${transport}'`);
  let keytab: Uint8Array;
  try {
    keytab = readFileSync(v.keytab as string);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot read keytab '${v.keytab}': ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message)}`);
  }
  const opts: ProvisionOptions = {
    keytab: new Uint8Array(keytab),
    principal: v.principal as string,
    scs: scList.map(parseSc),
    kdc,
    listenPort: intOption(v['listen-port'] as string | undefined, 'listen-port', 1293, 1, 65535),
    signalingPort: intOption(v['signaling-port'] as string | undefined, 'signaling-port', 2427, 1, 65535),
    transport: transport as 'udp' | 'serial',
    clientInitiatedOnBoot: !!v['client-initiated-on-boot'],
    prefetchTicket: !v['no-prefetch-ticket'],
  };
  if (v.slots !== undefined) opts.slots = intOption(v.slots as string, 'slots', 4, 1, MAX_SLOTS);
  if (v.spi !== undefined) opts.spi = intOption(v.spi as string, 'spi', 0, 256, 4294967295);
  const wifi = await wifiOption(v, io.stdin ?? process.stdin);
  if (wifi) opts.wifi = wifi;
  const bytes = makeConfig(opts);
  const out = (v.output as string | undefined) ?? 'cta.cbor';
  try {
    writeFileSync(out, bytes, { mode: 0o600 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot write '${out}': ${code === 'ENOENT' ? 'no such directory' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message)}`);
  }
  const cfg = decodeConfig(bytes);
  for (const line of summarize(cfg, v.slots === undefined)) console.log(line);
  console.log(`wrote      ${out} (${bytes.length} bytes; holds the long-term keys, keep it private)`);
  return 0;
}
