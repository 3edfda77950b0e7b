// A framed serial link to a CTA, host side: a SerialPort (a tty, a USB CDC port or
// a pseudo-terminal) or any Duplex stream, carrying frames (frames.ts) on channels
// 0 control, 1 key management, 2 KDC, 3 signaling, 4 device log.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { SerialPort } from 'serialport';
import { UsageError } from '../args.ts';
import { encodeHostFrame, HostFrameDecoder, type HostFrameStats } from './frames.ts';

export const DEFAULT_BAUD = 115200;
const BAUDS = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1000000];

export type SerialSpec = { path: string; baud: number };

/** "/dev/ttyX[:baud]" -> {path, baud}; UsageError when malformed. */
export function parseSerialSpec(s: string): SerialSpec {
  if (!s) throw new UsageError('--serial needs a device path, e.g. /dev/ttyACM0[:115200]');
  let path = s;
  let baud = DEFAULT_BAUD;
  const m = /^(.*):(\d+)$/.exec(s);
  if (m) {
    path = m[1];
    baud = Number(m[2]);
    if (!BAUDS.includes(baud)) throw new UsageError(`bad baud rate ${m[2]} in '${s}': expected one of ${BAUDS.join(', ')}`);
  }
  if (!path.startsWith('/')) throw new UsageError(`bad serial device '${s}': expected an absolute path such as /dev/ttyACM0[:baud]`);
  return { path, baud };
}

export type LinkStats = HostFrameStats & { txFrames: number; txBytes: number; rxBytes: number };

export interface SerialLinkHost extends EventEmitter {
  /** "serial:<path>" (or the name given for a stream). */
  readonly name: string;
  readonly baud: number | null;
  /** Sends one frame; false when the link is closed. */
  send(channel: number, payload: unknown): boolean;
  /** Handler for one channel's payloads (replaces any previous one). */
  onChannel(channel: number, fn: (payload: unknown) => void): void;
  stats(): LinkStats;
  close(): Promise<void>;
}

class Link extends EventEmitter implements SerialLinkHost {
  private handlers: ((payload: unknown) => void)[] = [];
  private dec: HostFrameDecoder;
  private tx = { frames: 0, bytes: 0 };
  private rxBytes = 0;
  private closed = false;

  constructor(
    readonly name: string,
    readonly baud: number | null,
    private stream: Duplex,
    private closeFn: () => Promise<void>,
  ) {
    super();
    this.dec = new HostFrameDecoder((ch, payload) => {
      const h = this.handlers[ch];
      if (h) h(payload);
      this.emit('frame', ch, payload);
    });
    stream.on('data', (chunk: Buffer) => {
      this.rxBytes += chunk.length;
      const before = this.dec.dropped;
      this.dec.feed(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      if (this.dec.dropped !== before) this.emit('dropped', this.dec.stats);
    });
    stream.on('error', (e: Error) => this.emit('error', e));
    stream.on('close', () => {
      this.closed = true;
      this.emit('close');
    });
  }

  send(channel: number, payload: unknown): boolean {
    if (this.closed || this.stream.destroyed) return false;
    const f = encodeHostFrame(channel, payload);
    this.tx.frames++;
    this.tx.bytes += f.length;
    this.stream.write(Buffer.from(f.buffer, f.byteOffset, f.length));
    return true;
  }

  onChannel(channel: number, fn: (payload: unknown) => void): void {
    this.handlers[channel] = fn;
  }

  stats(): LinkStats {
    return { ...this.dec.stats, txFrames: this.tx.frames, txBytes: this.tx.bytes, rxBytes: this.rxBytes };
  }

  async close(): Promise<void> {
    if (this.closed && this.stream.destroyed) return;
    this.closed = true;
    await this.closeFn();
  }
}

/** Opens a serial device or pseudo-terminal (raw, 8N1, no flow control) as a framed link. */
export function openSerialLink(spec: SerialSpec | string): Promise<SerialLinkHost> {
  const s = typeof spec === 'string' ? parseSerialSpec(spec) : spec;
  return new Promise((resolve, reject) => {
    const port = new SerialPort({ path: s.path, baudRate: s.baud, autoOpen: false });
    port.open((err) => {
      if (err) {
        const msg = /ENOENT|No such file/.test(err.message) ? 'no such device' : /EACCES|Permission/.test(err.message) ? 'permission denied (add yourself to the dialout group)' : /lock|busy|EBUSY/i.test(err.message) ? 'the port is in use' : err.message;
        reject(new UsageError(`cannot open serial port ${s.path}: ${msg}`));
        return;
      }
      const close = () =>
        new Promise<void>((res) => {
          if (!port.isOpen) return res();
          port.close(() => res());
        });
      resolve(new Link(`serial:${s.path}`, s.baud, port as unknown as Duplex, close));
    });
  });
}

/** A framed link over any stream (tests, TCP bridges). */
export function streamLink(name: string, stream: Duplex): SerialLinkHost {
  return new Link(name, null, stream, async () => {
    stream.destroy();
  });
}
