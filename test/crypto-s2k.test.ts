// PBKDF2 string-to-key vectors (RFC 3962 Appendix B for enctypes 17/18, RFC 8009
// Appendix A for 19/20) on all three backends. Kept apart from crypto.test.ts
// because 32768-iteration PBKDF2 over a pure-JS SHA-384 is the slow part, and
// separate files run in parallel.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as K from '../firmware/proto/crypto/index.ts';
import type { CryptoBackend } from '../firmware/proto/crypto/backend.ts';
import { isCryptoError } from '../firmware/proto/errors.ts';
import { concat, fromAscii, fromHex, toHex, u32 } from '../firmware/proto/bytes.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { makeEspruinoBackend } from '../firmware/platform/espruino-crypto.ts';
import { makeEspruinoCryptoModule } from '../host-tools/emulator/crypto-shim.ts';

const vec = (name: string) => JSON.parse(readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8'));
const h = (s: string) => fromHex(s.replace(/\s+/g, ''));
const R3962 = vec('crypto-rfc3962.json');
const R8009 = vec('crypto-rfc8009.json');

let x = 0x1234567;
const espruinoBackend = makeEspruinoBackend(makeEspruinoCryptoModule(), () => {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x | 0;
});
const BACKENDS: CryptoBackend[] = [nobleBackend, nodeBackend, espruinoBackend];

for (const b of BACKENDS) {
  describe(`string-to-key on backend ${b.name}`, () => {
    it('RFC 3962 Appendix B: PBKDF2-HMAC-SHA1 output and the 17/18 keys', () => {
      for (const v of R3962.stringToKey) {
        const pw = v.passphraseHex ? h(v.passphraseHex) : fromAscii(v.passphrase);
        const salt = v.saltHex ? h(v.saltHex) : fromAscii(v.salt);
        const what = `${v.iterations} iterations, salt ${v.salt ?? v.saltHex}`;
        assert.equal(toHex(K.pbkdf2(b, 'sha1', pw, salt, v.iterations, 32)), toHex(h(v.pbkdf2_256)), what);
        assert.equal(toHex(K.pbkdf2(b, 'sha1', pw, salt, v.iterations, 16)), toHex(h(v.pbkdf2_128)), what);
        const params = u32(v.iterations);
        assert.equal(toHex(K.stringToKey(b, 17, pw, salt, params)), toHex(h(v.key17)), what);
        assert.equal(toHex(K.stringToKey(b, 18, pw, salt, params)), toHex(h(v.key18)), what);
      }
    });

    it('RFC 8009 Appendix A: string-to-key for 19 and 20 (default 32768 iterations)', () => {
      const s = R8009.stringToKey;
      const salt = concat([h(s.saltHex), fromAscii(s.saltSuffix)]);
      for (const k of s.keys) {
        assert.equal(toHex(K.stringToKey(b, k.etype, fromAscii(s.passphrase), salt, null)), toHex(h(k.key)), `etype ${k.etype}`);
      }
      // Explicit s2kparams with the same count give the same key.
      assert.equal(toHex(K.stringToKey(b, 19, fromAscii(s.passphrase), salt, u32(s.iterations))), toHex(h(s.keys[0].key)));
    });
  });
}

describe('string-to-key parameters', () => {
  const b = nodeBackend;
  const refuse = (params: Uint8Array, what: string) =>
    assert.throws(() => K.stringToKey(b, 18, fromAscii('pw'), fromAscii('salt'), params), (e: unknown) => isCryptoError(e), what);

  it('refuses malformed or abusive iteration counts with CryptoError', () => {
    refuse(new Uint8Array(3), 'params of 3 bytes');
    refuse(new Uint8Array(5), 'params of 5 bytes');
    refuse(u32(0), 'count 0 (= 2^32)');
    refuse(u32(0x1000000), 'count 2^24');
    refuse(u32(0xffffffff), 'count 2^32-1');
  });

  it('null params mean the RFC default: 4096 for 17/18', () => {
    const a = K.stringToKey(b, 17, fromAscii('password'), fromAscii('EXAMPLE.COMuser'), null);
    assert.equal(toHex(a), toHex(K.stringToKey(b, 17, fromAscii('password'), fromAscii('EXAMPLE.COMuser'), u32(4096))));
    assert.notEqual(toHex(a), toHex(K.stringToKey(b, 17, fromAscii('password'), fromAscii('EXAMPLE.COMuser'), u32(4095))));
  });
});
