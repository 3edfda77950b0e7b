// A throwaway MIT Kerberos realm for tests: its own kdc.conf / krb5.conf, database,
// stash, ACL, logs and credential caches, all in one mkdtemp directory; a krb5kdc
// on 127.0.0.1 (free UDP+TCP port) run in the foreground (-n) as our child and
// killed by stop(). No system file is read or written: every MIT tool is run
// with `realm.env` (KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5CCNAME, ... in the dir).
//
//   const realm = await startMitRealm({ principals: [{ name: 'cta/cta1.example.net', enctypes: [17, 18] }] });
//   t.after(() => realm.stop());
//   const kt = await realm.exportKeytab('cta/cta1.example.net');
//
// Tests that use it must first call needTool(t, 'kdb5_util') (and 'krb5kdc',
// 'kadmin.local', 'kinit', 'klist' as they need them).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { createServer, connect, type AddressInfo } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The enctypes this realm supports, by number and MIT name. */
export const MIT_ENCTYPES: { [n: number]: string } = {
  17: 'aes128-cts-hmac-sha1-96',
  18: 'aes256-cts-hmac-sha1-96',
  19: 'aes128-cts-hmac-sha256-128',
  20: 'aes256-cts-hmac-sha384-192',
};
const SUPPORTED = [18, 17, 19, 20].map((n) => `${MIT_ENCTYPES[n]}:normal`).join(' ');

export type Enctype = string | number;

export interface MitPrincipalSpec {
  /** "cta/cta1.example.net" (realm appended) or "name@REALM". */
  name: string;
  /** Enctypes for its keys: numbers (17..20) or MIT names, optionally ":salt". Default: all supported. */
  enctypes?: Enctype[];
  /** Derive the keys from this password (kept valid: exports use -norandkey). No whitespace or quotes. */
  password?: string;
  /** Random keys (the default when no password is given). */
  randkey?: boolean;
  /** Extra addprinc options, e.g. "+requires_preauth -maxlife 1h". */
  options?: string;
}

/**
 * Per enctype e, a CTA `cta/e<e>.example.net` and an SC `sc/e<e>.example.net` that hold
 * only that enctype (so ticket, session key and subkey are all of it). The CTA has
 * +requires_preauth: the agent must go through PREAUTH_REQUIRED + ETYPE-INFO2 as with any real KDC.
 */
export function perEnctypePrincipals(etypes: number[]): MitPrincipalSpec[] {
  const principals: MitPrincipalSpec[] = [];
  for (const e of etypes) {
    principals.push({ name: `cta/e${e}.example.net`, enctypes: [e], options: '+requires_preauth' });
    principals.push({ name: `sc/e${e}.example.net`, enctypes: [e] });
  }
  return principals;
}

export interface MitRealmOptions {
  /** Default "TEST.EXAMPLE.NET". */
  realm?: string;
  principals: MitPrincipalSpec[];
  /** Start the KDC before returning (default false: call startKdc()). */
  start?: boolean;
  /** Extra lines inside the realm's section of kdc.conf (e.g. "max_life = 1h"). */
  kdcConf?: string[];
  /** Extra lines in krb5.conf [libdefaults]. */
  krb5Conf?: string[];
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface MitRealm {
  /** The temp directory holding everything (removed by stop()). */
  dir: string;
  realm: string;
  /** The KDC's UDP and TCP port on 127.0.0.1 (may change if startKdc had to retry on a port clash). */
  kdcPort: number;
  /** process.env plus the realm's variables: pass as `env` to any MIT tool. */
  env: NodeJS.ProcessEnv;
  /** Only the realm's variables (KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5CCNAME, KRB5_KTNAME, KRB5_CLIENT_KTNAME, KRB5RCACHETYPE, KRB5RCACHEDIR). */
  vars: { [k: string]: string };
  /** Path of the realm's krb5.conf (also in env.KRB5_CONFIG). */
  krb5conf: string;
  /** Path of the realm's kdc.conf (also in env.KRB5_KDC_PROFILE). */
  kdcconf: string;
  /** Path of the KDC log (useful in failure messages). */
  kdcLogPath: string;
  /** Master key password of the database (random). */
  masterPassword: string;
  /** "name" -> "name@REALM" (a name that already has "@REALM" is returned as is). */
  principal(name: string): string;
  /** Creates one more principal (as in options.principals). */
  addPrincipal(spec: MitPrincipalSpec): Promise<void>;
  /**
   * Writes the principal's keys to a keytab and returns its path (a new file in dir unless opts.file).
   * Without enctypes, or with exactly the principal's enctypes: `ktadd -norandkey` (keys and kvno unchanged,
   * a password stays valid, repeated exports agree). With another set, or opts.randkey: `ktadd -e <set>`,
   * which re-randomizes the keys and bumps the kvno (refused for password principals unless opts.randkey).
   */
  exportKeytab(principal: string, enctypes?: Enctype[], opts?: { file?: string; randkey?: boolean }): Promise<string>;
  /** Runs `kadmin.local -r REALM -q <query>`; returns stdout; throws on an error message on stderr. */
  kadmin(query: string): Promise<string>;
  /** The enctype names of the principal's current keys and their kvno (from getprinc). */
  keys(principal: string): Promise<{ kvno: number; enctype: string }[]>;
  /** Runs any tool with the realm env (never throws on exit code). */
  run(cmd: string, args: string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** kinit with a keytab or a password into opts.ccache (default the realm's KRB5CCNAME); throws on failure. */
  kinit(principal: string, opts: { keytab?: string; password?: string; ccache?: string }): Promise<RunResult>;
  /** Starts `krb5kdc -n` (foreground child) and waits until it has bound and accepts TCP. */
  startKdc(): Promise<void>;
  /** Stops the KDC (SIGTERM, then SIGKILL), keeps the directory. */
  stopKdc(): Promise<void>;
  /** Process id of the running KDC, or null. */
  kdcPid(): number | null;
  /** Text of the KDC log so far. */
  kdcLog(): string;
  /** Stops the KDC and removes the directory. Idempotent; call it from t.after(). */
  stop(): Promise<void>;
}

// Safety net: a KDC or a directory left behind by a crashed test is cleaned at exit.
const liveKdcs = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHook = false;
function installExitHook() {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const c of liveKdcs) {
      try {
        c.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
    for (const d of liveDirs) rmSync(d, { recursive: true, force: true });
  });
}

function enctypeName(e: Enctype): string {
  if (typeof e === 'number') {
    const n = MIT_ENCTYPES[e];
    if (!n) throw new Error(`enctype ${e} is not supported by the test realm`);
    return n;
  }
  if (/^\d+$/.test(e)) return enctypeName(Number(e));
  return e.split(':')[0];
}
function keysalt(list: Enctype[]): string {
  return list.map((e) => (typeof e === 'string' && e.includes(':') ? e : `${enctypeName(e)}:normal`)).join(',');
}

function checkToken(s: string, what: string) {
  if (!s || /[\s"'\\]/.test(s)) throw new Error(`${what} must be non-empty without whitespace, quotes or backslashes`);
}

/** A port free for both UDP and TCP on 127.0.0.1 (at the moment of the call). */
export async function freeUdpTcpPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const srv = createServer();
    await new Promise<void>((res, rej) => {
      srv.once('error', rej);
      srv.listen(0, '127.0.0.1', () => res());
    });
    const port = (srv.address() as AddressInfo).port;
    const udp = createSocket('udp4');
    const ok = await new Promise<boolean>((res) => {
      udp.once('error', () => res(false));
      udp.bind(port, '127.0.0.1', () => res(true));
    });
    await new Promise<void>((res) => srv.close(() => res()));
    if (ok) await new Promise<void>((res) => udp.close(() => res()));
    else udp.close();
    if (ok) return port;
  }
  throw new Error('no free UDP+TCP port on 127.0.0.1');
}

function execP(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string, timeoutMs = 30000): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 8 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) + (err && code === null ? `\n${err.message}` : '') });
    });
    if (input !== undefined) child.stdin?.end(input);
    else child.stdin?.end();
  });
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

function tcpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

export async function startMitRealm(opts: MitRealmOptions): Promise<MitRealm> {
  installExitHook();
  const realmName = opts.realm ?? 'TEST.EXAMPLE.NET';
  if (!/^[A-Za-z0-9._-]+$/.test(realmName)) throw new Error(`bad realm name ${realmName}`);
  const dir = mkdtempSync(join(tmpdir(), 'mit-realm-'));
  liveDirs.add(dir);
  const p = (f: string) => join(dir, f);
  const krb5conf = p('krb5.conf');
  const kdcconf = p('kdc.conf');
  const kdcLogPath = p('kdc.log');
  const masterPassword = randomBytes(18).toString('hex');
  const vars: { [k: string]: string } = {
    KRB5_CONFIG: krb5conf,
    KRB5_KDC_PROFILE: kdcconf,
    KRB5CCNAME: `FILE:${p('ccache')}`,
    KRB5_KTNAME: `FILE:${p('default.keytab')}`,
    KRB5_CLIENT_KTNAME: `FILE:${p('client.keytab')}`,
    KRB5RCACHETYPE: 'none',
    KRB5RCACHEDIR: dir,
  };
  const env: NodeJS.ProcessEnv = { ...process.env, ...vars };
  delete env.KRB5_TRACE;
  delete env.KPROP_PORT;
  let kdc: ChildProcess | null = null;
  let kdcExit: Promise<void> | null = null;
  let stopped = false;
  let keytabSeq = 0;
  const passwords = new Map<string, string>();

  function writeConfigs(port: number) {
    writeFileSync(
      kdcconf,
      [
        '[kdcdefaults]',
        `  kdc_ports = ${port}`,
        `  kdc_tcp_ports = ${port}`,
        `  kdc_listen = 127.0.0.1:${port}`,
        `  kdc_tcp_listen = 127.0.0.1:${port}`,
        '',
        '[realms]',
        `  ${realmName} = {`,
        `    database_name = ${p('principal')}`,
        `    key_stash_file = ${p('stash')}`,
        `    acl_file = ${p('kadm5.acl')}`,
        `    admin_keytab = FILE:${p('kadm5.keytab')}`,
        `    dict_file = ${p('dict')}`,
        `    kdc_ports = ${port}`,
        `    kdc_tcp_ports = ${port}`,
        `    kdc_listen = 127.0.0.1:${port}`,
        `    kdc_tcp_listen = 127.0.0.1:${port}`,
        `    master_key_type = aes256-cts-hmac-sha1-96`,
        `    supported_enctypes = ${SUPPORTED}`,
        ...(opts.kdcConf ?? []).map((l) => `    ${l}`),
        '  }',
        '',
        '[logging]',
        `  kdc = FILE:${kdcLogPath}`,
        `  admin_server = FILE:${p('kadmind.log')}`,
        `  default = FILE:${p('krb5lib.log')}`,
        '',
      ].join('\n'),
    );
    writeFileSync(
      krb5conf,
      [
        '[libdefaults]',
        `  default_realm = ${realmName}`,
        '  dns_lookup_kdc = false',
        '  dns_lookup_realm = false',
        '  dns_canonicalize_hostname = false',
        '  rdns = false',
        '  ignore_acceptor_hostname = true',
        ...(opts.krb5Conf ?? []).map((l) => `  ${l}`),
        '',
        '[realms]',
        `  ${realmName} = {`,
        `    kdc = 127.0.0.1:${port}`,
        '  }',
        '',
      ].join('\n'),
    );
  }

  const principal = (name: string) => (/(^|[^\\])@/.test(name) ? name : `${name}@${realmName}`);

  async function kadmin(query: string): Promise<string> {
    const r = await execP('kadmin.local', ['-r', realmName, '-q', query], env);
    const errs = r.stderr
      .split('\n')
      .filter((l) => l.trim() && !/^No policy specified for|^Authenticating as principal/.test(l));
    if (r.code !== 0 || errs.length) {
      // never echo passwords back
      const q = query.replace(/-pw\s+\S+/, '-pw ***');
      throw new Error(`kadmin.local -q "${q}" failed (exit ${r.code}): ${errs.join(' | ')}`);
    }
    return r.stdout;
  }

  async function addPrincipal(spec: MitPrincipalSpec) {
    const name = principal(spec.name);
    checkToken(name, 'principal name');
    if (spec.password !== undefined && spec.randkey) throw new Error('password and randkey exclude each other');
    const parts = ['addprinc'];
    if (spec.password !== undefined) {
      checkToken(spec.password, 'password');
      parts.push('-pw', spec.password);
      passwords.set(name, spec.password);
    } else parts.push('-randkey');
    if (spec.enctypes && spec.enctypes.length) parts.push('-e', keysalt(spec.enctypes));
    if (spec.options) parts.push(spec.options);
    parts.push(name);
    const out = await kadmin(parts.join(' '));
    if (!out.includes(`Principal "${name}" created`)) throw new Error(`addprinc ${name}: unexpected output ${out.trim()}`);
  }

  async function keys(name: string) {
    const out = await kadmin(`getprinc ${principal(name)}`);
    const ks: { kvno: number; enctype: string }[] = [];
    for (const m of out.matchAll(/^Key: vno (\d+), (\S+)/gm)) ks.push({ kvno: Number(m[1]), enctype: m[2] });
    return ks;
  }

  async function exportKeytab(name: string, enctypes?: Enctype[], o?: { file?: string; randkey?: boolean }): Promise<string> {
    const full = principal(name);
    checkToken(full, 'principal name');
    const file = o?.file ?? p(`${full.replace(/[^A-Za-z0-9.-]/g, '_')}-${++keytabSeq}.keytab`);
    checkToken(file, 'keytab path');
    let randomize = !!o?.randkey;
    if (!randomize && enctypes && enctypes.length) {
      const have = new Set((await keys(full)).map((k) => k.enctype));
      const want = new Set(enctypes.map(enctypeName));
      const same = have.size === want.size && [...want].every((e) => have.has(e));
      if (!same) {
        if (passwords.has(full)) {
          throw new Error(
            `${full} has a password and keys {${[...have].join(',')}}: exporting only {${[...want].join(',')}} ` +
              'would re-randomize its keys; create it with those enctypes, or pass { randkey: true }',
          );
        }
        randomize = true;
      }
    }
    const q = randomize
      ? `ktadd -k ${file}${enctypes && enctypes.length ? ` -e ${keysalt(enctypes)}` : ''} ${full}`
      : `ktadd -norandkey -k ${file} ${full}`;
    const out = await kadmin(q);
    if (!out.includes('added to keytab') || !existsSync(file)) {
      throw new Error(`ktadd ${full} wrote no keytab entries: ${out.trim()}`);
    }
    if (randomize) passwords.delete(full);
    return file;
  }

  async function run(cmd: string, args: string[], o?: { input?: string; timeoutMs?: number }) {
    return execP(cmd, args, env, o?.input, o?.timeoutMs ?? 30000);
  }

  async function kinit(name: string, o: { keytab?: string; password?: string; ccache?: string }) {
    const args: string[] = [];
    if (o.ccache) args.push('-c', o.ccache);
    if (o.keytab) args.push('-k', '-t', o.keytab);
    args.push(principal(name));
    const r = await run('kinit', args, { input: o.keytab ? undefined : `${o.password ?? ''}\n` });
    if (r.code !== 0) throw new Error(`kinit ${principal(name)} failed (exit ${r.code}): ${r.stderr.trim()}\nKDC log:\n${kdcLogTail()}`);
    return r;
  }

  function kdcLog() {
    try {
      return readFileSync(kdcLogPath, 'utf8');
    } catch {
      return '';
    }
  }
  function kdcLogTail() {
    return kdcLog().split('\n').slice(-15).join('\n');
  }

  async function startOnce(): Promise<'ok' | 'port-in-use'> {
    const logStart = kdcLog().length;
    const child = spawn('krb5kdc', ['-n', '-r', realmName], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    let exited = false;
    let exitCode: number | null = null;
    const exitP = new Promise<void>((res) => {
      child.once('exit', (code) => {
        exited = true;
        exitCode = code;
        liveKdcs.delete(child);
        res();
      });
      child.once('error', (e) => {
        output += String(e);
        exited = true;
        liveKdcs.delete(child);
        res();
      });
    });
    liveKdcs.add(child);
    const deadline = Date.now() + 20000;
    while (Date.now() < deadline) {
      const log = kdcLog().slice(logStart);
      if (exited) {
        if (/Address already in use/.test(log + output)) return 'port-in-use';
        throw new Error(`krb5kdc exited (code ${exitCode}): ${output.trim()}\n${log}`);
      }
      if (/commencing operation/.test(log) && (await tcpAnswers(realmObj.kdcPort))) {
        kdc = child;
        kdcExit = exitP;
        return 'ok';
      }
      await sleep(50);
    }
    child.kill('SIGKILL');
    await exitP;
    throw new Error(`krb5kdc did not come up within 20 s: ${output.trim()}\n${kdcLog().slice(logStart)}`);
  }

  async function startKdc() {
    if (stopped) throw new Error('realm stopped');
    if (kdc) return;
    for (let attempt = 0; attempt < 5; attempt++) {
      if ((await startOnce()) === 'ok') return;
      realmObj.kdcPort = await freeUdpTcpPort();
      writeConfigs(realmObj.kdcPort);
    }
    throw new Error('krb5kdc: port clashes 5 times in a row');
  }

  async function stopKdc() {
    const c = kdc;
    const ex = kdcExit;
    kdc = null;
    kdcExit = null;
    if (!c || !ex) return;
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 5000);
    await ex;
    clearTimeout(t);
  }

  async function stop() {
    if (stopped) return;
    stopped = true;
    await stopKdc();
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  }

  const realmObj: MitRealm = {
    dir,
    realm: realmName,
    kdcPort: 0,
    env,
    vars,
    krb5conf,
    kdcconf,
    kdcLogPath,
    masterPassword,
    principal,
    addPrincipal,
    exportKeytab,
    kadmin,
    keys,
    run,
    kinit,
    startKdc,
    stopKdc,
    kdcLog,
    kdcPid: () => (kdc && kdc.pid !== undefined ? kdc.pid : null),
    stop,
  };

  try {
    realmObj.kdcPort = await freeUdpTcpPort();
    writeConfigs(realmObj.kdcPort);
    writeFileSync(p('kadm5.acl'), '');
    writeFileSync(p('dict'), '');
    const r = await execP('kdb5_util', ['-r', realmName, 'create', '-s', '-P', masterPassword], env);
    if (r.code !== 0) throw new Error(`kdb5_util create failed (exit ${r.code}): ${r.stderr.trim()}`);
    for (const spec of opts.principals) await addPrincipal(spec);
    if (opts.start) await startKdc();
  } catch (e) {
    await stop();
    throw e;
  }
  return realmObj;
}
