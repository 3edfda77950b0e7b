// A Platform for unit tests: a controllable clock with timers, an in-memory UDP
// network (deterministic: datagrams are delivered in order from a queue drained by
// the outermost send(), so a whole exchange runs inside one call), an in-memory
// serial pair, in-memory storage, and a real crypto backend.
import type { Platform, UdpSocket, SerialLink, Storage, MemoryInfo } from '../../firmware/platform/platform.ts';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';

type Timer = { id: number; at: number; fn: () => void };

export class FakeClock {
  t: number;
  private timers: Timer[] = [];
  private nextId = 1;
  constructor(startMs = Date.UTC(2025, 0, 15, 12, 0, 0)) {
    this.t = startMs;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.timers.push({ id, at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(id: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== id);
  }
  pending(): number {
    return this.timers.length;
  }
  /** Advance time, firing due timers in order (including ones they schedule). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let best: Timer | null = null;
      for (const x of this.timers) if (x.at <= end && (!best || x.at < best.at || (x.at === best.at && x.id < best.id))) best = x;
      if (!best) break;
      this.timers = this.timers.filter((x) => x !== best);
      this.t = Math.max(this.t, best.at);
      best.fn();
    }
    this.t = end;
  }
}

export type Packet = { from: string; fromPort: number; to: string; toPort: number; data: Uint8Array };
type Handler = (data: Uint8Array, address: string, port: number) => void;

export class FakeNet {
  private sockets: { [key: string]: Handler } = {};
  private queue: Packet[] = [];
  private draining = false;
  private ephemeral = 40000;
  /** Every datagram sent, in order (tests inspect it). */
  log: Packet[] = [];
  /** Return false to drop a datagram (loss), or a replacement to alter it. */
  filter: ((p: Packet) => boolean | Packet) | null = null;
  /** Datagrams to an address/port nobody bound. */
  undeliverable = 0;
  /** Datagrams dropped by a stalled socket (stall()). */
  stalledDrops = 0;
  /** Per address:port, the bind generation now there, and the one that is stalled. */
  private bindGen: { [key: string]: number } = {};
  private stalledGen: { [key: string]: number } = {};
  private binds = 0;

  bind(address: string, port: number, fn: Handler): UdpSocket {
    if (port === 0) port = this.ephemeral++;
    const key = address + ':' + port;
    if (this.sockets[key]) throw new Error('FakeNet: ' + key + ' in use');
    this.sockets[key] = fn;
    this.bindGen[key] = ++this.binds;
    const net = this;
    const sock = {
      port,
      send(data: Uint8Array, toPort: number, to: string) {
        net.send({ from: address, fromPort: port, to, toPort, data: new Uint8Array(data) });
      },
      close() {
        if (net.sockets[key] === fn) delete net.sockets[key];
      },
    };
    return sock;
  }

  /** Keep at most this many entries in `log` (a flood test sets it low). */
  logLimit = 100000;

  send(p: Packet): void {
    if (this.log.length < this.logLimit) this.log.push(p);
    if (this.filter) {
      const r = this.filter(p);
      if (r === false) return;
      if (r !== true) p = r;
    }
    this.queue.push(p);
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length) {
        const q = this.queue.shift()!;
        const key = q.to + ':' + q.toPort;
        const h = this.sockets[key];
        if (!h) this.undeliverable++;
        else if (this.stalledGen[key] === this.bindGen[key]) this.stalledDrops++;
        else h(q.data, q.from, q.fromPort);
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * The socket bound at address:port now stops delivering (a wedged driver): every datagram to
   * it is dropped and counted in stalledDrops. A socket bound there later works again.
   */
  stall(address: string, port: number): void {
    const key = address + ':' + port;
    this.stalledGen[key] = this.bindGen[key];
  }

  /** Inject a datagram as if `from` sent it. */
  inject(from: string, fromPort: number, to: string, toPort: number, data: Uint8Array): void {
    this.send({ from, fromPort, to, toPort, data: new Uint8Array(data) });
  }

  /** Datagrams sent from `from` (optionally to port). */
  sentFrom(from: string, toPort?: number): Packet[] {
    return this.log.filter((p) => p.from === from && (toPort === undefined || p.toPort === toPort));
  }
}

export class MemStorage implements Storage {
  files: { [name: string]: Uint8Array } = {};
  read(name: string): Uint8Array | null {
    return this.files[name] ? new Uint8Array(this.files[name]) : null;
  }
  write(name: string, data: Uint8Array): void {
    this.files[name] = new Uint8Array(data);
  }
  erase(name: string): void {
    delete this.files[name];
  }
}

/** Two ends of a serial line; write() on one end delivers to the other's onData (synchronously, queued). */
export class FakeSerialPair {
  a: SerialLink;
  b: SerialLink;
  constructor() {
    const ends: { fns: ((c: Uint8Array) => void)[] }[] = [{ fns: [] }, { fns: [] }];
    const mk = (me: number): SerialLink => ({
      write(data: Uint8Array) {
        const copy = new Uint8Array(data);
        for (const fn of ends[1 - me].fns) fn(copy);
      },
      onData(fn: (c: Uint8Array) => void) {
        ends[me].fns.push(fn);
      },
    });
    this.a = mk(0);
    this.b = mk(1);
  }
}

export type FakePlatform = Platform & { address: string; logs: { event: string; fields: { [k: string]: unknown } }[] };

export function makeFakePlatform(opts: { clock: FakeClock; net: FakeNet; address: string; crypto: CryptoBackend; serial?: SerialLink | null; storage?: Storage; quiet?: boolean; clockOffsetMs?: number }): FakePlatform {
  const logs: { event: string; fields: { [k: string]: unknown } }[] = [];
  const off = opts.clockOffsetMs ?? 0;
  return {
    address: opts.address,
    logs,
    crypto: opts.crypto,
    now: () => opts.clock.now() + off,
    setTimeout: (fn, ms) => opts.clock.setTimeout(fn, ms),
    clearTimeout: (h) => opts.clock.clearTimeout(h),
    // As on a board's event loop, timers that are due (a 0 ms timer the handler set) run
    // once a received datagram or serial chunk has been handled.
    udpBind: (port, fn) =>
      opts.net.bind(opts.address, port, (d, a, p) => {
        fn(d, a, p);
        opts.clock.advance(0);
      }),
    serial: opts.serial
      ? {
          write: (d: Uint8Array) => opts.serial!.write(d),
          onData: (fn: (c: Uint8Array) => void) =>
            opts.serial!.onData((c) => {
              fn(c);
              opts.clock.advance(0);
            }),
        }
      : null,
    storage: opts.storage ?? new MemStorage(),
    log(event, fields) {
      if (logs.length < 10000) logs.push({ event, fields });
    },
    memory(): MemoryInfo {
      const m = process.memoryUsage();
      return { free: m.heapTotal - m.heapUsed, usage: m.heapUsed, total: m.heapTotal };
    },
  };
}
