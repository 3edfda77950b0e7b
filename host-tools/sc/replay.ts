// Bounded caches on the AP Request path.
//
// ReplayCache: the Kerberos replay cache (RFC 4120 3.2.3). Keyed by client
// principal + ctime + cusec + a hash of the authenticator ciphertext; entries
// live 2 x the allowed clock skew. Every entry has the same lifetime, so Map
// insertion order is expiry order and sweeping is a walk from the front. When
// full of live entries it refuses new ones (add() returns false) rather than
// forgetting an authenticator that could then be replayed.
//
// ResponseCache: the AP Reply already sent for a byte-identical AP Request, so a
// CTA's retransmission gets the same bytes again (idempotent). Small and
// bounded; evicting an entry only costs idempotence, never safety (a
// retransmission then meets the replay cache).

export class ReplayCache {
  private map = new Map<string, number>();
  readonly max: number;
  constructor(max = 1 << 20) {
    this.max = max;
  }
  get size(): number {
    return this.map.size;
  }
  sweep(now: number): void {
    for (const [k, exp] of this.map) {
      if (exp > now) break;
      this.map.delete(k);
    }
  }
  has(key: string, now: number): boolean {
    const exp = this.map.get(key);
    if (exp === undefined) return false;
    if (exp <= now) {
      this.map.delete(key);
      return false;
    }
    return true;
  }
  /** Records key until expires; false when the cache is full of live entries. */
  add(key: string, expires: number, now: number): boolean {
    if (this.map.size >= this.max) {
      this.sweep(now);
      if (this.map.size >= this.max) return false;
    }
    this.map.set(key, expires);
    return true;
  }
}

/** request: a copy of the AP Request answered (the key is only part of it). */
export type CachedReply = { request: Uint8Array; reply: Uint8Array; expires: number; address: string; port: number };

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export class ResponseCache {
  private map = new Map<string, CachedReply>();
  readonly max: number;
  constructor(max = 8192) {
    this.max = max;
  }
  get size(): number {
    return this.map.size;
  }
  /** The reply cached under key for exactly this request (byte-identical), or null. */
  get(key: string, now: number, request: Uint8Array): CachedReply | null {
    const e = this.map.get(key);
    if (!e) return null;
    if (e.expires <= now) {
      this.map.delete(key);
      return null;
    }
    return sameBytes(e.request, request) ? e : null;
  }
  set(key: string, value: CachedReply): void {
    if (this.map.size >= this.max) {
      // Oldest first (insertion order); one out per one in keeps this O(1).
      const first = this.map.keys().next();
      if (!first.done) this.map.delete(first.value);
    }
    this.map.set(key, value);
  }
}
