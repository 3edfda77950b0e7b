// The Signaling Controller (SC): the server side of server-initiated Kerberized
// key management (claims 1, 2, 5-7, 10-12, 14, 15, 17-21; PROTOCOL.md).
//
//   Wake Up (fresh nonce)  ->  AP Request (returned nonce)  ->  AP Reply  ->  SA Recovered
//
// The SC initiates: it sends a trigger with a fresh CSPRNG nonce != 0 kept in a
// bounded nonce table; the AP Request that comes back must echo an unexpired
// nonce sent to that very CTA (the client principal of the ticket), which is then
// consumed. Anything else is a false nonce: the SC did not initiate that session
// and disregards the request silently -- no Error Reply, just a counter.
//
// Hot path: all per-CTA state is in compact in-memory tables (registry.ts,
// keys.ts); SQLite sees one batched transaction per event-loop turn and never key
// material; derived keys are cached per base key (crypto layer cache + a small
// HMAC-key cache); crypto runs on node:crypto.
//
// startSc builds the shared state (context.ts) and wires the jobs, each in its own file:
//   triggers.ts      Wake Up / Rekey out, retries, paced wakes, re-trigger after a lost SA Recovered
//   exchange.ts      AP Request in (ticket, authenticator, replay, HMAC, nonce) -> AP Reply -> SA Recovered
//   signaling.ts     NCS over ESP under the established SA
//   receive.ts       which job a received datagram belongs to
//   housekeeping.ts  periodic sweeps and the SA-lifetime re-key scan
//   surface.ts       the ScServer object (registry glue, status, metrics, close) and the control API
//   types.ts         the public types (re-exported here)
import { createContext } from './context.ts';
import { createTriggers } from './triggers.ts';
import { createExchange } from './exchange.ts';
import { createSignaling } from './signaling.ts';
import { listen } from './receive.ts';
import { startHousekeeping } from './housekeeping.ts';
import { createScServer, startScControl } from './surface.ts';
import type { ScOptions, ScServer } from './types.ts';

export {
  DEFAULT_TIMERS,
  ScStartError,
  ciphersuiteName,
  type ScTimers,
  type ScPolicy,
  type ScLog,
  type ScOptions,
  type EstablishedEvent,
  type UnreachableEvent,
  type FalseNonceEvent,
  type DropEvent,
  type WakeEvent,
  type ScError,
  type ScServer,
} from './types.ts';

export async function startSc(opts: ScOptions): Promise<ScServer> {
  const ctx = await createContext(opts);
  const triggers = createTriggers(ctx);
  const exchange = createExchange(ctx, triggers);
  const signaling = createSignaling(ctx);
  const receiver = listen(ctx, exchange, signaling);
  const housekeeping = startHousekeeping(ctx, exchange, triggers);
  const server = createScServer(ctx, { triggers, signaling, receiver, housekeeping });
  if (opts.control) await startScControl(ctx, server, opts.control);
  const control = ctx.control;
  ctx.log('started', { principal: ctx.principal, listen: `${ctx.bound.address}:${ctx.bound.port}`, control: control ? `${control.address.host}:${control.address.port}` : null, ctas: ctx.registry.count });
  // Start-up: keys were only ever in memory, so every registered CTA needs a new SA.
  if (opts.wakeOnStart !== false && ctx.registry.count > 0) triggers.queueWakes(ctx.registry.slots());
  return server;
}
