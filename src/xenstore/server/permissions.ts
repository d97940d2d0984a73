/**
 * Access checks (xenstore.txt PERMISSIONS, xenstored perm_for_conn): dom0 is
 * privileged and may do anything; a node's owner (perms[0].domid) may do
 * anything with it; a domain listed in perms[1..] gets that entry's access;
 * everyone else gets perms[0]'s access. A domain with a SET_TARGET target
 * also gets what its target would.
 */
import type { DomId, XsPerm } from '../../platform/types.js';

export enum Access { None = 0, Read = 1, Write = 2, Both = 3 }

function fromChar(p: XsPerm['perm']): Access {
  switch (p) {
    case 'n': return Access.None;
    case 'r': return Access.Read;
    case 'w': return Access.Write;
    case 'b': return Access.Both;
  }
}

export interface Principal {
  readonly domid: DomId;
  readonly privileged: boolean;
  /** SET_TARGET: the domain this one acts for, if any. */
  readonly target?: DomId;
}

export function accessFor(perms: readonly XsPerm[], who: Principal): Access {
  if (who.privileged) return Access.Both;
  const ids = who.target === undefined ? [who.domid] : [who.domid, who.target];
  if (ids.includes(perms[0]!.domid)) return Access.Both;
  for (const id of ids) {
    for (let i = 1; i < perms.length; i++) if (perms[i]!.domid === id) return fromChar(perms[i]!.perm);
  }
  return fromChar(perms[0]!.perm);
}

export function canRead(perms: readonly XsPerm[], who: Principal): boolean {
  return (accessFor(perms, who) & Access.Read) !== 0;
}

export function canWrite(perms: readonly XsPerm[], who: Principal): boolean {
  return (accessFor(perms, who) & Access.Write) !== 0;
}
