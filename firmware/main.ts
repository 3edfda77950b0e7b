// The firmware bundle entry (cta build): Espruino platform for the BOARD the build
// injects (esbuild define from board-configs/<board>.json), the configuration from
// Storage "cta.cfg", and the agent. `global.cta` is the running agent (or null), so
// the emulator, the demo and the HIL runner can read cta.status() and cta.counters.
// Written inside the Espruino subset.
import { makeEspruinoPlatform, joinWifi, espruinoRequire } from './platform/espruino.ts';
import { decodeConfig, CONFIG_FILE } from './config.ts';
import type { ConfigDefaults, CtaConfig } from './config.ts';
import { CtaAgent } from './agent/agent.ts';
import { SerialTransport } from './agent/transport.ts';
import { handleControl } from './agent/control.ts';
import type { Platform } from './platform/platform.ts';
import { setKeyCacheSize } from './proto/crypto/enctypes.ts';

// Build-time board facts (host-tools/build/build.ts boardDefines). Tested inline as
// `(typeof BOARD_X === 'undefined' || BOARD_X)`: esbuild folds that at each use and
// drops the code a board cannot use (a module-level const would not fold in a module
// with imports); outside a bundle (host tools, unit tests) everything is kept.
declare const BOARD_SERIAL: boolean;
declare const BOARD_WIFI: boolean;

declare const global: { [name: string]: any };
declare function print(s: string): void;
declare const E: { reboot?: () => void };

// Serial control channel 0 (status, metrics, set-time, provision, reset): on the
// agent's serial transport, or -- for an unconfigured board whose serial port is
// not its console -- on a transport of its own, so it can be provisioned over the line.
let idleLink: SerialTransport | null = null;

function restart(): void {
  if (typeof E !== 'undefined' && typeof E.reboot === 'function') return E.reboot();
  if (typeof global.load === 'function') return global.load();
  // No way to restart the interpreter here (emulator without a console): restart the agent.
  if (global.cta) global.cta.stop();
  if (idleLink) idleLink.close();
  idleLink = null;
  boot();
}

function serveControl(platform: Platform, link: SerialTransport): void {
  link.control = function (req) {
    return handleControl(req, {
      platform: platform,
      agent: function () {
        return global.cta;
      },
      error: function () {
        return global.ctaError;
      },
      linkStats: function () {
        return link.stats();
      },
      reset: restart,
      setClock:
        typeof global.setTime === 'function'
          ? function (sec: number) {
              global.setTime(sec);
            }
          : null,
    });
  };
}

function idle(platform: Platform, why: string): void {
  global.ctaError = why;
  if ((typeof BOARD_SERIAL === 'undefined' || BOARD_SERIAL) && !BOARD.serial.consoleTo) {
    try {
      idleLink = new SerialTransport(platform, function () {});
      serveControl(platform, idleLink);
    } catch (e) {
      idleLink = null;
    }
  }
}

function boot(): void {
  global.cta = null;
  global.ctaError = null;
  const platform = makeEspruinoPlatform();
  const bytes = platform.storage.read(CONFIG_FILE);
  if (!bytes) {
    idle(platform, 'no configuration');
    print('CTA: no configuration: write "' + CONFIG_FILE + '" to Storage (cta provision, then cta flash --config). Idle.');
    return;
  }
  const defaults: ConfigDefaults = { slots: BOARD.slots, timers: BOARD.timers };
  let config;
  try {
    config = decodeConfig(bytes, defaults);
  } catch (e) {
    idle(platform, 'bad configuration: ' + (e as Error).message);
    print('CTA: bad configuration in "' + CONFIG_FILE + '": ' + (e as Error).message + '. Idle.');
    return;
  }
  // A WiFi board joins the network first (firmware/platform/espruino.ts joinWifi);
  // without wifi settings the network is assumed up (saved with require("Wifi").save()).
  if ((typeof BOARD_WIFI === 'undefined' || BOARD_WIFI) && config.transport === 'udp') {
    if (config.wifi) {
      const c = config;
      global.ctaError = 'joining WiFi';
      joinWifi(espruinoRequire(BOARD.transports.wifiModule || 'Wifi'), config.wifi, platform, print, function () {
        global.ctaError = null;
        startAgent(platform, c);
      });
      return;
    }
    print('CTA: no wifi in "' + CONFIG_FILE + '": assuming the board is already on a network (require("Wifi").save()).');
  }
  startAgent(platform, config);
}

function startAgent(platform: Platform, config: CtaConfig): void {
  let agent: CtaAgent;
  try {
    // Inside the try: the constructor parses the SC principals, which the board's config
    // decoder checks only for length and characters.
    agent = new CtaAgent(platform, config);
    agent.start();
  } catch (e) {
    global.ctaError = 'start failed: ' + (e as Error).message;
    print('CTA: cannot start: ' + (e as Error).message + '. Idle.');
    return;
  }
  global.cta = agent;
  if ((typeof BOARD_SERIAL === 'undefined' || BOARD_SERIAL) && agent.transport && agent.transport.kind === 'serial') serveControl(platform, agent.transport as unknown as SerialTransport);
}

// A CTA talks to a few SCs: a small derived-key cache (each entry holds keys and HMAC pads).
setKeyCacheSize(8);
boot();
