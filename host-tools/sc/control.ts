// The SC's local control API (node:http, bound to 127.0.0.1 by default):
//   GET  /status            JSON summary (listen address, counts by state, counters)
//   GET  /ctas[?limit=&offset=]   registered CTAs with SA metadata (never keys)
//   POST /ctas              {principal, address, port, signalingPort?} -> 201
//   DELETE /ctas?principal=P
//   POST /wake              {principal} or {all: true}
//   POST /rekey             {principal}
//   POST /signal            {principal, text} -> {response} (NCS over the CTA's SA)
//   GET  /metrics           Prometheus text format 0.0.4
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CtaRecord } from './registry.ts';

/** What the control API needs from the SC (ScServer implements it). */
export interface ControlTarget {
  // Each may answer with a promise (cta sc --workers: the primary asks a worker).
  status(): object | Promise<object>;
  listCtas(limit?: number, offset?: number): CtaRecord[] | Promise<CtaRecord[]>;
  register(principal: string, address: string, port: number, signalingPort?: number): void | Promise<void>;
  unregister(principal: string): boolean | Promise<boolean>;
  isRegistered(principal: string): boolean | Promise<boolean>;
  wake(principal: string): void | Promise<void>;
  wakeAll(): number | Promise<number>;
  rekey(principal: string): 'rekey' | 'wake' | Promise<'rekey' | 'wake'>;
  sendSignaling(principal: string, text: string): Promise<string>;
  metricsText(): string | Promise<string>;
}

export interface ControlServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function readJson(req: IncomingMessage): Promise<{ [k: string]: unknown }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      if (n > MAX_BODY) {
        reject(new HttpError(413, 'body too large'));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => {
      const s = Buffer.concat(chunks).toString('utf8').trim();
      if (!s) return resolve({});
      try {
        const v = JSON.parse(s);
        if (!v || typeof v !== 'object' || Array.isArray(v)) return reject(new HttpError(400, 'body must be a JSON object'));
        resolve(v);
      } catch {
        reject(new HttpError(400, 'body is not valid JSON'));
      }
    });
    req.on('error', reject);
  });
}

function str(body: { [k: string]: unknown }, k: string): string {
  const v = body[k];
  if (typeof v !== 'string' || !v) throw new HttpError(400, `'${k}' (string) is required`);
  return v;
}
function port(body: { [k: string]: unknown }, k: string, required: boolean): number | undefined {
  const v = body[k];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw new HttpError(400, `'${k}' must be a port number 1-65535`);
  return v;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'content-type': typeof body === 'string' ? 'text/plain; version=0.0.4; charset=utf-8' : 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function startControl(
  target: ControlTarget,
  listen: { host?: string; port?: number },
  log: (event: string, fields: { [k: string]: unknown }) => void,
): Promise<ControlServer> {
  const host = listen.host || '127.0.0.1';
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500) log('control_error', { method: req.method, url: req.url, error: String((e as Error)?.message ?? e) });
      if (!res.headersSent) send(res, status, { error: (e as Error).message });
      else res.destroy();
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url || '/', 'http://localhost');
    const route = `${req.method} ${url.pathname.replace(/\/+$/, '') || '/'}`;
    switch (route) {
      case 'GET /status':
        return send(res, 200, await target.status());
      case 'GET /metrics':
        return send(res, 200, await target.metricsText());
      case 'GET /ctas': {
        const limit = Number(url.searchParams.get('limit') ?? -1);
        const offset = Number(url.searchParams.get('offset') ?? 0);
        return send(res, 200, { ctas: await target.listCtas(Number.isFinite(limit) ? limit : -1, Number.isFinite(offset) ? offset : 0) });
      }
      case 'POST /ctas': {
        const b = await readJson(req);
        const principal = str(b, 'principal');
        if (!principal.includes('@')) throw new HttpError(400, `principal '${principal}' has no @REALM`);
        const address = str(b, 'address');
        await target.register(principal, address, port(b, 'port', true) as number, port(b, 'signalingPort', false));
        log('control_register', { principal, address });
        return send(res, 201, { ok: true, principal });
      }
      case 'DELETE /ctas': {
        const principal = url.searchParams.get('principal') || '';
        if (!(await target.unregister(principal))) throw new HttpError(404, `no CTA '${principal}'`);
        return send(res, 200, { ok: true, principal });
      }
      case 'POST /wake': {
        const b = await readJson(req);
        if (b.all === true) return send(res, 202, { ok: true, queued: await target.wakeAll() });
        const principal = str(b, 'principal');
        if (!(await target.isRegistered(principal))) throw new HttpError(404, `no CTA '${principal}'`);
        await target.wake(principal);
        return send(res, 202, { ok: true, principal });
      }
      case 'POST /rekey': {
        const b = await readJson(req);
        const principal = str(b, 'principal');
        if (!(await target.isRegistered(principal))) throw new HttpError(404, `no CTA '${principal}'`);
        return send(res, 202, { ok: true, principal, method: await target.rekey(principal) });
      }
      case 'POST /signal': {
        const b = await readJson(req);
        const principal = str(b, 'principal');
        if (!(await target.isRegistered(principal))) throw new HttpError(404, `no CTA '${principal}'`);
        try {
          return send(res, 200, { ok: true, response: await target.sendSignaling(principal, str(b, 'text')) });
        } catch (e) {
          throw new HttpError(502, (e as Error).message);
        }
      }
      default:
        if (['/status', '/metrics', '/ctas', '/wake', '/rekey', '/signal'].includes(url.pathname)) throw new HttpError(405, `${req.method} not allowed on ${url.pathname}`);
        throw new HttpError(404, `no route ${url.pathname}`);
    }
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port ?? 0, host, () => {
      server.off('error', reject);
      const a = server.address() as AddressInfo;
      resolve({
        address: { host: a.address, port: a.port },
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
