// The real CTA agent on real UDP in interop tests: its keys come from a keytab
// file (ours or MIT's ktadd), it talks to one SC and one KDC on 127.0.0.1 and
// binds free ports.
import { readFileSync } from 'node:fs';
import { configFromObject, type CtaConfig } from '../../host-tools/provision/config.ts';
import { parseKeytab, findKeys, type KeytabEntry } from '../../firmware/proto/keytab.ts';

/** The entries of a keytab file; with `principal`, only that principal's (findKeys). */
export function readKeytabFile(path: string, principal?: string): KeytabEntry[] {
  const b = readFileSync(path);
  const all = parseKeytab(new Uint8Array(b.buffer, b.byteOffset, b.length));
  return principal === undefined ? all : findKeys(all, principal);
}

export type LoopbackAgentOptions = {
  /** Without the realm. */
  principal: string;
  realm: string;
  /** Its long-term keys. */
  keys: KeytabEntry[];
  sc: { principal: string; port: number };
  kdcPort: number;
  /** Agent timers (config `timers`), when the test needs other than the defaults. */
  timers?: { [k: string]: unknown };
  /** Config prefetchTicket (default: the agent's, on). */
  prefetchTicket?: boolean;
};

/** The agent config: listen and signaling ports 0 (free), SC and KDC on 127.0.0.1. */
export function loopbackAgentConfig(o: LoopbackAgentOptions): CtaConfig {
  const cfg: { [k: string]: unknown } = {
    v: 1,
    principal: o.principal,
    realm: o.realm,
    keys: o.keys.map((k) => ({ etype: k.etype, kvno: k.kvno, key: k.key })),
    scs: [{ principal: o.sc.principal, address: '127.0.0.1', port: o.sc.port }],
    kdc: { address: '127.0.0.1', port: o.kdcPort },
    listenPort: 0,
    signalingPort: 0,
  };
  if (o.timers) cfg.timers = o.timers;
  if (o.prefetchTicket !== undefined) cfg.prefetchTicket = o.prefetchTicket;
  return configFromObject(cfg);
}
