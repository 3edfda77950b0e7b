// The natives: what the interpreter itself provides rather than a transport.
//  - require("crypto") on @noble (crypto-shim.ts), limited to the board's nativeCrypto;
//  - the memory estimate behind process.memory() and E.getSizeOf (memory.ts);
//  - the Espruino globals: E, print, console, process, getTime, timers, btoa / atob, require;
//  - removing what the interpreter lacks (subset-check.ts lists) and Espruino's typed-array
//    slice / filter, so a bundle that would fail on the board fails here.
import vm from 'node:vm';
import { randomBytes } from 'node:crypto';
import { FORBIDDEN_GLOBALS, FORBIDDEN_STATIC, FORBIDDEN_METHODS } from '../build/subset-check.ts';
import { makeEspruinoCryptoModule } from './crypto-shim.ts';
import { estimateVariables, collectBuiltins } from './memory.ts';
import { bytesOf, latin1 } from './bytes.ts';
import type { EmulatedTimers } from './timers.ts';
import type { EmulatorContext, EmulatorMemory } from './types.ts';

/** require("crypto"): the crypto shim with only the board's native algorithms, ArrayBuffers made in the context. */
export function makeCryptoModule(ctx: EmulatorContext): any {
  const { G, board, log, toCtxAB } = ctx;
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
  return cryptoMod;
}

/** The variable-block estimate of the firmware's heap (memory.ts), as process.memory() and E.getSizeOf report it. */
export interface MemoryEstimator {
  memory(): EmulatorMemory;
  sizeOf(o: unknown): number;
  /** Call once the globals are final: what exists now is the interpreter's, not the firmware's. */
  markBaseline(): void;
}

export function makeMemoryEstimator(ctx: EmulatorContext, timers: EmulatedTimers['timers']): MemoryEstimator {
  const { G, board } = ctx;
  let builtins: WeakSet<object> = new WeakSet();
  let baseGlobals = new Set<string>();
  const estimate = (extraRoots: unknown[] = []) => {
    const roots: unknown[] = [...extraRoots];
    for (const k of Object.getOwnPropertyNames(G)) if (!baseGlobals.has(k)) roots.push(G[k]);
    for (const t of timers.values()) roots.push(t.fn);
    return estimateVariables(roots, { blockSize: board.blockSize, limit: board.variables * 4, builtins });
  };
  return {
    memory() {
      const usage = estimate() + timers.size * 2;
      return { free: board.variables - usage, usage, total: board.variables, blocksize: board.blockSize };
    },
    sizeOf(o: unknown) {
      return estimateVariables([o], { blockSize: board.blockSize, limit: board.variables * 4, builtins });
    },
    markBaseline() {
      builtins = collectBuiltins(G, 4);
      baseGlobals = new Set(Object.getOwnPropertyNames(G));
    },
  };
}

/** Installs E, print, console, process, getTime, the timers, btoa / atob, require and the serial ports on the context's global. */
export function installEspruinoGlobals(
  ctx: EmulatorContext,
  parts: {
    requireFn: (name: string) => unknown;
    timers: EmulatedTimers;
    memory: MemoryEstimator;
    serialGlobals: { [name: string]: unknown };
    hwRand?: () => number;
  },
): void {
  const { G, board, log, toCtxU8, toCtxAB } = ctx;
  const { timers, memory } = parts;
  const hwRand = parts.hwRand ?? (() => randomBytes(4).readInt32LE(0));
  const E: any = new G.Object();
  Object.assign(E, {
    hwRand: () => hwRand() | 0,
    toUint8Array: (...a: unknown[]) => toCtxU8(bytesOf(a)),
    toString: (...a: unknown[]) => latin1(bytesOf(a)),
    toArrayBuffer: (s: string) => toCtxAB(bytesOf(s)),
    getSizeOf: (o: unknown) => memory.sizeOf(o),
    setConsole: () => undefined,
    getTemperature: () => 25,
  });
  const print = (...a: unknown[]) => log(a.map((x) => (typeof x === 'string' ? x : G.JSON.stringify(x) ?? String(x))).join(' '));
  const consoleObj: any = new G.Object();
  consoleObj.log = print;
  const processObj: any = new G.Object();
  Object.assign(processObj, {
    memory: () => Object.assign(new G.Object(), memory.memory(), { history: 0, gc: 0, gctime: 0 }),
    version: '2v29-emulator',
    env: Object.assign(new G.Object(), { BOARD: board.espruinoBuild, VERSION: '2v29-emulator' }),
  });

  Object.assign(G, {
    global: G,
    E,
    print,
    console: consoleObj,
    process: processObj,
    require: parts.requireFn,
    getTime: () => Date.now() / 1000,
    setTimeout: (fn: unknown, ms: unknown, ...args: unknown[]) => timers.addTimer(false, fn, ms, args),
    setInterval: (fn: unknown, ms: unknown, ...args: unknown[]) => timers.addTimer(true, fn, ms, args),
    clearTimeout: timers.clearTimer('clearTimeout'),
    clearInterval: timers.clearTimer('clearInterval'),
    btoa: (s: string) => Buffer.from(s, 'latin1').toString('base64'),
    atob: (s: string) => Buffer.from(s, 'base64').toString('latin1'),
    ...parts.serialGlobals,
  });
}

/** Removes what the interpreter lacks (subset-check.ts) from the context; typed-array slice / filter return plain Arrays. */
export function removeWhatEspruinoLacks(vmContext: vm.Context, G: any): void {
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
    vmContext,
  )(
    G.JSON.parse(JSON.stringify([...FORBIDDEN_GLOBALS, 'TextEncoder', 'TextDecoder', 'WebAssembly', 'SharedArrayBuffer'])),
    G.JSON.parse(JSON.stringify(FORBIDDEN_STATIC)),
    G.JSON.parse(JSON.stringify([...FORBIDDEN_METHODS])),
  );
}
