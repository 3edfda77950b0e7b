// Test helpers for the Kerberos codecs:
// - sample values of every RFC 4120 type we encode (minimal and full variants),
// - CODECS: one table of (encode, decode, samples) that the round-trip, fuzz,
//   asn1js and tshark tests share,
// - an independent view of DER through asn1js (parseTree) and builders for the
//   tree a message should have according to RFC 4120 (written from the RFC, not
//   from our encoder).
import * as asn1js from 'asn1js';
import * as k from '../../firmware/proto/krb5.ts';
import { Prng } from './fuzz.ts';

// ---------------------------------------------------------------- deterministic bytes

/** A seeded source of uniform u32s (the fuzz helpers' Prng as a function). */
export function prng(seed: number): () => number {
  const p = new Prng(seed);
  return () => p.next();
}
export function bytes(n: number, seed: number): Uint8Array {
  return new Prng(seed).bytes(n);
}

// ---------------------------------------------------------------- samples

export const REALM = 'EXAMPLE.NET';
export const T0 = Date.UTC(2026, 10, 28, 1, 2, 3); // 2026-11-28T01:02:03Z
export const HOUR = 3600000;

export const cname: k.PrincipalName = { nameType: k.NT_PRINCIPAL, nameString: ['cta-0001'] };
export const sname: k.PrincipalName = { nameType: k.NT_PRINCIPAL, nameString: ['sc', 'sc1.example.net'] };
export const tgsName: k.PrincipalName = { nameType: k.NT_SRV_INST, nameString: ['krbtgt', REALM] };

export const encTicketData: k.EncryptedData = { etype: k.ETYPE_AES128_CTS_HMAC_SHA1_96, kvno: 3, cipher: bytes(180, 1) };
export const ticket: k.Ticket = { realm: REALM, sname, encPart: encTicketData };
export const sessionKey: k.EncryptionKey = { keytype: k.ETYPE_AES128_CTS_HMAC_SHA1_96, keyvalue: bytes(16, 2) };
export const subkey: k.EncryptionKey = { keytype: k.ETYPE_AES128_CTS_HMAC_SHA1_96, keyvalue: bytes(16, 3) };
export const addr: k.HostAddress = { addrType: k.ADDRTYPE_INET, address: new Uint8Array([192, 0, 2, 10]) };
export const ad: k.AuthorizationDataEntry[] = [
  { adType: 1, adData: bytes(20, 4) },
  { adType: 128, adData: new Uint8Array(0) },
];
export const cksum: k.Checksum = { cksumtype: k.CKSUMTYPE_HMAC_SHA1_96_AES128, checksum: bytes(12, 5) };

export const paEncTs: k.PaEncTsEnc = { patimestamp: T0, pausec: 123456 };
export const etypeInfo2: k.EtypeInfo2Entry[] = [
  { etype: k.ETYPE_AES256_CTS_HMAC_SHA1_96, salt: 'EXAMPLE.NETcta-0001' },
  { etype: k.ETYPE_AES128_CTS_HMAC_SHA1_96, salt: 'EXAMPLE.NETcta-0001', s2kparams: new Uint8Array([0, 0, 0x10, 0]) },
  { etype: k.ETYPE_AES128_CTS_HMAC_SHA256_128 },
];
export const methodData: k.PaData[] = [
  { padataType: k.PA_ETYPE_INFO2, padataValue: k.encodeEtypeInfo2(etypeInfo2) },
  { padataType: k.PA_ENC_TIMESTAMP, padataValue: new Uint8Array(0) },
  { padataType: k.PA_FX_COOKIE, padataValue: new Uint8Array([0x4d, 0x49, 0x54]) },
];

export const asReqMin: k.AsReq = {
  reqBody: {
    kdcOptions: 0,
    cname,
    realm: REALM,
    sname,
    till: T0 + 10 * HOUR,
    nonce: 0x12345678,
    etype: [k.ETYPE_AES128_CTS_HMAC_SHA1_96],
  },
};
export const asReqFull: k.AsReq = {
  padata: [
    {
      padataType: k.PA_ENC_TIMESTAMP,
      padataValue: k.encodeEncryptedData({ etype: k.ETYPE_AES128_CTS_HMAC_SHA1_96, cipher: bytes(56, 6) }),
    },
    { padataType: k.PA_PAC_REQUEST, padataValue: new Uint8Array([0x30, 0x05, 0xa0, 0x03, 0x01, 0x01, 0xff]) },
  ],
  reqBody: {
    kdcOptions: (k.KDC_OPT_FORWARDABLE | k.KDC_OPT_RENEWABLE | k.KDC_OPT_CANONICALIZE | k.KDC_OPT_RENEWABLE_OK) >>> 0,
    cname,
    realm: REALM,
    sname,
    from: T0,
    till: T0 + 10 * HOUR,
    rtime: T0 + 7 * 24 * HOUR,
    nonce: 0xfedcba98,
    etype: [k.ETYPE_AES256_CTS_HMAC_SHA1_96, k.ETYPE_AES128_CTS_HMAC_SHA1_96, k.ETYPE_AES128_CTS_HMAC_SHA256_128, -128],
    addresses: [addr, { addrType: k.ADDRTYPE_INET6, address: bytes(16, 7) }],
    encAuthorizationData: { etype: 18, kvno: 0, cipher: bytes(33, 8) },
    additionalTickets: [ticket],
  },
};
export const asRep: k.AsRep = {
  padata: [{ padataType: k.PA_ETYPE_INFO2, padataValue: k.encodeEtypeInfo2(etypeInfo2.slice(1, 2)) }],
  crealm: REALM,
  cname,
  ticket,
  encPart: { etype: k.ETYPE_AES128_CTS_HMAC_SHA1_96, kvno: 1, cipher: bytes(220, 9) },
};
export const asRepMin: k.AsRep = { crealm: REALM, cname, ticket, encPart: { etype: 18, cipher: bytes(40, 10) } };

export const encKdcRepPartFull: k.EncKdcRepPart = {
  key: sessionKey,
  lastReq: [
    { lrType: 0, lrValue: T0 - HOUR },
    { lrType: 6, lrValue: T0 },
  ],
  nonce: 0xfedcba98,
  keyExpiration: T0 + 365 * 24 * HOUR,
  flags: (k.TKT_FLG_FORWARDABLE | k.TKT_FLG_RENEWABLE | k.TKT_FLG_INITIAL | k.TKT_FLG_PRE_AUTHENT) >>> 0,
  authtime: T0,
  starttime: T0 + 1000,
  endtime: T0 + 10 * HOUR,
  renewTill: T0 + 7 * 24 * HOUR,
  srealm: REALM,
  sname,
  caddr: [addr],
  encryptedPaData: [{ padataType: k.PA_REQ_ENC_PA_REP, padataValue: bytes(14, 11) }],
};
export const encKdcRepPartMin: k.EncKdcRepPart = {
  key: sessionKey,
  lastReq: [],
  nonce: 7,
  flags: k.TKT_FLG_INITIAL,
  authtime: T0,
  endtime: T0 + HOUR,
  srealm: REALM,
  sname,
};

export const encTicketPartFull: k.EncTicketPart = {
  flags: (k.TKT_FLG_FORWARDABLE | k.TKT_FLG_PRE_AUTHENT | k.TKT_FLG_INITIAL) >>> 0,
  key: sessionKey,
  crealm: REALM,
  cname,
  transited: { trType: 1, contents: new Uint8Array(0) },
  authtime: T0,
  starttime: T0,
  endtime: T0 + 10 * HOUR,
  renewTill: T0 + 7 * 24 * HOUR,
  caddr: [addr],
  authorizationData: ad,
};
export const encTicketPartMin: k.EncTicketPart = {
  flags: 0,
  key: sessionKey,
  crealm: REALM,
  cname,
  transited: { trType: 1, contents: new Uint8Array(0) },
  authtime: T0,
  endtime: T0 + HOUR,
};

export const authenticatorFull: k.Authenticator = {
  crealm: REALM,
  cname,
  cksum,
  cusec: 999999,
  ctime: T0,
  subkey,
  seqNumber: 0x80000001,
  authorizationData: ad,
};
export const authenticatorMin: k.Authenticator = { crealm: REALM, cname, cusec: 0, ctime: T0 };

export const apReq: k.ApReq = {
  apOptions: k.AP_OPT_MUTUAL_REQUIRED,
  ticket,
  authenticator: { etype: k.ETYPE_AES128_CTS_HMAC_SHA1_96, cipher: bytes(120, 12) },
};
export const apRep: k.ApRep = { encPart: { etype: k.ETYPE_AES128_CTS_HMAC_SHA1_96, cipher: bytes(90, 13) } };
export const encApRepPartFull: k.EncApRepPart = { ctime: T0, cusec: 42, subkey, seqNumber: 0xffffffff };
export const encApRepPartMin: k.EncApRepPart = { ctime: T0, cusec: 0 };

export const krbErrorFull: k.KrbError = {
  ctime: T0 - 400000,
  cusec: 1,
  stime: T0,
  susec: 654321,
  errorCode: k.KDC_ERR_PREAUTH_REQUIRED,
  crealm: REALM,
  cname,
  realm: REALM,
  sname,
  eText: 'Additional pre-authentication required',
  eData: k.encodeMethodData(methodData),
};
export const krbErrorMin: k.KrbError = {
  stime: T0,
  susec: 0,
  errorCode: k.KRB_AP_ERR_SKEW,
  realm: REALM,
  sname,
};

// ---------------------------------------------------------------- codec table

export interface Codec {
  name: string;
  enc: (x: any) => Uint8Array;
  dec: (b: Uint8Array) => any;
  samples: any[];
}
export const CODECS: Codec[] = [
  { name: 'PrincipalName', enc: k.encodePrincipalName, dec: k.decodePrincipalName, samples: [cname, sname, tgsName, { nameType: 0, nameString: [] }] },
  { name: 'EncryptedData', enc: k.encodeEncryptedData, dec: k.decodeEncryptedData, samples: [encTicketData, { etype: -1, cipher: new Uint8Array(0) }, { etype: 17, kvno: 0xffffffff, cipher: bytes(300, 14) }] },
  { name: 'EncryptionKey', enc: k.encodeEncryptionKey, dec: k.decodeEncryptionKey, samples: [sessionKey] },
  { name: 'Checksum', enc: k.encodeChecksum, dec: k.decodeChecksum, samples: [cksum] },
  { name: 'HostAddress', enc: k.encodeHostAddress, dec: k.decodeHostAddress, samples: [addr] },
  { name: 'HostAddresses', enc: k.encodeHostAddresses, dec: k.decodeHostAddresses, samples: [[addr, addr], []] },
  { name: 'PA-DATA', enc: k.encodePaData, dec: k.decodePaData, samples: [methodData[0], methodData[1]] },
  { name: 'METHOD-DATA', enc: k.encodeMethodData, dec: k.decodeMethodData, samples: [methodData, []] },
  { name: 'PA-ENC-TS-ENC', enc: k.encodePaEncTsEnc, dec: k.decodePaEncTsEnc, samples: [paEncTs, { patimestamp: T0 }] },
  { name: 'ETYPE-INFO2', enc: k.encodeEtypeInfo2, dec: k.decodeEtypeInfo2, samples: [etypeInfo2, [{ etype: 17 }]] },
  { name: 'AuthorizationData', enc: k.encodeAuthorizationData, dec: k.decodeAuthorizationData, samples: [ad, []] },
  { name: 'LastReq', enc: k.encodeLastReq, dec: k.decodeLastReq, samples: [encKdcRepPartFull.lastReq, []] },
  { name: 'TransitedEncoding', enc: k.encodeTransitedEncoding, dec: k.decodeTransitedEncoding, samples: [encTicketPartFull.transited, { trType: 1, contents: new Uint8Array([0x41]) }] },
  { name: 'Ticket', enc: k.encodeTicket, dec: k.decodeTicket, samples: [ticket] },
  { name: 'EncTicketPart', enc: k.encodeEncTicketPart, dec: k.decodeEncTicketPart, samples: [encTicketPartFull, encTicketPartMin] },
  { name: 'KDC-REQ-BODY', enc: k.encodeKdcReqBody, dec: k.decodeKdcReqBody, samples: [asReqFull.reqBody, asReqMin.reqBody] },
  { name: 'AS-REQ', enc: k.encodeAsReq, dec: k.decodeAsReq, samples: [asReqFull, asReqMin] },
  { name: 'AS-REP', enc: k.encodeAsRep, dec: k.decodeAsRep, samples: [asRep, asRepMin] },
  { name: 'TGS-REP', enc: k.encodeTgsRep, dec: k.decodeTgsRep, samples: [asRep] },
  { name: 'EncKDCRepPart', enc: (x) => k.encodeEncKdcRepPart(x), dec: k.decodeEncKdcRepPart, samples: [encKdcRepPartFull, encKdcRepPartMin] },
  { name: 'EncTGSRepPart', enc: (x) => k.encodeEncKdcRepPart(x, k.APP_ENC_TGS_REP_PART), dec: k.decodeEncKdcRepPart, samples: [encKdcRepPartMin] },
  { name: 'Authenticator', enc: k.encodeAuthenticator, dec: k.decodeAuthenticator, samples: [authenticatorFull, authenticatorMin] },
  { name: 'AP-REQ', enc: k.encodeApReq, dec: k.decodeApReq, samples: [apReq] },
  { name: 'AP-REP', enc: k.encodeApRep, dec: k.decodeApRep, samples: [apRep] },
  { name: 'EncAPRepPart', enc: k.encodeEncApRepPart, dec: k.decodeEncApRepPart, samples: [encApRepPartFull, encApRepPartMin] },
  { name: 'KRB-ERROR', enc: k.encodeKrbError, dec: k.decodeKrbError, samples: [krbErrorFull, krbErrorMin] },
];

/** A decoded value without the decode-only extras (Ticket.raw, msgType, reqBodyRaw). */
export function stripDecoded(v: any): any {
  if (v instanceof Uint8Array || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(stripDecoded);
  const o: any = {};
  for (const key of Object.keys(v)) {
    if (key === 'raw' || key === 'msgType' || key === 'reqBodyRaw') continue;
    o[key] = stripDecoded(v[key]);
  }
  return o;
}

// ---------------------------------------------------------------- asn1js view

/** A DER element as asn1js sees it. cls: u(niversal) a(pplication) c(ontext) p(rivate). */
export interface Tree {
  cls: string;
  tag: number;
  kids?: Tree[];
  /** content bytes of a primitive, hex */
  hex?: string;
}

const CLS = ['', 'u', 'a', 'c', 'p'];

function toTree(n: any): Tree {
  const id = n.idBlock;
  const t: Tree = { cls: CLS[id.tagClass], tag: id.tagNumber };
  if (id.isConstructed) {
    t.kids = (n.valueBlock.value as any[]).map(toTree);
  } else {
    // Primitive content bytes exactly as asn1js delimited them.
    const whole: Uint8Array = new Uint8Array(n.valueBeforeDecodeView);
    t.hex = Buffer.from(whole.subarray(n.idBlock.blockLength + n.lenBlock.blockLength)).toString('hex');
  }
  if (n.error) throw new Error(`asn1js: ${n.error}`);
  return t;
}

/** Parses DER with asn1js; throws unless it consumed every byte without error. */
export function parseTree(b: Uint8Array): Tree {
  const r = asn1js.fromBER(b);
  if (r.offset === -1) throw new Error(`asn1js could not parse: ${r.result.error}`);
  if (r.offset !== b.length) throw new Error(`asn1js consumed ${r.offset} of ${b.length} bytes`);
  return toTree(r.result);
}

// Builders of the tree RFC 4120 prescribes (independent of our encoder).
const h = (b: Uint8Array) => Buffer.from(b).toString('hex');
export const E = {
  int(v: number): Tree {
    // Minimal two's complement through BigInt.
    let x = BigInt(v);
    const out: number[] = [];
    for (;;) {
      const byte = Number(x & 0xffn);
      out.unshift(byte);
      x >>= 8n;
      if ((x === 0n && byte < 0x80) || (x === -1n && byte >= 0x80)) break;
    }
    return { cls: 'u', tag: 2, hex: h(new Uint8Array(out)) };
  },
  oct(b: Uint8Array): Tree {
    return { cls: 'u', tag: 4, hex: h(b) };
  },
  str(s: string): Tree {
    return { cls: 'u', tag: 27, hex: Buffer.from(s, 'latin1').toString('hex') };
  },
  time(ms: number): Tree {
    // Node's Date gives the reference text: 2026-11-28T01:02:03.000Z -> 20261128010203Z
    const iso = new Date(ms).toISOString();
    const s = iso.slice(0, 4) + iso.slice(5, 7) + iso.slice(8, 10) + iso.slice(11, 13) + iso.slice(14, 16) + iso.slice(17, 19) + 'Z';
    return { cls: 'u', tag: 24, hex: Buffer.from(s, 'latin1').toString('hex') };
  },
  flags(v: number): Tree {
    return { cls: 'u', tag: 3, hex: '00' + (v >>> 0).toString(16).padStart(8, '0') };
  },
  seq(kids: (Tree | null | undefined)[]): Tree {
    return { cls: 'u', tag: 16, kids: kids.filter((x): x is Tree => !!x) };
  },
  ctx(n: number, x: Tree): Tree {
    return { cls: 'c', tag: n, kids: [x] };
  },
  app(n: number, x: Tree): Tree {
    return { cls: 'a', tag: n, kids: [x] };
  },
};
const opt = <T>(v: T | undefined, f: (v: T) => Tree): Tree | null => (v === undefined ? null : f(v));

export const R = {
  principal: (p: k.PrincipalName) => E.seq([E.ctx(0, E.int(p.nameType)), E.ctx(1, E.seq(p.nameString.map(E.str)))]),
  encData: (e: k.EncryptedData) =>
    E.seq([E.ctx(0, E.int(e.etype)), opt(e.kvno, (v) => E.ctx(1, E.int(v))), E.ctx(2, E.oct(e.cipher))]),
  key: (x: k.EncryptionKey) => E.seq([E.ctx(0, E.int(x.keytype)), E.ctx(1, E.oct(x.keyvalue))]),
  cksum: (x: k.Checksum) => E.seq([E.ctx(0, E.int(x.cksumtype)), E.ctx(1, E.oct(x.checksum))]),
  addrs: (a: k.HostAddress[]) => E.seq(a.map((x) => E.seq([E.ctx(0, E.int(x.addrType)), E.ctx(1, E.oct(x.address))]))),
  ad: (a: k.AuthorizationDataEntry[]) => E.seq(a.map((x) => E.seq([E.ctx(0, E.int(x.adType)), E.ctx(1, E.oct(x.adData))]))),
  padata: (a: k.PaData[]) => E.seq(a.map((x) => E.seq([E.ctx(1, E.int(x.padataType)), E.ctx(2, E.oct(x.padataValue))]))),
  ticket: (t: k.Ticket) =>
    E.app(1, E.seq([E.ctx(0, E.int(5)), E.ctx(1, E.str(t.realm)), E.ctx(2, R.principal(t.sname)), E.ctx(3, R.encData(t.encPart))])),
  asReq: (q: k.AsReq) => {
    const b = q.reqBody;
    return E.app(
      10,
      E.seq([
        E.ctx(1, E.int(5)),
        E.ctx(2, E.int(10)),
        opt(q.padata, (v) => E.ctx(3, R.padata(v))),
        E.ctx(
          4,
          E.seq([
            E.ctx(0, E.flags(b.kdcOptions)),
            opt(b.cname, (v) => E.ctx(1, R.principal(v))),
            E.ctx(2, E.str(b.realm)),
            opt(b.sname, (v) => E.ctx(3, R.principal(v))),
            opt(b.from, (v) => E.ctx(4, E.time(v))),
            E.ctx(5, E.time(b.till)),
            opt(b.rtime, (v) => E.ctx(6, E.time(v))),
            E.ctx(7, E.int(b.nonce)),
            E.ctx(8, E.seq(b.etype.map(E.int))),
            opt(b.addresses, (v) => E.ctx(9, R.addrs(v))),
            opt(b.encAuthorizationData, (v) => E.ctx(10, R.encData(v))),
            opt(b.additionalTickets, (v) => E.ctx(11, E.seq(v.map(R.ticket)))),
          ]),
        ),
      ]),
    );
  },
  apReq: (q: k.ApReq) =>
    E.app(
      14,
      E.seq([E.ctx(0, E.int(5)), E.ctx(1, E.int(14)), E.ctx(2, E.flags(q.apOptions)), E.ctx(3, R.ticket(q.ticket)), E.ctx(4, R.encData(q.authenticator))]),
    ),
  apRep: (p: k.ApRep) => E.app(15, E.seq([E.ctx(0, E.int(5)), E.ctx(1, E.int(15)), E.ctx(2, R.encData(p.encPart))])),
  krbError: (x: k.KrbError) =>
    E.app(
      30,
      E.seq([
        E.ctx(0, E.int(5)),
        E.ctx(1, E.int(30)),
        opt(x.ctime, (v) => E.ctx(2, E.time(v))),
        opt(x.cusec, (v) => E.ctx(3, E.int(v))),
        E.ctx(4, E.time(x.stime)),
        E.ctx(5, E.int(x.susec)),
        E.ctx(6, E.int(x.errorCode)),
        opt(x.crealm, (v) => E.ctx(7, E.str(v))),
        opt(x.cname, (v) => E.ctx(8, R.principal(v))),
        E.ctx(9, E.str(x.realm)),
        E.ctx(10, R.principal(x.sname)),
        opt(x.eText, (v) => E.ctx(11, E.str(v))),
        opt(x.eData, (v) => E.ctx(12, E.oct(v))),
      ]),
    ),
  encTicketPart: (e: k.EncTicketPart) =>
    E.app(
      3,
      E.seq([
        E.ctx(0, E.flags(e.flags)),
        E.ctx(1, R.key(e.key)),
        E.ctx(2, E.str(e.crealm)),
        E.ctx(3, R.principal(e.cname)),
        E.ctx(4, E.seq([E.ctx(0, E.int(e.transited.trType)), E.ctx(1, E.oct(e.transited.contents))])),
        E.ctx(5, E.time(e.authtime)),
        opt(e.starttime, (v) => E.ctx(6, E.time(v))),
        E.ctx(7, E.time(e.endtime)),
        opt(e.renewTill, (v) => E.ctx(8, E.time(v))),
        opt(e.caddr, (v) => E.ctx(9, R.addrs(v))),
        opt(e.authorizationData, (v) => E.ctx(10, R.ad(v))),
      ]),
    ),
  authenticator: (a: k.Authenticator) =>
    E.app(
      2,
      E.seq([
        E.ctx(0, E.int(5)),
        E.ctx(1, E.str(a.crealm)),
        E.ctx(2, R.principal(a.cname)),
        opt(a.cksum, (v) => E.ctx(3, R.cksum(v))),
        E.ctx(4, E.int(a.cusec)),
        E.ctx(5, E.time(a.ctime)),
        opt(a.subkey, (v) => E.ctx(6, R.key(v))),
        opt(a.seqNumber, (v) => E.ctx(7, E.int(v))),
        opt(a.authorizationData, (v) => E.ctx(8, R.ad(v))),
      ]),
    ),
  encApRepPart: (p: k.EncApRepPart) =>
    E.app(
      27,
      E.seq([
        E.ctx(0, E.time(p.ctime)),
        E.ctx(1, E.int(p.cusec)),
        opt(p.subkey, (v) => E.ctx(2, R.key(v))),
        opt(p.seqNumber, (v) => E.ctx(3, E.int(v))),
      ]),
    ),
};
