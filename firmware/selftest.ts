// A bundle entry that proves the protocol core runs on the interpreter: RFC
// vectors for enctypes 17/18/19 through the board's native crypto backend, a
// Kerberos DER round trip and a pktc round trip. The etype-19 vectors run where the
// board's image has enctype 19 (board-configs "enctypes": not on the Puck.js). Prints one line,
// "SELFTEST PASS <n>" or "SELFTEST FAIL <what>; <what>...", and leaves the
// result in global.selftest = {pass, n, failures} for the emulator.
// Build: cta build --board linux --entry firmware/selftest.ts
// First, so its Espruino fixes (installEspruinoFixes) are in place before any other module runs.
import { espruinoRequire } from './platform/espruino.ts';
import { fromHex, toHex, fromAscii, ctEqual } from './proto/bytes.ts';
import { ETYPE, hasEnctype, stringToKey, usageKeys, encrypt, decrypt, makeChecksum, aesCts, ZERO_IV } from './proto/crypto/index.ts';
import {
  encodePrincipalName,
  decodePrincipalName,
  encodeEncryptedData,
  decodeEncryptedData,
  encodeTicket,
  decodeTicket,
} from './proto/krb5.ts';
import { formatKerberosTime, parseKerberosTime } from './proto/der.ts';
import { KMMID, DOI, USAGE, IPSEC_AUTH, IPSEC_ENC, encodeWakeUp, decodeWakeUp, encodeRekey, decodeRekey, verifyHmac, timestampToMs } from './proto/pktc.ts';
import { usageHmacKey } from './proto/crypto/index.ts';
import { makeEspruinoBackend } from './platform/espruino-crypto.ts';
import type { CryptoBackend } from './proto/crypto/backend.ts';

declare const global: { [k: string]: any };
declare const E: { hwRand(): number };
declare function print(s: string): void;

const failures: string[] = [];
let passed = 0;

function check(name: string, fn: () => boolean): void {
  try {
    if (fn()) passed++;
    else failures.push(name);
  } catch (e) {
    failures.push(name + ': ' + ((e && (e as Error).message) || String(e)));
  }
}

function eqHex(a: Uint8Array, hex: string): boolean {
  return toHex(a) === hex.replace(/ /g, '').toLowerCase();
}

function h(s: string): Uint8Array {
  return fromHex(s.replace(/ /g, ''));
}

function run(b: CryptoBackend): void {
  // Native primitives (FIPS 180 "abc").
  check('sha1', function () {
    return eqHex(b.sha1(fromAscii('abc')), 'a9993e364706816aba3e25717850c26c9cd0d89d');
  });
  check('sha256', function () {
    return eqHex(b.sha256(fromAscii('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  // RFC 3962 B: AES-128 CTS, 17-byte input (exercises the CBC backend and the CTS swap).
  check('aes-cts', function () {
    const key = h('63 68 69 63 6b 65 6e 20 74 65 72 69 79 61 6b 69');
    const pt = h('49 20 77 6f 75 6c 64 20 6c 69 6b 65 20 74 68 65 20');
    const ct = aesCts(b, key, ZERO_IV, pt, true);
    return eqHex(ct, 'c6 35 35 68 f2 bf 8c b4 d8 a5 80 36 2d a7 ff 7f 97') && ctEqual(aesCts(b, key, ZERO_IV, ct, false), pt);
  });
  // RFC 3962 B: string-to-key, 1 iteration, for 17 and 18.
  const pw = fromAscii('password');
  const salt = fromAscii('ATHENA.MIT.EDUraeburn');
  const one = h('00 00 00 01');
  let k17: Uint8Array | null = null;
  let k18: Uint8Array | null = null;
  check('s2k-17', function () {
    k17 = stringToKey(b, ETYPE.AES128_CTS_HMAC_SHA1_96, pw, salt, one);
    return eqHex(k17, '42 26 3c 6e 89 f4 fc 28 b8 df 68 ee 09 79 9f 15');
  });
  check('s2k-18', function () {
    k18 = stringToKey(b, ETYPE.AES256_CTS_HMAC_SHA1_96, pw, salt, one);
    return eqHex(k18, 'fe 69 7b 52 bc 0d 3c e1 44 32 ba 03 6a 92 e6 5b bb 52 28 09 90 a2 fa 27 88 39 98 d7 2a f3 01 61');
  });
  // Encrypt/decrypt round trips under the derived keys (random confounder from the backend).
  check('enc-17', function () {
    const msg = fromAscii('selftest 17: short');
    const c = encrypt(b, 17, k17 as any, 3, msg);
    return c.length === 16 + msg.length + 12 && ctEqual(decrypt(b, 17, k17 as any, 3, c), msg);
  });
  check('enc-18', function () {
    const msg = fromAscii('selftest 18: a message longer than one AES block');
    const c = encrypt(b, 18, k18 as any, 12, msg);
    return c.length === 16 + msg.length + 12 && ctEqual(decrypt(b, 18, k18 as any, 12, c), msg);
  });
  // RFC 8009 A: key derivation, an encryption with a given confounder, a checksum (etype 19).
  const base19 = h('37 05 D9 60 80 C1 77 28 A0 E8 00 EA B6 E0 D2 3C');
  if (hasEnctype(19)) rfc8009(b, base19);
  // Kerberos DER round trip.
  check('der-ticket', function () {
    const t = {
      realm: 'EXAMPLE.NET',
      sname: { nameType: 2, nameString: ['sc', 'sc1.example.net'] },
      encPart: { etype: 19, kvno: 3, cipher: h('00 11 22 33 44 55 66 77 88 99') },
    };
    const der = encodeTicket(t);
    const back = decodeTicket(der);
    return (
      back.realm === t.realm &&
      back.sname.nameString.join('/') === 'sc/sc1.example.net' &&
      back.encPart.etype === 19 &&
      back.encPart.kvno === 3 &&
      ctEqual(back.encPart.cipher, t.encPart.cipher) &&
      ctEqual(encodeTicket(back), der)
    );
  });
  check('der-small', function () {
    const pn = decodePrincipalName(encodePrincipalName({ nameType: 1, nameString: ['cta-0001'] }));
    const ed = decodeEncryptedData(encodeEncryptedData({ etype: 17, cipher: h('aa bb') }));
    return pn.nameString[0] === 'cta-0001' && pn.nameType === 1 && ed.etype === 17 && ed.kvno === undefined && eqHex(ed.cipher, 'aabb');
  });
  check('der-reject', function () {
    try {
      decodeTicket(h('61 05 30 03 a0 01'));
      return false;
    } catch (e) {
      return (e as Error).name === 'DecodeError' || (e as Error).message.length > 0;
    }
  });
  // KerberosTime through the interpreter's Date (Date.parse, toISOString): real dates
  // both ways, impossible ones refused (years from 1900: boards built with
  // ESPR_LIMIT_DATE_RANGE refuse years before 1500).
  check('kerberos-time', function () {
    const ok: [number, string][] = [
      [0, '19700101000000Z'],
      [-1000, '19691231235959Z'],
      [951782400000, '20000229000000Z'],
      [4107542400000, '21000301000000Z'],
      [1700000000999, '20231114221320Z'],
      [253402300799000, '99991231235959Z'],
    ];
    for (let i = 0; i < ok.length; i++) {
      if (formatKerberosTime(ok[i][0]) !== ok[i][1] || parseKerberosTime(ok[i][1]) !== Math.floor(ok[i][0] / 1000) * 1000) return false;
    }
    const bad = ['19000229000000Z', '20230230000000Z', '20231301000000Z', '20230100000000Z', '20230101240000Z', '20230101006000Z', '20230101000060Z', '2023010100000+Z', '20230101000000Y'];
    for (let i = 0; i < bad.length; i++) if (parseKerberosTime(bad[i]) === parseKerberosTime(bad[i])) return false;
    try {
      timestampToMs('260230000000Z');
      return false;
    } catch (e) {
      return timestampToMs('500101000000Z') === -631152000000 && timestampToMs('491231235959Z') === 2524607999000;
    }
  });
  // pktc round trips: an unsigned Wake Up and a signed Rekey.
  check('pktc-wakeup', function () {
    const bytes = encodeWakeUp({ kmmid: 1, doi: DOI.IPSEC, serverNonce: 0x89abcdef, serverPrincipal: 'sc/sc1.example.net@EXAMPLE.NET' });
    const m = decodeWakeUp(bytes);
    return bytes[0] === KMMID.WAKE_UP && m.serverNonce === 0x89abcdef && m.serverPrincipal === 'sc/sc1.example.net@EXAMPLE.NET';
  });
  check('pktc-rekey', function () {
    const key = usageHmacKey(b, hasEnctype(19) ? 19 : 17, base19, USAGE.REKEY);
    const bytes = encodeRekey(b, key, {
      kmmid: 5,
      doi: DOI.IPSEC,
      serverNonce: 7,
      serverPrincipal: 'sc/sc1.example.net@EXAMPLE.NET',
      timestamp: 1700000000000,
      appData: { spi: 0x1234 },
      ciphersuites: [{ auth: IPSEC_AUTH.HMAC_SHA1_96, enc: IPSEC_ENC.AES128_CBC }],
      saLifetime: 604800,
      gracePeriod: 3600,
      reestablish: false,
    });
    const m = decodeRekey(bytes);
    const ok = m.serverNonce === 7 && m.timestamp === 1700000000000 && (m.appData as { spi: number }).spi === 0x1234 && m.saLifetime === 604800;
    const good = verifyHmac(b, key, m.signed, m.hmac);
    bytes[5] ^= 1;
    const m2 = decodeRekey(bytes);
    return ok && good && !verifyHmac(b, key, m2.signed, m2.hmac);
  });
}

/** The RFC 8009 appendix A vectors of etype 19 (run where the image has enctype 19). */
function rfc8009(b: CryptoBackend, base19: Uint8Array): void {
  check('kdf-19', function () {
    const k = usageKeys(b, 19, base19, 2);
    return (
      eqHex(k.kc, 'B3 1A 01 8A 48 F5 47 76 F4 03 E9 A3 96 32 5D C3') &&
      eqHex(k.ke, '9B 19 7D D1 E8 C5 60 9D 6E 67 C3 E3 7C 62 C7 2E') &&
      eqHex(k.ki, '9F DA 0E 56 AB 2D 85 E1 56 9A 68 86 96 C2 6A 6C')
    );
  });
  check('enc-19', function () {
    const pt = h('00 01 02 03 04 05');
    const c = encrypt(b, 19, base19, 2, pt, h('7B CA 28 5E 2F D4 13 0F B5 5B 1A 5C 83 BC 5B 24'));
    return (
      eqHex(c, '84 D7 F3 07 54 ED 98 7B AB 0B F3 50 6B EB 09 CF B5 54 02 CE F7 E6 87 7C E9 9E 24 7E 52 D1 6E D4 42 1D FD F8 97 6C') &&
      ctEqual(decrypt(b, 19, base19, 2, c), pt)
    );
  });
  check('cksum-19', function () {
    const data = h('00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11 12 13 14');
    return eqHex(makeChecksum(b, 19, base19, 2, data), 'D7 83 67 18 66 43 D6 7B 41 1C BA 91 39 FC 1D EE');
  });
  check('enc-19-tamper', function () {
    const c = encrypt(b, 19, base19, 2, fromAscii('x'));
    c[c.length - 1] ^= 1;
    try {
      decrypt(b, 19, base19, 2, c);
      return false;
    } catch (e) {
      return true;
    }
  });
}

const t0 = Date.now();
try {
  run(makeEspruinoBackend(espruinoRequire('crypto'), E.hwRand));
} catch (e) {
  failures.push('setup: ' + ((e && (e as Error).message) || String(e)));
}
const ms = Math.round(Date.now() - t0);
global.selftest = { pass: failures.length === 0, n: passed, failures: failures, ms: ms };
print(failures.length === 0 ? 'SELFTEST PASS ' + passed + ' (' + ms + ' ms)' : 'SELFTEST FAIL ' + failures.join('; '));
