// `cta demo` / `npm start`: see demo.ts.
import { parseArgs, parseHostPort, intOption, UsageError } from '../args.ts';
import { runDemo, type CtaRow } from './demo.ts';
import { listBoards, loadBoard } from '../build/boards.ts';

function udpBoards(): string[] {
  return listBoards().filter((b) => loadBoard(b).transports.udp);
}

export const help = `usage: cta demo [options]        (npm start = cta demo)

Starts an embedded KDC with a throwaway realm, a Signaling Controller and N
emulated CTAs running the real firmware bundle, all on loopback with free ports.
The SC wakes every CTA (Wake Up -> AS exchange -> AP Request -> AP Reply ->
SA Recovered), then each CTA answers one NCS request (RQNT) over its new SA.
Exit status 0 only if every CTA succeeded.

options:
  --ctas N             number of emulated CTAs, 1 to 1000 (default 8; with an external
                       KDC: every cta/... principal in --cta-keytab, or the first N)
  --board B            board config the emulated CTAs run (default emulator; a board
                       with UDP: ${udpBoards().join(', ')})
  --json               the last line of stdout is one JSON object:
                       {ctas, established, signaled, failed, elapsed_ms, ...}
  --keep-running       keep KDC, SC and CTAs running after the exchange, with the SC's
                       control API on a loopback port for 'cta sc status/ctas/wake/rekey
                       --control HOST:PORT' (printed); Ctrl-C stops
  --timeout MS         give up on CTAs not done after MS milliseconds (default 30000)

external KDC (all five together), e.g. MIT krb5kdc with keytabs from kadmin.local ktadd:
  --kdc HOST:PORT      the KDC the CTAs get their tickets from
  --realm R            its realm
  --sc-principal P     the SC's principal (sc/host@R)
  --sc-keytab F        keytab holding P's keys
  --cta-keytab F       keytab holding one or more cta/...@R principals (one emulated CTA each)`;

const PHASE_TEXT: { [p: string]: string } = {
  starting: 'starting',
  waiting: 'woken, waiting',
  ticket: 'AS exchange with KDC',
  ap_req_sent: 'AP Request sent',
  established: 'SA established',
  signaling: 'SA up, NCS request sent',
  done: 'done',
  failed: 'FAILED',
};

function table(rows: CtaRow[]): string[] {
  const out = [`  ${'CTA'.padEnd(34)} ${'state'.padEnd(26)} ${'exchange'.padStart(9)} ${'signal'.padStart(7)}  result`];
  for (const r of rows) {
    const ex = r.exchangeMs === null ? '-' : `${r.exchangeMs} ms`;
    const sg = r.signalingMs === null ? '-' : `${r.signalingMs} ms`;
    const res = r.error ?? r.response ?? '';
    out.push(`  ${r.principal.padEnd(34)} ${PHASE_TEXT[r.phase].padEnd(26)} ${ex.padStart(9)} ${sg.padStart(7)}  ${res}`);
  }
  return out;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, {
    ctas: { type: 'string' },
    board: { type: 'string' },
    json: { type: 'boolean' },
    'keep-running': { type: 'boolean' },
    timeout: { type: 'string' },
    kdc: { type: 'string' },
    realm: { type: 'string' },
    'sc-principal': { type: 'string' },
    'sc-keytab': { type: 'string' },
    'cta-keytab': { type: 'string' },
  });
  const json = !!values.json;
  const ext = ['kdc', 'realm', 'sc-principal', 'sc-keytab', 'cta-keytab'] as const;
  const given = ext.filter((k) => values[k] !== undefined);
  if (given.length > 0 && given.length < ext.length) {
    throw new UsageError(`an external KDC needs all of --${ext.join(', --')} (missing --${ext.filter((k) => values[k] === undefined).join(', --')})`);
  }
  const external =
    given.length === ext.length
      ? {
          kdc: parseHostPort(values.kdc as string, '127.0.0.1', '--kdc'),
          realm: values.realm as string,
          scPrincipal: values['sc-principal'] as string,
          scKeytab: values['sc-keytab'] as string,
          ctaKeytab: values['cta-keytab'] as string,
        }
      : undefined;
  const ctas = intOption(values.ctas as string | undefined, 'ctas', external ? 1000 : 8, 1, 1000);
  const timeoutMs = intOption(values.timeout as string | undefined, 'timeout', 30000, 100, 3600000);
  const board = (values.board as string | undefined) ?? 'emulator';
  // The emulated CTAs talk UDP on loopback: a board without UDP cannot take part.
  if (!loadBoard(board).transports.udp) throw new UsageError(`board ${board} has no UDP transport; the demo needs one of ${udpBoards().join(', ')}`);

  // Progress: a live table on a terminal, state-change lines otherwise; stderr in --json mode.
  const out = json ? process.stderr : process.stdout;
  const live = !json && process.stdout.isTTY;
  let drawn = 0;
  const lastPhase: { [p: string]: string } = {};
  const log = (line: string) => out.write(`${line}\n`);
  const onProgress = (rows: CtaRow[], note: string) => {
    if (live) {
      if (drawn) out.write(`\x1b[${drawn}A`);
      const lines = table(rows);
      out.write(lines.map((l) => `\x1b[2K${l}`).join('\n') + '\n');
      drawn = lines.length;
      return;
    }
    if (note === 'final') return;
    for (const r of rows) {
      if (lastPhase[r.principal] !== r.phase) {
        lastPhase[r.principal] = r.phase;
        log(`  ${r.principal}: ${PHASE_TEXT[r.phase]}${r.error ? ` (${r.error})` : ''}`);
      }
    }
  };

  log(`cta demo: ${external ? 'external KDC' : 'embedded KDC'}, Signaling Controller, ${external ? 'CTAs from the keytab' : `${ctas} emulated CTAs`} on loopback`);
  // Ctrl-C while the CTAs are at work: stop waiting, clean up (temp dir, sockets), exit 130.
  const abort = new AbortController();
  const onInt = () => abort.abort();
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onInt);
  let res;
  try {
    res = await runDemo({ ctas, board, external, timeoutMs, onProgress, log, keepRunning: !!values['keep-running'], signal: abort.signal });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onInt);
  }
  if (!live) for (const l of table(res.rows)) log(l);
  if (abort.signal.aborted) {
    await res.stop();
    log('interrupted');
    return 130;
  }
  log(
    `\n${res.signaled}/${res.ctas} CTAs established an SA and answered protected signaling; ${res.failed} failed; ${res.elapsed_ms} ms in all` +
      (res.wake_ups > res.ctas ? `; ${res.wake_ups - res.ctas} Wake Up(s) retried` : '') +
      ` (KDC ${res.kdc}, SC ${res.sc}, realm ${res.realm})`,
  );
  if (values['keep-running']) {
    log(`running; the SC's control API is on ${res.control}: e.g. cta sc ctas --control ${res.control} --token-file ${res.controlTokenFile}`);
    log('Ctrl-C stops');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log('stopping');
    await res.stop();
  }
  if (json) {
    const { stop: _stop, ...rest } = res;
    process.stdout.write(JSON.stringify(rest) + '\n');
  }
  return res.failed === 0 ? 0 : 1;
}
