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
//
// This file wires the pieces into one vm context (startEmulator) and re-exports the public
// API. Each job lives in its own file: types.ts (options, the Emulator handle, the context
// the stand-ins share), storage.ts (Storage), udp.ts (dgram, port rules, stall hook),
// serial.ts (Serial1 / USB), wifi.ts (Wifi), timers.ts (timers), natives.ts (crypto,
// memory estimate, E / process / console, removing what the interpreter lacks), bytes.ts.
import vm from 'node:vm';
import fs from 'node:fs';
import { join } from 'node:path';
import { loadBoard, type BoardConfig } from '../build/boards.ts';
import { runnableSource } from '../build/image.ts';
import { dictionaryPathFor, expandLine, expandText, loadDictionary } from '../build/text.ts';
import { buildFirmware, REPO_ROOT } from '../build/build.ts';
import { UsageError } from '../args.ts';
import type { Emulator, EmulatorContext, EmulatorOptions } from './types.ts';
import { privateStorageDir, makeStorageModule, writeStorageFiles } from './storage.ts';
import { makeUdp } from './udp.ts';
import { makeSerialPorts } from './serial.ts';
import { makeWifi } from './wifi.ts';
import { makeTimers } from './timers.ts';
import { makeCryptoModule, makeMemoryEstimator, installEspruinoGlobals, removeWhatEspruinoLacks } from './natives.ts';

export type { EmulatorOptions, EmulatedWifi, UdpStall, EmulatorMemory, Emulator } from './types.ts';
export { privateStorageDir } from './storage.ts';

/** The source to run and the file name its stack traces show: opts.code, or the image / bundle at bundlePath (default: the board's image, built if missing). */
async function bundleSource(board: BoardConfig, opts: EmulatorOptions): Promise<{ code: string; filename: string }> {
  if (opts.code !== undefined) return { code: opts.code, filename: opts.bundlePath ?? `dist/firmware/${board.board}.img` };
  // The stored image (pretokenised, as the board keeps it) by default; a plain .js bundle also runs.
  const path = opts.bundlePath ?? join(REPO_ROOT, 'dist', 'firmware', `${board.board}.img`);
  if (!opts.bundlePath && !fs.existsSync(path)) {
    const r = await buildFirmware({ board: board.board });
    if (r.violations.length) throw new Error(`the firmware bundle for ${board.board} breaks the Espruino subset (run cta build --board ${board.board})`);
  }
  return { code: runnableSource(fs.readFileSync(path, 'latin1')), filename: path };
}

/**
 * Runs the bundle; resolves once the UDP sockets it bound while loading are listening.
 * Each stand-in gets the EmulatorContext (board, the context's global, log, guard) and
 * builds its part of the Espruino-shaped global; this only puts them together.
 */
export async function startEmulator(opts: EmulatorOptions): Promise<Emulator> {
  const board = loadBoard(opts.board ?? 'emulator');
  if ((opts.serialPath || opts.serialStream) && !board.transports.serial) {
    throw new UsageError(`board ${board.board} has no serial transport (board-configs/${board.board}.json)`);
  }
  const { code, filename } = await bundleSource(board, opts);

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

  const vmContext = vm.createContext({});
  const G = vm.runInContext('globalThis', vmContext) as any;
  const CtxUint8Array = G.Uint8Array as Uint8ArrayConstructor;
  const toCtxU8 = (b: ArrayLike<number>) => new CtxUint8Array(b as ArrayLike<number>);
  const ctx: EmulatorContext = {
    board,
    G,
    log,
    guard,
    isStopped: () => stopped,
    toCtxU8,
    toCtxAB: (b) => toCtxU8(b).buffer,
  };

  const timers = makeTimers(ctx);
  const serial = makeSerialPorts(ctx, opts);
  const udp = makeUdp(ctx, opts);
  const Storage = makeStorageModule(ctx, opts.storageDir);
  writeStorageFiles(opts.storageDir, opts.files ?? {});
  const cryptoMod = makeCryptoModule(ctx);
  const modules: { [name: string]: () => unknown } = {
    crypto: () => cryptoMod,
    Storage: () => Storage,
    dgram: () => udp.requireModule(),
  };
  const wifi = makeWifi(ctx, opts.wifi, (fn, args) => timers.addTimer(false, fn, 1, args));
  if (wifi) modules[board.transports.wifiModule ?? 'Wifi'] = () => wifi.module;
  const requireFn = function (name: string) {
    const m = modules[name];
    if (!m) throw new G.Error(`Module ${name} not found`);
    return m();
  };
  const memory = makeMemoryEstimator(ctx, timers.timers);
  installEspruinoGlobals(ctx, { requireFn, timers, memory, serialGlobals: serial.globals, hwRand: opts.hwRand });
  removeWhatEspruinoLacks(vmContext, G);
  memory.markBaseline();

  const emu: Emulator = {
    board,
    global: G,
    logs,
    errors,
    wifi: wifi ? wifi.record : null,
    memory: () => memory.memory(),
    udpAddresses: () => udp.addresses(),
    stallUdp: (port?: number, after?: number) => udp.stall(port, after),
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
      timers.clearAll();
      await udp.closeAll();
      serial.detach();
    },
  };

  try {
    new vm.Script(code, { filename }).runInContext(vmContext);
  } catch (e) {
    await emu.stop();
    const err = e as Error;
    throw new Error(`the bundle failed at load in the emulator (board ${board.board}): ${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`);
  }
  await Promise.all([...udp.binding]);
  return emu;
}
