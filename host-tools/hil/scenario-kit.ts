// What every HIL scenario shares: the context a scenario runs in, its outcome, and the
// helpers that read the device's counters, wait for the SC, and pick messages off the
// proxy. The scenarios themselves: scenarios.ts (the protocol) and scenarios-stress.ts
// (floods, a stalled socket, forged streams).
import { randomBytes } from 'node:crypto';
import { decodeApRequest, KMMID } from '../../firmware/proto/pktc.ts';
import type { AgentStatus } from '../../firmware/agent/agent.ts';
import type { ScServer, EstablishedEvent } from '../sc/server.ts';
import type { RunningKdc } from '../kdc/server.ts';
import type { HilProxy, Relayed } from './proxy.ts';
import type { HilDevice, DeviceMemory } from './targets.ts';
import { sleep } from './targets.ts';

/** What the scenarios use of a key-management relay (the UDP HilProxy, or a serial target's LinkProxy). */
export type ScenarioProxy = Pick<HilProxy, 'total' | 'since' | 'inject' | 'waitFor' | 'filter'>;

export type HilTimers = { retransmitMs: number[]; abortMs: number; unsolicitedBaseMs: number; kdcTimeoutMs: number };

export type ScenarioContext = {
  device: HilDevice;
  sc: ScServer;
  kdc: RunningKdc;
  proxy: ScenarioProxy;
  ctaPrincipal: string;
  scPrincipal: string;
  timers: HilTimers;
  /** Number of Wake Ups in the flood. */
  floodCount: number;
  /** Default wait for an exchange (ms); longer on slow targets. */
  exchangeTimeoutMs: number;
  /** The SC's wait for SA Recovered before it wakes the CTA again (its saRecoveredTimeoutMs). */
  saRecoveredTimeoutMs: number;
  /** Status poll period (ms). */
  pollMs: number;
  /** Re-provision the device with config overrides (e.g. clientInitiatedOnBoot) and reboot it. */
  reprovision(overrides: { clientInitiatedOnBoot?: boolean }): Promise<void>;
  /** Device memory samples the scenarios took (for the summary). */
  memory: { label: string; m: DeviceMemory }[];
};

export type ScenarioOutcome = { details: string[] };

export type Scenario = {
  name: string;
  title: string;
  run(ctx: ScenarioContext): Promise<ScenarioOutcome>;
  /** Test-only scenarios are run only when named with --scenario. */
  testOnly?: boolean;
  /** Why this target cannot run the scenario (printed as SKIP), or null. */
  unavailable?(device: HilDevice): string | null;
};

export class Check extends Error {}

export function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Check(msg);
}

export const c = (s: AgentStatus) => s.counters;
export const drops = (s: AgentStatus, r: string) => s.counters.drops[r] ?? 0;

export function scMetric(sc: ScServer, family: string, label: string): number {
  const snap = sc.stats() as unknown as { [f: string]: { [l: string]: number } };
  return snap[family]?.[label] ?? 0;
}

/** Polls the device status until pred holds; the last status, or a Check failure. */
export async function until(ctx: ScenarioContext, pred: (s: AgentStatus) => boolean, timeoutMs: number, what: string): Promise<AgentStatus> {
  const t0 = Date.now();
  for (;;) {
    const s = await ctx.device.status();
    if (pred(s)) return s;
    if (Date.now() - t0 > timeoutMs) throw new Check(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(ctx.pollMs);
  }
}

/** Polls until the CTA has counted a session more than in s0. */
export function sessionCounted(ctx: ScenarioContext, s0: AgentStatus): Promise<AgentStatus> {
  return until(ctx, (s) => c(s).sessionsEstablished > c(s0).sessionsEstablished, ctx.exchangeTimeoutMs, 'the CTA to count the session');
}

/** The AP Requests the CTA sent, among relayed datagrams. */
export function apRequests(rs: Relayed[]): Relayed[] {
  return rs.filter((r) => r.dir === 'cta->sc' && r.data[0] === KMMID.AP_REQUEST);
}

/** Has the SC wake the CTA; resolves with the SC's 'established' event for it. */
export function wakeEstablished(ctx: ScenarioContext, timeoutMs: number, what?: string): Promise<EstablishedEvent> {
  const est = established(ctx, timeoutMs, what);
  ctx.sc.wake(ctx.ctaPrincipal);
  return est;
}

/** Resolves with the SC's next 'established' event for the CTA. */
export function established(ctx: ScenarioContext, timeoutMs: number, what = 'SA established at the SC'): Promise<EstablishedEvent> {
  return new Promise((resolve, reject) => {
    const on = (e: EstablishedEvent) => {
      if (e.principal !== ctx.ctaPrincipal) return;
      clearTimeout(t);
      ctx.sc.off('established', on);
      resolve(e);
    };
    const t = setTimeout(() => {
      ctx.sc.off('established', on);
      reject(new Check(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    ctx.sc.on('established', on);
  });
}

export function kinds(rs: Relayed[], dir: Relayed['dir'] | null, opts: { dropped?: boolean; injected?: boolean } = {}): number[] {
  return rs
    .filter((r) => (dir === null || r.dir === dir) && (opts.dropped === undefined || r.dropped === opts.dropped) && (opts.injected === undefined || r.injected === opts.injected))
    .map((r) => r.data[0]);
}

export function nonceOf(apRequest: Uint8Array): number {
  return decodeApRequest(apRequest).serverNonce;
}

export function freshFakeNonce(): number {
  let n = 0;
  while (n === 0) n = randomBytes(4).readUInt32BE(0);
  return n;
}

/** An SC session exists (earlier scenario, or one Wake Up now): tickets are cached. */
export async function ensureEstablished(ctx: ScenarioContext): Promise<void> {
  const s = await ctx.device.status();
  if (ctx.sc.hasSa(ctx.ctaPrincipal) && s.scs[0]?.state === 'established') return;
  await wakeEstablished(ctx, ctx.exchangeTimeoutMs, 'a preparatory exchange');
  await until(ctx, (x) => x.scs[0]?.state === 'established', ctx.exchangeTimeoutMs, 'the CTA to report its SA');
}

/** Waits until the CTA has no pending session (a slot left from an earlier scenario expired). */
export async function idle(ctx: ScenarioContext): Promise<AgentStatus> {
  return until(ctx, (s) => s.slotsInUse === 0, ctx.timers.abortMs * 3 + ctx.exchangeTimeoutMs, 'the CTA session table to be empty');
}

export function seq(rs: Relayed[]): string {
  const names: { [k: number]: string } = { 1: 'WakeUp', 2: 'APReq', 3: 'APRep', 4: 'SARecovered', 5: 'Rekey', 6: 'ErrorReply' };
  return rs.map((r) => (r.dropped ? '(x)' : '') + (names[r.data[0]] ?? `kmmid${r.data[0]}`)).join(' ');
}

// ------------------------------------------------------------------ scenarios
