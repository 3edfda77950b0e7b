// The Kerberos crypto layer (RFC 3961 simplified profile, RFC 3962, RFC 8009),
// written once above the CryptoBackend interface. Import from here.
export type { CryptoBackend } from './backend.ts';
export type { EnctypeProfile } from './enctypes.ts';
export {
  ETYPE,
  CKSUMTYPE,
  hasEnctype,
  getProfile,
  getProfileByChecksumType,
  supportedEtypes,
  encrypt,
  decrypt,
  makeChecksum,
  verifyChecksum,
  stringToKey,
  randomToKey,
  randomKey,
  deriveKey,
  prf,
  usageHmacKey,
  usageKeys,
  dk,
  kdfHmacSha2,
  setKeyCacheSize,
  keyCacheSize,
  clearKeyCache,
} from './enctypes.ts';
export type { HashName, HmacKey } from './hash.ts';
export { HASH_INFO, digest, hmac, hmacSha1, hmacPrepare, hmacWith, pbkdf2, hkdfExpandSha256 } from './hash.ts';
export { nfold } from './nfold.ts';
export { aesCts, ZERO_IV } from './cts.ts';
