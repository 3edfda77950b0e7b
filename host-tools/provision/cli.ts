// `cta provision`: parses its flags, makes the CTA configuration (./config.ts), writes
// it and prints a summary, never key bytes.
import { closeSync, fchmodSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs, parseHostPort, intOption, UsageError } from '../args.ts';
import { listBoards, loadBoard } from '../build/boards.ts';
import { decodeConfig, makeConfig, summarize, CONFIG_FILE, MAX_SLOTS, type ProvisionOptions, type ProvisionScOption } from './config.ts';

// The library half keeps its old import path for existing callers (the tests).
export { makeConfig, pickKeys, summarize, SUPPORTED_ETYPES, type ProvisionOptions, type ProvisionScOption } from './config.ts';

export const help = `usage: cta provision --keytab FILE --principal cta/NAME[@REALM] --sc sc/NAME[@REALM][=HOST:PORT] ... --kdc HOST[:PORT] [options] [-o cta.cbor]

Makes the CTA's configuration (compact CBOR with a CRC, stored on the board as "${CONFIG_FILE}")
from the CTA principal's keys in an MIT keytab (all supported enctypes of the
highest kvno). The output holds the long-term keys: keep it private.

  --keytab FILE              MIT keytab holding the CTA principal's keys
  --principal NAME           the CTA principal, e.g. cta/cta1.example.net@EXAMPLE.NET
                             (without @REALM: the realm found in the keytab)
  --sc NAME[=HOST:PORT]      a Signaling Controller allowed to wake this CTA
                             (without @REALM: the CTA's realm)
                             (repeatable); with =HOST:PORT, Wake Ups, Rekeys and
                             replies are only accepted from that address and
                             port, and client-initiated sessions go there
  --sc-any-port              accept them from any port of HOST (for cta sc
                             --workers, whose workers send from their own ports)
  --kdc HOST:PORT            the KDC for the AS exchange (port default 88)
  --board B                  the board the configuration is for (${listBoards().join(', ')}):
                             only keys of the enctypes its image implements are
                             kept (board-configs "enctypes"; the Puck.js has only
                             17 and 18), and a keytab with none of them is refused
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
    board: { type: 'string' },
    'listen-port': { type: 'string' },
    'signaling-port': { type: 'string' },
    slots: { type: 'string' },
    transport: { type: 'string' },
    'client-initiated-on-boot': { type: 'boolean' },
    'no-prefetch-ticket': { type: 'boolean' },
    'sc-any-port': { type: 'boolean' },
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
    scs: scList.map((x) => (v['sc-any-port'] ? { ...parseSc(x), anyPort: true } : parseSc(x))),
    kdc,
    listenPort: intOption(v['listen-port'] as string | undefined, 'listen-port', 1293, 1, 65535),
    signalingPort: intOption(v['signaling-port'] as string | undefined, 'signaling-port', 2427, 1, 65535),
    transport: transport as 'udp' | 'serial',
    clientInitiatedOnBoot: !!v['client-initiated-on-boot'],
    prefetchTicket: !v['no-prefetch-ticket'],
  };
  if (v.slots !== undefined) opts.slots = intOption(v.slots as string, 'slots', 4, 1, MAX_SLOTS);
  if (v.board !== undefined) {
    const b = loadBoard(v.board as string);
    opts.board = { board: b.board, enctypes: b.enctypes };
  }
  if (v.spi !== undefined) opts.spi = intOption(v.spi as string, 'spi', 0, 256, 4294967295);
  const wifi = await wifiOption(v, io.stdin ?? process.stdin);
  if (wifi) opts.wifi = wifi;
  const bytes = makeConfig(opts);
  const out = (v.output as string | undefined) ?? 'cta.cbor';
  try {
    // 0600 also over an existing file (writeFileSync's mode applies only to a new one).
    const fd = openSync(out, 'w', 0o600);
    try {
      fchmodSync(fd, 0o600);
      writeFileSync(fd, bytes);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new UsageError(`cannot write '${out}': ${code === 'ENOENT' ? 'no such directory' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (code ?? (e as Error).message)}`);
  }
  const cfg = decodeConfig(bytes);
  for (const line of summarize(cfg, v.slots === undefined)) console.log(line);
  console.log(`wrote      ${out} (${bytes.length} bytes; holds the long-term keys, keep it private)`);
  return 0;
}
