// Per-exchange crypto cost of the SC on each CryptoBackend: the operations the SC
// performs for one Wake Up -> AP Request -> AP Reply -> SA Recovered exchange:
//   ticket decrypt (service key, usage 2), authenticator decrypt (session key, 11),
//   AP Request HMAC verify (usage-1101 key, cached per session key as the SC does),
//   subkey generation, EncAPRepPart encrypt (12), AP Reply HMAC (Ki(subkey, 1102)) sign,
//   SA Recovered HMAC (Ki(subkey, 1103)) verify, SA key derivation (HKDF-SHA256).
// Same inputs for every backend; the derived-key cache sized as the SC sizes it.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { nodeBackend } from '../crypto/node.ts';
import { nobleBackend } from '../crypto/noble.ts';
import { makeEspruinoBackend } from '../../firmware/platform/espruino-crypto.ts';
import { makeEspruinoCryptoModule } from '../emulator/crypto-shim.ts';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import { decrypt, encrypt, hmacSha1, keyCacheSize, randomKey, setKeyCacheSize, usageHmacKey, clearKeyCache } from '../../firmware/proto/crypto/index.ts';
import { decodeAuthenticator, decodeEncTicketPart, encodeEncApRepPart, KU_AP_REP_ENCPART, KU_AP_REQ_AUTH, KU_KDC_REP_TICKET } from '../../firmware/proto/krb5.ts';
import { decodeApReq } from '../../firmware/proto/krb5.ts';
import { decodeApRequest, saRecoveredSigned, verifyHmac, USAGE } from '../../firmware/proto/pktc.ts';
import { deriveSaKeys } from '../../firmware/proto/sa.ts';
import { figure, type Figure } from './stats.ts';
import { apReqDer, ctaPrincipal, mintTicket, newScKey, pktcApRequest, ETYPE } from './fixtures.ts';

export type CryptoBenchOptions = { runs: number; durationMs: number; ctas: number; log: (s: string) => void };
export type CryptoBenchRow = { backend: string; usPerExchange: Figure; exchangesPerSec: number };
export type CryptoBenchResult = { rows: CryptoBenchRow[]; scBackend: string; cheapest: string };

export function backends(): { name: string; b: CryptoBackend }[] {
  const espruinoOnNoble = makeEspruinoBackend(makeEspruinoCryptoModule(), () => randomBytes(4).readUInt32BE(0));
  return [
    { name: 'node', b: nodeBackend },
    { name: 'noble', b: nobleBackend },
    { name: 'espruino-shape-on-noble', b: espruinoOnNoble },
  ];
}

type Fix = { ticketCipher: Uint8Array; authCipher: Uint8Array; sessionKey: Uint8Array; signed: Uint8Array; hmac: Uint8Array; ctime: number; cusec: number };

/** One exchange's SC-side crypto; returns a value so nothing is optimised away. */
export function scExchangeCrypto(b: CryptoBackend, scKey: Uint8Array, f: Fix, hmacReqCache: Map<Uint8Array, Uint8Array>): number {
  const etp = decodeEncTicketPart(decrypt(b, ETYPE, scKey, KU_KDC_REP_TICKET, f.ticketCipher));
  const sk = etp.key.keyvalue;
  const auth = decodeAuthenticator(decrypt(b, ETYPE, sk, KU_AP_REQ_AUTH, f.authCipher));
  let hk = hmacReqCache.get(f.sessionKey);
  if (!hk) hmacReqCache.set(f.sessionKey, (hk = usageHmacKey(b, ETYPE, sk, USAGE.AP_REQUEST)));
  if (!verifyHmac(b, hk, f.signed, f.hmac)) throw new Error('AP Request HMAC');
  const subkey = randomKey(b, ETYPE);
  const enc = encrypt(b, ETYPE, sk, KU_AP_REP_ENCPART, encodeEncApRepPart({ ctime: auth.ctime, cusec: auth.cusec, subkey: { keytype: ETYPE, keyvalue: subkey } }));
  const replyMac = hmacSha1(b, usageHmacKey(b, ETYPE, subkey, USAGE.AP_REPLY), f.signed.subarray(0, 180));
  const srSigned = saRecoveredSigned(new Uint8Array([4, 1, 0x10]), replyMac);
  const srMac = hmacSha1(b, usageHmacKey(b, ETYPE, subkey, USAGE.SA_RECOVERED), srSigned);
  if (!verifyHmac(b, usageHmacKey(b, ETYPE, subkey, USAGE.SA_RECOVERED), srSigned, srMac)) throw new Error('SA Recovered HMAC');
  const sa = deriveSaKeys(b, subkey, 0x1000, 0x40000001);
  return enc.length + sa.encCtaToSc[0];
}

export async function runCryptoBench(o: CryptoBenchOptions): Promise<CryptoBenchResult> {
  const scKey = newScKey(ETYPE);
  const now = Date.now();
  const fixes: Fix[] = [];
  for (let i = 0; i < o.ctas; i++) {
    const t = mintTicket(scKey, ctaPrincipal(i), now);
    const der = apReqDer(t, now, i);
    const apReq = decodeApReq(der);
    const msg = decodeApRequest(pktcApRequest(t, der, 0x12345678, 0x1000 + i));
    fixes.push({ ticketCipher: apReq.ticket.encPart.cipher, authCipher: apReq.authenticator.cipher, sessionKey: t.sessionKey, signed: msg.signed, hmac: msg.hmac, ctime: 0, cusec: i });
  }
  const oldCache = keyCacheSize();
  setKeyCacheSize(4096); // as the SC sets it
  const rows: CryptoBenchRow[] = [];
  const per: { [name: string]: number[] } = {};
  const list = backends();
  for (const x of list) per[x.name] = [];
  try {
    // Runs interleaved across backends, so machine noise hits all alike.
    for (let r = 0; r < o.runs; r++) {
      for (const x of list) {
        clearKeyCache();
        const cache = new Map<Uint8Array, Uint8Array>();
        for (let i = 0; i < Math.min(50, fixes.length); i++) scExchangeCrypto(x.b, scKey, fixes[i], cache);
        let k = 0;
        let sink = 0;
        const t0 = performance.now();
        let t = t0;
        while (t - t0 < o.durationMs) {
          for (let j = 0; j < 20; j++) sink += scExchangeCrypto(x.b, scKey, fixes[k++ % fixes.length], cache);
          t = performance.now();
        }
        if (sink === -1) console.log(sink);
        per[x.name].push(((t - t0) * 1000) / k);
      }
      o.log(`crypto: run ${r + 1}/${o.runs}: ${list.map((x) => `${x.name} ${per[x.name][r].toFixed(0)} us`).join(', ')}`);
    }
  } finally {
    clearKeyCache();
    setKeyCacheSize(Math.max(64, oldCache));
  }
  for (const x of list) {
    const f = figure(per[x.name]);
    rows.push({ backend: x.name, usPerExchange: f, exchangesPerSec: 1e6 / f.median });
  }
  const cheapest = rows.slice().sort((a, b) => a.usPerExchange.median - b.usPerExchange.median)[0].backend;
  return { rows, scBackend: 'node', cheapest };
}
