// CSPRNG bytes for the SC's hot path: nonces, SPIs and subkeys come from
// node:crypto.randomFillSync, drawn from a pooled buffer so a nonce costs a few
// array reads instead of a syscall. Pool bytes are zeroed once handed out.
import { randomFillSync } from 'node:crypto';

const POOL = 8192;
const pool = new Uint8Array(POOL);
let pos = POOL;

function refill(): void {
  randomFillSync(pool);
  pos = 0;
}

/** n fresh random bytes (a new array). */
export function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  if (n > POOL / 4) {
    randomFillSync(out);
    return out;
  }
  if (pos + n > POOL) refill();
  out.set(pool.subarray(pos, pos + n));
  pool.fill(0, pos, pos + n);
  pos += n;
  return out;
}

/** A uniformly random u32 in [1, 2^32 - 1] (never 0, the out-of-bounds nonce). */
export function randomNonZeroU32(): number {
  for (;;) {
    if (pos + 4 > POOL) refill();
    const v = ((pool[pos] << 24) | (pool[pos + 1] << 16) | (pool[pos + 2] << 8) | pool[pos + 3]) >>> 0;
    pool.fill(0, pos, pos + 4);
    pos += 4;
    if (v !== 0) return v;
  }
}
