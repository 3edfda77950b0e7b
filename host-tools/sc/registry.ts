// The SC's CTA registry: durable in SQLite (better-sqlite3), mirrored in memory
// in a compact struct-of-arrays table so the hot path never touches the disk.
//
// SQLite holds principal, address, ports, state and SA *metadata* (SPIs,
// ciphersuite, established/expiry times, last error) -- never key material.
// Writes are queued and flushed in one transaction per event-loop turn
// (setImmediate; or every FLUSH_AT queued writes), so a burst of exchanges costs
// one commit, not one per CTA. The transient states of an exchange (waking,
// replied) live in memory only -- a restart turns them into 'registered' anyway --
// and the wake time rides on the next durable write: one UPDATE per completed
// exchange. get()/list() overlay the in-memory state.
//
// Memory per registered CTA: the principal string, one Map entry, and ~30 bytes
// of typed-array columns (IPv4 addresses are packed into a u32; anything else
// lives in a side map); a registry file's SQLite page cache is bounded (CACHE_KIB).
import Database from 'better-sqlite3';

export const CTA_STATE = { FREE: 0, REGISTERED: 1, WAKING: 2, REPLIED: 3, ESTABLISHED: 4, UNREACHABLE: 5 } as const;
export const STATE_NAMES = ['free', 'registered', 'waking', 'replied', 'established', 'unreachable'];

export type CtaRecord = {
  principal: string;
  address: string;
  port: number;
  signalingPort: number;
  state: string;
  ctaSpi: number | null;
  scSpi: number | null;
  /** e.g. "hmac-sha1-96/aes-128-cbc" (names) or null before the first SA. */
  ciphersuite: string | null;
  /** ms since epoch, or null. */
  establishedAt: number | null;
  expiresAt: number | null;
  lastError: string | null;
  lastWakeAt: number | null;
  updatedAt: number;
};

/** Queued writes that force a flush (one transaction) without waiting for the tick. */
const FLUSH_AT = 2048;
/**
 * How long the outcome of an exchange (SA metadata, state, address) may wait for
 * its transaction, ms: a busy SC then commits hundreds of UPDATEs at once instead
 * of the few of one event-loop turn. Registrations and removals still go at the
 * end of the turn. What a crash can lose in this window is SA metadata the
 * restart replaces anyway (every registered CTA is woken again); get()/list()
 * flush first.
 */
const FLUSH_MS = 50;

/**
 * SQLite page cache of a registry file, KiB. better-sqlite3 builds SQLite with a
 * 16 MB default (-16000), which holds the whole file of 100,000 CTAs (~14 MB) in
 * the SC's memory although nothing on the hot path reads it: the in-memory table
 * does. The writes (one UPDATE by principal per exchange) find the interior
 * b-tree pages here and the leaves in the OS page cache.
 */
const CACHE_KIB = 2048;

export type SaMeta = { ctaSpi: number; scSpi: number; ciphersuite: string; establishedAt: number; expiresAt: number };

/**
 * The registry table, schema 2: WITHOUT ROWID, keyed by principal, so each
 * principal is stored once (schema 1 was a rowid table whose PRIMARY KEY index
 * held every principal a second time, plus an index on expires_at nothing read:
 * the expiry scan runs over the in-memory column). With `--state :memory:` these
 * pages are the database, resident in the SC. `seq` is the registration order
 * that schema 1 took from the rowid: the start-up load, and so the slot order and
 * the paced restart wake, follow it (oldest registration first). `state` is a
 * CTA_STATE code (schema 1 spelled the name out, 10 bytes a row); get() and
 * list() still report names.
 */
const CTAS_COLUMNS = `
  principal TEXT PRIMARY KEY,
  seq INTEGER NOT NULL,
  address TEXT NOT NULL,
  port INTEGER NOT NULL,
  signaling_port INTEGER NOT NULL,
  state INTEGER NOT NULL DEFAULT ${CTA_STATE.REGISTERED},
  cta_spi INTEGER,
  sc_spi INTEGER,
  ciphersuite TEXT,
  established_at INTEGER,
  expires_at INTEGER,
  last_error TEXT,
  last_wake_at INTEGER,
  updated_at INTEGER NOT NULL`;
const SCHEMA_VERSION = 2;
const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ctas (${CTAS_COLUMNS}
) WITHOUT ROWID;
`;
/** Every schema-1 column, copied by the migration (the state name becomes its code). */
const V1_COLUMNS = 'principal, address, port, signaling_port, state, cta_spi, sc_spi, ciphersuite, established_at, expires_at, last_error, last_wake_at, updated_at';

/** A schema-1 state name as its code; anything else loads as registered anyway. */
const STATE_CODE_SQL = `CASE state ${STATE_NAMES.map((n, i) => `WHEN '${n}' THEN ${i}`).join(' ')} ELSE 1 END`;

/**
 * A registry file from before schema 2 (a `ctas` table without `seq`): its rows
 * move into the new table in one transaction, rowid becoming seq (the order the
 * old load used). Idempotent; a crash part-way leaves the old file untouched.
 */
function migrate(db: Database.Database): void {
  const cols = db.prepare(`SELECT name FROM pragma_table_info('ctas')`).pluck().all() as string[];
  if (cols.length === 0 || cols.includes('seq')) return;
  db.transaction(() => {
    db.exec(`DROP TABLE IF EXISTS ctas_v2;
CREATE TABLE ctas_v2 (${CTAS_COLUMNS}
) WITHOUT ROWID;
INSERT INTO ctas_v2 (seq, ${V1_COLUMNS}) SELECT rowid, ${V1_COLUMNS.replace('state', STATE_CODE_SQL)} FROM ctas;
DROP INDEX IF EXISTS ctas_expires;
DROP TABLE ctas;
ALTER TABLE ctas_v2 RENAME TO ctas;`);
  })();
}

function packIPv4(a: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
  if (!m) return -1;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const o = Number(m[i]);
    if (o > 255) return -1;
    v = v * 256 + o;
  }
  // 0.0.0.0 is reserved to mean "not packed".
  return v === 0 ? -1 : v;
}
function unpackIPv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

type Row = {
  principal: string;
  seq: number;
  address: string;
  port: number;
  signaling_port: number;
  state: number;
  cta_spi: number | null;
  sc_spi: number | null;
  ciphersuite: string | null;
  established_at: number | null;
  expires_at: number | null;
  last_error: string | null;
  last_wake_at: number | null;
  updated_at: number;
};

function rowToRecord(r: Row): CtaRecord {
  return {
    principal: r.principal,
    address: r.address,
    port: r.port,
    signalingPort: r.signaling_port,
    state: STATE_NAMES[r.state] ?? 'registered',
    ctaSpi: r.cta_spi,
    scSpi: r.sc_spi,
    ciphersuite: r.ciphersuite,
    establishedAt: r.established_at,
    expiresAt: r.expires_at,
    lastError: r.last_error,
    lastWakeAt: r.last_wake_at,
    updatedAt: r.updated_at,
  };
}

export class Registry {
  private db: Database.Database;
  private index = new Map<string, number>();
  private names: (string | undefined)[] = [];
  private free: number[] = [];
  private cap = 0;
  private used = 0; // high-water slot count
  // Columns (by slot).
  private ip = new Uint32Array(0);
  private ports = new Uint32Array(0); // port << 16 | signaling port
  private st = new Uint8Array(0);
  private ctaSpiCol = new Uint32Array(0);
  private scSpiCol = new Uint32Array(0);
  private expiresCol = new Uint32Array(0); // SA expiry, seconds
  private otherAddr = new Map<number, string>();
  /** Wake times not yet written (slots mid-exchange). */
  private lastWake = new Map<number, number>();
  // Queued SQLite writes.
  private queue: (() => void)[] = [];
  private flushScheduled = false;
  private flushTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** seq of the next new row: registration order, kept across restarts. */
  private nextSeq = 1;
  private stmts: { [k: string]: Database.Statement };
  private txn: (ops: (() => void)[]) => void;

  constructor(path: string) {
    this.db = new Database(path);
    if (path !== ':memory:') {
      this.db.pragma('journal_mode = WAL');
      this.db.pragma(`cache_size = -${CACHE_KIB}`);
    }
    this.db.pragma('synchronous = NORMAL');
    migrate(this.db);
    this.db.exec(SCHEMA);
    this.db.prepare(`INSERT INTO meta (k, v) VALUES ('schema', ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`).run(String(SCHEMA_VERSION));
    this.stmts = {
      upsert: this.db.prepare(
        `INSERT INTO ctas (principal, seq, address, port, signaling_port, state, updated_at) VALUES (?, ?, ?, ?, ?, ${CTA_STATE.REGISTERED}, ?)
         ON CONFLICT(principal) DO UPDATE SET address = excluded.address, port = excluded.port, signaling_port = excluded.signaling_port, updated_at = excluded.updated_at`,
      ),
      del: this.db.prepare(`DELETE FROM ctas WHERE principal = ?`),
      state: this.db.prepare(
        `UPDATE ctas SET state = ?, last_error = COALESCE(?, last_error), last_wake_at = COALESCE(?, last_wake_at), updated_at = ? WHERE principal = ?`,
      ),
      wake: this.db.prepare(`UPDATE ctas SET state = ?, last_wake_at = ?, updated_at = ? WHERE principal = ?`),
      sa: this.db.prepare(
        `UPDATE ctas SET state = ${CTA_STATE.ESTABLISHED}, cta_spi = ?, sc_spi = ?, ciphersuite = ?, established_at = ?, expires_at = ?, last_error = NULL, last_wake_at = COALESCE(?, last_wake_at), updated_at = ? WHERE principal = ?`,
      ),
      addr: this.db.prepare(`UPDATE ctas SET address = ?, port = ?, updated_at = ? WHERE principal = ?`),
      get: this.db.prepare(`SELECT * FROM ctas WHERE principal = ?`),
      list: this.db.prepare(`SELECT * FROM ctas ORDER BY principal LIMIT ? OFFSET ?`),
      all: this.db.prepare(`SELECT seq, principal, address, port, signaling_port, state, cta_spi, sc_spi, expires_at FROM ctas ORDER BY seq`),
    };
    this.txn = this.db.transaction((ops: (() => void)[]) => {
      for (const op of ops) op();
    });
    this.grow(1024);
    // Load what survived the last run. A CTA mid-exchange when we stopped has no
    // key material any more (it was only ever in memory): it is just registered.
    for (const r of this.stmts.all.iterate() as IterableIterator<Row>) {
      if (r.seq >= this.nextSeq) this.nextSeq = r.seq + 1;
      const slot = this.alloc(r.principal);
      this.setAddr(slot, r.address, r.port, r.signaling_port);
      const s = r.state;
      this.st[slot] = s === CTA_STATE.ESTABLISHED || s === CTA_STATE.UNREACHABLE ? s : CTA_STATE.REGISTERED;
      if (r.cta_spi != null) this.ctaSpiCol[slot] = r.cta_spi;
      if (r.sc_spi != null) this.scSpiCol[slot] = r.sc_spi;
      if (r.expires_at != null) this.expiresCol[slot] = Math.floor(r.expires_at / 1000);
    }
  }

  private grow(min: number): void {
    let cap = this.cap || 1024;
    while (cap < min) cap = Math.ceil(cap * 1.5);
    if (cap === this.cap) return;
    const g32 = (a: Uint32Array) => {
      const b = new Uint32Array(cap);
      b.set(a);
      return b;
    };
    this.ip = g32(this.ip);
    this.ports = g32(this.ports);
    this.ctaSpiCol = g32(this.ctaSpiCol);
    this.scSpiCol = g32(this.scSpiCol);
    this.expiresCol = g32(this.expiresCol);
    const s = new Uint8Array(cap);
    s.set(this.st);
    this.st = s;
    this.cap = cap;
  }

  private alloc(principal: string): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.used++;
      if (slot >= this.cap) this.grow(slot + 1);
    }
    this.names[slot] = principal;
    this.index.set(principal, slot);
    this.st[slot] = CTA_STATE.REGISTERED;
    this.ctaSpiCol[slot] = 0;
    this.scSpiCol[slot] = 0;
    this.expiresCol[slot] = 0;
    return slot;
  }

  private setAddr(slot: number, address: string, port: number, sigPort: number): void {
    const v = packIPv4(address);
    if (v >= 0) {
      this.ip[slot] = v;
      this.otherAddr.delete(slot);
    } else {
      this.ip[slot] = 0;
      this.otherAddr.set(slot, address);
    }
    this.ports[slot] = ((port & 0xffff) << 16 | (sigPort & 0xffff)) >>> 0;
  }

  private takeWake(slot: number): number | null {
    const t = this.lastWake.get(slot);
    if (t === undefined) return null;
    this.lastWake.delete(slot);
    return t;
  }

  /** later: an exchange's outcome (flushed within FLUSH_MS); else at the end of this turn. */
  private enqueue(op: () => void, later?: boolean): void {
    if (this.closed) return;
    this.queue.push(op);
    if (this.queue.length >= FLUSH_AT) {
      this.flush();
      return;
    }
    if (later) {
      if (!this.flushScheduled && this.flushTimer === null) {
        this.flushTimer = setTimeout(() => {
          this.flushTimer = null;
          this.flush();
        }, FLUSH_MS);
        this.flushTimer.unref();
      }
      return;
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => {
        this.flushScheduled = false;
        this.flush();
      });
    }
  }

  /** Writes every queued change in one transaction. */
  flush(): void {
    if (this.flushTimer !== null) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.closed || this.queue.length === 0) return;
    const ops = this.queue;
    this.queue = [];
    this.txn(ops);
  }

  close(): void {
    if (this.closed) return;
    // Wake times of exchanges still under way.
    for (const [slot, t] of this.lastWake) {
      const p = this.names[slot];
      const st = this.st[slot];
      if (p !== undefined) this.queue.push(() => this.stmts.wake.run(st, t, t, p));
    }
    this.lastWake.clear();
    this.flush();
    this.closed = true;
    this.db.close();
  }

  // ---- in-memory reads (hot path) ----
  get count(): number {
    return this.index.size;
  }
  get capacity(): number {
    return this.cap;
  }
  slotOf(principal: string): number {
    const s = this.index.get(principal);
    return s === undefined ? -1 : s;
  }
  principalOf(slot: number): string {
    return this.names[slot] as string;
  }
  address(slot: number): string {
    const v = this.ip[slot];
    return v ? unpackIPv4(v) : (this.otherAddr.get(slot) as string);
  }
  port(slot: number): number {
    return this.ports[slot] >>> 16;
  }
  signalingPort(slot: number): number {
    return this.ports[slot] & 0xffff;
  }
  state(slot: number): number {
    return this.st[slot];
  }
  ctaSpi(slot: number): number {
    return this.ctaSpiCol[slot];
  }
  scSpi(slot: number): number {
    return this.scSpiCol[slot];
  }
  /** SA expiry in seconds since epoch (0 = none). */
  saExpiresSec(slot: number): number {
    return this.expiresCol[slot];
  }
  /** Every registered slot, in slot order. */
  slots(): number[] {
    const out: number[] = [];
    for (const s of this.index.values()) out.push(s);
    return out.sort((a, b) => a - b);
  }

  // ---- mutations (memory now, SQLite at the end of the tick) ----
  register(principal: string, address: string, port: number, signalingPort: number | undefined, now: number): number {
    const sig = signalingPort ?? port;
    let slot = this.slotOf(principal);
    // A new principal takes the next seq; an update keeps its own (ON CONFLICT leaves seq).
    if (slot < 0) slot = this.alloc(principal);
    this.setAddr(slot, address, port, sig);
    const seq = this.nextSeq++;
    this.enqueue(() => this.stmts.upsert.run(principal, seq, address, port, sig, now));
    return slot;
  }
  unregister(principal: string): number {
    const slot = this.slotOf(principal);
    if (slot < 0) return -1;
    this.index.delete(principal);
    this.names[slot] = undefined;
    this.otherAddr.delete(slot);
    this.lastWake.delete(slot);
    this.st[slot] = CTA_STATE.FREE;
    this.free.push(slot);
    this.enqueue(() => this.stmts.del.run(principal));
    return slot;
  }
  /** The CTA's key management address changed (e.g. NAT): update it. */
  updateAddress(slot: number, address: string, port: number, now: number): void {
    this.setAddr(slot, address, port, this.signalingPort(slot));
    const p = this.principalOf(slot);
    this.enqueue(() => this.stmts.addr.run(address, port, now, p), true);
  }
  setState(slot: number, state: number, now: number, lastError: string | null = null): void {
    this.st[slot] = state;
    if ((state === CTA_STATE.WAKING || state === CTA_STATE.REPLIED) && lastError === null) return; // memory only
    const p = this.principalOf(slot);
    const wake = this.takeWake(slot);
    this.enqueue(() => this.stmts.state.run(state, lastError, wake, now, p), true);
  }
  markWaking(slot: number, now: number): void {
    this.st[slot] = CTA_STATE.WAKING;
    this.lastWake.set(slot, now);
  }
  /** Established slots whose SA expires at or before dueSec (a typed-array scan). */
  expiringBy(dueSec: number): number[] {
    const out: number[] = [];
    const st = this.st;
    const ex = this.expiresCol;
    for (let s = 0; s < this.used; s++) if (st[s] === CTA_STATE.ESTABLISHED && ex[s] !== 0 && ex[s] <= dueSec) out.push(s);
    return out;
  }
  setSa(slot: number, sa: SaMeta, now: number): void {
    this.st[slot] = CTA_STATE.ESTABLISHED;
    this.ctaSpiCol[slot] = sa.ctaSpi >>> 0;
    this.scSpiCol[slot] = sa.scSpi >>> 0;
    this.expiresCol[slot] = Math.floor(sa.expiresAt / 1000);
    const p = this.principalOf(slot);
    const wake = this.takeWake(slot);
    this.enqueue(() => this.stmts.sa.run(sa.ctaSpi >>> 0, sa.scSpi >>> 0, sa.ciphersuite, sa.establishedAt, sa.expiresAt, wake, now, p), true);
  }

  // ---- SQLite reads (control plane) ----
  get(principal: string): CtaRecord | null {
    this.flush();
    const r = this.stmts.get.get(principal) as Row | undefined;
    return r ? this.overlay(rowToRecord(r)) : null;
  }
  list(limit = -1, offset = 0): CtaRecord[] {
    this.flush();
    return (this.stmts.list.all(limit, offset) as Row[]).map((r) => this.overlay(rowToRecord(r)));
  }
  /** The in-memory state (transient states are not written) and unwritten wake time. */
  private overlay(rec: CtaRecord): CtaRecord {
    const slot = this.slotOf(rec.principal);
    if (slot < 0) return rec;
    rec.state = STATE_NAMES[this.st[slot]];
    const t = this.lastWake.get(slot);
    if (t !== undefined) rec.lastWakeAt = t;
    return rec;
  }
}
