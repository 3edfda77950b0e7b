// The HIL target 'emu': the host emulator, in this process.
import { join } from 'node:path';
import { startEmulator, type Emulator } from '../emulator/emulator.ts';
import type { AgentStatus } from '../../firmware/agent/agent.ts';
import { CONFIG_FILE } from '../../firmware/config.ts';
import { bounded, sleep, type DeviceMemory, type DeviceOptions, type HilDevice } from './device.ts';


export class EmuDevice implements HilDevice {
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
  stallKmSocket(after: number): { sockets: number; dropped: number } {
    if (!this.emu) throw new Error('emulator not running');
    return this.emu.stallUdp(this.kmPort, after);
  }
  logs(): string[] {
    return this.lines;
  }
  async stop(): Promise<void> {
    if (this.emu) await this.emu.stop();
    this.emu = null;
  }
}

