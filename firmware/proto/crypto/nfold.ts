// n-fold (RFC 3961 section 5.1), byte-oriented: out = sum (ones' complement
// addition) of lcm(n, k)/k copies of the input, copy i rotated right by 13*i bits.
import { CryptoError } from '../errors.ts';

export function nfold(input: Uint8Array, outBytes: number): Uint8Array {
  const inLen = input.length;
  if (inLen < 1 || !(outBytes >= 1) || outBytes > 1024) throw new CryptoError('bad n-fold size');
  let a = outBytes;
  let c = inLen;
  while (c !== 0) {
    const t = a % c;
    a = c;
    c = t;
  }
  const lcm = (outBytes / a) * inLen;
  const inBits = inLen << 3;
  const out = new Uint8Array(outBytes);
  let carry = 0;
  // Walk the lcm-byte concatenation from its last byte to its first, so that
  // carries propagate towards the most significant byte.
  for (let i = lcm - 1; i >= 0; i--) {
    // The bit of the (unrotated) input that lands in the top bit of byte i.
    const msbit = (inBits - 1 + (inBits + 13) * Math.floor(i / inLen) + ((inLen - (i % inLen)) << 3)) % inBits;
    const hiIdx = (inLen - 1 - (msbit >> 3)) % inLen;
    const loIdx = (inLen - (msbit >> 3)) % inLen;
    const v = (((input[hiIdx] << 8) | input[loIdx]) >> ((msbit & 7) + 1)) & 0xff;
    const o = i % outBytes;
    carry += v + out[o];
    out[o] = carry & 0xff;
    carry >>= 8;
  }
  // End-around carry of ones' complement addition (one pass, as MIT krb5 does).
  if (carry) {
    for (let i = outBytes - 1; i >= 0; i--) {
      carry += out[i];
      out[i] = carry & 0xff;
      carry >>= 8;
    }
  }
  return out;
}
