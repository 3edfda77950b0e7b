// The embedded KDC's database: principals and their long-term keys in SQLite.
//
// Keys are never stored in clear. A random AES-256 master key lives in a stash
// file beside the database (`<db>.stash`, or a path of the caller's choosing),
// written owner-only (0600) in MIT's stash layout (a keytab holding K/M@REALM).
// Every principal key row holds RFC 3961 encrypt(master, usage 1024,
// record) where the record binds the key to its principal, enctype and kvno,
// so a row copied onto another principal fails to open. A check value
// encrypted under the master key lets `open` tell a wrong stash from a
// damaged database.
//
// Nothing here prints, logs or returns key bytes except `getKeys`, which the
// AS exchange needs, and `exportKeytab`, which writes them to an owner-only file.

import { chmodSync, closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync, writeSync } from 'node:fs';
import Database from 'better-sqlite3';
import { UsageError } from '../args.ts';
import { concat, ctEqual, fromAscii, fromUtf8, readU16, readU32, toAscii, u32, wipe } from '../../firmware/proto/bytes.ts';
import { encodeKeytab, parseKeytab, type KeytabEntry } from '../../firmware/proto/keytab.ts';
import { decrypt, encrypt, randomKey, stringToKey, supportedEtypes } from '../../firmware/proto/crypto/index.ts';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import { nodeBackend } from '../crypto/node.ts';
import { defaultSalt, formatPrincipal, parsePrincipal, type Principal } from '../principal.ts';

/** Key usage for database records under the master key (RFC 4120 leaves 1024-2047 to applications). */
export const DB_KEY_USAGE = 1024;
/** The master key's enctype: aes256-cts-hmac-sha1-96. */
export const MASTER_ETYPE = 18;
const SCHEMA_VERSION = 1;
const CHECK_TEXT = 'cta-kdc master key check v1';
/** Decrypted principals kept in memory between requests (the cache is dropped when full). */
const KEY_CACHE_MAX = 4096;
/** KRB5_NT_PRINCIPAL: the name type written to keytabs. */
const NT_PRINCIPAL = 1;

export const DEFAULT_MAX_LIFE_SEC = 10 * 3600;
export const DEFAULT_MAX_RENEW_SEC = 7 * 24 * 3600;

/** MIT enctype names (and a few MIT aliases) to numbers. */
export const ENCTYPE_BY_NAME: { [name: string]: number } = {
  'aes128-cts-hmac-sha1-96': 17,
  'aes128-cts': 17,
  'aes128-sha1': 17,
  'aes256-cts-hmac-sha1-96': 18,
  'aes256-cts': 18,
  'aes256-sha1': 18,
  'aes128-cts-hmac-sha256-128': 19,
  'aes128-sha2': 19,
  'aes256-cts-hmac-sha384-192': 20,
  'aes256-sha2': 20,
};
export const ENCTYPE_NAME: { [etype: number]: string } = {
  17: 'aes128-cts-hmac-sha1-96',
  18: 'aes256-cts-hmac-sha1-96',
  19: 'aes128-cts-hmac-sha256-128',
  20: 'aes256-cts-hmac-sha384-192',
};

export function enctypeName(etype: number): string {
  return ENCTYPE_NAME[etype] ?? `etype-${etype}`;
}

/** Enctypes this KDC can hold keys for, with the given backend. */
export function kdcEtypes(backend: CryptoBackend = nodeBackend): number[] {
  const sup = supportedEtypes(backend);
  return [18, 17, 19, 20].filter((e) => sup.indexOf(e) >= 0);
}

/** "aes256-cts-hmac-sha1-96,17,..." to enctype numbers; UsageError on an unknown or unsupported one. */
export function parseEnctypes(list: string, backend: CryptoBackend = nodeBackend): number[] {
  const ok = kdcEtypes(backend);
  const out: number[] = [];
  for (const raw of list.split(/[\s,]+/)) {
    const s = raw.trim().toLowerCase();
    if (!s) continue;
    const n = /^\d+$/.test(s) ? Number(s) : ENCTYPE_BY_NAME[s];
    if (n === undefined || ok.indexOf(n) < 0) {
      throw new UsageError(`unknown enctype '${raw}' (supported: ${ok.map((e) => `${ENCTYPE_NAME[e]} (${e})`).join(', ')})`);
    }
    if (out.indexOf(n) < 0) out.push(n);
  }
  if (out.length === 0) throw new UsageError('no enctypes given');
  return out;
}

/** A database or stash problem the user can act on: one line, no key material. */
export class KdcDbError extends UsageError {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export type PrincipalInfo = {
  /** Canonical "a/b@REALM". */
  name: string;
  components: string[];
  realm: string;
  kvno: number;
  /** Enctypes the principal has keys for, in the database's preference order. */
  enctypes: number[];
  /** The client must pre-authenticate (PA-ENC-TIMESTAMP) before the KDC answers. */
  requiresPreauth: boolean;
  maxLifeSec: number;
  maxRenewSec: number;
  /** Seconds since 1970. */
  created: number;
};

export type PrincipalKey = {
  etype: number;
  kvno: number;
  /** The salt the key was made with (MIT default: realm + components). */
  salt: Uint8Array;
  /** RFC 3962 s2kparams (iteration count) if not the default; null otherwise. */
  s2kparams: Uint8Array | null;
  key: Uint8Array;
};

export type PrincipalEntry = PrincipalInfo & { keys: PrincipalKey[] };

export type AddPrincipalOptions = {
  /** Default: the database's default enctypes (18, 17, 19, and 20 where supported). */
  enctypes?: number[];
  /** Derive keys from this password (string-to-key with the salt); otherwise random keys. */
  password?: string;
  randkey?: boolean;
  /** Salt string; default MIT's realm + components. */
  salt?: string;
  requiresPreauth?: boolean;
  maxLifeSec?: number;
  maxRenewSec?: number;
  kvno?: number;
};

export type KdcDatabaseOptions = {
  /** Stash file path; default `<db>.stash`. */
  stashPath?: string;
  /** Crypto backend; default Node's (fastest on the host). */
  backend?: CryptoBackend;
};

export type KdcInitOptions = KdcDatabaseOptions & {
  /** Default enctypes for new principals. */
  enctypes?: number[];
  maxLifeSec?: number;
  maxRenewSec?: number;
  /** Create krbtgt/REALM@REALM (default true), so `kinit` works against this KDC. */
  krbtgt?: boolean;
  /** Clock (ms since 1970), for tests. */
  now?: () => number;
};

const SCHEMA = `
CREATE TABLE meta (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE principals (
  name TEXT PRIMARY KEY,
  components TEXT NOT NULL,
  kvno INTEGER NOT NULL,
  requires_preauth INTEGER NOT NULL,
  max_life INTEGER NOT NULL,
  max_renew INTEGER NOT NULL,
  created INTEGER NOT NULL
);
CREATE TABLE keys (
  principal TEXT NOT NULL REFERENCES principals(name) ON DELETE CASCADE,
  etype INTEGER NOT NULL,
  kvno INTEGER NOT NULL,
  pref INTEGER NOT NULL,
  salt BLOB NOT NULL,
  s2kparams BLOB,
  key_enc BLOB NOT NULL,
  PRIMARY KEY (principal, etype, kvno)
);
`;

type PrincipalRow = { name: string; components: string; kvno: number; requires_preauth: number; max_life: number; max_renew: number; created: number };
type KeyRow = { etype: number; kvno: number; salt: Buffer; s2kparams: Buffer | null; key_enc: Buffer };

function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength).slice();
}

// The record encrypted under the master key: etype u16, kvno u32, key length u16,
// key, then the principal's canonical name (UTF-8). Binding the name, etype and
// kvno means a row moved to another principal or slot does not open.
function sealRecord(name: string, etype: number, kvno: number, key: Uint8Array): Uint8Array {
  const head = new Uint8Array(8);
  head[0] = (etype >> 8) & 0xff;
  head[1] = etype & 0xff;
  head.set(u32(kvno), 2);
  head[6] = (key.length >> 8) & 0xff;
  head[7] = key.length & 0xff;
  return concat([head, key, fromUtf8(name)]);
}

function openRecord(rec: Uint8Array, name: string, etype: number, kvno: number): Uint8Array {
  if (rec.length < 8) throw new KdcDbError('CORRUPT', `database record for ${name} is damaged`);
  const klen = readU16(rec, 6);
  if (readU16(rec, 0) !== etype || readU32(rec, 2) !== kvno || 8 + klen > rec.length || !ctEqual(rec.subarray(8 + klen), fromUtf8(name))) {
    throw new KdcDbError('CORRUPT', `database record for ${name} (enctype ${etype}, kvno ${kvno}) does not belong to it`);
  }
  return rec.slice(8, 8 + klen);
}

function defaultStash(dbPath: string): string {
  return dbPath + '.stash';
}

function readStash(stashPath: string, realm: string | null): Uint8Array {
  let st;
  try {
    st = statSync(stashPath);
  } catch {
    throw new KdcDbError('NO_STASH', `stash file ${stashPath} not found (give --stash PATH, or run 'cta kdc init')`);
  }
  if (!st.isFile()) throw new KdcDbError('BAD_STASH', `stash ${stashPath} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new KdcDbError(
      'STASH_PERMS',
      `stash ${stashPath} is readable or writable by group/others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); chmod 600 it`,
    );
  }
  if (typeof process.getuid === 'function' && st.uid !== process.getuid() && process.getuid() !== 0) {
    throw new KdcDbError('STASH_PERMS', `stash ${stashPath} is owned by another user`);
  }
  let entries: KeytabEntry[];
  try {
    entries = parseKeytab(new Uint8Array(readFileSync(stashPath)));
  } catch {
    throw new KdcDbError('BAD_STASH', `stash ${stashPath} is not a valid stash file`);
  }
  const e = entries.find(
    (x) => x.etype === MASTER_ETYPE && x.principal.components.length === 2 && x.principal.components[0] === 'K' && x.principal.components[1] === 'M' && (realm === null || x.principal.realm === realm),
  );
  if (!e) throw new KdcDbError('BAD_STASH', `stash ${stashPath} holds no master key for this realm`);
  return e.key;
}

function writeStash(stashPath: string, realm: string, mkey: Uint8Array, now: number): void {
  const bytes = encodeKeytab([
    { principal: { realm, components: ['K', 'M'], nameType: NT_PRINCIPAL }, timestamp: Math.floor(now / 1000) >>> 0, kvno: 1, etype: MASTER_ETYPE, key: mkey },
  ]);
  writeOwnerOnly(stashPath, bytes);
}

/** Creates `path` (must not exist) with mode 0600 and writes `bytes`. */
function writeOwnerOnly(path: string, bytes: Uint8Array, overwrite = false): void {
  let fd: number;
  try {
    fd = openSync(path, overwrite ? 'w' : 'wx', 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new KdcDbError('IO', `cannot create ${path}: ${code === 'ENOENT' ? 'no such directory' : code === 'EACCES' ? 'permission denied' : code === 'EEXIST' ? 'file exists' : code}`);
  }
  try {
    writeSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, 0o600);
}

export class KdcDatabase {
  readonly path: string;
  readonly stashPath: string;
  readonly realm: string;
  readonly backend: CryptoBackend;
  /** Default enctypes for new principals (preference order). */
  readonly defaultEnctypes: number[];
  readonly defaultMaxLifeSec: number;
  readonly defaultMaxRenewSec: number;
  private sql: Database.Database;
  private mkey: Uint8Array;
  private now: () => number;
  private stmts: {
    getP: Database.Statement;
    getKeys: Database.Statement;
    listP: Database.Statement;
    listEt: Database.Statement;
    dataVersion: Database.Statement;
  };
  private cache = new Map<string, PrincipalEntry>();
  private cacheVersion = -1;

  private constructor(sql: Database.Database, path: string, stashPath: string, mkey: Uint8Array, backend: CryptoBackend, now: () => number) {
    this.sql = sql;
    this.path = path;
    this.stashPath = stashPath;
    this.mkey = mkey;
    this.backend = backend;
    this.now = now;
    const meta = (k: string): string | null => {
      const r = sql.prepare('SELECT v FROM meta WHERE k = ?').get(k) as { v: Buffer | string } | undefined;
      return r === undefined ? null : typeof r.v === 'string' ? r.v : toAscii(u8(r.v));
    };
    const realm = meta('realm');
    if (!realm) throw new KdcDbError('CORRUPT', `${path} is not a cta KDC database (no realm)`);
    this.realm = realm;
    this.defaultEnctypes = (meta('enctypes') ?? '18,17,19').split(',').map(Number);
    this.defaultMaxLifeSec = Number(meta('max_life') ?? DEFAULT_MAX_LIFE_SEC);
    this.defaultMaxRenewSec = Number(meta('max_renew') ?? DEFAULT_MAX_RENEW_SEC);
    this.stmts = {
      getP: sql.prepare('SELECT * FROM principals WHERE name = ?'),
      getKeys: sql.prepare('SELECT etype, kvno, salt, s2kparams, key_enc FROM keys WHERE principal = ? AND kvno = ? ORDER BY pref'),
      listP: sql.prepare('SELECT * FROM principals ORDER BY name'),
      listEt: sql.prepare('SELECT etype FROM keys WHERE principal = ? AND kvno = ? ORDER BY pref'),
      dataVersion: sql.prepare('PRAGMA data_version'),
    };
  }

  /**
   * Creates a new database at `dbPath` for `realm`, a fresh master key in the
   * stash (mode 0600), and krbtgt/REALM@REALM. Refuses an existing database or stash.
   */
  static init(dbPath: string, realm: string, opts: KdcInitOptions = {}): KdcDatabase {
    const backend = opts.backend ?? nodeBackend;
    const now = opts.now ?? Date.now;
    const stashPath = opts.stashPath ?? defaultStash(dbPath);
    if (!/^[\x21-\x7e]+$/.test(realm) || /[@/\\]/.test(realm)) throw new KdcDbError('BAD_REALM', `bad realm '${realm}'`);
    if (existsSync(dbPath) && statSync(dbPath).size > 0) {
      let existing: string | null = null;
      try {
        const s = new Database(dbPath, { readonly: true, fileMustExist: true });
        try {
          const r = s.prepare("SELECT v FROM meta WHERE k = 'realm'").get() as { v: Buffer | string } | undefined;
          if (r) existing = typeof r.v === 'string' ? r.v : r.v.toString();
        } finally {
          s.close();
        }
      } catch {
        /* not ours */
      }
      throw new KdcDbError('EXISTS', existing ? `${dbPath} is already initialised for realm ${existing}` : `${dbPath} already exists and is not an empty file`);
    }
    if (existsSync(stashPath)) throw new KdcDbError('EXISTS', `stash ${stashPath} already exists (remove it or give another --stash)`);
    const enctypes = opts.enctypes ?? kdcEtypes(backend);
    const sup = supportedEtypes(backend);
    for (const e of enctypes) if (sup.indexOf(e) < 0) throw new KdcDbError('BAD_ENCTYPE', `enctype ${e} is not supported`);
    if (sup.indexOf(MASTER_ETYPE) < 0) throw new KdcDbError('BAD_ENCTYPE', 'the crypto backend lacks aes256-cts-hmac-sha1-96 for the master key');

    // The database file is created owner-only too: its keys are encrypted, but its
    // principal list is nobody else's business.
    if (!existsSync(dbPath)) writeOwnerOnly(dbPath, new Uint8Array(0));
    const mkey = randomKey(backend, MASTER_ETYPE);
    writeStash(stashPath, realm, mkey, now());
    const sql = new Database(dbPath);
    try {
      sql.pragma('foreign_keys = ON');
      sql.exec(SCHEMA);
      const put = sql.prepare('INSERT INTO meta (k, v) VALUES (?, ?)');
      sql.transaction(() => {
        put.run('schema', String(SCHEMA_VERSION));
        put.run('realm', realm);
        put.run('enctypes', enctypes.join(','));
        put.run('max_life', String(opts.maxLifeSec ?? DEFAULT_MAX_LIFE_SEC));
        put.run('max_renew', String(opts.maxRenewSec ?? DEFAULT_MAX_RENEW_SEC));
        put.run('master_etype', String(MASTER_ETYPE));
        put.run('master_check', Buffer.from(encrypt(backend, MASTER_ETYPE, mkey, DB_KEY_USAGE, fromAscii(CHECK_TEXT + realm))));
      })();
    } catch (e) {
      sql.close();
      throw e;
    }
    const db = new KdcDatabase(sql, dbPath, stashPath, mkey, backend, now);
    if (opts.krbtgt !== false) db.addPrincipal(`krbtgt/${realm}@${realm}`, { randkey: true, requiresPreauth: false });
    return db;
  }

  /** Opens an existing database; refuses a missing, group/other-accessible or wrong stash. */
  static open(dbPath: string, opts: KdcDatabaseOptions & { now?: () => number; readonly?: boolean } = {}): KdcDatabase {
    const backend = opts.backend ?? nodeBackend;
    const stashPath = opts.stashPath ?? defaultStash(dbPath);
    if (!existsSync(dbPath)) throw new KdcDbError('NO_DB', `database ${dbPath} not found (run 'cta kdc init --realm REALM --db ${dbPath}' first)`);
    let sql: Database.Database;
    try {
      sql = new Database(dbPath, { fileMustExist: true, readonly: opts.readonly === true });
      sql.pragma('foreign_keys = ON');
      sql.prepare("SELECT v FROM meta WHERE k = 'realm'").get();
    } catch {
      throw new KdcDbError('CORRUPT', `${dbPath} is not a cta KDC database`);
    }
    try {
      const realmRow = sql.prepare("SELECT v FROM meta WHERE k = 'realm'").get() as { v: Buffer | string } | undefined;
      const checkRow = sql.prepare("SELECT v FROM meta WHERE k = 'master_check'").get() as { v: Buffer } | undefined;
      if (!realmRow || !checkRow) throw new KdcDbError('CORRUPT', `${dbPath} is not a cta KDC database`);
      const realm = typeof realmRow.v === 'string' ? realmRow.v : realmRow.v.toString();
      const mkey = readStash(stashPath, realm);
      let check: Uint8Array;
      try {
        check = decrypt(backend, MASTER_ETYPE, mkey, DB_KEY_USAGE, u8(checkRow.v));
      } catch {
        throw new KdcDbError('BAD_MASTER_KEY', `stash ${stashPath} does not hold this database's master key`);
      }
      if (!ctEqual(check, fromAscii(CHECK_TEXT + realm))) throw new KdcDbError('BAD_MASTER_KEY', `stash ${stashPath} does not hold this database's master key`);
      return new KdcDatabase(sql, dbPath, stashPath, mkey, backend, opts.now ?? Date.now);
    } catch (e) {
      sql.close();
      throw e;
    }
  }

  /** Parses a name (realm optional: this database's) into its canonical form. UsageError on bad syntax. */
  canonicalName(name: string): { principal: Principal; name: string } {
    const p = parsePrincipal(name, this.realm);
    return { principal: p, name: formatPrincipal(p) };
  }

  /**
   * Adds a principal with keys for each enctype (random by default, or from a
   * password with the salt). Principals must be in this database's realm.
   */
  addPrincipal(name: string, opts: AddPrincipalOptions = {}): PrincipalInfo {
    const { principal, name: canon } = this.canonicalName(name);
    if (principal.realm !== this.realm) throw new KdcDbError('BAD_REALM', `principal ${canon} is not in realm ${this.realm}`);
    if (opts.password !== undefined && opts.randkey) throw new UsageError('give either a password or randkey, not both');
    if (this.stmts.getP.get(canon)) throw new KdcDbError('EXISTS', `principal ${canon} already exists`);
    const enctypes = opts.enctypes ?? this.defaultEnctypes;
    if (enctypes.length === 0) throw new KdcDbError('BAD_ENCTYPE', 'no enctypes given');
    const sup = supportedEtypes(this.backend);
    for (const e of enctypes) if (sup.indexOf(e) < 0) throw new KdcDbError('BAD_ENCTYPE', `unknown enctype ${e}`);
    const kvno = opts.kvno ?? 1;
    const saltStr = opts.salt ?? defaultSalt(principal);
    const salt = fromUtf8(saltStr);
    const created = Math.floor(this.now() / 1000);
    const rows: { etype: number; pref: number; key_enc: Buffer }[] = [];
    for (let i = 0; i < enctypes.length; i++) {
      const etype = enctypes[i];
      const key = opts.password !== undefined ? stringToKey(this.backend, etype, fromUtf8(opts.password), salt, null) : randomKey(this.backend, etype);
      const rec = sealRecord(canon, etype, kvno, key);
      rows.push({ etype, pref: i, key_enc: Buffer.from(encrypt(this.backend, MASTER_ETYPE, this.mkey, DB_KEY_USAGE, rec)) });
      wipe(rec);
      wipe(key);
    }
    const insP = this.sql.prepare(
      'INSERT INTO principals (name, components, kvno, requires_preauth, max_life, max_renew, created) VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    const insK = this.sql.prepare('INSERT INTO keys (principal, etype, kvno, pref, salt, s2kparams, key_enc) VALUES (?, ?, ?, ?, ?, NULL, ?)');
    this.sql.transaction(() => {
      insP.run(
        canon,
        JSON.stringify(principal.components),
        kvno,
        opts.requiresPreauth === false ? 0 : 1,
        opts.maxLifeSec ?? this.defaultMaxLifeSec,
        opts.maxRenewSec ?? this.defaultMaxRenewSec,
        created,
      );
      for (const r of rows) insK.run(canon, r.etype, kvno, r.pref, Buffer.from(salt), r.key_enc);
    })();
    this.clearCache();
    return this.getPrincipal(canon)!;
  }

  private info(row: PrincipalRow, etypes?: number[]): PrincipalInfo {
    const ets = etypes ?? (this.stmts.listEt.all(row.name, row.kvno) as { etype: number }[]).map((r) => r.etype);
    return {
      name: row.name,
      components: JSON.parse(row.components) as string[],
      realm: this.realm,
      kvno: row.kvno,
      enctypes: ets,
      requiresPreauth: row.requires_preauth !== 0,
      maxLifeSec: row.max_life,
      maxRenewSec: row.max_renew,
      created: row.created,
    };
  }

  /** A principal's attributes (no keys), or null. Name: "a/b@REALM" or "a/b" (this realm). */
  getPrincipal(name: string): PrincipalInfo | null {
    let canon: string;
    try {
      canon = this.canonicalName(name).name;
    } catch {
      return null;
    }
    const row = this.stmts.getP.get(canon) as PrincipalRow | undefined;
    return row ? this.info(row) : null;
  }

  listPrincipals(): PrincipalInfo[] {
    return (this.stmts.listP.all() as PrincipalRow[]).map((r) => this.info(r));
  }

  /**
   * The principal with its current keys decrypted (for the AS exchange and keytab
   * export), or null if unknown. The caller must not log the keys.
   */
  getKeys(name: string): PrincipalEntry | null {
    let canon: string;
    try {
      canon = this.canonicalName(name).name;
    } catch {
      return null;
    }
    return this.getKeysCanonical(canon);
  }

  /**
   * As getKeys, for a name already in canonical form (no parsing). Decrypted
   * entries are cached in memory (bounded) and revalidated on every call
   * against SQLite's data_version, so a principal added by another process
   * (`cta kdc add` while `serve` runs) is seen at once. The caller gets its own
   * copies of the keys and may wipe them.
   */
  getKeysCanonical(canon: string): PrincipalEntry | null {
    const dv = (this.stmts.dataVersion.get() as { data_version: number }).data_version;
    if (dv !== this.cacheVersion) {
      this.clearCache();
      this.cacheVersion = dv;
    }
    let e: PrincipalEntry | null | undefined = this.cache.get(canon);
    if (e === undefined) {
      e = this.loadKeys(canon);
      if (this.cache.size >= KEY_CACHE_MAX) this.clearCache();
      if (e) this.cache.set(canon, e);
    }
    if (!e) return null;
    return { ...e, enctypes: e.enctypes.slice(), components: e.components.slice(), keys: e.keys.map((k) => ({ ...k, key: k.key.slice() })) };
  }

  private clearCache(): void {
    for (const e of this.cache.values()) for (const k of e.keys) wipe(k.key);
    this.cache.clear();
  }

  private loadKeys(canon: string): PrincipalEntry | null {
    const row = this.stmts.getP.get(canon) as PrincipalRow | undefined;
    if (!row) return null;
    const keyRows = this.stmts.getKeys.all(canon, row.kvno) as KeyRow[];
    const keys: PrincipalKey[] = [];
    for (const k of keyRows) {
      let rec: Uint8Array;
      try {
        rec = decrypt(this.backend, MASTER_ETYPE, this.mkey, DB_KEY_USAGE, u8(k.key_enc));
      } catch {
        throw new KdcDbError('CORRUPT', `key for ${canon} (enctype ${k.etype}) does not decrypt under the master key`);
      }
      keys.push({ etype: k.etype, kvno: k.kvno, salt: u8(k.salt), s2kparams: k.s2kparams ? u8(k.s2kparams) : null, key: openRecord(rec, canon, k.etype, k.kvno) });
      wipe(rec);
    }
    return { ...this.info(row, keys.map((k) => k.etype)), keys };
  }

  /**
   * Writes the principal's current keys as an MIT keytab at `path` (mode 0600;
   * an existing file is replaced). Returns the number of entries written.
   */
  exportKeytab(name: string, path: string): number {
    const p = this.getKeys(name);
    if (!p) throw new KdcDbError('NOT_FOUND', `principal ${name} not found`);
    const nameType = NT_PRINCIPAL; // as MIT kadmin ktadd writes
    const ts = Math.floor(this.now() / 1000) >>> 0;
    const entries: KeytabEntry[] = p.keys.map((k) => ({
      principal: { realm: p.realm, components: p.components, nameType },
      timestamp: ts,
      kvno: k.kvno,
      etype: k.etype,
      key: k.key,
    }));
    const bytes = encodeKeytab(entries);
    writeOwnerOnly(path, bytes, true);
    wipe(bytes);
    for (const k of p.keys) wipe(k.key);
    return entries.length;
  }

  close(): void {
    if (this.sql.open) this.sql.close();
    this.clearCache();
    wipe(this.mkey);
  }
}
