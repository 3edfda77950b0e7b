// JUnit XML for a HIL report: one <testsuite> per run, one <testcase> per scenario.
import type { HilReport } from './runner.ts';

export function xmlEscape(s: string): string {
  // Characters XML 1.0 cannot carry at all are dropped; the rest are escaped.
  return s
    .replace(/[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd]/gu, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const secs = (ms: number) => (ms / 1000).toFixed(3);

export function toJunit(r: HilReport): string {
  const failures = r.results.filter((x) => x.status === 'fail').length;
  const skipped = r.results.filter((x) => x.status === 'skip').length;
  const suite = `cta hil ${r.target} (${r.board})`;
  const cls = `hil.${r.target.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="cta hil" tests="${r.results.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${secs(r.ms)}">`,
    `  <testsuite name="${xmlEscape(suite)}" tests="${r.results.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${secs(r.ms)}">`,
    '    <properties>',
    `      <property name="target" value="${xmlEscape(r.target)}"/>`,
    `      <property name="board" value="${xmlEscape(r.board)}"/>`,
    `      <property name="device" value="${xmlEscape(r.device ?? '')}"/>`,
    `      <property name="cta.timers" value="${xmlEscape(`retransmit ${r.timers.retransmitMs.join('/')} ms, abort ${r.timers.abortMs} ms`)}"/>`,
    ...r.memory.map((m) => `      <property name="memory.${xmlEscape(m.label.replace(/\s+/g, '_'))}" value="${m.usage}/${m.total}"/>`),
    '    </properties>',
  ];
  for (const t of r.results) {
    const open = `    <testcase classname="${xmlEscape(cls)}" name="${xmlEscape(t.name)}" time="${secs(t.ms)}"`;
    if (t.status === 'pass') {
      lines.push(`${open}>`, `      <system-out>${xmlEscape([t.title, ...t.details].join('\n'))}</system-out>`, '    </testcase>');
    } else if (t.status === 'skip') {
      lines.push(`${open}>`, `      <skipped message="${xmlEscape(t.message ?? '')}"/>`, '    </testcase>');
    } else {
      lines.push(`${open}>`, `      <failure message="${xmlEscape(t.message ?? 'failed')}" type="HilFailure">${xmlEscape(t.title + '\n' + (t.message ?? ''))}</failure>`, '    </testcase>');
    }
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}
