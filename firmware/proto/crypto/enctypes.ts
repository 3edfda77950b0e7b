// Kerberos enctypes (RFC 3961 simplified profile + RFC 3962; RFC 8009): 17, 18,
// 19 and 20, whose parameters are computed from the enctype number (see below).
// The encrypt/decrypt/checksum code is shared by the two families.
//
// Hot path: derived keys (Ke, Ki, Kc for one base key and usage) live in a small
// bounded cache (FIFO eviction), with the HMAC pads already prepared, so a
// message costs native AES/hash calls plus a little glue.
import type { CryptoBackend } from './backend.ts';
import { CryptoError } from '../errors.ts';
import { concat, ctEqual, fromAscii, readU32, toAscii, writeU32 } from '../bytes.ts';
import { hmac, pbkdf2 } from './hash.ts';
import type { HashName } from './hash.ts';
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

// The four enctypes' parameters follow from the number, so the code below computes
// them instead of reading a table (on the interpreter a module-level table costs
// variables for every property; these expressions live in the function bodies):
//   key bytes   16 for 17/19, 32 for 18/20                 etype & 1 ? 16 : 32
//   MAC bytes   12 for 17/18, 16 for 19, 24 for 20          etype < 19 ? 12 : (etype - 17) << 3
//   Ki/Kc bytes the key length, but 24 for 20               etype === 20 ? 24 : key bytes
//   hash        sha1 for 17/18, sha256 for 19, sha384 for 20 (hashOf)
//   family      RFC 3961/3962 simplified profile for 17/18 (DK, MAC over the plaintext),
//               RFC 8009 for 19/20 (KDF-HMAC-SHA2, MAC over IV || ciphertext): etype > 18,
//               written isRfc8009(etype) below (a board with one family folds it)
// The checksum type is etype - 2 for 17/18 and etype for 19/20.

// Build-time board facts (host-tools/build/build.ts boardDefines, from board-configs
// "enctypes"), undefined on the host (all four enctypes): the enctypes of the board,
// and whether it has any of each family. Tested as `(typeof BOARD_X === 'undefined' || BOARD_X)`
// so that the bundle of a board without a family folds that family's key derivation away
// (RFC 3962: n-fold and DK; RFC 8009: KDF-HMAC-SHA2).
declare const BOARD_ENCTYPES: number[];
declare const BOARD_RFC3962: boolean;
declare const BOARD_RFC8009: boolean;

/** Is etype one this build implements (17-20 on the host, the board's list in a board's image)? */
export function hasEnctype(etype: number): boolean {
  // (BOARD_RFC3962 tested, not the list: esbuild folds a boolean's typeof, not an array's.)
  return typeof BOARD_RFC3962 === 'undefined' ? etype >= 17 && etype <= 20 : BOARD_ENCTYPES.indexOf(etype) >= 0;
}

/** The hash of a supported enctype; CryptoError for an unknown one or one the backend cannot run. */
function hashOf(b: CryptoBackend, etype: number): HashName {
  if (!hasEnctype(etype)) throw new CryptoError('unsupported enctype ' + etype);
  if (!isRfc8009(etype)) return 'sha1';
  if (etype === 19) return 'sha256';
  if (!b.sha384) throw new CryptoError('enctype 20 needs sha384, not on backend ' + b.name);
  return 'sha384';
}

/**
 * RFC 8009 (19/20) rather than RFC 3962 (17/18), for an enctype hashOf accepted: a
 * constant on a board with one family (the call sites' other branch then folds away).
 */
function isRfc8009(etype: number): boolean {
  if (!(typeof BOARD_RFC3962 === 'undefined' || BOARD_RFC3962)) return true;
  if (!(typeof BOARD_RFC8009 === 'undefined' || BOARD_RFC8009)) return false;
  return etype > 18;
}

/** Same bound as MIT krb5: larger PBKDF2 counts are refused (a spoofed count is a DoS). */
const MAX_S2K_ITERATIONS = 0x1000000;

// ---- RFC 3961 simplified profile with AES (RFC 3962) ----

// n-fold of a derivation constant depends on the constant alone, and a CTA uses a
// handful of them (usage || 0xaa/0x55/0x99): a small FIFO memo saves the byte loop
// (about 80 iterations, the largest single JS cost of deriving a key on the board).
// Four entries hold one exchange's recurring constants (the AP Reply and SA Recovered
// HMAC keys of each fresh subkey) without keeping many variables alive.
// FIFO order is the objects' own key order (insertion order: the ids are never
// array indices), so there is no order array holding a second copy of every id.
let nfoldMemo: { [c: string]: Uint8Array } = {};
let nfoldN = 0;

/** Removes the oldest key of a FIFO cache object. */
function dropOldest(o: { [k: string]: unknown }): void {
  for (const k in o) {
    delete o[k];
    return;
  }
}

/** DK(base, constant) truncated to outBytes: K1 = E(nfold(c)), K2 = E(K1), ... as one CBC pass. */
export function dk(b: CryptoBackend, base: Uint8Array, constant: Uint8Array, outBytes: number): Uint8Array {
  let folded = constant;
  if (constant.length !== 16) {
    const id = toAscii(constant);
    folded = nfoldMemo[id];
    if (!folded) {
      folded = nfold(constant, 16);
      if (nfoldN >= 4) dropOldest(nfoldMemo);
      else nfoldN++;
      nfoldMemo[id] = folded;
    }
  }
  const blocks = new Uint8Array(((outBytes + 15) >> 4) << 4);
  blocks.set(folded);
  // CBC with a zero IV over [nfold(c), 0, 0...]: block i+1 = E(block i), the DR chain.
  return b.aesCbcEncrypt(base, ZERO_IV, blocks).slice(0, outBytes);
}

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
  if (n < 1 || n > (h === 'sha1' ? 20 : h === 'sha256' ? 32 : 48) || (kBits & 7) !== 0) throw new CryptoError('bad KDF output length');
  // u32(1) || label || 0x00 || context || u32(kBits), written in place.
  const m = new Uint8Array(9 + label.length + context.length);
  m[3] = 1;
  m.set(label, 4);
  m.set(context, 5 + label.length);
  writeU32(m, m.length - 4, kBits);
  return hmac(b, h, key, m).slice(0, n);
}

/** The family's key derivation: DK for 17/18, KDF-HMAC-SHA2 with an empty context for 19/20. */
function derive(b: CryptoBackend, etype: number, h: HashName, base: Uint8Array, constant: Uint8Array, outBytes: number): Uint8Array {
  return isRfc8009(etype) ? kdfHmacSha2(b, h, base, constant, outBytes << 3, new Uint8Array(0)) : dk(b, base, constant, outBytes);
}

// Realm-agnostic byte-array test (the emulator runs this code inside a vm).
function isBytes(x: unknown): x is Uint8Array {
  return !!x && typeof x === 'object' && typeof (x as Uint8Array).length === 'number' && typeof (x as Uint8Array).subarray === 'function';
}

/**
 * Checks key (length of the enctype's) and usage (u32) and derives the usage key
 * of one kind: Ke (0xaa, key length), Ki (0x55) or Kc (0x99) (Ki/Kc length).
 */
function usageKey(b: CryptoBackend, etype: number, h: HashName, key: Uint8Array, usage: number, kind: number): Uint8Array {
  const kl = etype & 1 ? 16 : 32;
  if (!isBytes(key) || key.length !== kl) throw new CryptoError('bad key length for enctype ' + etype);
  if (typeof usage !== 'number' || !(usage >= 0) || usage > 0xffffffff || usage !== Math.floor(usage)) {
    throw new CryptoError('bad key usage');
  }
  const c = new Uint8Array(5);
  writeU32(c, 0, usage);
  c[4] = kind;
  const n = kind === 0xaa || etype !== 20 ? kl : 24;
  // (derive() written out: the firmware then needs no separate function for it.)
  return isRfc8009(etype) ? kdfHmacSha2(b, h, key, c, n << 3, new Uint8Array(0)) : dk(b, key, c, n);
}

// ---- bounded cache of derived keys, keyed by (backend, etype, usage, key bytes) ----

/**
 * Ke and Ki of an encryption usage, or (ke null) Kc of a checksum usage. The HMAC key
 * is kept as is, not as prepared pad blocks: hmac() builds the padded block it hashes
 * anyway (same buffers as with prepared pads), and an entry holds 16-32 bytes where
 * two 64-byte pads were (fewer variables on the interpreter).
 */
interface Derived {
  ke: Uint8Array | null;
  k: Uint8Array;
}

let cacheMax = 64;
let cache: { [id: string]: Derived } = {};
let cacheN = 0;

/** Set the bound of the derived-key cache (0 disables caching). The firmware may lower it. */
export function setKeyCacheSize(n: number): void {
  cacheMax = n > 0 ? Math.floor(n) : 0;
  for (; cacheN > cacheMax; cacheN--) dropOldest(cache);
}

/** Entries in the derived-key cache (for tests and metrics). */
export function keyCacheSize(): number {
  return cacheN;
}

/** Forget (and zero) every cached derived key. */
export function clearKeyCache(): void {
  for (const id in cache) {
    const d = cache[id];
    if (d.ke) d.ke.fill(0);
    d.k.fill(0);
  }
  dropKeyCache();
}

/**
 * Forget the cached derived keys and n-fold results without zeroing them (an entry
 * may be in use mid-operation): what the native crypto glue frees when the variable
 * store is too full for a result (firmware/platform/espruino-crypto.ts).
 */
export function dropKeyCache(): void {
  cache = {};
  cacheN = 0;
  nfoldMemo = {};
  nfoldN = 0;
}

/** The cached (or freshly derived) keys of (etype, key, usage): Ke + Ki, or Kc when checksum. */
function derived(b: CryptoBackend, etype: number, h: HashName, key: Uint8Array, usage: number, checksum: boolean): Derived {
  const id = (checksum ? 'c' : 'e') + b.name + ':' + etype + ':' + usage + ':' + (isBytes(key) ? toAscii(key) : '');
  let d = cache[id];
  if (d) return d;
  let ke: Uint8Array | null = null;
  if (!checksum) ke = usageKey(b, etype, h, key, usage, 0xaa);
  d = { ke: ke, k: usageKey(b, etype, h, key, usage, checksum ? 0x99 : 0x55) };
  if (cacheMax > 0) {
    // Evicted entries are dropped, not zeroed: a caller may still hold them mid-operation.
    if (cacheN >= cacheMax) dropOldest(cache);
    else cacheN++;
    cache[id] = d;
  }
  return d;
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
  const h = hashOf(b, etype);
  const d = derived(b, etype, h, key, usage, false);
  const conf = confounder ?? b.randomBytes(16);
  if (conf.length !== 16) throw new CryptoError('confounder must be 16 bytes');
  const ml = isRfc8009(etype) ? (etype - 17) << 3 : 12;
  const pt = new Uint8Array(16 + plaintext.length);
  pt.set(conf);
  pt.set(plaintext, 16);
  const c = aesCts(b, d.ke as Uint8Array, ZERO_IV, pt, true);
  const mac = hmac(b, h, d.k, isRfc8009(etype) ? concat([ZERO_IV, c]) : pt);
  pt.fill(0);
  const out = new Uint8Array(c.length + ml);
  out.set(c, 0);
  out.set(mac.subarray(0, ml), c.length);
  return out;
}

/** Inverse of encrypt. Throws CryptoError (only) on a bad length, key or integrity check. */
export function decrypt(b: CryptoBackend, etype: number, key: Uint8Array, usage: number, ciphertext: Uint8Array): Uint8Array {
  const h = hashOf(b, etype);
  const ml = isRfc8009(etype) ? (etype - 17) << 3 : 12;
  if (!isBytes(ciphertext) || ciphertext.length < 16 + ml) throw new CryptoError('ciphertext too short');
  try {
    const d = derived(b, etype, h, key, usage, false);
    const ke = d.ke as Uint8Array;
    const clen = ciphertext.length - ml;
    const c = ciphertext.subarray(0, clen);
    let pt: Uint8Array | null = null;
    if (!isRfc8009(etype)) pt = aesCts(b, ke, ZERO_IV, c, false);
    // RFC 8009: the MAC covers IV || ciphertext and is checked before decrypting.
    if (!ctEqual(hmac(b, h, d.k, pt || concat([ZERO_IV, c])).subarray(0, ml), ciphertext.subarray(clen))) {
      if (pt) pt.fill(0);
      throw new CryptoError('integrity check failed');
    }
    if (!pt) pt = aesCts(b, ke, ZERO_IV, c, false);
    return pt.slice(16);
  } catch (e) {
    if (e instanceof CryptoError) throw e;
    throw new CryptoError('decryption failed');
  }
}

/** Keyed checksum: truncated HMAC(Kc, data), Kc = derive(key, usage || 0x99). */
export function makeChecksum(b: CryptoBackend, etype: number, key: Uint8Array, usage: number, data: Uint8Array): Uint8Array {
  const h = hashOf(b, etype);
  return hmac(b, h, derived(b, etype, h, key, usage, true).k, data).slice(0, isRfc8009(etype) ? (etype - 17) << 3 : 12);
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
 * KDF-HMAC-SHA2(base, usage || 0x55, 128 / 192 bits) for enctypes 19 / 20. A fresh
 * array, derived on each call (not cached: on the CTA most of these keys come from a
 * fresh subkey, and the callers keep the ones they reuse).
 */
export function usageHmacKey(b: CryptoBackend, etype: number, baseKey: Uint8Array, usage: number): Uint8Array {
  return usageKey(b, etype, hashOf(b, etype), baseKey, usage, 0x55);
}

/** Ke, Ki and Kc for one key and usage (copies; for tests and tooling). */
export function usageKeys(
  b: CryptoBackend,
  etype: number,
  key: Uint8Array,
  usage: number,
): { ke: Uint8Array; ki: Uint8Array; kc: Uint8Array } {
  const h = hashOf(b, etype);
  return {
    ke: usageKey(b, etype, h, key, usage, 0xaa),
    ki: usageKey(b, etype, h, key, usage, 0x55),
    kc: usageKey(b, etype, h, key, usage, 0x99),
  };
}

/** DK (sha1 enctypes) or KDF-HMAC-SHA2 (RFC 8009 enctypes), output of the enctype's key length. */
export function deriveKey(b: CryptoBackend, etype: number, key: Uint8Array, constant: Uint8Array): Uint8Array {
  const h = hashOf(b, etype);
  const kl = etype & 1 ? 16 : 32;
  if (!isBytes(key) || key.length !== kl) throw new CryptoError('bad key length for enctype ' + etype);
  if (!isBytes(constant) || constant.length < 1) throw new CryptoError('bad derivation constant');
  return derive(b, etype, h, key, constant, kl);
}

// ---- host-only: the profile table, string-to-key, random keys, PRF (not in the firmware bundle) ----

const NAMES: { [etype: number]: string } = {
  17: 'aes128-cts-hmac-sha1-96',
  18: 'aes256-cts-hmac-sha1-96',
  19: 'aes128-cts-hmac-sha256-128',
  20: 'aes256-cts-hmac-sha384-192',
};
/** Preference order, strongest first. */
const STRENGTH_ORDER = [20, 18, 19, 17];

export function getProfile(etype: number): EnctypeProfile | null {
  const name = typeof etype === 'number' ? NAMES[etype] : undefined;
  if (!name) return null;
  return { etype: etype, name: name, keyBytes: etype & 1 ? 16 : 32, macBytes: etype < 19 ? 12 : (etype - 17) << 3, checksumType: etype < 19 ? etype - 2 : etype };
}

/** The enctype whose keyed checksum type is cksumtype, or null. */
export function getProfileByChecksumType(cksumtype: number): EnctypeProfile | null {
  for (let i = 0; i < STRENGTH_ORDER.length; i++) {
    const p = getProfile(STRENGTH_ORDER[i]) as EnctypeProfile;
    if (p.checksumType === cksumtype) return p;
  }
  return null;
}

/** Enctypes this backend can run, strongest first (20 only where sha384 exists). */
export function supportedEtypes(b: CryptoBackend): number[] {
  const out: number[] = [];
  for (let i = 0; i < STRENGTH_ORDER.length; i++) {
    if (STRENGTH_ORDER[i] !== 20 || b.sha384) out.push(STRENGTH_ORDER[i]);
  }
  return out;
}

/** string-to-key; params = 4-byte big-endian iteration count, or null for the default. */
export function stringToKey(
  b: CryptoBackend,
  etype: number,
  password: Uint8Array,
  salt: Uint8Array,
  params: Uint8Array | null,
): Uint8Array {
  const h = hashOf(b, etype);
  const kl = etype & 1 ? 16 : 32;
  let iterations = isRfc8009(etype) ? 32768 : 4096;
  if (params) {
    if (params.length !== 4) throw new CryptoError('bad s2kparams length');
    iterations = readU32(params, 0);
  }
  // 0 would mean 2^32 iterations (RFC 3962): refused like any count above the bound.
  if (iterations < 1 || iterations >= MAX_S2K_ITERATIONS) throw new CryptoError('s2k iteration count out of range');
  let tkey: Uint8Array;
  let key: Uint8Array;
  if (isRfc8009(etype)) {
    // RFC 8009: PBKDF2 over enctype name || 0x00 || salt, then KDF(tkey, "kerberos").
    const saltp = concat([fromAscii(NAMES[etype]), new Uint8Array(1), salt]);
    tkey = pbkdf2(b, h, password, saltp, iterations, kl);
    key = kdfHmacSha2(b, h, tkey, fromAscii('kerberos'), kl << 3, new Uint8Array(0));
  } else {
    tkey = pbkdf2(b, 'sha1', password, salt, iterations, kl);
    key = dk(b, tkey, fromAscii('kerberos'), kl);
  }
  tkey.fill(0);
  return key;
}

/** random-to-key: the identity for AES, with a length check. A copy. */
export function randomToKey(etype: number, bytes: Uint8Array): Uint8Array {
  if (!getProfile(etype)) throw new CryptoError('unsupported enctype ' + etype);
  if (!isBytes(bytes) || bytes.length !== (etype & 1 ? 16 : 32)) throw new CryptoError('bad random-to-key input length');
  return bytes.slice();
}

export function randomKey(b: CryptoBackend, etype: number): Uint8Array {
  hashOf(b, etype);
  return randomToKey(etype, b.randomBytes(etype & 1 ? 16 : 32));
}

/** Kerberos PRF: 16 bytes (RFC 3962) for 17/18, 32 / 48 bytes (RFC 8009) for 19 / 20. */
export function prf(b: CryptoBackend, etype: number, key: Uint8Array, input: Uint8Array): Uint8Array {
  const h = hashOf(b, etype);
  const kl = etype & 1 ? 16 : 32;
  if (!isBytes(key) || key.length !== kl) throw new CryptoError('bad key length for enctype ' + etype);
  // RFC 8009: KDF-HMAC-SHA2(key, "prf", hash length, input).
  if (isRfc8009(etype)) return kdfHmacSha2(b, h, key, fromAscii('prf'), etype === 19 ? 256 : 384, input);
  // RFC 3962 section 6: E(DK(key, "prf"), truncate16(SHA-1(input))).
  const kprf = dk(b, key, fromAscii('prf'), kl);
  const out = b.aesCbcEncrypt(kprf, ZERO_IV, b.sha1(input).subarray(0, 16));
  kprf.fill(0);
  return out;
}
