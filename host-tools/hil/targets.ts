// HIL targets: where the CTA firmware bundle runs during `cta hil`.
//   emu                     the host emulator (host-tools/emulator), in this process
//   espruino:/path/to/bin   an Espruino Linux build, run as a child process on the
//                           bundle with the configuration written to Storage first;
//                           its stdin is the Espruino console, used to read status
//                           and process.memory() back and to set the clock offset
//   tcp://host:port         a board behind an Espruino console on TCP (an Espruino
//                           Linux build with --telnet, `cta emu --console tcp:PORT`):
//                           provisioned with `cta flash` (config + firmware + load()),
//                           then status/memory/clock through console queries
//   serial:/dev/ttyX[:baud] a board whose transport is the serial link
//                           (host-tools/serial): provisioned over control channel 0
//                           (or flashed first when its console shares the line), key
//                           management on channel 1 through a link-level proxy, KDC
//                           relayed on channel 2, status/memory on channel 0
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync, writeFileSync, readFileSync, mkdirSync, accessSync, constants as fsConstants } from 'node:fs';
import { join, resolve } from 'node:path';
import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import { UsageError } from '../args.ts';
import { startEmulator, type Emulator } from '../emulator/emulator.ts';
import { loadBoard } from '../build/boards.ts';
import { flash } from '../flash/flash.ts';
import { crc32 } from '../emulator/console.ts';
import { openSerialLink, parseSerialSpec, DEFAULT_BAUD, type SerialLinkHost } from '../serial/link.ts';
import { startKdcRelay, type KdcRelay } from '../serial/kdc-relay.ts';
import { ControlClient } from '../serial/control.ts';
import { CHANNEL } from '../serial/frames.ts';
import type { ScServer } from '../sc/server.ts';
import { Relay, type Direction } from './proxy.ts';
import type { AgentStatus } from '../../firmware/agent/agent.ts';
import { CONFIG_FILE } from '../../firmware/config.ts';

export type TargetSpec =
  | { kind: 'emu'; text: string }
  | { kind: 'espruino'; text: string; binary: string }
  | { kind: 'serial'; text: string; path: string; baud: number | null }
  | { kind: 'tcp'; text: string; host: string; port: number };

export function parseTarget(s: string): TargetSpec {
  if (s === 'emu' || s === 'emulator') return { kind: 'emu', text: 'emu' };
  if (s.startsWith('espruino:')) {
    const binary = s.slice('espruino:'.length);
    if (!binary) throw new UsageError(`bad --target '${s}': expected espruino:/path/to/espruino`);
    return { kind: 'espruino', text: s, binary: resolve(binary) };
  }
  if (s.startsWith('serial:')) {
    const rest = s.slice('serial:'.length);
    const m = /^(.+?)(?::(\d+))?$/.exec(rest);
    if (!m || !m[1] || !m[1].startsWith('/')) throw new UsageError(`bad --target '${s}': expected serial:/dev/ttyX[:baud]`);
    if (m[2]) parseSerialSpec(rest); // a baud rate the link supports, or a UsageError
    return { kind: 'serial', text: s, path: m[1], baud: m[2] ? Number(m[2]) : null };
  }
  if (s.startsWith('tcp://')) {
    const m = /^tcp:\/\/([^:/]+):(\d{1,5})$/.exec(s);
    if (!m || Number(m[2]) > 65535 || Number(m[2]) === 0) throw new UsageError(`bad --target '${s}': expected tcp://HOST:PORT`);
    return { kind: 'tcp', text: s, host: m[1], port: Number(m[2]) };
  }
  throw new UsageError(`unknown --target '${s}': expected emu, espruino:/path/to/espruino, serial:/dev/ttyX[:baud] or tcp://HOST:PORT`);
}

/** The board a target runs unless --board says otherwise. */
export function defaultBoard(spec: TargetSpec): string {
  return spec.kind === 'espruino' || spec.kind === 'tcp' ? 'linux' : 'emulator';
}

/** Why the target cannot run here (printed, scenarios skipped), or null. */
export function unavailableReason(spec: TargetSpec): string | null {
  if (spec.kind === 'emu') return null;
  if (spec.kind === 'espruino') {
    if (!existsSync(spec.binary)) return `target not available: ${spec.binary} does not exist`;
    try {
      if (!statSync(spec.binary).isFile()) return `target not available: ${spec.binary} is not a file`;
      accessSync(spec.binary, fsConstants.X_OK);
    } catch {
      return `target not available: ${spec.binary} is not executable`;
    }
    return null;
  }
  if (spec.kind === 'serial') {
    if (!existsSync(spec.path)) return `target not available: ${spec.path} does not exist`;
    return null;
  }
  // tcp://: whether a console answers there is found out by connecting (a setup failure).
  return null;
}

export type DeviceMemory = { free: number; usage: number; total: number };

/** A running target, as the scenarios see it. */
export interface HilDevice {
  readonly description: string;
  /** Local UDP port of the CTA's key-management socket (127.0.0.1). */
  readonly kmPort: number;
  status(): Promise<AgentStatus>;
  /** The agent's received-datagram counter (a cheap probe, for pacing floods). */
  rxCount(): Promise<number>;
  /** process.memory() on the device (variables). */
  memory(): Promise<DeviceMemory>;
  /** Offsets the device's wall clock (Date.now) by ms from the host clock. */
  setClockOffset(ms: number): Promise<void>;
  /** Re-provisions (new cta.cfg) and boots the firmware again. */
  restart(config: Uint8Array): Promise<void>;
  /** The device's printed lines (newest last, bounded). */
  logs(): string[];
  stop(): Promise<void>;
  /** Where the SC registers the CTA when it is not at 127.0.0.1:kmPort (a serial link's name). */
  readonly scAddress?: string;
  /** The device's own key-management relay (serial: the link), used instead of the UDP proxy. */
  readonly proxy?: LinkProxy;
  /** Scenarios this target cannot run, with the reason (printed as SKIP). */
  readonly unsupported?: { [scenario: string]: string };
}

export type DeviceOptions = {
  board: string;
  bundlePath: string;
  config: Uint8Array;
  kmPort: number;
  workDir: string;
  /** Boot timeout (ms). */
  bootTimeoutMs?: number;
  /** serial: the SC the link is attached to, where channel 2 goes, and the CTA's principal. */
  sc?: ScServer;
  kdc?: { host: string; port: number };
  principal?: string;
  /** Progress lines (flashing, provisioning). */
  out?: (line: string) => void;
};

const LOG_KEEP = 2000;

function bounded(logs: string[], line: string): void {
  logs.push(line);
  if (logs.length > LOG_KEEP) logs.splice(0, logs.length - LOG_KEEP);
}

/** A free UDP port on 127.0.0.1 (bound and released). */
export function freeUdpPort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = dgram.createSocket('udp4');
    s.once('error', rej);
    s.bind({ port: 0, address: '127.0.0.1', exclusive: true }, () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => res(p));
    });
  });
}

// ---------------------------------------------------------------- emulator

class EmuDevice implements HilDevice {
  readonly description: string;
  readonly kmPort: number;
  private emu: Emulator | null = null;
  private opts: DeviceOptions;
  private lines: string[] = [];
  private offsetMs = 0;

  constructor(opts: DeviceOptions) {
    this.opts = opts;
    this.kmPort = opts.kmPort;
    this.description = `host emulator (board ${opts.board}), UDP 127.0.0.1:${opts.kmPort}`;
  }

  async boot(config: Uint8Array): Promise<void> {
    const emu = await startEmulator({
      board: this.opts.board,
      bundlePath: this.opts.bundlePath,
      storageDir: join(this.opts.workDir, 'storage'),
      files: { [CONFIG_FILE]: config },
      onLog: (l) => bounded(this.lines, l),
    });
    this.emu = emu;
    const G = emu.global;
    if (!G.cta) {
      await emu.stop();
      throw new Error(`the firmware did not start: ${G.ctaError ?? 'no agent'}`);
    }
    // The emulator's clock is the host's; an offset is injected by wrapping the
    // context's Date.now (what the firmware platform reads).
    const hostNow = G.Date.now.bind(G.Date);
    G.Date.now = () => hostNow() + this.offsetMs;
    // The agent binds its UDP port asynchronously: wait for it.
    const t0 = Date.now();
    while (!emu.udpAddresses().some((a) => a.port === this.kmPort)) {
      if (Date.now() - t0 > (this.opts.bootTimeoutMs ?? 5000)) throw new Error(`the CTA did not bind UDP port ${this.kmPort}`);
      await sleep(5);
    }
  }
  async status(): Promise<AgentStatus> {
    const cta = this.emu?.global.cta;
    if (!cta) throw new Error('no agent running on the emulator');
    return JSON.parse(JSON.stringify(cta.status())) as AgentStatus;
  }
  async rxCount(): Promise<number> {
    const cta = this.emu?.global.cta;
    if (!cta) throw new Error('no agent running on the emulator');
    return Number(cta.counters.rx);
  }
  async memory(): Promise<DeviceMemory> {
    if (!this.emu) throw new Error('emulator not running');
    const m = this.emu.global.process.memory();
    return { free: m.free, usage: m.usage, total: m.total };
  }
  async setClockOffset(ms: number): Promise<void> {
    this.offsetMs = ms;
  }
  async restart(config: Uint8Array): Promise<void> {
    if (this.emu) await this.emu.stop();
    this.emu = null;
    await this.boot(config);
  }
  logs(): string[] {
    return this.lines;
  }
  async stop(): Promise<void> {
    if (this.emu) await this.emu.stop();
    this.emu = null;
  }
}

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

class EspruinoDevice implements HilDevice {
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

class TcpConsoleDevice implements HilDevice {
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

// ---------------------------------------------------------------- serial link

/**
 * The key-management relay of a serial target: SC <-> [LinkProxy] <-> channel 1 of
 * the link. The same log / filter / inject / waitFor as the UDP HilProxy, so the
 * scenarios drive both alike.
 */
export class LinkProxy extends Relay {
  /** Where relayed datagrams go: to the CTA (the link) and to the SC (its attachLink receiver). */
  toCta: (data: Uint8Array) => void = () => {};
  toSc: (data: Uint8Array) => void = () => {};

  protected deliver(data: Uint8Array, dir: Direction): void {
    if (dir === 'sc->cta') this.toCta(data);
    else this.toSc(data);
  }
  async close(): Promise<void> {
    this.toCta = () => {};
    this.toSc = () => {};
  }
}

class SerialDevice implements HilDevice {
  description: string;
  readonly kmPort = 0;
  readonly proxy = new LinkProxy();
  readonly unsupported: { [scenario: string]: string } = {
    'wake-up-flood': 'needs UDP to the CTA key-management port (spoofed sources, 10k datagrams); a serial CTA has no address and 10k frames at serial speed take minutes',
  };
  scAddress = '';
  private spec: { path: string; baud: number | null; text: string };
  private opts: DeviceOptions;
  private link: SerialLinkHost | null = null;
  private control: ControlClient | null = null;
  private relay: KdcRelay | null = null;
  private lines: string[] = [];

  constructor(spec: { path: string; baud: number | null; text: string }, opts: DeviceOptions) {
    this.spec = spec;
    this.opts = opts;
    this.description = `serial link ${spec.path} (board ${opts.board})`;
  }

  private ctl(): ControlClient {
    if (!this.control) throw new Error('serial link closed');
    return this.control;
  }

  async boot(config: Uint8Array): Promise<void> {
    const o = this.opts;
    if (!o.sc || !o.kdc || !o.principal) throw new Error('serial target: the runner passed no SC/KDC');
    const board = loadBoard(o.board);
    const say = o.out ?? (() => {});
    const baud = this.spec.baud ?? board.serial.baud ?? DEFAULT_BAUD;
    // A board whose console shares the serial line answers no channel 0 until an agent
    // runs: it is flashed over that line first (Espruino console, EspruinoTools).
    if (board.serial.consoleTo) {
      mkdirSync(o.workDir, { recursive: true });
      const cfgPath = join(o.workDir, 'cta.cbor');
      writeFileSync(cfgPath, config);
      say(`board ${board.board}: its console shares the line (consoleTo ${board.serial.consoleTo}): flashing over ${this.spec.path}`);
      const fl: string[] = [];
      try {
        await flash({ board: board.board, port: this.spec.path, baud, config: cfgPath, timeoutSec: 60, out: (l) => fl.push(l) });
      } finally {
        for (const l of fl) say(`flash ${l}`);
      }
    }
    const link = await openSerialLink({ path: this.spec.path, baud });
    this.link = link;
    this.scAddress = link.name;
    this.description = `serial link ${this.spec.path} at ${baud} baud (board ${board.board})`;
    const recv = o.sc.attachLink(link.name, (ch, data) => {
      if (ch === CHANNEL.KM) this.proxy.relay(data, 'sc->cta', false);
      else link.send(ch, data);
    });
    this.proxy.toCta = (d) => link.send(CHANNEL.KM, d);
    this.proxy.toSc = (d) => recv(CHANNEL.KM, d);
    link.onChannel(CHANNEL.KM, (p) => {
      if (p instanceof Uint8Array) this.proxy.relay(p, 'cta->sc', false);
    });
    link.onChannel(CHANNEL.SIGNALING, (p) => {
      if (p instanceof Uint8Array) recv(CHANNEL.SIGNALING, p);
    });
    link.onChannel(CHANNEL.LOG, (p) => bounded(this.lines, typeof p === 'string' ? p : JSON.stringify(p)));
    link.on('dropped', (st) => bounded(this.lines, `host: frame dropped ${JSON.stringify(st)}`));
    this.relay = await startKdcRelay(link, o.kdc);
    this.control = new ControlClient(link, 5000);
    const st = await this.control.requestRetry('status', {}, Math.max(1, Math.ceil((o.bootTimeoutMs ?? 10000) / 1000)), 1000);
    say(`serial ${this.spec.path}: board answers on channel 0 (${st.configured ? `running ${st.agent?.principal}` : `unconfigured: ${st.error}`}), memory ${st.memory?.usage}/${st.memory?.total}`);
    if (!board.serial.consoleTo) await this.provision(config);
    else await this.waitAgent();
    // Can the board's clock be set? (Otherwise set-time only moves the agent's own offset,
    // which is the very thing the skew scenario watches the agent adopt.)
    const t = await this.ctl().setTime(Date.now());
    if (t.clock !== 'board') this.unsupported['clock-skew'] = `the board clock cannot be set over channel 0 (set-time answered clock=${t.clock}), so a skewed device clock cannot be staged`;
  }

  /** Channel 0: provision the configuration, reset, wait for the agent to run it. */
  private async provision(config: Uint8Array): Promise<void> {
    const p = await this.ctl().provision(config);
    if (p.principal !== this.opts.principal) throw new Error(`the board took the configuration for ${p.principal}, expected ${this.opts.principal}`);
    await this.ctl().reset();
    // The board resets 100 ms after its reply: whatever answers after this pause is the new boot.
    await sleep(400);
    await this.waitAgent();
  }

  private async waitAgent(): Promise<void> {
    const limit = this.opts.bootTimeoutMs ?? 15000;
    const t0 = Date.now();
    for (;;) {
      let why = 'no answer';
      try {
        const st = await this.ctl().request('status', {}, 1000);
        if (st.agent && st.agent.principal === this.opts.principal && st.agent.transport === 'serial') return;
        why = st.agent ? `agent ${st.agent.principal} on ${st.agent.transport}` : `no agent: ${st.error}`;
      } catch (e) {
        why = (e as Error).message;
      }
      if (Date.now() - t0 > limit) throw new Error(`the agent did not come up on ${this.spec.path} after the reset (${why})`);
      await sleep(200);
    }
  }

  async status(): Promise<AgentStatus> {
    const st = await this.ctl().request('status', {}, 5000);
    if (!st.agent) throw new Error(`no agent running on the board: ${st.error}`);
    return st.agent as AgentStatus;
  }
  async rxCount(): Promise<number> {
    const m = await this.ctl().metrics();
    return Number(m.counters?.rx ?? -1);
  }
  async memory(): Promise<DeviceMemory> {
    const m = await this.ctl().metrics();
    return { free: m.memory.free, usage: m.memory.usage, total: m.memory.total };
  }
  async setClockOffset(ms: number): Promise<void> {
    const t = await this.ctl().setTime(Date.now() + ms);
    if (t.clock !== 'board') throw new Error(`the board clock cannot be set (set-time answered clock=${t.clock})`);
  }
  async restart(config: Uint8Array): Promise<void> {
    await this.provision(config);
  }
  logs(): string[] {
    return this.lines;
  }
  async stop(): Promise<void> {
    if (this.opts.sc && this.scAddress) this.opts.sc.detachLink(this.scAddress);
    await this.proxy.close();
    this.control?.close();
    this.control = null;
    await this.relay?.close();
    this.relay = null;
    await this.link?.close();
    this.link = null;
  }
}

/** Boots the firmware on the target; throws with a reason if it does not come up. */
export async function startDevice(spec: TargetSpec, opts: DeviceOptions): Promise<HilDevice> {
  if (spec.kind === 'emu') {
    const d = new EmuDevice(opts);
    await d.boot(opts.config);
    return d;
  }
  if (spec.kind === 'espruino') {
    const d = new EspruinoDevice(spec.binary, opts);
    try {
      await d.boot(opts.config);
    } catch (e) {
      await d.stop();
      throw e;
    }
    return d;
  }
  const d = spec.kind === 'tcp' ? new TcpConsoleDevice(spec, opts) : new SerialDevice(spec, opts);
  try {
    await d.boot(opts.config);
  } catch (e) {
    await d.stop().catch(() => {});
    throw e;
  }
  return d;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
