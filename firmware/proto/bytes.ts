// Byte helpers, written inside the Espruino subset (no spread, no destructuring,
// no Array.from, no TextEncoder): used by firmware and host tools alike.

export function concat(parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (let i = 0; i < parts.length; i++) n += parts[i].length;
  const out = new Uint8Array(n);
  let o = 0;
  for (let i = 0; i < parts.length; i++) {
    out.set(parts[i], o);
    o += parts[i].length;
  }
  return out;
}

const HEX = '0123456789abcdef';
export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += HEX[b[i] >> 4] + HEX[b[i] & 15];
  return s;
}
export function fromHex(h: string): Uint8Array {
  h = h.replace(/[\s:]/g, '');
  if (h.length % 2) throw new Error('odd-length hex');
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) {
    const v = parseInt(h.substr(i * 2, 2), 16);
    if (v !== v) throw new Error('bad hex');
    out[i] = v;
  }
  return out;
}

/** ASCII/Latin-1 string to bytes (one byte per char code, & 0xff). */
export function fromAscii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}
/** Bytes to a string with one char per byte (also Espruino's "binary string"). */
export function toAscii(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 4096) {
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(b.length, i + 4096)) as unknown as number[]);
  }
  return s;
}
/** Espruino dgram delivers binary strings; these are the same as ASCII/Latin-1. */
export const fromBinaryString = fromAscii;
export const toBinaryString = toAscii;

/** UTF-8 encode (for passwords and principal names that are not ASCII). */
export function fromUtf8(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      }
    }
    if (c < 0x80) out.push(c);
    else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
    else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
  }
  return new Uint8Array(out);
}

/** Constant-time equality: time depends only on the lengths. */
export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

export function readU32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}
export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
export function u32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  writeU32(b, 0, v);
  return b;
}
export function readU16(b: Uint8Array, o: number): number {
  return (b[o] << 8) | b[o + 1];
}
export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 8) & 0xff;
  b[o + 1] = v & 0xff;
}

/** XOR a and b (same length) into a new array. */
export function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return out;
}

/** Zero a buffer that held key material. */
export function wipe(b: Uint8Array): void {
  b.fill(0);
}
