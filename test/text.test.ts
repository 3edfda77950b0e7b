// The text dictionary (host-tools/build/text.ts and the build's text transform): the
// board carries codes, the host prints the sentences. Checks the expansion rules, that
// the bundle really lost the texts, and that the host tools print them again.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFirmware } from '../host-tools/build/build.ts';
import { DROPPED, SLOT, dictionaryPathFor, expandLine, expandText, loadDictionary } from '../host-tools/build/text.ts';
import { startEmulator } from '../host-tools/emulator/emulator.ts';
import { counterNames, C_SOCKETS_RECREATED, D_BUSY, N_COUNTERS } from '../firmware/agent/counters.ts';

const dict = { text: { 'main#4': `CTA: cannot start: ${SLOT}. Idle.`, 'cfg#2': 'kdc.port must be 1-65535', 'der#7': `DER: length ${DROPPED} too long`, 'two#1': `a ${SLOT} b ${SLOT} c`, 'agent#8': 'established', '#512': `DER: tag ${DROPPED}`, '#1704': `CTA: cannot start: ${SLOT}. Idle.` } };

test('counter names: the UDP-only socketsRecreated sits right after the drop reasons, where its literal index says', () => {
  // C_SOCKETS_RECREATED is written as a literal (esbuild inlines only literals): it must stay
  // N_COUNTERS + D_BUSY + 1, the last name of the list the host tools name counters by.
  const names = counterNames();
  assert.equal(C_SOCKETS_RECREATED, N_COUNTERS + D_BUSY + 1);
  assert.equal(names.length, C_SOCKETS_RECREATED + 1);
  assert.equal(names[C_SOCKETS_RECREATED], 'socketsRecreated');
  assert.equal(names[N_COUNTERS + D_BUSY], 'busy');
});

test('expandText: codes, values in braces (nested, several), unknown codes and unbalanced braces left alone', () => {
  assert.equal(expandText('main#4{cfg#2}', dict), 'CTA: cannot start: kdc.port must be 1-65535. Idle.');
  assert.equal(expandText('x main#4{plain} y', dict), 'x CTA: cannot start: plain. Idle. y');
  assert.equal(expandText('two#1{1`main#4{cfg#2}}', dict), 'a 1 b CTA: cannot start: kdc.port must be 1-65535. Idle. c');
  assert.equal(expandText('der#7', dict), `DER: length ${DROPPED} too long`);
  assert.equal(expandText('nope#1 and main#4{open', dict), 'nope#1 and ' + `CTA: cannot start: ${DROPPED}. Idle.` + '{open');
  assert.equal(expandText('no codes here', dict), 'no codes here');
  // The build's numbered codes have no module name: "#512", "#1704{..}", also inside a word.
  assert.equal(expandText('#512', dict), `DER: tag ${DROPPED}`);
  assert.equal(expandText('cta.#1704{#512}', dict), `cta.CTA: cannot start: DER: tag ${DROPPED}. Idle.`);
  assert.equal(expandText('#5120 #51', dict), '#5120 #51');
});

test('expandLine: a JSON log line stays JSON with its strings expanded; other lines are text', () => {
  const line = JSON.stringify({ t: 5, ev: 'cta.agent#8', sc: 'sc/x@R', error: 'main#4{"q"}' });
  const out = JSON.parse(expandLine(line, dict));
  assert.deepEqual(out, { t: 5, ev: 'cta.established', sc: 'sc/x@R', error: 'CTA: cannot start: "q". Idle.' });
  assert.equal(expandLine('CTA: main#4{x}', dict), 'CTA: CTA: cannot start: x. Idle.');
});

test('a board bundle carries codes, not its texts; the emulator prints the texts again', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-text-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await buildFirmware({ board: 'emulator', outDir: dir });
  const code = readFileSync(r.path, 'latin1');
  const d = loadDictionary(dictionaryPathFor(r.path));
  // Console lines, log event names, control replies and errors outside the protocol code.
  for (const text of ['to Storage (cta provision, then cta flash --config). Idle.', 'cannot start: ', '"no_address"', 'unknown op (expected one of', 'AS-REP: nonce does not match']) {
    assert.ok(!code.includes(text), `"${text}" is still in the bundle`);
    assert.ok(Object.values(d.text).some((v) => v.includes(text.replace(/"/g, ''))), `"${text}" is not in the dictionary`);
  }
  // Every code in the bundle is in the dictionary.
  let seen = 0;
  for (const m of code.matchAll(/"((?:[a-z][a-z0-9-]*)?#\d+)\{?"/g)) {
    seen++;
    assert.ok(m[1] in d.text, m[1]);
  }
  assert.ok(seen > 10, `only ${seen} codes found in the bundle`);
  const emu = await startEmulator({ board: 'emulator', bundlePath: r.imagePath, storageDir: join(dir, 'st') });
  try {
    const line = await emu.waitForLog(/no configuration/, 5000);
    assert.equal(line, 'CTA: no configuration: write "cta.cfg" to Storage (cta provision, then cta flash --config). Idle.');
  } finally {
    await emu.stop();
  }
  const raw = await startEmulator({ board: 'emulator', bundlePath: r.imagePath, storageDir: join(dir, 'st2'), dictionary: null });
  try {
    assert.match(await raw.waitForLog(/#\d+/, 5000), /^#\d+\{cta\.cfg\}$/);
  } finally {
    await raw.stop();
  }
});
