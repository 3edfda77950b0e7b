// The serial stand-in: the board's serial transport (Serial1 / USB, board-configs
// transports.serial) bound to a stream, or to a device / pseudo-terminal path opened raw.
// Bytes cross as binary strings, as on Espruino.
import fs from 'node:fs';
import tty from 'node:tty';
import type { Duplex } from 'node:stream';
import { UsageError } from '../args.ts';
import { bytesOf, latin1 } from './bytes.ts';
import type { EmulatorContext, EmulatorOptions } from './types.ts';

/** The board's serial port(s) of one emulator, as globals to install (e.g. {Serial1}), and how to let go of them. */
export interface EmulatedSerialPorts {
  readonly globals: { [name: string]: EmulatedSerial };
  /** Stops delivering data and closes a path it opened (Emulator.stop). */
  detach(): void;
}

/** Binds the board's serial transport to opts.serialStream or opts.serialPath (none: a port that writes nowhere). */
export function makeSerialPorts(ctx: EmulatorContext, opts: Pick<EmulatorOptions, 'serialPath' | 'serialStream'>): EmulatedSerialPorts {
  const globals: { [name: string]: EmulatedSerial } = {};
  let serialStream: Duplex | null = opts.serialStream ?? null;
  let serialFd: number | null = null;
  if (opts.serialPath) {
    const { fd, stream } = openSerialPath(opts.serialPath);
    serialFd = fd;
    serialStream = stream;
  }
  if (ctx.board.transports.serial) {
    globals[ctx.board.transports.serial] = new EmulatedSerial(serialStream, latin1, ctx.guard);
  }
  return {
    globals,
    detach() {
      for (const p of Object.values(globals)) p.detach();
      if (serialFd !== null && serialStream) serialStream.destroy();
    },
  };
}

/** Serial1 / USB: setup(), on('data', fn(binary string)), write(data), print/println. */
export class EmulatedSerial {
  private handlers: ((s: string) => unknown)[] = [];
  private onChunk = (b: Buffer) => {
    const s = this.latin1(b);
    for (const h of this.handlers) this.guard(h, [s]);
  };
  baud = 9600;
  constructor(
    private stream: Duplex | null,
    private latin1: (b: Uint8Array) => string,
    private guard: (fn: (...a: any[]) => unknown, args: unknown[]) => void,
  ) {
    if (stream) stream.on('data', this.onChunk);
  }
  setup(baud: number) {
    this.baud = baud;
  }
  on(ev: string, fn: (s: string) => unknown) {
    if (ev === 'data') this.handlers.push(fn);
  }
  removeAllListeners() {
    this.handlers = [];
  }
  write(...a: unknown[]) {
    const bytes = Buffer.from(bytesOf(a));
    if (this.stream && !this.stream.destroyed) this.stream.write(bytes);
  }
  print(s: unknown) {
    this.write(String(s));
  }
  println(s: unknown) {
    this.write(String(s) + '\r\n');
  }
  detach() {
    if (this.stream) this.stream.off('data', this.onChunk);
    this.handlers = [];
  }
}

/** Opens a device or pseudo-terminal for binary I/O (raw mode on a tty). */
export function openSerialPath(path: string): { fd: number; stream: Duplex } {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK);
  } catch (e) {
    throw new UsageError(`cannot open serial path ${path}: ${(e as Error).message}`);
  }
  if (!tty.isatty(fd)) {
    fs.closeSync(fd);
    throw new UsageError(`serial path ${path} is not a terminal device (use a pty, e.g. from socat, or a serial port)`);
  }
  const stream = new tty.ReadStream(fd);
  stream.setRawMode(true);
  return { fd, stream: stream as unknown as Duplex };
}
