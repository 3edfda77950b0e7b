// The bundle's top level moved from its wrapping function to the interpreter's global
// scope, under names no one else uses.
//
// Why: Espruino stores, in every function created inside another function, a link to
// the enclosing scope (one variable), and a closure created inside a method copies the
// whole scope chain into an array (jsparse.c jspeiGetScopesAsVar). A function created
// at global scope stores neither. Measured on the Puck.js-sized build (docs/design/
// FOOTPRINT.md "Top-level functions at global scope"): about 200 variables fewer after
// boot and at every exchange's peak.
//
// The price is a namespace: the interpreter's global scope is the user's too (their
// `var e`, the pin names such as `D1`), and identifiers are only ASCII letters, digits,
// `_` and `$`. So every top-level name of the bundle is renamed to `$` followed by one
// or two characters (the most used names get the shortest), a name that occurs nowhere
// else in the bundle; the README tells users that global names starting with `$` belong
// to the firmware. Done after the minifier, on its output:
//   "use strict";(()=>{var a=...;function b(){...a...}...})();
//   "use strict";var $a=...;function $b(){...$a...}...
// References are found by scope analysis (eslint-scope), so a local that the minifier
// gave the same short name as a top-level one is left alone.
import * as acorn from 'acorn';
import * as walk from 'acorn-walk';
import { analyze } from 'eslint-scope';

type AnyNode = acorn.Node & { [k: string]: any };

/** Characters after the `$`: the order the names are handed out in. */
const TAIL = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$';

/**
 * `$a` .. `$$`, then `$aa` .. `$$$`: names for the top level, none of which occurs in
 * `code` once the names in `leaving` (words whose every occurrence is renamed) are gone.
 */
function globalNames(code: string, leaving: Set<string>): () => string {
  const used = new Set((code.match(/[A-Za-z_$][\w$]*/g) ?? []).filter((w) => !leaving.has(w)));
  let i = 0;
  return () => {
    for (;;) {
      const n = i++;
      const name = n < TAIL.length ? '$' + TAIL[n] : '$' + TAIL[Math.floor((n - TAIL.length) / TAIL.length) % TAIL.length] + TAIL[(n - TAIL.length) % TAIL.length];
      if (n >= TAIL.length * (TAIL.length + 1)) throw new Error('globalScope: more top-level names than the `$` namespace holds');
      if (!used.has(name)) return name;
    }
  };
}

/**
 * `code` (the minified bundle: an optional "use strict" directive, then one statement
 * calling an arrow or function expression with no arguments) with the function's body
 * at the top level and each of its names renamed into the `$` namespace. Throws when
 * the bundle has another shape or when the body could not run at the top level
 * (a `return`, `this` or `arguments` of the wrapping function).
 */
export function globalScope(code: string): string {
  const ast = acorn.parse(code, { ecmaVersion: 2020, ranges: true }) as AnyNode;
  const stmts = ast.body as AnyNode[];
  const last = stmts[stmts.length - 1];
  const call = last && last.type === 'ExpressionStatement' ? last.expression : null;
  const fn = call && call.type === 'CallExpression' && call.arguments.length === 0 ? call.callee : null;
  if (!fn || (fn.type !== 'ArrowFunctionExpression' && fn.type !== 'FunctionExpression') || fn.body.type !== 'BlockStatement' || fn.params.length > 0 || stmts.slice(0, -1).some((s) => !s.directive)) {
    throw new Error('globalScope: the bundle is not one call of a wrapping function');
  }
  // What only works inside a function: a `return` of the wrapper itself, or (for a
  // `function` wrapper) its `this` and `arguments`.
  walk.ancestor(fn.body, {
    ReturnStatement(_n: AnyNode, _s: unknown, anc: AnyNode[]) {
      const inner = anc.slice(0, -1).some((a) => /Function/.test(a.type));
      if (!inner) throw new Error('globalScope: the wrapping function returns');
    },
  });
  if (fn.type === 'FunctionExpression') {
    walk.ancestor(fn.body, {
      ThisExpression(_n: AnyNode, _s: unknown, anc: AnyNode[]) {
        if (!anc.slice(0, -1).some((a) => a.type === 'FunctionExpression' || a.type === 'FunctionDeclaration')) throw new Error('globalScope: the wrapping function uses `this`');
      },
    });
  }

  const scopes = analyze(ast as any, { ecmaVersion: 2020, sourceType: 'script' });
  const scope = scopes.acquire(fn as any);
  if (!scope) throw new Error('globalScope: no scope for the wrapping function');
  // Shorthand properties `{a}`: the key is written out when the value is renamed.
  const shorthand = new Set<number>();
  walk.full(ast, (n: AnyNode) => {
    if (n.type === 'Property' && n.shorthand) shorthand.add(n.value.start);
  });

  type Edit = { start: number; end: number; text: string };
  const edits: Edit[] = [];
  // A variable with no declaration is the function's implicit `arguments`.
  if (scope.variables.some((v) => v.defs.length === 0 && v.references.length > 0)) throw new Error('globalScope: the wrapping function uses `arguments`');
  const vars = scope.variables.filter((v) => v.defs.length > 0);
  // Every identifier of a variable: where it is declared and where it is used.
  const ids = vars.map((v) => {
    const nodes = new Map<number, { start: number; end: number }>();
    for (const d of v.defs) nodes.set(d.name.start, d.name);
    for (const r of v.references) nodes.set(r.identifier.start, r.identifier);
    return { name: v.name, nodes: [...nodes.values()] };
  });
  ids.sort((a, b) => b.nodes.length - a.nodes.length || (a.name < b.name ? -1 : 1));
  // A word all of whose occurrences are renamed (the aliases' `$a`, say) is free again.
  const words = new Map<string, number>();
  for (const w of code.match(/[A-Za-z_$][\w$]*/g) ?? []) words.set(w, (words.get(w) ?? 0) + 1);
  const leaving = new Set(ids.filter((v) => words.get(v.name) === v.nodes.length && !v.nodes.some((n) => shorthand.has(n.start))).map((v) => v.name));
  const fresh = globalNames(code, leaving);
  for (const v of ids) {
    const name = fresh();
    for (const n of v.nodes) edits.push({ start: n.start, end: n.end, text: shorthand.has(n.start) ? v.name + ':' + name : name });
  }
  // The wrapper goes: everything before its body's `{` and after its `}` (the call).
  edits.push({ start: last.start, end: fn.body.start + 1, text: '' });
  edits.push({ start: fn.body.end - 1, end: last.end, text: '' });
  edits.sort((a, b) => b.start - a.start);
  let out = code;
  let limit = Infinity;
  for (const e of edits) {
    if (e.end > limit) throw new Error('globalScope: overlapping edits');
    out = out.slice(0, e.start) + e.text + out.slice(e.end);
    limit = e.start;
  }
  return out;
}
