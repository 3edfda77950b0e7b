// `cta build`: bundle the firmware for one board (or all) and check the bundle
// against the Espruino subset. Exit 1 when a bundle breaks the subset.
import { existsSync, statSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { parseArgs, UsageError } from '../args.ts';
import { listBoards, loadBoard } from './boards.ts';
import { buildFirmware, DEFAULT_ENTRY, DEFAULT_OUT_DIR } from './build.ts';
import { formatViolations } from './subset-check.ts';
import { formatFit, formatRam, storageFit, typicalConfig } from './capacity.ts';

export const help = `usage: cta build [--board B | --all] [--entry firmware/main.ts] [--out dist/firmware] [--no-minify]

Bundles the firmware (esbuild: IIFE, es2015, minified, BOARD constant from
board-configs/<board>.json; when minified, the IIFE's body is then moved to the
global scope with its names renamed to \$a, \$b, ...: names starting with \$ are the
firmware's) into <out>/<board>.js, checks the bundle against the
Espruino subset (docs/design/ESPRUINO.md), and writes the stored image
<out>/<board>.img (the bundle pretokenised as EspruinoTools does for code saved to
flash: what cta flash writes to Storage ".bootcde"). Prints, per board, the image,
a typical configuration and what is left of the board's Storage (board-configs
"storage"). Fails (exit 1) on a subset violation or when image plus a typical
configuration do not fit the board's Storage; a board that fits but leaves less
than its keepFree (the user's share: 8 KB; 7 KB on the Puck.js, see its board config)
is reported as missing its target.

  --board B      board config name (default: emulator); boards: ${listBoards().join(', ')}
  --all          build every board
  --entry FILE   entry module (default ${DEFAULT_ENTRY}); other entries are written as <board>-<name>.js
  --out DIR      output directory (default ${DEFAULT_OUT_DIR} in the repository)
  --no-minify    readable output (for debugging on the interpreter)
  --long-errors  keep the full texts of protocol/crypto error messages (default:
                 short codes, mapped back in <out>/<board>.errors.json)
  --report       print each module's bytes in the bundle (esbuild metafile)`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    board: { type: 'string' },
    all: { type: 'boolean' },
    entry: { type: 'string' },
    out: { type: 'string' },
    'no-minify': { type: 'boolean' },
    'long-errors': { type: 'boolean' },
    report: { type: 'boolean' },
  });
  const board1 = values.board as string | undefined;
  if (values.all && board1) throw new UsageError('give either --board or --all, not both');
  const boards = values.all ? listBoards() : [board1 ?? 'emulator'];
  for (const b of boards) loadBoard(b); // unknown board -> UsageError before any work
  // Paths given on the command line are relative to the current directory.
  const entry = values.entry === undefined ? undefined : resolve(values.entry as string);
  if (entry !== undefined && !(existsSync(entry) && statSync(entry).isFile())) throw new UsageError(`--entry ${values.entry}: no such file`);
  const outDir = values.out === undefined ? undefined : resolve(values.out as string);
  if (outDir !== undefined && existsSync(outDir) && !statSync(outDir).isDirectory()) throw new UsageError(`--out ${values.out} is a file, not a directory`);
  let failed = 0;
  for (const board of boards) {
    const r = await buildFirmware({ board, entry, outDir, minify: !values['no-minify'], shortErrors: !values['long-errors'] });
    const rel = relative(process.cwd(), r.path) || r.path;
    const kb = (r.bytes / 1024).toFixed(1);
    if (r.violations.length) {
      failed++;
      console.error(`${board}: ${rel} ${r.bytes} bytes (${kb} KB): ${r.violations.length} Espruino subset violation(s)`);
      console.error(formatViolations(r.violations, rel));
    } else {
      console.log(`${board}: ${rel} ${r.bytes} bytes (${kb} KB), subset check passed`);
    }
    if (entry === undefined) {
      const fit = storageFit(loadBoard(board), r.imageBytes, typicalConfig(loadBoard(board)).length);
      const line = `${board}: ${relative(process.cwd(), r.imagePath) || r.imagePath} ${formatFit(fit)}`;
      if (fit.fits) console.log(line);
      else {
        failed++;
        console.error(line);
      }
      const ram = formatRam(loadBoard(board));
      if (ram) console.log(`${board}: ${ram}`);
    }
    if (values.report) {
      for (const m of r.modules) console.log(`  ${String(m.bytes).padStart(7)}  ${(m.bytes / r.bytes * 100).toFixed(1).padStart(5)}%  ${m.path}`);
    }
  }
  return failed ? 1 : 0;
}
