// SLIP framing (RFC 1055) with a streaming decoder whose receive buffer is bounded
// (maxFrame) and exists only while a frame is arriving: a flood of bytes can never grow
// memory past one frame, and an idle link holds none (a preallocated 2,048-byte buffer
// was 162 variables for good on a 13-byte-block board, measured).
// Written inside the Espruino subset.

export const SLIP_END = 0xc0;
export const SLIP_ESC = 0xdb;
export const SLIP_ESC_END = 0xdc;
export const SLIP_ESC_ESC = 0xdd;

/** Default (and suggested) largest decoded frame, in bytes. */
export const SLIP_MAX_FRAME = 2048;

/**
 * Encode one frame: END, the escaped bytes, END. The leading END flushes any
 * line noise the receiver has accumulated (RFC 1055's recommendation).
 */
export function slipEncode(data: Uint8Array): Uint8Array {
  let n = 2;
  for (let i = 0; i < data.length; i++) n += data[i] === SLIP_END || data[i] === SLIP_ESC ? 2 : 1;
  const out = new Uint8Array(n);
  let o = 0;
  out[o++] = SLIP_END;
  for (let i = 0; i < data.length; i++) {
    const c = data[i];
    if (c === SLIP_END) {
      out[o++] = SLIP_ESC;
      out[o++] = SLIP_ESC_END;
    } else if (c === SLIP_ESC) {
      out[o++] = SLIP_ESC;
      out[o++] = SLIP_ESC_ESC;
    } else out[o++] = c;
  }
  out[o] = SLIP_END;
  return out;
}

export interface SlipStats {
  /** Frames delivered. */
  frames: number;
  /** Frames dropped because they exceeded the receive buffer. */
  oversized: number;
  /** Frames dropped because ESC was followed by something other than ESC_END/ESC_ESC. */
  badEscape: number;
}

/** The receive buffer grows by this many bytes at a time, up to maxFrame. */
const SLIP_GROW = 256;

/**
 * Streaming SLIP decoder. feed() bytes (Uint8Array, or an Espruino "binary
 * string" as Serial `data` events deliver); each complete, non-empty frame is
 * passed to onFrame as a view of the bytes (the decoder lets go of them once
 * onFrame returns; the next frame gets a new buffer). An oversized or badly escaped frame is
 * dropped and counted, and the decoder resynchronises at the next END.
 */
export class SlipDecoder {
  readonly stats: SlipStats;
  /** The frame arriving, null between frames. */
  private buf: Uint8Array | null;
  private max: number;
  private len: number;
  private esc: boolean;
  /** True while discarding the rest of a broken frame up to the next END. */
  private dropping: boolean;
  private onFrame: (frame: Uint8Array) => void;

  constructor(onFrame: (frame: Uint8Array) => void, maxFrame?: number) {
    const max = maxFrame === undefined ? SLIP_MAX_FRAME : maxFrame;
    if (!(max >= 1 && max <= 65536)) throw new Error('SlipDecoder: maxFrame out of range');
    this.max = max;
    this.buf = null;
    this.len = 0;
    this.esc = false;
    this.dropping = false;
    this.onFrame = onFrame;
    this.stats = { frames: 0, oversized: 0, badEscape: 0 };
  }

  feed(chunk: Uint8Array | string): void {
    const isStr = typeof chunk === 'string';
    const n = chunk.length;
    for (let i = 0; i < n; i++) {
      const c = isStr ? (chunk as string).charCodeAt(i) & 0xff : (chunk as Uint8Array)[i];
      this.byte(c);
    }
  }

  private byte(c: number): void {
    if (c === SLIP_END) {
      if (!this.dropping && !this.esc && this.len > 0 && this.buf) {
        this.stats.frames++;
        const frame = this.buf.subarray(0, this.len);
        this.buf = null;
        this.len = 0;
        this.onFrame(frame);
      } else if (this.esc && !this.dropping) {
        // ESC immediately followed by END: a broken frame.
        this.stats.badEscape++;
      }
      this.buf = null;
      this.len = 0;
      this.esc = false;
      this.dropping = false;
      return;
    }
    if (this.dropping) return;
    if (this.esc) {
      this.esc = false;
      if (c === SLIP_ESC_END) c = SLIP_END;
      else if (c === SLIP_ESC_ESC) c = SLIP_ESC;
      else {
        this.stats.badEscape++;
        this.dropping = true;
        this.buf = null;
        return;
      }
    } else if (c === SLIP_ESC) {
      this.esc = true;
      return;
    }
    if (this.len >= this.max) {
      this.stats.oversized++;
      this.dropping = true;
      this.buf = null;
      return;
    }
    let buf = this.buf;
    if (!buf || this.len >= buf.length) {
      const grown = new Uint8Array(Math.min(this.max, this.len + SLIP_GROW));
      if (buf) grown.set(buf);
      this.buf = buf = grown;
    }
    buf[this.len++] = c;
  }
}
