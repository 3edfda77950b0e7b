// docs/protocol.md's worked examples: still what the code produces, and correct
// when checked with independent tools (node:crypto HMAC/HKDF/AES, krb5.ts
// decryption, and tshark decrypting the Kerberos parts with a keytab).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac, createDecipheriv } from 'node:crypto';
import dgram from 'node:dgram';
import { buildExamples, FIXED, hexBlock } from '../scripts/protocol-examples.ts';
import type { Example } from '../scripts/protocol-examples.ts';
import { decodeMessage, decodeApRequest, decodeApReply, decodeSaRecovered, decodeRekey, decodeWakeUp } from '../firmware/proto/pktc.ts';
import { decodeApReq, decodeApRep, decodeEncTicketPart, decodeAuthenticator, decodeEncApRepPart } from '../firmware/proto/krb5.ts';
import { decrypt } from '../firmware/proto/crypto/index.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';
import { FrameDecoder } from '../firmware/proto/serial-frame.ts';
import { encodeKeytab } from '../firmware/proto/keytab.ts';
import { concat, toAscii, toHex } from '../firmware/proto/bytes.ts';
import { needTool } from './helpers/tools.ts';
import { captureUdp, tsharkJson, removeCapture, flattenFields, problems } from './helpers/tshark.ts';

const { examples, notes } = buildExamples();
const ex = (id: string): Uint8Array => {
  const e = examples.find((x: Example) => x.id === id);
  assert.ok(e, id);
  return e.bytes;
};
const hmac = (key: Uint8Array, data: Uint8Array) => new Uint8Array(createHmac('sha1', key).update(data).digest());

test('docs/protocol.md contains every worked example exactly as the code produces it', () => {
  const doc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
  for (const e of examples) assert.ok(doc.includes(hexBlock(e.bytes)), `example "${e.title}" is stale: re-run npx tsx scripts/protocol-examples.ts`);
  assert.ok(doc.includes(notes.apReqHmacCheck));
  // Deterministic: a second run gives the same bytes.
  const again = buildExamples().examples;
  assert.deepEqual(again.map((e) => toHex(e.bytes)), examples.map((e) => toHex(e.bytes)));
});

test('worked messages decode, and their HMACs check out with node:crypto under the documented keys', () => {
  for (const id of ['wake-up', 'ap-request', 'ap-request-snmp', 'ap-reply', 'sa-recovered', 'rekey', 'error-reply']) decodeMessage(ex(id));
  const req = decodeApRequest(ex('ap-request'));
  assert.deepEqual(req.hmac, hmac(ex('ki-1101'), req.signed));
  assert.equal(req.serverNonce, FIXED.nonce);
  assert.equal(decodeApRequest(ex('ap-request-snmp')).serverNonce, 0);
  const rep = decodeApReply(ex('ap-reply'));
  assert.deepEqual(rep.hmac, hmac(ex('ki-1102'), rep.signed));
  const rec = decodeSaRecovered(ex('sa-recovered'));
  assert.deepEqual(rec.hmac, hmac(ex('ki-1103'), concat([rec.signed, rep.hmac])));
  const rk = decodeRekey(ex('rekey'));
  assert.deepEqual(rk.hmac, hmac(ex('ki-1104'), rk.signed));
  assert.equal(rk.timestamp, FIXED.rekeyTime);
  assert.equal(decodeWakeUp(ex('wake-up')).serverPrincipal, FIXED.scPrincipal);
});

test('worked Kerberos parts are real: ticket, authenticator and AP-REP decrypt under the documented keys', () => {
  const b = nobleBackend;
  const apReq = decodeApReq(ex('ap-req-der'));
  const etp = decodeEncTicketPart(decrypt(b, 17, FIXED.scServiceKey, 2, apReq.ticket.encPart.cipher));
  assert.deepEqual(etp.key.keyvalue, FIXED.sessionKey);
  const auth = decodeAuthenticator(decrypt(b, 17, FIXED.sessionKey, 11, apReq.authenticator.cipher));
  assert.equal(auth.ctime, FIXED.ctime);
  const part = decodeEncApRepPart(decrypt(b, 17, FIXED.sessionKey, 12, decodeApRep(ex('ap-rep-der')).encPart.cipher));
  assert.deepEqual(part.subkey?.keyvalue, FIXED.subkey);
  assert.equal(part.cusec, auth.cusec);
});

test('worked SA keys and ESP packet: independent HKDF and AES-CBC agree', () => {
  const info = ex('sa-info');
  const t1 = createHmac('sha256', FIXED.subkey).update(concat([info, new Uint8Array([1])])).digest();
  const t2 = createHmac('sha256', FIXED.subkey).update(concat([t1, info, new Uint8Array([2])])).digest();
  const t3 = createHmac('sha256', FIXED.subkey).update(concat([t2, info, new Uint8Array([3])])).digest();
  const okm = new Uint8Array(Buffer.concat([t1, t2, t3]).subarray(0, 72));
  assert.deepEqual(concat([ex('sa-enc-cta-sc'), ex('sa-auth-cta-sc'), ex('sa-enc-sc-cta'), ex('sa-auth-sc-cta')]), okm);
  const pkt = ex('esp');
  const icv = hmac(ex('sa-auth-sc-cta'), pkt.subarray(0, pkt.length - 12)).subarray(0, 12);
  assert.deepEqual(pkt.subarray(pkt.length - 12), icv);
  const d = createDecipheriv('aes-128-cbc', ex('sa-enc-sc-cta'), pkt.subarray(8, 24)).setAutoPadding(false);
  const pt = Buffer.concat([d.update(pkt.subarray(24, pkt.length - 12)), d.final()]);
  const padLen = pt[pt.length - 2];
  assert.equal(pt[pt.length - 1], 17);
  assert.equal(toAscii(new Uint8Array(pt.subarray(0, pt.length - 2 - padLen))), JSON.parse(notes.rqnt));
});

test('worked serial frames decode to their channel and payload', () => {
  const got: [number, unknown][] = [];
  const fd = new FrameDecoder((ch, p) => got.push([ch, p]));
  fd.feed(ex('frame-km'));
  fd.feed(ex('frame-control'));
  assert.equal(got.length, 2);
  assert.equal(got[0][0], 1);
  assert.deepEqual(got[0][1], ex('wake-up'));
  assert.deepEqual(got[1], [0, { cmd: 'status' }]);
  assert.equal(notes.frameCrc, toHex(ex('frame-km').subarray(-3, -1)));
});

test('tshark decrypts the worked AP Request / AP Reply with a keytab holding the SC key', async (t) => {
  if (!needTool(t, 'tshark')) return;
  const dir = mkdtempSync(join(tmpdir(), 'cta-docs-'));
  const keytab = join(dir, 'sc.keytab');
  writeFileSync(
    keytab,
    encodeKeytab([{ principal: { realm: 'EXAMPLE.NET', components: ['sc', 'sc1.example.net'], nameType: 2 }, timestamp: 0, kvno: 3, etype: 17, key: FIXED.scServiceKey }]),
  );
  const rx = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => rx.bind(0, '127.0.0.1', resolve));
  const port = rx.address().port;
  rx.on('message', () => undefined);
  const tx = dgram.createSocket('udp4');
  let pcap = '';
  try {
    const msgs = [ex('ap-request'), ex('ap-reply')];
    pcap = await captureUdp(
      port,
      async () => {
        for (const m of msgs) await new Promise<void>((res, rej) => tx.send(m, port, '127.0.0.1', (e) => (e ? rej(e) : res())));
      },
      { packets: msgs.length },
    );
    const pk = tsharkJson(pcap, [`udp.port==${port},pktc`], ['kerberos.decrypt:TRUE', `kerberos.file:${keytab}`]);
    assert.equal(pk.length, 2);
    for (const p of pk) assert.deepEqual(problems(p), []);
    const q = flattenFields(pk[0]._source.layers.pktc);
    const r = flattenFields(pk[1]._source.layers.pktc);
    const colon = (x: Uint8Array) => toHex(x).replace(/(..)(?!$)/g, '$1:');
    assert.deepEqual(q['kerberos.keyvalue'], [colon(FIXED.sessionKey)], 'ticket decrypted: session key');
    assert.ok(q['kerberos.CNameString']?.includes(FIXED.ctaName), 'authenticator / ticket cname');
    assert.deepEqual(r['kerberos.keyvalue'], [colon(FIXED.subkey)], 'AP-REP decrypted: subkey');
    assert.deepEqual(r['kerberos.cusec'], [String(FIXED.cusec)]);
  } finally {
    rx.close();
    tx.close();
    if (pcap) removeCapture(pcap);
    rmSync(dir, { recursive: true, force: true });
  }
});

