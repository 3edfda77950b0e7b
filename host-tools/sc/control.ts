// The SC's local control API (node:http, bound to 127.0.0.1 by default):
//   GET  /status            JSON summary (listen address, counts by state, counters)
//   GET  /ctas[?limit=&offset=]   registered CTAs with SA metadata (never keys)
//   POST /ctas              {principal, address, port, signalingPort?} -> 201
//   DELETE /ctas?principal=P
//   POST /wake              {principal} or {all: true}
//   POST /rekey             {principal}
//   POST /signal            {principal, text} -> {response} (NCS over the CTA's SA)
//   GET  /metrics           Prometheus text format 0.0.4
//
// Secured (issue 13): every route but GET /metrics needs `Authorization: Bearer TOKEN`,
// a random token made at each start and written (mode 0600) to the token file, which
// `cta sc status/ctas/...` read; the Host header must name the bound address (a DNS-
// rebinding page sends its own name); POST bodies must be Content-Type application/json
// (a cross-origin form or text/plain POST is refused before its body is read); a
// non-loopback address is refused unless allowRemote. /metrics stays open for
// Prometheus: it holds counters and gauges only (no principal, address, nonce or key).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { closeSync, fchmodSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
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
  /** The bearer token every route but GET /metrics needs. */
  readonly token: string;
  close(): Promise<void>;
}

/** Where and how the control API listens. */
export type ControlOptions = {
  host?: string;
  port?: number;
  /** The bearer token; default a fresh random one. */
  token?: string;
  /** Write the token here (mode 0600) once listening, for `cta sc` clients. */
  tokenFile?: string;
  /** Accept a non-loopback host (default false: refused). */
  allowRemote?: boolean;
};

/** Longest principal accepted (a Kerberos principal of the CTA, with realm). */
export const MAX_PRINCIPAL = 255;
/** Longest NCS text accepted by POST /signal. */
const MAX_TEXT = 4096;

/** 127.0.0.0/8, ::1, localhost (and ::ffff:127.x). */
export function isLoopbackHost(h: string): boolean {
  const x = h.replace(/^\[|\]$/g, '').toLowerCase();
  if (x === 'localhost' || x === '::1') return true;
  const v4 = x.startsWith('::ffff:') ? x.slice(7) : x;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

/** Writes the token to `file`, mode 0600, atomically (a temporary file renamed over it). */
export function writeTokenFile(file: string, token: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    unlinkSync(tmp);
  } catch {
    /* none */
  }
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, token + '\n');
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}

/**
 * Why the folder of the token file lets other users replace or delete it (group or world
 * writable without the sticky bit, as /tmp has), or null. The token stays unreadable to them
 * (0600); a swapped or deleted file only locks `cta sc` clients out. The SC does not change
 * the mode of a folder it did not make: it says so, once, at start.
 */
export function looseFolder(file: string): string | null {
  const dir = dirname(resolvePath(file));
  let mode: number;
  try {
    mode = statSync(dir).mode;
  } catch {
    return null;
  }
  if (!(mode & 0o022) || mode & 0o1000) return null;
  return `the control token's folder ${dir} is writable by ${mode & 0o002 ? 'every user' : 'its group'} (mode ${(mode & 0o7777).toString(8)}): another user can replace or delete the token file and lock cta sc clients out; chmod go-w it or use --state in a private folder`;
}

/** The token in `file` (first line), or null if there is no such file. */
export function readTokenFile(file: string): string | null {
  let s: string;
  try {
    s = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  return s.split('\n')[0].trim() || null;
}

/** Constant-time: equal-length digests of both sides. */
function tokenOk(given: string, token: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b) && given.length === token.length;
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
  // A browser sends text/plain or a form cross-origin without a preflight: never parse those.
  const ct = String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (ct !== 'application/json') return Promise.reject(new HttpError(415, 'the body must be Content-Type application/json'));
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

function str(body: { [k: string]: unknown }, k: string, max = MAX_PRINCIPAL): string {
  const v = body[k];
  if (typeof v !== 'string' || !v) throw new HttpError(400, `'${k}' (string) is required`);
  if (v.length > max) throw new HttpError(400, `'${k}' is longer than ${max} characters`);
  return v;
}

/** A whole-number query parameter in 0..max (absent: def), else 400. */
function qint(url: URL, k: string, def: number, max: number): number {
  const s = url.searchParams.get(k);
  if (s === null) return def;
  if (!/^\d{1,9}$/.test(s) || Number(s) > max) throw new HttpError(400, `'${k}' must be a whole number from 0 to ${max}`);
  return Number(s);
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

/** A control API that may not listen where it was asked (non-loopback without allowRemote). */
export class ControlRefused extends Error {
  code = 'EREFUSED';
}

export function startControl(
  target: ControlTarget,
  listen: ControlOptions,
  log: (event: string, fields: { [k: string]: unknown }) => void,
): Promise<ControlServer> {
  const host = listen.host || '127.0.0.1';
  if (!isLoopbackHost(host)) {
    if (!listen.allowRemote) {
      return Promise.reject(new ControlRefused(`${host} is not a loopback address: the control API drives every CTA; bind it to 127.0.0.1 (or give --control-allow-remote and firewall it)`));
    }
    log('control_remote', { warning: `control API on non-loopback ${host}: reachable from the network, protected by its bearer token only (plain HTTP)` });
  }
  const token = listen.token ?? randomBytes(32).toString('base64url');
  let hosts: Set<string> | null = null; // allowed Host headers, once the port is known
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      const status = e instanceof HttpError ? e.status : 500;
      if (status === 500) log('control_error', { method: req.method, url: req.url, error: String((e as Error)?.message ?? e) });
      if (!res.headersSent) {
        if (status === 401) res.setHeader('www-authenticate', 'Bearer realm="cta-sc"');
        send(res, status, { error: (e as Error).message });
      } else res.destroy();
      // An unread body is not worth keeping the connection for.
      if (status === 401 || status === 415 || status === 421) req.resume();
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // DNS rebinding: a page on another name resolving to us sends that name as Host.
    const hh = (req.headers.host || '').toLowerCase();
    if (hosts && !hosts.has(hh)) throw new HttpError(421, `Host '${hh.slice(0, 100)}' is not this control API's address`);
    const url = new URL(req.url || '/', 'http://localhost');
    const route = `${req.method} ${url.pathname.replace(/\/+$/, '') || '/'}`;
    if (route !== 'GET /metrics') {
      const m = /^Bearer +(\S+)$/i.exec(req.headers.authorization || '');
      if (!m || !tokenOk(m[1], token)) throw new HttpError(401, 'missing or wrong control token (Authorization: Bearer TOKEN; cta sc reads it from the token file the SC writes beside its state database)');
    }
    switch (route) {
      case 'GET /status':
        return send(res, 200, await target.status());
      case 'GET /metrics':
        return send(res, 200, await target.metricsText());
      case 'GET /ctas': {
        const limit = qint(url, 'limit', -1, 1e9);
        const offset = qint(url, 'offset', 0, 1e9);
        return send(res, 200, { ctas: await target.listCtas(limit, offset) });
      }
      case 'POST /ctas': {
        const b = await readJson(req);
        const principal = str(b, 'principal');
        if (!principal.includes('@')) throw new HttpError(400, `principal '${principal}' has no @REALM`);
        const address = str(b, 'address');
        const kp = port(b, 'port', true) as number;
        const sp = port(b, 'signalingPort', false);
        try {
          await target.register(principal, address, kp, sp);
        } catch (e) {
          // The registry's cap on CTAs (ScOptions.limits.ctas): the caller's problem, not ours.
          if (/^registry full/.test((e as Error).message)) throw new HttpError(409, (e as Error).message);
          throw e;
        }
        log('control_register', { principal, address });
        return send(res, 201, { ok: true, principal });
      }
      case 'DELETE /ctas': {
        const principal = url.searchParams.get('principal') || '';
        if (principal.length > MAX_PRINCIPAL) throw new HttpError(400, `'principal' is longer than ${MAX_PRINCIPAL} characters`);
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
        const text = str(b, 'text', MAX_TEXT);
        if (!(await target.isRegistered(principal))) throw new HttpError(404, `no CTA '${principal}'`);
        try {
          return send(res, 200, { ok: true, response: await target.sendSignaling(principal, text) });
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
      const hp = (h: string) => (h.includes(':') ? `[${h}]` : h) + ':' + a.port;
      // A wildcard bind (allowRemote) has no one name: the token alone guards it.
      if (a.address !== '0.0.0.0' && a.address !== '::') {
        hosts = new Set([hp(a.address.toLowerCase()), hp(host.toLowerCase())]);
        if (isLoopbackHost(a.address)) for (const h of ['localhost', '127.0.0.1', '::1']) hosts.add(hp(h));
      }
      if (listen.tokenFile) {
        try {
          writeTokenFile(listen.tokenFile, token);
        } catch (e) {
          server.close();
          return reject(new ControlRefused(`cannot write the control token file ${listen.tokenFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`));
        }
        const loose = looseFolder(listen.tokenFile);
        if (loose) log('control_token_folder', { warning: loose });
      }
      resolve({
        address: { host: a.address, port: a.port },
        token,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
