// Capture real traffic with tshark and read it back as JSON.
//   const pcap = await captureUdp(port, async () => { ...send... }, { packets: n });
//   const pkts = tsharkJson(pcap, [`udp.port==${port},pktc`]);
//   removeCapture(pcap);
// captureUdpPorts does the same on several ports at once.
// Callers check needTool(t, 'tshark') first.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

export interface CaptureOptions {
  /** Stop as soon as this many packets are captured (tshark -c); recommended. */
  packets?: number;
  /** Interface (default "lo"). */
  iface?: string;
  /** Give up after this long (default 20 s). */
  timeoutMs?: number;
  /** Without `packets`: how long the kernel gets to hand the last packets over before tshark is stopped (default 500 ms). */
  settleMs?: number;
}

/**
 * Start `tshark -i lo -f "udp port <port>" -w <tmp>.pcap`, wait until it says
 * "Capturing on" (and dumpcap's "Capture started."), run `send`, then wait for tshark to exit (with `packets`) or
 * stop it with SIGINT. Resolves to the pcap path (in its own temp directory:
 * removeCapture() deletes it).
 */
export function captureUdp(port: number, send: () => Promise<void>, opts: CaptureOptions = {}): Promise<string> {
  return captureUdpPorts([port], send, opts);
}

/** captureUdp on several UDP ports at once (`-f "udp port A or udp port B ..."`). */
export async function captureUdpPorts(ports: number[], send: () => Promise<void>, opts: CaptureOptions = {}): Promise<string> {
  if (!ports.length || ports.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) throw new Error(`bad ports ${ports.join(',')}`);
  const dir = mkdtempSync(join(tmpdir(), 'cta-tshark-'));
  const pcap = join(dir, 'capture.pcap');
  const filter = ports.map((p) => `udp port ${p}`).join(' or ');
  const args = ['-i', opts.iface ?? 'lo', '-f', filter, '-w', pcap, '-q'];
  if (opts.packets) args.push('-c', String(opts.packets));
  const timeoutMs = opts.timeoutMs ?? 20000;
  const child = spawn('tshark', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let exited = false;
  const exit = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exited = true;
      resolve(code);
    }),
  );
  child.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tshark did not start capturing: ${stderr}`)), timeoutMs);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // tshark prints "Capturing on" before its dumpcap child has opened the
        // interface; dumpcap's "Capture started." means the filter is live.
        if (stderr.includes('Capturing on') && stderr.includes('Capture started')) {
          clearTimeout(timer);
          resolve();
        }
      });
      exit.then(() => {
        clearTimeout(timer);
        reject(new Error(`tshark exited before capturing: ${stderr}`));
      });
    });
    await send();
    if (opts.packets) {
      const timer = setTimeout(() => child.kill('SIGINT'), timeoutMs);
      await exit;
      clearTimeout(timer);
    } else {
      // No packet count: give the kernel a moment to hand the packets over, then stop.
      await new Promise((r) => setTimeout(r, opts.settleMs ?? 500));
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exit;
      clearTimeout(timer);
    }
  } catch (e) {
    if (!exited) {
      child.kill('SIGKILL');
      await exit;
    }
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return pcap;
}

/** Delete a capture made by captureUdp (and its temp directory). */
export function removeCapture(pcap: string): void {
  if (basename(pcap) === 'capture.pcap' && basename(dirname(pcap)).startsWith('cta-tshark-')) {
    rmSync(dirname(pcap), { recursive: true, force: true });
  }
}

export type TsharkPacket = { _source: { layers: Record<string, unknown> } };

/**
 * `tshark -r <pcap> -d <decodeAs>... -T json --no-duplicate-keys` (repeated
 * fields become arrays), plus any `-o` preferences, parsed.
 */
export function tsharkJson(pcap: string, decodeAs: string[], prefs: string[] = []): TsharkPacket[] {
  const args = ['-r', pcap, '-T', 'json', '--no-duplicate-keys'];
  for (const d of decodeAs) args.push('-d', d);
  for (const p of prefs) args.push('-o', p);
  const out = execFileSync('tshark', args, { encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'] });
  return JSON.parse(out) as TsharkPacket[];
}

/**
 * Every field under `root` (a layer object), flattened: field name -> list of
 * values, in tree order. Subtree objects are walked; their labels are skipped.
 */
export function flattenFields(root: unknown, out: Record<string, string[]> = {}): Record<string, string[]> {
  if (!root || typeof root !== 'object') return out;
  for (const [k, v] of Object.entries(root as Record<string, unknown>)) {
    const push = (x: unknown) => {
      if (x !== null && typeof x === 'object') flattenFields(x, out);
      else (out[k] ??= []).push(String(x));
    };
    if (Array.isArray(v)) v.forEach(push);
    else if (v !== null && typeof v === 'object') {
      // "field_tree" objects hold the children of field "field"
      flattenFields(v, out);
    } else push(v);
  }
  return out;
}

/** Wireshark expert severities (_ws.expert.severity). */
export const PI_SEVERITY = { CHAT: 0x00200000, NOTE: 0x00400000, WARN: 0x00600000, ERROR: 0x00800000 };

/**
 * Malformed-packet markers and expert items at or above `minSeverity`
 * (default NOTE: the "chat" items Kerberos decryption adds are not problems),
 * anywhere in a packet, as "path: value" strings. Empty = clean.
 */
export function problems(pkt: TsharkPacket, minSeverity: number = PI_SEVERITY.NOTE): string[] {
  const found: string[] = [];
  const walk = (x: unknown, path: string) => {
    if (!x || typeof x !== 'object') return;
    const o = x as Record<string, unknown>;
    if ('_ws.expert.severity' in o && Number(o['_ws.expert.severity']) >= minSeverity) {
      found.push(`${path}: ${String(o['_ws.expert.message'] ?? '')} (severity ${String(o['_ws.expert.severity'])})`);
    }
    for (const [k, v] of Object.entries(o)) {
      if (k.startsWith('_ws.malformed') || k === '_ws.short') found.push(`${path}/${k}: ${JSON.stringify(v).slice(0, 200)}`);
      walk(v, `${path}/${k}`);
    }
  };
  walk(pkt._source.layers, '');
  return found;
}
