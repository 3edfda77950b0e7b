// Bundles the firmware for one board: esbuild (IIFE, es2015, minified) with a
// BOARD constant from board-configs/<board>.json, then the Espruino subset check
// on the emitted bundle. Used by `cta build`, the emulator, the demo and the flasher.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { minify as terserMinify } from 'terser';
import { TraceMap, eachMapping } from '@jridgewell/trace-mapping';
import { aliasBuiltins } from './aliases.ts';
import { parse, type Node } from 'acorn';
import { fullAncestor } from 'acorn-walk';
import { loadBoard, type BoardConfig } from './boards.ts';
import { checkSubset, FORBIDDEN_METHODS, type Violation } from './subset-check.ts';
import { pretokenise } from './image.ts';
import { mangleablePropsRegex } from './mangle.ts';
import { DROPPED, SLOT, counterNameLists, dictionaryPathFor } from './text.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const DEFAULT_ENTRY = 'firmware/main.ts';
export const SELFTEST_ENTRY = 'firmware/selftest.ts';
export const DEFAULT_OUT_DIR = 'dist/firmware';

export interface BuildOptions {
  board: string;
  /** Entry file, relative to the repository root or absolute. Default firmware/main.ts. */
  entry?: string;
  /** Output directory, relative to the repository root or absolute. Default dist/firmware. */
  outDir?: string;
  /** Output file name; default `<board>.js` for firmware/main.ts, `<board>-<entry basename>.js` otherwise. */
  outName?: string;
  /** Default true; false keeps the bundle readable (still es2015 IIFE). */
  minify?: boolean;
  /**
   * Default true: text only a person reads leaves the board (text.ts): error messages,
   * console lines, log event names and control error replies become short codes
   * ("der#12", "main#3{value}"), their texts written next to the bundle as
   * <name>.dict.json for the host tools to print them again.
   */
  shortErrors?: boolean;
}

/** One module's share of the written bundle (after every minifier pass, traced through the source maps). */
export interface ModuleSize {
  path: string;
  bytes: number;
}

export interface BuildResult {
  board: string;
  entry: string;
  /** Absolute path of the written bundle (readable JavaScript, minified). */
  path: string;
  bytes: number;
  /** Absolute path of the stored image: the bundle pretokenised (image.ts), what goes to Storage ".bootcde". */
  imagePath: string;
  imageBytes: number;
  /** Subset-check violations (empty = the bundle is inside the Espruino subset). */
  violations: Violation[];
  /** Bytes each module contributes to the bundle, largest first. */
  modules: ModuleSize[];
  /** Short error code -> original message expression (shortErrors builds). */
  errorCodes: { [code: string]: string };
}

/** The BOARD constant the bundle sees: the board facts the firmware needs (no prose). */
export function boardDefine(cfg: BoardConfig) {
  return {
    board: cfg.board,
    variables: cfg.variables,
    nativeCrypto: cfg.nativeCrypto,
    transports: cfg.transports,
    serial: cfg.serial,
    timers: cfg.timers,
    slots: cfg.slots,
  };
}

/**
 * Every define of a board's bundle: BOARD (the facts object) and single facts as
 * literals the minifier folds, so code under `if (HAS_SERIAL)` (firmware/agent/board.ts)
 * disappears from bundles of boards without it.
 */
export function boardDefines(cfg: BoardConfig): { [name: string]: string } {
  const b = boardDefine(cfg);
  const out: { [name: string]: string } = {
    BOARD: JSON.stringify(b),
    BOARD_UDP: JSON.stringify(!!cfg.transports.udp),
    BOARD_SERIAL: JSON.stringify(!!cfg.transports.serial),
    BOARD_WIFI: JSON.stringify(!!cfg.transports.wifi),
    BOARD_SIGNALING: JSON.stringify(cfg.features.signaling),
    BOARD_COUNTER_NAMES: JSON.stringify(cfg.features.counterNames !== false),
    // Kerberos enctypes (firmware/proto/crypto/enctypes.ts): the list, and whether a
    // family is on the board at all, so the other family's key derivation folds away.
    BOARD_ENCTYPES: JSON.stringify(cfg.enctypes),
    BOARD_RFC3962: JSON.stringify(cfg.enctypes.some((e) => e === 17 || e === 18)),
    BOARD_RFC8009: JSON.stringify(cfg.enctypes.some((e) => e === 19 || e === 20)),
    // firmware/proto/cbor.ts: a board's CBOR has no half/single floats and byte-string text.
    BOARD_CBOR_FULL: 'false',
  };
  // Every fact also by its path (BOARD.serial.baud, BOARD.timers, ...): esbuild puts the
  // literal at each use, so a bundle that reads fields only keeps no BOARD object (on the
  // interpreter a module-level object costs variables per property, for good). Optional
  // facts a board leaves out are undefined rather than a read of the object.
  const leaves = (o: { [k: string]: unknown }, path: string) => {
    for (const k of Object.keys(o)) {
      const v = o[k];
      out[path + '.' + k] = JSON.stringify(v);
      if (v && typeof v === 'object' && !Array.isArray(v)) leaves(v as { [k: string]: unknown }, path + '.' + k);
    }
  };
  leaves(b as unknown as { [k: string]: unknown }, 'BOARD');
  for (const k of ['wifi', 'wifiModule']) if (!('BOARD.transports.' + k in out)) out['BOARD.transports.' + k] = 'undefined';
  if (!('BOARD.serial.path' in out)) out['BOARD.serial.path'] = 'undefined';
  return out;
}

// Firmware may not import packages or node built-ins: Espruino's modules are reached
// at run time through espruinoRequire() (firmware/platform/espruino.ts). A literal
// require("dgram") would make esbuild emit its __require shim, which probes Proxy.
const noBareImports: esbuild.Plugin = {
  name: 'espruino-no-bare-imports',
  setup(b) {
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      if (isAbsolute(args.path)) return undefined;
      return {
        errors: [
          {
            text: `firmware must not import or require '${args.path}': use espruinoRequire('${args.path}') from firmware/platform/espruino.ts for Espruino modules`,
          },
        ],
      };
    });
  },
};

const SHORTEN_DIRS = [join('firmware', 'proto') + sep, join('firmware', 'platform', 'espruino-crypto.ts')];
const ERROR_CTORS = new Set(['DecodeError', 'CryptoError', 'Error']);

/** Parameter names that carry a field label ("EncKDCRepPart.key-expiration") into error messages. */
const LABEL_PARAMS = new Set(['what', 'field']);

async function toJs(path: string): Promise<string> {
  const src = readFileSync(path, 'utf8');
  return (await esbuild.transform(src, { loader: 'ts', format: 'esm', target: 'esnext', sourcefile: relative(REPO_ROOT, path), tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } } })).code;
}

let firmwareModuleList: string[] | null = null;

/** True when nothing of the module is left once its TypeScript is stripped (imports and exports of types only). */
function declarationsOnly(path: string): boolean {
  if (path.endsWith('.d.ts')) return true;
  const js = esbuild.transformSync(readFileSync(path, 'utf8'), { loader: 'ts', format: 'esm' }).code;
  return js.replace(/^export \{\s*\};?\s*$/m, '').trim() === '';
}
/**
 * Every firmware module with code, its path from the repository root, sorted (text codes
 * number modules by it). A module of declarations only (types, interfaces: nothing left
 * once TypeScript is stripped) has no texts and no number, so splitting types out of a
 * module does not renumber the others' codes (which would move bytes on the boards).
 */
export function firmwareModules(): string[] {
  if (firmwareModuleList) return firmwareModuleList;
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !declarationsOnly(p)) out.push(relative(REPO_ROOT, p));
    }
  };
  walk(join(REPO_ROOT, 'firmware'));
  return (firmwareModuleList = out.sort());
}

/** The modules whose texts drop their values (SHORTEN_DIRS), as absolute paths. */
function shortenedFiles(): string[] {
  return firmwareModules()
    .filter((rel) => SHORTEN_DIRS.some((d) => rel.startsWith(d)))
    .map((rel) => join(REPO_ROOT, rel));
}

/**
 * Functions and methods of the shortened modules that take a label parameter
 * (LABEL_PARAMS): name -> the parameter's index. Only functions whose label is
 * dead data in a short-error build qualify: every use of the parameter (and of a
 * `this.what` it is stored in) must end, through `+` and `.toString(..)`, in the
 * message of a shortened error or in the label argument of another qualifying
 * function. A name declared with the label at different positions is left out.
 */
export async function labelFunctions(files: string[] = shortenedFiles()): Promise<Map<string, number>> {
  type Decl = { name: string; idx: number; param: string; fn: AnyNode };
  const decls: Decl[] = [];
  const all: { name: string; params: AnyNode[] }[] = [];
  const asts: AnyNode[] = [];
  const conflict = new Set<string>();
  const found = new Map<string, number>();
  for (const path of files) {
    const ast = parse(await toJs(path), { ecmaVersion: 'latest', sourceType: 'module' }) as AnyNode;
    asts.push(ast);
    fullAncestor(ast, (node: AnyNode) => {
      let name: string | null = null;
      let fn: AnyNode | null = null;
      // Keys: "f:name" for functions (plain calls), "m:name" for methods (member calls).
      if (node.type === 'FunctionDeclaration' && node.id) {
        name = 'f:' + node.id.name;
        fn = node;
      } else if (node.type === 'MethodDefinition' && !node.computed && node.key.type === 'Identifier') {
        name = 'm:' + node.key.name;
        fn = node.value;
      } else if (node.type === 'VariableDeclarator' && node.id.type === 'Identifier' && node.init && /FunctionExpression$/.test(node.init.type)) {
        name = 'f:' + node.id.name;
        fn = node.init;
      }
      if (!name || !fn) return;
      const params = fn.params as AnyNode[];
      const idx = params.findIndex((p) => p.type === 'Identifier' && LABEL_PARAMS.has(p.name));
      all.push({ name, params });
      if (idx < 0) return;
      if (found.has(name) && found.get(name) !== idx) conflict.add(name);
      found.set(name, idx);
      decls.push({ name, idx, param: params[idx].name, fn });
    });
  }
  // Call sites are matched by name (methods by member calls, functions by plain calls):
  // every declaration of the name must take the label at that position, or have fewer
  // parameters (the argument is unused there: pktc's Reader.end() beside
  // DerReader.end(what)); cbor's function u8(s) beside keytab's method u8(what) is fine,
  // a method need(s, n) beside need(n, what) would be a conflict.
  for (const d of all) {
    const i = found.get(d.name);
    if (i !== undefined && d.params.length > i && !(d.params[i].type === 'Identifier' && LABEL_PARAMS.has(d.params[i].name))) conflict.add(d.name);
  }
  for (const n of conflict) found.delete(n);
  const isThisLabel = (n: AnyNode) => n.type === 'MemberExpression' && n.object.type === 'ThisExpression' && !n.computed && LABEL_PARAMS.has(n.property.name);
  /** Does the value at `anc[anc.length - 1]` only flow into a dropped message or label? */
  const safe = (anc: AnyNode[]): boolean => {
    let child = anc[anc.length - 1];
    for (let i = anc.length - 2; i >= 0; i--) {
      const p = anc[i];
      if (p.type === 'BinaryExpression' && p.operator === '+') {
        child = p;
        continue;
      }
      if (p.type === 'MemberExpression' && p.object === child && !p.computed && p.property.name === 'toString' && anc[i - 1] && anc[i - 1].type === 'CallExpression' && anc[i - 1].callee === p) {
        child = anc[--i];
        continue;
      }
      if (p.type === 'NewExpression' && p.callee.type === 'Identifier' && ERROR_CTORS.has(p.callee.name)) return p.arguments[0] === child;
      if (p.type === 'CallExpression') {
        const key = callKey(p);
        const idx = key === null ? undefined : found.get(key);
        return idx !== undefined && p.arguments[idx] === child;
      }
      // `this.what = what` (the stored copy is checked on its own).
      if (p.type === 'AssignmentExpression' && p.right === child && isThisLabel(p.left)) return true;
      return false;
    }
    return false;
  };
  for (let changed = true; changed; ) {
    changed = false;
    // Every read of this.what/this.field anywhere must be safe, else no function storing it qualifies.
    let storedSafe = true;
    for (const ast of asts) {
      fullAncestor(ast, (node: AnyNode, _st: unknown, anc: AnyNode[]) => {
        if (!isThisLabel(node)) return;
        const par = anc[anc.length - 2];
        if (par && par.type === 'AssignmentExpression' && par.left === node) return;
        if (!safe(anc)) storedSafe = false;
      });
    }
    for (const d of decls) {
      if (found.get(d.name) !== d.idx) continue;
      let ok = true;
      fullAncestor(d.fn.body, (node: AnyNode, _st: unknown, anc: AnyNode[]) => {
        if (node.type !== 'Identifier' || node.name !== d.param) return;
        const par = anc[anc.length - 2];
        if (par && par.type === 'MemberExpression' && par.property === node && !par.computed) return;
        if (par && (par.type === 'Property' && par.key === node && !par.computed)) return;
        if (!safe(anc)) ok = false;
        if (par && par.type === 'AssignmentExpression' && isThisLabel(par.left) && !storedSafe) ok = false;
      });
      if (!ok) {
        found.delete(d.name);
        changed = true;
      }
    }
  }
  return found;
}

/** The labelFunctions key a call resolves to by name: "f:fail", "m:ctx"; null for other callees. */
function callKey(call: AnyNode): string | null {
  const c = call.callee;
  if (c.type === 'Identifier') return 'f:' + c.name;
  if (c.type === 'MemberExpression' && !c.computed && c.property.type === 'Identifier') return 'm:' + c.property.name;
  return null;
}

/**
 * A label (or message) argument that can go without changing anything but the text:
 * literals, variables and property reads (no calls but `x.toString(16)`) joined by `+`.
 */
function isLabelExpr(n: AnyNode): boolean {
  if (n.type === 'Literal' || n.type === 'Identifier' || n.type === 'ThisExpression') return true;
  if (n.type === 'MemberExpression') return !n.computed && isLabelExpr(n.object);
  if (n.type === 'CallExpression') {
    const c = n.callee;
    return c.type === 'MemberExpression' && !c.computed && c.property.name === 'toString' && isLabelExpr(c.object) && n.arguments.every((a: AnyNode) => a.type === 'Literal');
  }
  if (n.type === 'BinaryExpression' && n.operator === '+') return isLabelExpr(n.left) && isLabelExpr(n.right);
  return false;
}

/**
 * The text dictionary's build half (text.ts says what and why). In every firmware
 * module, `new DecodeError(<message>)` (and CryptoError, Error), `print(<line>)`,
 * `log(a, '<event>', ..)` and `reply(id, false, <error>)` get a short code in place of
 * their text: `new DecodeError("<module>#<n>")`, in firmware/proto/** with the values
 * dropped, elsewhere with the values kept after the code ("main#4{" + v + "}"). The
 * error classes (what the agent acts on) do not change. Templates go to `codes` for
 * the <board>.dict.json dictionary.
 *
 * With the messages gone, the field labels the decoders pass down only to build
 * them ("EncKDCRepPart.key-expiration", `what + '.pvno'`, pktc's 'AppData SPI',
 * `fail(this.what + ': ciphersuite count ' + n)`) are dead data: every such argument
 * of a label-taking function (labelFunctions) is dropped (or 0 where later arguments
 * follow). Host code and --long-errors builds keep them.
 */
function shortErrorsPlugin(codes: { [code: string]: string }): esbuild.Plugin {
  let labels: Promise<Map<string, number>> | null = null;
  return {
    name: 'espruino-short-errors',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const rel = relative(REPO_ROOT, args.path);
        // errors.ts throws the message it is given (its throw helpers): nothing to shorten there.
        // (The selftest entry prints its verdict for test runners to read: it keeps its text.)
        if (!rel.startsWith('firmware' + sep) || resolve(args.path) === ERRORS_MODULE || rel === join('firmware', 'selftest.ts')) return undefined;
        // Protocol code drops a message's values too (they only name a malformed field).
        const drop = SHORTEN_DIRS.some((d) => rel.startsWith(d));
        if (!labels) labels = labelFunctions();
        const labelFns = drop ? await labels : new Map<string, number>();
        const js = await toJs(args.path);
        const ast = parse(js, { ecmaVersion: 'latest', sourceType: 'module' }) as AnyNode;
        // Codes are numbers: module m's n-th text is m*100+n ("#1712"), m its place among
        // the firmware's modules (sorted paths), so a code means the same in every board's build.
        const moduleIndex = firmwareModules().indexOf(rel);
        if (moduleIndex < 0) throw new Error(`text codes: ${rel} is not a firmware module`);
        const base = moduleIndex * 100;
        let n = 0;
        const nextCode = () => {
          if (++n > 99) throw new Error(`text codes: ${rel} has more than 99 texts; split the module`);
          return base + n;
        };
        const edits: { start: number; end: number; text: string }[] = [];
        const helpers = throwHelpers(ast, args.path);
        const usedHelpers = new Set<string>();
        /** The coded replacement of a text expression, or null to leave it as it is. */
        const coded = (arg: AnyNode, always: boolean, bare = false): string | null => {
          const parts = textParts(arg);
          // `bare`: the code without its "#", for a throw helper (errors.ts adds the "#"):
          // a bare code with no values is an integer, 3 bytes in the pretokenised image.
          if (!parts) {
            if (!drop) return null;
            const k = nextCode();
            codes['#' + k] = DROPPED;
            return bare ? String(k) : JSON.stringify('#' + k);
          }
          const literal = parts.filter((x) => typeof x === 'string').join('');
          // Already a code ('cfg#' + n: firmware/config.ts numbers its own checks).
          if (/^[a-z][a-z0-9-]*#\d*$/.test(literal)) return null;
          if (!always && parts.length === 1 && literal.length <= 8) return null;
          const k = nextCode();
          codes['#' + k] = parts.map((x) => (typeof x === 'string' ? x : drop ? DROPPED : SLOT)).join('');
          const values = drop ? [] : parts.filter((x): x is AnyNode => typeof x !== 'string');
          const code = (bare ? '' : '#') + k;
          if (!values.length) return bare ? String(k) : JSON.stringify(code);
          return JSON.stringify(code + '{') + values.map((v, i) => (i ? '+"`"+(' : '+(') + js.slice(v.start, v.end) + ')').join('') + '+"}"';
        };
        fullAncestor(ast, (node: AnyNode, _st: unknown, anc: AnyNode[]) => {
          if (node.type === 'CallExpression') {
            const args = node.arguments as AnyNode[];
            const callee = node.callee.type === 'Identifier' ? (node.callee.name as string) : '';
            // Console lines, log event names, the control channel's error replies.
            const text = callee === 'print' && args.length === 1 ? args[0] : callee === 'log' && args.length === 3 && isString(args[1]) ? args[1] : callee === 'reply' && args.length === 3 && args[1].type === 'Literal' && args[1].value === false ? args[2] : null;
            if (text) {
              const r = coded(text, callee === 'log');
              if (r !== null) edits.push({ start: text.start, end: text.end, text: r });
              return;
            }
            const key = callKey(node);
            const idx = key === null ? undefined : labelFns.get(key);
            const arg = idx === undefined ? undefined : args[idx];
            if (!arg || !isLabelExpr(arg) || (arg.type === 'Literal' && arg.value === 0)) return;
            // The last argument is dropped (the parameter is undefined), any other becomes 0.
            if (idx === args.length - 1) edits.push({ start: idx === 0 ? arg.start : args[idx - 1].end, end: arg.end, text: '' });
            else edits.push({ start: arg.start, end: arg.end, text: '0' });
            return;
          }
          if (node.type !== 'NewExpression' || node.callee.type !== 'Identifier' || !ERROR_CTORS.has(node.callee.name)) return;
          const arg = node.arguments[0] as AnyNode | undefined;
          if (!arg) return;
          // `throw new DecodeError("#512")` -> `__tD(512);` (errors.ts throwDecode: the same error, thrown there).
          const parent = anc[anc.length - 2];
          const helper = helpers[node.callee.name];
          const viaHelper = !!helper && !!parent && parent.type === 'ThrowStatement' && parent.argument === node && node.arguments.length === 1;
          const r = coded(arg, false, viaHelper);
          if (r === null) return;
          if (viaHelper) {
            usedHelpers.add(node.callee.name);
            edits.push({ start: parent.start, end: parent.end, text: `${helper}(${r});` });
          } else edits.push({ start: arg.start, end: arg.end, text: r });
        });
        // Outermost edits only (a label call inside a replaced message goes with it).
        edits.sort((x, y) => x.start - y.start || y.end - x.end);
        const keep: typeof edits = [];
        for (const e of edits) if (!keep.length || e.start >= keep[keep.length - 1].end) keep.push(e);
        let out = js;
        for (const e of keep.reverse()) out = out.slice(0, e.start) + e.text + out.slice(e.end);
        if (usedHelpers.size) {
          const specs = [...usedHelpers].map((c) => `${THROW_HELPERS[c]} as ${helpers[c]}`).join(', ');
          out = `import { ${specs} } from ${JSON.stringify(ERRORS_MODULE)};\n` + out;
        }
        return { contents: out, loader: 'js', resolveDir: dirname(args.path) };
      });
    },
  };
}

function isString(n: AnyNode): boolean {
  return (n.type === 'Literal' && typeof n.value === 'string') || (n.type === 'TemplateLiteral' && n.expressions.length === 0);
}

/**
 * A text expression as its literal texts and value expressions, in order:
 * 'a' + x + `b${y}` -> ['a', x, 'b', y]. Only where every `+` is a string
 * concatenation (the chain's first literal comes first or second); null otherwise.
 */
export function textParts(n: AnyNode): (string | AnyNode)[] | null {
  const leaves: AnyNode[] = [];
  let cur = n;
  while (cur.type === 'BinaryExpression' && cur.operator === '+') {
    leaves.unshift(cur.right);
    cur = cur.left;
  }
  leaves.unshift(cur);
  const k = leaves.findIndex((l) => isString(l) || l.type === 'TemplateLiteral');
  if (k < 0) return null;
  const out: (string | AnyNode)[] = [];
  // Values before the first literal are one value (`a + b + 'x'` adds a and b first).
  if (k > 1) out.push({ type: 'Merged', start: leaves[0].start, end: leaves[k - 1].end } as AnyNode);
  else if (k === 1) out.push(leaves[0]);
  for (const l of leaves.slice(k)) {
    if (l.type === 'Literal' && typeof l.value === 'string') out.push(l.value);
    else if (l.type === 'TemplateLiteral') {
      l.quasis.forEach((q: AnyNode, i: number) => {
        out.push(q.value.cooked as string);
        if (i < l.expressions.length) out.push(l.expressions[i]);
      });
    } else out.push(l);
  }
  // Adjacent literals merge; empty literals go.
  const merged: (string | AnyNode)[] = [];
  for (const x of out) {
    if (typeof x === 'string' && typeof merged[merged.length - 1] === 'string') merged[merged.length - 1] += x;
    else if (x !== '') merged.push(x);
  }
  return merged;
}

const ERRORS_MODULE = join(REPO_ROOT, 'firmware', 'proto', 'errors.ts');
/** Error constructor -> the errors.ts function that throws it. */
const THROW_HELPERS: { [ctor: string]: string } = { DecodeError: 'throwDecode', CryptoError: 'throwCrypto', Error: 'throwError' };

/**
 * The error constructors of a module whose `throw new C(msg)` statements may become
 * calls of errors.ts's throw helpers (ctor -> local helper name): DecodeError and
 * CryptoError only where the module imports them under that name from errors.ts,
 * the global Error only where the module declares nothing named Error; none in
 * errors.ts itself, or where a `__t*` name is already taken.
 */
export function throwHelpers(ast: AnyNode, path: string): { [ctor: string]: string } {
  const out: { [ctor: string]: string } = {};
  if (resolve(path) === ERRORS_MODULE) return out;
  let declaresError = false;
  let clash = false;
  fullAncestor(ast, (node: AnyNode) => {
    if (node.type === 'ImportDeclaration' && /(^|\/)errors\.ts$/.test(node.source.value) && resolve(dirname(path), node.source.value) === ERRORS_MODULE) {
      for (const sp of node.specifiers) {
        if (sp.type === 'ImportSpecifier' && sp.imported.name === sp.local.name && (sp.local.name === 'DecodeError' || sp.local.name === 'CryptoError')) out[sp.local.name] = '__t' + sp.local.name[0];
      }
    }
    if (node.type === 'Identifier' && /^__t/.test(node.name)) clash = true;
    const id = node.type === 'VariableDeclarator' || node.type === 'FunctionDeclaration' || node.type === 'ClassDeclaration' ? node.id : node.type === 'ImportSpecifier' || node.type === 'ImportDefaultSpecifier' || node.type === 'ImportNamespaceSpecifier' ? node.local : null;
    if (id && id.type === 'Identifier' && id.name === 'Error') declaresError = true;
    if ((node.type === 'FunctionDeclaration' || /FunctionExpression$/.test(node.type)) && node.params.some((p: AnyNode) => p.type === 'Identifier' && p.name === 'Error')) declaresError = true;
  });
  if (clash) return {};
  if (!declaresError) out.Error = '__tE';
  return out;
}

function resolveFromRoot(p: string): string {
  return isAbsolute(p) ? p : join(REPO_ROOT, p);
}

/** Bundles `entry` for `board` and writes it; throws on bundling errors (not on subset violations). */
export async function buildFirmware(opts: BuildOptions): Promise<BuildResult> {
  const cfg = loadBoard(opts.board);
  const entry = resolveFromRoot(opts.entry ?? DEFAULT_ENTRY);
  const outDir = resolveFromRoot(opts.outDir ?? DEFAULT_OUT_DIR);
  const stem = basename(entry, extname(entry));
  const outName = opts.outName ?? (stem === 'main' ? `${cfg.board}.js` : `${cfg.board}-${stem}.js`);
  const errorCodes: { [code: string]: string } = {};
  const shortErrors = opts.shortErrors ?? true;
  const minify = opts.minify ?? true;
  let result: esbuild.BuildResult & { outputFiles: esbuild.OutputFile[] };
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'neutral',
      target: 'es2015',
      minify,
      // The map is only read to say which module each byte of the final bundle came from.
      sourcemap: 'external',
      outfile: join(outDir, outName),
      legalComments: 'none',
      charset: 'ascii',
      treeShaking: true,
      logLevel: 'silent',
      absWorkingDir: REPO_ROOT,
      tsconfig: join(REPO_ROOT, 'tsconfig.json'),
      // BUILD_LABELS: whether error messages keep their field labels (proto/krb5-schema.ts LABELS).
      define: { ...boardDefines(cfg), BUILD_LABELS: String(!shortErrors) },
      plugins: shortErrors ? [noBareImports, shortErrorsPlugin(errorCodes)] : [noBareImports],
      // Firmware-only property names become short ones (mangle.ts says which and why).
      mangleProps: minify ? mangleablePropsRegex(REPO_ROOT) : undefined,
      // A short name esbuild picks must not be one the subset check forbids as a method ('at').
      mangleCache: minify ? Object.fromEntries([...FORBIDDEN_METHODS].map((m) => [m, false as const])) : undefined,
    });
  } catch (e) {
    const failure = e as esbuild.BuildFailure;
    if (failure.errors) {
      const msgs = failure.errors.map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1} ${m.text}` : m.text));
      throw new Error(`esbuild failed for board ${cfg.board}:\n${msgs.join('\n')}`);
    }
    throw e;
  }
  const jsOut = result.outputFiles.find((f) => f.path.endsWith('.js'))!;
  let sourceMap = result.outputFiles.find((f) => f.path.endsWith('.js.map'))!.text;
  let bundled = jsOut.text;
  // A second minifier pass: terser's compressor (several passes, safe transforms only)
  // finds what esbuild's single pass leaves (measured: about 1 KB of a 42 KB image).
  if (minify) {
    const t = await terserMinify(bundled, { ecma: 2015, compress: { passes: 2, keep_fargs: false }, mangle: true, format: { ascii_only: true }, sourceMap: { content: sourceMap } });
    if (typeof t.code !== 'string' || typeof t.map !== 'string') throw new Error(`terser gave no output for board ${cfg.board}`);
    bundled = t.code;
    sourceMap = t.map;
  }
  // Frequent built-ins get one local name each (aliases.ts) when minifying.
  const code = minify ? aliasBuiltins(espruinoFixups(bundled)) : espruinoFixups(bundled);
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, outName);
  writeFileSync(path, code);
  const image = pretokenise(code);
  const imagePath = path.replace(/\.js$/, '') + '.img';
  writeFileSync(imagePath, image);
  // The counter and drop-reason names go with the texts (a board may report its counters as numbers).
  if (shortErrors) writeFileSync(dictionaryPathFor(path), JSON.stringify({ board: cfg.board, text: errorCodes, counters: counterNameLists() }, null, 1) + '\n');
  const modules = bytesPerModule(bundled, sourceMap);
  return { board: cfg.board, entry, path, bytes: Buffer.byteLength(code), imagePath, imageBytes: image.length, violations: checkSubset(code), modules, errorCodes };
}

/**
 * Which module each byte of the bundle came from, from its source map: a mapped
 * segment runs to the next one on its line; bytes before a line's first segment (and
 * the unmapped wrapper) count as `<bundle>`. Sums to the bundle's length.
 */
export function bytesPerModule(code: string, map: string): ModuleSize[] {
  const lines = code.split('\n');
  const tm = new TraceMap(map);
  const bytes = new Map<string, number>();
  const add = (k: string, n: number) => bytes.set(k, (bytes.get(k) ?? 0) + n);
  const segs: { line: number; col: number; source: string }[] = [];
  eachMapping(tm, (m) => segs.push({ line: m.generatedLine, col: m.generatedColumn, source: m.source ? relative(REPO_ROOT, resolve(REPO_ROOT, m.source.replace(/^.*?(firmware\/)/, '$1'))).split(sep).join('/') : '<bundle>' }));
  segs.sort((a, b) => a.line - b.line || a.col - b.col);
  let counted = 0;
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    const lineLen = lines[s.line - 1]?.length ?? 0;
    const end = i + 1 < segs.length && segs[i + 1].line === s.line ? segs[i + 1].col : lineLen;
    if (end > s.col) {
      add(s.source, end - s.col);
      counted += end - s.col;
    }
  }
  add('<bundle>', code.length - counted);
  return [...bytes.entries()].map(([path, n]) => ({ path, bytes: n })).filter((m) => m.bytes > 0).sort((x, y) => y.bytes - x.bytes);
}

type AnyNode = Node & { [k: string]: any };

/**
 * Rewrites what esbuild emits but Espruino cannot run, where a mechanical rewrite
 * is exact:
 *  - a named class expression whose body refers to its own name (esbuild turns every
 *    self-referencing top-level class into `var A = class _A {...}`; Espruino does not
 *    bind `_A` inside the body): `class r{...}` -> `(()=>{var r=class{...};return r})()`.
 */
export function espruinoFixups(code: string): string {
  for (let pass = 0; pass < 20; pass++) {
    const ast = parse(code, { ecmaVersion: 'latest', sourceType: 'script' }) as AnyNode;
    const targets: AnyNode[] = [];
    fullAncestor(ast, (node: AnyNode, _st: unknown, ancestors: AnyNode[]) => {
      if (node.type !== 'ClassExpression' || !node.id) return;
      // Only outermost targets per pass, so replacements never overlap.
      for (let i = 0; i < ancestors.length - 1; i++) if (ancestors[i].type === 'ClassExpression' && ancestors[i].id) return;
      targets.push(node);
    });
    if (targets.length === 0) return code;
    targets.sort((a, b) => b.start - a.start);
    for (const n of targets) {
      const name = n.id.name as string;
      const anon = 'class' + code.slice(n.id.end, n.end);
      const body = code.slice(n.body.start, n.body.end);
      const selfRef = new RegExp(`(^|[^\\w$.])${name.replace(/\$/g, '\\$')}(?![\\w$])`).test(body);
      const repl = selfRef ? `(()=>{var ${name}=${anon};return ${name}})()` : anon;
      code = code.slice(0, n.start) + repl + code.slice(n.end);
    }
  }
  throw new Error('espruinoFixups: class expressions nested too deeply');
}
