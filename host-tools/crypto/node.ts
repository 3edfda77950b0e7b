// CryptoBackend on node:crypto (OpenSSL): the fastest, for the Signaling Controller and KDC.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import { CryptoError } from '../../firmware/proto/errors.ts';

// Plain Uint8Array copies: a Buffer's .slice() shares memory, which the shared
// code must never be surprised by.
function u8(buf: Buffer): Uint8Array {
  return new Uint8Array(buf);
}

function hash(alg: string): (data: Uint8Array) => Uint8Array {
  return (data) => u8(createHash(alg).update(data).digest());
}

function cbc(encrypt: boolean, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  if (key.length !== 16 && key.length !== 32) throw new CryptoError('AES key must be 16 or 32 bytes');
  if (iv.length !== 16) throw new CryptoError('AES-CBC IV must be 16 bytes');
  if (data.length % 16 !== 0) throw new CryptoError('AES-CBC data must be whole blocks');
  if (data.length === 0) return new Uint8Array(0);
  const alg = key.length === 16 ? 'aes-128-cbc' : 'aes-256-cbc';
  const c = encrypt ? createCipheriv(alg, key, iv) : createDecipheriv(alg, key, iv);
  c.setAutoPadding(false);
  const a = c.update(data);
  const b = c.final();
  return b.length ? u8(Buffer.concat([a, b])) : u8(a);
}

export const nodeBackend: CryptoBackend = {
  name: 'node',
  sha1: hash('sha1'),
  sha256: hash('sha256'),
  sha384: hash('sha384'),
  aesCbcEncrypt: (key, iv, data) => cbc(true, key, iv, data),
  aesCbcDecrypt: (key, iv, data) => cbc(false, key, iv, data),
  randomBytes: (n) => u8(randomBytes(n)),
};
