// A CryptoBackend tuned for the Signaling Controller's hot path, on node:crypto.
// Same results as host-tools/crypto/node.ts (test/sc-crypto.test.ts; the shared code above the interface
// is unchanged); it only removes per-call overhead that dominates small messages:
//  - AES: one cached ECB cipher/decipher per key (bounded). CBC decryption is one
//    bulk ECB pass plus an XOR; CBC encryption of up to 3 blocks (key derivation,
//    short CTS) is chained block by block on the cached cipher, longer input uses a
//    fresh CBC cipher (one native call beats many small ones there).
//  - hashes: crypto.hash() one-shot instead of createHash().update().digest().
//  - random bytes: drawn from a pooled CSPRNG buffer (rand.ts).
import { createCipheriv, createDecipheriv, createHash, type Cipher, type Decipher } from 'node:crypto';
import * as nodeCrypto from 'node:crypto';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import { CryptoError } from '../../firmware/proto/errors.ts';
import { randomBytes } from './rand.ts';

type Pair = { enc: Cipher | null; dec: Decipher | null };

const MAX_CACHED_KEYS = 4096;
const ciphers = new Map<string, Pair>();

function pairFor(key: Uint8Array): Pair {
  const id = Buffer.from(key.buffer, key.byteOffset, key.length).toString('latin1');
  let p = ciphers.get(id);
  if (!p) {
    p = { enc: null, dec: null };
    if (ciphers.size >= MAX_CACHED_KEYS) {
      const first = ciphers.keys().next();
      if (!first.done) ciphers.delete(first.value);
    }
    ciphers.set(id, p);
  }
  return p;
}
function ecbEnc(key: Uint8Array): Cipher {
  const p = pairFor(key);
  if (!p.enc) {
    p.enc = createCipheriv(key.length === 16 ? 'aes-128-ecb' : 'aes-256-ecb', key, null);
    p.enc.setAutoPadding(false);
  }
  return p.enc;
}
function ecbDec(key: Uint8Array): Decipher {
  const p = pairFor(key);
  if (!p.dec) {
    p.dec = createDecipheriv(key.length === 16 ? 'aes-128-ecb' : 'aes-256-ecb', key, null);
    p.dec.setAutoPadding(false);
  }
  return p.dec;
}

function check(key: Uint8Array, iv: Uint8Array, data: Uint8Array): void {
  if (key.length !== 16 && key.length !== 32) throw new CryptoError('AES key must be 16 or 32 bytes');
  if (iv.length !== 16) throw new CryptoError('AES-CBC IV must be 16 bytes');
  if (data.length % 16 !== 0) throw new CryptoError('AES-CBC data must be whole blocks');
}

function cbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  check(key, iv, data);
  const n = data.length;
  if (n === 0) return new Uint8Array(0);
  if (n > 48) {
    const c = createCipheriv(key.length === 16 ? 'aes-128-cbc' : 'aes-256-cbc', key, iv);
    c.setAutoPadding(false);
    const out = c.update(data);
    c.final();
    return new Uint8Array(out.buffer, out.byteOffset, out.length).slice();
  }
  const enc = ecbEnc(key);
  const out = new Uint8Array(n);
  const x = Buffer.allocUnsafe(16);
  for (let o = 0; o < n; o += 16) {
    if (o === 0) for (let j = 0; j < 16; j++) x[j] = data[j] ^ iv[j];
    else for (let j = 0; j < 16; j++) x[j] = data[o + j] ^ out[o - 16 + j];
    out.set(enc.update(x), o);
  }
  x.fill(0);
  return out;
}

function cbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  check(key, iv, data);
  const n = data.length;
  if (n === 0) return new Uint8Array(0);
  const d = ecbDec(key).update(data);
  const out = new Uint8Array(n);
  for (let j = 0; j < 16; j++) out[j] = d[j] ^ iv[j];
  for (let i = 16; i < n; i++) out[i] = d[i] ^ data[i - 16];
  d.fill(0);
  return out;
}

const oneShot = (nodeCrypto as unknown as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;
function hashFn(alg: string): (data: Uint8Array) => Uint8Array {
  if (oneShot) {
    return (data) => {
      const b = oneShot(alg, data, 'buffer');
      return new Uint8Array(b.buffer, b.byteOffset, b.length).slice();
    };
  }
  return (data) => new Uint8Array(createHash(alg).update(data).digest());
}

export const scCryptoBackend: CryptoBackend = {
  name: 'node-sc',
  sha1: hashFn('sha1'),
  sha256: hashFn('sha256'),
  sha384: hashFn('sha384'),
  aesCbcEncrypt: cbcEncrypt,
  aesCbcDecrypt: cbcDecrypt,
  randomBytes,
};

/** Drops every cached cipher context (on SC shutdown). */
export function clearCipherCache(): void {
  ciphers.clear();
}
