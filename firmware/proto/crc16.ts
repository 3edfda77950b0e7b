// CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, xorout 0).
// Check value: crc16("123456789") = 0x29B1.
// Table-free byte-at-a-time form (a few shifts per byte): cheap on the
// Espruino interpreter and needs no 512-byte table in RAM.

/** CRC of data[start..end) continuing from `crc` (pass 0xffff to start). */
export function crc16Update(crc: number, data: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) {
    let x = ((crc >> 8) ^ data[i]) & 0xff;
    x ^= x >> 4;
    crc = ((crc << 8) ^ (x << 12) ^ (x << 5) ^ x) & 0xffff;
  }
  return crc;
}

/** CRC-16/CCITT-FALSE of the whole buffer (or of data[start..end) when given). */
export function crc16(data: Uint8Array, start?: number, end?: number): number {
  return crc16Update(0xffff, data, start === undefined ? 0 : start, end === undefined ? data.length : end);
}
