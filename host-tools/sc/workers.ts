// `cta sc --workers N`: the Signaling Controller on N processes (N cores).
//
// The primary process keeps the public surface: the configured key-management
// UDP port, the HTTP control API, /metrics, signals and logging. It forks N worker
// processes; each runs the ordinary SC (startSc, server.ts) for the CTAs whose
// principal hashes to it (ownerOf: FNV-1a of the principal, mod N -- stable, so a
// CTA always belongs to the same worker), with its own registry file
// (<state>.w<k>) and its own UDP socket on the listen address (an ephemeral port;
// a restarted worker asks for its previous one again).
//
// Data path:
//  - Server-initiated (the hot path): the worker's Wake Up / Rekey goes out from the
//    worker's socket. A CTA answers to the trigger's source address and port (the
//    firmware agent keeps both per session and, provisioned with --sc-any-port,
//    checks only the address), so its
//    AP Request and SA Recovered come straight back to that worker: no hop through
//    the primary. The CTA also remembers that port for later client-initiated
//    sessions, which therefore go straight to the owner as well.
//  - Datagrams at the public port (a CTA's first client-initiated AP Request, the
//    SA Recovered of such a session, strays) are routed by the primary over IPC.
//    The primary holds the SC's keytab, so it decrypts an AP Request's ticket to
//    read the client principal (cname is inside the ticket's encrypted part) and
//    forwards the datagram to the owner, remembering "source address:port -> worker"
//    for a minute so the SA Recovered that follows (it carries only an HMAC) reaches
//    the same worker. Anything else (a ticket that does not decrypt, garbage, an
//    unknown source) goes to the worker the source address:port hashes to, which
//    answers or drops and counts it exactly as a single SC would. The worker sees the
//    CTA's real source address; its answer leaves from the worker's socket (the agent
//    accepts it: it checks the SC's address, not its port).
//  - Control API calls naming a CTA (register, wake, rekey, signal, delete) go to the
//    owner; list, status, wake --all and /metrics are gathered from every worker and
//    merged (counters and gauges summed; list = each worker's list in worker order).
//  - A worker that exits is logged ('worker_exited') and restarted after a short,
//    growing delay; from its registry file it resumes like a restarted SC (waking its
//    CTAs unless --no-wake-on-start). With --state :memory: a restarted worker starts
//    empty, as a restarted single SC would.
//  - close() (SIGINT/SIGTERM in the CLI) stops every worker, then the primary.
//
// Where each part lives:
//   workers.ts            startScWorkers: the primary's public socket, the pool object (the control target), close
//   workers-route.ts      ownerOf, the AP Request reader and the public port's routing with affinity
//   workers-supervise.ts  forking, restarting and calling the worker processes
//   workers-merge.ts      status and /metrics merged across the workers
//   worker-main.ts        the worker process's entry point (what the primary forks)
//   workers-types.ts      the public types (re-exported here)
import { EventEmitter } from 'node:events';
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import type { ScLog } from './types.ts';
import type { CtaRecord } from './registry.ts';
import type { ControlTarget } from './control.ts';
import type { WorkerInfo, WorkerPool, WorkerPoolOptions } from './workers-types.ts';
import { makeRouter, ownerOf, routePublicPort } from './workers-route.ts';
import { bindUdp, loadKeytab } from './start-io.ts';
import { ScStartError } from './types.ts';
import { createSupervisor } from './workers-supervise.ts';
import { mergeMetricsText, poolMetricsText, poolStatus } from './workers-merge.ts';

export { ownerOf, mergeMetricsText };
export type { WorkerPoolOptions, WorkerInfo, WorkerHookContext, WorkerHookHandler, WorkerPool } from './workers-types.ts';

/** The public key-management socket (bound first: a port in use is a start-up error before anything is forked). */
async function bindPublic(listenHost: string, listenPort: number): Promise<dgram.Socket> {
  const sock = dgram.createSocket({ type: listenHost.includes(':') ? 'udp6' : 'udp4' });
  await bindUdp(sock, listenHost, listenPort);
  return sock;
}

export async function startScWorkers(opts: WorkerPoolOptions): Promise<WorkerPool> {
  const n = opts.workers;
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`workers must be a whole number from 1 to 256, not ${n}`);
  const { startControl, ControlRefused } = await import('./control.ts');
  const log: ScLog = opts.log || (() => {});
  const principalRaw = opts.principal;
  const entries = loadKeytab(opts.keytab);
  const router = await makeRouter(principalRaw, entries, n);
  const em = new EventEmitter();
  const startedAt = Date.now();
  const routed: { [k: string]: number } = {};
  const count = (k: string) => (routed[k] = (routed[k] || 0) + 1);

  const sock = await bindPublic(opts.listen?.host ?? '0.0.0.0', opts.listen?.port ?? 1293);
  const bound = sock.address() as AddressInfo;
  // The workers bind the address the primary actually has (a name resolved once).
  const workerHost = bound.address;

  const sup = createSupervisor({ opts, n, entries, workerHost, em, log, ScStartError });
  const { ws, call, all } = sup;
  const owner = (p: string) => ownerOf(p, n);
  try {
    await sup.startAll();
  } catch (e) {
    sock.close();
    throw e;
  }
  const routing = routePublicPort(sock, router, ws, count, log);

  // ---- the pool (and control target) ----
  const pool = Object.assign(em, {
    address: { host: bound.address, port: bound.port },
    controlAddress: null as { host: string; port: number } | null,
    controlToken: null as string | null,
    principal: router.principal,
    workerCount: n,
    workers: (): WorkerInfo[] => ws.map((w) => ({ index: w.index, pid: w.proc?.pid ?? null, port: w.port, signalingPort: w.sigPort, restarts: w.restarts, up: w.up })),
    register: (p: string, address: string, port: number, sig?: number) => call<void>(owner(p), 'register', [p, address, port, sig]),
    unregister: (p: string) => call<boolean>(owner(p), 'unregister', [p]),
    isRegistered: (p: string) => call<boolean>(owner(p), 'isRegistered', [p]),
    get: (p: string) => call<CtaRecord | null>(owner(p), 'get', [p]),
    wake: (p: string) => call<void>(owner(p), 'wake', [p]),
    wakeAll: async () => (await all<number>('wakeAll')).reduce((a, b) => a + b, 0),
    rekey: (p: string) => call<'rekey' | 'wake'>(owner(p), 'rekey', [p]),
    sendSignaling: (p: string, text: string) => call<string>(owner(p), 'sendSignaling', [p, text]),
    async listCtas(limit = -1, offset = 0): Promise<CtaRecord[]> {
      const lists = await all<CtaRecord[]>('list', [-1, 0]);
      const flat = ([] as CtaRecord[]).concat(...lists);
      const from = Math.max(0, offset | 0);
      return limit >= 0 ? flat.slice(from, from + limit) : flat.slice(from);
    },
    status: () => poolStatus(sup, { principal: router.principal, listen: { host: bound.address, port: bound.port }, workerHost, startedAt, routed }),
    metricsText: () => poolMetricsText(sup, routed),
    hook: (k: number, msg: unknown) => call<unknown>(k, 'hook', [msg]),
    async close(): Promise<void> {
      if (!sup.beginClose()) return;
      routing.stop();
      if (control) await control.close();
      await sup.stopAll();
      await new Promise<void>((r) => sock.close(() => r()));
      log('stopped', {});
    },
  });

  let control: { address: { host: string; port: number }; token: string; close(): Promise<void> } | null = null;
  if (opts.control) {
    try {
      control = await startControl(pool as unknown as ControlTarget, opts.control, log);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      await pool.close();
      const where = `${opts.control.host || '127.0.0.1'}:${opts.control.port ?? 0}`;
      if (e instanceof ControlRefused) throw new ScStartError('control', `control API ${where}: ${err.message}`);
      if (err.code === 'EADDRINUSE') throw new ScStartError('port_in_use', `control API port ${where} is already in use`);
      throw new ScStartError('control', `cannot start the control API on ${where}: ${err.message}`);
    }
    pool.controlAddress = control.address;
    pool.controlToken = control.token;
  }
  log('started', {
    principal: router.principal,
    listen: `${bound.address}:${bound.port}`,
    control: control ? `${control.address.host}:${control.address.port}` : null,
    workers: ws.map((w) => ({ worker: w.index, pid: w.proc?.pid, listen: `${workerHost}:${w.port}` })),
  });
  return pool as unknown as WorkerPool;
}
