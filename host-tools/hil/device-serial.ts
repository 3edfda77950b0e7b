// The HIL target 'serial:': a board whose transport is the serial link.
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadBoard } from '../build/boards.ts';
import { flash } from '../flash/flash.ts';
import { openSerialLink, DEFAULT_BAUD, type SerialLinkHost } from '../serial/link.ts';
import { startKdcRelay, type KdcRelay } from '../serial/kdc-relay.ts';
import { ControlClient } from '../serial/control.ts';
import { CHANNEL } from '../serial/frames.ts';
import type { AgentStatus } from '../../firmware/agent/agent.ts';
import { bounded, sleep, type DeviceMemory, type DeviceOptions, type HilDevice } from './device.ts';
import { LinkProxy } from './proxy.ts';

export class SerialDevice implements HilDevice {
  description: string;
  readonly kmPort = 0;
  readonly proxy = new LinkProxy();
  readonly unsupported: { [scenario: string]: string } = {
    'wake-up-flood': 'needs UDP to the CTA key-management port (spoofed sources, 10k datagrams); a serial CTA has no address and 10k frames at serial speed take minutes',
    'forged-wake-stream': 'needs UDP to the CTA key-management port from a second source port; a serial CTA has no address',
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
        await flash({ board: board.board, port: this.spec.path, baud: o.flash?.baud ?? baud, config: cfgPath, timeoutSec: o.flash?.timeoutSec ?? 60, force: o.flash?.force, out: (l) => fl.push(l) });
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
