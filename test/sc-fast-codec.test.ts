// The SC's host fast decoders/encoders (host-tools/sc/fast-decode.ts, fast-encode.ts)
// against the generic firmware codecs: same values on what the fast path accepts,
// the generic decoder's verdict (and DecodeError) everywhere else.
import test from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  decodeApRequestAny,
  decodeAuthenticatorAny,
  decodeEncTicketPartAny,
  fastApRequest,
  fastAuthenticator,
  fastEncTicketPart,
} from '../host-tools/sc/fast-decode.ts';
import { encodeApReplyFast, encodeEncApRepPartFast, WakeUpTemplate } from '../host-tools/sc/fast-encode.ts';
import { hmacPads } from '../host-tools/crypto/fast-krb.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import {
  decodeApReq,
  decodeAuthenticator,
  decodeEncTicketPart,
  encodeApRep,
  encodeApReq,
  encodeAuthenticator,
  encodeEncApRepPart,
  encodeEncTicketPart,
  AP_OPT_MUTUAL_REQUIRED,
} from '../firmware/proto/krb5.ts';
import { decodeApRequest, encodeApReply, encodeApRequest, encodeWakeUp, DOI, IPSEC_AUTH, IPSEC_ENC, KMMID } from '../firmware/proto/pktc.ts';
import { isDecodeError } from '../firmware/proto/errors.ts';

// Deterministic PRNG for mutations (reproducible failures).
let seed = 0x12345678;
function rnd(n: number): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
}

function mutants(b: Uint8Array, count: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let k = 0; k < count; k++) {
    const m = b.slice();
    const kind = rnd(6);
    if (kind === 0) m[rnd(m.length)] ^= 1 << rnd(8);
    else if (kind === 1) m[rnd(m.length)] = rnd(256);
    else if (kind === 2) out.push(m.subarray(0, rnd(m.length)));
    else if (kind === 3) {
      const i = rnd(m.length);
      const x = new Uint8Array(m.length + 1);
      x.set(m.subarray(0, i));
      x[i] = rnd(256);
      x.set(m.subarray(i), i + 1);
      out.push(x);
    } else if (kind === 4) {
      // a length byte nudged (headers are where the structure lives)
      const i = rnd(Math.min(m.length, 64));
      m[i] = (m[i] + (rnd(2) ? 1 : 255)) & 255;
    } else {
      const i = rnd(m.length);
      out.push(new Uint8Array([...m.subarray(0, i), ...m.subarray(i + 1)]));
    }
    if (kind === 0 || kind === 1 || kind === 4) out.push(m);
  }
  return out;
}

function verdict<T>(f: () => T): { ok: true; v: T } | { ok: false; msg: string } {
  try {
    return { ok: true, v: f() };
  } catch (e) {
    assert.ok(isDecodeError(e), `only DecodeError escapes, got ${(e as Error)?.stack}`);
    return { ok: false, msg: (e as Error).message };
  }
}

const PN = (...s: string[]) => ({ nameType: 1, nameString: s });
const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);

function authenticators(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const cusec of [0, 1, 127, 128, 32767, 32768, 999999]) {
    out.push(encodeAuthenticator({ crealm: 'EXAMPLE.NET', cname: PN('cta', 'cta1.example.net'), ctime: NOW + cusec * 1000, cusec }));
  }
  // optional fields: the fast path declines, the generic decodes
  out.push(encodeAuthenticator({ crealm: 'R', cname: PN('a'), ctime: NOW, cusec: 5, seqNumber: 7, subkey: { keytype: 17, keyvalue: new Uint8Array(16) } }));
  out.push(encodeAuthenticator({ crealm: 'R', cname: PN('a'), ctime: NOW, cusec: 5, cksum: { cksumtype: 16, checksum: new Uint8Array(12) } }));
  out.push(encodeAuthenticator({ crealm: 'A'.repeat(200), cname: PN('x'.repeat(300), 'y'), ctime: NOW, cusec: 9 }));
  return out;
}

function tickets(): Uint8Array[] {
  const base = {
    flags: 0x00600000,
    key: { keytype: 17, keyvalue: new Uint8Array(16).fill(7) },
    crealm: 'EXAMPLE.NET',
    cname: PN('cta', 'cta1.example.net'),
    transited: { trType: 1, contents: new Uint8Array(0) },
    authtime: NOW,
    endtime: NOW + 36000000,
  };
  return [
    encodeEncTicketPart(base),
    encodeEncTicketPart({ ...base, starttime: NOW, renewTill: NOW + 72000000 }),
    encodeEncTicketPart({ ...base, key: { keytype: 18, keyvalue: new Uint8Array(32).fill(9) }, flags: 0x01000000, transited: { trType: 0, contents: new Uint8Array(40) } }),
    encodeEncTicketPart({ ...base, caddr: [{ addrType: 2, address: new Uint8Array([127, 0, 0, 1]) }] }),
    encodeEncTicketPart({ ...base, authorizationData: [{ adType: 1, adData: new Uint8Array(3) }] }),
  ];
}

function apRequests(): Uint8Array[] {
  const out: Uint8Array[] = [];
  const key = new Uint8Array(20).fill(3);
  for (const kvno of [undefined, 1, 200, 0x80000000]) {
    for (const cipherLen of [40, 130, 300]) {
      const apReq = encodeApReq({
        apOptions: AP_OPT_MUTUAL_REQUIRED,
        ticket: { realm: 'EXAMPLE.NET', sname: { nameType: 2, nameString: ['sc', 'sc1.example.net'] }, encPart: { etype: 17, kvno, cipher: randomBytes(cipherLen) } },
        authenticator: { etype: 17, cipher: randomBytes(cipherLen >> 1) },
      });
      for (const cs of [[{ auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC }], [{ auth: 2, enc: 0x0b }, { auth: 1, enc: 0x0c }, { auth: 9, enc: 9 }]]) {
        out.push(encodeApRequest(nodeBackend, key, { kmmid: KMMID.AP_REQUEST, doi: DOI.IPSEC, apReq, serverNonce: 0xdeadbeef, appData: { spi: 0x1234 }, ciphersuites: cs, reestablish: cs.length > 1 }));
      }
    }
  }
  // SNMPv3 DOI and an authenticator with a kvno: generic path
  const apReq = encodeApReq({ apOptions: 0, ticket: { realm: 'R', sname: PN('s'), encPart: { etype: 18, kvno: 2, cipher: randomBytes(60) } }, authenticator: { etype: 18, kvno: 3, cipher: randomBytes(50) } });
  out.push(encodeApRequest(nodeBackend, key, { kmmid: KMMID.AP_REQUEST, doi: DOI.IPSEC, apReq, serverNonce: 0, appData: { spi: 1 }, ciphersuites: [{ auth: 2, enc: 12 }], reestablish: false }));
  out.push(
    encodeApRequest(nodeBackend, key, {
      kmmid: KMMID.AP_REQUEST,
      doi: DOI.SNMPV3,
      apReq,
      serverNonce: 5,
      appData: { engineId: new Uint8Array(8), engineBoots: 1, engineTime: 2, userName: 'u' },
      ciphersuites: [{ auth: 0x22, enc: 0x20 }],
      reestablish: false,
    }),
  );
  return out;
}

function genericApRequest(b: Uint8Array) {
  const m = decodeApRequest(b);
  const q = decodeApReq(m.apReq);
  return {
    doi: m.doi,
    serverNonce: m.serverNonce,
    spi: m.doi === DOI.IPSEC ? (m.appData as { spi: number }).spi : 0,
    ciphersuites: m.ciphersuites,
    signed: [...m.signed],
    hmac: [...m.hmac],
    realm: q.ticket.realm,
    sname: q.ticket.sname,
    tktEtype: q.ticket.encPart.etype,
    tktKvno: q.ticket.encPart.kvno,
    tktCipher: [...q.ticket.encPart.cipher],
    authEtype: q.authenticator.etype,
    authCipher: [...q.authenticator.cipher],
  };
}
function plainParts(x: ReturnType<typeof decodeApRequestAny>) {
  return { ...x, signed: [...x.signed], hmac: [...x.hmac], tktCipher: [...x.tktCipher], authCipher: [...x.authCipher] };
}

test('fast AP Request decoder: same fields as the generic decoders; same verdicts on mutated inputs', () => {
  let fast = 0;
  let total = 0;
  for (const valid of apRequests()) {
    for (const b of [valid, ...mutants(valid, 300)]) {
      total++;
      const g = verdict(() => genericApRequest(b));
      const f = fastApRequest(b);
      if (f) {
        fast++;
        assert.ok(g.ok, `fast path accepted what the generic rejects: ${!g.ok && g.msg}`);
        assert.deepEqual(plainParts(f), g.v);
      }
      const any = verdict(() => plainParts(decodeApRequestAny(b)));
      assert.equal(any.ok, g.ok);
      if (any.ok && g.ok) assert.deepEqual(any.v, g.v);
      else if (!any.ok && !g.ok) assert.equal(any.msg, g.msg);
    }
  }
  assert.ok(fast > apRequests().length, `fast path taken ${fast}/${total}`);
});

test('fast EncTicketPart decoder: same fields; generic verdicts on mutated inputs', () => {
  let fast = 0;
  for (const valid of tickets()) {
    for (const b of [valid, ...mutants(valid, 300)]) {
      const g = verdict(() => decodeEncTicketPart(b));
      const f = fastEncTicketPart(b);
      if (f) {
        fast++;
        assert.ok(g.ok, 'fast path accepted what the generic rejects');
        const v = g.ok ? g.v : null!;
        const want: Record<string, unknown> = { flags: v.flags, key: v.key, crealm: v.crealm, cname: v.cname, authtime: v.authtime, endtime: v.endtime };
        if (v.starttime !== undefined) want.starttime = v.starttime;
        assert.deepEqual(f, want);
      }
      const any = verdict(() => decodeEncTicketPartAny(b));
      assert.equal(any.ok, g.ok);
      if (!any.ok && !g.ok) assert.equal(any.msg, g.msg);
    }
  }
  assert.ok(fast >= 3);
  // caddr / authorization-data: declined by the fast path, decoded by the generic one
  assert.equal(fastEncTicketPart(tickets()[3]), null);
  assert.ok(decodeEncTicketPartAny(tickets()[4]));
});

test('fast Authenticator decoder: same fields; generic verdicts on mutated inputs', () => {
  let fast = 0;
  for (const valid of authenticators()) {
    for (const b of [valid, ...mutants(valid, 300)]) {
      const g = verdict(() => decodeAuthenticator(b));
      const f = fastAuthenticator(b);
      if (f) {
        fast++;
        assert.ok(g.ok, 'fast path accepted what the generic rejects');
        const v = g.ok ? g.v : null!;
        assert.deepEqual(f, { crealm: v.crealm, cname: v.cname, cusec: v.cusec, ctime: v.ctime });
      }
      const any = verdict(() => decodeAuthenticatorAny(b));
      assert.equal(any.ok, g.ok);
      if (!any.ok && !g.ok) assert.equal(any.msg, g.msg);
    }
  }
  assert.ok(fast >= 8);
});

test('fast decoders\' KerberosTime memo: valid times only, by their exact digits, slot collisions kept apart', () => {
  const au = (ctime: number) => encodeAuthenticator({ crealm: 'R', cname: PN('a'), ctime, cusec: 1 });
  // Two times whose 14 digits share a slot (same value mod 4096), each decoded twice, alternately.
  const a = Date.UTC(2025, 5, 1, 12, 0, 0);
  let b = a + 1000;
  const key = (ms: number) => Number(new Date(ms).toISOString().replace(/[-:T]|\.000Z/g, ''));
  while (key(b) % 4096 !== key(a) % 4096) b += 1000;
  for (let i = 0; i < 2; i++) {
    assert.equal(fastAuthenticator(au(a))!.ctime, a);
    assert.equal(fastAuthenticator(au(b))!.ctime, b);
  }
  // An impossible time is refused every time (never remembered), after a valid one with the same slot neighbours.
  const good = au(Date.UTC(2026, 1, 28, 0, 0, 0));
  const at = Buffer.from(good).indexOf('20260228000000Z');
  assert.ok(at > 0);
  for (const [digits, ok] of [['20260228000000Z', true], ['20260230000000Z', false], ['20260230000000Z', false], ['2026022800000+Z', false], ['20260228000000Y', false], ['20260228000000Z', true]] as const) {
    const m = good.slice();
    m.set(Buffer.from(digits, 'latin1'), at);
    const f = fastAuthenticator(m);
    assert.equal(f !== null, ok, digits);
    if (ok) assert.equal(f!.ctime, Date.UTC(2026, 1, 28));
    assert.equal(verdict(() => decodeAuthenticatorAny(m)).ok, ok, digits);
  }
});

test('fast encoders: byte-identical to the generic Wake Up, EncAPRepPart and AP Reply', () => {
  const w = new WakeUpTemplate('sc/sc1.example.net@EXAMPLE.NET');
  for (const nonce of [1, 0x80000000, 0xffffffff, 12345]) {
    assert.deepEqual(w.encode(nonce), encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: nonce, serverPrincipal: 'sc/sc1.example.net@EXAMPLE.NET' }));
  }
  for (const cusec of [0, 1, 127, 128, 255, 256, 32767, 32768, 65535, 999999]) {
    for (const [kt, len] of [[17, 16], [18, 32], [20, 32]]) {
      const key = randomBytes(len);
      const ctime = NOW + cusec * 7000;
      assert.deepEqual(encodeEncApRepPartFast(ctime, cusec, kt, key), encodeEncApRepPart({ ctime, cusec, subkey: { keytype: kt, keyvalue: key } }));
    }
  }
  const ki = randomBytes(16);
  const pads = hmacPads(ki);
  for (const len of [28, 60, 100, 127, 128, 200, 255, 256, 300, 1000]) {
    const cipher = randomBytes(len);
    for (const [re, ack] of [[false, true], [true, false]]) {
      const cs = { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.NULL };
      const fast = encodeApReplyFast(pads, 18, cipher, 0xabcdef01, cs, 604800, 3600, re, ack);
      const gen = encodeApReply(nodeBackend, ki, {
        kmmid: KMMID.AP_REPLY,
        doi: DOI.IPSEC,
        apRep: encodeApRep({ encPart: { etype: 18, cipher } }),
        appData: { spi: 0xabcdef01 },
        ciphersuite: cs,
        saLifetime: 604800,
        gracePeriod: 3600,
        reestablish: re,
        ackRequired: ack,
      });
      assert.deepEqual(fast, gen, `cipher ${len}`);
    }
  }
  assert.equal(encodeApReplyFast(pads, 17, new Uint8Array(4100), 1, { auth: 2, enc: 12 }, 1, 1, false, true), null);
});

test('UsageKey.encrypt: one kept CBC context, every message still the generic bytes (the chain restarts at IV 0)', async () => {
  const { UsageKey } = await import('../host-tools/crypto/fast-krb.ts');
  const { encrypt } = await import('../firmware/proto/crypto/index.ts');
  for (const [etype, len] of [[17, 16], [18, 32]]) {
    const base = randomBytes(len);
    const uk = UsageKey.derive(etype, base, 12);
    for (let i = 0; i < 40; i++) {
      const pt = randomBytes(rnd(120));
      const conf = randomBytes(16);
      const fixed = { ...nodeBackend, randomBytes: (n: number) => (n === 16 ? conf.slice() : nodeBackend.randomBytes(n)) };
      assert.deepEqual(uk.encrypt(pt, conf), encrypt(fixed, etype, base, 12, pt), `etype ${etype} message ${i} (${pt.length} bytes)`);
    }
    uk.wipe();
  }
});
