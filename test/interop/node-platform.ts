// A real-network Platform for running the CTA agent (firmware/agent) in Node
// tests against real servers: UDP sockets on 127.0.0.1 (node:dgram), Node's
// timers and wall clock, in-memory storage, and the chosen crypto backend.
// Test-only; the board uses firmware/platform/espruino.ts.
//
//   const plat = makeNodePlatform({ crypto: nobleBackend });
//   const agent = new CtaAgent(plat, config);   // config.listenPort 0 = any free port
//   agent.start();
//   const ports = await plat.bound();            // [km, kdc, signaling] in bind order
//   ... await plat.close();
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { Platform, UdpSocket, MemoryInfo } from '../../firmware/platform/platform.ts';
import { MemStorage } from '../helpers/fake-platform.ts';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';

export type NodePlatform = Platform & {
  logs: { event: string; fields: { [k: string]: unknown } }[];
  /** Resolves with the local ports of every socket bound so far, in bind order. */
  bound(): Promise<number[]>;
  /** Closes every socket still open and cancels pending timers. */
  close(): Promise<void>;
};

export function makeNodePlatform(opts: { crypto: CryptoBackend; host?: string; onLog?: (event: string, fields: { [k: string]: unknown }) => void }): NodePlatform {
  const host = opts.host ?? '127.0.0.1';
  const sockets: { sock: dgram.Socket; ready: Promise<number>; open: boolean }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  // The port each receive handler got: the agent re-creating a socket binds again with the
  // same handler, and gets the same port (as a board does with its configured port).
  const portOf = new Map<unknown, number>();
  const logs: { event: string; fields: { [k: string]: unknown } }[] = [];
  return {
    crypto: opts.crypto,
    serial: null,
    storage: new MemStorage(),
    logs,
    now: () => Date.now(),
    setTimeout(fn, ms) {
      const h = setTimeout(() => {
        timers.delete(h);
        fn();
      }, ms);
      timers.add(h);
      return h;
    },
    clearTimeout(h) {
      clearTimeout(h as NodeJS.Timeout);
      timers.delete(h as NodeJS.Timeout);
    },
    udpBind(port, onMessage): UdpSocket {
      const sock = dgram.createSocket('udp4');
      const entry = { sock, open: true, ready: Promise.resolve(0) };
      entry.ready = new Promise<number>((resolve, reject) => {
        sock.once('error', reject);
        sock.bind(port === 0 ? (portOf.get(onMessage) ?? 0) : port, host, () => {
          sock.off('error', reject);
          sock.on('error', () => undefined);
          const bound = (sock.address() as AddressInfo).port;
          portOf.set(onMessage, bound);
          resolve(bound);
        });
      });
      sock.on('message', (msg, rinfo) => {
        if (entry.open) onMessage(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), rinfo.address, rinfo.port);
      });
      sockets.push(entry);
      return {
        // Node queues datagrams sent while the bind is still in progress.
        send(data, toPort, to) {
          if (entry.open) sock.send(data, toPort, to);
        },
        close() {
          if (!entry.open) return;
          entry.open = false;
          sock.close();
        },
      };
    },
    log(event, fields) {
      if (logs.length < 10000) logs.push({ event, fields });
      if (opts.onLog) opts.onLog(event, fields);
    },
    memory(): MemoryInfo {
      const m = process.memoryUsage();
      return { free: m.heapTotal - m.heapUsed, usage: m.heapUsed, total: m.heapTotal };
    },
    bound: () => Promise.all(sockets.map((s) => s.ready)),
    async close() {
      for (const h of timers) clearTimeout(h);
      timers.clear();
      for (const s of sockets) {
        if (!s.open) continue;
        s.open = false;
        await new Promise<void>((r) => s.sock.close(() => r()));
      }
    },
  };
}
