// Hash-based primitives written once above the CryptoBackend: HMAC (RFC 2104),
// PBKDF2 (RFC 8018), HKDF-Expand (RFC 5869). Espruino subset: no default
// parameters, no spread, no Map.
import type { CryptoBackend } from './backend.ts';
import { CryptoError } from '../errors.ts';
import { concat, writeU32 } from '../bytes.ts';

export type HashName = 'sha1' | 'sha256' | 'sha384';

export interface HashInfo {
  /** HMAC block length in bytes. */
  blockLen: number;
  /** Digest length in bytes. */
  outLen: number;
}

/** Block and digest sizes of the hashes the enctypes use (host tools; the firmware computes them). */
export const HASH_INFO: { [name: string]: HashInfo } = {
  sha1: { blockLen: 64, outLen: 20 },
  sha256: { blockLen: 64, outLen: 32 },
  sha384: { blockLen: 128, outLen: 48 },
};

/** One digest through the backend; sha384 throws CryptoError where the backend lacks it. */
export function digest(b: CryptoBackend, h: HashName, data: Uint8Array): Uint8Array {
  if (h === 'sha1') return b.sha1(data);
  if (h === 'sha256') return b.sha256(data);
  if (h === 'sha384' && b.sha384) return b.sha384(data);
  throw new CryptoError(h + ' is not available on backend ' + b.name);
}

/**
 * A key prepared for HMAC: the key-XOR-ipad and key-XOR-opad blocks, computed
 * once so that each MAC costs two native hash calls and no per-byte JS loop.
 */
export interface HmacKey {
  hash: HashName;
  inner: Uint8Array;
  outer: Uint8Array;
}

/**
 * (key XOR the pad byte repeated) || data, the key already at most one block:
 * a fresh buffer, XORed four bytes at a time (block lengths are multiples of 4).
 */
function padded(key: Uint8Array, blockLen: number, word: number, data: Uint8Array | null): Uint8Array {
  const m = new Uint8Array(blockLen + (data ? data.length : 0));
  m.set(key);
  const w = new Uint32Array(m.buffer, 0, blockLen >> 2);
  for (let i = 0; i < w.length; i++) w[i] ^= word;
  if (data) m.set(data, blockLen);
  return m;
}

/** HMAC block length: 128 for sha384, 64 for sha1 and sha256; CryptoError for another name. */
function blockLen(h: HashName): number {
  if (h !== 'sha1' && h !== 'sha256' && h !== 'sha384') throw new CryptoError('unknown hash ' + h);
  return h === 'sha384' ? 128 : 64;
}

export function hmacPrepare(b: CryptoBackend, h: HashName, key: Uint8Array): HmacKey {
  const bl = blockLen(h);
  const k = key.length > bl ? digest(b, h, key) : key;
  return { hash: h, inner: padded(k, bl, 0x36363636, null), outer: padded(k, bl, 0x5c5c5c5c, null) };
}

/** HMAC with a prepared key: H(K^opad || H(K^ipad || data)). */
export function hmacWith(b: CryptoBackend, k: HmacKey, data: Uint8Array): Uint8Array {
  const inner = digest(b, k.hash, concat([k.inner, data]));
  return digest(b, k.hash, concat([k.outer, inner]));
}

/** One-shot HMAC (RFC 2104): no prepared pads kept, two buffers and two digests. */
export function hmac(b: CryptoBackend, h: HashName, key: Uint8Array, data: Uint8Array): Uint8Array {
  // blockLen(h) written out (the firmware bundle then has no blockLen).
  if (h !== 'sha1' && h !== 'sha256' && h !== 'sha384') throw new CryptoError('unknown hash ' + h);
  const bl = h === 'sha384' ? 128 : 64;
  const k = key.length > bl ? digest(b, h, key) : key;
  const m = padded(k, bl, 0x36363636, data);
  const inner = digest(b, h, m);
  if (m.length < bl + inner.length) return digest(b, h, padded(k, bl, 0x5c5c5c5c, inner));
  // The outer block in the inner one's buffer (no second buffer): ipad -> opad, then H(inner).
  const w = new Uint32Array(m.buffer, m.byteOffset, bl >> 2);
  for (let i = 0; i < w.length; i++) w[i] ^= 0x6a6a6a6a;
  m.set(inner, bl);
  return digest(b, h, m.subarray(0, bl + inner.length));
}

export function hmacSha1(b: CryptoBackend, key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(b, 'sha1', key, data);
}

/** PBKDF2 (RFC 8018 section 5.2) with HMAC-<hash> as the PRF. */
export function pbkdf2(
  b: CryptoBackend,
  h: HashName,
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
  outLen: number,
): Uint8Array {
  if (!(iterations >= 1) || iterations !== Math.floor(iterations)) throw new CryptoError('bad PBKDF2 iteration count');
  if (!(outLen >= 1) || outLen > 1024) throw new CryptoError('bad PBKDF2 output length');
  const hi = HASH_INFO[h];
  const k = hmacPrepare(b, h, password);
  // Reusable input buffers: [K^ipad | U] and [K^opad | inner digest].
  const bi = new Uint8Array(hi.blockLen + hi.outLen);
  bi.set(k.inner);
  const bo = new Uint8Array(hi.blockLen + hi.outLen);
  bo.set(k.outer);
  const out = new Uint8Array(outLen);
  const first = new Uint8Array(salt.length + 4);
  first.set(salt);
  const blocks = Math.ceil(outLen / hi.outLen);
  for (let blk = 1; blk <= blocks; blk++) {
    writeU32(first, salt.length, blk);
    let u = hmacWith(b, k, first);
    const t = new Uint8Array(u.length);
    t.set(u);
    for (let it = 1; it < iterations; it++) {
      bi.set(u, hi.blockLen);
      bo.set(digest(b, h, bi), hi.blockLen);
      u = digest(b, h, bo);
      for (let j = 0; j < t.length; j++) t[j] ^= u[j];
    }
    const off = (blk - 1) * hi.outLen;
    out.set(t.subarray(0, Math.min(hi.outLen, outLen - off)), off);
  }
  k.inner.fill(0);
  k.outer.fill(0);
  return out;
}

/** HKDF-Expand with HMAC-SHA256 (RFC 5869 section 2.3). */
export function hkdfExpandSha256(b: CryptoBackend, prk: Uint8Array, infoBytes: Uint8Array, len: number): Uint8Array {
  if (!(len >= 1) || len > 255 * 32) throw new CryptoError('bad HKDF output length');
  // One-shot HMACs (a few blocks): no prepared pads, so the firmware bundle needs no
  // hmacPrepare/hmacWith at all.
  const out = new Uint8Array(len);
  let t: Uint8Array = new Uint8Array(0);
  const ctr = new Uint8Array(1);
  let off = 0;
  while (off < len) {
    ctr[0] = ctr[0] + 1;
    t = hmac(b, 'sha256', prk, concat([t, infoBytes, ctr]));
    out.set(t.subarray(0, Math.min(t.length, len - off)), off);
    off += t.length;
  }
  return out;
}
