// The Signaling Controller under test, in its own process (one core when pinned).
//
//   {type:'serve', scKey, n, shard, shards, lanePorts}  startSc on 127.0.0.1:0, registers
//        its share of the n CTAs in bulk (CTA i -> 127.0.0.1:lanePorts[i % lanes]), opens a
//        UDP command socket on which the load generator names the CTAs to wake
//        (u32 indices); replies {type:'ready', port, cmdPort, registerMs}
//   {type:'measure-start'} / {type:'measure-stop'} -> {type:'measured', ...}: exchanges
//        established in the window, CPU time, wake -> established latency samples
//   {type:'mem', n} -> {type:'mem-result'}: RSS/heap before and after registering n CTAs
//        (run with --expose-gc in a fresh process)
//   {type:'verify', scKey, requests, durationMs} -> {type:'verify-result'}: the SC's AP
//        Request receive path called directly (no UDP) on the given datagrams
import './sc-v8.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Session } from 'node:inspector';
import { performance } from 'node:perf_hooks';
import { startSc, type ScOptions, type ScServer } from '../sc/server.ts';
import { driveSc, type ScDrive } from './sc-drive.ts';
import { childMain } from './proc.ts';
import { ctaPrincipal, fromHex, scEntry, SC_PRINCIPAL } from './fixtures.ts';

let drive: ScDrive | null = null;

// CPU profile of the measured window only (start-up and module loading excluded).
let session: Session | null = null;
function profStart(dir: string | undefined): Promise<void> {
  if (!dir) return Promise.resolve();
  session = new Session();
  session.connect();
  const s = session;
  return new Promise((resolve, reject) => {
    s.post('Profiler.enable', () => {
      s.post('Profiler.setSamplingInterval', { interval: 200 }, () => {
        s.post('Profiler.start', (err) => (err ? reject(err) : resolve()));
      });
    });
  });
}
function profStop(dir: string | undefined): Promise<void> {
  const s = session;
  if (!dir || !s) return Promise.resolve();
  session = null;
  return new Promise((resolve, reject) => {
    s.post('Profiler.stop', (err, r) => {
      if (err) return reject(err);
      writeFileSync(join(dir, `sc-${process.pid}.cpuprofile`), JSON.stringify(r.profile));
      s.disconnect();
      resolve();
    });
  });
}
let profileDir: string | undefined;

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) {
    g();
    g();
  }
}

/** The SC under test: the bench SC principal with the key the parent made (hex), on 127.0.0.1, no control API, no Wake Up at start. */
function startBenchSc(scKeyHex: string, more: Partial<ScOptions>): Promise<ScServer> {
  return startSc({ principal: SC_PRINCIPAL, keytab: [scEntry(fromHex(scKeyHex))], listen: { host: '127.0.0.1', port: 0 }, control: null, wakeOnStart: false, ...more });
}

async function serve(msg: any, reply: (m: object) => void): Promise<void> {
  profileDir = msg.profileDir;
  const lanePorts: number[] = msg.lanePorts;
  const sc = await startBenchSc(msg.scKey, {
    // No Wake Up retries: a Wake Up does not name its CTA, so a retry that fires while
    // the SC is starved of CPU (3 s, on a loaded machine) reaches a lane that has moved
    // on to its next CTA, which answers it with the wrong ticket -- a false nonce that
    // is an artefact of the lane model. The retry timer is still armed for every wake.
    timers: { wakeRetries: 0 },
  });
  drive = await driveSc(sc, msg.n, lanePorts, (i) => i % msg.shards === msg.shard);
  reply({ type: 'ready', port: sc.address.port, cmdPort: drive.cmdPort, registerMs: drive.registerMs, registered: drive.registered });
}

async function mem(msg: any, reply: (m: object) => void): Promise<void> {
  const n: number = msg.n;
  const s = await startBenchSc(msg.scKey, { statePath: msg.statePath });
  // Warm the code paths (and SQLite's statements) with a few registrations, then measure.
  for (let i = 0; i < 16; i++) s.register(`cta/warm${i}.bench.test@BENCH.TEST`, '127.0.0.1', 1024 + i);
  s.flush();
  for (let i = 0; i < 16; i++) s.unregister(`cta/warm${i}.bench.test@BENCH.TEST`);
  s.flush();
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const before = process.memoryUsage();
  const t0 = performance.now();
  // Names made here: the strings the SC keeps are counted, the transient ones collected.
  for (let i = 0; i < n; i++) s.register(ctaPrincipal(i), '127.0.0.1', 1024 + (i % 60000));
  s.flush();
  const registerMs = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 50));
  gc();
  const after = process.memoryUsage();
  reply({ type: 'mem-result', n, registered: s.size, registerMs, before, after });
  await s.close();
}

async function verify(msg: any, reply: (m: object) => void): Promise<void> {
  const s = await startBenchSc(msg.scKey, {});
  const reqs: Buffer[] = (msg.requests as string[]).map((h) => Buffer.from(h, 'hex'));
  const names: string[] = msg.clients;
  for (let i = 0; i < names.length; i++) s.register(names[i], '127.0.0.1', 40000 + i);
  s.flush();
  let falseNonce = 0;
  let other = 0;
  s.on('false_nonce', () => falseNonce++);
  s.on('drop', () => other++);
  s.on('error', () => other++);
  // The SC's receive path without UDP.
  const from = { address: '127.0.0.1', port: 40000 };
  const feed = (k: number) => s.receiveKm(reqs[k % reqs.length], from);
  // Warm-up, then a timed loop.
  for (let k = 0; k < Math.min(2000, reqs.length * 2); k++) feed(k);
  falseNonce = 0;
  other = 0;
  const dur: number = msg.durationMs;
  await profStart(msg.profileDir);
  const t0 = performance.now();
  let k = 0;
  let t = t0;
  while (t - t0 < dur) {
    for (let j = 0; j < 200; j++) feed(k++);
    t = performance.now();
  }
  await profStop(msg.profileDir);
  reply({ type: 'verify-result', verified: k, elapsedMs: t - t0, falseNonce, other });
  await s.close();
}

childMain(async (msg, reply) => {
  if (msg.type === 'serve') return serve(msg, reply);
  if (msg.type === 'mem') return mem(msg, reply);
  if (msg.type === 'verify') return verify(msg, reply);
  if (msg.type === 'measure-start') {
    drive?.start();
    await profStart(profileDir);
    reply({ type: 'measure-started' });
    return;
  }
  if (msg.type === 'measure-stop') {
    if (!drive) throw new Error('measure-stop before serve');
    const f = drive.stop();
    await profStop(profileDir);
    reply({ type: 'measured', ...f });
    return;
  }
});
