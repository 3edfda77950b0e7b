// SA keying material from the AP-REP subkey (PROTOCOL.md "HMACs and keys"):
//   OKM = HKDF-Expand-SHA256(PRK = subkey, info = "CTA-SA v1" || CTA SPI u32 || SC SPI u32, L = 72)
// split in order: enc CTA->SC (16), auth CTA->SC (20), enc SC->CTA (16), auth SC->CTA (20).
// Written inside the Espruino subset.

import { concat, fromAscii, u32, wipe } from './bytes.ts';
import type { CryptoBackend } from './crypto/backend.ts';
import { hkdfExpandSha256 } from './crypto/index.ts';

import { SA_KEYMAT_LEN } from './consts.ts';
export { SA_KEYMAT_LEN };
/** The HKDF info label (a module-level string would be copied into RAM on the interpreter: saInfo writes the literal). */
export const SA_INFO_LABEL = 'CTA-SA v1';

export interface SaKeys {
  /** AES-128-CBC key protecting CTA -> SC packets. */
  encCtaToSc: Uint8Array;
  /** HMAC-SHA1-96 key for CTA -> SC packets. */
  authCtaToSc: Uint8Array;
  encScToCta: Uint8Array;
  authScToCta: Uint8Array;
}

/** The HKDF info string for a pair of SPIs. */
export function saInfo(ctaSpi: number, scSpi: number): Uint8Array {
  return concat([fromAscii('CTA-SA v1'), u32(ctaSpi), u32(scSpi)]);
}

/** Derive the four SA keys; `subkey` is the AP-REP subkey's key bytes. */
export function deriveSaKeys(b: CryptoBackend, subkey: Uint8Array, ctaSpi: number, scSpi: number): SaKeys {
  if (!(ctaSpi >= 0 && ctaSpi <= 0xffffffff && Math.floor(ctaSpi) === ctaSpi)) throw new Error('deriveSaKeys: bad CTA SPI');
  if (!(scSpi >= 0 && scSpi <= 0xffffffff && Math.floor(scSpi) === scSpi)) throw new Error('deriveSaKeys: bad SC SPI');
  // (The info of saInfo() written here: one function less in the firmware bundle.)
  const okm = hkdfExpandSha256(b, subkey, concat([fromAscii('CTA-SA v1'), u32(ctaSpi), u32(scSpi)]), SA_KEYMAT_LEN);
  const keys: SaKeys = {
    encCtaToSc: okm.slice(0, 16),
    authCtaToSc: okm.slice(16, 36),
    encScToCta: okm.slice(36, 52),
    authScToCta: okm.slice(52, 72),
  };
  wipe(okm);
  return keys;
}
