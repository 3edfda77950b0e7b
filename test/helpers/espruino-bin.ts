// The real Espruino interpreter (a Linux build) some tests run on, when given:
//   ESPRUINO_BIN=/path/to/espruino npm test -- espruino-bin
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { layoutBoard } from '../../host-tools/bench/espruino-flash.ts';
import { listBoards, loadBoard } from '../../host-tools/build/boards.ts';

export const ESPRUINO_BIN = process.env.ESPRUINO_BIN;

/** Skips the test (returns true) unless ESPRUINO_BIN names an existing file. */
export function skipUnlessBin(t: { skip: (m: string) => void }): boolean {
  if (ESPRUINO_BIN && existsSync(ESPRUINO_BIN)) return false;
  const reason = ESPRUINO_BIN ? `ESPRUINO_BIN=${ESPRUINO_BIN} does not exist` : 'ESPRUINO_BIN is not set (path to an Espruino Linux build)';
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return true;
}

let store: { total: number; blocksize: number } | null = null;

/** The interpreter's variable store (process.memory(): total, blocksize), asked once. */
export function interpreterStore(): { total: number; blocksize: number } {
  if (store) return store;
  const r = spawnSync(ESPRUINO_BIN as string, ['-e', 'var m=process.memory();print("STORE "+m.total+" "+m.blocksize)'], { timeout: 20000, encoding: 'latin1' });
  const m = /STORE (\d+) (\d+)/.exec((r.stdout ?? '') + (r.stderr ?? ''));
  store = m ? { total: +m[1], blocksize: +m[2] } : { total: 0, blocksize: 0 };
  return store;
}

/**
 * Why a run of the bundle as code in RAM may be skipped: it ran out of memory on an
 * interpreter with a board's layout (bench layoutBoard: its block size and variable
 * count), where the whole bundle does not fit as text in RAM. No board runs it that way
 * (cta flash stores the image and boards run it from flash: test/espruino-bin-flash.test.ts).
 * null otherwise: on the x86-64 build the run must pass.
 */
export function codeInRamSkipReason(output: string): string | null {
  if (!/OUT OF MEMORY|Not enough memory/.test(output)) return null;
  const s = interpreterStore();
  const board = layoutBoard(s.total, s.blocksize, listBoards().map((b) => loadBoard(b)));
  if (!board) return null;
  return `code in RAM ran out of memory on this ${board.name}-sized store (${s.total} variables of ${s.blocksize} bytes); boards run the stored image from flash (espruino-bin-flash.test.ts)`;
}
