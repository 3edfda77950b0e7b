// Summarises a V8 .cpuprofile (node --cpu-prof): self time per function, top N.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../build/build.ts';

type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] };
type Profile = { nodes: Node[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };

export type Frame = { name: string; where: string; selfPct: number; selfMs: number };
export type FileShare = { file: string; selfPct: number };

function shortUrl(url: string): string {
  if (!url) return '';
  let p = url.replace(/^file:\/\//, '');
  if (p.startsWith(REPO_ROOT)) p = relative(REPO_ROOT, p);
  return p.replace(/^.*node_modules\//, '');
}

/**
 * Top `top` functions by self time in the busiest .cpuprofile of dir (a process with
 * tsx writes one per thread; the loader thread's is mostly idle). Percentages are of
 * the non-idle time.
 */
export function summariseProfile(dir: string, top = 12): { file: string; totalMs: number; idlePct: number; frames: Frame[]; files: FileShare[] } | null {
  const profiles = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  let best: { file: string; prof: Profile; busy: number } | null = null;
  for (const f of profiles) {
    const prof = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Profile;
    const idleIds = new Set(prof.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
    let busy = 0;
    for (let i = 0; i < prof.samples.length; i++) if (!idleIds.has(prof.samples[i])) busy += prof.timeDeltas[i] ?? 0;
    if (!best || busy > best.busy) best = { file: join(dir, f), prof, busy };
  }
  if (!best) return null;
  const { file, prof } = best;
  const byId = new Map<number, Node>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
  const agg = new Map<string, { name: string; where: string; us: number }>();
  const byFile = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const name = n.callFrame.functionName || '(anonymous)';
    total += us;
    // (idle), and the inspector's own native `dispatch` (Profiler.start/stop called
    // through node:inspector in the profiled thread), are not the program's work.
    if (name === '(idle)' || (name === 'dispatch' && !n.callFrame.url)) {
      idle += us;
      continue;
    }
    const where = n.callFrame.url ? `${shortUrl(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : '';
    const f = n.callFrame.url ? shortUrl(n.callFrame.url) : name;
    byFile.set(f, (byFile.get(f) ?? 0) + us);
    const key = name + '|' + where;
    const a = agg.get(key) ?? { name, where, us: 0 };
    a.us += us;
    agg.set(key, a);
  }
  const busy = total - idle || 1;
  const frames = [...agg.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((a) => ({ name: a.name, where: a.where, selfPct: (100 * a.us) / busy, selfMs: a.us / 1000 }));
  const files = [...byFile.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([f, us]) => ({ file: f, selfPct: (100 * us) / busy }));
  return { file, totalMs: total / 1000, idlePct: (100 * idle) / (total || 1), frames, files };
}
