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
  /** UDP only: closes channel ch's socket (key management or KDC) and binds a new one in its place. */
  reopen?(ch: number): void;
}

class UdpTransport {
  kind: string;
  kmSocket: UdpSocket | null;
  kdcSocket: UdpSocket | null;
  signalingSocket: UdpSocket | null;
  reopen: (ch: number) => void;
  /** While a socket is bound again: what is sent on its channel meanwhile, [ch, data, port, address] (at most 4). */
  held: unknown[][] | null;
  closed: boolean;
  constructor(platform: Platform, cfg: CtaConfig, rx: RxHandler) {
    this.kind = 'udp';
    this.held = null;
    this.closed = false;
    const onKm = (d: Uint8Array, a: string, p: number) => rx(1, d, a, p);
    const onKdc = (d: Uint8Array, a: string, p: number) => rx(2, d, a, p);
    this.kmSocket = platform.udpBind(cfg.listenPort, onKm);
    if (!this.kmSocket) throw new Error('transport: this board has no UDP (use transport "serial")');
    this.kdcSocket = platform.udpBind(0, onKdc);
    this.signalingSocket = platform.udpBind(cfg.signalingPort, (d, a, p) => rx(3, d, a, p));
    // A socket that stopped delivering (a wedged network driver) is closed and bound again:
    // key management on its port, the KDC's on a fresh ephemeral one. Espruino (2v29, measured)
    // frees a closed socket's port only in a later pass of its idle loop: bound at once, the
    // port is refused ("Unable to create socket"). So the new socket is bound from a 0 ms timer,
    // and what the agent sends on that channel meanwhile (another exchange's datagram) is held and sent from it.
    // A closure over this constructor's scope, which the sockets' handlers keep alive anyway.
    this.reopen = (ch: number) => {
      const kdc = ch === 2;
      const old = kdc ? this.kdcSocket : this.kmSocket;
      if (kdc) this.kdcSocket = null;
      else this.kmSocket = null;
      if (!this.held) this.held = [];
      try {
        if (old) old.close();
      } catch (e) {
        // A wedged driver may refuse to close: the new socket is bound all the same.
      }
      const bind = () => {
        if (this.closed) return;
        let s: UdpSocket | null = null;
        try {
          s = platform.udpBind(kdc ? 0 : cfg.listenPort, kdc ? onKdc : onKm);
        } catch (e) {
          // The port not free yet, or the driver refusing: the CTA is deaf without this
          // socket, so it tries again each second (what is sent meanwhile stays held).
          platform.setTimeout(bind, 1000);
          return;
        }
        if (kdc) this.kdcSocket = s;
        else this.kmSocket = s;
        // This channel's held datagrams go out now; the other's (if it is being bound too) stay.
        const held = this.held || [];
        const rest: unknown[][] = [];
        for (let i = 0; i < held.length; i++) {
          if (held[i][0] !== ch) rest.push(held[i]);
          else if (s) s.send(held[i][1] as Uint8Array, held[i][2] as number, held[i][3] as string);
        }
        this.held = this.kmSocket && this.kdcSocket ? null : rest;
      };
      platform.setTimeout(bind, 0);
    };
  }
  send(channel: number, data: Uint8Array, address: string, port: number): void {
    const s = channel === 2 ? this.kdcSocket : channel === 3 ? this.signalingSocket : this.kmSocket;
    if (s) s.send(data, port, address);
    else if (this.held && this.held.length < 4) this.held.push([channel, data, port, address]);
  }
  close(): void {
    this.closed = true;
    this.held = null;
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
