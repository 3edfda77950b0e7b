// Signaling Controller control plane: the local HTTP API (register, wake, rekey,
// status, ctas), Prometheus metrics, and the `cta sc` CLI against it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import dgram from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSc, type EstablishedEvent, type ScServer } from '../host-tools/sc/server.ts';
import { looseFolder } from '../host-tools/sc/control.ts';
import { ManualClock } from '../host-tools/sc/clock.ts';
import { run } from '../host-tools/sc/cli.ts';
import { encodeKeytab } from '../firmware/proto/keytab.ts';
import { KMMID, decodeWakeUp } from '../firmware/proto/pktc.ts';
import { TestCta, serviceEntry, sleep, REALM, SC_PRINCIPAL } from './helpers/ticket-mint.ts';

/** The control API's bearer token of the SC setup() started last. */
let TOKEN = '';
/** fetch() as a `cta sc` client: the bearer token, JSON bodies labelled as such. */
function af(url: string, init: RequestInit = {}): Promise<Response> {
  const headers: { [k: string]: string } = { authorization: `Bearer ${TOKEN}`, ...((init.headers as { [k: string]: string }) ?? {}) };
  if (init.body !== undefined && !Object.keys(headers).some((k) => k.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  return fetch(url, { ...init, headers });
}

async function setup(tokenFile?: string) {
  const clock = new ManualClock(Date.now());
  const svc = serviceEntry();
  const sc = await startSc({
    principal: SC_PRINCIPAL,
    keytab: [svc],
    listen: { host: '127.0.0.1', port: 0 },
    control: { host: '127.0.0.1', port: 0, tokenFile },
    clock,
  });
  const base = `http://127.0.0.1:${sc.controlAddress!.port}`;
  TOKEN = sc.controlToken!;
  return { clock, svc, sc, base };
}

function established(sc: ScServer): Promise<EstablishedEvent> {
  return new Promise((r) => sc.once('established', r));
}

/** Minimal Prometheus text-format parser: throws on a line that is not valid. */
function parseProm(text: string): { samples: Map<string, number>; types: Map<string, string> } {
  const samples = new Map<string, number>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') {
        assert.match(m[3], /^(counter|gauge|histogram|summary|untyped)$/);
        types.set(m[2], m[3]);
      }
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?(?:\d+(?:\.\d+)?(?:e[+-]?\d+)?|\+Inf|NaN))$/.exec(line);
    assert.ok(m, `not a Prometheus sample line: ${JSON.stringify(line)}`);
    samples.set(m[1] + (m[2] ?? ''), Number(m[3]));
  }
  return { samples, types };
}

test('control API: register, list, wake -> established, status, rekey, delete, errors', async () => {
  const { sc, base, svc, clock } = await setup();
  const a = await TestCta.create(`cta1@${REALM}`, svc, () => clock.now());
  a.scAddress = sc.address;
  try {
    let res = await af(`${base}/ctas`, {
      method: 'POST',
      body: JSON.stringify({ principal: a.principal, address: '127.0.0.1', port: a.port, signalingPort: a.sigPort }),
    });
    assert.equal(res.status, 201);
    const list = ((await (await af(`${base}/ctas`)).json()) as { ctas: { principal: string; signalingPort: number; state: string }[] }).ctas;
    assert.equal(list.length, 1);
    assert.equal(list[0].principal, a.principal);
    assert.equal(list[0].signalingPort, a.sigPort);
    assert.equal(list[0].state, 'registered');

    const est = established(sc);
    res = await af(`${base}/wake`, { method: 'POST', body: JSON.stringify({ principal: a.principal }) });
    assert.equal(res.status, 202);
    await est;
    const st = (await (await af(`${base}/status`)).json()) as { principal: string; ctas: number; byState: { [k: string]: number }; listen: { port: number } };
    assert.equal(st.principal, SC_PRINCIPAL);
    assert.equal(st.ctas, 1);
    assert.equal(st.byState.established, 1);
    assert.equal(st.listen.port, sc.address.port);

    const est2 = established(sc);
    res = await af(`${base}/rekey`, { method: 'POST', body: JSON.stringify({ principal: a.principal }) });
    assert.equal(((await res.json()) as { method: string }).method, 'rekey');
    await est2;

    const sig = await af(`${base}/signal`, { method: 'POST', body: JSON.stringify({ principal: a.principal, text: 'RQNT 77 aaln/1@x.example MGCP 1.0 NCS 1.0\r\n' }) });
    assert.equal(sig.status, 200);
    assert.match(((await sig.json()) as { response: string }).response, /^200 77/);

    // wake all (paced queue)
    const w = a.nextKind(KMMID.WAKE_UP);
    res = await af(`${base}/wake`, { method: 'POST', body: JSON.stringify({ all: true }) });
    assert.equal(((await res.json()) as { queued: number }).queued, 1);
    assert.notEqual(decodeWakeUp((await w).data).serverNonce, 0);

    assert.equal((await af(`${base}/wake`, { method: 'POST', body: JSON.stringify({ principal: `x@${REALM}` }) })).status, 404);
    assert.equal((await af(`${base}/wake`, { method: 'POST', body: '{not json' })).status, 400);
    assert.equal((await af(`${base}/ctas`, { method: 'POST', body: JSON.stringify({ principal: `y@${REALM}`, address: '127.0.0.1', port: 0 }) })).status, 400);
    assert.equal((await af(`${base}/status`, { method: 'POST' })).status, 405);
    assert.equal((await af(`${base}/nope`)).status, 404);
    res = await af(`${base}/ctas?principal=${encodeURIComponent(a.principal)}`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.equal(sc.size, 0);
  } finally {
    await sc.close();
    await a.close();
  }
});

test('/metrics is Prometheus text with counters by outcome and drop reason and the latency histogram', async () => {
  const { sc, base, svc, clock } = await setup();
  const a = await TestCta.create(`cta1@${REALM}`, svc, () => clock.now());
  a.scAddress = sc.address;
  try {
    sc.register(a.principal, '127.0.0.1', a.port, a.sigPort);
    const est = established(sc);
    sc.wake(a.principal);
    await est;
    // one false nonce and one malformed datagram
    a.auto = false;
    a.send(a.apRequest(12345).bytes);
    a.send(new Uint8Array([2, 1, 0x10, 0]));
    const deadline = Date.now() + 3000;
    while ((sc.stats().cta_sc_drops_total.malformed ?? 0) < 1 || (sc.stats().cta_sc_drops_total.false_nonce ?? 0) < 1) {
      if (Date.now() > deadline) throw new Error('drops not counted');
      await sleep(10);
    }
    const res = await af(`${base}/metrics`);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parseProm(await res.text());
    assert.equal(types.get('cta_sc_drops_total'), 'counter');
    assert.equal(types.get('cta_sc_exchange_latency_seconds'), 'histogram');
    assert.equal(samples.get('cta_sc_drops_total{reason="false_nonce"}'), 1);
    assert.equal(samples.get('cta_sc_drops_total{reason="malformed"}'), 1);
    assert.equal(samples.get('cta_sc_ap_requests_total{outcome="accepted"}'), 1);
    assert.equal(samples.get('cta_sc_ap_requests_total{outcome="false_nonce"}'), 1);
    assert.equal(samples.get('cta_sc_exchanges_total{outcome="established"}'), 1);
    assert.equal(samples.get('cta_sc_tx_total{kind="wake_up"}'), 1);
    assert.equal(samples.get('cta_sc_registered_ctas'), 1);
    assert.equal(samples.get('cta_sc_exchange_latency_seconds_count'), 1);
    assert.equal(samples.get('cta_sc_exchange_latency_seconds_bucket{le="+Inf"}'), 1);
    // buckets are cumulative
    let prev = 0;
    for (const [k, v] of samples) {
      if (!k.startsWith('cta_sc_exchange_latency_seconds_bucket')) continue;
      assert.ok(v >= prev, `${k} not cumulative`);
      prev = v;
    }
  } finally {
    await sc.close();
    await a.close();
  }
});

async function capture(fn: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const ow = process.stdout.write.bind(process.stdout);
  let out = '';
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  try {
    const code = await fn();
    return { code, out, err: '' };
  } catch (e) {
    return { code: 2, out, err: (e as Error).message };
  } finally {
    process.stdout.write = ow;
  }
}

test('cta sc client commands talk to the control API; clear one-line errors', async () => {
  const tdir = mkdtempSync(join(tmpdir(), 'sc-token-'));
  const tokenFile = join(tdir, 'sc.db.token');
  const { sc, base, svc, clock } = await setup(tokenFile);
  const a = await TestCta.create(`cta1@${REALM}`, svc, () => clock.now());
  a.scAddress = sc.address;
  const control = `127.0.0.1:${sc.controlAddress!.port}`;
  void base;
  try {
    let r = await capture(() => run(['register', `${a.principal}=127.0.0.1:${a.port}/${a.sigPort}`, '--control', control, '--token-file', tokenFile]));
    assert.equal(r.code, 0, r.err);
    r = await capture(() => run(['ctas', '--control', control, '--token-file', tokenFile]));
    assert.match(r.out, new RegExp(`${a.principal}\\s+127\\.0\\.0\\.1:${a.port} sig ${a.sigPort}\\s+registered`));
    const est = established(sc);
    r = await capture(() => run(['wake', a.principal, '--control', control, '--token-file', tokenFile]));
    assert.equal(r.code, 0, r.err);
    await est;
    r = await capture(() => run(['status', '--control', control, '--token-file', tokenFile]));
    assert.match(r.out, /CTAs: 1 established=1/);
    r = await capture(() => run(['rekey', a.principal, '--control', control, '--token-file', tokenFile]));
    assert.match(r.out, /Rekey sent/);
    r = await capture(() => run(['wake', '--all', '--control', control, '--token-file', tokenFile]));
    assert.match(r.out, /queued Wake Ups for 1 CTA/);
    r = await capture(() => run(['metrics', '--control', control, '--token-file', tokenFile]));
    assert.match(r.out, /cta_sc_tx_total\{kind="wake_up"\}/);
    r = await capture(() => run(['wake', `ghost@${REALM}`, '--control', control, '--token-file', tokenFile]));
    assert.match(r.err, /no CTA 'ghost@EXAMPLE.NET'.*HTTP 404/);
    // Without the token: refused, and the client says where the token comes from.
    r = await capture(() => run(['wake', a.principal, '--control', control, '--token-file', join(tdir, 'none')]));
    assert.equal(r.code, 2);
    assert.match(r.err, /no control token: .*none does not exist .*HTTP 401/);
  } finally {
    rmSync(tdir, { recursive: true, force: true });
    await sc.close();
    await a.close();
  }
  // Control API unreachable: the port we just closed.
  const r = await capture(() => run(['status', '--control', control, '--token-file', tokenFile]));
  assert.equal(r.code, 2);
  assert.match(r.err, /^control API at 127\.0\.0\.1:\d+ is unreachable \(connection refused\)/);
  assert.ok(!r.err.includes('\n'));
});

test('cta sc serve: start-up errors are one clear line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-cli-'));
  try {
    const kt = join(dir, 'sc.keytab');
    writeFileSync(kt, encodeKeytab([serviceEntry()]));
    const common = ['--listen', '127.0.0.1:0', '--state', ':memory:', '--control', 'none'];
    let r = await capture(() => run(['--principal', SC_PRINCIPAL, '--keytab', join(dir, 'missing.keytab'), ...common]));
    assert.match(r.err, /^keytab '.*missing\.keytab' does not exist$/);
    r = await capture(() => run(['--principal', `sc/other@${REALM}`, '--keytab', kt, ...common]));
    assert.equal(r.err, `principal sc/other@${REALM} is not in the keytab`);
    r = await capture(() => run(['--keytab', kt, ...common]));
    assert.match(r.err, /--principal .* is required/);
    // UDP port in use
    const blocker = dgram.createSocket('udp4');
    await new Promise<void>((res) => blocker.bind(0, '127.0.0.1', () => res()));
    const port = blocker.address().port;
    r = await capture(() => run(['--principal', SC_PRINCIPAL, '--keytab', kt, '--listen', `127.0.0.1:${port}`, '--state', ':memory:', '--control', 'none']));
    blocker.close();
    assert.equal(r.err, `UDP 127.0.0.1:${port} is already in use`);
    // control port in use
    const tcp = createServer();
    await new Promise<void>((res) => tcp.listen(0, '127.0.0.1', () => res()));
    const cport = (tcp.address() as { port: number }).port;
    r = await capture(() => run(['--principal', SC_PRINCIPAL, '--keytab', kt, '--listen', '127.0.0.1:0', '--state', ':memory:', '--control', `127.0.0.1:${cport}`]));
    tcp.close();
    assert.equal(r.err, `control API port 127.0.0.1:${cport} is already in use`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('cta sc serve runs as a process, logs JSON lines, answers the control API, stops cleanly on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sc-serve-'));
  const kt = join(dir, 'sc.keytab');
  writeFileSync(kt, encodeKeytab([serviceEntry()]));
  const child = spawn(
    process.execPath,
    ['bin/cta.js', 'sc', '--principal', SC_PRINCIPAL, '--keytab', kt, '--listen', '127.0.0.1:0', '--state', join(dir, 'sc.db'), '--control', '127.0.0.1:0', '--cta', `a@${REALM}=127.0.0.1:9/9`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  try {
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    const started = await new Promise<{ control: string }>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no started line: ' + out + err)), 15000);
      child.stdout.on('data', (d) => {
        out += d;
        for (const line of out.split('\n')) {
          if (!line.trim()) continue;
          const j = JSON.parse(line);
          assert.equal(typeof j.ts, 'string');
          if (j.event === 'started') {
            clearTimeout(t);
            resolve(j);
          }
        }
      });
    });
    const token = readFileSync(join(dir, 'sc.db.token'), 'utf8').trim();
    assert.equal(statSync(join(dir, 'sc.db.token')).mode & 0o777, 0o600);
    assert.equal((await fetch(`http://${started.control}/status`)).status, 401);
    const res = await fetch(`http://${started.control}/status`, { headers: { authorization: `Bearer ${token}` } });
    const st = (await res.json()) as { principal: string; ctas: number };
    assert.equal(st.principal, SC_PRINCIPAL);
    assert.equal(st.ctas, 1);
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.equal(code, 0, err);
    assert.match(out, /"event":"stopping","signal":"SIGTERM"/);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('one realm rule: cta sc register / wake / rekey take a CTA without @REALM as one in the SC\'s realm', async () => {
  // The clients carry the control API's bearer token (--token-file), as every client command does.
  const tdir = mkdtempSync(join(tmpdir(), 'sc-realm-'));
  const tokenFile = join(tdir, 'sc.db.token');
  const { sc, svc, clock } = await setup(tokenFile);
  const a = await TestCta.create(`cta1@${REALM}`, svc, () => clock.now());
  a.scAddress = sc.address;
  const control = `127.0.0.1:${sc.controlAddress!.port}`;
  try {
    let r = await capture(() => run(['register', `cta1=127.0.0.1:${a.port}/${a.sigPort}`, '--control', control, '--token-file', tokenFile]));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`registered cta1@${REALM} `));
    const est = established(sc);
    r = await capture(() => run(['wake', 'cta1', '--control', control, '--token-file', tokenFile]));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`Wake Up sent to cta1@${REALM}`));
    await est;
    r = await capture(() => run(['rekey', 'cta1', '--control', control, '--token-file', tokenFile]));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`Rekey sent to cta1@${REALM}`));
  } finally {
    await sc.close();
    await a.close();
    rmSync(tdir, { recursive: true, force: true });
  }
});

/** One raw HTTP request (any Host header, any body), as a browser or a local attacker sends it. */
function raw(port: number, method: string, path: string, headers: { [k: string]: string }, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// Issue 13 item 2: the control API needs a credential, checks Host, wants JSON as JSON, stays on loopback.
test('control API security: bearer token on every route but /metrics, Host checked, JSON only, loopback only unless allowed', async () => {
  const { sc, svc, clock } = await setup();
  const port = sc.controlAddress!.port;
  const host = `127.0.0.1:${port}`;
  const a = await TestCta.create(`cta1@${REALM}`, svc, () => clock.now());
  const wakes: string[] = [];
  sc.on('wake', (w: { principal: string }) => wakes.push(w.principal));
  try {
    const reg = JSON.stringify({ principal: a.principal, address: '127.0.0.1', port: a.port });
    // No token, a wrong token, a token of the wrong length: 401 on every state-changing or revealing route.
    for (const auth of [undefined, `Bearer ${'x'.repeat(TOKEN.length)}`, 'Bearer x', `Basic ${TOKEN}`]) {
      const h: { [k: string]: string } = { host, 'content-type': 'application/json' };
      if (auth) h.authorization = auth;
      for (const [m, p, b] of [
        ['POST', '/ctas', reg],
        ['POST', '/wake', JSON.stringify({ all: true })],
        ['POST', '/rekey', JSON.stringify({ principal: a.principal })],
        ['POST', '/signal', JSON.stringify({ principal: a.principal, text: 'RQNT 1 x MGCP 1.0\r\n' })],
        ['DELETE', `/ctas?principal=${encodeURIComponent(a.principal)}`, undefined],
        ['GET', '/status', undefined],
        ['GET', '/ctas', undefined],
      ] as [string, string, string | undefined][]) {
        const r = await raw(port, m, p, h, b);
        assert.equal(r.status, 401, `${m} ${p} with ${auth}`);
      }
    }
    assert.equal(sc.size, 0);
    assert.deepEqual(wakes, []);
    // /metrics stays readable for Prometheus, and names no CTA.
    const mt = await raw(port, 'GET', '/metrics', { host });
    assert.equal(mt.status, 200);
    // A cross-origin "simple" POST (text/plain, no preflight) with the token still cannot act.
    const auth = `Bearer ${TOKEN}`;
    for (const ct of ['text/plain', 'application/x-www-form-urlencoded', '']) {
      const r = await raw(port, 'POST', '/ctas', ct ? { host, authorization: auth, 'content-type': ct } : { host, authorization: auth }, reg);
      assert.equal(r.status, 415, ct);
    }
    assert.equal(sc.size, 0);
    // DNS rebinding: the page's own name as Host is refused, even for /metrics.
    for (const p of ['/status', '/metrics', '/ctas']) assert.equal((await raw(port, 'GET', p, { host: `evil.example:${port}`, authorization: auth })).status, 421, p);
    assert.equal((await raw(port, 'GET', '/status', { host: `127.0.0.1:${port + 1}`, authorization: auth })).status, 421);
    // The real client: loopback names of the bound port, the token, JSON.
    for (const h of [host, `localhost:${port}`]) assert.equal((await raw(port, 'GET', '/status', { host: h, authorization: auth })).status, 200, h);
    assert.equal((await raw(port, 'POST', '/ctas', { host, authorization: auth, 'content-type': 'application/json; charset=utf-8' }, reg)).status, 201);
    assert.equal(sc.size, 1);
    // What /metrics (no token) shows: counts, no principal, address or port of a CTA.
    const m2 = (await raw(port, 'GET', '/metrics', { host })).text;
    assert.match(m2, /cta_sc_registered_ctas 1/);
    assert.ok(!m2.includes('cta1') && !m2.includes(String(a.port)) && !m2.includes('127.0.0.1'), m2);
  } finally {
    await sc.close();
    await a.close();
  }
  // Non-loopback: refused unless allowed; allowed with a warning.
  await assert.rejects(
    startSc({ principal: SC_PRINCIPAL, keytab: [svc], listen: { host: '127.0.0.1', port: 0 }, control: { host: '0.0.0.0', port: 0 }, wakeOnStart: false }),
    /control API 0\.0\.0\.0:0: 0\.0\.0\.0 is not a loopback address/,
  );
  const logs: string[] = [];
  const sc2 = await startSc({ principal: SC_PRINCIPAL, keytab: [svc], listen: { host: '127.0.0.1', port: 0 }, control: { host: '0.0.0.0', port: 0, allowRemote: true }, wakeOnStart: false, log: (ev) => logs.push(ev) });
  try {
    assert.ok(logs.includes('control_remote'), logs.join(' '));
    assert.equal((await raw(sc2.controlAddress!.port, 'GET', '/status', { host: `127.0.0.1:${sc2.controlAddress!.port}` })).status, 401);
  } finally {
    await sc2.close();
  }
  const kdir = mkdtempSync(join(tmpdir(), 'sc-remote-'));
  try {
    const kt = join(kdir, 'sc.keytab');
    writeFileSync(kt, encodeKeytab([svc]));
    const r = await capture(() => run(['--principal', SC_PRINCIPAL, '--keytab', kt, '--listen', '127.0.0.1:0', '--state', ':memory:', '--control', '0.0.0.0:0']));
    assert.equal(r.code, 2);
    assert.match(r.err, /not a loopback address.*--control-allow-remote/);
  } finally {
    rmSync(kdir, { recursive: true, force: true });
  }
});

// Issue 13 item 7: hostile query strings and bodies get 400, not 500; principals and registrations are capped.
test('control API input: bad limit/offset -> 400, long principal -> 400, registrations capped -> 409', async () => {
  const svc = serviceEntry();
  const sc = await startSc({ principal: SC_PRINCIPAL, keytab: [svc], listen: { host: '127.0.0.1', port: 0 }, control: { host: '127.0.0.1', port: 0 }, wakeOnStart: false, limits: { ctas: 2 } });
  TOKEN = sc.controlToken!;
  const base = `http://127.0.0.1:${sc.controlAddress!.port}`;
  try {
    for (const q of ['limit=abc', 'limit=1e308', 'limit=-1', 'offset=abc', 'offset=1e308', 'limit=1.5', 'limit=99999999999']) {
      const r = await af(`${base}/ctas?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(((await r.json()) as { error: string }).error, /must be a whole number/);
    }
    assert.equal((await af(`${base}/ctas?limit=1&offset=0`)).status, 200);
    const long = 'c'.repeat(300) + `@${REALM}`;
    assert.equal((await af(`${base}/ctas`, { method: 'POST', body: JSON.stringify({ principal: long, address: '127.0.0.1', port: 9 }) })).status, 400);
    assert.equal((await af(`${base}/ctas?principal=${long}`, { method: 'DELETE' })).status, 400);
    assert.equal((await af(`${base}/signal`, { method: 'POST', body: JSON.stringify({ principal: `a@${REALM}`, text: 'x'.repeat(5000) }) })).status, 400);
    for (const p of ['a', 'b']) assert.equal((await af(`${base}/ctas`, { method: 'POST', body: JSON.stringify({ principal: `${p}@${REALM}`, address: '127.0.0.1', port: 9 }) })).status, 201);
    const r = await af(`${base}/ctas`, { method: 'POST', body: JSON.stringify({ principal: `c@${REALM}`, address: '127.0.0.1', port: 9 }) });
    assert.equal(r.status, 409);
    assert.match(((await r.json()) as { error: string }).error, /registry full/);
    // Re-registering a known CTA is not a new registration.
    assert.equal((await af(`${base}/ctas`, { method: 'POST', body: JSON.stringify({ principal: `a@${REALM}`, address: '127.0.0.1', port: 10 }) })).status, 201);
    assert.equal(sc.size, 2);
  } finally {
    await sc.close();
  }
});

test('a control token folder others can write to (group/world, no sticky bit) is reported at start, with what to do', async () => {
  const d = mkdtempSync(join(tmpdir(), 'sc-token-dir-'));
  try {
    const file = join(d, 'sc.db.token');
    chmodSync(d, 0o700);
    assert.equal(looseFolder(file), null);
    chmodSync(d, 0o1777); // like /tmp: others cannot rename or delete our file
    assert.equal(looseFolder(file), null);
    chmodSync(d, 0o775);
    assert.match(looseFolder(file) ?? '', /writable by its group \(mode 775\).*chmod go-w/);
    chmodSync(d, 0o777);
    assert.match(looseFolder(file) ?? '', /writable by every user \(mode 777\)/);
    // The SC says so once, at start, and still writes the token 0600.
    const events: { event: string; fields: { [k: string]: unknown } }[] = [];
    const sc = await startSc({
      principal: SC_PRINCIPAL,
      keytab: [serviceEntry()],
      listen: { host: '127.0.0.1', port: 0 },
      control: { host: '127.0.0.1', port: 0, tokenFile: file },
      log: (event: string, fields: { [k: string]: unknown }) => events.push({ event, fields }),
    } as Parameters<typeof startSc>[0]);
    try {
      const w = events.filter((e) => e.event === 'control_token_folder');
      assert.equal(w.length, 1, JSON.stringify(events.map((e) => e.event)));
      assert.match(String(w[0].fields.warning), /every user/);
      assert.equal(statSync(file).mode & 0o777, 0o600);
    } finally {
      await sc.close();
    }
  } finally {
    chmodSync(d, 0o700);
    rmSync(d, { recursive: true, force: true });
  }
});
