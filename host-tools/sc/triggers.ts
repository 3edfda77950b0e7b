// Triggers and re-key campaigns: the SC's side of "the SC initiates". A Wake Up
// (or, when the session key is still held, an authenticated Rekey) goes out with a
// fresh nonce; unanswered, it is retried with fresh nonces, then the CTA is
// unreachable. Also the paced wake of many CTAs (start-up, wakeAll) and the
// re-trigger after an AP Reply that got no SA Recovered.
import { wipe } from '../../firmware/proto/bytes.ts';
import { usageHmacKey } from '../../firmware/proto/crypto/index.ts';
import { encodeRekey, DOI, KMMID, USAGE } from '../../firmware/proto/pktc.ts';
import { CTA_STATE } from './registry.ts';
import { B, type ScContext, type Waking } from './context.ts';
import type { UnreachableEvent, WakeEvent } from './types.ts';

export type Triggers = {
  /** Sends a Wake Up (or Rekey) now, replacing a trigger under way for the slot. */
  startTrigger(slot: number, rekey: boolean): void;
  /** The exchange for the slot is answered (or the CTA is gone): no more retries; its nonces are dropped. */
  endTrigger(slot: number): void;
  /** Rekey (authenticated) if the session key is held, else Wake Up; says which. */
  rekeyOrWake(slot: number): 'rekey' | 'wake';
  /** Queues a paced Wake Up to each slot; returns how many were queued. */
  queueWakes(slots: number[]): number;
  /** An AP Reply got no SA Recovered: trigger again, a bounded number of times in a row. */
  retriggerAfterNoAck(slot: number, p: string, now: number): void;
  /** Wake Ups queued and not yet sent. */
  queued(): number;
  /** close(): clears the timers and queues. */
  stop(): void;
};

export function createTriggers(ctx: ScContext): Triggers {
  // (long as a whole: a factory; its inner functions are the units, sharing the retry queue and the wake queue)
  const { clock, timers, registry, keys, nonces, metrics, waking, ackMisses, hmacKeys, hmacKeyMax, em, log, send, newScSpi, TX, wakeUpTemplate, principal, supported, reestablish } = ctx;
  const wakeQueue: number[] = [];
  let wakeQueueHead = 0;
  let wakeQueueTimer: unknown = null;

  /** Derived HMAC key of a session key (the Rekey is signed with usage REKEY), cached per (etype, usage, key). */
  function hmacKey(etype: number, base: Uint8Array, usage: number): Uint8Array {
    const id = etype + ':' + usage + ':' + Buffer.from(base.buffer, base.byteOffset, base.length).toString('latin1');
    let k = hmacKeys.get(id);
    if (!k) {
      k = usageHmacKey(B, etype, base, usage);
      if (hmacKeys.size >= hmacKeyMax) {
        const first = hmacKeys.keys().next();
        if (!first.done) hmacKeys.delete(first.value);
      }
      hmacKeys.set(id, k);
    }
    return k;
  }

  // ---- triggers: Wake Up / Rekey ----
  // Trigger retries: one clock timer for all of them, armed for the earliest
  // deadline. Every attempt waits the same wakeRetryMs, so deadlines join the
  // queue in order; an exchange that completes (or a newer trigger for the slot)
  // leaves its entry behind, skipped when it comes up. No timer is made or
  // cleared per exchange.
  const trigQueue: Waking[] = [];
  let trigHead = 0;
  let trigTimer: unknown = null;
  let trigTimerDue = 0;
  let trigSweeping = false;
  function trigLive(w: Waking): boolean {
    return waking.get(w.slot) === w;
  }
  function armTriggers(now: number): void {
    while (trigHead < trigQueue.length && !trigLive(trigQueue[trigHead])) trigHead++;
    if (trigHead >= 1024 && trigHead * 2 >= trigQueue.length) {
      trigQueue.splice(0, trigHead);
      trigHead = 0;
    }
    if (trigHead >= trigQueue.length) {
      trigQueue.length = 0;
      trigHead = 0;
      return;
    }
    const due = trigQueue[trigHead].due;
    if (trigTimer !== null) {
      if (trigTimerDue <= due) return;
      clock.clearTimeout(trigTimer);
    }
    trigTimerDue = due;
    // (bounded by one retry gap in case the wall clock stepped back)
    trigTimer = clock.setTimeout(onTriggerTimer, Math.min(Math.max(0, due - now), timers.wakeRetryMs));
  }
  function onTriggerTimer(): void {
    trigTimer = null;
    if (ctx.closed) return;
    const now = clock.now();
    trigSweeping = true;
    try {
      while (trigHead < trigQueue.length) {
        const w = trigQueue[trigHead];
        if (!trigLive(w)) {
          trigHead++;
          continue;
        }
        if (w.due > now) break;
        trigHead++;
        onTriggerTimeout(w);
      }
    } finally {
      trigSweeping = false;
      armTriggers(now);
    }
  }

  function sendTrigger(slot: number, w: Waking): void {
    const now = clock.now();
    const useRekey = w.rekey && w.attempt === 0;
    const nonce = nonces.issue(slot, now, timers.nonceLifetimeMs, w.startedAt, useRekey ? 'rekey' : 'wake');
    const p = registry.principalOf(slot);
    if (nonce === 0) {
      metrics.inc('cta_sc_drops_total', 'nonce_table_full');
      log('nonce_table_full', { principal: p });
    } else {
      w.nonces.push(nonce);
      let msg: Uint8Array | null = null;
      if (useRekey) {
        const sess = keys.getSession(slot);
        if (sess) {
          msg = encodeRekey(B, hmacKey(sess.etype, sess.key, USAGE.REKEY), {
            kmmid: KMMID.REKEY,
            doi: DOI.IPSEC,
            serverNonce: nonce,
            serverPrincipal: principal,
            timestamp: now,
            appData: { spi: newScSpi(slot, registry.scSpi(slot)) },
            ciphersuites: supported,
            saLifetime: timers.saLifetimeSec,
            gracePeriod: timers.graceSec,
            reestablish,
          });
          wipe(sess.key);
        }
      }
      if (!msg) msg = wakeUpTemplate.encode(nonce);
      const kind = msg[0] === KMMID.REKEY ? 'rekey' : 'wake_up';
      send(msg, registry.port(slot), registry.address(slot), kind === 'rekey' ? TX.rekey : TX.wake_up);
      if (em.listenerCount('wake')) em.emit('wake', { principal: p, kind: kind === 'rekey' ? 'rekey' : 'wake', attempt: w.attempt } satisfies WakeEvent);
    }
    w.due = now + timers.wakeRetryMs;
    trigQueue.push(w);
    if (trigTimer === null && !trigSweeping) armTriggers(now);
  }
  function onTriggerTimeout(w: Waking): void {
    const slot = w.slot;
    if (ctx.closed || waking.get(slot) !== w) return;
    w.attempt++;
    if (w.attempt > timers.wakeRetries) {
      waking.delete(slot);
      const p = registry.principalOf(slot);
      registry.setState(slot, CTA_STATE.UNREACHABLE, clock.now(), `no AP Request after ${w.attempt} trigger(s)`);
      metrics.inc('cta_sc_exchanges_total', 'unreachable');
      log('unreachable', { principal: p, attempts: w.attempt });
      em.emit('unreachable', { principal: p, attempts: w.attempt } satisfies UnreachableEvent);
      return;
    }
    sendTrigger(slot, w);
  }
  function startTrigger(slot: number, rekey: boolean): void {
    // A trigger already under way is replaced (its queue entry goes stale); its
    // nonces stay valid until they expire: a late answer to them still counts.
    const now = clock.now();
    const w: Waking = { slot, attempt: 0, startedAt: now, due: now, nonces: [], rekey };
    waking.set(slot, w);
    registry.markWaking(slot, w.startedAt);
    sendTrigger(slot, w);
  }
  function endTrigger(slot: number): void {
    const w = waking.get(slot);
    if (!w) return;
    for (const n of w.nonces) nonces.drop(n);
    waking.delete(slot);
  }
  function rekeyOrWake(slot: number): 'rekey' | 'wake' {
    const sess = keys.getSession(slot);
    const usable = !!sess && sess.ticketEndMs > clock.now() + 60000;
    if (sess) wipe(sess.key);
    startTrigger(slot, usable);
    return usable ? 'rekey' : 'wake';
  }

  // Paced wake of many CTAs (start-up, wakeAll): restartWakeRatePerSec.
  function queueWakes(slots: number[]): number {
    for (const s of slots) wakeQueue.push(s);
    if (!wakeQueueTimer) drainWakes();
    return slots.length;
  }
  function drainWakes(): void {
    wakeQueueTimer = null;
    if (ctx.closed) return;
    const rate = timers.restartWakeRatePerSec;
    const tickMs = rate > 0 && isFinite(rate) ? Math.max(10, 1000 / rate) : 0;
    const perTick = tickMs ? Math.max(1, Math.round((rate * tickMs) / 1000)) : Infinity;
    let sent = 0;
    while (wakeQueueHead < wakeQueue.length && sent < perTick) {
      const slot = wakeQueue[wakeQueueHead++];
      const st = registry.state(slot);
      if (st === CTA_STATE.FREE || waking.has(slot)) continue;
      startTrigger(slot, false);
      sent++;
    }
    if (wakeQueueHead >= wakeQueue.length) {
      wakeQueue.length = 0;
      wakeQueueHead = 0;
      return;
    }
    wakeQueueTimer = clock.setTimeout(drainWakes, tickMs);
  }

  function retriggerAfterNoAck(slot: number, p: string, now: number): void {
    const n = (ackMisses.get(slot) ?? 0) + 1;
    if (n > timers.wakeRetries + 1) {
      ackMisses.delete(slot);
      registry.setState(slot, CTA_STATE.UNREACHABLE, now, `no SA Recovered after ${n - 1} exchange(s)`);
      metrics.inc('cta_sc_exchanges_total', 'unreachable');
      log('unreachable', { principal: p, attempts: n - 1 });
      em.emit('unreachable', { principal: p, attempts: n - 1 } satisfies UnreachableEvent);
      return;
    }
    ackMisses.set(slot, n);
    startTrigger(slot, false);
  }
  return {
    startTrigger,
    endTrigger,
    rekeyOrWake,
    queueWakes,
    retriggerAfterNoAck,
    queued: () => wakeQueue.length - wakeQueueHead,
    stop(): void {
      if (wakeQueueTimer) clock.clearTimeout(wakeQueueTimer);
      if (trigTimer !== null) clock.clearTimeout(trigTimer);
      trigTimer = null;
      waking.clear();
      trigQueue.length = 0;
    },
  };
}
