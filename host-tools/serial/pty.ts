// A pseudo-terminal pair from socat: the serial link's two ends on one machine, for the
// tests and for measuring a serial board on the Linux interpreter (bench/espruino-flash.ts).
import { spawn } from 'node:child_process';

export type PtyPair = { a: string; b: string; close(): Promise<void> };

/**
 * `socat -d -d pty,raw,echo=0 pty,raw,echo=0`: the two /dev/pts paths from its stderr.
 * With `links`, each end is also linked at that path (pty's link= option), and those
 * paths are what it resolves with.
 */
export function socatPair(socat = 'socat', links?: [string, string]): Promise<PtyPair> {
  return new Promise((resolve, reject) => {
    const end = (i: number) => (links ? `pty,raw,echo=0,link=${links[i]}` : 'pty,raw,echo=0');
    const p = spawn(socat, ['-d', '-d', end(0), end(1)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const timer = setTimeout(() => {
      p.kill();
      reject(new Error(`socat gave no PTY paths: ${err}`));
    }, 5000);
    const close = () =>
      new Promise<void>((res) => {
        if (p.exitCode !== null || p.signalCode !== null) return res();
        p.once('exit', () => res());
        p.kill('SIGTERM');
      });
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => {
      err += d;
      const paths = [...err.matchAll(/PTY is (\/dev\/\S+)/g)].map((m) => m[1]);
      if (paths.length >= 2 && /starting data transfer loop/.test(err)) {
        clearTimeout(timer);
        resolve(links ? { a: links[0], b: links[1], close } : { a: paths[0], b: paths[1], close });
      }
    });
    p.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
