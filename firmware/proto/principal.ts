// Kerberos principal names as text ("name/instance@REALM", RFC 1964 section 2.1.1
// escaping): printed, parsed and compared. Written inside the Espruino subset.

import { DecodeError } from './errors.ts';
import { NT_PRINCIPAL, NT_SRV_INST } from './krb5-consts.ts';
import type { PrincipalName } from './krb5-types.ts';

function escapeComponent(s: string, isRealm: boolean): string {
  let o = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charAt(i);
    if (c === '\\' || c === '@' || (!isRealm && c === '/')) o += '\\' + c;
    else if (c === '\n') o += '\\n';
    else if (c === '\t') o += '\\t';
    else if (c === '\b') o += '\\b';
    else o += c;
  }
  return o;
}

/** "comp1/comp2@REALM" with MIT-style backslash escapes; realm omitted when undefined. */
export function principalToString(name: PrincipalName, realm?: string): string {
  let s = '';
  for (let i = 0; i < name.nameString.length; i++) {
    if (i) s += '/';
    s += escapeComponent(name.nameString[i], false);
  }
  if (realm !== undefined) s += '@' + escapeComponent(realm, true);
  return s;
}

/**
 * Parses "a/b@REALM" (MIT escapes: \/ \@ \\ \n \t \b \0). The realm is
 * required unless defaultRealm is given. Name type: nameType when given,
 * else NT_SRV_INST for krbtgt/..., else NT_PRINCIPAL. DecodeError on bad syntax.
 */
export function parsePrincipal(s: string, defaultRealm?: string, nameType?: number): { name: PrincipalName; realm: string } {
  if (typeof s !== 'string' || s.length === 0 || s.length > 1024) throw new DecodeError('principal: empty or too long');
  const comps: string[] = [];
  let cur = '';
  let realm: string | undefined;
  let inRealm = false;
  for (let i = 0; i < s.length; i++) {
    let c = s.charAt(i);
    if (c === '\\') {
      i++;
      if (i >= s.length) throw new DecodeError('principal: trailing backslash');
      c = s.charAt(i);
      if (c === 'n') c = '\n';
      else if (c === 't') c = '\t';
      else if (c === 'b') c = '\b';
      else if (c === '0') throw new DecodeError('principal: NUL not allowed');
      cur += c;
    } else if (c === '@') {
      if (inRealm) throw new DecodeError('principal: more than one @');
      comps.push(cur);
      cur = '';
      inRealm = true;
    } else if (c === '/' && !inRealm) {
      comps.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  if (inRealm) realm = cur;
  else comps.push(cur);
  if (realm === undefined) {
    if (defaultRealm === undefined) throw new DecodeError('principal: no realm');
    realm = defaultRealm;
  }
  if (realm.length === 0) throw new DecodeError('principal: empty realm');
  for (let i = 0; i < comps.length; i++) if (comps[i].length === 0) throw new DecodeError('principal: empty component');
  if (comps.length > 16) throw new DecodeError('principal: too many components');
  let nt = nameType;
  if (nt === undefined) nt = comps.length === 2 && comps[0] === 'krbtgt' ? NT_SRV_INST : NT_PRINCIPAL;
  return { name: { nameType: nt, nameString: comps }, realm: realm };
}

/** Component-wise equality of two names (name types are ignored, as MIT does). */
export function principalNameEquals(a: PrincipalName, b: PrincipalName): boolean {
  if (a.nameString.length !== b.nameString.length) return false;
  for (let i = 0; i < a.nameString.length; i++) if (a.nameString[i] !== b.nameString[i]) return false;
  return true;
}
