// The SC's table of outstanding server nonces (claims 2, 5, 6, 10, 11, 14, 15).
// Every Wake Up / Rekey gets a fresh CSPRNG nonce != 0 bound to the CTA it was
// sent to and an expiry. An AP Request's returned nonce must match an unexpired
// entry for the same CTA, and matching consumes it; anything else is false.
// The table is bounded: when it is full of live nonces, issue() refuses.
import { randomNonZeroU32 } from './rand.ts';

export type NonceEntry = {
  /** CTA slot in the registry the nonce was sent to. */
  slot: number;
  /** Absolute expiry, ms. */
  expires: number;
  /** When the exchange began (first Wake Up of the attempt), for the latency histogram. */
  startedAt: number;
  /** 'wake' or 'rekey'. */
  kind: 'wake' | 'rekey';
};

export type ConsumeResult = NonceEntry | 'unknown' | 'expired' | 'wrong_cta';

export class NonceTable {
  private map = new Map<number, NonceEntry>();
  readonly max: number;
  constructor(max = 262144) {
    this.max = max;
  }
  get size(): number {
    return this.map.size;
  }
  /** Drops expired entries (insertion order is expiry order: one fixed lifetime). */
  sweep(now: number): void {
    for (const [n, e] of this.map) {
      if (e.expires > now) break;
      this.map.delete(n);
    }
  }
  /** A fresh nonce for slot, or 0 when the table is full of live nonces. */
  issue(slot: number, now: number, lifetimeMs: number, startedAt: number, kind: 'wake' | 'rekey'): number {
    if (this.map.size >= this.max) {
      this.sweep(now);
      if (this.map.size >= this.max) return 0;
    }
    let n = randomNonZeroU32();
    while (this.map.has(n)) n = randomNonZeroU32();
    this.map.set(n, { slot, expires: now + lifetimeMs, startedAt, kind });
    return n;
  }
  /** Checks and consumes a returned nonce for slot (nonce != 0). */
  consume(nonce: number, slot: number, now: number): ConsumeResult {
    const e = this.map.get(nonce);
    if (!e) return 'unknown';
    if (e.expires <= now) {
      this.map.delete(nonce);
      return 'expired';
    }
    // A nonce sent to another CTA stays outstanding for that CTA.
    if (e.slot !== slot) return 'wrong_cta';
    this.map.delete(nonce);
    return e;
  }
  /** As consume(), without consuming: null when the nonce is live for slot. */
  peek(nonce: number, slot: number, now: number): 'unknown' | 'expired' | 'wrong_cta' | null {
    const e = this.map.get(nonce);
    if (!e) return 'unknown';
    if (e.expires <= now) return 'expired';
    return e.slot !== slot ? 'wrong_cta' : null;
  }
  /** Forgets a nonce (e.g. the other outstanding nonces of a CTA whose exchange completed). */
  drop(nonce: number): void {
    this.map.delete(nonce);
  }
  /** Forgets every nonce of a slot (linear; used on unregister only). */
  dropSlot(slot: number): void {
    for (const [n, e] of this.map) if (e.slot === slot) this.map.delete(n);
  }
}
