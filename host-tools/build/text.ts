// The text dictionary: text that only a person reads leaves the board (as
// dictionary-based logging does in embedded C and Rust). The build (codes.ts
// shortErrorsPlugin) replaces, in the firmware source it bundles,
//  - error messages (`new Error(..)`, `new DecodeError(..)`, `new CryptoError(..)`),
//  - console lines (`print(..)`), log event names (`log(a, 'established', ..)`),
//  - the control channel's error replies (`reply(id, false, ..)`)
// with short codes such as "main#3", and writes <board>.dict.json next to the bundle:
// code -> the text. Dynamic parts stay on the board and travel with the code:
//
//   'CTA: cannot start: ' + e.message + '. Idle.'   ->   "main#4{" + e.message + "}"
//
// so the board prints `main#4{cfg#2}` and the host prints the sentence with the
// (recursively expanded) value in its place: "{" opens the values, "`" separates
// them, "}" closes them. In protocol code (firmware/proto/**) dynamic parts are
// dropped as well: those messages only ever name a malformed field.
//
// expandText / expandLine are what `cta emu`, the emulator's log, `cta hil`,
// `cta flash` and the serial console tooling use to print today's text again.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { counterNames, D_BUSY, N_COUNTERS } from '../../firmware/agent/counters.ts';

/** Where a value goes in a template. */
export const SLOT = '\u0001';
/** Where a dropped value was (protocol messages). */
export const DROPPED = '\u2026';

export interface Dictionary {
  /** code -> template (SLOT for each value that follows the code on the board). */
  text: { [code: string]: string };
  /** The counter names (C_ order) and drop reasons (D_ order) of the build. */
  counters?: CounterNameLists;
}

/** The counter names (C_ order), the drop reasons (D_ order) and the counters kept after them (UDP boards' socketsRecreated). */
export type CounterNameLists = { counters: string[]; drops: string[]; after?: string[] };

/** The counter and drop-reason names of the firmware source (what `cta build` writes into a dictionary). */
export function counterNameLists(): CounterNameLists {
  const all = counterNames();
  const endOfDrops = N_COUNTERS + D_BUSY + 1;
  return { counters: all.slice(0, N_COUNTERS), drops: all.slice(N_COUNTERS, endOfDrops), after: all.slice(endOfDrops) };
}

/**
 * A board's counters by name: a board whose names stay in the dictionary
 * (`features.counterNames` false) reports them as one list of numbers: counters, drop
 * reasons, then any counters kept after them. Anything else (already named, missing) is
 * returned as it is. The names come from `dict` when its lists fit the values, else from
 * the firmware source.
 */
export function nameCounters(v: unknown, dict?: Dictionary | null): unknown {
  if (!Array.isArray(v)) return v;
  // A dictionary from another build (a stale dist/ file) would misname them: its lists must fit.
  const d = dict && dict.counters;
  const names = d && d.counters.length + d.drops.length + (d.after ? d.after.length : 0) === v.length ? d : counterNameLists();
  const out: { [k: string]: unknown } = {};
  const drops: { [k: string]: number } = {};
  const nc = names.counters.length;
  const nd = names.drops.length;
  const after = names.after || [];
  for (let i = 0; i < v.length && i < nc + nd + after.length; i++) {
    const n = Number(v[i] ?? 0);
    if (i < nc) out[names.counters[i]] = n;
    else if (i < nc + nd) drops[names.drops[i - nc]] = n;
    else out[after[i - nc - nd]] = n;
  }
  out.drops = drops;
  return out;
}

/** A board's status or metrics reply with its counters named (nameCounters), in place. */
export function nameCountersIn<T>(reply: T, dict?: Dictionary | null): T {
  const r = reply as { counters?: unknown; agent?: { counters?: unknown } } | null;
  if (r && typeof r === 'object') {
    if (Array.isArray(r.counters)) r.counters = nameCounters(r.counters, dict);
    if (r.agent && typeof r.agent === 'object' && Array.isArray(r.agent.counters)) r.agent.counters = nameCounters(r.agent.counters, dict);
  }
  return reply;
}

// "#512" (the build's numbered texts) or "cfg#5" (a module numbering its own checks).
const CODE = /(?:[a-z][a-z0-9-]*)?#\d+/g;

/** Reads <board>.dict.json (or returns an empty dictionary when there is none). */
export function loadDictionary(path: string): Dictionary {
  if (!existsSync(path)) return { text: {} };
  const d = JSON.parse(readFileSync(path, 'utf8')) as Dictionary;
  if (!d || typeof d.text !== 'object') throw new Error(`${path}: not a text dictionary`);
  return d;
}

/**
 * Every dictionary `cta build` wrote into a folder (default dist/firmware), merged: a
 * module's codes are numbered from its source before any board's dead code goes, so
 * they mean the same in every board's build. For tools that do not know the board.
 */
export function loadAllDictionaries(dir: string): Dictionary {
  const out: Dictionary = { text: {} };
  if (!existsSync(dir)) return out;
  for (const f of readdirSync(dir))
    if (f.endsWith('.dict.json')) {
      const d = loadDictionary(join(dir, f));
      Object.assign(out.text, d.text);
      if (d.counters) out.counters = d.counters;
    }
  return out;
}

/** The dictionary written next to a bundle or image (dist/firmware/<board>.js|.img -> <board>.dict.json). */
export function dictionaryPathFor(bundleOrImage: string): string {
  return bundleOrImage.replace(/\.(js|img)$/, '') + '.dict.json';
}

/** Text with every known code (and its values) replaced by the sentence it stands for. */
export function expandText(s: string, dict: Dictionary, depth = 0): string {
  if (depth > 8 || s.indexOf('#') < 0) return s;
  let out = '';
  let at = 0;
  CODE.lastIndex = 0;
  const codes = [...s.matchAll(CODE)];
  for (const m of codes) {
    const start = m.index!;
    if (start < at) continue;
    const tpl = dict.text[m[0]];
    if (tpl === undefined) continue;
    let end = start + m[0].length;
    const values: string[] = [];
    if (s[end] === '{') {
      // Values up to the matching "}", split at "`" outside nested braces.
      let level = 0;
      let cur = '';
      let j = end + 1;
      for (; j < s.length; j++) {
        const c = s[j];
        if (c === '{') level++;
        if (c === '}') {
          if (level === 0) break;
          level--;
        }
        if (c === '`' && level === 0) {
          values.push(cur);
          cur = '';
        } else cur += c;
      }
      if (j < s.length) {
        values.push(cur);
        end = j + 1;
      } else values.length = 0; // unbalanced: leave the text as it is
    }
    let i = 0;
    const text = tpl.split(SLOT).reduce((acc, part, k) => (k === 0 ? part : acc + (i < values.length ? expandText(values[i++], dict, depth + 1) : DROPPED) + part), '');
    out += s.slice(at, start) + text;
    at = end;
  }
  return out + s.slice(at);
}

/** A console line: a JSON log line gets its string values expanded (it stays JSON), any other line its text. */
export function expandLine(line: string, dict: Dictionary): string {
  if (line.indexOf('#') < 0) return line;
  if (line.startsWith('{')) {
    try {
      const o = JSON.parse(line);
      const walk = (v: unknown): unknown => {
        if (typeof v === 'string') return expandText(v, dict);
        if (Array.isArray(v)) return v.map(walk);
        if (v && typeof v === 'object') {
          const r: { [k: string]: unknown } = {};
          for (const k of Object.keys(v)) r[k] = walk((v as { [k: string]: unknown })[k]);
          return r;
        }
        return v;
      };
      return JSON.stringify(walk(o));
    } catch {
      /* not JSON after all */
    }
  }
  return expandText(line, dict);
}
