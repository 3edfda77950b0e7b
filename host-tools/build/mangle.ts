// Property names the build may shorten (esbuild mangleProps), so the firmware source
// keeps names that explain themselves and the board gets one- or two-letter ones: on
// the interpreter a name longer than 4 characters (13-byte blocks) costs a second
// variable per object that has it, and every byte of the image is Storage.
//
// The rule, conservative by construction: a name is shortened only if it is used
// nowhere but in the firmware's own code. Kept as written:
//  - every word that appears anywhere in the host tools, the tests, the scripts or
//    bin/ (code, strings or comments): that covers the firmware's public surface
//    (status(), counters, the configuration's keys, control replies, the Espruino APIs
//    the emulator implements, whatever a test reads);
//  - every word inside a string literal of the firmware code (table-driven DER field
//    names, keys built at run time; comments do not count);
//  - every property name of the JavaScript built-ins (read from this Node process).
// A wrong guess can only keep a name long; it cannot rename a property that some
// code outside the bundle reads. docs/design/FOOTPRINT.md records the rule.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { transformSync } from 'esbuild';

const WORD = /[A-Za-z_$][\w$]*/g;

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'vectors') files(p, out);
    } else if (/\.(ts|mts|js|mjs|cjs|c|json)$/.test(e.name)) out.push(p);
  }
  return out;
}

function builtinNames(): Set<string> {
  const out = new Set<string>();
  const add = (o: unknown) => {
    for (let p = o; p; p = Object.getPrototypeOf(p)) for (const k of Object.getOwnPropertyNames(p)) out.add(k);
  };
  for (const g of Object.getOwnPropertyNames(globalThis)) {
    out.add(g);
    try {
      const v = (globalThis as { [k: string]: unknown })[g];
      if (v && (typeof v === 'object' || typeof v === 'function')) {
        add(v);
        if (typeof v === 'function' && v.prototype) add(v.prototype);
      }
    } catch {
      /* a getter that throws: its name is enough */
    }
  }
  return out;
}

/** The regular expression of property names esbuild may mangle in a firmware bundle. */
export function mangleablePropsRegex(repoRoot: string): RegExp {
  const keep = builtinNames();
  for (const dir of ['host-tools', 'test', 'scripts', 'bin', 'bench', 'board-configs']) {
    let list: string[];
    try {
      list = files(join(repoRoot, dir));
    } catch {
      continue;
    }
    for (const f of list) for (const m of readFileSync(f, 'utf8').matchAll(WORD)) keep.add(m[0]);
  }
  const candidates = new Set<string>();
  for (const f of files(join(repoRoot, 'firmware'))) {
    // Comments and types dropped first: a quoted word in a comment is not a string of the code.
    const src = transformSync(readFileSync(f, 'utf8'), { loader: 'ts' }).code;
    for (const s of src.matchAll(/'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`(?:\\.|[^`\\])*`/g)) for (const m of s[0].matchAll(WORD)) keep.add(m[0]);
    for (const m of src.matchAll(WORD)) candidates.add(m[0]);
  }
  const names = [...candidates].filter((n) => !keep.has(n) && n.length > 1).sort();
  return new RegExp('^(?:' + names.map((n) => n.replace(/\$/g, '\\$')).join('|') + ')$');
}
