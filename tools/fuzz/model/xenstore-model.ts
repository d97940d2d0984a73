/**
 * A simple model of xenstored for the fuzzer, written from
 * docs/misc/xenstore.txt (and C xenstored's documented behaviour where the
 * text is silent): a Map from absolute path to node, transactions as copies
 * of the map, watches as prefix matches.
 *
 * Where the spec leaves a choice (e.g. whether a commit racing an unrelated
 * write gets EAGAIN), `step` returns every acceptable outcome with the state
 * change that goes with it; the fuzzer follows whichever the server chose.
 *
 * Rules:
 * - Paths: absolute, or relative to /local/domain/<domid>; characters
 *   [A-Za-z0-9-/_@], no `//`, no trailing `/` (EINVAL otherwise).
 * - Permissions: the first entry names the owner and everyone's default
 *   access; later entries grant a domain specific access. dom0 and the owner
 *   may do anything. read/directory/get_perms need r; write, mkdir of an
 *   existing node, rm and set_perms need w. A missing node: ENOENT if the
 *   nearest existing ancestor is readable, else EACCES (or ENOENT).
 * - write/mkdir create missing ancestors; a new node copies its parent's
 *   permissions, and a node an unprivileged domain creates is owned by it.
 * - rm removes the subtree; rm of a missing node whose parent exists may
 *   succeed or say ENOENT. set_perms by an unprivileged domain may not
 *   change the owner (EPERM).
 * - Watches fire for the modified node at or below the watched path, once
 *   per modification, plus the immediate event on registration; events for
 *   descendants of a removed node, and for nodes the watcher cannot read,
 *   may or may not be sent.
 * - Transactions see a snapshot plus their own changes; a commit with no
 *   other change since the start must succeed; a commit after another
 *   change to a node the transaction read from the store (or to the child
 *   list of a node it listed) must fail with EAGAIN: committing would not
 *   be serialisable; otherwise EAGAIN or success (the transaction's changes
 *   replayed on the current store: blind writes are serialisable).
 */

export type Perm = 'n' | 'r' | 'w' | 'b';
export interface PermEntry { domid: number; perm: Perm }
export interface XsNode { value: string; perms: PermEntry[] }

export type Result = { ok: string } | { err: string };
export interface Outcome { result: Result; apply(): void }

export type XsModelOp =
  | { op: 'write'; path: string; value: string }
  | { op: 'mkdir'; path: string }
  | { op: 'rm'; path: string }
  | { op: 'read'; path: string }
  | { op: 'directory'; path: string }
  | { op: 'getPerms'; path: string }
  | { op: 'setPerms'; path: string; perms: PermEntry[] };

const VALID = /^[A-Za-z0-9\-/_@]+$/;

export function canonical(path: string, domid: number): string | undefined {
  if (path.length === 0 || !VALID.test(path) || path.startsWith('@')) return undefined;
  const abs = path.startsWith('/') ? path : `/local/domain/${domid}/${path}`;
  if (abs.includes('//') || (abs.length > 1 && abs.endsWith('/'))) return undefined;
  return abs;
}

export const parentOf = (p: string): string => (p.lastIndexOf('/') <= 0 ? '/' : p.slice(0, p.lastIndexOf('/')));
export const isUnder = (p: string, base: string): boolean => p === base || base === '/' || p.startsWith(base + '/');

export type Tree = Map<string, XsNode>;
const copyTree = (t: Tree): Tree => new Map([...t].map(([k, n]) => [k, { value: n.value, perms: n.perms.map((e) => ({ ...e })) }]));

export function access(t: Tree, domid: number, path: string): Perm {
  const n = t.get(path);
  if (!n) return 'n';
  if (domid === 0 || n.perms[0].domid === domid) return 'b';
  const e = n.perms.slice(1).find((x) => x.domid === domid);
  return e ? e.perm : n.perms[0].perm;
}
const canRead = (p: Perm) => p === 'r' || p === 'b';
const canWrite = (p: Perm) => p === 'w' || p === 'b';

function nearestExisting(t: Tree, p: string): string {
  while (!t.has(p)) p = parentOf(p);
  return p;
}

/** One watch registration as the model sees it. */
export interface ModelWatch {
  domid: number;
  path: string;
  token: string;
  /** path -> events that must arrive / may arrive. */
  must: Map<string, number>;
  may: Map<string, number>;
}

interface Mutation { domid: number; op: XsModelOp }

/** What one successful modification did: its path, and the nodes it created or removed. */
export interface Change { path: string; created: string[]; removed: string[] }

export interface ModelTx {
  domid: number;
  view: Tree;
  startGen: number;
  log: Mutation[];
  /** Nodes whose content the transaction read from the store (read, get_perms). */
  nodes: Set<string>;
  /** Paths the transaction itself created, changed or removed. */
  touched: Set<string>;
  /** Nodes whose child list the transaction saw (directory). */
  kids: Set<string>;
}

export class XsModel {
  tree: Tree;
  gen = 0;
  /** Generation of the last change to a node (value, perms, creation, removal). */
  private readonly nodeGen = new Map<string, number>();
  /** Generation of the last change to a node's child list. */
  private readonly kidsGen = new Map<string, number>();
  readonly watches: ModelWatch[] = [];

  constructor(initial: Tree) {
    this.tree = copyTree(initial);
  }

  /** Outcomes of `op` by `domid` on `t` (the store, or a transaction's view). */
  evaluate(t: Tree, domid: number, o: XsModelOp, onChange: (c: Change) => void): Outcome[] {
    const p = canonical(o.path, domid);
    const none = () => undefined;
    if (p === undefined) return [{ result: { err: 'EINVAL' }, apply: none }];
    const fail = (err: string): Outcome => ({ result: { err }, apply: none });
    const missing = (): Outcome[] => {
      const a = nearestExisting(t, p);
      return canRead(access(t, domid, a)) ? [fail('ENOENT')] : [fail('EACCES'), fail('ENOENT')];
    };
    const node = t.get(p);
    const here = access(t, domid, p);
    const create = (value: string) => () => {
      const made: string[] = [];
      const chain: string[] = [];
      for (let q = p; !t.has(q); q = parentOf(q)) chain.unshift(q);
      for (const q of chain) {
        const parent = t.get(parentOf(q))!;
        const perms = parent.perms.map((e) => ({ ...e }));
        if (domid !== 0) perms[0] = { domid, perm: perms[0].perm };
        t.set(q, { value: q === p ? value : '', perms });
        made.push(q);
      }
      onChange({ path: p, created: made, removed: [] });
    };
    switch (o.op) {
      case 'read':
        if (!node) return missing();
        return [canRead(here) ? { result: { ok: node.value }, apply: none } : fail('EACCES')];
      case 'directory': {
        if (!node) return missing();
        if (!canRead(here)) return [fail('EACCES')];
        const prefix = p === '/' ? '/' : p + '/';
        const kids = [...t.keys()].filter((k) => k !== p && k.startsWith(prefix) && !k.slice(prefix.length).includes('/')).map((k) => k.slice(prefix.length)).sort();
        return [{ result: { ok: kids.join('\n') }, apply: none }];
      }
      case 'getPerms':
        if (!node) return missing();
        return [canRead(here) ? { result: { ok: formatPerms(node.perms) }, apply: none } : fail('EACCES')];
      case 'write':
      case 'mkdir': {
        const value = o.op === 'write' ? o.value : '';
        if (node) {
          if (!canWrite(here)) return [fail('EACCES')];
          if (o.op === 'mkdir') return [{ result: { ok: '' }, apply: none }];
          return [{ result: { ok: '' }, apply: () => { node.value = value; onChange({ path: p, created: [], removed: [] }); } }];
        }
        const a = access(t, domid, nearestExisting(t, p));
        if (canWrite(a)) return [{ result: { ok: '' }, apply: create(value) }];
        if (canRead(a)) return [fail('EACCES'), { result: { ok: '' }, apply: create(value) }];
        return [fail('EACCES'), fail('ENOENT')];
      }
      case 'rm': {
        if (p === '/') return [fail('EINVAL'), fail('EACCES')];
        if (!node) {
          const out = missing();
          if (t.has(parentOf(p)) && out.some((x) => 'err' in x.result && x.result.err === 'ENOENT')) out.push({ result: { ok: '' }, apply: none });
          return out;
        }
        if (!canWrite(here)) return [fail('EACCES')];
        return [{
          result: { ok: '' },
          apply: () => {
            const gone = [...t.keys()].filter((k) => isUnder(k, p));
            for (const k of gone) t.delete(k);
            onChange({ path: p, created: [], removed: gone });
          },
        }];
      }
      case 'setPerms': {
        if (!node) return missing();
        if (!canWrite(here)) return [fail('EACCES')];
        if (domid !== 0 && o.perms[0].domid !== node.perms[0].domid) return [fail('EPERM'), fail('EACCES')];
        return [{ result: { ok: '' }, apply: () => { node.perms = o.perms.map((e) => ({ ...e })); onChange({ path: p, created: [], removed: [] }); } }];
      }
    }
  }

  /** Record watch events for a change to `paths` (must) and `maybe` (may) made on the store. */
  fire(paths: string[], maybe: string[], treeBefore: Tree): void {
    const bump = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
    for (const w of this.watches) {
      for (const p of paths) {
        if (!isUnder(p, w.path)) continue;
        // A watcher that cannot read the node where it exists (before a removal,
        // after a creation, both sides of a change) may or may not be told.
        const before = treeBefore.has(p) ? canRead(access(treeBefore, w.domid, p)) : undefined;
        const after = this.tree.has(p) ? canRead(access(this.tree, w.domid, p)) : undefined;
        const strict = (before ?? true) && (after ?? true) && (before !== undefined || after !== undefined);
        bump(strict ? w.must : w.may, p);
      }
      for (const p of maybe) if (isUnder(p, w.path)) bump(w.may, p);
    }
  }

  /** Outcomes of a direct (non-transaction) operation. */
  step(domid: number, o: XsModelOp): Outcome[] {
    return this.evaluate(this.tree, domid, o, (c) => {
      this.gen++;
      for (const q of [c.path, ...c.created, ...c.removed]) this.nodeGen.set(q, this.gen);
      for (const q of [...c.created, ...c.removed]) this.kidsGen.set(parentOf(q), this.gen);
      this.fire([c.path], [...c.created, ...c.removed].filter((q) => q !== c.path), this.before ?? this.tree);
    }).map((x) => ({ result: x.result, apply: () => { this.before = copyTree(this.tree); x.apply(); this.before = undefined; } }));
  }
  private before: Tree | undefined;

  txStart(domid: number): ModelTx {
    return { domid, view: copyTree(this.tree), startGen: this.gen, log: [], nodes: new Set(), kids: new Set(), touched: new Set() };
  }

  txStep(tx: ModelTx, o: XsModelOp): Outcome[] {
    const p = canonical(o.path, tx.domid);
    // A read only depends on the store if the transaction has not itself changed that part of the tree.
    const own = (q: string) => [...tx.touched].some((m) => isUnder(m, q) || isUnder(q, m));
    return this.evaluate(tx.view, tx.domid, o, (c) => { for (const q of [c.path, ...c.created, ...c.removed]) tx.touched.add(q); }).map((x) => ({
      result: x.result,
      apply: () => {
        const independent = p !== undefined && !own(p);
        x.apply();
        // Only successful reads count (what a failed one relied on is the server's business).
        if (independent && 'ok' in x.result) {
          if (o.op === 'directory') tx.kids.add(p);
          else if (o.op === 'read' || o.op === 'getPerms') tx.nodes.add(p);
        }
        // Only what succeeded inside the transaction is replayed at commit.
        if ('ok' in x.result && o.op !== 'read' && o.op !== 'directory' && o.op !== 'getPerms') tx.log.push({ domid: tx.domid, op: o });
      },
    }));
  }

  /** True when another change since the start hit something the transaction relied on. */
  private conflicts(tx: ModelTx): boolean {
    const after = (m: Map<string, number>, q: string) => (m.get(q) ?? -1) > tx.startGen;
    return [...tx.nodes].some((q) => after(this.nodeGen, q)) || [...tx.kids].some((q) => after(this.kidsGen, q) || after(this.nodeGen, q));
  }

  /** Outcomes of committing: success (replay) always acceptable when nothing else changed; EAGAIN otherwise too. */
  txCommit(tx: ModelTx): Outcome[] {
    const commit: Outcome = {
      result: { ok: '' },
      apply: () => {
        for (const m of tx.log) {
          const outs = this.step(m.domid, m.op);
          const ok = outs.find((x) => 'ok' in x.result);
          ok?.apply();
        }
      },
    };
    const eagain: Outcome = { result: { err: 'EAGAIN' }, apply: () => undefined };
    if (this.gen === tx.startGen) return [commit];
    // A change to what the transaction read or wrote: committing would lose it.
    if (this.conflicts(tx)) return [eagain];
    return [eagain, commit];
  }

  addWatch(domid: number, path: string, token: string): Outcome[] {
    const p = path.startsWith('@') ? path : canonical(path, domid);
    if (p === undefined) return [{ result: { err: 'EINVAL' }, apply: () => undefined }];
    if (this.watches.some((w) => w.domid === domid && w.path === p && w.token === token)) {
      return [{ result: { err: 'EEXIST' }, apply: () => undefined }];
    }
    return [{
      result: { ok: '' },
      apply: () => this.watches.push({ domid, path: p, token, must: new Map([[p, 1]]), may: new Map() }),
    }];
  }
}

export function formatPerms(perms: PermEntry[]): string {
  return perms.map((e) => `${e.perm}${e.domid}`).join(',');
}
