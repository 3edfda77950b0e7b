// Datagram dispatch: which job a received datagram belongs to. Key management
// (the listen socket, a link's channel 1, a datagram the `--workers` primary
// routed here) is sorted by its KMMID into the exchange (AP Request, SA
// Recovered) or dropped; ESP (the signaling socket, a link's channel 3) goes to
// protected signaling. A failure inside a handler is counted and reported, never
// thrown at the socket.
import { KMMID } from '../../firmware/proto/pktc.ts';
import type { Rinfo, ScContext } from './context.ts';
import type { Exchange } from './exchange.ts';
import type { Signaling } from './signaling.ts';
import { u8 } from './identity.ts';

export type Receiver = {
  /** One key-management datagram from r. */
  onKmDatagram(buf: Uint8Array, r: Rinfo): void;
  /** One ESP datagram from r (signaling). */
  onEspDatagram(buf: Uint8Array, r: Rinfo): void;
};

/** Builds the dispatch and attaches it to both UDP sockets. */
export function listen(ctx: ScContext, exchange: Exchange, signaling: Signaling): Receiver {
  const { sock, sigSock, metrics, log, drop, emitError, cRxApRequest, cRxSaRecovered } = ctx;
  const { onApRequest, onSaRecovered } = exchange;
  const { onEsp } = signaling;

  sock.on('message', (msg: Buffer, rinfo) => onKmDatagram(u8(msg), { address: rinfo.address, port: rinfo.port }));
  function onKmDatagram(buf: Uint8Array, r: Rinfo): void {
    try {
      const k = buf.length >= 3 ? buf[0] : 0;
      if (k === KMMID.AP_REQUEST) {
        cRxApRequest.n++;
        onApRequest(buf, r);
      } else if (k === KMMID.SA_RECOVERED) {
        cRxSaRecovered.n++;
        onSaRecovered(buf, r);
      } else if (k >= 1 && k <= 6) {
        metrics.inc('cta_sc_rx_total', 'unexpected');
        drop('unexpected_kmmid', r);
      } else if (buf.length >= 8 && buf[0] >= 0x40) {
        metrics.inc('cta_sc_rx_total', 'esp');
        onEsp(buf, r);
      } else {
        metrics.inc('cta_sc_rx_total', 'unknown');
        drop('malformed', r);
      }
    } catch (e) {
      metrics.inc('cta_sc_drops_total', 'internal_error');
      log('internal_error', { error: (e as Error).message, address: r.address, port: r.port });
      emitError('internal', (e as Error).message, { address: r.address, port: r.port });
    }
  }
  function onEspDatagram(buf: Uint8Array, r: Rinfo): void {
    metrics.inc('cta_sc_rx_total', 'esp');
    try {
      onEsp(buf, r);
    } catch (e) {
      metrics.inc('cta_sc_drops_total', 'internal_error');
      emitError('internal', (e as Error).message, r);
    }
  }
  sigSock.on('message', (msg: Buffer, rinfo) => onEspDatagram(u8(msg), { address: rinfo.address, port: rinfo.port }));
  sock.on('error', (e) => emitError('internal', `UDP socket: ${e.message}`, {}));
  sigSock.on('error', (e) => emitError('internal', `signaling socket: ${e.message}`, {}));

  return { onKmDatagram, onEspDatagram };
}
