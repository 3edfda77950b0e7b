// Bundles the firmware for one board: esbuild (IIFE, es2015, minified) with a
// BOARD constant from board-configs/<board>.json, then the Espruino subset check
// on the emitted bundle. Used by `cta build`, the emulator, the demo and the flasher.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import * as esbuild from 'esbuild';
import { minify as terserMinify } from 'terser';
import { globalScope } from './global-scope.ts';
import { TraceMap, eachMapping } from '@jridgewell/trace-mapping';
import { aliasBuiltins } from './aliases.ts';
import { parse } from 'acorn';
import { fullAncestor } from 'acorn-walk';
import { loadBoard, type BoardConfig } from './boards.ts';
import { checkSubset, FORBIDDEN_METHODS, type Violation } from './subset-check.ts';
import { pretokenise } from './image.ts';
import { mangleablePropsRegex } from './mangle.ts';
import { counterNameLists, dictionaryPathFor } from './text.ts';
import { firmwareModules, labelFunctions, shortErrorsPlugin, textParts, throwHelpers, type AnyNode } from './codes.ts';
// The text-code machinery lives in codes.ts; these stay importable from here.
export { firmwareModules, labelFunctions, textParts, throwHelpers };

import { REPO_ROOT } from './root.ts';
export { REPO_ROOT };
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
  const code = minify ? globalScope(aliasBuiltins(espruinoFixups(bundled))) : espruinoFixups(bundled);
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
