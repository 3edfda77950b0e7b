// board-configs/<board>.json: the single source of a board's facts (ARCHITECTURE.md).
// The build reads it for the BOARD constant, the emulator to refuse transports the
// board lacks, the flasher to upload.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError } from '../args.ts';

export const BOARD_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'board-configs');

export interface BoardTimers {
  solicitedTimeoutMs: number;
  retransmitMs: number[];
  unsolicitedInitialMs: number;
  unsolicitedRetries: number;
  clockSkewSec: number;
}

export interface BoardConfig {
  board: string;
  name: string;
  /** Espruino board build name (boards/<X>.py in espruino/Espruino). */
  espruinoBuild: string;
  /** JS variables (RAM) of the build. */
  variables: number;
  /** Bytes per variable (process.memory().blocksize). */
  blockSize: number;
  /**
   * Variables the firmware may use with its code in flash, in this board's own units:
   * after boot, and at the peak of an exchange (checked by test/espruino-bin-flash.test.ts
   * with ESPRUINO_BIN); source: how the figure was chosen.
   */
  ramBudget: { boot: number; peak: number; source: string };
  /**
   * What the agent was measured to need on this board's layout (variables after boot, at a
   * later exchange's peak, at the first exchange's, with its AS exchange), where measured;
   * `cta build` and `cta flash` say when it does not fit the board's variables.
   */
  ramMeasured?: { boot: number; peak: number; peakFirst: number; source: string };
  /**
   * Storage for files (the Espruino board definition's saved_code); keepFree: what the
   * image plus a typical configuration must leave to the user (the issue-11 target);
   * source: where the figure comes from.
   */
  storage: { bytes: number; keepFree: number; source: string };
  nativeCrypto: { sha1: boolean; sha256: boolean; sha384: boolean; aes: boolean };
  /**
   * Kerberos enctypes the board's image implements (a subset of 17, 18: RFC 3962; 19,
   * 20: RFC 8009): the build drops the code of a family none of them needs, the CTA
   * announces only these in its AS-REQ, `cta provision --board` keeps only keys of these.
   */
  enctypes: number[];
  /** wifi: the UDP network is WiFi, joined with require(wifiModule).connect() before the agent binds. */
  /**
   * recvBuffer: the UDP sockets' recvBufferSize (bytes): the largest datagram the CTA takes
   * (an AS-REP included) and, on the Linux and ESP32 builds, the kernel receive queue (SO_RCVBUF).
   */
  transports: { udp: boolean; serial: 'Serial1' | 'USB' | null; udpPort: number | null; recvBuffer?: number; wifi?: boolean; wifiModule?: string };
  /** consoleTo: where the JS console moves when the serial transport shares its port (null: no move). */
  /** path: Linux builds only, the device file Serial1 opens (a PTY in the tests; relative to the interpreter's working directory). */
  serial: { port: string | null; rx: string | null; tx: string | null; baud: number | null; consoleTo: string | null; path?: string | null };
  timers: BoardTimers;
  /**
   * What the board's image carries beyond the key-management exchange itself.
   * signaling: protected call signaling (ESP-protected NCS over the SA, proto/esp.ts);
   * without it the board establishes SAs but drops signaling datagrams (esp_no_sa).
   * counterNames (default true): false leaves the counter and drop-reason names in the
   * build's dictionary; the board reports its counters as a list of numbers, which the
   * host tools name again (build/text.ts nameCounters).
   */
  features: { signaling: boolean; counterNames?: boolean };
  /** Session-table size. */
  slots: number;
  notes: string[];
}

export function listBoards(): string[] {
  return readdirSync(BOARD_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();
}

const cache: { [name: string]: BoardConfig } = {};

/** Loads board-configs/<name>.json; UsageError for an unknown board. */
export function loadBoard(name: string): BoardConfig {
  if (cache[name]) return cache[name];
  const boards = listBoards();
  if (!/^[a-z0-9-]+$/.test(name) || !boards.includes(name)) {
    throw new UsageError(`unknown board '${name}': expected one of ${boards.join(', ')}`);
  }
  const cfg = JSON.parse(readFileSync(join(BOARD_DIR, `${name}.json`), 'utf8')) as BoardConfig;
  if (cfg.board !== name) throw new Error(`board-configs/${name}.json names board '${cfg.board}'`);
  const et = cfg.enctypes;
  if (!Array.isArray(et) || et.length === 0 || et.some((e) => ![17, 18, 19, 20].includes(e)) || (et.includes(20) && !cfg.nativeCrypto.sha384)) {
    throw new Error(`board-configs/${name}.json: enctypes must list some of 17, 18, 19, 20 (20 only with nativeCrypto.sha384)`);
  }
  cache[name] = cfg;
  return cfg;
}
