// The stored image: what `cta flash` writes to a board's Storage ".bootcde" and what
// the emulator and the real-interpreter tests run. It is the firmware bundle
// pretokenised by EspruinoTools' own `pretokenise` plugin (node_modules/espruino/
// plugins/pretokenise.js, loaded as is): keywords and operators become one-byte
// tokens, strings length-prefixed raw bytes, small integers 1-3 byte tokens, as the
// Espruino IDE does for code saved to flash (Espruino 2v25.396 and later run all of
// them; the boards' 2v29 does).
//
// `untokenise` is the exact inverse for the host: the emulator runs the source it
// gives back, so the emulator runs the image the board stores. It is written here
// rather than taken from the plugin because the plugin's own untokenise reads the
// 8- and 16-bit integer tokens as unsigned (a stored -1 would come back as 255);
// the interpreter (src/jslex.c) reads them as signed. test/image.test.ts checks that
// untokenise(pretokenise(bundle)) parses to the same program as the bundle.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import vm from 'node:vm';

/** First token code (src/jslex.c LEX_OPERATOR_START / the plugin's LEX_OPERATOR_START). */
const LEX_OPERATOR_START = 138;
const LEX_RAW_STRING8 = 0xd1;
const LEX_RAW_STRING16 = 0xd2;
const LEX_RAW_INT0 = 0xd3;
const LEX_RAW_INT8 = 0xd4;
const LEX_RAW_INT16 = 0xd5;

/** Every Storage file carries a header on the board (ESPRUINO.md "Board budgets"). */
export const STORAGE_FILE_HEADER = 32;

type Plugin = { tokenise(code: string): string; untokenise(code: string): string };
let plugin: Plugin | null = null;
let tokens: string[] | null = null;

/** EspruinoTools' pretokenise plugin, evaluated in a context shaped like the IDE's (target 2v29). */
function loadPlugin(): Plugin {
  if (plugin) return plugin;
  const require = createRequire(import.meta.url);
  const src = readFileSync(require.resolve('espruino/plugins/pretokenise.js'), 'utf8');
  const Espruino = {
    Core: { Config: { add() {} }, Env: { getBoardData: () => ({ VERSION: '2v29' }) }, Utils: { atob: (s: string) => Buffer.from(s, 'base64').toString('latin1') } },
    Config: { PRETOKENISE: 1 },
    Plugins: {} as { [k: string]: Plugin },
    addProcessor() {},
  };
  const ctx = vm.createContext({ acorn: require('acorn'), Espruino, console: { log() {}, warn() {} } });
  vm.runInContext(src, ctx, { filename: 'espruino/plugins/pretokenise.js' });
  const p = Espruino.Plugins.Pretokenise;
  if (!p || typeof p.tokenise !== 'function') throw new Error('EspruinoTools pretokenise plugin did not load (node_modules/espruino/plugins/pretokenise.js)');
  plugin = p;
  return p;
}

/** The token texts by code - LEX_OPERATOR_START, read from the plugin so the two never differ. */
function tokenTable(): string[] {
  if (tokens) return tokens;
  const p = loadPlugin();
  const out: string[] = [];
  for (let c = LEX_OPERATOR_START; c < LEX_RAW_STRING8; c++) {
    const t = p.untokenise(String.fromCharCode(c));
    if (!/^[\w=<>!+\-*/%&|^]+$/.test(t)) break;
    out.push(t);
  }
  if (out.length < 50) throw new Error('EspruinoTools pretokenise plugin: unexpected token table');
  tokens = out;
  return out;
}

/** The bundle as Espruino stores it: pretokenised bytes (latin1). */
export function pretokenise(code: string): Buffer {
  const t = loadPlugin().tokenise(code);
  for (let i = 0; i < t.length; i++) if (t.charCodeAt(i) > 255) throw new Error(`pretokenise: character U+${t.charCodeAt(i).toString(16)} at ${i} (bundles are ASCII)`);
  return Buffer.from(t, 'latin1');
}

/** Is this (latin1) text pretokenised, i.e. does it hold token bytes? */
export function isPretokenised(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= LEX_OPERATOR_START) return true;
  return false;
}

function quote(s: string): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) out += '\\' + s[i];
    else if (c < 0x20 || c > 0x7e) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += s[i];
  }
  return out + '"';
}

/** Source text equivalent to a pretokenised image (latin1 string or bytes), for the host emulator. */
export function untokenise(image: string | Uint8Array): string {
  const s = typeof image === 'string' ? image : Buffer.from(image).toString('latin1');
  const table = tokenTable();
  let out = '';
  const word = /[\w$]/;
  // Set after a token was written: the next text may need a space to stay apart from it.
  let afterToken = false;
  const emit = (t: string) => {
    // A space wherever a token's text would run into a neighbouring word or number,
    // or a '-' / '+' would merge with a following sign.
    const last = out[out.length - 1];
    if (last !== undefined && ((word.test(last) && word.test(t[0])) || ((last === '-' || last === '+') && /^[-+]/.test(t)))) out += ' ';
    out += t;
    afterToken = true;
  };
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < LEX_OPERATOR_START) {
      if (afterToken) emit(s[i]);
      else out += s[i];
      afterToken = false;
      continue;
    }
    if (c === LEX_RAW_STRING8 || c === LEX_RAW_STRING16) {
      const n = c === LEX_RAW_STRING8 ? s.charCodeAt(i + 1) : s.charCodeAt(i + 1) | (s.charCodeAt(i + 2) << 8);
      const at = i + (c === LEX_RAW_STRING8 ? 2 : 3);
      if (at + n > s.length) throw new Error(`untokenise: string token at ${i} runs past the end`);
      emit(quote(s.slice(at, at + n)));
      i = at + n - 1;
    } else if (c === LEX_RAW_INT0) emit('0');
    else if (c === LEX_RAW_INT8) {
      emit(String((s.charCodeAt(i + 1) << 24) >> 24));
      i += 1;
    } else if (c === LEX_RAW_INT16) {
      emit(String(((s.charCodeAt(i + 1) | (s.charCodeAt(i + 2) << 8)) << 16) >> 16));
      i += 2;
    } else if (c - LEX_OPERATOR_START < table.length) emit(table[c - LEX_OPERATOR_START]);
    else throw new Error(`untokenise: unknown token 0x${c.toString(16)} at ${i}`);
  }
  return out;
}

/** Source the host can run from what a board would run: untokenised when it is an image. */
export function runnableSource(text: string): string {
  return isPretokenised(text) ? untokenise(text) : text;
}
