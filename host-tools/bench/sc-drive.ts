// The bench side of an SC under test, shared by the single-SC child (sc-child.ts) and
// each `--workers` worker (sc-workers.ts): registers the SC's share of the n CTAs
// (CTA i at 127.0.0.1:lanePorts[i % lanes]), opens the UDP command socket on which
// the load generator names the CTAs to wake (u32 indices, many per datagram), and
// counts a measurement window: exchanges established, SC CPU time, wake ->
// established latency samples, false nonces, drops, errors.
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import type { EstablishedEvent, ScServer } from '../sc/server.ts';
import { ctaPrincipal } from './fixtures.ts';

export type DriveFigures = {
  established: number;
  elapsedMs: number;
  cpuMs: number;
  latencies: number[];
  falseNonces: number;
  drops: number;
  errors: number;
  wakes: number;
  stats: object;
};

export type ScDrive = { cmdPort: number; registered: number; registerMs: number; start(): void; stop(): DriveFigures };

/** Latency samples kept per window (enough for a p99; bounded memory). */
const MAX_SAMPLES = 200_000;

export async function driveSc(sc: ScServer, n: number, lanePorts: number[], owns: (i: number) => boolean): Promise<ScDrive> {
  const names: string[] = new Array(n);
  const wakeAt = new Float64Array(n);
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    if (!owns(i)) continue;
    names[i] = ctaPrincipal(i);
    sc.register(names[i], '127.0.0.1', lanePorts[i % lanePorts.length]);
  }
  sc.flush();
  const registerMs = performance.now() - t0;
  let counting = false;
  let established = 0;
  let lat: number[] = [];
  let falseNonces = 0;
  let drops = 0;
  let errors = 0;
  let wakes = 0;
  let windowStart = 0;
  let cpuStart = process.cpuUsage();
  sc.on('established', (e: EstablishedEvent) => {
    if (!counting) return;
    established++;
    const i = Number(e.principal.slice(5, e.principal.indexOf('.')));
    const t = wakeAt[i];
    if (t > 0 && lat.length < MAX_SAMPLES) lat.push(performance.now() - t);
  });
  sc.on('false_nonce', () => falseNonces++);
  sc.on('drop', () => drops++);
  sc.on('error', () => errors++);
  const cmd = dgram.createSocket('udp4');
  cmd.on('message', (m: Buffer) => {
    const now = performance.now();
    for (let o = 0; o + 4 <= m.length; o += 4) {
      const i = m.readUInt32BE(o);
      const p = names[i];
      if (!p) continue;
      wakeAt[i] = now;
      wakes++;
      sc.wake(p);
    }
  });
  await new Promise<void>((r) => cmd.bind(0, '127.0.0.1', () => r()));
  return {
    cmdPort: cmd.address().port,
    registered: sc.size,
    registerMs,
    start() {
      counting = true;
      established = falseNonces = drops = errors = wakes = 0;
      lat = [];
      windowStart = performance.now();
      cpuStart = process.cpuUsage();
    },
    stop() {
      counting = false;
      const c = process.cpuUsage(cpuStart);
      return { established, elapsedMs: performance.now() - windowStart, cpuMs: (c.user + c.system) / 1000, latencies: lat, falseNonces, drops, errors, wakes, stats: sc.stats() };
    },
  };
}
