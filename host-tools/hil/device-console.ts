// HIL targets read through an Espruino console: 'espruino:' (an Espruino Linux build
// started with --telnet, then driven as tcp://127.0.0.1:2323) and 'tcp://' (a board
// behind a console on TCP, flashed with cta flash).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { flash } from '../flash/flash.ts';
import { crc32 } from '../emulator/console.ts';
import type { AgentStatus } from '../../firmware/agent/agent.ts';
import { CONFIG_FILE } from '../../firmware/config.ts';
import { nameCountersIn } from '../build/text.ts';
import { bounded, sleep, type DeviceMemory, type DeviceOptions, type HilDevice } from './device.ts';

// ---------------------------------------------------------------- Espruino Linux build

/** Strips the console's prompt and line-editing noise from one output line. */
function consoleLine(raw: string): string {
  return raw.replace(/\r/g, '').replace(/\x1b\[J/g, '').replace(/^>+/, '');
}

/** An Espruino console's output as lines: split, cleaned (consoleLine), kept (bounded) and waited for. */
class ConsoleLines {
  lines: string[] = [];
  private partial = '';
  private waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  /** An unfinished line longer than this is dropped. */
  private maxPartial: number;

  constructor(maxPartial = Infinity) {
    this.maxPartial = maxPartial;
  }

  /** Starts afresh (a new boot): a new lines array, no partial line. */
  reset(): void {
    this.lines = [];
    this.partial = '';
  }

  /** Console output bytes. */
  data(d: Buffer): void {
    this.partial += d.toString('latin1');
    let i;
    while ((i = this.partial.indexOf('\n')) >= 0) {
      this.onLine(this.partial.slice(0, i));
      this.partial = this.partial.slice(i + 1);
    }
    if (this.partial.length > this.maxPartial) this.partial = '';
  }

  private onLine(raw: string): void {
    const line = consoleLine(raw);
    if (!line) return;
    bounded(this.lines, line);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i].test(line)) {
        this.waiters[i].resolve(line);
        this.waiters.splice(i, 1);
      }
    }
  }

  /** The next line passing test; after timeoutMs rejects with the error failure() describes. */
  wait(test: (l: string) => boolean, timeoutMs: number, failure: () => string): Promise<string> {
    return new Promise((resolve, reject) => {
      const w = {
        test,
        resolve: (l: string) => {
          clearTimeout(t);
          resolve(l);
        },
      };
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(failure()));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** The last five lines, for error messages. */
  tail(): string {
    return this.lines.slice(-5).join(' | ');
  }
}

const MARK = '\x01HIL';

/** The telnet console port of the Espruino Linux build (libs/network/telnet/jswrap_telnet.c, fixed at compile time). */
export const ESPRUINO_TELNET_PORT = 2323;

/**
 * One Espruino --telnet interpreter at a time on this host (network namespace). Measured
 * on 2v29: a second interpreter also listens on 0.0.0.0:2323 (the port is shared), the
 * kernel hands each new connection to either, and an interpreter that accepts a client
 * closes the one it had -- two concurrent runs would take each other's console. So the
 * runs queue on an abstract Unix socket (per network namespace, as the port is; released
 * by the kernel when the process dies), and then wait for nothing else to listen on 2323.
 */
async function lockTelnetPort(say: (l: string) => void, limitMs: number): Promise<() => void> {
  const t0 = Date.now();
  let told = false;
  for (;;) {
    const srv = net.createServer();
    const got = await new Promise<boolean>((res) => {
      srv.once('error', () => res(false));
      srv.listen({ path: `\0cta-espruino-telnet-${ESPRUINO_TELNET_PORT}` }, () => res(true));
    });
    if (got) {
      srv.unref();
      const release = () => srv.close();
      try {
        await portFree(ESPRUINO_TELNET_PORT, limitMs - (Date.now() - t0), say);
      } catch (e) {
        release();
        throw e;
      }
      return release;
    }
    if (Date.now() - t0 > limitMs) throw new Error(`another cta run has held the Espruino telnet port ${ESPRUINO_TELNET_PORT} for ${Math.round(limitMs / 1000)} s`);
    if (!told) say(`waiting for another cta run using an Espruino --telnet console (port ${ESPRUINO_TELNET_PORT} is fixed in the Linux build)`);
    told = true;
    await sleep(250);
  }
}

/** Waits until nothing listens on the TCP port (probed by binding it, which disturbs no one). */
async function portFree(port: number, limitMs: number, say: (l: string) => void): Promise<void> {
  const t0 = Date.now();
  let told = false;
  for (;;) {
    const srv = net.createServer();
    const free = await new Promise<boolean>((res) => {
      srv.once('error', () => res(false));
      srv.listen({ port, host: '0.0.0.0', exclusive: true }, () => srv.close(() => res(true)));
    });
    if (free) return;
    if (Date.now() - t0 > limitMs) throw new Error(`TCP port ${port} is in use by another process (an Espruino --telnet not started by cta?); the Linux build's console port is fixed at ${port}`);
    if (!told) say(`waiting for TCP port ${port} to be free`);
    told = true;
    await sleep(250);
  }
}

/**
 * An Espruino Linux build as a board: started with --telnet in its work dir (Storage in
 * ./espruino.flash there), its stdin an open pipe that is never written (with stdin at
 * EOF the 32-bit builds spin printing '?'), then provisioned and driven exactly as a
 * board on tcp://127.0.0.1:2323: `cta flash` writes cta.cfg and the stored image to
 * Storage and load() boots it from flash.
 */
export class EspruinoDevice implements HilDevice {
  readonly description: string;
  readonly kmPort: number;
  private opts: DeviceOptions;
  private binary: string;
  private proc: ChildProcess | null = null;
  private out = new ConsoleLines(1 << 16);
  private exited: Promise<void> = Promise.resolve();
  private exitInfo: string | null = null;
  private release: (() => void) | null = null;
  private tcp: TcpConsoleDevice | null = null;

  constructor(binary: string, opts: DeviceOptions) {
    this.binary = binary;
    this.opts = opts;
    this.kmPort = opts.kmPort;
    this.description = `Espruino (${binary} --telnet, board ${opts.board}, code in Storage), UDP 127.0.0.1:${opts.kmPort}`;
  }

  private dev(): TcpConsoleDevice {
    if (!this.tcp) throw new Error(`Espruino is not running${this.exitInfo ? ` (${this.exitInfo})` : ''}`);
    return this.tcp;
  }

  async boot(config: Uint8Array): Promise<void> {
    const say = this.opts.out ?? (() => {});
    mkdirSync(this.opts.workDir, { recursive: true });
    this.release = await lockTelnetPort(say, 600000);
    const p = spawn(this.binary, ['--telnet'], { cwd: this.opts.workDir, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = p;
    this.exited = new Promise((res) => {
      p.once('exit', (code, sig) => {
        this.exitInfo = `exited with ${sig ?? code}`;
        res();
      });
      p.once('error', (e) => {
        this.exitInfo = `cannot run: ${e.message}`;
        res();
      });
    });
    p.stdout!.on('data', (d: Buffer) => this.out.data(d));
    p.stderr!.on('data', (d: Buffer) => this.out.data(d));
    // Its telnet server listens from the first idle loop on.
    const t0 = Date.now();
    const limit = this.opts.bootTimeoutMs ?? 20000;
    for (;;) {
      if (this.exitInfo) throw new Error(`Espruino ${this.exitInfo}; output: ${this.out.tail()}`);
      const up = await new Promise<boolean>((res) => {
        const s = net.createConnection({ host: '127.0.0.1', port: ESPRUINO_TELNET_PORT });
        s.once('error', () => res(false));
        s.once('connect', () => {
          s.destroy();
          res(true);
        });
      });
      if (up) break;
      if (Date.now() - t0 > limit) throw new Error(`Espruino --telnet did not listen on ${ESPRUINO_TELNET_PORT} within ${limit} ms; output: ${this.out.tail()}`);
      await sleep(100);
    }
    const spec = { host: '127.0.0.1', port: ESPRUINO_TELNET_PORT, text: `tcp://127.0.0.1:${ESPRUINO_TELNET_PORT}` };
    this.tcp = new TcpConsoleDevice(spec, this.opts);
    await this.tcp.boot(config);
  }

  status(): Promise<AgentStatus> {
    return this.dev().status();
  }
  rxCount(): Promise<number> {
    return this.dev().rxCount();
  }
  memory(): Promise<DeviceMemory> {
    return this.dev().memory();
  }
  setClockOffset(ms: number): Promise<void> {
    return this.dev().setClockOffset(ms);
  }
  restart(config: Uint8Array): Promise<void> {
    return this.dev().restart(config);
  }
  logs(): string[] {
    return this.tcp ? this.out.lines.concat(this.tcp.logs()) : this.out.lines;
  }
  async stop(): Promise<void> {
    if (this.tcp) await this.tcp.stop().catch(() => {});
    this.tcp = null;
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 1500);
      await this.exited;
      clearTimeout(t);
    }
    this.proc = null;
    if (this.release) this.release();
    this.release = null;
  }
}

// ---------------------------------------------------------------- Espruino console over TCP


/** Code that makes Date.now() (what the firmware platform reads) offset by __hilOff; idempotent. */
/** Free variables below which the tcp target grows an Espruino Linux build's variable store. */
const LINUX_MIN_FREE = 2048;

const CLOCK_HOOK = 'if(!global.__hilNow){global.__hilOff=0;global.__hilNow=Date.now;Date.now=function(){return __hilNow()+__hilOff;};}';

export class TcpConsoleDevice implements HilDevice {
  readonly description: string;
  readonly kmPort: number;
  private opts: DeviceOptions;
  private host: string;
  private port: number;
  private sock: net.Socket | null = null;
  private con = new ConsoleLines(1 << 20);
  private queryId = 0;
  private closedWhy: string | null = null;
  private offsetMs = 0;
  /** Figures from provisioning (flash steps), for the report. */
  readonly flashLines: string[] = [];

  constructor(spec: { host: string; port: number; text: string }, opts: DeviceOptions) {
    this.opts = opts;
    this.host = spec.host;
    this.port = spec.port;
    this.kmPort = opts.kmPort;
    this.description = `Espruino console ${spec.text} (board ${opts.board}), UDP 127.0.0.1:${opts.kmPort}`;
  }

  /** The next console line passing test. */
  private waitLine(test: (l: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    return this.con.wait(test, timeoutMs, () => `${this.opts.board} console: no ${what} within ${timeoutMs} ms${this.closedWhy ? ` (${this.closedWhy})` : ''}; last lines: ${this.con.tail()}`);
  }

  private connect(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ host: this.host, port: this.port });
      const fail = (e: Error) => reject(new Error(`cannot connect to the console at ${this.host}:${this.port}: ${e.message}`));
      s.once('error', fail);
      s.once('connect', () => {
        s.off('error', fail);
        s.setNoDelay(true);
        this.sock = s;
        this.closedWhy = null;
        s.on('data', (d: Buffer) => this.con.data(d));
        s.on('error', (e) => (this.closedWhy = `console connection error: ${e.message}`));
        s.on('close', () => {
          this.closedWhy = this.closedWhy ?? 'the console closed the connection';
          if (this.sock === s) this.sock = null;
        });
        resolve();
      });
    });
  }

  /** Evaluates `expr` on the console (no echo: DLE line); resolves with its JSON value. */
  async query(expr: string, timeoutMs = 15000): Promise<any> {
    if (!this.sock) throw new Error(`not connected to the console at ${this.host}:${this.port}${this.closedWhy ? ` (${this.closedWhy})` : ''}`);
    const tag = `${MARK}${++this.queryId} `;
    const wait = this.waitLine((l) => l.startsWith(tag), timeoutMs, `answer to ${expr.length > 60 ? expr.slice(0, 60) + '...' : expr}`);
    this.sock.write(`\x10print(${JSON.stringify(tag)}+JSON.stringify(${expr}))\n`, 'latin1');
    const line = await wait;
    return JSON.parse(line.slice(tag.length));
  }

  /** First boot: `cta flash` (config + firmware to Storage, load()), then our own console connection. */
  async boot(config: Uint8Array): Promise<void> {
    mkdirSync(this.opts.workDir, { recursive: true });
    const cfgPath = join(this.opts.workDir, 'cta.cbor');
    writeFileSync(cfgPath, config);
    const say = this.opts.out ?? (() => {});
    // Nothing listening: say so now (EspruinoTools would wait out its connect timeout).
    await this.connect();
    this.sock?.destroy();
    this.sock = null;
    const t0 = Date.now();
    // (EspruinoTools' chatter is captured while flash() runs, console.log included: its
    // step lines are printed once it has returned.)
    try {
      const fo = this.opts.flash ?? {};
      await flash({ board: this.opts.board, port: `tcp://${this.host}:${this.port}`, config: cfgPath, timeoutSec: fo.timeoutSec ?? 30, force: fo.force, out: (l) => this.flashLines.push(l) });
    } finally {
      for (const l of this.flashLines) say(`flash ${l}`);
    }
    say(`flash: done in ${Date.now() - t0} ms`);
    await this.connect();
    await this.ready();
  }

  /** Waits until the agent runs with its UDP port bound; hooks the clock. */
  private async ready(): Promise<void> {
    const t0 = Date.now();
    const limit = this.opts.bootTimeoutMs ?? 20000;
    for (;;) {
      const st = (await this.query('global.cta?[1,cta.status().principal]:[0,String(global.ctaError)]', limit)) as [number, string];
      if (st[0] === 1) break;
      if (Date.now() - t0 > limit) throw new Error(`the firmware did not start on the board: ${st[1]}`);
      await sleep(200);
    }
    await this.query(`(function(){${CLOCK_HOOK}global.__hilOff=${Math.floor(this.offsetMs)};return 1;})()`);
    await this.roomToWork();
  }

  /**
   * The Espruino Linux build starts with 4096 variables and grows its store only when a
   * single-block allocation finds none free. The CTA code loaded from Storage .bootcde
   * (not memory-mapped there, so it lives in variables) takes most of them, and a
   * contiguous flat string -- what the native crypto module returns -- then fails with
   * "Not enough memory for result" instead of growing the store. On a LINUX build with
   * little free, grow it once by allocating and dropping small arrays (a board has its
   * code in memory-mapped flash and a fixed store: nothing to do there).
   */
  private async roomToWork(): Promise<void> {
    const m0 = await this.query('[process.env.BOARD,process.memory()]');
    if (m0[0] !== 'LINUX' || m0[1].free >= LINUX_MIN_FREE) return;
    // Only a resizable store (it starts at 4,096 blocks, src/jsvar.c) grows; a build with a
    // fixed store (the board-sized 32-bit ones: 5,100 or 2,630) must not be filled.
    if (m0[1].total !== 4096) return;
    const m1 = await this.query(`(function(){var t=[],i=0;while(i<20000&&process.memory().free<${LINUX_MIN_FREE}){for(var k=0;k<200;k++)t.push([i++]);}t=undefined;return process.memory();})()`, 30000);
    const say = this.opts.out ?? (() => {});
    say(`Espruino Linux: ${m0[1].usage} of ${m0[1].total} variables in use after boot (free ${m0[1].free}); variable store grown to ${m1.total} (free ${m1.free}) so native crypto results can be allocated`);
  }

  async status(): Promise<AgentStatus> {
    const s = await this.query('global.cta?cta.status():null');
    if (!s) throw new Error('no agent running on the board');
    return nameCountersIn(s as AgentStatus);
  }
  async rxCount(): Promise<number> {
    // counters.rx, or item 0 of a board that reports its counters as numbers (C_RX is 0).
    return Number(await this.query('global.cta?(function(c){return c.rx===undefined?c[0]:c.rx})(cta.counters):-1'));
  }
  async memory(): Promise<DeviceMemory> {
    const m = await this.query('process.memory()');
    return { free: m.free, usage: m.usage, total: m.total };
  }
  async setClockOffset(ms: number): Promise<void> {
    this.offsetMs = ms;
    await this.query(`(function(){${CLOCK_HOOK}global.__hilOff=${Math.floor(ms)};return 1;})()`);
  }
  /** Re-provisioning: the new cta.cfg written through the console (checked back by CRC-32), then load(). */
  async restart(config: Uint8Array): Promise<void> {
    const bin = Buffer.from(config).toString('latin1');
    const b64 = Buffer.from(config).toString('base64');
    const got = (await this.query(`(function(){var S=require("Storage");S.write(${JSON.stringify(CONFIG_FILE)},atob(${JSON.stringify(b64)}));var s=S.read(${JSON.stringify(CONFIG_FILE)});return s===undefined?null:[s.length,E.CRC32(s)>>>0];})()`)) as [number, number] | null;
    if (!got || got[0] !== bin.length || got[1] !== crc32(bin)) throw new Error(`${CONFIG_FILE} did not read back as written: ${JSON.stringify(got)}`);
    // load() restarts the interpreter into Storage .bootcde; the answer comes from the new boot.
    if (!this.sock) throw new Error('not connected to the console');
    this.sock.write('\x10load()\n', 'latin1');
    await sleep(500);
    await this.ready();
  }
  logs(): string[] {
    return this.con.lines;
  }
  /** Stops the agent (the board keeps the HIL firmware and configuration in Storage) and disconnects. */
  async stop(): Promise<void> {
    const s = this.sock;
    if (!s) return;
    await this.query('(function(){if(global.cta)cta.stop();if(global.__hilNow){Date.now=__hilNow;}return 1;})()', 3000).catch(() => {});
    await new Promise<void>((res) => {
      s.end(() => res());
      setTimeout(res, 500);
    });
    s.destroy();
    this.sock = null;
  }
}

