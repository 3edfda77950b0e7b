// Bounded caches on the AP Request path.
//
// ReplayCache: the Kerberos replay cache (RFC 4120 3.2.3). Keyed by client
// principal + ctime + cusec + the authenticator ciphertext's length and its last
// 12 bytes (its HMAC-SHA1-96 checksum, checked before the entry is looked up:
// two verified ciphertexts with one checksum are an HMAC collision); entries
// live 2 x the allowed clock skew. Every entry has the same lifetime, so Map
// insertion order is expiry order and sweeping is a walk from the front. When
// full of live entries it refuses new ones (add() returns false) rather than
// forgetting an authenticator that could then be replayed.
//
// ResponseCache: the AP Reply already sent for a byte-identical AP Request, so a
// CTA's retransmission gets the same bytes again (idempotent). Small and
// bounded; evicting an entry (or two requests sharing a key, the later one
// replacing the earlier) only costs idempotence, never safety (a
// retransmission then meets the replay cache).

/** Bytes of an authenticator's ciphertext kept per replay-cache entry: its last ones (the HMAC-96 checksum). */
export const REPLAY_TAIL = 12;

export class ReplayCache {
  // Entries in a ring of typed-array columns, oldest at `head` (every entry has
  // the same lifetime, so ring order is expiry order), chained per bucket of a
  // numeric hash of ctime, cusec and the ciphertext's tail; a lookup compares
  // every field. No string, digest or object per request. Columns start small
  // and double up to max.
  private cap = 0;
  private head = 0;
  private count = 0;
  private exp = new Float64Array(0);
  private ctime = new Float64Array(0);
  private cusec = new Int32Array(0);
  private clen = new Int32Array(0);
  private tail = new Uint8Array(0);
  private client: string[] = [];
  private next = new Int32Array(0);
  private buckets = new Int32Array(0);
  private mask = 0;
  readonly max: number;
  constructor(max = 1 << 20) {
    this.max = max;
    this.grow(Math.max(1, Math.min(max, 1024)));
  }
  get size(): number {
    return this.count;
  }
  private grow(cap: number): void {
    const o = this;
    const exp = new Float64Array(cap), ctime = new Float64Array(cap), cusec = new Int32Array(cap), clen = new Int32Array(cap);
    const tail = new Uint8Array(cap * REPLAY_TAIL), next = new Int32Array(cap);
    const client: string[] = new Array(cap);
    let nb = 1;
    while (nb < cap) nb <<= 1;
    const buckets = new Int32Array(nb).fill(-1);
    const mask = nb - 1;
    for (let k = 0; k < o.count; k++) {
      const i = (o.head + k) % o.cap;
      exp[k] = o.exp[i];
      ctime[k] = o.ctime[i];
      cusec[k] = o.cusec[i];
      clen[k] = o.clen[i];
      tail.set(o.tail.subarray(i * REPLAY_TAIL, i * REPLAY_TAIL + REPLAY_TAIL), k * REPLAY_TAIL);
      client[k] = o.client[i];
    }
    // chains rebuilt oldest first, so each chain is newest-first again
    for (let k = 0; k < o.count; k++) {
      const h = hashOf(ctime[k], cusec[k], tail, k * REPLAY_TAIL) & mask;
      next[k] = buckets[h];
      buckets[h] = k;
    }
    o.exp = exp;
    o.ctime = ctime;
    o.cusec = cusec;
    o.clen = clen;
    o.tail = tail;
    o.client = client;
    o.next = next;
    o.buckets = buckets;
    o.mask = mask;
    o.cap = cap;
    o.head = 0;
  }
  /** Removes the oldest entry (the last of its chain). */
  private shift(): void {
    const i = this.head;
    const h = hashOf(this.ctime[i], this.cusec[i], this.tail, i * REPLAY_TAIL) & this.mask;
    let j = this.buckets[h];
    if (j === i) this.buckets[h] = this.next[i];
    else {
      while (j >= 0 && this.next[j] !== i) j = this.next[j];
      if (j >= 0) this.next[j] = this.next[i];
    }
    this.client[i] = '';
    this.head = (i + 1) % this.cap;
    this.count--;
  }
  sweep(now: number): void {
    while (this.count > 0 && this.exp[this.head] <= now) this.shift();
  }
  private find(client: string, ctime: number, cusec: number, cipher: Uint8Array, h: number, now: number): number {
    const n = cipher.length;
    const t0 = n > REPLAY_TAIL ? n - REPLAY_TAIL : 0;
    for (let i = this.buckets[h]; i >= 0; i = this.next[i]) {
      if (this.ctime[i] !== ctime || this.cusec[i] !== cusec || this.clen[i] !== n || this.exp[i] <= now) continue;
      const o = i * REPLAY_TAIL;
      let d = 0;
      for (let k = 0; k < REPLAY_TAIL; k++) d |= this.tail[o + k] ^ (t0 + k < n ? cipher[t0 + k] : 0);
      if (d === 0 && this.client[i] === client) return i;
    }
    return -1;
  }
  /** Whether (client, ctime, cusec, authenticator ciphertext) is recorded and unexpired. */
  has(client: string, ctime: number, cusec: number, cipher: Uint8Array, now: number): boolean {
    const h = hashCipher(ctime, cusec, cipher) & this.mask;
    if (this.find(client, ctime, cusec, cipher, h, now) >= 0) return true;
    // (an expired entry met here is gone from the front already or on the next sweep)
    if (this.count > 0 && this.exp[this.head] <= now) this.sweep(now);
    return false;
  }
  /** Records the authenticator until expires; false when the cache is full of live entries. */
  add(client: string, ctime: number, cusec: number, cipher: Uint8Array, expires: number, now: number): boolean {
    if (this.count >= this.max) {
      this.sweep(now);
      if (this.count >= this.max) return false;
    }
    if (this.count >= this.cap) this.grow(Math.min(this.max, this.cap * 2));
    const i = (this.head + this.count) % this.cap;
    this.count++;
    this.exp[i] = expires;
    this.ctime[i] = ctime;
    this.cusec[i] = cusec;
    const n = cipher.length;
    this.clen[i] = n;
    const o = i * REPLAY_TAIL;
    const t0 = n > REPLAY_TAIL ? n - REPLAY_TAIL : 0;
    for (let k = 0; k < REPLAY_TAIL; k++) this.tail[o + k] = t0 + k < n ? cipher[t0 + k] : 0;
    this.client[i] = client;
    const h = hashOf(ctime, cusec, this.tail, o) & this.mask;
    this.next[i] = this.buckets[h];
    this.buckets[h] = i;
    return true;
  }
}

function mix(ctime: number, cusec: number, t: number): number {
  let h = (t ^ Math.imul(cusec, 0x9e3779b1) ^ Math.imul(ctime % 4294967296 | 0, 0x85ebca6b)) | 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 13)) >>> 0;
}
function hashOf(ctime: number, cusec: number, tail: Uint8Array, o: number): number {
  return mix(ctime, cusec, (tail[o] << 24) | (tail[o + 1] << 16) | (tail[o + 2] << 8) | tail[o + 3]);
}
function hashCipher(ctime: number, cusec: number, c: Uint8Array): number {
  const n = c.length;
  const t0 = n > REPLAY_TAIL ? n - REPLAY_TAIL : 0;
  let t = 0;
  for (let k = 0; k < 4; k++) t = (t << 8) | (t0 + k < n ? c[t0 + k] : 0);
  return mix(ctime, cusec, t);
}

/** request: a copy of the AP Request answered (the key is only part of it). */
export type CachedReply = { request: Uint8Array; reply: Uint8Array; expires: number; address: string; port: number };

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** A ResponseCache key: 30 bits of a request's last bytes (its HMAC when well-formed); a Smi, no string. */
export function responseKey(req: Uint8Array): number {
  const n = req.length;
  let h = 0;
  for (let k = n >= 4 ? n - 4 : 0; k < n; k++) h = (h << 8) | req[k];
  return h & 0x3fffffff;
}

export class ResponseCache {
  private map = new Map<number, CachedReply>();
  readonly max: number;
  constructor(max = 8192) {
    this.max = max;
  }
  get size(): number {
    return this.map.size;
  }
  /** The reply cached under key for exactly this request (byte-identical), or null. */
  get(key: number, now: number, request: Uint8Array): CachedReply | null {
    const e = this.map.get(key);
    if (!e) return null;
    if (e.expires <= now) {
      this.map.delete(key);
      return null;
    }
    return sameBytes(e.request, request) ? e : null;
  }
  set(key: number, value: CachedReply): void {
    if (this.map.size >= this.max) {
      // Oldest first (insertion order); one out per one in keeps this O(1).
      const first = this.map.keys().next();
      if (!first.done) this.map.delete(first.value);
    }
    this.map.set(key, value);
  }
}
