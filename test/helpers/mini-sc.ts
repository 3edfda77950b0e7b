// Test-side KDC (AS exchange with PREAUTH_REQUIRED) and Signaling Controller,
// built from the protocol core (firmware/proto), just enough to drive the CTA
// agent over FakeNet. Every knob a test needs to misbehave is a plain field.
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import { encrypt, decrypt, randomKey, usageHmacKey } from '../../firmware/proto/crypto/index.ts';
import * as K from '../../firmware/proto/krb5.ts';
import * as P from '../../firmware/proto/pktc.ts';
import { deriveSaKeys } from '../../firmware/proto/sa.ts';
import type { SaKeys } from '../../firmware/proto/sa.ts';
import { espSeal, espOpen, ReplayWindow, buildNcsCommand, ESP_NEXT_HEADER } from '../../firmware/proto/esp.ts';
import { toHex, fromAscii, toAscii, readU32 } from '../../firmware/proto/bytes.ts';
import type { FakeClock, FakeNet } from './fake-platform.ts';
import type { UdpSocket } from '../../firmware/platform/platform.ts';

export const REALM = 'EXAMPLE.NET';
export const CTA_PRINCIPAL = 'cta/cta1.example.net';
export const SC_PRINCIPAL = 'sc/sc1.example.net@' + REALM;

export class MiniKdc {
  b: CryptoBackend;
  clock: FakeClock;
  sock: UdpSocket;
  /** principal "a/b@R" -> {etype, key, kvno} */
  keys: { [p: string]: { etype: number; key: Uint8Array; kvno: number } } = {};
  requirePreauth = true;
  /** KDC clock = fake clock + offsetMs. */
  offsetMs = 0;
  ticketLifetimeMs = 10 * 3600 * 1000;
  /** Answer nothing while > 0 (decremented per request). */
  silent = 0;
  requests = 0;
  issued = 0;
  errorsSent: number[] = [];
  lastSessionKey: Uint8Array | null = null;

  constructor(b: CryptoBackend, clock: FakeClock, net: FakeNet, address = '10.0.0.3', port = 88) {
    this.b = b;
    this.clock = clock;
    this.sock = net.bind(address, port, (d, a, p) => this.onReq(d, a, p));
  }
  addPrincipal(name: string, etype: number, key: Uint8Array, kvno = 1): void {
    this.keys[name] = { etype, key, kvno };
  }
  now(): number {
    return this.clock.now() + this.offsetMs;
  }
  error(code: number, req: K.KdcReq, eData?: Uint8Array): Uint8Array {
    this.errorsSent.push(code);
    const n = this.now();
    return K.encodeKrbError({ stime: Math.floor(n / 1000) * 1000, susec: (n % 1000) * 1000, errorCode: code, realm: req.reqBody.realm, sname: req.reqBody.sname!, eData });
  }
  onReq(data: Uint8Array, addr: string, port: number): void {
    this.requests++;
    if (this.silent > 0) {
      this.silent--;
      return;
    }
    const req = K.decodeAsReq(data);
    const body = req.reqBody;
    const cname = K.principalToString(body.cname!, body.realm);
    const sname = K.principalToString(body.sname!, body.realm);
    const ck = this.keys[cname];
    const sk = this.keys[sname];
    if (!ck) return this.sock.send(this.error(K.KDC_ERR_C_PRINCIPAL_UNKNOWN, req), port, addr);
    if (!sk) return this.sock.send(this.error(K.KDC_ERR_S_PRINCIPAL_UNKNOWN, req), port, addr);
    const pa = K.findPaData(req.padata, K.PA_ENC_TIMESTAMP);
    if (!pa && this.requirePreauth) {
      const info = K.encodeEtypeInfo2([{ etype: ck.etype, salt: REALM + body.cname!.nameString.join('') }]);
      const md = K.encodeMethodData([
        { padataType: K.PA_ETYPE_INFO2, padataValue: info },
        { padataType: K.PA_ENC_TIMESTAMP, padataValue: new Uint8Array(0) },
      ]);
      return this.sock.send(this.error(K.KDC_ERR_PREAUTH_REQUIRED, req, md), port, addr);
    }
    if (pa) {
      const ed = K.decodeEncryptedData(pa.padataValue);
      let ts: K.PaEncTsEnc;
      try {
        ts = K.decodePaEncTsEnc(decrypt(this.b, ck.etype, ck.key, K.KU_AS_REQ_PA_ENC_TIMESTAMP, ed.cipher));
      } catch {
        return this.sock.send(this.error(K.KDC_ERR_PREAUTH_FAILED, req), port, addr);
      }
      if (Math.abs(ts.patimestamp - this.now()) > 300000) return this.sock.send(this.error(K.KRB_AP_ERR_SKEW, req), port, addr);
    }
    const now = Math.floor(this.now() / 1000) * 1000;
    const skey = randomKey(this.b, sk.etype);
    this.lastSessionKey = skey;
    const endtime = now + this.ticketLifetimeMs;
    const etp = K.encodeEncTicketPart({
      flags: K.TKT_FLG_INITIAL | K.TKT_FLG_PRE_AUTHENT,
      key: { keytype: sk.etype, keyvalue: skey },
      crealm: body.realm,
      cname: body.cname!,
      transited: { trType: 1, contents: new Uint8Array(0) },
      authtime: now,
      endtime,
    });
    const ticket: K.Ticket = { realm: body.realm, sname: body.sname!, encPart: { etype: sk.etype, kvno: sk.kvno, cipher: encrypt(this.b, sk.etype, sk.key, K.KU_KDC_REP_TICKET, etp) } };
    const encPart = K.encodeEncKdcRepPart({
      key: { keytype: sk.etype, keyvalue: skey },
      lastReq: [],
      nonce: body.nonce,
      flags: K.TKT_FLG_INITIAL | K.TKT_FLG_PRE_AUTHENT,
      authtime: now,
      endtime,
      srealm: body.realm,
      sname: body.sname!,
    });
    this.issued++;
    const rep = K.encodeAsRep({ crealm: body.realm, cname: body.cname!, ticket, encPart: { etype: ck.etype, kvno: ck.kvno, cipher: encrypt(this.b, ck.etype, ck.key, K.KU_AS_REP_ENCPART, encPart) } });
    this.sock.send(rep, port, addr);
  }
}

export type ScSession = {
  ctaSpi: number;
  scSpi: number;
  subkey: Uint8Array;
  subkeyEtype: number;
  sessionKey: Uint8Array;
  sessionEtype: number;
  keys: SaKeys;
  apReplyHmac: Uint8Array;
  seqOut: number;
  replay: ReplayWindow;
};

export class MiniSc {
  b: CryptoBackend;
  clock: FakeClock;
  net: FakeNet;
  address: string;
  sock: UdpSocket;
  sig: UdpSocket;
  principal = SC_PRINCIPAL;
  serviceKey: { etype: number; key: Uint8Array; kvno: number };
  /** SC clock = fake clock + offsetMs. */
  offsetMs = 0;
  skewMs = 300000;
  /** Outstanding nonces (value -> expiry ms). */
  nonces: { [n: string]: number } = {};
  allowClientInitiated = true;
  /** Don't answer AP Requests while > 0 (decremented per AP Request). */
  silent = 0;
  /** Next AP Reply is damaged this way (then reset). */
  mutate: null | 'bad_hmac' | 'ctime' | 'no_subkey' | 'wrong_key' | 'bad_cs' = null;
  ackRequired = true;
  /** Answer the next AP Request (failNext, then reset) or every one (alwaysFail) with this KRB-ERROR code. */
  failNext: number | null = null;
  alwaysFail: number | null = null;
  saLifetime = 7 * 86400;
  gracePeriod = 3600;
  apRequests: { bytes: Uint8Array; msg: P.DecodedApRequest; authenticator: K.Authenticator; hmacOk: boolean }[] = [];
  falseNonces = 0;
  saRecovered = 0;
  /** Per CTA principal: the last accepted session. */
  session: ScSession | null = null;
  replies: { [reqHex: string]: Uint8Array } = {};
  signalingIn: string[] = [];
  ctaAddress = '10.0.0.2';
  ctaPort = 1293;
  ctaSigPort = 2427;
  nextNonce = 1000;

  constructor(b: CryptoBackend, clock: FakeClock, net: FakeNet, serviceKey: { etype: number; key: Uint8Array; kvno: number }, address = '10.0.0.1', port = 1293, sigPort = 2427) {
    this.b = b;
    this.clock = clock;
    this.net = net;
    this.address = address;
    this.serviceKey = serviceKey;
    this.sock = net.bind(address, port, (d, a, p) => this.onKm(d, a, p));
    this.sig = net.bind(address, sigPort, (d) => this.onSig(d));
  }
  now(): number {
    return this.clock.now() + this.offsetMs;
  }

  wakeUp(nonce?: number, principal?: string): number {
    const n = nonce ?? this.nextNonce++;
    this.nonces[String(n)] = this.clock.now() + 5000;
    this.sock.send(P.encodeWakeUp({ kmmid: 1, doi: P.DOI.IPSEC, serverNonce: n, serverPrincipal: principal ?? this.principal }), this.ctaPort, this.ctaAddress);
    return n;
  }

  /** Rekey with the last accepted session key; `forge` uses a wrong key. */
  rekey(opts: { nonce?: number; timestampMs?: number; forge?: boolean; raw?: (b: Uint8Array) => void } = {}): Uint8Array {
    const s = this.session!;
    const n = opts.nonce ?? this.nextNonce++;
    this.nonces[String(n)] = this.clock.now() + 5000;
    const base = opts.forge ? randomKey(this.b, s.sessionEtype) : s.sessionKey;
    const key = usageHmacKey(this.b, s.sessionEtype, base, P.USAGE.REKEY);
    const msg = P.encodeRekey(this.b, key, {
      kmmid: 5,
      doi: P.DOI.IPSEC,
      serverNonce: n,
      serverPrincipal: this.principal,
      timestamp: opts.timestampMs ?? this.now(),
      appData: { spi: 0x5c000001 },
      ciphersuites: [{ auth: 2, enc: 12 }],
      saLifetime: this.saLifetime,
      gracePeriod: this.gracePeriod,
      reestablish: false,
    });
    this.sock.send(msg, this.ctaPort, this.ctaAddress);
    return msg;
  }

  errorReply(code: number, sname: K.PrincipalName, cta: string, port: number, stimeMs?: number, ctime?: number, cusec?: number): void {
    const n = stimeMs ?? this.now();
    const err = K.encodeKrbError({ stime: Math.floor(n / 1000) * 1000, susec: (n % 1000) * 1000, errorCode: code, realm: REALM, sname, ctime, cusec });
    this.sock.send(P.encodeErrorReply({ kmmid: 6, doi: 1, krbError: err }), port, cta);
  }

  onKm(data: Uint8Array, addr: string, port: number): void {
    const k = data[0];
    if (k === P.KMMID.SA_RECOVERED) {
      const s = this.session;
      if (!s) return;
      const m = P.decodeSaRecovered(data);
      if (P.verifySaRecovered(this.b, usageHmacKey(this.b, s.subkeyEtype, s.subkey, P.USAGE.SA_RECOVERED), m, s.apReplyHmac)) this.saRecovered++;
      return;
    }
    if (k !== P.KMMID.AP_REQUEST) return;
    const hex = toHex(data);
    if (this.replies[hex]) {
      // Idempotent: a byte-identical retransmission gets the same AP Reply.
      if (this.silent > 0) {
        this.silent--;
        return;
      }
      this.sock.send(this.replies[hex], port, addr);
      return;
    }
    const m = P.decodeApRequest(data);
    const apReq = K.decodeApReq(m.apReq);
    const sk = this.serviceKey;
    const etp = K.decodeEncTicketPart(decrypt(this.b, sk.etype, sk.key, K.KU_KDC_REP_TICKET, apReq.ticket.encPart.cipher));
    const skey = etp.key.keyvalue;
    const setype = etp.key.keytype;
    const auth = K.decodeAuthenticator(decrypt(this.b, setype, skey, K.KU_AP_REQ_AUTH, apReq.authenticator.cipher));
    const hmacOk = P.verifyHmac(this.b, usageHmacKey(this.b, setype, skey, P.USAGE.AP_REQUEST), m.signed, m.hmac);
    this.apRequests.push({ bytes: data, msg: m, authenticator: auth, hmacOk });
    if (!hmacOk) return;
    const sname = apReq.ticket.sname;
    const forced = this.failNext ?? this.alwaysFail;
    this.failNext = null;
    if (forced !== null) return this.errorReply(forced, sname, addr, port, undefined, auth.ctime, auth.cusec);
    if (Math.abs(auth.ctime - this.now()) > this.skewMs) {
      return this.errorReply(K.KRB_AP_ERR_SKEW, sname, addr, port, undefined, auth.ctime, auth.cusec);
    }
    if (etp.endtime <= this.now()) return this.errorReply(K.KRB_AP_ERR_TKT_EXPIRED, sname, addr, port, undefined, auth.ctime, auth.cusec);
    if (m.serverNonce !== 0) {
      const exp = this.nonces[String(m.serverNonce)];
      if (exp === undefined || exp < this.clock.now()) {
        this.falseNonces++;
        return;
      }
      delete this.nonces[String(m.serverNonce)];
    } else if (!this.allowClientInitiated) return;
    if (this.silent > 0) {
      this.silent--;
      // Remember nothing: the retransmission will be processed (nonce already consumed, so keep it).
      this.nonces[String(m.serverNonce)] = this.clock.now() + 5000;
      return;
    }
    const mut = this.mutate;
    this.mutate = null;
    const subkey = randomKey(this.b, setype);
    const encPart = K.encodeEncApRepPart({
      ctime: mut === 'ctime' ? auth.ctime + 1000 : auth.ctime,
      cusec: auth.cusec,
      subkey: mut === 'no_subkey' ? undefined : { keytype: setype, keyvalue: subkey },
    });
    const encKey = mut === 'wrong_key' ? randomKey(this.b, setype) : skey;
    const apRep = K.encodeApRep({ encPart: { etype: setype, cipher: encrypt(this.b, setype, encKey, K.KU_AP_REP_ENCPART, encPart) } });
    const scSpi = 0x5c000000 + this.apRequests.length;
    const hk = usageHmacKey(this.b, setype, mut === 'bad_hmac' ? randomKey(this.b, setype) : subkey, P.USAGE.AP_REPLY);
    const reply = P.encodeApReply(this.b, hk, {
      kmmid: 3,
      doi: P.DOI.IPSEC,
      apRep,
      appData: { spi: scSpi },
      ciphersuite: mut === 'bad_cs' ? { auth: 2, enc: 0x0b } : { auth: 2, enc: 12 },
      saLifetime: this.saLifetime,
      gracePeriod: this.gracePeriod,
      reestablish: false,
      ackRequired: this.ackRequired,
    });
    const ctaSpi = (m.appData as P.IpsecAppData).spi;
    if (!mut) {
      this.session = {
        ctaSpi,
        scSpi,
        subkey,
        subkeyEtype: setype,
        sessionKey: skey,
        sessionEtype: setype,
        keys: deriveSaKeys(this.b, subkey, ctaSpi, scSpi),
        apReplyHmac: reply.subarray(reply.length - 20),
        seqOut: 0,
        replay: new ReplayWindow(),
      };
    }
    this.replies[hex] = reply;
    this.sock.send(reply, port, addr);
  }

  /** Seal an NCS command to the CTA over the SA. Returns the packet (for replay tests). */
  signal(verb = 'RQNT', txid = '1201', opts: { seq?: number; corrupt?: boolean } = {}): Uint8Array {
    const s = this.session!;
    const seq = opts.seq ?? ++s.seqOut;
    const text = buildNcsCommand(verb, txid, 'aaln/1@cta1.example.net', ['X: 0123456789AB', 'R: hd']);
    const pkt = espSeal(this.b, { spi: s.ctaSpi, seq, encKey: s.keys.encScToCta, authKey: s.keys.authScToCta }, fromAscii(text), ESP_NEXT_HEADER.NONE);
    if (opts.corrupt) pkt[20] ^= 1;
    this.sig.send(pkt, this.ctaSigPort, this.ctaAddress);
    return pkt;
  }

  sendRawSignal(pkt: Uint8Array): void {
    this.sig.send(pkt, this.ctaSigPort, this.ctaAddress);
  }

  onSig(data: Uint8Array): void {
    const s = this.session;
    if (!s) return;
    if (readU32(data, 0) !== s.scSpi) return;
    const o = espOpen(this.b, { encKey: s.keys.encCtaToSc, authKey: s.keys.authCtaToSc }, data);
    if (!s.replay.update(o.seq)) return;
    this.signalingIn.push(toAscii(o.payload));
  }
}

// ------------------------------------------------------------------ a whole test world

import { FakeClock as Clock, FakeNet as Net, makeFakePlatform } from './fake-platform.ts';
import type { FakePlatform } from './fake-platform.ts';
import { nobleBackend } from '../../host-tools/crypto/noble.ts';
import { configFromObject } from '../../host-tools/provision/config.ts';
import type { CtaConfig } from '../../firmware/config.ts';
import { CtaAgent } from '../../firmware/agent/agent.ts';

export type World = {
  b: CryptoBackend;
  clock: Clock;
  net: Net;
  platform: FakePlatform;
  kdc: MiniKdc;
  sc: MiniSc;
  agent: CtaAgent;
  config: CtaConfig;
  ctaKey: Uint8Array;
};

/** KDC at 10.0.0.3:88, SC at 10.0.0.1:1293 (+2427), CTA at 10.0.0.2. `cfg` overrides config fields. */
export function makeWorld(cfg: { [k: string]: unknown } = {}, opts: { start?: boolean; ctaClockOffsetMs?: number } = {}): World {
  const b = nobleBackend;
  const clock = new Clock();
  const net = new Net();
  const ctaKey = randomKey(b, 18);
  const scKey = { etype: 18, key: randomKey(b, 18), kvno: 3 };
  const kdc = new MiniKdc(b, clock, net);
  kdc.addPrincipal(CTA_PRINCIPAL + '@' + REALM, 18, ctaKey, 2);
  kdc.addPrincipal(SC_PRINCIPAL, scKey.etype, scKey.key, scKey.kvno);
  const sc = new MiniSc(b, clock, net, scKey);
  const config = configFromObject({
    principal: CTA_PRINCIPAL,
    realm: REALM,
    keys: [{ etype: 18, kvno: 2, key: ctaKey }],
    scs: [{ principal: SC_PRINCIPAL, address: '10.0.0.1', port: 1293 }],
    kdc: { address: '10.0.0.3', port: 88 },
    slots: 4,
    ...cfg,
  });
  const platform = makeFakePlatform({ clock, net, address: '10.0.0.2', crypto: b, clockOffsetMs: opts.ctaClockOffsetMs });
  const agent = new CtaAgent(platform, config);
  if (opts.start !== false) agent.start();
  return { b, clock, net, platform, kdc, sc, agent, config, ctaKey };
}
