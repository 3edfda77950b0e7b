// Child processes for the benchmarks: a TypeScript module run by Node through tsx,
// with an IPC channel, optionally pinned to one CPU (taskset) so "one core" means one.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../build/build.ts';

export const BENCH_DIR = join(REPO_ROOT, 'host-tools', 'bench');

/**
 * The V8 flags `cta sc` runs with: bin/cta.js passes this string to
 * v8.setFlagsFromString once tsx is registered, so the young generation stops
 * growing (1-2 MiB semi-spaces instead of up to 16 MiB). On the command line, or set
 * before tsx's loader thread starts, it does not hold on Node 20.
 */
export const SC_V8_FLAGS = '--semi-space-growth-factor=1';
/** Environment for a benchmark's SC process (sc-v8.ts applies it): `cta sc`'s V8 flags, or `flags`. */
export function scEnv(flags = SC_V8_FLAGS): NodeJS.ProcessEnv {
  return { ...process.env, CTA_SC_V8_FLAGS: flags };
}

let tasksetOk: boolean | null = null;
/** taskset(1) is present and may set this process's affinity. */
export function canPin(): boolean {
  if (tasksetOk === null) {
    tasksetOk = cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true'], { stdio: 'ignore' }).status === 0;
  }
  return tasksetOk;
}

export type Child = {
  proc: ChildProcess;
  /** Sends a message and resolves with the first reply whose `type` is `replyType`. */
  request<T = any>(msg: object, replyType: string, timeoutMs?: number): Promise<T>;
  /** Resolves with the next message of this type. */
  next<T = any>(type: string, timeoutMs?: number): Promise<T>;
  send(msg: object): void;
  stop(): Promise<void>;
};

export type ChildOptions = {
  /** CPU to pin to (taskset -c), when pinning is possible. */
  cpu?: number;
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  args?: string[];
  /** Child stderr goes to ours (default true). */
  stderr?: boolean;
};

/** Starts host-tools/bench/<file> in a new Node process with IPC. */
export function startChild(file: string, o: ChildOptions = {}): Child {
  const node = [process.execPath, ...(o.execArgv ?? []), '--import', 'tsx', join(BENCH_DIR, file), ...(o.args ?? [])];
  const pin = o.cpu !== undefined && canPin();
  const cmd = pin ? 'taskset' : node[0];
  const args = pin ? ['-c', String(o.cpu), ...node] : node.slice(1);
  const proc = spawn(cmd, args, {
    cwd: REPO_ROOT,
    env: o.env ?? process.env,
    stdio: ['ignore', 'inherit', o.stderr === false ? 'ignore' : 'inherit', 'ipc'],
  });
  const waiters: { type: string; resolve: (m: any) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }[] = [];
  const queued: any[] = [];
  let exited: Error | null = null;
  proc.on('message', (m: any) => {
    const i = waiters.findIndex((w) => w.type === m?.type);
    if (i >= 0) {
      const w = waiters.splice(i, 1)[0];
      clearTimeout(w.timer);
      w.resolve(m);
    } else if (m?.type === 'error') {
      const e = new Error(`${file}: ${m.message}`);
      for (const w of waiters.splice(0)) {
        clearTimeout(w.timer);
        w.reject(e);
      }
      exited = e;
    } else queued.push(m);
  });
  proc.on('exit', (code, sig) => {
    exited = exited ?? new Error(`${file} exited (${sig ?? code})`);
    for (const w of waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(exited);
    }
  });
  const next = <T>(type: string, timeoutMs = 120000): Promise<T> => {
    const i = queued.findIndex((m) => m?.type === type);
    if (i >= 0) return Promise.resolve(queued.splice(i, 1)[0]);
    if (exited) return Promise.reject(exited);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const k = waiters.findIndex((w) => w.timer === timer);
        if (k >= 0) waiters.splice(k, 1);
        reject(new Error(`${file}: no '${type}' message within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.push({ type, resolve, reject, timer });
    });
  };
  const send = (msg: object) => {
    if (proc.connected) proc.send(msg);
  };
  return {
    proc,
    next,
    send,
    request<T>(msg: object, replyType: string, timeoutMs?: number) {
      const p = next<T>(replyType, timeoutMs);
      send(msg);
      return p;
    },
    stop() {
      return new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        proc.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        send({ type: 'exit' });
        setTimeout(() => {
          if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
        }, 1500).unref();
      });
    },
  };
}

/** In a child: reply helper and a guard that reports failures to the parent. */
export function childMain(handler: (msg: any, reply: (m: object) => void) => Promise<void> | void): void {
  const reply = (m: object) => {
    if (process.send) process.send(m);
  };
  process.on('message', (msg: any) => {
    if (msg?.type === 'exit') {
      process.exit(0);
    }
    Promise.resolve()
      .then(() => handler(msg, reply))
      .catch((e) => {
        reply({ type: 'error', message: (e as Error).stack ?? String(e) });
      });
  });
  process.on('disconnect', () => process.exit(0));
}

export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin'])) {
    const p = join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return null;
}
