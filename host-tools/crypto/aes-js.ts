// AES encryption (FIPS-197, 128- and 256-bit keys) in JS for one-shot keys: the
// SC derives two HMAC keys from every fresh AP-REP subkey (RFC 3961 DK: a block
// or two of AES under a key used once). node:crypto needs a cipher context per
// key (createCipheriv ~4 us, most of it object set-up); this costs ~1 us for
// the key schedule and the blocks. Long-lived keys keep their native contexts.
//
// Side channels: no T-tables -- one 256-byte S-box (4-5 cache lines, all of them
// touched by every key schedule), MixColumns branch-free on packed words, so
// a cache-occupancy observer learns nothing; only an attacker able to trace
// individual loads (SGX-style single stepping) could see S-box indices. The key
// is used for one derivation and the plaintexts are public constants.
// Checked against node:crypto (test/sc-crypto-fast.test.ts) and FIPS-197 C.1/C.3.

const SBOX = new Uint8Array(256);
(() => {
  // S-box from the multiplicative inverse in GF(2^8) and the affine map.
  let p = 1;
  let q = 1;
  do {
    p = (p ^ ((p << 1) & 0xff) ^ (p & 0x80 ? 0x1b : 0)) & 0xff; // p * 3
    q ^= q << 1; // q / 3
    q ^= q << 2;
    q ^= q << 4;
    q &= 0xff;
    if (q & 0x80) q ^= 0x09;
    const x = q ^ ((q << 1) | (q >>> 7)) ^ ((q << 2) | (q >>> 6)) ^ ((q << 3) | (q >>> 5)) ^ ((q << 4) | (q >>> 4));
    SBOX[p] = (x ^ 0x63) & 0xff;
  } while (p !== 1);
  SBOX[0] = 0x63;
})();

const INV_SBOX = new Uint8Array(256);
for (let i = 0; i < 256; i++) INV_SBOX[SBOX[i]] = i;

/** Round keys (up to 15 rounds x 4 words), wiped after every call. */
const RK = new Int32Array(60);

function subWord(w: number): number {
  const s = SBOX;
  return (s[w >>> 24] << 24) | (s[(w >>> 16) & 255] << 16) | (s[(w >>> 8) & 255] << 8) | s[w & 255];
}

/** The key schedule into RK; returns the number of rounds. */
function expand(key: Uint8Array): number {
  const nk = key.length >> 2;
  const rounds = nk + 6;
  const rk = RK;
  for (let i = 0; i < nk; i++) rk[i] = (key[4 * i] << 24) | (key[4 * i + 1] << 16) | (key[4 * i + 2] << 8) | key[4 * i + 3];
  let rcon = 1;
  const total = 4 * (rounds + 1);
  for (let i = nk; i < total; i++) {
    let t = rk[i - 1];
    if (i % nk === 0) {
      t = subWord((t << 8) | (t >>> 24)) ^ (rcon << 24);
      rcon = (rcon << 1) ^ ((rcon >> 7) * 0x11b);
    } else if (nk > 6 && i % nk === 4) {
      t = subWord(t);
    }
    rk[i] = rk[i - nk] ^ t;
  }
  return rounds;
}

/** Packed xtime (multiply each byte by 2 in GF(2^8)), branch-free. */
function xt(x: number): number {
  return ((x & 0x7f7f7f7f) << 1) ^ (((x >>> 7) & 0x01010101) * 0x1b);
}
function mix(w: number): number {
  const r8 = (w << 8) | (w >>> 24);
  return xt(w ^ r8) ^ r8 ^ ((w << 16) | (w >>> 16)) ^ ((w >>> 8) | (w << 24));
}

/**
 * AES-ECB encryption of in[0..n) (n a multiple of 16) into out[off..off+n) under
 * key (16 or 32 bytes). out may be in (same offset) for in-place use.
 */
export function aesEncryptBlocks(key: Uint8Array, input: Uint8Array, out: Uint8Array, off: number): void {
  run(key, input, out, off, false);
}

/**
 * AES-CBC encryption with a zero IV of in[0..n) (whole blocks) into out[off..off+n);
 * in place when out is in at the same offset.
 */
export function aesCbcEncryptZeroIv(key: Uint8Array, input: Uint8Array, out: Uint8Array, off: number): void {
  run(key, input, out, off, true);
}

/** The key, once its length and the input's are checked. */
function checked(key: Uint8Array, input: Uint8Array): Uint8Array {
  if (key.length !== 16 && key.length !== 32) throw new RangeError('AES key must be 16 or 32 bytes');
  if (input.length % 16 !== 0) throw new RangeError('AES input must be whole blocks');
  return key;
}

/** Four big-endian state words to out[o..o+16). */
function storeBlock(out: Uint8Array, o: number, c0: number, c1: number, c2: number, c3: number): void {
  out[o] = c0 >>> 24; out[o + 1] = (c0 >>> 16) & 255; out[o + 2] = (c0 >>> 8) & 255; out[o + 3] = c0 & 255;
  out[o + 4] = c1 >>> 24; out[o + 5] = (c1 >>> 16) & 255; out[o + 6] = (c1 >>> 8) & 255; out[o + 7] = c1 & 255;
  out[o + 8] = c2 >>> 24; out[o + 9] = (c2 >>> 16) & 255; out[o + 10] = (c2 >>> 8) & 255; out[o + 11] = c2 & 255;
  out[o + 12] = c3 >>> 24; out[o + 13] = (c3 >>> 16) & 255; out[o + 14] = (c3 >>> 8) & 255; out[o + 15] = c3 & 255;
}

function run(key: Uint8Array, input: Uint8Array, out: Uint8Array, off: number, cbc: boolean): void {
  const rounds = expand(checked(key, input));
  const rk = RK;
  const s = SBOX;
  // CBC chaining value (the previous ciphertext block), zero for the first block
  let p0 = 0;
  let p1 = 0;
  let p2 = 0;
  let p3 = 0;
  for (let b = 0; b < input.length; b += 16) {
    let c0 = ((input[b] << 24) | (input[b + 1] << 16) | (input[b + 2] << 8) | input[b + 3]) ^ rk[0] ^ p0;
    let c1 = ((input[b + 4] << 24) | (input[b + 5] << 16) | (input[b + 6] << 8) | input[b + 7]) ^ rk[1] ^ p1;
    let c2 = ((input[b + 8] << 24) | (input[b + 9] << 16) | (input[b + 10] << 8) | input[b + 11]) ^ rk[2] ^ p2;
    let c3 = ((input[b + 12] << 24) | (input[b + 13] << 16) | (input[b + 14] << 8) | input[b + 15]) ^ rk[3] ^ p3;
    for (let r = 1; r <= rounds; r++) {
      // SubBytes + ShiftRows: row i of column j comes from column j + i.
      let n0 = (s[c0 >>> 24] << 24) | (s[(c1 >>> 16) & 255] << 16) | (s[(c2 >>> 8) & 255] << 8) | s[c3 & 255];
      let n1 = (s[c1 >>> 24] << 24) | (s[(c2 >>> 16) & 255] << 16) | (s[(c3 >>> 8) & 255] << 8) | s[c0 & 255];
      let n2 = (s[c2 >>> 24] << 24) | (s[(c3 >>> 16) & 255] << 16) | (s[(c0 >>> 8) & 255] << 8) | s[c1 & 255];
      let n3 = (s[c3 >>> 24] << 24) | (s[(c0 >>> 16) & 255] << 16) | (s[(c1 >>> 8) & 255] << 8) | s[c2 & 255];
      if (r !== rounds) {
        n0 = mix(n0);
        n1 = mix(n1);
        n2 = mix(n2);
        n3 = mix(n3);
      }
      const k = r << 2;
      c0 = n0 ^ rk[k];
      c1 = n1 ^ rk[k + 1];
      c2 = n2 ^ rk[k + 2];
      c3 = n3 ^ rk[k + 3];
    }
    if (cbc) {
      p0 = c0;
      p1 = c1;
      p2 = c2;
      p3 = c3;
    }
    storeBlock(out, off + b, c0, c1, c2, c3);
  }
  rk.fill(0);
}

/** InvMixColumns of a packed column: a_i ^= 4(a_i ^ a_(i+2)), then MixColumns. */
function invMix(w: number): number {
  return mix(w ^ xt(xt(w ^ ((w << 16) | (w >>> 16)))));
}

/**
 * AES-ECB decryption of in[0..n) (n a multiple of 16) into out[off..off+n) under
 * key (16 or 32 bytes); in place when out is in at the same offset.
 */
export function aesDecryptBlocks(key: Uint8Array, input: Uint8Array, out: Uint8Array, off: number): void {
  const rounds = expand(checked(key, input));
  const rk = RK;
  const s = INV_SBOX;
  for (let b = 0; b < input.length; b += 16) {
    const l = rounds << 2;
    let c0 = ((input[b] << 24) | (input[b + 1] << 16) | (input[b + 2] << 8) | input[b + 3]) ^ rk[l];
    let c1 = ((input[b + 4] << 24) | (input[b + 5] << 16) | (input[b + 6] << 8) | input[b + 7]) ^ rk[l + 1];
    let c2 = ((input[b + 8] << 24) | (input[b + 9] << 16) | (input[b + 10] << 8) | input[b + 11]) ^ rk[l + 2];
    let c3 = ((input[b + 12] << 24) | (input[b + 13] << 16) | (input[b + 14] << 8) | input[b + 15]) ^ rk[l + 3];
    for (let r = rounds - 1; r >= 0; r--) {
      // InvShiftRows + InvSubBytes: row i of column j comes from column j - i.
      const n0 = (s[c0 >>> 24] << 24) | (s[(c3 >>> 16) & 255] << 16) | (s[(c2 >>> 8) & 255] << 8) | s[c1 & 255];
      const n1 = (s[c1 >>> 24] << 24) | (s[(c0 >>> 16) & 255] << 16) | (s[(c3 >>> 8) & 255] << 8) | s[c2 & 255];
      const n2 = (s[c2 >>> 24] << 24) | (s[(c1 >>> 16) & 255] << 16) | (s[(c0 >>> 8) & 255] << 8) | s[c3 & 255];
      const n3 = (s[c3 >>> 24] << 24) | (s[(c2 >>> 16) & 255] << 16) | (s[(c1 >>> 8) & 255] << 8) | s[c0 & 255];
      const k = r << 2;
      c0 = n0 ^ rk[k];
      c1 = n1 ^ rk[k + 1];
      c2 = n2 ^ rk[k + 2];
      c3 = n3 ^ rk[k + 3];
      if (r !== 0) {
        c0 = invMix(c0);
        c1 = invMix(c1);
        c2 = invMix(c2);
        c3 = invMix(c3);
      }
    }
    storeBlock(out, off + b, c0, c1, c2, c3);
  }
  rk.fill(0);
}
