// AP-REQ verification: our SC's receive path vs MIT krb5_rd_req, on the same AP-REQs.
//
// Ours: the SC process's key-management socket handler called directly (sc-child.ts
// 'verify') with pktc AP Requests wrapping the AP-REQs. Each carries a nonce the SC never
// issued, so the SC runs the whole verification (ticket and authenticator decryption and
// checks, replay-cache lookup, pktc HMAC) and then disregards it as a false nonce before
// building an AP Reply; nothing enters the replay cache, so the set can be replayed, as
// MIT's loop does with its replay cache off.
// MIT: host-tools/bench/c/rd_req_bench.c, compiled now with cc + pkg-config krb5, MEMORY:
// keytab, KRB5RCACHETYPE=none. Both pinned to CPU 0; runs interleaved.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKeytab } from '../../firmware/proto/keytab.ts';
import { nodeBackend } from '../crypto/node.ts';
import { BENCH_DIR, canPin, startChild, which } from './proc.ts';
import { figure, type Figure } from './stats.ts';
import { summariseProfile, type Frame, type FileShare } from './profile.ts';
import { apReqDer, ctaPrincipal, mintTicket, newScKey, pktcApRequest, REALM, scEntry, toHex, ETYPE } from './fixtures.ts';

export type ApReqBenchOptions = { runs: number; durationMs: number; requests: number; profile: boolean; autoProfile: boolean; log: (s: string) => void };
export type ApReqBenchResult = {
  requests: number;
  etype: number;
  ours: Figure;
  mit: Figure | null;
  ratio: number | null;
  skipped: string | null;
  profile: { scenario: string; frames: Frame[]; files: FileShare[]; idlePct: number } | null;
};

function compile(dir: string): { bin: string | null; why: string | null } {
  if (!which('cc')) return { bin: null, why: 'no C compiler (cc)' };
  const pc = spawnSync('pkg-config', ['--cflags', '--libs', 'krb5'], { encoding: 'utf8' });
  if (pc.status !== 0) return { bin: null, why: 'pkg-config krb5 failed (Debian: libkrb5-dev)' };
  const bin = join(dir, 'rd_req_bench');
  const cc = spawnSync('cc', ['-O2', '-o', bin, join(BENCH_DIR, 'c', 'rd_req_bench.c'), ...pc.stdout.trim().split(/\s+/)], { encoding: 'utf8' });
  if (cc.status !== 0) return { bin: null, why: `cc failed: ${cc.stderr.trim().split('\n').slice(-3).join(' ')}` };
  return { bin, why: null };
}

export async function runApReqBench(o: ApReqBenchOptions): Promise<ApReqBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cta-bench-apreq-'));
  const child = startChild('sc-child.ts', { cpu: 0 });
  try {
    const scKey = newScKey(ETYPE);
    const now = Date.now();
    const ders: Uint8Array[] = [];
    const pktc: string[] = [];
    const clients: string[] = [];
    for (let i = 0; i < o.requests; i++) {
      const p = ctaPrincipal(i);
      const t = mintTicket(scKey, p, now, nodeBackend);
      const der = apReqDer(t, now, i % 1000000);
      ders.push(der);
      clients.push(p);
      // A nonce the SC never issued (never 0, which would be a client-initiated request).
      pktc.push(toHex(pktcApRequest(t, der, 0x40000000 + i, 0x1000 + i)));
    }
    const ktPath = join(dir, 'sc.keytab');
    writeFileSync(ktPath, encodeKeytab([scEntry(scKey)]));
    const recs = Buffer.concat(ders.flatMap((d) => [Buffer.from([d.length >>> 24, (d.length >>> 16) & 255, (d.length >>> 8) & 255, d.length & 255]), Buffer.from(d)]));
    const reqPath = join(dir, 'apreqs.bin');
    writeFileSync(reqPath, recs);
    const conf = join(dir, 'krb5.conf');
    writeFileSync(conf, `[libdefaults]\n  default_realm = ${REALM}\n  dns_lookup_kdc = false\n  dns_lookup_realm = false\n`);

    const c = compile(dir);
    const skipped = c.why;
    const env = { ...process.env, KRB5_CONFIG: conf, KRB5RCACHETYPE: 'none', KRB5_TRACE: '' };
    delete (env as { KRB5_TRACE?: string }).KRB5_TRACE;

    const ours: number[] = [];
    const mit: number[] = [];
    for (let r = 0; r < o.runs; r++) {
      const v = await child.request<any>({ type: 'verify', scKey: toHex(scKey), requests: pktc, clients, durationMs: o.durationMs }, 'verify-result', o.durationMs + 60000);
      if (v.other > 0) throw new Error(`the SC did not treat every AP Request as a verified false nonce (${v.other} other outcomes)`);
      ours.push(v.verified / (v.elapsedMs / 1000));
      if (c.bin) {
        const args = [c.bin, `FILE:${ktPath}`, reqPath, String(o.durationMs)];
        const pin = canPin();
        const m = spawnSync(pin ? 'taskset' : args[0], pin ? ['-c', '0', ...args] : args.slice(1), { env, encoding: 'utf8' });
        const mm = /ok count=(\d+) elapsed_ms=([\d.]+)/.exec(m.stdout);
        if (!mm) throw new Error(`rd_req_bench failed: ${(m.stdout + m.stderr).trim()}`);
        mit.push(Number(mm[1]) / (Number(mm[2]) / 1000));
      }
      o.log(`apreq: run ${r + 1}/${o.runs}: ours ${Math.round(ours[r])}/s${c.bin ? `, MIT rd_req ${Math.round(mit[r])}/s` : ''}`);
    }
    const fo = figure(ours);
    const fm = c.bin ? figure(mit) : null;
    const ratio = fm ? fo.median / fm.median : null;
    let profile: ApReqBenchResult['profile'] = null;
    if (o.profile || (ratio !== null && ratio < 0.5 && o.autoProfile)) {
      o.log('apreq: CPU profile of the SC verification path');
      const pdir = join(dir, 'prof');
      mkdirSync(pdir);
      await child.request<any>({ type: 'verify', scKey: toHex(scKey), requests: pktc, clients, durationMs: Math.max(o.durationMs, 2000), profileDir: pdir }, 'verify-result', 120000);
      const p = summariseProfile(pdir, 15);
      if (p) profile = { scenario: 'SC AP Request verification (direct calls)', frames: p.frames, files: p.files, idlePct: p.idlePct };
    }
    return { requests: o.requests, etype: ETYPE, ours: fo, mit: fm, ratio, skipped, profile };
  } finally {
    await child.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
