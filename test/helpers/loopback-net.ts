// FakeNet's bind() over real loopback UDP, so test-side servers written for the
// fake network (MiniKdc, MiniSc) can serve a real interpreter or emulator.
import dgram from 'node:dgram';
import { nobleBackend as b } from '../../host-tools/crypto/noble.ts';
import { randomKey } from '../../firmware/proto/crypto/index.ts';
import { encodeKeytab } from '../../firmware/proto/keytab.ts';
import { MiniKdc, MiniSc, REALM, CTA_PRINCIPAL, SC_PRINCIPAL } from './mini-sc.ts';
import type { FakeClock, FakeNet } from './fake-platform.ts';

export type RealSock = { send(d: Uint8Array, port: number, addr: string): void; close(): void; readonly port: number; ready: Promise<void> };

/** FakeNet's bind() over real loopback UDP (port 0 = a free port). */
export class LoopbackNet {
  socks: RealSock[] = [];
  bind(_address: string, port: number, fn: (d: Uint8Array, a: string, p: number) => void): RealSock {
    const s = dgram.createSocket('udp4');
    s.on('message', (m, r) => {
      try {
        fn(new Uint8Array(m), r.address, r.port);
      } catch {
        /* the test SC ignores what it cannot parse */
      }
    });
    const ready = new Promise<void>((res) => s.bind(port, '127.0.0.1', () => res()));
    const rs: RealSock = {
      send: (d, p, a) => s.send(d, p, a),
      close: () => s.close(),
      get port() {
        return s.address().port;
      },
      ready,
    };
    this.socks.push(rs);
    return rs;
  }
  close(): void {
    for (const s of this.socks) s.close();
  }
}

/**
 * The test-side KDC and SC (helpers/mini-sc.ts) on real loopback UDP, with a fresh
 * aes256 key for the CTA and the SC: what a real interpreter or the emulator needs
 * to run a whole exchange. `keytab` holds the CTA's key (for makeConfig).
 */
export async function loopbackMiniWorld() {
  const net = new LoopbackNet();
  const clock = { now: () => Date.now() } as unknown as FakeClock;
  const ctaKey = randomKey(b, 18);
  const scKey = { etype: 18, key: randomKey(b, 18), kvno: 1 };
  const kdc = new MiniKdc(b, clock, net as unknown as FakeNet, '127.0.0.1', 0);
  kdc.addPrincipal(CTA_PRINCIPAL + '@' + REALM, 18, ctaKey, 1);
  kdc.addPrincipal(SC_PRINCIPAL, 18, scKey.key, 1);
  const sc = new MiniSc(b, clock, net as unknown as FakeNet, scKey, '127.0.0.1', 0, 0);
  await Promise.all(net.socks.map((s) => s.ready));
  const [kdcSock, scSock, sigSock] = net.socks;
  const keytab = encodeKeytab([{ principal: { realm: REALM, components: CTA_PRINCIPAL.split('/'), nameType: 1 }, timestamp: 0, kvno: 1, etype: 18, key: ctaKey }]);
  return { net, clock, ctaKey, scKey, kdc, sc, kdcSock, scSock, sigSock, keytab };
}
