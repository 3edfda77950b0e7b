// The Kerberos crypto layer against the RFC vectors (RFC 3961 A.1, RFC 3962 B,
// RFC 8009 A, RFC 5869 A.1) on all three backends, plus round trips, tamper and
// truncation behaviour, the derived-key cache bound and the firmware bundle in
// an Espruino-like vm. The PBKDF2 string-to-key vectors live in crypto-s2k.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { buildSync } from 'esbuild';
import * as K from '../firmware/proto/crypto/index.ts';
import type { CryptoBackend } from '../firmware/proto/crypto/backend.ts';
import { CryptoError, isCryptoError } from '../firmware/proto/errors.ts';
import { concat, fromAscii, fromHex, toHex, u32 } from '../firmware/proto/bytes.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { makeEspruinoBackend } from '../firmware/platform/espruino-crypto.ts';
import { makeEspruinoCryptoModule } from '../host-tools/emulator/crypto-shim.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const vec = (name: string) => JSON.parse(readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8'));
const h = (s: string) => fromHex(s.replace(/\s+/g, ''));
const NFOLD = vec('crypto-rfc3961-nfold.json');
const R3962 = vec('crypto-rfc3962.json');
const R8009 = vec('crypto-rfc8009.json');
const R5869 = vec('crypto-rfc5869.json');

/** A deterministic stand-in for E.hwRand(): xorshift32, signed 32-bit like the firmware's ints. */
function fakeHwRand(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x | 0;
  };
}

const espruinoBackend = makeEspruinoBackend(makeEspruinoCryptoModule(), fakeHwRand(0x5eed));
const BACKENDS: CryptoBackend[] = [nobleBackend, nodeBackend, espruinoBackend];

/** Wraps a backend and counts the calls that reach it. */
function counting(b: CryptoBackend) {
  const n = { cbcEnc: 0, cbcDec: 0, hash: 0 };
  const wrapped: CryptoBackend = {
    name: b.name + '-counting',
    sha1: (d) => (n.hash++, b.sha1(d)),
    sha256: (d) => (n.hash++, b.sha256(d)),
    sha384: b.sha384 ? (d) => (n.hash++, b.sha384!(d)) : null,
    aesCbcEncrypt: (k, iv, d) => (n.cbcEnc++, b.aesCbcEncrypt(k, iv, d)),
    aesCbcDecrypt: (k, iv, d) => (n.cbcDec++, b.aesCbcDecrypt(k, iv, d)),
    randomBytes: (x) => b.randomBytes(x),
  };
  return { b: wrapped, n };
}

function throwsCrypto(fn: () => unknown, what: string): void {
  assert.throws(fn, (e: unknown) => isCryptoError(e) && e instanceof Error, what);
}

describe('n-fold: RFC 3961 Appendix A.1', () => {
  for (const v of NFOLD.vectors) {
    it(`${v.bits}-fold("${v.input}")`, () => {
      assert.equal(toHex(K.nfold(fromAscii(v.input), v.bits / 8)), toHex(h(v.output)));
    });
  }
});

for (const b of BACKENDS) {
  describe(`backend ${b.name}`, () => {
    it('AES-CTS: RFC 3962 Appendix B vectors, both directions', () => {
      const key = h(R3962.cts.key);
      const iv = h(R3962.cts.iv);
      for (const v of R3962.cts.vectors) {
        const c = K.aesCts(b, key, iv, h(v.input), true);
        assert.equal(toHex(c), toHex(h(v.output)), `encrypt ${h(v.input).length} bytes`);
        assert.equal(toHex(K.aesCts(b, key, iv, h(v.output), false)), toHex(h(v.input)), `decrypt ${h(v.input).length} bytes`);
      }
    });

    it('AES-CTS costs one backend call to encrypt and two to decrypt', () => {
      const { b: cb, n } = counting(b);
      const key = h(R3962.cts.key);
      const data = h(R3962.cts.vectors[5].input); // 64 bytes, 4 blocks
      const c = K.aesCts(cb, key, K.ZERO_IV, data, true);
      assert.deepEqual(n, { cbcEnc: 1, cbcDec: 0, hash: 0 });
      K.aesCts(cb, key, K.ZERO_IV, c, false);
      assert.deepEqual(n, { cbcEnc: 1, cbcDec: 2, hash: 0 });
      throwsCrypto(() => K.aesCts(b, key, K.ZERO_IV, new Uint8Array(15), true), 'CTS of less than a block');
    });

    it('RFC 8009 Appendix A: key derivation (Kc, Ke, Ki for usage 2)', () => {
      for (const v of R8009.keyDerivation) {
        const base = h(v.baseKey);
        const u = K.usageKeys(b, v.etype, base, v.usage);
        assert.equal(toHex(u.kc), toHex(h(v.Kc)), `Kc ${v.etype}`);
        assert.equal(toHex(u.ke), toHex(h(v.Ke)), `Ke ${v.etype}`);
        assert.equal(toHex(u.ki), toHex(h(v.Ki)), `Ki ${v.etype}`);
        // deriveKey gives the enctype's key length: Ke exactly.
        assert.equal(toHex(K.deriveKey(b, v.etype, base, concat([u32(v.usage), new Uint8Array([0xaa])]))), toHex(h(v.Ke)));
        // The protocol's HMAC key is Ki.
        assert.equal(toHex(K.usageHmacKey(b, v.etype, base, v.usage)), toHex(h(v.Ki)));
        const hash = v.etype === 19 ? 'sha256' : 'sha384';
        const label = concat([u32(v.usage), new Uint8Array([0x99])]);
        assert.equal(toHex(K.kdfHmacSha2(b, hash, base, label, h(v.Kc).length * 8, new Uint8Array(0))), toHex(h(v.Kc)));
      }
    });

    it('RFC 8009 Appendix A: sample encryptions with the given confounders, and their decryption', () => {
      for (const v of R8009.encryptions) {
        const key = h(v.baseKey);
        const expect = concat([h(v.aesOutput), h(v.hmac)]);
        const c = K.encrypt(b, v.etype, key, v.usage, h(v.plaintext), h(v.confounder));
        assert.equal(toHex(c), toHex(expect), `etype ${v.etype}, ${h(v.plaintext).length}-byte plaintext`);
        assert.equal(toHex(K.decrypt(b, v.etype, key, v.usage, expect)), toHex(h(v.plaintext)));
      }
    });

    it('RFC 8009 Appendix A: sample checksums', () => {
      for (const v of R8009.checksums) {
        const key = h(v.baseKey);
        const data = h(v.plaintext);
        assert.equal(toHex(K.makeChecksum(b, v.etype, key, v.usage, data)), toHex(h(v.checksum)));
        assert.equal(K.verifyChecksum(b, v.etype, key, v.usage, data, h(v.checksum)), true);
        const bad = h(v.checksum);
        bad[bad.length - 1] ^= 1;
        assert.equal(K.verifyChecksum(b, v.etype, key, v.usage, data, bad), false);
        assert.equal(K.verifyChecksum(b, v.etype, key, v.usage, data, h(v.checksum).subarray(1)), false);
        assert.equal(K.verifyChecksum(b, v.etype, key, v.usage + 1, data, h(v.checksum)), false);
      }
    });

    it('RFC 8009 Appendix A: PRF', () => {
      for (const v of R8009.prf) {
        assert.equal(toHex(K.prf(b, v.etype, h(v.key), fromAscii(v.input))), toHex(h(v.output)));
      }
    });

    it('RFC 5869 A.1: HKDF-Expand-SHA256 from the PRK (and HKDF-Extract = HMAC-SHA256)', () => {
      assert.equal(toHex(K.hmac(b, 'sha256', h(R5869.salt), h(R5869.ikm))), R5869.prk);
      assert.equal(toHex(K.hkdfExpandSha256(b, h(R5869.prk), h(R5869.info), R5869.L)), R5869.okm);
      // A shorter L is a prefix; L beyond 255 blocks is refused.
      assert.equal(toHex(K.hkdfExpandSha256(b, h(R5869.prk), h(R5869.info), 10)), R5869.okm.slice(0, 20));
      throwsCrypto(() => K.hkdfExpandSha256(b, h(R5869.prk), h(R5869.info), 255 * 32 + 1), 'HKDF L too large');
    });

    it('supportedEtypes: strongest first, and the profile table', () => {
      assert.deepEqual(K.supportedEtypes(b), [20, 18, 19, 17]);
      const p = K.getProfile(K.ETYPE.AES256_CTS_HMAC_SHA384_192);
      assert.deepEqual(
        p && { etype: p.etype, name: p.name, keyBytes: p.keyBytes, macBytes: p.macBytes, checksumType: p.checksumType },
        { etype: 20, name: 'aes256-cts-hmac-sha384-192', keyBytes: 32, macBytes: 24, checksumType: K.CKSUMTYPE.HMAC_SHA384_192_AES256 },
      );
      assert.equal(K.getProfile(17)?.checksumType, K.CKSUMTYPE.HMAC_SHA1_96_AES128);
      assert.equal(K.getProfile(18)?.checksumType, K.CKSUMTYPE.HMAC_SHA1_96_AES256);
      assert.equal(K.getProfile(19)?.checksumType, K.CKSUMTYPE.HMAC_SHA256_128_AES128);
      assert.equal(K.getProfile(23), null);
      assert.equal(K.getProfileByChecksumType(16)?.etype, 18);
      throwsCrypto(() => K.encrypt(b, 23, new Uint8Array(16), 1, new Uint8Array(1)), 'unsupported enctype');
    });

    it('round trips for every enctype, usage and a spread of lengths; ciphertexts interoperate across backends', () => {
      const usages = [1, 2, 3, 7, 11, 12, 1101, 1102, 1103, 1104, 0xffffffff];
      const lengths = [0, 1, 15, 16, 17, 31, 32, 33, 100, 1000];
      for (const etype of K.supportedEtypes(b)) {
        const p = K.getProfile(etype)!;
        const key = K.randomKey(b, etype);
        assert.equal(key.length, p.keyBytes);
        for (const usage of usages) {
          for (const len of lengths) {
            const pt = b.randomBytes(len);
            const c = K.encrypt(b, etype, key, usage, pt);
            assert.equal(c.length, 16 + len + p.macBytes);
            assert.equal(toHex(K.decrypt(b, etype, key, usage, c)), toHex(pt), `etype ${etype} usage ${usage} len ${len}`);
          }
        }
        // Same plaintext twice: fresh confounders, different ciphertexts.
        const pt = fromAscii('same plaintext');
        assert.notEqual(toHex(K.encrypt(b, etype, key, 5, pt)), toHex(K.encrypt(b, etype, key, 5, pt)));
        // What this backend encrypts, every other backend decrypts.
        const c = K.encrypt(b, etype, key, 1101, pt);
        for (const other of BACKENDS) assert.equal(toHex(K.decrypt(other, etype, key, 1101, c)), toHex(pt), `${b.name} -> ${other.name}`);
      }
    });

    it('tamper detection: flipping any one bit of a ciphertext is a CryptoError', () => {
      for (const etype of K.supportedEtypes(b)) {
        const key = K.randomKey(b, etype);
        const c = K.encrypt(b, etype, key, 1102, fromAscii('a message of some thirty bytes'));
        for (let i = 0; i < c.length; i++) {
          const t = c.slice();
          t[i] ^= 1 << (i % 8);
          throwsCrypto(() => K.decrypt(b, etype, key, 1102, t), `etype ${etype} byte ${i}`);
        }
        // Wrong key, wrong usage, wrong enctype of the same key size: also integrity failures.
        throwsCrypto(() => K.decrypt(b, etype, K.randomKey(b, etype), 1102, c), 'wrong key');
        throwsCrypto(() => K.decrypt(b, etype, key, 1103, c), 'wrong usage');
        const twin = { 17: 19, 19: 17, 18: 20, 20: 18 }[etype as 17 | 18 | 19 | 20];
        if (K.supportedEtypes(b).includes(twin)) throwsCrypto(() => K.decrypt(b, twin, key, 1102, c), 'wrong enctype');
      }
    });

    it('truncated or malformed ciphertexts throw CryptoError and nothing else', () => {
      for (const etype of K.supportedEtypes(b)) {
        const key = K.randomKey(b, etype);
        const c = K.encrypt(b, etype, key, 3, fromAscii('0123456789abcdefghij'));
        for (let n = 0; n < c.length; n++) {
          throwsCrypto(() => K.decrypt(b, etype, key, 3, c.subarray(0, n)), `etype ${etype} truncated to ${n}`);
          throwsCrypto(() => K.decrypt(b, etype, key, 3, c.subarray(c.length - n)), `etype ${etype} front-truncated to ${n}`);
        }
        throwsCrypto(() => K.decrypt(b, etype, key, 3, concat([c, new Uint8Array(1)])), 'one byte appended');
        throwsCrypto(() => K.decrypt(b, etype, key.subarray(1), 3, c), 'short key');
        throwsCrypto(() => K.decrypt(b, etype, key, -1, c), 'negative usage');
        throwsCrypto(() => K.decrypt(b, etype, key, 3, null as unknown as Uint8Array), 'null ciphertext');
        throwsCrypto(() => K.encrypt(b, etype, key, 3, new Uint8Array(4), new Uint8Array(15)), 'short confounder');
      }
    });

    it('keyed checksums: round trip, modified data fails, constant-length compare', () => {
      for (const etype of K.supportedEtypes(b)) {
        const p = K.getProfile(etype)!;
        const key = K.randomKey(b, etype);
        const data = b.randomBytes(77);
        const ck = K.makeChecksum(b, etype, key, 1104, data);
        assert.equal(ck.length, p.macBytes);
        assert.equal(K.verifyChecksum(b, etype, key, 1104, data, ck), true);
        const d2 = data.slice();
        d2[40] ^= 0x80;
        assert.equal(K.verifyChecksum(b, etype, key, 1104, d2, ck), false);
        assert.equal(K.verifyChecksum(b, etype, key, 1104, data, concat([ck, new Uint8Array(1)])), false);
      }
    });

    it('usageHmacKey: Ki of the usage (DK for sha1 enctypes, 128/192-bit KDF for 19/20), usable as an HMAC-SHA1 key', () => {
      const expectLen: { [e: number]: number } = { 17: 16, 18: 32, 19: 16, 20: 24 };
      for (const etype of K.supportedEtypes(b)) {
        const key = K.randomKey(b, etype);
        const ki = K.usageHmacKey(b, etype, key, 1101);
        assert.equal(ki.length, expectLen[etype]);
        assert.equal(toHex(ki), toHex(K.usageKeys(b, etype, key, 1101).ki));
        if (etype === 17 || etype === 18) {
          assert.equal(toHex(ki), toHex(K.dk(b, key, concat([u32(1101), new Uint8Array([0x55])]), K.getProfile(etype)!.keyBytes)));
        }
        assert.notEqual(toHex(ki), toHex(K.usageHmacKey(b, etype, key, 1102)));
        assert.equal(K.hmacSha1(b, ki, fromAscii('msg')).length, 20);
        ki.fill(0); // a copy: the cache is unaffected
        assert.equal(toHex(K.usageHmacKey(b, etype, key, 1101)), toHex(K.usageKeys(b, etype, key, 1101).ki));
      }
    });

    it('randomToKey / randomKey / deriveKey argument checks', () => {
      assert.equal(toHex(K.randomToKey(18, new Uint8Array(32).fill(7))), '07'.repeat(32));
      throwsCrypto(() => K.randomToKey(18, new Uint8Array(16)), 'wrong length');
      throwsCrypto(() => K.randomToKey(99, new Uint8Array(16)), 'unknown enctype');
      throwsCrypto(() => K.deriveKey(b, 17, new Uint8Array(16), new Uint8Array(0)), 'empty constant');
      assert.equal(K.deriveKey(b, 20, new Uint8Array(32), fromAscii('x')).length, 32);
      assert.equal(K.prf(b, 17, new Uint8Array(16), fromAscii('test')).length, 16);
      assert.equal(K.prf(b, 18, new Uint8Array(32), fromAscii('test')).length, 16);
    });
  });
}

describe('backends agree and differ only in speed', () => {
  it('the same sha1/sha256/sha384/AES-CBC outputs from all three', () => {
    const data = nobleBackend.randomBytes(333);
    const key = nobleBackend.randomBytes(32);
    const iv = nobleBackend.randomBytes(16);
    const block = data.subarray(0, 320);
    const ref = nobleBackend;
    for (const b of BACKENDS) {
      assert.equal(toHex(b.sha1(data)), toHex(ref.sha1(data)), b.name);
      assert.equal(toHex(b.sha256(data)), toHex(ref.sha256(data)), b.name);
      assert.equal(toHex(b.sha384!(data)), toHex(ref.sha384!(data)), b.name);
      const c = b.aesCbcEncrypt(key, iv, block);
      assert.equal(toHex(c), toHex(ref.aesCbcEncrypt(key, iv, block)), b.name);
      assert.equal(toHex(b.aesCbcDecrypt(key.subarray(0, 16), iv, c)), toHex(ref.aesCbcDecrypt(key.subarray(0, 16), iv, c)), b.name);
      throwsCrypto(() => b.aesCbcEncrypt(key, iv, data.subarray(0, 17)), `${b.name} partial block`);
      throwsCrypto(() => b.aesCbcEncrypt(key.subarray(0, 24), iv, block), `${b.name} 24-byte key`);
      const r = b.randomBytes(37);
      assert.equal(r.length, 37);
      assert.ok(r.some((x) => x !== 0));
    }
  });
});

describe('Espruino backend', () => {
  it('without SHA384 on the board: no enctype 20, CryptoError if asked', () => {
    const b = makeEspruinoBackend(makeEspruinoCryptoModule({ sha512: false }), fakeHwRand(9));
    assert.equal(b.sha384, null);
    assert.deepEqual(K.supportedEtypes(b), [18, 19, 17]);
    throwsCrypto(() => K.encrypt(b, 20, new Uint8Array(32), 1, new Uint8Array(1)), 'etype 20 without sha384');
    throwsCrypto(() => K.randomKey(b, 20), 'randomKey 20 without sha384');
  });

  it('a board without AES or SHA256 fails with CryptoError, not a crash', () => {
    const b = makeEspruinoBackend(makeEspruinoCryptoModule({ aes: false, sha256: false }), fakeHwRand(9));
    throwsCrypto(() => b.aesCbcEncrypt(new Uint8Array(16), new Uint8Array(16), new Uint8Array(16)), 'no AES');
    throwsCrypto(() => b.sha256(new Uint8Array(1)), 'no SHA256');
    throwsCrypto(() => K.encrypt(b, 17, new Uint8Array(16), 1, new Uint8Array(1)), 'encrypt without AES');
    assert.equal(b.sha1(fromAscii('abc')).length, 20);
  });

  it('native calls that print an error and return undefined become CryptoError', () => {
    const errors: string[] = [];
    const mod = makeEspruinoCryptoModule({ onError: (m) => errors.push(m) });
    const broken = { ...mod, SHA1: () => undefined };
    const b = makeEspruinoBackend(broken, fakeHwRand(1));
    throwsCrypto(() => b.sha1(new Uint8Array(3)), 'SHA1 returned undefined');
    // The backend validates before calling, so the native error path is never reached.
    const good = makeEspruinoBackend(mod, fakeHwRand(1));
    throwsCrypto(() => good.aesCbcDecrypt(new Uint8Array(20), new Uint8Array(16), new Uint8Array(16)), 'bad key');
    assert.deepEqual(errors, []);
  });

  it('a native call without memory for its result is retried once after freeing the key cache, then CryptoError', () => {
    const mod = makeEspruinoCryptoModule();
    const aes = mod.AES!;
    const realSha1 = mod.SHA1;
    let fails = 0;
    let calls = 0;
    // As the firmware does near a full or fragmented variable store: print, return undefined.
    const flaky = {
      ...mod,
      SHA1: (d: Uint8Array) => (calls++, fails-- > 0 ? undefined : realSha1(d)),
      AES: {
        encrypt: (d: Uint8Array, k: Uint8Array, o: { mode?: string; iv?: Uint8Array }) => (calls++, fails-- > 0 ? undefined : aes.encrypt(d, k, o)),
        decrypt: (d: Uint8Array, k: Uint8Array, o: { mode?: string; iv?: Uint8Array }) => (calls++, fails-- > 0 ? undefined : aes.decrypt(d, k, o)),
      },
    };
    const b = makeEspruinoBackend(flaky, fakeHwRand(3));
    const ref = makeEspruinoBackend(mod, fakeHwRand(3));
    const key = fromHex('000102030405060708090a0b0c0d0e0f');
    const iv = new Uint8Array(16).fill(7);
    const pt = new Uint8Array(48).map((_, i) => i * 5);
    K.setKeyCacheSize(64);
    K.encrypt(ref, 17, key, 1101, pt); // fills the derived-key cache
    assert.ok(K.keyCacheSize() > 0);
    // One failure: same result as without, after one retry; the cache was dropped.
    fails = 1;
    calls = 0;
    assert.deepEqual(b.aesCbcEncrypt(key, iv, pt), ref.aesCbcEncrypt(key, iv, pt));
    assert.equal(calls, 2);
    assert.equal(K.keyCacheSize(), 0);
    fails = 1;
    calls = 0;
    assert.deepEqual(b.aesCbcDecrypt(key, iv, pt), ref.aesCbcDecrypt(key, iv, pt));
    assert.equal(calls, 2);
    fails = 1;
    calls = 0;
    assert.deepEqual(b.sha1(pt), ref.sha1(pt));
    assert.equal(calls, 2);
    // A whole encryption through a flaky backend still matches (and decrypts).
    fails = 1;
    const ct = K.encrypt(b, 17, key, 1101, pt);
    assert.deepEqual(K.decrypt(ref, 17, key, 1101, ct), pt);
    // Two failures in a row: CryptoError, no third call.
    fails = 2;
    calls = 0;
    throwsCrypto(() => b.aesCbcEncrypt(key, iv, pt), 'still no memory after the retry');
    assert.equal(calls, 2);
    fails = 0;
    calls = 0;
    b.sha1(pt);
    assert.equal(calls, 1, 'no retry when the first call succeeds');
  });

  it('randomBytes draws one hwRand() word per 4 bytes', () => {
    let calls = 0;
    const words = [0x01020304, -1, 0x7f000080];
    const b = makeEspruinoBackend(makeEspruinoCryptoModule(), () => words[calls++ % 3]);
    const r = b.randomBytes(10);
    assert.equal(calls, 3);
    assert.equal(r.length, 10);
    const expect = new Uint8Array(new Uint32Array([0x01020304, 0xffffffff, 0x7f000080]).buffer, 0, 10);
    assert.equal(toHex(r), toHex(expect));
  });
});

describe('derived-key cache', () => {
  it('is bounded and does not grow per message', () => {
    const b = nodeBackend;
    K.clearKeyCache();
    const key = K.randomKey(b, 18);
    for (let i = 0; i < 100; i++) K.decrypt(b, 18, key, 1101, K.encrypt(b, 18, key, 1101, fromAscii('m' + i)));
    assert.equal(K.keyCacheSize(), 1);
    for (let i = 0; i < 300; i++) K.makeChecksum(b, 17, K.randomKey(b, 17), i, fromAscii('x'));
    assert.equal(K.keyCacheSize(), 64);
    K.setKeyCacheSize(8);
    assert.equal(K.keyCacheSize(), 8);
    K.setKeyCacheSize(64);
    K.clearKeyCache();
    assert.equal(K.keyCacheSize(), 0);
  });

  it('a cache hit skips key derivation: one CBC and two hashes per 17/18 encryption', () => {
    K.clearKeyCache();
    const { b, n } = counting(nodeBackend);
    const key = K.randomKey(b, 17);
    K.encrypt(b, 17, key, 7, fromAscii('first'));
    n.cbcEnc = n.cbcDec = n.hash = 0;
    K.encrypt(b, 17, key, 7, fromAscii('second'));
    assert.deepEqual(n, { cbcEnc: 1, cbcDec: 0, hash: 2 });
    K.clearKeyCache();
  });
});

describe('firmware bundle in an Espruino-like vm', () => {
  it('runs the RFC vectors with the native-module shape and none of the forbidden globals', () => {
    const entry =
      "export * from './firmware/proto/crypto/index.ts';\n" +
      "export { makeEspruinoBackend } from './firmware/platform/espruino-crypto.ts';\n" +
      "export { fromHex, toHex, fromAscii } from './firmware/proto/bytes.ts';\n";
    const out = buildSync({
      stdin: { contents: entry, resolveDir: ROOT, loader: 'ts', sourcefile: 'entry.ts' },
      bundle: true,
      format: 'iife',
      globalName: 'KC',
      target: 'es2015',
      write: false,
      logLevel: 'silent',
    });
    const code = out.outputFiles[0].text;
    const ctx = vm.createContext({ cryptoModule: makeEspruinoCryptoModule(), hwRand: fakeHwRand(3) });
    vm.runInContext(
      `delete this.Map; delete this.Set; delete this.WeakMap; delete this.WeakSet; delete this.Symbol; delete this.BigInt;
       delete Array.from; delete Object.getPrototypeOf(Uint8Array).from; delete Math.imul; delete Math.clz32;
       delete Math.trunc; delete Number.isInteger; delete Object.freeze; delete Date.UTC;`,
      ctx,
    );
    vm.runInContext(code, ctx);
    const v = R8009.encryptions[7];
    const cts = R3962.cts.vectors[3];
    const res = vm.runInContext(
      `(function () {
        var b = KC.makeEspruinoBackend(cryptoModule, hwRand);
        var c = KC.encrypt(b, ${v.etype}, KC.fromHex(${JSON.stringify(v.baseKey.replace(/\s/g, ''))}), ${v.usage},
          KC.fromHex(${JSON.stringify(v.plaintext.replace(/\s/g, ''))}), KC.fromHex(${JSON.stringify(v.confounder.replace(/\s/g, ''))}));
        var x = KC.aesCts(b, KC.fromHex(${JSON.stringify(R3962.cts.key.replace(/\s/g, ''))}), KC.ZERO_IV,
          KC.fromHex(${JSON.stringify(cts.input.replace(/\s/g, ''))}), true);
        var k = KC.randomKey(b, 18);
        var rt = KC.decrypt(b, 18, k, 1101, KC.encrypt(b, 18, k, 1101, KC.fromAscii('round trip')));
        return [KC.toHex(c), KC.toHex(x), KC.toHex(rt), KC.supportedEtypes(b).join(',')];
      })()`,
      ctx,
    );
    assert.equal(res[0], toHex(concat([h(v.aesOutput), h(v.hmac)])));
    assert.equal(res[1], toHex(h(cts.output)));
    assert.equal(res[2], toHex(fromAscii('round trip')));
    assert.equal(res[3], '20,18,19,17');
  });
});

// CryptoError is what every failure above must be; make sure the class is the shared one.
assert.equal(new CryptoError('x').name, 'CryptoError');
