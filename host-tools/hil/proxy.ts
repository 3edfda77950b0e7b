// The HIL runner's UDP relay between the Signaling Controller and the target CTA.
//
//   SC  <-->  [scSide]  proxy  [ctaSide]  <-->  CTA
//
// The SC registers the CTA at scSide's address, so its Wake Ups, Rekeys and AP
// Replies go through the proxy; the CTA is provisioned with ctaSide as its SC's
// address, so its AP Requests and SA Recovered come back through it. Every
// datagram is logged (direction, time, bytes) and passes a per-direction filter
// that a scenario sets: that is how AP Replies are withheld or an AP Request is
// lost. The runner also injects its own crafted datagrams from ctaSide (so the
// CTA's answer to them goes to the SC like any other), which is how a Wake Up
// with a nonce the SC never issued reaches the CTA.
import dgram from 'node:dgram';
import type { AddressInfo } from 'node:net';

export type Direction = 'sc->cta' | 'cta->sc';
export type Relayed = { dir: Direction; at: number; data: Uint8Array; dropped: boolean; injected: boolean };
/** Returns false to drop the datagram. */
export type Filter = (data: Uint8Array, dir: Direction) => boolean;

const LOG_MAX = 4096;

/**
 * What the scenarios drive on any relay between the SC and the CTA: the bounded log,
 * the per-direction filter, inject, waitFor, since. A subclass says where a passed
 * datagram goes (deliver).
 */
export abstract class Relay {
  /** Relayed datagrams, newest last (bounded; floods bypass the proxy). */
  readonly log: Relayed[] = [];
  filter: Filter | null = null;
  /** Datagrams relayed so far (a mark for since()). */
  total = 0;
  private waiters: { pred: (r: Relayed) => boolean; resolve: (r: Relayed) => void }[] = [];

  /** Sends a datagram that passed the filter on towards its destination. */
  protected abstract deliver(data: Uint8Array, dir: Direction): void;

  private record(r: Relayed): void {
    this.log.push(r);
    this.total++;
    if (this.log.length > LOG_MAX) this.log.splice(0, this.log.length - LOG_MAX);
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i].pred(r)) {
        this.waiters[i].resolve(r);
        this.waiters.splice(i, 1);
      }
    }
  }

  /** Logs a datagram, passes it through the filter and delivers it if it passes. */
  relay(data: Uint8Array, dir: Direction, injected: boolean): void {
    const pass = this.filter ? this.filter(data, dir) : true;
    this.record({ dir, at: Date.now(), data, dropped: !pass, injected });
    if (pass) this.deliver(data, dir);
  }

  /** Sends a crafted datagram to the CTA as if from the SC (logged as injected). */
  inject(data: Uint8Array): void {
    this.relay(data, 'sc->cta', true);
  }

  /** Resolves with the first relayed datagram (from now on) matching pred, or null after timeoutMs. */
  waitFor(pred: (r: Relayed) => boolean, timeoutMs: number): Promise<Relayed | null> {
    return new Promise((resolve) => {
      const w = {
        pred,
        resolve: (r: Relayed) => {
          clearTimeout(t);
          resolve(r);
        },
      };
      const t = setTimeout(() => {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(null);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Log entries relayed after the mark `from` (a value of total). */
  since(from: number): Relayed[] {
    const n = Math.min(this.total - from, this.log.length);
    return n > 0 ? this.log.slice(this.log.length - n) : [];
  }
}

export class HilProxy extends Relay {
  readonly scSide: dgram.Socket;
  readonly ctaSide: dgram.Socket;
  private scAddr: { host: string; port: number };
  private ctaAddr: { host: string; port: number };

  private constructor(scSide: dgram.Socket, ctaSide: dgram.Socket, sc: { host: string; port: number }, cta: { host: string; port: number }) {
    super();
    this.scSide = scSide;
    this.ctaSide = ctaSide;
    this.scAddr = sc;
    this.ctaAddr = cta;
    scSide.on('message', (msg) => this.relay(new Uint8Array(msg), 'sc->cta', false));
    ctaSide.on('message', (msg) => this.relay(new Uint8Array(msg), 'cta->sc', false));
  }

  /** Binds both sides on 127.0.0.1 free ports. */
  static async start(sc: { host: string; port: number }, cta: { host: string; port: number }): Promise<HilProxy> {
    const bind = (s: dgram.Socket) =>
      new Promise<void>((res, rej) => {
        s.once('error', rej);
        s.bind({ port: 0, address: '127.0.0.1', exclusive: true }, () => {
          s.off('error', rej);
          res();
        });
      });
    const a = dgram.createSocket('udp4');
    const b = dgram.createSocket('udp4');
    await bind(a);
    await bind(b);
    return new HilProxy(a, b, sc, cta);
  }

  get scSidePort(): number {
    return (this.scSide.address() as AddressInfo).port;
  }
  get ctaSidePort(): number {
    return (this.ctaSide.address() as AddressInfo).port;
  }
  /** The CTA moved (restart on another port). */
  setCta(cta: { host: string; port: number }): void {
    this.ctaAddr = cta;
  }

  /** Injected datagrams leave from the CTA side, so the CTA's answer goes to the SC like any other. */
  protected deliver(data: Uint8Array, dir: Direction): void {
    if (dir === 'sc->cta') this.ctaSide.send(data, this.ctaAddr.port, this.ctaAddr.host);
    else this.scSide.send(data, this.scAddr.port, this.scAddr.host);
  }

  close(): Promise<void> {
    const c = (s: dgram.Socket) => new Promise<void>((res) => s.close(() => res()));
    return Promise.all([c(this.scSide), c(this.ctaSide)]).then(() => undefined);
  }
}

/** KMMID (first byte) names for the output. */
export const KM_NAMES: { [k: number]: string } = { 1: 'Wake Up', 2: 'AP Request', 3: 'AP Reply', 4: 'SA Recovered', 5: 'Rekey', 6: 'Error Reply' };

/**
 * The key-management relay of a serial target: SC <-> [LinkProxy] <-> channel 1 of
 * the link. The same log / filter / inject / waitFor as the UDP HilProxy, so the
 * scenarios drive both alike.
 */
export class LinkProxy extends Relay {
  /** Where relayed datagrams go: to the CTA (the link) and to the SC (its attachLink receiver). */
  toCta: (data: Uint8Array) => void = () => {};
  toSc: (data: Uint8Array) => void = () => {};

  protected deliver(data: Uint8Array, dir: Direction): void {
    if (dir === 'sc->cta') this.toCta(data);
    else this.toSc(data);
  }
  async close(): Promise<void> {
    this.toCta = () => {};
    this.toSc = () => {};
  }
}

