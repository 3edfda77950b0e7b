// Interoperability with a third-party decoder: every key-management message,
// sent over real UDP on 127.0.0.1 and captured with tshark, must be decoded by
// Wireshark's `pktc` dissector with no Malformed Packet / expert marks and with
// the field values we sent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { needTool } from './helpers/tools.ts';
import { captureUdp, tsharkJson, removeCapture, flattenFields, problems } from './helpers/tshark.ts';
import * as fx from './helpers/pktc-fixtures.ts';
import { encodeMessage, msToTimestamp, DOI } from '../firmware/proto/pktc.ts';
import type { PktcMessage, AppData, Ciphersuite, SnmpAppData } from '../firmware/proto/pktc.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';
import { fromHex } from '../firmware/proto/bytes.ts';

const KEY = fromHex('0f0e0d0c0b0a09080706050403020100ffeeddcc');
const APREP_HMAC = fromHex('00112233445566778899aabbccddeeff00112233');

const hex8 = (v: number) => '0x' + v.toString(16).padStart(8, '0');
const hex2 = (v: number) => '0x' + v.toString(16).padStart(2, '0');
const colon = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(':');

/** The pktc.* fields the dissector should show for a message, as tshark's JSON writes them. */
function expected(m: PktcMessage, bytes: Uint8Array): Record<string, string[]> {
  const e: Record<string, string[]> = {
    'pktc.kmmid': [hex2(m.kmmid)],
    'pktc.doi': [String(m.doi)],
    'pktc.version.major': ['1'],
    'pktc.version.minor': ['0'],
  };
  const app = (a: AppData) => {
    if (m.doi === DOI.IPSEC) e['pktc.asd.ipsec_spi'] = [hex8((a as { spi: number }).spi)];
    else {
      const s = a as SnmpAppData;
      e['pktc.asd.snmp_engine_id.len'] = [String(s.engineId.length)];
      e['pktc.asd.snmp_engine_id'] = [colon(s.engineId)];
      e['pktc.asd.snmp_engine_boots'] = [String(s.engineBoots)];
      e['pktc.asd.snmp_engine_time'] = [String(s.engineTime)];
      e['pktc.asd.snmp_usm_username.len'] = [String(s.userName.length)];
      e['pktc.asd.snmp_usm_username'] = [s.userName];
    }
  };
  const suites = (list: Ciphersuite[]) => {
    const [a, c] = m.doi === DOI.IPSEC ? ['ipsec_auth_alg', 'ipsec_enc_alg'] : ['snmp_auth_alg', 'snmp_enc_alg'];
    e['pktc.ciphers.len'] = [String(list.length)];
    e[`pktc.asd.${a}`] = list.map((s) => hex2(s.auth));
    e[`pktc.asd.${c}`] = list.map((s) => hex2(s.enc));
  };
  const hmac = () => (e['pktc.sha1_hmac'] = [colon(bytes.subarray(bytes.length - 20))]);
  switch (m.kmmid) {
    case 1:
      e['pktc.server_nonce'] = [hex8(m.serverNonce)];
      e['pktc.server_principal'] = [m.serverPrincipal];
      break;
    case 2:
      e['pktc.server_nonce'] = [hex8(m.serverNonce)];
      app(m.appData);
      suites(m.ciphersuites);
      e['pktc.reestablish'] = [m.reestablish ? '1' : '0'];
      hmac();
      break;
    case 3:
      app(m.appData);
      suites([m.ciphersuite]);
      e['pktc.spl'] = [String(m.saLifetime)];
      e['pktc.grace_period'] = [String(m.gracePeriod)];
      e['pktc.reestablish'] = [m.reestablish ? '1' : '0'];
      e['pktc.ack_required'] = [m.ackRequired ? '1' : '0'];
      hmac();
      break;
    case 4:
      hmac();
      break;
    case 5:
      e['pktc.server_nonce'] = [hex8(m.serverNonce)];
      e['pktc.server_principal'] = [m.serverPrincipal];
      e['pktc.timestamp'] = [msToTimestamp(m.timestamp)];
      app(m.appData);
      suites(m.ciphersuites);
      e['pktc.spl'] = [String(m.saLifetime)];
      e['pktc.grace_period'] = [String(m.gracePeriod)];
      e['pktc.reestablish'] = [m.reestablish ? '1' : '0'];
      hmac();
      break;
    case 6:
      break;
  }
  return e;
}

async function sendAll(port: number, datagrams: Uint8Array[]): Promise<void> {
  const tx = dgram.createSocket('udp4');
  try {
    for (const d of datagrams) {
      await new Promise<void>((resolve, reject) => tx.send(d, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())));
    }
  } finally {
    tx.close();
  }
}

test('tshark decodes all six messages (both DOIs) with the values we sent and no malformed marks', async (t) => {
  if (!needTool(t, 'tshark')) return;
  const msgs = fx.allMessages();
  const datagrams = msgs.map((m) => encodeMessage(nobleBackend, KEY, m, APREP_HMAC));
  // Controls that prove the "no problems" check can fail: a truncated AP Request,
  // and a Rekey with DOI SNMPv3, which the dissector has no layout for (so our codec refuses it).
  const truncated = datagrams[2].subarray(0, datagrams[2].length - 25);
  const snmpRekey = datagrams[8].slice();
  snmpRekey[1] = DOI.SNMPV3;
  const all = [...datagrams, truncated, snmpRekey];

  const rx = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => rx.bind(0, '127.0.0.1', resolve));
  const port = rx.address().port;
  rx.on('message', () => undefined);
  let pcap = '';
  try {
    pcap = await captureUdp(port, () => sendAll(port, all), { packets: all.length });
    const pkts = tsharkJson(pcap, [`udp.port==${port},pktc`]);
    assert.equal(pkts.length, all.length, 'every datagram captured');
    for (let i = 0; i < msgs.length; i++) {
      const m = msgs[i];
      const layers = pkts[i]._source.layers;
      const label = `message ${i} (KMMID ${m.kmmid}, DOI ${m.doi})`;
      assert.ok(layers.pktc, `${label}: pktc layer present`);
      assert.deepEqual(problems(pkts[i]), [], `${label}: no malformed/expert marks`);
      assert.ok(!('data' in layers), `${label}: no undissected trailing data`);
      const got = flattenFields(layers.pktc);
      const want = expected(m, datagrams[i]);
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[k], v, `${label}: ${k}`);
      // The carried Kerberos message is found and decoded by the Kerberos dissector.
      const krbType = { 2: '14', 3: '15', 6: '30' }[m.kmmid as 2 | 3 | 6];
      if (krbType) assert.deepEqual(got['kerberos.msg_type'], [krbType], `${label}: Kerberos msg-type`);
      if (m.kmmid === 6) assert.deepEqual(got['kerberos.error_code'], ['37']);
      if (m.kmmid === 2) assert.deepEqual(got['kerberos.APOptions.mutual.required'], ['1']);
      if (m.kmmid === 2 && m.doi === DOI.SNMPV3) assert.deepEqual(got['snmp.engineid.text'], ['cta1'], 'engineID parsed by the SNMP dissector');
    }
    assert.notDeepEqual(problems(pkts[msgs.length]), [], 'truncated AP Request is flagged');
    assert.notDeepEqual(problems(pkts[msgs.length + 1]), [], 'SNMPv3 Rekey is flagged by the dissector');
  } finally {
    rx.close();
    if (pcap) removeCapture(pcap);
  }
});
