// Signaling Controller control plane: the local HTTP API (register, wake, rekey,
// status, ctas), Prometheus metrics, and the `cta sc` CLI against it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import dgram from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSc, type EstablishedEvent, type ScServer } from '../host-tools/sc/server.ts';
import { ManualClock } from '../host-tools/sc/clock.ts';
import { run } from '../host-tools/sc/cli.ts';
import { encodeKeytab } from '../firmware/proto/keytab.ts';
import { KMMID, decodeWakeUp } from '../firmware/proto/pktc.ts';
import { TestCta, serviceEntry, sleep, REALM, SC_PRINCIPAL } from './helpers/ticket-mint.ts';

async function setup() {
  const clock = new ManualClock(Date.now());
  const svc = serviceEntry();
  const sc = await startSc({
    principal: SC_PRINCIPAL,
    keytab: [svc],
    listen: { host: '127.0.0.1', port: 0 },
    control: { host: '127.0.0.1', port: 0 },
    clock,
  });
  const base = `http://127.0.0.1:${sc.controlAddress!.port}`;
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
    let res = await fetch(`${base}/ctas`, {
      method: 'POST',
      body: JSON.stringify({ principal: a.principal, address: '127.0.0.1', port: a.port, signalingPort: a.sigPort }),
    });
    assert.equal(res.status, 201);
    const list = ((await (await fetch(`${base}/ctas`)).json()) as { ctas: { principal: string; signalingPort: number; state: string }[] }).ctas;
    assert.equal(list.length, 1);
    assert.equal(list[0].principal, a.principal);
    assert.equal(list[0].signalingPort, a.sigPort);
    assert.equal(list[0].state, 'registered');

    const est = established(sc);
    res = await fetch(`${base}/wake`, { method: 'POST', body: JSON.stringify({ principal: a.principal }) });
    assert.equal(res.status, 202);
    await est;
    const st = (await (await fetch(`${base}/status`)).json()) as { principal: string; ctas: number; byState: { [k: string]: number }; listen: { port: number } };
    assert.equal(st.principal, SC_PRINCIPAL);
    assert.equal(st.ctas, 1);
    assert.equal(st.byState.established, 1);
    assert.equal(st.listen.port, sc.address.port);

    const est2 = established(sc);
    res = await fetch(`${base}/rekey`, { method: 'POST', body: JSON.stringify({ principal: a.principal }) });
    assert.equal(((await res.json()) as { method: string }).method, 'rekey');
    await est2;

    const sig = await fetch(`${base}/signal`, { method: 'POST', body: JSON.stringify({ principal: a.principal, text: 'RQNT 77 aaln/1@x.example MGCP 1.0 NCS 1.0\r\n' }) });
    assert.equal(sig.status, 200);
    assert.match(((await sig.json()) as { response: string }).response, /^200 77/);

    // wake all (paced queue)
    const w = a.nextKind(KMMID.WAKE_UP);
    res = await fetch(`${base}/wake`, { method: 'POST', body: JSON.stringify({ all: true }) });
    assert.equal(((await res.json()) as { queued: number }).queued, 1);
    assert.notEqual(decodeWakeUp((await w).data).serverNonce, 0);

    assert.equal((await fetch(`${base}/wake`, { method: 'POST', body: JSON.stringify({ principal: `x@${REALM}` }) })).status, 404);
    assert.equal((await fetch(`${base}/wake`, { method: 'POST', body: '{not json' })).status, 400);
    assert.equal((await fetch(`${base}/ctas`, { method: 'POST', body: JSON.stringify({ principal: `y@${REALM}`, address: '127.0.0.1', port: 0 }) })).status, 400);
    assert.equal((await fetch(`${base}/status`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${base}/nope`)).status, 404);
    res = await fetch(`${base}/ctas?principal=${encodeURIComponent(a.principal)}`, { method: 'DELETE' });
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
    const res = await fetch(`${base}/metrics`);
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
  const { sc, base, svc, clock } = await setup();
  const a = await TestCta.create(`cta1@${REALM}`, svc, () => clock.now());
  a.scAddress = sc.address;
  const control = `127.0.0.1:${sc.controlAddress!.port}`;
  void base;
  try {
    let r = await capture(() => run(['register', `${a.principal}=127.0.0.1:${a.port}/${a.sigPort}`, '--control', control]));
    assert.equal(r.code, 0, r.err);
    r = await capture(() => run(['ctas', '--control', control]));
    assert.match(r.out, new RegExp(`${a.principal}\\s+127\\.0\\.0\\.1:${a.port} sig ${a.sigPort}\\s+registered`));
    const est = established(sc);
    r = await capture(() => run(['wake', a.principal, '--control', control]));
    assert.equal(r.code, 0, r.err);
    await est;
    r = await capture(() => run(['status', '--control', control]));
    assert.match(r.out, /CTAs: 1 established=1/);
    r = await capture(() => run(['rekey', a.principal, '--control', control]));
    assert.match(r.out, /Rekey sent/);
    r = await capture(() => run(['wake', '--all', '--control', control]));
    assert.match(r.out, /queued Wake Ups for 1 CTA/);
    r = await capture(() => run(['metrics', '--control', control]));
    assert.match(r.out, /cta_sc_tx_total\{kind="wake_up"\}/);
    r = await capture(() => run(['wake', `ghost@${REALM}`, '--control', control]));
    assert.match(r.err, /no CTA 'ghost@EXAMPLE.NET'.*HTTP 404/);
  } finally {
    await sc.close();
    await a.close();
  }
  // Control API unreachable: the port we just closed.
  const r = await capture(() => run(['status', '--control', control]));
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
    const res = await fetch(`http://${started.control}/status`);
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
  const { sc, svc, clock } = await setup();
  const a = await TestCta.create(`cta1@${REALM}`, svc, () => clock.now());
  a.scAddress = sc.address;
  const control = `127.0.0.1:${sc.controlAddress!.port}`;
  try {
    let r = await capture(() => run(['register', `cta1=127.0.0.1:${a.port}/${a.sigPort}`, '--control', control]));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`registered cta1@${REALM} `));
    const est = established(sc);
    r = await capture(() => run(['wake', 'cta1', '--control', control]));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`Wake Up sent to cta1@${REALM}`));
    await est;
    r = await capture(() => run(['rekey', 'cta1', '--control', control]));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, new RegExp(`Rekey sent to cta1@${REALM}`));
  } finally {
    await sc.close();
    await a.close();
  }
});
