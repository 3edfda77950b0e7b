// `cta hil`: the scenario suite against the emulator (as a child process through
// bin/cta.js), its JUnit output, a failing scenario making the exit non-zero, and
// a missing interpreter being a usage error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { scenarioNames } from '../host-tools/hil/runner.ts';
import { toJunit, xmlEscape } from '../host-tools/hil/junit.ts';
import { parseFlashOptions } from '../host-tools/hil/targets.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CTA = join(ROOT, 'bin', 'cta.js');

function cta(args: string[]) {
  const r = spawnSync(process.execPath, [CTA, 'hil', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'hil-test-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

type El = { name: string; attrs: { [k: string]: string }; children: El[]; text: string };

/** A small strict XML parser (elements, attributes, text, the XML declaration): enough to prove the file is well formed. */
function parseXml(s: string): El {
  let i = 0;
  const unescape = (x: string) => x.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
  const ws = () => {
    while (i < s.length && /\s/.test(s[i])) i++;
  };
  if (s.startsWith('<?xml')) i = s.indexOf('?>') + 2;
  ws();
  const element = (): El => {
    assert.equal(s[i], '<', `expected < at ${i}`);
    i++;
    const name = /^[A-Za-z_][\w.-]*/.exec(s.slice(i))![0];
    i += name.length;
    const attrs: { [k: string]: string } = {};
    for (;;) {
      ws();
      if (s.startsWith('/>', i)) {
        i += 2;
        return { name, attrs, children: [], text: '' };
      }
      if (s[i] === '>') {
        i++;
        break;
      }
      const m = /^([\w.:-]+)="([^"<]*)"/.exec(s.slice(i));
      assert.ok(m, `bad attribute at ${i}: ${s.slice(i, i + 30)}`);
      assert.ok(!(m[1] in attrs), `duplicate attribute ${m[1]}`);
      attrs[m[1]] = unescape(m[2]);
      i += m[0].length;
    }
    const children: El[] = [];
    let text = '';
    for (;;) {
      if (s.startsWith('</', i)) {
        const close = `</${name}>`;
        assert.ok(s.startsWith(close, i), `expected ${close} at ${i}`);
        i += close.length;
        return { name, attrs, children, text: unescape(text) };
      }
      if (s[i] === '<') children.push(element());
      else {
        assert.ok(i < s.length, `unterminated <${name}>`);
        assert.ok(s[i] !== '&' || /^&(lt|gt|amp|quot|apos);/.test(s.slice(i)), `bare & at ${i}`);
        text += s[i++];
      }
    }
  };
  const root = element();
  ws();
  assert.equal(i, s.length, 'content after the root element');
  return root;
}

test('cta hil --target emu: every scenario passes, one line each, JUnit with the right counts', (t) => {
  const dir = tmp(t);
  const junit = join(dir, 'hil.xml');
  const r = cta(['--target', 'emu', '--junit', junit, '--flood', '3000']);
  assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}`);
  const names = scenarioNames();
  assert.ok(names.length >= 10);
  assert.ok(names.includes('socket-stall'));
  for (const n of names) assert.match(r.out, new RegExp(`^PASS ${n.replace(/[-]/g, '\\-')}\\s+\\d+ ms`, 'm'), `no PASS line for ${n}:\n${r.out}`);
  assert.doesNotMatch(r.out, /^FAIL/m);
  assert.match(r.out, /retransmit at 200\/400 ms, abort at 600 ms/);
  assert.match(r.out, /device memory after boot: usage \d+\/\d+ variables/);
  assert.match(r.out, /device memory usage \d+ -> \d+ of \d+ variables/);
  // The stalled socket was re-created once and the exchange completed on the new one.
  assert.match(r.out, /^PASS socket-stall .*socketsRecreated \+1/m);
  assert.match(r.out, new RegExp(`${names.length} passed, 0 failed, 0 skipped`));

  const root = parseXml(readFileSync(junit, 'utf8'));
  assert.equal(root.name, 'testsuites');
  const suite = root.children.find((c) => c.name === 'testsuite')!;
  assert.equal(suite.attrs.tests, String(names.length));
  assert.equal(suite.attrs.failures, '0');
  assert.equal(suite.attrs.skipped, '0');
  const cases = suite.children.filter((c) => c.name === 'testcase');
  assert.deepEqual(
    cases.map((c) => c.attrs.name),
    names,
  );
  for (const c of cases) {
    assert.ok(Number(c.attrs.time) >= 0);
    assert.ok(!c.children.some((x) => x.name === 'failure' || x.name === 'skipped'));
  }
  const props = suite.children.find((c) => c.name === 'properties')!.children;
  assert.ok(props.some((p) => p.attrs.name === 'memory.before_flood' && /^\d+\/\d+$/.test(p.attrs.value)));
});

test('a failing scenario makes the exit non-zero and is a JUnit failure', (t) => {
  const dir = tmp(t);
  const junit = join(dir, 'hil.xml');
  // "impossible" (test-only) expects an AP Reply to a nonce-0 Wake Up, which a correct CTA never causes.
  const r = cta(['--target', 'emu', '--scenario', 'nonce-zero', '--scenario', 'impossible', '--junit', junit]);
  assert.equal(r.code, 1, `exit ${r.code}\n${r.out}\n${r.err}`);
  assert.match(r.out, /^PASS nonce-zero/m);
  assert.match(r.out, /^FAIL impossible .*no AP Reply/m);
  const suite = parseXml(readFileSync(junit, 'utf8')).children[0];
  assert.equal(suite.attrs.tests, '2');
  assert.equal(suite.attrs.failures, '1');
  const failed = suite.children.find((c) => c.attrs.name === 'impossible')!;
  assert.equal(failed.children[0].name, 'failure');
  assert.match(failed.children[0].attrs.message, /no AP Reply/);
});

test('a missing or non-executable espruino: interpreter is an error (exit 2, one line), never a skip', (t) => {
  const dir = tmp(t);
  const junit = join(dir, 'hil.xml');
  const r = cta(['--target', 'espruino:' + join(dir, 'no-such-espruino'), '--junit', junit, '--scenario', 'happy-path']);
  assert.equal(r.code, 2, r.out + r.err);
  assert.match(r.err, /^cta hil: --target espruino:.*no-such-espruino.* does not exist\n$/);
  assert.doesNotMatch(r.out, /SKIP/);
  const notExec = join(dir, 'espruino');
  writeFileSync(notExec, '#!/bin/sh\n');
  chmodSync(notExec, 0o644);
  const ne = cta(['--target', 'espruino:' + notExec]);
  assert.equal(ne.code, 2);
  assert.match(ne.err, /^cta hil: .*is not executable\n$/);
  const bad = cta(['--target', 'ftp://x']);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /unknown --target/);
});

test('--flash-option reaches the flash step: force, timeout=S, baud=N; anything else is a usage error', () => {
  assert.deepEqual(parseFlashOptions(['force', 'timeout=60', 'baud=115200']), { force: true, timeoutSec: 60, baud: 115200 });
  assert.deepEqual(parseFlashOptions([]), {});
  for (const bad of ['force=1', 'timeout', 'verbose', 'baud=x']) assert.throws(() => parseFlashOptions([bad]), /bad --flash-option/);
  const r = cta(['--target', 'emu', '--flash-option', 'nope']);
  assert.equal(r.code, 2);
  assert.match(r.err, /bad --flash-option 'nope'/);
});

test('JUnit output escapes what XML cannot carry raw', () => {
  assert.equal(xmlEscape('a<b>&"\'\u0001c'), 'a&lt;b&gt;&amp;&quot;&apos;c');
  const xml = toJunit({
    target: 'emu',
    board: 'emulator',
    device: 'd & <e>',
    timers: { retransmitMs: [200, 400], abortMs: 600, unsolicitedBaseMs: 200, kdcTimeoutMs: 500 },
    skipped: null,
    results: [{ name: 'x', title: 't', status: 'fail', ms: 5, details: [], message: 'bad "thing" <\u0000>' }],
    memory: [],
    ms: 10,
  });
  const suite = parseXml(xml).children[0];
  assert.equal(suite.children.find((c) => c.name === 'testcase')!.children[0].attrs.message, 'bad "thing" <>');
});
