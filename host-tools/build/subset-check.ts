// Mechanical check that a JS bundle stays inside the Espruino subset (ESPRUINO.md).
// Parses with acorn, walks every node (acorn-walk fullAncestor) and reports each
// construct the interpreter rejects. The lists below were measured on the
// Espruino 2v29 Linux build (a probe of each feature through eval); entries that
// are not in ESPRUINO.md's "Fails" list were found failing by that probe.
import { parse, type Node } from 'acorn';
import { fullAncestor } from 'acorn-walk';

export interface Violation {
  rule: string;
  message: string;
  line: number;
  column: number;
  snippet: string;
}

/** rule id -> what it rejects */
export const RULES: { [rule: string]: string } = {
  parse: 'the bundle does not parse as JavaScript',
  'default-param': 'default parameter / destructuring default values',
  destructuring: 'destructuring patterns (object or array)',
  spread: 'spread `...` in calls, arrays or objects',
  rest: 'rest parameters / rest elements',
  generator: 'generators and yield',
  async: 'async functions and await',
  label: 'labelled statements',
  exponent: '`**` and `**=`',
  'optional-chaining': 'optional chaining `?.`',
  'logical-assignment': '`??=`, `||=`, `&&=`',
  'computed-key': 'computed keys in object literals and classes',
  'class-private': 'private class members (#x) and static blocks',
  'new-target': '`new.target` / `import.meta`',
  bigint: 'BigInt literals',
  'forbidden-global': 'globals the interpreter lacks (Map, Set, Symbol, BigInt, Reflect, Proxy, TextEncoder, ...)',
  'forbidden-static': 'static members the interpreter lacks (Math.imul, Number.isInteger, Array.from, Uint8Array.from, Object.freeze, Date.UTC, ...)',
  'forbidden-method': 'prototype methods the interpreter lacks (.flat, .at, .codePointAt, array .keys()/.values()/.entries(), ...)',
  'builtin-prototype': 'reading methods through a built-in prototype (Array.prototype.slice is undefined on Espruino)',
  'extends-error': 'class extending Error (loses its message on Espruino): use an ES5 constructor',
  'regex-unsupported': 'regular-expression features the interpreter lacks (lookbehind, named groups, s/d/v flags)',
  'let-loop-closure': 'a closure capturing a let/const loop-head variable (not re-bound per iteration on Espruino)',
  'class-expression-name': 'a named class expression referring to its own name (Espruino does not bind it): the build rewrites these',
  'reserved-name': "an Espruino lexer keyword (of, static, let, ...) used as a class member or variable name",
};

/** Words Espruino's lexer (src/jslex.c) always turns into keyword tokens. Fine as object keys and after `.`. */
const ESPRUINO_KEYWORDS = new Set([
  'if', 'else', 'do', 'while', 'for', 'break', 'continue', 'function', 'return', 'var', 'let', 'const', 'this',
  'throw', 'try', 'catch', 'finally', 'true', 'false', 'null', 'undefined', 'new', 'in', 'instanceof', 'switch',
  'case', 'default', 'delete', 'typeof', 'void', 'debugger', 'class', 'extends', 'super', 'static', 'of',
]);

export const FORBIDDEN_GLOBALS = new Set([
  'Map', 'Set', 'WeakMap', 'WeakSet', 'WeakRef', 'FinalizationRegistry', 'Symbol', 'BigInt', 'BigInt64Array',
  'BigUint64Array', 'Reflect', 'Proxy', 'TextEncoder', 'TextDecoder', 'Intl', 'Atomics', 'SharedArrayBuffer',
  'RangeError', 'EvalError', 'URIError', 'escape', 'unescape', 'queueMicrotask', 'setImmediate', 'structuredClone',
]);

const TYPED_ARRAYS = [
  'Uint8Array', 'Uint8ClampedArray', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array',
  'Float32Array', 'Float64Array',
];

export const FORBIDDEN_STATIC: { [obj: string]: string[] } = {
  Math: ['imul', 'clz32', 'trunc', 'log2', 'log10', 'log1p', 'expm1', 'hypot', 'fround', 'cbrt', 'sinh', 'cosh', 'tanh', 'asinh', 'acosh', 'atanh'],
  Number: ['isInteger', 'isSafeInteger', 'isFinite', 'isNaN', 'parseInt', 'parseFloat', 'EPSILON', 'MAX_SAFE_INTEGER', 'MIN_SAFE_INTEGER'],
  Object: ['freeze', 'isFrozen', 'seal', 'isSealed', 'preventExtensions', 'is', 'getOwnPropertySymbols'],
  Array: ['from', 'of'],
  ArrayBuffer: ['isView'],
  String: ['fromCodePoint'],
  Date: ['UTC'],
  Promise: ['race', 'allSettled', 'any'],
  Error: ['captureStackTrace'],
};
for (const t of TYPED_ARRAYS) FORBIDDEN_STATIC[t] = ['from', 'of'];

/** Method names that do not exist on any built-in prototype of the interpreter. */
export const FORBIDDEN_METHODS = new Set([
  'flat', 'flatMap', 'copyWithin', 'reduceRight', 'trimStart', 'trimEnd', 'codePointAt', 'normalize',
  'localeCompare', 'matchAll', 'at', 'findLast', 'findLastIndex', 'toSorted', 'toReversed', 'with',
]);
/** Iterator methods: fail when called with no argument on an array / typed array. */
const ITERATOR_METHODS = new Set(['keys', 'values', 'entries']);

const PROTOTYPE_OWNERS = new Set(['Array', 'String', 'Function', 'Number', 'Boolean', 'RegExp', 'Date', 'Promise', 'ArrayBuffer', 'DataView', ...TYPED_ARRAYS]);
const OBJECT_PROTOTYPE_OK = new Set(['hasOwnProperty', 'toString']);
const ERROR_CLASSES = new Set(['Error', 'TypeError', 'RangeError', 'SyntaxError', 'ReferenceError', 'EvalError', 'URIError', 'InternalError']);

type AnyNode = Node & { [k: string]: any };

function isFunction(n: AnyNode): boolean {
  return n.type === 'FunctionDeclaration' || n.type === 'FunctionExpression' || n.type === 'ArrowFunctionExpression';
}
function isLoop(n: AnyNode): boolean {
  return n.type === 'ForStatement' || n.type === 'ForInStatement' || n.type === 'ForOfStatement';
}
const PATTERN_TYPES = new Set(['ObjectPattern', 'ArrayPattern', 'RestElement', 'AssignmentPattern', 'Property']);

/**
 * Checks `source` (a whole bundle or a snippet). Returns every violation found,
 * in source order; an unparsable source gives one 'parse' violation.
 */
export function checkSubset(source: string): Violation[] {
  const out: Violation[] = [];
  let ast: AnyNode;
  try {
    ast = parse(source, { ecmaVersion: 'latest', sourceType: 'script', locations: true, allowReturnOutsideFunction: true }) as AnyNode;
  } catch (e) {
    const err = e as SyntaxError & { loc?: { line: number; column: number }; pos?: number };
    const pos = err.pos ?? 0;
    out.push({ rule: 'parse', message: err.message, line: err.loc?.line ?? 0, column: err.loc?.column ?? 0, snippet: snippetAt(source, pos, pos + 1) });
    return out;
  }
  const lines = source.split('\n');
  const seen = new Set<string>();
  const report = (rule: string, node: AnyNode, detail?: string) => {
    const key = `${rule}@${node.start}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({
      rule,
      message: detail ? `${RULES[rule]}: ${detail}` : RULES[rule],
      line: node.loc ? node.loc.start.line : 0,
      column: node.loc ? node.loc.start.column : 0,
      snippet: snippetAt(source, node.start, node.end, lines),
    });
  };

  // Pass 1: declarations. scope node -> names declared there. Function-level
  // granularity (block scopes fold into their function), except let/const in a
  // loop head, which is kept on the loop for the let-loop-closure rule.
  const decls = new Map<AnyNode, Set<string>>();
  const declare = (scope: AnyNode, name: string) => {
    let s = decls.get(scope);
    if (!s) decls.set(scope, (s = new Set()));
    s.add(name);
  };
  fullAncestor(ast, (node: AnyNode, _st: unknown, ancestors: AnyNode[], type: string) => {
    if (node.type !== 'Identifier' || type !== 'VariablePattern') return;
    // Climb out of pattern wrappers to the construct that owns the binding.
    let i = ancestors.length - 2;
    while (i >= 0 && PATTERN_TYPES.has(ancestors[i].type)) {
      const p = ancestors[i];
      if (p.type === 'AssignmentPattern' && p.right === ancestors[i + 1]) return; // default value: a reference
      i--;
    }
    if (i < 0) return;
    const owner = ancestors[i];
    const child = ancestors[i + 1];
    if (owner.type === 'VariableDeclarator' && owner.id === child) {
      const declaration = ancestors[i - 1];
      const parent = ancestors[i - 2];
      if (declaration.kind !== 'var' && parent && isLoop(parent) && (parent.init === declaration || parent.left === declaration)) {
        declare(parent, node.name);
      } else {
        declare(enclosingScope(ancestors, i - 1), node.name);
      }
    } else if (isFunction(owner)) {
      if (owner.type === 'FunctionDeclaration' && owner.id === child) declare(enclosingScope(ancestors, i), node.name);
      else declare(owner, node.name);
    } else if (owner.type === 'CatchClause') {
      declare(owner, node.name);
    } else if (owner.type === 'ClassDeclaration' && owner.id === child) {
      declare(enclosingScope(ancestors, i), node.name);
    } else if (owner.type === 'ClassExpression' && owner.id === child) {
      declare(owner, node.name);
    }
    // AssignmentExpression / for-in left without a declaration: a reference, not a binding.
  });

  const resolve = (name: string, ancestors: AnyNode[]): { local: boolean; loop: AnyNode | null; crossedFunction: boolean } => {
    let crossed = false;
    for (let i = ancestors.length - 2; i >= 0; i--) {
      const a = ancestors[i];
      const s = decls.get(a);
      if (s && s.has(name)) return { local: true, loop: isLoop(a) ? a : null, crossedFunction: crossed };
      if (isFunction(a)) crossed = true;
    }
    return { local: false, loop: null, crossedFunction: crossed };
  };
  const isGlobalRef = (n: AnyNode, ancestors: AnyNode[]): boolean => n.type === 'Identifier' && !resolve(n.name, ancestors).local;

  // Pass 2: the rules.
  fullAncestor(ast, (node: AnyNode, _st: unknown, ancestors: AnyNode[], type: string) => {
    const parent = ancestors[ancestors.length - 2];
    switch (node.type) {
      case 'AssignmentPattern':
        report('default-param', node);
        break;
      case 'ObjectPattern':
      case 'ArrayPattern':
        report('destructuring', node);
        break;
      case 'SpreadElement':
        report('spread', node);
        break;
      case 'RestElement':
        report('rest', node);
        break;
      case 'YieldExpression':
        report('generator', node);
        break;
      case 'AwaitExpression':
        report('async', node);
        break;
      case 'ForOfStatement':
        if (node.await) report('async', node, 'for await');
        break;
      case 'LabeledStatement':
        report('label', node);
        break;
      case 'ChainExpression':
        report('optional-chaining', node);
        break;
      case 'MetaProperty':
        report('new-target', node);
        break;
      case 'PrivateIdentifier':
      case 'StaticBlock':
        report('class-private', node);
        break;
      case 'BinaryExpression':
        if (node.operator === '**') report('exponent', node);
        break;
      case 'AssignmentExpression':
        if (node.operator === '**=') report('exponent', node);
        if (node.operator === '??=' || node.operator === '||=' || node.operator === '&&=') report('logical-assignment', node);
        break;
      case 'Property':
        if (node.computed) report('computed-key', node);
        break;
      case 'MethodDefinition':
      case 'PropertyDefinition':
        if (node.computed) report('computed-key', node);
        if (node.key.type === 'PrivateIdentifier') report('class-private', node);
        if (!node.computed && node.key.type === 'Identifier' && ESPRUINO_KEYWORDS.has(node.key.name)) {
          report('reserved-name', node, `class member '${node.key.name}'`);
        }
        break;
      case 'Literal':
        if (node.bigint !== undefined) report('bigint', node);
        if (node.regex) {
          const { pattern, flags } = node.regex as { pattern: string; flags: string };
          if (/[sdv]/.test(flags)) report('regex-unsupported', node, `flag(s) ${flags}`);
          else if (/\(\?<[=!]/.test(pattern)) report('regex-unsupported', node, 'lookbehind');
          else if (/\(\?<[A-Za-z_$]/.test(pattern) || /\\k</.test(pattern)) report('regex-unsupported', node, 'named group');
        }
        break;
      case 'ClassExpression':
        if (node.id && resolve(node.id.name, [...ancestors, node.body, node.id]).local && refersTo(node.body, node.id.name)) {
          report('class-expression-name', node, `class ${node.id.name}`);
        }
      // falls through
      case 'ClassDeclaration':
        if (node.superClass && node.superClass.type === 'Identifier' && ERROR_CLASSES.has(node.superClass.name) && isGlobalRef(node.superClass, [...ancestors, node.superClass])) {
          report('extends-error', node, `extends ${node.superClass.name}`);
        }
        break;
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        if (node.generator) report('generator', node);
        if (node.async) report('async', node);
        break;
      case 'Identifier': {
        if (node.name === 'of' || node.name === 'static') report('reserved-name', node, `identifier '${node.name}'`);
        if (type !== 'Identifier') break; // binding positions come as VariablePattern
        const r = resolve(node.name, ancestors);
        if (!r.local) {
          if (FORBIDDEN_GLOBALS.has(node.name)) report('forbidden-global', node, node.name);
        } else if (r.loop && r.crossedFunction) {
          report('let-loop-closure', node, `'${node.name}' captured from the loop head`);
        }
        break;
      }
      case 'MemberExpression': {
        if (node.property.type === 'PrivateIdentifier') report('class-private', node);
        const prop = memberName(node);
        if (prop === null) break;
        const obj = node.object as AnyNode;
        if (obj.type === 'Identifier' && isGlobalRef(obj, [...ancestors, obj])) {
          const list = FORBIDDEN_STATIC[obj.name];
          if (list && list.includes(prop)) report('forbidden-static', node, `${obj.name}.${prop}`);
        }
        if (obj.type === 'MemberExpression' && memberName(obj) === 'prototype' && obj.object.type === 'Identifier' && isGlobalRef(obj.object, [...ancestors, obj.object])) {
          const owner = obj.object.name as string;
          const isWrite = parent && parent.type === 'AssignmentExpression' && parent.left === node;
          if (!isWrite && (PROTOTYPE_OWNERS.has(owner) || (owner === 'Object' && !OBJECT_PROTOTYPE_OK.has(prop)))) {
            report('builtin-prototype', node, `${owner}.prototype.${prop}`);
          }
        }
        if (parent && parent.type === 'CallExpression' && parent.callee === node) {
          if (FORBIDDEN_METHODS.has(prop)) report('forbidden-method', node, `.${prop}()`);
          else if (ITERATOR_METHODS.has(prop) && parent.arguments.length === 0 && !(obj.type === 'Identifier' && obj.name === 'Object')) {
            report('forbidden-method', node, `.${prop}()`);
          }
        }
        break;
      }
    }
  });
  out.sort((a, b) => a.line - b.line || a.column - b.column);
  return out;
}

function refersTo(root: AnyNode, name: string): boolean {
  let found = false;
  fullAncestor(root, (n: AnyNode, _st: unknown, _a: AnyNode[], type: string) => {
    if (n.type === 'Identifier' && type === 'Identifier' && n.name === name) found = true;
  });
  return found;
}

function memberName(node: AnyNode): string | null {
  if (!node.computed && node.property.type === 'Identifier') return node.property.name;
  if (node.computed && node.property.type === 'Literal' && typeof node.property.value === 'string') return node.property.value;
  return null;
}

function enclosingScope(ancestors: AnyNode[], below: number): AnyNode {
  for (let i = below - 1; i >= 0; i--) if (isFunction(ancestors[i]) || ancestors[i].type === 'Program') return ancestors[i];
  return ancestors[0];
}

function snippetAt(source: string, start: number, end: number, lines?: string[]): string {
  void lines;
  const s = source.slice(start, Math.min(end, start + 60)).replace(/\s+/g, ' ');
  return end - start > 60 ? `${s}...` : s;
}

/** One line per violation: `file:line:col rule: message -- snippet`. */
export function formatViolations(violations: Violation[], file: string): string {
  return violations.map((v) => `${file}:${v.line}:${v.column + 1} ${v.rule}: ${v.message} -- ${v.snippet}`).join('\n');
}
