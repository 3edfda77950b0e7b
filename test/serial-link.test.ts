// The serial link end to end over REAL pseudo-terminals (socat): the real firmware
// bundle in the emulator with Serial1 on one PTY, the SC (cta sc --serial's code
// path) on the other, our KDC reached through the host's channel-2 relay. A full
// exchange at 115200 baud ends with the SA established on both sides; then again
// through a relay that injects line noise and flips bits: corrupted frames are
// dropped and counted on both ends and the exchange still completes. Channel 0
// reads status and process.memory() back from the board.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import { needTool } from './helpers/tools.ts';
import { socatPair, kdcWorld, waitFor, serialCtaConfig, type PtyPair, type KdcWorld } from './helpers/cta-world.ts';
import { buildFirmware } from '../host-tools/build/build.ts';
import { loadBoard } from '../host-tools/build/boards.ts';
import { startEmulator, type Emulator } from '../host-tools/emulator/emulator.ts';
import { startSc, type ScServer } from '../host-tools/sc/server.ts';
import { attachSerialCta, type SerialCta } from '../host-tools/serial/attach.ts';
import { parseSerialSpec } from '../host-tools/serial/link.ts';
import { UsageError } from '../host-tools/args.ts';
import { counterNameLists } from '../host-tools/build/text.ts';
import { C_SESSIONS_ESTABLISHED, N_COUNTERS } from '../firmware/agent/counters.ts';

type Ctx = { after: (fn: () => unknown) => void };

const bundlePaths: { [board: string]: string } = {};
async function bundle(board = 'emulator'): Promise<string> {
  if (bundlePaths[board]) return bundlePaths[board];
  const out = mkdtempSync(join(tmpdir(), 'cta-serial-fw-'));
  process.on('exit', () => rmSync(out, { recursive: true, force: true }));
  const r = await buildFirmware({ board, outDir: out });
  assert.deepEqual(r.violations, []);
  // The image, as the board stores it (pretokenised), with its dictionary beside it.
  bundlePaths[board] = r.imagePath;
  return r.imagePath;
}

/** KDC + SC + an emulated serial CTA whose Serial1 is `ctaPty`, the SC attached on `scPty`. */
async function serialWorld(t: Ctx, ctaPty: string, scPty: string, board = 'emulator') {
  const dir = mkdtempSync(join(tmpdir(), 'cta-serial-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const w: KdcWorld = await kdcWorld(dir);
  t.after(() => w.close());
  const sc: ScServer = await startSc({
    principal: w.scPrincipal,
    keytab: w.scKeytab,
    listen: { host: '127.0.0.1', port: 0 },
    statePath: ':memory:',
    control: null,
    wakeOnStart: false,
    timers: { wakeRetryMs: 1500, wakeRetries: 4, nonceLifetimeMs: 6000 },
  });
  t.after(() => sc.close());
  const cfg = serialCtaConfig(w, { retransmitMs: [400, 800], abortMs: 1600, kdcTimeoutMs: 400, kdcRetries: 4 });
  const emu: Emulator = await startEmulator({ board, bundlePath: await bundle(board), storageDir: join(dir, 'storage'), files: { 'cta.cfg': cfg }, serialPath: ctaPty });
  t.after(() => emu.stop());
  assert.ok(emu.global.cta, `agent did not start: ${emu.global.ctaError} ${emu.logs.join(' | ')}`);
  assert.equal(emu.global.cta.status().transport, 'serial');
  const events: string[] = [];
  const cta: SerialCta = await attachSerialCta(sc, `${scPty}:${loadBoard(board).serial.baud ?? 115200}`, {
    kdc: { host: '127.0.0.1', port: w.kdc.udpPort },
    log: (ev) => events.push(ev),
  });
  t.after(() => cta.close());
  return { w, sc, emu, cta, events };
}

async function established(sc: ScServer, emu: Emulator, principal: string): Promise<void> {
  await waitFor(() => sc.hasSa(principal) && emu.global.cta.status().scs[0].state === 'established', 'the SA on both ends', 20000);
  const st = emu.global.cta.status().scs[0];
  const keys = sc.saKeys(principal);
  assert.ok(keys && st.sa);
  assert.equal(st.sa.ctaSpi, keys.ctaSpi);
  assert.equal(st.sa.scSpi, keys.scSpi);
}

test('--serial spec parsing: path, optional baud, one-line errors', () => {
  assert.deepEqual(parseSerialSpec('/dev/ttyACM0'), { path: '/dev/ttyACM0', baud: 115200 });
  assert.deepEqual(parseSerialSpec('/dev/pts/7:9600'), { path: '/dev/pts/7', baud: 9600 });
  assert.throws(() => parseSerialSpec('/dev/ttyACM0:1234'), UsageError);
  assert.throws(() => parseSerialSpec('ttyACM0'), UsageError);
});

test('serial link over a PTY pair: full exchange at 115200 with the KDC relayed on channel 2, control channel 0', async (t) => {
  const socat = needTool(t, 'socat');
  if (!socat) return;
  const pty: PtyPair = await socatPair(socat);
  t.after(() => pty.close());
  const { w, sc, emu, cta } = await serialWorld(t, pty.a, pty.b);
  assert.equal(cta.principal, w.ctaPrincipal, 'principal learnt over channel 0');
  assert.equal(cta.link.baud, 115200);
  await established(sc, emu, w.ctaPrincipal);
  const c = emu.global.cta.counters;
  assert.equal(c.sessionsEstablished, 1);
  assert.ok(c.asExchanges >= 1 && cta.relay.stats.toKdc >= 2 && cta.relay.stats.fromKdc >= 2, JSON.stringify(cta.relay.stats));

  // Protected signaling over the SA, on channel 3.
  const resp = await sc.sendSignaling(w.ctaPrincipal, 'RQNT 4711 aaln/1@cta1 MGCP 1.0 NCS 1.0\r\nX: 1\r\n', 5000);
  assert.match(resp, /^200 4711 /);

  // Control channel: status and the board's memory, read back from the emulated board.
  const st = await cta.control.status();
  assert.equal(st.configured, true);
  assert.equal(st.agent.principal, w.ctaPrincipal);
  assert.equal(st.agent.scs[0].state, 'established');
  const board = loadBoard('emulator');
  assert.equal(st.memory.total, board.variables);
  assert.ok(st.memory.usage > 0 && st.memory.free === st.memory.total - st.memory.usage, JSON.stringify(st.memory));
  const m = await cta.control.metrics();
  assert.equal(m.counters.sessionsEstablished, 1);
  assert.ok(m.link.frames >= 6, JSON.stringify(m.link));
  assert.equal(m.link.badCrc + m.link.badCbor, 0);
  assert.equal(m.memory.total, board.variables);
  const hs = cta.link.stats();
  assert.equal(hs.badCrc + hs.badCbor + hs.runt + hs.badEscape + hs.oversized, 0);
  // set-time: the agent's clock offset follows the host.
  const off = await cta.control.setTime(Date.now() + 60000);
  assert.equal(off.clock, 'agent');
  assert.ok(Math.abs(off.offsetMs - 60000) < 5000, String(off.offsetMs));
  assert.ok(Math.abs(emu.global.cta.offsetMs - 60000) < 5000);
  // An unknown op and a bad provision are refused with a reason, the board keeps working.
  await assert.rejects(cta.control.request('format-flash'), /unknown op/);
  // The board names the failed check by number; the host client adds its sentence.
  await assert.rejects(cta.control.provision(new Uint8Array([0xa0])), /bad configuration: cfg#1 \(the file is damaged or incomplete/);
  assert.equal(emu.global.cta.counters.drops.internal, 0);
});

test('Puck.js image over a PTY at 9600 baud: counters leave the board as numbers, the host names them again', async (t) => {
  const socat = needTool(t, 'socat');
  if (!socat) return;
  const pty: PtyPair = await socatPair(socat);
  t.after(() => pty.close());
  const { w, sc, emu, cta } = await serialWorld(t, pty.a, pty.b, 'puckjs');
  assert.equal(loadBoard('puckjs').features.counterNames, false);
  assert.equal(cta.link.baud, 9600);
  await waitFor(() => sc.hasSa(w.ctaPrincipal) && emu.global.cta.status().scs[0].state === 'established', 'the SA on both ends', 30000);
  // On the board: one list of numbers, counters (C_ order) then drop reasons (D_ order).
  const raw = emu.global.cta.counters;
  assert.ok(Array.isArray(raw), `board counters: ${JSON.stringify(raw)}`);
  assert.equal(raw.length, N_COUNTERS + counterNameLists().drops.length);
  assert.equal(raw[C_SESSIONS_ESTABLISHED], 1);
  // Over the control channel the host client names them (status and metrics alike).
  const m = await cta.control.metrics();
  assert.equal(m.counters.sessionsEstablished, 1);
  assert.ok(m.counters.asExchanges >= 1, JSON.stringify(m.counters));
  assert.equal(m.counters.drops.internal, 0);
  const st = await cta.control.status();
  assert.equal(st.agent.counters.sessionsEstablished, 1);
  assert.equal(st.agent.scs[0].state, 'established');
});

/** Forwards bytes between two ports frame by frame (split at SLIP END), with noise between frames and bit flips in chosen frames. */
function noisyRelay(x: SerialPort, y: SerialPort, flip: Set<number>) {
  const stats = { frames: 0, flipped: 0, noiseBytes: 0 };
  let seed = 0x1234567;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) / 4294967296;
  };
  const pipe = (from: SerialPort, to: SerialPort) => {
    let cur: number[] = [];
    let n = 0;
    from.on('data', (chunk: Buffer) => {
      for (const b of chunk) {
        cur.push(b);
        if (b !== 0xc0 || cur.length < 3) {
          if (b === 0xc0 && cur.length < 3) {
            to.write(Buffer.from(cur));
            cur = [];
          }
          continue;
        }
        // End of a frame: maybe corrupt it, then noise before the next one.
        n++;
        stats.frames++;
        const f = Buffer.from(cur);
        cur = [];
        if (flip.has(n)) {
          const i = 1 + Math.floor(rnd() * (f.length - 2));
          if (f[i] !== 0xc0 && f[i] !== 0xdb) {
            f[i] ^= 1 << Math.floor(rnd() * 8);
            if (f[i] === 0xc0 || f[i] === 0xdb) f[i] ^= 0x01;
            stats.flipped++;
          }
        }
        to.write(f);
        const noise = Buffer.alloc(5 + Math.floor(rnd() * 40));
        for (let k = 0; k < noise.length; k++) noise[k] = Math.floor(rnd() * 256);
        noise[noise.length >> 1] = 0xc0; // a fake frame boundary inside the noise
        stats.noiseBytes += noise.length;
        noise[noise.length - 1] = 0; // never ESC right before the next frame's END
        to.write(noise);
      }
    });
  };
  pipe(x, y);
  pipe(y, x);
  return stats;
}

function openPort(path: string): Promise<SerialPort> {
  return new Promise((res, rej) => {
    const p = new SerialPort({ path, baudRate: 115200, autoOpen: false });
    p.open((e) => (e ? rej(e) : res(p)));
  });
}

test('serial link with line noise and flipped bits: bad frames dropped and counted on both ends, the exchange completes', async (t) => {
  const socat = needTool(t, 'socat');
  if (!socat) return;
  const p1 = await socatPair(socat);
  t.after(() => p1.close());
  const p2 = await socatPair(socat);
  t.after(() => p2.close());
  const r1 = await openPort(p1.b);
  const r2 = await openPort(p2.b);
  t.after(() => new Promise<void>((res) => r1.close(() => res())));
  t.after(() => new Promise<void>((res) => r2.close(() => res())));
  // Frames 2 and 5 in each direction are hit (control, KDC and key-management
  // frames, depending on timing): each message is lost at most once, and the
  // retransmission timers recover it.
  const relay = noisyRelay(r1, r2, new Set([2, 5]));
  const { w, sc, emu, cta, events } = await serialWorld(t, p1.a, p2.a);
  try {
    await established(sc, emu, w.ctaPrincipal);
  } catch (e) {
    console.log(JSON.stringify({ relay, events, cta: emu.global.cta.status(), link: emu.global.cta.transport.stats(), host: cta.link.stats(), sc: sc.stats(), kdc: cta.relay.stats, logs: emu.logs.slice(-20) }, null, 1));
    throw e;
  }
  assert.ok(relay.flipped >= 2, JSON.stringify(relay));
  assert.ok(relay.noiseBytes > 0);
  const board = emu.global.cta.transport.stats();
  const host = cta.link.stats();
  const boardDrops = board.badCrc + board.badCbor + board.runt + board.badEscape + board.oversized;
  const hostDrops = host.badCrc + host.badCbor + host.runt + host.badEscape + host.oversized;
  assert.ok(boardDrops >= 2, `board drops ${JSON.stringify(board)}`);
  assert.ok(hostDrops >= 2, `host drops ${JSON.stringify(host)}`);
  assert.ok(board.badCrc + host.badCrc >= relay.flipped, 'flipped bits show up as CRC failures');
  assert.equal(emu.global.cta.counters.drops.internal, 0);
  // After resynchronising, the control channel still answers and reports the board's drop counters.
  const m = await cta.control.requestRetry('metrics', {}, 5, 1000);
  assert.ok(m.link.badCrc >= board.badCrc);
});
