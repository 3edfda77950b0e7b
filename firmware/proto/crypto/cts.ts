// AES in CBC mode with ciphertext stealing (RFC 3962 section 5: CBC-CS3, the
// last two blocks always swapped), on top of the backend's whole-block CBC.
// Encryption is one backend call; decryption two (the last full block, then
// one CBC pass over everything before it).
import type { CryptoBackend } from './backend.ts';
import { CryptoError } from '../errors.ts';

/** Sixteen zero bytes: the initial cipher state. Never written to. */
export const ZERO_IV = new Uint8Array(16);

export function aesCts(b: CryptoBackend, key: Uint8Array, iv: Uint8Array, data: Uint8Array, encrypt: boolean): Uint8Array {
  const n = data.length;
  if (n < 16) throw new CryptoError('CTS input shorter than one block');
  if (iv.length !== 16) throw new CryptoError('bad IV length');
  if (key.length !== 16 && key.length !== 32) throw new CryptoError('bad AES key length');
  if (n === 16) return encrypt ? b.aesCbcEncrypt(key, iv, data) : b.aesCbcDecrypt(key, iv, data);
  const nb = (n + 15) >> 4; // blocks, the last one partial or full
  const r = n - ((nb - 1) << 4); // bytes in the last block, 1..16
  const lead = (nb - 2) << 4; // bytes before the last two blocks
  // (Results are built in buffers already made, not in an extra output array: on the
  // interpreter every temporary array counts at the peak of an exchange.)
  if (encrypt) {
    // CBC over the zero-padded input, then swap the last two blocks and
    // truncate: identical to ciphertext stealing.
    let padded = data;
    if (r !== 16) {
      padded = new Uint8Array(nb << 4);
      padded.set(data);
    }
    const c = b.aesCbcEncrypt(key, iv, padded);
    for (let i = lead; i < lead + 16; i++) {
      const t = c[i];
      c[i] = c[i + 16];
      c[i + 16] = t;
    }
    return r === 16 ? c : c.slice(0, n);
  }
  // Decrypt: the second-to-last transmitted block is the real last block Cn.
  const partial = data.subarray(lead + 16, n);
  const d = b.aesCbcDecrypt(key, ZERO_IV, data.subarray(lead, lead + 16)); // Pn(padded) ^ Cn-1
  // Rebuild Cn-1 = partial || tail of d, then one CBC pass over C1..Cn-1; the
  // plaintext's last r bytes go behind it in the same buffer.
  const out = new Uint8Array(n);
  out.set(data.subarray(0, lead), 0);
  out.set(partial, lead);
  out.set(d.subarray(r, 16), lead + r);
  for (let i = 0; i < r; i++) out[lead + 16 + i] = d[i] ^ partial[i];
  out.set(b.aesCbcDecrypt(key, iv, out.subarray(0, lead + 16)), 0);
  return out;
}
