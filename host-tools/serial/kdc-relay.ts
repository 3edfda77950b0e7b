// Channel 2 of a serial link: the CTA's KDC datagrams, relayed by the host to a
// KDC over UDP (RFC 4120 framing: one message per datagram) and the replies sent
// back on channel 2. Only replies from that KDC address are relayed.
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import type { SerialLinkHost } from './link.ts';
import { CHANNEL } from './frames.ts';

export type KdcRelayStats = { toKdc: number; fromKdc: number; dropped: number };

export interface KdcRelay {
  readonly stats: KdcRelayStats;
  close(): Promise<void>;
}

/** Largest KDC message relayed either way (bytes). */
export const KDC_RELAY_MAX = 1900;

export async function startKdcRelay(link: SerialLinkHost, kdc: { host: string; port: number }): Promise<KdcRelay> {
  const sock = dgram.createSocket(isIP(kdc.host) === 6 ? 'udp6' : 'udp4');
  const local = kdc.host === '127.0.0.1' || kdc.host === 'localhost' ? '127.0.0.1' : kdc.host === '::1' ? '::1' : undefined;
  await new Promise<void>((res, rej) => {
    sock.once('error', rej);
    sock.bind(0, local, () => {
      sock.off('error', rej);
      res();
    });
  });
  const stats: KdcRelayStats = { toKdc: 0, fromKdc: 0, dropped: 0 };
  const want = kdc.host === 'localhost' ? '127.0.0.1' : kdc.host;
  link.onChannel(CHANNEL.KDC, (payload) => {
    if (!(payload instanceof Uint8Array) || payload.length === 0 || payload.length > KDC_RELAY_MAX) {
      stats.dropped++;
      return;
    }
    stats.toKdc++;
    sock.send(payload, kdc.port, kdc.host);
  });
  sock.on('message', (msg, rinfo) => {
    const from = rinfo.address.replace(/^::ffff:/, '');
    if ((from !== want && isIP(want)) || rinfo.port !== kdc.port || msg.length > KDC_RELAY_MAX) {
      stats.dropped++;
      return;
    }
    stats.fromKdc++;
    link.send(CHANNEL.KDC, new Uint8Array(msg));
  });
  sock.on('error', () => {
    stats.dropped++;
  });
  return {
    stats,
    close: () =>
      new Promise<void>((res) => {
        try {
          sock.close(() => res());
        } catch {
          res();
        }
      }),
  };
}
