// The AS exchange as a pure function: each RFC 4120 rule the embedded KDC applies.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KdcDatabase } from '../host-tools/kdc/db.ts';
import { handleAsReq, processAsReq } from '../host-tools/kdc/as.ts';
import { buildAsReq, paEncTimestamp, openAsRep, type AsReqSpec } from '../host-tools/kdc/client.ts';
import { decrypt, randomKey } from '../firmware/proto/crypto/index.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { toHex } from '../firmware/proto/bytes.ts';
import {
  decodeEncTicketPart,
  decodeEtypeInfo2,
  decodeKrbError,
  decodeMethodData,
  encodeEncryptedData,
  encodeTgsReq,
  findPaData,
  messageType,
  KRB_AS_REP,
  KRB_ERROR,
  KU_KDC_REP_TICKET,
  PA_ENC_TIMESTAMP,
  PA_ETYPE_INFO2,
  KDC_OPT_FORWARDABLE,
  KDC_OPT_RENEWABLE,
  KDC_OPT_POSTDATED,
  TKT_FLG_FORWARDABLE,
  TKT_FLG_INITIAL,
  TKT_FLG_PRE_AUTHENT,
  TKT_FLG_RENEWABLE,
  ADDRTYPE_INET,
  KDC_ERR_C_PRINCIPAL_UNKNOWN,
  KDC_ERR_S_PRINCIPAL_UNKNOWN,
  KDC_ERR_ETYPE_NOSUPP,
  KDC_ERR_PREAUTH_FAILED,
  KDC_ERR_PREAUTH_REQUIRED,
  KDC_ERR_CANNOT_POSTDATE,
  KDC_ERR_NEVER_VALID,
  KRB_AP_ERR_SKEW,
  KRB_AP_ERR_MSG_TYPE,
  KRB_ERR_GENERIC,
  type KrbError,
} from '../firmware/proto/krb5.ts';

const REALM = 'EXAMPLE.NET';
const NOW = 1_700_000_000_123; // a fake clock: ms since 1970
const HOUR = 3600_000;
const CTA = ['cta', 'cta1.example.net'];
const SC = ['sc', 'sc1.example.net'];
let dir: string;
let db: KdcDatabase;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kdc-as-'));
  db = KdcDatabase.init(join(dir, 'kdc.db'), REALM, { now: () => NOW });
  db.addPrincipal('cta/cta1.example.net', { enctypes: [18, 17, 19] });
  db.addPrincipal('sc/sc1.example.net', { enctypes: [18, 17] });
  db.addPrincipal('sc/only19', { enctypes: [19] });
  db.addPrincipal('nopreauth', { enctypes: [17], requiresPreauth: false });
  db.addPrincipal('shortlife', { enctypes: [18], maxLifeSec: 600 });
  db.addPrincipal('cta/kvno2', { enctypes: [17], kvno: 2 });
  db.addPrincipal('sc/kvno7', { enctypes: [18], kvno: 7 });
});
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function keyOf(name: string, etype: number): { key: Uint8Array; kvno: number } {
  const k = db.getKeys(name)!.keys.find((x) => x.etype === etype);
  assert.ok(k, `${name} has no ${etype} key`);
  return { key: k.key, kvno: k.kvno };
}

function req(over: Partial<AsReqSpec> = {}): AsReqSpec {
  return { client: CTA, server: SC, realm: REALM, etypes: [18, 17, 19], nonce: 0x12345678, till: NOW + 8 * HOUR, ...over };
}

function withPreauth(spec: AsReqSpec, etype: number, at = NOW, key?: Uint8Array): Uint8Array {
  const k = keyOf(spec.client.join('/'), etype);
  return buildAsReq({ ...spec, padata: [paEncTimestamp(etype, key ?? k.key, k.kvno, at)] });
}

function krbError(reply: Uint8Array): KrbError {
  assert.equal(messageType(reply), KRB_ERROR, 'expected a KRB-ERROR');
  return decodeKrbError(reply);
}

test('no PA-ENC-TIMESTAMP: PREAUTH_REQUIRED with METHOD-DATA (ETYPE-INFO2 in the client order with salts, PA-ENC-TIMESTAMP)', () => {
  for (const etypes of [
    [18, 17, 19],
    [19, 17],
    [17, 23, 18],
  ]) {
    const e = krbError(handleAsReq(db, buildAsReq(req({ etypes })), NOW));
    assert.equal(e.errorCode, KDC_ERR_PREAUTH_REQUIRED);
    assert.equal(e.realm, REALM);
    assert.deepEqual(e.sname.nameString, SC);
    assert.deepEqual(e.cname?.nameString, CTA);
    assert.ok(e.eData, 'e-data');
    const md = decodeMethodData(e.eData);
    const info = decodeEtypeInfo2(findPaData(md, PA_ETYPE_INFO2)!.padataValue);
    assert.deepEqual(
      info.map((x) => x.etype),
      etypes.filter((x) => x !== 23),
    );
    for (const x of info) assert.equal(x.salt, 'EXAMPLE.NETctacta1.example.net');
    assert.ok(findPaData(md, PA_ENC_TIMESTAMP), 'PA-ENC-TIMESTAMP offered');
  }
});

test('successful pre-authentication: AS-REP opens with the client key, ticket with the service key, fields right', () => {
  const caddr = [{ addrType: ADDRTYPE_INET, address: new Uint8Array([192, 0, 2, 7]) }];
  for (const [etypes, paEtype, wantSession] of [
    [[18, 17, 19], 18, 18],
    [[17, 18], 17, 17],
    [[19, 18], 19, 18], // the service has no 19 key: session key is the next requested one it has
  ] as [number[], number, number][]) {
    const spec = req({ etypes, addresses: caddr, kdcOptions: KDC_OPT_FORWARDABLE });
    const out = processAsReq(db, withPreauth(spec, paEtype), NOW);
    assert.equal(out.outcome.error, undefined, out.outcome.reason);
    const reply = out.reply!;
    assert.equal(messageType(reply), KRB_AS_REP);
    const { rep, enc } = openAsRep(reply, keyOf('cta/cta1.example.net', paEtype).key);
    assert.equal(rep.encPart.etype, paEtype);
    assert.equal(rep.encPart.kvno, 1);
    assert.equal(rep.crealm, REALM);
    assert.deepEqual(rep.cname.nameString, CTA);
    assert.equal(enc.nonce, 0x12345678);
    assert.equal(enc.key.keytype, wantSession);
    assert.equal(enc.key.keyvalue.length, wantSession === 18 ? 32 : 16);
    assert.equal(enc.srealm, REALM);
    assert.deepEqual(enc.sname.nameString, SC);
    const sec = NOW - (NOW % 1000);
    assert.equal(enc.authtime, sec);
    assert.equal(enc.starttime, sec);
    assert.equal(enc.endtime, sec + 8 * HOUR);
    assert.equal(enc.flags & (TKT_FLG_INITIAL | TKT_FLG_PRE_AUTHENT | TKT_FLG_FORWARDABLE), TKT_FLG_INITIAL | TKT_FLG_PRE_AUTHENT | TKT_FLG_FORWARDABLE);
    assert.deepEqual(enc.caddr, caddr);
    // The ticket: for the service, under its first (strongest) key, usage 2.
    assert.equal(rep.ticket.realm, REALM);
    assert.deepEqual(rep.ticket.sname.nameString, SC);
    assert.equal(rep.ticket.encPart.etype, 18);
    assert.equal(rep.ticket.encPart.kvno, 1);
    const etp = decodeEncTicketPart(decrypt(nodeBackend, 18, keyOf('sc/sc1.example.net', 18).key, KU_KDC_REP_TICKET, rep.ticket.encPart.cipher));
    assert.deepEqual(etp.key, enc.key);
    assert.equal(etp.crealm, REALM);
    assert.deepEqual(etp.cname.nameString, CTA);
    assert.equal(etp.flags, enc.flags);
    assert.equal(etp.authtime, enc.authtime);
    assert.equal(etp.starttime, enc.starttime);
    assert.equal(etp.endtime, enc.endtime);
    assert.deepEqual(etp.caddr, caddr);
    assert.equal(etp.transited.contents.length, 0);
    // The ticket does not open with the client's key, nor the reply with the service's.
    assert.throws(() => decrypt(nodeBackend, 18, keyOf('cta/cta1.example.net', 18).key, KU_KDC_REP_TICKET, rep.ticket.encPart.cipher));
  }
});

test('end time is the least of the requested till and the principals\' max life; renewable and infinite till', () => {
  // till far away: capped at 10 h (default max life).
  let o = openAsRep(handleAsReq(db, withPreauth(req({ till: NOW + 100 * HOUR }), 18), NOW), keyOf('cta/cta1.example.net', 18).key);
  const sec = NOW - (NOW % 1000);
  assert.equal(o.enc.endtime, sec + 10 * HOUR);
  assert.equal(o.enc.flags & TKT_FLG_RENEWABLE, 0);
  // till = 0 (MIT's "no limit"): capped as well.
  o = openAsRep(handleAsReq(db, withPreauth(req({ till: 0 }), 18), NOW), keyOf('cta/cta1.example.net', 18).key);
  assert.equal(o.enc.endtime, sec + 10 * HOUR);
  // A service with a 10-minute max life caps it further.
  o = openAsRep(handleAsReq(db, withPreauth(req({ server: ['shortlife'] }), 18), NOW), keyOf('cta/cta1.example.net', 18).key);
  assert.equal(o.enc.endtime, sec + 600_000);
  // Renewable on request, up to the max renewable life.
  o = openAsRep(handleAsReq(db, withPreauth(req({ kdcOptions: KDC_OPT_RENEWABLE, rtime: NOW + 48 * HOUR }), 18), NOW), keyOf('cta/cta1.example.net', 18).key);
  assert.ok(o.enc.flags & TKT_FLG_RENEWABLE);
  assert.equal(o.enc.renewTill, sec + 48 * HOUR);
  assert.equal(o.enc.flags & TKT_FLG_FORWARDABLE, 0, 'not forwardable unless asked');
  // A till in the past: never valid.
  assert.equal(krbError(handleAsReq(db, withPreauth(req({ till: NOW - HOUR }), 18), NOW)).errorCode, KDC_ERR_NEVER_VALID);
  // Postdating is not offered.
  assert.equal(krbError(handleAsReq(db, withPreauth(req({ kdcOptions: KDC_OPT_POSTDATED }), 18), NOW)).errorCode, KDC_ERR_CANNOT_POSTDATE);
});

test('unknown client -> C_PRINCIPAL_UNKNOWN (6); unknown service -> S_PRINCIPAL_UNKNOWN (7); other realm too', () => {
  assert.equal(krbError(handleAsReq(db, buildAsReq(req({ client: ['cta', 'nobody.example.net'] })), NOW)).errorCode, KDC_ERR_C_PRINCIPAL_UNKNOWN);
  assert.equal(krbError(handleAsReq(db, buildAsReq(req({ server: ['sc', 'nobody.example.net'] })), NOW)).errorCode, KDC_ERR_S_PRINCIPAL_UNKNOWN);
  assert.equal(krbError(handleAsReq(db, buildAsReq(req({ realm: 'OTHER.NET' })), NOW)).errorCode, KDC_ERR_C_PRINCIPAL_UNKNOWN);
  // The client check comes first.
  assert.equal(krbError(handleAsReq(db, buildAsReq(req({ client: ['x'], server: ['y'] })), NOW)).errorCode, KDC_ERR_C_PRINCIPAL_UNKNOWN);
});

test('no common enctype -> ETYPE_NOSUPP (14), for the client keys and for the service keys', () => {
  assert.equal(krbError(handleAsReq(db, buildAsReq(req({ etypes: [23, 16] })), NOW)).errorCode, KDC_ERR_ETYPE_NOSUPP);
  assert.equal(krbError(handleAsReq(db, buildAsReq(req({ etypes: [] })), NOW)).errorCode, KDC_ERR_ETYPE_NOSUPP);
  // The client has 17 but sc/only19 has only 19.
  assert.equal(krbError(handleAsReq(db, buildAsReq(req({ etypes: [17], server: ['sc', 'only19'] })), NOW)).errorCode, KDC_ERR_ETYPE_NOSUPP);
  // Checked before pre-authentication: no ETYPE-INFO2 leaks for enctypes nobody asked for.
  assert.equal(krbError(handleAsReq(db, buildAsReq(req({ etypes: [20] })), NOW)).errorCode, KDC_ERR_ETYPE_NOSUPP);
});

test('bad PA-ENC-TIMESTAMP -> PREAUTH_FAILED (24): wrong key, enctype the client lacks, garbage', () => {
  const wrong = randomKey(nodeBackend, 18);
  assert.equal(krbError(handleAsReq(db, withPreauth(req(), 18, NOW, wrong), NOW)).errorCode, KDC_ERR_PREAUTH_FAILED);
  // Encrypted with another principal's key.
  assert.equal(krbError(handleAsReq(db, withPreauth(req(), 18, NOW, keyOf('sc/sc1.example.net', 18).key), NOW)).errorCode, KDC_ERR_PREAUTH_FAILED);
  // Tampered ciphertext.
  const k = keyOf('cta/cta1.example.net', 17);
  const pa = paEncTimestamp(17, k.key, 1, NOW);
  pa.padataValue[pa.padataValue.length - 3] ^= 1;
  assert.equal(krbError(handleAsReq(db, buildAsReq({ ...req(), padata: [pa] }), NOW)).errorCode, KDC_ERR_PREAUTH_FAILED);
  // Not EncryptedData at all.
  assert.equal(
    krbError(handleAsReq(db, buildAsReq({ ...req(), padata: [{ padataType: PA_ENC_TIMESTAMP, padataValue: new Uint8Array([1, 2, 3]) }] }), NOW)).errorCode,
    KDC_ERR_PREAUTH_FAILED,
  );
  // An enctype the client has no key for (20).
  const bogus = encodeEncryptedData({ etype: 20, cipher: new Uint8Array(64) });
  assert.equal(krbError(handleAsReq(db, buildAsReq({ ...req(), padata: [{ padataType: PA_ENC_TIMESTAMP, padataValue: bogus }] }), NOW)).errorCode, KDC_ERR_PREAUTH_FAILED);
});

test('timestamp outside the skew -> KRB_AP_ERR_SKEW (37) with stime/susec; inside it succeeds', () => {
  for (const off of [-301_000, 301_000, 3600_000]) {
    const e = krbError(handleAsReq(db, withPreauth(req(), 18, NOW + off), NOW));
    assert.equal(e.errorCode, KRB_AP_ERR_SKEW, `offset ${off}`);
    assert.equal(e.stime + e.susec / 1000, NOW, 'stime/susec carry the KDC time');
  }
  for (const off of [-299_000, 299_000]) {
    assert.equal(messageType(handleAsReq(db, withPreauth(req(), 18, NOW + off), NOW)), KRB_AS_REP, `offset ${off}`);
  }
  // A different skew setting.
  assert.equal(krbError(handleAsReq(db, withPreauth(req(), 18, NOW + 61_000), NOW, { skewSec: 60 })).errorCode, KRB_AP_ERR_SKEW);
});

test('a principal without requires_preauth gets its ticket without padata (no pre-authent flag)', () => {
  const r = handleAsReq(db, buildAsReq(req({ client: ['nopreauth'], etypes: [17] })), NOW);
  const { enc } = openAsRep(r, keyOf('nopreauth', 17).key);
  assert.equal(enc.flags & TKT_FLG_PRE_AUTHENT, 0);
  assert.ok(enc.flags & TKT_FLG_INITIAL);
});

test('EncryptedData carries the kvno of the key used: client key in the reply, service key in the ticket', () => {
  const spec = req({ client: ['cta', 'kvno2'], server: ['sc', 'kvno7'], etypes: [17, 18] });
  const { rep } = openAsRep(handleAsReq(db, withPreauth(spec, 17), NOW), keyOf('cta/kvno2', 17).key);
  assert.equal(rep.encPart.kvno, 2);
  assert.equal(rep.ticket.encPart.kvno, 7);
  assert.equal(rep.ticket.encPart.etype, 18);
  decodeEncTicketPart(decrypt(nodeBackend, 18, keyOf('sc/kvno7', 18).key, KU_KDC_REP_TICKET, rep.ticket.encPart.cipher));
});

test('a replayed AS-REQ gets a fresh ticket and session key', () => {
  const q = withPreauth(req(), 18);
  const a = openAsRep(handleAsReq(db, q, NOW), keyOf('cta/cta1.example.net', 18).key);
  const b = openAsRep(handleAsReq(db, q, NOW + 1000), keyOf('cta/cta1.example.net', 18).key);
  assert.notEqual(toHex(a.enc.key.keyvalue), toHex(b.enc.key.keyvalue));
  assert.equal(a.enc.nonce, b.enc.nonce);
});

test('undecodable input: KRB_ERR_GENERIC for a broken AS-REQ, MSG_TYPE for a TGS-REQ, nothing for non-Kerberos bytes', () => {
  const good = buildAsReq(req());
  const e = krbError(handleAsReq(db, good.subarray(0, good.length - 5), NOW));
  assert.equal(e.errorCode, KRB_ERR_GENERIC);
  const tgs = encodeTgsReq({ reqBody: { kdcOptions: 0, realm: REALM, sname: { nameType: 2, nameString: SC }, till: NOW, nonce: 1, etype: [18] } });
  assert.equal(krbError(handleAsReq(db, tgs, NOW)).errorCode, KRB_AP_ERR_MSG_TYPE);
  assert.equal(handleAsReq(db, new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x05]), NOW).length, 0);
  assert.equal(handleAsReq(db, new Uint8Array(0), NOW).length, 0);
});

test('mutated requests never throw: every answer is empty, a KRB-ERROR or an AS-REP', () => {
  const base = [buildAsReq(req()), withPreauth(req(), 18), withPreauth(req({ etypes: [19, 17] }), 19)];
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const seen = new Set<number>();
  for (let i = 0; i < 1500; i++) {
    const m = new Uint8Array(base[i % base.length]);
    const flips = 1 + rnd(4);
    for (let j = 0; j < flips; j++) m[rnd(m.length)] = rnd(256);
    const cut = rnd(5) === 0 ? m.subarray(0, rnd(m.length)) : m;
    const r = handleAsReq(db, cut, NOW);
    const t = r.length ? messageType(r) : 0;
    assert.ok(t === 0 || t === KRB_ERROR || t === KRB_AS_REP, `type ${t}`);
    if (t === KRB_ERROR) seen.add(decodeKrbError(r).errorCode);
  }
  assert.ok(seen.has(KRB_ERR_GENERIC));
});
