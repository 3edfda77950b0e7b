// Whether a firmware bundle needs rebuilding before it is run (cta demo, cta emu).
import fs from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './build.ts';

/** The bundle is missing, or older than a firmware source or the board's config. */
export function bundleStale(bundle: string, board: string): boolean {
  let built: number;
  try {
    built = fs.statSync(bundle).mtimeMs;
  } catch {
    return true;
  }
  const newer = (dir: string): boolean => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, ent.name);
      if (ent.isDirectory() ? newer(p) : ent.name.endsWith('.ts') && fs.statSync(p).mtimeMs > built) return true;
    }
    return false;
  };
  const cfg = join(REPO_ROOT, 'board-configs', `${board}.json`);
  return newer(join(REPO_ROOT, 'firmware')) || (fs.existsSync(cfg) && fs.statSync(cfg).mtimeMs > built);
}
