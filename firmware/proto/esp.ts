// Protected signaling over the SA (PROTOCOL.md last section): ESP-like packets
// in the RFC 4303 layout,
//   SPI u32 | Seq u32 | IV 16 | AES-128-CBC(payload | padding | pad length | next header) | ICV 12
// with ICV = HMAC-SHA1-96 over SPI..ciphertext, a 64-packet anti-replay window
// (RFC 4303 3.4.3) and a tiny NCS/MGCP request/response helper.
// With encKey = null (ciphersuite NULL, 0x0b) there is no IV and the trailer is
// padded to 4 bytes in the clear (RFC 2410 style). Written inside the Espruino subset.

import { DecodeError, CryptoError } from './errors.ts';
import { concat, ctEqual, readU32, writeU32 } from './bytes.ts';
import type { CryptoBackend } from './crypto/backend.ts';
import { hmac } from './crypto/index.ts';

// The numbers are plain constants in consts.ts (inlined by the minifier; a module's
// own const stays a variable on the board), re-exported here.
import { ESP_ICV_LEN, ESP_IV_LEN, ESP_HEADER_LEN, ESP_MAX_PACKET, NCS_MAX, NH_NONE } from './consts.ts';
export { ESP_ICV_LEN, ESP_IV_LEN, ESP_HEADER_LEN, ESP_MAX_PACKET, NCS_MAX, REPLAY_WINDOW_SIZE } from './consts.ts';
/** Next-header values used by this project. */
export const ESP_NEXT_HEADER = { UDP: 17, NONE: NH_NONE };

export interface EspSealParams {
  spi: number;
  /** 1..2^32-1; the caller keeps the counter and must re-key before it wraps. */
  seq: number;
  /** 16-byte AES-128-CBC key, or null for NULL encryption. */
  encKey: Uint8Array | null;
  /** HMAC-SHA1 key (20 bytes from deriveSaKeys). */
  authKey: Uint8Array;
}
export interface EspOpenParams {
  encKey: Uint8Array | null;
  authKey: Uint8Array;
}
export interface EspOpened {
  spi: number;
  seq: number;
  payload: Uint8Array;
  nextHeader: number;
}

// The ICV is HMAC-SHA1-96 over SPI || seq || IV || ciphertext (written at both uses).

function checkKeys(encKey: Uint8Array | null, authKey: Uint8Array): void {
  if (encKey !== null && !(encKey instanceof Uint8Array && encKey.length === 16)) throw new CryptoError('esp: encryption key must be 16 bytes');
  if (!(authKey instanceof Uint8Array) || authKey.length === 0) throw new CryptoError('esp: missing authentication key');
}

/** Seal `payload` into one ESP packet. `iv` (16 bytes) is random when omitted. */
export function espSeal(b: CryptoBackend, sa: EspSealParams, payload: Uint8Array, nextHeader: number, iv?: Uint8Array): Uint8Array {
  checkKeys(sa.encKey, sa.authKey);
  if (!(sa.spi >= 0 && sa.spi <= 0xffffffff && Math.floor(sa.spi) === sa.spi)) throw new DecodeError('esp: bad SPI');
  if (!(sa.seq >= 1 && sa.seq <= 0xffffffff && Math.floor(sa.seq) === sa.seq)) throw new DecodeError('esp: sequence number must be 1..2^32-1');
  if (!(nextHeader >= 0 && nextHeader <= 255 && Math.floor(nextHeader) === nextHeader)) throw new DecodeError('esp: bad next header');
  const enc = sa.encKey !== null;
  const block = enc ? 16 : 4;
  const ivLen = enc ? ESP_IV_LEN : 0;
  let padLen = block - ((payload.length + 2) % block);
  if (padLen === block) padLen = 0;
  const ptLen = payload.length + padLen + 2;
  if (ESP_HEADER_LEN + ivLen + ptLen + ESP_ICV_LEN > ESP_MAX_PACKET) throw new DecodeError('esp: payload too large');
  const pt = new Uint8Array(ptLen);
  pt.set(payload, 0);
  for (let i = 0; i < padLen; i++) pt[payload.length + i] = i + 1;
  pt[ptLen - 2] = padLen;
  pt[ptLen - 1] = nextHeader;
  const hdr = new Uint8Array(ESP_HEADER_LEN + ivLen);
  writeU32(hdr, 0, sa.spi);
  writeU32(hdr, 4, sa.seq);
  let body: Uint8Array;
  if (enc) {
    const theIv = iv === undefined ? b.randomBytes(ESP_IV_LEN) : iv;
    if (theIv.length !== ESP_IV_LEN) throw new CryptoError('esp: IV must be 16 bytes');
    hdr.set(theIv, ESP_HEADER_LEN);
    body = b.aesCbcEncrypt(sa.encKey as Uint8Array, theIv, pt);
  } else body = pt;
  const covered = concat([hdr, body]);
  return concat([covered, hmac(b, 'sha1', sa.authKey, covered).subarray(0, ESP_ICV_LEN)]);
}

/** The SPI of a packet (to pick the SA), or -1 if too short to be one. */
export function espPeekSpi(packet: Uint8Array): number {
  return packet.length < ESP_HEADER_LEN ? -1 : readU32(packet, 0);
}

/**
 * Check the ICV (constant time) and only then decrypt and check the padding.
 * DecodeError for malformed packets, CryptoError for a wrong ICV. Does NOT
 * check replay: call ReplayWindow.check(seq) before and update(seq) after.
 */
export function espOpen(b: CryptoBackend, sa: EspOpenParams, packet: Uint8Array): EspOpened {
  checkKeys(sa.encKey, sa.authKey);
  const enc = sa.encKey !== null;
  const block = enc ? 16 : 4;
  const ivLen = enc ? ESP_IV_LEN : 0;
  if (!(packet instanceof Uint8Array)) throw new DecodeError('esp: not bytes');
  if (packet.length > ESP_MAX_PACKET) throw new DecodeError('esp: packet too large');
  const bodyLen = packet.length - ESP_HEADER_LEN - ivLen - ESP_ICV_LEN;
  if (bodyLen < block) throw new DecodeError('esp: packet too short');
  if (bodyLen % block !== 0) throw new DecodeError('esp: ciphertext is not a whole number of blocks');
  const icvAt = packet.length - ESP_ICV_LEN;
  const covered = packet.subarray(0, icvAt);
  if (!ctEqual(hmac(b, 'sha1', sa.authKey, covered).subarray(0, ESP_ICV_LEN), packet.subarray(icvAt))) throw new CryptoError('esp: ICV mismatch');
  const body = packet.subarray(ESP_HEADER_LEN + ivLen, icvAt);
  const pt = enc ? b.aesCbcDecrypt(sa.encKey as Uint8Array, packet.slice(ESP_HEADER_LEN, ESP_HEADER_LEN + ivLen), body) : body;
  const padLen = pt[pt.length - 2];
  if (padLen > pt.length - 2) throw new DecodeError('esp: pad length exceeds the packet');
  const payloadLen = pt.length - 2 - padLen;
  for (let i = 0; i < padLen; i++) {
    if (pt[payloadLen + i] !== i + 1) throw new DecodeError('esp: bad padding');
  }
  return {
    spi: readU32(packet, 0),
    seq: readU32(packet, 4),
    payload: pt.slice(0, payloadLen),
    nextHeader: pt[pt.length - 1],
  };
}

/**
 * 64-packet anti-replay window (RFC 4303 3.4.3), without BigInt: a 64-bit
 * bitmap in a preallocated Uint32Array(2) (bit i of the 64 = seq top - i) and
 * the highest sequence number seen. Sequence numbers are 32-bit (no ESN).
 */

export class ReplayWindow {
  /** [0] = bits 0..31 (top .. top-31), [1] = bits 32..63. */
  private bits: Uint32Array;
  private topSeq: number;

  constructor() {
    this.bits = new Uint32Array(2);
    this.topSeq = 0;
  }

  /** Highest authenticated sequence number so far (0 = none). */
  get top(): number {
    return this.topSeq;
  }

  /** True if `seq` is new and inside (or ahead of) the window. Call before espOpen. */
  check(seq: number): boolean {
    if (!(seq >= 1 && seq <= 0xffffffff)) return false;
    if (seq > this.topSeq) return true;
    const d = this.topSeq - seq;
    if (d >= 64) return false;
    const w = d < 32 ? this.bits[0] : this.bits[1];
    return ((w >>> (d & 31)) & 1) === 0;
  }

  /**
   * Record `seq` as received. Call only after the ICV has verified. Returns
   * false (and changes nothing) if `seq` is a replay or too old.
   */
  update(seq: number): boolean {
    if (!this.check(seq)) return false;
    if (seq > this.topSeq) {
      const s = seq - this.topSeq;
      if (s >= 64) {
        this.bits[0] = 0;
        this.bits[1] = 0;
      } else if (s >= 32) {
        this.bits[1] = s === 32 ? this.bits[0] : (this.bits[0] << (s - 32)) >>> 0;
        this.bits[0] = 0;
      } else {
        this.bits[1] = ((this.bits[1] << s) | (this.bits[0] >>> (32 - s))) >>> 0;
        this.bits[0] = (this.bits[0] << s) >>> 0;
      }
      this.topSeq = seq;
      this.bits[0] = (this.bits[0] | 1) >>> 0;
      return true;
    }
    const d = this.topSeq - seq;
    if (d < 32) this.bits[0] = (this.bits[0] | (1 << d)) >>> 0;
    else this.bits[1] = (this.bits[1] | (1 << (d - 32))) >>> 0;
    return true;
  }

  reset(): void {
    this.bits[0] = 0;
    this.bits[1] = 0;
    this.topSeq = 0;
  }
}

// ---------------------------------------------------------------- NCS/MGCP

export interface NcsCommand {
  verb: string;
  txid: string;
  endpoint: string;
  /** "MGCP 1.0 NCS 1.0" (or "MGCP 1.0"). */
  version: string;
  /** Parameter lines after the command line (without line ends; blank line ends them). */
  params: string[];
}
export interface NcsResponse {
  code: number;
  txid: string;
  comment: string;
}


function ncsLines(text: string): string[] {
  if (typeof text !== 'string' || text.length === 0) throw new DecodeError('ncs: empty message');
  if (text.length > NCS_MAX) throw new DecodeError('ncs: message too long');
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) || c > 0x7e) throw new DecodeError('ncs: non-ASCII or control character');
  }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    if (l.length > 0 && l.charCodeAt(l.length - 1) === 0x0d) lines[i] = l.substr(0, l.length - 1);
  }
  return lines;
}

/** 1 to 9 decimal digits, not all zero. */
function isTxid(s: string): boolean {
  if (s.length < 1 || s.length > 9) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return parseInt(s, 10) >= 1;
}


/** Parse "VERB txid endpoint MGCP 1.0 NCS 1.0" (+ parameter lines). */
export function parseNcsCommand(text: string): NcsCommand {
  const lines = ncsLines(text);
  // The command line split on runs of spaces/tabs (no RegExp: keeps the interpreter's work small).
  const line = lines[0];
  const f: string[] = [];
  let cur = '';
  for (let i = 0; i < line.length; i++) {
    const c = line.charAt(i);
    if (c === ' ' || c === '\t') {
      if (cur) f.push(cur);
      cur = '';
    } else cur += c;
  }
  if (cur) f.push(cur);
  if (f.length !== 5 && f.length !== 7) throw new DecodeError('ncs: command line has ' + f.length + ' fields');
  // The verb: four characters, A-Z, digits allowed after the first.
  const v = f[0];
  if (v.length !== 4) throw new DecodeError('ncs: bad verb');
  for (let i = 0; i < 4; i++) {
    const c = v.charCodeAt(i);
    if (!((c >= 0x41 && c <= 0x5a) || (i > 0 && c >= 0x30 && c <= 0x39))) throw new DecodeError('ncs: bad verb');
  }
  if (!isTxid(f[1])) throw new DecodeError('ncs: bad transaction id');
  const at = f[2].indexOf('@');
  if (f[2].length > 255 || at < 1 || at === f[2].length - 1) throw new DecodeError('ncs: bad endpoint name');
  if (f[3] !== 'MGCP' || f[4] !== '1.0') throw new DecodeError('ncs: not MGCP 1.0');
  if (f.length === 7 && (f[5] !== 'NCS' || f[6] !== '1.0')) throw new DecodeError('ncs: bad profile');
  const params: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    if (lines[i] === '') break;
    params.push(lines[i]);
  }
  return { verb: f[0], txid: f[1], endpoint: f[2], version: f.slice(3).join(' '), params: params };
}

/** Build a command ("RQNT 1201 aaln/1@cta.example.net MGCP 1.0 NCS 1.0\r\n") plus optional parameter lines. */
export function buildNcsCommand(verb: string, txid: string, endpoint: string, params?: string[]): string {
  let s = verb + ' ' + txid + ' ' + endpoint + ' MGCP 1.0 NCS 1.0\r\n';
  if (params) for (let i = 0; i < params.length; i++) s += params[i] + '\r\n';
  parseNcsCommand(s);
  return s;
}

/** Build a response line: "200 txid OK\r\n" by default. */
export function buildNcsResponse(txid: string, code?: number, comment?: string): string {
  const c = code === undefined ? 200 : code;
  if (!(c >= 100 && c <= 999 && Math.floor(c) === c)) throw new DecodeError('ncs: bad response code');
  if (!isTxid(txid)) throw new DecodeError('ncs: bad transaction id');
  const cm = comment === undefined ? (c === 200 ? 'OK' : '') : comment;
  const s = c + ' ' + txid + (cm ? ' ' + cm : '') + '\r\n';
  ncsLines(s);
  return s;
}

/** Parse "code txid [comment]" (the first line). */
export function parseNcsResponse(text: string): NcsResponse {
  const line = ncsLines(text)[0];
  const sp1 = line.indexOf(' ');
  let digits = sp1 === 3;
  for (let i = 0; i < 3 && digits; i++) digits = line.charCodeAt(i) >= 0x30 && line.charCodeAt(i) <= 0x39;
  if (!digits) throw new DecodeError('ncs: bad response code');
  let sp2 = line.indexOf(' ', 4);
  if (sp2 < 0) sp2 = line.length;
  const txid = line.substring(4, sp2);
  if (!isTxid(txid)) throw new DecodeError('ncs: bad transaction id');
  return { code: parseInt(line.substr(0, 3), 10), txid: txid, comment: sp2 < line.length ? line.substr(sp2 + 1) : '' };
}
