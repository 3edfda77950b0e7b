// The timers stand-in: setTimeout / setInterval with numeric ids as on Espruino, and
// clearTimeout / clearInterval as Espruino's (no argument clears every timer; undefined throws).
// Callbacks run through the emulator's guard, so a throw is reported "Uncaught".
import type { EmulatorContext } from './types.ts';

export interface EmulatedTimers {
  /** Live timers by id (their callbacks count as memory roots). */
  readonly timers: Map<number, { handle: NodeJS.Timeout; interval: boolean; fn: unknown }>;
  /** setTimeout (interval false) / setInterval (true): the id. */
  addTimer(interval: boolean, fn: unknown, ms: unknown, args: unknown[]): number;
  /** clearTimeout / clearInterval, named for its error message. */
  clearTimer(which: string): (...a: unknown[]) => void;
  /** Cancels every timer (Emulator.stop). */
  clearAll(): void;
}

export function makeTimers(ctx: EmulatorContext): EmulatedTimers {
  const { G, guard } = ctx;
  const timers = new Map<number, { handle: NodeJS.Timeout; interval: boolean; fn: unknown }>();
  let nextTimer = 1;
  const addTimer = (interval: boolean, fn: unknown, ms: unknown, args: unknown[]) => {
    if (typeof fn !== 'function') throw new G.Error('Function or String not supplied!');
    const id = nextTimer++;
    const delay = Math.max(0, Number(ms) || 0);
    const run = () => {
      if (!interval) timers.delete(id);
      guard(fn as (...a: unknown[]) => unknown, args);
    };
    const handle = interval ? setInterval(run, Math.max(1, delay)) : setTimeout(run, delay);
    timers.set(id, { handle, interval, fn });
    return id;
  };
  const clearAll = () => {
    for (const t of timers.values()) clearTimeout(t.handle);
    timers.clear();
  };
  const clearTimer = (which: string) =>
    function (this: unknown, ...a: unknown[]) {
      if (a.length === 0) {
        clearAll();
        return;
      }
      const id = a[0];
      if (id === undefined) throw new G.Error(`${which}(undefined) not allowed. Use ${which}() instead`);
      const t = timers.get(Number(id));
      if (t) {
        clearTimeout(t.handle);
        timers.delete(Number(id));
      }
    };
  return { timers, addTimer, clearTimer, clearAll };
}
