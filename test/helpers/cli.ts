// Runs bin/cta.js as a child process, asynchronously (so servers and boards the
// test runs in this process keep answering while the command works).
import { spawn } from 'node:child_process';
import { join } from 'node:path';

export const CTA_BIN = join(import.meta.dirname, '..', '..', 'bin', 'cta.js');

export type CtaRun = { code: number | null; out: string; err: string };

/** `node bin/cta.js ...args`: exit code and output; killed (SIGKILL) after timeoutMs. */
export function runCta(args: string[], opts: { timeoutMs: number; cwd?: string }): Promise<CtaRun> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [CTA_BIN, ...args], { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
}
