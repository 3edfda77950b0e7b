// Protected signaling: NCS text between the SC and a CTA inside ESP under the SA
// the key-management exchange established (sendSignaling out, the CTA's response
// in through onEsp). The SA keys are derived from the SA subkey on first use and
// cached per slot; ESP sequence numbers and the receive window live in keys.ts.
import { wipe } from '../../firmware/proto/bytes.ts';
import { isCryptoError, isDecodeError } from '../../firmware/proto/errors.ts';
import { deriveSaKeys, type SaKeys } from '../../firmware/proto/sa.ts';
import { espOpen, espPeekSpi, espSeal, ESP_NEXT_HEADER, parseNcsCommand, parseNcsResponse } from '../../firmware/proto/esp.ts';
import { CTA_STATE } from './registry.ts';
import { randomBytes } from './rand.ts';
import { B, type Rinfo, type ScContext } from './context.ts';

type SigWaiter = { resolve: (s: string) => void; reject: (e: Error) => void; timer: unknown; slot: number };

export type Signaling = {
  /** An ESP datagram from a CTA (a response to our NCS command). */
  onEsp(buf: Uint8Array, r: Rinfo): void;
  sendSignaling(p: string, text: string, timeoutMs?: number): Promise<string>;
  /** The SA keys of the slot (derived once, then cached); null without an SA subkey. */
  saKeysOf(slot: number): SaKeys | null;
  /** True when the slot has an established, unexpired SA. */
  hasSaSlot(slot: number): boolean;
  /** close(): every outstanding command is rejected. */
  stop(): void;
};

export function createSignaling(ctx: ScContext): Signaling {
  const { clock, timers, registry, keys, metrics, saCache, saEncNull, links, sigSock, drop } = ctx;
  const sigWaiters = new Map<string, SigWaiter>();
  let sigTxid = 1000 + (randomBytes(2)[0] << 4);

  function saKeysOf(slot: number): SaKeys | null {
    let k = saCache.get(slot);
    if (k) return k;
    const sub = keys.saSubkey(slot);
    if (!sub) return null;
    k = deriveSaKeys(B, sub, registry.ctaSpi(slot), registry.scSpi(slot));
    wipe(sub);
    if (saCache.size >= 1024) {
      const first = saCache.keys().next();
      if (!first.done) saCache.delete(first.value);
    }
    saCache.set(slot, k);
    return k;
  }
  function hasSaSlot(slot: number): boolean {
    return keys.hasSa(slot) && registry.saExpiresSec(slot) * 1000 > clock.now();
  }
  function encNull(slot: number): boolean {
    // The ciphersuite is recorded in SQLite; the in-memory copy is the SPI pair only,
    // so keep the enc transform next to the cached keys.
    return saEncNull.get(slot) === true;
  }

  function onEsp(buf: Uint8Array, r: Rinfo): void {
    const spi = espPeekSpi(buf);
    if (spi < 0) return drop('malformed_esp', r);
    const slot = spi & 0x1fffff;
    if (registry.state(slot) === CTA_STATE.FREE || registry.scSpi(slot) !== spi || !hasSaSlot(slot)) return drop('unknown_spi', r);
    const k = saKeysOf(slot);
    if (!k) return drop('unknown_spi', r);
    const seq = buf.length >= 8 ? ((buf[4] << 24) | (buf[5] << 16) | (buf[6] << 8) | buf[7]) >>> 0 : 0;
    if (!keys.rxCheck(slot, seq)) return drop('esp_replay', r);
    let opened;
    try {
      opened = espOpen(B, { encKey: encNull(slot) ? null : k.encCtaToSc, authKey: k.authCtaToSc }, buf);
    } catch (e) {
      if (!isDecodeError(e) && !isCryptoError(e)) throw e;
      return drop(isCryptoError(e) ? 'esp_bad_icv' : 'malformed_esp', r);
    }
    keys.rxAccept(slot, seq);
    let text: string;
    try {
      text = Buffer.from(opened.payload).toString('latin1');
      const resp = parseNcsResponse(text);
      const w = sigWaiters.get(slot + ':' + resp.txid);
      if (!w) return drop('esp_unsolicited', r);
      sigWaiters.delete(slot + ':' + resp.txid);
      clock.clearTimeout(w.timer);
      metrics.inc('cta_sc_signaling_total', 'response');
      w.resolve(text);
    } catch (e) {
      if (!isDecodeError(e)) throw e;
      return drop('malformed_ncs', r);
    }
  }

  function sendSignaling(p: string, text: string, timeoutMs?: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const slot = registry.slotOf(p);
      if (slot < 0) return reject(new Error(`no CTA '${p}' is registered`));
      if (!hasSaSlot(slot)) return reject(new Error(`no SA established with ${p}`));
      let cmd;
      try {
        cmd = parseNcsCommand(text);
      } catch (e) {
        return reject(new Error(`not an NCS command: ${(e as Error).message}`));
      }
      // Our transaction ids are unique per CTA: rewrite the caller's if it collides.
      let txid = cmd.txid;
      if (sigWaiters.has(slot + ':' + txid)) {
        txid = String((sigTxid = (sigTxid % 999999999) + 1));
        text = text.replace(/^(\S+\s+)\S+/, `$1${txid}`);
      }
      const k = saKeysOf(slot) as SaKeys;
      const seq = keys.nextTxSeq(slot);
      if (seq === 0) return reject(new Error(`ESP sequence numbers exhausted for ${p}: re-key`));
      const pkt = espSeal(
        B,
        { spi: registry.ctaSpi(slot), seq, encKey: encNull(slot) ? null : k.encScToCta, authKey: k.authScToCta },
        new Uint8Array(Buffer.from(text, 'latin1')),
        ESP_NEXT_HEADER.UDP,
      );
      const key = slot + ':' + txid;
      const timer = clock.setTimeout(() => {
        if (sigWaiters.get(key)?.timer !== timer) return;
        sigWaiters.delete(key);
        metrics.inc('cta_sc_signaling_total', 'timeout');
        reject(new Error(`no signaling response from ${p} (transaction ${txid})`));
      }, timeoutMs ?? timers.signalingTimeoutMs);
      sigWaiters.set(key, { resolve, reject, timer, slot });
      metrics.inc('cta_sc_signaling_total', 'request');
      metrics.inc('cta_sc_tx_total', 'esp');
      const link = links.get(registry.address(slot));
      if (link) link(3, pkt);
      else sigSock.send(pkt, registry.signalingPort(slot), registry.address(slot));
    });
  }

  return {
    onEsp,
    sendSignaling,
    saKeysOf,
    hasSaSlot,
    stop(): void {
      for (const w of sigWaiters.values()) {
        clock.clearTimeout(w.timer);
        w.reject(new Error('SC closed'));
      }
      sigWaiters.clear();
    },
  };
}
