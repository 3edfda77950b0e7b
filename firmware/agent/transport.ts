// How datagrams reach the agent: a small pluggable piece. The agent only sees
// send(channel, bytes, address, port) and one receive callback with a channel.
//   udp:    channel 1 (key management) on config.listenPort, channel 2 (KDC) on an
//           ephemeral socket to config.kdc, channel 3 (signaling) on config.signalingPort.
//   serial: frames (firmware/proto/serial-frame.ts) on the platform's serial link,
//           channel 1 key management, 2 KDC (relayed by the host), 3 signaling.
//           There is no address on a serial link: received datagrams carry
//           address "serial", port 0, and the SC address check does not apply.
// Written inside the Espruino subset.

import type { Platform, UdpSocket } from '../platform/platform.ts';
import type { CtaConfig } from '../config.ts';
import { encodeFrame, FrameDecoder } from '../proto/serial-frame.ts';
import type { CborValue } from '../proto/cbor.ts';

// Build-time board facts (host-tools/build/build.ts boardDefines). Tested inline as
// `(typeof BOARD_X === 'undefined' || BOARD_X)`: esbuild folds that at each use and
// drops the code a board cannot use (a module-level const would not fold in a module
// with imports); outside a bundle (host tools, unit tests) everything is kept.
declare const BOARD_UDP: boolean;
declare const BOARD_SERIAL: boolean;

// Inside this module the channel numbers and error texts are literals: module-level
// strings are copied into RAM on the interpreter, literals in function bodies stay in flash.
// The channel numbers and the serial address live in proto/consts.ts (imported constants
// are inlined by the bundler) and are re-exported here.
export { CH_CTL, CH_KM, CH_KDC, CH_SIG, SERIAL_ADDRESS } from '../proto/consts.ts';

export type RxHandler = (channel: number, data: Uint8Array, address: string, port: number) => void;

export interface Transport {
  readonly kind: string;
  send(channel: number, data: Uint8Array, address: string, port: number): void;
  close(): void;
  /** Frame-level drops (serial only); zeros for UDP. */
  stats(): { [k: string]: number };
}

class UdpTransport {
  kind: string;
  kmSocket: UdpSocket | null;
  kdcSocket: UdpSocket | null;
  signalingSocket: UdpSocket | null;
  constructor(platform: Platform, cfg: CtaConfig, rx: RxHandler) {
    this.kind = 'udp';
    this.kmSocket = platform.udpBind(cfg.listenPort, (d, a, p) => rx(1, d, a, p));
    if (!this.kmSocket) throw new Error('transport: this board has no UDP (use transport "serial")');
    this.kdcSocket = platform.udpBind(0, (d, a, p) => rx(2, d, a, p));
    this.signalingSocket = platform.udpBind(cfg.signalingPort, (d, a, p) => rx(3, d, a, p));
  }
  send(channel: number, data: Uint8Array, address: string, port: number): void {
    const s = channel === 2 ? this.kdcSocket : channel === 3 ? this.signalingSocket : this.kmSocket;
    if (s) s.send(data, port, address);
  }
  close(): void {
    if (this.kmSocket) this.kmSocket.close();
    if (this.kdcSocket) this.kdcSocket.close();
    if (this.signalingSocket) this.signalingSocket.close();
    this.kmSocket = null;
    this.kdcSocket = null;
    this.signalingSocket = null;
  }
  stats(): { [k: string]: number } {
    return {};
  }
}

/** Control channel 0: request map in, reply map out (firmware/agent/control.ts). */
export type ControlHandler = (req: CborValue) => CborValue;

export class SerialTransport {
  kind: string;
  platform: Platform;
  frameDecoder: FrameDecoder;
  open: boolean;
  /** Answers channel-0 requests; null = channel 0 ignored. */
  control: ControlHandler | null;
  controlErrors: number;
  constructor(platform: Platform, rx: RxHandler) {
    this.kind = 'serial';
    this.platform = platform;
    this.open = true;
    this.control = null;
    this.controlErrors = 0;
    const link = platform.serial;
    if (!link) throw new Error('transport: this board has no serial link');
    this.frameDecoder = new FrameDecoder((ch, payload) => {
      if (!this.open) return;
      if (ch > 0 && ch < 4 && payload instanceof Uint8Array) {
        rx(ch, payload, 'serial', 0);
      } else if (ch === 0 && this.control) {
        try {
          link.write(encodeFrame(0, this.control(payload)));
        } catch (e) {
          this.controlErrors++;
        }
      }
    });
    link.onData((chunk) => {
      if (this.open) this.frameDecoder.feed(chunk);
    });
  }
  send(channel: number, data: Uint8Array, address: string, port: number): void {
    const link = this.platform.serial;
    if (this.open && link) link.write(encodeFrame(channel, data));
  }
  close(): void {
    this.open = false;
  }
  stats(): { [k: string]: number } {
    const s = this.frameDecoder.stats;
    return { frames: s.frames, badCrc: s.badCrc, badCbor: s.badCbor, oversized: s.oversized, badEscape: s.badEscape, runt: s.runt, controlErrors: this.controlErrors };
  }
}

export function makeTransport(platform: Platform, cfg: CtaConfig, rx: RxHandler): Transport {
  // Build-time constants: a board's bundle keeps only the transports it has.
  if (cfg.transport === 'serial') {
    if (typeof BOARD_SERIAL === 'undefined' || BOARD_SERIAL) return new SerialTransport(platform, rx);
    throw new Error('transport: this board has no serial link');
  }
  if (typeof BOARD_UDP === 'undefined' || BOARD_UDP) return new UdpTransport(platform, cfg, rx);
  throw new Error('transport: this board has no UDP (use transport "serial")');
}
