/**
 * The store: a persistent (immutable, path-copied) tree. A snapshot is just
 * a reference to a root, so a transaction's private copy of "the whole db"
 * (xenstore.txt TRANSACTION_START) costs nothing until it writes.
 *
 * Every node carries a generation number, fresh whenever the node's value,
 * permissions or set of children change (not when a descendant's value
 * does). Commit compares generations to detect conflicts; DIRECTORY_PART
 * reports it as <gencnt>.
 */
import type { DomId, XsPerm } from '../../platform/types.js';
import { segments } from '../paths.js';

export interface XsNode {
  readonly value: Uint8Array;
  /** perms[0]: owner, and the access every unlisted domain gets. */
  readonly perms: readonly XsPerm[];
  readonly children: ReadonlyMap<string, XsNode>;
  readonly gen: number;
}

/**
 * A node as the Db holding it sees it: `owner` is the Db epoch that made
 * it. A node made since the last `clone()` is reachable from one Db only,
 * so that Db may change it in place; any other node is shared (with a
 * snapshot, a transaction, a checkpoint) and is path-copied as before.
 */
interface OwnedNode extends XsNode {
  value: Uint8Array;
  perms: readonly XsPerm[];
  children: Map<string, XsNode>;
  gen: number;
  owner: object | undefined;
}

/** Generation numbers come from one counter shared by all snapshots of a store. */
export interface GenCounter { next: number }

const EMPTY = new Uint8Array(0);
const NO_CHILDREN: ReadonlyMap<string, XsNode> = new Map();

export interface NodeUpdate { value?: Uint8Array; perms?: readonly XsPerm[] }

export class Db {
  /**
   * This Db's epoch: nodes whose `owner` is it are private and written in
   * place. `clone()` gives both Dbs new epochs, so every node that existed
   * is shared from then on. (With `pathCopyOnly`, never: every write copies
   * its path, the reference the in-place writes are tested against.)
   */
  private epoch: object | undefined = {};

  constructor(
    public root: XsNode,
    /** Nodes owned per domain (for the node quota). */
    public readonly owned: Map<DomId, number>,
    private readonly gens: GenCounter,
    private readonly pathCopyOnly = false,
  ) {
    if (pathCopyOnly) this.epoch = undefined;
  }

  static create(opts: { pathCopyOnly?: boolean } = {}): Db {
    const gens = { next: 1 };
    const root: OwnedNode = { value: EMPTY, perms: [{ domid: 0, perm: 'n' }], children: NO_CHILDREN as Map<string, XsNode>, gen: gens.next++, owner: undefined };
    return new Db(root, new Map([[0, 1]]), gens, opts.pathCopyOnly);
  }

  /** The next generation number this store hands out (checkpoints restore it). */
  get generation(): number {
    return this.gens.next;
  }

  set generation(next: number) {
    this.gens.next = next;
  }

  /** An independent copy (O(domains)): the tree itself is shared until written. */
  clone(): Db {
    if (!this.pathCopyOnly) this.epoch = {}; // what we made so far is shared now
    return new Db(this.root, new Map(this.owned), this.gens, this.pathCopyOnly);
  }

  get(abs: string): XsNode | undefined {
    if (abs === '/') return this.root;
    // Walked with indexOf, not segments(): no array per lookup.
    let n: XsNode | undefined = this.root;
    let from = 1;
    for (;;) {
      const slash = abs.indexOf('/', from);
      n = n.children.get(slash < 0 ? abs.slice(from) : abs.slice(from, slash));
      if (!n || slash < 0) return n;
      from = slash + 1;
    }
  }

  /** `node` if this Db may write it in place, else a private copy (children map copied). */
  private own(node: XsNode): OwnedNode {
    const n = node as OwnedNode;
    if (this.epoch !== undefined && n.owner === this.epoch) {
      if (n.children === NO_CHILDREN) n.children = new Map(); // the shared empty map is never written
      return n;
    }
    return { value: n.value, perms: n.perms, children: new Map(n.children), gen: n.gen, owner: this.epoch };
  }

  /** Generation of the node at `abs`, -1 if absent. */
  genOf(abs: string): number {
    return this.get(abs)?.gen ?? -1;
  }

  /** Deepest existing node on the way to `abs` (maybe `abs` itself), and its path. */
  nearestExisting(abs: string): { path: string; node: XsNode; missing: number } {
    if (abs === '/') return { path: '/', node: this.root, missing: 0 };
    // Walked with indexOf, as get(): the path found is a prefix of `abs`.
    let n = this.root;
    let from = 1;
    for (;;) {
      const slash = abs.indexOf('/', from);
      const c = n.children.get(slash < 0 ? abs.slice(from) : abs.slice(from, slash));
      if (!c) {
        let missing = 1;
        for (let i = abs.indexOf('/', from); i >= 0; i = abs.indexOf('/', i + 1)) missing++;
        return { path: from === 1 ? '/' : abs.slice(0, from - 1), node: n, missing };
      }
      n = c;
      if (slash < 0) return { path: abs, node: n, missing: 0 };
      from = slash + 1;
    }
  }

  ownedBy(domid: DomId): number {
    return this.owned.get(domid) ?? 0;
  }

  /**
   * Create or update the node at `abs`. Missing nodes on the way are created
   * with an empty value, inheriting their parent's permissions with the owner
   * replaced by `owner` (what xenstored does: domains own what they create).
   * Returns the paths created, top first.
   */
  put(abs: string, owner: (parentPerms: readonly XsPerm[]) => DomId, update: NodeUpdate): string[] {
    const segs = segments(abs);
    const created: string[] = [];
    const go = (node: XsNode, i: number, path: string): XsNode => {
      if (i === segs.length) return this.updated(node, update);
      const name = segs[i]!;
      const childPath = path === '/' ? `/${name}` : `${path}/${name}`;
      const child = node.children.get(name);
      const mine = this.own(node);
      if (child) {
        mine.children.set(name, go(child, i + 1, childPath));
        return mine;
      }
      const perms = [{ domid: owner(node.perms), perm: node.perms[0]!.perm }, ...node.perms.slice(1)];
      const fresh: OwnedNode = { value: EMPTY, perms, children: NO_CHILDREN as Map<string, XsNode>, gen: this.gens.next++, owner: this.epoch };
      this.count(perms[0]!.domid, +1);
      created.push(childPath);
      mine.children.set(name, go(fresh, i + 1, childPath));
      mine.gen = this.gens.next++; // its set of children changed
      return mine;
    };
    this.root = go(this.root, 0, '/');
    return created;
  }

  /** Remove the node at `abs` and its subtree; returns the removed node. */
  remove(abs: string): XsNode | undefined {
    const segs = segments(abs);
    if (segs.length === 0) return undefined;
    let removed: XsNode | undefined;
    const go = (node: XsNode, i: number): XsNode => {
      const name = segs[i]!;
      const child = node.children.get(name);
      if (!child) return node;
      const mine = this.own(node);
      if (i === segs.length - 1) {
        removed = child;
        mine.children.delete(name);
        mine.gen = this.gens.next++;
        return mine;
      }
      mine.children.set(name, go(child, i + 1));
      return mine;
    };
    this.root = go(this.root, 0);
    if (removed) this.uncount(removed);
    return removed;
  }

  private updated(node: XsNode, u: NodeUpdate): XsNode {
    if (u.value === undefined && u.perms === undefined) return node;
    if (u.perms) {
      this.count(node.perms[0]!.domid, -1);
      this.count(u.perms[0]!.domid, +1);
    }
    // The value and perms are replaced, never changed in place: a reader (a
    // READ reply, a fired watch's perms) may hold the old ones.
    const n = this.ownLeaf(node);
    n.value = u.value ?? node.value;
    n.perms = u.perms ?? node.perms;
    n.gen = this.gens.next++;
    return n;
  }

  /** As own(), without copying the children map when the node is shared and has none to copy yet. */
  private ownLeaf(node: XsNode): OwnedNode {
    const n = node as OwnedNode;
    if (this.epoch !== undefined && n.owner === this.epoch) return n;
    const children = n.children.size === 0 ? (NO_CHILDREN as Map<string, XsNode>) : new Map(n.children);
    return { value: n.value, perms: n.perms, children, gen: n.gen, owner: this.epoch };
  }

  private uncount(n: XsNode): void {
    this.count(n.perms[0]!.domid, -1);
    for (const c of n.children.values()) this.uncount(c);
  }

  private count(domid: DomId, delta: number): void {
    const v = (this.owned.get(domid) ?? 0) + delta;
    if (v === 0) this.owned.delete(domid); else this.owned.set(domid, v);
  }
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && a.every((x, i) => x === b[i]);
const samePerms = (a: readonly XsPerm[], b: readonly XsPerm[]): boolean =>
  a.length === b.length && a.every((p, i) => p.domid === b[i]!.domid && p.perm === b[i]!.perm);

/**
 * Paths whose node differs between two roots of a store: created, removed,
 * or with another value or permissions. A created or removed subtree is
 * listed once, by its top. Subtrees shared by reference (untouched since
 * the roots forked) are skipped, so the walk costs what changed.
 */
export function changedPaths(before: XsNode, after: XsNode, path = '/'): string[] {
  if (before === after) return [];
  const out: string[] = [];
  if (!sameBytes(before.value, after.value) || !samePerms(before.perms, after.perms)) out.push(path);
  const child = (name: string): string => (path === '/' ? `/${name}` : `${path}/${name}`);
  for (const [name, b] of before.children) {
    const a = after.children.get(name);
    if (a === undefined) out.push(child(name));
    else out.push(...changedPaths(b, a, child(name)));
  }
  for (const name of after.children.keys()) if (!before.children.has(name)) out.push(child(name));
  return out;
}
