// Housekeeping, once per timers.housekeepingMs: sweeps the nonce table, the replay
// cache, the exchanges whose SA Recovered never came and the client-initiated
// rate windows, and starts the re-key of every CTA whose SA has less than the
// grace period left (Rekey if the session key is held, else Wake Up).
import type { ScContext } from './context.ts';
import type { Exchange } from './exchange.ts';
import type { Triggers } from './triggers.ts';

/** Arms the first tick; returns stop() for close(). */
export function startHousekeeping(ctx: ScContext, exchange: Exchange, triggers: Triggers): { stop(): void } {
  const { clock, timers, nonces, replay, ciRate, registry, waking, log } = ctx;
  const { sweepPending } = exchange;
  const { rekeyOrWake } = triggers;
  let hkTimer: unknown = null;
  function housekeeping(): void {
    hkTimer = null;
    if (ctx.closed) return;
    const now = clock.now();
    nonces.sweep(now);
    replay.sweep(now);
    sweepPending(now, false);
    for (const [slot, w] of ciRate) if (now - w.windowStart >= 60000) ciRate.delete(slot);
    // Re-key CTAs whose SA has less than the grace period left.
    const dueSec = Math.floor(now / 1000) + timers.graceSec;
    const due = registry.expiringBy(dueSec);
    for (const slot of due) {
      if (waking.has(slot)) continue;
      const how = rekeyOrWake(slot);
      log('sa_expiring', { principal: registry.principalOf(slot), method: how });
    }
    hkTimer = clock.setTimeout(housekeeping, timers.housekeepingMs);
  }
  hkTimer = clock.setTimeout(housekeeping, timers.housekeepingMs);
  return {
    stop(): void {
      if (hkTimer) clock.clearTimeout(hkTimer);
    },
  };
}
