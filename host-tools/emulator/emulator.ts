// The host emulator: runs a firmware bundle in a Node `vm` context shaped like
// Espruino (2v29), so the very bundle that goes to the board runs here.
//  - globals: global, E, getTime, print, console.log, btoa/atob, timers (numeric ids,
//    clearTimeout(undefined) throws as on Espruino), process.memory() (an estimate,
//    see memory.ts), require / global.require.
//  - require("crypto"): Espruino's module shape on @noble (crypto-shim.ts), limited to
//    the board's nativeCrypto; require("dgram"): node:dgram underneath, messages
//    delivered as binary strings, send() takes a string like the firmware;
//    require("Storage"): files in storageDir. Serial1 / USB (the board's serial
//    transport) bound to a stream or a device / pseudo-terminal path.
//  - what the interpreter lacks is removed (the lists of subset-check.ts: Map, Set,
//    Symbol, BigInt, Reflect, Proxy, TextEncoder, Math.imul, Array.from,
//    Uint8Array.from, Object.freeze, Date.UTC, ...), and typed-array slice/filter
//    return plain Arrays as on Espruino, so a bundle that would fail on the board
//    fails here.
//  - a transport the board lacks is refused: require("dgram") on a board without UDP
//    throws, and a serial path for a board without a serial transport is refused.
//  - require("Wifi") (the board's transports.wifiModule) only on boards whose config
//    says transports.wifi: connect(ssid, {password}, cb) calls back after a tick with
//    null (or a reason, options.wifi.failTimes times first); getIP(cb) gives 127.0.0.1.
//    The loopback network is "the WiFi"; Emulator.wifi records what was asked.
//  - a closed socket's port is free again only after this turn of the event loop (as on
//    Espruino: binding it at once fails with "Unable to create socket").
//  - a board port that udpPortMap maps to 0 gets a free host port the first time it is
//    bound, and that same host port when it is bound again (the firmware re-creating a socket).
//  - fault injection: Emulator.stallUdp makes a bound UDP socket stop delivering (it drops
//    every datagram that arrives, silently, as a wedged network driver does); a socket the
//    firmware creates afterwards works again.
import vm from 'node:vm';
import dgram from 'node:dgram';
import fs from 'node:fs';
import tty from 'node:tty';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { loadBoard, type BoardConfig } from '../build/boards.ts';
import { runnableSource, STORAGE_FILE_HEADER } from '../build/image.ts';
import { dictionaryPathFor, expandLine, expandText, loadDictionary } from '../build/text.ts';
import { buildFirmware, REPO_ROOT } from '../build/build.ts';
import { FORBIDDEN_GLOBALS, FORBIDDEN_STATIC, FORBIDDEN_METHODS } from '../build/subset-check.ts';
import { makeEspruinoCryptoModule } from './crypto-shim.ts';
import { estimateVariables, collectBuiltins } from './memory.ts';
import { UsageError } from '../args.ts';

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

const STORAGE_NAME_MAX = 28;

/**
 * Writes a Storage file: mode 0600 (Storage holds "cta.cfg", the CTA's long-term keys),
 * set on the open descriptor before any byte is written, also when the file existed.
 */
function writeStorageFile(f: string, data: Uint8Array): void {
  const fd = fs.openSync(f, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}

/** The Storage directory: created 0700, and made 0700 if it exists (it is the board's flash: key material). */
export function privateStorageDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/** Storage file name -> a safe, reversible file name in storageDir. */
function storageFile(dir: string, name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > STORAGE_NAME_MAX) {
    throw new Error(`Storage: file name must be 1-${STORAGE_NAME_MAX} characters, got ${JSON.stringify(name)}`);
  }
  return join(dir, encodeURIComponent(name).replace(/\./g, '%2E').replace(/\*/g, '%2A'));
}

/** Bytes of a value as Espruino's JSV_GET_AS_CHAR_ARRAY / E.toUint8Array see them. */
function bytesOf(v: unknown, out: number[] = [], depth = 0): number[] {
  if (depth > 16) throw new Error('data nested too deeply');
  if (typeof v === 'number' || typeof v === 'boolean') out.push(Number(v) & 0xff);
  else if (typeof v === 'string') for (let i = 0; i < v.length; i++) out.push(v.charCodeAt(i) & 0xff);
  else if (Array.isArray(v)) for (const x of v) bytesOf(x, out, depth + 1);
  else if (ArrayBuffer.isView(v)) {
    const u = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    if (v instanceof Uint8Array || Object.prototype.toString.call(v) === '[object Uint8Array]') for (const x of u) out.push(x);
    else for (let i = 0; i < (v as unknown as ArrayLike<number>).length; i++) out.push(Number((v as unknown as ArrayLike<number>)[i]) & 0xff);
  } else if (v && typeof v === 'object' && Object.prototype.toString.call(v) === '[object ArrayBuffer]') for (const x of new Uint8Array(v as ArrayBuffer)) out.push(x);
  else if (v && typeof v === 'object' && 'data' in (v as object)) {
    const o = v as { data: unknown; count?: number };
    const c = o.count ?? 1;
    for (let i = 0; i < c; i++) bytesOf(o.data, out, depth + 1);
  } else if (v && typeof v === 'object' && 'callback' in (v as object)) bytesOf((v as { callback: () => unknown }).callback(), out, depth + 1);
  return out;
}

function latin1(b: Uint8Array | number[]): string {
  return Buffer.from(b as Uint8Array).toString('latin1');
}

/**
 * Runs the bundle; resolves once the UDP sockets it bound while loading are listening.
 * About 490 lines: one closure that builds the Espruino-shaped global of one vm
 * context, section by section (timers, serial, UDP, Storage, Wifi, E/process/console),
 * every section sharing the context, its guard and its log. Splitting it means an
 * explicit emulator context passed to each section: left for later, with the SC's.
 */
export async function startEmulator(opts: EmulatorOptions): Promise<Emulator> {
  const board = loadBoard(opts.board ?? 'emulator');
  if ((opts.serialPath || opts.serialStream) && !board.transports.serial) {
    throw new UsageError(`board ${board.board} has no serial transport (board-configs/${board.board}.json)`);
  }
  let code = opts.code;
  let filename = opts.bundlePath ?? `dist/firmware/${board.board}.img`;
  if (code === undefined) {
    // The stored image (pretokenised, as the board keeps it) by default; a plain .js bundle also runs.
    const path = opts.bundlePath ?? join(REPO_ROOT, 'dist', 'firmware', `${board.board}.img`);
    if (!opts.bundlePath && !fs.existsSync(path)) {
      const r = await buildFirmware({ board: board.board });
      if (r.violations.length) throw new Error(`the firmware bundle for ${board.board} breaks the Espruino subset (run cta build --board ${board.board})`);
    }
    code = runnableSource(fs.readFileSync(path, 'latin1'));
    filename = path;
  }

  // Text that left the board (codes such as "main#4{..}") is printed as the sentence again.
  const dictPath = opts.dictionary === undefined ? (opts.bundlePath ? dictionaryPathFor(opts.bundlePath) : join(REPO_ROOT, 'dist', 'firmware', `${board.board}.dict.json`)) : opts.dictionary;
  const dict = dictPath ? loadDictionary(dictPath) : { text: {} };
  privateStorageDir(opts.storageDir);
  const logs: string[] = [];
  const errors: Error[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const log = (raw: string) => {
    const line = expandLine(raw, dict);
    logs.push(line);
    opts.onLog?.(line);
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i].re.test(line)) {
        waiters[i].resolve(line);
        waiters.splice(i, 1);
      }
    }
  };
  let stopped = false;
  const uncaught = (e: unknown) => {
    const err = e instanceof Error || (e && typeof e === 'object' && 'message' in e) ? (e as Error) : new Error(String(e));
    errors.push(err);
    log(`Uncaught ${err.name ?? 'Error'}: ${err.message}`);
  };
  const guard = (fn: (...a: any[]) => unknown, args: unknown[]) => {
    if (stopped) return;
    try {
      fn(...args);
    } catch (e) {
      uncaught(e);
    }
  };

  const ctx = vm.createContext({});
  const G = vm.runInContext('globalThis', ctx) as any;
  const CtxUint8Array = G.Uint8Array as Uint8ArrayConstructor;
  const toCtxU8 = (b: ArrayLike<number>) => new CtxUint8Array(b as ArrayLike<number>);
  const toCtxAB = (b: ArrayLike<number>) => toCtxU8(b).buffer;

  // ---- timers (numeric ids, as Espruino) ----
  const timers = new Map<number, { handle: NodeJS.Timeout; interval: boolean; fn: unknown }>();
  let nextTimer = 1;
  const addTimer = (interval: boolean, fn: unknown, ms: unknown, args: unknown[]) => {
    if (typeof fn !== 'function') throw new G.Error('Function or String not supplied!');
    const id = nextTimer++;
    const delay = Math.max(0, Number(ms) || 0);
    const run = () => {
      if (!interval) timers.delete(id);
      guard(fn as (...a: unknown[]) => unknown, args);
    };
    const handle = interval ? setInterval(run, Math.max(1, delay)) : setTimeout(run, delay);
    timers.set(id, { handle, interval, fn });
    return id;
  };
  const clearTimer = (which: string) =>
    function (this: unknown, ...a: unknown[]) {
      if (a.length === 0) {
        for (const t of timers.values()) clearTimeout(t.handle);
        timers.clear();
        return;
      }
      const id = a[0];
      if (id === undefined) throw new G.Error(`${which}(undefined) not allowed. Use ${which}() instead`);
      const t = timers.get(Number(id));
      if (t) {
        clearTimeout(t.handle);
        timers.delete(Number(id));
      }
    };

  // ---- serial ----
  const serialPorts: { [name: string]: EmulatedSerial } = {};
  let serialStream: Duplex | null = opts.serialStream ?? null;
  let serialFd: number | null = null;
  if (opts.serialPath) {
    const { fd, stream } = openSerialPath(opts.serialPath);
    serialFd = fd;
    serialStream = stream;
  }
  if (board.transports.serial) {
    serialPorts[board.transports.serial] = new EmulatedSerial(serialStream, latin1, guard);
  }

  // ---- UDP ----
  const sockets = new Set<dgram.Socket>();
  // Stalled sockets (stallUdp): datagrams still let through, and the record to count drops in.
  const stalls = new Map<dgram.Socket, { left: number; record: UdpStall }>();
  // Binds in progress: startEmulator resolves only once those the bundle started at
  // boot have finished (node's bind is asynchronous; a datagram sent to the port
  // before then is lost, e.g. the SC's first Wake Up to a CTA just started).
  const binding = new Set<Promise<void>>();
  const bindAddress = opts.udpBindAddress ?? '127.0.0.1';
  // A board port udpPortMap maps to 0 (any free port): the port it got the first time. A
  // socket the firmware binds to that board port again (after closing the first) gets the
  // same host port, as on the board.
  const mappedOnce: { [boardPort: number]: number } = {};
  // Host ports of sockets the firmware closed in this turn of the event loop: as on Espruino
  // (2v29, measured), a closed socket's port is freed only in a later pass of its idle loop,
  // and binding it before then fails ("Unable to create socket").
  const closing = new Set<number>();
  const makeDgram = () => ({
    createSocket(type: unknown, cb?: unknown) {
      const t = typeof type === 'object' && type ? (type as { type?: string }).type : type;
      // As on Espruino (libs/network/jswrap_net.c), a received datagram is cut to
      // recvBufferSize bytes, 536 unless the socket asked for more.
      const rbs = typeof type === 'object' && type ? Number((type as { recvBufferSize?: number }).recvBufferSize) : NaN;
      const recvBufferSize = rbs > 0 ? rbs : 536;
      if (t !== undefined && t !== 'udp4') throw new G.Error(`dgram: only udp4 sockets are supported, not ${String(t)}`);
      const handlers: { [ev: string]: ((...a: unknown[]) => unknown)[] } = {};
      const sock = dgram.createSocket({ type: 'udp4', reuseAddr: false });
      sockets.add(sock);
      let bound = false;
      const emit = (ev: string, ...a: unknown[]) => {
        for (const h of handlers[ev] ?? []) guard(h, a);
      };
      sock.on('message', (msg, rinfo) => {
        const stall = stalls.get(sock);
        if (stall) {
          if (stall.left <= 0) {
            stall.record.dropped++;
            return;
          }
          stall.left--;
        }
        emit('message', latin1(msg.subarray(0, recvBufferSize)), G.Object.assign(new G.Object(), { address: rinfo.address, port: rinfo.port, size: rinfo.size }));
      });
      sock.on('error', (e) => {
        log(`dgram error: ${e.message}`);
        emit('error', e);
      });
      sock.on('close', () => {
        sockets.delete(sock);
        stalls.delete(sock);
        emit('close', false);
      });
      const api: any = new G.Object();
      api.on = function (ev: string, fn: (...a: unknown[]) => unknown) {
        (handlers[ev] ??= []).push(fn);
        return api;
      };
      api.bind = function (port: number, bindCb?: (s: unknown) => void) {
        bound = true;
        const want = Number(port) || 0;
        const mapped = opts.udpPortMap && want in opts.udpPortMap ? (mappedOnce[want] ?? opts.udpPortMap[want]) : want;
        if (mapped !== 0 && closing.has(mapped)) {
          log('ERROR: Socket bind failed');
          throw new G.Error('Unable to create socket');
        }
        const done = new Promise<void>((res) => {
          sock.once('listening', res);
          sock.once('error', () => res());
          sock.once('close', res);
        });
        binding.add(done);
        void done.then(() => binding.delete(done));
        sock.bind({ port: mapped, address: bindAddress, exclusive: true }, () => {
          if (want !== 0 && mapped === 0) mappedOnce[want] = sock.address().port;
          if (typeof bindCb === 'function') guard(bindCb, [api]);
        });
        return api;
      };
      api.send = function (buffer: unknown, offset: unknown, length: unknown, ...rest: unknown[]) {
        // Espruino: send(string, port, address) or send(string, offset, length, port, address); the data must be a String.
        if (typeof buffer !== 'string') throw new G.TypeError('dgram send: the message must be a String (binary string) on Espruino');
        let data = buffer;
        let port: unknown;
        let address: unknown;
        if (typeof rest[0] === 'number') {
          data = buffer.substr(Number(offset) || 0, Number(length));
          port = rest[0];
          address = rest[1];
        } else {
          port = offset;
          address = length;
        }
        const bytes = Buffer.from(data, 'latin1');
        const doSend = () => {
          if (stopped) return;
          sock.send(bytes, Number(port), String(address ?? '127.0.0.1'), (e) => {
            if (e) log(`dgram send error: ${e.message}`);
          });
        };
        if (!bound) {
          bound = true;
          sock.bind({ port: 0, address: bindAddress }, doSend);
        } else doSend();
      };
      api.close = function () {
        try {
          const port = sock.address().port;
          closing.add(port);
          // Free at the end of this turn, whichever phase of node's loop comes next: a check
          // phase (setImmediate) or a timers phase (a 0 ms timer queued before any the firmware
          // queues after this close, so it runs first). With setImmediate alone, a close made in
          // a check phase left the port taken when the firmware's 0 ms timer ran (the next turn's
          // timers phase, on a loaded host): its bind failed and the socket was never bound again.
          const free = () => closing.delete(port);
          setImmediate(free);
          setTimeout(free, 0);
        } catch {
          /* not bound */
        }
        try {
          sock.close();
        } catch {
          /* already closed */
        }
      };
      api.addMembership = function () {
        throw new G.Error('dgram addMembership is not emulated');
      };
      if (typeof cb === 'function') api.on('message', cb);
      return api;
    },
  });

  // ---- Storage ----
  const dir = opts.storageDir;
  const storageRead = (name: string): Buffer | undefined => {
    const f = storageFile(dir, name);
    return fs.existsSync(f) ? fs.readFileSync(f) : undefined;
  };
  const Storage: any = new G.Object();
  Object.assign(Storage, {
    read(name: string, offset?: number, length?: number) {
      const b = storageRead(name);
      if (!b) return undefined;
      const o = offset ?? 0;
      const l = length && length > 0 ? length : b.length - o;
      return latin1(b.subarray(o, o + l));
    },
    readArrayBuffer(name: string) {
      const b = storageRead(name);
      return b ? toCtxAB(b) : undefined;
    },
    readJSON(name: string, noExceptions?: boolean) {
      const b = storageRead(name);
      if (!b) return undefined;
      try {
        return G.JSON.parse(b.toString('latin1'));
      } catch (e) {
        if (noExceptions) return undefined;
        throw e;
      }
    },
    write(name: string, data: unknown, offset?: number, size?: number) {
      const f = storageFile(dir, name);
      const isObj = data !== null && typeof data === 'object' && !Array.isArray(data) && !ArrayBuffer.isView(data) && Object.prototype.toString.call(data) !== '[object ArrayBuffer]';
      const bytes = Buffer.from(isObj ? Buffer.from(G.JSON.stringify(data), 'latin1') : bytesOf(data));
      if (isObj || !offset) {
        const total = size && size > bytes.length ? size : bytes.length;
        if (total === 0) throw new G.Error("Can't create zero length file");
        // As on the board, a file that does not fit the board's Storage is not created.
        const old = fs.existsSync(f) ? fs.statSync(f).size + STORAGE_FILE_HEADER : 0;
        if (total + STORAGE_FILE_HEADER > Storage.getFree() + old) throw new G.Error('Unable to find or create file');
        const out = Buffer.alloc(total, 0xff);
        bytes.copy(out, 0);
        writeStorageFile(f, out);
        return true;
      }
      if (!fs.existsSync(f)) return false;
      const cur = fs.readFileSync(f);
      if (offset + bytes.length > cur.length) return false;
      bytes.copy(cur, offset);
      writeStorageFile(f, cur);
      return true;
    },
    writeJSON(name: string, data: unknown) {
      return Storage.write(name, G.JSON.stringify(data));
    },
    erase(name: string) {
      const f = storageFile(dir, name);
      if (fs.existsSync(f)) fs.unlinkSync(f);
    },
    eraseAll() {
      for (const f of fs.readdirSync(dir)) fs.unlinkSync(join(dir, f));
    },
    list(re?: RegExp) {
      const out = new G.Array();
      for (const n of fs.readdirSync(dir).map((f) => decodeURIComponent(f)).sort()) if (!re || re.test(n)) out.push(n);
      return out;
    },
    // The board's Storage capacity (board-configs "storage"), less each file and its 32-byte header.
    getFree() {
      let used = 0;
      for (const f of fs.readdirSync(dir)) used += fs.statSync(join(dir, f)).size + STORAGE_FILE_HEADER;
      return Math.max(0, board.storage.bytes - used);
    },
    getStats() {
      const files = fs.readdirSync(dir);
      let fileBytes = 0;
      for (const f of files) fileBytes += fs.statSync(join(dir, f)).size + STORAGE_FILE_HEADER;
      const o = new G.Object();
      Object.assign(o, { totalBytes: board.storage.bytes, freeBytes: Math.max(0, board.storage.bytes - fileBytes), fileBytes, fileCount: files.length, trashBytes: 0, trashCount: 0 });
      return o;
    },
    compact() {},
    open() {
      throw new G.Error('StorageFile (Storage.open) is not emulated');
    },
  });
  for (const [name, data] of Object.entries(opts.files ?? {})) writeStorageFile(storageFile(dir, name), data);

  // ---- crypto, limited to the board ----
  const nc = board.nativeCrypto;
  const cryptoHost = makeEspruinoCryptoModule({ aes: nc.aes, sha256: nc.sha256, sha512: nc.sha384, onError: (m) => log(`ERROR: ${m}`) }) as any;
  const cryptoMod: any = new G.Object();
  const wrapAB = (fn: (...a: unknown[]) => unknown) =>
    function (...a: unknown[]) {
      const r = fn(...a);
      return r && Object.prototype.toString.call(r) === '[object ArrayBuffer]' ? toCtxAB(new Uint8Array(r as ArrayBuffer)) : r;
    };
  for (const k of Object.keys(cryptoHost)) {
    const v = cryptoHost[k];
    if (typeof v === 'function') cryptoMod[k] = wrapAB(v.bind(cryptoHost));
    else if (v && typeof v === 'object') {
      const sub: any = new G.Object();
      for (const k2 of Object.keys(v)) if (typeof v[k2] === 'function') sub[k2] = wrapAB(v[k2].bind(v));
      cryptoMod[k] = sub;
    }
  }

  const modules: { [name: string]: () => unknown } = {
    crypto: () => cryptoMod,
    Storage: () => Storage,
    dgram: () => {
      if (!board.transports.udp) {
        throw new G.Error(`board ${board.board} has no UDP transport: require("dgram") is not available (board-configs/${board.board}.json)`);
      }
      return dgramMod;
    },
  };
  const dgramMod = makeDgram();

  // ---- Wifi (boards with transports.wifi only) ----
  const wifiRec: EmulatedWifi | null = board.transports.wifi ? { connects: [], ssid: null, connected: false } : null;
  if (wifiRec) {
    let failsLeft = opts.wifi?.failTimes ?? 0;
    const wifiMod: any = new G.Object();
    const later = (fn: (...a: unknown[]) => unknown, args: unknown[]) => addTimer(false, fn, 1, args);
    Object.assign(wifiMod, {
      connect(ssid: unknown, options: unknown, cb: unknown) {
        if (typeof ssid !== 'string') throw new G.Error('No SSID provided');
        if (options !== undefined && options !== null && typeof options !== 'object') throw new G.Error('Expecting options to be an Object');
        const pw = options ? (options as { password?: unknown }).password : undefined;
        if (pw !== undefined && typeof pw !== 'string') throw new G.Error('Expecting options.password to be a string');
        wifiRec.connects.push({ ssid, password: pw as string | undefined });
        const fail = failsLeft > 0;
        if (fail) failsLeft--;
        else {
          wifiRec.ssid = ssid;
          wifiRec.connected = true;
        }
        if (typeof cb === 'function') later(cb as (...a: unknown[]) => unknown, [fail ? (opts.wifi?.failWith ?? 'auth_fail') : null]);
      },
      getIP(cb: unknown) {
        const info = Object.assign(new G.Object(), { ip: wifiRec.connected ? '127.0.0.1' : '0.0.0.0', netmask: '255.0.0.0', gw: '127.0.0.1', mac: '02:00:00:00:00:01' });
        if (typeof cb === 'function') later(cb as (...a: unknown[]) => unknown, [null, info]);
        return info;
      },
      disconnect(cb: unknown) {
        wifiRec.connected = false;
        if (typeof cb === 'function') later(cb as (...a: unknown[]) => unknown, []);
      },
      getStatus() {
        return Object.assign(new G.Object(), { station: wifiRec.connected ? 'connected' : 'off', mode: wifiRec.connected ? 'sta' : 'off' });
      },
      on() {
        return wifiMod;
      },
      save() {},
      restore() {},
    });
    modules[board.transports.wifiModule ?? 'Wifi'] = () => wifiMod;
  }
  const requireFn = function (name: string) {
    const m = modules[name];
    if (!m) throw new G.Error(`Module ${name} not found`);
    return m();
  };

  // ---- E, process, console ----
  const hwRand = opts.hwRand ?? (() => randomBytes(4).readInt32LE(0));
  let builtins: WeakSet<object> = new WeakSet();
  let baseGlobals = new Set<string>();
  const estimate = (extraRoots: unknown[] = []) => {
    const roots: unknown[] = [...extraRoots];
    for (const k of Object.getOwnPropertyNames(G)) if (!baseGlobals.has(k)) roots.push(G[k]);
    for (const t of timers.values()) roots.push(t.fn);
    return estimateVariables(roots, { blockSize: board.blockSize, limit: board.variables * 4, builtins });
  };
  const memory = (): EmulatorMemory => {
    const usage = estimate() + timers.size * 2;
    return { free: board.variables - usage, usage, total: board.variables, blocksize: board.blockSize };
  };
  const E: any = new G.Object();
  Object.assign(E, {
    hwRand: () => hwRand() | 0,
    toUint8Array: (...a: unknown[]) => toCtxU8(bytesOf(a)),
    toString: (...a: unknown[]) => latin1(bytesOf(a)),
    toArrayBuffer: (s: string) => toCtxAB(bytesOf(s)),
    getSizeOf: (o: unknown) => estimateVariables([o], { blockSize: board.blockSize, limit: board.variables * 4, builtins }),
    setConsole: () => undefined,
    getTemperature: () => 25,
  });
  const print = (...a: unknown[]) => log(a.map((x) => (typeof x === 'string' ? x : G.JSON.stringify(x) ?? String(x))).join(' '));
  const consoleObj: any = new G.Object();
  consoleObj.log = print;
  const processObj: any = new G.Object();
  Object.assign(processObj, {
    memory: () => Object.assign(new G.Object(), memory(), { history: 0, gc: 0, gctime: 0 }),
    version: '2v29-emulator',
    env: Object.assign(new G.Object(), { BOARD: board.espruinoBuild, VERSION: '2v29-emulator' }),
  });

  Object.assign(G, {
    global: G,
    E,
    print,
    console: consoleObj,
    process: processObj,
    require: requireFn,
    getTime: () => Date.now() / 1000,
    setTimeout: (fn: unknown, ms: unknown, ...args: unknown[]) => addTimer(false, fn, ms, args),
    setInterval: (fn: unknown, ms: unknown, ...args: unknown[]) => addTimer(true, fn, ms, args),
    clearTimeout: clearTimer('clearTimeout'),
    clearInterval: clearTimer('clearInterval'),
    btoa: (s: string) => Buffer.from(s, 'latin1').toString('base64'),
    atob: (s: string) => Buffer.from(s, 'base64').toString('latin1'),
    ...serialPorts,
  });

  // ---- remove what the interpreter lacks; mimic its typed-array slice/filter ----
  vm.runInContext(
    `(function (globals, statics, methods) {
      var TA = Object.getPrototypeOf(Uint8Array);
      for (var i = 0; i < globals.length; i++) delete globalThis[globals[i]];
      for (var owner in statics) {
        var o = owner === 'TypedArray' ? TA : globalThis[owner];
        if (!o) continue;
        for (var j = 0; j < statics[owner].length; j++) delete o[statics[owner][j]];
      }
      delete TA.from; delete TA.of;
      var protos = [Array.prototype, String.prototype, TA.prototype];
      for (var p = 0; p < protos.length; p++) for (var m = 0; m < methods.length; m++) delete protos[p][methods[m]];
      var arraySlice = Array.prototype.slice, arrayFilter = Array.prototype.filter;
      // Espruino 2v29: typed-array slice() and filter() return plain Arrays.
      Object.defineProperty(TA.prototype, 'slice', { value: function (a, b) { return arraySlice.call(this, a, b); }, writable: true, configurable: true });
      Object.defineProperty(TA.prototype, 'filter', { value: function (f, t) { return arrayFilter.call(this, f, t); }, writable: true, configurable: true });
    })`,
    ctx,
  )(
    G.JSON.parse(JSON.stringify([...FORBIDDEN_GLOBALS, 'TextEncoder', 'TextDecoder', 'WebAssembly', 'SharedArrayBuffer'])),
    G.JSON.parse(JSON.stringify(FORBIDDEN_STATIC)),
    G.JSON.parse(JSON.stringify([...FORBIDDEN_METHODS])),
  );

  builtins = collectBuiltins(G, 4);
  baseGlobals = new Set(Object.getOwnPropertyNames(G));

  const emu: Emulator = {
    board,
    global: G,
    logs,
    errors,
    wifi: wifiRec,
    memory,
    udpAddresses() {
      const out: { address: string; port: number }[] = [];
      for (const s of sockets) {
        try {
          const a = s.address();
          out.push({ address: a.address, port: a.port });
        } catch {
          /* not bound yet */
        }
      }
      return out;
    },
    stallUdp(port?: number, after = 0) {
      const record: UdpStall = { sockets: 0, dropped: 0 };
      for (const s of sockets) {
        let bound: number;
        try {
          bound = s.address().port;
        } catch {
          continue; // not bound yet
        }
        if (port !== undefined && bound !== port) continue;
        stalls.set(s, { left: after, record });
        record.sockets++;
      }
      return record;
    },
    text(s: string) {
      return expandText(String(s), dict);
    },
    waitForLog(re: RegExp, timeoutMs = 5000) {
      const hit = logs.find((l) => re.test(l));
      if (hit) return Promise.resolve(hit);
      return new Promise((resolve, reject) => {
        const w = {
          re,
          resolve: (l: string) => {
            clearTimeout(timer);
            resolve(l);
          },
        };
        const timer = setTimeout(() => {
          const i = waiters.indexOf(w);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`no log line matching ${re} within ${timeoutMs} ms; last lines:\n${logs.slice(-10).join('\n')}`));
        }, timeoutMs);
        waiters.push(w);
      });
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      for (const t of timers.values()) clearTimeout(t.handle);
      timers.clear();
      await Promise.all(
        [...sockets].map(
          (s) =>
            new Promise<void>((res) => {
              try {
                s.close(() => res());
              } catch {
                res();
              }
            }),
        ),
      );
      sockets.clear();
      for (const p of Object.values(serialPorts)) p.detach();
      if (serialFd !== null && serialStream) serialStream.destroy();
    },
  };

  try {
    new vm.Script(code, { filename }).runInContext(ctx);
  } catch (e) {
    await emu.stop();
    const err = e as Error;
    throw new Error(`the bundle failed at load in the emulator (board ${board.board}): ${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`);
  }
  await Promise.all([...binding]);
  return emu;
}

/** Serial1 / USB: setup(), on('data', fn(binary string)), write(data), print/println. */
class EmulatedSerial {
  private handlers: ((s: string) => unknown)[] = [];
  private onChunk = (b: Buffer) => {
    const s = this.latin1(b);
    for (const h of this.handlers) this.guard(h, [s]);
  };
  baud = 9600;
  constructor(
    private stream: Duplex | null,
    private latin1: (b: Uint8Array) => string,
    private guard: (fn: (...a: any[]) => unknown, args: unknown[]) => void,
  ) {
    if (stream) stream.on('data', this.onChunk);
  }
  setup(baud: number) {
    this.baud = baud;
  }
  on(ev: string, fn: (s: string) => unknown) {
    if (ev === 'data') this.handlers.push(fn);
  }
  removeAllListeners() {
    this.handlers = [];
  }
  write(...a: unknown[]) {
    const bytes = Buffer.from(bytesOf(a));
    if (this.stream && !this.stream.destroyed) this.stream.write(bytes);
  }
  print(s: unknown) {
    this.write(String(s));
  }
  println(s: unknown) {
    this.write(String(s) + '\r\n');
  }
  detach() {
    if (this.stream) this.stream.off('data', this.onChunk);
    this.handlers = [];
  }
}

/** Opens a device or pseudo-terminal for binary I/O (raw mode on a tty). */
function openSerialPath(path: string): { fd: number; stream: Duplex } {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new UsageError(`cannot open serial path ${path}: ${(e as Error).message}`);
  }
  if (!tty.isatty(fd)) {
    fs.closeSync(fd);
    throw new UsageError(`serial path ${path} is not a terminal device (use a pty, e.g. from socat, or a serial port)`);
  }
  const stream = new tty.ReadStream(fd);
  stream.setRawMode(true);
  return { fd, stream: stream as unknown as Duplex };
}
