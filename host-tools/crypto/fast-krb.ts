// Host-only fast paths of the Kerberos crypto layer for the aes-sha1 enctypes
// (17, 18: RFC 3961 simplified profile + RFC 3962) on node:crypto, for the
// Signaling Controller's hot path. Byte-identical to the generic code in
// firmware/proto/crypto (test/sc-crypto-fast.test.ts); what differs is only how
// many times it crosses into node:crypto, which dominates on small messages
// (a cipher context costs several us to create, a one-shot digest ~1 us):
//  - key derivation in batches: every DK(base, usage || kind) a message needs is
//    one ECB pass over the n-folded constants under one context of the base key
//    (two passes for the 32-byte keys), no per-usage cache keyed by key bytes;
//  - AES-CTS decryption is two updates of one ECB context (all full blocks, then
//    the rebuilt second-to-last block) plus an XOR; encryption one CBC update;
//  - HMAC-SHA1 in JS from the SHA-1 states after K^ipad / K^opad, compressed once
//    per key: no native call, no Buffer per MAC (three HMACs per AP Request).
// Enctypes 19 and 20 are not handled here (isFastEtype() says so): callers use
// the generic layer for them.
import { createCipheriv, createDecipheriv, type Cipher, type Decipher } from 'node:crypto';
import { nfold } from '../../firmware/proto/crypto/nfold.ts';
import { CryptoError } from '../../firmware/proto/errors.ts';
import { randomBytes } from '../sc/rand.ts';
import { aesCbcEncryptZeroIv, aesDecryptBlocks, aesEncryptBlocks } from './aes-js.ts';

const CONF = 16;
const MAC = 12; // HMAC-SHA1-96
const ZERO16 = new Uint8Array(16);
const CN1 = new Uint8Array(16); // decrypt(): the rebuilt second-to-last block, zeroed after use


/** True for the enctypes this module implements (17, 18). */
export function isFastEtype(etype: number): boolean {
  return etype === 17 || etype === 18;
}
function keyLen(etype: number): number {
  if (etype === 17) return 16;
  if (etype === 18) return 32;
  throw new CryptoError('fast-krb: unsupported enctype ' + etype);
}
function ecbName(len: number): string {
  return len === 16 ? 'aes-128-ecb' : 'aes-256-ecb';
}

// ---- derivation constants: nfold(usage || kind, 16), memoised ----

/** The derivation kinds of RFC 3961: Kc 0x99, Ke 0xaa, Ki 0x55. */
export const KIND = { KC: 0x99, KE: 0xaa, KI: 0x55 } as const;
const folded = new Map<number, Uint8Array>();
function foldedConstant(usage: number, kind: number): Uint8Array {
  const id = usage * 256 + kind;
  let f = folded.get(id);
  if (!f) {
    const c = new Uint8Array([(usage >>> 24) & 255, (usage >>> 16) & 255, (usage >>> 8) & 255, usage & 255, kind]);
    f = nfold(c, 16);
    if (folded.size < 1024) folded.set(id, f);
  }
  return f;
}

/**
 * DK(base, usage_i || kind_i) for every (usage, kind) pair, each the enctype's key
 * length (for 17/18 Ke, Ki and Kc all are): one cipher context, one ECB pass (two
 * for 32-byte keys: K2 = E(K1)). Returns fresh arrays; the caller wipes them.
 *
 * oneShot: base is a key derived from once (the fresh AP-REP subkey; a ticket's
 * session key, derived again only after its cache entry is evicted): up to six
 * blocks are encrypted in JS (aes-js.ts, ~0.4 us a block) instead of through a
 * node:crypto context made for one use (~4 us). The long-lived service key keeps
 * the native path.
 */
export function deriveRaw(etype: number, base: Uint8Array, usages: number[], kinds: number[], oneShot?: boolean): Uint8Array[] {
  const len = keyLen(etype);
  if (base.length !== len) throw new CryptoError('fast-krb: bad key length');
  const n = usages.length;
  if (oneShot && n * (len >> 4) <= 6) return deriveJs(len, base, usages, kinds);
  const input = Buffer.allocUnsafe(n * 16);
  for (let i = 0; i < n; i++) input.set(foldedConstant(usages[i], kinds[i]), i * 16);
  const c = createCipheriv(ecbName(len), base, null);
  c.setAutoPadding(false);
  const k1 = c.update(input);
  const k2 = len === 32 ? c.update(k1) : null;
  const out: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const o = new Uint8Array(len);
    o.set(k1.subarray(i * 16, i * 16 + 16), 0);
    if (k2) o.set(k2.subarray(i * 16, i * 16 + 16), 16);
    out[i] = o;
  }
  k1.fill(0);
  if (k2) k2.fill(0);
  input.fill(0);
  return out;
}

const DK_IN = new Uint8Array(96);
const DK_OUT = new Uint8Array(96);
/** deriveRaw's one-shot path: the same blocks through aes-js.ts (scratch wiped). */
function deriveJs(len: number, base: Uint8Array, usages: number[], kinds: number[]): Uint8Array[] {
  const n = usages.length;
  const m = n << 4;
  const input = DK_IN.subarray(0, m);
  const k = DK_OUT.subarray(0, m);
  for (let i = 0; i < n; i++) input.set(foldedConstant(usages[i], kinds[i]), i << 4);
  aesEncryptBlocks(base, input, k, 0);
  const out: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = new Uint8Array(len);
  if (len === 32) {
    // K2 = E(K1): input becomes K1, encrypted again.
    input.set(k);
    aesEncryptBlocks(base, input, k, 0);
    for (let i = 0; i < n; i++) {
      const o = out[i];
      const a = i << 4;
      for (let j = 0; j < 16; j++) {
        o[j] = input[a + j];
        o[16 + j] = k[a + j];
      }
    }
  } else {
    for (let i = 0; i < n; i++) {
      const o = out[i];
      const a = i << 4;
      for (let j = 0; j < 16; j++) o[j] = k[a + j];
    }
  }
  DK_IN.fill(0);
  DK_OUT.fill(0);
  return out;
}

// ---- HMAC-SHA1 from prepared midstates, in JS ----
//
// SHA-1 has no secret-dependent table lookups or branches, so a JS compression
// function is as constant-time as the native one; what it saves is two native
// one-shot digests and their output Buffers per HMAC. The key's K^ipad and K^opad
// blocks are compressed once (hmacPads); each HMAC then compresses only the data
// blocks, the padding and one outer block.

/** SHA-1 states after K^ipad (words 0..4) and after K^opad (words 5..9). */
export type HmacPads = Int32Array;

const W = new Int32Array(80);
const TAIL = new Uint8Array(128);

/** One SHA-1 compression of b[off..off+64) into st[so..so+5). */
function compress(st: Int32Array, so: number, b: Uint8Array, off: number): void {
  const w = W;
  for (let i = 0; i < 16; i++) {
    const j = off + (i << 2);
    w[i] = (b[j] << 24) | (b[j + 1] << 16) | (b[j + 2] << 8) | b[j + 3];
  }
  for (let i = 16; i < 80; i++) {
    const x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
    w[i] = (x << 1) | (x >>> 31);
  }
  // five rounds per iteration, the variables renamed instead of shifted
  let a = st[so], bb = st[so + 1], c = st[so + 2], d = st[so + 3], e = st[so + 4];
  for (let i = 0; i < 20; i += 5) {
    e = (e + ((a << 5) | (a >>> 27)) + (d ^ (bb & (c ^ d))) + w[i] + 0x5a827999) | 0; bb = (bb << 30) | (bb >>> 2);
    d = (d + ((e << 5) | (e >>> 27)) + (c ^ (a & (bb ^ c))) + w[i + 1] + 0x5a827999) | 0; a = (a << 30) | (a >>> 2);
    c = (c + ((d << 5) | (d >>> 27)) + (bb ^ (e & (a ^ bb))) + w[i + 2] + 0x5a827999) | 0; e = (e << 30) | (e >>> 2);
    bb = (bb + ((c << 5) | (c >>> 27)) + (a ^ (d & (e ^ a))) + w[i + 3] + 0x5a827999) | 0; d = (d << 30) | (d >>> 2);
    a = (a + ((bb << 5) | (bb >>> 27)) + (e ^ (c & (d ^ e))) + w[i + 4] + 0x5a827999) | 0; c = (c << 30) | (c >>> 2);
  }
  for (let i = 20; i < 40; i += 5) {
    e = (e + ((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + w[i] + 0x6ed9eba1) | 0; bb = (bb << 30) | (bb >>> 2);
    d = (d + ((e << 5) | (e >>> 27)) + (a ^ bb ^ c) + w[i + 1] + 0x6ed9eba1) | 0; a = (a << 30) | (a >>> 2);
    c = (c + ((d << 5) | (d >>> 27)) + (e ^ a ^ bb) + w[i + 2] + 0x6ed9eba1) | 0; e = (e << 30) | (e >>> 2);
    bb = (bb + ((c << 5) | (c >>> 27)) + (d ^ e ^ a) + w[i + 3] + 0x6ed9eba1) | 0; d = (d << 30) | (d >>> 2);
    a = (a + ((bb << 5) | (bb >>> 27)) + (c ^ d ^ e) + w[i + 4] + 0x6ed9eba1) | 0; c = (c << 30) | (c >>> 2);
  }
  for (let i = 40; i < 60; i += 5) {
    e = (e + ((a << 5) | (a >>> 27)) + ((bb & c) | (d & (bb | c))) + w[i] + 0x8f1bbcdc) | 0; bb = (bb << 30) | (bb >>> 2);
    d = (d + ((e << 5) | (e >>> 27)) + ((a & bb) | (c & (a | bb))) + w[i + 1] + 0x8f1bbcdc) | 0; a = (a << 30) | (a >>> 2);
    c = (c + ((d << 5) | (d >>> 27)) + ((e & a) | (bb & (e | a))) + w[i + 2] + 0x8f1bbcdc) | 0; e = (e << 30) | (e >>> 2);
    bb = (bb + ((c << 5) | (c >>> 27)) + ((d & e) | (a & (d | e))) + w[i + 3] + 0x8f1bbcdc) | 0; d = (d << 30) | (d >>> 2);
    a = (a + ((bb << 5) | (bb >>> 27)) + ((c & d) | (e & (c | d))) + w[i + 4] + 0x8f1bbcdc) | 0; c = (c << 30) | (c >>> 2);
  }
  for (let i = 60; i < 80; i += 5) {
    e = (e + ((a << 5) | (a >>> 27)) + (bb ^ c ^ d) + w[i] + 0xca62c1d6) | 0; bb = (bb << 30) | (bb >>> 2);
    d = (d + ((e << 5) | (e >>> 27)) + (a ^ bb ^ c) + w[i + 1] + 0xca62c1d6) | 0; a = (a << 30) | (a >>> 2);
    c = (c + ((d << 5) | (d >>> 27)) + (e ^ a ^ bb) + w[i + 2] + 0xca62c1d6) | 0; e = (e << 30) | (e >>> 2);
    bb = (bb + ((c << 5) | (c >>> 27)) + (d ^ e ^ a) + w[i + 3] + 0xca62c1d6) | 0; d = (d << 30) | (d >>> 2);
    a = (a + ((bb << 5) | (bb >>> 27)) + (c ^ d ^ e) + w[i + 4] + 0xca62c1d6) | 0; c = (c << 30) | (c >>> 2);
  }
  st[so] = (st[so] + a) | 0;
  st[so + 1] = (st[so + 1] + bb) | 0;
  st[so + 2] = (st[so + 2] + c) | 0;
  st[so + 3] = (st[so + 3] + d) | 0;
  st[so + 4] = (st[so + 4] + e) | 0;
}

const IV = [0x67452301, 0xefcdab89 | 0, 0x98badcfe | 0, 0x10325476, 0xc3d2e1f0 | 0];

export function hmacPads(key: Uint8Array): HmacPads {
  if (key.length > 64) throw new CryptoError('fast-krb: HMAC key longer than a block');
  const p = new Uint8Array(128);
  for (let i = 0; i < 64; i++) {
    const k = i < key.length ? key[i] : 0;
    p[i] = k ^ 0x36;
    p[64 + i] = k ^ 0x5c;
  }
  const st = new Int32Array(10);
  for (let i = 0; i < 5; i++) st[i] = st[5 + i] = IV[i];
  compress(st, 0, p, 0);
  compress(st, 5, p, 64);
  p.fill(0);
  W.fill(0);
  return st;
}

const S = new Int32Array(5);

/** Writes the last (padded) blocks of a message of total bytes whose final rem bytes start at d[off]. */
function finish(d: Uint8Array, off: number, rem: number, total: number): void {
  const t = TAIL;
  for (let i = 0; i < rem; i++) t[i] = d[off + i];
  t[rem] = 0x80;
  const blocks = rem < 56 ? 1 : 2;
  const end = blocks << 6;
  for (let i = rem + 1; i < end - 8; i++) t[i] = 0;
  const bits = total * 8;
  const hi = Math.floor(bits / 4294967296);
  t[end - 8] = hi >>> 24; t[end - 7] = (hi >>> 16) & 255; t[end - 6] = (hi >>> 8) & 255; t[end - 5] = hi & 255;
  t[end - 4] = bits >>> 24; t[end - 3] = (bits >>> 16) & 255; t[end - 2] = (bits >>> 8) & 255; t[end - 1] = bits & 255;
  compress(S, 0, t, 0);
  if (blocks === 2) compress(S, 0, t, 64);
}

/** HMAC-SHA1 into S (the 5 words of the MAC); the caller reads and zeroes S. */
function hmacInto(pads: HmacPads, data: Uint8Array): void {
  for (let i = 0; i < 5; i++) S[i] = pads[i];
  const n = data.length;
  const full = n & ~63;
  for (let off = 0; off < full; off += 64) compress(S, 0, data, off);
  finish(data, full, n - full, 64 + n);
  // outer: K^opad state, one block of the 20-byte inner digest and its padding
  const t = TAIL;
  for (let i = 0; i < 5; i++) {
    const x = S[i];
    t[i * 4] = x >>> 24; t[i * 4 + 1] = (x >>> 16) & 255; t[i * 4 + 2] = (x >>> 8) & 255; t[i * 4 + 3] = x & 255;
  }
  for (let i = 0; i < 5; i++) S[i] = pads[5 + i];
  finish(t, 0, 20, 84);
  TAIL.fill(0);
  W.fill(0);
}

/** HMAC-SHA1(key, data) (20 bytes, a fresh array) with the key's prepared pads. */
export function hmacSha1(pads: HmacPads, data: Uint8Array): Uint8Array {
  hmacInto(pads, data);
  const mac = new Uint8Array(20);
  for (let i = 0; i < 5; i++) {
    const x = S[i];
    mac[i * 4] = x >>> 24; mac[i * 4 + 1] = (x >>> 16) & 255; mac[i * 4 + 2] = (x >>> 8) & 255; mac[i * 4 + 3] = x & 255;
  }
  S.fill(0);
  return mac;
}

/** The first len (a multiple of 4, <= 20; default 20) bytes of HMAC-SHA1(key, data), written into out[off..). */
export function hmacSha1Into(pads: HmacPads, data: Uint8Array, out: Uint8Array, off: number, len?: number): void {
  hmacInto(pads, data);
  const words = (len ?? 20) >> 2;
  for (let i = 0; i < words; i++) {
    const x = S[i];
    const j = off + i * 4;
    out[j] = x >>> 24; out[j + 1] = (x >>> 16) & 255; out[j + 2] = (x >>> 8) & 255; out[j + 3] = x & 255;
  }
  S.fill(0);
}

/** Constant-time check that HMAC-SHA1(pads, data) is want[wo..wo+20). */
export function hmacSha1Ok(pads: HmacPads, data: Uint8Array, want: Uint8Array, wo: number): boolean {
  hmacInto(pads, data);
  let d = 0;
  for (let i = 0; i < 5; i++) {
    const x = S[i];
    const j = wo + i * 4;
    d |= ((x >>> 24) ^ want[j]) | (((x >>> 16) & 255) ^ want[j + 1]) | (((x >>> 8) & 255) ^ want[j + 2]) | ((x & 255) ^ want[j + 3]);
  }
  S.fill(0);
  return d === 0;
}

/** Constant-time check that HMAC-SHA1-96(pads, data) is want[wo..wo+12). */
function macOk96(pads: HmacPads, data: Uint8Array, want: Uint8Array, wo: number): boolean {
  hmacInto(pads, data);
  let d = 0;
  for (let i = 0; i < 3; i++) {
    const x = S[i];
    const j = wo + i * 4;
    d |= ((x >>> 24) ^ want[j]) | (((x >>> 16) & 255) ^ want[j + 1]) | (((x >>> 8) & 255) ^ want[j + 2]) | ((x & 255) ^ want[j + 3]);
  }
  S.fill(0);
  return d === 0;
}

// ---- encrypt / decrypt under one usage ----

/**
 * Ke and Ki of one (key, usage) for enctype 17/18: decrypt() and encrypt() give the
 * same bytes as firmware/proto/crypto decrypt()/encrypt(). The ECB decipher is
 * created on the first decrypt() and reused (long-lived keys: the service key).
 */
export class UsageKey {
  readonly etype: number;
  private ke: Uint8Array;
  private ki: HmacPads;
  private dec: Decipher | null = null;
  // One CBC cipher kept for every encrypt(): OpenSSL carries the chaining value (the
  // last ciphertext block) from one update() to the next, so XORing that block into
  // the first plaintext block restarts the chain at IV 0 without a new context.
  private enc: Cipher | null = null;
  private chain = new Uint8Array(16);
  // firstUseJs: the first encrypt() and the first decrypt() run in JS (aes-js.ts)
  // and make no cipher context -- for keys most often used once (a ticket's
  // session-key usages); a second use makes the native context and keeps it.
  private jsEnc: boolean;
  private jsDec: boolean;

  constructor(etype: number, ke: Uint8Array, kiRaw: Uint8Array, firstUseJs?: boolean) {
    if (ke.length !== keyLen(etype)) throw new CryptoError('fast-krb: bad Ke length');
    this.etype = etype;
    this.ke = ke.slice();
    this.ki = hmacPads(kiRaw);
    this.jsEnc = this.jsDec = firstUseJs === true;
  }

  /** Ke and Ki of base for usage (one derivation pass). */
  static derive(etype: number, base: Uint8Array, usage: number, firstUseJs?: boolean): UsageKey {
    const [ke, ki] = deriveRaw(etype, base, [usage, usage], [KIND.KE, KIND.KI], firstUseJs);
    const k = new UsageKey(etype, ke, ki, firstUseJs);
    ke.fill(0);
    ki.fill(0);
    return k;
  }

  /** RFC 3961 decryption; CryptoError on a bad length or integrity check. */
  decrypt(ciphertext: Uint8Array): Uint8Array {
    const n = ciphertext.length - MAC;
    if (n < CONF) throw new CryptoError('ciphertext too short');
    const js = this.jsDec && n <= 112; // (about where one JS pass costs a native context)
    if (js) this.jsDec = false;
    else if (!this.dec) {
      this.dec = createDecipheriv(ecbName(this.ke.length), this.ke, null);
      this.dec.setAutoPadding(false);
    }
    const c = ciphertext;
    const pt = new Uint8Array(n);
    if (n === 16) {
      const x = this.ecbDecrypt(c.subarray(0, 16), js);
      for (let i = 0; i < 16; i++) {
        pt[i] = x[i];
        x[i] = 0;
      }
    } else {
      const nb = (n + 15) >> 4;
      const r = n - ((nb - 1) << 4);
      const lead = (nb - 2) << 4;
      // D of C1..C(n-2) and of En (the real last full block, sent second to last).
      const d1 = this.ecbDecrypt(c.subarray(0, lead + 16), js);
      // (plain loops, each output byte zeroed once read: Buffer#fill costs more here)
      for (let i = 0; i < 16 && i < lead; i++) {
        pt[i] = d1[i];
        d1[i] = 0;
      }
      for (let i = 16; i < lead; i++) {
        pt[i] = d1[i] ^ c[i - 16];
        d1[i] = 0;
      }
      // C(n-1) = partial || tail of D(En); its plaintext is D(C(n-1)) ^ C(n-2).
      const cn1 = CN1;
      const e = lead + 16;
      for (let i = 0; i < r; i++) {
        const x = c[e + i];
        cn1[i] = x;
        pt[e + i] = d1[lead + i] ^ x;
      }
      for (let i = r; i < 16; i++) cn1[i] = d1[lead + i];
      for (let i = lead; i < e; i++) d1[i] = 0;
      const d2 = this.ecbDecrypt(cn1, js);
      if (lead === 0) for (let i = 0; i < 16; i++) pt[i] = d2[i];
      else for (let i = 0; i < 16; i++) pt[lead + i] = d2[i] ^ c[lead - 16 + i];
      for (let i = 0; i < 16; i++) {
        d2[i] = 0;
        cn1[i] = 0;
      }
    }
    if (!macOk96(this.ki, pt, c, n)) {
      pt.fill(0);
      throw new CryptoError('integrity check failed');
    }
    pt.fill(0, 0, CONF);
    return pt.subarray(CONF);
  }

  private ecbDecrypt(x: Uint8Array, js: boolean): Uint8Array {
    if (!js) return (this.dec as Decipher).update(x);
    const o = new Uint8Array(x.length);
    aesDecryptBlocks(this.ke, x, o, 0);
    return o;
  }

  /** RFC 3961 encryption with a fresh (or given) 16-byte confounder. */
  encrypt(plaintext: Uint8Array, confounder?: Uint8Array): Uint8Array {
    const conf = confounder ?? randomBytes(CONF);
    if (conf.length !== CONF) throw new CryptoError('confounder must be 16 bytes');
    const n = CONF + plaintext.length;
    const nb = (n + 15) >> 4;
    const padded = Buffer.alloc(nb << 4);
    padded.set(conf, 0);
    padded.set(plaintext, CONF);
    const out = new Uint8Array(n + MAC);
    hmacSha1Into(this.ki, padded.subarray(0, n), out, n, MAC); // HMAC-SHA1-96 of the plaintext
    if (this.jsEnc && padded.length <= 64) {
      // First use (often the only one: a ticket's EncAPRepPart): CBC in JS.
      this.jsEnc = false;
      aesCbcEncryptZeroIv(this.ke, padded, padded, 0);
      this.cts(padded, out, n, nb);
      padded.fill(0);
      return out;
    }
    if (!this.enc) {
      this.enc = createCipheriv(this.ke.length === 16 ? 'aes-128-cbc' : 'aes-256-cbc', this.ke, ZERO16);
      this.enc.setAutoPadding(false);
      this.chain.fill(0);
    }
    const ch = this.chain;
    for (let i = 0; i < 16; i++) padded[i] ^= ch[i];
    const cb = this.enc.update(padded);
    const tail = cb.length - 16;
    for (let i = 0; i < 16; i++) ch[i] = cb[tail + i];
    this.cts(cb, out, n, nb);
    padded.fill(0);
    cb.fill(0);
    return out;
  }

  /** CBC output cb of nb blocks -> CTS ciphertext of n bytes in out (last two blocks swapped, truncated). */
  private cts(cb: Uint8Array, out: Uint8Array, n: number, nb: number): void {
    if (n === 16) out.set(cb.subarray(0, 16), 0);
    else {
      const r = n - ((nb - 1) << 4);
      const lead = (nb - 2) << 4;
      out.set(cb.subarray(0, lead), 0);
      out.set(cb.subarray(lead + 16, lead + 32), lead);
      out.set(cb.subarray(lead, lead + r), lead + 16);
    }
  }

  wipe(): void {
    this.ke.fill(0);
    this.ki.fill(0);
    this.dec = null;
    this.enc = null;
    this.chain.fill(0);
  }
}
