// Firmware footprint: every board's bundle builds inside the Espruino subset; its
// stored image plus a typical configuration fits the board's Storage with the user's
// share (board-configs "storage": bytes - keepFree) left; it carries none of the code
// the CTA never runs (the KDC's/SC's encoders and decoders, string-to-key/PBKDF2).
// Prints sizes and the largest modules. The interpreter-side figures (variables, ms per exchange) are in
// test/espruino-bin-exchange.test.ts (needs ESPRUINO_BIN).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildFirmware, firmwareModules, labelFunctions } from '../host-tools/build/build.ts';
import { listBoards, loadBoard } from '../host-tools/build/boards.ts';
import { formatFit, formatRam, ramWarning, storageFit, typicalConfig, RAM_TIGHT } from '../host-tools/build/capacity.ts';
import { dictionaryPathFor, loadDictionary } from '../host-tools/build/text.ts';
import { carriesCode } from './helpers/codes.ts';

/** Functions only the KDC or SC run; tree-shaking must keep them out of the firmware. */
const NOT_IN_FIRMWARE = [
  'pbkdf2',
  'stringToKey',
  's2kSimplified',
  's2kSha2',
  'prfSimplified',
  'prfSha2',
  'encodeAsRep',
  'encodeEncKdcRepPart',
  'encodeTicket',
  'encodeEncTicketPart',
  'decodeEncTicketPart',
  'decodeAsReq',
  'decodeApReq',
  'decodeAuthenticator',
  'encodeApRep',
  'encodeKrbError',
  'encodeWakeUp',
  'encodeRekey',
  'encodeApReply',
  'encodeErrorReply',
  'decodeApRequest',
  'decodeSaRecovered',
];

test('every board: bundle inside the Espruino subset; stored image + typical config within Storage less the user share; sizes and top modules printed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-footprint-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const results = await Promise.all(listBoards().map((board) => buildFirmware({ board, outDir: dir })));
  for (const r of results) {
    assert.deepEqual(r.violations, [], `${r.board}: subset violations`);
    const fit = storageFit(loadBoard(r.board), r.imageBytes, typicalConfig(loadBoard(r.board)).length);
    console.log(`# ${r.board}: ${formatFit(fit)}`);
    assert.ok(fit.fits, `${r.board}: ${formatFit(fit)}`);
    // Every board meets its target: its Storage less the user's share (keepFree).
    assert.ok(fit.meetsTarget, `${r.board}: ${formatFit(fit)}`);
    // The per-module report (esbuild's, before terser's pass) adds up to about the whole bundle.
    const sum = r.modules.reduce((a, m) => a + m.bytes, 0);
    assert.ok(sum > r.bytes * 0.9 && sum <= r.bytes * 1.1, `${r.board}: modules sum ${sum} vs bundle ${r.bytes}`);
    const top = r.modules
      .slice(0, 5)
      .map((m) => `${m.path.replace(/^firmware\//, '')} ${m.bytes}`)
      .join(', ');
    const line = `${r.board}: ${r.bytes} B (${(r.bytes / 1024).toFixed(1)} KB); top: ${top}`;
    console.log('# ' + line);
    t.diagnostic(line);
    // Short error codes, with their map next to the bundle.
    const mapPath = dictionaryPathFor(r.path);
    assert.ok(existsSync(mapPath));
    const codes = loadDictionary(mapPath).text;
    assert.ok(Object.keys(codes).length > 50, 'protocol error messages are shortened');
    const code = readFileSync(r.path, 'latin1');
    // Module m's codes are #m*100+n (m its place among the sorted firmware modules).
    for (const mod of ['der', 'krb5', 'pktc', 'cbor']) {
      const m = firmwareModules().indexOf(`firmware/proto/${mod}.ts`);
      const used = Object.keys(codes).filter((c) => Math.floor(Number(c.slice(1)) / 100) === m && carriesCode(code, c));
      assert.ok(used.length > 0, `short ${mod} error codes in the bundle and the map`);
    }
    assert.doesNotMatch(code, /PBKDF2/);
    // DER/pktc field labels only ever built those messages: gone too.
    for (const label of ['EncKDCRepPart.key-expiration', 'PrincipalName.name-string', 'AppData SPI', 'ciphersuite count', '.msg-type']) {
      assert.ok(!code.includes(label), `${r.board}: label "${label}" left in the bundle`);
    }
  }
});

test('the firmware bundle (readable build) contains no KDC/SC-only code and no string-to-key', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-footprint-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const r = await buildFirmware({ board: 'puckjs', outDir: dir, minify: false, shortErrors: false });
  assert.deepEqual(r.violations, []);
  const code = readFileSync(r.path, 'latin1');
  // Sanity: the names of functions the CTA does run survive a readable build.
  for (const name of ['encodeApRequest', 'decodeApReply', 'krbEncode', 'krbDecode', 'encodeSaRecovered', 'nfold']) {
    assert.match(code, new RegExp(`\\bfunction ${name}\\d*\\(`), `${name} is in the bundle`);
  }
  const present = NOT_IN_FIRMWARE.filter((name) => new RegExp(`\\b${name}\\d*\\b`).test(code));
  assert.deepEqual(present, [], 'KDC/SC-only code reachable from firmware/main.ts');
  assert.equal(r.errorCodes && Object.keys(r.errorCodes).length, 0, '--long-errors keeps the messages');
  assert.match(code, /DER: element too long/);
  // --long-errors keeps the field labels the messages are made of.
  for (const label of ['EncKDCRepPart', 'METHOD-DATA', 'AppData SPI']) assert.ok(code.includes(label), label);
});

test('per-board dead code: UDP-only boards carry no serial framing or control channel, serial-only boards no UDP transport', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-footprint-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const boards = listBoards();
  const results = await Promise.all(boards.map((board) => buildFirmware({ board, outDir: dir })));
  const size: { [b: string]: number } = {};
  for (const r of results) {
    const b = loadBoard(r.board);
    const code = readFileSync(r.path, 'latin1');
    size[r.board] = r.bytes;
    const mods = r.modules.map((m) => m.path);
    // Serial framing (SLIP, CRC, frame decoder stats) and the control channel's op list.
    const serial = /badEscape/.test(code) && /"set-time"/.test(code) && mods.some((m) => m.endsWith('proto/slip.ts'));
    // The UDP transport binds sockets through the platform.
    const udp = /\.udpBind\(/.test(code);
    assert.equal(serial, !!b.transports.serial, `${r.board}: serial code ${serial ? 'present' : 'absent'}`);
    assert.equal(udp, !!b.transports.udp, `${r.board}: UDP transport ${udp ? 'present' : 'absent'}`);
    // Protected signaling (ESP + NCS) only where the board's features ask for it.
    assert.equal(code.includes('"MGCP"'), b.features.signaling, `${r.board}: NCS parser ${b.features.signaling ? 'missing' : 'present'}`);
    // The error for a configured transport the board lacks stays.
    const dict = loadDictionary(dictionaryPathFor(r.path));
    const carries = (re: RegExp) => Object.keys(dict.text).some((c) => re.test(dict.text[c]) && carriesCode(code, c));
    if (!b.transports.udp) assert.ok(carries(/this board has no UDP/), `${r.board}: the no-UDP error`);
    if (!b.transports.serial) assert.ok(carries(/this board has no serial link/), `${r.board}: the no-serial error`);
  }
  // A board with both transports carries the most.
  if (size.emulator && size.esp32) assert.ok(size.esp32 < size.emulator - 4000, `esp32 ${size.esp32} vs emulator ${size.emulator}`);
});

test('label dropping only touches labels that feed nothing but shortened error messages', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cta-labels-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const f = join(dir, 'm.ts');
  writeFileSync(
    f,
    `class DecodeError { constructor(m: string) {} }
export function good(n: number, what: string): void { if (n) throw new DecodeError(what + ': bad ' + n.toString(16)); }
export function passes(what: string): void { good(1, what + '.x'); }
export function leaks(what: string): string { good(1, what); return what; }
export function callsLeaky(what: string): void { leaks(what + '.y'); }
export function need(s: number, n: number): number { return s + n; }
export class A { need(n: number, what: string): void { good(n, what); } end(what: string): void { good(0, what); } }
export class B { end(): void {} }
export class C { field: string; constructor(field: string) { this.field = field; } size(): number { return this.field.length; } }
`,
  );
  const m = await labelFunctions([f]);
  // good/passes qualify; leaks returns its label, so it and its caller do not.
  assert.deepEqual([...m.entries()].sort(), [
    ['f:good', 1],
    ['f:passes', 0],
    ['m:end', 0],
    ['m:need', 1],
  ]);
  // The real decoders: DER reader methods and pktc's fail qualify.
  const real = await labelFunctions();
  for (const k of ['m:enter', 'm:val', 'f:rSeq', 'f:decodeAll', 'f:fail', 'f:tlvSize', 'f:rDer']) assert.ok(real.has(k), k);
});

test('measured RAM: cta build gives the spare variables and the verdict; cta flash warns when an exchange does not fit, or fits with little to spare', () => {
  const puck = loadBoard('puckjs');
  const pico = loadBoard('pico');
  assert.ok(puck.ramMeasured && pico.ramMeasured, 'both boards carry their measured figures');
  assert.ok(Math.max(puck.ramMeasured!.peak, puck.ramMeasured!.peakFirst) <= puck.variables, 'the Puck.js holds its exchanges');
  assert.match(formatRam(puck) ?? '', /fits the board's 2630 \(about \d+ to spare at the peak\), but MISSES the budget/);
  assert.equal(ramWarning(puck), null, formatRam(puck) ?? '');
  // A board whose exchange fits with less than RAM_TIGHT to spare.
  const tight = { ...puck, ramMeasured: { ...puck.ramMeasured!, peak: puck.variables - RAM_TIGHT + 1 } };
  assert.match(formatRam(tight) ?? '', new RegExp(`fits the board's 2630 \\(about ${RAM_TIGHT - 1} to spare at the peak: tight\\), but MISSES the budget`));
  assert.match(ramWarning(tight) ?? '', new RegExp(`about ${RAM_TIGHT - 1} to spare: code of your own loaded alongside the agent can make key exchanges run out of memory`));
  // A board whose first exchange is over its store.
  const over = { ...puck, ramMeasured: { ...puck.ramMeasured!, peakFirst: puck.variables + 1 } };
  assert.match(formatRam(over) ?? '', /DOES NOT FIT: an exchange needs about 2631 of the board's 2630/);
  assert.match(ramWarning(over) ?? '', /key exchanges run out of memory/);
  assert.match(formatRam(pico) ?? '', /within the budget/);
  assert.equal(ramWarning(pico), null);
  // The verdict follows the figures: a board whose exchange fits its store but not the budget.
  const overBudget = { ...pico, ramMeasured: { ...pico.ramMeasured!, peak: pico.ramBudget.peak + 1 } };
  assert.match(formatRam(overBudget) ?? '', /fits the board's 5100 \(about 599 to spare at the peak\), but MISSES the budget/);
  assert.equal(ramWarning(overBudget), null);
  assert.equal(formatRam(loadBoard('linux')), null, 'nothing said where nothing was measured');
});

