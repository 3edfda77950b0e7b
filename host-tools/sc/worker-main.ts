// The worker side of `cta sc --workers N`: the entry point the primary forks
// (workers-supervise.ts). It waits for the primary's 'init' message, runs the
// ordinary SC (startSc, server.ts) for its share of the CTAs, answers the
// primary's calls over IPC, takes the datagrams the primary routed to it, and
// stops when told to (or when the primary goes away).
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ScServer, ScLog } from './types.ts';
import type { WorkerHookContext, WorkerHookHandler } from './workers-types.ts';
import { ownerOf } from './workers-route.ts';

const SELF = fileURLToPath(import.meta.url);

async function workerMain(): Promise<void> {
  // `cta sc`'s V8 flags (bin/cta.js), before the SC's modules load.
  const { setFlagsFromString } = await import('node:v8');
  setFlagsFromString(process.env.CTA_SC_V8_FLAGS ?? '--semi-space-growth-factor=1');
  const send = (m: object) => {
    if (process.connected) process.send?.(m);
  };
  const init: any = await new Promise((resolve) => process.once('message', resolve));
  const index: number = init.index;
  const { startSc } = await import('./server.ts');
  const log: ScLog =
    init.log === 'stdout'
      ? (event, fields) => process.stdout.write(JSON.stringify({ ts: new Date().toISOString(), component: 'sc', worker: index, event, ...fields }) + '\n')
      : init.log === 'ipc'
        ? (event, fields) => send({ t: 'log', event, fields: JSON.parse(JSON.stringify(fields)) })
        : () => {};
  let sc: ScServer;
  try {
    const o = { ...init.sc, control: null, log };
    try {
      sc = await startSc(o);
    } catch (e) {
      // A restarted worker asks for its previous port; if that is gone, any port.
      if ((e as { code?: string }).code !== 'port_in_use' || !o.listen.port) throw e;
      sc = await startSc({ ...o, listen: { host: o.listen.host, port: 0 } });
    }
  } catch (e) {
    send({ t: 'failed', code: (e as { code?: string }).code, message: (e as Error).message });
    process.exit(1);
  }
  let hook: WorkerHookHandler | null = null;
  if (init.hook) {
    const mod = await import(init.hook);
    hook = await mod.workerHook(sc, { index, workers: init.workers, ownerOf } satisfies WorkerHookContext);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await sc.close();
    } finally {
      process.exit(0);
    }
  };
  // Ctrl-C reaches the whole process group: the primary decides when workers stop.
  process.on('SIGINT', () => {});
  process.on('SIGTERM', () => void stop());
  process.on('disconnect', () => void stop());
  const methods: { [m: string]: (...a: any[]) => unknown } = {
    register: (p: string, a: string, port: number, sig?: number) => sc.register(p, a, port, sig ?? undefined),
    unregister: (p: string) => sc.unregister(p),
    isRegistered: (p: string) => sc.isRegistered(p),
    get: (p: string) => sc.get(p),
    wake: (p: string) => sc.wake(p),
    wakeAll: () => sc.wakeAll(),
    rekey: (p: string) => sc.rekey(p),
    sendSignaling: (p: string, t: string) => sc.sendSignaling(p, t),
    list: (l: number, o: number) => sc.list(l, o),
    status: () => JSON.parse(JSON.stringify(sc.status())),
    metricsText: () => sc.metricsText(),
    hook: (msg: unknown) => {
      if (!hook) throw new Error('no worker hook loaded');
      return hook(msg);
    },
  };
  process.on('message', (m: any) => {
    if (!m || stopping) return;
    if (m.t === 'dgram') {
      sc.receiveKm(m.b as Uint8Array, { address: m.a, port: m.p });
    } else if (m.t === 'call') {
      const f = methods[m.method];
      Promise.resolve()
        .then(() => {
          if (!f) throw new Error(`unknown method ${m.method}`);
          return f(...(m.args as unknown[]));
        })
        .then(
          (value) => send({ t: 'reply', id: m.id, ok: true, value: value === undefined ? null : value }),
          (e: Error) => send({ t: 'reply', id: m.id, ok: false, error: e?.message ?? String(e) }),
        );
    } else if (m.t === 'close') void stop();
  });
  send({ t: 'ready', port: sc.address.port, sigPort: sc.signalingAddress.port, pid: process.pid });
}

if (process.env.CTA_SC_WORKER !== undefined && process.argv.includes('--sc-worker') && process.argv[1] && fileURLToPath(pathToFileURL(process.argv[1])) === SELF) {
  workerMain().catch((e) => {
    process.stderr.write(`sc worker: ${(e as Error).stack ?? e}\n`);
    process.exit(1);
  });
}
