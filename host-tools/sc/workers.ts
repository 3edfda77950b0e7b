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
// This module is also the workers' entry point (it forks itself).
import { EventEmitter } from 'node:events';
import { fork, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';
import type { ScOptions, ScServer, ScLog } from './server.ts';
import type { CtaRecord } from './registry.ts';
import type { ControlTarget, ControlOptions } from './control.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';

const SELF = fileURLToPath(import.meta.url);

/** FNV-1a (32-bit) of the principal's UTF-8 bytes, mod n: the worker that owns a CTA. */
export function ownerOf(principal: string, n: number): number {
  if (n <= 1) return 0;
  const b = Buffer.from(principal, 'utf8');
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) {
    h ^= b[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % n;
}

export type WorkerPoolOptions = Omit<ScOptions, 'clock' | 'log' | 'control' | 'keytab'> & {
  /** Number of worker processes (>= 1). */
  workers: number;
  /** Keytab entries or the path of an MIT keytab file (read once by the primary). */
  keytab: KeytabEntry[] | string;
  /** Control API (HTTP, 127.0.0.1 by default) served by the primary; omitted = none. */
  control?: ControlOptions | null;
  /** Events of the primary and (over IPC, tagged with `worker`) of the workers. */
  log?: ScLog;
  /** Workers write their JSON log lines straight to stdout (the CLI): no IPC per event. */
  logToStdout?: boolean;
  /** First restart delay after a worker exits (ms, default 200; doubles while it keeps dying, up to 5 s). */
  restartDelayMs?: number;
  /**
   * A module (path or file URL) each worker imports once its SC is up; its export
   * `workerHook(sc, ctx)` returns a handler for pool.hook(k, msg) calls (benchmarks).
   */
  workerHook?: string;
  /** Environment of the worker processes (default: this process's). */
  env?: NodeJS.ProcessEnv;
};

export type WorkerInfo = { index: number; pid: number | null; port: number | null; signalingPort: number | null; restarts: number; up: boolean };
export type WorkerHookContext = { index: number; workers: number; ownerOf: typeof ownerOf };
export type WorkerHookHandler = (msg: any) => unknown | Promise<unknown>;

export interface WorkerPool extends EventEmitter, ControlTarget {
  /** The public key-management UDP address (the configured --listen). */
  readonly address: { host: string; port: number };
  readonly controlAddress: { host: string; port: number } | null;
  /** The control API's bearer token (null without a control API). */
  readonly controlToken: string | null;
  readonly principal: string;
  readonly workerCount: number;
  workers(): WorkerInfo[];
  register(principal: string, address: string, port: number, signalingPort?: number): Promise<void>;
  unregister(principal: string): Promise<boolean>;
  isRegistered(principal: string): Promise<boolean>;
  get(principal: string): Promise<CtaRecord | null>;
  wake(principal: string): Promise<void>;
  wakeAll(): Promise<number>;
  rekey(principal: string): Promise<'rekey' | 'wake'>;
  sendSignaling(principal: string, text: string): Promise<string>;
  listCtas(limit?: number, offset?: number): Promise<CtaRecord[]>;
  status(): Promise<object>;
  metricsText(): Promise<string>;
  /** A message to worker k's hook (WorkerPoolOptions.workerHook). */
  hook(k: number, msg: unknown): Promise<unknown>;
  close(): Promise<void>;
}

type Call = { resolve: (v: any) => void; reject: (e: Error) => void };
type W = {
  index: number;
  proc: ChildProcess | null;
  up: boolean;
  port: number | null;
  sigPort: number | null;
  restarts: number;
  startedAt: number;
  delay: number;
  calls: Map<number, Call>;
  waiting: { resolve: () => void; reject: (e: Error) => void }[];
  timer: NodeJS.Timeout | null;
};

// ---------------------------------------------------------------- primary

export async function startScWorkers(opts: WorkerPoolOptions): Promise<WorkerPool> {
  const n = opts.workers;
  if (!Number.isInteger(n) || n < 1 || n > 256) throw new Error(`workers must be a whole number from 1 to 256, not ${n}`);
  const { startControl, ControlRefused } = await import('./control.ts');
  const { ScStartError } = await import('./server.ts');
  const log: ScLog = opts.log || (() => {});
  const principalRaw = opts.principal;
  const entries = await loadEntries(opts.keytab, ScStartError);
  const router = await makeRouter(principalRaw, entries, n);
  const listenHost = opts.listen?.host ?? '0.0.0.0';
  const listenPort = opts.listen?.port ?? 1293;
  const em = new EventEmitter();
  let closing = false;
  let callId = 0;
  const startedAt = Date.now();
  const routed: { [k: string]: number } = {};
  const count = (k: string) => (routed[k] = (routed[k] || 0) + 1);

  // Public socket first: a port in use is a start-up error before anything is forked.
  const sock = dgram.createSocket({ type: listenHost.includes(':') ? 'udp6' : 'udp4' });
  await new Promise<void>((resolve, reject) => {
    const onErr = (e: NodeJS.ErrnoException) => {
      sock.close();
      if (e.code === 'EADDRINUSE') reject(new ScStartError('port_in_use', `UDP ${listenHost}:${listenPort} is already in use`));
      else if (e.code === 'EACCES') reject(new ScStartError('port_denied', `not allowed to bind UDP ${listenHost}:${listenPort}`));
      else if (e.code === 'EADDRNOTAVAIL') reject(new ScStartError('bad_address', `cannot bind UDP ${listenHost}:${listenPort}: address not available here`));
      else reject(e);
    };
    sock.once('error', onErr);
    sock.bind(listenPort, listenHost, () => {
      sock.off('error', onErr);
      resolve();
    });
  });
  const bound = sock.address() as AddressInfo;
  // The workers bind the address the primary actually has (a name resolved once).
  const workerHost = bound.address;

  const ws: W[] = [];
  for (let k = 0; k < n; k++) ws.push({ index: k, proc: null, up: false, port: null, sigPort: null, restarts: 0, startedAt: 0, delay: opts.restartDelayMs ?? 200, calls: new Map(), waiting: [], timer: null });

  const workerInit = (w: W) => ({
    t: 'init',
    index: w.index,
    workers: n,
    sc: {
      principal: opts.principal,
      keytab: entries,
      listen: { host: workerHost, port: w.port ?? 0 },
      statePath: !opts.statePath || opts.statePath === ':memory:' ? ':memory:' : `${opts.statePath}.w${w.index}`,
      policy: opts.policy,
      timers: opts.timers,
      ackRequired: opts.ackRequired,
      reestablish: opts.reestablish,
      ciphersuites: opts.ciphersuites,
      wakeOnStart: w.restarts > 0 ? opts.wakeOnStart !== false : opts.wakeOnStart,
      limits: opts.limits,
    },
    log: opts.logToStdout ? 'stdout' : opts.log ? 'ipc' : 'none',
    hook: opts.workerHook ? (opts.workerHook.startsWith('file:') ? opts.workerHook : pathToFileURL(opts.workerHook).href) : null,
  });

  function spawnWorker(w: W): Promise<void> {
    return new Promise((resolve, reject) => {
      w.up = false;
      w.startedAt = Date.now();
      const proc = fork(SELF, ['--sc-worker'], {
        execArgv: ['--import', 'tsx'],
        serialization: 'advanced',
        env: { ...(opts.env ?? process.env), CTA_SC_WORKER: String(w.index) },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      w.proc = proc;
      let settled = false;
      proc.on('message', (m: any) => {
        if (!m || typeof m !== 'object') return;
        if (m.t === 'ready') {
          w.up = true;
          w.port = m.port;
          w.sigPort = m.sigPort;
          settled = true;
          for (const x of w.waiting.splice(0)) x.resolve();
          em.emit('worker_ready', { index: w.index, pid: proc.pid, port: m.port, restarts: w.restarts });
          resolve();
        } else if (m.t === 'failed') {
          settled = true;
          reject(Object.assign(new ScStartError(m.code || 'worker', `worker ${w.index}: ${m.message}`)));
        } else if (m.t === 'reply') {
          const c = w.calls.get(m.id);
          if (!c) return;
          w.calls.delete(m.id);
          if (m.ok) c.resolve(m.value);
          else c.reject(new Error(m.error));
        } else if (m.t === 'log') {
          log(m.event, { ...m.fields, worker: w.index });
        }
      });
      // A send to a worker that has just died fails asynchronously with an 'error' event
      // on the child (ERR_IPC_CHANNEL_CLOSED); unhandled, that would take the primary down
      // with it. The failed call itself is rejected by send's callback in call().
      proc.on('error', (e) => log('internal_error', { worker: w.index, error: `worker channel: ${e.message}` }));
      proc.on('disconnect', () => {
        if (w.proc === proc) w.up = false;
      });
      proc.on('exit', (code, signal) => {
        if (w.proc !== proc) return;
        w.up = false;
        w.proc = null;
        const err = new Error(`SC worker ${w.index} exited (${signal ?? code})`);
        for (const c of w.calls.values()) c.reject(err);
        w.calls.clear();
        if (!settled) {
          settled = true;
          reject(new ScStartError('worker', `SC worker ${w.index} exited during start-up (${signal ?? code})`));
          return;
        }
        if (closing) return;
        const livedMs = Date.now() - w.startedAt;
        w.delay = livedMs > 30000 ? (opts.restartDelayMs ?? 200) : Math.min(5000, w.delay * 2);
        log('worker_exited', { worker: w.index, pid: proc.pid, code, signal, restartInMs: w.delay });
        em.emit('worker_exit', { index: w.index, pid: proc.pid, code, signal });
        w.timer = setTimeout(() => restart(w), w.delay);
      });
      proc.send(workerInit(w));
    });
  }
  function restart(w: W): void {
    w.timer = null;
    if (closing) return;
    w.restarts++;
    spawnWorker(w).then(
      () => log('worker_restarted', { worker: w.index, pid: w.proc?.pid, port: w.port, restarts: w.restarts }),
      (e: Error) => {
        log('worker_restart_failed', { worker: w.index, error: e.message });
        if (!closing && !w.timer && !w.proc) w.timer = setTimeout(() => restart(w), (w.delay = Math.min(5000, w.delay * 2)));
      },
    );
  }
  function whenUp(w: W, timeoutMs = 15000): Promise<void> {
    if (w.up) return Promise.resolve();
    if (closing) return Promise.reject(new Error('SC is stopping'));
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        const i = w.waiting.findIndex((x) => x.resolve === done);
        if (i >= 0) w.waiting.splice(i, 1);
        reject(new Error(`SC worker ${w.index} is not running (restarting)`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      w.waiting.push({ resolve: done, reject });
    });
  }
  async function call<T>(k: number, method: string, args: unknown[]): Promise<T> {
    const w = ws[k];
    await whenUp(w);
    return new Promise<T>((resolve, reject) => {
      const proc = w.proc;
      if (!proc || !proc.connected) return reject(new Error(`SC worker ${w.index} is not running (restarting)`));
      const id = ++callId;
      w.calls.set(id, { resolve, reject });
      proc.send({ t: 'call', id, method, args }, (e) => {
        if (!e || !w.calls.has(id)) return;
        w.calls.delete(id);
        reject(new Error(`SC worker ${w.index} is not running (${e.message})`));
      });
    });
  }
  const all = <T>(method: string, args: unknown[] = []) => Promise.all(ws.map((w) => call<T>(w.index, method, args)));
  const owner = (p: string) => ownerOf(p, n);

  try {
    await Promise.all(ws.map(spawnWorker));
  } catch (e) {
    closing = true;
    for (const w of ws) w.proc?.kill('SIGKILL');
    sock.close();
    throw e;
  }

  // ---- public port: route to the owner ----
  const affinity = new Map<string, { k: number; until: number }>();
  sock.on('message', (msg: Buffer, r) => {
    const now = Date.now();
    const src = r.address + ':' + r.port;
    let k = -1;
    if (msg.length >= 3 && msg[0] === 2) {
      const client = router.clientOf(msg);
      if (client !== null) {
        k = owner(client);
        count('ap_request');
        if (affinity.size >= 65536) sweepAffinity(now, true);
        affinity.delete(src);
        affinity.set(src, { k, until: now + 60000 });
      }
    }
    if (k < 0) {
      const a = affinity.get(src);
      if (a && a.until > now) {
        k = a.k;
        count('by_source');
      } else {
        k = ownerOf(src, n);
        count('by_source_hash');
      }
    }
    const w = ws[k];
    if (!w.up || !w.proc || !w.proc.connected) {
      count('worker_down');
      return;
    }
    w.proc.send({ t: 'dgram', b: msg, a: r.address, p: r.port }, (e) => {
      if (e) count('worker_down');
    });
  });
  sock.on('error', (e) => log('internal_error', { error: `public UDP socket: ${e.message}` }));
  function sweepAffinity(now: number, force: boolean): void {
    let room = force ? affinity.size >> 4 : 0;
    for (const [key, a] of affinity) {
      if (a.until > now && room-- <= 0) break;
      affinity.delete(key);
    }
  }
  const sweepTimer = setInterval(() => sweepAffinity(Date.now(), false), 10000);
  sweepTimer.unref();

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
    async status(): Promise<object> {
      const sts = await Promise.all(ws.map((w) => (w.up ? call<any>(w.index, 'status', []).catch(() => null) : Promise.resolve(null))));
      const live = sts.filter((s) => s) as any[];
      const sum = (f: string) => live.reduce((a, s) => a + (s[f] || 0), 0);
      const byState: { [s: string]: number } = {};
      for (const s of live) for (const k of Object.keys(s.byState)) byState[k] = (byState[k] || 0) + s.byState[k];
      return {
        principal: router.principal,
        listen: { host: bound.address, port: bound.port },
        uptimeSec: Math.floor((Date.now() - startedAt) / 1000),
        ctas: sum('ctas'),
        byState,
        waking: sum('waking'),
        wakeQueue: sum('wakeQueue'),
        outstandingNonces: sum('outstandingNonces'),
        replayCache: sum('replayCache'),
        pendingSaRecovered: sum('pendingSaRecovered'),
        policy: live[0]?.policy ?? null,
        ackRequired: live[0]?.ackRequired ?? null,
        counters: mergeCounters(live.map((s) => s.counters)),
        routed: { ...routed },
        workers: ws.map((w, i) => {
          const s = sts[i];
          return {
            index: w.index,
            pid: w.proc?.pid ?? null,
            up: !!s,
            restarts: w.restarts,
            listen: s ? s.listen : w.port === null ? null : { host: workerHost, port: w.port },
            signaling: s ? s.signaling : null,
            ctas: s ? s.ctas : null,
            byState: s ? s.byState : null,
          };
        }),
      };
    },
    async metricsText(): Promise<string> {
      const texts = await Promise.all(ws.map((w) => (w.up ? call<string>(w.index, 'metricsText', []).catch(() => '') : Promise.resolve(''))));
      const up = ws.filter((w) => w.up).length;
      const own = [
        '# HELP cta_sc_workers SC worker processes configured',
        '# TYPE cta_sc_workers gauge',
        `cta_sc_workers ${n}`,
        '# HELP cta_sc_workers_up SC worker processes running',
        '# TYPE cta_sc_workers_up gauge',
        `cta_sc_workers_up ${up}`,
        '# HELP cta_sc_worker_restarts_total SC worker processes restarted after they exited',
        '# TYPE cta_sc_worker_restarts_total counter',
        `cta_sc_worker_restarts_total ${ws.reduce((a, w) => a + w.restarts, 0)}`,
        '# HELP cta_sc_primary_routed_total Datagrams at the public port routed to a worker, by how the owner was found',
        '# TYPE cta_sc_primary_routed_total counter',
        ...Object.keys(routed)
          .sort()
          .map((k) => `cta_sc_primary_routed_total{by="${k}"} ${routed[k]}`),
      ].join('\n');
      return mergeMetricsText(texts) + own + '\n';
    },
    hook: (k: number, msg: unknown) => call<unknown>(k, 'hook', [msg]),
    async close(): Promise<void> {
      if (closing) return;
      closing = true;
      clearInterval(sweepTimer);
      if (control) await control.close();
      await Promise.all(
        ws.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.timer) clearTimeout(w.timer);
              for (const x of w.waiting.splice(0)) x.reject(new Error('SC is stopping'));
              const p = w.proc;
              if (!p || p.exitCode !== null || p.signalCode !== null) return resolve();
              const t = setTimeout(() => p.kill('SIGKILL'), 5000);
              p.once('exit', () => {
                clearTimeout(t);
                resolve();
              });
              if (p.connected) p.send({ t: 'close' });
              else p.kill('SIGTERM');
            }),
        ),
      );
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

async function loadEntries(k: KeytabEntry[] | string, Err: new (code: string, msg: string) => Error): Promise<KeytabEntry[]> {
  if (Array.isArray(k)) return k;
  const { parseKeytab } = await import('../../firmware/proto/keytab.ts');
  let bytes: Buffer;
  try {
    bytes = readFileSync(k);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Err('keytab', code === 'ENOENT' ? `keytab '${k}' does not exist` : `cannot read keytab '${k}': ${(e as Error).message}`);
  }
  try {
    return parseKeytab(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  } catch (e) {
    throw new Err('keytab', `keytab '${k}' is not a valid keytab: ${(e as Error).message}`);
  }
}

/**
 * The primary's view of an AP Request: the client principal from its ticket,
 * decrypted with the SC's service key (null when it does not decode or decrypt;
 * the owner worker then answers it as any SC would).
 */
async function makeRouter(principal: string, entries: KeytabEntry[], n: number) {
  const krb = await import('../../firmware/proto/krb5.ts');
  const pktc = await import('../../firmware/proto/pktc.ts');
  const cr = await import('../../firmware/proto/crypto/index.ts');
  const { findKeys } = await import('../../firmware/proto/keytab.ts');
  const { nodeBackend } = await import('../crypto/node.ts');
  let name;
  try {
    name = krb.parsePrincipal(principal);
  } catch {
    name = null;
  }
  const canonical = name ? krb.principalToString(name.name, name.realm) : principal;
  const keys = findKeys(entries, canonical).filter((e) => cr.getProfile(e.etype) !== null);
  return {
    principal: canonical,
    clientOf(buf: Uint8Array): string | null {
      if (n <= 1) return null;
      try {
        const req = krb.decodeApReq(pktc.decodeApRequest(buf).apReq);
        const ep = req.ticket.encPart;
        const cands = keys.filter((e) => e.etype === ep.etype && (ep.kvno === undefined || ep.kvno === null || e.kvno === ep.kvno));
        for (const e of cands) {
          try {
            const etp = krb.decodeEncTicketPart(cr.decrypt(nodeBackend, ep.etype, e.key, krb.KU_KDC_REP_TICKET, ep.cipher));
            return krb.principalToString(etp.cname, etp.crealm);
          } catch {
            /* next key */
          }
        }
      } catch {
        /* not an AP Request we can read */
      }
      return null;
    },
  };
}

type Snap = { [family: string]: any };
function mergeCounters(snaps: Snap[]): Snap {
  const out: Snap = {};
  for (const s of snaps) {
    if (!s) continue;
    for (const f of Object.keys(s)) {
      const o = (out[f] = out[f] || {});
      for (const k of Object.keys(s[f])) o[k] = (o[k] || 0) + s[f][k];
    }
  }
  return out;
}

/** Sums the workers' Prometheus texts series by series (counters, histogram, gauges all add up). */
export function mergeMetricsText(texts: string[]): string {
  const fams: { name: string; head: string[]; type: string; series: Map<string, number> }[] = [];
  const byName = new Map<string, (typeof fams)[number]>();
  for (const t of texts) {
    let cur: (typeof fams)[number] | null = null;
    for (const line of t.split('\n')) {
      if (!line) continue;
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (m) {
        let f = byName.get(m[2]);
        if (!f) {
          f = { name: m[2], head: [], type: '', series: new Map() };
          byName.set(m[2], f);
          fams.push(f);
        }
        if (!f.head.includes(line)) f.head.push(line);
        if (m[1] === 'TYPE') f.type = m[3] ?? '';
        cur = f;
        continue;
      }
      if (line.startsWith('#') || !cur) continue;
      const sp = line.lastIndexOf(' ');
      const key = line.slice(0, sp);
      cur.series.set(key, (cur.series.get(key) || 0) + Number(line.slice(sp + 1)));
    }
  }
  const lines: string[] = [];
  for (const f of fams) {
    lines.push(...f.head);
    const keys = [...f.series.keys()];
    if (f.type === 'counter') keys.sort();
    for (const k of keys) lines.push(`${k} ${f.series.get(k)}`);
  }
  return lines.length ? lines.join('\n') + '\n' : '';
}

// ---------------------------------------------------------------- worker

async function workerMain(): Promise<void> {
  // `cta sc`'s V8 flags (bin/cta.js), before the SC's modules load.
  const { setFlagsFromString } = await import('node:v8');
  setFlagsFromString(process.env.CTA_SC_V8_FLAGS ?? '--semi-space-growth-factor=1');
  const send = (m: object) => {
    if (process.connected) process.send?.(m);
  };
  const init: any = await new Promise((resolve) => process.once('message', resolve));
  const index: number = init.index;
  const { startSc } = await import('./server.ts');
  const log: ScLog =
    init.log === 'stdout'
      ? (event, fields) => process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), component: 'sc', worker: index, event, ...fields }) + '\n')
      : init.log === 'ipc'
        ? (event, fields) => send({ t: 'log', event, fields: JSON.parse(JSON.stringify(fields)) })
        : () => {};
  let sc: ScServer;
  try {
    const o = { ...init.sc, control: null, log };
    try {
      sc = await startSc(o);
    } catch (e) {
      // A restarted worker asks for its previous port; if that is gone, any port.
      if ((e as { code?: string }).code !== 'port_in_use' || !o.listen.port) throw e;
      sc = await startSc({ ...o, listen: { host: o.listen.host, port: 0 } });
    }
  } catch (e) {
    send({ t: 'failed', code: (e as { code?: string }).code, message: (e as Error).message });
    process.exit(1);
  }
  let hook: WorkerHookHandler | null = null;
  if (init.hook) {
    const mod = await import(init.hook);
    hook = await mod.workerHook(sc, { index, workers: init.workers, ownerOf } satisfies WorkerHookContext);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await sc.close();
    } finally {
      process.exit(0);
    }
  };
  // Ctrl-C reaches the whole process group: the primary decides when workers stop.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  const methods: { [m: string]: (...a: any[]) => unknown } = {
    register: (p: string, a: string, port: number, sig?: number) => sc.register(p, a, port, sig ?? undefined),
    unregister: (p: string) => sc.unregister(p),
    isRegistered: (p: string) => sc.isRegistered(p),
    get: (p: string) => sc.get(p),
    wake: (p: string) => sc.wake(p),
    wakeAll: () => sc.wakeAll(),
    rekey: (p: string) => sc.rekey(p),
    sendSignaling: (p: string, t: string) => sc.sendSignaling(p, t),
    list: (l: number, o: number) => sc.list(l, o),
    status: () => JSON.parse(JSON.stringify(sc.status())),
    metricsText: () => sc.metricsText(),
    hook: (msg: unknown) => {
      if (!hook) throw new Error('no worker hook loaded');
      return hook(msg);
    },
  };
  process.on('message', (m: any) => {
    if (!m || stopping) return;
    if (m.t === 'dgram') {
      sc.receiveKm(m.b as Uint8Array, { address: m.a, port: m.p });
    } else if (m.t === 'call') {
      const f = methods[m.method];
      Promise.resolve()
        .then(() => {
          if (!f) throw new Error(`unknown method ${m.method}`);
          return f(...(m.args as unknown[]));
        })
        .then(
          (value) => send({ t: 'reply', id: m.id, ok: true, value: value === undefined ? null : value }),
          (e: Error) => send({ t: 'reply', id: m.id, ok: false, error: e?.message ?? String(e) }),
        );
    } else if (m.t === 'close') void stop();
  });
  send({ t: 'ready', port: sc.address.port, sigPort: sc.signalingAddress.port, pid: process.pid });
}

if (process.env.CTA_SC_WORKER !== undefined && process.argv.includes('--sc-worker') && process.argv[1] && fileURLToPath(pathToFileURL(process.argv[1])) === SELF) {
  workerMain().catch((e) => {
    process.stderr.write(`sc worker: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
