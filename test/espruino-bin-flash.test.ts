// The firmware's RAM measured the way a board runs it, and guarded: the stored image in
// the interpreter's Storage ".bootcde" and booted from flash (host-tools/bench/
// espruino-flash.ts), three key exchanges against our KDC and SC on loopback, then the
// variables after boot, idle with an SA, and at the peak of an exchange, checked against
// the board's budget (board-configs ramBudget).
//   ESPRUINO_BIN=/path/to/espruino node --import tsx --test test/espruino-bin-flash.test.ts
// The budget is that of the board whose layout the interpreter has (13-byte blocks and
// the board's variable count: a board-sized 32-bit build, README "Measuring like the
// board"); any other build (the x86-64 Linux one) is held to the linux board's budget,
// and its figures are lower than a board's (README gives the measured difference).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { measureFromFlash } from '../host-tools/bench/espruino-flash.ts';
import { loadBoard } from '../host-tools/build/boards.ts';
import { ESPRUINO_BIN as BIN, skipUnlessBin } from './helpers/espruino-bin.ts';

test('the image booted from Storage on the real interpreter: RAM after boot, idle with an SA and at the peak, within the board budget', { timeout: 600000 }, async (t) => {
  if (skipUnlessBin(t)) return;
  const f = await measureFromFlash({ bin: BIN as string });
  const board = loadBoard(f.boardLayout ?? 'linux');
  const units = f.boardLayout
    ? `variables of ${f.blockSize} bytes: the ${board.name}'s own units (its layout: ${f.variablesTotal} variables)`
    : `variables of this ${f.blockSize}-byte build: LOWER than a board's 13-byte count (measured: a 13-byte build counts about 8 % more at boot and 16 % more at the peak)`;
  const lines = [
    `${f.image} image ${f.imageBytes} B in Storage .bootcde, booted from flash on ${f.binary}; ${units}`,
    `after boot ${f.boot}, idle with an SA ${f.idleWithSa}, peak ${f.peak} (first exchange, with the AS exchange: ${f.peakFirst}); probe's own ${f.probe} taken off`,
    `budget (board-configs/${board.board}.json ramBudget): boot ${board.ramBudget.boot}, peak ${board.ramBudget.peak}`,
    `exchange ms: ${f.exchangeMs.map((x) => x.toFixed(0)).join(', ')}`,
  ];
  for (const l of lines) {
    console.log('# ' + l);
    t.diagnostic(l);
  }
  const peak = Math.max(f.peak, f.peakFirst);
  assert.ok(f.boot <= board.ramBudget.boot, `after boot ${f.boot} variables, over the ${board.board} budget of ${board.ramBudget.boot}`);
  assert.ok(peak <= board.ramBudget.peak, `peak ${peak} variables, over the ${board.board} budget of ${board.ramBudget.peak}`);
  assert.ok(f.peak >= f.boot, 'the peak is sampled inside the exchange');
});
