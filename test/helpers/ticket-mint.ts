// Test fixtures for the Signaling Controller: tickets minted directly (no KDC)
// and a test-side CTA built from the protocol core (pktc, krb5 DER, enctypes,
// SA derivation, ESP) over a real UDP socket on 127.0.0.1.
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { nodeBackend } from '../../host-tools/crypto/node.ts';
import { decrypt, encrypt, randomKey, usageHmacKey } from '../../firmware/proto/crypto/index.ts';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import {
  decodeApRep,
  decodeEncApRepPart,
  decodeKrbError,
  encodeApReq,
  encodeAuthenticator,
  encodeEncTicketPart,
  parsePrincipal,
  AP_OPT_MUTUAL_REQUIRED,
  KU_AP_REP_ENCPART,
  KU_AP_REQ_AUTH,
  KU_KDC_REP_TICKET,
  TKT_FLG_INITIAL,
  TKT_FLG_PRE_AUTHENT,
  type KrbError,
  type Ticket,
} from '../../firmware/proto/krb5.ts';
import {
  decodeApReply,
  decodeErrorReply,
  decodeRekey,
  decodeWakeUp,
  encodeApRequest,
  encodeSaRecovered,
  verifyHmac,
  DOI,
  IPSEC_AUTH,
  IPSEC_ENC,
  KMMID,
  USAGE,
  type Ciphersuite,
} from '../../firmware/proto/pktc.ts';
import { deriveSaKeys, type SaKeys } from '../../firmware/proto/sa.ts';
import { ReplayWindow, buildNcsResponse, espOpen, espSeal, parseNcsCommand, ESP_NEXT_HEADER } from '../../firmware/proto/esp.ts';

export const B = nodeBackend;
export const REALM = 'EXAMPLE.NET';
export const SC_PRINCIPAL = `sc/sc1.example.net@${REALM}`;

/** A keytab entry with a fresh random key. */
export function serviceEntry(principal = SC_PRINCIPAL, etype = 17, kvno = 2): KeytabEntry {
  const p = parsePrincipal(principal);
  return { principal: { realm: p.realm, components: p.name.nameString, nameType: 1 }, timestamp: 0, kvno, etype, key: randomKey(B, etype) };
}

export type Minted = { ticket: Ticket; sessionKey: Uint8Array; etype: number; endtime: number };

/** An EncTicketPart for client, sealed with the service key (key usage 2). */
export function mintTicket(o: {
  service: KeytabEntry;
  client: string;
  now: number;
  lifetimeMs?: number;
  starttime?: number;
  endtime?: number;
  sessionEtype?: number;
  kvno?: number | null;
  flags?: number;
}): Minted {
  const c = parsePrincipal(o.client);
  const s = { realm: o.service.principal.realm, name: { nameType: 2, nameString: o.service.principal.components } };
  const etype = o.sessionEtype ?? o.service.etype;
  const sessionKey = randomKey(B, etype);
  const endtime = o.endtime ?? o.now + (o.lifetimeMs ?? 10 * 3600 * 1000);
  const etp = encodeEncTicketPart({
    flags: o.flags ?? TKT_FLG_INITIAL | TKT_FLG_PRE_AUTHENT,
    key: { keytype: etype, keyvalue: sessionKey },
    crealm: c.realm,
    cname: c.name,
    transited: { trType: 1, contents: new Uint8Array(0) },
    authtime: o.now,
    starttime: o.starttime ?? o.now,
    endtime,
  });
  const cipher = encrypt(B, o.service.etype, o.service.key, KU_KDC_REP_TICKET, etp);
  const encPart: Ticket['encPart'] = { etype: o.service.etype, cipher };
  if (o.kvno !== null) encPart.kvno = o.kvno ?? o.service.kvno;
  return { ticket: { realm: s.realm, sname: s.name, encPart }, sessionKey, etype, endtime };
}

/** A KRB_AP_REQ (mutual-required) with a fresh authenticator (usage 11). */
export function makeApReq(m: Minted, client: string, ctime: number, cusec = 0): { der: Uint8Array; authCipher: Uint8Array } {
  const c = parsePrincipal(client);
  const auth = encodeAuthenticator({ crealm: c.realm, cname: c.name, ctime: ctime - (ctime % 1000), cusec });
  const authCipher = encrypt(B, m.etype, m.sessionKey, KU_AP_REQ_AUTH, auth);
  return { der: encodeApReq({ apOptions: AP_OPT_MUTUAL_REQUIRED, ticket: m.ticket, authenticator: { etype: m.etype, cipher: authCipher } }), authCipher };
}
export function apReqWithAuth(m: Minted, authCipher: Uint8Array): Uint8Array {
  return encodeApReq({ apOptions: AP_OPT_MUTUAL_REQUIRED, ticket: m.ticket, authenticator: { etype: m.etype, cipher: authCipher } });
}

export const CS_AES: Ciphersuite = { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC };

/** The pktc AP Request around a KRB_AP_REQ, HMAC'd (usage 1101) under the session key. */
export function pktcApRequest(m: Minted, apReq: Uint8Array, nonce: number, spi: number, cs: Ciphersuite[] = [CS_AES], hmacKey?: Uint8Array): Uint8Array {
  return encodeApRequest(B, hmacKey ?? usageHmacKey(B, m.etype, m.sessionKey, USAGE.AP_REQUEST), {
    kmmid: KMMID.AP_REQUEST,
    doi: DOI.IPSEC,
    apReq,
    serverNonce: nonce,
    appData: { spi },
    ciphersuites: cs,
    reestablish: false,
  });
}

export type Rx = { data: Uint8Array; address: string; port: number; at: number };

function u8(b: Buffer): Uint8Array {
  return new Uint8Array(b);
}

/**
 * A CTA for tests: a key-management socket and a signaling socket on 127.0.0.1.
 * With auto = true it answers every Wake Up / Rekey (matching our SC) with an AP
 * Request, and every AP Reply with an SA Recovered, and answers NCS commands
 * over the SA with "200 txid OK".
 */
export class TestCta {
  readonly principal: string;
  readonly service: KeytabEntry;
  readonly now: () => number;
  sock!: dgram.Socket;
  sig!: dgram.Socket;
  port = 0;
  sigPort = 0;
  received: Rx[] = [];
  auto = true;
  minted: Minted | null = null;
  spi = 0;
  /** Last AP Request sent (bytes). */
  lastApRequest: Uint8Array | null = null;
  lastApReply: Uint8Array | null = null;
  subkey: Uint8Array | null = null;
  sa: (SaKeys & { ctaSpi: number; scSpi: number; encNull: boolean }) | null = null;
  sigSeq = 0;
  sigWindow = new ReplayWindow();
  sigHandled: string[] = [];
  errors: KrbError[] = [];
  private waiters: { pred: (r: Rx) => boolean; resolve: (r: Rx) => void }[] = [];
  scAddress: { host: string; port: number } = { host: '127.0.0.1', port: 0 };
  ciphersuites: Ciphersuite[] = [CS_AES];

  constructor(principal: string, service: KeytabEntry, now: () => number) {
    this.principal = principal;
    this.service = service;
    this.now = now;
  }

  static async create(principal: string, service: KeytabEntry, now: () => number): Promise<TestCta> {
    const c = new TestCta(principal, service, now);
    c.sock = dgram.createSocket('udp4');
    c.sig = dgram.createSocket('udp4');
    await new Promise<void>((r) => c.sock.bind(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => c.sig.bind(0, '127.0.0.1', () => r()));
    c.port = (c.sock.address() as AddressInfo).port;
    c.sigPort = (c.sig.address() as AddressInfo).port;
    c.sock.on('message', (m, ri) => c.onMessage({ data: u8(m), address: ri.address, port: ri.port, at: Date.now() }));
    c.sig.on('message', (m, ri) => c.onSignaling(u8(m), ri.address, ri.port));
    return c;
  }

  /** A fresh ticket (and reset of session state). */
  newTicket(o: Partial<Parameters<typeof mintTicket>[0]> = {}): Minted {
    this.minted = mintTicket({ service: this.service, client: this.principal, now: this.now(), ...o });
    return this.minted;
  }

  /** Builds (does not send) an AP Request answering nonce. */
  apRequest(nonce: number, o: { ctime?: number; cusec?: number; authCipher?: Uint8Array; spi?: number } = {}): { bytes: Uint8Array; authCipher: Uint8Array } {
    const m = this.minted ?? this.newTicket();
    let der: Uint8Array;
    let authCipher: Uint8Array;
    if (o.authCipher) {
      authCipher = o.authCipher;
      der = apReqWithAuth(m, authCipher);
    } else {
      const a = makeApReq(m, this.principal, o.ctime ?? this.now(), o.cusec ?? Math.floor(Math.random() * 999999));
      der = a.der;
      authCipher = a.authCipher;
    }
    this.spi = o.spi ?? 0x1000 + Math.floor(Math.random() * 0xffff);
    return { bytes: pktcApRequest(m, der, nonce, this.spi, this.ciphersuites), authCipher };
  }

  send(bytes: Uint8Array): void {
    if (bytes[0] === KMMID.AP_REQUEST) this.lastApRequest = bytes;
    this.sock.send(bytes, this.scAddress.port, this.scAddress.host);
  }

  private onMessage(rx: Rx): void {
    this.received.push(rx);
    for (let i = 0; i < this.waiters.length; i++) {
      if (this.waiters[i].pred(rx)) {
        this.waiters[i].resolve(rx);
        this.waiters.splice(i, 1);
        i--;
      }
    }
    const k = rx.data[0];
    if (k === KMMID.ERROR_REPLY) this.errors.push(decodeKrbError(decodeErrorReply(rx.data).krbError));
    if (!this.auto) return;
    if (k === KMMID.WAKE_UP) {
      const w = decodeWakeUp(rx.data);
      this.send(this.apRequest(w.serverNonce).bytes);
    } else if (k === KMMID.REKEY && this.minted) {
      const r = decodeRekey(rx.data);
      if (!verifyHmac(B, usageHmacKey(B, this.minted.etype, this.minted.sessionKey, USAGE.REKEY), r.signed, r.hmac)) return;
      this.send(this.apRequest(r.serverNonce).bytes);
    } else if (k === KMMID.AP_REPLY) {
      this.acceptApReply(rx.data, true);
    }
  }

  /** Verifies an AP Reply, derives the SA, and (if sendAck) sends SA Recovered. Returns false if it does not verify. */
  acceptApReply(bytes: Uint8Array, sendAck: boolean): boolean {
    const m = this.minted;
    if (!m) return false;
    const rep = decodeApReply(bytes);
    const enc = decodeEncApRepPart(decrypt(B, m.etype, m.sessionKey, KU_AP_REP_ENCPART, decodeApRep(rep.apRep).encPart.cipher));
    if (!enc.subkey) return false;
    const sub = enc.subkey.keyvalue;
    if (!verifyHmac(B, usageHmacKey(B, enc.subkey.keytype, sub, USAGE.AP_REPLY), rep.signed, rep.hmac)) return false;
    this.lastApReply = bytes;
    this.subkey = sub;
    const scSpi = (rep.appData as { spi: number }).spi;
    this.sa = { ...deriveSaKeys(B, sub, this.spi, scSpi), ctaSpi: this.spi, scSpi, encNull: rep.ciphersuite.enc === IPSEC_ENC.NULL };
    this.sigSeq = 0;
    this.sigWindow.reset();
    if (sendAck && rep.ackRequired) {
      this.send(encodeSaRecovered(B, usageHmacKey(B, enc.subkey.keytype, sub, USAGE.SA_RECOVERED), { kmmid: KMMID.SA_RECOVERED, doi: DOI.IPSEC }, rep.hmac));
    }
    return true;
  }

  private onSignaling(pkt: Uint8Array, address: string, port: number): void {
    const sa = this.sa;
    if (!sa) return;
    try {
      const seq = ((pkt[4] << 24) | (pkt[5] << 16) | (pkt[6] << 8) | pkt[7]) >>> 0;
      if (!this.sigWindow.check(seq)) return;
      const o = espOpen(B, { encKey: sa.encNull ? null : sa.encScToCta, authKey: sa.authScToCta }, pkt);
      this.sigWindow.update(seq);
      const text = Buffer.from(o.payload).toString('latin1');
      this.sigHandled.push(text);
      const cmd = parseNcsCommand(text);
      const resp = buildNcsResponse(cmd.txid, 200);
      const out = espSeal(
        B,
        { spi: sa.scSpi, seq: ++this.sigSeq, encKey: sa.encNull ? null : sa.encCtaToSc, authKey: sa.authCtaToSc },
        new Uint8Array(Buffer.from(resp, 'latin1')),
        ESP_NEXT_HEADER.UDP,
      );
      this.sig.send(out, port, address);
    } catch {
      /* drop */
    }
  }

  /** Resolves with the next datagram matching pred (already-received ones are not considered). */
  next(pred: (r: Rx) => boolean, timeoutMs = 3000): Promise<Rx> {
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (r: Rx) => {
          clearTimeout(t);
          resolve(r);
        },
      };
      const t = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`${this.principal}: timed out waiting for a datagram`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }
  nextKind(kmmid: number, timeoutMs = 3000): Promise<Rx> {
    return this.next((r) => r.data[0] === kmmid, timeoutMs);
  }
  /** Datagrams received since index `from` of the given kind. */
  count(kmmid: number, from = 0): number {
    let n = 0;
    for (let i = from; i < this.received.length; i++) if (this.received[i].data[0] === kmmid) n++;
    return n;
  }

  close(): Promise<void> {
    return Promise.all([new Promise<void>((r) => this.sock.close(() => r())), new Promise<void>((r) => this.sig.close(() => r()))]).then(() => {});
  }
}

/** Real-time wait (for "nothing arrives" checks). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
