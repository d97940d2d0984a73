/**
 * Registered watches of all connections, and matching of changes to them
 * (xenstore.txt WATCH / WATCH_EVENT):
 * - a change at P fires every watch on P or an ancestor of P, with P;
 * - the recursive removal of P also fires watches on descendants of P, with
 *   the watch's own path;
 * - `@` special paths match only their own special events;
 * - a watcher must be able to read the changed node (special events: all);
 * - a watch set with a relative path reports relative paths.
 */
import type { DomId } from '../../platform/types.js';
import type { XsPerm } from '../../platform/types.js';
import { domainPath, isChildOf, isSpecialPath, segments } from '../paths.js';
import { canRead, type Principal } from './permissions.js';
import type { WatchFire } from './ops.js';
import type { XsNode } from './tree.js';

export interface WatchOwner {
  readonly id: number;
  readonly domid: DomId;
  readonly who: Principal;
  sendWatchEvent(path: string, token: string): void;
}

export interface Watch {
  readonly owner: WatchOwner;
  /** Absolute (or @special) path watched. */
  readonly abs: string;
  readonly token: string;
  /** Registered with a relative path: events are reported relative too. */
  readonly relative: boolean;
}

export class WatchTable {
  private readonly watches: Watch[] = [];

  get size(): number { return this.watches.length; }

  countFor(owner: WatchOwner): number {
    return this.watches.filter((w) => w.owner === owner).length;
  }

  has(owner: WatchOwner, abs: string, token: string): boolean {
    return this.watches.some((w) => w.owner === owner && w.abs === abs && w.token === token);
  }

  add(w: Watch): void {
    this.watches.push(w);
  }

  /** Remove one watch; false if there was none. */
  remove(owner: WatchOwner, abs: string, token: string): boolean {
    const i = this.watches.findIndex((w) => w.owner === owner && w.abs === abs && w.token === token);
    if (i < 0) return false;
    this.watches.splice(i, 1);
    return true;
  }

  removeAll(owner: WatchOwner): void {
    for (let i = this.watches.length - 1; i >= 0; i--) if (this.watches[i]!.owner === owner) this.watches.splice(i, 1);
  }

  /** Send the event for one watch, made relative if the watch was. */
  deliver(w: Watch, path: string): void {
    const base = domainPath(w.owner.domid) + '/';
    const reported = w.relative && path.startsWith(base) ? path.slice(base.length) : path;
    w.owner.sendWatchEvent(reported, w.token);
  }

  fire(ev: WatchFire): void {
    // Copy: a delivery may close a connection, which edits the table.
    for (const w of [...this.watches]) {
      if (isSpecialPath(ev.path) || isSpecialPath(w.abs)) {
        if (ev.path === w.abs) this.deliver(w, ev.path);
        continue;
      }
      if (isChildOf(ev.path, w.abs)) {
        if (canRead(ev.perms, w.owner.who)) this.deliver(w, ev.path);
      } else if (ev.removal && isChildOf(w.abs, ev.path)) {
        // As C xenstored: a watch inside the removed tree is checked against the
        // node it watches (or its nearest removed ancestor), not the top node.
        if (canRead(permsWithin(ev, w.abs), w.owner.who)) this.deliver(w, w.abs);
      }
    }
  }
}

/** Permissions of the removed node at `abs` (or its deepest removed ancestor). */
function permsWithin(ev: WatchFire, abs: string): readonly XsPerm[] {
  if (!ev.removed) return ev.perms;
  let node: XsNode = ev.removed;
  for (const name of segments(abs).slice(segments(ev.path).length)) {
    const child: XsNode | undefined = node.children.get(name);
    if (!child) break;
    node = child;
  }
  return node.perms;
}
