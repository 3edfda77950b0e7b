// Interop, MIT libkrb5 as the AP peer, both directions (test/interop/krb5-helper.c,
// compiled here against libkrb5-dev). For enctypes 17, 18 and 19:
//  (a) MIT's krb5_rd_req accepts the AP-REQ our CTA agent builds (ticket from MIT
//      krb5kdc, service keytab from ktadd, no replay cache);
//  (d) our agent accepts MIT's krb5_mk_rep (with an MIT-made subkey) inside an AP
//      Reply, answers with a valid SA Recovered and derives the SA from MIT's subkey;
//  (b) our SC accepts an AP-REQ made by MIT's krb5_mk_req_extended
//      (mutual-required) inside a full pktc AP Request, through its normal path;
//  (c) MIT's krb5_rd_rep accepts the AP-REP inside our SC's AP Reply, and the SC
//      holds the SA derived from the subkey MIT read out of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { needTool } from './helpers/tools.ts';
import { startMitRealm, perEnctypePrincipals, MIT_ENCTYPES, type MitRealm } from './helpers/mit.ts';
import { buildKrb5Helper, Krb5Helper, HelperError } from './interop/krb5-helper.ts';
import { makeNodePlatform } from './interop/node-platform.ts';
import { readKeytabFile, loopbackAgentConfig } from './interop/loopback-agent.ts';
import { UdpPeer } from './interop/udp-peer.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { startSc, type EstablishedEvent } from '../host-tools/sc/server.ts';
import { CtaAgent } from '../firmware/agent/agent.ts';
import { usageHmacKey, decrypt } from '../firmware/proto/crypto/index.ts';
import { decodeApReq, decodeAuthenticator, KU_AP_REQ_AUTH } from '../firmware/proto/krb5.ts';
import { deriveSaKeys } from '../firmware/proto/sa.ts';
import { fromHex, toHex } from '../firmware/proto/bytes.ts';
import {
  encodeWakeUp,
  encodeApRequest,
  encodeApReply,
  encodeSaRecovered,
  decodeWakeUp,
  decodeApRequest,
  decodeApReply,
  decodeSaRecovered,
  verifyHmac,
  verifySaRecovered,
  KMMID,
  DOI,
  USAGE,
  IPSEC_AUTH,
  IPSEC_ENC,
  type IpsecAppData,
} from '../firmware/proto/pktc.ts';

const REALM = 'LIBKRB5.INTEROP.TEST';
const B = nodeBackend;
const AP_OPTS_MUTUAL_REQUIRED = 0x20000000;

function runEnv(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 15000 }, (err, _out, stderr) => resolve({ code: err ? 1 : 0, stderr: String(stderr) }));
  });
}

function flip(der: Uint8Array, fromEnd: number): Uint8Array {
  const c = new Uint8Array(der);
  c[c.length - fromEnd] ^= 0x01;
  return c;
}

test('MIT libkrb5 and our CTA / SC accept each other\'s AP-REQ and AP-REP (enctypes 17, 18, 19)', async (t) => {
  for (const tool of ['kdb5_util', 'krb5kdc', 'kadmin.local', 'kinit']) if (!needTool(t, tool)) return;
  const bin = buildKrb5Helper(t);
  if (!bin) return;
  const etypes = [17, 18, 19];
  const realm: MitRealm = await startMitRealm({ realm: REALM, principals: perEnctypePrincipals(etypes), start: true });
  t.after(() => realm.stop());
  const baseConf = readFileSync(realm.krb5conf, 'utf8');

  for (const e of etypes) {
    const ctaName = realm.principal(`cta/e${e}.example.net`);
    const scName = realm.principal(`sc/e${e}.example.net`);
    const ctaKeytab = await realm.exportKeytab(ctaName);
    const scKeytab = await realm.exportKeytab(scName);
    // MIT clients of this enctype ask for it alone, so ticket, session key and subkey are all enctype e.
    const conf = join(realm.dir, `krb5-e${e}.conf`);
    writeFileSync(conf, baseConf.replace('[libdefaults]', `[libdefaults]\n  default_tkt_enctypes = ${MIT_ENCTYPES[e]}\n  default_tgs_enctypes = ${MIT_ENCTYPES[e]}\n  permitted_enctypes = ${MIT_ENCTYPES[e]}`));
    const env = { ...realm.env, KRB5_CONFIG: conf, KRB5CCNAME: `FILE:${join(realm.dir, `cc-e${e}`)}` };

    await t.test(`enctype ${e}: (a) MIT rd_req accepts our CTA's AP-REQ, (d) our CTA accepts MIT's mk_rep`, async (st) => {
      const helper = Krb5Helper.spawn(bin, env);
      st.after(() => helper.close());
      const peer = await UdpPeer.open(); // plays the SC's transport; MIT plays its Kerberos side
      st.after(() => peer.close());
      const ctaKeys = readKeytabFile(ctaKeytab, ctaName);
      const plat = makeNodePlatform({ crypto: nobleBackend });
      st.after(() => plat.close());
      const agent = new CtaAgent(
        plat,
        loopbackAgentConfig({
          principal: `cta/e${e}.example.net`,
          realm: REALM,
          keys: ctaKeys,
          sc: { principal: scName, port: peer.port },
          kdcPort: realm.kdcPort,
          // MIT's answer takes a process round trip: no retransmission races in this test.
          timers: { retransmitMs: [], abortMs: 20000 },
        }),
      );
      agent.start();
      st.after(() => agent.stop());
      const [kmPort] = await plat.bound();

      const nonce = 0x1000 + e;
      peer.send(encodeWakeUp({ kmmid: KMMID.WAKE_UP, doi: DOI.IPSEC, serverNonce: nonce, serverPrincipal: scName }), kmPort);
      const reqMsg = decodeApRequest((await peer.next(KMMID.AP_REQUEST)).data);
      assert.equal(reqMsg.serverNonce, nonce);

      // (a) a corrupted authenticator is refused by MIT (it really checks), the genuine one accepted.
      await assert.rejects(helper.cmd(`rd_req ${toHex(flip(reqMsg.apReq, 3))} FILE:${scKeytab}`), (err: unknown) => err instanceof HelperError);
      const rd = await helper.cmd(`rd_req ${toHex(reqMsg.apReq)} FILE:${scKeytab}`);
      assert.equal(rd.client, ctaName);
      assert.equal(rd.server, scName);
      assert.ok(parseInt(rd.ap_options, 16) & AP_OPTS_MUTUAL_REQUIRED, `ap_options ${rd.ap_options}`);
      assert.equal(Number(rd.ticket_etype), e);
      assert.equal(Number(rd.session_etype), e);
      const tk = agent.scs[0].ticket;
      assert.ok(tk);
      assert.equal(rd.session_key, toHex(tk.key), 'MIT read the session key the agent holds');
      // The AP Request HMAC verifies under the session key MIT found in the ticket.
      assert.ok(verifyHmac(B, usageHmacKey(B, e, fromHex(rd.session_key), USAGE.AP_REQUEST), reqMsg.signed, reqMsg.hmac));

      // (d) MIT's AP-REP with a fresh subkey, in our AP Reply.
      const mr = await helper.cmd('mk_rep');
      assert.equal(Number(mr.subkey_etype), e);
      const subkey = fromHex(mr.subkey);
      const scSpi = 0x40000000 + e;
      const cs = { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC };
      const reply = encodeApReply(B, usageHmacKey(B, e, subkey, USAGE.AP_REPLY), {
        kmmid: KMMID.AP_REPLY,
        doi: DOI.IPSEC,
        apRep: fromHex(mr.ap_rep),
        appData: { spi: scSpi },
        ciphersuite: cs,
        saLifetime: 3600,
        gracePeriod: 600,
        reestablish: false,
        ackRequired: true,
      });
      peer.send(reply, kmPort);
      const sr = decodeSaRecovered((await peer.next(KMMID.SA_RECOVERED)).data);
      assert.ok(verifySaRecovered(B, usageHmacKey(B, e, subkey, USAGE.SA_RECOVERED), sr, reply.slice(reply.length - 20)), 'SA Recovered HMAC under MIT\'s subkey');
      const sa = agent.scs[0].sa;
      assert.ok(sa, 'agent established the SA');
      assert.equal(agent.scs[0].state, 'established');
      assert.equal(sa.scSpi, scSpi);
      const ctaSpi = (reqMsg.appData as IpsecAppData).spi;
      assert.equal(sa.ctaSpi, ctaSpi);
      assert.deepEqual(sa.keys, deriveSaKeys(B, subkey, ctaSpi, scSpi));
      assert.equal(agent.counters.drops.bad_ap_rep, 0);
      assert.equal(agent.counters.drops.malformed, 0);
    });

    await t.test(`enctype ${e}: (b) our SC accepts MIT's mk_req, (c) MIT rd_rep accepts our SC's AP-REP`, async (st) => {
      // The ticket straight from the AS exchange (as the CTA gets it), into this enctype's ccache.
      const k2 = await runEnv('kinit', ['-k', '-t', ctaKeytab, '-S', scName, ctaName], env);
      assert.equal(k2.code, 0, `kinit -S: ${k2.stderr}`);
      const helper = Krb5Helper.spawn(bin, env);
      st.after(() => helper.close());
      const peer = await UdpPeer.open(); // plays the CTA's transport; MIT plays its Kerberos side
      st.after(() => peer.close());
      const sc = await startSc({ principal: scName, keytab: scKeytab, listen: { host: '127.0.0.1', port: 0 }, statePath: ':memory:', wakeOnStart: false });
      st.after(() => sc.close());
      const scErrors: string[] = [];
      sc.on('error', (err: Error) => scErrors.push(err.message));
      sc.register(ctaName, '127.0.0.1', peer.port);
      sc.wake(ctaName);
      const wake = decodeWakeUp((await peer.next(KMMID.WAKE_UP)).data);
      assert.equal(wake.serverPrincipal, scName);

      const mq = await helper.cmd(`mk_req ${scName}`);
      assert.equal(Number(mq.ticket_etype), e);
      assert.equal(Number(mq.session_etype), e);
      const sessKey = fromHex(mq.session_key);
      const mitApReq = decodeApReq(fromHex(mq.ap_req));
      assert.ok(mitApReq.apOptions & AP_OPTS_MUTUAL_REQUIRED);
      const mitAuth = decodeAuthenticator(decrypt(B, e, sessKey, KU_AP_REQ_AUTH, mitApReq.authenticator.cipher));
      const ctaSpi = 0x20000000 + e;
      const req = encodeApRequest(B, usageHmacKey(B, e, sessKey, USAGE.AP_REQUEST), {
        kmmid: KMMID.AP_REQUEST,
        doi: DOI.IPSEC,
        apReq: fromHex(mq.ap_req),
        serverNonce: wake.serverNonce,
        appData: { spi: ctaSpi },
        ciphersuites: [{ auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC }],
        reestablish: false,
      });
      const est = new Promise<EstablishedEvent>((resolve) => sc.once('established', resolve));
      peer.send(req, sc.address.port);
      const repDatagram = await peer.next(KMMID.AP_REPLY).catch((err) => {
        throw new Error(`${err.message}; SC errors: ${scErrors.join(' | ')}; drops ${JSON.stringify(sc.stats().cta_sc_drops_total)}`);
      });
      const rep = decodeApReply(repDatagram.data);

      // (c) MIT refuses a corrupted AP-REP, then reads the genuine one (ctime/cusec echo, our subkey).
      await assert.rejects(helper.cmd(`rd_rep ${toHex(flip(rep.apRep, 3))}`), (err: unknown) => err instanceof HelperError);
      const rr = await helper.cmd(`rd_rep ${toHex(rep.apRep)}`);
      assert.equal(Number(rr.ctime) * 1000, mitAuth.ctime);
      assert.equal(Number(rr.cusec), mitAuth.cusec);
      assert.equal(Number(rr.subkey_etype), e);
      const subkey = fromHex(rr.subkey);
      assert.notEqual(rr.subkey, mq.session_key, 'the SC sent a fresh subkey');
      assert.ok(verifyHmac(B, usageHmacKey(B, e, subkey, USAGE.AP_REPLY), rep.signed, rep.hmac), 'AP Reply HMAC under the subkey MIT read');

      peer.send(encodeSaRecovered(B, usageHmacKey(B, e, subkey, USAGE.SA_RECOVERED), { kmmid: KMMID.SA_RECOVERED, doi: DOI.IPSEC }, rep.hmac), sc.address.port);
      const ev = await est;
      assert.equal(ev.principal, ctaName);
      assert.equal(ev.ctaSpi, ctaSpi);
      const scSpi = (rep.appData as IpsecAppData).spi;
      assert.equal(ev.scSpi, scSpi);
      const k = sc.saKeys(ctaName);
      assert.ok(k);
      const want = deriveSaKeys(B, subkey, ctaSpi, scSpi);
      assert.deepEqual(
        [k.encCtaToSc, k.authCtaToSc, k.encScToCta, k.authScToCta],
        [want.encCtaToSc, want.authCtaToSc, want.encScToCta, want.authScToCta],
      );
      assert.equal(scErrors.length, 0, scErrors.join(' | '));
    });
  }
});
