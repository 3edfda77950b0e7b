// The AGENT bundle on a real Espruino interpreter (the Linux build, from ESPRUINO_BIN)
// completes key exchanges with the test-side KDC and SC over loopback UDP, and
// reports its footprint there: JS variables (process.memory().usage) at idle and at
// the peak sampled inside the exchange, and the interpreter time the CTA spends per
// exchange. Run:  ESPRUINO_BIN=/path/to/espruino npm test -- espruino-bin
//
// The measuring prelude (test-only, prepended to the bundle) wraps the interpreter's
// own dgram and crypto modules: every received datagram's handler is timed with
// getTime(), and process.memory() (which garbage-collects first, so it counts live
// variables) is sampled on entry/exit of each handler, on every send and inside every
// native crypto call -- i.e. deep inside the exchange, while its temporaries are alive.
// The bundle runs twice: with its code in RAM (the file given to the interpreter) and
// with its code in the interpreter's Storage ("flash"; `eval` of the Storage file).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFirmware } from '../host-tools/build/build.ts';
import { makeConfig } from '../host-tools/provision/cli.ts';
import { CTA_PRINCIPAL, SC_PRINCIPAL } from './helpers/mini-sc.ts';
import { loopbackMiniWorld } from './helpers/loopback-net.ts';
import { ESPRUINO_BIN as BIN, skipUnlessBin, codeInRamSkipReason } from './helpers/espruino-bin.ts';

/** Two free UDP ports on 127.0.0.1 (bound, read, released). */
async function freePorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from({ length: n }, () => new Promise<dgram.Socket>((res) => {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => res(s));
    })),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((res) => s.close(() => res()))));
  return ports;
}

// Test-only measuring prelude, in the Espruino subset (ES5 style, no bundle needed).
const PRELUDE = `
var FP={peak:0,samples:0,busyMs:0,sampleMs:0,msgs:0,maxMsgMs:0,cryptoCalls:0,cryptoMs:0};
function fpC(f,a,b,c){fpS();var t=getTime();var r=f(a,b,c);FP.cryptoMs+=(getTime()-t)*1000;FP.cryptoCalls++;return r;}
function fpS(){var t=getTime();var u=process.memory().usage;if(u>FP.peak)FP.peak=u;FP.samples++;FP.sampleMs+=(getTime()-t)*1000;}
var FP_REQ=require;
global.require=function(n){
  var m=FP_REQ(n);
  if(n==="dgram")return {createSocket:function(o){var s=m.createSocket(o);return {
    on:function(ev,fn){s.on(ev,function(msg,ri){var s0=FP.sampleMs;var t=getTime();fpS();fn(msg,ri);fpS();var d=(getTime()-t)*1000-(FP.sampleMs-s0);FP.busyMs+=d;FP.msgs++;if(d>FP.maxMsgMs)FP.maxMsgMs=d;});},
    bind:function(p){return s.bind(p);},
    send:function(a,p,h){fpS();return s.send(a,p,h);},
    close:function(){return s.close();}};}};
  if(n==="crypto"){var w={SHA1:function(d){return fpC(m.SHA1,d);}};
    if(m.SHA256)w.SHA256=function(d){return fpC(m.SHA256,d);};
    if(m.SHA384)w.SHA384=function(d){return fpC(m.SHA384,d);};
    if(m.AES)w.AES={encrypt:function(d,k,o){return fpC(m.AES.encrypt,d,k,o);},decrypt:function(d,k,o){return fpC(m.AES.decrypt,d,k,o);}};
    return w;}
  return m;
};
`;

class Interp {
  child: ChildProcessWithoutNullStreams;
  out = '';
  constructor(args: string[], cwd: string) {
    this.child = spawn(BIN as string, args, { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const on = (d: Buffer) => (this.out += d.toString('latin1'));
    this.child.stdout.on('data', on);
    this.child.stderr.on('data', on);
  }
  async waitFor(re: RegExp, ms: number, from = 0): Promise<RegExpExecArray> {
    const end = Date.now() + ms;
    for (;;) {
      const m = re.exec(this.out.slice(from));
      if (m) return m;
      if (Date.now() > end || this.child.exitCode !== null) throw new Error(`interpreter: no ${re} within ${ms} ms; output:\n${this.out.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  /** Evaluates `expr` on the console and returns its JSON value. */
  async query(expr: string): Promise<any> {
    const tag = 'Q' + Math.random().toString(36).slice(2, 8);
    const from = this.out.length;
    // The tag is split in the command so that the console's echo of it does not match.
    this.child.stdin.write(`print("<${tag}"+">"+JSON.stringify(${expr})+"</${tag}"+">")\n`);
    const m = await this.waitFor(new RegExp(`<${tag}>(.*?)</${tag}>`), 10000, from);
    return JSON.parse(m[1]);
  }
  stop(): void {
    this.child.kill('SIGKILL');
  }
}

async function until(fn: () => boolean | Promise<boolean>, what: string, ms = 20000, pollMs = 50): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** CPU time (ns) the process has run so far (Linux). */
function cpuNs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/schedstat`, 'latin1').split(' ')[0]);
}
/** The interpreter's own idle CPU (its event loop), measured at about 1.3 ms/s; subtracted. */
const IDLE_CPU_MS_PER_S = 1.3;

type Figures = { mode: string; idleBoot: number; idleAfter: number; peak: number; msFirst: number; msRekey: number; msWake: number; cpuFirst: number; cpuRekey: number; cpuWake: number; maxMsgMs: number; cryptoCalls: number; cryptoMs: number };

async function exchangeOn(mode: 'ram' | 'flash', sample: boolean, bundle: string, dir: string): Promise<Figures> {
  const { kdc, sc, net, clock, keytab, kdcSock, scSock } = await loopbackMiniWorld();
  const [listenPort, signalingPort] = await freePorts(2);
  const cfg = makeConfig({
    keytab,
    principal: CTA_PRINCIPAL,
    scs: [{ principal: SC_PRINCIPAL, address: '127.0.0.1', port: scSock.port }],
    kdc: { address: '127.0.0.1', port: kdcSock.port },
    listenPort,
    signalingPort,
  });
  const wd = mkdtempSync(join(dir, mode + '-'));
  const writeCfg = `require("Storage").write("cta.cfg",atob(${JSON.stringify(Buffer.from(cfg).toString('base64'))}));\n`;
  let file: string;
  if (mode === 'ram') {
    file = PRELUDE + writeCfg + bundle;
  } else {
    // Put the bundle in Storage first (a separate run), then eval it from there.
    const put = join(wd, 'put.js');
    writeFileSync(put, `require("Storage").write("cta.js",atob(${JSON.stringify(Buffer.from(bundle).toString('base64'))}));print("STORED");\n`);
    const p = new Interp([put], wd);
    try {
      await p.waitFor(/STORED/, 20000);
    } finally {
      p.stop();
    }
    // The Linux build sizes its variable store to what parsing the program needed and
    // does not grow it for native crypto results in the event loop: with the code in
    // Storage the store would stay at 4,096, and an exchange that peaks near it fails
    // with "Not enough memory for result". Grow it once (the garbage is freed at once;
    // the figures count used variables, not the store's size).
    file = PRELUDE + writeCfg + '(function(){var a=[];for(var i=0;i<6000;i++)a.push(i);})();\n' + 'eval(require("Storage").read("cta.js"));\n';
  }
  writeFileSync(join(wd, 'run.js'), file);
  const it = new Interp(['run.js'], wd);
  try {
    await it.waitFor(/\n>/, 20000);
    await until(async () => (await it.query('global.cta?1:0')) === 1, 'global.cta');
    const idleBoot = (await it.query('process.memory().usage')) as number;
    const ports = [listenPort, signalingPort];
    sc.ctaAddress = '127.0.0.1';
    sc.ctaPort = ports[0];
    sc.ctaSigPort = ports[1];
    // Memory sampling (a GC per sample) or CPU timing, not both in one run.
    await it.query(`FP.peak=0,FP.busyMs=0,FP.maxMsgMs=0,(global.FPOFF=${sample ? 0 : 1})`);
    const established = async (n: number) => sc.saRecovered >= n && (await it.query('global.cta.counters.sessionsEstablished')) >= n;
    // 1: Wake Up -> AS exchange (PREAUTH_REQUIRED, AS-REP) -> AP Request -> AP Reply -> SA Recovered.
    let c0 = cpuNs(it.child.pid!);
    let t0 = Date.now();
    sc.wakeUp();
    await until(() => sc.saRecovered >= 1, 'first exchange', 20000, 2);
    const cpuFirst = (cpuNs(it.child.pid!) - c0) / 1e6 - IDLE_CPU_MS_PER_S * ((Date.now() - t0) / 1000);
    await until(() => established(1), 'first exchange');
    const first = await it.query('FP');
    assert.equal(kdc.issued, 1);
    assert.equal(await it.query('global.cta.status().scs[0].sa.scSpi'), sc.session!.scSpi);
    // 2: Rekey, answered from the cached ticket.
    await it.query('FP.busyMs=0');
    c0 = cpuNs(it.child.pid!);
    t0 = Date.now();
    sc.rekey();
    await until(() => sc.saRecovered >= 2, 'rekey exchange', 20000, 2);
    const cpuRekey = (cpuNs(it.child.pid!) - c0) / 1e6 - IDLE_CPU_MS_PER_S * ((Date.now() - t0) / 1000);
    await until(() => established(2), 'rekey exchange');
    const rekey = await it.query('FP');
    // 3..: Wake Ups with the ticket cached, memory sampling off: the interpreter's CPU
    // time per exchange (/proc/<pid>/schedstat, immune to a busy machine's wall clock).
    await it.query('FP.busyMs=0,FP.cryptoCalls=0,FP.cryptoMs=0');
    const cpu: number[] = [];
    const N = 3;
    for (let i = 0; i < N; i++) {
      // The agent answers at most 4 triggers per SC per second (the rest are dropped as
      // rate_limited, and this mock SC does not retry as a real one does): pace them.
      await new Promise((r) => setTimeout(r, 300));
      c0 = cpuNs(it.child.pid!);
      t0 = Date.now();
      sc.wakeUp();
      await until(() => sc.saRecovered >= 3 + i, 'wake-up exchange ' + (i + 2), 20000, 2);
      cpu.push((cpuNs(it.child.pid!) - c0) / 1e6 - IDLE_CPU_MS_PER_S * ((Date.now() - t0) / 1000));
    }
    await until(() => established(2 + N), 'all exchanges counted');
    const wake = await it.query('FP');
    assert.equal(kdc.requests, 2, 'one AS exchange (two KDC requests) for every key exchange');
    sc.signal('RQNT', '4711');
    await until(() => sc.signalingIn.length === 1, 'signaling answer');
    assert.equal(sc.signalingIn[0], '200 4711 OK\r\n');
    assert.equal(await it.query('global.cta.counters.drops.internal||0'), 0);
    const idleAfter = (await it.query('process.memory().usage')) as number;
    assert.doesNotMatch(it.out, /Uncaught|SyntaxError/, it.out.slice(-2000));
    cpu.sort((x, y) => x - y);
    return {
      mode,
      idleBoot,
      idleAfter,
      peak: Math.max(first.peak, rekey.peak),
      msFirst: first.busyMs,
      msRekey: rekey.busyMs,
      msWake: wake.busyMs / N,
      cpuFirst,
      cpuRekey,
      cpuWake: cpu[N >> 1],
      maxMsgMs: wake.maxMsgMs,
      cryptoCalls: wake.cryptoCalls / N,
      cryptoMs: wake.cryptoMs / N,
    };
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- interpreter output (${mode}) ---\n${it.out.slice(-3000)}`);
  } finally {
    it.stop();
    net.close();
  }
}

test('the agent bundle on the real Espruino interpreter: Wake Up/AS/AP/SA, Rekey, Wake Up, signaling over loopback; footprint', async (t) => {
  if (skipUnlessBin(t)) return;
  const dir = mkdtempSync(join(tmpdir(), 'cta-espruino-x-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await buildFirmware({ board: 'linux', outDir: dir });
  assert.deepEqual(r.violations, []);
  const bundle = readFileSync(r.path, 'latin1');
  let ram: Awaited<ReturnType<typeof exchangeOn>>;
  let ramMem: Awaited<ReturnType<typeof exchangeOn>>;
  try {
    ram = await exchangeOn('ram', false, bundle, dir);
    ramMem = await exchangeOn('ram', true, bundle, dir);
  } catch (e) {
    const skip = codeInRamSkipReason(String(e));
    if (!skip) throw e;
    console.log(`# skipped: ${skip}`);
    t.skip(skip);
    return;
  }
  const flashMem = await exchangeOn('flash', true, bundle, dir);
  const lines = [
    `bundle ${r.bytes} B (linux board)`,
    `variables, code in RAM: idle ${ramMem.idleBoot} after boot, ${ramMem.idleAfter} after exchanges, peak ${ramMem.peak} during an exchange`,
    `variables, code in Storage (eval from flash): idle ${flashMem.idleBoot} after boot, ${flashMem.idleAfter} after exchanges, peak ${flashMem.peak}`,
    `CTA interpreter CPU ms (x86, code in RAM): first exchange incl. AS ${ram.cpuFirst.toFixed(1)}, rekey ${ram.cpuRekey.toFixed(1)}, wake-up with cached ticket ${ram.cpuWake.toFixed(1)} (median of 3; ${ram.cryptoCalls} native crypto calls, ${ram.cryptoMs.toFixed(1)} ms in them); handler wall ms ${ram.msFirst.toFixed(1)} / ${ram.msRekey.toFixed(1)} / ${ram.msWake.toFixed(1)}`,
  ];
  for (const line of lines) {
    console.log('# espruino: ' + line);
    t.diagnostic(line);
  }
  assert.ok(ramMem.peak >= ramMem.idleBoot && flashMem.peak >= flashMem.idleBoot, 'the peak is sampled during the exchange');
  assert.ok(flashMem.idleBoot < ramMem.idleBoot, 'code in Storage costs fewer variables than code in RAM');
});
