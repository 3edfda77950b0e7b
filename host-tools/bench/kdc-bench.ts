// Embedded KDC vs MIT krb5kdc: AS exchanges/s with PA-ENC-TIMESTAMP sent in the first
// AS-REQ (the client knows the enctype), from the same load generator, on the same
// machine, in the same run, runs interleaved. Both KDCs pinned to CPU 0, the load
// generator to CPU 1 (when possible).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseKeytab } from '../../firmware/proto/keytab.ts';
import { startChild, canPin, which } from './proc.ts';
import { figure, type Figure } from './stats.ts';
import { REALM, SC_PRINCIPAL, toHex } from './fixtures.ts';

export type KdcBenchOptions = { runs: number; warmupMs: number; durationMs: number; lanes: number; clients: number; log: (s: string) => void };
export type KdcBenchResult = {
  etype: number;
  ours: Figure;
  mit: Figure | null;
  ratio: number | null;
  errors: { ours: number; mit: number };
  skipped: string | null;
};

const ETYPE = 18;

export async function runKdcBench(o: KdcBenchOptions): Promise<KdcBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cta-bench-kdc-'));
  const ours = startChild('kdc-child.ts', { cpu: 0 });
  const load = startChild('loadgen.ts', { cpu: 1 });
  let realm: { stop(): Promise<void>; kdcPort: number; kdcPid(): number | null; kadmin(q: string): Promise<string>; dir: string } | null = null;
  let skipped: string | null = null;
  try {
    const k = await ours.request<any>({ type: 'kdc', dir, clients: o.clients, etype: ETYPE }, 'kdc-ready', 120000);
    const server = SC_PRINCIPAL.split('@')[0].split('/');

    // MIT krb5kdc in a throwaway realm (test/helpers/mit.ts), when installed.
    let mitClients: { name: string[]; key: string; kvno: number }[] = [];
    if (!which('krb5kdc') || !which('kdb5_util') || !which('kadmin.local')) {
      skipped = 'MIT krb5kdc / kdb5_util / kadmin.local not installed (Debian: krb5-kdc, krb5-admin-server)';
    } else {
      const { startMitRealm } = await import('../../test/helpers/mit.ts');
      const names = Array.from({ length: o.clients }, (_, i) => `cta/k${i}.bench.test`);
      const r = await startMitRealm({
        realm: REALM,
        principals: [
          { name: SC_PRINCIPAL.split('@')[0], enctypes: [ETYPE] },
          ...names.map((name) => ({ name, enctypes: [ETYPE], options: '+requires_preauth' })),
        ],
        start: true,
      });
      realm = r;
      const kt = join(r.dir, 'clients.keytab');
      await r.kadmin(`ktadd -k ${kt} -norandkey ${names.map((n) => `${n}@${REALM}`).join(' ')}`);
      mitClients = parseKeytab(new Uint8Array(readFileSync(kt))).map((e) => ({ name: e.principal.components, key: toHex(e.key), kvno: e.kvno }));
      const pid = r.kdcPid();
      if (pid && canPin()) spawnSync('taskset', ['-a', '-cp', '0', String(pid)], { stdio: 'ignore' });
    }

    const oursRuns: number[] = [];
    const mitRuns: number[] = [];
    const errors = { ours: 0, mit: 0 };
    for (let run = 0; run < o.runs; run++) {
      await load.request({ type: 'init-as', host: '127.0.0.1', port: k.port, realm: REALM, server, etype: ETYPE, clients: k.clients, lanes: o.lanes }, 'as-ready');
      const a = await load.request<any>({ type: 'as-run', warmupMs: o.warmupMs, durationMs: o.durationMs }, 'as-result', o.durationMs + o.warmupMs + 30000);
      oursRuns.push(a.ok / (a.elapsedMs / 1000));
      errors.ours += a.err;
      if (realm) {
        await load.request({ type: 'init-as', host: '127.0.0.1', port: realm.kdcPort, realm: REALM, server, etype: ETYPE, clients: mitClients, lanes: o.lanes }, 'as-ready');
        const m = await load.request<any>({ type: 'as-run', warmupMs: o.warmupMs, durationMs: o.durationMs }, 'as-result', o.durationMs + o.warmupMs + 30000);
        mitRuns.push(m.ok / (m.elapsedMs / 1000));
        errors.mit += m.err;
      }
      o.log(`kdc: run ${run + 1}/${o.runs}: ours ${Math.round(oursRuns[run])}/s${realm ? `, MIT ${Math.round(mitRuns[run])}/s` : ''}`);
    }
    const fo = figure(oursRuns);
    const fm = realm ? figure(mitRuns) : null;
    return { etype: ETYPE, ours: fo, mit: fm, ratio: fm ? fo.median / fm.median : null, errors, skipped };
  } finally {
    await Promise.all([ours.stop(), load.stop()]);
    if (realm) await realm.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
