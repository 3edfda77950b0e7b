// SC throughput, latency, two-process scaling and memory per registered CTA.
// The SC runs in a child process pinned to CPU 0; the load generator (loadgen.ts)
// in another, pinned to CPU 1 (when taskset is there and the machine has 2 CPUs).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild, canPin, scEnv, type Child } from './proc.ts';
import { figure, quantile, sleep, type Figure } from './stats.ts';
import { newScKey, toHex } from './fixtures.ts';
import { summariseProfile, type Frame, type FileShare } from './profile.ts';
import { runWorkerScaling, type WorkerScaling } from './sc-workers.ts';

/** The SC processes run with `cta sc`'s V8 flags; CTA_BENCH_SC_V8_FLAGS replaces them ('' for none), to measure what they cost. */
const SC_ENV = scEnv(process.env.CTA_BENCH_SC_V8_FLAGS);

export type ScBenchOptions = {
  sizes: number[];
  runs: number;
  warmupMs: number;
  durationMs: number;
  lanes: number;
  /** Size used for the paced-latency and the two-process runs. */
  pacedSize: number;
  scalingSize: number;
  memSize: number;
  /** CTAs exercised per size (spread evenly over the registered ones; tickets pre-fetched). */
  reach: number;
  /** Verify the AP Reply HMAC in the load generator too. */
  verify: boolean;
  profile: boolean;
  /** Profile when the throughput target is missed. */
  autoProfile: boolean;
  log: (s: string) => void;
};

export type ThroughputRow = {
  ctas: number;
  rate: Figure;
  scCpuPct: Figure;
  /** Exchanges per CPU-second of the SC process: its capacity on one fully available core. */
  perCpuSecond: Figure;
  p50ms: Figure;
  p99ms: Figure;
  registerMs: number;
  errors: number;
};

/** The median run by bytesPerCta (its other fields are that run's); bytesPerCtaRuns: every run's figure. */
export type MemFigure = { registry: string; ctas: number; bytesPerCta: number; bytesPerCtaRuns: number[]; rssDelta: number; heapDelta: number; heapTotalDelta: number; externalDelta: number; registerMs: number };

export type ScBenchResult = {
  pinned: boolean;
  throughput: ThroughputRow[];
  paced: { ctas: number; offered: number; rate: Figure; p50ms: Figure; p99ms: Figure } | null;
  scaling: WorkerScaling | null;
  memory: (MemFigure & { inMemory: MemFigure }) | null;
  profile: { scenario: string; frames: Frame[]; files: FileShare[]; idlePct: number } | null;
};

type Run = { rate: number; cpuPct: number[]; p50: number; p99: number; errors: number };

async function measure(load: Child, scs: Child[], rate: number, o: ScBenchOptions): Promise<Run> {
  await load.request({ type: 'start', rate }, 'started');
  await sleep(o.warmupMs);
  await Promise.all(scs.map((s) => s.request({ type: 'measure-start' }, 'measure-started')));
  await sleep(o.durationMs);
  const ms = await Promise.all(scs.map((s) => s.request<any>({ type: 'measure-stop' }, 'measured')));
  const st = await load.request<any>({ type: 'stop' }, 'stopped', 30000);
  const lat: number[] = [];
  let est = 0;
  let errors = st.errors + st.timeouts;
  for (const m of ms) {
    est += m.established / (m.elapsedMs / 1000);
    for (const x of m.latencies) lat.push(x);
    errors += m.falseNonces + m.errors;
  }
  if (process.env.CTA_BENCH_DEBUG) console.error(`loadgen: errors ${st.errors}, timeouts ${st.timeouts}; sc false nonces ${ms.map((m) => m.falseNonces).join('/')}, errors ${ms.map((m) => m.errors).join('/')}, drops ${ms.map((m) => m.drops).join('/')}; ${st.done} done, cpu ${((100 * st.cpuMs) / st.elapsedMs).toFixed(0)}%, ${(st.cpuMs * 1000 / Math.max(1, st.done)).toFixed(0)} us/exchange; sc cpu ${ms.map((m) => ((100 * m.cpuMs) / m.elapsedMs).toFixed(0) + '% ' + ((m.cpuMs * 1000) / Math.max(1, m.established)).toFixed(0) + ' us/exchange').join(', ')}`);
  return {
    rate: est,
    cpuPct: ms.map((m) => (100 * m.cpuMs) / m.elapsedMs),
    p50: quantile(lat, 0.5),
    p99: quantile(lat, 0.99),
    errors,
  };
}

async function setup(n: number, shards: number, o: ScBenchOptions, profileDir?: string): Promise<{ load: Child; scs: Child[]; registerMs: number }> {
  const scKey = toHex(newScKey());
  const pin = shards === 1;
  const load = startChild('loadgen.ts', { cpu: pin ? 1 : undefined });
  const lanes = await load.request<any>({ type: 'init-sc', n, lanes: o.lanes, shards, scKey, verify: o.verify, reach: o.reach }, 'lanes', 600000);
  const scs: Child[] = [];
  const ready: any[] = [];
  for (let s = 0; s < shards; s++) {
    const c = startChild('sc-child.ts', { cpu: s % 2, env: SC_ENV });
    scs.push(c);
    ready.push(await c.request<any>({ type: 'serve', scKey, n, shard: s, shards, lanePorts: lanes.ports, profileDir }, 'ready', 600000));
  }
  await load.request({ type: 'target', shards: ready.map((r) => ({ port: r.port, cmdPort: r.cmdPort })) }, 'targeted');
  return { load, scs, registerMs: ready.reduce((a, r) => a + r.registerMs, 0) };
}

async function teardown(x: { load: Child; scs: Child[] }): Promise<void> {
  await Promise.all([x.load.stop(), ...x.scs.map((s) => s.stop())]);
}

export async function runScBench(o: ScBenchOptions): Promise<ScBenchResult> {
  const res: ScBenchResult = { pinned: canPin(), throughput: [], paced: null, scaling: null, memory: null, profile: null };
  const maxBySize = new Map<number, number>();

  // 1. Maximum rate (closed loop) per registered-CTA count.
  for (const n of o.sizes) {
    o.log(`sc: ${n.toLocaleString('en-US')} registered CTAs, closed loop, ${o.runs} x ${o.durationMs} ms`);
    const x = await setup(n, 1, o);
    try {
      const runs: Run[] = [];
      for (let r = 0; r < o.runs; r++) runs.push(await measure(x.load, x.scs, 0, o));
      const row: ThroughputRow = {
        ctas: n,
        rate: figure(runs.map((r) => r.rate)),
        scCpuPct: figure(runs.map((r) => r.cpuPct[0])),
        perCpuSecond: figure(runs.map((r) => r.rate / (r.cpuPct[0] / 100))),
        p50ms: figure(runs.map((r) => r.p50)),
        p99ms: figure(runs.map((r) => r.p99)),
        registerMs: x.registerMs,
        errors: runs.reduce((a, r) => a + r.errors, 0),
      };
      res.throughput.push(row);
      maxBySize.set(n, row.rate.median);

      // 2. Latency at half the measured maximum (open loop), on the same SC.
      if (n === o.pacedSize) {
        const offered = Math.max(1, Math.round(row.rate.median / 2));
        o.log(`sc: ${n.toLocaleString('en-US')} CTAs, paced at ${offered}/s (half the maximum)`);
        const pr: Run[] = [];
        for (let r = 0; r < o.runs; r++) pr.push(await measure(x.load, x.scs, offered, o));
        res.paced = {
          ctas: n,
          offered,
          rate: figure(pr.map((r) => r.rate)),
          p50ms: figure(pr.map((r) => r.p50)),
          p99ms: figure(pr.map((r) => r.p99)),
        };
      }
    } finally {
      await teardown(x);
    }
  }

  // 3. Scaling: `cta sc --workers 2` vs `--workers 1` (sc-workers.ts).
  if (o.scalingSize > 0) res.scaling = await runWorkerScaling(o.scalingSize, o);

  // 4. Memory per registered CTA, in a fresh process each: with the registry in a
  //    SQLite file (the `cta sc serve` default, --state sc.db) and in ':memory:'.
  //    RSS after the same registrations varies by tens of bytes per CTA from one
  //    process to the next (allocator and GC timing), so each registry gets o.runs
  //    fresh processes, the two interleaved, and the median run is reported.
  if (o.memSize > 0) {
    const one = async (where: 'file' | 'memory', run: number): Promise<Omit<MemFigure, 'bytesPerCtaRuns'>> => {
      o.log(`sc: memory run ${run + 1}/${o.runs} with ${o.memSize.toLocaleString('en-US')} registered CTAs, registry in ${where === 'file' ? 'a SQLite file' : "SQLite ':memory:'"} (fresh process)`);
      const dir = mkdtempSync(join(tmpdir(), 'cta-bench-mem-'));
      const c = startChild('sc-child.ts', { execArgv: ['--expose-gc'], env: SC_ENV });
      try {
        const statePath = where === 'file' ? join(dir, 'sc.db') : ':memory:';
        const m = await c.request<any>({ type: 'mem', n: o.memSize, scKey: toHex(newScKey()), statePath }, 'mem-result', 600000);
        const rssDelta = m.after.rss - m.before.rss;
        return {
          registry: where === 'file' ? 'sqlite file (cta sc serve default)' : 'sqlite :memory:',
          ctas: m.registered as number,
          bytesPerCta: rssDelta / m.registered,
          rssDelta,
          heapDelta: m.after.heapUsed - m.before.heapUsed,
          heapTotalDelta: m.after.heapTotal - m.before.heapTotal,
          externalDelta: m.after.external - m.before.external, // includes arrayBuffers
          registerMs: m.registerMs as number,
        };
      } finally {
        await c.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const files: Omit<MemFigure, 'bytesPerCtaRuns'>[] = [];
    const mems: Omit<MemFigure, 'bytesPerCtaRuns'>[] = [];
    for (let run = 0; run < Math.max(1, o.runs); run++) {
      files.push(await one('file', run));
      mems.push(await one('memory', run));
    }
    const median = (xs: Omit<MemFigure, 'bytesPerCtaRuns'>[]): MemFigure => {
      const sorted = [...xs].sort((a, b) => a.bytesPerCta - b.bytesPerCta);
      return { ...sorted[(sorted.length - 1) >> 1], bytesPerCtaRuns: xs.map((x) => x.bytesPerCta) };
    };
    res.memory = { ...median(files), inMemory: median(mems) };
  }

  // 5. CPU profile of the SC child at the maximum rate.
  const missed = res.throughput.some((r) => r.rate.median < 10000);
  if (o.profile || (o.autoProfile && missed)) {
    const n = o.sizes[o.sizes.length - 1];
    const dir = mkdtempSync(join(tmpdir(), 'cta-bench-prof-'));
    o.log(`sc: CPU profile of the SC process (${n.toLocaleString('en-US')} CTAs, closed loop)`);
    try {
      const x = await setup(n, 1, o, dir);
      try {
        await measure(x.load, x.scs, 0, { ...o, durationMs: Math.max(o.durationMs, 2000) });
      } finally {
        await teardown(x);
      }
      const p = summariseProfile(dir, Number(process.env.CTA_BENCH_PROFILE_TOP) || 15);
      if (p) res.profile = { scenario: `SC process, closed loop, ${n} CTAs`, frames: p.frames, files: p.files, idlePct: p.idlePct };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return res;
}
