// An in-process UDP impairment proxy for fault tests: seeded loss, duplication,
// reordering and delay, per direction, plus a tap that sees every datagram.
//
// Two shapes:
//  - UdpPair: stands between two fixed endpoints L and R (e.g. a CTA and the SC,
//    where either side may speak first). L talks to `pair.forL` (which stands for
//    R); R talks to `pair.forR` (which stands for L). Register the CTA at the SC
//    under forR's port and give the CTA forL as its SC address; the SC then sees
//    the CTA at one stable address. setL()/setR() fill an endpoint bound later.
//  - UdpRelay: a server-side relay for many clients that always speak first (the
//    KDC): clients send to `relay.port`; each client gets its own upstream socket,
//    so replies go back to the right client.
//
//   const pair = await UdpPair.open({ seed: 1, toR: { loss: 0.2 }, toL: { loss: 0.2 }, r: sc.address });
//   pair.setL({ host: '127.0.0.1', port: ctaPort });
//   ...; await pair.close();
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { Prng } from './fuzz.ts';

export type Endpoint = { host: string; port: number };

export type Impairment = {
  /** Probability a datagram is dropped. */
  loss?: number;
  /** Probability a datagram is delivered twice (the copy a little later). */
  duplicate?: number;
  /** Probability a datagram is held back by an extra `reorderMs`, so later ones overtake it. */
  reorder?: number;
  reorderMs?: number;
  /** Base delay (ms) and uniform jitter on top of it (ms). */
  delayMs?: number;
  jitterMs?: number;
};

export type DirStats = { in: number; dropped: number; duplicated: number; reordered: number; delivered: number };
export type Tap = (dir: 'toL' | 'toR', data: Uint8Array, from: Endpoint) => void;

function bind(host: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket('udp4');
    s.once('error', reject);
    s.bind(0, host, () => {
      s.off('error', reject);
      s.on('error', () => undefined);
      resolve(s);
    });
  });
}

function newStats(): DirStats {
  return { in: 0, dropped: 0, duplicated: 0, reordered: 0, delivered: 0 };
}

/** Applies one direction's impairment and schedules delivery. */
class Shaper {
  readonly stats = newStats();
  private timers = new Set<NodeJS.Timeout>();
  closed = false;
  constructor(
    private rng: Prng,
    public imp: Impairment,
  ) {}
  push(data: Uint8Array, deliver: (d: Uint8Array) => void): void {
    if (this.closed) return;
    this.stats.in++;
    const imp = this.imp;
    if (imp.loss && this.rng.chance(imp.loss)) {
      this.stats.dropped++;
      return;
    }
    const copy = new Uint8Array(data);
    let delay = (imp.delayMs ?? 0) + (imp.jitterMs ? this.rng.int(imp.jitterMs + 1) : 0);
    if (imp.reorder && this.rng.chance(imp.reorder)) {
      this.stats.reordered++;
      delay += imp.reorderMs ?? 20;
    }
    this.later(delay, () => deliver(copy));
    if (imp.duplicate && this.rng.chance(imp.duplicate)) {
      this.stats.duplicated++;
      this.later(delay + 1 + this.rng.int(10), () => deliver(copy));
    }
  }
  private later(ms: number, fn: () => void): void {
    const go = () => {
      if (this.closed) return;
      this.stats.delivered++;
      fn();
    };
    if (ms <= 0) return go();
    const h = setTimeout(() => {
      this.timers.delete(h);
      go();
    }, ms);
    this.timers.add(h);
  }
  /** Datagrams held (delayed) right now. */
  get held(): number {
    return this.timers.size;
  }
  close(): void {
    this.closed = true;
    for (const h of this.timers) clearTimeout(h);
    this.timers.clear();
  }
}

export type PairOptions = {
  seed: number;
  host?: string;
  l?: Endpoint;
  r?: Endpoint;
  /** Impairment of datagrams travelling towards L (from R) and towards R (from L). */
  toL?: Impairment;
  toR?: Impairment;
  tap?: Tap;
};

export class UdpPair {
  /** L sends here (stands for R). */
  readonly forL: Endpoint;
  /** R sends here (stands for L). */
  readonly forR: Endpoint;
  l: Endpoint | null;
  r: Endpoint | null;
  readonly toL: Shaper;
  readonly toR: Shaper;
  private constructor(
    private sockL: dgram.Socket,
    private sockR: dgram.Socket,
    o: PairOptions,
  ) {
    const rng = new Prng(o.seed);
    this.toL = new Shaper(rng.fork(), o.toL ?? {});
    this.toR = new Shaper(rng.fork(), o.toR ?? {});
    this.l = o.l ?? null;
    this.r = o.r ?? null;
    const a = sockL.address() as AddressInfo;
    const b = sockR.address() as AddressInfo;
    this.forL = { host: a.address, port: a.port };
    this.forR = { host: b.address, port: b.port };
    // From L (on forL): towards R, sent from forR so R sees L at forR.
    sockL.on('message', (m, ri) => {
      if (this.l && (ri.port !== this.l.port || ri.address !== this.l.host)) return; // only our L
      if (!this.l) this.l = { host: ri.address, port: ri.port };
      const d = new Uint8Array(m);
      o.tap?.('toR', d, { host: ri.address, port: ri.port });
      this.toR.push(d, (x) => this.r && this.sockR.send(x, this.r.port, this.r.host));
    });
    sockR.on('message', (m, ri) => {
      if (this.r && (ri.port !== this.r.port || ri.address !== this.r.host)) return;
      if (!this.r) this.r = { host: ri.address, port: ri.port };
      const d = new Uint8Array(m);
      o.tap?.('toL', d, { host: ri.address, port: ri.port });
      this.toL.push(d, (x) => this.l && this.sockL.send(x, this.l.port, this.l.host));
    });
  }
  static async open(o: PairOptions): Promise<UdpPair> {
    const host = o.host ?? '127.0.0.1';
    const [a, b] = await Promise.all([bind(host), bind(host)]);
    return new UdpPair(a, b, o);
  }
  /** Sends `data` to L from forL, i.e. with R's (spoofed) source address as L sees it. */
  injectToL(data: Uint8Array): void {
    if (this.l) this.sockL.send(data, this.l.port, this.l.host);
  }
  /** Sends `data` to R from forR, i.e. as if L sent it. */
  injectToR(data: Uint8Array): void {
    if (this.r) this.sockR.send(data, this.r.port, this.r.host);
  }
  setL(e: Endpoint): void {
    this.l = e;
  }
  setR(e: Endpoint): void {
    this.r = e;
  }
  /** Datagrams held back by delay/reordering right now (both directions). */
  get held(): number {
    return this.toL.held + this.toR.held;
  }
  async close(): Promise<void> {
    this.toL.close();
    this.toR.close();
    await Promise.all([new Promise<void>((r) => this.sockL.close(() => r())), new Promise<void>((r) => this.sockR.close(() => r()))]);
  }
}

export type RelayOptions = {
  seed: number;
  host?: string;
  target: Endpoint;
  /** Towards the server and back to the client. */
  toServer?: Impairment;
  toClient?: Impairment;
  tap?: (dir: 'toServer' | 'toClient', data: Uint8Array, client: Endpoint) => void;
};

export class UdpRelay {
  readonly port: number;
  readonly host: string;
  readonly toServer: Shaper;
  readonly toClient: Shaper;
  private upstream = new Map<string, Promise<dgram.Socket>>();
  private closed = false;
  private constructor(
    private sock: dgram.Socket,
    private o: RelayOptions,
  ) {
    const rng = new Prng(o.seed);
    this.toServer = new Shaper(rng.fork(), o.toServer ?? {});
    this.toClient = new Shaper(rng.fork(), o.toClient ?? {});
    const a = sock.address() as AddressInfo;
    this.port = a.port;
    this.host = a.address;
    sock.on('message', (m, ri) => {
      const client = { host: ri.address, port: ri.port };
      const d = new Uint8Array(m);
      o.tap?.('toServer', d, client);
      this.toServer.push(d, (x) => {
        void this.up(client).then((u) => {
          if (!this.closed) u.send(x, this.o.target.port, this.o.target.host);
        });
      });
    });
  }
  static async open(o: RelayOptions): Promise<UdpRelay> {
    return new UdpRelay(await bind(o.host ?? '127.0.0.1'), o);
  }
  /** Sends `data` to a client from the relay's address, i.e. with the server's (spoofed) source as the client sees it. */
  injectToClient(data: Uint8Array, client: Endpoint): void {
    if (!this.closed) this.sock.send(data, client.port, client.host);
  }
  /** Point the relay at another server address (e.g. a restarted one). */
  retarget(e: Endpoint): void {
    this.o.target = e;
  }
  private up(client: Endpoint): Promise<dgram.Socket> {
    const key = client.host + ':' + client.port;
    let p = this.upstream.get(key);
    if (!p) {
      p = bind(this.o.host ?? '127.0.0.1').then((u) => {
        u.on('message', (m) => {
          const d = new Uint8Array(m);
          this.o.tap?.('toClient', d, client);
          this.toClient.push(d, (x) => !this.closed && this.sock.send(x, client.port, client.host));
        });
        return u;
      });
      this.upstream.set(key, p);
    }
    return p;
  }
  async close(): Promise<void> {
    this.closed = true;
    this.toServer.close();
    this.toClient.close();
    const ups = await Promise.all(this.upstream.values());
    await Promise.all([this.sock, ...ups].map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}
