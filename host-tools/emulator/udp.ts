// The UDP stand-in: require("dgram") on node:dgram, shaped as Espruino's (messages as
// binary strings cut to recvBufferSize, send() takes a string). Also the board's port
// rules: udpPortMap remapping (0 = a free host port, kept for re-binds), a closed socket's
// port released only after this turn of the event loop, and the stall hook
// (Emulator.stallUdp) that makes a bound socket drop whatever arrives.
import dgram from 'node:dgram';
import { latin1 } from './bytes.ts';
import type { EmulatorContext, EmulatorOptions, UdpStall } from './types.ts';

/** The UDP sockets of one emulator, and the port bookkeeping they share. */
interface UdpState {
  ctx: EmulatorContext;
  bindAddress: string;
  portMap: EmulatorOptions['udpPortMap'];
  sockets: Set<dgram.Socket>;
  // Stalled sockets (stallUdp): datagrams still let through, and the record to count drops in.
  stalls: Map<dgram.Socket, { left: number; record: UdpStall }>;
  // Binds in progress: startEmulator resolves only once those the bundle started at
  // boot have finished (node's bind is asynchronous; a datagram sent to the port
  // before then is lost, e.g. the SC's first Wake Up to a CTA just started).
  binding: Set<Promise<void>>;
  // A board port udpPortMap maps to 0 (any free port): the port it got the first time. A
  // socket the firmware binds to that board port again (after closing the first) gets the
  // same host port, as on the board.
  mappedOnce: { [boardPort: number]: number };
  // Host ports of sockets the firmware closed in this turn of the event loop: as on Espruino
  // (2v29, measured), a closed socket's port is freed only in a later pass of its idle loop,
  // and binding it before then fails ("Unable to create socket").
  closing: Set<number>;
}

/** What startEmulator needs of the UDP stand-in. */
export interface EmulatedUdp {
  /** require("dgram"): throws on a board without a UDP transport. */
  requireModule(): unknown;
  /** Binds in progress (startEmulator waits for those begun while the bundle loads). */
  readonly binding: Set<Promise<void>>;
  /** Local addresses of the bound sockets. */
  addresses(): { address: string; port: number }[];
  /** Emulator.stallUdp. */
  stall(port?: number, after?: number): UdpStall;
  /** Closes every socket (Emulator.stop). */
  closeAll(): Promise<void>;
}

export function makeUdp(ctx: EmulatorContext, opts: Pick<EmulatorOptions, 'udpBindAddress' | 'udpPortMap'>): EmulatedUdp {
  const { G, board } = ctx;
  const st: UdpState = {
    ctx,
    bindAddress: opts.udpBindAddress ?? '127.0.0.1',
    portMap: opts.udpPortMap,
    sockets: new Set(),
    stalls: new Map(),
    binding: new Set(),
    mappedOnce: {},
    closing: new Set(),
  };
  const dgramMod = {
    createSocket(type: unknown, cb?: unknown) {
      return createSocket(st, type, cb);
    },
  };
  return {
    requireModule() {
      if (!board.transports.udp) {
        throw new G.Error(`board ${board.board} has no UDP transport: require("dgram") is not available (board-configs/${board.board}.json)`);
      }
      return dgramMod;
    },
    binding: st.binding,
    addresses() {
      const out: { address: string; port: number }[] = [];
      for (const s of st.sockets) {
        try {
          const a = s.address();
          out.push({ address: a.address, port: a.port });
        } catch {
          /* not bound yet */
        }
      }
      return out;
    },
    stall(port?: number, after = 0) {
      const record: UdpStall = { sockets: 0, dropped: 0 };
      for (const s of st.sockets) {
        let bound: number;
        try {
          bound = s.address().port;
        } catch {
          continue; // not bound yet
        }
        if (port !== undefined && bound !== port) continue;
        st.stalls.set(s, { left: after, record });
        record.sockets++;
      }
      return record;
    },
    async closeAll() {
      await Promise.all(
        [...st.sockets].map(
          (s) =>
            new Promise<void>((res) => {
              try {
                s.close(() => res());
              } catch {
                res();
              }
            }),
        ),
      );
      st.sockets.clear();
    },
  };
}

/** dgram.createSocket(type, cb) as on Espruino: a node udp4 socket behind the firmware's api object. */
function createSocket(st: UdpState, type: unknown, cb?: unknown): any {
  const { ctx } = st;
  const { G, log, guard } = ctx;
  const t = typeof type === 'object' && type ? (type as { type?: string }).type : type;
  // As on Espruino (libs/network/jswrap_net.c), a received datagram is cut to
  // recvBufferSize bytes, 536 unless the socket asked for more.
  const rbs = typeof type === 'object' && type ? Number((type as { recvBufferSize?: number }).recvBufferSize) : NaN;
  const recvBufferSize = rbs > 0 ? rbs : 536;
  if (t !== undefined && t !== 'udp4') throw new G.Error(`dgram: only udp4 sockets are supported, not ${String(t)}`);
  const handlers: { [ev: string]: ((...a: unknown[]) => unknown)[] } = {};
  const sock = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  st.sockets.add(sock);
  let bound = false;
  const emit = (ev: string, ...a: unknown[]) => {
    for (const h of handlers[ev] ?? []) guard(h, a);
  };
  sock.on('message', (msg, rinfo) => {
    const stall = st.stalls.get(sock);
    if (stall) {
      if (stall.left <= 0) {
        stall.record.dropped++;
        return;
      }
      stall.left--;
    }
    emit('message', latin1(msg.subarray(0, recvBufferSize)), G.Object.assign(new G.Object(), { address: rinfo.address, port: rinfo.port, size: rinfo.size }));
  });
  sock.on('error', (e) => {
    log(`dgram error: ${e.message}`);
    emit('error', e);
  });
  sock.on('close', () => {
    st.sockets.delete(sock);
    st.stalls.delete(sock);
    emit('close', false);
  });
  const api: any = new G.Object();
  api.on = function (ev: string, fn: (...a: unknown[]) => unknown) {
    (handlers[ev] ??= []).push(fn);
    return api;
  };
  api.bind = function (port: number, bindCb?: (s: unknown) => void) {
    bound = true;
    const want = Number(port) || 0;
    const mapped = st.portMap && want in st.portMap ? (st.mappedOnce[want] ?? st.portMap[want]) : want;
    if (mapped !== 0 && st.closing.has(mapped)) {
      log('ERROR: Socket bind failed');
      throw new G.Error('Unable to create socket');
    }
    const done = new Promise<void>((res) => {
      sock.once('listening', res);
      sock.once('error', () => res());
      sock.once('close', res);
    });
    st.binding.add(done);
    void done.then(() => st.binding.delete(done));
    sock.bind({ port: mapped, address: st.bindAddress, exclusive: true }, () => {
      if (want !== 0 && mapped === 0) st.mappedOnce[want] = sock.address().port;
      if (typeof bindCb === 'function') guard(bindCb, [api]);
    });
    return api;
  };
  api.send = function (buffer: unknown, offset: unknown, length: unknown, ...rest: unknown[]) {
    // Espruino: send(string, port, address) or send(string, offset, length, port, address); the data must be a String.
    if (typeof buffer !== 'string') throw new G.TypeError('dgram send: the message must be a String (binary string) on Espruino');
    let data = buffer;
    let port: unknown;
    let address: unknown;
    if (typeof rest[0] === 'number') {
      data = buffer.substr(Number(offset) || 0, Number(length));
      port = rest[0];
      address = rest[1];
    } else {
      port = offset;
      address = length;
    }
    const bytes = Buffer.from(data, 'latin1');
    const doSend = () => {
      if (ctx.isStopped()) return;
      sock.send(bytes, Number(port), String(address ?? '127.0.0.1'), (e) => {
        if (e) log(`dgram send error: ${e.message}`);
      });
    };
    if (!bound) {
      bound = true;
      sock.bind({ port: 0, address: st.bindAddress }, doSend);
    } else doSend();
  };
  api.close = function () {
    try {
      const port = sock.address().port;
      st.closing.add(port);
      // Free at the end of this turn, whichever phase of node's loop comes next: a check
      // phase (setImmediate) or a timers phase (a 0 ms timer queued before any the firmware
      // queues after this close, so it runs first). With setImmediate alone, a close made in
      // a check phase left the port taken when the firmware's 0 ms timer ran (the next turn's
      // timers phase, on a loaded host): its bind failed and the socket was never bound again.
      const free = () => st.closing.delete(port);
      setImmediate(free);
      setTimeout(free, 0);
    } catch {
      /* not bound */
    }
    try {
      sock.close();
    } catch {
      /* already closed */
    }
  };
  api.addMembership = function () {
    throw new G.Error('dgram addMembership is not emulated');
  };
  if (typeof cb === 'function') api.on('message', cb);
  return api;
}
