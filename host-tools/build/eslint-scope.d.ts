// The part of eslint-scope's API that global-scope.ts uses (the package ships no types).
declare module 'eslint-scope' {
  interface Identifier {
    name: string;
    start: number;
    end: number;
  }
  interface Variable {
    name: string;
    defs: { name: Identifier }[];
    references: { identifier: Identifier }[];
  }
  interface Scope {
    variables: Variable[];
  }
  interface ScopeManager {
    acquire(node: unknown): Scope | null;
  }
  export function analyze(ast: unknown, options: { ecmaVersion: number; sourceType: 'script' | 'module' }): ScopeManager;
}
