// Interoperability with MIT Kerberos' KDC (Debian krb5-kdc): a full AS
// exchange built and parsed with our codecs only. The KDC's PREAUTH_REQUIRED
// KRB-ERROR (METHOD-DATA, ETYPE-INFO2), its AS-REP, the EncKDCRepPart it
// encrypts (as [APPLICATION 26]), and the ticket's EncTicketPart all decode,
// and re-encode to exactly the bytes MIT sent. Unknown principals give the
// expected error codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import * as k from '../firmware/proto/krb5.ts';
import { fromAscii, fromUtf8, toHex } from '../firmware/proto/bytes.ts';
import { decrypt, encrypt, stringToKey } from '../firmware/proto/crypto/enctypes.ts';
import { parseKeytab } from '../firmware/proto/keytab.ts';
import { nodeBackend } from '../host-tools/crypto/node.ts';
import { needTool } from './helpers/tools.ts';
import { startMitRealm } from './helpers/mit.ts';

const PASSWORD = 'Cta-Secret-1';

function udpRequest(port: number, msg: Uint8Array): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error('no reply from the KDC within 10 s'));
    }, 10000);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve(new Uint8Array(m));
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      s.close();
      reject(e);
    });
    s.bind(0, '127.0.0.1', () => s.send(msg, port, '127.0.0.1'));
  });
}

test('a complete AS exchange with MIT krb5kdc through our codecs', async (t) => {
  for (const tool of ['kdb5_util', 'kadmin.local', 'krb5kdc']) if (!needTool(t, tool)) return;
  const realm = await startMitRealm({
    principals: [
      { name: 'cta-0001', password: PASSWORD, enctypes: [18, 17], options: '+requires_preauth' },
      { name: 'sc/sc1.example.net', enctypes: [17] },
    ],
    start: true,
  });
  t.after(() => realm.stop());
  const R = realm.realm;
  const cname = k.parsePrincipal(`cta-0001@${R}`).name;
  const sname = k.parsePrincipal(`sc/sc1.example.net@${R}`).name;
  const now = Date.now();
  const nonce = 0x7e5a1c33;
  const body: k.KdcReqBody = {
    kdcOptions: 0,
    cname,
    realm: R,
    sname,
    till: now + 3600000,
    nonce,
    etype: [k.ETYPE_AES128_CTS_HMAC_SHA1_96, k.ETYPE_AES256_CTS_HMAC_SHA1_96],
  };

  // 1. No pre-authentication: PREAUTH_REQUIRED with METHOD-DATA.
  const errBytes = await udpRequest(realm.kdcPort, k.encodeAsReq({ reqBody: body }));
  assert.equal(k.messageType(errBytes), k.KRB_ERROR, realm.kdcLog());
  const err = k.decodeKrbError(errBytes);
  assert.equal(toHex(k.encodeKrbError(err)), toHex(errBytes), 'MIT KRB-ERROR re-encodes byte-exactly');
  assert.equal(err.errorCode, k.KDC_ERR_PREAUTH_REQUIRED);
  assert.equal(err.realm, R);
  assert.deepEqual(err.sname.nameString, sname.nameString);
  assert.ok(Math.abs(err.stime - now) < 60000);
  const md = k.decodeMethodData(err.eData!);
  assert.equal(toHex(k.encodeMethodData(md)), toHex(err.eData!));
  assert.ok(k.findPaData(md, k.PA_ENC_TIMESTAMP), 'KDC offers PA-ENC-TIMESTAMP');
  const info = k.decodeEtypeInfo2(k.findPaData(md, k.PA_ETYPE_INFO2)!.padataValue);
  const e17 = info.find((e) => e.etype === k.ETYPE_AES128_CTS_HMAC_SHA1_96);
  assert.ok(e17, `ETYPE-INFO2 ${JSON.stringify(info)}`);
  const salt = e17.salt ?? `${R}cta-0001`;
  const ckey = stringToKey(nodeBackend, 17, fromUtf8(PASSWORD), fromAscii(salt), e17.s2kparams ?? null);

  // 2. With PA-ENC-TIMESTAMP: an AS-REP.
  const ts = k.encodePaEncTsEnc({ patimestamp: Date.now(), pausec: 4321 });
  const pa: k.PaData = {
    padataType: k.PA_ENC_TIMESTAMP,
    padataValue: k.encodeEncryptedData({ etype: 17, cipher: encrypt(nodeBackend, 17, ckey, k.KU_AS_REQ_PA_ENC_TIMESTAMP, ts) }),
  };
  const repBytes = await udpRequest(realm.kdcPort, k.encodeAsReq({ padata: [pa], reqBody: body }));
  assert.equal(k.messageType(repBytes), k.KRB_AS_REP, `${toHex(repBytes.subarray(0, 16))} ${realm.kdcLog()}`);
  const rep = k.decodeAsRep(repBytes);
  assert.equal(toHex(k.encodeAsRep(rep)), toHex(repBytes), 'MIT AS-REP re-encodes byte-exactly');
  assert.equal(rep.crealm, R);
  assert.deepEqual(rep.cname.nameString, ['cta-0001']);
  assert.equal(rep.ticket.realm, R);
  assert.deepEqual(rep.ticket.sname.nameString, sname.nameString);
  assert.equal(toHex(k.ticketDer(repBytes)), toHex(rep.ticket.raw!));
  const { raw, ...fields } = rep.ticket;
  assert.equal(toHex(k.encodeTicket(fields)), toHex(raw!), 'ticket fields re-encode to MIT bytes');

  // 3. The enc-part (key usage 3): MIT sends EncTGSRepPart [APPLICATION 26].
  assert.equal(rep.encPart.etype, 17);
  const plain = decrypt(nodeBackend, 17, ckey, k.KU_AS_REP_ENCPART, rep.encPart.cipher);
  assert.equal(plain[0], 0x7a, 'MIT encodes the AS-REP enc-part as EncTGSRepPart');
  const part = k.decodeEncKdcRepPart(plain);
  assert.equal(toHex(k.encodeEncKdcRepPart(part, plain[0] & 0x1f)), toHex(plain), `enc-part (app ${plain[0] & 0x1f}) re-encodes byte-exactly`);
  assert.equal(part.nonce, nonce);
  assert.equal(part.srealm, R);
  assert.deepEqual(part.sname.nameString, sname.nameString);
  assert.equal(part.key.keytype, 17);
  assert.equal(part.key.keyvalue.length, 16);
  assert.ok(part.flags & k.TKT_FLG_INITIAL && part.flags & k.TKT_FLG_PRE_AUTHENT, part.flags.toString(16));
  assert.ok(part.endtime > part.authtime);

  // 4. The ticket, under the service key from MIT's keytab (key usage 2).
  const kt = parseKeytab(new Uint8Array(readFileSync(await realm.exportKeytab('sc/sc1.example.net'))));
  const skey = kt.find((e) => e.etype === 17 && e.kvno === rep.ticket.encPart.kvno);
  assert.ok(skey, 'service key for the ticket kvno');
  const tplain = decrypt(nodeBackend, 17, skey.key, k.KU_KDC_REP_TICKET, rep.ticket.encPart.cipher);
  const etp = k.decodeEncTicketPart(tplain);
  assert.equal(toHex(k.encodeEncTicketPart(etp)), toHex(tplain), 'EncTicketPart re-encodes byte-exactly');
  assert.equal(etp.crealm, R);
  assert.deepEqual(etp.cname.nameString, ['cta-0001']);
  assert.equal(toHex(etp.key.keyvalue), toHex(part.key.keyvalue));
  assert.equal(etp.authtime, part.authtime);
  assert.equal(etp.endtime, part.endtime);

  // 5. Unknown client / unknown service.
  const unknownC = k.decodeKrbError(
    await udpRequest(realm.kdcPort, k.encodeAsReq({ reqBody: { ...body, cname: { nameType: 1, nameString: ['nobody'] } } })),
  );
  assert.equal(unknownC.errorCode, k.KDC_ERR_C_PRINCIPAL_UNKNOWN);
  const unknownS = k.decodeKrbError(
    await udpRequest(realm.kdcPort, k.encodeAsReq({ padata: [pa], reqBody: { ...body, sname: { nameType: 1, nameString: ['sc', 'nowhere'] } } })),
  );
  assert.equal(unknownS.errorCode, k.KDC_ERR_S_PRINCIPAL_UNKNOWN);
});
