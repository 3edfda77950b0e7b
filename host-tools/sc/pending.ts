// AP Replies awaiting their SA Recovered, found by the SA Recovered HMAC expected
// for them (header 04 01 10). Keyed by 30 bits of that HMAC (a Smi: no string per
// exchange), with the whole 20 bytes kept in the entry and compared in constant
// time; two live entries sharing the 30 bits (rare) put the later one in a
// second map keyed by the whole HMAC. One fixed lifetime: insertion order is
// expiry order (per map).
import { HMAC_LEN } from '../../firmware/proto/pktc.ts';

export type PendingEntry = {
  /** The SA Recovered HMAC expected (HMAC_LEN bytes). */
  ack: Uint8Array;
  expires: number;
  /** Set when the entry lives in the collision map. */
  xkey: string | null;
};

function keyOf(h: Uint8Array, off: number): number {
  return ((h[off] << 22) | (h[off + 1] << 14) | (h[off + 2] << 6) | (h[off + 3] >> 2)) & 0x3fffffff;
}
function same(a: Uint8Array, h: Uint8Array, off: number): boolean {
  let d = 0;
  for (let i = 0; i < HMAC_LEN; i++) d |= a[i] ^ h[off + i];
  return d === 0;
}
function latin1(h: Uint8Array, off: number): string {
  return Buffer.from(h.buffer, h.byteOffset + off, HMAC_LEN).toString('latin1');
}

export class PendingTable<P extends PendingEntry> {
  private main = new Map<number, P>();
  private extra = new Map<string, P>();
  get size(): number {
    return this.main.size + this.extra.size;
  }
  add(p: P): void {
    if (p.ack.length !== HMAC_LEN) throw new Error('pending: bad HMAC length');
    const k = keyOf(p.ack, 0);
    const o = this.main.get(k);
    if (o === undefined) {
      p.xkey = null;
      this.main.set(k, p);
    } else {
      p.xkey = latin1(p.ack, 0);
      const old = this.extra.get(p.xkey);
      if (old !== undefined) old.xkey = null; // (a 160-bit HMAC collision: replaced, as a Map would)
      this.extra.set(p.xkey, p);
    }
  }
  /** The entry whose HMAC equals h[off..off+HMAC_LEN) (h has that many bytes from off). */
  get(h: Uint8Array, off: number): P | undefined {
    if (h.length - off < HMAC_LEN) return undefined;
    const p = this.main.get(keyOf(h, off));
    if (p !== undefined && same(p.ack, h, off)) return p;
    if (this.extra.size === 0) return undefined;
    return this.extra.get(latin1(h, off));
  }
  delete(p: P): void {
    if (p.xkey !== null) {
      if (this.extra.get(p.xkey) === p) this.extra.delete(p.xkey);
      return;
    }
    const k = keyOf(p.ack, 0);
    if (this.main.get(k) === p) this.main.delete(k);
  }
  /** Every entry, oldest first per map (a snapshot: deleting while iterating is fine). */
  *values(): IterableIterator<P> {
    for (const p of this.main.values()) yield p;
    if (this.extra.size) for (const p of [...this.extra.values()]) yield p;
  }
  clear(): void {
    this.main.clear();
    this.extra.clear();
  }
}
