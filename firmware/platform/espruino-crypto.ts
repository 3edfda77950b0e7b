// CryptoBackend on Espruino's native `require("crypto")` (mbedTLS, libs/crypto/jswrap_crypto.c):
//   SHA1/SHA256/SHA384(data) -> ArrayBuffer (data: string, array, typed array or ArrayBuffer)
//   AES.encrypt/decrypt(data, key, {mode: "CBC", iv}) -> ArrayBuffer
// Native errors (bad key length, input not a multiple of 16) are *printed* by the
// firmware (jsError) and the call returns undefined, so every result is checked
// here and the arguments are validated before the call. Randomness: E.hwRand()
// (32-bit hardware RNG words). Written inside the Espruino subset.
import type { CryptoBackend } from '../proto/crypto/backend.ts';
import { CryptoError } from '../proto/errors.ts';

type NativeData = Uint8Array | ArrayBuffer | string | number[];

/** The part of Espruino's `crypto` module this backend uses; members are board-dependent. */
export interface EspruinoCryptoModule {
  SHA1(data: NativeData): ArrayBuffer | undefined;
  SHA256?: (data: NativeData) => ArrayBuffer | undefined;
  SHA384?: (data: NativeData) => ArrayBuffer | undefined;
  AES?: {
    encrypt(data: NativeData, key: NativeData, options?: { mode?: string; iv?: NativeData }): ArrayBuffer | undefined;
    decrypt(data: NativeData, key: NativeData, options?: { mode?: string; iv?: NativeData }): ArrayBuffer | undefined;
  };
}

function result(r: ArrayBuffer | undefined, what: string, len: number): Uint8Array {
  if (!r) throw new CryptoError('native ' + what + ' failed');
  const u = new Uint8Array(r);
  if (u.length !== len) throw new CryptoError('native ' + what + ' returned ' + u.length + ' bytes');
  return u;
}

function checkCbc(key: Uint8Array, iv: Uint8Array, data: Uint8Array): void {
  if (key.length !== 16 && key.length !== 32) throw new CryptoError('AES key must be 16 or 32 bytes');
  if (iv.length !== 16) throw new CryptoError('AES-CBC IV must be 16 bytes');
  if (data.length % 16 !== 0) throw new CryptoError('AES-CBC data must be whole blocks');
}

export function makeEspruinoBackend(cryptoModule: EspruinoCryptoModule, hwRand: () => number): CryptoBackend {
  const c = cryptoModule;
  const aes = c.AES;
  const sha256 = c.SHA256;
  const sha384 = c.SHA384;
  return {
    name: 'espruino',
    sha1: function (data: Uint8Array): Uint8Array {
      return result(c.SHA1(data), 'SHA1', 20);
    },
    sha256: function (data: Uint8Array): Uint8Array {
      if (!sha256) throw new CryptoError('this board has no native SHA256');
      return result(sha256(data), 'SHA256', 32);
    },
    sha384: sha384
      ? function (data: Uint8Array): Uint8Array {
          return result(sha384(data), 'SHA384', 48);
        }
      : null,
    aesCbcEncrypt: function (key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
      if (!aes) throw new CryptoError('this board has no native AES');
      checkCbc(key, iv, data);
      if (data.length === 0) return new Uint8Array(0);
      return result(aes.encrypt(data, key, { mode: 'CBC', iv: iv }), 'AES.encrypt', data.length);
    },
    aesCbcDecrypt: function (key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
      if (!aes) throw new CryptoError('this board has no native AES');
      checkCbc(key, iv, data);
      if (data.length === 0) return new Uint8Array(0);
      return result(aes.decrypt(data, key, { mode: 'CBC', iv: iv }), 'AES.decrypt', data.length);
    },
    randomBytes: function (n: number): Uint8Array {
      // One hwRand() per 32-bit word; the typed array keeps the low 32 bits.
      const words = new Uint32Array((n + 3) >> 2);
      for (let i = 0; i < words.length; i++) words[i] = hwRand();
      return new Uint8Array(words.buffer, 0, n);
    },
  };
}
