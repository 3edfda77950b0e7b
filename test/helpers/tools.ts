// Tests that need an installable tool (tshark, krb5, socat) must run in CI:
// needTool skips with a printed reason on a developer machine that lacks the
// tool, and fails under CI=true, where .ci/run installs it.
import { execFileSync } from 'node:child_process';
import type { TestContext } from 'node:test';

const cache: { [k: string]: string | null } = {};

export function which(tool: string): string | null {
  if (tool in cache) return cache[tool];
  let p: string | null = null;
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', '/usr/local/bin', '/usr/local/sbin']) {
    try {
      execFileSync('test', ['-x', `${dir}/${tool}`]);
      p = `${dir}/${tool}`;
      break;
    } catch {
      /* next */
    }
  }
  cache[tool] = p;
  return p;
}

/** Returns the tool's path, or skips the test (fails under CI) when it is absent. */
export function needTool(t: TestContext, tool: string): string | null {
  const p = which(tool);
  if (p) return p;
  const reason = `${tool} is not installed (apt-get install it, or run bash .ci/run)`;
  if (process.env.CI) throw new Error(`CI must have ${tool}: ${reason}`);
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return null;
}
