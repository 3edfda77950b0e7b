// HIL targets: where the CTA firmware bundle runs during `cta hil`.
//   emu                     the host emulator (host-tools/emulator), in this process
//   espruino:/path/to/bin   an Espruino Linux build, run as a child process on the
//                           bundle with the configuration written to Storage first;
//                           its stdin is the Espruino console, used to read status
//                           and process.memory() back and to set the clock offset
//   serial:/dev/ttyX[:baud] a board on a serial link     } through the serial link /
//   tcp://host:port         an Espruino console over TCP } console modules, once present
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, statSync, writeFileSync, readFileSync, mkdirSync, accessSync, constants as fsConstants } from 'node:fs';
import { join, resolve } from 'node:path';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { UsageError } from '../args.ts';
import { startEmulator, type Emulator } from '../emulator/emulator.ts';
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
    if (!m || !m[1]) throw new UsageError(`bad --target '${s}': expected serial:/dev/ttyX[:baud]`);
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
  return spec.kind === 'espruino' ? 'linux' : 'emulator';
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
  // The serial link (host-tools/serial) and the Espruino console / flasher
  // (host-tools/flash, host-tools/emulator/console.ts) are separate modules; until
  // the runner drives a target through them, the target is reported and skipped.
  const needs = spec.kind === 'serial' ? 'the serial link (host-tools/serial)' : 'the Espruino TCP console (host-tools/flash)';
  return `target not available in this build: ${spec.kind}: targets need ${needs}, which the HIL runner does not drive yet`;
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
}

export type DeviceOptions = {
  board: string;
  bundlePath: string;
  config: Uint8Array;
  kmPort: number;
  workDir: string;
  /** Boot timeout (ms). */
  bootTimeoutMs?: number;
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

const MARK = '\x01HIL';

class EspruinoDevice implements HilDevice {
  readonly description: string;
  readonly kmPort: number;
  private opts: DeviceOptions;
  private binary: string;
  private proc: ChildProcess | null = null;
  private lines: string[] = [];
  private partial = '';
  private queryId = 0;
  private waiters: { test: (l: string) => boolean; resolve: (l: string) => void }[] = [];
  private exited: Promise<void> = Promise.resolve();
  private exitInfo: string | null = null;
  private offsetMs = 0;

  constructor(binary: string, opts: DeviceOptions) {
    this.binary = binary;
    this.opts = opts;
    this.kmPort = opts.kmPort;
    this.description = `Espruino (${binary}, board ${opts.board}), UDP 127.0.0.1:${opts.kmPort}`;
  }

  private onLine(raw: string): void {
    // Console noise: prompt '>', erase-line escapes, carriage returns.
    const line = raw.replace(/\r/g, '').replace(/\x1b\[J/g, '').replace(/^>+/, '');
    if (!line) return;
    bounded(this.lines, line);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i].test(line)) {
        this.waiters[i].resolve(line);
        this.waiters.splice(i, 1);
      }
    }
  }

  private waitLine(test: (l: string) => boolean, timeoutMs: number, what: string): Promise<string> {
    const hit = this.lines.find(test);
    if (hit) return Promise.resolve(hit);
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
        reject(new Error(`Espruino: no ${what} within ${timeoutMs} ms${this.exitInfo ? ` (${this.exitInfo})` : ''}; last lines: ${this.lines.slice(-5).join(' | ')}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  async boot(config: Uint8Array): Promise<void> {
    mkdirSync(this.opts.workDir, { recursive: true });
    const file = join(this.opts.workDir, 'hil.js');
    writeFileSync(file, espruinoPrelude(config) + readFileSync(this.opts.bundlePath, 'utf8'));
    this.lines = [];
    this.partial = '';
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
    const onData = (d: Buffer) => {
      this.partial += d.toString('latin1');
      let i;
      while ((i = this.partial.indexOf('\n')) >= 0) {
        this.onLine(this.partial.slice(0, i));
        this.partial = this.partial.slice(i + 1);
      }
    };
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
    return this.lines;
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
  throw new Error(unavailableReason(spec) ?? 'target not available');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
