// Does a board's firmware fit? Storage capacity is a board fact (board-configs/<board>.json
// "storage", from its Espruino board definition's saved_code); what goes there is the
// stored image (build.ts, image.ts), the configuration `cta provision` writes, and a
// 32-byte header per file. `cta build` prints this and refuses an image that cannot
// fit; the footprint test and the bench hold every board to storage.bytes - keepFree.
import type { BoardConfig } from './boards.ts';
import { STORAGE_FILE_HEADER } from './image.ts';
import { makeConfig } from '../provision/config.ts';

/** A configuration such as `cta provision` writes for this board: one SC, two keys (AES-256 and AES-128, as `cta kdc add` makes), the board's transport. */
export function typicalConfig(board: BoardConfig): Uint8Array {
  const key = (etype: number, n: number) => ({
    principal: { realm: 'EXAMPLE.NET', components: ['cta', 'cta1.example.net'], nameType: 1 },
    timestamp: 0,
    kvno: 1,
    etype,
    key: new Uint8Array(n).fill(0x5a),
  });
  const udp = !!board.transports.udp;
  return makeConfig({
    keytab: [key(18, 32), key(17, 16)],
    principal: 'cta/cta1.example.net',
    scs: [udp ? { principal: 'sc/sc1.example.net@EXAMPLE.NET', address: '192.0.2.10', port: 1293 } : { principal: 'sc/sc1.example.net@EXAMPLE.NET' }],
    kdc: { address: '192.0.2.1', port: 88 },
    transport: udp ? 'udp' : 'serial',
    wifi: board.transports.wifi ? { ssid: 'Lab network', password: 'correct horse' } : undefined,
    board: board,
  });
}

export interface Fit {
  board: string;
  /** Storage for files on the board. */
  capacity: number;
  /** capacity - keepFree: what image + config may use. */
  target: number;
  imageBytes: number;
  configBytes: number;
  /** image + config + one header each. */
  stored: number;
  /** capacity - stored (negative: does not fit). */
  left: number;
  fits: boolean;
  meetsTarget: boolean;
}

export function storageFit(board: BoardConfig, imageBytes: number, configBytes: number): Fit {
  const capacity = board.storage.bytes;
  const target = capacity - board.storage.keepFree;
  const stored = imageBytes + STORAGE_FILE_HEADER + configBytes + STORAGE_FILE_HEADER;
  return { board: board.board, capacity, target, imageBytes, configBytes, stored, left: capacity - stored, fits: stored <= capacity, meetsTarget: stored <= target };
}

/** One line for `cta build` and the bench. */
export function formatFit(f: Fit): string {
  const verdict = !f.fits
    ? `DOES NOT FIT: ${-f.left} bytes over the board's Storage`
    : f.meetsTarget
      ? `fits, ${f.left} bytes left (target: ${f.capacity - f.target} left)`
      : `fits, but only ${f.left} bytes left: MISSES the target of ${f.capacity - f.target} left by ${f.stored - f.target} bytes`;
  return `image ${f.imageBytes} B + config ${f.configBytes} B + 2 headers = ${f.stored} B of ${f.capacity} B Storage: ${verdict}`;
}

/**
 * One line on the board's RAM for `cta build`, from board-configs ramMeasured (null where
 * nothing was measured): the figures against the budget, and whether an exchange fits at all.
 */
export function formatRam(board: BoardConfig): string | null {
  const m = board.ramMeasured;
  if (!m) return null;
  const b = board.ramBudget;
  const need = Math.max(m.peak, m.peakFirst);
  const spare = board.variables - need;
  const verdict =
    spare < 0
      ? `DOES NOT FIT: an exchange needs about ${need} of the board's ${board.variables}, so exchanges run out of memory`
      : m.boot > b.boot || need > b.peak
        ? `fits the board's ${board.variables} (about ${spare} to spare at the peak${spare < RAM_TIGHT ? ': tight' : ''}), but MISSES the budget (boot ${b.boot}, peak ${b.peak})`
        : `within the budget (boot ${b.boot}, peak ${b.peak} of ${board.variables})`;
  return `RAM, measured: ${m.boot} variables after boot, ${m.peak} at an exchange's peak, ${m.peakFirst} in the first exchange: ${verdict}`;
}

/**
 * Fewer variables than this to spare at an exchange's peak is tight: the figures
 * are measured on a Linux build (some estimated by ratio), and a buffer the crypto needs
 * must be contiguous, so a few dozen free variables may not hold it.
 */
export const RAM_TIGHT = 150;

/**
 * The warning `cta flash` prints before writing an image whose exchanges cannot fit the
 * board's RAM, or fit with little to spare (null when they fit with room, or nothing was measured).
 */
export function ramWarning(board: BoardConfig): string | null {
  const m = board.ramMeasured;
  if (!m) return null;
  const need = Math.max(m.peak, m.peakFirst);
  const spare = board.variables - need;
  const measured = `a ${board.name} has ${board.variables} variables and the agent was measured to need about ${need} at an exchange's peak (board-configs/${board.board}.json ramMeasured)`;
  if (spare < 0) return `warning: ${measured}: it boots and answers its console, but key exchanges run out of memory`;
  if (spare < RAM_TIGHT) return `warning: ${measured}, about ${spare} to spare: code of your own loaded alongside the agent can make key exchanges run out of memory`;
  return null;
}
