// HIL targets: where the CTA firmware bundle runs during `cta hil`.
//   emu                     the host emulator (host-tools/emulator), in this process
//   espruino:/path/to/bin   an Espruino Linux build, started with --telnet in a work dir
//                           (its Storage is ./espruino.flash there) and then driven like
//                           tcp://127.0.0.1:2323: `cta flash` writes the config and the
//                           stored image to Storage, load() boots it from flash. Not its
//                           stdin: the Linux build feeds stdin into the input queue from a
//                           second thread without the locking boards have, and console
//                           traffic then races the event loop (measured: 8/9, 4/9 runs).
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
import { existsSync, statSync, accessSync, constants as fsConstants } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError } from '../args.ts';
import { parseSerialSpec } from '../serial/link.ts';
import type { DeviceOptions, HilDevice } from './device.ts';
import { EmuDevice } from './device-emu.ts';
import { EspruinoDevice, TcpConsoleDevice } from './device-console.ts';
import { SerialDevice } from './device-serial.ts';

// The device side has modules of its own; these names keep their old import path.
export { freeUdpPort, sleep, parseFlashOptions, type DeviceMemory, type DeviceOptions, type FlashPassthrough, type HilDevice } from './device.ts';
export { ESPRUINO_TELNET_PORT } from './device-console.ts';
export { LinkProxy } from './proxy.ts';

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

