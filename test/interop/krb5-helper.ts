// Builds and drives test/interop/krb5-helper.c (a tiny MIT libkrb5 peer, see
// its header for the line protocol). The binary is compiled at test time into a
// temp directory and removed with it; it is never committed.
//
//   const bin = buildKrb5Helper(t);            // null = skipped (no cc / libkrb5-dev)
//   const h = Krb5Helper.spawn(bin, realm.env);
//   const r = await h.cmd(`mk_req ${service}`); // { ap_req: 'hex', session_key: 'hex', ... }
//   await h.close();
import { spawn, execFileSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { needTool } from '../helpers/tools.ts';

export const HELPER_SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'krb5-helper.c');

function missing(t: TestContext, what: string): null {
  const reason = `${what} (apt-get install libkrb5-dev, or run bash .ci/run)`;
  if (process.env.CI) throw new Error(`CI must have ${reason}`);
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return null;
}

/** cc/linker flags for libkrb5: pkg-config first, krb5-config second. */
function krb5Flags(t: TestContext): string[] | null {
  const split = (s: string) => s.trim().split(/\s+/).filter(Boolean);
  for (const [tool, args] of [
    ['pkg-config', ['--cflags', '--libs', 'krb5']],
    ['krb5-config', ['--cflags', '--libs', 'krb5']],
  ] as [string, string[]][]) {
    try {
      return split(execFileSync(tool, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    } catch {
      /* next */
    }
  }
  needTool(t, 'pkg-config');
  return missing(t, 'neither pkg-config nor krb5-config knows krb5');
}

/**
 * Compiles the helper into a fresh temp directory (removed after the test).
 * Skips (fails under CI) without cc, pkg-config/krb5-config or krb5.h.
 */
export function buildKrb5Helper(t: TestContext): string | null {
  const cc = needTool(t, 'cc');
  if (!cc) return null;
  const flags = krb5Flags(t);
  if (!flags) return null;
  const incDirs = ['/usr/include'];
  for (let i = 0; i < flags.length; i++) {
    if ((flags[i] === '-isystem' || flags[i] === '-I') && flags[i + 1]) incDirs.push(flags[i + 1]);
    else if (flags[i].startsWith('-I')) incDirs.push(flags[i].slice(2));
  }
  if (!incDirs.some((d) => existsSync(join(d, 'krb5.h')))) return missing(t, 'krb5.h is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'krb5-helper-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'krb5-helper');
  try {
    execFileSync(cc, ['-std=c99', '-D_POSIX_C_SOURCE=200809L', '-Wall', '-O1', '-o', bin, HELPER_SOURCE, ...flags], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer };
    throw new Error(`compiling ${HELPER_SOURCE} failed: ${err.stderr ? err.stderr.toString() : String(e)}`);
  }
  return bin;
}

export type HelperAnswer = { [k: string]: string };

export class HelperError extends Error {
  code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export class Krb5Helper {
  private child: ChildProcessWithoutNullStreams;
  private buf = '';
  private waiting: { resolve: (s: string) => void; reject: (e: Error) => void }[] = [];
  private stderr = '';
  private exited = false;

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.child = child;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      this.buf += d;
      let i;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        const w = this.waiting.shift();
        if (w) w.resolve(line);
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      if (this.stderr.length < 8192) this.stderr += d.toString();
    });
    child.on('exit', (code, sig) => {
      this.exited = true;
      const e = new Error(`krb5-helper exited (${code ?? sig}): ${this.stderr}`);
      for (const w of this.waiting.splice(0)) w.reject(e);
    });
  }

  /** Starts the helper with the realm's environment (KRB5_CONFIG, KRB5CCNAME, KRB5RCACHETYPE=none, ...). */
  static spawn(bin: string, env: NodeJS.ProcessEnv): Krb5Helper {
    return new Krb5Helper(spawn(bin, [], { env: { ...env, KRB5RCACHETYPE: 'none' }, stdio: ['pipe', 'pipe', 'pipe'] }));
  }

  /** Sends one command line; resolves with the "ok" fields, rejects with HelperError on "err". */
  cmd(line: string, timeoutMs = 10000): Promise<HelperAnswer> {
    if (this.exited) return Promise.reject(new Error(`krb5-helper has exited: ${this.stderr}`));
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`krb5-helper: no answer to '${line.split(' ')[0]}'`)), timeoutMs);
      this.waiting.push({
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.stdin.write(line + '\n');
    }).then((ans) => {
      if (ans.startsWith('err ')) {
        const m = /^err code=(-?\d+) msg=(.*)$/.exec(ans);
        throw new HelperError(m ? Number(m[1]) : -1, m ? m[2] : ans);
      }
      if (!ans.startsWith('ok')) throw new Error(`krb5-helper: unexpected answer ${ans.slice(0, 200)}`);
      const out: HelperAnswer = {};
      for (const kv of ans.slice(2).trim().split(/\s+/)) {
        const i = kv.indexOf('=');
        if (i > 0) out[kv.slice(0, i)] = kv.slice(i + 1);
      }
      return out;
    });
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin.end('quit\n');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(timer);
  }
}
