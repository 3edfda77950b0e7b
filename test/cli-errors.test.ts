// Every `cta` command on user mistakes: one line on stderr naming the problem, a
// non-zero exit, no stack trace. Runs main(argv) from host-tools/cli.ts in-process
// (a process per case costs 1-2 s through tsx); no case gets as far as serving.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dgram from 'node:dgram';
import net from 'node:net';
import { main, internalError } from '../host-tools/cli.ts';

type Out = { code: number; stdout: string; stderr: string };

/** main(argv) with console output captured (stderr writes too; stdout stays the runner's). */
async function cta(argv: string[]): Promise<Out> {
  let stdout = '';
  let stderr = '';
  const keep = { log: console.log, error: console.error, warn: console.warn, info: console.info, errWrite: process.stderr.write };
  const fmt = (a: unknown[]) => a.map((x) => (typeof x === 'string' ? x : String(x))).join(' ') + '\n';
  console.log = console.info = (...a: unknown[]) => void (stdout += fmt(a));
  console.error = console.warn = (...a: unknown[]) => void (stderr += fmt(a));
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await main(argv);
    return { code, stdout, stderr };
  } finally {
    Object.assign(console, { log: keep.log, error: keep.error, warn: keep.warn, info: keep.info });
    process.stderr.write = keep.errWrite;
  }
}

let dir = '';
let udpHeld: dgram.Socket;
let tcpHeld: net.Server;
let heldPort = 0; // UDP and TCP both taken on 127.0.0.1
let closedPort = 0; // nothing listens here
const P = (f: string) => join(dir, f);

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cta-cli-errors-'));
  writeFileSync(P('junk'), 'this is neither a keytab nor a CTA configuration\n');
  mkdirSync(P('adir'));
  const ok = async (argv: string[]) => {
    const r = await cta(argv);
    assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
  };
  await ok(['kdc', 'init', '--realm', 'ERR.TEST', '--db', P('kdc.db')]);
  await ok(['kdc', 'add', 'sc/sc1.err.test', '--db', P('kdc.db'), '--keytab', P('sc.keytab')]);
  await ok(['kdc', 'add', 'cta/cta1.err.test', '--db', P('kdc.db'), '--keytab', P('cta.keytab')]);
  // A TCP port taken with UDP taken on the same number, and one nobody listens on.
  for (;;) {
    tcpHeld = net.createServer();
    await new Promise<void>((res) => tcpHeld.listen(0, '127.0.0.1', () => res()));
    heldPort = (tcpHeld.address() as net.AddressInfo).port;
    udpHeld = dgram.createSocket('udp4');
    const bound = await new Promise<boolean>((res) => {
      udpHeld.once('error', () => res(false));
      udpHeld.bind(heldPort, '127.0.0.1', () => res(true));
    });
    if (bound) break;
    udpHeld.close();
    await new Promise<void>((res) => tcpHeld.close(() => res()));
  }
  const s = net.createServer();
  await new Promise<void>((res) => s.listen(0, '127.0.0.1', () => res()));
  closedPort = (s.address() as net.AddressInfo).port;
  await new Promise<void>((res) => s.close(() => res()));
  await ok([
    'provision', '--keytab', P('cta.keytab'), '--principal', 'cta/cta1.err.test',
    '--sc', 'sc/sc1.err.test@ERR.TEST=127.0.0.1:1293', '--kdc', '127.0.0.1:88',
    '--listen-port', String(heldPort), '-o', P('cta.cbor'),
  ]);
});

after(async () => {
  udpHeld?.close();
  if (tcpHeld) await new Promise<void>((res) => tcpHeld.close(() => res()));
  rmSync(dir, { recursive: true, force: true });
});

// [argv, what stderr must say]; argv is a function where it needs the fixtures.
type Case = [string[] | (() => string[]), RegExp];
const sc = () => ['sc', '--principal', 'sc/sc1.err.test@ERR.TEST', '--keytab', P('sc.keytab'), '--listen', '127.0.0.1:0', '--control', 'none', '--state', ':memory:'];
const ext = () => ['demo', '--realm', 'ERR.TEST', '--sc-principal', 'sc/sc1.err.test@ERR.TEST', '--kdc', `127.0.0.1:${closedPort}`];

const CASES: Case[] = [
  // cta itself
  [['bogus'], /^cta: unknown command 'bogus' \(commands: demo, kdc, sc/],
  [['--bogus'], /^cta: unknown option '--bogus'/],

  // demo
  [['demo', '--bogus'], /^cta demo: Unknown option '--bogus'/],
  [['demo', 'extra'], /^cta demo: Unexpected argument 'extra'/],
  [['demo', '--ctas', 'many'], /^cta demo: --ctas must be a whole number from 1 to 1000, not 'many'/],
  [['demo', '--ctas'], /^cta demo: option --ctas is missing its value/],
  [['demo', '--timeout', '-5'], /^cta demo: option --timeout is missing its value \(a value starting with '-' is written --timeout=VALUE\)/],
  [['demo', '--board', 'mars'], /^cta demo: unknown board 'mars': expected one of .*emulator/],
  [['demo', '--board', 'pico'], /^cta demo: board pico has no UDP transport; the demo needs one of/],
  [['demo', '--kdc', '127.0.0.1:88'], /^cta demo: an external KDC needs all of .*missing --realm/],
  [() => [...ext(), '--sc-keytab', P('missing.keytab'), '--cta-keytab', P('cta.keytab')], /^cta demo: cannot read SC keytab '.*missing\.keytab': no such file/],
  [() => [...ext(), '--sc-keytab', P('junk'), '--cta-keytab', P('cta.keytab')], /^cta demo: SC keytab '.*junk' is not a valid keytab/],
  [() => [...ext(), '--sc-keytab', P('cta.keytab'), '--cta-keytab', P('cta.keytab')], /^cta demo: principal 'sc\/sc1.err.test@ERR.TEST' is not in the SC keytab/],
  [() => [...ext(), '--sc-keytab', P('sc.keytab'), '--cta-keytab', P('sc.keytab')], /^cta demo: the CTA keytab '.*' holds no cta\/\.\.\.@ERR.TEST principal/],
  [() => [...ext(), '--sc-keytab', P('sc.keytab'), '--cta-keytab', P('cta.keytab')], /^cta demo: KDC 127\.0\.0\.1:\d+ is unreachable/],

  // kdc
  [['kdc'], /^cta kdc: missing subcommand \(init, add, ktadd, list, serve\)/],
  [['kdc', 'bogus'], /^cta kdc: unknown subcommand 'bogus'/],
  [['kdc', 'init'], /^cta kdc: init needs --realm REALM/],
  [() => ['kdc', 'init', '--realm', 'ERR.TEST', '--db', P('kdc.db')], /^cta kdc: .*kdc\.db is already initialised for realm ERR.TEST/],
  [() => ['kdc', 'init', '--realm', 'X.TEST', '--db', P('nodir/kdc.db')], /^cta kdc: cannot create .*nodir\/kdc\.db: no such directory/],
  [() => ['kdc', 'init', '--realm', 'X.TEST', '--db', P('new.db'), '--enctypes', '23'], /^cta kdc: unknown enctype '23'/],
  [() => ['kdc', 'list', '--db', P('missing.db')], /^cta kdc: database .*missing\.db not found \(run 'cta kdc init/],
  [() => ['kdc', 'list', '--db', P('junk')], /^cta kdc: .*junk is not a cta KDC database/],
  [() => ['kdc', 'list', '--db', P('kdc.db'), 'extra'], /^cta kdc: Unexpected argument 'extra'/],
  [() => ['kdc', 'add', '--db', P('kdc.db')], /^cta kdc: add needs a PRINCIPAL/],
  [() => ['kdc', 'add', 'a', 'b', '--db', P('kdc.db')], /^cta kdc: add takes one principal, got 2/],
  [() => ['kdc', 'add', 'cta/cta1.err.test', '--db', P('kdc.db')], /^cta kdc: principal cta\/cta1.err.test@ERR.TEST already exists/],
  [() => ['kdc', 'add', 'cta/x@OTHER.TEST', '--db', P('kdc.db')], /^cta kdc: principal cta\/x@OTHER.TEST is not in realm ERR.TEST/],
  [() => ['kdc', 'add', 'cta/y', '--db', P('kdc.db'), '--max-life', '5'], /^cta kdc: --max-life must be a whole number from 60/],
  [() => ['kdc', 'ktadd', 'cta/nobody', '--db', P('kdc.db'), '--keytab', P('x.keytab')], /^cta kdc: principal cta\/nobody not found/],
  [() => ['kdc', 'ktadd', 'cta/cta1.err.test', '--db', P('kdc.db')], /^cta kdc: ktadd needs --keytab FILE/],
  [() => ['kdc', 'serve', '--db', P('kdc.db'), '--listen', '127.0.0.1:99999'], /^cta kdc: bad --listen address '127\.0\.0\.1:99999'/],
  [() => ['kdc', 'serve', '--db', P('kdc.db'), '--listen', `127.0.0.1:${heldPort}`], /^cta kdc: port \d+ on 127\.0\.0\.1 is already in use/],
  [() => ['kdc', 'serve', '--db', P('kdc.db'), '--skew', 'x'], /^cta kdc: --skew must be a whole number/],

  // sc serve
  [['sc'], /^cta sc: --principal sc\/HOST@REALM is required/],
  [['sc', '--principal', 'sc/a@B'], /^cta sc: --keytab FILE is required/],
  [['sc', 'bogus'], /^cta sc: unknown sc command 'bogus'/],
  [() => [...sc(), 'extra'], /^cta sc: unexpected argument 'extra'/],
  [() => [...sc(), '--keytab', P('missing.keytab')], /^cta sc: keytab '.*missing\.keytab' does not exist/],
  [() => [...sc(), '--keytab', P('junk')], /^cta sc: keytab '.*junk' is not a valid keytab/],
  [() => [...sc(), '--keytab', P('cta.keytab')], /^cta sc: principal sc\/sc1.err.test@ERR.TEST is not in the keytab/],
  [() => [...sc(), '--principal', 'sc/sc1.err.test'], /^cta sc: bad SC principal 'sc\/sc1.err.test': .*no realm/],
  [() => [...sc(), '--listen', '127.0.0.1:99999'], /^cta sc: bad --listen '127\.0\.0\.1:99999'/],
  [() => [...sc(), '--listen', `127.0.0.1:${heldPort}`], /^cta sc: UDP 127\.0\.0\.1:\d+ is already in use/],
  [() => [...sc(), '--control', `127.0.0.1:${heldPort}`], /^cta sc: control API port 127\.0\.0\.1:\d+ is already in use/],
  [() => [...sc(), '--listen', 'no-such-host.invalid:0'], /^cta sc: --listen: cannot resolve host 'no-such-host.invalid'/],
  [() => [...sc(), '--state', P('nodir/sc.db')], /^cta sc: --state .*nodir\/sc\.db: directory .* does not exist/],
  [() => [...sc(), '--state', P('junk')], /^cta sc: --state .*junk is not an SC registry/],
  [() => [...sc(), '--state', P('adir')], /^cta sc: --state .*adir is a directory/],
  [() => [...sc(), '--wake-retries', 'x'], /^cta sc: --wake-retries must be a whole number/],
  [() => [...sc(), '--cta', 'nonsense'], /^cta sc: bad --cta 'nonsense': expected PRINCIPAL=HOST:PORT/],
  [() => [...sc(), '--serial', P('no-such-tty')], /^cta sc: --serial .*no-such-tty: /],
  // sc client commands
  [() => ['sc', 'status', '--control', `127.0.0.1:${closedPort}`], /^cta sc: control API at 127\.0\.0\.1:\d+ is unreachable \(connection refused\)/],
  [['sc', 'status', '--control', 'nope'], /^cta sc: bad --control 'nope'/],
  [['sc', 'status', 'extra'], /^cta sc: status takes no arguments/],
  [['sc', 'metrics', '--json'], /^cta sc: --json is only for/],
  [['sc', 'wake'], /^cta sc: usage: cta sc wake \(PRINCIPAL \| --all\)/],
  [['sc', 'wake', 'a@B', '--all'], /^cta sc: give a principal or --all, not both/],
  [['sc', 'rekey'], /^cta sc: usage: cta sc rekey PRINCIPAL/],
  [['sc', 'register', 'nonsense'], /^cta sc: bad CTA 'nonsense'/],

  // provision
  [['provision'], /^cta provision: --keytab FILE is required/],
  [() => ['provision', '--keytab', P('cta.keytab')], /^cta provision: --principal NAME is required/],
  [() => ['provision', '--keytab', P('cta.keytab'), '--principal', 'cta/cta1.err.test'], /^cta provision: at least one --sc/],
  [() => ['provision', '--keytab', P('cta.keytab'), '--principal', 'cta/cta1.err.test', '--sc', 'sc/a'], /^cta provision: --kdc HOST:PORT is required/],
  [() => ['provision', '--keytab', P('missing.keytab'), '--principal', 'cta/a', '--sc', 'sc/a', '--kdc', 'h'], /^cta provision: cannot read keytab '.*': no such file/],
  [() => ['provision', '--keytab', P('junk'), '--principal', 'cta/a', '--sc', 'sc/a', '--kdc', 'h'], /^cta provision: bad keytab: /],
  [() => ['provision', '--keytab', P('sc.keytab'), '--principal', 'cta/cta1.err.test', '--sc', 'sc/a', '--kdc', 'h'], /^cta provision: principal 'cta\/cta1.err.test' is not in the keytab/],
  [() => ['provision', '--keytab', P('cta.keytab'), '--principal', 'cta/cta1.err.test', '--sc', 'sc/a', '--kdc', 'h', '--slots', '0'], /^cta provision: --slots must be a whole number/],
  [() => ['provision', '--keytab', P('cta.keytab'), '--principal', 'cta/cta1.err.test', '--sc', 'sc/a', '--kdc', 'h', '--transport', 'tcp'], /^cta provision: --transport must be udp or serial/],
  [() => ['provision', '--keytab', P('cta.keytab'), '--principal', 'cta/cta1.err.test', '--sc', 'sc/a', '--kdc', 'h', '-o', P('nodir/x.cbor')], /^cta provision: cannot write '.*': no such directory/],
  [() => ['provision', '--keytab', P('cta.keytab'), 'extra'], /^cta provision: Unexpected argument 'extra'/],

  // emu
  [['emu'], /^cta emu: --config FILE is required/],
  [() => ['emu', '--config', P('missing.cbor')], /^cta emu: config file not found/],
  [() => ['emu', '--config', P('junk')], /^cta emu: --config .*junk is not a CTA configuration/],
  [() => ['emu', '--config', P('adir')], /^cta emu: cannot read --config .*adir: it is a directory/],
  [() => ['emu', '--config', P('cta.cbor'), '--board', 'pico'], /^cta emu: --config .* uses transport udp, but board pico has no UDP/],
  [() => ['emu', '--config', P('cta.cbor'), '--board', 'mars'], /^cta emu: unknown board 'mars'/],
  [() => ['emu', '--config', P('cta.cbor'), '--udp', 'abc'], /^cta emu: --udp must be a whole number/],
  [() => ['emu', '--config', P('cta.cbor'), '--storage', P('storage')], /^cta emu: UDP 127\.0\.0\.1:\d+, the CTA key-management port .* is already in use/],
  [() => ['emu', '--config', P('cta.cbor'), 'extra'], /^cta emu: Unexpected argument 'extra'/],
  [() => ['emu', '--config', P('cta.cbor'), '--storage', P('junk/storage')], /^cta emu: cannot create the Storage directory .*junk\/storage \(a part of the path is not a directory\); choose one with --storage DIR/],
  [['emu', '--console', 'serial'], /^cta emu: bad --console 'serial'/],
  [() => ['emu', '--console', `tcp:${heldPort}`, '--storage', P('storage')], /^cta emu: console port \d+ is already in use/],

  // build
  [['build', '--board', 'mars'], /^cta build: unknown board 'mars'/],
  [['build', '--board', 'pico', '--all'], /^cta build: give either --board or --all, not both/],
  [() => ['build', '--entry', P('missing.ts')], /^cta build: --entry .*missing\.ts: no such file/],
  [() => ['build', '--out', P('junk')], /^cta build: --out .*junk is a file, not a directory/],
  [['build', 'pico'], /^cta build: Unexpected argument 'pico'/],

  // flash (all caught before any connection)
  [['flash'], /^cta flash: --board is required/],
  [['flash', '--board', 'pico'], /^cta flash: --port is required/],
  [['flash', '--board', 'pico', '--port', '/dev/ttyACM0'], /^cta flash: --config cta.cbor is required/],
  [() => ['flash', '--board', 'mars', '--port', '/dev/ttyACM0', '--config', P('cta.cbor')], /^cta flash: unknown board 'mars'/],
  [() => ['flash', '--board', 'linux', '--port', 'COM:x', '--config', P('cta.cbor')], /^cta flash: bad --port 'COM:x'/],
  [() => ['flash', '--board', 'linux', '--port', '/dev/ttyACM0', '--config', P('missing.cbor')], /^cta flash: cannot read --config .*: no such file/],
  [() => ['flash', '--board', 'linux', '--port', '/dev/ttyACM0', '--config', P('junk')], /^cta flash: --config .*junk: /],
  [() => ['flash', '--board', 'pico', '--port', '/dev/ttyACM0', '--config', P('cta.cbor')], /^cta flash: --config .*: transport "udp" but board pico has no UDP/],
  [() => ['flash', '--board', 'linux', '--port', '/dev/ttyACM0', '--config', P('cta.cbor'), '--baud', 'fast'], /^cta flash: --baud must be a whole number/],
  [() => ['flash', '--board', 'linux', '--port', '/dev/ttyACM0', '--config', P('cta.cbor'), 'extra'], /^cta flash: unexpected argument 'extra'/],

  // hil
  [['hil'], /^cta hil: --target is required/],
  [['hil', '--target', 'bogus'], /^cta hil: unknown --target 'bogus'/],
  [['hil', '--target', 'emu', '--scenario', 'nope'], /^cta hil: unknown scenario 'nope'/],
  [['hil', '--target', 'emu', '--flood', 'x'], /^cta hil: --flood must be a whole number/],
  [['hil', '--target', 'emu', 'extra'], /^cta hil: Unexpected argument 'extra'/],

  // bench
  [['bench', '--only', 'nope'], /^cta bench: unknown benchmark 'nope'/],
  [['bench', '--runs', '0'], /^cta bench: --runs must be a whole number from 1/],
  [() => ['bench', '--espruino', P('no-espruino')], /^cta bench: --espruino .*no-espruino: no such file/],
  [['bench', '--espruino-board', 'pico'], /^cta bench: --espruino-board pico: not a board of the Linux interpreter \(espruinoBuild PICO_R1_3\)/],
  [['bench', '--espruino-board', 'linux'], /^cta bench: --espruino-board needs --espruino PATH/],
  [['bench', '--espruino-board', 'nope'], /^cta bench: unknown board 'nope'/],
  [['bench', 'extra'], /^cta bench: Unexpected argument 'extra'/],
];

test('cta: every user mistake is one line on stderr, a non-zero exit and no stack trace', { timeout: 120000 }, async () => {
  const failures: string[] = [];
  for (const [args, re] of CASES) {
    const argv = typeof args === 'function' ? args() : args;
    const label = `cta ${argv.map((a) => a.replace(dir, '$TMP')).join(' ')}`;
    const r = await cta(argv);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    const problems: string[] = [];
    if (r.code === 0) problems.push('exit 0');
    if (lines.length !== 1) problems.push(`${lines.length} stderr lines`);
    if (!re.test(lines[0] ?? '')) problems.push(`does not match ${re}`);
    if (/^\s+at /m.test(r.stderr)) problems.push('stack trace');
    if (problems.length) failures.push(`${label}: ${problems.join(', ')}\n    stderr: ${JSON.stringify(r.stderr)}`);
  }
  assert.deepEqual(failures, [], failures.join('\n'));
});

test('cta: usage errors exit 2; bare cta prints the command list on stderr', async () => {
  assert.equal((await cta(['demo', '--bogus'])).code, 2);
  assert.equal((await cta(['kdc'])).code, 2);
  const bare = await cta([]);
  assert.equal(bare.code, 2);
  assert.match(bare.stderr, /^usage: cta <command>/);
  for (const name of ['demo', 'kdc', 'sc', 'emu', 'build', 'provision', 'flash', 'hil', 'bench']) assert.match(bare.stderr, new RegExp(`\\n  ${name} `));
  const help = await cta(['help', 'provision']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^usage: cta provision /);
});

test('cta: an unexpected error is one line with exit 1; CTA_DEBUG=1 adds the stack', () => {
  const errs: string[] = [];
  const keep = console.error;
  const debug = process.env.CTA_DEBUG;
  console.error = (...a: unknown[]) => void errs.push(a.join(' '));
  try {
    delete process.env.CTA_DEBUG;
    const e = Object.assign(new Error('boom\nsecond line'), { code: 'EBOOM' });
    assert.equal(internalError('sc', e), 1);
    assert.equal(errs.length, 1);
    assert.equal(errs[0], 'cta sc: boom (EBOOM) [unexpected error: CTA_DEBUG=1 shows the stack trace]');
    process.env.CTA_DEBUG = '1';
    assert.equal(internalError('sc', new Error('boom')), 1);
    assert.match(errs[1], /^cta sc: Error: boom\n\s+at /);
  } finally {
    console.error = keep;
    if (debug === undefined) delete process.env.CTA_DEBUG;
    else process.env.CTA_DEBUG = debug;
  }
});

// Rough edges a newcomer met (issue 14): [argv, exit code, what the one stderr line says].
type CodedCase = [string[] | (() => string[]), number, RegExp];
const FIRST_HOUR: CodedCase[] = [
  // flash: a TCP port out of range is bad usage; a name lookup or a refused connection is named at once
  [() => ['flash', '--board', 'linux', '--port', 'tcp://127.0.0.1:99999', '--config', P('cta.cbor')], 2, /^cta flash: bad --port 'tcp:\/\/127\.0\.0\.1:99999': the TCP port must be 1-65535$/],
  [() => ['flash', '--board', 'linux', '--port', 'tcp://127.0.0.1:70000', '--config', P('cta.cbor')], 2, /^cta flash: bad --port .*: the TCP port must be 1-65535$/],
  [() => ['flash', '--board', 'linux', '--port', 'tcp://127.0.0.1:0', '--config', P('cta.cbor')], 2, /^cta flash: bad --port .*: the TCP port must be 1-65535$/],
  [() => ['flash', '--board', 'linux', '--port', 'tcp://no-such-host.invalid:2323', '--config', P('cta.cbor'), '--timeout', '15'], 1, /^cta flash: step 3\/6 \(connect\) failed: cannot resolve the host of tcp:\/\/no-such-host\.invalid:2323 \(ENOTFOUND/],
  [() => ['flash', '--board', 'linux', '--port', `tcp://127.0.0.1:${closedPort}`, '--config', P('cta.cbor'), '--timeout', '15'], 1, /^cta flash: step 3\/6 \(connect\) failed: tcp:\/\/127\.0\.0\.1:\d+ refused the connection/],
  // a path that runs through a file is named, not an unexpected SQLite or mkdir error
  [() => [...sc(), '--state', P('cta.keytab/sc.db')], 2, /^cta sc: --state .*cta\.keytab\/sc\.db: .*cta\.keytab is not a directory$/],
  [() => ['build', '--out', P('junk/sub')], 2, /^cta build: cannot mkdir '.*junk\/sub': a part of the path is not a directory$/],
  // help for an unknown command is bad usage, as the command itself is
  [['help', 'nope'], 2, /^cta: unknown command 'nope'/],
  // a test-only HIL scenario is not offered
  [['hil', '--target', 'emu', '--scenario', 'nope'], 2, /^cta hil: unknown scenario 'nope' \(known: (?!.*impossible)/],
];

test('cta: the rough edges of a first hour are one line on stderr with the right exit code', { timeout: 180000 }, async () => {
  const failures: string[] = [];
  for (const [args, want, re] of FIRST_HOUR) {
    const argv = typeof args === 'function' ? args() : args;
    const t0 = Date.now();
    const r = await cta(argv);
    const lines = r.stderr.split('\n').filter((l) => l !== '');
    const problems: string[] = [];
    if (r.code !== want) problems.push(`exit ${r.code}, not ${want}`);
    if (lines.length !== 1) problems.push(`${lines.length} stderr lines`);
    if (!re.test(lines[0] ?? '')) problems.push(`does not match ${re}`);
    if (/^\s+at /m.test(r.stderr)) problems.push('stack trace');
    if (Date.now() - t0 > 10000) problems.push(`took ${Date.now() - t0} ms`);
    if (problems.length) failures.push(`cta ${argv.map((a) => a.replace(dir, '$TMP')).join(' ')}: ${problems.join(', ')}\n    stderr: ${JSON.stringify(r.stderr)}`);
  }
  assert.deepEqual(failures, [], failures.join('\n'));
});

test('cta CMD SUB --help prints that subcommand\'s help, not the parent\'s', async () => {
  const cases: [string[], RegExp][] = [
    [['kdc', 'add', '--help'], /^usage: cta kdc add PRINCIPAL /],
    [['kdc', 'serve', '-h'], /^usage: cta kdc serve /],
    [['help', 'kdc', 'list'], /^usage: cta kdc list /],
    [['sc', 'rekey', '--help'], /^usage: cta sc rekey PRINCIPAL \[--control HOST:PORT\]/],
    [['sc', 'ctas', '--help'], /^usage: cta sc ctas \[--json\] \[--control HOST:PORT\]/],
  ];
  for (const [argv, re] of cases) {
    const r = await cta(argv);
    assert.equal(r.code, 0, argv.join(' '));
    assert.match(r.stdout, re, argv.join(' '));
    assert.ok(r.stdout.split('\n').length < 20, `${argv.join(' ')}: ${r.stdout.split('\n').length} lines`);
  }
  // The parent's help is unchanged, and a subcommand it does not have falls back to it.
  assert.match((await cta(['kdc', '--help'])).stdout, /^usage: cta kdc <subcommand>[\s\S]*\n  serve /);
  assert.match((await cta(['sc', 'bogus', '--help'])).stdout, /^usage: cta sc \[serve\]/);
  assert.match((await cta(['sc', 'serve', '--help'])).stdout, /^usage: cta sc \[serve\]/);
});

test('cta sc CLIENT --control at a port that is not HTTP says so in one line', async (t) => {
  const srv = net.createServer((c) => c.end('SSH-2.0-OpenSSH_9.6\r\n'));
  await new Promise<void>((res) => srv.listen(0, '127.0.0.1', () => res()));
  t.after(() => srv.close());
  const r = await cta(['sc', 'ctas', '--control', `127.0.0.1:${(srv.address() as net.AddressInfo).port}`]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^cta sc: 127\.0\.0\.1:\d+ answered, but not as the SC's control API \(not HTTP\)/);
  assert.doesNotMatch(r.stderr, /HPE_/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('one realm rule: provision --sc without @REALM is the CTA\'s realm, and the usage says so', async () => {
  const out = P('realm.cbor');
  const r = await cta(['provision', '--keytab', P('cta.keytab'), '--principal', 'cta/cta1.err.test', '--sc', 'sc/sc1.err.test', '--kdc', '127.0.0.1:88', '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^sc +sc\/sc1\.err\.test@ERR\.TEST /m);
  const help = await cta(['provision', '--help']);
  assert.match(help.stdout, /--sc sc\/NAME\[@REALM\]/);
  assert.match(help.stdout, /without @REALM: the CTA's realm/);
});
