// Who the SC is: its service principal and the keytab keys that open the tickets
// CTAs present (etype -> kvno -> key, with each key's ticket-decryption context
// prepared once). Read once at start-up by context.ts; wiped by close().

import { ticketKey, type TicketKey } from './session-crypto.ts';
import { WakeUpTemplate } from './fast-encode.ts';
import { getProfile, keyCacheSize, setKeyCacheSize } from '../../firmware/proto/crypto/index.ts';
import { findKeys, type KeytabEntry } from '../../firmware/proto/keytab.ts';
import { parsePrincipal, principalToString, type PrincipalName } from '../../firmware/proto/krb5.ts';
import { scCryptoBackend } from './fast-crypto.ts';
import { ScStartError } from './types.ts';
import { loadKeytab } from './start-io.ts';

export type ScIdentity = {
  scName: { name: PrincipalName; realm: string };
  /** The canonical "sc/host@REALM". */
  principal: string;
  /** The Wake Up with everything but the nonce encoded once. */
  wakeUpTemplate: WakeUpTemplate;
  /** etype -> kvno -> key (copies, wiped by close()). */
  serviceKeys: Map<number, Map<number, Uint8Array>>;
  /** "etype:kvno" -> prepared Ke/Ki of usage 2. */
  ticketKeys: Map<string, TicketKey>;
  /** The newest kvno per etype (for tickets without a kvno). */
  newestKvno: Map<number, number>;
};

/** A Buffer's bytes as a plain Uint8Array view (no copy). */
export function u8(buf: Buffer): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}

/** Parses the principal, reads the keytab and prepares the service keys; throws ScStartError. */
export function loadIdentity(principalOpt: string, keytab: KeytabEntry[] | string, hmacKeyCache: number | undefined): ScIdentity {
  let scName: { name: PrincipalName; realm: string };
  try {
    scName = parsePrincipal(principalOpt);
  } catch (e) {
    throw new ScStartError('principal', `bad SC principal '${principalOpt}': ${(e as Error).message}`);
  }
  const principal = principalToString(scName.name, scName.realm);
  const wakeUpTemplate = new WakeUpTemplate(principal);
  const entries = loadKeytab(keytab);
  const myKeys = findKeys(entries, principal).filter((e) => getProfile(e.etype) !== null);
  if (myKeys.length === 0) {
    const any = findKeys(entries, principal).length > 0;
    throw new ScStartError(
      'principal_not_in_keytab',
      any ? `keytab has no supported (AES) key for ${principal}` : `principal ${principal} is not in the keytab`,
    );
  }
  // etype -> kvno -> key; and the newest kvno per etype (for tickets without a kvno).
  const serviceKeys = new Map<number, Map<number, Uint8Array>>();
  const ticketKeys = new Map<string, TicketKey>(); // etype:kvno -> prepared Ke/Ki of usage 2
  const newestKvno = new Map<number, number>();
  for (const e of myKeys) {
    let m = serviceKeys.get(e.etype);
    if (!m) serviceKeys.set(e.etype, (m = new Map()));
    if (!m.has(e.kvno)) {
      m.set(e.kvno, e.key.slice());
      ticketKeys.set(e.etype + ':' + e.kvno, ticketKey(scCryptoBackend, e.etype, e.key));
    }
    if (!newestKvno.has(e.etype) || e.kvno > (newestKvno.get(e.etype) as number)) newestKvno.set(e.etype, e.kvno);
  }
  // The crypto layer caches derived keys per (key, usage); the SC has several live keys.
  setKeyCacheSize(Math.max(keyCacheSize(), hmacKeyCache ?? 4096, 64));
  return { scName, principal, wakeUpTemplate, serviceKeys, ticketKeys, newestKvno };
}
