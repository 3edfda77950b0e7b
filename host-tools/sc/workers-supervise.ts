// Worker process supervision (the `--workers` primary): forks the N worker
// processes (worker-main.ts), waits for each to report ready, restarts one that
// exits after a short, growing delay, and carries the primary's calls to a worker
// over IPC (call / all), each answered or rejected -- never left hanging when the
// worker dies. close() stops every worker.
import type { EventEmitter } from 'node:events';
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ScLog } from './types.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import type { WorkerPoolOptions } from './workers-types.ts';

/** The worker side's entry point (forked with --sc-worker). */
const WORKER_MAIN = fileURLToPath(new URL('./worker-main.ts', import.meta.url));

type Call = { resolve: (v: any) => void; reject: (e: Error) => void };
/** One worker slot: the current process (null while it restarts) and its calls in flight. */
export type W = {
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

export type Supervisor = {
  readonly ws: W[];
  /** close() has begun: no restarts, no new calls. */
  readonly closing: boolean;
  /** Forks every worker and waits until all are ready (on failure: kills them all and throws). */
  startAll(): Promise<void>;
  /** Calls a method of worker k's SC (waits up to 15 s for a restarting worker). */
  call<T>(k: number, method: string, args: unknown[]): Promise<T>;
  /** The same call to every worker, answers in worker order. */
  all<T>(method: string, args?: unknown[]): Promise<T[]>;
  /** Marks the pool closing; false if it already was. */
  beginClose(): boolean;
  /** Asks every worker to stop (SIGKILL after 5 s) and waits for them to exit. */
  stopAll(): Promise<void>;
};

type SupervisorSetup = {
  opts: WorkerPoolOptions;
  n: number;
  entries: KeytabEntry[];
  /** The address the workers bind (the one the primary's public socket has). */
  workerHost: string;
  em: EventEmitter;
  log: ScLog;
  ScStartError: new (code: string, message: string) => Error;
};

export function createSupervisor({ opts, n, entries, workerHost, em, log, ScStartError }: SupervisorSetup): Supervisor {
  // (long as a whole: a factory; spawnWorker, restart, whenUp and call are the units, sharing the worker slots)
  let closing = false;
  let callId = 0;
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
      const proc = fork(WORKER_MAIN, ['--sc-worker'], {
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

  return {
    ws,
    get closing() {
      return closing;
    },
    async startAll(): Promise<void> {
      try {
        await Promise.all(ws.map(spawnWorker));
      } catch (e) {
        closing = true;
        for (const w of ws) w.proc?.kill('SIGKILL');
        throw e;
      }
    },
    call,
    all: <T>(method: string, args: unknown[] = []) => Promise.all(ws.map((w) => call<T>(w.index, method, args))),
    beginClose(): boolean {
      if (closing) return false;
      closing = true;
      return true;
    },
    async stopAll(): Promise<void> {
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
    },
  };
}
