// Principal names in MIT's string form: components joined by '/', then '@REALM'.
// Backslash escapes '/', '@' and '\\' inside a component or realm, as
// krb5_parse_name / krb5_unparse_name do, so names round-trip with MIT tools.
// The database accepts printable ASCII only (names travel as GeneralString).
import { UsageError } from './args.ts';
import { principalName, realmAt } from '../firmware/proto/keytab.ts';

export type Principal = { components: string[]; realm: string };

/** Caps on what the KDC accepts as a principal name (a wire name can be anything). */
export const MAX_COMPONENTS = 8;
export const MAX_NAME_CHARS = 512;

// Only the escapes that yield printable ASCII: the database holds printable names.
const UNESC: { [c: string]: string } = { '/': '/', '@': '@', '\\': '\\' };

/**
 * Parse "a/b@REALM" (realm optional: defaultRealm is used). Throws UsageError with
 * a one-line reason on bad syntax.
 */
export function parsePrincipal(s: string, defaultRealm?: string): Principal {
  if (typeof s !== 'string' || s.length === 0) throw new UsageError('bad principal: empty name');
  if (s.length > MAX_NAME_CHARS) throw new UsageError(`bad principal: longer than ${MAX_NAME_CHARS} characters`);
  const components: string[] = [];
  let cur = '';
  let realm: string | null = null;
  let inRealm = false;
  for (let i = 0; i < s.length; i++) {
    let c = s[i];
    if (c === '\\') {
      const n = s[i + 1];
      if (n === undefined || !(n in UNESC)) throw new UsageError(`bad principal '${s}': bad escape at character ${i + 1}`);
      cur += UNESC[n];
      i++;
      continue;
    }
    if (c.charCodeAt(0) < 0x20 || c.charCodeAt(0) > 0x7e) throw new UsageError(`bad principal: character ${JSON.stringify(c)} at position ${i + 1} (printable ASCII only)`);
    if (c === '@') {
      if (inRealm) throw new UsageError(`bad principal '${s}': more than one '@'`);
      components.push(cur);
      cur = '';
      inRealm = true;
      continue;
    }
    if (c === '/' && !inRealm) {
      components.push(cur);
      cur = '';
      continue;
    }
    if (c === '/' && inRealm) throw new UsageError(`bad principal '${s}': '/' in the realm`);
    cur += c;
  }
  if (inRealm) realm = cur;
  else components.push(cur);
  if (realm === null) {
    if (!defaultRealm) throw new UsageError(`bad principal '${s}': no realm`);
    realm = defaultRealm;
  }
  if (realm.length === 0) throw new UsageError(`bad principal '${s}': empty realm`);
  if (components.length > MAX_COMPONENTS) throw new UsageError(`bad principal '${s}': more than ${MAX_COMPONENTS} components`);
  for (const c of components) if (c.length === 0) throw new UsageError(`bad principal '${s}': empty component`);
  return { components, realm };
}

/** The realm of "a/b@REALM" (after the first unescaped '@'), or null if it has none. */
export function realmOf(name: string): string | null {
  const at = realmAt(name);
  return at < 0 ? null : name.slice(at + 1);
}

/**
 * The one realm rule of every `cta` command: a principal written without @REALM is
 * in the realm the command already works in (the KDC database's, the keytab's, the
 * CTA's, the SC's); this appends it.
 */
export function withRealm(name: string, realm: string): string {
  return realmOf(name) === null ? `${name}@${realm}` : name;
}

/** The canonical string form (always with the realm): the database's key. */
export function formatPrincipal(p: Principal): string {
  return principalName({ principal: { components: p.components, realm: p.realm, nameType: 1 } });
}

/** MIT's default salt: the realm followed by every component, no separators. */
export function defaultSalt(p: Principal): string {
  return p.realm + p.components.join('');
}
