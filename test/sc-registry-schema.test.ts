// The registry's SQLite schema 2: a WITHOUT ROWID table keyed by principal (each
// principal stored once), an explicit registration order (`seq`) that the start-up
// load -- and so the slot order and the restart wake -- follows, and the migration
// of a schema-1 file (rowid table, PRIMARY KEY index, expires_at index).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Registry, CTA_STATE } from '../host-tools/sc/registry.ts';

/** The schema the registry wrote before schema 2, verbatim. */
const SCHEMA_V1 = `
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ctas (
  principal TEXT PRIMARY KEY,
  address TEXT NOT NULL,
  port INTEGER NOT NULL,
  signaling_port INTEGER NOT NULL,
  state TEXT NOT NULL DEFAULT 'registered',
  cta_spi INTEGER,
  sc_spi INTEGER,
  ciphersuite TEXT,
  established_at INTEGER,
  expires_at INTEGER,
  last_error TEXT,
  last_wake_at INTEGER,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ctas_expires ON ctas(expires_at);
INSERT OR IGNORE INTO meta (k, v) VALUES ('schema', '1');
`;

const name = (s: string) => `cta/${s}.t@R.TEST`;
const order = (r: Registry) => r.slots().map((s) => r.principalOf(s));

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'sc-schema-'));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
function inspect(path: string): { sql: string; indexes: string[]; schema: string; tables: string[] } {
  const db = new Database(path, { readonly: true });
  try {
    const sql = db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'ctas'`).pluck().get() as string;
    const indexes = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'ctas'`).pluck().all() as string[];
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all() as string[];
    const schema = db.prepare(`SELECT v FROM meta WHERE k = 'schema'`).pluck().get() as string;
    return { sql, indexes, schema, tables };
  } finally {
    db.close();
  }
}

test('registration order survives a restart (not principal order): re-registering keeps a place, re-adding goes last', () => {
  withDir((dir) => {
    const path = join(dir, 'sc.db');
    const r1 = new Registry(path);
    // Registered in an order that is not the principals' order.
    for (const s of ['m', 'c', 'x', 'a', 'q']) r1.register(name(s), '10.0.0.1', 1000, undefined, 1);
    r1.register(name('c'), '10.0.0.9', 2000, 2001, 2); // an update: keeps its place
    r1.unregister(name('x'));
    r1.register(name('x'), '10.0.0.3', 3000, undefined, 3); // gone and back: now the newest
    r1.close();
    const r2 = new Registry(path);
    try {
      assert.deepEqual(order(r2), ['m', 'c', 'a', 'q', 'x'].map(name));
      const c = r2.slotOf(name('c'));
      assert.equal(r2.address(c), '10.0.0.9');
      assert.equal(r2.port(c), 2000);
      assert.equal(r2.signalingPort(c), 2001);
      r2.register(name('b'), '10.0.0.4', 4000, undefined, 4); // after everything loaded
      assert.deepEqual(r2.list().map((x) => x.principal), ['a', 'b', 'c', 'm', 'q', 'x'].map(name), 'list() is by principal');
    } finally {
      r2.close();
    }
    const r3 = new Registry(path);
    try {
      assert.deepEqual(order(r3), ['m', 'c', 'a', 'q', 'x', 'b'].map(name));
    } finally {
      r3.close();
    }
    const s = inspect(path);
    assert.match(s.sql, /WITHOUT ROWID/i);
    assert.deepEqual(s.indexes, [], 'no index beside the table: the principal is stored once');
    assert.equal(s.schema, '2');
  });
});

test('a schema-1 registry file is migrated on open: every row, SA metadata and the old load order kept', () => {
  withDir((dir) => {
    const path = join(dir, 'old.db');
    const old = new Database(path);
    old.pragma('journal_mode = WAL');
    old.exec(SCHEMA_V1);
    const ins = old.prepare(`INSERT INTO ctas (principal, address, port, signaling_port, state, updated_at) VALUES (?, ?, ?, ?, ?, ?)`);
    const names = ['z', 'b', 'y', 'a', 'k'].map(name);
    names.forEach((p, i) => ins.run(p, `10.1.0.${i + 1}`, 5000 + i, 6000 + i, i === 2 ? 'waking' : 'registered', 100 + i));
    old.prepare(`DELETE FROM ctas WHERE principal = ?`).run(name('b'));
    ins.run(name('b'), 'fe80::1', 7000, 7000, 'registered', 200); // rowid after k
    old.prepare(`UPDATE ctas SET state = 'established', cta_spi = 4294967295, sc_spi = 7, ciphersuite = 'hmac-sha1-96/aes-128-cbc', established_at = 1000, expires_at = 3600000, last_error = 'e', last_wake_at = 900 WHERE principal = ?`).run(name('a'));
    old.close();

    const r = new Registry(path);
    try {
      assert.equal(r.count, 5);
      assert.deepEqual(order(r), ['z', 'y', 'a', 'k', 'b'].map(name), 'the old rowid order');
      const a = r.slotOf(name('a'));
      assert.equal(r.state(a), CTA_STATE.ESTABLISHED);
      assert.equal(r.ctaSpi(a), 4294967295);
      assert.equal(r.scSpi(a), 7);
      assert.equal(r.saExpiresSec(a), 3600);
      assert.equal(r.state(r.slotOf(name('y'))), CTA_STATE.REGISTERED, 'mid-exchange becomes registered, as before');
      assert.equal(r.address(r.slotOf(name('b'))), 'fe80::1');
      const ra = r.get(name('a'));
      assert.equal(ra?.state, 'established');
      assert.equal(r.get(name('z'))?.state, 'registered');
      assert.equal(ra?.ciphersuite, 'hmac-sha1-96/aes-128-cbc');
      assert.equal(ra?.establishedAt, 1000);
      assert.equal(ra?.expiresAt, 3600000);
      assert.equal(ra?.lastError, 'e');
      assert.equal(ra?.lastWakeAt, 900);
      assert.equal(r.get(name('k'))?.signalingPort, 6004);
      assert.equal(r.get(name('k'))?.updatedAt, 104);
      r.register(name('new'), '10.1.0.9', 1, undefined, 300);
      r.setSa(r.slotOf(name('k')), { ctaSpi: 1, scSpi: 2, ciphersuite: 'hmac-sha1-96/null', establishedAt: 5, expiresAt: 7200000 }, 301);
    } finally {
      r.close();
    }
    const s = inspect(path);
    assert.match(s.sql, /WITHOUT ROWID/i);
    assert.match(s.sql, /\bseq\b/);
    assert.deepEqual(s.indexes, [], 'the PRIMARY KEY and expires_at indexes went with the old table');
    assert.deepEqual(s.tables, ['ctas', 'meta'], 'no leftover table');
    assert.equal(s.schema, '2');
    const raw = new Database(path, { readonly: true });
    try {
      const st = (p: string) => raw.prepare(`SELECT state FROM ctas WHERE principal = ?`).pluck().get(name(p));
      assert.equal(st('a'), CTA_STATE.ESTABLISHED, 'state names became codes');
      assert.equal(st('z'), CTA_STATE.REGISTERED);
      assert.equal(st('k'), CTA_STATE.ESTABLISHED);
    } finally {
      raw.close();
    }

    const again = new Registry(path); // already migrated: opens as is
    try {
      assert.deepEqual(order(again), ['z', 'y', 'a', 'k', 'b', 'new'].map(name));
      assert.equal(again.saExpiresSec(again.slotOf(name('k'))), 7200);
      assert.equal(again.state(again.slotOf(name('a'))), CTA_STATE.ESTABLISHED);
    } finally {
      again.close();
    }
  });
});

test('a failed migration leaves the schema-1 file as it was', () => {
  withDir((dir) => {
    const path = join(dir, 'old.db');
    const old = new Database(path);
    // A damaged schema-1 file: one row without an address, which the new table refuses.
    old.exec(SCHEMA_V1.replace('address TEXT NOT NULL', 'address TEXT'));
    const ins = old.prepare(`INSERT INTO ctas (principal, address, port, signaling_port, updated_at) VALUES (?, ?, 1, 1, 1)`);
    ins.run(name('a'), '10.0.0.1');
    ins.run(name('b'), null);
    ins.run(name('c'), '10.0.0.3');
    old.close();

    assert.throws(() => new Registry(path), /NOT NULL/);
    const db = new Database(path, { readonly: true });
    try {
      assert.equal(db.prepare(`SELECT count(*) FROM ctas`).pluck().get(), 3);
      const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`).pluck().all();
      assert.deepEqual(tables, ['ctas', 'meta'], 'no half-made new table');
      assert.equal(db.prepare(`SELECT count(*) FROM pragma_table_info('ctas') WHERE name = 'seq'`).pluck().get(), 0, 'still the old table');
      assert.equal(db.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'ctas_expires'`).pluck().get(), 1);
      assert.equal(db.prepare(`SELECT v FROM meta WHERE k = 'schema'`).pluck().get(), '1');
    } finally {
      db.close();
    }
  });
});

test(':memory: registry: the database holds each principal once (bytes per CTA well under schema 1)', () => {
  const n = 20000;
  const fill = (r: Registry) => {
    for (let i = 0; i < n; i++) r.register(`cta/c${i}.bench.test@BENCH.TEST`, '127.0.0.1', 1024 + (i % 60000), undefined, 1764298000000);
    r.flush();
  };
  const bytes = (db: Database.Database) => (db.pragma('page_count', { simple: true }) as number) * (db.pragma('page_size', { simple: true }) as number);
  const r = new Registry(':memory:');
  try {
    fill(r);
    const now = bytes((r as unknown as { db: Database.Database }).db) / n;
    // The same rows in the schema-1 layout.
    const old = new Database(':memory:');
    old.exec(SCHEMA_V1);
    const ins = old.prepare(`INSERT INTO ctas (principal, address, port, signaling_port, updated_at) VALUES (?, '127.0.0.1', ?, ?, 1764298000000)`);
    old.transaction(() => {
      for (let i = 0; i < n; i++) ins.run(`cta/c${i}.bench.test@BENCH.TEST`, 1024 + (i % 60000), 1024 + (i % 60000));
    })();
    const before = bytes(old) / n;
    old.close();
    assert.ok(now < 0.75 * before, `schema 2 ${now.toFixed(0)} B/CTA vs schema 1 ${before.toFixed(0)} B/CTA`);
  } finally {
    r.close();
  }
});
