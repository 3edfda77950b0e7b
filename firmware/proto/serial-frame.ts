// Serial-link frames (PROTOCOL.md "Serial framing"):
//   frame = SLIP( CBOR([channel, payload]) || CRC-16/CCITT-FALSE(CBOR bytes), big-endian )
// Written inside the Espruino subset.

import { cborDecode, cborEncode } from './cbor.ts';
import type { CborValue } from './cbor.ts';
import { crc16 } from './crc16.ts';
import { SlipDecoder, slipEncode, SLIP_MAX_FRAME } from './slip.ts';

/** Channel numbers. */
export const CHANNEL = {
  CONTROL: 0,
  KM: 1,
  KDC: 2,
  SIGNALING: 3,
  LOG: 4,
};
/** Highest channel number accepted on the wire. */
export const CHANNEL_MAX = 15;

/** Encode one frame ready to write to the serial port. */
export function encodeFrame(channel: number, payload: CborValue): Uint8Array {
  if (!(channel >= 0 && channel <= CHANNEL_MAX && Math.floor(channel) === channel)) throw new Error('encodeFrame: bad channel');
  const body = cborEncode([channel, payload]);
  const out = new Uint8Array(body.length + 2);
  out.set(body, 0);
  const c = crc16(body);
  out[body.length] = c >> 8;
  out[body.length + 1] = c & 0xff;
  if (out.length > SLIP_MAX_FRAME) throw new Error('encodeFrame: frame larger than ' + SLIP_MAX_FRAME + ' bytes');
  return slipEncode(out);
}

export interface FrameStats {
  /** Good frames delivered to onFrame. */
  frames: number;
  /** Dropped: CRC mismatch. */
  badCrc: number;
  /** Dropped: CRC fine but not CBOR, or not [channel, payload]. */
  badCbor: number;
  /** Dropped: longer than the receive buffer (counted by SLIP). */
  oversized: number;
  /** Dropped: bad SLIP escape (counted by SLIP). */
  badEscape: number;
  /** Dropped: shorter than a CBOR item plus the CRC. */
  runt: number;
}

/**
 * Streaming frame decoder over a bounded SLIP buffer. feed() chunks of
 * serial data (Uint8Array or binary string); each good frame calls
 * onFrame(channel, payload). Bad frames are dropped and counted in `stats`;
 * the decoder resynchronises at the next END byte.
 * A frame is decoded as soon as its END arrives and handed on once the whole chunk
 * is read: by then nothing holds the SLIP buffer, so the interpreter can reclaim it
 * while the agent works on the payload (on a 13-byte board a 630-byte AS-REP's
 * buffer is about 60 variables, at the agent's peak).
 */
export class FrameDecoder {
  readonly stats: FrameStats;
  private slip: SlipDecoder;
  private onFrame: (channel: number, payload: CborValue) => void;
  /** Decoded frames of the chunk being read: channel, payload, channel, payload, ...
   * (bounded by the chunk: each payload is a copy of fewer bytes than its frame). */
  private ready: CborValue[];

  constructor(onFrame: (channel: number, payload: CborValue) => void, maxFrame?: number) {
    this.onFrame = onFrame;
    this.ready = [];
    this.stats = { frames: 0, badCrc: 0, badCbor: 0, oversized: 0, badEscape: 0, runt: 0 };
    this.slip = new SlipDecoder((f) => this.frame(f), maxFrame === undefined ? SLIP_MAX_FRAME : maxFrame);
  }

  feed(chunk: Uint8Array | string): void {
    this.slip.feed(chunk);
    this.stats.oversized = this.slip.stats.oversized;
    this.stats.badEscape = this.slip.stats.badEscape;
    // Most chunks end no frame: only then is a fresh list made.
    const ready = this.ready;
    if (!ready.length) return;
    this.ready = [];
    for (let i = 0; i < ready.length; i += 2) this.onFrame(ready[i] as number, ready[i + 1]);
  }

  private frame(f: Uint8Array): void {
    if (f.length < 3) {
      this.stats.runt++;
      return;
    }
    const n = f.length - 2;
    const want = (f[n] << 8) | f[n + 1];
    if (crc16(f, 0, n) !== want) {
      this.stats.badCrc++;
      return;
    }
    let v: CborValue;
    try {
      v = cborDecode(f.subarray(0, n));
    } catch (e) {
      this.stats.badCbor++;
      return;
    }
    if (!Array.isArray(v) || v.length !== 2 || typeof v[0] !== 'number') {
      this.stats.badCbor++;
      return;
    }
    const ch = v[0] as number;
    if (!(ch >= 0 && ch <= CHANNEL_MAX && Math.floor(ch) === ch)) {
      this.stats.badCbor++;
      return;
    }
    this.stats.frames++;
    this.ready.push(ch, v[1]);
  }
}
