// host-tools/crypto/aes-js.ts (the JS AES the SC uses for one-shot subkey
// derivations) against FIPS-197 Appendix C and node:crypto, and deriveRaw's
// one-shot path against the native one and the generic layer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { aesEncryptBlocks } from '../host-tools/crypto/aes-js.ts';
import { deriveRaw, KIND } from '../host-tools/crypto/fast-krb.ts';
import { nodeBackend as N } from '../host-tools/crypto/node.ts';
import { usageKeys } from '../firmware/proto/crypto/index.ts';

import { aesDecryptBlocks } from '../host-tools/crypto/aes-js.ts';
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const rnd = (n: number) => new Uint8Array(randomBytes(n));

test('FIPS-197 C.1 (AES-128) and C.3 (AES-256) example vectors', () => {
  const pt = hex('00112233445566778899aabbccddeeff');
  const out = new Uint8Array(16);
  aesEncryptBlocks(hex('000102030405060708090a0b0c0d0e0f'), pt, out, 0);
  assert.equal(Buffer.from(out).toString('hex'), '69c4e0d86a7b0430d8cdb78070b4c55a');
  aesEncryptBlocks(hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'), pt, out, 0);
  assert.equal(Buffer.from(out).toString('hex'), '8ea2b7ca516745bfeafc49904b496089');
});

test('equals node:crypto AES-ECB for random 16- and 32-byte keys, 1..4 blocks, at an offset and in place', () => {
  for (const len of [16, 32]) {
    for (let t = 0; t < 300; t++) {
      const key = rnd(len);
      const data = rnd(16 * (1 + (t % 4)));
      const c = createCipheriv(len === 16 ? 'aes-128-ecb' : 'aes-256-ecb', key, null);
      c.setAutoPadding(false);
      const want = new Uint8Array(c.update(data));
      const out = new Uint8Array(data.length + 5);
      aesEncryptBlocks(key, data, out, 5);
      assert.deepEqual(out.subarray(5), want);
      const same = data.slice();
      aesEncryptBlocks(key, same, same, 0);
      assert.deepEqual(same, want);
    }
  }
  for (const len of [16, 32]) {
    for (let t = 0; t < 300; t++) {
      const key = rnd(len);
      const data = rnd(16 * (1 + (t % 8)));
      const d = createDecipheriv(len === 16 ? 'aes-128-ecb' : 'aes-256-ecb', key, null);
      d.setAutoPadding(false);
      const want = new Uint8Array(d.update(data));
      const out = new Uint8Array(data.length + 3);
      aesDecryptBlocks(key, data, out, 3);
      assert.deepEqual(out.subarray(3), want, `decrypt ${len}/${t}`);
    }
  }
  assert.throws(() => aesEncryptBlocks(rnd(24), rnd(16), new Uint8Array(16), 0), RangeError);
  assert.throws(() => aesDecryptBlocks(rnd(16), rnd(17), new Uint8Array(32), 0), RangeError);
  assert.throws(() => aesEncryptBlocks(rnd(16), rnd(15), new Uint8Array(16), 0), RangeError);
});

test("deriveRaw's one-shot (JS) path equals the native path and DK of the generic layer", () => {
  for (const etype of [17, 18]) {
    for (let t = 0; t < 50; t++) {
      const base = rnd(etype === 17 ? 16 : 32);
      const usages = [1102, 1103, 11, 12].slice(0, 1 + (t % 4));
      const kinds = usages.map((_, i) => [KIND.KI, KIND.KE, KIND.KC][i % 3]);
      const js = deriveRaw(etype, base, usages, kinds, true);
      const native = deriveRaw(etype, base, usages, kinds);
      assert.deepEqual(js, native);
      for (let i = 0; i < usages.length; i++) {
        const k = usageKeys(N, etype, base, usages[i]);
        assert.deepEqual(js[i], kinds[i] === KIND.KI ? k.ki : kinds[i] === KIND.KE ? k.ke : k.kc);
      }
    }
  }
});

test("UsageKey's first encrypt (CBC in JS, no cipher context) equals the generic layer (JS up to 48 bytes of plaintext, native above), and later ones still do", async () => {
  const { UsageKey } = await import('../host-tools/crypto/fast-krb.ts');
  const { encrypt } = await import('../firmware/proto/crypto/index.ts');
  for (const etype of [17, 18]) {
    for (let len = 0; len <= 60; len++) {
      const base = rnd(etype === 17 ? 16 : 32);
      const k = UsageKey.derive(etype, base, 12, true);
      for (let i = 0; i < 3; i++) {
        const pt = rnd(len);
        const conf = rnd(16);
        assert.deepEqual(k.encrypt(pt, conf), encrypt(N, etype, base, 12, pt, conf), `${etype}/${len}/${i}`);
      }
      k.wipe();
    }
  }
});

test("UsageKey's first decrypt (JS) equals the generic layer at every length, rejects tampering, and later ones (native) still do", async () => {
  const { UsageKey } = await import('../host-tools/crypto/fast-krb.ts');
  const { encrypt } = await import('../firmware/proto/crypto/index.ts');
  for (const etype of [17, 18]) {
    for (let len = 0; len <= 130; len++) {
      const base = rnd(etype === 17 ? 16 : 32);
      const pt = rnd(len);
      const c = encrypt(N, etype, base, 11, pt);
      const bad = c.slice();
      bad[(len * 5) % bad.length] ^= 0x20;
      const k = UsageKey.derive(etype, base, 11, true);
      assert.throws(() => k.decrypt(bad), { name: 'CryptoError' }, `tampered ${etype}/${len}`);
      const k2 = UsageKey.derive(etype, base, 11, true);
      assert.deepEqual(k2.decrypt(c), pt, `first ${etype}/${len}`);
      assert.deepEqual(k2.decrypt(c), pt, `second ${etype}/${len}`);
      assert.throws(() => k2.decrypt(bad), { name: 'CryptoError' });
      k.wipe();
      k2.wipe();
    }
  }
});
