// What a HIL target is to the runner and the scenarios (HilDevice), the options a
// device starts with, and the helpers the device kinds share.
import dgram from 'node:dgram';
import { type AddressInfo } from 'node:net';
import { UsageError } from '../args.ts';
import type { ScServer } from '../sc/server.ts';
import type { LinkProxy } from './proxy.ts';
import type { AgentStatus } from '../../firmware/agent/agent.ts';
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
  /**
   * Fault injection, where the target can do it (the emulator): the CTA's key-management
   * socket stops delivering after `after` more datagrams, as a wedged network driver does;
   * a socket the CTA binds again works. Live counts of the sockets stalled and the drops.
   */
  stallKmSocket?(after: number): { sockets: number; dropped: number };
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
  /** Options for the flash step (cta hil --flash-option): as cta flash --force / --timeout / --baud. */
  flash?: FlashPassthrough;
};

export type FlashPassthrough = { force?: boolean; timeoutSec?: number; baud?: number };

/** `--flash-option NAME[=VALUE]` (repeatable): force, timeout=S, baud=N. */
export function parseFlashOptions(opts: string[]): FlashPassthrough {
  const out: FlashPassthrough = {};
  for (const o of opts) {
    const m = /^(force|timeout|baud)(?:=(\d+))?$/.exec(o);
    if (!m || (m[1] === 'force') !== (m[2] === undefined)) throw new UsageError(`bad --flash-option '${o}': expected force, timeout=SECONDS or baud=N`);
    if (m[1] === 'force') out.force = true;
    else if (m[1] === 'timeout') out.timeoutSec = Number(m[2]);
    else out.baud = Number(m[2]);
  }
  return out;
}

export const LOG_KEEP = 2000;

export function bounded(logs: string[], line: string): void {
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

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

