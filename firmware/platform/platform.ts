// The only way the CTA agent reaches hardware. Implementations:
//  - firmware/platform/espruino.ts (the board; also what the emulator runs, since
//    the emulator gives the bundle Espruino-shaped globals)
//  - test fakes (fake clock, in-memory network) for unit tests.
import type { CryptoBackend } from '../proto/crypto/backend.ts';

export interface Datagram {
  data: Uint8Array;
  address: string;
  port: number;
}

export interface UdpSocket {
  send(data: Uint8Array, port: number, address: string): void;
  close(): void;
}

export interface SerialLink {
  write(data: Uint8Array): void;
  onData(fn: (chunk: Uint8Array) => void): void;
}

export interface Storage {
  read(name: string): Uint8Array | null;
  write(name: string, data: Uint8Array): void;
  erase(name: string): void;
}

export interface MemoryInfo {
  free: number;
  usage: number;
  total: number;
}

export interface Platform {
  readonly crypto: CryptoBackend;
  /** Wall-clock milliseconds since the Unix epoch (board clocks may be wrong: the agent keeps an offset). */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Binds a UDP socket; null where the board has no networking. port 0 = any. */
  udpBind(port: number, onMessage: (data: Uint8Array, address: string, port: number) => void): UdpSocket | null;
  /** The serial link to the host, or null. */
  readonly serial: SerialLink | null;
  readonly storage: Storage;
  /** A structured event line; fields never contain key material. */
  log(event: string, fields: { [k: string]: string | number | boolean }): void;
  memory(): MemoryInfo;
}
