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
import { domainPath, isSpecialPath, segments } from '../paths.js';
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

/** One node of the path index: the watches set exactly here, and the subtree below. */
interface IndexNode {
  readonly here: Map<string, Set<Entry>>;
  readonly children: Map<string, IndexNode>;
}

/** A registered watch and its registration order (events go out in that order). */
interface Entry {
  readonly w: Watch;
  readonly seq: number;
}

const newNode = (): IndexNode => ({ here: new Map(), children: new Map() });

/**
 * Watches indexed by path (a trie over path segments, plus one map for
 * `@` paths) and by owner, so a change costs what its watchers cost: the
 * ancestors of the changed path, and (for a removal) the watches below it,
 * never the whole table. `visits` counts the watches examined by `fire`.
 *
 *   "/" ─ local ─ domain ─ 1 ─ device   a watch on /local/domain/1 sits at "1":
 *                                       a write to /local/domain/1/device visits
 *                                       the watches at /, local, domain, 1, device
 */
export class WatchTable {
  private readonly root = newNode();
  private readonly special = new Map<string, Set<Entry>>();
  private readonly byOwner = new Map<WatchOwner, Map<string, Entry>>();
  private count = 0;
  private nextSeq = 0;
  /** Watches examined by fire() so far (a cost measure for tests). */
  visits = 0;

  get size(): number { return this.count; }

  countFor(owner: WatchOwner): number {
    return this.byOwner.get(owner)?.size ?? 0;
  }

  has(owner: WatchOwner, abs: string, token: string): boolean {
    return this.byOwner.get(owner)?.has(key(abs, token)) ?? false;
  }

  add(w: Watch): void {
    const e: Entry = { w, seq: this.nextSeq++ };
    let mine = this.byOwner.get(w.owner);
    if (!mine) this.byOwner.set(w.owner, (mine = new Map()));
    mine.set(key(w.abs, w.token), e);
    const bucket = this.bucket(w.abs, true)!;
    let set = bucket.get(w.abs);
    if (!set) bucket.set(w.abs, (set = new Set()));
    set.add(e);
    this.count++;
  }

  /** Remove one watch; false if there was none. */
  remove(owner: WatchOwner, abs: string, token: string): boolean {
    const mine = this.byOwner.get(owner);
    const e = mine?.get(key(abs, token));
    if (!mine || !e) return false;
    mine.delete(key(abs, token));
    if (mine.size === 0) this.byOwner.delete(owner);
    this.unindex(e);
    return true;
  }

  removeAll(owner: WatchOwner): void {
    const mine = this.byOwner.get(owner);
    if (!mine) return;
    this.byOwner.delete(owner);
    for (const e of mine.values()) this.unindex(e);
  }

  /** Send the event for one watch, made relative if the watch was. */
  deliver(w: Watch, path: string): void {
    const base = domainPath(w.owner.domid) + '/';
    const reported = w.relative && path.startsWith(base) ? path.slice(base.length) : path;
    w.owner.sendWatchEvent(reported, w.token);
  }

  fire(ev: WatchFire): void {
    // Collected first (a delivery may close a connection, which edits the
    // table), then sent in registration order.
    const hits: { e: Entry; path: string }[] = [];
    if (isSpecialPath(ev.path)) {
      for (const e of this.special.get(ev.path) ?? []) {
        this.visits++;
        hits.push({ e, path: ev.path });
      }
    } else {
      // Watches on the changed path and on each of its ancestors.
      let node: IndexNode | undefined = this.root;
      const segs = segments(ev.path);
      for (let depth = 0; node; depth++) {
        for (const set of node.here.values()) {
          for (const e of set) {
            this.visits++;
            if (canRead(ev.perms, e.w.owner.who)) hits.push({ e, path: ev.path });
          }
        }
        if (depth === segs.length) break;
        node = node.children.get(segs[depth]!);
      }
      // A removal also fires the watches inside the removed tree, with their own path.
      if (ev.removal && node) {
        for (const child of node.children.values()) this.below(child, ev, hits);
      }
    }
    hits.sort((a, b) => a.e.seq - b.e.seq);
    for (const h of hits) {
      // Skip a watch removed by an earlier delivery of this event.
      if (this.byOwner.get(h.e.w.owner)?.get(key(h.e.w.abs, h.e.w.token)) === h.e) this.deliver(h.e.w, h.path);
    }
  }

  private below(node: IndexNode, ev: WatchFire, hits: { e: Entry; path: string }[]): void {
    for (const set of node.here.values()) {
      for (const e of set) {
        this.visits++;
        // As C xenstored: a watch inside the removed tree is checked against the
        // node it watches (or its nearest removed ancestor), not the top node.
        if (canRead(permsWithin(ev, e.w.abs), e.w.owner.who)) hits.push({ e, path: e.w.abs });
      }
    }
    for (const child of node.children.values()) this.below(child, ev, hits);
  }

  /** The map holding watches on `abs` (created on the way if `create`). */
  private bucket(abs: string, create: boolean): Map<string, Set<Entry>> | undefined {
    if (isSpecialPath(abs)) return this.special;
    let node = this.root;
    for (const seg of segments(abs)) {
      let next = node.children.get(seg);
      if (!next) {
        if (!create) return undefined;
        node.children.set(seg, (next = newNode()));
      }
      node = next;
    }
    return node.here;
  }

  private unindex(e: Entry): void {
    this.count--;
    const abs = e.w.abs;
    const bucket = this.bucket(abs, false);
    const set = bucket?.get(abs);
    set?.delete(e);
    if (set && set.size === 0) bucket!.delete(abs);
    if (!isSpecialPath(abs)) this.prune(abs);
  }

  /** Drop the index nodes on the way to `abs` that hold nothing any more. */
  private prune(abs: string): void {
    const path: IndexNode[] = [this.root];
    const segs = segments(abs);
    for (const seg of segs) {
      const next = path[path.length - 1]!.children.get(seg);
      if (!next) return;
      path.push(next);
    }
    for (let i = segs.length; i > 0; i--) {
      const node = path[i]!;
      if (node.here.size > 0 || node.children.size > 0) return;
      path[i - 1]!.children.delete(segs[i - 1]!);
    }
  }
}

function key(abs: string, token: string): string {
  return `${abs}\0${token}`;
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
