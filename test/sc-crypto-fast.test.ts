// host-tools/crypto/fast-krb.ts (the SC's batched, few-native-calls Kerberos crypto
// for enctypes 17/18) gives byte-identical results to the generic layer in
// firmware/proto/crypto on the plain node backend: derived keys, HMAC-SHA1,
// encryption with a given confounder at every length around the CTS block
// boundaries, decryption both ways, and the same CryptoErrors on tampering.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { nodeBackend as N } from '../host-tools/crypto/node.ts';
import { deriveRaw, hmacPads, hmacSha1, isFastEtype, KIND, UsageKey } from '../host-tools/crypto/fast-krb.ts';
import { decrypt, encrypt, hmacSha1 as genericHmacSha1, usageHmacKey, usageKeys } from '../firmware/proto/crypto/index.ts';

const rnd = (n: number) => new Uint8Array(randomBytes(n));

test('batched key derivation equals DK of the generic layer (Ke, Ki, Kc; 16- and 32-byte keys)', () => {
  for (const etype of [17, 18]) {
    const base = rnd(etype === 17 ? 16 : 32);
    const usages = [2, 11, 12, 1101, 1102, 1103, 1104, 0x7fffffff];
    const us: number[] = [];
    const ks: number[] = [];
    for (const u of usages) for (const k of [KIND.KE, KIND.KI, KIND.KC]) (us.push(u), ks.push(k));
    const got = deriveRaw(etype, base, us, ks);
    for (let i = 0; i < usages.length; i++) {
      const want = usageKeys(N, etype, base, usages[i]);
      assert.deepEqual(got[3 * i], want.ke, `Ke ${etype}/${usages[i]}`);
      assert.deepEqual(got[3 * i + 1], want.ki, `Ki ${etype}/${usages[i]}`);
      assert.deepEqual(got[3 * i + 2], want.kc, `Kc ${etype}/${usages[i]}`);
      assert.deepEqual(got[3 * i + 1], usageHmacKey(N, etype, base, usages[i]));
    }
  }
  assert.equal(isFastEtype(17) && isFastEtype(18), true);
  assert.equal(isFastEtype(19) || isFastEtype(20) || isFastEtype(23), false);
  assert.throws(() => deriveRaw(17, rnd(32), [1], [KIND.KE]), { name: 'CryptoError' });
  assert.throws(() => deriveRaw(19, rnd(16), [1], [KIND.KE]), { name: 'CryptoError' });
});

test('HMAC-SHA1 with prepared pads equals the generic HMAC (keys of 0..64 bytes, data of 0..300 bytes)', () => {
  for (const kl of [0, 1, 16, 20, 32, 63, 64]) {
    const key = rnd(kl);
    const p = hmacPads(key);
    for (const dl of [0, 1, 20, 55, 56, 64, 200, 300, 2000]) {
      const d = rnd(dl);
      assert.deepEqual(new Uint8Array(hmacSha1(p, d)), genericHmacSha1(N, key, d), `key ${kl} data ${dl}`);
    }
  }
  // every data length across the SHA-1 padding boundaries (55/56/63/64 and the next block)
  const key = rnd(16);
  const p = hmacPads(key);
  for (let dl = 0; dl <= 200; dl++) {
    const d = rnd(dl);
    assert.deepEqual(new Uint8Array(hmacSha1(p, d)), genericHmacSha1(N, key, d), `data ${dl}`);
  }
  // the pads are per key: two keys interleaved keep their own state
  const k2 = rnd(20);
  const p2 = hmacPads(k2);
  const d = rnd(77);
  assert.deepEqual(new Uint8Array(hmacSha1(p2, d)), genericHmacSha1(N, k2, d));
  assert.deepEqual(new Uint8Array(hmacSha1(p, d)), genericHmacSha1(N, key, d));
  assert.throws(() => hmacPads(rnd(65)), { name: 'CryptoError' });
});

test('encrypt/decrypt are byte-identical to the generic layer at every CTS length 0..80 and beyond', () => {
  for (const etype of [17, 18]) {
    const base = rnd(etype === 17 ? 16 : 32);
    for (const usage of [2, 11, 12]) {
      const k = UsageKey.derive(etype, base, usage);
      for (let len = 0; len <= 80; len++) check(k, etype, base, usage, len);
      for (const len of [100, 128, 129, 255, 400, 1000]) check(k, etype, base, usage, len);
      k.wipe();
    }
  }
});

function check(k: UsageKey, etype: number, base: Uint8Array, usage: number, len: number): void {
  const pt = rnd(len);
  const conf = rnd(16);
  const mine = k.encrypt(pt, conf);
  const generic = encrypt(N, etype, base, usage, pt, conf);
  assert.deepEqual(mine, generic, `encrypt ${etype}/${usage}/${len}`);
  assert.deepEqual(k.decrypt(generic), pt, `decrypt ${etype}/${usage}/${len}`);
  // twice: the cached decipher carries no state between messages
  assert.deepEqual(k.decrypt(generic), pt);
  assert.deepEqual(decrypt(N, etype, base, usage, k.encrypt(pt)), pt);
  // tampering anywhere fails like the generic layer does
  const bad = generic.slice();
  bad[(len * 7) % bad.length] ^= 1;
  assert.throws(() => k.decrypt(bad), { name: 'CryptoError' });
  assert.throws(() => decrypt(N, etype, base, usage, bad), { name: 'CryptoError' });
}

test('too-short ciphertexts, a wrong key and wrong lengths are CryptoErrors', () => {
  const base = rnd(16);
  const k = UsageKey.derive(17, base, 11);
  for (const n of [0, 1, 15, 27]) assert.throws(() => k.decrypt(rnd(n)), { name: 'CryptoError' });
  const c = encrypt(N, 17, base, 11, rnd(40));
  assert.throws(() => UsageKey.derive(17, rnd(16), 11).decrypt(c), { name: 'CryptoError' });
  assert.throws(() => UsageKey.derive(17, base, 12).decrypt(c), { name: 'CryptoError' });
  assert.throws(() => k.encrypt(rnd(4), rnd(15)), { name: 'CryptoError' });
  assert.throws(() => new UsageKey(17, rnd(32), rnd(16)), { name: 'CryptoError' });
});
