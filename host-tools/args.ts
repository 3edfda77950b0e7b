// Flag parsing shared by every `cta` command: node:util parseArgs, with
// user mistakes turned into UsageError (one clear line, exit 2).
import { parseArgs as nodeParseArgs } from 'node:util';

/** Thrown for bad input from the user: printed as one line, exit code 2. */
export class UsageError extends Error {}

export type OptionSpec = { [name: string]: { type: 'string' | 'boolean'; short?: string; multiple?: boolean; default?: string | boolean } };

export function parseArgs(argv: string[], options: OptionSpec, allowPositionals = false) {
  try {
    return nodeParseArgs({ args: argv, options, allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError(oneLine((e as Error).message));
  }
}

/** node:util's parse errors as one line ("Option '--skew' argument is ambiguous..." spans three). */
function oneLine(msg: string): string {
  const ambiguous = /^Option '(-[^']*)' argument is ambiguous[\s\S]*use '(--[^=']+)=/.exec(msg);
  if (ambiguous) return `option ${ambiguous[1]} is missing its value (a value starting with '-' is written ${ambiguous[2]}=VALUE)`;
  const missing = /^Option '([^']*?)(?: <value>)?' argument missing/.exec(msg);
  if (missing) return `option ${missing[1]} is missing its value`;
  return msg
    .replace(/\. To specify a positional argument.*$/s, '')
    .replace(/\. This command does not take positional arguments$/, ' (this command takes no arguments besides its options)')
    .split('\n')[0];
}

/** "host:port" (or ":port" / "port") to its parts; throws UsageError. */
export function parseHostPort(s: string, defaultHost = '127.0.0.1', what = 'address'): { host: string; port: number } {
  let host = defaultHost;
  let portStr = s;
  const i = s.lastIndexOf(':');
  if (i >= 0) {
    host = s.slice(0, i).replace(/^\[|\]$/g, '') || defaultHost;
    portStr = s.slice(i + 1);
  }
  const port = Number(portStr);
  if (!/^\d+$/.test(portStr) || port > 65535) throw new UsageError(`bad ${what} '${s}': expected HOST:PORT with a port from 0 to 65535`);
  return { host, port };
}

export function intOption(v: string | undefined, name: string, def: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, not '${v}'`);
  return n;
}
