// An Espruino-style console for the emulator (`cta emu --console tcp:PORT`): a TCP
// REPL shaped like the Linux build's --telnet console, so EspruinoTools (and so
// `cta flash`) can talk to it as to a board:
//  - the interpreter's line discipline (src/jsinteractive.c): echo, DLE (0x10) at a
//    line start = no echo and no "=result" for that line, ESC LF = newline without
//    executing, ESC [ n d = line number (ignored), a line runs once its brackets
//    balance, Ctrl-C clears the line; "=result" and the ">" prompt after a line.
//  - it evaluates in the emulator's vm context (the firmware's globals), prints
//    what the code prints, "Uncaught ..." for errors.
//  - process.env (BOARD, VERSION, CONSOLE "Telnet"), file-backed Storage (the
//    emulator's), E.setBootCode, E.CRC32, setTime, echo, save() (the code typed
//    since the last boot becomes .bootcde), and restarts: reset() = a fresh context
//    without the boot code (reset(true) also erases it), load() / E.reboot() = a
//    fresh context that runs .bootrst and .bootcde from Storage, as at power-on.
import { runnableSource } from '../build/image.ts';
import net from 'node:net';
import { startEmulator, type Emulator, type EmulatorOptions } from './emulator.ts';

export type ConsoleOptions = Omit<EmulatorOptions, 'code' | 'bundlePath'> & {
  /** TCP port (0 = any free one) and address (default 127.0.0.1). */
  port: number;
  host?: string;
  /** Run .bootrst/.bootcde from Storage at start (default true). */
  boot?: boolean;
};

export interface EmulatorConsole {
  readonly address: { host: string; port: number };
  /** The emulator currently running (replaced at every reset/load). */
  current(): Emulator;
  /** Number of boots so far (1 after start). */
  readonly boots: number;
  /** Resolves with the emulator of boot number `n` (or later). */
  waitForBoot(n: number, timeoutMs?: number): Promise<Emulator>;
  close(): Promise<void>;
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (IEEE, as Espruino's E.CRC32) of bytes or a binary string. */
export function crc32(data: Uint8Array | string): number {
  let c = 0xffffffff;
  const n = data.length;
  for (let i = 0; i < n; i++) {
    const b = typeof data === 'string' ? data.charCodeAt(i) & 0xff : data[i];
    c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** Net bracket depth of JS source, skipping strings, template literals and comments. */
export function bracketDepth(src: string): number {
  let depth = 0;
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i];
    if (c === '"' || c === "'" || c === '`') {
      i++;
      while (i < n && src[i] !== c) i += src[i] === '\\' ? 2 : 1;
      i++;
    } else if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const e = src.indexOf('*/', i + 2);
      i = e < 0 ? n : e + 2;
    } else {
      if (c === '(' || c === '[' || c === '{') depth++;
      else if (c === ')' || c === ']' || c === '}') depth--;
      i++;
    }
  }
  return depth;
}

const MAX_LINE = 1 << 20;

/**
 * A board with an Espruino-style console on TCP around startEmulator. About 260
 * lines: one closure for the REPL state (line buffer, bracket depth, the running
 * emulator, reset/load/save) its handlers share; left for the same context split.
 */
export async function startConsoleEmulator(opts: ConsoleOptions): Promise<EmulatorConsole> {
  const clients = new Set<net.Socket>();
  const out = (s: string) => {
    for (const c of clients) if (!c.destroyed) c.write(Buffer.from(s, 'latin1'));
  };
  let printed = false;
  const onLog = (line: string) => {
    printed = true;
    out(line.replace(/\n/g, '\r\n') + '\r\n');
    opts.onLog?.(line);
  };

  let emu: Emulator;
  let boots = 0;
  let transcript: string[] = [];
  let echoOn = true;
  let closed = false;
  const bootWaiters: { n: number; resolve: (e: Emulator) => void }[] = [];

  const fmt = (v: unknown): string => {
    if (v === undefined) return 'undefined';
    if (typeof v === 'function') return 'function () { [native code] }';
    try {
      return emu.global.JSON.stringify(v) ?? String(v);
    } catch {
      return String(v);
    }
  };
  const uncaught = (e: unknown) => {
    const err = e as { name?: string; message?: string };
    onLog(`Uncaught ${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`);
  };

  /** The action a line asked for, carried out once the line has finished. */
  let restartRequest: { runBoot: boolean; file?: string } | null = null;

  function installGlobals(G: any): void {
    const Storage = G.require('Storage');
    G.process.env.CONSOLE = 'Telnet';
    G.reset = function (clearFlash?: boolean) {
      if (clearFlash) for (const f of ['.bootcde', '.bootrst']) Storage.erase(f);
      restartRequest = { runBoot: false };
    };
    G.load = function (file?: string) {
      restartRequest = { runBoot: true, file: typeof file === 'string' ? file : undefined };
    };
    G.save = function () {
      const code = transcript.join('\n');
      if (code.length) Storage.write('.bootcde', code);
      else Storage.erase('.bootcde');
      onLog(`Compacting Flash...\r\nWriting Storage .bootcde (${code.length} bytes, code typed since the last boot)...\r\nCompressed 0 bytes to 0`);
    };
    G.echo = function (on: unknown) {
      echoOn = !!on;
    };
    G.setTime = function () {
      /* the emulator runs on the host clock */
    };
    G.E.setTimeZone = function () {};
    G.E.reboot = function () {
      restartRequest = { runBoot: true };
    };
    G.E.setBootCode = function (code: unknown, alwaysExec?: boolean) {
      const name = alwaysExec ? '.bootrst' : '.bootcde';
      if (typeof code === 'string' && code.length) Storage.write(name, code);
      else Storage.erase(name);
    };
    if (typeof G.E.CRC32 !== 'function') {
      G.E.CRC32 = function (d: unknown) {
        return crc32(typeof d === "string" ? d : new Uint8Array(d as ArrayLike<number>));
      };
    }
  }

  async function boot(runBoot: boolean, file?: string): Promise<void> {
    emu = await startEmulator({ ...opts, code: '', onLog });
    boots++;
    transcript = [];
    echoOn = true;
    installGlobals(emu.global);
    if (runBoot) {
      const Storage = emu.global.require('Storage');
      const parts = file ? [file] : ['.bootrst', '.bootcde'];
      for (const name of parts) {
        const code = Storage.read(name);
        if (typeof code !== 'string' || !code.length) continue;
        try {
          // A pretokenised .bootcde (cta flash writes the stored image) runs as the board runs it.
          emu.global.eval(runnableSource(code));
        } catch (e) {
          uncaught(e);
        }
      }
    }
    for (let i = bootWaiters.length - 1; i >= 0; i--) {
      if (boots >= bootWaiters[i].n) {
        bootWaiters[i].resolve(emu);
        bootWaiters.splice(i, 1);
      }
    }
  }

  async function restart(req: { runBoot: boolean; file?: string }): Promise<void> {
    await emu.stop();
    if (closed) return;
    await boot(req.runBoot, req.file);
  }

  // ---- line discipline ----
  let line = '';
  let echoOffForLine = false;
  let esc = 0; // 0 none, 1 had ESC, 2 had ESC [, 3 ESC [ digits
  let hadCR = false;
  const queue: Buffer[] = [];
  let busy = false;

  function execute(src: string): void {
    const quiet = echoOffForLine || !echoOn;
    echoOffForLine = false;
    printed = false;
    const code = src.replace(/\s+$/, '');
    if (!code.length) {
      if (!quiet) out('\r\n>');
      return;
    }
    let result: unknown;
    let failed = false;
    try {
      result = emu.global.eval(code);
      if (!restartRequest) transcript.push(code);
    } catch (e) {
      failed = true;
      uncaught(e);
    }
    if (!quiet && !failed) out(`=${fmt(result)}\r\n`);
    if (!quiet || printed) out('>');
  }

  /** Handles bytes; returns the offset after a line that asked for a restart, or -1. */
  function handle(b: Buffer): number {
    for (let i = 0; i < b.length; i++) {
      const ch = b[i];
      if (esc === 1) {
        esc = ch === 0x5b ? 2 : 0;
        if (ch === 0x0a) line += '\n';
        continue;
      }
      if (esc === 2 || esc === 3) {
        esc = ch >= 0x30 && ch <= 0x39 ? 3 : 0;
        continue;
      }
      if (ch === 0x1b) {
        esc = 1;
        continue;
      }
      if (ch === 0x03) {
        line = '';
        echoOffForLine = false;
        continue;
      }
      if (ch === 0x10 && line.length === 0) {
        echoOffForLine = true;
        continue;
      }
      if (ch === 0x0a && hadCR) {
        hadCR = false;
        continue;
      }
      hadCR = ch === 0x0d;
      if (ch === 0x0d || ch === 0x0a) {
        if (bracketDepth(line) > 0) {
          line += '\n';
          continue;
        }
        if (!echoOffForLine && echoOn) out('\r\n');
        const src = line;
        line = '';
        execute(src);
        if (restartRequest) return i + 1;
        continue;
      }
      if (ch === 0x08 || ch === 0x7f) {
        line = line.slice(0, -1);
        continue;
      }
      if (ch >= 0x20 || ch === 0x09) {
        if (line.length >= MAX_LINE) {
          line = '';
          onLog('Uncaught Error: input line too long');
          continue;
        }
        line += String.fromCharCode(ch);
        if (!echoOffForLine && echoOn) out(String.fromCharCode(ch));
      }
    }
    return -1;
  }

  async function drain(): Promise<void> {
    if (busy) return;
    busy = true;
    try {
      while (queue.length && !closed) {
        const b = queue.shift() as Buffer;
        const at = handle(b);
        if (at >= 0) {
          const req = restartRequest as unknown as { runBoot: boolean; file?: string };
          restartRequest = null;
          if (at < b.length) queue.unshift(b.subarray(at));
          await restart(req);
        }
      }
    } finally {
      busy = false;
    }
  }

  await boot(opts.boot !== false);

  const server = net.createServer((sock) => {
    clients.add(sock);
    sock.on('data', (d: Buffer) => {
      queue.push(d);
      void drain().catch((e) => onLog(`console error: ${(e as Error).message}`));
    });
    sock.on('error', () => {});
    sock.on('close', () => clients.delete(sock));
  });
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(opts.port, host, () => {
      server.off('error', rej);
      res();
    });
  });
  const a = server.address() as net.AddressInfo;

  return {
    address: { host: a.address, port: a.port },
    current: () => emu,
    get boots() {
      return boots;
    },
    waitForBoot(n: number, timeoutMs = 10000) {
      if (boots >= n) return Promise.resolve(emu);
      return new Promise<Emulator>((resolve, reject) => {
        const w = { n, resolve: (e: Emulator) => (clearTimeout(timer), resolve(e)) };
        const timer = setTimeout(() => {
          const i = bootWaiters.indexOf(w);
          if (i >= 0) bootWaiters.splice(i, 1);
          reject(new Error(`no boot #${n} within ${timeoutMs} ms (${boots} so far)`));
        }, timeoutMs);
        bootWaiters.push(w);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const c of clients) c.destroy();
      await new Promise<void>((res) => server.close(() => res()));
      await emu.stop();
    },
  };
}
