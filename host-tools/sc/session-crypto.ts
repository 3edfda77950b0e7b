// The Kerberos and key-management crypto of one AP Request exchange, as the SC's
// hot path needs it: ticket decryption under the service key, then everything
// under the ticket's session key (authenticator, AP Request HMAC, EncAPRepPart)
// and under the fresh AP-REP subkey (AP Reply and SA Recovered HMAC keys).
//
// Enctypes 17/18 go through host-tools/crypto/fast-krb.ts: the session key's five
// derived keys (Ke/Ki of usages 11 and 12, Ki of 1101) come from one ECB pass, the
// subkey's two HMAC keys (1102, 1103) from another, the service key's Ke/Ki and
// its decipher are made once. Nothing is looked up by key bytes. Enctypes 19/20
// use the generic layer (firmware/proto/crypto) on the SC backend, with the same
// results.
import { decrypt, encrypt, hmacSha1 as genericHmacSha1, usageHmacKey } from '../../firmware/proto/crypto/index.ts';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import { deriveRaw, hmacPads, hmacSha1, hmacSha1Ok, isFastEtype, KIND, UsageKey, type HmacPads } from '../crypto/fast-krb.ts';
import { KU_AP_REP_ENCPART, KU_AP_REQ_AUTH, KU_KDC_REP_TICKET } from '../../firmware/proto/krb5.ts';
import { USAGE } from '../../firmware/proto/pktc.ts';

/** Decrypts tickets (usage 2) under one service key. */
export type TicketKey = { decrypt(cipher: Uint8Array): Uint8Array; wipe(): void };

export function ticketKey(b: CryptoBackend, etype: number, key: Uint8Array): TicketKey {
  if (isFastEtype(etype)) return UsageKey.derive(etype, key, KU_KDC_REP_TICKET);
  const k = key.slice();
  return {
    decrypt(c) {
      return decrypt(b, etype, k, KU_KDC_REP_TICKET, c);
    },
    wipe() {
      k.fill(0);
    },
  };
}

/** The session key's operations for one AP Request (or several, when cached per CTA). */
export interface SessionOps {
  /** Authenticator decryption (usage 11); CryptoError on a bad integrity check. */
  decryptAuthenticator(cipher: Uint8Array): Uint8Array;
  /** HMAC-SHA1 with the AP Request key (Ki of usage 1101), a fresh 20-byte array. */
  apRequestMac(data: Uint8Array): Uint8Array;
  /** Constant-time: HMAC-SHA1 with the AP Request key of data is want (20 bytes). */
  apRequestMacOk(data: Uint8Array, want: Uint8Array): boolean;
  /** EncAPRepPart encryption (usage 12). */
  encryptApRepPart(plain: Uint8Array): Uint8Array;
  /** True when this was made for exactly this key (constant time). */
  isFor(etype: number, key: Uint8Array): boolean;
  wipe(): void;
}

const SESSION_USAGES = [KU_AP_REQ_AUTH, KU_AP_REQ_AUTH, KU_AP_REP_ENCPART, KU_AP_REP_ENCPART, USAGE.AP_REQUEST];
const SESSION_KINDS = [KIND.KE, KIND.KI, KIND.KE, KIND.KI, KIND.KI];

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/** Enctypes 17/18: every derived key from one ECB pass; contexts made on first use. */
class FastSession implements SessionOps {
  private etype: number;
  private key: Uint8Array;
  private d: Uint8Array[];
  private auth: UsageKey;
  private rep: UsageKey | null = null;
  private mac: HmacPads;
  constructor(etype: number, key: Uint8Array) {
    this.etype = etype;
    this.key = key.slice();
    this.d = deriveRaw(etype, key, SESSION_USAGES, SESSION_KINDS, true); // once per ticket (cached per CTA)
    this.auth = new UsageKey(etype, this.d[0], this.d[1], true);
    this.mac = hmacPads(this.d[4]);
  }
  decryptAuthenticator(c: Uint8Array): Uint8Array {
    return this.auth.decrypt(c);
  }
  apRequestMac(data: Uint8Array): Uint8Array {
    return hmacSha1(this.mac, data);
  }
  apRequestMacOk(data: Uint8Array, want: Uint8Array): boolean {
    return want.length === 20 && hmacSha1Ok(this.mac, data, want, 0);
  }
  encryptApRepPart(p: Uint8Array): Uint8Array {
    if (!this.rep) this.rep = new UsageKey(this.etype, this.d[2], this.d[3], true);
    return this.rep.encrypt(p);
  }
  isFor(etype: number, key: Uint8Array): boolean {
    return etype === this.etype && sameKey(key, this.key);
  }
  wipe(): void {
    for (const x of this.d) x.fill(0);
    this.key.fill(0);
    this.mac.fill(0);
    this.auth.wipe();
    if (this.rep) this.rep.wipe();
  }
}

/** Enctypes 19/20: the generic layer on the SC backend. */
class GenericSession implements SessionOps {
  private b: CryptoBackend;
  private etype: number;
  private key: Uint8Array;
  private hk: Uint8Array;
  constructor(b: CryptoBackend, etype: number, key: Uint8Array) {
    this.b = b;
    this.etype = etype;
    this.key = key.slice();
    this.hk = usageHmacKey(b, etype, key, USAGE.AP_REQUEST);
  }
  decryptAuthenticator(c: Uint8Array): Uint8Array {
    return decrypt(this.b, this.etype, this.key, KU_AP_REQ_AUTH, c);
  }
  apRequestMac(data: Uint8Array): Uint8Array {
    return genericHmacSha1(this.b, this.hk, data);
  }
  apRequestMacOk(data: Uint8Array, want: Uint8Array): boolean {
    const h = genericHmacSha1(this.b, this.hk, data);
    if (h.length !== want.length) return false;
    let d = 0;
    for (let i = 0; i < h.length; i++) d |= h[i] ^ want[i];
    h.fill(0);
    return d === 0;
  }
  encryptApRepPart(p: Uint8Array): Uint8Array {
    return encrypt(this.b, this.etype, this.key, KU_AP_REP_ENCPART, p);
  }
  isFor(etype: number, key: Uint8Array): boolean {
    return etype === this.etype && sameKey(key, this.key);
  }
  wipe(): void {
    this.key.fill(0);
    this.hk.fill(0);
  }
}

export function sessionOps(b: CryptoBackend, etype: number, key: Uint8Array): SessionOps {
  return isFastEtype(etype) ? new FastSession(etype, key) : new GenericSession(b, etype, key);
}

/**
 * The raw HMAC keys of the AP Reply (Ki of usage 1102) and SA Recovered (1103)
 * under the AP-REP subkey: one ECB pass for 17/18. Fresh arrays; wipe after use.
 */
export function subkeyHmacKeys(b: CryptoBackend, etype: number, subkey: Uint8Array): [Uint8Array, Uint8Array] {
  if (isFastEtype(etype)) {
    const d = deriveRaw(etype, subkey, [USAGE.AP_REPLY, USAGE.SA_RECOVERED], [KIND.KI, KIND.KI], true); // a fresh key, derived from once
    return [d[0], d[1]];
  }
  return [usageHmacKey(b, etype, subkey, USAGE.AP_REPLY), usageHmacKey(b, etype, subkey, USAGE.SA_RECOVERED)];
}

/** HMAC-SHA1(key, data) for a raw key (prepared pads when the key fits a block). */
export function hmacRaw(b: CryptoBackend, key: Uint8Array, data: Uint8Array): Uint8Array {
  if (key.length <= 64) {
    const p = hmacPads(key);
    const m = hmacSha1(p, data);
    p.fill(0);
    return m;
  }
  return genericHmacSha1(b, key, data);
}
