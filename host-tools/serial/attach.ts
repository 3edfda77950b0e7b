// A CTA on a serial line, served by the SC as if it were on UDP: channel 1 (key
// management) and 3 (signaling) go through the SC's attachLink hook, channel 2 is
// relayed to the KDC, channel 0 answers control requests (status, metrics,
// set-time, provision, reset).
import type { ScServer } from '../sc/server.ts';
import { CHANNEL } from './frames.ts';
import { openSerialLink, type SerialLinkHost, type SerialSpec } from './link.ts';
import { startKdcRelay, type KdcRelay } from './kdc-relay.ts';
import { ControlClient } from './control.ts';
import { explainConfigError } from '../provision/config.ts';

export type SerialCtaOptions = {
  /** Where channel-2 KDC traffic goes. */
  kdc: { host: string; port: number };
  /** The CTA's principal (with @REALM); default: asked over channel 0 (status). */
  principal?: string;
  /** Set the board's clock from the host's after attaching (default true). */
  setTime?: boolean;
  /** Send a Wake Up once registered (default true). */
  wake?: boolean;
  /** How long to wait for the board to answer channel 0 (ms, default 10000). */
  bootWaitMs?: number;
  log?: (event: string, fields: { [k: string]: unknown }) => void;
};

export interface SerialCta {
  readonly link: SerialLinkHost;
  readonly control: ControlClient;
  readonly relay: KdcRelay;
  /** The registered principal. */
  readonly principal: string;
  /** The SC address the CTA is registered at ("serial:<path>"). */
  readonly address: string;
  close(): Promise<void>;
}

export async function attachSerialCta(sc: ScServer, linkOrSpec: SerialLinkHost | SerialSpec | string, opts: SerialCtaOptions): Promise<SerialCta> {
  const log = opts.log ?? (() => {});
  const link = typeof linkOrSpec === 'object' && 'send' in linkOrSpec ? linkOrSpec : await openSerialLink(linkOrSpec);
  const address = link.name;
  const recv = sc.attachLink(address, (ch, data) => {
    link.send(ch, data);
  });
  link.onChannel(CHANNEL.KM, (p) => {
    if (p instanceof Uint8Array) recv(CHANNEL.KM, p);
  });
  link.onChannel(CHANNEL.SIGNALING, (p) => {
    if (p instanceof Uint8Array) recv(CHANNEL.SIGNALING, p);
  });
  link.on('dropped', (s) => log('serial_frame_dropped', { link: address, ...s }));
  const relay = await startKdcRelay(link, opts.kdc);
  const control = new ControlClient(link);
  const cleanup = async () => {
    sc.detachLink(address);
    control.close();
    await relay.close();
    await link.close();
  };
  let principal = opts.principal;
  try {
    const attempts = Math.max(1, Math.ceil((opts.bootWaitMs ?? 10000) / 1000));
    const st = await control.requestRetry('status', {}, attempts, 1000);
    if (!principal) {
      if (!st.agent) throw new Error(`the CTA on ${address} runs no agent (${st.error ? explainConfigError(String(st.error)) : 'unknown reason'}): provision it first`);
      principal = String(st.agent.principal);
    }
    if (opts.setTime !== false) {
      const t = await control.setTime(Date.now());
      log('serial_set_time', { link: address, ...t });
    }
  } catch (e) {
    if (!principal) {
      await cleanup();
      throw e;
    }
    log('serial_control_unanswered', { link: address, error: (e as Error).message });
  }
  sc.register(principal, address, 0);
  log('serial_cta_attached', { link: address, principal, baud: link.baud });
  if (opts.wake !== false) sc.wake(principal);
  return { link, control, relay, principal, address, close: cleanup };
}
