// process.memory() for the emulator: an estimate, in Espruino "variables", of what
// the firmware keeps alive. V8's heap is shared with the host, so instead we walk
// every object reachable from the roots (the globals the bundle added, pending
// timer callbacks) and charge each the way Espruino stores it:
//   - object / array / function / class instance: 1 variable
//   - each own property or array element: 1 (its name; small ints, booleans,
//     null and undefined live inside the name) + the value's cost
//   - a non-integer number: 1 more
//   - a string: ceil(length / 12) (Espruino packs ~12 chars per block)
//   - a typed array: 1 (the view) + 1 (its ArrayBuffer) + ceil(byteLength / blockSize)
//     for the flat storage, charged once per ArrayBuffer
//   - prototypes that are not built-ins (class methods) are walked once
// Not seen: variables held only in closures (not reachable by property walks) and
// function code (assumed to run from flash, as the firmware is deployed via
// Storage .bootcde). The walk is bounded: it stops counting at `limit`.
export interface MemoryEstimateOptions {
  blockSize: number;
  /** Stop walking once this many variables are counted. */
  limit: number;
  /** Built-in objects (intrinsics of the context) never charged nor walked. */
  builtins: WeakSet<object>;
}

export function estimateVariables(roots: unknown[], opts: MemoryEstimateOptions): number {
  const seen = new WeakSet<object>();
  const stack: unknown[] = roots.slice();
  let n = 0;
  const blockSize = Math.max(8, opts.blockSize);
  while (stack.length && n < opts.limit) {
    const v = stack.pop();
    if (v === null || v === undefined || typeof v === 'boolean') continue;
    if (typeof v === 'number') {
      if (!Number.isInteger(v)) n++;
      continue;
    }
    if (typeof v === 'string') {
      n += Math.ceil(v.length / 12);
      continue;
    }
    if (typeof v !== 'object' && typeof v !== 'function') continue;
    const o = v as object;
    if (seen.has(o) || opts.builtins.has(o)) continue;
    seen.add(o);
    if (ArrayBuffer.isView(o)) {
      n += 1;
      const buf = (o as Uint8Array).buffer;
      if (!seen.has(buf)) {
        seen.add(buf);
        n += 1 + Math.ceil(buf.byteLength / blockSize);
      }
      continue;
    }
    if (Object.prototype.toString.call(o) === '[object ArrayBuffer]') {
      n += 1 + Math.ceil((o as ArrayBuffer).byteLength / blockSize);
      continue;
    }
    n += 1;
    let names: string[];
    try {
      names = Object.getOwnPropertyNames(o);
    } catch {
      continue;
    }
    const isFn = typeof o === 'function';
    for (const k of names) {
      if (isFn && (k === 'length' || k === 'name' || k === 'arguments' || k === 'caller')) continue;
      if (Array.isArray(o) && k === 'length') continue;
      const d = Object.getOwnPropertyDescriptor(o, k);
      if (!d) continue;
      n += 1;
      if ('value' in d) stack.push(d.value);
      else {
        if (d.get) stack.push(d.get);
        if (d.set) stack.push(d.set);
      }
      if (n >= opts.limit) break;
    }
    const proto = Object.getPrototypeOf(o);
    if (proto && !opts.builtins.has(proto)) stack.push(proto);
  }
  return Math.min(n, opts.limit);
}

/** Every object reachable from `root` through own properties and prototypes, to `depth`: the intrinsics. */
export function collectBuiltins(root: object, depth: number): WeakSet<object> {
  const set = new WeakSet<object>();
  const walk = (o: unknown, d: number) => {
    if (o === null || (typeof o !== 'object' && typeof o !== 'function')) return;
    const obj = o as object;
    if (set.has(obj)) return;
    set.add(obj);
    if (d <= 0) return;
    walk(Object.getPrototypeOf(obj), d - 1);
    for (const k of Object.getOwnPropertyNames(obj)) {
      let d2: PropertyDescriptor | undefined;
      try {
        d2 = Object.getOwnPropertyDescriptor(obj, k);
      } catch {
        continue;
      }
      if (d2 && 'value' in d2) walk(d2.value, d - 1);
    }
  };
  walk(root, depth);
  return set;
}
