// `cta sc`: run the Signaling Controller, or talk to a running one over its
// local control API.
import { request as httpRequest } from 'node:http';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { parseArgs, parseHostPort, intOption, UsageError } from '../args.ts';
import { realmOf, withRealm } from '../principal.ts';
import { startSc, ScStartError, type ScServer } from './server.ts';
import { isLoopbackHost, readTokenFile } from './control.ts';
import { startScWorkers, type WorkerPool } from './workers.ts';
import { attachSerialCta, type SerialCta } from '../serial/attach.ts';
import { parseSerialSpec } from '../serial/link.ts';

export const DEFAULT_CONTROL = '127.0.0.1:1294';
export const DEFAULT_TOKEN_FILE = 'sc.db.token';

/** The client commands: their arguments and what each does (in the help and in `cta sc CMD --help`). */
const CLIENT: { [cmd: string]: { args: string; what: string } } = {
  status: { args: '[--json]', what: 'principal, address, uptime, CTAs by state, drops (--json: the raw object)' },
  ctas: { args: '[--json]', what: 'registered CTAs: address, state, SA expiry (--json: the raw list)' },
  metrics: { args: '', what: 'counters in the Prometheus text format' },
  wake: { args: '(PRINCIPAL | --all)', what: 'send a Wake Up now (--all: queue one for every registered CTA)' },
  rekey: { args: 'PRINCIPAL', what: 'Rekey a CTA that holds an SA (a Wake Up if it has none)' },
  register: { args: 'PRINCIPAL=HOST:PORT[/SIGPORT]', what: 'add a CTA (SIGPORT = its signaling port, default 2427)' },
};

export const help = `usage: cta sc [serve] --principal sc/HOST@REALM --keytab FILE [options]
       cta sc status | ctas [--json]            [--control HOST:PORT] [--token-file FILE]
       cta sc metrics                           [--control HOST:PORT]
       cta sc wake (PRINCIPAL | --all)          [--control HOST:PORT] [--token-file FILE]
       cta sc rekey PRINCIPAL                   [--control HOST:PORT] [--token-file FILE]
       cta sc register PRINCIPAL=HOST:PORT[/SIGPORT] [--control HOST:PORT] [--token-file FILE]

Serves server-initiated Kerberized key management on UDP (default port 1293):
wakes CTAs with a fresh nonce, accepts only AP Requests that echo a nonce it
sent to that CTA (anything else is disregarded silently and counted), answers
with an AP Reply and establishes the SA on SA Recovered. Serves until SIGINT or
SIGTERM. Logs one JSON object per line on stdout.

serve options:
  --principal NAME        the SC's service principal (must be in the keytab)
  --keytab FILE           MIT keytab with the principal's key(s)
  --listen HOST:PORT      key-management UDP address (default 0.0.0.0:1293)
  --state FILE            SQLite registry of CTAs (default sc.db; ':memory:' for none)
  --control HOST:PORT     local control API (default ${DEFAULT_CONTROL}; 'none' to disable);
                          loopback only unless --control-allow-remote (warned)
  --control-token-file FILE  where the control API's bearer token is written at each
                          start, mode 0600 (default FILE.token beside --state; sc.db.token
                          with --state :memory:); clients read it
  --cta P=HOST:PORT[/SIG] register a CTA at start (repeatable); SIG = signaling port (default 2427);
                          P without @REALM: the SC's realm
  --allow-client-initiated     accept client-initiated sessions (nonce 0)
  --no-register-client-initiated  drop a client-initiated exchange from an unregistered
                          CTA instead of registering it (signaling port 2427)
  --client-initiated-per-minute N   per-CTA cap (default 6)
  --restart-wake-rate N   Wake Ups per second when waking every CTA (default 200)
  --nonce-lifetime MS     (default 5000)   --wake-retries N (default 2)
  --wake-retry MS         (default 3000)   --skew S (default 300)
  --sa-lifetime S         (default 604800) --grace S (default 3600)
  --no-ack                do not ask CTAs for SA Recovered
  --no-wake-on-start      do not wake registered CTAs at start-up
  --serial DEV[:BAUD]     also serve a CTA on a serial line (repeatable; baud default
                          115200): key management on channel 1, its KDC traffic on
                          channel 2 relayed to --kdc, control on channel 0 (the CTA's
                          principal is read from it, its clock set from the host's)
  --kdc HOST:PORT         where serial CTAs' KDC traffic goes (default 127.0.0.1:88)
  --serial-cta NAME       the serial CTA's principal, if it cannot be asked over channel 0
  --workers N             serve on N processes (default 1: this process alone). The
                          primary keeps --listen, --control and the logs and forks N
                          workers; CTA principals are hashed to a worker, each with its
                          own UDP port on the --listen address (Wake Ups leave from it,
                          answers come back to it) and its own registry FILE.w<k>;
                          datagrams at --listen are routed to the owner. A worker that
                          exits is restarted. Not with --serial. Provision its CTAs
                          with 'cta provision --sc-any-port'.

client commands talk to the control API of a running 'cta sc' (--control, default
${DEFAULT_CONTROL}) with the bearer token in --token-file (default ${DEFAULT_TOKEN_FILE},
the file a 'cta sc' with the default --state writes; not needed for metrics);
PRINCIPAL is the CTA's name, cta/HOST[@REALM] (without @REALM: the SC's realm):
${Object.keys(CLIENT).map((c) => `  ${c.padEnd(9)} ${CLIENT[c].what}`).join('\n')}`;

/** `cta sc SUB --help`: that command alone ('serve': the whole help); null for an unknown one. */
export function subcommandHelp(sub: string): string | null {
  if (sub === 'serve') return help;
  const c = CLIENT[sub];
  if (!c) return null;
  const token = sub !== 'metrics'; // GET /metrics is the one route without the bearer token
  return `usage: cta sc ${sub} ${c.args}${c.args ? ' ' : ''}[--control HOST:PORT]${token ? ' [--token-file FILE]' : ''}

${c.what}.

  --control HOST:PORT   the control API of a running 'cta sc' (default ${DEFAULT_CONTROL})
${token ? `  --token-file FILE     the control API's bearer token (default ${DEFAULT_TOKEN_FILE}: what a 'cta sc'\n                        with the default --state writes; its --control-token-file)\n` : ''}${c.args.includes('PRINCIPAL') ? "\nPRINCIPAL is the CTA's name, cta/HOST[@REALM] (without @REALM: the SC's realm).\n" : ''}`.trimEnd();
}

/** PRINCIPAL=HOST:PORT[/SIGPORT]; a principal without @REALM is in `realm` (the SC's) when known. */
function parseCta(s: string, what = '--cta', realm: string | null = null): { principal: string; host: string; port: number; sig?: number } {
  const eq = s.lastIndexOf('=');
  if (eq <= 0) throw new UsageError(`bad ${what} '${s}': expected PRINCIPAL=HOST:PORT[/SIGPORT]`);
  let principal = s.slice(0, eq);
  if (realmOf(principal) === null) {
    if (!realm) throw new UsageError(`bad ${what} '${s}': the principal needs @REALM`);
    principal = withRealm(principal, realm);
  }
  let addr = s.slice(eq + 1);
  let sig: number | undefined;
  const slash = addr.lastIndexOf('/');
  if (slash >= 0) {
    const sp = addr.slice(slash + 1);
    sig = Number(sp);
    if (!/^\d+$/.test(sp) || sig < 1 || sig > 65535) throw new UsageError(`bad ${what} '${s}': the signaling port must be from 1 to 65535`);
    addr = addr.slice(0, slash);
  }
  const hp = parseHostPort(addr, '127.0.0.1', `${what} address`);
  if (hp.port === 0) throw new UsageError(`bad ${what} '${s}': port 0`);
  return { principal, host: hp.host, port: hp.port, sig };
}

type Values = { [k: string]: string | boolean | (string | boolean)[] | undefined };
function S(v: Values, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}
function L(v: Values, k: string): string[] {
  const x = v[k];
  return Array.isArray(x) ? (x.filter((y) => typeof y === 'string') as string[]) : [];
}

function jsonLog(event: string, fields: { [k: string]: unknown }): void {
  process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), component: 'sc', event, ...fields }) + '\n');
}

async function serve(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs(
    argv,
    {
      principal: { type: 'string' },
      keytab: { type: 'string' },
      listen: { type: 'string' },
      state: { type: 'string' },
      control: { type: 'string' },
      'control-allow-remote': { type: 'boolean' },
      'control-token-file': { type: 'string' },
      cta: { type: 'string', multiple: true },
      'allow-client-initiated': { type: 'boolean' },
      'no-register-client-initiated': { type: 'boolean' },
      'client-initiated-per-minute': { type: 'string' },
      'restart-wake-rate': { type: 'string' },
      'nonce-lifetime': { type: 'string' },
      'wake-retries': { type: 'string' },
      'wake-retry': { type: 'string' },
      skew: { type: 'string' },
      'sa-lifetime': { type: 'string' },
      grace: { type: 'string' },
      'no-ack': { type: 'boolean' },
      'no-wake-on-start': { type: 'boolean' },
      serial: { type: 'string', multiple: true },
      kdc: { type: 'string' },
      'serial-cta': { type: 'string' },
      workers: { type: 'string' },
    },
    true,
  );
  const v = values as Values;
  if (positionals.length) throw new UsageError(`unexpected argument '${(positionals[0] as string)}'`);
  if (!v.principal) throw new UsageError('--principal sc/HOST@REALM is required');
  if (!v.keytab) throw new UsageError('--keytab FILE is required');
  const listen = parseHostPort(S(v, 'listen') ?? '0.0.0.0:1293', '0.0.0.0', '--listen');
  const controlArg = S(v, 'control') ?? DEFAULT_CONTROL;
  const control = controlArg === 'none' ? null : parseHostPort(controlArg, '127.0.0.1', '--control');
  const ctas = L(v, 'cta').map((c) => parseCta(c, '--cta', realmOf(S(v, 'principal') as string)));
  const serials = L(v, 'serial').map(parseSerialSpec);
  const kdcRelay = parseHostPort(S(v, 'kdc') ?? '127.0.0.1:88', '127.0.0.1', '--kdc');
  if (S(v, 'serial-cta') && serials.length !== 1) throw new UsageError('--serial-cta needs exactly one --serial');
  const statePath = S(v, 'state') ?? 'sc.db';
  if (control) {
    Object.assign(control, {
      allowRemote: !!v['control-allow-remote'],
      tokenFile: S(v, 'control-token-file') ?? (statePath === ':memory:' ? DEFAULT_TOKEN_FILE : `${statePath}.token`),
    });
    if (v['control-allow-remote'] && !isLoopbackHost(control.host)) {
      process.stderr.write(`cta sc: warning: the control API on ${control.host} is reachable from the network; only its bearer token guards it, over plain HTTP\n`);
    }
  }
  const workers = intOption(S(v, 'workers'), 'workers', 1, 1, 64);
  if (workers > 1 && serials.length) throw new UsageError('--serial serves a CTA in this process: it cannot be combined with --workers');
  if (workers > 1) for (let k = 0; k < workers; k++) checkStatePath(statePath === ':memory:' ? statePath : `${statePath}.w${k}`);
  else checkStatePath(statePath);
  const scOptions = {
    principal: S(v, 'principal') as string,
    keytab: S(v, 'keytab') as string,
    listen,
    statePath,
    control,
    policy: {
      allowClientInitiated: !!v['allow-client-initiated'],
      registerClientInitiated: !v['no-register-client-initiated'],
      clientInitiatedPerMinute: intOption(S(v, 'client-initiated-per-minute'), 'client-initiated-per-minute', 6, 0, 1e6),
    },
    timers: {
      restartWakeRatePerSec: intOption(S(v, 'restart-wake-rate'), 'restart-wake-rate', 200, 1, 1e7),
      nonceLifetimeMs: intOption(S(v, 'nonce-lifetime'), 'nonce-lifetime', 5000, 1, 3600000),
      wakeRetries: intOption(S(v, 'wake-retries'), 'wake-retries', 2, 0, 100),
      wakeRetryMs: intOption(S(v, 'wake-retry'), 'wake-retry', 3000, 1, 3600000),
      skewSec: intOption(S(v, 'skew'), 'skew', 300, 0, 86400),
      saLifetimeSec: intOption(S(v, 'sa-lifetime'), 'sa-lifetime', 604800, 60, 0xffffffff),
      graceSec: intOption(S(v, 'grace'), 'grace', 3600, 0, 0xffffffff),
    },
    ackRequired: !v['no-ack'],
    wakeOnStart: !v['no-wake-on-start'],
    log: jsonLog,
  };
  let sc: ScServer | WorkerPool;
  try {
    sc = workers > 1 ? await startScWorkers({ ...scOptions, workers, logToStdout: true }) : await startSc(scOptions);
  } catch (e) {
    if (e instanceof ScStartError) throw new UsageError(e.message);
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw new UsageError(`--listen: cannot resolve host '${listen.host}'`);
    throw e;
  }
  for (const c of ctas) {
    await sc.register(c.principal, c.host, c.port, c.sig);
    if (v['no-wake-on-start'] !== true) await sc.wake(c.principal);
  }
  const serialCtas: SerialCta[] = [];
  for (const spec of serials) {
    try {
      serialCtas.push(
        await attachSerialCta(sc as ScServer, spec, { kdc: kdcRelay, principal: S(v, 'serial-cta'), wake: v['no-wake-on-start'] !== true, log: jsonLog }),
      );
    } catch (e) {
      for (const c of serialCtas) await c.close();
      await sc.close();
      throw new UsageError(`--serial ${spec.path}: ${(e as Error).message}`);
    }
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      jsonLog('stopping', { signal: sig });
      resolve();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  for (const c of serialCtas) await c.close();
  await sc.close();
  return 0;
}

/** The registry file must be creatable, or an SQLite database already. */
function checkStatePath(path: string): void {
  if (path === ':memory:') return;
  const dir = dirname(resolvePath(path));
  if (!existsSync(dir)) throw new UsageError(`--state ${path}: directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new UsageError(`--state ${path}: ${dir} is not a directory`);
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return; // created at start-up
    throw new UsageError(`--state ${path}: cannot reach it (${code ?? (e as Error).message})`);
  }
  if (st.isDirectory()) throw new UsageError(`--state ${path} is a directory, not a file`);
  if (st.size === 0) return;
  const head = Buffer.alloc(16);
  try {
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, 16, 0);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw new UsageError(`--state ${path}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (head.toString('latin1') !== 'SQLite format 3\0') throw new UsageError(`--state ${path} is not an SC registry (not an SQLite database)`);
}

function callApi(control: string, method: string, path: string, body?: unknown, tokenFile = DEFAULT_TOKEN_FILE): Promise<{ status: number; text: string }> {
  const { host, port } = parseHostPort(control, '127.0.0.1', '--control');
  const payload = body === undefined ? undefined : JSON.stringify(body);
  let token: string | null = null;
  try {
    token = readTokenFile(tokenFile);
  } catch (e) {
    throw new UsageError(`cannot read the control token file ${tokenFile} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  const headers: { [k: string]: string | number } = payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {};
  if (token) headers.authorization = `Bearer ${token}`;
  return new Promise((resolve, reject) => {
    // A fresh connection per call (agent: false): no pooled socket can outlive the server.
    const req = httpRequest(
      { host, port, method, path, agent: false, timeout: 10000, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status >= 400) {
            let msg = text.trim();
            try {
              msg = JSON.parse(text).error ?? msg;
            } catch {
              /* plain text */
            }
            if (status === 401) msg = token ? `the token in ${tokenFile} is not this SC's (is --token-file the one its --control-token-file names?)` : `no control token: ${tokenFile} does not exist (give --token-file FILE: the SC writes it beside its --state database)`;
            return reject(new UsageError(`${method} ${path}: ${msg} (HTTP ${status})`));
          }
          resolve({ status, text });
        });
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timed out'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => {
      // A port that answers, but not in HTTP (node's parser codes HPE_*), is some other service.
      if (e.code?.startsWith('HPE_')) return reject(new UsageError(`${host}:${port} answered, but not as the SC's control API (not HTTP): is --control the address 'cta sc' serves it on?`));
      const why = e.code === 'ECONNREFUSED' ? 'connection refused' : e.code === 'ETIMEDOUT' ? 'timed out' : (e.code ?? e.message);
      reject(new UsageError(`control API at ${host}:${port} is unreachable (${why}): is 'cta sc' running with --control ${host}:${port}?`));
    });
    req.end(payload);
  });
}

/** A CTA named without @REALM is in the SC's realm (asked of the running SC). */
async function ctaName(control: string, name: string, tokenFile: string): Promise<string> {
  if (realmOf(name) !== null) return name;
  const realm = realmOf(JSON.parse((await callApi(control, 'GET', '/status', undefined, tokenFile)).text).principal as string);
  if (!realm) throw new UsageError(`'${name}' has no @REALM and the SC's principal names none`);
  return withRealm(name, realm);
}

async function client(cmd: string, argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs(argv, { control: { type: 'string' }, 'token-file': { type: 'string' }, all: { type: 'boolean' }, json: { type: 'boolean' } }, true);
  const v = values as Values;
  const control = S(v, 'control') ?? DEFAULT_CONTROL;
  const tokenFile = S(v, 'token-file') ?? DEFAULT_TOKEN_FILE;
  const call = (c: string, method: string, path: string, body?: unknown) => callApi(c, method, path, body, tokenFile);
  parseHostPort(control, '127.0.0.1', '--control'); // a bad address before anything else
  if (v.all && cmd !== 'wake') throw new UsageError(`--all is only for 'cta sc wake'`);
  if (v.json && cmd !== 'status' && cmd !== 'ctas') throw new UsageError(`--json is only for 'cta sc status' and 'cta sc ctas'`);
  if (['status', 'ctas', 'metrics'].includes(cmd) && positionals.length) throw new UsageError(`${cmd} takes no arguments (got '${positionals[0]}')`);
  const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : s + '\n');
  switch (cmd) {
    case 'status': {
      const r = await call(control, 'GET', '/status');
      if (v.json) return out(r.text), 0;
      const s = JSON.parse(r.text);
      out(`${s.principal} on udp ${s.listen.host}:${s.listen.port}, up ${s.uptimeSec}s`);
      out(`CTAs: ${s.ctas}` + Object.keys(s.byState).map((k) => ` ${k}=${s.byState[k]}`).join(','));
      out(`waking ${s.waking}, queued ${s.wakeQueue}, outstanding nonces ${s.outstandingNonces}, awaiting SA Recovered ${s.pendingSaRecovered}`);
      const drops = s.counters.cta_sc_drops_total || {};
      out('drops:' + (Object.keys(drops).length ? Object.keys(drops).map((k) => ` ${k}=${drops[k]}`).join(',') : ' none'));
      return 0;
    }
    case 'ctas': {
      const r = await call(control, 'GET', '/ctas');
      if (v.json) return out(r.text), 0;
      const list = JSON.parse(r.text).ctas as { principal: string; address: string; port: number; signalingPort: number; state: string; expiresAt: number | null; ciphersuite: string | null }[];
      if (list.length === 0) return out('no CTAs registered'), 0;
      for (const c of list) {
        const exp = c.expiresAt ? ` SA until ${new Date(c.expiresAt).toISOString()} (${c.ciphersuite})` : '';
        out(`${c.principal}  ${c.address}:${c.port} sig ${c.signalingPort}  ${c.state}${exp}`);
      }
      return 0;
    }
    case 'metrics':
      out((await call(control, 'GET', '/metrics')).text);
      return 0;
    case 'wake': {
      if (v.all) {
        if (positionals.length) throw new UsageError('give a principal or --all, not both');
        const r = JSON.parse((await call(control, 'POST', '/wake', { all: true })).text);
        out(`queued Wake Ups for ${r.queued} CTA(s)`);
        return 0;
      }
      if (positionals.length !== 1) throw new UsageError('usage: cta sc wake (PRINCIPAL | --all)');
      const name = await ctaName(control, positionals[0] as string, tokenFile);
      await call(control, 'POST', '/wake', { principal: name });
      out(`Wake Up sent to ${name}`);
      return 0;
    }
    case 'rekey': {
      if (positionals.length !== 1) throw new UsageError('usage: cta sc rekey PRINCIPAL');
      const name = await ctaName(control, positionals[0] as string, tokenFile);
      const r = JSON.parse((await call(control, 'POST', '/rekey', { principal: name })).text);
      out(r.method === 'rekey' ? `Rekey sent to ${name}` : `no session key held for ${name}: Wake Up sent`);
      return 0;
    }
    case 'register': {
      if (positionals.length !== 1) throw new UsageError('usage: cta sc register PRINCIPAL=HOST:PORT[/SIGPORT]');
      const given = positionals[0] as string;
      const eq = given.lastIndexOf('=');
      const c = parseCta(eq > 0 ? `${await ctaName(control, given.slice(0, eq), tokenFile)}${given.slice(eq)}` : given, 'CTA');
      await call(control, 'POST', '/ctas', { principal: c.principal, address: c.host, port: c.port, signalingPort: c.sig });
      out(`registered ${c.principal} at ${c.host}:${c.port}`);
      return 0;
    }
  }
  throw new UsageError(`unknown sc command '${cmd}'`);
}

export async function run(argv: string[]): Promise<number> {
  const first = argv[0];
  if (first === 'serve') return serve(argv.slice(1));
  if (first && !first.startsWith('-')) {
    if (CLIENT[first]) return client(first, argv.slice(1));
    throw new UsageError(`unknown sc command '${first}' (serve, status, ctas, metrics, wake, rekey, register)`);
  }
  return serve(argv);
}
