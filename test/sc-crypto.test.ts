// The SC's tuned crypto backend gives byte-identical results to the plain node
// backend: AES-CBC both ways at every length that matters, hashes, and the
// Kerberos operations built on them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { scCryptoBackend as F } from '../host-tools/sc/fast-crypto.ts';
import { nodeBackend as N } from '../host-tools/crypto/node.ts';
import { decrypt, encrypt, usageHmacKey } from '../firmware/proto/crypto/index.ts';

test('AES-CBC, hashes and random bytes match node.ts', () => {
  for (const kl of [16, 32]) {
    const key = new Uint8Array(randomBytes(kl));
    for (let blocks = 1; blocks <= 9; blocks++) {
      const iv = new Uint8Array(randomBytes(16));
      const data = new Uint8Array(randomBytes(blocks * 16));
      const c = F.aesCbcEncrypt(key, iv, data);
      assert.deepEqual(c, N.aesCbcEncrypt(key, iv, data), `encrypt ${kl}/${blocks}`);
      assert.deepEqual(F.aesCbcDecrypt(key, iv, c), data, `decrypt ${kl}/${blocks}`);
      // the cached cipher keeps no state between calls
      assert.deepEqual(F.aesCbcDecrypt(key, iv, c), data);
    }
  }
  assert.throws(() => F.aesCbcEncrypt(new Uint8Array(15), new Uint8Array(16), new Uint8Array(16)), { name: 'CryptoError' });
  assert.throws(() => F.aesCbcDecrypt(new Uint8Array(16), new Uint8Array(16), new Uint8Array(17)), { name: 'CryptoError' });
  const d = new Uint8Array(randomBytes(100));
  assert.deepEqual(F.sha1(d), N.sha1(d));
  assert.deepEqual(F.sha256(d), N.sha256(d));
  assert.deepEqual(F.sha384!(d), N.sha384!(d));
  const r1 = F.randomBytes(16);
  const r2 = F.randomBytes(16);
  assert.equal(r1.length, 16);
  assert.notDeepEqual(r1, r2);
});

test('Kerberos encrypt/decrypt interoperate across the two backends for every enctype', () => {
  for (const etype of [17, 18, 19, 20]) {
    const key = new Uint8Array(randomBytes(etype === 17 || etype === 19 ? 16 : 32));
    for (const len of [0, 5, 16, 31, 200]) {
      const pt = new Uint8Array(randomBytes(len));
      assert.deepEqual(decrypt(N, etype, key, 11, encrypt(F, etype, key, 11, pt)), pt);
      assert.deepEqual(decrypt(F, etype, key, 11, encrypt(N, etype, key, 11, pt)), pt);
    }
    assert.deepEqual(usageHmacKey(F, etype, key, 1101), usageHmacKey(N, etype, key, 1101));
  }
});
