// Channel 0 of a serial link: the host's client of the board's control endpoint
// (firmware/agent/control.ts). One CBOR map per request {op, id, ...}; replies
// {id, ok, result | error} are matched by id.
import { join } from 'node:path';
import { loadAllDictionaries, expandText, nameCountersIn, type Dictionary } from '../build/text.ts';
import { REPO_ROOT } from '../build/build.ts';
import type { SerialLinkHost } from './link.ts';
import { CHANNEL } from './frames.ts';
import { explainConfigError } from '../provision/config.ts';

export class ControlError extends Error {}

type Waiter = { resolve: (v: any) => void; reject: (e: Error) => void; timer: NodeJS.Timeout; op: string };

export class ControlClient {
  private nextId = 1;
  private waiters = new Map<number, Waiter>();

  constructor(
    private link: SerialLinkHost,
    private defaultTimeoutMs = 3000,
  ) {
    link.onChannel(CHANNEL.CONTROL, (p) => this.onReply(p));
  }

  /** Sends {op, ...fields}; resolves with the result, rejects with the board's error or a timeout. */
  request<T = any>(op: string, fields: { [k: string]: unknown } = {}, timeoutMs = this.defaultTimeoutMs): Promise<T> {
    const id = this.nextId;
    this.nextId = (this.nextId % 0x7fffffff) + 1;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        reject(new ControlError(`no answer to '${op}' on ${this.link.name} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.set(id, { resolve, reject, timer, op });
      if (!this.link.send(CHANNEL.CONTROL, { ...fields, op, id })) {
        clearTimeout(timer);
        this.waiters.delete(id);
        reject(new ControlError(`${this.link.name} is closed`));
      }
    });
  }

  /** Retries a request until it is answered (a board that is still booting). */
  async requestRetry<T = any>(op: string, fields: { [k: string]: unknown }, attempts: number, timeoutMs = 1000): Promise<T> {
    let last: Error | null = null;
    for (let i = 0; i < attempts; i++) {
      try {
        return await this.request<T>(op, fields, timeoutMs);
      } catch (e) {
        last = e as Error;
        if (!/no answer/.test(last.message)) throw last;
      }
    }
    throw last ?? new ControlError('no attempts');
  }

  status(): Promise<any> {
    return this.request('status');
  }
  metrics(): Promise<any> {
    return this.request('metrics');
  }
  setTime(ms = Date.now()): Promise<{ offsetMs: number; clock: string }> {
    return this.request('set-time', { time: ms });
  }
  provision(cfg: Uint8Array): Promise<{ bytes: number; principal: string; file: string }> {
    return this.request('provision', { cfg });
  }
  reset(): Promise<{ resetting: boolean }> {
    return this.request('reset');
  }

  close(): void {
    for (const w of this.waiters.values()) {
      clearTimeout(w.timer);
      w.reject(new ControlError(`${this.link.name} closed before '${w.op}' was answered`));
    }
    this.waiters.clear();
  }

  private onReply(p: unknown): void {
    if (!p || typeof p !== 'object' || Array.isArray(p)) return;
    const r = p as { id?: unknown; ok?: unknown; result?: unknown; error?: unknown };
    if (typeof r.id !== 'number') return;
    const w = this.waiters.get(r.id);
    if (!w) return;
    this.waiters.delete(r.id);
    clearTimeout(w.timer);
    // A board may report its counters as numbers (features.counterNames false): named here.
    if (r.ok === true) w.resolve(nameCountersIn(r.result, boardText()));
    // A board's error reply is a text code (build/text.ts); a refused configuration is named by number (cfg#N).
    else w.reject(new ControlError(`board refused '${w.op}': ${r.error === undefined || r.error === null ? 'no reason given' : explainConfigError(expandText(String(r.error), boardText()))}`));
  }
}

let text: Dictionary | null = null;
/** The boards' text dictionaries (dist/firmware/*.dict.json): a board's error reply is a code. */
function boardText(): Dictionary {
  if (!text) text = loadAllDictionaries(join(REPO_ROOT, 'dist', 'firmware'));
  return text;
}
