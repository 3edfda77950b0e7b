// RFC 4120 message codecs: byte-exact round trips, truncation, mutation fuzz,
// ticket pass-through, MIT quirks, principal strings, constants.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as k from '../firmware/proto/krb5.ts';
import { DecodeError } from '../firmware/proto/errors.ts';
import { concat, fromHex, toHex } from '../firmware/proto/bytes.ts';
import { encApp, encCtx, encInt, encOctets, encSeq, encStr, encTime, tlv } from '../firmware/proto/der.ts';
import { CODECS, prng, stripDecoded, ticket, asRep, apReq, encKdcRepPartMin, krbErrorFull, methodData, etypeInfo2, REALM, T0, sname } from './helpers/asn1.ts';

function expectDecodeError(fn: () => unknown, label: string): DecodeError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DecodeError, `${label}: expected DecodeError, got ${(e as Error)?.stack ?? e}`);
    assert.doesNotMatch((e as Error).message, /internal error/, label);
    assert.ok((e as Error).message.length > 0);
    return e as DecodeError;
  }
  assert.fail(`${label}: expected a DecodeError`);
}

test('every type round-trips: decode(encode(x)) == x and encode(decode(b)) == b byte for byte', () => {
  let n = 0;
  for (const c of CODECS) {
    for (const s of c.samples) {
      const b = c.enc(s);
      const d = c.dec(b);
      assert.deepEqual(stripDecoded(d), s, `${c.name}: decode(encode(x))`);
      assert.equal(toHex(c.enc(d)), toHex(b), `${c.name}: encode(decode(b))`);
      assert.equal(toHex(c.enc(stripDecoded(d))), toHex(b), `${c.name}: re-encoded from fields`);
      n++;
    }
  }
  assert.ok(n >= 40);
});

test('decoded values do not alias the input buffer', () => {
  const b = k.encodeApReq(apReq);
  const d = k.decodeApReq(b);
  const copy = toHex(d.authenticator.cipher) + toHex(d.ticket.raw!);
  b.fill(0);
  assert.equal(toHex(d.authenticator.cipher) + toHex(d.ticket.raw!), copy);
});

test('every truncation of every encoded sample is a DecodeError', () => {
  for (const c of CODECS) {
    for (const s of c.samples) {
      const b = c.enc(s);
      for (let i = 0; i < b.length; i++) expectDecodeError(() => c.dec(b.subarray(0, i)), `${c.name} truncated to ${i}/${b.length}`);
      expectDecodeError(() => c.dec(concat([b, new Uint8Array([0])])), `${c.name} + trailing byte`);
      expectDecodeError(() => c.dec(concat([b, b])), `${c.name} twice`);
    }
  }
});

test('length-field attacks: indefinite, non-minimal and huge outer lengths are DecodeErrors', () => {
  for (const c of CODECS) {
    const b = c.enc(c.samples[0]);
    const contentLen = b.length - (b[1] < 0x80 ? 2 : 2 + (b[1] & 0x7f));
    const content = b.subarray(b.length - contentLen);
    const withHdr = (h: string) => concat([new Uint8Array([b[0]]), fromHex(h), content]);
    expectDecodeError(() => c.dec(concat([withHdr('80'), new Uint8Array(2)])), `${c.name} indefinite`);
    expectDecodeError(() => c.dec(withHdr('84' + contentLen.toString(16).padStart(8, '0'))), `${c.name} 4-byte length`);
    expectDecodeError(() => c.dec(withHdr('82ffff')), `${c.name} 65535 claimed`);
    expectDecodeError(() => c.dec(withHdr('84ffffffff')), `${c.name} 4 GiB claimed`);
    if (contentLen < 0x80) expectDecodeError(() => c.dec(withHdr('81' + contentLen.toString(16).padStart(2, '0'))), `${c.name} non-minimal`);
    else expectDecodeError(() => c.dec(withHdr('83' + contentLen.toString(16).padStart(6, '0'))), `${c.name} non-minimal`);
  }
});

test('seeded random mutations yield a value or a DecodeError, never anything else', () => {
  const r = prng(0xc0ffee);
  const interesting = [0x00, 0x01, 0x7f, 0x80, 0x81, 0x82, 0x83, 0x84, 0xff, 0x30, 0xa0, 0x1b, 0x18, 0x02, 0x04, 0x03];
  let decoded = 0;
  let rejected = 0;
  for (const c of CODECS) {
    for (const s of c.samples) {
      const orig = c.enc(s);
      for (let i = 0; i < 150; i++) {
        let b: Uint8Array = orig.slice();
        const muts = 1 + (r() % 3);
        for (let m = 0; m < muts; m++) {
          const pos = r() % Math.max(1, b.length);
          switch (r() % 6) {
            case 0: b[pos] ^= 1 << (r() & 7); break;
            case 1: b[pos] = r() & 0xff; break;
            case 2: b[pos] = interesting[r() % interesting.length]; break;
            case 3: b = concat([b.subarray(0, pos), b.subarray(pos + 1)]); break;
            case 4: b = concat([b.subarray(0, pos), new Uint8Array([r() & 0xff]), b.subarray(pos)]); break;
            default: {
              const len = 1 + (r() % 8);
              b = concat([b.subarray(0, pos), b.subarray(pos, pos + len), b.subarray(pos)]);
            }
          }
        }
        let v: unknown;
        try {
          v = c.dec(b);
        } catch (e) {
          assert.ok(e instanceof DecodeError, `${c.name} mutation ${i}: ${(e as Error)?.stack ?? e} on ${toHex(b)}`);
          assert.doesNotMatch((e as Error).message, /internal error/, `${c.name} on ${toHex(b)}`);
          rejected++;
          continue;
        }
        decoded++;
        // Whatever decodes must re-encode, and that encoding must be a fixed point.
        const again = c.enc(stripDecoded(v));
        assert.deepEqual(stripDecoded(c.dec(again)), stripDecoded(v), `${c.name} fixed point`);
      }
    }
  }
  assert.ok(rejected + decoded >= 5000, `ran ${rejected + decoded}`);
  assert.ok(rejected > decoded, `most mutations must be rejected (${rejected} vs ${decoded})`);
});

test('garbage and wrong message types are DecodeErrors', () => {
  const r = prng(42);
  for (let i = 0; i < 500; i++) {
    const b = new Uint8Array(1 + (r() % 64));
    for (let j = 0; j < b.length; j++) b[j] = r() & 0xff;
    for (const c of CODECS) {
      try {
        c.dec(b);
      } catch (e) {
        assert.ok(e instanceof DecodeError, `${c.name}: ${e}`);
      }
    }
  }
  const err = k.encodeKrbError(krbErrorFull);
  expectDecodeError(() => k.decodeAsRep(err), 'KRB-ERROR as AS-REP');
  expectDecodeError(() => k.decodeApRep(k.encodeApReq(apReq)), 'AP-REQ as AP-REP');
  expectDecodeError(() => k.decodeTgsRep(k.encodeAsRep(asRep)), 'AS-REP as TGS-REP');
  expectDecodeError(() => k.decodeKdcRep(err), 'KRB-ERROR as KDC-REP');
  expectDecodeError(() => k.decodeKdcReq(err), 'KRB-ERROR as KDC-REQ');
  expectDecodeError(() => k.decodeAsRep('abc' as unknown as Uint8Array), 'string input');
  expectDecodeError(() => k.decodeAsRep(undefined as unknown as Uint8Array), 'undefined input');
});

test('pvno and msg-type are checked', () => {
  const b = k.encodeApRep({ encPart: { etype: 17, cipher: new Uint8Array(4) } });
  // 6f LL 30 LL a0 03 02 01 05 a1 03 02 01 0f ...
  assert.equal(toHex(b.subarray(4, 14)), 'a003020105a10302010f');
  const badPvno = b.slice();
  badPvno[8] = 4;
  assert.match(expectDecodeError(() => k.decodeApRep(badPvno), 'pvno').message, /AP-REP\.pvno: expected 5, got 4/);
  const badType = b.slice();
  badType[13] = 14;
  assert.match(expectDecodeError(() => k.decodeApRep(badType), 'msg-type').message, /AP-REP\.msg-type/);
});

test('messageType sniffs the application tag', () => {
  assert.equal(k.messageType(k.encodeAsReq(CODECS.find((c) => c.name === 'AS-REQ')!.samples[0])), k.KRB_AS_REQ);
  assert.equal(k.messageType(k.encodeAsRep(asRep)), k.KRB_AS_REP);
  assert.equal(k.messageType(k.encodeKrbError(krbErrorFull)), k.KRB_ERROR);
  assert.equal(k.messageType(k.encodeApReq(apReq)), k.KRB_AP_REQ);
  assert.equal(k.messageType(new Uint8Array([0x30, 0])), -1);
  assert.equal(k.messageType(new Uint8Array(0)), -1);
  assert.equal(k.messageType(new Uint8Array([0x7f, 0x1e])), -1);
});

test('decodeKdcReq / decodeKdcRep report which message they saw', () => {
  const req = CODECS.find((c) => c.name === 'AS-REQ')!.samples[0];
  const tgsReq = k.encodeTgsReq(req);
  assert.equal(tgsReq[0], 0x6c);
  assert.equal(k.decodeKdcReq(tgsReq).msgType, k.KRB_TGS_REQ);
  const asReqBytes = k.encodeAsReq(req);
  const d = k.decodeKdcReq(asReqBytes);
  assert.equal(d.msgType, k.KRB_AS_REQ);
  // reqBodyRaw is the exact req-body DER (what TGS-REQ/FAST checksums cover).
  assert.equal(toHex(d.reqBodyRaw!), toHex(k.encodeKdcReqBody(req.reqBody)));
  assert.equal(k.decodeKdcRep(k.encodeTgsRep(asRep)).msgType, k.KRB_TGS_REP);
  assert.equal(k.decodeKdcRep(k.encodeAsRep(asRep)).msgType, k.KRB_AS_REP);
});

test('tickets pass through byte-exactly, even when not in our canonical form', () => {
  // A ticket whose kvno a peer sent as a signed INTEGER (-1): we decode it as
  // 4294967295, which would re-encode differently; raw keeps the original bytes.
  const encPart = encSeq([encCtx(0, encInt(17)), encCtx(1, tlv(0x02, new Uint8Array([0xff]))), encCtx(2, encOctets(fromHex('010203')))]);
  const raw = encApp(1, encSeq([encCtx(0, encInt(5)), encCtx(1, encStr(REALM)), encCtx(2, k.encodePrincipalName(sname)), encCtx(3, encPart)]));
  const dt = k.decodeTicket(raw);
  assert.equal(dt.realm, REALM);
  assert.equal(dt.encPart.kvno, 0xffffffff);
  assert.equal(toHex(dt.raw!), toHex(raw));
  const fromFields = k.encodeTicket({ realm: dt.realm, sname: dt.sname, encPart: dt.encPart });
  assert.notEqual(toHex(fromFields), toHex(raw), 'canonical re-encoding differs');
  // AS-REP carrying that ticket -> decode -> AP-REQ: the ticket bytes are unchanged.
  const rep = k.encodeAsRep({ ...asRep, ticket: dt });
  const got = k.decodeAsRep(rep);
  assert.equal(toHex(got.ticket.raw!), toHex(raw));
  assert.equal(toHex(k.ticketDer(rep)), toHex(raw));
  const ap = k.encodeApReq({ apOptions: k.AP_OPT_MUTUAL_REQUIRED, ticket: got.ticket, authenticator: apReq.authenticator });
  assert.equal(toHex(k.ticketDer(ap)), toHex(raw));
  assert.ok(toHex(ap).includes(toHex(raw)));
  assert.equal(toHex(k.decodeApReq(ap).ticket.raw!), toHex(raw));
});

test('ticketDer finds the ticket in AP-REQ, AS-REP and TGS-REP and nothing else', () => {
  const tb = k.encodeTicket(ticket);
  assert.equal(toHex(k.ticketDer(k.encodeApReq(apReq))), toHex(tb));
  assert.equal(toHex(k.ticketDer(k.encodeAsRep(asRep))), toHex(tb));
  assert.equal(toHex(k.ticketDer(k.encodeTgsRep(asRep))), toHex(tb));
  expectDecodeError(() => k.ticketDer(k.encodeKrbError(krbErrorFull)), 'KRB-ERROR');
  expectDecodeError(() => k.ticketDer(k.encodeApRep({ encPart: apReq.authenticator })), 'AP-REP');
  const ap = k.encodeApReq(apReq);
  for (let i = 0; i < ap.length; i++) expectDecodeError(() => k.ticketDer(ap.subarray(0, i)), `ticketDer truncated ${i}`);
});

test('EncKDCRepPart: encoded as [APPLICATION 25]; [APPLICATION 26] (MIT AS-REP) is accepted; others are not', () => {
  const b25 = k.encodeEncKdcRepPart(encKdcRepPartMin);
  assert.equal(b25[0], 0x79);
  const b26 = k.encodeEncKdcRepPart(encKdcRepPartMin, k.APP_ENC_TGS_REP_PART);
  assert.equal(b26[0], 0x7a);
  assert.equal(toHex(b26.subarray(1)), toHex(b25.subarray(1)));
  assert.deepEqual(k.decodeEncKdcRepPart(b26), k.decodeEncKdcRepPart(b25));
  const b27 = b25.slice();
  b27[0] = 0x7b;
  expectDecodeError(() => k.decodeEncKdcRepPart(b27), 'APPLICATION 27');
});

test('optional fields out of order or unknown are rejected', () => {
  // Fields come out in tag order...
  const full = k.encodeKrbError(krbErrorFull);
  const tags = (b: Uint8Array) => {
    // tags of the fields inside the SEQUENCE
    const out: number[] = [];
    let p = b[1] & 0x80 ? 2 + (b[1] & 0x7f) : 2;
    p += b[p + 1] & 0x80 ? 2 + (b[p + 1] & 0x7f) : 2;
    while (p < b.length) {
      out.push(b[p]);
      const l = b[p + 1];
      const n = l & 0x80 ? l & 0x7f : 0;
      let len = n ? 0 : l;
      for (let i = 0; i < n; i++) len = len * 256 + b[p + 2 + i];
      p += 2 + n + len;
    }
    return out;
  };
  assert.deepEqual(tags(full), [0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xab, 0xac]);
  // An unknown [13] field appended inside the SEQUENCE.
  const extra = k.encodeApRep({ encPart: apReq.authenticator });
  const inner = extra.subarray(extra[1] & 0x80 ? 2 + (extra[1] & 0x7f) : 2);
  const seqContent = inner.subarray(inner[1] & 0x80 ? 2 + (inner[1] & 0x7f) : 2);
  const withExtra = concat([seqContent, fromHex('ad03020100')]);
  const hdr = (tag: number, n: number) => (n < 128 ? new Uint8Array([tag, n]) : n < 256 ? new Uint8Array([tag, 0x81, n]) : new Uint8Array([tag, 0x82, n >> 8, n & 255]));
  const seqB = concat([hdr(0x30, withExtra.length), withExtra]);
  expectDecodeError(() => k.decodeApRep(concat([hdr(0x6f, seqB.length), seqB])), 'unknown field');
  // Out of order: cusec [3] before ctime [2] in a KRB-ERROR.
  const f = (n: number, x: Uint8Array) => encCtx(n, x);
  const tail = [f(4, encTime(T0)), f(5, encInt(0)), f(6, encInt(37)), f(9, encStr(REALM)), f(10, k.encodePrincipalName(sname))];
  const good = encApp(30, encSeq([f(0, encInt(5)), f(1, encInt(30)), f(2, encTime(T0)), f(3, encInt(7))].concat(tail)));
  assert.equal(k.decodeKrbError(good).cusec, 7);
  const swapped = encApp(30, encSeq([f(0, encInt(5)), f(1, encInt(30)), f(3, encInt(7)), f(2, encTime(T0))].concat(tail)));
  expectDecodeError(() => k.decodeKrbError(swapped), 'ctime/cusec swapped');
  const dup = encApp(30, encSeq([f(0, encInt(5)), f(1, encInt(30)), f(2, encTime(T0)), f(2, encTime(T0))].concat(tail)));
  expectDecodeError(() => k.decodeKrbError(dup), 'ctime twice');
  // Missing mandatory field: AP-REP without enc-part.
  const noEnc = seqContent.subarray(0, 10);
  const seq2 = concat([hdr(0x30, noEnc.length), noEnc]);
  expectDecodeError(() => k.decodeApRep(concat([hdr(0x6f, seq2.length), seq2])), 'missing enc-part');
});

test('KRB-ERROR e-data carries METHOD-DATA with ETYPE-INFO2 (the PREAUTH_REQUIRED reply)', () => {
  const e = k.decodeKrbError(k.encodeKrbError(krbErrorFull));
  assert.equal(e.errorCode, 25);
  const md = k.decodeMethodData(e.eData!);
  assert.deepEqual(md, methodData);
  const ei = k.findPaData(md, k.PA_ETYPE_INFO2)!;
  assert.deepEqual(k.decodeEtypeInfo2(ei.padataValue), etypeInfo2);
  assert.equal(k.findPaData(md, 999), undefined);
  assert.equal(k.findPaData(undefined, 2), undefined);
  expectDecodeError(() => k.decodeEtypeInfo2(fromHex('3000')), 'empty ETYPE-INFO2');
  assert.throws(() => k.encodeEtypeInfo2([]));
});

test('encoders reject values they cannot represent (plain Error)', () => {
  assert.throws(() => k.encodeKrbError({ ...krbErrorFull, susec: 1000000 }), /Microseconds/);
  assert.throws(() => k.encodeAuthenticator({ crealm: REALM, cname: sname, cusec: -1, ctime: T0 }), /Microseconds/);
  assert.throws(() => k.encodeAuthenticator({ crealm: REALM, cname: sname, cusec: 0, ctime: T0, seqNumber: -1 }), /UInt32/);
  assert.throws(() => k.encodeEncryptedData({ etype: 17, kvno: 2 ** 32, cipher: new Uint8Array(0) }), /UInt32/);
  assert.throws(() => k.encodeKdcReqBody({ kdcOptions: 0, realm: REALM, till: T0, nonce: -5, etype: [] }), /UInt32/);
  assert.throws(() => k.encodePrincipalName({ nameType: 1, nameString: ['\u0100'] }));
});

test('times: sub-second parts are dropped on the wire, microseconds travel separately', () => {
  const b = k.encodePaEncTsEnc({ patimestamp: T0 + 999, pausec: 999000 });
  assert.deepEqual(k.decodePaEncTsEnc(b), { patimestamp: T0, pausec: 999000 });
  assert.ok(toHex(b).includes(Buffer.from('20261128010203Z').toString('hex')));
});

test('flags and options: masks match RFC 4120 bit numbers', () => {
  const bit = (i: number) => 0x80000000 >>> i;
  assert.equal(k.AP_OPT_USE_SESSION_KEY, bit(1));
  assert.equal(k.AP_OPT_MUTUAL_REQUIRED, bit(2));
  assert.equal(k.KDC_OPT_FORWARDABLE, bit(1));
  assert.equal(k.KDC_OPT_RENEWABLE, bit(8));
  assert.equal(k.KDC_OPT_CANONICALIZE, bit(15));
  assert.equal(k.KDC_OPT_RENEWABLE_OK, bit(27));
  assert.equal(k.KDC_OPT_VALIDATE, bit(31));
  assert.equal(k.TKT_FLG_INITIAL, bit(9));
  assert.equal(k.TKT_FLG_PRE_AUTHENT, bit(10));
  assert.equal(k.TKT_FLG_OK_AS_DELEGATE, bit(13));
  const ap = k.encodeApReq(apReq);
  // ap-options [2] BIT STRING 00 20 00 00 00: mutual-required is bit 2.
  assert.ok(toHex(ap).includes('a20703050020000000'));
  assert.equal(k.decodeApReq(ap).apOptions & k.AP_OPT_MUTUAL_REQUIRED, k.AP_OPT_MUTUAL_REQUIRED);
});

test('constants carry the RFC 4120 values', () => {
  const want: [number, number][] = [
    [k.KRB_AS_REQ, 10], [k.KRB_AS_REP, 11], [k.KRB_TGS_REP, 13], [k.KRB_AP_REQ, 14], [k.KRB_AP_REP, 15], [k.KRB_ERROR, 30],
    [k.PA_ENC_TIMESTAMP, 2], [k.PA_ETYPE_INFO2, 19], [k.PA_PW_SALT, 3], [k.PA_TGS_REQ, 1],
    [k.NT_PRINCIPAL, 1], [k.NT_SRV_INST, 2], [k.NT_SRV_HST, 3],
    [k.KDC_ERR_C_PRINCIPAL_UNKNOWN, 6], [k.KDC_ERR_S_PRINCIPAL_UNKNOWN, 7], [k.KDC_ERR_ETYPE_NOSUPP, 14],
    [k.KDC_ERR_PREAUTH_FAILED, 24], [k.KDC_ERR_PREAUTH_REQUIRED, 25], [k.KRB_AP_ERR_BAD_INTEGRITY, 31],
    [k.KRB_AP_ERR_TKT_EXPIRED, 32], [k.KRB_AP_ERR_TKT_NYV, 33], [k.KRB_AP_ERR_REPEAT, 34], [k.KRB_AP_ERR_NOT_US, 35],
    [k.KRB_AP_ERR_BADMATCH, 36], [k.KRB_AP_ERR_SKEW, 37], [k.KRB_AP_ERR_MODIFIED, 41], [k.KRB_ERR_GENERIC, 60],
    [k.KU_AS_REQ_PA_ENC_TIMESTAMP, 1], [k.KU_KDC_REP_TICKET, 2], [k.KU_AS_REP_ENCPART, 3], [k.KU_AP_REQ_AUTH, 11], [k.KU_AP_REP_ENCPART, 12],
  ];
  want.forEach(([got, exp], i) => assert.equal(got, exp, `constant #${i}`));
});

test('principal strings: parse and print with MIT escapes', () => {
  const p = k.parsePrincipal('sc/sc1.example.net@EXAMPLE.NET');
  assert.deepEqual(p, { name: { nameType: k.NT_PRINCIPAL, nameString: ['sc', 'sc1.example.net'] }, realm: 'EXAMPLE.NET' });
  assert.equal(k.principalToString(p.name, p.realm), 'sc/sc1.example.net@EXAMPLE.NET');
  assert.equal(k.principalToString(p.name), 'sc/sc1.example.net');
  assert.equal(k.parsePrincipal('krbtgt/EXAMPLE.NET@EXAMPLE.NET').name.nameType, k.NT_SRV_INST);
  assert.equal(k.parsePrincipal('host/h@R', undefined, k.NT_SRV_HST).name.nameType, k.NT_SRV_HST);
  assert.deepEqual(k.parsePrincipal('cta-0001', 'DEF.REALM'), { name: { nameType: 1, nameString: ['cta-0001'] }, realm: 'DEF.REALM' });
  const esc = k.parsePrincipal('a\\/b/c\\@d\\\\e@R\\@S');
  assert.deepEqual(esc.name.nameString, ['a/b', 'c@d\\e']);
  assert.equal(esc.realm, 'R@S');
  assert.equal(k.principalToString(esc.name, esc.realm), 'a\\/b/c\\@d\\\\e@R\\@S');
  for (const names of [['x'], ['a', 'b', 'c'], ['tab\there', 'new\nline', 'sl/ash@at\\bs']]) {
    const s = k.principalToString({ nameType: 1, nameString: names }, 'REALM/WITH/SLASH');
    assert.deepEqual(k.parsePrincipal(s), { name: { nameType: 1, nameString: names }, realm: 'REALM/WITH/SLASH' });
  }
  for (const bad of ['', 'a@', '@R', 'a//b@R', 'a@R@S', 'a\\', 'noreal', 'a\\0b@R', '/a@R']) {
    expectDecodeError(() => k.parsePrincipal(bad), `parse ${JSON.stringify(bad)}`);
  }
  assert.ok(k.principalNameEquals(p.name, { nameType: 3, nameString: ['sc', 'sc1.example.net'] }));
  assert.ok(!k.principalNameEquals(p.name, { nameType: 1, nameString: ['sc'] }));
});
