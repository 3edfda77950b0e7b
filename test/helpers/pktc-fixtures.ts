// Shared fixtures for the pktc tests: structurally real Kerberos DER (built
// with krb5.ts, with filler ciphertext) and one message of every kind.
import { encodeApRep, encodeApReq, encodeKrbError, NT_SRV_INST } from '../../firmware/proto/krb5.ts';
import { DOI, KMMID, IPSEC_AUTH, IPSEC_ENC, SNMP_AUTH, SNMP_ENC } from '../../firmware/proto/pktc.ts';
import type { ApReply, ApRequest, ErrorReply, Rekey, SaRecovered, WakeUp, PktcMessage } from '../../firmware/proto/pktc.ts';

export const SC_PRINCIPAL = 'sc/sc1.example.net@EXAMPLE.NET';
const SNAME = { nameType: NT_SRV_INST, nameString: ['sc', 'sc1.example.net'] };

function filler(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i * 37) & 0xff;
  return b;
}

/** AP-REQ DER; `authLen` lets a test grow it past the 2-byte DER length form. */
export function apReqDer(authLen = 60): Uint8Array {
  return encodeApReq({
    apOptions: 0x20000000, // mutual-required
    ticket: { realm: 'EXAMPLE.NET', sname: SNAME, encPart: { etype: 17, kvno: 2, cipher: filler(120, 1) } },
    authenticator: { etype: 17, cipher: filler(authLen, 2) },
  });
}
export function apRepDer(): Uint8Array {
  return encodeApRep({ encPart: { etype: 17, cipher: filler(70, 3) } });
}
export function krbErrorDer(): Uint8Array {
  return encodeKrbError({ stime: Date.UTC(2026, 0, 2, 3, 4, 5), susec: 123, errorCode: 37, realm: 'EXAMPLE.NET', sname: SNAME });
}

export const SNMP_APPDATA = {
  engineId: new Uint8Array([0x80, 0x00, 0x1f, 0x88, 0x04, 0x63, 0x74, 0x61, 0x31]), // RFC 3411 text format "cta1"
  engineBoots: 7,
  engineTime: 123456,
  userName: 'cta-admin',
};

export function wakeUp(doi = DOI.IPSEC): WakeUp {
  return { kmmid: KMMID.WAKE_UP as 1, doi, serverNonce: 0x8badf00d, serverPrincipal: SC_PRINCIPAL };
}
export function apRequest(doi = DOI.IPSEC): ApRequest {
  return {
    kmmid: 2,
    doi,
    apReq: apReqDer(),
    serverNonce: 0x8badf00d,
    appData: doi === DOI.IPSEC ? { spi: 0x1000abcd } : SNMP_APPDATA,
    ciphersuites:
      doi === DOI.IPSEC
        ? [
            { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC },
            { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.NULL },
          ]
        : [{ auth: SNMP_AUTH.HMAC_SHA1, enc: SNMP_ENC.NULL }],
    reestablish: true,
  };
}
export function apReply(doi = DOI.IPSEC): ApReply {
  return {
    kmmid: 3,
    doi,
    apRep: apRepDer(),
    appData: doi === DOI.IPSEC ? { spi: 0x2000beef } : { ...SNMP_APPDATA, engineBoots: 9, userName: 'sc' },
    ciphersuite:
      doi === DOI.IPSEC ? { auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC } : { auth: SNMP_AUTH.HMAC_SHA1, enc: SNMP_ENC.NULL },
    saLifetime: 604800,
    gracePeriod: 3600,
    reestablish: false,
    ackRequired: true,
  };
}
export function saRecovered(doi = DOI.IPSEC): SaRecovered {
  return { kmmid: 4, doi };
}
export function rekey(): Rekey {
  return {
    kmmid: 5,
    doi: DOI.IPSEC,
    serverNonce: 0x12345678,
    serverPrincipal: SC_PRINCIPAL,
    timestamp: Date.UTC(2026, 4, 17, 13, 45, 9),
    appData: { spi: 0x2000beef },
    ciphersuites: [{ auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC }],
    saLifetime: 86400,
    gracePeriod: 600,
    reestablish: true,
  };
}
export function errorReply(doi = DOI.IPSEC): ErrorReply {
  return { kmmid: 6, doi, krbError: krbErrorDer() };
}

/** Every message kind, in both DOIs where the profile defines it. */
export function allMessages(): PktcMessage[] {
  return [
    wakeUp(DOI.IPSEC),
    wakeUp(DOI.SNMPV3),
    apRequest(DOI.IPSEC),
    apRequest(DOI.SNMPV3),
    apReply(DOI.IPSEC),
    apReply(DOI.SNMPV3),
    saRecovered(DOI.IPSEC),
    saRecovered(DOI.SNMPV3),
    rekey(),
    errorReply(DOI.IPSEC),
    errorReply(DOI.SNMPV3),
  ];
}
