// Kerberos enctypes (RFC 3961 simplified profile + RFC 3962; RFC 8009), driven
// by one table of profiles. Each profile names a "family" (the simplified
// profile or RFC 8009) that supplies key derivation, string-to-key and PRF; the
// encrypt/decrypt/checksum code below is shared and reads only the table.
//
// Hot path: derived keys (Ke, Ki, Kc for one base key and usage) live in a small
// bounded cache (FIFO eviction), with the HMAC pads already prepared, so a
// message costs native AES/hash calls plus a little glue.
import type { CryptoBackend } from './backend.ts';
import { CryptoError, isCryptoError } from '../errors.ts';
import { concat, ctEqual, fromAscii, readU32, toAscii, u32 } from '../bytes.ts';
import { HASH_INFO, hmac, hmacPrepare, hmacWith, pbkdf2 } from './hash.ts';
import type { HashName, HmacKey } from './hash.ts';
import { nfold } from './nfold.ts';
import { aesCts, ZERO_IV } from './cts.ts';

export const ETYPE = {
  AES128_CTS_HMAC_SHA1_96: 17,
  AES256_CTS_HMAC_SHA1_96: 18,
  AES128_CTS_HMAC_SHA256_128: 19,
  AES256_CTS_HMAC_SHA384_192: 20,
};

export const CKSUMTYPE = {
  HMAC_SHA1_96_AES128: 15,
  HMAC_SHA1_96_AES256: 16,
  HMAC_SHA256_128_AES128: 19,
  HMAC_SHA384_192_AES256: 20,
};

export interface EnctypeProfile {
  etype: number;
  name: string;
  /** Protocol key length in bytes. */
  keyBytes: number;
  /** Bytes of (truncated) HMAC in a ciphertext and in a checksum. */
  macBytes: number;
  /** The keyed checksum type that goes with this enctype. */
  checksumType: number;
}

interface Family {
  /** Derive outBytes of key from base with a constant (usage || kind, "kerberos", "prf"). */
  derive(b: CryptoBackend, p: Profile, base: Uint8Array, constant: Uint8Array, outBytes: number): Uint8Array;
  defaultIterations: number;
  /** RFC 8009: MAC over IV || ciphertext. RFC 3961: MAC over the plaintext (with confounder). */
  encryptThenMac: boolean;
}

interface Profile extends EnctypeProfile {
  hash: HashName;
  family: Family;
  /** Length of Ki and Kc in bytes. */
  kiBytes: number;
}

const CONFOUNDER_BYTES = 16;
/** Same bound as MIT krb5: larger PBKDF2 counts are refused (a spoofed count is a DoS). */
const MAX_S2K_ITERATIONS = 0x1000000;
const KERBEROS = fromAscii('kerberos');
const PRF_LABEL = fromAscii('prf');
const EMPTY = new Uint8Array(0);
const ZERO_BYTE = new Uint8Array(1);

// ---- RFC 3961 simplified profile with AES (RFC 3962) ----

// n-fold of a derivation constant depends on the constant alone, and a CTA uses a
// handful of them (usage || 0xaa/0x55/0x99): a small FIFO memo saves the byte loop
// (about 80 iterations, the largest single JS cost of deriving a key on the board).
const NFOLD_MEMO_MAX = 16;
const nfoldMemo: { [c: string]: Uint8Array } = {};
const nfoldOrder: string[] = [];
function fold16(constant: Uint8Array): Uint8Array {
  if (constant.length === 16) return constant;
  const id = toAscii(constant);
  let f = nfoldMemo[id];
  if (!f) {
    f = nfold(constant, 16);
    if (nfoldOrder.length >= NFOLD_MEMO_MAX) delete nfoldMemo[nfoldOrder.shift() as string];
    nfoldMemo[id] = f;
    nfoldOrder.push(id);
  }
  return f;
}

/** DK(base, constant) truncated to outBytes: K1 = E(nfold(c)), K2 = E(K1), ... as one CBC pass. */
export function dk(b: CryptoBackend, base: Uint8Array, constant: Uint8Array, outBytes: number): Uint8Array {
  const folded = fold16(constant);
  const blocks = new Uint8Array(((outBytes + 15) >> 4) << 4);
  blocks.set(folded);
  // CBC with a zero IV over [nfold(c), 0, 0...]: block i+1 = E(block i), the DR chain.
  return b.aesCbcEncrypt(base, ZERO_IV, blocks).slice(0, outBytes);
}

// string-to-key and PRF are plain functions (not Family members) so that a bundle
// which never calls them -- the CTA firmware -- leaves PBKDF2 out.
function s2kSimplified(b: CryptoBackend, p: Profile, password: Uint8Array, salt: Uint8Array, iterations: number): Uint8Array {
  const tkey = pbkdf2(b, 'sha1', password, salt, iterations, p.keyBytes);
  const key = dk(b, tkey, KERBEROS, p.keyBytes);
  tkey.fill(0);
  return key;
}
function prfSimplified(b: CryptoBackend, p: Profile, key: Uint8Array, input: Uint8Array): Uint8Array {
  // RFC 3962 section 6: E(DK(key, "prf"), truncate16(SHA-1(input))).
  const kprf = dk(b, key, PRF_LABEL, p.keyBytes);
  const out = b.aesCbcEncrypt(kprf, ZERO_IV, b.sha1(input).subarray(0, 16));
  kprf.fill(0);
  return out;
}

const SIMPLIFIED: Family = {
  derive: function (b, p, base, constant, outBytes) {
    return dk(b, base, constant, outBytes);
  },
  defaultIterations: 4096,
  encryptThenMac: false,
};

// ---- RFC 8009 ----

/** KDF-HMAC-SHA2(key, label, k, context) of RFC 8009 section 3 (k in bits, at most one hash output). */
export function kdfHmacSha2(
  b: CryptoBackend,
  h: HashName,
  key: Uint8Array,
  label: Uint8Array,
  kBits: number,
  context: Uint8Array,
): Uint8Array {
  const n = kBits >> 3;
  if (n < 1 || n > HASH_INFO[h].outLen || (kBits & 7) !== 0) throw new CryptoError('bad KDF output length');
  return hmac(b, h, key, concat([u32(1), label, ZERO_BYTE, context, u32(kBits)])).slice(0, n);
}

function s2kSha2(b: CryptoBackend, p: Profile, password: Uint8Array, salt: Uint8Array, iterations: number): Uint8Array {
  const saltp = concat([fromAscii(p.name), ZERO_BYTE, salt]);
  const tkey = pbkdf2(b, p.hash, password, saltp, iterations, p.keyBytes);
  const key = kdfHmacSha2(b, p.hash, tkey, KERBEROS, p.keyBytes << 3, EMPTY);
  tkey.fill(0);
  return key;
}
function prfSha2(b: CryptoBackend, p: Profile, key: Uint8Array, input: Uint8Array): Uint8Array {
  return kdfHmacSha2(b, p.hash, key, PRF_LABEL, HASH_INFO[p.hash].outLen << 3, input);
}

const SHA2: Family = {
  derive: function (b, p, base, constant, outBytes) {
    return kdfHmacSha2(b, p.hash, base, constant, outBytes << 3, EMPTY);
  },
  defaultIterations: 32768,
  encryptThenMac: true,
};

// ---- the table ----

const PROFILES: { [etype: number]: Profile } = {
  17: { etype: 17, name: 'aes128-cts-hmac-sha1-96', keyBytes: 16, macBytes: 12, checksumType: 15, hash: 'sha1', family: SIMPLIFIED, kiBytes: 16 },
  18: { etype: 18, name: 'aes256-cts-hmac-sha1-96', keyBytes: 32, macBytes: 12, checksumType: 16, hash: 'sha1', family: SIMPLIFIED, kiBytes: 32 },
  19: { etype: 19, name: 'aes128-cts-hmac-sha256-128', keyBytes: 16, macBytes: 16, checksumType: 19, hash: 'sha256', family: SHA2, kiBytes: 16 },
  20: { etype: 20, name: 'aes256-cts-hmac-sha384-192', keyBytes: 32, macBytes: 24, checksumType: 20, hash: 'sha384', family: SHA2, kiBytes: 24 },
};
/** Preference order, strongest first. */
const STRENGTH_ORDER = [20, 18, 19, 17];

function profileOf(etype: number): Profile | null {
  return typeof etype === 'number' ? PROFILES[etype] || null : null;
}

function usable(b: CryptoBackend, p: Profile): boolean {
  return p.hash !== 'sha384' || !!b.sha384;
}

export function getProfile(etype: number): EnctypeProfile | null {
  return profileOf(etype);
}

/** The enctype whose keyed checksum type is cksumtype, or null. */
export function getProfileByChecksumType(cksumtype: number): EnctypeProfile | null {
  for (let i = 0; i < STRENGTH_ORDER.length; i++) {
    const p = PROFILES[STRENGTH_ORDER[i]];
    if (p.checksumType === cksumtype) return p;
  }
  return null;
}

/** Enctypes this backend can run, strongest first (20 only where sha384 exists). */
export function supportedEtypes(b: CryptoBackend): number[] {
  const out: number[] = [];
  for (let i = 0; i < STRENGTH_ORDER.length; i++) {
    if (usable(b, PROFILES[STRENGTH_ORDER[i]])) out.push(STRENGTH_ORDER[i]);
  }
  return out;
}

function need(b: CryptoBackend, etype: number): Profile {
  const p = profileOf(etype);
  if (!p) throw new CryptoError('unsupported enctype ' + etype);
  if (!usable(b, p)) throw new CryptoError('enctype ' + etype + ' needs ' + p.hash + ', not on backend ' + b.name);
  return p;
}

// Realm-agnostic byte-array test (the emulator runs this code inside a vm).
function isBytes(x: unknown): x is Uint8Array {
  return !!x && typeof x === 'object' && typeof (x as Uint8Array).length === 'number' && typeof (x as Uint8Array).subarray === 'function';
}

function checkKey(p: Profile, key: Uint8Array): void {
  if (!isBytes(key) || key.length !== p.keyBytes) throw new CryptoError('bad key length for ' + p.name);
}

function checkUsage(usage: number): void {
  if (typeof usage !== 'number' || !(usage >= 0) || usage > 0xffffffff || usage !== Math.floor(usage)) {
    throw new CryptoError('bad key usage');
  }
}

// ---- bounded cache of derived keys, keyed by (backend, etype, usage, key bytes) ----

interface Derived {
  ke: Uint8Array | null;
  kiRaw: Uint8Array | null;
  ki: HmacKey | null;
  kc: HmacKey | null;
}

let cacheMax = 64;
let cache: { [id: string]: Derived } = {};
let cacheOrder: string[] = [];

/** Set the bound of the derived-key cache (0 disables caching). The firmware may lower it. */
export function setKeyCacheSize(n: number): void {
  cacheMax = n > 0 ? Math.floor(n) : 0;
  while (cacheOrder.length > cacheMax) delete cache[cacheOrder.shift() as string];
}

/** Entries in the derived-key cache (for tests and metrics). */
export function keyCacheSize(): number {
  return cacheOrder.length;
}

/** Forget (and zero) every cached derived key. */
export function clearKeyCache(): void {
  for (let i = 0; i < cacheOrder.length; i++) {
    const d = cache[cacheOrder[i]];
    if (d.ke) d.ke.fill(0);
    if (d.kiRaw) d.kiRaw.fill(0);
    if (d.ki) {
      d.ki.inner.fill(0);
      d.ki.outer.fill(0);
    }
    if (d.kc) {
      d.kc.inner.fill(0);
      d.kc.outer.fill(0);
    }
  }
  cache = {};
  cacheOrder = [];
}

function derived(b: CryptoBackend, p: Profile, key: Uint8Array, usage: number): Derived {
  checkKey(p, key);
  checkUsage(usage);
  const id = b.name + ':' + p.etype + ':' + usage + ':' + toAscii(key);
  const hit = cache[id];
  if (hit) return hit;
  const d: Derived = { ke: null, kiRaw: null, ki: null, kc: null };
  if (cacheMax > 0) {
    // Evicted entries are dropped, not zeroed: a caller may still hold them mid-operation.
    if (cacheOrder.length >= cacheMax) delete cache[cacheOrder.shift() as string];
    cache[id] = d;
    cacheOrder.push(id);
  }
  return d;
}

function usageConstant(usage: number, kind: number): Uint8Array {
  const c = new Uint8Array(5);
  c.set(u32(usage));
  c[4] = kind;
  return c;
}

function keOf(b: CryptoBackend, p: Profile, key: Uint8Array, usage: number, d: Derived): Uint8Array {
  if (!d.ke) d.ke = p.family.derive(b, p, key, usageConstant(usage, 0xaa), p.keyBytes);
  return d.ke;
}
function kiRawOf(b: CryptoBackend, p: Profile, key: Uint8Array, usage: number, d: Derived): Uint8Array {
  if (!d.kiRaw) d.kiRaw = p.family.derive(b, p, key, usageConstant(usage, 0x55), p.kiBytes);
  return d.kiRaw;
}
function kiOf(b: CryptoBackend, p: Profile, key: Uint8Array, usage: number, d: Derived): HmacKey {
  if (!d.ki) d.ki = hmacPrepare(b, p.hash, kiRawOf(b, p, key, usage, d));
  return d.ki;
}
function kcOf(b: CryptoBackend, p: Profile, key: Uint8Array, usage: number, d: Derived): HmacKey {
  if (!d.kc) {
    const raw = p.family.derive(b, p, key, usageConstant(usage, 0x99), p.kiBytes);
    d.kc = hmacPrepare(b, p.hash, raw);
    raw.fill(0);
  }
  return d.kc;
}

// ---- the operations ----

/** Full RFC 3961 ciphertext: CTS(Ke, confounder || plaintext) || truncated HMAC(Ki, ...). */
export function encrypt(
  b: CryptoBackend,
  etype: number,
  key: Uint8Array,
  usage: number,
  plaintext: Uint8Array,
  confounder?: Uint8Array,
): Uint8Array {
  const p = need(b, etype);
  const d = derived(b, p, key, usage);
  const conf = confounder ?? b.randomBytes(CONFOUNDER_BYTES);
  if (conf.length !== CONFOUNDER_BYTES) throw new CryptoError('confounder must be 16 bytes');
  const ke = keOf(b, p, key, usage, d);
  const ki = kiOf(b, p, key, usage, d);
  const pt = concat([conf, plaintext]);
  const c = aesCts(b, ke, ZERO_IV, pt, true);
  const mac = hmacWith(b, ki, p.family.encryptThenMac ? concat([ZERO_IV, c]) : pt);
  pt.fill(0);
  const out = new Uint8Array(c.length + p.macBytes);
  out.set(c, 0);
  out.set(mac.subarray(0, p.macBytes), c.length);
  return out;
}

/** Inverse of encrypt. Throws CryptoError (only) on a bad length, key or integrity check. */
export function decrypt(b: CryptoBackend, etype: number, key: Uint8Array, usage: number, ciphertext: Uint8Array): Uint8Array {
  const p = need(b, etype);
  if (!isBytes(ciphertext) || ciphertext.length < CONFOUNDER_BYTES + p.macBytes) {
    throw new CryptoError('ciphertext too short');
  }
  const d = derived(b, p, key, usage);
  try {
    const ke = keOf(b, p, key, usage, d);
    const ki = kiOf(b, p, key, usage, d);
    const clen = ciphertext.length - p.macBytes;
    const c = ciphertext.subarray(0, clen);
    const h = ciphertext.subarray(clen);
    let pt: Uint8Array;
    let mac: Uint8Array;
    if (p.family.encryptThenMac) {
      mac = hmacWith(b, ki, concat([ZERO_IV, c]));
      if (!ctEqual(mac.subarray(0, p.macBytes), h)) throw new CryptoError('integrity check failed');
      pt = aesCts(b, ke, ZERO_IV, c, false);
    } else {
      pt = aesCts(b, ke, ZERO_IV, c, false);
      mac = hmacWith(b, ki, pt);
      if (!ctEqual(mac.subarray(0, p.macBytes), h)) {
        pt.fill(0);
        throw new CryptoError('integrity check failed');
      }
    }
    return pt.slice(CONFOUNDER_BYTES);
  } catch (e) {
    if (isCryptoError(e)) throw e;
    throw new CryptoError('decryption failed');
  }
}

/** Keyed checksum: truncated HMAC(Kc, data), Kc = derive(key, usage || 0x99). */
export function makeChecksum(b: CryptoBackend, etype: number, key: Uint8Array, usage: number, data: Uint8Array): Uint8Array {
  const p = need(b, etype);
  const d = derived(b, p, key, usage);
  return hmacWith(b, kcOf(b, p, key, usage, d), data).slice(0, p.macBytes);
}

/** Constant-time check of a keyed checksum; false (never a throw) for a wrong-length checksum. */
export function verifyChecksum(
  b: CryptoBackend,
  etype: number,
  key: Uint8Array,
  usage: number,
  data: Uint8Array,
  cksum: Uint8Array,
): boolean {
  const expect = makeChecksum(b, etype, key, usage, data);
  return isBytes(cksum) && ctEqual(expect, cksum);
}

/**
 * The HMAC key of the key-management messages ("[profile]" in PROTOCOL.md): Ki for
 * the usage, i.e. DK(base, usage || 0x55) for the aes-sha1 enctypes and
 * KDF-HMAC-SHA2(base, usage || 0x55, 128 / 192 bits) for enctypes 19 / 20. A copy.
 */
export function usageHmacKey(b: CryptoBackend, etype: number, baseKey: Uint8Array, usage: number): Uint8Array {
  const p = need(b, etype);
  const d = derived(b, p, baseKey, usage);
  return kiRawOf(b, p, baseKey, usage, d).slice();
}

/** Ke, Ki and Kc for one key and usage (copies; for tests and tooling). */
export function usageKeys(
  b: CryptoBackend,
  etype: number,
  key: Uint8Array,
  usage: number,
): { ke: Uint8Array; ki: Uint8Array; kc: Uint8Array } {
  const p = need(b, etype);
  checkKey(p, key);
  checkUsage(usage);
  return {
    ke: p.family.derive(b, p, key, usageConstant(usage, 0xaa), p.keyBytes),
    ki: p.family.derive(b, p, key, usageConstant(usage, 0x55), p.kiBytes),
    kc: p.family.derive(b, p, key, usageConstant(usage, 0x99), p.kiBytes),
  };
}

/** DK (sha1 enctypes) or KDF-HMAC-SHA2 (RFC 8009 enctypes), output of the enctype's key length. */
export function deriveKey(b: CryptoBackend, etype: number, key: Uint8Array, constant: Uint8Array): Uint8Array {
  const p = need(b, etype);
  checkKey(p, key);
  if (!isBytes(constant) || constant.length < 1) throw new CryptoError('bad derivation constant');
  return p.family.derive(b, p, key, constant, p.keyBytes);
}

/** string-to-key; params = 4-byte big-endian iteration count, or null for the default. */
export function stringToKey(
  b: CryptoBackend,
  etype: number,
  password: Uint8Array,
  salt: Uint8Array,
  params: Uint8Array | null,
): Uint8Array {
  const p = need(b, etype);
  let iterations = p.family.defaultIterations;
  if (params) {
    if (params.length !== 4) throw new CryptoError('bad s2kparams length');
    iterations = readU32(params, 0);
  }
  // 0 would mean 2^32 iterations (RFC 3962): refused like any count above the bound.
  if (iterations < 1 || iterations >= MAX_S2K_ITERATIONS) throw new CryptoError('s2k iteration count out of range');
  return p.family === SHA2 ? s2kSha2(b, p, password, salt, iterations) : s2kSimplified(b, p, password, salt, iterations);
}

/** random-to-key: the identity for AES, with a length check. A copy. */
export function randomToKey(etype: number, bytes: Uint8Array): Uint8Array {
  const p = profileOf(etype);
  if (!p) throw new CryptoError('unsupported enctype ' + etype);
  if (!isBytes(bytes) || bytes.length !== p.keyBytes) throw new CryptoError('bad random-to-key input length');
  return bytes.slice();
}

export function randomKey(b: CryptoBackend, etype: number): Uint8Array {
  const p = need(b, etype);
  return randomToKey(etype, b.randomBytes(p.keyBytes));
}

/** Kerberos PRF: 16 bytes (RFC 3962) for 17/18, 32 / 48 bytes (RFC 8009) for 19 / 20. */
export function prf(b: CryptoBackend, etype: number, key: Uint8Array, input: Uint8Array): Uint8Array {
  const p = need(b, etype);
  checkKey(p, key);
  return p.family === SHA2 ? prfSha2(b, p, key, input) : prfSimplified(b, p, key, input);
}
