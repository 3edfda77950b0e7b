// FakeNet's bind() over real loopback UDP, so test-side servers written for the
// fake network (MiniKdc, MiniSc) can serve a real interpreter or emulator.
import dgram from 'node:dgram';

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
