// `cta kdc ...`: the embedded KDC's command line.
import { parseArgs, parseHostPort, intOption, UsageError } from '../args.ts';
import { KdcDatabase, enctypeName, parseEnctypes, DEFAULT_MAX_LIFE_SEC } from './db.ts';
import { startKdc, KdcListenError } from './server.ts';

/** Each subcommand's synopsis and description (the help below is built from them). */
const SUB_HELP: { [sub: string]: string } = {
  init: `init --realm REALM [--db kdc.db] [--stash PATH] [--enctypes LIST]
        create the database, its master key stash (<db>.stash by default)
        and krbtgt/REALM@REALM`,
  add: `add PRINCIPAL [--enctypes LIST] [--password-stdin | --randkey]
        [--keytab FILE] [--no-preauth] [--max-life SECONDS] [--db kdc.db]
        add a principal (random keys by default; --password-stdin reads the
        password from the first line of standard input); --keytab also writes
        its keys to FILE (MIT keytab, mode 0600); --max-life: longest ticket
        lifetime, 60 s to a year (default ${DEFAULT_MAX_LIFE_SEC} s)`,
  ktadd: `ktadd PRINCIPAL --keytab FILE [--db kdc.db]
        write an existing principal's keys to a keytab`,
  list: `list [--db kdc.db]
        list principals, their kvno and enctypes (never keys)`,
  serve: `serve [--listen 127.0.0.1:88] [--db kdc.db] [--skew SECONDS] [--quiet]
        answer AS-REQs over UDP and TCP on the same port (port 0: a free one);
        prints the bound ports on stderr, logs one JSON line per request on
        stdout (--quiet: none), accepts client clocks up to --skew seconds off
        (default 300), stops cleanly on SIGINT/SIGTERM`,
};

const COMMON_HELP = `common options (every subcommand):
  --db FILE       the database (default kdc.db)
  --stash FILE    the master key stash (default <db>.stash)

PRINCIPAL is name/instance@REALM (the realm may be left out). LIST is a comma
list of enctype names or numbers: aes256-cts-hmac-sha1-96 (18),
aes128-cts-hmac-sha1-96 (17), aes128-cts-hmac-sha256-128 (19),
aes256-cts-hmac-sha384-192 (20). Default: 18,17,19,20 (those supported).`;

export const help = `usage: cta kdc <subcommand> [options]

An embedded Kerberos KDC (AS exchange only) for the CTA key-management demo
and tests. Principal keys are stored encrypted under a master key kept in a
stash file (mode 0600) beside the database.

subcommands:
${Object.values(SUB_HELP).map((h) => `  ${h}`).join('\n')}

${COMMON_HELP}

examples:
  cta kdc init --realm EXAMPLE.NET --db kdc.db
  cta kdc add cta/cta1.example.net --keytab cta1.keytab
  cta kdc add sc/sc1.example.net --keytab sc1.keytab --enctypes 18,17
  cta kdc serve --listen 127.0.0.1:8088`;

/** `cta kdc SUB --help`: that subcommand alone; null for an unknown one. */
export function subcommandHelp(sub: string): string | null {
  return SUB_HELP[sub] ? `usage: cta kdc ${SUB_HELP[sub]}\n\n${COMMON_HELP}` : null;
}

const COMMON = {
  db: { type: 'string' as const, default: 'kdc.db' },
  stash: { type: 'string' as const },
};

type Values = { [k: string]: string | boolean | (string | boolean)[] | undefined };
/** A string option's value (parseArgs' result is loosely typed through OptionSpec). */
function str(v: Values, k: string): string | undefined {
  const x = v[k];
  return typeof x === 'string' ? x : undefined;
}

function openDb(v: Values, readonly = false): KdcDatabase {
  return KdcDatabase.open(str(v, 'db') ?? 'kdc.db', { stashPath: str(v, 'stash'), readonly });
}

async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const c of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(c);
    total += c.length;
    if (total > 4096) throw new UsageError('password on standard input is longer than 4096 bytes');
    if (c.includes(0x0a)) break; // the first line is enough (on a terminal: Enter, no Ctrl-D needed)
  }
  const s = Buffer.concat(chunks).toString('utf8');
  const line = s.split(/\r?\n/)[0];
  if (!line) throw new UsageError('--password-stdin: empty password on standard input');
  return line;
}

async function cmdInit(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, { ...COMMON, realm: { type: 'string' }, enctypes: { type: 'string' } });
  const realm = str(values, 'realm');
  if (!realm) throw new UsageError('init needs --realm REALM');
  const enc = str(values, 'enctypes');
  const db = KdcDatabase.init(str(values, 'db') ?? 'kdc.db', realm, { stashPath: str(values, 'stash'), enctypes: enc ? parseEnctypes(enc) : undefined });
  try {
    console.log(`initialised realm ${db.realm} in ${db.path} (master key stash ${db.stashPath}, mode 0600)`);
    console.log(`created krbtgt/${db.realm}@${db.realm}`);
  } finally {
    db.close();
  }
  return 0;
}

async function cmdAdd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs(
    argv,
    {
      ...COMMON,
      enctypes: { type: 'string' },
      'password-stdin': { type: 'boolean' },
      randkey: { type: 'boolean' },
      keytab: { type: 'string' },
      'no-preauth': { type: 'boolean' },
      'max-life': { type: 'string' },
    },
    true,
  );
  if (positionals.length !== 1) throw new UsageError(positionals.length ? `add takes one principal, got ${positionals.length}` : 'add needs a PRINCIPAL');
  if (values['password-stdin'] && values.randkey) throw new UsageError('give --password-stdin or --randkey, not both');
  const enc = str(values, 'enctypes');
  const enctypes = enc ? parseEnctypes(enc) : undefined;
  const ml = str(values, 'max-life');
  const maxLifeSec = ml !== undefined ? intOption(ml, 'max-life', 0, 60, 365 * 86400) : undefined;
  const keytab = str(values, 'keytab');
  const db = openDb(values);
  try {
    // Check the name and its absence before asking for a password.
    const { name } = db.canonicalName(positionals[0]);
    if (db.getPrincipal(name)) throw new UsageError(`principal ${name} already exists`);
    const password = values['password-stdin'] ? await readStdinLine() : undefined;
    const p = db.addPrincipal(name, { enctypes, password, requiresPreauth: !values['no-preauth'], maxLifeSec });
    console.log(`added ${p.name} kvno ${p.kvno} (${p.enctypes.map(enctypeName).join(', ')})`);
    if (keytab) {
      const n = db.exportKeytab(p.name, keytab);
      console.log(`wrote ${n} key${n === 1 ? '' : 's'} to keytab ${keytab}`);
    }
  } finally {
    db.close();
  }
  return 0;
}

async function cmdKtadd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs(argv, { ...COMMON, keytab: { type: 'string' } }, true);
  if (positionals.length !== 1) throw new UsageError('ktadd needs one PRINCIPAL');
  const keytab = str(values, 'keytab');
  if (!keytab) throw new UsageError('ktadd needs --keytab FILE');
  const db = openDb(values, true);
  try {
    const n = db.exportKeytab(positionals[0], keytab);
    console.log(`wrote ${n} key${n === 1 ? '' : 's'} to keytab ${keytab}`);
  } finally {
    db.close();
  }
  return 0;
}

async function cmdList(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, { ...COMMON });
  const db = openDb(values, true);
  try {
    for (const p of db.listPrincipals()) {
      const attrs = [p.requiresPreauth ? 'requires_preauth' : 'no_preauth', `max_life=${p.maxLifeSec}s`];
      console.log(`${p.name}  kvno ${p.kvno}  ${p.enctypes.map(enctypeName).join(',')}  ${attrs.join(' ')}`);
    }
  } finally {
    db.close();
  }
  return 0;
}

async function cmdServe(argv: string[]): Promise<number> {
  const { values } = parseArgs(argv, { ...COMMON, listen: { type: 'string', default: '127.0.0.1:88' }, skew: { type: 'string' }, quiet: { type: 'boolean' } });
  const { host, port } = parseHostPort(str(values, 'listen') ?? '127.0.0.1:88', '127.0.0.1', '--listen address');
  const skewSec = intOption(str(values, 'skew'), 'skew', 300, 0, 86400);
  const db = openDb(values);
  let kdc;
  try {
    kdc = await startKdc({
      db,
      host,
      port,
      skewSec,
      log: values.quiet ? undefined : (rec) => process.stdout.write(JSON.stringify({ t: new Date().toISOString(), ...rec }) + '\n'),
    });
  } catch (e) {
    db.close();
    if (e instanceof KdcListenError) throw new UsageError(e.message);
    throw e;
  }
  console.error(`cta kdc: realm ${db.realm} serving on ${host} udp ${kdc.udpPort} tcp ${kdc.tcpPort}`);
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      console.error(`cta kdc: ${sig}, shutting down`);
      resolve();
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
  });
  await kdc.close();
  const s = kdc.stats();
  db.close();
  console.error(`cta kdc: stopped (${s.udpRequests} udp + ${s.tcpRequests} tcp requests, ${s.issued} tickets issued)`);
  return 0;
}

const SUB: { [k: string]: (argv: string[]) => Promise<number> } = { init: cmdInit, add: cmdAdd, ktadd: cmdKtadd, list: cmdList, serve: cmdServe };

export async function run(argv: string[]): Promise<number> {
  const sub = argv[0];
  if (!sub) throw new UsageError(`missing subcommand (${Object.keys(SUB).join(', ')}); see cta kdc --help`);
  const fn = SUB[sub];
  if (!fn) throw new UsageError(`unknown subcommand '${sub}' (${Object.keys(SUB).join(', ')})`);
  return fn(argv.slice(1));
}
