// The embedded KDC's UDP/TCP server: it answers on both, survives garbage and
// oversized input, bounds TCP, logs without key material, reports a busy port.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KdcDatabase } from '../host-tools/kdc/db.ts';
import { startKdc, KdcListenError, type KdcLogRecord } from '../host-tools/kdc/server.ts';
import { buildAsReq, paEncTimestamp, openAsRep, sendTcp, sendUdp } from '../host-tools/kdc/client.ts';
import { toHex } from '../firmware/proto/bytes.ts';
import { decodeKrbError, messageType, KRB_AS_REP, KRB_ERROR, KDC_ERR_PREAUTH_REQUIRED, KRB_ERR_FIELD_TOOLONG, KRB_ERR_GENERIC } from '../firmware/proto/krb5.ts';

const REALM = 'EXAMPLE.NET';
let dir: string;
let db: KdcDatabase;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kdc-srv-'));
  db = KdcDatabase.init(join(dir, 'kdc.db'), REALM);
  db.addPrincipal('cta/cta1.example.net', { enctypes: [18, 17] });
  db.addPrincipal('sc/sc1.example.net', { enctypes: [18] });
});
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function request(preauth: boolean): Uint8Array {
  const k = db.getKeys('cta/cta1.example.net')!.keys[0];
  return buildAsReq({
    client: ['cta', 'cta1.example.net'],
    server: ['sc', 'sc1.example.net'],
    realm: REALM,
    etypes: [18, 17],
    nonce: 4242,
    padata: preauth ? [paEncTimestamp(k.etype, k.key, k.kvno, Date.now())] : undefined,
  });
}

function clientKey(): Uint8Array {
  return db.getKeys('cta/cta1.example.net')!.keys[0].key;
}

test('UDP and TCP on the same port both answer the AS exchange', async (t) => {
  const logs: KdcLogRecord[] = [];
  const kdc = await startKdc({ db, host: '127.0.0.1', port: 0, log: (r) => logs.push(r) });
  t.after(() => kdc.close());
  assert.ok(kdc.udpPort > 0);
  assert.equal(kdc.tcpPort, kdc.udpPort);
  for (const send of [sendUdp, sendTcp]) {
    const e = decodeKrbError(await send('127.0.0.1', kdc.udpPort, request(false)));
    assert.equal(e.errorCode, KDC_ERR_PREAUTH_REQUIRED);
    const rep = await send('127.0.0.1', kdc.tcpPort, request(true));
    assert.equal(messageType(rep), KRB_AS_REP);
    assert.equal(openAsRep(rep, clientKey()).enc.nonce, 4242);
  }
  const s = kdc.stats();
  assert.equal(s.udpRequests, 2);
  assert.equal(s.tcpRequests, 2);
  assert.equal(s.issued, 2);
  assert.equal(s.errors[KDC_ERR_PREAUTH_REQUIRED], 2);
  // Log lines are JSON-serialisable and carry no key material.
  const text = logs.map((r) => JSON.stringify(r)).join('\n');
  assert.ok(logs.some((r) => r.ev === 'as_rep' && r.client === 'cta/cta1.example.net@EXAMPLE.NET' && r.etype === 18));
  for (const name of ['cta/cta1.example.net', 'sc/sc1.example.net', `krbtgt/${REALM}`]) {
    for (const k of db.getKeys(name)!.keys) {
      assert.ok(!text.includes(toHex(k.key)), 'hex key in log');
      assert.ok(!text.includes(Buffer.from(k.key).toString('base64')), 'base64 key in log');
    }
  }
});

test('garbage and oversized datagrams do not crash the server; it keeps serving', async (t) => {
  const kdc = await startKdc({ db, port: 0 });
  t.after(() => kdc.close());
  const sock = dgram.createSocket('udp4');
  t.after(() => sock.close());
  const replies: Buffer[] = [];
  sock.on('message', (m) => replies.push(m));
  const junk = [
    Buffer.from('hello'),
    Buffer.alloc(0),
    Buffer.from([0x6a, 0x82, 0xff, 0xff, 0x30]), // AS-REQ tag, absurd length
    Buffer.from([0x6a, 0x03, 0x30, 0x01, 0x00]),
    Buffer.alloc(60000, 0x6a), // large
    Buffer.from([0x6c, 0x00]), // TGS-REQ tag, empty
  ];
  for (const j of junk) sock.send(j, kdc.udpPort, '127.0.0.1');
  // Still serving, over both transports.
  assert.equal(messageType(await sendUdp('127.0.0.1', kdc.udpPort, request(true))), KRB_AS_REP);
  assert.equal(messageType(await sendTcp('127.0.0.1', kdc.tcpPort, request(true))), KRB_AS_REP);
  for (const r of replies) {
    assert.equal(messageType(new Uint8Array(r)), KRB_ERROR);
    assert.ok(r.length < 200, 'error replies are small');
  }
  assert.ok(kdc.stats().udpRequests >= junk.length);
});

test('TCP: oversized or high-bit lengths get KRB_ERR_FIELD_TOOLONG and a close; truncated records do not block others', async (t) => {
  const kdc = await startKdc({ db, port: 0, maxMessage: 4096 });
  t.after(() => kdc.close());
  for (const len of [0x00100000, 0x80000010, 4097]) {
    const s = net.connect(kdc.tcpPort, '127.0.0.1');
    const hdr = Buffer.alloc(4);
    hdr.writeUInt32BE(len >>> 0, 0);
    s.write(hdr);
    let buf = Buffer.alloc(0);
    s.on('data', (d) => (buf = Buffer.concat([buf, d])));
    await once(s, 'close');
    assert.equal(buf.readUInt32BE(0), buf.length - 4);
    assert.equal(decodeKrbError(new Uint8Array(buf.subarray(4))).errorCode, KRB_ERR_FIELD_TOOLONG);
  }
  // A half-sent record leaves the server free for other clients.
  const half = net.connect(kdc.tcpPort, '127.0.0.1');
  t.after(() => half.destroy());
  await once(half, 'connect');
  half.write(Buffer.from([0, 0, 1, 0, 0x6a, 0x82]));
  assert.equal(messageType(await sendTcp('127.0.0.1', kdc.tcpPort, request(true))), KRB_AS_REP);
  // Garbage inside a well-framed record gets KRB_ERR_GENERIC or nothing, never a crash.
  const g = new Uint8Array(300).fill(0x6a);
  const r = await sendTcp('127.0.0.1', kdc.tcpPort, g).catch(() => null);
  if (r) assert.equal(decodeKrbError(r).errorCode, KRB_ERR_GENERIC);
  assert.equal(messageType(await sendTcp('127.0.0.1', kdc.tcpPort, request(true))), KRB_AS_REP);
});

test('TCP: idle connections are closed; a connection beyond the cap closes the oldest (as MIT krb5kdc)', async (t) => {
  const kdc = await startKdc({ db, port: 0, idleMs: 150, maxConnections: 2 });
  t.after(() => kdc.close());
  const a = net.connect(kdc.tcpPort, '127.0.0.1');
  t.after(() => a.destroy());
  await once(a, 'connect');
  while (kdc.stats().tcpOpen < 1) await new Promise((r) => setTimeout(r, 10));
  const b = net.connect(kdc.tcpPort, '127.0.0.1');
  t.after(() => b.destroy());
  await once(b, 'connect');
  // Wait until the server has counted both, then a third closes the oldest (a).
  while (kdc.stats().tcpOpen < 2) await new Promise((r) => setTimeout(r, 10));
  const aClosed = once(a, 'close');
  const c = net.connect(kdc.tcpPort, '127.0.0.1');
  c.on('error', () => {});
  t.after(() => c.destroy());
  await aClosed;
  assert.ok(kdc.stats().tcpEvicted >= 1);
  // The idle ones are closed by the server on its own.
  await Promise.all([once(b, 'close'), once(c, 'close')]);
  assert.ok(kdc.stats().tcpTimeouts >= 2);
  // And it serves again afterwards.
  assert.equal(messageType(await sendTcp('127.0.0.1', kdc.tcpPort, request(true))), KRB_AS_REP);
});

// Issue 13 item 8: 64 idle connections (the old cap) no longer deny the TCP path.
test('TCP: 64 idle connections from one address do not lock out a client; per-address cap, short idle timeout (defaults)', async (t) => {
  const kdc = await startKdc({ db, port: 0 });
  t.after(() => kdc.close());
  const idle: net.Socket[] = [];
  t.after(() => idle.forEach((s) => s.destroy()));
  for (let i = 0; i < 64; i++) {
    const s = net.connect(kdc.tcpPort, '127.0.0.1');
    s.on('error', () => {});
    idle.push(s);
    await once(s, 'connect');
  }
  await new Promise((r) => setTimeout(r, 100));
  assert.ok(kdc.stats().tcpOpen <= 8, `open from one address: ${kdc.stats().tcpOpen}`);
  // A real client (here from the same address: a shared host) is answered at once.
  const t0 = Date.now();
  assert.equal(messageType(await sendTcp('127.0.0.1', kdc.tcpPort, request(true))), KRB_AS_REP);
  assert.ok(Date.now() - t0 < 2000);
  // The idle ones are gone within the idle timeout (3 s), not 10 s.
  const t1 = Date.now();
  while (kdc.stats().tcpOpen > 0 && Date.now() - t1 < 6000) await new Promise((r) => setTimeout(r, 50));
  assert.equal(kdc.stats().tcpOpen, 0);
  assert.ok(Date.now() - t1 < 4500, `idle connections closed after ${Date.now() - t1} ms`);
});

test('a port in use is a clear KdcListenError; close() is idempotent', async () => {
  const kdc = await startKdc({ db, port: 0 });
  await assert.rejects(startKdc({ db, port: kdc.udpPort }), (e: unknown) => e instanceof KdcListenError && e.code === 'EADDRINUSE' && /already in use/.test(e.message));
  await kdc.close();
  await kdc.close();
});
