// The real Espruino interpreter (a Linux build) some tests run on, when given:
//   ESPRUINO_BIN=/path/to/espruino npm test -- espruino-bin
import { existsSync } from 'node:fs';

export const ESPRUINO_BIN = process.env.ESPRUINO_BIN;

/** Skips the test (returns true) unless ESPRUINO_BIN names an existing file. */
export function skipUnlessBin(t: { skip: (m: string) => void }): boolean {
  if (ESPRUINO_BIN && existsSync(ESPRUINO_BIN)) return false;
  const reason = ESPRUINO_BIN ? `ESPRUINO_BIN=${ESPRUINO_BIN} does not exist` : 'ESPRUINO_BIN is not set (path to an Espruino Linux build)';
  console.log(`# skipped: ${reason}`);
  t.skip(reason);
  return true;
}

