// The `--workers` pool's public types: its options, the WorkerPool interface that
// startScWorkers (workers.ts) returns, and what a worker hook gets. workers.ts
// re-exports all of it.
import type { EventEmitter } from 'node:events';
import type { ScOptions, ScLog } from './types.ts';
import type { CtaRecord } from './registry.ts';
import type { ControlTarget, ControlOptions } from './control.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';

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
/** ownerOf is workers-route.ts's (the same function the primary routes with). */
export type WorkerHookContext = { index: number; workers: number; ownerOf: (principal: string, n: number) => number };
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
