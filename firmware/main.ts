// The firmware bundle entry (cta build): Espruino platform for the BOARD the build
// injects (esbuild define from board-configs/<board>.json), the configuration from
// Storage "cta.cfg", and the agent. `global.cta` is the running agent (or null), so
// the emulator, the demo and the HIL runner can read cta.status() and cta.counters.
// Written inside the Espruino subset.
import { makeEspruinoPlatform } from './platform/espruino.ts';
import { decodeConfig, CONFIG_FILE } from './config.ts';
import type { ConfigDefaults } from './config.ts';
import { CtaAgent } from './agent/agent.ts';

declare const global: { [name: string]: any };
declare function print(s: string): void;

function boot(): void {
  global.cta = null;
  global.ctaError = null;
  const platform = makeEspruinoPlatform(BOARD);
  const bytes = platform.storage.read(CONFIG_FILE);
  if (!bytes) {
    global.ctaError = 'no configuration';
    print('CTA: no configuration: write "' + CONFIG_FILE + '" to Storage (cta provision, then cta flash --config). Idle.');
    return;
  }
  const defaults: ConfigDefaults = { slots: BOARD.slots, timers: BOARD.timers };
  let config;
  try {
    config = decodeConfig(bytes, defaults);
  } catch (e) {
    global.ctaError = 'bad configuration: ' + (e as Error).message;
    print('CTA: bad configuration in "' + CONFIG_FILE + '": ' + (e as Error).message + '. Idle.');
    return;
  }
  const agent = new CtaAgent(platform, config);
  try {
    agent.start();
  } catch (e) {
    global.ctaError = 'start failed: ' + (e as Error).message;
    print('CTA: cannot start: ' + (e as Error).message + '. Idle.');
    return;
  }
  global.cta = agent;
}

boot();
