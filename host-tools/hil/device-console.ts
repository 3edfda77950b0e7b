// HIL targets read through an Espruino console: 'espruino:' (an Espruino Linux build
// run as a child process on the bundle) and 'tcp://' (a board behind a console on TCP,
// flashed with cta flash).
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { flash } from '../flash/flash.ts';
import { crc32 } from '../emulator/console.ts';
import type { AgentStatus } from '../../firmware/agent/agent.ts';
import { CONFIG_FILE } from '../../firmware/config.ts';
import { bounded, sleep, type DeviceMemory, type DeviceOptions, type HilDevice } from './device.ts';

// ---------------------------------------------------------------- Espruino Linux build

/** Code run before the bundle: writes the configuration to Storage and hooks the clock. */
export function espruinoPrelude(config: Uint8Array): string {
  const b64 = Buffer.from(config).toString('base64');
  return [
    `require("Storage").write(${JSON.stringify(CONFIG_FILE)},atob(${JSON.stringify(b64)}));`,
    'var __hilOff=0,__hilNow=Date.now;Date.now=function(){return __hilNow()+__hilOff;};',
    '',
  ].join('\n');
}

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

export class EspruinoDevice implements HilDevice {
  readonly description: string;
  readonly kmPort: number;
  private opts: DeviceOptions;
  private binary: string;
  private proc: ChildProcess | null = null;
  private con = new ConsoleLines();
  private queryId = 0;
  private exited: Promise<void> = Promise.resolve();
  private exitInfo: string | null = null;
  private offsetMs = 0;

  constructor(binary: string, opts: DeviceOptions) {
    this.binary = binary;
    this.opts = opts;
    this.kmPort = opts.kmPort;
    this.description = `Espruino (${binary}, board ${opts.board}), UDP 127.0.0.1:${opts.kmPort}`;
  }

  /** A line since boot passing test (one already seen, or the next). */
  private waitLine(test: (l: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const hit = this.con.lines.find(test);
    if (hit) return Promise.resolve(hit);
    return this.con.wait(test, timeoutMs, () => `Espruino: no ${what} within ${timeoutMs} ms${this.exitInfo ? ` (${this.exitInfo})` : ''}; last lines: ${this.con.tail()}`);
  }

  async boot(config: Uint8Array): Promise<void> {
    mkdirSync(this.opts.workDir, { recursive: true });
    const file = join(this.opts.workDir, 'hil.js');
    writeFileSync(file, espruinoPrelude(config) + readFileSync(this.opts.bundlePath, 'utf8'));
    this.con.reset();
    this.exitInfo = null;
    // cwd = the work dir: the Linux build keeps Storage in ./espruino.flash there.
    const p = spawn(this.binary, ['hil.js'], { cwd: this.opts.workDir, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc = p;
    this.exited = new Promise((res) => {
      p.once('exit', (code, sig) => {
        this.exitInfo = `exited with ${sig ?? code}`;
        if (this.proc === p) this.proc = null;
        res();
      });
      p.once('error', (e) => {
        this.exitInfo = `cannot run: ${e.message}`;
        if (this.proc === p) this.proc = null;
        res();
      });
    });
    const onData = (d: Buffer) => this.con.data(d);
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    p.stdin!.on('error', () => {});
    const line = await this.waitLine((l) => l.includes('"ev":"cta.start"') || l.startsWith('CTA:') || l.startsWith('Uncaught'), this.opts.bootTimeoutMs ?? 20000, 'CTA start line');
    if (!line.includes('cta.start')) throw new Error(`the firmware did not start on Espruino: ${line}`);
    await this.query('1', 10000); // the console answers: the boot code has finished
  }

  /** Evaluates `expr` on the device console; resolves with its JSON value. */
  async query(expr: string, timeoutMs = 15000): Promise<any> {
    if (!this.proc) throw new Error(`Espruino is not running${this.exitInfo ? ` (${this.exitInfo})` : ''}`);
    const id = ++this.queryId;
    const tag = `${MARK}${id} `;
    const wait = this.waitLine((l) => l.startsWith(tag), timeoutMs, `answer to ${expr}`);
    // \x10 at the start of a line: Espruino does not echo it.
    this.proc.stdin!.write(`\x10print(${JSON.stringify(tag)}+JSON.stringify(${expr}))\n`);
    const line = await wait;
    return JSON.parse(line.slice(tag.length));
  }

  async status(): Promise<AgentStatus> {
    const s = await this.query('cta?cta.status():null');
    if (!s) throw new Error('no agent running on Espruino');
    return s as AgentStatus;
  }
  async rxCount(): Promise<number> {
    return Number(await this.query('cta?cta.counters.rx:-1'));
  }
  async memory(): Promise<DeviceMemory> {
    const m = await this.query('process.memory()');
    return { free: m.free, usage: m.usage, total: m.total };
  }
  async setClockOffset(ms: number): Promise<void> {
    this.offsetMs = ms;
    await this.query(`(__hilOff=${Math.floor(ms)})`);
  }
  async restart(config: Uint8Array): Promise<void> {
    await this.stop();
    await this.boot(config);
    if (this.offsetMs) await this.setClockOffset(this.offsetMs);
  }
  logs(): string[] {
    return this.con.lines;
  }
  async stop(): Promise<void> {
    const p = this.proc;
    if (!p) return;
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 1500);
    await this.exited;
    clearTimeout(t);
    this.proc = null;
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
      await flash({ board: this.opts.board, port: `tcp://${this.host}:${this.port}`, config: cfgPath, timeoutSec: 30, out: (l) => this.flashLines.push(l) });
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
    const m1 = await this.query(`(function(){var t=[],i=0;while(i<20000&&process.memory().free<${LINUX_MIN_FREE}){for(var k=0;k<200;k++)t.push([i++]);}t=undefined;return process.memory();})()`, 30000);
    const say = this.opts.out ?? (() => {});
    say(`Espruino Linux: ${m0[1].usage} of ${m0[1].total} variables in use after boot (free ${m0[1].free}); variable store grown to ${m1.total} (free ${m1.free}) so native crypto results can be allocated`);
  }

  async status(): Promise<AgentStatus> {
    const s = await this.query('global.cta?cta.status():null');
    if (!s) throw new Error('no agent running on the board');
    return s as AgentStatus;
  }
  async rxCount(): Promise<number> {
    return Number(await this.query('global.cta?cta.counters.rx:-1'));
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

