// What an SC process reads and binds at start, with the one-line start-up errors
// (ScStartError) an operator sees: the keytab and a UDP socket. Shared by the single
// SC (context.ts, identity.ts) and the primary of `cta sc --workers` (workers.ts),
// which must not load the whole SC to get them.
import { readFileSync } from 'node:fs';
import type dgram from 'node:dgram';
import { parseKeytab, type KeytabEntry } from '../../firmware/proto/keytab.ts';
import { ScStartError } from './types.ts';

/** The keytab's entries (given, or read and parsed from a file); ScStartError 'keytab' otherwise. */
export function loadKeytab(k: KeytabEntry[] | string): KeytabEntry[] {
  if (Array.isArray(k)) return k;
  let bytes: Buffer;
  try {
    bytes = readFileSync(k);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ScStartError('keytab', code === 'ENOENT' ? `keytab '${k}' does not exist` : `cannot read keytab '${k}': ${(e as Error).message}`);
  }
  try {
    return parseKeytab(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  } catch (e) {
    throw new ScStartError('keytab', `keytab '${k}' is not a valid keytab: ${(e as Error).message}`);
  }
}

/** Binds `sock` to host:port; a port in use, a denied port or an address not here is an ScStartError (the socket closed). */
export function bindUdp(sock: dgram.Socket, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onErr = (e: NodeJS.ErrnoException) => {
      sock.close();
      if (e.code === 'EADDRINUSE') reject(new ScStartError('port_in_use', `UDP ${host}:${port} is already in use`));
      else if (e.code === 'EACCES') reject(new ScStartError('port_denied', `not allowed to bind UDP ${host}:${port}`));
      else if (e.code === 'EADDRNOTAVAIL') reject(new ScStartError('bad_address', `cannot bind UDP ${host}:${port}: address not available here`));
      else reject(e);
    };
    sock.once('error', onErr);
    sock.bind(port, host, () => {
      sock.off('error', onErr);
      resolve();
    });
  });
}
