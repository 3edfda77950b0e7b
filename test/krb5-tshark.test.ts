// tshark cross-check: Wireshark's Kerberos dissector decodes our AS-REQ,
// KRB-ERROR, AS-REP, AP-REQ and AP-REP (as UDP datagrams in a pcap) without
// malformed-packet or expert errors, and shows the field values we encoded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k from '../firmware/proto/krb5.ts';
import { needTool } from './helpers/tools.ts';
import { writePcap, type UdpPacket } from './helpers/pcap.ts';
import { asReqFull, asReqMin, asRep, apReq, apRep, krbErrorFull, krbErrorMin, etypeInfo2, REALM } from './helpers/asn1.ts';

const CTA = '10.0.0.2';
const KDC = '10.0.0.1';
const SC = '10.0.0.3';
const ALT_PORT = 41293; // AP messages also on a non-Kerberos port, decoded with -d

const toKdc = (payload: Uint8Array): UdpPacket => ({ src: CTA, dst: KDC, srcPort: 50000, dstPort: 88, payload });
const fromKdc = (payload: Uint8Array): UdpPacket => ({ src: KDC, dst: CTA, srcPort: 88, dstPort: 50000, payload });
const toSc = (payload: Uint8Array, port: number): UdpPacket => ({ src: CTA, dst: SC, srcPort: 50001, dstPort: port, payload });
const fromSc = (payload: Uint8Array, port: number): UdpPacket => ({ src: SC, dst: CTA, srcPort: port, dstPort: 50001, payload });

/** Every value under key (at any depth), in document order, arrays flattened. */
function collect(o: unknown, key: string, out: string[] = []): string[] {
  if (Array.isArray(o)) {
    for (const x of o) collect(x, key, out);
  } else if (o && typeof o === 'object') {
    for (const [kk, v] of Object.entries(o)) {
      if (kk === key) {
        for (const x of Array.isArray(v) ? v : [v]) if (typeof x !== 'object') out.push(String(x));
      }
      collect(v, key, out);
    }
  }
  return out;
}
const one = (o: unknown, key: string) => {
  const v = collect(o, key);
  assert.ok(v.length >= 1, `no ${key} in ${JSON.stringify(o).slice(0, 400)}`);
  return v[0];
};
const tsTime = (s: string) => Date.parse(s.replace(/\.\d+ UTC$/, ' UTC'));

test('tshark decodes our Kerberos messages cleanly with the values we encoded', (t) => {
  const tshark = needTool(t, 'tshark');
  if (!tshark) return;
  const dir = mkdtempSync(join(tmpdir(), 'krb5-tshark-'));
  try {
    const msgs = [
      toKdc(k.encodeAsReq(asReqFull)), // 1
      toKdc(k.encodeAsReq(asReqMin)), // 2
      fromKdc(k.encodeKrbError(krbErrorFull)), // 3
      fromKdc(k.encodeAsRep(asRep)), // 4
      toSc(k.encodeApReq(apReq), 88), // 5
      fromSc(k.encodeApRep(apRep), 88), // 6
      fromSc(k.encodeKrbError(krbErrorMin), 88), // 7
      toSc(k.encodeApReq(apReq), ALT_PORT), // 8
      fromSc(k.encodeApRep(apRep), ALT_PORT), // 9
    ];
    const file = join(dir, 'krb5.pcap');
    writeFileSync(file, writePcap(msgs));
    const out = execFileSync(
      tshark,
      ['-r', file, '-n', '-o', 'ip.check_checksum:TRUE', '-d', `udp.port==${ALT_PORT},kerberos`, '-T', 'json', '--no-duplicate-keys'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 },
    );
    assert.doesNotMatch(out, /_ws\.malformed|Malformed Packet/);
    assert.doesNotMatch(out, /_ws\.expert/);
    const pkts = JSON.parse(out) as { _source: { layers: { [k: string]: unknown } } }[];
    assert.equal(pkts.length, msgs.length);
    const L = pkts.map((p) => p._source.layers);
    for (const [i, l] of L.entries()) {
      assert.ok(l.kerberos, `packet ${i + 1} not dissected as Kerberos`);
      assert.equal(collect(l.ip, 'ip.checksum.status')[0], '1', `packet ${i + 1}: IPv4 header checksum`);
      assert.equal(Number(one(l.udp, 'udp.length')), 8 + msgs[i].payload.length);
    }
    const K = L.map((l) => l.kerberos);

    // AS-REQ (full)
    const b = asReqFull.reqBody;
    assert.equal(one(K[0], 'kerberos.msg_type'), '10');
    assert.equal(one(K[0], 'kerberos.pvno'), '5');
    assert.equal(one(K[0], 'kerberos.realm'), REALM);
    assert.deepEqual(collect(K[0], 'kerberos.CNameString'), b.cname!.nameString);
    assert.deepEqual(collect(K[0], 'kerberos.SNameString'), b.sname!.nameString.concat(b.additionalTickets![0].sname.nameString));
    assert.deepEqual(collect(K[0], 'kerberos.ENCTYPE').map(Number), b.etype);
    assert.equal(Number(one(K[0], 'kerberos.nonce')), b.nonce);
    assert.equal(tsTime(one(K[0], 'kerberos.till')), b.till);
    assert.equal(tsTime(one(K[0], 'kerberos.from')), b.from);
    assert.equal(tsTime(one(K[0], 'kerberos.rtime')), b.rtime);
    assert.deepEqual(collect(K[0], 'kerberos.padata_type').map(Number), asReqFull.padata!.map((p) => p.padataType));
    assert.equal(one(K[0], 'kerberos.kdc_options').replace(/:/g, ''), b.kdcOptions.toString(16).padStart(8, '0'));
    assert.equal(one(K[0], 'kerberos.KDCOptions.renewable'), '1');
    assert.equal(one(K[0], 'kerberos.KDCOptions.forwarded'), '0');
    assert.equal(one(K[0], 'kerberos.addr_ip'), '192.0.2.10');
    // AS-REQ (min)
    assert.equal(one(K[1], 'kerberos.msg_type'), '10');
    assert.deepEqual(collect(K[1], 'kerberos.ENCTYPE').map(Number), asReqMin.reqBody.etype);
    assert.equal(Number(one(K[1], 'kerberos.nonce')), asReqMin.reqBody.nonce);
    assert.deepEqual(collect(K[1], 'kerberos.padata_type'), []);

    // KRB-ERROR PREAUTH_REQUIRED with METHOD-DATA / ETYPE-INFO2 in e-data
    assert.equal(one(K[2], 'kerberos.msg_type'), '30');
    assert.equal(Number(one(K[2], 'kerberos.error_code')), k.KDC_ERR_PREAUTH_REQUIRED);
    assert.equal(one(K[2], 'kerberos.realm'), REALM);
    assert.equal(one(K[2], 'kerberos.crealm'), REALM);
    assert.deepEqual(collect(K[2], 'kerberos.CNameString'), krbErrorFull.cname!.nameString);
    assert.deepEqual(collect(K[2], 'kerberos.SNameString'), krbErrorFull.sname.nameString);
    assert.equal(one(K[2], 'kerberos.e_text'), krbErrorFull.eText);
    assert.equal(tsTime(one(K[2], 'kerberos.stime')), krbErrorFull.stime);
    assert.equal(Number(one(K[2], 'kerberos.susec')), krbErrorFull.susec);
    assert.equal(tsTime(one(K[2], 'kerberos.ctime')), krbErrorFull.ctime);
    assert.deepEqual(collect(K[2], 'kerberos.padata_type').map(Number), [k.PA_ETYPE_INFO2, k.PA_ENC_TIMESTAMP, k.PA_FX_COOKIE]);
    assert.deepEqual(collect(K[2], 'kerberos.etype').map(Number), etypeInfo2.map((e) => e.etype));
    assert.deepEqual(collect(K[2], 'kerberos.info2_salt'), etypeInfo2.filter((e) => e.salt).map((e) => e.salt));

    // AS-REP
    assert.equal(one(K[3], 'kerberos.msg_type'), '11');
    assert.equal(one(K[3], 'kerberos.crealm'), REALM);
    assert.deepEqual(collect(K[3], 'kerberos.CNameString'), asRep.cname.nameString);
    assert.deepEqual(collect(K[3], 'kerberos.SNameString'), asRep.ticket.sname.nameString);
    assert.equal(one(K[3], 'kerberos.tkt_vno'), '5');
    assert.deepEqual(collect(K[3], 'kerberos.kvno').map(Number), [asRep.ticket.encPart.kvno, asRep.encPart.kvno]);
    assert.deepEqual(collect(K[3], 'kerberos.etype').map(Number), [17, asRep.ticket.encPart.etype, asRep.encPart.etype]);
    assert.equal(one(K[3], 'kerberos.padata_type'), String(k.PA_ETYPE_INFO2));

    // AP-REQ / AP-REP / KRB-ERROR (skew) on port 88 and AP-REQ / AP-REP on ALT_PORT via -d
    for (const [req, rep] of [[4, 5], [7, 8]]) {
      assert.equal(one(K[req], 'kerberos.msg_type'), '14');
      assert.equal(one(K[req], 'kerberos.APOptions.mutual.required'), '1');
      assert.equal(one(K[req], 'kerberos.APOptions.use.session.key'), '0');
      assert.equal(one(K[req], 'kerberos.realm'), apReq.ticket.realm);
      assert.deepEqual(collect(K[req], 'kerberos.SNameString'), apReq.ticket.sname.nameString);
      assert.deepEqual(collect(K[req], 'kerberos.etype').map(Number), [apReq.ticket.encPart.etype, apReq.authenticator.etype]);
      assert.equal(one(K[req], 'kerberos.kvno'), String(apReq.ticket.encPart.kvno));
      assert.equal(one(K[rep], 'kerberos.msg_type'), '15');
      assert.equal(Number(one(K[rep], 'kerberos.etype')), apRep.encPart.etype);
      assert.equal(one(K[rep], 'kerberos.cipher').replace(/:/g, ''), Buffer.from(apRep.encPart.cipher).toString('hex'));
    }
    assert.equal(one(K[6], 'kerberos.msg_type'), '30');
    assert.equal(Number(one(K[6], 'kerberos.error_code')), k.KRB_AP_ERR_SKEW);
    assert.equal(tsTime(one(K[6], 'kerberos.stime')), krbErrorMin.stime);
    assert.deepEqual(collect(K[6], 'kerberos.CNameString'), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
