// Serial control channel 0 (PROTOCOL.md "Serial framing"): one CBOR map per
// request, one CBOR map per reply.
//   request  {op: "status"|"metrics"|"set-time"|"provision"|"reset", id?: n, ...}
//   reply    {id: n, ok: true, result: {...}}  or  {id: n, ok: false, error: "why"}
//   set-time  {time: ms since 1970}   -> {offsetMs}  (the agent's clock offset, or the board clock)
//   provision {cfg: bytes}            -> {bytes, principal}  (validated, written to "cta.cfg";
//                                        used from the next reset)
//   reset                             -> {resetting: true}, then the board restarts
// It works with or without a running agent (an unconfigured board can be
// provisioned over the line). Written inside the Espruino subset.

import type { Platform } from '../platform/platform.ts';
import type { CborValue } from '../proto/cbor.ts';
import { decodeConfig, CONFIG_FILE } from '../config.ts';
import { isDecodeError } from '../proto/errors.ts';
import type { CtaAgent } from './agent.ts';

export const CONTROL_OPS = ['status', 'metrics', 'set-time', 'provision', 'reset'];

export interface ControlHost {
  platform: Platform;
  /** The running agent, or null (unconfigured / bad configuration). */
  agent: () => CtaAgent | null;
  /** Why there is no agent (null when there is one). */
  error: () => string | null;
  /** Frame counters of the serial link. */
  linkStats: () => { [k: string]: number };
  /** Restarts the board (called shortly after the reply went out). */
  reset: () => void;
  /** Sets the board clock (Espruino setTime, seconds); null where the clock cannot be set. */
  setClock: ((sec: number) => void) | null;
}

type Req = { [k: string]: CborValue };

function fail(id: CborValue, why: string): CborValue {
  return { id: id === undefined ? null : id, ok: false, error: why };
}

function ok(id: CborValue, result: CborValue): CborValue {
  return { id: id === undefined ? null : id, ok: true, result: result };
}

/** Answers one control request. Never throws. */
export function handleControl(req: CborValue, host: ControlHost): CborValue {
  if (req === null || typeof req !== 'object' || Array.isArray(req) || req instanceof Uint8Array) return fail(null, 'request must be a map');
  const r = req as Req;
  const id = r.id;
  if (id !== undefined && typeof id !== 'number') return fail(null, 'id must be a number');
  const op = r.op;
  try {
    const agent = host.agent();
    if (op === 'status') {
      const mem = host.platform.memory();
      const st: { [k: string]: CborValue } = {
        configured: agent !== null,
        error: host.error(),
        link: host.linkStats(),
        memory: { free: mem.free, usage: mem.usage, total: mem.total },
        now: Math.floor(host.platform.now()),
      };
      if (agent) st.agent = agent.status() as unknown as CborValue;
      return ok(id, st);
    }
    if (op === 'metrics') {
      const mem = host.platform.memory();
      const m: { [k: string]: CborValue } = {
        link: host.linkStats(),
        memory: { free: mem.free, usage: mem.usage, total: mem.total },
      };
      if (agent) {
        const s = agent.status();
        m.counters = s.counters as unknown as CborValue;
        m.slotsInUse = s.slotsInUse;
        m.slots = s.slots;
        m.clockOffsetMs = s.clockOffsetMs;
      }
      return ok(id, m);
    }
    if (op === 'set-time') {
      const t = r.time;
      if (typeof t !== 'number' || !(t > 0) || t > 8640000000000) return fail(id, 'time must be ms since 1970');
      if (host.setClock) {
        host.setClock(t / 1000);
        if (agent) agent.offsetMs = 0;
        return ok(id, { offsetMs: 0, clock: 'board' });
      }
      if (!agent) return fail(id, 'no running agent and no settable clock');
      agent.offsetMs = Math.floor(t - host.platform.now());
      return ok(id, { offsetMs: agent.offsetMs, clock: 'agent' });
    }
    if (op === 'provision') {
      const cfg = r.cfg;
      if (!(cfg instanceof Uint8Array) || cfg.length === 0 || cfg.length > 4096) return fail(id, 'cfg must be 1-4096 bytes');
      let principal = '';
      try {
        const c = decodeConfig(cfg);
        principal = c.principal + '@' + c.realm;
      } catch (e) {
        return fail(id, 'bad configuration: ' + (e as Error).message);
      }
      host.platform.storage.write(CONFIG_FILE, cfg);
      return ok(id, { bytes: cfg.length, principal: principal, file: CONFIG_FILE });
    }
    if (op === 'reset') {
      host.platform.setTimeout(function () {
        host.reset();
      }, 100);
      return ok(id, { resetting: true });
    }
    return fail(id, 'unknown op (expected one of ' + CONTROL_OPS.join(', ') + ')');
  } catch (e) {
    if (isDecodeError(e)) return fail(id, (e as Error).message);
    return fail(id, 'internal: ' + String(e && (e as Error).message ? (e as Error).message : e));
  }
}
