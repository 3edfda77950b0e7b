// Host side of the serial framing (PROTOCOL.md "Serial framing"):
//   frame = SLIP( CBOR([channel, payload]) || CRC-16/CCITT-FALSE(CBOR bytes) )
// CBOR through cbor-x (the board uses firmware/proto/cbor.ts; both read each
// other's bytes), SLIP and the CRC from firmware/proto (one definition of the wire).
// Bad frames are dropped and counted; the decoder resynchronises at the next END.
import { Decoder, Encoder } from 'cbor-x';
import { crc16 } from '../../firmware/proto/crc16.ts';
import { SlipDecoder, slipEncode, SLIP_MAX_FRAME } from '../../firmware/proto/slip.ts';
import { CHANNEL_MAX, type FrameStats } from '../../firmware/proto/serial-frame.ts';

export { CHANNEL, CHANNEL_MAX } from '../../firmware/proto/serial-frame.ts';

const encoder = new Encoder({ tagUint8Array: false, useRecords: false, mapsAsObjects: true } as ConstructorParameters<typeof Encoder>[0]);
const decoder = new Decoder({ useRecords: false, mapsAsObjects: true } as ConstructorParameters<typeof Decoder>[0]);

/** Encodes one frame ready for the wire. */
export function encodeHostFrame(channel: number, payload: unknown): Uint8Array {
  if (!Number.isInteger(channel) || channel < 0 || channel > CHANNEL_MAX) throw new Error(`bad channel ${channel}`);
  const body = new Uint8Array(encoder.encode([channel, payload]));
  const out = new Uint8Array(body.length + 2);
  out.set(body, 0);
  const c = crc16(body);
  out[body.length] = c >> 8;
  out[body.length + 1] = c & 0xff;
  if (out.length > SLIP_MAX_FRAME) throw new Error(`frame of ${out.length} bytes is larger than ${SLIP_MAX_FRAME}`);
  return slipEncode(out);
}

/** The same counters as the board's FrameDecoder, so both ends report alike. */
export type HostFrameStats = FrameStats;

/** Streaming decoder: feed() chunks, each good frame calls onFrame(channel, payload). */
export class HostFrameDecoder {
  readonly stats: HostFrameStats = { frames: 0, badCrc: 0, badCbor: 0, oversized: 0, badEscape: 0, runt: 0 };
  private slip: SlipDecoder;

  constructor(private onFrame: (channel: number, payload: unknown) => void) {
    this.slip = new SlipDecoder((f) => this.frame(f), SLIP_MAX_FRAME);
  }

  feed(chunk: Uint8Array): void {
    this.slip.feed(chunk);
    this.stats.oversized = this.slip.stats.oversized;
    this.stats.badEscape = this.slip.stats.badEscape;
  }

  /** Frames dropped for any reason. */
  get dropped(): number {
    const s = this.stats;
    return s.badCrc + s.badCbor + s.oversized + s.badEscape + s.runt;
  }

  private frame(view: Uint8Array): void {
    if (view.length < 3) {
      this.stats.runt++;
      return;
    }
    const n = view.length - 2;
    if (crc16(view, 0, n) !== ((view[n] << 8) | view[n + 1])) {
      this.stats.badCrc++;
      return;
    }
    // A copy: the SLIP buffer is reused, and cbor-x may hand out views into its input.
    const body = Buffer.from(view.subarray(0, n));
    let v: unknown;
    try {
      v = decoder.decode(body);
    } catch {
      this.stats.badCbor++;
      return;
    }
    if (!Array.isArray(v) || v.length !== 2 || !Number.isInteger(v[0]) || v[0] < 0 || v[0] > CHANNEL_MAX) {
      this.stats.badCbor++;
      return;
    }
    this.stats.frames++;
    let payload = v[1];
    if (payload instanceof Uint8Array) payload = new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength);
    this.onFrame(v[0], payload);
  }
}
