// A minimal host-side AS client: builds AS-REQs (with or without
// PA-ENC-TIMESTAMP), opens AS-REPs, and sends over UDP/TCP with RFC 4120
// framing. Used by the KDC tests and benchmarks; the CTA's own client lives in
// the firmware.
import dgram from 'node:dgram';
import net from 'node:net';
import { encrypt, decrypt } from '../../firmware/proto/crypto/index.ts';
import type { CryptoBackend } from '../../firmware/proto/crypto/backend.ts';
import {
  decodeAsRep,
  decodeEncKdcRepPart,
  encodeAsReq,
  encodeEncryptedData,
  encodePaEncTsEnc,
  KDC_OPT_FORWARDABLE,
  KU_AS_REP_ENCPART,
  KU_AS_REQ_PA_ENC_TIMESTAMP,
  NT_PRINCIPAL,
  NT_SRV_INST,
  PA_ENC_TIMESTAMP,
  type AsRep,
  type EncKdcRepPart,
  type HostAddress,
  type PaData,
} from '../../firmware/proto/krb5.ts';
import { nodeBackend } from '../crypto/node.ts';

export type AsReqSpec = {
  /** Client name components, e.g. ['cta', 'cta1.example.net']. */
  client: string[];
  /** Service name components, e.g. ['krbtgt', 'EXAMPLE.NET']. */
  server: string[];
  realm: string;
  /** Requested enctypes, in preference order. */
  etypes: number[];
  nonce: number;
  /** ms since 1970; default now + 10 h. */
  till?: number;
  rtime?: number;
  kdcOptions?: number;
  addresses?: HostAddress[];
  padata?: PaData[];
};

export function buildAsReq(s: AsReqSpec): Uint8Array {
  return encodeAsReq({
    padata: s.padata,
    reqBody: {
      kdcOptions: s.kdcOptions ?? KDC_OPT_FORWARDABLE,
      cname: { nameType: NT_PRINCIPAL, nameString: s.client },
      realm: s.realm,
      sname: { nameType: s.server.length > 1 ? NT_SRV_INST : NT_PRINCIPAL, nameString: s.server },
      till: s.till ?? Date.now() + 10 * 3600 * 1000,
      rtime: s.rtime,
      nonce: s.nonce,
      etype: s.etypes,
      addresses: s.addresses,
    },
  });
}

/** PA-ENC-TIMESTAMP (key usage 1) for time `nowMs` under the client's key. */
export function paEncTimestamp(etype: number, key: Uint8Array, kvno: number | undefined, nowMs: number, backend: CryptoBackend = nodeBackend): PaData {
  const ms = Math.floor(nowMs);
  const ts = encodePaEncTsEnc({ patimestamp: ms - (ms % 1000), pausec: (ms % 1000) * 1000 });
  return {
    padataType: PA_ENC_TIMESTAMP,
    padataValue: encodeEncryptedData({ etype, kvno, cipher: encrypt(backend, etype, key, KU_AS_REQ_PA_ENC_TIMESTAMP, ts) }),
  };
}

/** Decodes an AS-REP and decrypts its enc-part (usage 3) with the client's key. Throws on failure. */
export function openAsRep(rep: Uint8Array, key: Uint8Array, backend: CryptoBackend = nodeBackend): { rep: AsRep; enc: EncKdcRepPart } {
  const r = decodeAsRep(rep);
  const enc = decodeEncKdcRepPart(decrypt(backend, r.encPart.etype, key, KU_AS_REP_ENCPART, r.encPart.cipher));
  return { rep: r, enc };
}

/** One UDP request/reply to host:port; rejects after timeoutMs. */
export function sendUdp(host: string, port: number, msg: Uint8Array, timeoutMs = 3000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = dgram.createSocket(net.isIP(host) === 6 ? 'udp6' : 'udp4');
    const timer = setTimeout(() => {
      s.close();
      reject(new Error(`no UDP reply from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
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
    s.send(msg, port, host);
  });
}

/** One TCP request/reply (4-byte length framing); rejects on close without a reply or after timeoutMs. */
export function sendTcp(host: string, port: number, msg: Uint8Array, timeoutMs = 3000): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no TCP reply from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.on('connect', () => {
      const hdr = Buffer.alloc(4);
      hdr.writeUInt32BE(msg.length, 0);
      s.write(Buffer.concat([hdr, msg]));
    });
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        clearTimeout(timer);
        s.destroy();
        resolve(new Uint8Array(buf.subarray(4, 4 + buf.readUInt32BE(0))));
      }
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    s.on('close', () => {
      clearTimeout(timer);
      reject(new Error('TCP connection closed without a reply'));
    });
  });
}
