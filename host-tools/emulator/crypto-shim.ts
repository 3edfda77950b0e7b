// Espruino's native `crypto` module (libs/crypto/jswrap_crypto.c, mbedTLS) rebuilt on
// @noble, for the host emulator to install as `require("crypto")` inside its vm.
//
// Mirrors the firmware's argument rules and error behaviour:
// - data arguments go through JSV_GET_AS_CHAR_ARRAY: strings (one byte per char),
//   ArrayBuffers, typed arrays, plain arrays of numbers (recursively), numbers
//   (one byte), {data, count} objects; `undefined` makes the call return undefined.
// - errors reported with jsError() are *printed* ("ERROR: ...") and the call returns
//   undefined: AES key not 16/24/32 bytes ("Unknown error: -0x20"), CBC input not a
//   multiple of 16 ("Invalid input length"), OFB ("Feature unavailable"), options
//   not an object. These go to opts.onError.
// - errors raised with jsExceptionHere() throw: unknown AES mode, unknown hasher.
// - results are ArrayBuffers. AES `iv` is read as up to 16 bytes, zero-padded.
// Values may come from another realm (the vm), so no `instanceof` on arguments.
//
// Known difference: real firmware sets up a *decryption* key schedule for
// AES.decrypt in every mode, so its CFB/CTR decrypt give wrong output; the shim
// computes them correctly. The agent uses CBC (and ECB through it) only.
import { sha1 } from '@noble/hashes/legacy.js';
import { sha224, sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { pbkdf2 } from '@noble/hashes/pbkdf2.js';
import { cbc, ctr, ecb } from '@noble/ciphers/aes.js';

export interface EspruinoCryptoShimOptions {
  /** crypto.AES present (builds with USE_AES). Default true; false emulates e.g. ESP8266. */
  aes?: boolean;
  /** SHA224/SHA256 present. Default true; false emulates ESP8266. */
  sha256?: boolean;
  /** SHA384/SHA512 present. Default true. */
  sha512?: boolean;
  /** PBKDF2 present (builds with USE_TLS). Default true. */
  pbkdf2?: boolean;
  /** Receives the text the firmware would print as "ERROR: <text>". Default: ignored. */
  onError?: (message: string) => void;
}

type Hasher = typeof sha1 | typeof sha224 | typeof sha256 | typeof sha384 | typeof sha512;

export interface EspruinoCryptoModuleShim {
  SHA1(message: unknown): ArrayBuffer | undefined;
  SHA224?: (message: unknown) => ArrayBuffer | undefined;
  SHA256?: (message: unknown) => ArrayBuffer | undefined;
  SHA384?: (message: unknown) => ArrayBuffer | undefined;
  SHA512?: (message: unknown) => ArrayBuffer | undefined;
  PBKDF2?: (passphrase: unknown, salt: unknown, options?: unknown) => ArrayBuffer | undefined;
  AES?: {
    encrypt(message: unknown, key: unknown, options?: unknown): ArrayBuffer | undefined;
    decrypt(message: unknown, key: unknown, options?: unknown): ArrayBuffer | undefined;
  };
}

const MAX_DATA = 1 << 24; // refuse absurd inputs rather than exhaust host memory

function kind(v: unknown): string {
  return Object.prototype.toString.call(v).slice(8, -1);
}

/** Espruino's %t type names, for error texts. */
function typeName(v: unknown): string {
  if (v === undefined) return 'undefined';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'Array';
  if (ArrayBuffer.isView(v)) return kind(v);
  if (typeof v === 'object') return kind(v) === 'ArrayBuffer' ? 'ArrayBuffer' : 'Object';
  if (typeof v === 'function') return 'Function';
  return typeof v === 'string' ? 'String' : typeof v === 'number' ? (Number.isInteger(v) ? 'Integer' : 'Float') : typeof v;
}

function pushIter(v: unknown, out: number[], depth: number): void {
  if (out.length > MAX_DATA || depth > 16) throw new Error('Not enough stack memory to decode data');
  if (typeof v === 'number' || typeof v === 'boolean') {
    out.push(Number(v) & 0xff);
  } else if (typeof v === 'string') {
    for (let i = 0; i < v.length; i++) out.push(v.charCodeAt(i) & 0xff);
  } else if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) pushIter(v[i], out, depth + 1);
  } else if (v !== null && typeof v === 'object' && kind(v) === 'ArrayBuffer') {
    const u = new Uint8Array(v as ArrayBuffer);
    for (let i = 0; i < u.length; i++) out.push(u[i]);
  } else if (ArrayBuffer.isView(v)) {
    const k = kind(v);
    if (k === 'DataView' || k === 'Uint8Array' || k === 'Int8Array' || k === 'Uint8ClampedArray') {
      const u = new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
      for (let i = 0; i < u.length; i++) out.push(u[i]);
    } else {
      // Wider typed arrays are iterated element by element, each truncated to a byte.
      const a = v as unknown as ArrayLike<number>;
      for (let i = 0; i < a.length; i++) out.push(Number(a[i]) & 0xff);
    }
  } else if (v !== null && typeof v === 'object' && 'data' in (v as object)) {
    const o = v as { data: unknown; count?: unknown };
    const count = typeof o.count === 'number' ? Math.max(0, Math.floor(o.count)) : 1;
    for (let i = 0; i < count; i++) pushIter(o.data, out, depth + 1);
  } else {
    throw new TypeError('Expecting a number or something iterable, got ' + typeName(v));
  }
}

/** JSV_GET_AS_CHAR_ARRAY: the bytes of a JS value, or null for `undefined`. */
function asBytes(v: unknown): Uint8Array | null {
  if (v === undefined) return null;
  if (v !== null && typeof v === 'object' && ArrayBuffer.isView(v) && kind(v) === 'Uint8Array') {
    const u = v as Uint8Array;
    return new Uint8Array(u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength));
  }
  const out: number[] = [];
  if (v !== null) pushIter(v, out, 0);
  return new Uint8Array(out);
}

function toArrayBuffer(u: Uint8Array): ArrayBuffer {
  const ab = new ArrayBuffer(u.length);
  new Uint8Array(ab).set(u);
  return ab;
}

function isPlainObject(v: unknown): v is { [k: string]: unknown } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v) && kind(v) !== 'ArrayBuffer';
}

const MODES = ['CBC', 'CFB', 'CTR', 'OFB', 'ECB'];

export function makeEspruinoCryptoModule(opts?: EspruinoCryptoShimOptions): EspruinoCryptoModuleShim {
  const o = opts || {};
  const onError = o.onError || (() => {});
  const jsError = (msg: string): undefined => {
    onError(msg);
    return undefined;
  };

  const sha = (h: Hasher) => (message: unknown): ArrayBuffer | undefined => {
    const m = asBytes(message);
    return m ? toArrayBuffer(h(m)) : undefined;
  };

  const hashers: { [name: string]: Hasher } = { SHA1: sha1 };
  const mod: EspruinoCryptoModuleShim = { SHA1: sha(sha1) };
  if (o.sha256 !== false) {
    mod.SHA224 = sha(sha224);
    mod.SHA256 = sha(sha256);
    hashers.SHA224 = sha224;
    hashers.SHA256 = sha256;
  }
  if (o.sha512 !== false) {
    mod.SHA384 = sha(sha384);
    mod.SHA512 = sha(sha512);
    hashers.SHA384 = sha384;
    hashers.SHA512 = sha512;
  }

  if (o.pbkdf2 !== false) {
    mod.PBKDF2 = (passphrase: unknown, salt: unknown, options?: unknown): ArrayBuffer | undefined => {
      let iterations = 1;
      let keySize = 4; // 32-bit words
      let hasher: Hasher = sha1;
      if (isPlainObject(options)) {
        keySize = Math.trunc(Number(options.keySize)) || 0;
        if (keySize <= 0) keySize = 4;
        iterations = Math.trunc(Number(options.iterations)) || 0;
        if (iterations < 1) iterations = 1;
        const name = options.hasher;
        if (name !== undefined) {
          if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(hashers, name)) {
            throw new Error('Unknown Hasher ' + JSON.stringify(String(name)));
          }
          hasher = hashers[name];
        }
      } else if (options !== undefined) {
        jsError('Options should be an object or undefined, got ' + typeName(options));
      }
      const p = asBytes(passphrase);
      if (!p) return undefined;
      const s = asBytes(salt);
      if (!s) return undefined;
      if (keySize * 4 > MAX_DATA) return jsError('Not enough memory for result');
      return toArrayBuffer(pbkdf2(hasher, p, s, { c: iterations, dkLen: keySize * 4 }));
    };
  }

  if (o.aes !== false) {
    const crypt = (message: unknown, key: unknown, options: unknown, encrypt: boolean): ArrayBuffer | undefined => {
      const iv = new Uint8Array(16);
      let mode = 'CBC';
      if (isPlainObject(options)) {
        if (options.iv !== undefined && options.iv !== null) {
          const ivb = asBytes(options.iv);
          if (ivb) iv.set(ivb.subarray(0, 16));
        }
        if (options.mode !== undefined) {
          if (typeof options.mode !== 'string' || MODES.indexOf(options.mode) < 0) {
            throw new Error('Unknown Crypto mode ' + JSON.stringify(String(options.mode)));
          }
          mode = options.mode;
        }
      } else if (options !== undefined) {
        return jsError("'options' must be undefined, or an Object");
      }
      const m = asBytes(message);
      if (!m) return undefined;
      const k = asBytes(key);
      if (!k) return undefined;
      if (k.length !== 16 && k.length !== 24 && k.length !== 32) return jsError('Unknown error: -0x20');
      if (mode === 'CBC') {
        if (m.length % 16 !== 0) return jsError('Invalid input length');
        if (m.length === 0) return new ArrayBuffer(0);
        const c = cbc(k, iv, { disablePadding: true });
        return toArrayBuffer(encrypt ? c.encrypt(m) : c.decrypt(m));
      }
      if (mode === 'ECB') {
        // Whole blocks only; trailing bytes of a partial block stay zero in the output.
        const whole = m.length - (m.length % 16);
        const out = new Uint8Array(m.length);
        if (whole) {
          const c = ecb(k, { disablePadding: true });
          out.set(encrypt ? c.encrypt(m.subarray(0, whole)) : c.decrypt(m.subarray(0, whole)));
        }
        return toArrayBuffer(out);
      }
      if (mode === 'CTR') {
        // mbedTLS counter starts at zero; the iv option is ignored.
        return toArrayBuffer(ctr(k, new Uint8Array(16)).encrypt(m));
      }
      if (mode === 'CFB') {
        // CFB8: one block encryption per byte.
        const reg = iv.slice();
        const out = new Uint8Array(m.length);
        for (let i = 0; i < m.length; i++) {
          // (a noble cipher instance encrypts once, so one per block)
          const ks = ecb(k, { disablePadding: true }).encrypt(reg)[0];
          out[i] = m[i] ^ ks;
          reg.copyWithin(0, 1);
          reg[15] = encrypt ? out[i] : m[i];
        }
        return toArrayBuffer(out);
      }
      return jsError('Feature unavailable'); // OFB: not wired up in the firmware
    };
    mod.AES = {
      encrypt: (message: unknown, key: unknown, options?: unknown) => crypt(message, key, options, true),
      decrypt: (message: unknown, key: unknown, options?: unknown) => crypt(message, key, options, false),
    };
  }
  return mod;
}
