// The emulator's stand-in for Espruino's native `crypto` module: results, argument
// forms and error behaviour as in libs/crypto/jswrap_crypto.c, checked against
// node:crypto (an independent implementation) and published vectors.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { createCipheriv, createHash, pbkdf2Sync } from 'node:crypto';
import { makeEspruinoCryptoModule } from '../host-tools/emulator/crypto-shim.ts';

const R3962 = JSON.parse(readFileSync(new URL('./vectors/crypto-rfc3962.json', import.meta.url), 'utf8'));
const hex = (ab: ArrayBuffer | undefined) => {
  assert.ok(ab, 'expected a result');
  assert.equal(Object.prototype.toString.call(ab), '[object ArrayBuffer]');
  return Buffer.from(ab).toString('hex');
};
const nodeCipher = (alg: string, key: Uint8Array, iv: Uint8Array | null, data: Uint8Array) => {
  const c = createCipheriv(alg, key, iv);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]).toString('hex');
};

describe('crypto shim: hashes', () => {
  const m = makeEspruinoCryptoModule();

  it('FIPS 180 "abc" vectors for SHA1 and SHA256, node:crypto for the rest', () => {
    assert.equal(hex(m.SHA1('abc')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
    assert.equal(hex(m.SHA256!('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    const data = Buffer.from('The quick brown fox jumps over the lazy dog, twice over for good measure.');
    for (const [fn, alg] of [[m.SHA224!, 'sha224'], [m.SHA384!, 'sha384'], [m.SHA512!, 'sha512'], [m.SHA1, 'sha1']] as const) {
      assert.equal(hex(fn(new Uint8Array(data))), createHash(alg).update(data).digest('hex'), alg);
    }
  });

  it('accepts the data forms the firmware accepts, with the same bytes', () => {
    const want = hex(m.SHA1('aaa'));
    const u = new Uint8Array([0, 97, 97, 97, 0]);
    for (const form of [[97, 97, 97], new Uint8Array([97, 97, 97]), new Uint8Array([97, 97, 97]).buffer, u.subarray(1, 4), { data: 'a', count: 3 }, ['a', [97], 97 + 256]]) {
      assert.equal(hex(m.SHA1(form)), want, JSON.stringify(form));
    }
    assert.equal(m.SHA1(undefined), undefined);
    assert.throws(() => m.SHA1({ x: 1 }), /Expecting a number or something iterable/);
  });

  it('accepts values made in another realm (the emulator vm)', () => {
    const ctx = vm.createContext({});
    const foreign = vm.runInContext('[new Uint8Array([97,97,97]), new Uint8Array([97,97,97]).buffer, [97,97,97]]', ctx);
    for (const f of foreign) assert.equal(hex(m.SHA1(f)), hex(m.SHA1('aaa')));
  });
});

describe('crypto shim: AES', () => {
  const errors: string[] = [];
  const m = makeEspruinoCryptoModule({ onError: (e) => errors.push(e) });
  const AES = m.AES!;
  const key = new Uint8Array(16).map((_, i) => i * 7);
  const iv = new Uint8Array(16).map((_, i) => 255 - i);
  const data = new Uint8Array(48).map((_, i) => i * 3);

  it('CBC matches node:crypto for 128/192/256-bit keys, and decrypt inverts it', () => {
    for (const len of [16, 24, 32]) {
      const k = new Uint8Array(len).map((_, i) => i + len);
      const c = AES.encrypt(data, k, { mode: 'CBC', iv });
      assert.equal(hex(c), nodeCipher(`aes-${len * 8}-cbc`, k, iv, data));
      assert.equal(hex(AES.decrypt(c!, k, { mode: 'CBC', iv })), Buffer.from(data).toString('hex'));
    }
  });

  it('defaults: mode CBC, IV zero; a short IV is zero-padded', () => {
    const zero = new Uint8Array(16);
    assert.equal(hex(AES.encrypt(data, key)), nodeCipher('aes-128-cbc', key, zero, data));
    assert.equal(hex(AES.encrypt(data, key, {})), nodeCipher('aes-128-cbc', key, zero, data));
    const padded = new Uint8Array(16);
    padded.set([1, 2]);
    assert.equal(hex(AES.encrypt(data, key, { iv: [1, 2] })), nodeCipher('aes-128-cbc', key, padded, data));
  });

  it('ECB, CTR (counter from zero, IV ignored) and CFB8 match node:crypto', () => {
    assert.equal(hex(AES.encrypt(data, key, { mode: 'ECB' })), nodeCipher('aes-128-ecb', key, null, data));
    // ECB leaves a trailing partial block as zeros.
    const e = hex(AES.encrypt(data.subarray(0, 20), key, { mode: 'ECB' }));
    assert.equal(e, nodeCipher('aes-128-ecb', key, null, data.subarray(0, 16)) + '00000000');
    const odd = data.subarray(0, 37);
    assert.equal(hex(AES.encrypt(odd, key, { mode: 'CTR', iv })), nodeCipher('aes-128-ctr', key, new Uint8Array(16), odd));
    const cfb = AES.encrypt(odd, key, { mode: 'CFB', iv });
    assert.equal(hex(cfb), nodeCipher('aes-128-cfb8', key, iv, odd));
    assert.equal(hex(AES.decrypt(cfb!, key, { mode: 'CFB', iv })), Buffer.from(odd).toString('hex'));
  });

  it('printed errors return undefined; exceptions throw, as on the firmware', () => {
    errors.length = 0;
    assert.equal(AES.encrypt(data, new Uint8Array(20)), undefined);
    assert.equal(AES.encrypt(data.subarray(0, 17), key, { mode: 'CBC' }), undefined);
    assert.equal(AES.decrypt(data, key, { mode: 'OFB' }), undefined);
    assert.equal(AES.encrypt(data, key, 5), undefined);
    assert.equal(AES.encrypt(undefined, key), undefined);
    assert.deepEqual(errors, ['Unknown error: -0x20', 'Invalid input length', 'Feature unavailable', "'options' must be undefined, or an Object"]);
    assert.throws(() => AES.encrypt(data, key, { mode: 'GCM' }), /Unknown Crypto mode "GCM"/);
  });
});

describe('crypto shim: PBKDF2 and board options', () => {
  const m = makeEspruinoCryptoModule();

  it('PBKDF2 (keySize in 32-bit words) matches RFC 3962 Appendix B and node:crypto', () => {
    const v = R3962.stringToKey[1]; // 2 iterations
    const r = m.PBKDF2!(v.passphrase, v.salt, { keySize: 8, iterations: v.iterations, hasher: 'SHA1' });
    assert.equal(hex(r), v.pbkdf2_256.replace(/\s/g, ''));
    // Defaults: 4 words, 1 iteration, SHA1.
    assert.equal(hex(m.PBKDF2!(v.passphrase, v.salt)), R3962.stringToKey[0].pbkdf2_128.replace(/\s/g, ''));
    assert.equal(hex(m.PBKDF2!('pw', 'salt', { keySize: 5, iterations: 3, hasher: 'SHA256' })), pbkdf2Sync('pw', 'salt', 3, 20, 'sha256').toString('hex'));
    assert.throws(() => m.PBKDF2!('pw', 'salt', { hasher: 'MD5' }), /Unknown Hasher/);
  });

  it('board options remove what the build lacks', () => {
    const esp8266 = makeEspruinoCryptoModule({ aes: false, sha256: false, sha512: false, pbkdf2: false });
    assert.equal(typeof esp8266.SHA1, 'function');
    for (const k of ['AES', 'SHA224', 'SHA256', 'SHA384', 'SHA512', 'PBKDF2'] as const) assert.equal(esp8266[k], undefined, k);
    const full = makeEspruinoCryptoModule();
    for (const k of ['AES', 'SHA224', 'SHA256', 'SHA384', 'SHA512', 'PBKDF2'] as const) assert.ok(full[k], k);
  });
});
