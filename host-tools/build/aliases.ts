// Built-ins the minifier cannot shorten: a global such as `Uint8Array` (50 uses in a
// board bundle) or a static method such as `Math.floor` is spelled out at every use,
// because neither esbuild nor terser may rename a global. This pass gives the
// frequent ones one local name each, declared once at the top of the bundle's
// function scope:
//   (()=>{...new Uint8Array(n)...Math.floor(x)...})()
//   (()=>{var $a=Uint8Array,$b=Math.floor;...new $a(n)...$b(x)...})()
// Measured on the puckjs image: see docs/design/FOOTPRINT.md. The cost on the board
// is one variable (and its name) per alias, at boot.
//
// Safe by construction: only the names listed below (always-defined built-ins whose
// methods do not read `this`), only where the bundle never declares the name
// itself, and the alias is a word that occurs nowhere in the bundle, so nothing can
// shadow it or be shadowed by it. An alias is made only when it saves bytes.
import * as acorn from 'acorn';
import * as walk from 'acorn-walk';

/** Globals that may be aliased (constructors and namespaces defined on every board). */
const GLOBALS = ['Uint8Array', 'Uint32Array', 'Uint16Array', 'Int32Array', 'DataView', 'String', 'Array', 'Object'];
/** Static methods that may be aliased: they do not depend on their `this`. */
const STATICS: { [object: string]: string[] } = {
  Math: ['floor', 'min', 'max', 'pow', 'round', 'ceil', 'abs'],
  String: ['fromCharCode'],
  Array: ['isArray'],
};

type AnyNode = acorn.Node & { [k: string]: any };

/** A use to replace: [start, end) of the text, and what it names ('Uint8Array', 'Math.floor'). */
interface Use {
  start: number;
  end: number;
  what: string;
}

/** Every name the bundle declares (any scope): such a global is left alone. */
function declaredNames(ast: acorn.Node): Set<string> {
  const out = new Set<string>();
  const addPattern = (p: AnyNode | null | undefined) => {
    if (!p) return;
    if (p.type === 'Identifier') out.add(p.name);
    else if (p.type === 'ObjectPattern') p.properties.forEach((q: AnyNode) => addPattern(q.type === 'RestElement' ? q.argument : q.value));
    else if (p.type === 'ArrayPattern') p.elements.forEach((q: AnyNode | null) => addPattern(q));
    else if (p.type === 'RestElement') addPattern(p.argument);
    else if (p.type === 'AssignmentPattern') addPattern(p.left);
  };
  walk.full(ast, (n: AnyNode) => {
    if (n.type === 'VariableDeclarator') addPattern(n.id);
    else if (n.type === 'FunctionDeclaration' || n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression') {
      if (n.id) out.add(n.id.name);
      n.params.forEach((p: AnyNode) => addPattern(p));
    } else if ((n.type === 'ClassDeclaration' || n.type === 'ClassExpression') && n.id) out.add(n.id.name);
    else if (n.type === 'CatchClause') addPattern(n.param);
  });
  return out;
}

/** Fresh identifiers `$a`, `$b`, ... that occur nowhere in `code`. */
function freshNames(code: string): () => string {
  const used = new Set(code.match(/[A-Za-z_$][\w$]*/g) ?? []);
  let i = 0;
  return () => {
    for (;;) {
      const n = i++;
      const name = '$' + (n < 26 ? String.fromCharCode(97 + n) : String.fromCharCode(97 + (n % 26)) + Math.floor(n / 26));
      if (!used.has(name)) return name;
    }
  };
}

/**
 * The bundle with its frequent built-ins aliased (see the header). `code` must be the
 * minified bundle, an expression statement calling one arrow or function expression
 * (esbuild's iife format), optionally after a "use strict" directive; anything else is
 * returned unchanged.
 */
export function aliasBuiltins(code: string): string {
  const ast = acorn.parse(code, { ecmaVersion: 2020 }) as AnyNode;
  const stmt = ast.body.find((s: AnyNode) => !s.directive) as AnyNode | undefined;
  const call = stmt && stmt.type === 'ExpressionStatement' ? stmt.expression : null;
  const fn = call && call.type === 'CallExpression' ? call.callee : null;
  if (!fn || (fn.type !== 'ArrowFunctionExpression' && fn.type !== 'FunctionExpression') || fn.body.type !== 'BlockStatement') return code;

  const declared = declaredNames(ast);
  const uses: Use[] = [];
  walk.ancestor(ast, {
    MemberExpression(n: AnyNode, _s: unknown, anc: AnyNode[]) {
      const o = n.object;
      if (n.computed || o.type !== 'Identifier' || declared.has(o.name)) return;
      if (!(STATICS[o.name] ?? []).includes(n.property.name)) return;
      const parent = anc[anc.length - 2];
      // Only reads: `Math.floor = ...` or `delete Math.floor` keep the member.
      if (parent && ((parent.type === 'AssignmentExpression' && parent.left === n) || (parent.type === 'UpdateExpression') || (parent.type === 'UnaryExpression' && parent.operator === 'delete'))) return;
      uses.push({ start: n.start, end: n.end, what: o.name + '.' + n.property.name });
    },
    Identifier(n: AnyNode, _s: unknown, anc: AnyNode[]) {
      if (!GLOBALS.includes(n.name) || declared.has(n.name)) return;
      const parent = anc[anc.length - 2];
      if (parent?.type === 'MemberExpression' && parent.property === n && !parent.computed) return;
      if (parent?.type === 'Property' && parent.key === n && !parent.computed) return;
      if (parent?.type === 'MethodDefinition' && parent.key === n) return;
      if (parent?.type === 'AssignmentExpression' && parent.left === n) return;
      uses.push({ start: n.start, end: n.end, what: n.name });
    },
  });
  // A static's object is itself an Identifier use: `String.fromCharCode` counts once, as the member.
  const members = uses.filter((u) => u.what.includes('.'));
  const plain = uses.filter((u) => !u.what.includes('.') && !members.some((m) => m.start === u.start));

  const fresh = freshNames(code);
  const byWhat = new Map<string, Use[]>();
  for (const u of [...members, ...plain]) {
    const list = byWhat.get(u.what);
    if (list) list.push(u);
    else byWhat.set(u.what, [u]);
  }
  const alias = new Map<string, string>();
  for (const [what, list] of [...byWhat.entries()].sort((a, b) => b[1].length * b[0].length - a[1].length * a[0].length)) {
    const name = fresh();
    // Saved: (len - alias len) per use; spent: ",$a=Uint8Array" once.
    if (list.length * (what.length - name.length) > name.length + what.length + 2) alias.set(what, name);
  }
  if (alias.size === 0) return code;

  const edits = [...members, ...plain].filter((u) => alias.has(u.what)).sort((a, b) => b.start - a.start);
  let out = code;
  for (const e of edits) out = out.slice(0, e.start) + alias.get(e.what) + out.slice(e.end);
  const decl = 'var ' + [...alias.entries()].map(([what, name]) => name + '=' + what).join(',') + ';';
  const at = fn.body.start + 1; // just inside the function body's `{` (before any edit: edits are all later)
  return out.slice(0, at) + decl + out.slice(at);
}
