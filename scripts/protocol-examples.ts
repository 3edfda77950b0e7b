// Worked examples for docs/protocol.md, from fixed keys, nonces, confounders and
// IVs so the hex is reproducible. Run:  npx tsx scripts/protocol-examples.ts
// (prints Markdown). test/pktc.test.ts checks that docs/protocol.md still
// contains every example this script produces.
import { pathToFileURL } from 'node:url';
import { fromAscii, fromHex, toHex } from '../firmware/proto/bytes.ts';
import { encrypt, usageHmacKey, ETYPE, hmacSha1 } from '../firmware/proto/crypto/index.ts';
import {
  encodeApRep,
  encodeApReq,
  encodeAuthenticator,
  encodeEncApRepPart,
  encodeEncTicketPart,
  encodeKrbError,
  NT_PRINCIPAL,
  NT_SRV_INST,
} from '../firmware/proto/krb5.ts';
import {
  DOI,
  IPSEC_AUTH,
  IPSEC_ENC,
  SNMP_AUTH,
  SNMP_ENC,
  USAGE,
  encodeApReply,
  encodeApRequest,
  encodeErrorReply,
  encodeRekey,
  encodeSaRecovered,
  encodeWakeUp,
} from '../firmware/proto/pktc.ts';
import { deriveSaKeys, saInfo } from '../firmware/proto/sa.ts';
import { espSeal, buildNcsCommand } from '../firmware/proto/esp.ts';
import { encodeFrame } from '../firmware/proto/serial-frame.ts';
import { cborEncode } from '../firmware/proto/cbor.ts';
import { crc16 } from '../firmware/proto/crc16.ts';
import { nobleBackend } from '../host-tools/crypto/noble.ts';

export interface Example {
  id: string;
  title: string;
  bytes: Uint8Array;
}

const b = nobleBackend;
const E17 = ETYPE.AES128_CTS_HMAC_SHA1_96;

/** Fixed inputs (test values only: never use these keys anywhere). */
export const FIXED = {
  realm: 'EXAMPLE.NET',
  scPrincipal: 'sc/sc1.example.net@EXAMPLE.NET',
  ctaName: 'cta1',
  scServiceKey: fromHex('0123456789abcdef0123456789abcdef'), // sc/sc1.example.net's long-term key, kvno 3
  sessionKey: fromHex('00112233445566778899aabbccddeeff'), // ticket session key
  subkey: fromHex('f0e1d2c3b4a5968778695a4b3c2d1e0f'), // AP-REP subkey chosen by the SC
  confounder: (n: number) => new Uint8Array(16).fill(n),
  nonce: 0x5eed1234,
  rekeyNonce: 0x0badcafe,
  ctaSpi: 0x1000abcd,
  scSpi: 0x2000beef,
  authtime: Date.UTC(2026, 4, 17, 13, 44, 0),
  ctime: Date.UTC(2026, 4, 17, 13, 45, 0),
  cusec: 123456,
  rekeyTime: Date.UTC(2026, 4, 24, 12, 0, 0),
  espIv: fromHex('000102030405060708090a0b0c0d0e0f'),
};

export function buildExamples(): { examples: Example[]; notes: { [k: string]: string } } {
  const F = FIXED;
  const sname = { nameType: NT_SRV_INST, nameString: ['sc', 'sc1.example.net'] };
  const cname = { nameType: NT_PRINCIPAL, nameString: [F.ctaName] };

  // --- Kerberos parts (real DER, real RFC 3962 encryption with fixed confounders)
  const encTicketPart = encodeEncTicketPart({
    flags: 0x00000000,
    key: { keytype: E17, keyvalue: F.sessionKey },
    crealm: F.realm,
    cname,
    transited: { trType: 1, contents: new Uint8Array(0) },
    authtime: F.authtime,
    endtime: F.authtime + 10 * 3600 * 1000,
  });
  const ticket = {
    realm: F.realm,
    sname,
    encPart: { etype: E17, kvno: 3, cipher: encrypt(b, E17, F.scServiceKey, 2, encTicketPart, F.confounder(1)) },
  };
  const authenticator = encodeAuthenticator({ crealm: F.realm, cname, cusec: F.cusec, ctime: F.ctime });
  const apReq = encodeApReq({
    apOptions: 0x20000000, // mutual-required
    ticket,
    authenticator: { etype: E17, cipher: encrypt(b, E17, F.sessionKey, 11, authenticator, F.confounder(2)) },
  });
  const encApRepPart = encodeEncApRepPart({ ctime: F.ctime, cusec: F.cusec, subkey: { keytype: E17, keyvalue: F.subkey } });
  const apRep = encodeApRep({ encPart: { etype: E17, cipher: encrypt(b, E17, F.sessionKey, 12, encApRepPart, F.confounder(3)) } });
  const krbError = encodeKrbError({ stime: F.ctime + 3600 * 1000, susec: 0, errorCode: 37, realm: F.realm, sname });

  // --- HMAC keys
  const kReq = usageHmacKey(b, E17, F.sessionKey, USAGE.AP_REQUEST);
  const kRep = usageHmacKey(b, E17, F.subkey, USAGE.AP_REPLY);
  const kRec = usageHmacKey(b, E17, F.subkey, USAGE.SA_RECOVERED);
  const kRekey = usageHmacKey(b, E17, F.sessionKey, USAGE.REKEY);

  const wake = encodeWakeUp({ kmmid: 1, doi: DOI.IPSEC, serverNonce: F.nonce, serverPrincipal: F.scPrincipal });
  const req = encodeApRequest(b, kReq, {
    kmmid: 2,
    doi: DOI.IPSEC,
    apReq,
    serverNonce: F.nonce,
    appData: { spi: F.ctaSpi },
    ciphersuites: [
      { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC },
      { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.NULL },
    ],
    reestablish: false,
  });
  const reqSnmp = encodeApRequest(b, kReq, {
    kmmid: 2,
    doi: DOI.SNMPV3,
    apReq,
    serverNonce: 0,
    appData: { engineId: fromHex('80001f880463746131'), engineBoots: 3, engineTime: 4711, userName: 'cta1-admin' },
    ciphersuites: [{ auth: SNMP_AUTH.HMAC_SHA1, enc: SNMP_ENC.NULL }],
    reestablish: false,
  });
  const rep = encodeApReply(b, kRep, {
    kmmid: 3,
    doi: DOI.IPSEC,
    apRep,
    appData: { spi: F.scSpi },
    ciphersuite: { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC },
    saLifetime: 604800,
    gracePeriod: 3600,
    reestablish: false,
    ackRequired: true,
  });
  const repHmac = rep.subarray(rep.length - 20);
  const rec = encodeSaRecovered(b, kRec, { kmmid: 4, doi: DOI.IPSEC }, repHmac);
  const rekey = encodeRekey(b, kRekey, {
    kmmid: 5,
    doi: DOI.IPSEC,
    serverNonce: F.rekeyNonce,
    serverPrincipal: F.scPrincipal,
    timestamp: F.rekeyTime,
    appData: { spi: F.scSpi },
    ciphersuites: [{ auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC }],
    saLifetime: 604800,
    gracePeriod: 3600,
    reestablish: true,
  });
  const err = encodeErrorReply({ kmmid: 6, doi: DOI.IPSEC, krbError });

  // --- SA and ESP
  const sa = deriveSaKeys(b, F.subkey, F.ctaSpi, F.scSpi);
  const rqnt = buildNcsCommand('RQNT', '1201', 'aaln/1@cta1.example.net', ['R: hd']);
  const esp = espSeal(b, { spi: F.ctaSpi, seq: 1, encKey: sa.encScToCta, authKey: sa.authScToCta }, fromAscii(rqnt), 17, F.espIv);

  // --- serial
  const frame = encodeFrame(1, wake);
  const ctl = encodeFrame(0, { cmd: 'status' });
  const wakeCbor = cborEncode([1, wake]);

  const examples: Example[] = [
    { id: 'ap-req-der', title: 'KRB_AP_REQ DER', bytes: apReq },
    { id: 'ap-rep-der', title: 'KRB_AP_REP DER', bytes: apRep },
    { id: 'krb-error-der', title: 'KRB_ERROR DER (37, clock skew)', bytes: krbError },
    { id: 'ki-1101', title: 'HMAC key, usage 1101 (AP Request), from the session key', bytes: kReq },
    { id: 'ki-1102', title: 'HMAC key, usage 1102 (AP Reply), from the subkey', bytes: kRep },
    { id: 'ki-1103', title: 'HMAC key, usage 1103 (SA Recovered), from the subkey', bytes: kRec },
    { id: 'ki-1104', title: 'HMAC key, usage 1104 (Rekey), from the session key', bytes: kRekey },
    { id: 'wake-up', title: 'Wake Up (DOI IPsec)', bytes: wake },
    { id: 'ap-request', title: 'AP Request (DOI IPsec)', bytes: req },
    { id: 'ap-request-snmp', title: 'AP Request (DOI SNMPv3, client-initiated nonce 0)', bytes: reqSnmp },
    { id: 'ap-reply', title: 'AP Reply (DOI IPsec)', bytes: rep },
    { id: 'sa-recovered', title: 'SA Recovered', bytes: rec },
    { id: 'rekey', title: 'Rekey (DOI IPsec)', bytes: rekey },
    { id: 'error-reply', title: 'Error Reply', bytes: err },
    { id: 'sa-info', title: 'HKDF info for the SA keys', bytes: saInfo(F.ctaSpi, F.scSpi) },
    { id: 'sa-enc-cta-sc', title: 'SA key: enc CTA->SC', bytes: sa.encCtaToSc },
    { id: 'sa-auth-cta-sc', title: 'SA key: auth CTA->SC', bytes: sa.authCtaToSc },
    { id: 'sa-enc-sc-cta', title: 'SA key: enc SC->CTA', bytes: sa.encScToCta },
    { id: 'sa-auth-sc-cta', title: 'SA key: auth SC->CTA', bytes: sa.authScToCta },
    { id: 'esp', title: 'ESP packet SC->CTA carrying an NCS RQNT (seq 1, fixed IV)', bytes: esp },
    { id: 'frame-cbor', title: 'CBOR([1, <Wake Up bytes>])', bytes: wakeCbor },
    { id: 'frame-km', title: 'Serial frame, channel 1, the Wake Up', bytes: frame },
    { id: 'frame-control', title: 'Serial frame, channel 0, {"cmd": "status"}', bytes: ctl },
  ];

  const notes: { [k: string]: string } = {
    apReqHmacCheck: toHex(hmacSha1(b, kReq, req.subarray(0, req.length - 20))),
    frameCrc: crc16(wakeCbor).toString(16).padStart(4, '0'),
    rqnt: JSON.stringify(rqnt),
  };
  return { examples, notes };
}

/** Hex in lines of 16 bytes, pairs separated by spaces. */
export function hexBlock(bytes: Uint8Array): string {
  const h = toHex(bytes);
  const lines: string[] = [];
  for (let i = 0; i < h.length; i += 32) lines.push(h.slice(i, i + 32).replace(/(..)(?!$)/g, '$1 '));
  return lines.join('\n');
}

function main(): void {
  const { examples, notes } = buildExamples();
  const F = FIXED;
  const out: string[] = [];
  out.push('Fixed inputs (test values, never real keys):');
  out.push('');
  out.push(`- SC service key (aes128-cts-hmac-sha1-96, kvno 3): \`${toHex(F.scServiceKey)}\``);
  out.push(`- ticket session key: \`${toHex(F.sessionKey)}\``);
  out.push(`- AP-REP subkey: \`${toHex(F.subkey)}\``);
  out.push(`- confounders: 16 x 0x01 (ticket), 0x02 (authenticator), 0x03 (EncAPRepPart)`);
  out.push(`- nonce 0x${F.nonce.toString(16)}, Rekey nonce 0x${F.rekeyNonce.toString(16)}, CTA SPI 0x${F.ctaSpi.toString(16)}, SC SPI 0x${F.scSpi.toString(16)}`);
  out.push(`- ctime ${new Date(F.ctime).toISOString()} cusec ${F.cusec}; Rekey timestamp ${new Date(F.rekeyTime).toISOString()}`);
  out.push(`- ESP IV \`${toHex(F.espIv)}\`, payload ${notes.rqnt}`);
  out.push('');
  for (const e of examples) {
    out.push(`#### ${e.title} (${e.bytes.length} bytes)`);
    out.push('');
    out.push('```');
    out.push(hexBlock(e.bytes));
    out.push('```');
    out.push('');
  }
  out.push(`HMAC-SHA1(Ki-1101, AP Request without its last 20 bytes) = \`${notes.apReqHmacCheck}\` (= the AP Request's last 20 bytes).`);
  out.push(`CRC-16/CCITT-FALSE of the channel-1 CBOR = 0x${notes.frameCrc}.`);
  console.log(out.join('\n'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
