// The embedded KDC's network front: UDP and TCP (RFC 4120 section 7.2) on one
// port, handing each request to the pure AS handler.
//
// Bounded by construction: a TCP record longer than maxMessage gets
// KRB_ERR_FIELD_TOOLONG and the connection is closed; idle TCP connections are
// closed after idleMs (3 s: a Kerberos client sends its request at once); at most
// maxConnections are open at once and maxPerAddress from one address, and as MIT
// krb5kdc does (kill_lru_tcp_or_rpc_connection) a connection beyond a cap closes the
// oldest one (of that address, for the per-address cap) instead of being refused, so
// idle connections cannot lock the TCP path for real clients; a UDP reply
// larger than udpMaxReply is replaced by KRB_ERR_RESPONSE_TOO_BIG so the client
// retries over TCP (as MIT's KDC does). Garbage gets a KRB-ERROR or nothing,
// never a crash. Log lines are JSON objects without key material.

import dgram from 'node:dgram';
import net from 'node:net';
import { isIP } from 'node:net';
import type { KdcDatabase } from './db.ts';
import { processAsReq, krbErrorReply, type AsOutcome } from './as.ts';
import { KRB_ERR_FIELD_TOOLONG, KRB_ERR_GENERIC, KRB_ERR_RESPONSE_TOO_BIG } from '../../firmware/proto/krb5.ts';

export type KdcLogRecord = { [k: string]: unknown };

export type StartKdcOptions = {
  db: KdcDatabase;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) = a free port; UDP and TCP get the same one when possible. */
  port?: number;
  /** Allowed clock skew for PA-ENC-TIMESTAMP, seconds (default 300). */
  skewSec?: number;
  /** Receives one structured record per event (never key material). */
  log?: (rec: KdcLogRecord) => void;
  /** Clock in ms since 1970 (tests). */
  now?: () => number;
  /** Largest request accepted (bytes, default 65536). */
  maxMessage?: number;
  /** Largest reply sent over UDP before answering RESPONSE_TOO_BIG (default 4096, as MIT). */
  udpMaxReply?: number;
  /** Idle TCP connections are closed after this long (ms, default 3000). */
  idleMs?: number;
  /** Concurrent TCP connections (default 64); one more closes the oldest. */
  maxConnections?: number;
  /** Concurrent TCP connections from one address (default 8); one more closes that address's oldest. */
  maxPerAddress?: number;
};

export type KdcStats = {
  udpRequests: number;
  tcpRequests: number;
  /** Replies that were AS-REPs (tickets issued). */
  issued: number;
  /** KRB-ERROR replies by error code. */
  errors: { [code: number]: number };
  /** Datagrams / records dropped without an answer. */
  dropped: number;
  tcpConnections: number;
  tcpOpen: number;
  tcpRejected: number;
  tcpTimeouts: number;
  /** Connections closed to make room under maxConnections / maxPerAddress. */
  tcpEvicted: number;
};

export type RunningKdc = {
  host: string;
  udpPort: number;
  tcpPort: number;
  close(): Promise<void>;
  stats(): KdcStats;
};

/** Thrown when the requested port cannot be bound; `code` is the errno name. */
export class KdcListenError extends Error {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

function bindUdp(sock: dgram.Socket, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error) => {
      sock.off('listening', onOk);
      reject(e);
    };
    const onOk = () => {
      sock.off('error', onErr);
      resolve();
    };
    sock.once('error', onErr);
    sock.once('listening', onOk);
    sock.bind(port, host);
  });
}

function listenTcp(srv: net.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: Error) => {
      srv.off('listening', onOk);
      reject(e);
    };
    const onOk = () => {
      srv.off('error', onErr);
      resolve();
    };
    srv.once('error', onErr);
    srv.once('listening', onOk);
    srv.listen({ port, host, exclusive: true });
  });
}

function closeUdp(s: dgram.Socket): Promise<void> {
  return new Promise((r) => {
    try {
      s.close(() => r());
    } catch {
      r();
    }
  });
}

function listenError(e: unknown, host: string, port: number): KdcListenError {
  const code = (e as NodeJS.ErrnoException).code ?? 'ERROR';
  if (code === 'EADDRINUSE') return new KdcListenError(code, `port ${port} on ${host} is already in use`);
  if (code === 'EACCES') return new KdcListenError(code, `no permission to listen on ${host}:${port} (ports below 1024 need privileges; use --listen ${host}:8088)`);
  if (code === 'EADDRNOTAVAIL') return new KdcListenError(code, `address ${host} is not available on this machine`);
  return new KdcListenError(code, `cannot listen on ${host}:${port}: ${(e as Error).message}`);
}

/**
 * Binds UDP and TCP on one port and serves AS exchanges on both. About 180 lines:
 * one closure holding the two sockets, the TCP connection bounds and the stats
 * they share; left for the same context split as the SC's server.
 */
export async function startKdc(opts: StartKdcOptions): Promise<RunningKdc> {
  const db = opts.db;
  const host = opts.host ?? '127.0.0.1';
  const wantPort = opts.port ?? 0;
  const skewSec = opts.skewSec ?? 300;
  const now = opts.now ?? Date.now;
  const log = opts.log ?? (() => {});
  const maxMessage = opts.maxMessage ?? 65536;
  const udpMaxReply = opts.udpMaxReply ?? 4096;
  const idleMs = opts.idleMs ?? 3000;
  const maxConnections = opts.maxConnections ?? 64;
  const maxPerAddress = opts.maxPerAddress ?? 8;
  const family = isIP(host) === 6 ? 'udp6' : 'udp4';

  const st: KdcStats = { udpRequests: 0, tcpRequests: 0, issued: 0, errors: {}, dropped: 0, tcpConnections: 0, tcpOpen: 0, tcpRejected: 0, tcpTimeouts: 0, tcpEvicted: 0 };

  function handle(req: Uint8Array, transport: 'udp' | 'tcp', peer: string): Uint8Array | null {
    const t0 = process.hrtime.bigint();
    let out: { reply: Uint8Array | null; outcome: AsOutcome };
    try {
      out = processAsReq(db, req, now(), { skewSec });
    } catch (e) {
      // A bug, not bad input: answer KRB_ERR_GENERIC and keep serving.
      log({ ev: 'internal_error', transport, peer, err: String((e as Error)?.message ?? e) });
      const reply = krbErrorReply(KRB_ERR_GENERIC, now(), db.realm, { eText: 'internal error' });
      st.errors[KRB_ERR_GENERIC] = (st.errors[KRB_ERR_GENERIC] ?? 0) + 1;
      return reply;
    }
    const o = out.outcome;
    if (out.reply === null) st.dropped++;
    else if (o.error === undefined) st.issued++;
    else st.errors[o.error] = (st.errors[o.error] ?? 0) + 1;
    const us = Number((process.hrtime.bigint() - t0) / 1000n);
    log({ ev: o.error === undefined ? (out.reply ? 'as_rep' : 'drop') : 'krb_error', transport, peer, us, ...o });
    return out.reply;
  }

  // Bind UDP then TCP on the same port; with port 0, retry if TCP finds it taken.
  let udp: dgram.Socket | null = null;
  let tcp: net.Server | null = null;
  for (let attempt = 0; ; attempt++) {
    const u = dgram.createSocket({ type: family, reuseAddr: false });
    try {
      await bindUdp(u, wantPort, host);
    } catch (e) {
      await closeUdp(u);
      throw listenError(e, host, wantPort);
    }
    const port = u.address().port;
    const t = net.createServer();
    try {
      await listenTcp(t, port, host);
      udp = u;
      tcp = t;
      break;
    } catch (e) {
      await closeUdp(u);
      if (wantPort === 0 && (e as NodeJS.ErrnoException).code === 'EADDRINUSE' && attempt < 20) continue;
      throw listenError(e, host, port);
    }
  }
  const udpSock = udp!;
  const tcpSrv = tcp!;
  // A hard backstop only (the caps below evict before it is reached).
  tcpSrv.maxConnections = maxConnections * 2;

  udpSock.on('error', (e) => log({ ev: 'udp_error', err: e.message }));
  udpSock.on('message', (msg, rinfo) => {
    st.udpRequests++;
    const peer = `${rinfo.address}:${rinfo.port}`;
    if (msg.length > maxMessage || msg.length === 0) {
      st.dropped++;
      log({ ev: 'drop', transport: 'udp', peer, reason: msg.length ? 'oversized' : 'empty', len: msg.length });
      return;
    }
    let reply = handle(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength), 'udp', peer);
    if (!reply) return;
    if (reply.length > udpMaxReply) {
      reply = krbErrorReply(KRB_ERR_RESPONSE_TOO_BIG, now(), db.realm);
      st.errors[KRB_ERR_RESPONSE_TOO_BIG] = (st.errors[KRB_ERR_RESPONSE_TOO_BIG] ?? 0) + 1;
    }
    udpSock.send(reply, rinfo.port, rinfo.address, (err) => {
      if (err) log({ ev: 'udp_send_error', peer, err: err.message });
    });
  });

  // Open connections, oldest first, with their peer address; open connections per address.
  const conns = new Map<net.Socket, string>();
  const perAddr = new Map<string, number>();
  const forget = (sock: net.Socket) => {
    const a = conns.get(sock);
    if (a === undefined) return;
    conns.delete(sock);
    st.tcpOpen--;
    const n = (perAddr.get(a) ?? 1) - 1;
    if (n > 0) perAddr.set(a, n);
    else perAddr.delete(a);
  };
  /** Closes the oldest connection (from `addr`, or any when null). */
  const evictOldest = (addr: string | null, reason: string) => {
    for (const [s, a] of conns) {
      if (addr !== null && a !== addr) continue;
      forget(s);
      s.destroy();
      st.tcpEvicted++;
      log({ ev: 'tcp_evicted', peer: `${a}:${s.remotePort}`, reason });
      return;
    }
  };
  tcpSrv.on('drop', () => {
    st.tcpRejected++;
    log({ ev: 'tcp_rejected', reason: 'too many connections', max: maxConnections });
  });
  tcpSrv.on('error', (e) => log({ ev: 'tcp_error', err: e.message }));
  tcpSrv.on('connection', (sock) => {
    const addr = sock.remoteAddress ?? '?';
    if ((perAddr.get(addr) ?? 0) >= maxPerAddress) evictOldest(addr, 'per-address cap');
    else if (conns.size >= maxConnections) evictOldest(null, 'too many connections');
    st.tcpConnections++;
    st.tcpOpen++;
    conns.set(sock, addr);
    perAddr.set(addr, (perAddr.get(addr) ?? 0) + 1);
    const peer = `${addr}:${sock.remotePort}`;
    let buf: Buffer = Buffer.alloc(0);
    let need = -1;
    let closed = false;
    sock.setTimeout(idleMs);
    sock.setNoDelay(true);
    const finish = (reply: Uint8Array | null) => {
      closed = true;
      if (reply) {
        const hdr = Buffer.alloc(4);
        hdr.writeUInt32BE(reply.length, 0);
        sock.end(Buffer.concat([hdr, reply]));
      } else sock.destroy();
    };
    sock.on('timeout', () => {
      st.tcpTimeouts++;
      log({ ev: 'tcp_idle_timeout', peer });
      sock.destroy();
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => forget(sock));
    sock.on('data', (chunk: Buffer) => {
      if (closed) return;
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (!closed) {
        if (need < 0) {
          if (buf.length < 4) return;
          const len = buf.readUInt32BE(0);
          if (len & 0x80000000 || len > maxMessage) {
            // RFC 4120 7.2.2: reserved high bit or a record we will not buffer.
            st.tcpRequests++;
            st.errors[KRB_ERR_FIELD_TOOLONG] = (st.errors[KRB_ERR_FIELD_TOOLONG] ?? 0) + 1;
            log({ ev: 'krb_error', transport: 'tcp', peer, error: KRB_ERR_FIELD_TOOLONG, reason: len & 0x80000000 ? 'high bit set' : 'oversized', len: len >>> 0 });
            finish(krbErrorReply(KRB_ERR_FIELD_TOOLONG, now(), db.realm));
            return;
          }
          need = len;
          buf = buf.subarray(4);
        }
        if (buf.length < need) return;
        const req = new Uint8Array(buf.buffer, buf.byteOffset, need).slice();
        buf = buf.subarray(need);
        need = -1;
        st.tcpRequests++;
        const reply = handle(req, 'tcp', peer);
        if (!reply) {
          finish(null);
          return;
        }
        const hdr = Buffer.alloc(4);
        hdr.writeUInt32BE(reply.length, 0);
        sock.write(Buffer.concat([hdr, reply]));
        if (sock.writableLength > 4 * maxMessage) {
          // A peer that sends but never reads: do not queue replies without bound.
          log({ ev: 'tcp_backlog', peer });
          closed = true;
          sock.destroy();
        }
      }
    });
  });

  const port = udpSock.address().port;
  log({ ev: 'listening', realm: db.realm, host, udpPort: port, tcpPort: (tcpSrv.address() as net.AddressInfo).port });
  let closing: Promise<void> | null = null;
  return {
    host,
    udpPort: port,
    tcpPort: (tcpSrv.address() as net.AddressInfo).port,
    stats: () => ({ ...st, errors: { ...st.errors } }),
    close(): Promise<void> {
      if (!closing) {
        closing = (async () => {
          for (const c of conns.keys()) c.destroy();
          await Promise.all([closeUdp(udpSock), new Promise<void>((r) => tcpSrv.close(() => r()))]);
          log({ ev: 'closed' });
        })();
      }
      return closing;
    },
  };
}
