// Text codes in a built bundle (host-tools/build/text.ts): a code "#512" is carried as a
// string ("#512", or "#512{" + values) or, at a throw site, as the bare number the
// errors.ts helper takes (`__tD(512)`, `__tE("512{" + v + "}")`).

/** Whether the bundle's code carries text code c ("#512"). */
export function carriesCode(code: string, c: string): boolean {
  const n = c.slice(1);
  return code.includes(`"${c}"`) || code.includes(`"${c}{"`) || new RegExp(`\\(${n}\\)|\\("${n}\\{`).test(code);
}
