// Load generator process: many lightweight simulated CTAs built from the agent's
// protocol modules (firmware/proto: pktc, krb5 DER, enctypes) on node:crypto, with
// tickets pre-fetched (minted with the SC's key before the measurement).
//
// SC mode: `lanes` UDP sockets on 127.0.0.1; CTA i is registered at lane i % lanes.
// A lane carries one exchange at a time, so a Wake Up arriving on a lane belongs to
// the CTA the lane asked the SC to wake (the SC names no CTA in a Wake Up):
//   lane idle -> ask the SC (UDP command socket) to wake the lane's next CTA
//   Wake Up  -> AP Request (fresh authenticator, returned nonce, HMAC 1101)
//   AP Reply -> decrypt the EncAPRepPart (the subkey), [verify HMAC 1102], SA Recovered (HMAC 1103)
// Closed loop (every lane busy) for the maximum rate, or paced at `rate` wakes/s.
//
// AS mode: `lanes` UDP sockets, each with one AS-REQ (PA-ENC-TIMESTAMP, fresh nonce)
// outstanding against a KDC; counts AS-REPs.
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { nodeBackend } from '../crypto/node.ts';
import { decrypt, deriveKey, setKeyCacheSize, usageHmacKey } from '../../firmware/proto/crypto/index.ts';
import { decodeApRep, decodeEncApRepPart, KU_AP_REP_ENCPART } from '../../firmware/proto/krb5.ts';
import { decodeApReply, encodeSaRecovered, verifyHmac, DOI, KMMID, USAGE } from '../../firmware/proto/pktc.ts';
import { encodeApReq, encodeAuthenticator, encodeTicket, AP_OPT_MUTUAL_REQUIRED, KU_AP_REQ_AUTH } from '../../firmware/proto/krb5.ts';
import { deriveRaw, hmacPads, hmacSha1Into, isFastEtype, KIND, UsageKey, type HmacPads } from '../crypto/fast-krb.ts';
import { isIP } from 'node:net';
import { buildAsReq, paEncTimestamp } from '../kdc/client.ts';
import { childMain } from './proc.ts';
import { apReqDer, ctaPrincipal, fromHex, mintTicket, pktcApRequest, toHex, REALM, type Minted } from './fixtures.ts';

const B = nodeBackend;
/** usage 1103 || 0x55: the integrity-key constant of the SA Recovered HMAC. */
const SA_RECOVERED_KI = new Uint8Array([0, 0, (USAGE.SA_RECOVERED >> 8) & 0xff, USAGE.SA_RECOVERED & 0xff, 0x55]);

type Lane = {
  g: number;
  sock: dgram.Socket;
  port: number;
  shard: number;
  /** CTA index being served, -1 = idle. */
  cta: number;
  j: number;
  since: number;
  phase: number; // 0 idle, 1 wake asked, 2 AP Request sent
};

type Shard = { port: number; cmdPort: number; queue: number[] };

let lanes: Lane[] = [];
let shards: Shard[] = [];
let tickets: Minted[] = [];
let n = 0;
/** Exercised CTAs per lane, and the spacing between them (in units of `lanes`). */
let perLane = 1;
let stride = 1;
let verify = false;
let running = false;
let rate = 0;
let issued = 0;
let rateStart = 0;
let done = 0;
let errorsRx = 0;
let timeouts = 0;
let cusec = 0;
let flushScheduled = false;
let cmdSock: dgram.Socket | null = null;
let ticker: NodeJS.Timeout | null = null;
let nextIdle = 0;
let cpu0 = process.cpuUsage();
let done0 = 0;

/** dgram lookup answering IP literals synchronously (no dns.lookup + nextTick per send). */
function ipLookup(address: string, _o: unknown, cb: (err: Error | null, address: string, family: number) => void): void {
  const fam = isIP(address);
  if (fam !== 0) return cb(null, address, fam);
  cb(new Error('loadgen sends to IP addresses only: ' + address), address, 0);
}
function udp(): dgram.Socket {
  return dgram.createSocket({ type: 'udp4', lookup: ipLookup as never });
}

/**
 * What a CTA keeps for its cached ticket, prepared once (as the agent keeps its
 * ticket): the ticket's DER, Ke/Ki of usages 11 (authenticator) and 12 (AP-REP
 * part) with their cipher contexts, and the HMAC pads of the usage-1101 key. Every
 * exchange still builds and encrypts a fresh authenticator, HMACs the AP Request,
 * decrypts the AP-REP part for the subkey, derives the subkey's usage-1103 key and
 * HMACs the SA Recovered.
 */
type Prepared = { auth: UsageKey; rep: UsageKey; reqPads: HmacPads; ticketDer: Uint8Array };
const prepared = new Map<number, Prepared>();
function prep(i: number, t: Minted): Prepared | null {
  if (!isFastEtype(t.etype)) return null;
  let p = prepared.get(i);
  if (!p) {
    p = {
      auth: UsageKey.derive(t.etype, t.sessionKey, KU_AP_REQ_AUTH),
      rep: UsageKey.derive(t.etype, t.sessionKey, KU_AP_REP_ENCPART),
      reqPads: hmacPads(t.hmacReq),
      ticketDer: encodeTicket(t.ticket),
    };
    prepared.set(i, p);
  }
  return p;
}
const HDR_AP_REQUEST = new Uint8Array([KMMID.AP_REQUEST, DOI.IPSEC, 0x10]);
/** The pktc AP Request (DOI IPsec, one ciphersuite HMAC-SHA1-96/AES-128-CBC, no re-establish) as pktcApRequest builds it. */
function apRequestFast(p: Prepared, t: Minted, ms: number, us: number, nonce: number, spi: number): Uint8Array {
  const auth = encodeAuthenticator({ crealm: REALM, cname: t.cname, ctime: ms - (ms % 1000), cusec: us });
  const der = encodeApReq({ apOptions: AP_OPT_MUTUAL_REQUIRED, ticket: { ...t.ticket, raw: p.ticketDer }, authenticator: { etype: t.etype, cipher: p.auth.encrypt(auth) } });
  const n = 3 + der.length + 4 + 4 + 3 + 1;
  const o = new Uint8Array(n + 20);
  o.set(HDR_AP_REQUEST, 0);
  o.set(der, 3);
  let at = 3 + der.length;
  o[at] = nonce >>> 24; o[at + 1] = (nonce >>> 16) & 255; o[at + 2] = (nonce >>> 8) & 255; o[at + 3] = nonce & 255;
  o[at + 4] = spi >>> 24; o[at + 5] = (spi >>> 16) & 255; o[at + 6] = (spi >>> 8) & 255; o[at + 7] = spi & 255;
  at += 8;
  o[at++] = 1;
  o[at++] = 0x02; // HMAC-SHA1-96
  o[at++] = 0x0c; // AES-128-CBC
  o[at++] = 0;
  hmacSha1Into(p.reqPads, o.subarray(0, n), o, n);
  return o;
}
const SA_REC = new Uint8Array(23);

function bind(s: dgram.Socket): Promise<number> {
  return new Promise((r) => s.bind(0, '127.0.0.1', () => r(s.address().port)));
}

function ticketOf(i: number): Minted {
  let t = tickets[i];
  if (!t) t = tickets[i] = mintTicket(scKeyBytes, ctaPrincipal(i), Date.now());
  return t;
}
let scKeyBytes: Uint8Array = new Uint8Array(0);

function flushWakes(): void {
  flushScheduled = false;
  for (const s of shards) {
    while (s.queue.length) {
      const part = s.queue.splice(0, 350);
      const b = Buffer.allocUnsafe(part.length * 4);
      for (let k = 0; k < part.length; k++) b.writeUInt32BE(part[k], k * 4);
      cmdSock!.send(b, s.cmdPort, '127.0.0.1');
    }
  }
}

/** CTA served by lane g on its j-th exchange: c % lanes === g, spread over [0, n). */
function ctaOf(g: number, j: number): number {
  // Lanes g >= n % (perLane * lanes) may have one CTA fewer below n: never name an
  // unregistered CTA (the SC would not wake it and the lane would time out).
  const step = stride * lanes.length;
  const count = Math.max(1, Math.min(perLane, Math.floor((n - 1 - g) / step) + 1));
  return g + (j % count) * step;
}

function ask(l: Lane): void {
  const c = ctaOf(l.g, l.j);
  l.j++;
  l.cta = c;
  l.phase = 1;
  l.since = performance.now();
  issued++;
  shards[l.shard].queue.push(c);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flushWakes);
  }
}

function laneIdle(l: Lane): void {
  l.cta = -1;
  l.phase = 0;
  if (running && rate === 0) ask(l);
}

function onLane(l: Lane, buf: Buffer): void {
  const k = buf[0];
  if (l.cta < 0) return;
  const t = ticketOf(l.cta);
  if (k === KMMID.WAKE_UP) {
    const nonce = buf.readUInt32BE(3);
    const ms = Date.now();
    cusec = (cusec + 1) % 1000000;
    const pp = prep(l.cta, t);
    const req = pp ? apRequestFast(pp, t, ms, cusec, nonce, 0x1000 + l.g) : pktcApRequest(t, apReqDer(t, ms, cusec), nonce, 0x1000 + l.g);
    l.phase = 2;
    l.sock.send(req, shards[l.shard].port, '127.0.0.1');
  } else if (k === KMMID.AP_REPLY) {
    const u = new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
    const m = decodeApReply(u);
    const rep = decodeApRep(m.apRep);
    const pp = prep(l.cta, t);
    const part = decodeEncApRepPart(pp ? pp.rep.decrypt(rep.encPart.cipher) : decrypt(B, t.etype, t.sessionKey, KU_AP_REP_ENCPART, rep.encPart.cipher));
    const sub = part.subkey!;
    if (verify && !verifyHmac(B, usageHmacKey(B, sub.keytype, sub.keyvalue, USAGE.AP_REPLY), m.signed, m.hmac)) {
      errorsRx++;
      return laneIdle(l);
    }
    let sr: Uint8Array;
    if (isFastEtype(sub.keytype) && sub.keyvalue.length === (sub.keytype === 17 ? 16 : 32)) {
      // Ki(subkey, 1103): one ECB pass; HMAC over header || AP Reply HMAC.
      const [ki] = deriveRaw(sub.keytype, sub.keyvalue, [USAGE.SA_RECOVERED], [KIND.KI], true);
      const pads = hmacPads(ki);
      ki.fill(0);
      SA_REC[0] = KMMID.SA_RECOVERED;
      SA_REC[1] = DOI.IPSEC;
      SA_REC[2] = 0x10;
      SA_REC.set(m.hmac, 3);
      sr = new Uint8Array(23);
      sr.set(SA_REC.subarray(0, 3), 0);
      hmacSha1Into(pads, SA_REC, sr, 3);
      pads.fill(0);
    } else {
      // Ki(subkey, 1103) derived directly: a one-shot subkey must not churn the derived-key cache.
      const ki = deriveKey(B, sub.keytype, sub.keyvalue, SA_RECOVERED_KI);
      sr = encodeSaRecovered(B, ki, { kmmid: KMMID.SA_RECOVERED, doi: DOI.IPSEC }, m.hmac);
    }
    sub.keyvalue.fill(0);
    l.sock.send(sr, shards[l.shard].port, '127.0.0.1');
    done++;
    laneIdle(l);
  } else if (k === KMMID.ERROR_REPLY) {
    errorsRx++;
    laneIdle(l);
  }
}

function tick(): void {
  const now = performance.now();
  // Lanes stuck (a lost datagram): give up after 4 s and move on.
  for (const l of lanes) {
    if (l.phase !== 0 && now - l.since > 4000) {
      timeouts++;
      laneIdle(l);
    }
  }
  if (!running || rate === 0) return;
  const due = Math.floor(((now - rateStart) * rate) / 1000) - issued;
  for (let k = 0; k < due; k++) {
    let found: Lane | null = null;
    for (let s = 0; s < lanes.length; s++) {
      const l = lanes[(nextIdle + s) % lanes.length];
      if (l.phase === 0) {
        found = l;
        nextIdle = (nextIdle + s + 1) % lanes.length;
        break;
      }
    }
    if (!found) {
      // Every lane busy: count the wake as issued anyway (the offered load is open-loop).
      issued++;
      continue;
    }
    ask(found);
  }
}

// ---------------------------------------------------------------- AS mode

type AsLane = { sock: dgram.Socket; since: number; client: number };
let asLanes: AsLane[] = [];
let asTarget = { host: '127.0.0.1', port: 0 };
let asClients: { name: string[]; pa: ReturnType<typeof paEncTimestamp> }[] = [];
let asRealm = '';
let asServer: string[] = [];
let asEtype = 18;
let asNonce = 1;
let asOk = 0;
let asErr = 0;
let asNext = 0;

function asSend(l: AsLane): void {
  const c = asClients[(asNext = (asNext + 1) % asClients.length)];
  asNonce = (asNonce % 0x7ffffff0) + 1;
  const req = buildAsReq({ client: c.name, server: asServer, realm: asRealm, etypes: [asEtype], nonce: asNonce, padata: [c.pa] });
  l.since = performance.now();
  l.sock.send(req, asTarget.port, asTarget.host);
}

childMain(async (msg, reply) => {
  if (msg.type === 'init-sc') {
    n = msg.n;
    verify = !!msg.verify;
    scKeyBytes = fromHex(msg.scKey);
    const nl: number = msg.lanes;
    const nShards: number = msg.shards;
    const t0 = performance.now();
    tickets = new Array(n);
    // Every simulated CTA keeps its own derived keys, as a real one does: size the
    // derived-key cache for all of them (session key usages 11, 12, 1101 each).
    setKeyCacheSize(3 * Math.min(n, (msg.reach ?? n) + nl) + 1024);
    // The exercised CTAs (all of them, or `reach` spread evenly over the n registered):
    // pre-fetch their tickets now, outside the measurement.
    perLane = Math.max(1, Math.ceil(Math.min(n, msg.reach ?? n) / nl));
    stride = Math.max(1, Math.floor(n / (perLane * nl)));
    for (let g = 0; g < nl; g++) for (let j = 0; j < perLane; j++) ticketOf(g + j * stride * nl);
    const mintMs = performance.now() - t0;
    const probe = mintTicket(scKeyBytes, ctaPrincipal(0), Date.now()).sessionKey;
    if (toHex(deriveKey(B, 17, probe, SA_RECOVERED_KI)) !== toHex(usageHmacKey(B, 17, probe, USAGE.SA_RECOVERED))) throw new Error('SA Recovered key derivation mismatch');
    cmdSock = udp();
    await bind(cmdSock);
    lanes = [];
    for (let g = 0; g < nl; g++) {
      const sock = udp();
      const port = await bind(sock);
      const l: Lane = { g, sock, port, shard: g % nShards, cta: -1, j: 0, since: 0, phase: 0 };
      sock.on('message', (m: Buffer) => {
        try {
          onLane(l, m);
        } catch {
          errorsRx++;
          laneIdle(l);
        }
      });
      lanes.push(l);
    }
    ticker = setInterval(tick, 1);
    reply({ type: 'lanes', ports: lanes.map((l) => l.port), mintMs, exercised: perLane * nl });
    return;
  }
  if (msg.type === 'target') {
    shards = (msg.shards as { port: number; cmdPort: number }[]).map((s) => ({ port: s.port, cmdPort: s.cmdPort, queue: [] }));
    reply({ type: 'targeted' });
    return;
  }
  if (msg.type === 'start') {
    running = true;
    rate = msg.rate ?? 0;
    issued = 0;
    rateStart = performance.now();
    cpu0 = process.cpuUsage();
    done0 = done;
    if (rate === 0) for (const l of lanes) if (l.phase === 0) ask(l);
    reply({ type: 'started' });
    return;
  }
  if (msg.type === 'stop') {
    running = false;
    // Let exchanges in flight finish (bounded).
    const t0 = performance.now();
    while (lanes.some((l) => l.phase !== 0) && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    const c = process.cpuUsage(cpu0);
    reply({ type: 'stopped', done: done - done0, errors: errorsRx, timeouts, cpuMs: (c.user + c.system) / 1000, elapsedMs: performance.now() - rateStart });
    return;
  }
  if (msg.type === 'init-as') {
    asTarget = { host: msg.host, port: msg.port };
    asRealm = msg.realm;
    asServer = msg.server;
    asEtype = msg.etype;
    const now = Date.now();
    asClients = (msg.clients as { name: string[]; key: string; kvno: number }[]).map((c) => ({
      name: c.name,
      pa: paEncTimestamp(asEtype, fromHex(c.key), c.kvno, now),
    }));
    for (const l of asLanes) l.sock.close();
    asLanes = [];
    for (let g = 0; g < msg.lanes; g++) {
      const sock = dgram.createSocket('udp4');
      await bind(sock);
      const l: AsLane = { sock, since: 0, client: 0 };
      sock.on('message', (m: Buffer) => {
        // AS-REP is [APPLICATION 11] = 0x6b; anything else (KRB-ERROR 0x7e) is an error.
        if (m[0] === 0x6b) asOk++;
        else asErr++;
        if (running) asSend(l);
      });
      asLanes.push(l);
    }
    reply({ type: 'as-ready' });
    return;
  }
  if (msg.type === 'as-run') {
    asOk = 0;
    asErr = 0;
    running = true;
    for (const l of asLanes) asSend(l);
    const resend = setInterval(() => {
      const now = performance.now();
      for (const l of asLanes) if (now - l.since > 1000) asSend(l);
    }, 100);
    await new Promise((r) => setTimeout(r, msg.warmupMs));
    const ok0 = asOk;
    const err0 = asErr;
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, msg.durationMs));
    const ok = asOk - ok0;
    const err = asErr - err0;
    const elapsedMs = performance.now() - t0;
    running = false;
    clearInterval(resend);
    await new Promise((r) => setTimeout(r, 100));
    reply({ type: 'as-result', ok, err, elapsedMs });
    return;
  }
});

process.on('exit', () => {
  if (ticker) clearInterval(ticker);
});
