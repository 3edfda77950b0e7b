// Small statistics and formatting helpers for `cta bench`.

/** A figure measured over repeated runs: the median with the spread. */
export type Figure = { median: number; min: number; max: number; runs: number[] };

export function figure(runs: number[]): Figure {
  const s = runs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { median: NaN, min: NaN, max: NaN, runs };
  const m = s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { median: m, min: s[0], max: s[s.length - 1], runs };
}

/** The q-quantile (0..1) of unsorted samples (nearest rank). */
export function quantile(samples: ArrayLike<number>, q: number): number {
  const a = Array.prototype.slice.call(samples) as number[];
  if (a.length === 0) return NaN;
  a.sort((x, y) => x - y);
  const i = Math.min(a.length - 1, Math.max(0, Math.ceil(q * a.length) - 1));
  return a[i];
}

/** 12345.6 -> "12,346"; small numbers keep a few significant digits. */
export function fmt(n: number, digits = 3): string {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a >= 1000) return Math.round(n).toLocaleString('en-US');
  if (a >= 100) return n.toFixed(0);
  if (a >= 10) return n.toFixed(Math.max(0, digits - 2));
  if (a >= 1) return n.toFixed(Math.max(0, digits - 1));
  if (a === 0) return '0';
  return n.toPrecision(digits);
}

/** "12,000 (11,500..12,300)" */
export function fmtFigure(f: Figure, unit = ''): string {
  const u = unit ? ' ' + unit : '';
  if (f.runs.length <= 1) return `${fmt(f.median)}${u}`;
  return `${fmt(f.median)}${u} (${fmt(f.min)}..${fmt(f.max)})`;
}

export function table(rows: string[][], header: string[]): string {
  const all = [header, ...rows];
  const w = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(w[i])).join('  ').trimEnd();
  return [line(header), w.map((n) => '-'.repeat(n)).join('  '), ...rows.map(line)].join('\n');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
