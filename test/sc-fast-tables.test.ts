// The SC's allocation-free tables: the replay cache (typed-array ring with hash
// chains) and the pending-SA-Recovered table (numeric key + collision map),
// checked against a plain Map model on random operations.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ReplayCache, REPLAY_TAIL } from '../host-tools/sc/replay.ts';
import { PendingTable, type PendingEntry } from '../host-tools/sc/pending.ts';

const keyOf = (c: string, t: number, u: number, ci: Uint8Array) => `${c}|${t}|${u}|${Buffer.from(ci).toString('hex')}`;

test('replay cache: same answers as a Map of full keys (growth, expiry, duplicates, bounds)', () => {
  const max = 3000;
  const rc = new ReplayCache(max);
  const model = new Map<string, number>();
  const seen: [string, number, number, Uint8Array][] = [];
  let now = 1_000_000;
  const life = 500;
  for (let step = 0; step < 20000; step++) {
    now += 1;
    let item: [string, number, number, Uint8Array];
    const r = Math.random();
    if (r < 0.3 && seen.length) item = seen[Math.floor(Math.random() * seen.length)];
    else if (r < 0.4 && seen.length) {
      // same client/ctime/cusec, different ciphertext tail or length
      const [c, t, u, ci] = seen[Math.floor(Math.random() * seen.length)];
      const d = Math.random() < 0.5 ? Uint8Array.from(ci) : randomBytes(ci.length + 1);
      d[d.length - 1] ^= 1;
      item = [c, t, u, d];
    } else {
      const ci = new Uint8Array(randomBytes(Math.random() < 0.05 ? 1 + Math.floor(Math.random() * REPLAY_TAIL) : 40 + Math.floor(Math.random() * 60)));
      item = ['cta' + Math.floor(Math.random() * 50) + '@R', now - Math.floor(Math.random() * 3), Math.floor(Math.random() * 4), ci];
      seen.push(item);
      if (seen.length > 4000) seen.shift();
    }
    const [c, t, u, ci] = item;
    const k = keyOf(c, t, u, ci);
    const e = model.get(k);
    const want = e !== undefined && e > now;
    assert.equal(rc.has(c, t, u, ci, now), want, `step ${step}`);
    if (!want) {
      // model of add: refuse when full of live entries
      for (const [mk, exp] of model) if (exp <= now) model.delete(mk);
      const live = model.size;
      const ok = rc.add(c, t, u, ci, now + life, now);
      assert.equal(ok, live < max, `add at step ${step}`);
      if (ok) model.set(k, now + life);
    }
    if (step % 997 === 0) rc.sweep(now);
  }
  rc.sweep(now + life + 1);
  assert.equal(rc.size, 0);
});

test('replay cache: full of live entries refuses, then accepts once they expire', () => {
  const rc = new ReplayCache(4);
  const c = (i: number) => new Uint8Array(32).fill(i);
  for (let i = 0; i < 4; i++) assert.equal(rc.add('a@R', 1, i, c(i), 100, 0), true);
  assert.equal(rc.add('a@R', 1, 9, c(9), 100, 50), false);
  assert.equal(rc.has('a@R', 1, 2, c(2), 99), true);
  assert.equal(rc.has('b@R', 1, 2, c(2), 99), false);
  assert.equal(rc.add('a@R', 1, 9, c(9), 200, 100), true);
  assert.equal(rc.has('a@R', 1, 2, c(2), 100), false);
  assert.equal(rc.has('a@R', 1, 9, c(9), 150), true);
});

type E = PendingEntry & { id: number };
test('pending table: lookups by the whole HMAC, also when two share the numeric key', () => {
  const t = new PendingTable<E>();
  const mk = (id: number, ack: Uint8Array): E => ({ id, ack, expires: 0, xkey: null });
  const a = new Uint8Array(20).fill(7);
  const b = Uint8Array.from(a);
  b[19] ^= 0x80; // same first 4 bytes: same numeric key
  const c = Uint8Array.from(a);
  c[3] ^= 1; // differs only in the 2 bits the key drops
  const ea = mk(1, a), eb = mk(2, b), ec = mk(3, c);
  t.add(ea);
  t.add(eb);
  t.add(ec);
  assert.equal(t.size, 3);
  const wire = (h: Uint8Array) => { const w = new Uint8Array(23); w.set([4, 1, 0x10]); w.set(h, 3); return w; };
  assert.equal(t.get(wire(a), 3), ea);
  assert.equal(t.get(wire(b), 3), eb);
  assert.equal(t.get(wire(c), 3), ec);
  const d = Uint8Array.from(a);
  d[10] ^= 4;
  assert.equal(t.get(wire(d), 3), undefined);
  assert.equal(t.get(a.subarray(0, 19), 0), undefined);
  t.delete(ea);
  assert.equal(t.get(a, 0), undefined);
  assert.equal(t.get(b, 0), eb);
  assert.deepEqual([...t.values()].map((e) => e.id).sort(), [2, 3]);
  for (const e of t.values()) t.delete(e);
  assert.equal(t.size, 0);
  // random model check
  const model = new Map<string, E>();
  for (let i = 0; i < 5000; i++) {
    const h = new Uint8Array(randomBytes(20));
    if (i % 3 === 0) h.set([1, 2, 3, 4]); // many share a key
    const e = mk(i, h);
    const hk = Buffer.from(h).toString('hex');
    if (!model.has(hk)) { t.add(e); model.set(hk, e); }
    if (i % 5 === 0) { const first = model.keys().next().value as string; t.delete(model.get(first) as E); model.delete(first); }
  }
  assert.equal(t.size, model.size);
  for (const [hk, e] of model) assert.equal(t.get(Buffer.from(hk, 'hex'), 0), e);
});
