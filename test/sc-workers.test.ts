// `cta sc --workers N`: the SC on several processes. Real processes (bin/cta.js and
// its forked workers), real UDP on 127.0.0.1 (port 0), the embedded KDC, and CTAs
// that are the firmware agent on a Node platform with real sockets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeKeytab } from '../firmware/proto/keytab.ts';
import { ownerOf, mergeMetricsText } from '../host-tools/sc/workers.ts';
import { Realm, startNodeCta, ctaName, SC_NAME, until, type NodeCta } from './helpers/net-world.ts';
import { CTA_BIN, runCta } from './helpers/cli.ts';

type Sc = { proc: ChildProcess; listen: { host: string; port: number }; control: string; token: string; lines: any[]; stop(): Promise<number | null> };

/** `cta sc --workers N` in a child process; resolves once the primary logged 'started'. */
async function startCli(realm: Realm, workers: number, extra: string[] = []): Promise<Sc> {
  const keytab = join(realm.dir, 'sc.keytab');
  writeFileSync(keytab, encodeKeytab(realm.keytab(SC_NAME)));
  const args = [CTA_BIN, 'sc', '--workers', String(workers), '--principal', SC_NAME, '--keytab', keytab, '--listen', '127.0.0.1:0', '--control', '127.0.0.1:0', '--state', join(realm.dir, 'sc.db'), ...extra];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d) => (err += d));
  const lines: any[] = [];
  const started = new Promise<any>((resolve, reject) => {
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      let j: any;
      try {
        j = JSON.parse(l);
      } catch {
        return;
      }
      lines.push(j);
      if (j.event === 'started' && j.worker === undefined) resolve(j);
    });
    proc.once('exit', (code) => reject(new Error(`cta sc exited (${code}) before it started: ${err}`)));
  });
  const stop = () =>
    new Promise<number | null>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve(proc.exitCode);
      const t = setTimeout(() => proc.kill('SIGKILL'), 10000);
      proc.once('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
      proc.kill('SIGTERM');
    });
  realm.onClose(async () => void (await stop()));
  const s = await started;
  const [host, port] = (s.listen as string).split(':');
  // The primary writes the control API's bearer token beside its --state database.
  const token = readFileSync(join(realm.dir, 'sc.db.token'), 'utf8').trim();
  return { proc, listen: { host, port: Number(port) }, control: `http://${s.control}`, token, lines, stop };
}

async function api(sc: Sc, method: string, path: string, body?: object): Promise<any> {
  const headers: { [k: string]: string } = { authorization: `Bearer ${sc.token}` };
  if (body) headers['content-type'] = 'application/json';
  const r = await fetch(sc.control + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const text = await r.text();
  if (r.status >= 400) throw new Error(`${method} ${path}: HTTP ${r.status} ${text}`);
  return path === '/metrics' ? text : JSON.parse(text);
}

async function stateOf(sc: Sc, principal: string): Promise<string | null> {
  const list = (await api(sc, 'GET', '/ctas')).ctas as { principal: string; state: string }[];
  return list.find((c) => c.principal === principal)?.state ?? null;
}

/** CTA names, the first `per` of them owned by each of the n workers. */
function namesPerWorker(n: number, per: number, from = 0): string[][] {
  const out: string[][] = Array.from({ length: n }, () => []);
  for (let i = from; out.some((l) => l.length < per); i++) {
    const k = ownerOf(ctaName(i), n);
    if (out[k].length < per) out[k].push(ctaName(i));
  }
  return out;
}

test('ownerOf is stable and spreads principals over the workers', () => {
  assert.equal(ownerOf('cta/a@R', 1), 0);
  assert.equal(ownerOf('cta/a@R', 2), ownerOf('cta/a@R', 2));
  const counts = [0, 0, 0];
  for (let i = 0; i < 3000; i++) counts[ownerOf(ctaName(i), 3)]++;
  for (const c of counts) assert.ok(c > 800, `uneven spread ${counts}`);
});

test('mergeMetricsText sums series across workers', () => {
  const a = '# HELP x_total X\n# TYPE x_total counter\nx_total{k="a"} 2\n# HELP g G\n# TYPE g gauge\ng 3\n';
  const b = '# HELP x_total X\n# TYPE x_total counter\nx_total{k="a"} 5\nx_total{k="b"} 1\n# HELP g G\n# TYPE g gauge\ng 4\n';
  const m = mergeMetricsText([a, b]);
  assert.match(m, /^x_total\{k="a"\} 7$/m);
  assert.match(m, /^x_total\{k="b"\} 1$/m);
  assert.match(m, /^g 7$/m);
  assert.equal(m.match(/# TYPE x_total counter/g)?.length, 1);
});

test('cta sc --workers 2: server- and client-initiated exchanges on both workers, merged status/list/metrics, a killed worker is restarted', { timeout: 90000 }, async () => {
  const realm = new Realm('cta-sc-workers-');
  try {
    await realm.startKdc();
    const sc = await startCli(realm, 2, ['--allow-client-initiated', '--no-wake-on-start']);
    const byWorker = namesPerWorker(2, 2);
    const ctas: NodeCta[] = [];
    for (const names of byWorker) {
      for (const name of names) {
        // Each worker sends its Wake Ups from its own port: provisioned with --sc-any-port.
        const c = await startNodeCta(realm, name, { sc: sc.listen, kdc: realm.kdcAddr, anyPort: true });
        ctas.push(c);
        await api(sc, 'POST', '/ctas', { principal: name, address: '127.0.0.1', port: c.km, signalingPort: c.sig });
      }
    }
    const st0 = await api(sc, 'GET', '/status');
    assert.equal(st0.workers.length, 2);
    assert.deepEqual(
      st0.workers.map((w: any) => w.ctas),
      [2, 2],
      'each worker holds the CTAs that hash to it',
    );
    assert.notEqual(st0.workers[0].listen.port, st0.workers[1].listen.port);
    assert.notEqual(st0.workers[0].listen.port, sc.listen.port);

    // Server-initiated: each Wake Up comes from the owner's socket; the CTA answers there.
    for (const c of ctas) await api(sc, 'POST', '/wake', { principal: c.name });
    await until(() => ctas.every((c) => c.agent.counters.sessionsEstablished >= 1), 20000, 'CTAs established');
    for (const c of ctas) await until2(async () => (await stateOf(sc, c.name)) === 'established', `${c.name} established at the SC`);
    const st1 = await api(sc, 'GET', '/status');
    assert.equal(st1.ctas, 4);
    assert.equal(st1.byState.established, 4);
    assert.equal(st1.counters.cta_sc_exchanges_total.established, 4);
    for (const w of st1.workers) assert.equal(w.byState.established, 2);
    const list = (await api(sc, 'GET', '/ctas')).ctas as { principal: string }[];
    assert.deepEqual(list.map((c) => c.principal).sort(), ctas.map((c) => c.name).sort());
    const page = (await api(sc, 'GET', '/ctas?limit=1&offset=3')).ctas as { principal: string }[];
    assert.equal(page.length, 1);
    assert.equal(page[0].principal, list[3].principal);
    const metrics: string = await api(sc, 'GET', '/metrics');
    assert.match(metrics, /^cta_sc_exchanges_total\{outcome="established"\} 4$/m);
    assert.match(metrics, /^cta_sc_registered_ctas 4$/m);
    assert.match(metrics, /^cta_sc_workers_up 2$/m);

    // Client-initiated, by an unregistered CTA that knows only the public port: the
    // primary reads the client from the ticket and hands the datagram to its owner.
    const ciNames = namesPerWorker(2, 1, 1000).map((l) => l[0]);
    const ci: NodeCta[] = [];
    for (const name of ciNames) ci.push(await startNodeCta(realm, name, { sc: sc.listen, kdc: realm.kdcAddr, clientInitiatedOnBoot: true, anyPort: true }));
    await until(() => ci.every((c) => c.agent.counters.sessionsEstablished >= 1), 20000, 'client-initiated CTAs established');
    for (const c of ci) await until2(async () => (await stateOf(sc, c.name)) === 'established', `${c.name} established at the SC`);
    const st2 = await api(sc, 'GET', '/status');
    assert.equal(st2.counters.cta_sc_exchanges_total.established_client_initiated, 2);
    assert.deepEqual(
      st2.workers.map((w: any) => w.ctas),
      [3, 3],
    );
    assert.ok(st2.routed.ap_request >= 2, `routed ${JSON.stringify(st2.routed)}`);

    // Kill worker 0: it is restarted, keeps its registrations (its state file) and serves again.
    const old = st2.workers[0];
    process.kill(old.pid, 'SIGKILL');
    // Calls that reach the dying worker's IPC channel must fail softly (that worker shows
    // as down), never take the primary with them: this once crashed the primary in CI.
    for (let i = 0; i < 10; i++) {
      const burst = await Promise.all(Array.from({ length: 10 }, () => api(sc, 'GET', '/status')));
      for (const s of burst) assert.equal(s.workers.length, 2);
      await new Promise((r) => setTimeout(r, 5));
    }
    const st3 = await until2(async () => {
      const s = await api(sc, 'GET', '/status');
      return s.workers[0].up && s.workers[0].pid !== old.pid ? s : null;
    }, 'worker 0 restarted');
    assert.equal(st3.workers[0].restarts, 1);
    assert.equal(st3.workers[0].ctas, 3);
    assert.ok(sc.lines.some((l) => l.event === 'worker_exited' && l.worker === 0));
    const again = ctas.find((c) => ownerOf(c.name, 2) === 0)!;
    const before = again.agent.counters.sessionsEstablished;
    await api(sc, 'POST', '/wake', { principal: again.name });
    await until(() => again.agent.counters.sessionsEstablished > before, 20000, 'exchange with the restarted worker');
    await until2(async () => (await stateOf(sc, again.name)) === 'established', 'established at the restarted worker');
    assert.match(await api(sc, 'GET', '/metrics'), /^cta_sc_worker_restarts_total 1$/m);

    // SIGTERM stops the primary and its workers.
    const pids = (await api(sc, 'GET', '/status')).workers.map((w: any) => w.pid as number);
    assert.equal(await sc.stop(), 0);
    for (const pid of pids) await until(() => !alive(pid), 5000, `worker ${pid} gone`);
  } finally {
    await realm.close();
  }
});

test('cta sc --workers: bad values are usage errors', { timeout: 30000 }, async () => {
  for (const bad of ['0', 'two', '-1', '65', '1.5']) {
    const r = await runCta(['sc', `--workers=${bad}`, '--principal', SC_NAME, '--keytab', '/nonexistent'], { timeoutMs: 20000 });
    assert.equal(r.code, 2, `--workers ${bad}: ${r.err}`);
    assert.match(r.err, /--workers must be a whole number from 1 to 64/);
  }
  const h = await runCta(['sc', '--help'], { timeoutMs: 20000 });
  assert.match(h.out + h.err, /--workers N/);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until2<T>(fn: () => Promise<T | null | false>, what: string, ms = 20000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
