// Interop: MIT Kerberos clients (kinit, klist) against the embedded KDC, with
// keytabs the KDC exported. TGTs (krbtgt/REALM@REALM) and service tickets
// straight from the AS exchange (kinit -S), over UDP and TCP, for enctypes 17,
// 18 and 19.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needTool } from './helpers/tools.ts';
import { KdcDatabase, ENCTYPE_NAME } from '../host-tools/kdc/db.ts';
import { startKdc } from '../host-tools/kdc/server.ts';

const REALM = 'KDC.TEST';

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env, timeout: 15000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

function krb5conf(path: string, port: number, opts: { tcp: boolean; enctypes?: number[] }): void {
  const lines = [
    '[libdefaults]',
    `  default_realm = ${REALM}`,
    '  dns_lookup_kdc = false',
    '  dns_lookup_realm = false',
    '  rdns = false',
    '  ignore_acceptor_hostname = true',
    // 1 byte: every request goes over TCP.
    opts.tcp ? '  udp_preference_limit = 1' : '  udp_preference_limit = 65535',
  ];
  if (opts.enctypes) lines.push(`  default_tkt_enctypes = ${opts.enctypes.map((e) => ENCTYPE_NAME[e]).join(' ')}`);
  lines.push('[realms]', `  ${REALM} = {`, `    kdc = 127.0.0.1:${port}`, '  }');
  writeFileSync(path, lines.join('\n') + '\n');
}

test('MIT kinit gets a TGT and an SC ticket (kinit -S) from our KDC with our keytabs, enctypes 17/18/19, UDP and TCP', async (t) => {
  const kinit = needTool(t, 'kinit');
  const klist = needTool(t, 'klist');
  if (!kinit || !klist) return;
  const dir = mkdtempSync(join(tmpdir(), 'kdc-mit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = KdcDatabase.init(join(dir, 'kdc.db'), REALM);
  t.after(() => db.close());
  // The service's first key is 19, so its tickets are aes128-sha256 whatever the session key.
  db.addPrincipal('sc/sc1.example.net', { enctypes: [19, 18, 17] });
  const keytabs: { [e: number]: string } = {};
  for (const e of [17, 18, 19]) {
    db.addPrincipal(`cta/e${e}.example.net`, { enctypes: [e] });
    keytabs[e] = join(dir, `cta-e${e}.keytab`);
    db.exportKeytab(`cta/e${e}.example.net`, keytabs[e]);
  }
  const logs: string[] = [];
  const kdc = await startKdc({ db, host: '127.0.0.1', port: 0, log: (r) => logs.push(JSON.stringify(r)) });
  t.after(() => kdc.close());

  for (const e of [17, 18, 19]) {
    for (const tcp of [false, true]) {
      const conf = join(dir, `krb5-${e}-${tcp ? 'tcp' : 'udp'}.conf`);
      // The client asks for enctype e only, so e is the session key's enctype.
      krb5conf(conf, kdc.udpPort, { tcp, enctypes: [e] });
      const ccache = `FILE:${join(dir, `cc-${e}-${tcp}`)}`;
      const env = { ...process.env, KRB5_CONFIG: conf, KRB5CCNAME: ccache, KRB5_KDC_PROFILE: join(dir, 'none'), LC_ALL: 'C' };
      const client = `cta/e${e}.example.net@${REALM}`;
      const what = `enctype ${e} over ${tcp ? 'TCP' : 'UDP'}`;

      const r1 = await run(kinit, ['-k', '-t', keytabs[e], client], env);
      assert.equal(r1.code, 0, `kinit (TGT) ${what}: ${r1.stderr}\n${logs.slice(-4).join('\n')}`);
      let l = await run(klist, ['-e'], env);
      assert.equal(l.code, 0, l.stderr);
      assert.match(l.stdout, new RegExp(`Default principal: ${client.replace(/\./g, '\\.')}`));
      assert.match(l.stdout, new RegExp(`krbtgt/${REALM}@${REALM}`.replace(/\./g, '\\.')));
      assert.match(l.stdout, new RegExp(`Etype \\(skey, tkt\\): ${ENCTYPE_NAME[e]}, aes256-cts-hmac-sha1-96`), `${what}: ${l.stdout}`);

      const r2 = await run(kinit, ['-k', '-t', keytabs[e], '-S', `sc/sc1.example.net@${REALM}`, client], env);
      assert.equal(r2.code, 0, `kinit -S ${what}: ${r2.stderr}\n${logs.slice(-4).join('\n')}`);
      l = await run(klist, ['-e'], env);
      assert.match(l.stdout, /sc\/sc1\.example\.net@KDC\.TEST/, l.stdout);
      assert.match(l.stdout, new RegExp(`Etype \\(skey, tkt\\): ${ENCTYPE_NAME[e]}, aes128-cts-hmac-sha256-128`), `${what}: ${l.stdout}`);
    }
  }
  const s = kdc.stats();
  assert.ok(s.udpRequests >= 6 && s.tcpRequests >= 6, JSON.stringify(s));
  assert.equal(s.issued, 12);
});

test('MIT kinit with a password principal, and a keytab from another KDC is refused (preauth failed)', async (t) => {
  const kinit = needTool(t, 'kinit');
  if (!kinit) return;
  const dir = mkdtempSync(join(tmpdir(), 'kdc-mit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const db = KdcDatabase.init(join(dir, 'kdc.db'), REALM);
  t.after(() => db.close());
  db.addPrincipal('alice', { password: 'open sesame 42', enctypes: [18, 17] });
  db.addPrincipal('cta/cta1.example.net', { enctypes: [18] });
  // Same name, other KDC: other keys.
  const other = KdcDatabase.init(join(dir, 'other.db'), REALM);
  other.addPrincipal('cta/cta1.example.net', { enctypes: [18] });
  other.exportKeytab('cta/cta1.example.net', join(dir, 'wrong.keytab'));
  other.close();
  const kdc = await startKdc({ db, port: 0 });
  t.after(() => kdc.close());
  const conf = join(dir, 'krb5.conf');
  krb5conf(conf, kdc.udpPort, { tcp: false });
  const env = { ...process.env, KRB5_CONFIG: conf, KRB5CCNAME: `FILE:${join(dir, 'cc')}`, LC_ALL: 'C' };

  const ok = await run(kinit, [`alice@${REALM}`], env, 'open sesame 42\n');
  assert.equal(ok.code, 0, ok.stderr);
  const bad = await run(kinit, [`alice@${REALM}`], env, 'open sesame 43\n');
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /[Pp]reauthentication failed|[Pp]assword incorrect/);
  const wrong = await run(kinit, ['-k', '-t', join(dir, 'wrong.keytab'), `cta/cta1.example.net@${REALM}`], env);
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /[Pp]reauthentication failed|[Pp]assword incorrect/);
  const unknown = await run(kinit, ['-k', '-t', join(dir, 'wrong.keytab'), `cta/nobody@${REALM}`], env);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /not found in Kerberos database|[Kk]eytab contains no suitable keys/);
  assert.ok(kdc.stats().errors[24] >= 2);
});
