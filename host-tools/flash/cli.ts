// `cta flash --board B --port /dev/ttyACM0|tcp://host:port --config cta.cbor`:
// checks the flags and calls the flasher (./flash.ts), one line per step.
import { parseArgs, intOption, UsageError } from '../args.ts';
import { loadBoard } from '../build/boards.ts';
import { CONFIG_FILE } from '../../firmware/config.ts';
import { flash, StepError } from './flash.ts';

export const help = `usage: cta flash --board BOARD --port PORT --config cta.cbor [options]

Checks the configuration, builds the firmware for BOARD (board-configs/BOARD.json), then over the board's
Espruino console (EspruinoTools): checks that the board's free Storage holds the
configuration and the stored image (refusing, before anything is erased or written,
with the bytes needed and free), resets it, writes the configuration to Storage
"${CONFIG_FILE}", writes the stored image (the bundle pretokenised, as cta build
makes it) to Storage ".bootcde" (runs at every boot, from flash), checks both back
(length and CRC-32), and restarts the board with load().

  --board BOARD      emulator, linux, pico, puckjs, esp32, espruino-wifi
  -p, --port PORT    serial port (/dev/ttyACM0) or network console (tcp://HOST:PORT,
                     e.g. an Espruino Linux build with --telnet on 2323, or
                     'cta emu --console tcp:PORT')
  --config FILE      the CTA configuration from 'cta provision'
  -b, --baud N       serial baud rate (default 9600; USB ports ignore it)
  --force            flash even if the board reports another Espruino build
  --timeout S        per-step timeout in seconds (default 20)
  -v, --verbose      show EspruinoTools' own log`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs(
    argv,
    {
      board: { type: 'string' },
      port: { type: 'string', short: 'p' },
      config: { type: 'string' },
      baud: { type: 'string', short: 'b' },
      force: { type: 'boolean' },
      timeout: { type: 'string' },
      verbose: { type: 'boolean', short: 'v' },
    },
    true,
  );
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}'`);
  const v = values as { [k: string]: string | boolean | undefined };
  if (!v.board) throw new UsageError('--board is required (e.g. --board pico)');
  if (!v.port) throw new UsageError('--port is required (e.g. --port /dev/ttyACM0 or --port tcp://127.0.0.1:2323)');
  if (!v.config) throw new UsageError('--config cta.cbor is required (make it with cta provision)');
  loadBoard(v.board as string); // unknown board: UsageError before anything else
  const port = v.port as string;
  const tcp = /^tcp:\/\/[^:/]+:(\d+)$/.exec(port);
  if (!port.startsWith('/') && !tcp && !/^[A-Za-z]+\d*$/.test(port)) {
    throw new UsageError(`bad --port '${port}': expected a device path such as /dev/ttyACM0 or tcp://HOST:PORT`);
  }
  if (tcp && !(Number(tcp[1]) >= 1 && Number(tcp[1]) <= 65535)) throw new UsageError(`bad --port '${port}': the TCP port must be 1-65535`);
  try {
    await flash({
      board: v.board as string,
      port,
      config: v.config as string,
      baud: intOption(v.baud as string | undefined, 'baud', 9600, 300, 4000000),
      force: !!v.force,
      timeoutSec: intOption(v.timeout as string | undefined, 'timeout', 20, 1, 3600),
      verbose: !!v.verbose,
    });
  } catch (e) {
    if (e instanceof StepError) {
      console.error(`cta flash: ${e.message}`);
      const tl = (e as any).toolLog as string[];
      if (v.verbose && tl.length) console.error(tl.map((l) => `  espruino: ${l}`).join('\n'));
      return 1;
    }
    throw e;
  }
  console.log('flash: done');
  return 0;
}
