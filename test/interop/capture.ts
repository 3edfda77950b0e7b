// Capture loopback traffic on several UDP ports at once with tshark (the shared
// test/helpers/tshark.ts captureUdp takes one port). The pcap lands in its own
// temp directory named as captureUdp's, so removeCapture() deletes it.
// Callers check needTool(t, 'tshark') first.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * `tshark -i lo -f "udp port A or udp port B ..." -w <tmp>/capture.pcap`: waits
 * until dumpcap has started, runs `send`, lets the kernel hand over the last
 * packets (settleMs), then stops tshark with SIGINT. Resolves to the pcap path.
 */
export async function captureUdpPorts(ports: number[], send: () => Promise<void>, opts: { timeoutMs?: number; settleMs?: number } = {}): Promise<string> {
  if (!ports.length || ports.some((p) => !Number.isInteger(p) || p <= 0 || p > 65535)) throw new Error(`bad ports ${ports.join(',')}`);
  const dir = mkdtempSync(join(tmpdir(), 'cta-tshark-'));
  const pcap = join(dir, 'capture.pcap');
  const filter = ports.map((p) => `udp port ${p}`).join(' or ');
  const child = spawn('tshark', ['-i', 'lo', '-f', filter, '-w', pcap, '-q'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const timeoutMs = opts.timeoutMs ?? 20000;
  let stderr = '';
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.on('exit', () => {
      exited = true;
      resolve();
    }),
  );
  child.on('error', () => undefined);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tshark did not start capturing: ${stderr}`)), timeoutMs);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
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
    await new Promise((r) => setTimeout(r, opts.settleMs ?? 500));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    await exit;
    clearTimeout(timer);
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
