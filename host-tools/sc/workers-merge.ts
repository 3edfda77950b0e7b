// The `--workers` pool's status and /metrics: each worker's figures gathered over
// IPC and merged into one SC's (counters and gauges summed, by state and by
// series), plus the primary's own (workers up, restarts, datagrams routed).
import type { Supervisor } from './workers-supervise.ts';

/** What the merged status names besides the workers' figures. */
type PoolFacts = { principal: string; listen: { host: string; port: number }; workerHost: string; startedAt: number; routed: { [k: string]: number } };

/** The pool's status(): every live worker's status merged, and one line per worker. */
export async function poolStatus(sup: Supervisor, facts: PoolFacts): Promise<object> {
  const { ws, call } = sup;
  const { routed, workerHost, startedAt } = facts;
  const sts = await Promise.all(ws.map((w) => (w.up ? call<any>(w.index, 'status', []).catch(() => null) : Promise.resolve(null))));
  const live = sts.filter((s) => s) as any[];
  const sum = (f: string) => live.reduce((a, s) => a + (s[f] || 0), 0);
  const byState: { [s: string]: number } = {};
  for (const s of live) for (const k of Object.keys(s.byState)) byState[k] = (byState[k] || 0) + s.byState[k];
  return {
    principal: facts.principal,
    listen: facts.listen,
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
}

/** The pool's Prometheus text: the workers' series summed, then the primary's own. */
export async function poolMetricsText(sup: Supervisor, routed: { [k: string]: number }): Promise<string> {
  const { ws, call } = sup;
  const n = ws.length;
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
