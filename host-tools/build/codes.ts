// Text codes for the firmware bundle (docs/design/FOOTPRINT.md "Text codes"): which
// modules' texts are shortened, the module numbering, the esbuild plugin that turns error
// messages, console lines and log events into numbered codes (the texts go to the build's
// dictionary, text.ts), and the throw helpers of errors.ts the coded throws call.
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import * as esbuild from 'esbuild';
import { parse, type Node } from 'acorn';
import { fullAncestor } from 'acorn-walk';
import { DROPPED, SLOT } from './text.ts';
import { REPO_ROOT } from './root.ts';

/** An acorn node with its fields. */
export type AnyNode = Node & { [k: string]: any };

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
export function shortErrorsPlugin(codes: { [code: string]: string }): esbuild.Plugin {
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
