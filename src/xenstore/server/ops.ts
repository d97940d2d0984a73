/**
 * The database operations (READ, WRITE, MKDIR, RM, DIRECTORY, GET/SET_PERMS)
 * on one Db, with permission and quota checks. The same code serves direct
 * requests, requests inside a transaction (on the transaction's copy) and
 * the replay of a transaction at commit.
 */
import type { XsPerm } from '../../platform/types.js';
import { XenstoreError } from '../errors.js';
import { parentPath } from '../paths.js';
import { type Db, type XsNode } from './tree.js';
import { type Principal, canRead, canWrite } from './permissions.js';
import type { XsQuota } from './quota.js';

/** A change to announce to watchers once it is committed. */
export interface WatchFire {
  path: string;
  /** Permissions of the changed node (before removal, for RM): watchers must be able to read it. */
  perms: readonly XsPerm[];
  /** RM: watches on descendants of `path` fire too, with their own path. */
  removal: boolean;
  /** RM: the removed subtree, so a watch inside it is checked against its own node's permissions. */
  removed?: XsNode;
}

export interface OpContext {
  db: Db;
  who: Principal;
  quota: XsQuota;
  /** Mark a path as read or written (transactions check these at commit). */
  touch(path: string): void;
  /** Mark an ancestor whose existence and permissions an operation relied on. */
  rely(path: string): void;
  /** Changes made, in order. */
  fired: WatchFire[];
}

function readable(ctx: OpContext, abs: string): XsNode {
  ctx.touch(abs);
  const n = ctx.db.get(abs);
  if (!n) throw new XenstoreError('ENOENT', abs);
  if (!canRead(n.perms, ctx.who)) throw new XenstoreError('EACCES', abs);
  return n;
}

export function opRead(ctx: OpContext, abs: string): Uint8Array {
  return readable(ctx, abs).value;
}

export function opDirectory(ctx: OpContext, abs: string): { names: string[]; gen: number } {
  const n = readable(ctx, abs);
  return { names: [...n.children.keys()], gen: n.gen };
}

export function opGetPerms(ctx: OpContext, abs: string): readonly XsPerm[] {
  return readable(ctx, abs).perms;
}

/** Create `abs` (and missing parents) or update it; `value` undefined = MKDIR. */
function putNode(ctx: OpContext, abs: string, value: Uint8Array | undefined): void {
  ctx.touch(abs);
  const { path: nearPath, node: near, missing } = ctx.db.nearestExisting(abs);
  ctx.rely(nearPath);
  if (!canWrite(near.perms, ctx.who)) throw new XenstoreError('EACCES', abs);
  if (!ctx.who.privileged) {
    if (value && value.length > ctx.quota.entrySize) throw new XenstoreError('ENOSPC', `value of ${value.length} bytes exceeds entry quota ${ctx.quota.entrySize}`);
    if (missing > 0 && ctx.db.ownedBy(ctx.who.domid) + missing > ctx.quota.nodesPerDomain) {
      throw new XenstoreError('ENOSPC', `domain ${ctx.who.domid} node quota ${ctx.quota.nodesPerDomain} reached`);
    }
  }
  if (missing === 0 && value === undefined) return; // MKDIR of an existing node changes nothing
  // Domains own what they create; dom0 leaves the inherited owner in place.
  const owner = (parentPerms: readonly XsPerm[]) => (ctx.who.privileged ? parentPerms[0]!.domid : ctx.who.domid);
  ctx.db.put(abs, owner, value === undefined ? {} : { value });
  ctx.fired.push({ path: abs, perms: ctx.db.get(abs)!.perms, removal: false });
}

export function opWrite(ctx: OpContext, abs: string, value: Uint8Array): void {
  putNode(ctx, abs, value);
}

export function opMkdir(ctx: OpContext, abs: string): void {
  putNode(ctx, abs, undefined);
}

export function opRm(ctx: OpContext, abs: string): void {
  if (abs === '/') throw new XenstoreError('EINVAL', 'cannot remove /');
  ctx.touch(abs);
  ctx.rely(parentPath(abs));
  const n = ctx.db.get(abs);
  if (!n) {
    // xenstore.txt: not an error if absent, but an error if the parent is absent too.
    if (!ctx.db.get(parentPath(abs))) throw new XenstoreError('ENOENT', abs);
    return;
  }
  if (!canWrite(n.perms, ctx.who)) throw new XenstoreError('EACCES', abs);
  ctx.db.remove(abs);
  ctx.fired.push({ path: abs, perms: n.perms, removal: true, removed: n });
}

export function opSetPerms(ctx: OpContext, abs: string, perms: readonly XsPerm[]): void {
  ctx.touch(abs);
  const n = ctx.db.get(abs);
  if (!n) throw new XenstoreError('ENOENT', abs);
  if (!canWrite(n.perms, ctx.who)) throw new XenstoreError('EACCES', abs);
  if (!ctx.who.privileged && perms[0]!.domid !== n.perms[0]!.domid) {
    throw new XenstoreError('EPERM', 'only dom0 may change the owner of a node');
  }
  ctx.db.put(abs, () => 0, { perms: perms.map((p) => ({ ...p })) });
  ctx.fired.push({ path: abs, perms, removal: false });
}
