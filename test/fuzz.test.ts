// Mutation fuzzing of every decoder (issue 6, "Hostile input"): Kerberos DER
// (every decodeX of krb5.ts), pktc decodeMessage, the serial FrameDecoder on
// streams, CBOR decodeConfig, parseKeytab and espOpen. Fixed seed, at least
// 200,000 inputs in CI; FUZZ_ITERATIONS=N (and FUZZ_SEED=S) for a longer run.
// Properties: only DecodeError (CryptoError where documented) escapes, every
// input is handled quickly (the slowest is reported and bounded), memory after
// GC does not grow with the number of inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import * as k from '../firmware/proto/krb5.ts';
import { decodeMessage, encodeMessage, peekKmmid, KMMID } from '../firmware/proto/pktc.ts';
import { FrameDecoder, encodeFrame, CHANNEL } from '../firmware/proto/serial-frame.ts';
import { SLIP_END } from '../firmware/proto/slip.ts';
import { decodeConfig } from '../firmware/config.ts';
import { crc16 } from '../firmware/proto/crc16.ts';
import { parseKeytab, encodeKeytab, type KeytabEntry } from '../firmware/proto/keytab.ts';
import { espOpen, espSeal, ESP_ICV_LEN, ESP_NEXT_HEADER } from '../firmware/proto/esp.ts';
import { isDecodeError } from '../firmware/proto/errors.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { makeConfig } from '../host-tools/provision/cli.ts';
import { CODECS } from './helpers/asn1.ts';
import { allMessages } from './helpers/pktc-fixtures.ts';
import { Prng, fuzzDecoder, fuzzBudget, fuzzSeed, heapAfterGc, mutate, hex, type FuzzResult } from './helpers/fuzz.ts';

const TOTAL = fuzzBudget(200_000);
const SEED = fuzzSeed(0x6f757a7a);
/** A decoder that takes longer than this on one input (ms) is a hang / blow-up. */
const MAX_MS_PER_INPUT = 1000; // generous: a GC pause on a busy 2-core CI box must not fail it

// Shares of the total budget per family (sum = 1).
const SHARE = { krb5: 0.4, pktc: 0.2, frames: 0.1, config: 0.1, keytab: 0.1, esp: 0.1 };

const results: FuzzResult[] = [];
function record(t: { diagnostic(s: string): void }, r: FuzzResult, neverThrows = false): void {
  results.push(r);
  t.diagnostic(`${r.name}: ${r.iterations} inputs, ${r.accepted} accepted, ${r.rejected} refused, slowest ${r.maxMs.toFixed(2)} ms (${r.maxMsLen} bytes)`);
  assert.deepEqual(r.failures, [], `${r.name}: untyped errors escaped`);
  assert.ok(r.maxMs < MAX_MS_PER_INPUT, `${r.name}: one input took ${r.maxMs.toFixed(1)} ms (${r.maxMsLen} bytes)`);
  if (!neverThrows) assert.ok(r.rejected > 0, `${r.name}: the mutants reached the error paths`);
}

const rng = new Prng(SEED);
const heapStart = heapAfterGc();

test('Kerberos DER: every decodeX of krb5.ts', (t) => {
  const seedsByCodec = CODECS.map((c) => c.samples.map((s) => c.enc(s)));
  const all = seedsByCodec.flat();
  const decoders: { name: string; decode: (b: Uint8Array) => unknown; seeds: Uint8Array[]; check?: (out: unknown) => void }[] = CODECS.map((c, i) => ({ name: c.name, decode: c.dec, seeds: seedsByCodec[i] }));
  const byName = (n: string) => seedsByCodec[CODECS.findIndex((c) => c.name === n)];
  const messages = [...byName('AS-REQ'), ...byName('AS-REP'), ...byName('TGS-REP'), ...byName('AP-REQ'), ...byName('AP-REP'), ...byName('KRB-ERROR')];
  decoders.push(
    { name: 'KDC-REQ (decodeKdcReq)', decode: k.decodeKdcReq, seeds: byName('AS-REQ') },
    { name: 'KDC-REP (decodeKdcRep)', decode: k.decodeKdcRep, seeds: [...byName('AS-REP'), ...byName('TGS-REP')] },
    {
      // A peek: never throws, answers a message type or a "not a message" value.
      name: 'messageType',
      decode: k.messageType,
      seeds: messages,
      check: (v) => {
        if (!Number.isInteger(v)) throw new Error('not an integer: ' + v);
      },
    },
    { name: 'ticketDer', decode: k.ticketDer, seeds: [...byName('AS-REP'), ...byName('AP-REQ')] },
  );
  const per = Math.ceil((TOTAL * SHARE.krb5) / decoders.length);
  for (const d of decoders) {
    const r = fuzzDecoder({ name: d.name, seeds: d.seeds, decode: d.decode, iterations: per, rng: rng.fork(), corpus: all, check: d.check });
    record(t, r, d.name === 'messageType');
  }
  // Each decoder also refuses every other codec's valid encodings with a DecodeError (or accepts them).
  for (const d of decoders) {
    for (const s of all) {
      try {
        d.decode(s);
      } catch (e) {
        assert.ok(isDecodeError(e), `${d.name} on ${hex(s, 32)}: ${(e as Error).message}`);
      }
    }
  }
});

test('pktc decodeMessage: all six messages, both DOIs', (t) => {
  const key = new Uint8Array(20).fill(7);
  const hmac = new Uint8Array(20).fill(9);
  const seeds = allMessages().map((m) => encodeMessage(nodeBackend, key, m, hmac));
  const r = fuzzDecoder({
    name: 'pktc decodeMessage',
    seeds,
    decode: decodeMessage,
    iterations: Math.ceil(TOTAL * SHARE.pktc),
    rng: rng.fork(),
    check: (out, input) => {
      // Whatever decodes has the KMMID of its first byte, and peekKmmid agrees.
      const m = out as { kmmid: number };
      if (m.kmmid !== input[0] || peekKmmid(input) !== input[0]) throw new Error(`kmmid ${m.kmmid} vs byte ${input[0]}`);
      if (m.kmmid < KMMID.WAKE_UP || m.kmmid > KMMID.ERROR_REPLY) throw new Error('kmmid out of range');
    },
  });
  record(t, r);
});

test('serial FrameDecoder: mutated streams in random chunks; resynchronises after garbage', (t) => {
  const payloads = [new Uint8Array([1, 2, 3]), { status: 1 }, 'hello', new Uint8Array(600).fill(0xc0), [1, [2, 3]], new Uint8Array(1500).fill(0xdb)];
  const frames = payloads.map((p, i) => encodeFrame(i % 5, p as never));
  const streams = [frames[0], frames.reduce((a, f) => Buffer.concat([a, f]), Buffer.alloc(0)), Buffer.concat([frames[1], frames[3]]), frames[5]].map((b) => new Uint8Array(b));
  const r: FuzzResult = { name: 'FrameDecoder streams', iterations: 0, accepted: 0, rejected: 0, maxMs: 0, maxMsLen: 0, failures: [] };
  const fr = rng.fork();
  const marker = encodeFrame(CHANNEL.LOG, 'resync-marker');
  const n = Math.ceil(TOTAL * SHARE.frames);
  for (let i = 0; i < n; i++) {
    let got: { ch: number; p: unknown }[] = [];
    const dec = new FrameDecoder((ch, p) => got.push({ ch, p }), fr.chance(0.2) ? 64 + fr.int(2048) : undefined);
    const input = mutate(fr, fr.pick(streams), streams);
    const t0 = performance.now();
    try {
      // Random chunking, alternating Uint8Array and binary-string chunks like Espruino's Serial.on('data').
      let p = 0;
      while (p < input.length) {
        const len = 1 + fr.int(Math.min(300, input.length - p));
        const chunk = input.subarray(p, p + len);
        dec.feed(fr.chance(0.5) ? chunk : Buffer.from(chunk).toString('latin1'));
        p += len;
      }
      // Property: after any garbage, END + a valid frame is delivered intact.
      got = [];
      dec.feed(new Uint8Array([SLIP_END]));
      dec.feed(marker);
      // (The END may also complete a frame the garbage left open, if that frame is intact.)
      const last = got[got.length - 1];
      if (got.length < 1 || got.length > 2 || last.ch !== CHANNEL.LOG || last.p !== 'resync-marker') throw new Error(`no resync: ${JSON.stringify(got)}`);
      const s = dec.stats;
      for (const v of Object.values(s)) if (!(Number.isInteger(v) && v >= 0)) throw new Error('bad counter ' + JSON.stringify(s));
      if (s.frames + s.badCrc + s.badCbor + s.oversized + s.badEscape + s.runt === 0 && input.length > 0) r.accepted++;
      else r.rejected++;
    } catch (e) {
      if (r.failures.length < 5) r.failures.push({ decoder: r.name, input: hex(input), error: String((e as Error).message) });
    }
    const dt = performance.now() - t0;
    if (dt > r.maxMs) {
      r.maxMs = dt;
      r.maxMsLen = input.length;
    }
    r.iterations++;
  }
  record(t, r);
});

function keytabEntries(): KeytabEntry[] {
  const e = (name: string, etype: number, len: number, kvno: number): KeytabEntry => ({
    principal: { realm: 'EXAMPLE.NET', components: name.split('/'), nameType: 1 },
    timestamp: 1700000000,
    kvno,
    etype,
    key: new Uint8Array(len).fill(kvno),
  });
  return [e('cta/cta1.example.net', 17, 16, 2), e('cta/cta1.example.net', 18, 32, 2), e('sc/sc1.example.net', 19, 16, 300)];
}

test('CBOR decodeConfig', (t) => {
  const keytab = keytabEntries();
  const base = { keytab, principal: 'cta/cta1.example.net', scs: [{ principal: 'sc/sc1.example.net@EXAMPLE.NET', address: '10.0.0.1', port: 1293 }], kdc: { address: '10.0.0.2', port: 88 } };
  const seeds = [
    makeConfig(base),
    makeConfig({ ...base, slots: 8, spi: 4096, clientInitiatedOnBoot: true, ciphersuites: [[2, 12], [2, 11]], timers: { retransmitMs: [500, 1000], kdcTimeoutMs: 700 } }),
    makeConfig({ ...base, scs: [base.scs[0], { principal: 'sc/sc2.example.net@EXAMPLE.NET' }], transport: 'serial' }),
  ];
  const n = Math.ceil((TOTAL * SHARE.config) / 2);
  record(t, fuzzDecoder({ name: 'decodeConfig', seeds, decode: decodeConfig, iterations: n, rng: rng.fork() }));
  // Mutants of the CBOR part with the CRC-16 recomputed, so that they get past the integrity
  // check to the type and range checks behind it.
  const withCrc = (body: Uint8Array) => {
    const c = crc16(body);
    const out = new Uint8Array(body.length + 2);
    out.set(body);
    out[body.length] = c >> 8;
    out[body.length + 1] = c & 0xff;
    return out;
  };
  const bodies = seeds.map((s) => s.slice(0, s.length - 2));
  record(t, fuzzDecoder({ name: 'decodeConfig (CRC fixed)', seeds: bodies, decode: (b) => decodeConfig(withCrc(b)), iterations: n, rng: rng.fork() }));
});

test('keytab parseKeytab (0x0502 and 0x0501)', (t) => {
  const v2 = encodeKeytab(keytabEntries());
  const v1 = v2.slice();
  v1[1] = 0x01; // 0x0501: same layout without the name type, counts include the realm
  const seeds = [v2, encodeKeytab(keytabEntries().slice(0, 1))];
  // v1 may not parse identically; only use it as splice material.
  record(t, fuzzDecoder({ name: 'parseKeytab', seeds, decode: parseKeytab, iterations: Math.ceil(TOTAL * SHARE.keytab), rng: rng.fork(), corpus: [v1] }));
});

test('espOpen (AES-128-CBC and NULL; half the mutants carry a recomputed ICV so padding/decrypt paths are reached)', (t) => {
  const encKey = new Uint8Array(16).fill(0x11);
  const authKey = new Uint8Array(20).fill(0x22);
  const er = rng.fork();
  const pl = (n: number) => er.bytes(n);
  const aes = [0, 1, 15, 16, 100].map((n, i) => espSeal(nodeBackend, { spi: 0x1000 + i, seq: i + 1, encKey, authKey }, pl(n), ESP_NEXT_HEADER.UDP));
  const nul = [0, 2, 3, 200].map((n, i) => espSeal(nodeBackend, { spi: 0x2000 + i, seq: i + 1, encKey: null, authKey }, pl(n), ESP_NEXT_HEADER.NONE));
  const refix = (b: Uint8Array): Uint8Array => {
    if (b.length < ESP_ICV_LEN) return b;
    const o = b.slice();
    const covered = o.subarray(0, o.length - ESP_ICV_LEN);
    o.set(createHmac('sha1', authKey).update(covered).digest().subarray(0, ESP_ICV_LEN), o.length - ESP_ICV_LEN);
    return o;
  };
  const n = Math.ceil((TOTAL * SHARE.esp) / 2);
  for (const [name, seeds, ek] of [
    ['espOpen AES-128-CBC', aes, encKey],
    ['espOpen NULL', nul, null],
  ] as const) {
    const rr = er.fork();
    let fixed = 0;
    const r = fuzzDecoder({
      name,
      seeds,
      rng: rr,
      iterations: n,
      allowCrypto: true,
      decode: (b) => {
        // Seeds are passed through untouched; mutants get their ICV fixed half of the time.
        const isSeed = seeds.includes(b as never);
        const x = !isSeed && rr.chance(0.5) ? (fixed++, refix(b)) : b;
        return espOpen(nodeBackend, { encKey: ek, authKey }, x);
      },
    });
    record(t, r);
    assert.ok(fixed > n / 3);
  }
});

test('totals: at least the budget, memory after GC bounded', (t) => {
  const total = results.reduce((a, r) => a + r.iterations, 0);
  const slowest = results.reduce((a, r) => (r.maxMs > a.maxMs ? r : a), results[0]);
  const heapEnd = heapAfterGc();
  const grew = (heapEnd - heapStart) / 1048576;
  t.diagnostic(`seed 0x${SEED.toString(16)}: ${total} inputs over ${results.length} decoders; slowest single input ${slowest.maxMs.toFixed(2)} ms (${slowest.name}); heap after GC ${(heapStart / 1048576).toFixed(1)} -> ${(heapEnd / 1048576).toFixed(1)} MB`);
  assert.ok(total >= TOTAL, `ran ${total} inputs, budget ${TOTAL}`);
  assert.ok(results.length >= 36, `every decoder was fuzzed (${results.length})`);
  // Decoders keep nothing between calls: the heap after GC does not grow with the input count.
  assert.ok(grew < 24, `heap grew by ${grew.toFixed(1)} MB after GC`);
});
