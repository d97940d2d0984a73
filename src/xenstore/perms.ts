/**
 * Permission strings on the wire (xenstore.txt GET_PERMS/SET_PERMS):
 * `<perm><domid>` with perm one of n (none), r (read), w (write), b (both).
 * The first entry names the owner and the access every unlisted domain gets.
 */
import type { XsPerm } from '../platform/types.js';
import { XenstoreError } from './errors.js';

export function formatPerm(p: XsPerm): string {
  return `${p.perm}${p.domid}`;
}

export function parsePerm(s: string): XsPerm {
  const m = /^([nrwb])(\d{1,5})$/.exec(s);
  if (!m) throw new XenstoreError('EINVAL', `bad permission ${JSON.stringify(s)}`);
  const domid = Number(m[2]);
  if (domid > 0xffff) throw new XenstoreError('EINVAL', `bad permission domid ${domid}`);
  return { perm: m[1] as XsPerm['perm'], domid };
}

export function parsePerms(list: readonly string[]): XsPerm[] {
  if (list.length === 0) throw new XenstoreError('EINVAL', 'empty permission list');
  return list.map(parsePerm);
}
