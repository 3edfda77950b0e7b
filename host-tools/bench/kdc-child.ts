// Our embedded KDC in its own process (pinned like MIT's krb5kdc):
//   {type:'kdc', dir, clients} -> creates a realm database in dir with the SC principal and
//   `clients` CTA principals (enctype 18, pre-authentication required), serves UDP+TCP on
//   127.0.0.1, replies {type:'kdc-ready', port, clients:[{name, key, kvno}]}.
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { KdcDatabase } from '../kdc/db.ts';
import { startKdc } from '../kdc/server.ts';
import { parseKeytab } from '../../firmware/proto/keytab.ts';
import { childMain } from './proc.ts';
import { REALM, SC_PRINCIPAL, toHex } from './fixtures.ts';

childMain(async (msg, reply) => {
  if (msg.type !== 'kdc') return;
  const db = KdcDatabase.init(join(msg.dir, 'kdc.db'), REALM, { enctypes: [msg.etype] });
  db.addPrincipal(SC_PRINCIPAL, { randkey: true, enctypes: [msg.etype] });
  const clients: { name: string[]; key: string; kvno: number }[] = [];
  for (let i = 0; i < msg.clients; i++) {
    const name = `cta/k${i}.bench.test@${REALM}`;
    db.addPrincipal(name, { randkey: true, enctypes: [msg.etype], requiresPreauth: true });
    const kt = join(msg.dir, `k${i}.keytab`);
    db.exportKeytab(name, kt);
    const e = parseKeytab(new Uint8Array(readFileSync(kt)))[0];
    clients.push({ name: e.principal.components, key: toHex(e.key), kvno: e.kvno });
  }
  const kdc = await startKdc({ db, host: '127.0.0.1', port: 0 });
  process.on('exit', () => {
    void kdc.close();
  });
  reply({ type: 'kdc-ready', port: kdc.udpPort, clients });
});
