// The throwaway MIT realm harness itself: errors surface, password principals
// keep their keys, a port clash is retried, nothing outlives the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { needTool } from './helpers/tools.ts';
import { startMitRealm } from './helpers/mit.ts';
import { parseKeytab } from '../firmware/proto/keytab.ts';

function alive(pid: number) {
  try {
    process.kill(pid, 0);
    return !/^Z/m.test(readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1] ?? '');
  } catch {
    return false;
  }
}

test('MIT realm harness', async (t) => {
  for (const tool of ['kdb5_util', 'kadmin.local', 'krb5kdc', 'kinit', 'klist']) if (!needTool(t, tool)) return;
  const realm = await startMitRealm({
    principals: [
      { name: 'user1', password: 'Secret-pw1', enctypes: [18, 17] },
      { name: 'svc/host.example.net' },
    ],
  });
  t.after(() => realm.stop());

  await t.test('configs live in the temp dir and point at loopback', () => {
    assert.equal(realm.realm, 'TEST.EXAMPLE.NET');
    assert.equal(realm.env.KRB5_CONFIG, realm.krb5conf);
    for (const k of ['KRB5_CONFIG', 'KRB5_KDC_PROFILE', 'KRB5CCNAME', 'KRB5_KTNAME', 'KRB5_CLIENT_KTNAME']) {
      assert.ok(realm.vars[k].includes(realm.dir), k);
    }
    assert.equal(realm.vars.KRB5RCACHETYPE, 'none');
    const kdc = readFileSync(realm.kdcconf, 'utf8');
    assert.match(kdc, new RegExp(`kdc_listen = 127\\.0\\.0\\.1:${realm.kdcPort}`));
    assert.match(kdc, /aes256-cts-hmac-sha384-192:normal/);
    for (const m of kdc.matchAll(/(?:database_name|key_stash_file|acl_file|FILE:)\s*=?\s*(\S+)/g)) {
      assert.ok(m[1].replace(/^FILE:/, '').startsWith(realm.dir), m[0]);
    }
    assert.ok(existsSync(`${realm.dir}/stash`));
  });

  await t.test('kadmin errors throw; keys() reads the KDB', async () => {
    await assert.rejects(realm.kadmin('getprinc nosuch'), /does not exist/);
    await assert.rejects(realm.addPrincipal({ name: 'user1', password: 'x1' }), /already exists/);
    const ks = await realm.keys('svc/host.example.net');
    assert.deepEqual(ks.map((k) => k.enctype).sort(), [
      'aes128-cts-hmac-sha1-96',
      'aes128-cts-hmac-sha256-128',
      'aes256-cts-hmac-sha1-96',
      'aes256-cts-hmac-sha384-192',
    ]);
  });

  await t.test('exports keep a password valid; a subset of its keys is refused unless randkey', async () => {
    const a = parseKeytab(readFileSync(await realm.exportKeytab('user1')));
    const b = parseKeytab(readFileSync(await realm.exportKeytab('user1', ['aes128-cts-hmac-sha1-96', 18])));
    assert.deepEqual(a.map((e) => [e.kvno, e.etype]), b.map((e) => [e.kvno, e.etype]));
    assert.deepEqual(a.map((e) => Buffer.from(e.key).toString('hex')), b.map((e) => Buffer.from(e.key).toString('hex')));
    await assert.rejects(realm.exportKeytab('user1', [17]), /has a password/);
    // a random-key principal: a different set re-randomizes and bumps the kvno
    const s1 = parseKeytab(readFileSync(await realm.exportKeytab('svc/host.example.net')));
    const s2 = parseKeytab(readFileSync(await realm.exportKeytab('svc/host.example.net', [19])));
    assert.ok(s1.every((e) => e.kvno === 1));
    assert.deepEqual(s2.map((e) => [e.kvno, e.etype]), [[2, 19]]);
  });

  await t.test('a port taken before startKdc is retried on another port', async () => {
    const old = realm.kdcPort;
    const sock = createSocket('udp4');
    await new Promise<void>((res) => sock.bind(old, '127.0.0.1', () => res()));
    try {
      await realm.startKdc();
    } finally {
      sock.close();
    }
    assert.notEqual(realm.kdcPort, old);
    assert.match(readFileSync(realm.krb5conf, 'utf8'), new RegExp(`kdc = 127\\.0\\.0\\.1:${realm.kdcPort}`));
    await realm.kinit('user1', { password: 'Secret-pw1' });
    assert.match((await realm.run('klist', [])).stdout, /Default principal: user1@TEST\.EXAMPLE\.NET/);
    await assert.rejects(realm.kinit('user1', { password: 'wrong-pw' }), /failed/);
    const pid = realm.kdcPid();
    assert.ok(pid && alive(pid));
    await realm.stopKdc();
    assert.ok(!alive(pid!));
    await realm.startKdc(); // restartable
    assert.ok(realm.kdcPid());
  });

  await t.test('a process that exits without stop() leaves no KDC and no directory', () => {
    const helper = fileURLToPath(new URL('./helpers/mit.ts', import.meta.url));
    const script = `
      import { startMitRealm } from ${JSON.stringify(helper)};
      const r = await startMitRealm({ principals: [], start: true });
      console.log(JSON.stringify({ dir: r.dir, pid: r.kdcPid() }));
      process.exit(3);
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30000 });
    assert.equal(r.status, 3, r.stderr);
    const { dir, pid } = JSON.parse(r.stdout.trim().split('\n').pop()!);
    assert.ok(pid > 0);
    assert.ok(!existsSync(dir), 'temp dir removed at exit');
    // SIGKILL was sent at exit; give the kernel a moment to reap it
    const deadline = Date.now() + 5000;
    while (alive(pid) && Date.now() < deadline) spawnSync('sleep', ['0.05']);
    assert.ok(!alive(pid), 'KDC killed at exit');
  });
});
