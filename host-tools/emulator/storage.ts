// The Storage stand-in: require("Storage") as files in storageDir, one per Storage file,
// with the board's capacity and 32-byte file headers counted as on the board. Storage is
// the board's flash and holds key material ("cta.cfg"), so the folder is kept 0700 and
// every file 0600.
import fs from 'node:fs';
import { join } from 'node:path';
import { STORAGE_FILE_HEADER } from '../build/image.ts';
import { bytesOf, latin1 } from './bytes.ts';
import type { EmulatorContext } from './types.ts';

const STORAGE_NAME_MAX = 28;

/**
 * Writes a Storage file: mode 0600 (Storage holds "cta.cfg", the CTA's long-term keys),
 * set on the open descriptor before any byte is written, also when the file existed.
 */
function writeStorageFile(f: string, data: Uint8Array): void {
  const fd = fs.openSync(f, 'w', 0o600);
  try {
    fs.fchmodSync(fd, 0o600);
    fs.writeFileSync(fd, data);
  } finally {
    fs.closeSync(fd);
  }
}

/** The Storage directory: created 0700, and made 0700 if it exists (it is the board's flash: key material). */
export function privateStorageDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.chmodSync(dir, 0o700);
}

/** Storage file name -> a safe, reversible file name in storageDir. */
function storageFile(dir: string, name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > STORAGE_NAME_MAX) {
    throw new Error(`Storage: file name must be 1-${STORAGE_NAME_MAX} characters, got ${JSON.stringify(name)}`);
  }
  return join(dir, encodeURIComponent(name).replace(/\./g, '%2E').replace(/\*/g, '%2A'));
}

/** require("Storage") of one emulator: its files live in dir (already made private). */
export function makeStorageModule(ctx: EmulatorContext, dir: string): any {
  const { G, board, toCtxAB } = ctx;
  const storageRead = (name: string): Buffer | undefined => {
    const f = storageFile(dir, name);
    return fs.existsSync(f) ? fs.readFileSync(f) : undefined;
  };
  const Storage: any = new G.Object();
  Object.assign(Storage, {
    read(name: string, offset?: number, length?: number) {
      const b = storageRead(name);
      if (!b) return undefined;
      const o = offset ?? 0;
      const l = length && length > 0 ? length : b.length - o;
      return latin1(b.subarray(o, o + l));
    },
    readArrayBuffer(name: string) {
      const b = storageRead(name);
      return b ? toCtxAB(b) : undefined;
    },
    readJSON(name: string, noExceptions?: boolean) {
      const b = storageRead(name);
      if (!b) return undefined;
      try {
        return G.JSON.parse(b.toString('latin1'));
      } catch (e) {
        if (noExceptions) return undefined;
        throw e;
      }
    },
    write(name: string, data: unknown, offset?: number, size?: number) {
      const f = storageFile(dir, name);
      const isObj = data !== null && typeof data === 'object' && !Array.isArray(data) && !ArrayBuffer.isView(data) && Object.prototype.toString.call(data) !== '[object ArrayBuffer]';
      const bytes = Buffer.from(isObj ? Buffer.from(G.JSON.stringify(data), 'latin1') : bytesOf(data));
      if (isObj || !offset) {
        const total = size && size > bytes.length ? size : bytes.length;
        if (total === 0) throw new G.Error("Can't create zero length file");
        // As on the board, a file that does not fit the board's Storage is not created.
        const old = fs.existsSync(f) ? fs.statSync(f).size + STORAGE_FILE_HEADER : 0;
        if (total + STORAGE_FILE_HEADER > Storage.getFree() + old) throw new G.Error('Unable to find or create file');
        const out = Buffer.alloc(total, 0xff);
        bytes.copy(out, 0);
        writeStorageFile(f, out);
        return true;
      }
      if (!fs.existsSync(f)) return false;
      const cur = fs.readFileSync(f);
      if (offset + bytes.length > cur.length) return false;
      bytes.copy(cur, offset);
      writeStorageFile(f, cur);
      return true;
    },
    writeJSON(name: string, data: unknown) {
      return Storage.write(name, G.JSON.stringify(data));
    },
    erase(name: string) {
      const f = storageFile(dir, name);
      if (fs.existsSync(f)) fs.unlinkSync(f);
    },
    eraseAll() {
      for (const f of fs.readdirSync(dir)) fs.unlinkSync(join(dir, f));
    },
    list(re?: RegExp) {
      const out = new G.Array();
      for (const n of fs.readdirSync(dir).map((f) => decodeURIComponent(f)).sort()) if (!re || re.test(n)) out.push(n);
      return out;
    },
    // The board's Storage capacity (board-configs "storage"), less each file and its 32-byte header.
    getFree() {
      let used = 0;
      for (const f of fs.readdirSync(dir)) used += fs.statSync(join(dir, f)).size + STORAGE_FILE_HEADER;
      return Math.max(0, board.storage.bytes - used);
    },
    getStats() {
      const files = fs.readdirSync(dir);
      let fileBytes = 0;
      for (const f of files) fileBytes += fs.statSync(join(dir, f)).size + STORAGE_FILE_HEADER;
      const o = new G.Object();
      Object.assign(o, { totalBytes: board.storage.bytes, freeBytes: Math.max(0, board.storage.bytes - fileBytes), fileBytes, fileCount: files.length, trashBytes: 0, trashCount: 0 });
      return o;
    },
    compact() {},
    open() {
      throw new G.Error('StorageFile (Storage.open) is not emulated');
    },
  });
  return Storage;
}

/** Storage files written before the bundle starts (EmulatorOptions.files). */
export function writeStorageFiles(dir: string, files: { [name: string]: Uint8Array }): void {
  for (const [name, data] of Object.entries(files)) writeStorageFile(storageFile(dir, name), data);
}
