// CTA agent over the serial transport: key management on channel 1, KDC on
// channel 2 (relayed by the host), signaling on channel 3, SLIP+CBOR+CRC frames.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeClock, FakeNet, FakeSerialPair, makeFakePlatform } from './helpers/fake-platform.ts';
import { MiniKdc, MiniSc, REALM, CTA_PRINCIPAL, SC_PRINCIPAL } from './helpers/mini-sc.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';
import { randomKey } from '../firmware/proto/crypto/index.ts';
import { configFromObject } from '../host-tools/provision/config.ts';
import { CtaAgent } from '../firmware/agent/agent.ts';
import { encodeFrame, FrameDecoder } from '../firmware/proto/serial-frame.ts';

function serialWorld() {
  const b = nobleBackend;
  const clock = new FakeClock();
  const net = new FakeNet();
  const ctaKey = randomKey(b, 18);
  const scKey = { etype: 18, key: randomKey(b, 18), kvno: 1 };
  const kdc = new MiniKdc(b, clock, net);
  kdc.addPrincipal(CTA_PRINCIPAL + '@' + REALM, 18, ctaKey, 1);
  kdc.addPrincipal(SC_PRINCIPAL, 18, scKey.key, 1);
  const sc = new MiniSc(b, clock, net, scKey);
  const line = new FakeSerialPair();
  // The host relay: the CTA's network presence is 10.0.0.2 (as seen by the SC and KDC).
  const host = line.b;
  const frames: number[] = [];
  const km = net.bind('10.0.0.2', 1293, (d) => host.write(encodeFrame(1, d)));
  const kdcSock = net.bind('10.0.0.2', 0, (d) => host.write(encodeFrame(2, d)));
  const sigSock = net.bind('10.0.0.2', 2427, (d) => host.write(encodeFrame(3, d)));
  const dec = new FrameDecoder((ch, payload) => {
    frames.push(ch);
    const d = payload as Uint8Array;
    if (ch === 1) km.send(d, 1293, '10.0.0.1');
    else if (ch === 2) kdcSock.send(d, 88, '10.0.0.3');
    else if (ch === 3) sigSock.send(d, 2427, '10.0.0.1');
  });
  host.onData((c) => dec.feed(c));
  const platform = makeFakePlatform({ clock, net, address: '10.9.9.9', crypto: b, serial: line.a });
  platform.udpBind = () => null; // a board without networking
  const config = configFromObject({
    principal: CTA_PRINCIPAL,
    realm: REALM,
    keys: [{ etype: 18, kvno: 1, key: ctaKey }],
    scs: [{ principal: SC_PRINCIPAL, address: '10.0.0.1' }],
    kdc: { address: '10.0.0.3', port: 88 },
    transport: 'serial',
  });
  const agent = new CtaAgent(platform, config);
  agent.start();
  return { clock, net, kdc, sc, agent, host, frames };
}

test('serial transport: a full exchange and signaling through framed channels 1/2/3', () => {
  const w = serialWorld();
  w.sc.wakeUp();
  assert.equal(w.agent.status().transport, 'serial');
  assert.equal(w.agent.counters.sessionsEstablished, 1);
  assert.equal(w.sc.saRecovered, 1);
  assert.ok(w.frames.includes(1) && w.frames.includes(2));
  w.sc.signal('RQNT', '55');
  assert.equal(w.sc.signalingIn[0], '200 55 OK\r\n');
  assert.ok(w.frames.includes(3));
});

test('serial transport: line noise and broken frames are dropped, the agent keeps working', () => {
  const w = serialWorld();
  const noise = new Uint8Array(5000);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 131 + 7) & 0xff;
  w.host.write(noise);
  const f = encodeFrame(1, new Uint8Array([1, 1, 0x10, 0, 0, 0, 9, 0x41, 0]));
  f[3] ^= 0x40; // CRC now wrong
  w.host.write(f);
  w.host.write(encodeFrame(1, 'not bytes' as never));
  w.host.write(encodeFrame(9, new Uint8Array([1, 2, 3])));
  const stats = w.agent.transport!.stats();
  assert.ok(stats.badCrc + stats.badCbor + stats.runt + stats.oversized + stats.badEscape > 0);
  assert.equal(w.agent.counters.drops.internal, 0);
  w.sc.wakeUp();
  assert.equal(w.agent.counters.sessionsEstablished, 1);
});

test('transport: a board without UDP refuses transport "udp" with a clear error', () => {
  const clock = new FakeClock();
  const net = new FakeNet();
  const platform = makeFakePlatform({ clock, net, address: '10.9.9.9', crypto: nobleBackend });
  platform.udpBind = () => null;
  const config = configFromObject({
    principal: CTA_PRINCIPAL,
    realm: REALM,
    keys: [{ etype: 18, kvno: 1, key: new Uint8Array(32) }],
    scs: [{ principal: SC_PRINCIPAL }],
    kdc: { address: '10.0.0.3' },
  });
  assert.throws(() => new CtaAgent(platform, config).start(), /no UDP/);
});
