// The Wifi stand-in: require("Wifi") (board-configs transports.wifiModule) on boards whose
// config says transports.wifi. The loopback network is "the WiFi": connect() calls back
// after a tick with null (or a reason, failTimes times first), getIP() gives 127.0.0.1,
// and the record (Emulator.wifi) keeps what the firmware asked.
import type { EmulatedWifi, EmulatorContext, EmulatorOptions } from './types.ts';

/** Runs a firmware callback a tick later (through the emulator's timers). */
export type Later = (fn: (...a: unknown[]) => unknown, args: unknown[]) => void;

/** The Wifi module and its record; null on a board without WiFi. */
export function makeWifi(ctx: EmulatorContext, faults: EmulatorOptions['wifi'], later: Later): { record: EmulatedWifi; module: any } | null {
  if (!ctx.board.transports.wifi) return null;
  const { G } = ctx;
  const wifiRec: EmulatedWifi = { connects: [], ssid: null, connected: false };
  let failsLeft = faults?.failTimes ?? 0;
  const wifiMod: any = new G.Object();
  Object.assign(wifiMod, {
    connect(ssid: unknown, options: unknown, cb: unknown) {
      if (typeof ssid !== 'string') throw new G.Error('No SSID provided');
      if (options !== undefined && options !== null && typeof options !== 'object') throw new G.Error('Expecting options to be an Object');
      const pw = options ? (options as { password?: unknown }).password : undefined;
      if (pw !== undefined && typeof pw !== 'string') throw new G.Error('Expecting options.password to be a string');
      wifiRec.connects.push({ ssid, password: pw as string | undefined });
      const fail = failsLeft > 0;
      if (fail) failsLeft--;
      else {
        wifiRec.ssid = ssid;
        wifiRec.connected = true;
      }
      if (typeof cb === 'function') later(cb as (...a: unknown[]) => unknown, [fail ? (faults?.failWith ?? 'auth_fail') : null]);
    },
    getIP(cb: unknown) {
      const info = Object.assign(new G.Object(), { ip: wifiRec.connected ? '127.0.0.1' : '0.0.0.0', netmask: '255.0.0.0', gw: '127.0.0.1', mac: '02:00:00:00:00:01' });
      if (typeof cb === 'function') later(cb as (...a: unknown[]) => unknown, [null, info]);
      return info;
    },
    disconnect(cb: unknown) {
      wifiRec.connected = false;
      if (typeof cb === 'function') later(cb as (...a: unknown[]) => unknown, []);
    },
    getStatus() {
      return Object.assign(new G.Object(), { station: wifiRec.connected ? 'connected' : 'off', mode: wifiRec.connected ? 'sta' : 'off' });
    },
    on() {
      return wifiMod;
    },
    save() {},
    restore() {},
  });
  return { record: wifiRec, module: wifiMod };
}
