// Typed errors usable on the Espruino interpreter.
// A class that `extends Error` loses its message there (ESPRUINO.md), so these are
// ES5-style constructors whose prototype is Object.create(Error.prototype).

export interface DecodeError extends Error {
  /** Always "DecodeError". */
  name: string;
}
export interface CryptoError extends Error {
  name: string;
}

interface ErrorCtor<T> {
  new (message: string): T;
  (message: string): T;
  prototype: T;
}

// Constructors written out (no factory closure: on the interpreter every closure keeps
// its creating scope alive). Each instance carries its own name; the prototypes only
// chain to Error.prototype (instanceof Error), with nothing else to keep in RAM.
/** The one error any decoder throws for malformed, truncated or oversized input. */
export const DecodeError = function (this: DecodeError, message: string) {
  this.name = 'DecodeError';
  this.message = message;
} as unknown as ErrorCtor<DecodeError>;
/** Integrity-check failure, unsupported enctype, bad key length. */
export const CryptoError = function (this: CryptoError, message: string) {
  this.name = 'CryptoError';
  this.message = message;
} as unknown as ErrorCtor<CryptoError>;
DecodeError.prototype = Object.create(Error.prototype);
CryptoError.prototype = Object.create(Error.prototype);

export function isDecodeError(e: unknown): e is DecodeError {
  return e instanceof DecodeError;
}
export function isCryptoError(e: unknown): e is CryptoError {
  return e instanceof CryptoError;
}

// Throw helpers: short-error builds (host-tools/build/build.ts) rewrite each
// `throw new DecodeError(<text>)` statement into `throwDecode(512)` (or
// `throwDecode("512{" + value + "}")`): the same error, with the text code "#512"
// as its message, and about 12 bytes less per site. Not for hand use.
export function throwDecode(code: number | string): never {
  throw new DecodeError('#' + code);
}
export function throwCrypto(code: number | string): never {
  throw new CryptoError('#' + code);
}
export function throwError(code: number | string): never {
  throw new Error('#' + code);
}
