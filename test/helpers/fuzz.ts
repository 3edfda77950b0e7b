// Mutation fuzzing helpers: a seeded PRNG, byte-level mutators that know a little
// about our wire formats (DER length octets, big-endian u16/u32 length fields),
// and a driver that runs a decoder over mutated inputs and checks that only the
// typed errors escape, that no input takes long, and collects what went wrong.
//
//   const rng = new Prng(0xC0FFEE);
//   const r = fuzzDecoder({ name: 'AP-REQ', seeds, decode: decodeApReq, iterations: 5000, rng });
//   assert.deepEqual(r.failures, []);
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { isDecodeError, isCryptoError } from '../../firmware/proto/errors.ts';

/** sfc32: small, fast, seedable, good enough statistics for fuzzing. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(seed: number) {
    this.a = 0x9e3779b9;
    this.b = 0x243f6a88;
    this.c = 0xb7e15162;
    this.d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }
  /** Uniform u32. */
  next(): number {
    const t = (((this.a + this.b) >>> 0) + this.d) >>> 0;
    this.d = (this.d + 1) >>> 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) >>> 0;
    this.c = ((this.c << 21) | (this.c >>> 11)) >>> 0;
    this.c = (this.c + t) >>> 0;
    return t;
  }
  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }
  /** Uniform integer in [0, n). */
  int(n: number): number {
    return n <= 0 ? 0 : Math.floor((this.next() / 4294967296) * n);
  }
  chance(p: number): boolean {
    return this.next() / 4294967296 < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
  /** A derived, independent generator (per decoder / per server). */
  fork(): Prng {
    return new Prng(this.next());
  }
}

/** Byte values that hit boundaries of lengths, tags and flags. */
export const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x03, 0x04, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0xfe, 0xff, 0x30, 0xa0, 0x1b, 0x18, 0xc0, 0xdb];
/** u16 / u32 values for length fields. */
export const INTERESTING_LENGTHS = [0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];

export type Mutator = (rng: Prng, b: Uint8Array, corpus: readonly Uint8Array[]) => Uint8Array;

function put32(b: Uint8Array, o: number, v: number): void {
  b[o] = (v >>> 24) & 0xff;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}

/** Offsets that look like a DER length octet: the byte after a plausible tag. */
function derLengthOffsets(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 1 < b.length && out.length < 64; i++) {
    const t = b[i];
    const cls = t & 0xc0;
    // SEQUENCE, [n] constructed context/application, INTEGER, OCTET STRING, BIT STRING, GeneralString, GeneralizedTime.
    if (t === 0x30 || ((cls === 0x80 || cls === 0x40) && t & 0x20) || t === 0x02 || t === 0x04 || t === 0x03 || t === 0x1b || t === 0x18) out.push(i + 1);
  }
  return out;
}

export const MUTATORS: { [name: string]: Mutator } = {
  bitFlip(rng, b) {
    const o = b.slice();
    if (o.length === 0) return o;
    const n = 1 + rng.int(4);
    for (let i = 0; i < n; i++) {
      const p = rng.int(o.length);
      o[p] ^= 1 << rng.int(8);
    }
    return o;
  },
  byteSet(rng, b) {
    const o = b.slice();
    if (o.length === 0) return o;
    const n = 1 + rng.int(3);
    for (let i = 0; i < n; i++) o[rng.int(o.length)] = rng.chance(0.6) ? rng.pick(INTERESTING_BYTES) : rng.next() & 0xff;
    return o;
  },
  truncate(rng, b) {
    return b.slice(0, rng.int(b.length));
  },
  truncateFront(rng, b) {
    return b.slice(1 + rng.int(Math.max(1, b.length)));
  },
  extend(rng, b) {
    const add = rng.chance(0.1) ? 1 + rng.int(5000) : 1 + rng.int(64);
    const o = new Uint8Array(b.length + add);
    o.set(b, 0);
    o.set(rng.chance(0.5) ? rng.bytes(add) : new Uint8Array(add).fill(rng.pick(INTERESTING_BYTES)), b.length);
    return o;
  },
  insert(rng, b) {
    const at = rng.int(b.length + 1);
    const ins = rng.bytes(1 + rng.int(16));
    const o = new Uint8Array(b.length + ins.length);
    o.set(b.subarray(0, at), 0);
    o.set(ins, at);
    o.set(b.subarray(at), at + ins.length);
    return o;
  },
  remove(rng, b) {
    if (b.length < 2) return b.slice();
    const at = rng.int(b.length);
    const n = 1 + rng.int(Math.min(16, b.length - at));
    const o = new Uint8Array(b.length - n);
    o.set(b.subarray(0, at), 0);
    o.set(b.subarray(at + n), at);
    return o;
  },
  duplicate(rng, b) {
    if (b.length === 0) return b.slice();
    const at = rng.int(b.length);
    const n = 1 + rng.int(Math.min(64, b.length - at));
    const chunk = b.slice(at, at + n);
    const reps = 1 + rng.int(rng.chance(0.1) ? 100 : 3);
    const o = new Uint8Array(b.length + n * reps);
    o.set(b.subarray(0, at + n), 0);
    for (let i = 0; i < reps; i++) o.set(chunk, at + n + i * n);
    o.set(b.subarray(at + n), at + n + reps * n);
    return o;
  },
  splice(rng, b, corpus) {
    const other = corpus.length ? rng.pick(corpus) : b;
    const cutA = rng.int(b.length + 1);
    const from = rng.int(other.length + 1);
    const n = rng.int(other.length - from + 1);
    const o = new Uint8Array(cutA + n + Math.max(0, b.length - cutA - rng.int(8)));
    o.set(b.subarray(0, cutA), 0);
    o.set(other.subarray(from, from + n), cutA);
    const tail = b.subarray(b.length - (o.length - cutA - n));
    o.set(tail, cutA + n);
    return o;
  },
  derLength(rng, b) {
    const o = b.slice();
    const offs = derLengthOffsets(o);
    if (offs.length === 0) return MUTATORS.byteSet(rng, b, []);
    const p = rng.pick(offs);
    const r = rng.int(6);
    if (r === 0) o[p] = (o[p] + 1) & 0xff;
    else if (r === 1) o[p] = (o[p] - 1) & 0xff;
    else if (r === 2) o[p] = rng.pick([0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x88, 0xff]); // indefinite / long forms / reserved
    else if (r === 3) o[p] = 0x7f;
    else if (r === 4) o[p] = 0;
    else {
      // Long form with a huge value, spliced in.
      const big = new Uint8Array([0x84, 0xff, 0xff, 0xff, 0xff]);
      const x = new Uint8Array(o.length + 4);
      x.set(o.subarray(0, p), 0);
      x.set(big, p);
      x.set(o.subarray(p + 1), p + 5);
      return x;
    }
    return o;
  },
  u16Field(rng, b) {
    const o = b.slice();
    if (o.length < 2) return o;
    const p = rng.int(o.length - 1);
    const v = rng.pick(INTERESTING_LENGTHS) & 0xffff;
    o[p] = v >> 8;
    o[p + 1] = v & 0xff;
    return o;
  },
  u32Field(rng, b) {
    const o = b.slice();
    if (o.length < 4) return o;
    put32(o, rng.int(o.length - 3), rng.pick(INTERESTING_LENGTHS) >>> 0);
    return o;
  },
  randomBytes(rng) {
    return rng.bytes(rng.int(rng.chance(0.05) ? 9000 : 300));
  },
};

const NAMES = Object.keys(MUTATORS);

/** 1..4 stacked mutations of `seed` (random bytes only on their own). */
export function mutate(rng: Prng, seed: Uint8Array, corpus: readonly Uint8Array[] = []): Uint8Array {
  let b = seed;
  const n = 1 + (rng.chance(0.6) ? 0 : rng.int(4));
  for (let i = 0; i < n; i++) b = MUTATORS[rng.pick(NAMES)](rng, b, corpus);
  return b;
}

export type FuzzFailure = { decoder: string; input: string; error: string };
export type FuzzResult = {
  name: string;
  iterations: number;
  /** Inputs the decoder accepted. */
  accepted: number;
  /** Inputs refused with an allowed typed error. */
  rejected: number;
  /** Slowest single input (ms) and its size. */
  maxMs: number;
  maxMsLen: number;
  failures: FuzzFailure[];
};

export type FuzzOptions = {
  name: string;
  seeds: readonly Uint8Array[];
  decode: (b: Uint8Array) => unknown;
  iterations: number;
  rng: Prng;
  /** Extra inputs to splice from (other decoders' seeds). */
  corpus?: readonly Uint8Array[];
  /** Also allow CryptoError (decoders documented to throw it). */
  allowCrypto?: boolean;
  /** Optional check of an accepted result; throw to report a failure. */
  check?: (out: unknown, input: Uint8Array) => void;
  /** Keep at most this many failure records. */
  maxFailures?: number;
};

export function hex(b: Uint8Array, max = 256): string {
  const h = Buffer.from(b.subarray(0, max)).toString('hex');
  return b.length > max ? `${h}...(${b.length} bytes)` : h;
}

/** Runs the decoder on the seeds (must decode) and then on `iterations` mutants. */
export function fuzzDecoder(o: FuzzOptions): FuzzResult {
  const r: FuzzResult = { name: o.name, iterations: 0, accepted: 0, rejected: 0, maxMs: 0, maxMsLen: 0, failures: [] };
  const maxF = o.maxFailures ?? 5;
  const corpus = o.corpus ? o.seeds.concat(o.corpus) : o.seeds;
  const one = (input: Uint8Array, mustAccept: boolean) => {
    const t0 = performance.now();
    let out: unknown;
    let ok = false;
    try {
      out = o.decode(input);
      ok = true;
    } catch (e) {
      const typed = isDecodeError(e) || (o.allowCrypto === true && isCryptoError(e));
      if (!typed || mustAccept) {
        if (r.failures.length < maxF) r.failures.push({ decoder: o.name, input: hex(input), error: `${(e as Error)?.name}: ${(e as Error)?.message ?? e}` });
      } else r.rejected++;
    }
    const dt = performance.now() - t0;
    if (dt > r.maxMs) {
      r.maxMs = dt;
      r.maxMsLen = input.length;
    }
    if (ok) {
      r.accepted++;
      if (o.check) {
        try {
          o.check(out, input);
        } catch (e) {
          if (r.failures.length < maxF) r.failures.push({ decoder: o.name, input: hex(input), error: `check: ${(e as Error).message}` });
        }
      }
    }
  };
  for (const s of o.seeds) one(s, true);
  for (let i = 0; i < o.iterations; i++) {
    one(mutate(o.rng, o.rng.pick(o.seeds), corpus), false);
    r.iterations++;
  }
  return r;
}

/** Total iterations: FUZZ_ITERATIONS (env) or the CI default. */
export function fuzzBudget(def: number): number {
  const v = Number(process.env.FUZZ_ITERATIONS);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : def;
}

/** The fuzz seed: FUZZ_SEED (env, for reproducing a long run) or the fixed default. */
export function fuzzSeed(def: number): number {
  const v = Number(process.env.FUZZ_SEED);
  return Number.isFinite(v) && process.env.FUZZ_SEED ? v >>> 0 : def;
}

let gcFn: (() => void) | null | undefined;
/** A real gc() even without --expose-gc on the command line (V8 flag set at run time); null if unavailable. */
export function getGc(): (() => void) | null {
  if (gcFn !== undefined) return gcFn;
  const g = (globalThis as { gc?: () => void }).gc;
  if (typeof g === 'function') return (gcFn = g);
  try {
    v8.setFlagsFromString('--expose-gc');
    gcFn = vm.runInNewContext('gc') as () => void;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

/** heapUsed after a full collection (bytes). */
export function heapAfterGc(): number {
  const gc = getGc();
  if (gc) {
    gc();
    gc();
  }
  return process.memoryUsage().heapUsed;
}
