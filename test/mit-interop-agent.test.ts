// Interop, MIT Kerberos as the KDC: the real CTA agent (firmware/agent) on a
// real-UDP platform gets its service ticket from a real MIT krb5kdc (principals
// made with kadmin.local, keys exported with ktadd), and completes the whole
// server-initiated exchange with our Signaling Controller, which verifies the
// MIT-issued ticket with the MIT-exported SC keytab:
//   Wake Up -> AS-REQ/PREAUTH_REQUIRED/AS-REQ+PA-ENC-TIMESTAMP/AS-REP (MIT)
//   -> AP Request -> AP Reply -> SA Recovered, then an RQNT over the SA.
// For enctypes 17, 18 and 19 (both principals hold only that enctype, so the
// ticket, the session key and the AP-REP subkey are all of it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { needTool } from './helpers/tools.ts';
import { nextEvent } from './helpers/events.ts';
import { startMitRealm, perEnctypePrincipals, MIT_ENCTYPES, type MitRealm } from './helpers/mit.ts';
import { makeNodePlatform } from './interop/node-platform.ts';
import { readKeytabFile, loopbackAgentConfig } from './interop/loopback-agent.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';
import { startSc, type EstablishedEvent } from '../host-tools/sc/server.ts';
import { CtaAgent } from '../firmware/agent/agent.ts';
import { buildNcsCommand, parseNcsResponse } from '../firmware/proto/esp.ts';

const REALM = 'MIT.INTEROP.TEST';

test('CTA agent with an MIT-issued ticket completes the exchange with our SC (enctypes 17, 18, 19)', async (t) => {
  for (const tool of ['kdb5_util', 'krb5kdc', 'kadmin.local']) if (!needTool(t, tool)) return;
  const etypes = [17, 18, 19];
  const realm: MitRealm = await startMitRealm({ realm: REALM, principals: perEnctypePrincipals(etypes), start: true });
  t.after(() => realm.stop());

  for (const e of etypes) {
    await t.test(`enctype ${e} (${MIT_ENCTYPES[e]})`, async (st) => {
      const ctaName = realm.principal(`cta/e${e}.example.net`);
      const scName = realm.principal(`sc/e${e}.example.net`);
      const ctaKeys = readKeytabFile(await realm.exportKeytab(ctaName), ctaName);
      assert.equal(ctaKeys.length, 1);
      assert.equal(ctaKeys[0].etype, e);
      // The SC loads MIT's keytab file unchanged.
      const scKeytab = await realm.exportKeytab(scName);

      const sc = await startSc({ principal: scName, keytab: scKeytab, listen: { host: '127.0.0.1', port: 0 }, statePath: ':memory:', wakeOnStart: false });
      st.after(() => sc.close());
      const krbErrors: string[] = [];
      sc.on('error', (err: Error) => krbErrors.push(err.message));

      const plat = makeNodePlatform({ crypto: nobleBackend });
      st.after(() => plat.close());
      const cfg = loopbackAgentConfig({ principal: `cta/e${e}.example.net`, realm: REALM, keys: ctaKeys, sc: { principal: scName, port: sc.address.port }, kdcPort: realm.kdcPort });
      const agent = new CtaAgent(plat, cfg);
      agent.start();
      st.after(() => agent.stop());
      const [kmPort, , sigPort] = await plat.bound();
      sc.register(ctaName, '127.0.0.1', kmPort, sigPort);

      const est = nextEvent<EstablishedEvent>(sc, 'established', undefined, 10000);
      sc.wake(ctaName);
      const ev = await est.catch((err) => {
        throw new Error(`${err.message}; agent ${JSON.stringify(agent.status().counters)}; SC errors ${krbErrors.join(' | ')}\nKDC log:\n${realm.kdcLog().slice(-1500)}`);
      });
      assert.equal(ev.principal, ctaName);
      assert.equal(ev.clientInitiated, false);

      // The agent went to MIT for the ticket, with pre-authentication.
      const c = agent.counters;
      assert.equal(c.asExchanges, 1);
      assert.equal(c.asRequestsSent, 2, 'bare AS-REQ, then one with PA-ENC-TIMESTAMP');
      assert.equal(c.ticketsCached, 1);
      assert.equal(c.sessionsEstablished, 1);
      assert.equal(c.saRecoveredSent, 1);
      assert.equal(c.drops.internal, 0);
      assert.equal(c.drops.malformed, 0);
      const log = realm.kdcLog();
      const n = `${MIT_ENCTYPES[e]}\\(${e}\\)`;
      assert.match(log, new RegExp(`AS_REQ .*NEEDED_PREAUTH: ${ctaName.replace(/\./g, '\\.')} for ${scName.replace(/\./g, '\\.')}`));
      assert.match(log, new RegExp(`AS_REQ .*ISSUE: authtime \\d+, etypes \\{rep=${n}, tkt=${n}, ses=${n}\\}, ${ctaName.replace(/\./g, '\\.')} for ${scName.replace(/\./g, '\\.')}`));

      // Both sides hold the same SA.
      const sa = agent.scs[0].sa;
      assert.ok(sa, 'agent has an SA');
      assert.equal(agent.scs[0].state, 'established');
      assert.equal(agent.scs[0].ticket?.etype, e, 'session key enctype');
      assert.equal(agent.scs[0].ticket?.ticket.encPart.etype, e, 'ticket enctype');
      assert.equal(sc.hasSa(ctaName), true);
      const k = sc.saKeys(ctaName);
      assert.ok(k);
      assert.equal(k.ctaSpi, sa.ctaSpi);
      assert.equal(k.scSpi, sa.scSpi);
      assert.deepEqual(k.encCtaToSc, sa.keys.encCtaToSc);
      assert.deepEqual(k.authCtaToSc, sa.keys.authCtaToSc);
      assert.deepEqual(k.encScToCta, sa.keys.encScToCta);
      assert.deepEqual(k.authScToCta, sa.keys.authScToCta);
      assert.equal(sc.get(ctaName)?.state, 'established');
      assert.equal(krbErrors.length, 0, krbErrors.join(' | '));

      // A protected RQNT crosses the SA and is answered.
      const resp = parseNcsResponse(await sc.sendSignaling(ctaName, buildNcsCommand('RQNT', String(1200 + e), `aaln/1@e${e}.example.net`, ['X: 0123456789AB', 'R: hd(N)']), 5000));
      assert.equal(resp.code, 200);
      assert.equal(resp.txid, String(1200 + e));
      assert.equal(agent.counters.signalingAnswered, 1);
    });
  }
});
