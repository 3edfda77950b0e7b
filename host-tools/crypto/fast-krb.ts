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
//  - HMAC-SHA1 from prepared K^ipad / K^opad blocks and two one-shot digests
//    (crypto.hash) over a reused scratch buffer that is zeroed after use.
// Enctypes 19 and 20 are not handled here (isFastEtype() says so): callers use
// the generic layer for them.
import * as nodeCrypto from 'node:crypto';
import { createCipheriv, createDecipheriv, createHash, type Decipher } from 'node:crypto';
import { nfold } from '../../firmware/proto/crypto/nfold.ts';
import { CryptoError } from '../../firmware/proto/errors.ts';
import { randomBytes } from '../sc/rand.ts';

const CONF = 16;
const MAC = 12; // HMAC-SHA1-96
const ZERO16 = new Uint8Array(16);

const oneShot = (nodeCrypto as unknown as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;
const sha1: (d: Uint8Array) => Buffer = oneShot ? (d) => oneShot('sha1', d, 'buffer') : (d) => createHash('sha1').update(d).digest();

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
 */
export function deriveRaw(etype: number, base: Uint8Array, usages: number[], kinds: number[]): Uint8Array[] {
  const len = keyLen(etype);
  if (base.length !== len) throw new CryptoError('fast-krb: bad key length');
  const n = usages.length;
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

// ---- HMAC-SHA1 with prepared pads ----

/** K^ipad || K^opad (128 bytes) of an HMAC-SHA1 key of at most 64 bytes. */
export type HmacPads = Uint8Array;

export function hmacPads(key: Uint8Array): HmacPads {
  if (key.length > 64) throw new CryptoError('fast-krb: HMAC key longer than a block');
  const p = new Uint8Array(128);
  for (let i = 0; i < 64; i++) {
    const k = i < key.length ? key[i] : 0;
    p[i] = k ^ 0x36;
    p[64 + i] = k ^ 0x5c;
  }
  return p;
}

let scratch = Buffer.alloc(1024);
function scratchFor(n: number): Buffer {
  if (scratch.length < n) {
    scratch.fill(0);
    scratch = Buffer.alloc(Math.max(n, scratch.length * 2));
  }
  return scratch;
}
const outer = Buffer.alloc(84);

/** HMAC-SHA1(key, data) (20 bytes, a fresh Buffer) with the key's prepared pads. */
export function hmacSha1(pads: HmacPads, data: Uint8Array): Buffer {
  const n = 64 + data.length;
  const s = scratchFor(n);
  s.set(pads.subarray(0, 64), 0);
  s.set(data, 64);
  const inner = sha1(s.subarray(0, n));
  s.fill(0, 0, n);
  outer.set(pads.subarray(64, 128), 0);
  outer.set(inner, 64);
  const mac = sha1(outer);
  outer.fill(0);
  inner.fill(0);
  return mac;
}

/** Constant-time compare of the first a.length bytes of a with b (lengths must match). */
function macEqual(mac: Uint8Array, want: Uint8Array, n: number): boolean {
  if (want.length !== n) return false;
  let d = 0;
  for (let i = 0; i < n; i++) d |= mac[i] ^ want[i];
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

  constructor(etype: number, ke: Uint8Array, kiRaw: Uint8Array) {
    if (ke.length !== keyLen(etype)) throw new CryptoError('fast-krb: bad Ke length');
    this.etype = etype;
    this.ke = ke.slice();
    this.ki = hmacPads(kiRaw);
  }

  /** Ke and Ki of base for usage (one derivation pass). */
  static derive(etype: number, base: Uint8Array, usage: number): UsageKey {
    const [ke, ki] = deriveRaw(etype, base, [usage, usage], [KIND.KE, KIND.KI]);
    const k = new UsageKey(etype, ke, ki);
    ke.fill(0);
    ki.fill(0);
    return k;
  }

  /** RFC 3961 decryption; CryptoError on a bad length or integrity check. */
  decrypt(ciphertext: Uint8Array): Uint8Array {
    const n = ciphertext.length - MAC;
    if (n < CONF) throw new CryptoError('ciphertext too short');
    if (!this.dec) {
      this.dec = createDecipheriv(ecbName(this.ke.length), this.ke, null);
      this.dec.setAutoPadding(false);
    }
    const d = this.dec;
    const c = ciphertext;
    const pt = new Uint8Array(n);
    if (n === 16) {
      const x = d.update(c.subarray(0, 16));
      for (let i = 0; i < 16; i++) pt[i] = x[i];
      x.fill(0);
    } else {
      const nb = (n + 15) >> 4;
      const r = n - ((nb - 1) << 4);
      const lead = (nb - 2) << 4;
      // D of C1..C(n-2) and of En (the real last full block, sent second to last).
      const d1 = d.update(c.subarray(0, lead + 16));
      for (let i = 0; i < lead; i++) pt[i] = d1[i] ^ (i < 16 ? 0 : c[i - 16]);
      // C(n-1) = partial || tail of D(En); its plaintext is D(C(n-1)) ^ C(n-2).
      const cn1 = Buffer.allocUnsafe(16);
      for (let i = 0; i < 16; i++) cn1[i] = i < r ? c[lead + 16 + i] : d1[lead + i];
      const d2 = d.update(cn1);
      for (let i = 0; i < 16; i++) pt[lead + i] = d2[i] ^ (lead === 0 ? 0 : c[lead - 16 + i]);
      for (let i = 0; i < r; i++) pt[lead + 16 + i] = d1[lead + i] ^ c[lead + 16 + i];
      d1.fill(0);
      d2.fill(0);
      cn1.fill(0);
    }
    const mac = hmacSha1(this.ki, pt);
    const ok = macEqual(mac, c.subarray(n), MAC);
    mac.fill(0);
    if (!ok) {
      pt.fill(0);
      throw new CryptoError('integrity check failed');
    }
    const out = pt.slice(CONF);
    pt.fill(0);
    return out;
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
    const e = createCipheriv(this.ke.length === 16 ? 'aes-128-cbc' : 'aes-256-cbc', this.ke, ZERO16);
    e.setAutoPadding(false);
    const cb = e.update(padded);
    const out = new Uint8Array(n + MAC);
    if (n === 16) out.set(cb, 0);
    else {
      const r = n - ((nb - 1) << 4);
      const lead = (nb - 2) << 4;
      out.set(cb.subarray(0, lead), 0);
      out.set(cb.subarray(lead + 16, lead + 32), lead);
      out.set(cb.subarray(lead, lead + r), lead + 16);
    }
    const mac = hmacSha1(this.ki, padded.subarray(0, n));
    out.set(mac.subarray(0, MAC), n);
    padded.fill(0);
    cb.fill(0);
    mac.fill(0);
    return out;
  }

  wipe(): void {
    this.ke.fill(0);
    this.ki.fill(0);
    this.dec = null;
  }
}
