// The small interface every crypto backend implements. Everything else
// (HMAC, PBKDF2, n-fold, DK, CTS, the RFC 8009 KDF, HKDF) is written once above it.
// Backends: noble (host/emulator), node (SC speed), espruino (native `crypto` module).

export interface CryptoBackend {
  readonly name: string;
  sha1(data: Uint8Array): Uint8Array;
  sha256(data: Uint8Array): Uint8Array;
  /** Only needed for enctype 20; null where the platform lacks it. */
  readonly sha384: ((data: Uint8Array) => Uint8Array) | null;
  /** AES-CBC over whole 16-byte blocks, no padding; key 16 or 32 bytes, iv 16 bytes. */
  aesCbcEncrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array;
  aesCbcDecrypt(key: Uint8Array, iv: Uint8Array, data: Uint8Array): Uint8Array;
  randomBytes(n: number): Uint8Array;
}
