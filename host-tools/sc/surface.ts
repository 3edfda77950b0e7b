// The SC's public surface: the ScServer object startSc returns (registry
// operations, triggers on demand, links to non-UDP paths, status and metrics,
// close) and the control API started on it. Each method is glue: the work is in
// the job modules (triggers.ts, exchange.ts, signaling.ts, receive.ts).
import { wipe } from '../../firmware/proto/bytes.ts';
import type { SaKeys } from '../../firmware/proto/sa.ts';
import { clearCipherCache } from './fast-crypto.ts';
import { STATE_NAMES } from './registry.ts';
import { startControl, ControlRefused, MAX_PRINCIPAL, type ControlOptions } from './control.ts';
import type { LinkSend, ScContext } from './context.ts';
import type { Triggers } from './triggers.ts';
import type { Signaling } from './signaling.ts';
import type { Receiver } from './receive.ts';
import { ScStartError, type ScServer } from './types.ts';

/** The running jobs the surface drives and close() stops. */
export type ScParts = { triggers: Triggers; signaling: Signaling; receiver: Receiver; housekeeping: { stop(): void } };

/** register / unregister / lookups, and the triggers a caller may ask for. */
function registryMethods(ctx: ScContext, { triggers }: ScParts) {
  const { registry, keys, nonces, clock, log, links, maxCtas, saCache, saEncNull, sessionCache, ciRate, ackMisses, slotOfOrThrow } = ctx;
  const { startTrigger, endTrigger, queueWakes, rekeyOrWake } = triggers;
  return {
    register(p: string, address: string, port: number, signalingPort?: number): void {
      if (!p.includes('@')) throw new Error(`CTA principal '${p}' has no @REALM`);
      if (!(port >= 1 && port <= 65535) && !(port === 0 && links.has(address))) throw new Error(`bad port ${port} for ${p}`);
      if (p.length > MAX_PRINCIPAL) throw new Error(`CTA principal longer than ${MAX_PRINCIPAL} characters`);
      if (registry.slotOf(p) < 0 && registry.count >= maxCtas) throw new Error(`registry full: ${maxCtas} CTAs registered (the SC's limit)`);
      const slot = registry.register(p, address, port, signalingPort ?? 2427, clock.now());
      saCache.delete(slot);
      log('registered', { principal: p, address, port, signalingPort: signalingPort ?? 2427 });
    },
    unregister(p: string): boolean {
      const slot = registry.slotOf(p);
      if (slot < 0) return false;
      endTrigger(slot);
      nonces.dropSlot(slot);
      keys.clear(slot);
      saCache.delete(slot);
      saEncNull.delete(slot);
      sessionCache.get(slot)?.wipe();
      sessionCache.delete(slot);
      ciRate.delete(slot);
      ackMisses.delete(slot);
      registry.unregister(p);
      log('unregistered', { principal: p });
      return true;
    },
    isRegistered: (p: string) => registry.slotOf(p) >= 0,
    get: (p: string) => registry.get(p),
    list: (limit?: number, offset?: number) => registry.list(limit, offset),
    listCtas: (limit?: number, offset?: number) => registry.list(limit, offset),
    wake(p: string): void {
      startTrigger(slotOfOrThrow(p), false);
    },
    wakeAll: () => queueWakes(registry.slots()),
    rekey: (p: string) => rekeyOrWake(slotOfOrThrow(p)),
  };
}

/** Non-UDP paths to CTAs (a serial line) and datagrams fed in by a `--workers` primary. */
function linkMethods(ctx: ScContext, { receiver }: ScParts) {
  const { links } = ctx;
  const { onKmDatagram, onEspDatagram } = receiver;
  return {
    attachLink(address: string, sendFn: LinkSend) {
      links.set(address, sendFn);
      return (channel: number, data: Uint8Array) => {
        if (ctx.closed || links.get(address) !== sendFn) return;
        const r = { address, port: 0 };
        if (channel === 1) onKmDatagram(data, r);
        else if (channel === 3) onEspDatagram(data, r);
      };
    },
    receiveKm(data: Uint8Array, from: { address: string; port: number }): void {
      // A plain Uint8Array view, as the socket path gives (a Buffer's slice() would not copy).
      if (!ctx.closed) onKmDatagram(new Uint8Array(data.buffer, data.byteOffset, data.length), { address: from.address, port: from.port });
    },
    detachLink(address: string): void {
      links.delete(address);
    },
  };
}

/** The SA a CTA holds, as tests and tooling see it. */
function saMethods(ctx: ScContext, { signaling }: ScParts) {
  const { registry, keys } = ctx;
  const { hasSaSlot, saKeysOf } = signaling;
  return {
    hasSa(p: string): boolean {
      const slot = registry.slotOf(p);
      return slot >= 0 && hasSaSlot(slot);
    },
    saKeys(p: string) {
      const slot = registry.slotOf(p);
      if (slot < 0 || !keys.hasSa(slot)) return null;
      const k = saKeysOf(slot) as SaKeys;
      return { ...k, ctaSpi: registry.ctaSpi(slot), scSpi: registry.scSpi(slot) };
    },
  };
}

/** status(), stats() and the Prometheus text. */
function reportMethods(ctx: ScContext, { triggers }: ScParts) {
  const { registry, metrics, clock, principal, bound, sigBound, startedAtMs, waking, nonces, replay, pending, policy, ackRequired } = ctx;
  return {
    status() {
      const byState: { [s: string]: number } = {};
      for (const slot of registry.slots()) {
        const n = STATE_NAMES[registry.state(slot)];
        byState[n] = (byState[n] || 0) + 1;
      }
      return {
        principal,
        listen: { host: bound.address, port: bound.port },
        signaling: { host: sigBound.address, port: sigBound.port },
        uptimeSec: Math.floor((clock.now() - startedAtMs) / 1000),
        ctas: registry.count,
        byState,
        waking: waking.size,
        wakeQueue: triggers.queued(),
        outstandingNonces: nonces.size,
        replayCache: replay.size,
        pendingSaRecovered: pending.size,
        policy,
        ackRequired,
        counters: metrics.snapshot(),
      };
    },
    stats: () => metrics.snapshot(),
    metricsText(): string {
      return metrics.render({
        cta_sc_registered_ctas: { help: 'Registered CTAs', value: registry.count },
        cta_sc_waking_ctas: { help: 'CTAs with a Wake Up / Rekey outstanding', value: waking.size },
        cta_sc_outstanding_nonces: { help: 'Entries in the nonce table', value: nonces.size },
        cta_sc_replay_cache_entries: { help: 'Entries in the Kerberos replay cache', value: replay.size },
        cta_sc_pending_sa_recovered: { help: 'AP Replies awaiting SA Recovered', value: pending.size },
      });
    },
  };
}

/** Stops every job, closes the control API and the sockets, then wipes every key held. */
async function closeSc(ctx: ScContext, parts: ScParts): Promise<void> {
  if (ctx.closed) return;
  ctx.closed = true;
  parts.housekeeping.stop();
  parts.triggers.stop();
  parts.signaling.stop();
  if (ctx.control) await ctx.control.close();
  const { sock, sigSock } = ctx;
  await Promise.all([new Promise<void>((r) => sock.close(() => r())), new Promise<void>((r) => sigSock.close(() => r()))]);
  ctx.registry.close();
  ctx.keys.wipeAll();
  for (const p of ctx.pending.values()) wipe(p.subkey);
  ctx.pending.clear();
  for (const m of ctx.serviceKeys.values()) for (const k of m.values()) wipe(k);
  for (const k of ctx.hmacKeys.values()) wipe(k);
  ctx.hmacKeys.clear();
  ctx.saCache.clear();
  for (const o of ctx.sessionCache.values()) o.wipe();
  ctx.sessionCache.clear();
  for (const k of ctx.ticketKeys.values()) k.wipe();
  ctx.ticketKeys.clear();
  clearCipherCache();
  ctx.log('stopped', {});
}

/** The ScServer: ctx.em with the public methods assigned onto it. */
export function createScServer(ctx: ScContext, parts: ScParts): ScServer {
  const { bound, sigBound, principal, metrics, timers, registry } = ctx;
  const server = Object.assign(ctx.em, {
    address: { host: bound.address, port: bound.port },
    signalingAddress: { host: sigBound.address, port: sigBound.port },
    controlAddress: null as { host: string; port: number } | null,
    controlToken: null as string | null,
    principal,
    metrics,
    timers,
    ...registryMethods(ctx, parts),
    sendSignaling: parts.signaling.sendSignaling,
    ...linkMethods(ctx, parts),
    ...saMethods(ctx, parts),
    ...reportMethods(ctx, parts),
    flush: () => registry.flush(),
    close: () => closeSc(ctx, parts),
  });
  // (Object.assign would snapshot a getter's value.)
  Object.defineProperty(server, 'size', { get: () => registry.count, enumerable: true });
  return server as unknown as ScServer;
}

/** Starts the control API on the server (a failure closes the SC and throws ScStartError). */
export async function startScControl(ctx: ScContext, server: ScServer, options: ControlOptions): Promise<void> {
  let control;
  try {
    control = await startControl(server, options, ctx.log);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    await server.close();
    const where = `${options.host || '127.0.0.1'}:${options.port ?? 0}`;
    if (e instanceof ControlRefused) throw new ScStartError('control', `control API ${where}: ${err.message}`);
    if (err.code === 'EADDRINUSE') throw new ScStartError('port_in_use', `control API port ${where} is already in use`);
    throw new ScStartError('control', `cannot start the control API on ${where}: ${err.message}`);
  }
  ctx.control = control;
  const s = server as { controlAddress: { host: string; port: number } | null; controlToken: string | null };
  s.controlAddress = control.address;
  s.controlToken = control.token;
}
