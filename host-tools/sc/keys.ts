// In-memory key material of the SC, never persisted: per CTA slot, the session
// key of its last accepted ticket (for Rekey) and its SA keys and ESP sequence
// state. One preallocated slab (grown by 1.5x) instead of a Uint8Array per CTA:
// a typed array costs ~200 bytes of V8 overhead, a slab record costs its bytes.
//
// Record layout (bytes): [0] session etype, [1] session key length,
// [2..34) session key, [34] flags (1 = session key, 2 = SA), [35] SA subkey
// length, [36..68) the AP-REP subkey the current SA was derived from (the four
// 72-byte SA keys are re-derived on demand by the caller and cached for active
// CTAs only: 32 bytes per CTA instead of 72).
// u32 columns: ticket end (s), ESP tx seq, rx highest seq, rx window bitmap lo/hi.

const REC = 68;
const SK = 2;
const FLAGS = 34;
const SUBLEN = 35;
const SUB = 36;
const U32 = 5;

export class KeyStore {
  private idx = new Uint32Array(0); // slot -> record + 1
  private slab = new Uint8Array(0);
  private meta = new Uint32Array(0);
  private cap = 0;
  private used = 0;
  private free: number[] = [];

  private ensureSlot(slot: number): void {
    if (slot < this.idx.length) return;
    let n = Math.max(1024, this.idx.length);
    while (n <= slot) n = Math.ceil(n * 1.5);
    const a = new Uint32Array(n);
    a.set(this.idx);
    this.idx = a;
  }
  private rec(slot: number, create: boolean): number {
    if (slot < this.idx.length && this.idx[slot]) return this.idx[slot] - 1;
    if (!create) return -1;
    this.ensureSlot(slot);
    let r = this.free.pop();
    if (r === undefined) {
      r = this.used++;
      if (r >= this.cap) {
        let cap = Math.max(256, this.cap);
        while (cap <= r) cap = Math.ceil(cap * 1.5);
        const s = new Uint8Array(cap * REC);
        s.set(this.slab);
        this.slab.fill(0);
        this.slab = s;
        const m = new Uint32Array(cap * U32);
        m.set(this.meta);
        this.meta = m;
        this.cap = cap;
      }
    }
    this.slab.fill(0, r * REC, r * REC + REC);
    this.meta.fill(0, r * U32, r * U32 + U32);
    this.idx[slot] = r + 1;
    return r;
  }

  /** Keeps the session key of the CTA's last accepted ticket (for Rekey). */
  setSession(slot: number, etype: number, key: Uint8Array, ticketEndMs: number): void {
    if (key.length > 32 || etype > 255) return; // not representable: Rekey falls back to Wake Up
    const r = this.rec(slot, true);
    const o = r * REC;
    this.slab[o] = etype;
    this.slab[o + 1] = key.length;
    this.slab.fill(0, o + SK, o + SK + 32);
    this.slab.set(key, o + SK);
    this.slab[o + FLAGS] |= 1;
    this.meta[r * U32] = Math.floor(ticketEndMs / 1000);
  }
  /** The held session key (a copy) or null. */
  getSession(slot: number): { etype: number; key: Uint8Array; ticketEndMs: number } | null {
    const r = this.rec(slot, false);
    if (r < 0) return null;
    const o = r * REC;
    if (!(this.slab[o + FLAGS] & 1)) return null;
    return { etype: this.slab[o], key: this.slab.slice(o + SK, o + SK + this.slab[o + 1]), ticketEndMs: this.meta[r * U32] * 1000 };
  }
  /** Installs a new SA (its AP-REP subkey) and resets ESP sequence state. */
  setSa(slot: number, subkey: Uint8Array): void {
    if (subkey.length > 32) throw new Error('SA subkey longer than 32 bytes');
    const r = this.rec(slot, true);
    const o = r * REC;
    this.slab.fill(0, o + SUB, o + SUB + 32);
    this.slab.set(subkey, o + SUB);
    this.slab[o + SUBLEN] = subkey.length;
    this.slab[o + FLAGS] |= 2;
    const m = r * U32;
    this.meta[m + 1] = 0;
    this.meta[m + 2] = 0;
    this.meta[m + 3] = 0;
    this.meta[m + 4] = 0;
  }
  hasSa(slot: number): boolean {
    const r = this.rec(slot, false);
    return r >= 0 && (this.slab[r * REC + FLAGS] & 2) !== 0;
  }
  /** The current SA's subkey (a copy), or null. */
  saSubkey(slot: number): Uint8Array | null {
    const r = this.rec(slot, false);
    if (r < 0 || !(this.slab[r * REC + FLAGS] & 2)) return null;
    const o = r * REC;
    return this.slab.slice(o + SUB, o + SUB + this.slab[o + SUBLEN]);
  }
  /** Next outbound ESP sequence number (1, 2, ...); 0 when exhausted (re-key needed). */
  nextTxSeq(slot: number): number {
    const r = this.rec(slot, false);
    if (r < 0) return 0;
    const m = r * U32 + 1;
    if (this.meta[m] === 0xffffffff) return 0;
    return ++this.meta[m];
  }
  /**
   * RFC 4303 64-packet anti-replay window on inbound ESP: check(seq) says whether
   * seq is new and inside the window; accept(seq) records it (call only after the
   * ICV verified).
   */
  rxCheck(slot: number, seq: number): boolean {
    const r = this.rec(slot, false);
    if (r < 0 || seq === 0) return false;
    const m = r * U32;
    const top = this.meta[m + 2];
    if (seq > top) return true;
    const d = top - seq;
    if (d >= 64) return false;
    const bit = d < 32 ? this.meta[m + 3] & (1 << d) : this.meta[m + 4] & (1 << (d - 32));
    return bit === 0;
  }
  rxAccept(slot: number, seq: number): void {
    const r = this.rec(slot, false);
    if (r < 0) return;
    const m = r * U32;
    const top = this.meta[m + 2];
    let lo = this.meta[m + 3];
    let hi = this.meta[m + 4];
    if (seq > top) {
      const sh = seq - top;
      if (sh >= 64) {
        lo = 0;
        hi = 0;
      } else if (sh >= 32) {
        hi = sh === 32 ? lo : lo << (sh - 32);
        lo = 0;
      } else {
        hi = ((hi << sh) | (lo >>> (32 - sh))) >>> 0;
        lo = (lo << sh) >>> 0;
      }
      lo = (lo | 1) >>> 0;
      this.meta[m + 2] = seq;
    } else {
      const d = top - seq;
      if (d < 32) lo = (lo | (1 << d)) >>> 0;
      else hi = (hi | (1 << (d - 32))) >>> 0;
    }
    this.meta[m + 3] = lo >>> 0;
    this.meta[m + 4] = hi >>> 0;
  }
  /** Wipes everything held for slot. */
  clear(slot: number): void {
    const r = this.rec(slot, false);
    if (r < 0) return;
    this.slab.fill(0, r * REC, r * REC + REC);
    this.meta.fill(0, r * U32, r * U32 + U32);
    this.idx[slot] = 0;
    this.free.push(r);
  }
  /** Bytes held by the slab and index (for memory accounting). */
  get bytes(): number {
    return this.slab.byteLength + this.meta.byteLength + this.idx.byteLength;
  }
  wipeAll(): void {
    this.slab.fill(0);
    this.meta.fill(0);
  }
}
