// Shared by the serial-link and flash tests: a socat pseudo-terminal pair, and an
// embedded KDC with an SC and a CTA principal (keytabs exported, KDC serving on
// 127.0.0.1, free port).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { KdcDatabase } from '../../host-tools/kdc/db.ts';
import { startKdc, type RunningKdc } from '../../host-tools/kdc/server.ts';
import { parseKeytab, type KeytabEntry } from '../../firmware/proto/keytab.ts';
import { makeConfig, type ProvisionOptions } from '../../host-tools/provision/cli.ts';

// The PTY pair lives with the serial tooling (the bench measures serial boards with it too).
export { socatPair, type PtyPair } from '../../host-tools/serial/pty.ts';

export type KdcWorld = {
  realm: string;
  scPrincipal: string;
  ctaPrincipal: string;
  scKeytab: KeytabEntry[];
  ctaKeytab: KeytabEntry[];
  scKeytabPath: string;
  ctaKeytabPath: string;
  kdc: RunningKdc;
  close(): Promise<void>;
};

export async function kdcWorld(dir: string): Promise<KdcWorld> {
  const realm = 'SERIAL.CTA.TEST';
  const db = KdcDatabase.init(join(dir, 'kdc.db'), realm);
  const scPrincipal = `sc/sc1.serial.test@${realm}`;
  const ctaPrincipal = `cta/cta1.serial.test@${realm}`;
  const scKeytabPath = join(dir, 'sc.keytab');
  const ctaKeytabPath = join(dir, 'cta.keytab');
  db.addPrincipal(scPrincipal, { randkey: true });
  db.exportKeytab(scPrincipal, scKeytabPath);
  db.addPrincipal(ctaPrincipal, { randkey: true });
  db.exportKeytab(ctaPrincipal, ctaKeytabPath);
  const kdc = await startKdc({ db, host: '127.0.0.1', port: 0 });
  return {
    realm,
    scPrincipal,
    ctaPrincipal,
    scKeytab: parseKeytab(new Uint8Array(readFileSync(scKeytabPath))),
    ctaKeytab: parseKeytab(new Uint8Array(readFileSync(ctaKeytabPath))),
    scKeytabPath,
    ctaKeytabPath,
    kdc,
    async close() {
      await kdc.close();
      db.close();
    },
  };
}

/**
 * The configuration (cta.cfg) of this world's CTA on a serial transport. Over serial
 * the host decides where KDC traffic goes: the KDC address in it is not used.
 */
export function serialCtaConfig(w: KdcWorld, timers?: ProvisionOptions['timers']): Uint8Array {
  const opts: ProvisionOptions = { keytab: w.ctaKeytab, principal: w.ctaPrincipal, scs: [{ principal: w.scPrincipal }], kdc: { address: '192.0.2.1', port: 88 }, transport: 'serial' };
  if (timers) opts.timers = timers;
  return makeConfig(opts);
}

/** Polls until fn() is truthy (no tight timing: generous deadline, short sleeps). */
export async function waitFor<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 15000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
