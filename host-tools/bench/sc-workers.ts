// SC scaling: `cta sc --workers N` (host-tools/sc/workers.ts) with one worker and
// with two, the same closed-loop load (loadgen.ts) against each.
//
// This file has three roles:
//  - runWorkerScaling(): the measurement, called by sc-bench.ts;
//  - with --sc-workers-primary: the child process that runs the worker pool (the
//    primary of `cta sc --workers N`: startScWorkers, public socket, forked workers);
//  - workerHook(): loaded by every worker process (WorkerPoolOptions.workerHook), the
//    bench's handle inside a worker: it registers the worker's share of the CTAs,
//    opens the UDP command socket on which the load generator names CTAs to wake
//    (as sc-child.ts does for a single SC) and measures exchanges and CPU time.
//
// The load generator's lanes are tied to a shard (lane g -> shard g % N; its CTAs
// are i = g mod lanes) and it answers a Wake Up at that shard's port; so the hook
// registers CTA i in worker i % N (lanes a multiple of N) instead of the owner by
// principal hash. Which worker owns a CTA does not change the work per exchange.
// The exchanges go Wake Up -> AP Request -> AP Reply -> SA Recovered between a
// worker's socket and the lane, as a real CTA answers the socket its Wake Up came from;
// the primary is idle in this scenario (its CPU is reported).
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { ScServer } from '../sc/server.ts';
import { driveSc, type ScDrive } from './sc-drive.ts';
import type { WorkerHookContext, WorkerPool } from '../sc/workers.ts';
import { childMain, startChild, canPin, scEnv, type Child } from './proc.ts';
import { figure, quantile, sleep, type Figure } from './stats.ts';
import { fromHex, newScKey, scEntry, toHex, SC_PRINCIPAL } from './fixtures.ts';

const SELF = fileURLToPath(import.meta.url);
const SC_ENV = scEnv(process.env.CTA_BENCH_SC_V8_FLAGS);

/** What runWorkerScaling needs of the SC bench options. */
export type WorkerScalingOptions = { runs: number; warmupMs: number; durationMs: number; lanes: number; reach: number; verify: boolean; log: (s: string) => void };

export type WorkerScaling = {
  ctas: number;
  mode: string;
  /** Complete exchanges/s with one worker, and with two (sum over the workers). */
  one: Figure;
  two: Figure;
  ratio: number;
  /** CPU of each worker in the two-worker runs (% of one core). */
  scCpuPct: Figure[];
  /** Exchanges per CPU-second of the one worker, and of each of the two workers. */
  perCpuSecondOne: Figure;
  perCpuSecondTwo: Figure[];
  /** Sum of the two workers' per-CPU-second figures over the one worker's: the server's scaling with a core per worker. */
  capacityRatio: number;
  /** CPU of the primary during the two-worker runs (% of one core). */
  primaryCpuPct: Figure;
  /** CPU of the load generator (% of one core) in the one- and two-worker runs. */
  loadCpuPct: { one: Figure; two: Figure };
  cpus: number;
  pinned: boolean;
};

type Setup = { load: Child; prim: Child; workers: number };
type Run = { rate: number; perCpu: number[]; cpuPct: number[]; primaryCpuPct: number; loadCpuPct: number; p99: number; errors: number };

async function setup(n: number, workers: number, o: WorkerScalingOptions, scKey: string): Promise<Setup> {
  // One worker: primary + worker on CPU 0, load generator on CPU 1 (as the one-core
  // bench). Two workers: nothing pinned (three busy processes, two CPUs).
  const pin = workers === 1;
  const load = startChild('loadgen.ts', { cpu: pin ? 1 : undefined });
  const lanes = await load.request<any>({ type: 'init-sc', n, lanes: o.lanes, shards: workers, scKey, verify: o.verify, reach: o.reach }, 'lanes', 600000);
  const prim = startChild('sc-workers.ts', { cpu: pin ? 0 : undefined, env: SC_ENV, args: ['--sc-workers-primary'] });
  const ready = await prim.request<any>({ type: 'serve', scKey, n, workers, lanePorts: lanes.ports }, 'ready', 600000);
  await load.request({ type: 'target', shards: ready.shards }, 'targeted');
  return { load, prim, workers };
}

async function measure(x: Setup, o: WorkerScalingOptions): Promise<Run> {
  await x.load.request({ type: 'start', rate: 0 }, 'started');
  await sleep(o.warmupMs);
  await x.prim.request({ type: 'measure-start' }, 'measure-started');
  await sleep(o.durationMs);
  const m = await x.prim.request<any>({ type: 'measure-stop' }, 'measured');
  const st = await x.load.request<any>({ type: 'stop' }, 'stopped', 30000);
  if (process.env.CTA_BENCH_DEBUG) console.error(`loadgen: ${st.done} done, errors ${st.errors}, timeouts ${st.timeouts}; workers: ${JSON.stringify(m.workers.map((w: any) => ({ ...w, latencies: w.latencies.length })))}`);
  const ws = m.workers as { established: number; elapsedMs: number; cpuMs: number; latencies: number[]; falseNonces: number; errors: number }[];
  const lat: number[] = [];
  for (const w of ws) for (const l of w.latencies) lat.push(l);
  return {
    rate: ws.reduce((a, w) => a + w.established / (w.elapsedMs / 1000), 0),
    perCpu: ws.map((w) => w.established / Math.max(1e-9, w.cpuMs / 1000)),
    cpuPct: ws.map((w) => (100 * w.cpuMs) / w.elapsedMs),
    primaryCpuPct: (100 * m.primary.cpuMs) / m.primary.elapsedMs,
    loadCpuPct: (100 * st.cpuMs) / st.elapsedMs,
    p99: quantile(lat, 0.99),
    errors: st.errors + st.timeouts + ws.reduce((a, w) => a + w.falseNonces + w.errors, 0),
  };
}

async function teardown(x: Setup): Promise<void> {
  await Promise.all([x.load.stop(), x.prim.stop()]);
}

/** One worker vs two, runs interleaved so machine noise hits both alike. */
export async function runWorkerScaling(n: number, o: WorkerScalingOptions): Promise<WorkerScaling> {
  o.log(`sc: cta sc --workers 1 vs --workers 2, ${n.toLocaleString('en-US')} CTAs, closed loop, ${o.runs} x ${o.durationMs} ms`);
  const scKey = toHex(newScKey());
  const lanes = o.lanes % 2 === 0 ? o.lanes : o.lanes + 1;
  const oo = { ...o, lanes };
  const one: Run[] = [];
  const two: Run[] = [];
  const x1 = await setup(n, 1, oo, scKey);
  const x2 = await setup(n, 2, oo, scKey);
  try {
    for (let r = 0; r < Math.max(1, o.runs); r++) {
      one.push(await measure(x1, oo));
      two.push(await measure(x2, oo));
    }
  } finally {
    await teardown(x1);
    await teardown(x2);
  }
  const f1 = figure(one.map((r) => r.rate));
  const f2 = figure(two.map((r) => r.rate));
  const pc1 = figure(one.map((r) => r.perCpu[0]));
  const pc2 = [0, 1].map((k) => figure(two.map((r) => r.perCpu[k])));
  const res: WorkerScaling = {
    ctas: n,
    mode: "cta sc --workers 2 vs --workers 1 (primary + forked SC workers, CTAs sharded over the workers' own UDP sockets); one load-generator process on the same machine",
    one: f1,
    two: f2,
    ratio: f2.median / f1.median,
    scCpuPct: [0, 1].map((k) => figure(two.map((r) => r.cpuPct[k]))),
    perCpuSecondOne: pc1,
    perCpuSecondTwo: pc2,
    capacityRatio: (pc2[0].median + pc2[1].median) / pc1.median,
    primaryCpuPct: figure(two.map((r) => r.primaryCpuPct)),
    loadCpuPct: { one: figure(one.map((r) => r.loadCpuPct)), two: figure(two.map((r) => r.loadCpuPct)) },
    cpus: (await import('node:os')).cpus().length,
    pinned: canPin(),
  };
  const e = one.concat(two).reduce((a, r) => a + r.errors, 0);
  o.log(
    `sc: workers: one ${Math.round(f1.median)}/s, two ${Math.round(f2.median)}/s (${res.ratio.toFixed(2)}x; ${res.cpus} CPUs shared with the load generator at ${Math.round(res.loadCpuPct.two.median)}%); ` +
      `per SC CPU-second: one ${Math.round(pc1.median)}, two ${pc2.map((f) => Math.round(f.median)).join(' + ')} -> ${res.capacityRatio.toFixed(2)}x with a core per worker; worker CPU ${res.scCpuPct.map((f) => Math.round(f.median) + '%').join(' / ')}, primary ${Math.round(res.primaryCpuPct.median)}%; errors ${e}`,
  );
  return res;
}

// ---------------------------------------------------------------- primary (child process)

if (process.argv.includes('--sc-workers-primary')) {
  let pool: WorkerPool | null = null;
  let cpu0 = process.cpuUsage();
  let t0 = 0;
  childMain(async (msg, reply) => {
    if (msg.type === 'serve') {
      const { startScWorkers } = await import('../sc/workers.ts');
      pool = await startScWorkers({
        workers: msg.workers,
        principal: SC_PRINCIPAL,
        keytab: [scEntry(fromHex(msg.scKey))],
        listen: { host: '127.0.0.1', port: 0 },
        statePath: ':memory:',
        control: null,
        wakeOnStart: false,
        // As sc-child.ts: no Wake Up retries (a retry reaching a lane that moved on is a
        // false nonce that is an artefact of the lane model).
        timers: { wakeRetries: 0 },
        workerHook: SELF,
        env: process.env,
      });
      const shards: { port: number; cmdPort: number }[] = [];
      for (let k = 0; k < msg.workers; k++) shards.push((await pool.hook(k, { type: 'setup', n: msg.n, lanePorts: msg.lanePorts })) as { port: number; cmdPort: number });
      process.on('exit', () => void pool?.close());
      reply({ type: 'ready', shards });
      return;
    }
    if (!pool) throw new Error('not serving');
    const p = pool;
    if (msg.type === 'measure-start') {
      await Promise.all(Array.from({ length: p.workerCount }, (_, k) => p.hook(k, { type: 'measure-start' })));
      cpu0 = process.cpuUsage();
      t0 = performance.now();
      reply({ type: 'measure-started' });
      return;
    }
    if (msg.type === 'measure-stop') {
      const c = process.cpuUsage(cpu0);
      const primary = { cpuMs: (c.user + c.system) / 1000, elapsedMs: performance.now() - t0 };
      const workers = await Promise.all(Array.from({ length: p.workerCount }, (_, k) => p.hook(k, { type: 'measure-stop' })));
      reply({ type: 'measured', workers, primary });
      return;
    }
  });
}

// ---------------------------------------------------------------- in each worker

export function workerHook(sc: ScServer, ctx: WorkerHookContext): (msg: any) => Promise<unknown> {
  let drive: ScDrive | null = null;
  return async (msg: any) => {
    if (msg.type === 'setup') {
      drive = await driveSc(sc, msg.n, msg.lanePorts, (i) => i % ctx.workers === ctx.index);
      return { port: sc.address.port, cmdPort: drive.cmdPort, registered: drive.registered };
    }
    if (!drive) throw new Error(`hook message ${msg.type} before setup`);
    if (msg.type === 'measure-start') {
      drive.start();
      return { ok: true };
    }
    if (msg.type === 'measure-stop') return drive.stop();
    throw new Error(`unknown hook message ${msg.type}`);
  };
}
