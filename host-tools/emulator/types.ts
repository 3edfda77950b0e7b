// The emulator's shared types: its options, the Emulator handle startEmulator returns and
// the records it exposes (Wifi, UDP stall, memory), and EmulatorContext, what every
// stand-in (Storage, dgram, serial, Wifi, natives) shares of one running vm context.
// Kept apart so the stand-in files and emulator.ts import these without importing each other.
import type { Duplex } from 'node:stream';
import type { BoardConfig } from '../build/boards.ts';

export interface EmulatorOptions {
  /** Board config name; default 'emulator'. */
  board?: string;
  /** Image or bundle to run; default dist/firmware/<board>.img (built from firmware/main.ts if missing). */
  bundlePath?: string;
  /**
   * The text dictionary its printed lines are expanded with (build/text.ts): default the
   * one next to bundlePath, else dist/firmware/<board>.dict.json; null: print codes as they are.
   */
  dictionary?: string | null;
  /** Bundle source, instead of bundlePath. */
  code?: string;
  /** Directory holding the Storage files (created if missing). */
  storageDir: string;
  /** Storage files written before the bundle starts (e.g. {"cta.cfg": cbor}). */
  files?: { [name: string]: Uint8Array };
  /** Address UDP sockets bind to; default 127.0.0.1. */
  udpBindAddress?: string;
  /** Remaps ports the bundle binds (e.g. {1293: 40000}); 0 = any free port. */
  udpPortMap?: { [boardPort: number]: number };
  /** Device / pseudo-terminal path for the board's serial port. */
  serialPath?: string;
  /** A stream for the board's serial port (alternative to serialPath). */
  serialStream?: Duplex;
  /** Each printed line (print, console.log, uncaught errors). */
  onLog?: (line: string) => void;
  /** E.hwRand source; default node:crypto. */
  hwRand?: () => number;
  /** WiFi boards: the first failTimes connect() calls fail with failWith (default 'auth_fail'). */
  wifi?: { failTimes?: number; failWith?: string };
}

/** What the firmware asked of the Wifi stand-in (WiFi boards). */
export interface EmulatedWifi {
  /** Every connect() call, in order (the options as given; test-side only, never printed). */
  connects: { ssid: string; password: string | undefined }[];
  /** The SSID of the last successful connect(), or null. */
  ssid: string | null;
  connected: boolean;
}

/** What Emulator.stallUdp stalled, and what the stalled sockets have dropped since (live). */
export interface UdpStall {
  sockets: number;
  dropped: number;
}

export interface EmulatorMemory {
  free: number;
  usage: number;
  total: number;
  blocksize: number;
}

export interface Emulator {
  readonly board: BoardConfig;
  /** The context's global object (e.g. global.cta, set by firmware/main.ts). */
  readonly global: any;
  /** Every printed line, in order. */
  readonly logs: string[];
  /** Errors thrown by callbacks (timers, sockets, serial), as Espruino reports "Uncaught". */
  readonly errors: Error[];
  /** The Wifi stand-in's record; null on boards without WiFi. */
  readonly wifi: EmulatedWifi | null;
  memory(): EmulatorMemory;
  /** Local addresses of the bound UDP sockets. */
  udpAddresses(): { address: string; port: number }[];
  /**
   * Fault injection: the UDP socket(s) bound to `port` (every bound socket when omitted) stop
   * delivering: once `after` more datagrams (default 0) have reached the firmware, every
   * datagram that arrives is dropped without a trace, as a wedged network driver does.
   * Sending still works. A socket the firmware creates afterwards (closing the stalled one and
   * binding again, even on the same port) is not stalled. The returned record counts the
   * sockets stalled and the datagrams dropped so far (it keeps counting).
   */
  stallUdp(port?: number, after?: number): UdpStall;
  /** Resolves when a log line matches (or rejects after timeoutMs). */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** A string the firmware made (an error message, global.ctaError) with its text codes expanded. */
  text(s: string): string;
  stop(): Promise<void>;
}

/** What the stand-ins share of one running emulator: the board, the vm context's global and its log. */
export interface EmulatorContext {
  readonly board: BoardConfig;
  /** The context's global object: values handed to the firmware are made with its constructors. */
  readonly G: any;
  /** Prints a line as the board would (expanded, recorded, matched against waitForLog). */
  log(line: string): void;
  /** Runs a firmware callback as Espruino does: an exception is reported "Uncaught", nothing runs once stopped. */
  guard(fn: (...a: any[]) => unknown, args: unknown[]): void;
  /** True once Emulator.stop() has begun. */
  isStopped(): boolean;
  /** Bytes as a Uint8Array / ArrayBuffer of the context (so instanceof works inside the firmware). */
  toCtxU8(b: ArrayLike<number>): Uint8Array;
  toCtxAB(b: ArrayLike<number>): ArrayBufferLike;
}
