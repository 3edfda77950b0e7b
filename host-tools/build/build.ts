// Bundles the firmware for one board: esbuild (IIFE, es2015, minified) with a
// BOARD constant from board-configs/<board>.json, then the Espruino subset check
// on the emitted bundle. Used by `cta build`, the emulator, the demo and the flasher.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { parse, type Node } from 'acorn';
import { fullAncestor } from 'acorn-walk';
import { loadBoard, type BoardConfig } from './boards.ts';
import { checkSubset, type Violation } from './subset-check.ts';

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
   * Default true: the messages of errors thrown in firmware/proto/** (and the native crypto glue) become short
   * codes ("der#12"); the full texts are written next to the bundle as
   * <name>.errors.json. User-facing messages (config, control, agent) stay whole.
   */
  shortErrors?: boolean;
}

/** One module's share of the bundle (esbuild metafile). */
export interface ModuleSize {
  path: string;
  bytes: number;
}

export interface BuildResult {
  board: string;
  entry: string;
  /** Absolute path of the written bundle. */
  path: string;
  bytes: number;
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
  return {
    BOARD: JSON.stringify(boardDefine(cfg)),
    BOARD_UDP: JSON.stringify(!!cfg.transports.udp),
    BOARD_SERIAL: JSON.stringify(!!cfg.transports.serial),
  };
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

/**
 * Rewrites `new DecodeError(<message>)` (and CryptoError, Error) in firmware/proto/**
 * to `new DecodeError("<module>#<n>")`: the texts are most of the bundle's string
 * bytes and only ever reach a log line on the board. The error classes (what the
 * agent acts on) do not change. Codes go to `codes` for the .errors.json map.
 */
function shortErrorsPlugin(codes: { [code: string]: string }): esbuild.Plugin {
  return {
    name: 'espruino-short-errors',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, async (args) => {
        const rel = relative(REPO_ROOT, args.path);
        if (!SHORTEN_DIRS.some((d) => rel.startsWith(d))) return undefined;
        const src = readFileSync(args.path, 'utf8');
        const js = (await esbuild.transform(src, { loader: 'ts', format: 'esm', target: 'esnext', sourcefile: rel, tsconfigRaw: { compilerOptions: { useDefineForClassFields: false } } })).code;
        const ast = parse(js, { ecmaVersion: 'latest', sourceType: 'module' }) as AnyNode;
        const stem = basename(rel, '.ts');
        const edits: { start: number; end: number; text: string }[] = [];
        fullAncestor(ast, (node: AnyNode) => {
          if (node.type !== 'NewExpression' || node.callee.type !== 'Identifier' || !ERROR_CTORS.has(node.callee.name)) return;
          const arg = node.arguments[0] as AnyNode | undefined;
          if (!arg || (arg.type === 'Literal' && typeof arg.value === 'string' && arg.value.length <= 8)) return;
          const code = `${stem}#${edits.length + 1}`;
          codes[code] = js.slice(arg.start, arg.end);
          edits.push({ start: arg.start, end: arg.end, text: JSON.stringify(code) });
        });
        let out = js;
        for (const e of edits.sort((x, y) => y.start - x.start)) out = out.slice(0, e.start) + e.text + out.slice(e.end);
        return { contents: out, loader: 'js', resolveDir: dirname(args.path) };
      });
    },
  };
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
  let result: esbuild.BuildResult & { outputFiles: esbuild.OutputFile[]; metafile: esbuild.Metafile };
  try {
    result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: 'iife',
      platform: 'neutral',
      target: 'es2015',
      minify: opts.minify ?? true,
      sourcemap: false,
      legalComments: 'none',
      charset: 'ascii',
      treeShaking: true,
      logLevel: 'silent',
      metafile: true,
      absWorkingDir: REPO_ROOT,
      tsconfig: join(REPO_ROOT, 'tsconfig.json'),
      define: boardDefines(cfg),
      plugins: shortErrors ? [noBareImports, shortErrorsPlugin(errorCodes)] : [noBareImports],
    });
  } catch (e) {
    const failure = e as esbuild.BuildFailure;
    if (failure.errors) {
      const msgs = failure.errors.map((m) => (m.location ? `${m.location.file}:${m.location.line}:${m.location.column + 1} ${m.text}` : m.text));
      throw new Error(`esbuild failed for board ${cfg.board}:\n${msgs.join('\n')}`);
    }
    throw e;
  }
  const code = espruinoFixups(result.outputFiles[0].text);
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, outName);
  writeFileSync(path, code);
  if (shortErrors) writeFileSync(path.replace(/\.js$/, '') + '.errors.json', JSON.stringify(errorCodes, null, 1) + '\n');
  const out = Object.values(result.metafile.outputs)[0];
  const modules = Object.entries(out ? out.inputs : {})
    .map(([p, v]) => ({ path: p, bytes: v.bytesInOutput }))
    .filter((m) => m.bytes > 0)
    .sort((x, y) => y.bytes - x.bytes);
  return { board: cfg.board, entry, path, bytes: Buffer.byteLength(code), violations: checkSubset(code), modules, errorCodes };
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
