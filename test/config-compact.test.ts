// The compact configuration (cta.cfg, version 2): host-tools/provision/config.ts validates and
// encodes, firmware/config.ts decodes on the board with numbered checks (cfg#N), and the host
// table CONFIG_ERRORS explains each number.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeConfig as decodeOnBoard, type ConfigDefaults } from '../firmware/config.ts';
import { cborDecode, cborEncode, type CborValue } from '../firmware/proto/cbor.ts';
import { crc16 } from '../firmware/proto/crc16.ts';
import { isDecodeError } from '../firmware/proto/errors.ts';
import { configFromObject, decodeConfig, encodeConfig, explainConfigError, CONFIG_ERRORS } from '../host-tools/provision/config.ts';
import { Prng, fuzzDecoder, mutate } from './helpers/fuzz.ts';
import { readFileSync } from 'node:fs';

const key = (n: number, fill: number) => new Uint8Array(n).fill(fill);
const BASE = {
  principal: 'cta/cta1.example.net',
  realm: 'EXAMPLE.NET',
  keys: [{ etype: 18, kvno: 2, key: key(32, 1) }],
  scs: [{ principal: 'sc/sc1.example.net@EXAMPLE.NET' }],
  kdc: { address: '10.0.0.3', port: 88 },
};
const BOARD: ConfigDefaults = { slots: 6, timers: { retransmitMs: [800, 1600, 3200], solicitedTimeoutMs: 4000, unsolicitedInitialMs: 300, unsolicitedRetries: 0, clockSkewSec: 120 } };

const VARIED: { [name: string]: object } = {
  minimal: BASE,
  'udp, ports, ciphersuites': { ...BASE, listenPort: 11293, signalingPort: 0, ciphersuites: [[2, 12], [2, 11], [0, 255]] },
  'serial, slots, spi, client-initiated, no prefetch': { ...BASE, transport: 'serial', slots: 64, spi: 4294967295, clientInitiatedOnBoot: true, prefetchTicket: false },
  'several keys and SCs': {
    ...BASE,
    keys: [
      { etype: 18, kvno: 4294967295, key: key(32, 2) },
      { etype: 17, kvno: 0, key: key(16, 3) },
      { etype: 20, kvno: 7, key: key(32, 4) },
    ],
    scs: [
      { principal: 'sc/sc1.example.net', address: '10.0.0.1', port: 1293 },
      { principal: 'sc/sc2.example.net@OTHER.NET', address: 'sc2.example.net' },
      { principal: 'sc/sc3.example.net', port: 65535 },
    ],
  },
  'every timer': {
    ...BASE,
    timers: {
      retransmitMs: [1, 600000 - 1],
      abortMs: 600000,
      unsolicitedBaseMs: 1,
      unsolicitedRetries: 16,
      skewSec: 86400,
      ticketRefreshMarginSec: 0,
      kdcTimeoutMs: 700,
      kdcRetries: 0,
      prefetchDelayMs: 1,
      prefetchRetryMs: 600000,
      prefetchRetries: 0,
      prefetchPeriodSec: 1,
    },
  },
  'some timers, no retransmissions': { ...BASE, timers: { retransmitMs: [], kdcTimeoutMs: 900, skewSec: 60 } },
  'wifi with a password': { ...BASE, wifi: { ssid: 'Lab Net', password: 'pass word 1' } },
  'wifi with a raw key': { ...BASE, wifi: { ssid: 'x'.repeat(32), password: 'aB'.repeat(32) } },
  'open wifi': { ...BASE, wifi: { ssid: 'open' } },
};

/** The CBOR item of a compact form, to edit and re-encode with withCrc. */
function itemsOf(bytes: Uint8Array): any[] {
  return cborDecode(bytes.subarray(0, bytes.length - 2)) as any[];
}
function withCrc(body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 2);
  out.set(body);
  const c = crc16(body);
  out[body.length] = c >> 8;
  out[body.length + 1] = c & 0xff;
  return out;
}

test('round trip: host encode -> board decode equals the host validation, with and without board defaults', () => {
  for (const [name, obj] of Object.entries(VARIED)) {
    const bytes = encodeConfig(obj);
    for (const defaults of [undefined, BOARD]) {
      const want = configFromObject(obj, defaults);
      assert.deepEqual(decodeOnBoard(bytes, defaults), want, `${name} ${defaults ? 'board defaults' : ''}`);
      assert.deepEqual(decodeConfig(bytes, defaults), want, `${name}: host decoder`);
    }
  }
  // Absent board-defaulted fields are null in the file: the board's values apply where it is read.
  const c = decodeOnBoard(encodeConfig(BASE), BOARD);
  assert.equal(c.slots, 6);
  assert.deepEqual(c.timers.retransmitMs, [800, 1600, 3200]);
  assert.equal(c.timers.abortMs, 4000);
  assert.equal(c.timers.unsolicitedRetries, 0);
  assert.equal(c.timers.skewSec, 120);
  // No key strings in the file: a minimal configuration is small.
  const min = encodeConfig(BASE);
  assert.ok(min.length < 160, String(min.length));
  assert.ok(!Buffer.from(min).toString('latin1').includes('principal'));
  // The layout as documented: version first, 17 items, CRC big-endian at the end.
  const items = itemsOf(min);
  assert.equal(items.length, 17);
  assert.deepEqual(items.slice(0, 3), [2, 'cta/cta1.example.net', 'EXAMPLE.NET']);
  assert.deepEqual(items.slice(5, 16), ['10.0.0.3', 88, null, null, null, 0, false, true, [[2, 12]], null, null]);
  assert.deepEqual(items[16], new Array(12).fill(null));
  assert.equal(min[min.length - 2] * 256 + min[min.length - 1], crc16(min.subarray(0, min.length - 2)));
});

test('docs/protocol.md section 10: the worked example is what encodeConfig writes', () => {
  const doc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
  const block = /#### cta\.cfg:[^\n]*\n\n```\n([\s\S]*?)```/.exec(doc);
  assert.ok(block, 'the example is in the document');
  let hex = '';
  for (const line of block![1].split('\n')) {
    for (const tok of line.trim().split(/\s+/)) {
      if (!/^([0-9a-f]{2})+$/.test(tok)) break;
      hex += tok;
    }
  }
  const want = encodeConfig({
    principal: 'cta/c1',
    realm: 'R',
    keys: [{ etype: 17, kvno: 3, key: Uint8Array.from({ length: 16 }, (_, i) => i) }],
    scs: [{ principal: 'sc/s1', address: '10.0.0.1', port: 1293 }],
    kdc: { address: '10.0.0.2', port: 88 },
    timers: { kdcTimeoutMs: 700 },
  });
  assert.equal(hex, Buffer.from(want).toString('hex'));
  assert.match(doc, new RegExp(`\\(${want.length} bytes\\)\\n`));
});

// One crafted input per board check: an edit of a good configuration's items (re-encoded with
// a valid CRC), or raw bytes. The ranges of numeric checks are probed just past their ends.
const GOOD = encodeConfig(VARIED['wifi with a password']);
type Edit = (a: any[]) => void;
const TIMER_MAX = [600000, 600000, 16, 86400, 86400, 600000, 8, 600000, 600000, 16, 86400];
const CRAFTED: [number, Edit | Uint8Array][] = [
  [1, GOOD.subarray(0, GOOD.length - 1)],
  [1, new Uint8Array([0x82, 0x02])],
  [2, withCrc(new Uint8Array([0x83, 0x02]))],
  [3, withCrc(cborEncode({ v: 1 }))],
  [3, (a) => (a[0] = 1)],
  [4, (a) => a.push(null)],
  [5, (a) => (a[1] = '')],
  [5, (a) => (a[1] = 'caf\u00e9')],
  [6, (a) => (a[2] = 5)],
  [6, (a) => (a[2] = 'x'.repeat(256))],
  [7, (a) => (a[3] = [])],
  [7, (a) => (a[3] = new Array(9).fill(a[3][0]))],
  [8, (a) => (a[3][0] = [18, 1])],
  [9, (a) => (a[3][0][0] = 0)],
  [9, (a) => (a[3][0][0] = 65536)],
  [10, (a) => (a[3][0][1] = 4294967296)],
  [10, (a) => (a[3][0][1] = -1)],
  [11, (a) => (a[3][0][2] = key(20, 0))],
  [11, (a) => (a[3][0][2] = 'x'.repeat(16))],
  [12, (a) => (a[4] = new Array(17).fill(a[4][0]))],
  [13, (a) => (a[4][0] = 'sc/x@R')],
  [14, (a) => (a[4][0][0] = null)],
  [15, (a) => (a[4][0][1] = 'a\u0001')],
  [16, (a) => (a[4][0][2] = 0)],
  [17, (a) => (a[5] = '')],
  [18, (a) => (a[6] = 65536)],
  [18, (a) => (a[6] = null)],
  [19, (a) => (a[7] = -1)],
  [20, (a) => (a[8] = 1.5)],
  [21, (a) => (a[9] = 65)],
  [21, (a) => (a[9] = 0)],
  [22, (a) => (a[10] = 2)],
  [22, (a) => (a[10] = 'udp')],
  [23, (a) => (a[11] = null)],
  [24, (a) => (a[12] = 1)],
  [25, (a) => (a[13] = [])],
  [26, (a) => (a[13][0] = [2])],
  [27, (a) => (a[13][0][1] = 256)],
  [28, (a) => (a[14] = 255)],
  [28, (a) => (a[14] = 4294967296)],
  [29, (a) => (a[15] = ['x'])],
  [30, (a) => (a[15][0] = 'x'.repeat(33))],
  [31, (a) => (a[15][1] = '')],
  [31, (a) => (a[15][1] = 'x'.repeat(65))],
  [32, (a) => (a[16] = a[16].slice(0, 11))],
  [32, (a) => (a[16] = null)],
  [33, (a) => (a[16][0] = [1, 2, 3, 4, 5, 6, 7, 8, 9])],
  [34, (a) => (a[16][0] = [0])],
  [34, (a) => (a[16][0] = [600001])],
  ...TIMER_MAX.map((max, i): [number, Edit] => [35 + i, (a) => (a[16][1 + i] = max + 1)]),
  ...TIMER_MAX.map((_, i): [number, Edit] => [35 + i, (a) => (a[16][1 + i] = -1)]),
];

test('every board check number triggers on a crafted input, and the host table explains it', () => {
  const seen = new Set<number>();
  for (const [n, edit] of CRAFTED) {
    let bytes: Uint8Array;
    if (edit instanceof Uint8Array) bytes = edit;
    else {
      const a = itemsOf(GOOD);
      edit(a);
      bytes = withCrc(cborEncode(a as CborValue));
    }
    assert.throws(() => decodeOnBoard(bytes), (e: Error) => isDecodeError(e) && e.message === `cfg#${n}`, `cfg#${n} (${edit.toString()})`);
    assert.ok(CONFIG_ERRORS[n] && CONFIG_ERRORS[n].length > 10, `cfg#${n} has a sentence`);
    // The host decoder says the sentence (the map form of version 1 has a message of its own).
    assert.throws(() => decodeConfig(bytes), (e: Error) => isDecodeError(e) && (e.message === `config: ${CONFIG_ERRORS[n]} (cfg#${n})` || (n === 1 && /older cta provision/.test(e.message))));
    seen.add(n);
  }
  // Every number in the table is reachable, and nothing beyond it.
  assert.deepEqual([...seen].sort((x, y) => x - y), Array.from({ length: CONFIG_ERRORS.length - 1 }, (_, i) => i + 1));
  // Range sentences say the range the board checks.
  for (const [i, max] of TIMER_MAX.entries()) assert.ok(CONFIG_ERRORS[35 + i].endsWith(` to ${max}`), CONFIG_ERRORS[35 + i]);
  assert.equal(
    explainConfigError('CTA: bad configuration in "cta.cfg": cfg#4. Idle.'),
    `CTA: bad configuration in "cta.cfg": cfg#4 (${CONFIG_ERRORS[4]}). Idle.`,
  );
  assert.equal(explainConfigError('cfg#99 and no number'), 'cfg#99 and no number');
  // A version-1 file (a CBOR map) is named as such by host tools.
  assert.throws(() => decodeConfig(cborEncode({ v: 1, principal: 'cta/a' })), /map form of an older cta provision/);
});

test('checks of meaning are the host\'s: the board accepts them, the host decoder names the field', () => {
  const cases: [string, Edit][] = [
    ['principal must not contain a realm', (a) => (a[1] = 'cta/a@R')],
    ['scs[1].principal is listed twice', (a) => a[4].push(a[4][0])],
    ['timers.retransmitMs must be increasing', (a) => (a[16][0] = [2000, 1000])],
    ['timers.abortMs must be later than the last retransmission', (a) => (a[16][1] = 1500)],
    ['wifi.password must be 8 to 64 characters', (a) => (a[15][1] = 'short')],
    ['wifi.password of 64 characters must be hex digits', (a) => (a[15][1] = 'g'.repeat(64))],
  ];
  for (const [msg, edit] of cases) {
    const a = itemsOf(GOOD);
    edit(a);
    const bytes = withCrc(cborEncode(a as CborValue));
    decodeOnBoard(bytes);
    assert.throws(() => decodeConfig(bytes), (e: Error) => isDecodeError(e) && e.message.startsWith('config: ' + msg), msg);
  }
});

test('a flipped byte anywhere fails the CRC (cfg#1)', () => {
  for (let i = 0; i < GOOD.length; i++) {
    for (const x of [0x01, 0x80, 0xff]) {
      const b = GOOD.slice();
      b[i] ^= x;
      assert.throws(() => decodeOnBoard(b), (e: Error) => isDecodeError(e) && e.message === 'cfg#1', `byte ${i} ^ ${x}`);
    }
  }
});

test('fuzz: garbage and mutants (with a valid CRC, to reach every check) throw only DecodeError cfg#N; what the board accepts is in range', () => {
  const rng = new Prng(0x63666721);
  // Plain garbage of every small length.
  for (let i = 0; i < 3000; i++) {
    const b = rng.bytes(rng.int(200));
    try {
      decodeOnBoard(i & 1 ? withCrc(b) : b);
    } catch (e) {
      assert.ok(isDecodeError(e) && /^cfg#\d+$/.test((e as Error).message), `${(e as Error).name}: ${(e as Error).message}`);
    }
  }
  // Mutants of the CBOR part of varied configurations, CRC recomputed.
  const seeds = Object.values(VARIED).map((o) => {
    const b = encodeConfig(o);
    return b.slice(0, b.length - 2);
  });
  // Host-only checks (meaning, not range) the board may pass; anything else would be a value out of range.
  const meaning = /must not contain a realm|is listed twice|must be increasing|must be later than|without spaces|wifi\.password must be 8 to 64|hex digits/;
  const r = fuzzDecoder({
    name: 'board decodeConfig (CRC fixed)',
    seeds,
    decode: (body) => {
      try {
        return decodeOnBoard(withCrc(body));
      } catch (e) {
        if (isDecodeError(e) && !/^cfg#\d+$/.test((e as Error).message)) throw new Error('not numbered: ' + (e as Error).message);
        throw e;
      }
    },
    iterations: 20000,
    rng,
    check: (out) => {
      try {
        configFromObject(out);
      } catch (e) {
        if (!isDecodeError(e) || !meaning.test((e as Error).message)) throw e;
      }
    },
  });
  assert.deepEqual(r.failures, []);
  assert.ok(r.rejected > 1000 && r.accepted > 100, `${r.accepted} accepted, ${r.rejected} refused`);
  // Small mutants of the whole file (CRC included) are refused.
  let refused = 0;
  for (let i = 0; i < 2000; i++) {
    try {
      decodeOnBoard(mutate(rng, GOOD));
    } catch (e) {
      assert.ok(isDecodeError(e), String(e));
      refused++;
    }
  }
  assert.ok(refused > 1900, String(refused));
});
