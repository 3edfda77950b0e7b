import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHmac } from 'node:crypto';
import {
  espSeal,
  espOpen,
  espPeekSpi,
  ReplayWindow,
  REPLAY_WINDOW_SIZE,
  ESP_NEXT_HEADER,
  ESP_MAX_PACKET,
  parseNcsCommand,
  buildNcsCommand,
  buildNcsResponse,
  parseNcsResponse,
} from '../firmware/proto/esp.ts';
import { deriveSaKeys, saInfo } from '../firmware/proto/sa.ts';
import { DecodeError, CryptoError } from '../firmware/proto/errors.ts';
import { concat, fromAscii, fromHex, toAscii, toHex, u32 } from '../firmware/proto/bytes.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { Prng } from './helpers/fuzz.ts';

const b = nobleBackend;
const ENC = fromHex('000102030405060708090a0b0c0d0e0f');
const AUTH = fromHex('101112131415161718191a1b1c1d1e1f20212223');
const IV = fromHex('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff');


/** RFC 5869 HKDF-Expand with node:crypto's HMAC: an independent reference. */
function hkdfExpandRef(prk: Uint8Array, info: Uint8Array, len: number): Uint8Array {
  const out: Buffer[] = [];
  let t = Buffer.alloc(0);
  for (let i = 1; out.length * 32 < len; i++) {
    t = createHmac('sha256', prk).update(Buffer.concat([t, info, Buffer.from([i])])).digest();
    out.push(t);
  }
  return new Uint8Array(Buffer.concat(out).subarray(0, len));
}

test('SA keys: HKDF-Expand-SHA256(subkey, "CTA-SA v1"||SPIs, 72) split 16/20/16/20', () => {
  const subkey = fromHex('5f4e3d2c1b0a99887766554433221100');
  const info = saInfo(0x1000abcd, 0x2000beef);
  assert.equal(toHex(info), toHex(fromAscii('CTA-SA v1')) + '1000abcd' + '2000beef');
  const okm = hkdfExpandRef(subkey, info, 72);
  for (const be of [nobleBackend, nodeBackend]) {
    const k = deriveSaKeys(be, subkey, 0x1000abcd, 0x2000beef);
    assert.deepEqual(k.encCtaToSc, okm.slice(0, 16));
    assert.deepEqual(k.authCtaToSc, okm.slice(16, 36));
    assert.deepEqual(k.encScToCta, okm.slice(36, 52));
    assert.deepEqual(k.authScToCta, okm.slice(52, 72));
  }
  // Swapping the SPIs or changing the subkey changes everything.
  const swapped = deriveSaKeys(b, subkey, 0x2000beef, 0x1000abcd);
  assert.notDeepEqual(swapped.encCtaToSc, deriveSaKeys(b, subkey, 0x1000abcd, 0x2000beef).encCtaToSc);
  assert.throws(() => deriveSaKeys(b, subkey, -1, 0));
  assert.throws(() => deriveSaKeys(b, subkey, 0, 2 ** 32));
});

test('ESP seal: RFC 4303 layout, AES-128-CBC body and HMAC-SHA1-96 ICV checked with node:crypto', () => {
  for (const len of [0, 1, 13, 14, 15, 16, 30, 31, 100]) {
    const payload = new Uint8Array(len).map((_, i) => i * 7);
    const pkt = espSeal(b, { spi: 0xdeadbeef, seq: 42, encKey: ENC, authKey: AUTH }, payload, ESP_NEXT_HEADER.UDP, IV);
    assert.equal(toHex(pkt.subarray(0, 8)), 'deadbeef0000002a');
    assert.deepEqual(pkt.subarray(8, 24), IV);
    const ct = pkt.subarray(24, pkt.length - 12);
    assert.equal(ct.length % 16, 0);
    const icv = createHmac('sha1', AUTH).update(pkt.subarray(0, pkt.length - 12)).digest().subarray(0, 12);
    assert.equal(toHex(pkt.subarray(pkt.length - 12)), icv.toString('hex'));
    const d = createDecipheriv('aes-128-cbc', ENC, IV).setAutoPadding(false);
    const pt = Buffer.concat([d.update(ct), d.final()]);
    const padLen = pt[pt.length - 2];
    assert.equal(pt[pt.length - 1], 17);
    assert.ok(padLen < 16, 'minimal padding');
    assert.deepEqual([...pt.subarray(len, len + padLen)], Array.from({ length: padLen }, (_, i) => i + 1));
    assert.deepEqual(new Uint8Array(pt.subarray(0, len)), payload);
    const o = espOpen(b, { encKey: ENC, authKey: AUTH }, pkt);
    assert.deepEqual(o, { spi: 0xdeadbeef, seq: 42, payload, nextHeader: 17 });
    assert.equal(espPeekSpi(pkt), 0xdeadbeef);
  }
  // Random IVs differ between packets.
  const p1 = espSeal(b, { spi: 1, seq: 1, encKey: ENC, authKey: AUTH }, new Uint8Array(5), 59);
  const p2 = espSeal(b, { spi: 1, seq: 1, encKey: ENC, authKey: AUTH }, new Uint8Array(5), 59);
  assert.notDeepEqual(p1.subarray(8, 24), p2.subarray(8, 24));
  // Cross-backend: sealed with node, opened with noble.
  const p3 = espSeal(nodeBackend, { spi: 7, seq: 9, encKey: ENC, authKey: AUTH }, fromAscii('hello'), 59);
  assert.equal(toAscii(espOpen(b, { encKey: ENC, authKey: AUTH }, p3).payload), 'hello');
});

test('ESP with NULL encryption: no IV, 4-byte aligned trailer in the clear, still authenticated', () => {
  const pkt = espSeal(b, { spi: 5, seq: 3, encKey: null, authKey: AUTH }, fromAscii('abcde'), 59);
  assert.equal(toHex(pkt.subarray(0, pkt.length - 12)), '00000005' + '00000003' + toHex(fromAscii('abcde')) + '01' + '01' + '3b');
  assert.equal(toAscii(espOpen(b, { encKey: null, authKey: AUTH }, pkt).payload), 'abcde');
  const t = pkt.slice();
  t[9] ^= 1;
  assert.throws(() => espOpen(b, { encKey: null, authKey: AUTH }, t), CryptoError);
});

test('ESP open: any tampering or a wrong key is a CryptoError; malformed sizes are DecodeErrors', () => {
  const sa = { spi: 0x01020304, seq: 77, encKey: ENC, authKey: AUTH };
  const pkt = espSeal(b, sa, fromAscii('RQNT 1201 aaln/1@cta1 MGCP 1.0 NCS 1.0\r\n'), 59, IV);
  for (let i = 0; i < pkt.length; i++) {
    const t = pkt.slice();
    t[i] ^= 0x80;
    assert.throws(() => espOpen(b, { encKey: ENC, authKey: AUTH }, t), CryptoError, `byte ${i}`);
  }
  assert.throws(() => espOpen(b, { encKey: ENC, authKey: AUTH.slice().fill(0) }, pkt), CryptoError);
  // The ICV is checked BEFORE decryption: a wrong encryption key with the right
  // auth key authenticates, then fails on padding (garbage plaintext) or yields garbage.
  for (let n = 0; n < pkt.length; n++) {
    const cut = pkt.subarray(0, n);
    assert.throws(() => espOpen(b, { encKey: ENC, authKey: AUTH }, cut), (e: Error) => e instanceof DecodeError || e instanceof CryptoError, `len ${n}`);
  }
  assert.throws(() => espOpen(b, { encKey: ENC, authKey: AUTH }, pkt.subarray(0, 8 + 16 + 12)), DecodeError, 'no ciphertext');
  assert.throws(() => espOpen(b, { encKey: ENC, authKey: AUTH }, concat([pkt.subarray(0, 40), pkt.subarray(41)])), DecodeError, 'not whole blocks');
  assert.throws(() => espOpen(b, { encKey: ENC, authKey: AUTH }, new Uint8Array(ESP_MAX_PACKET + 4)), DecodeError, 'too big');
  assert.throws(() => espSeal(b, sa, new Uint8Array(ESP_MAX_PACKET), 59), DecodeError);
  assert.throws(() => espSeal(b, { ...sa, seq: 0 }, new Uint8Array(1), 59), DecodeError);
  assert.throws(() => espSeal(b, { ...sa, encKey: new Uint8Array(15) }, new Uint8Array(1), 59), CryptoError);
  assert.throws(() => espSeal(b, sa, new Uint8Array(1), 59, new Uint8Array(8)), CryptoError);
});

test('ESP open: authenticated but badly padded plaintext is a DecodeError', () => {
  const mk = (pt: Uint8Array) => {
    const c = createCipheriv('aes-128-cbc', ENC, IV).setAutoPadding(false);
    const body = concat([u32(9), u32(1), IV, new Uint8Array(Buffer.concat([c.update(pt), c.final()]))]);
    return concat([body, new Uint8Array(createHmac('sha1', AUTH).update(body).digest().subarray(0, 12))]);
  };
  const good = new Uint8Array(16);
  good.set([1, 2, 3], 11);
  good[14] = 3;
  good[15] = 59;
  assert.equal(espOpen(b, { encKey: ENC, authKey: AUTH }, mk(good)).payload.length, 11);
  const wrongPad = good.slice();
  wrongPad[12] = 9;
  assert.throws(() => espOpen(b, { encKey: ENC, authKey: AUTH }, mk(wrongPad)), /bad padding/);
  const longPad = good.slice();
  longPad[14] = 15;
  assert.throws(() => espOpen(b, { encKey: ENC, authKey: AUTH }, mk(longPad)), /pad length/);
});

/** The obvious (unbounded memory) definition the window must agree with. */
class RefWindow {
  seen = new Set<number>();
  top = 0;
  check(s: number) {
    if (s < 1 || s > 0xffffffff) return false;
    if (s > this.top) return true;
    return this.top - s < 64 && !this.seen.has(s);
  }
  update(s: number) {
    if (!this.check(s)) return false;
    this.seen.add(s);
    if (s > this.top) this.top = s;
    return true;
  }
}

test('replay window: RFC 4303 behaviour for old, duplicate, in-window and far-ahead numbers', () => {
  assert.equal(REPLAY_WINDOW_SIZE, 64);
  const w = new ReplayWindow();
  assert.equal(w.check(0), false, 'seq 0 is never valid');
  assert.ok(w.check(1));
  assert.ok(w.update(1));
  assert.equal(w.check(1), false, 'duplicate');
  assert.equal(w.update(1), false);
  assert.ok(w.update(100));
  assert.equal(w.top, 100);
  assert.ok(w.check(37), 'top-63 is the oldest in the window');
  assert.equal(w.check(36), false, 'top-64 is outside');
  assert.ok(w.update(37));
  assert.equal(w.check(37), false);
  assert.ok(w.update(68), 'bit 32 crosses the word boundary');
  assert.ok(w.update(69), 'bit 31');
  assert.equal(w.check(68), false);
  assert.equal(w.check(69), false);
  assert.ok(w.check(70));
  // slide by exactly 32: bit 32/31 marks move to 132/131 distance
  assert.ok(w.update(132));
  assert.equal(w.check(100), false, 'still remembered after sliding 32');
  assert.equal(w.check(69), false, 'distance 63: the last slot, remembered as seen');
  assert.equal(w.check(68), false, 'distance 64: outside');
  assert.ok(w.check(70));
  assert.ok(w.update(0xffffffff), 'far ahead clears the window');
  assert.equal(w.check(0xffffffff), false);
  assert.ok(w.check(0xffffffff - 63));
  assert.equal(w.check(0xffffffff - 64), false);
  assert.equal(w.check(2 ** 32), false);
  w.reset();
  assert.ok(w.check(5));
});

test('replay window: matches the unbounded reference on random traffic with every shift size', () => {
  const r = new Prng(2024);
  for (let run = 0; run < 40; run++) {
    const w = new ReplayWindow();
    const ref = new RefWindow();
    let base = 1 + r.int(1000);
    for (let i = 0; i < 400; i++) {
      const mode = r.float();
      let s: number;
      if (mode < 0.5) s = base + r.int(70) - 64; // around the top
      else if (mode < 0.8) s = ref.top + 1 + r.int(70); // ahead by 1..70 (every shift incl. 32, 64)
      else s = ref.top - r.int(80); // behind/duplicate/old
      if (s < 0) s = 0;
      assert.equal(w.check(s), ref.check(s), `run ${run} step ${i} check ${s} top ${ref.top}`);
      assert.equal(w.update(s), ref.update(s), `run ${run} step ${i} update ${s}`);
      assert.equal(w.top, ref.top);
      base = ref.top;
    }
    // full sweep of the window against the reference
    for (let s = Math.max(0, ref.top - 70); s <= ref.top + 2; s++) assert.equal(w.check(s), ref.check(s), `sweep ${s}`);
  }
});

test('replay window + ESP: a replayed packet is refused after the first one is accepted', () => {
  const sa = { spi: 3, seq: 1, encKey: ENC, authKey: AUTH };
  const w = new ReplayWindow();
  const accept = (pkt: Uint8Array) => {
    const seq = (pkt[4] << 24) | (pkt[5] << 16) | (pkt[6] << 8) | pkt[7];
    if (!w.check(seq >>> 0)) return false;
    const o = espOpen(b, sa, pkt);
    return w.update(o.seq);
  };
  const p1 = espSeal(b, { ...sa, seq: 1 }, fromAscii('a'), 59);
  const p2 = espSeal(b, { ...sa, seq: 2 }, fromAscii('b'), 59);
  assert.ok(accept(p2));
  assert.ok(accept(p1), 'reordered but inside the window');
  assert.equal(accept(p1), false, 'replay');
  assert.equal(accept(p2), false, 'replay');
});

test('NCS helper: parse a command, build and parse "200 txid OK"', () => {
  const c = parseNcsCommand('RQNT 1201 aaln/1@cta1.example.net MGCP 1.0 NCS 1.0\r\nX: 0123456789AB\r\nR: hd\r\n\r\nv=0\r\n');
  assert.deepEqual(c, { verb: 'RQNT', txid: '1201', endpoint: 'aaln/1@cta1.example.net', version: 'MGCP 1.0 NCS 1.0', params: ['X: 0123456789AB', 'R: hd'] });
  assert.equal(parseNcsCommand('AUEP 9 aaln/1@cta MGCP 1.0').version, 'MGCP 1.0');
  assert.equal(buildNcsResponse('1201'), '200 1201 OK\r\n');
  assert.equal(buildNcsResponse('77', 510, 'bad'), '510 77 bad\r\n');
  assert.deepEqual(parseNcsResponse('200 1201 OK\r\n'), { code: 200, txid: '1201', comment: 'OK' });
  assert.deepEqual(parseNcsResponse('250 5'), { code: 250, txid: '5', comment: '' });
  const cmd = buildNcsCommand('CRCX', '31', 'aaln/1@cta1', ['C: A3C47F21456789F0', 'M: recvonly']);
  assert.deepEqual(parseNcsCommand(cmd).params, ['C: A3C47F21456789F0', 'M: recvonly']);
  for (const bad of [
    '',
    'rqnt 1 a@b MGCP 1.0',
    'RQNT 0 a@b MGCP 1.0',
    'RQNT 1234567890 a@b MGCP 1.0',
    'RQNT 1 ab MGCP 1.0',
    'RQNT 1 a@b SIP 2.0',
    'RQNT 1 a@b MGCP 1.0 NCS 2.0',
    'RQNT 1 a@b MGCP',
    'RQNT 1 a@b MGCP 1.0 \u00e9',
    'RQNT 1 a@b MGCP 1.0\u0000',
    'X'.repeat(3000),
  ]) {
    assert.throws(() => parseNcsCommand(bad), DecodeError, JSON.stringify(bad.slice(0, 40)));
  }
  for (const bad of ['20 1 OK', '200 x OK', '200', 'abc 1 OK']) assert.throws(() => parseNcsResponse(bad), DecodeError, bad);
  assert.throws(() => buildNcsResponse('0'), DecodeError);
  assert.throws(() => buildNcsResponse('1', 99), DecodeError);
});

test('a call-control command crosses the SA in both directions', () => {
  const keys = deriveSaKeys(b, fromHex('00112233445566778899aabbccddeeff'), 0x1000abcd, 0x2000beef);
  const scToCta = { spi: 0x1000abcd, seq: 1, encKey: keys.encScToCta, authKey: keys.authScToCta };
  const ctaToSc = { spi: 0x2000beef, seq: 1, encKey: keys.encCtaToSc, authKey: keys.authCtaToSc };
  const req = buildNcsCommand('RQNT', '1201', 'aaln/1@cta1.example.net', ['R: hd']);
  const pkt = espSeal(b, scToCta, fromAscii(req), ESP_NEXT_HEADER.UDP);
  assert.equal(toAscii(pkt).includes('RQNT'), false, 'encrypted on the wire');
  const got = parseNcsCommand(toAscii(espOpen(b, { encKey: keys.encScToCta, authKey: keys.authScToCta }, pkt).payload));
  const resp = espSeal(b, ctaToSc, fromAscii(buildNcsResponse(got.txid)), ESP_NEXT_HEADER.UDP);
  assert.deepEqual(parseNcsResponse(toAscii(espOpen(b, { encKey: keys.encCtaToSc, authKey: keys.authCtaToSc }, resp).payload)), { code: 200, txid: '1201', comment: 'OK' });
  // The directions use different keys: the SC->CTA keys cannot open CTA->SC packets.
  assert.throws(() => espOpen(b, { encKey: keys.encScToCta, authKey: keys.authScToCta }, resp), CryptoError);
});
