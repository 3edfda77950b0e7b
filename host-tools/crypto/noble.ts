// CryptoBackend on @noble/hashes + @noble/ciphers: pure JS, portable, audited.
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha384 } from '@noble/hashes/sha2.js';
import { cbc } from '@noble/ciphers/aes.js';
import { randomBytes } from '@noble/ciphers/utils.js';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import { CryptoError } from '../../firmware/proto/errors.ts';

function checkCbc(key: Uint8Array, iv: Uint8Array, data: Uint8Array): void {
  if (key.length !== 16 && key.length !== 32) throw new CryptoError('AES key must be 16 or 32 bytes');
  if (iv.length !== 16) throw new CryptoError('AES-CBC IV must be 16 bytes');
  if (data.length % 16 !== 0) throw new CryptoError('AES-CBC data must be whole blocks');
}

export const nobleBackend: CryptoBackend = {
  name: 'noble',
  sha1: (data) => sha1(data),
  sha256: (data) => sha256(data),
  sha384: (data) => sha384(data),
  aesCbcEncrypt(key, iv, data) {
    checkCbc(key, iv, data);
    if (data.length === 0) return new Uint8Array(0);
    return cbc(key, iv, { disablePadding: true }).encrypt(data);
  },
  aesCbcDecrypt(key, iv, data) {
    checkCbc(key, iv, data);
    if (data.length === 0) return new Uint8Array(0);
    return cbc(key, iv, { disablePadding: true }).decrypt(data);
  },
  randomBytes: (n) => randomBytes(n),
};
