// Wireshark as referee: one capture on loopback of complete exchanges (our KDC,
// our SC, the real CTA agent on real UDP), for enctypes 17, 18 and 19. Every
// Kerberos and pktc message decodes with no malformed or warning/error expert
// marks; with the CTA and SC keys in a keytab (-o kerberos.decrypt:TRUE
// -o kerberos.file:...) Wireshark decrypts the AS-REP enc-part, the ticket's
// EncTicketPart (cname), the AP-REQ authenticator (learning the session key from
// the ticket) and the AP-REP enc-part with our subkey, and its values match ours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from './helpers/tools.ts';
import { nextEvent } from './helpers/events.ts';
import { captureUdpPorts, tsharkJson, removeCapture, flattenFields, type TsharkPacket } from './helpers/tshark.ts';
import { makeNodePlatform, type NodePlatform } from './interop/node-platform.ts';
import { readKeytabFile, loopbackAgentConfig } from './interop/loopback-agent.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';
import { KdcDatabase } from '../host-tools/kdc/db.ts';
import { startKdc } from '../host-tools/kdc/server.ts';
import { startSc, type EstablishedEvent, type ScServer } from '../host-tools/sc/server.ts';
import { CtaAgent } from '../firmware/agent/agent.ts';
import { encodeKeytab } from '../firmware/proto/keytab.ts';
import { toHex, fromHex } from '../firmware/proto/bytes.ts';
import { deriveSaKeys } from '../firmware/proto/sa.ts';

const REALM = 'WS.INTEROP.TEST';
const ETYPES = [17, 18, 19];

type Pair = { e: number; cta: string; sc: string; server: ScServer; agent: CtaAgent; plat: NodePlatform; kmPort: number };

test('Wireshark decodes and decrypts a captured exchange (our KDC, our SC, the CTA agent), enctypes 17/18/19', async (t) => {
  if (!needTool(t, 'tshark')) return;
  const dir = mkdtempSync(join(tmpdir(), 'ws-decrypt-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = KdcDatabase.init(join(dir, 'kdc.db'), REALM);
  t.after(() => db.close());
  const kdc = await startKdc({ db, host: '127.0.0.1', port: 0 });
  t.after(() => kdc.close());

  const allKeys = [];
  const pairs: Pair[] = [];
  for (const e of ETYPES) {
    const cta = `cta/e${e}.example.net`;
    const sc = `sc/e${e}.example.net@${REALM}`;
    db.addPrincipal(cta, { enctypes: [e], requiresPreauth: true });
    db.addPrincipal(sc, { enctypes: [e] });
    db.exportKeytab(cta, join(dir, `cta${e}.keytab`));
    db.exportKeytab(sc, join(dir, `sc${e}.keytab`));
    const ctaKeys = readKeytabFile(join(dir, `cta${e}.keytab`), `${cta}@${REALM}`);
    allKeys.push(...ctaKeys, ...readKeytabFile(join(dir, `sc${e}.keytab`)));
    const server = await startSc({ principal: sc, keytab: join(dir, `sc${e}.keytab`), listen: { host: '127.0.0.1', port: 0 }, statePath: ':memory:', wakeOnStart: false });
    t.after(() => server.close());
    const plat = makeNodePlatform({ crypto: nobleBackend });
    t.after(() => plat.close());
    const agent = new CtaAgent(
      plat,
      loopbackAgentConfig({
        principal: cta,
        realm: REALM,
        keys: ctaKeys,
        sc: { principal: sc, port: server.address.port },
        kdcPort: kdc.udpPort,
        // The AS exchange belongs in the capture: no ticket prefetch at boot, before capturing starts.
        prefetchTicket: false,
        // The capture is checked message by message: no retransmission on a slow machine.
        timers: { retransmitMs: [], abortMs: 20000, kdcTimeoutMs: 10000 },
      }),
    );
    agent.start();
    t.after(() => agent.stop());
    const [kmPort, , sigPort] = await plat.bound();
    server.register(`${cta}@${REALM}`, '127.0.0.1', kmPort, sigPort);
    pairs.push({ e, cta: `${cta}@${REALM}`, sc, server, agent, plat, kmPort });
  }
  // One keytab with every CTA and SC key: what an operator hands Wireshark.
  const wsKeytab = join(dir, 'wireshark.keytab');
  writeFileSync(wsKeytab, encodeKeytab(allKeys), { mode: 0o600 });

  const pcap = await captureUdpPorts([kdc.udpPort, ...pairs.map((p) => p.server.address.port)], async () => {
    for (const p of pairs) {
      const est = nextEvent<EstablishedEvent>(p.server, 'established', undefined, 10000);
      p.server.wake(p.cta);
      await est;
    }
  });
  t.after(() => removeCapture(pcap));

  const decodeAs = [`udp.port==${kdc.udpPort},kerberos`, ...pairs.map((p) => `udp.port==${p.server.address.port},pktc`)];
  const pkts = tsharkJson(pcap, decodeAs, ['kerberos.decrypt:TRUE', `kerberos.file:${wsKeytab}`]);
  assert.ok(pkts.length >= 8 * pairs.length, `captured ${pkts.length} packets`);

  // Clean decode: no malformed packet, no expert item of note or worse (the
  // Kerberos decryption "chat" items are information, not problems).
  for (const [i, pk] of pkts.entries()) {
    const bad = issues(pk);
    assert.deepEqual(bad, [], `frame ${i + 1}: ${bad.join('; ')}`);
  }

  for (const p of pairs) {
    const e = p.e;
    const [kmPort, kdcSockPort] = await p.plat.bound();
    const tk = p.agent.scs[0].ticket;
    const sa = p.agent.scs[0].sa;
    assert.ok(tk && sa, `enctype ${e}: agent established`);
    const sessionKey = colonHex(tk.key);
    const cname = ['cta', `e${e}.example.net`];
    const sname = ['sc', `e${e}.example.net`];

    // --- the AS exchange with our KDC: AS-REQ, PREAUTH_REQUIRED, AS-REQ + PA-ENC-TIMESTAMP, AS-REP
    const krb = pkts.filter((pk) => udpPorts(pk).includes(kdcSockPort)).map((pk) => layer(pk, 'kerberos'));
    assert.equal(krb.length, 4, `enctype ${e}: ${krb.length} Kerberos packets`);
    const msgTypes = krb.map((k) => flattenFields(k)['kerberos.msg_type']?.[0]);
    assert.deepEqual(msgTypes, ['10', '30', '10', '11'], `enctype ${e}`);
    const err = flattenFields(krb[1]);
    assert.deepEqual(err['kerberos.error_code'], ['25']);
    assert.deepEqual(err['kerberos.etype'], [String(e)], 'ETYPE-INFO2 names the CTA key enctype');
    // PA-ENC-TIMESTAMP decrypted with the CTA key (usage 1).
    assert.equal(flattenFields(krb[2])['kerberos.patimestamp']?.length, 1, `enctype ${e}: PA-ENC-TIMESTAMP decrypted`);
    const asRep = find(krb[3], 'kerberos.as_rep_element')[0];
    assert.ok(asRep);
    // EncASRepPart decrypted with the CTA key (usage 3): the session key the agent holds.
    const encAsRep = flattenFields(find(asRep, 'kerberos.encASRepPart_element')[0]);
    assert.deepEqual(encAsRep['kerberos.keyvalue'], [sessionKey], `enctype ${e}: EncASRepPart key`);
    assert.deepEqual(encAsRep['kerberos.SNameString'], sname);
    // The ticket's EncTicketPart decrypted with the SC key (usage 2): cname and the same key.
    const etpAs = flattenFields(find(asRep, 'kerberos.encTicketPart_element')[0]);
    assert.deepEqual(etpAs['kerberos.CNameString'], cname);
    assert.deepEqual(etpAs['kerberos.keyvalue'], [sessionKey]);
    assert.deepEqual(etpAs['kerberos.crealm'], [REALM]);

    // --- the key-management exchange with our SC
    const km = pkts.filter((pk) => udpPorts(pk).includes(kmPort)).map((pk) => layer(pk, 'pktc'));
    assert.deepEqual(
      km.map((x) => flattenFields(x)['pktc.kmmid']?.[0]),
      ['0x01', '0x02', '0x03', '0x04'],
      `enctype ${e}: Wake Up, AP Request, AP Reply, SA Recovered`,
    );
    const [wake, apReq, apRep, saRec] = km.map((x) => flattenFields(x));
    assert.deepEqual(wake['pktc.server_principal'], [p.sc]);
    assert.equal(wake['pktc.server_nonce']?.length, 1, 'Wake Up nonce decoded');
    assert.deepEqual(apReq['pktc.server_nonce'], wake['pktc.server_nonce'], 'returned_nonce echoes the Wake Up nonce');
    assert.notEqual(wake['pktc.server_nonce']?.[0], '0x00000000');
    assert.deepEqual(apReq['kerberos.APOptions.mutual.required'], ['1']);
    assert.deepEqual(apReq['pktc.asd.ipsec_spi'], [hex32(sa.ctaSpi)]);
    assert.deepEqual(apRep['pktc.asd.ipsec_spi'], [hex32(sa.scSpi)]);
    assert.equal(apReq['pktc.sha1_hmac']?.length, 1);
    assert.equal(saRec['pktc.sha1_hmac']?.length, 1);

    // Ticket in the AP-REQ: EncTicketPart decrypted with the SC key.
    const etp = flattenFields(find(km[1], 'kerberos.encTicketPart_element')[0]);
    assert.deepEqual(etp['kerberos.CNameString'], cname, `enctype ${e}: cname in EncTicketPart`);
    assert.deepEqual(etp['kerberos.keyvalue'], [sessionKey]);
    // Authenticator decrypted with the session key Wireshark learnt from the ticket (usage 11).
    const auth = flattenFields(find(km[1], 'kerberos.authenticator_element')[0]);
    assert.deepEqual(auth['kerberos.authenticator_vno'], ['5'], `enctype ${e}: authenticator decrypted`);
    assert.deepEqual(auth['kerberos.CNameString'], cname);
    assert.deepEqual(auth['kerberos.crealm'], [REALM]);
    // AP-REP enc-part decrypted with the session key (usage 12): ctime/cusec echo and the subkey.
    const rep = flattenFields(find(km[2], 'kerberos.encAPRepPart_element')[0]);
    assert.equal(auth['kerberos.ctime']?.length, 1);
    assert.equal(auth['kerberos.cusec']?.length, 1);
    assert.deepEqual(rep['kerberos.ctime'], auth['kerberos.ctime'], 'AP-REP echoes ctime');
    assert.deepEqual(rep['kerberos.cusec'], auth['kerberos.cusec'], 'AP-REP echoes cusec');
    assert.deepEqual(rep['kerberos.keytype'], [String(e)]);
    const subkey = fromColonHex(rep['kerberos.keyvalue']?.[0] ?? '');
    assert.notEqual(colonHex(subkey), sessionKey, 'fresh subkey');
    // The subkey Wireshark decrypted is the one that keys the SA on both sides.
    assert.deepEqual(deriveSaKeys(nobleBackend, subkey, sa.ctaSpi, sa.scSpi), sa.keys, `enctype ${e}: SA from the decrypted subkey`);
    const scKeys = p.server.saKeys(p.cta);
    assert.ok(scKeys);
    assert.deepEqual(scKeys.authScToCta, sa.keys.authScToCta);
  }
});

function udpPorts(pk: TsharkPacket): number[] {
  const u = pk._source.layers.udp as { [k: string]: string } | undefined;
  return u ? [Number(u['udp.srcport']), Number(u['udp.dstport'])] : [];
}

function layer(pk: TsharkPacket, name: string): unknown {
  const l = pk._source.layers[name];
  assert.ok(l, `frame has no ${name} layer: ${Object.keys(pk._source.layers).join(',')}`);
  return l;
}

/** Every value stored under `key` anywhere below `root`. */
function find(root: unknown, key: string, out: unknown[] = []): unknown[] {
  if (Array.isArray(root)) for (const v of root) find(v, key, out);
  else if (root && typeof root === 'object') {
    for (const [k, v] of Object.entries(root as Record<string, unknown>)) {
      if (k === key) out.push(v);
      find(v, key, out);
    }
  }
  return out;
}

const NOTE = 0x00400000;
/** Malformed markers and expert items of severity note or worse, anywhere in the packet. */
function issues(pk: TsharkPacket): string[] {
  const found: string[] = [];
  const walk = (x: unknown, path: string) => {
    if (Array.isArray(x)) return x.forEach((v) => walk(v, path));
    if (!x || typeof x !== 'object') return;
    const o = x as Record<string, unknown>;
    const sev = o['_ws.expert.severity'];
    const msg = o['_ws.expert.message'];
    const sevs = Array.isArray(sev) ? sev : sev === undefined ? [] : [sev];
    const msgs = Array.isArray(msg) ? msg : [msg];
    sevs.forEach((s, i) => {
      if (Number(s) >= NOTE) found.push(`${path}: ${String(msgs[i] ?? '')} (severity ${String(s)})`);
    });
    for (const [k, v] of Object.entries(o)) {
      if (k.startsWith('_ws.malformed') || k === '_ws.short') found.push(`${path}/${k}`);
      walk(v, `${path}/${k}`);
    }
  };
  walk(pk._source.layers, '');
  return found;
}

function colonHex(b: Uint8Array): string {
  return (toHex(b).match(/../g) ?? []).join(':');
}
function fromColonHex(s: string): Uint8Array {
  return fromHex(s.replace(/:/g, ''));
}
function hex32(n: number): string {
  return '0x' + (n >>> 0).toString(16).padStart(8, '0');
}
