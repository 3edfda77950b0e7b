// A bare UDP endpoint on 127.0.0.1 for interop tests: sends datagrams and waits
// for the next one that matches (e.g. a pktc message of a given KMMID).
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

export type Received = { data: Uint8Array; address: string; port: number };

export class UdpPeer {
  readonly sock: dgram.Socket;
  port = 0;
  received: Received[] = [];
  private waiters: { pred: (r: Received) => boolean; resolve: (r: Received) => void }[] = [];

  private constructor() {
    this.sock = dgram.createSocket('udp4');
    this.sock.on('message', (msg, rinfo) => {
      const r = { data: new Uint8Array(msg), address: rinfo.address, port: rinfo.port };
      this.received.push(r);
      const i = this.waiters.findIndex((w) => w.pred(r));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(r);
    });
  }

  static async open(): Promise<UdpPeer> {
    const p = new UdpPeer();
    await new Promise<void>((resolve, reject) => {
      p.sock.once('error', reject);
      p.sock.bind(0, '127.0.0.1', () => resolve());
    });
    p.port = (p.sock.address() as AddressInfo).port;
    return p;
  }

  send(data: Uint8Array, port: number, address = '127.0.0.1'): void {
    this.sock.send(data, port, address);
  }

  /** The next datagram (already received and unclaimed, or future) whose first byte is `kmmid`. */
  next(kmmid: number, timeoutMs = 8000): Promise<Received> {
    const pred = (r: Received) => r.data[0] === kmmid;
    const have = this.received.find(pred);
    if (have) {
      this.received.splice(this.received.indexOf(have), 1);
      return Promise.resolve(have);
    }
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w.resolve !== res);
        reject(new Error(`no datagram with KMMID ${kmmid} within ${timeoutMs} ms`));
      }, timeoutMs);
      const res = (r: Received) => {
        clearTimeout(t);
        this.received.splice(this.received.indexOf(r), 1);
        resolve(r);
      };
      this.waiters.push({ pred, resolve: res });
    });
  }

  close(): Promise<void> {
    return new Promise((r) => this.sock.close(() => r()));
  }
}
