// The Platform on Espruino globals: what the board runs, and what the host
// emulator runs too (it gives the bundle the same globals). Written inside the
// Espruino subset. API shapes checked against espruino/Espruino:
//  - libs/network/jswrap_net.c: dgram.createSocket('udp4'), socket.bind(port),
//    socket.send(string, port, address) (a *string*), 'message' (msg: binary string,
//    rinfo {address, port, size}).
//  - src/jswrap_storage.c: Storage.readArrayBuffer(name) (undefined if absent),
//    Storage.write(name, data) (typed arrays ok; zero-length files are refused),
//    Storage.erase(name); names up to 28 characters.
//  - src/jswrap_espruino.c: E.toUint8Array(str), E.toString(u8), E.hwRand(),
//    E.setConsole(device, {force}).
import type { Platform, UdpSocket, SerialLink, Storage, MemoryInfo } from './platform.ts';
import type { CryptoBackend } from '../proto/crypto/backend.ts';
import { makeEspruinoBackend } from './espruino-crypto.ts';

/** The board facts the build injects as the BOARD constant (host-tools/build/build.ts boardDefine). */
export interface BoardInfo {
  board: string;
  variables: number;
  nativeCrypto: { sha1: boolean; sha256: boolean; sha384: boolean; aes: boolean };
  transports: { udp: boolean; serial: string | null; udpPort: number | null; recvBuffer?: number; wifi?: boolean; wifiModule?: string };
  serial: { port: string | null; rx: string | null; tx: string | null; baud: number | null; consoleTo: string | null; path?: string | null };
  timers: {
    solicitedTimeoutMs: number;
    retransmitMs: number[];
    unsolicitedInitialMs: number;
    unsolicitedRetries: number;
    clockSkewSec: number;
  };
  slots: number;
}

declare global {
  /** Injected by `cta build` from board-configs/<board>.json; undefined outside a bundle. */
  const BOARD: BoardInfo;
}

// Espruino globals, declared here (module scope) so they shadow Node's typings.
declare const global: { [name: string]: any };
declare const E: {
  hwRand(): number;
  toUint8Array(s: string): Uint8Array;
  toString(u8: Uint8Array): string;
  setConsole(device: string | null, options: { force: boolean }): void;
};
declare const process: { memory(): { free: number; usage: number; total: number } };
declare function print(s: string): void;
// Build-time board facts (host-tools/build/build.ts boardDefines), tested inline as
// `(typeof BOARD_X === 'undefined' || BOARD_X)` so the minifier drops the UDP or
// serial glue from bundles of boards without it; outside a bundle all is kept.
declare const BOARD_UDP: boolean;
declare const BOARD_SERIAL: boolean;

/**
 * Measured on 2v29: Uint8Array.prototype.slice returns a plain Array (not a
 * Uint8Array, no 8-bit wrap), so `x.slice() instanceof Uint8Array` is false and
 * code that copies bytes with slice breaks. Espruino lets JS define the method on
 * the prototype, which then wins over the native one: install a correct copy.
 * Runs when this module is evaluated (before the agent starts). Portable code
 * should still prefer `new Uint8Array(x.subarray(a, b))` for copies.
 */
export function installEspruinoFixes(): void {
  const probe = new Uint8Array(1).slice(0);
  if (!(probe instanceof Uint8Array)) {
    (Uint8Array.prototype as any).slice = function (this: Uint8Array, start?: number, end?: number): Uint8Array {
      return new Uint8Array(this.subarray(start as number, end));
    };
  }
}
installEspruinoFixes();

/**
 * Espruino's require(), reached through `global` so that esbuild does not treat it
 * as a bundler import (a literal require("x") makes esbuild emit a shim that probes Proxy).
 */
export function espruinoRequire(name: string): any {
  return global.require(name);
}

/** A binary string (one char per byte, as dgram/Serial deliver) to bytes. */
export function fromBinaryString(s: string): Uint8Array {
  if (typeof E !== 'undefined' && E.toUint8Array) return E.toUint8Array(s);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

/** Bytes to a binary string (what dgram.send wants). */
export function toBinaryString(b: Uint8Array): string {
  if (b.length === 0) return '';
  if (typeof E !== 'undefined' && E.toString) return E.toString(b);
  let s = '';
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]);
  return s;
}

// Module-level functions rather than closures made per platform: on the interpreter a
// closure costs variables of its own and keeps the scope that made it alive.
function stRead(name: string): Uint8Array | null {
  const ab = espruinoRequire('Storage').readArrayBuffer(name);
  if (ab === undefined || ab === null) return null;
  // A copy: on a board the buffer is memory-mapped flash (read-only).
  return new Uint8Array(ab).slice();
}

function stWrite(name: string, data: Uint8Array): void {
  // Espruino cannot create a zero-length file: an empty write removes the file.
  if (data.length === 0) return stErase(name);
  if (!espruinoRequire('Storage').write(name, data)) throw new Error('Storage.write failed for ' + name);
}

function stErase(name: string): void {
  espruinoRequire('Storage').erase(name);
}

/** UdpSocket methods shared by every socket (`this` is the socket's wrapper { s: dgram socket }). */
function udpSend(this: { s: any }, data: Uint8Array, toPort: number, address: string): void {
  this.s.send(toBinaryString(data), toPort, address);
}

function udpClose(this: { s: any }): void {
  this.s.close();
}

function makeSerial(): SerialLink | null {
  const portName = BOARD.transports.serial;
  if (!portName) return null;
  const port = global[portName];
  if (!port) return null;
  if (BOARD.serial.consoleTo) E.setConsole(BOARD.serial.consoleTo, { force: true });
  if (portName !== 'USB' && BOARD.serial.baud) {
    const opts: { [k: string]: string } = {};
    if (BOARD.serial.rx) opts.rx = BOARD.serial.rx;
    if (BOARD.serial.tx) opts.tx = BOARD.serial.tx;
    // Linux builds: the device file (no pins there).
    if (BOARD.serial.path) opts.path = BOARD.serial.path;
    port.setup(BOARD.serial.baud, opts);
  }
  let handler: ((chunk: Uint8Array) => void) | null = null;
  port.on('data', function (s: string) {
    if (handler) handler(fromBinaryString(s));
  });
  return {
    write: function (data: Uint8Array): void {
      port.write(data);
    },
    onData: function (fn: (chunk: Uint8Array) => void): void {
      handler = fn;
    },
  };
}

/**
 * The Platform of the board the bundle is built for: its facts are read as BOARD.x,
 * which the build turns into literals (no BOARD object kept in RAM). Bundles only.
 */
export function makeEspruinoPlatform(): Platform {
  let serial: SerialLink | null | undefined;
  return {
    crypto: makeEspruinoBackend(espruinoRequire('crypto'), E.hwRand),
    // Date.now looked up per call: setTime()/emulated clocks may replace it after boot.
    now: function (): number {
      return Date.now();
    },
    // The native itself (it does not look at `this`).
    setTimeout: setTimeout as unknown as (fn: () => void, ms: number) => unknown,
    clearTimeout: function (handle: unknown): void {
      // Espruino throws on clearTimeout(undefined), and clearTimeout() clears *every* timer.
      if (handle === undefined || handle === null) return;
      clearTimeout(handle as any);
    },
    udpBind: function (port: number, onMessage: (data: Uint8Array, address: string, port: number) => void): UdpSocket | null {
      if (!(typeof BOARD_UDP === 'undefined' || BOARD_UDP) || !BOARD.transports.udp) return null;
      // recvBufferSize (default 536) caps a received datagram (an AS-REP is larger) and, on
      // the Linux and ESP32 builds, is the socket's SO_RCVBUF: the kernel's queue. 2048 held
      // about four small datagrams there (a burst of 500 lost 488), so it is a per-board
      // fact, board-configs transports.recvBuffer.
      const sock = espruinoRequire('dgram').createSocket({ type: 'udp4', recvBufferSize: BOARD.transports.recvBuffer || 2048 });
      sock.on('message', function (msg: string, rinfo: { address: string; port: number }) {
        onMessage(fromBinaryString(msg), rinfo.address, rinfo.port);
      });
      sock.bind(port);
      return { s: sock, send: udpSend, close: udpClose } as UdpSocket;
    },
    // Set up on first use: opening the port may move the console off it.
    get serial(): SerialLink | null {
      if (serial === undefined) serial = (typeof BOARD_SERIAL === 'undefined' || BOARD_SERIAL) ? makeSerial() : null;
      return serial;
    },
    storage: { read: stRead, write: stWrite, erase: stErase },
    log: function (event: string, fields: { [k: string]: string | number | boolean }): void {
      const o: { [k: string]: string | number | boolean } = { t: Date.now(), ev: event };
      for (const k in fields) o[k] = fields[k];
      print(JSON.stringify(o));
    },
    memory: function (): MemoryInfo {
      const m = process.memory();
      return { free: m.free, usage: m.usage, total: m.total };
    },
  };
}

/**
 * The part of Espruino's WiFi module the firmware uses (ESP32: libs/network/esp32/
 * jswrap_esp32_network.c; Espruino WiFi: its built-in "Wifi" module, same API):
 * connect(ssid, {password}, cb(err)) -- err null once the board has an IP address, else
 * a reason string; getIP(cb(err, {ip, ...})).
 */
export interface WifiModule {
  connect(ssid: string, options: { [k: string]: string }, cb: (err: unknown) => void): void;
  getIP(cb: (err: unknown, info: { ip?: string } | undefined) => void): unknown;
}

/** Waiting for connect() to call back; after that the attempt counts as failed. */
export const WIFI_ATTEMPT_MS = 30000;

/** Delay before retry n (1-based): 1 s doubling, at most 60 s. */
export function wifiRetryMs(n: number): number {
  const ms = 1000 * Math.pow(2, n - 1);
  return ms > 60000 ? 60000 : ms;
}

/**
 * Joins the WiFi network, retrying with backoff until it succeeds, then calls done().
 * Prints a progress line per attempt, failure and success through `say`; never the password.
 */
export function joinWifi(
  w: WifiModule,
  wifi: { ssid: string; password?: string },
  timers: { setTimeout(fn: () => void, ms: number): unknown; clearTimeout(h: unknown): void },
  say: (line: string) => void,
  done: () => void,
): void {
  let attempt = 0;
  const net = '"' + wifi.ssid + '"';
  function attemptOnce(): void {
    const mine = ++attempt;
    let over = false;
    say('CTA: WiFi: joining ' + net + ' (attempt ' + mine + ')');
    const watchdog = timers.setTimeout(function () {
      finish('no answer in ' + WIFI_ATTEMPT_MS / 1000 + ' s');
    }, WIFI_ATTEMPT_MS);
    function finish(err: unknown): void {
      if (over) return;
      over = true;
      timers.clearTimeout(watchdog);
      if (err) {
        const ms = wifiRetryMs(mine);
        say('CTA: WiFi: ' + net + ' failed: ' + err + '; retry in ' + ms / 1000 + ' s');
        timers.setTimeout(attemptOnce, ms);
        return;
      }
      say('CTA: WiFi: joined ' + net);
      w.getIP(function (e: unknown, info: { ip?: string } | undefined) {
        if (info && info.ip) say('CTA: WiFi: IP address ' + info.ip + ' (the SC sends Wake Ups there)');
      });
      done();
    }
    const opts: { [k: string]: string } = {};
    if (wifi.password) opts.password = wifi.password;
    try {
      w.connect(wifi.ssid, opts, function (err: unknown) {
        finish(err);
      });
    } catch (e) {
      finish((e as Error).message || 'error');
    }
  }
  attemptOnce();
}
