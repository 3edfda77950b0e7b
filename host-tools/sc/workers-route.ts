// The `--workers` primary's router: which worker owns a CTA (ownerOf, a stable
// hash of its principal) and where a datagram arriving at the public port goes.
// An AP Request's ticket is decrypted with the SC's keytab to read its client
// principal; its source address:port is then remembered for a minute (affinity)
// so the SA Recovered that follows (only an HMAC) reaches the same worker;
// anything else goes to the worker its source address:port hashes to.
import type dgram from 'node:dgram';
import type { KeytabEntry } from '../../firmware/proto/keytab.ts';
import type { W } from './workers-supervise.ts';
import type { ScLog } from './types.ts';

/** FNV-1a (32-bit) of the principal's UTF-8 bytes, mod n: the worker that owns a CTA. */
export function ownerOf(principal: string, n: number): number {
  if (n <= 1) return 0;
  const b = Buffer.from(principal, 'utf8');
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) {
    h ^= b[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % n;
}

/**
 * The primary's view of an AP Request: the client principal from its ticket,
 * decrypted with the SC's service key (null when it does not decode or decrypt;
 * the owner worker then answers it as any SC would).
 */
export async function makeRouter(principal: string, entries: KeytabEntry[], n: number) {
  const krb = await import('../../firmware/proto/krb5.ts');
  const pktc = await import('../../firmware/proto/pktc.ts');
  const cr = await import('../../firmware/proto/crypto/index.ts');
  const { findKeys } = await import('../../firmware/proto/keytab.ts');
  const { nodeBackend } = await import('../crypto/node.ts');
  let name;
  try {
    name = krb.parsePrincipal(principal);
  } catch {
    name = null;
  }
  const canonical = name ? krb.principalToString(name.name, name.realm) : principal;
  const keys = findKeys(entries, canonical).filter((e) => cr.getProfile(e.etype) !== null);
  return {
    principal: canonical,
    clientOf(buf: Uint8Array): string | null {
      if (n <= 1) return null;
      try {
        const req = krb.decodeApReq(pktc.decodeApRequest(buf).apReq);
        const ep = req.ticket.encPart;
        const cands = keys.filter((e) => e.etype === ep.etype && (ep.kvno === undefined || ep.kvno === null || e.kvno === ep.kvno));
        for (const e of cands) {
          try {
            const etp = krb.decodeEncTicketPart(cr.decrypt(nodeBackend, ep.etype, e.key, krb.KU_KDC_REP_TICKET, ep.cipher));
            return krb.principalToString(etp.cname, etp.crealm);
          } catch {
            /* next key */
          }
        }
      } catch {
        /* not an AP Request we can read */
      }
      return null;
    },
  };
}

/**
 * Routes every datagram at the public socket to a worker over IPC, counting how
 * the owner was found (`count`: the primary's cta_sc_primary_routed_total).
 * Returns stop() for close() (the affinity sweep timer).
 */
export function routePublicPort(sock: dgram.Socket, router: Awaited<ReturnType<typeof makeRouter>>, ws: W[], count: (k: string) => void, log: ScLog): { stop(): void } {
  const n = ws.length;
  const affinity = new Map<string, { k: number; until: number }>();
  sock.on('message', (msg: Buffer, r) => {
    const now = Date.now();
    const src = r.address + ':' + r.port;
    let k = -1;
    if (msg.length >= 3 && msg[0] === 2) {
      const client = router.clientOf(msg);
      if (client !== null) {
        k = ownerOf(client, n);
        count('ap_request');
        if (affinity.size >= 65536) sweepAffinity(now, true);
        affinity.delete(src);
        affinity.set(src, { k, until: now + 60000 });
      }
    }
    if (k < 0) {
      const a = affinity.get(src);
      if (a && a.until > now) {
        k = a.k;
        count('by_source');
      } else {
        k = ownerOf(src, n);
        count('by_source_hash');
      }
    }
    const w = ws[k];
    if (!w.up || !w.proc || !w.proc.connected) {
      count('worker_down');
      return;
    }
    w.proc.send({ t: 'dgram', b: msg, a: r.address, p: r.port }, (e) => {
      if (e) count('worker_down');
    });
  });
  sock.on('error', (e) => log('internal_error', { error: `public UDP socket: ${e.message}` }));
  function sweepAffinity(now: number, force: boolean): void {
    let room = force ? affinity.size >> 4 : 0;
    for (const [key, a] of affinity) {
      if (a.until > now && room-- <= 0) break;
      affinity.delete(key);
    }
  }
  const sweepTimer = setInterval(() => sweepAffinity(Date.now(), false), 10000);
  sweepTimer.unref();
  return {
    stop: () => clearInterval(sweepTimer),
  };
}
