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
import { DecodeError } from '../proto/errors.ts';
import type { CtaAgent } from './agent.ts';

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

/** {id, ok: true, result: v} or {id, ok: false, error: v}. */
function reply(id: CborValue, ok: boolean, v: CborValue): CborValue {
  const r: Req = { id: id === undefined ? null : id, ok: ok };
  r[ok ? 'result' : 'error'] = v;
  return r;
}

/** Answers one control request. Never throws. */
export function handleControl(req: CborValue, host: ControlHost): CborValue {
  if (req === null || typeof req !== 'object' || Array.isArray(req) || req instanceof Uint8Array) return reply(null, false, 'request must be a map');
  const r = req as Req;
  const id = r.id;
  if (id !== undefined && typeof id !== 'number') return reply(null, false, 'id must be a number');
  const op = r.op;
  const pl = host.platform;
  try {
    const agent = host.agent();
    if (op === 'status' || op === 'metrics') {
      // status: configured, error, link, memory, now, agent?
      // metrics: link, memory, then counters, slotsInUse, slots, clockOffsetMs with an agent
      const mem = pl.memory();
      const st: Req = {};
      if (op === 'status') {
        st.configured = agent !== null;
        st.error = host.error();
      }
      st.link = host.linkStats();
      st.memory = { free: mem.free, usage: mem.usage, total: mem.total };
      if (op === 'status') {
        st.now = Math.floor(pl.now());
        if (agent) st.agent = agent.status() as unknown as CborValue;
      } else if (agent) {
        const s = agent.status();
        st.counters = s.counters as unknown as CborValue;
        st.slotsInUse = s.slotsInUse;
        st.slots = s.slots;
        st.clockOffsetMs = s.clockOffsetMs;
      }
      return reply(id, true, st);
    }
    if (op === 'set-time') {
      const t = r.time;
      if (typeof t !== 'number' || !(t > 0) || t > 8640000000000) return reply(id, false, 'time must be ms since 1970');
      if (host.setClock) {
        host.setClock(t / 1000);
        if (agent) agent.offsetMs = 0;
        return reply(id, true, { offsetMs: 0, clock: 'board' });
      }
      if (!agent) return reply(id, false, 'no running agent and no settable clock');
      agent.offsetMs = Math.floor(t - pl.now());
      return reply(id, true, { offsetMs: agent.offsetMs, clock: 'agent' });
    }
    if (op === 'provision') {
      const cfg = r.cfg;
      if (!(cfg instanceof Uint8Array) || cfg.length === 0 || cfg.length > 4096) return reply(id, false, 'cfg must be 1-4096 bytes');
      let principal = '';
      try {
        const c = decodeConfig(cfg);
        principal = c.principal + '@' + c.realm;
      } catch (e) {
        return reply(id, false, 'bad configuration: ' + (e as Error).message);
      }
      pl.storage.write(CONFIG_FILE, cfg);
      return reply(id, true, { bytes: cfg.length, principal: principal, file: CONFIG_FILE });
    }
    if (op === 'reset') {
      pl.setTimeout(function () {
        host.reset();
      }, 100);
      return reply(id, true, { resetting: true });
    }
    return reply(id, false, 'unknown op (expected one of status, metrics, set-time, provision, reset)');
  } catch (e) {
    return reply(id, false, e instanceof DecodeError ? (e as Error).message : 'internal: ' + String(e && (e as Error).message ? (e as Error).message : e));
  }
}
