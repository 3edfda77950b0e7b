// CryptoBackend on Espruino's native `require("crypto")` (mbedTLS, libs/crypto/jswrap_crypto.c):
//   SHA1/SHA256/SHA384(data) -> ArrayBuffer (data: string, array, typed array or ArrayBuffer)
//   AES.encrypt/decrypt(data, key, {mode: "CBC", iv}) -> ArrayBuffer
// Native errors (bad key length, input not a multiple of 16) are *printed* by the
// firmware (jsError) and the call returns undefined, so every result is checked
// here and the arguments are validated before the call. Randomness: E.hwRand()
// (32-bit hardware RNG words). Written inside the Espruino subset.
import type { CryptoBackend } from '../proto/crypto/backend.ts';
import { CryptoError } from '../proto/errors.ts';
import { dropKeyCache } from '../proto/crypto/enctypes.ts';

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

declare const E: { defrag?: () => void } | undefined;
declare const process: { memory?: () => unknown } | undefined;

/**
 * Native crypto writes its result into one contiguous block of the variable store:
 * near a full (or fragmented) store that allocation fails -- the firmware prints
 * "Not enough memory for result" and returns undefined -- although the memory is
 * there. Drop the derived-key cache, then compact the store (E.defrag: a garbage
 * collection, then the used blocks moved down; where a build lacks it,
 * process.memory() runs a collection), before the one retry.
 *
 * One native call `f.call(self, x, k, o)`, retried once after freeing memory when it
 * returned nothing; its result as `len` bytes, or CryptoError.
 */
function nat(f: any, self: unknown, x: unknown, k: unknown, o: unknown, what: string, len: number): Uint8Array {
  let r: ArrayBuffer | undefined = f.call(self, x, k, o);
  if (!r) {
    // Relief: drop the derived-key cache, then compact the store (or collect garbage).
    dropKeyCache();
    if (typeof E !== 'undefined' && E && typeof E.defrag === 'function') E.defrag();
    else if (typeof process !== 'undefined' && process && typeof process.memory === 'function') process.memory();
    r = f.call(self, x, k, o);
    if (!r) throw new CryptoError('native ' + what + ' failed (no memory for the result)');
  }
  const u = new Uint8Array(r as ArrayBuffer);
  if (u.length !== len) throw new CryptoError('native ' + what + ' returned ' + u.length + ' bytes');
  return u;
}

function cbc(c: EspruinoCryptoModule, enc: boolean, key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
  const aes = c.AES;
  if (!aes) throw new CryptoError('this board has no native AES');
  if (key.length !== 16 && key.length !== 32) throw new CryptoError('AES key must be 16 or 32 bytes');
  if (iv.length !== 16) throw new CryptoError('AES-CBC IV must be 16 bytes');
  if (data.length % 16 !== 0) throw new CryptoError('AES-CBC data must be whole blocks');
  if (data.length === 0) return new Uint8Array(0);
  return nat(enc ? aes.encrypt : aes.decrypt, aes, data, key, { mode: 'CBC', iv: iv }, 'AES', data.length);
}

export function makeEspruinoBackend(c: EspruinoCryptoModule, hwRand: () => number): CryptoBackend {
  return {
    name: 'espruino',
    sha1: function (data: Uint8Array): Uint8Array {
      return nat(c.SHA1, c, data, 0, 0, 'SHA1', 20);
    },
    sha256: function (data: Uint8Array): Uint8Array {
      if (!c.SHA256) throw new CryptoError('this board has no native SHA256');
      return nat(c.SHA256, c, data, 0, 0, 'SHA256', 32);
    },
    sha384: c.SHA384
      ? function (data: Uint8Array): Uint8Array {
          return nat(c.SHA384, c, data, 0, 0, 'SHA384', 48);
        }
      : null,
    aesCbcEncrypt: function (key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
      return cbc(c, true, key, iv, data);
    },
    aesCbcDecrypt: function (key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array {
      return cbc(c, false, key, iv, data);
    },
    randomBytes: function (n: number): Uint8Array {
      // One hwRand() per 32-bit word; the typed array keeps the low 32 bits.
      const words = new Uint32Array((n + 3) >> 2);
      for (let i = 0; i < words.length; i++) words[i] = hwRand();
      return new Uint8Array(words.buffer, 0, n);
    },
  };
}
