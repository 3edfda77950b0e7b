// The SC's notion of time, injectable so tests (and benchmarks) can drive every
// timer deterministically: wall-clock milliseconds plus setTimeout/clearTimeout.

export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const h = setTimeout(fn, ms);
    // Never keep the process alive only for a protocol timer; sockets do that.
    h.unref();
    return h;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

type Pending = { id: number; at: number; fn: () => void };

/**
 * A manual clock: time moves only when advance()/set() is called, and timers
 * that come due run in order (timers scheduled by running timers run too when
 * they fall inside the advanced span).
 */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private timers: Pending[] = [];
  constructor(startMs = Date.UTC(2025, 0, 1)) {
    this.t = startMs;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const p = { id: ++this.seq, at: this.t + Math.max(0, ms), fn };
    this.timers.push(p);
    return p.id;
  }
  clearTimeout(handle: unknown): void {
    const i = this.timers.findIndex((p) => p.id === handle);
    if (i >= 0) this.timers.splice(i, 1);
  }
  /** Number of timers not yet run. */
  get pending(): number {
    return this.timers.length;
  }
  /** Moves time forward by ms, running every timer that comes due. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let best: Pending | null = null;
      for (const p of this.timers) if (p.at <= end && (!best || p.at < best.at || (p.at === best.at && p.id < best.id))) best = p;
      if (!best) break;
      this.timers.splice(this.timers.indexOf(best), 1);
      if (best.at > this.t) this.t = best.at;
      best.fn();
    }
    this.t = end;
  }
}
