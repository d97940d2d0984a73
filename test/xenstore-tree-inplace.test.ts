/**
 * The store writes nodes made since its last clone() in place, and
 * path-copies shared ones. The reference is the same Db in `pathCopyOnly`
 * mode (every write copies its path: the store before the in-place writes).
 * Over random sequences of writes, perms changes, removals and clones, both
 * must give the same tree (values, permissions, generation numbers, child
 * order) in every live Db, and every snapshot taken on the way must still
 * read as it did when it was taken.
 */
import { describe, expect, it } from 'vitest';
import * as fc from 'fast-check';
import type { XsPerm } from '../src/platform/types.js';
import { Db, changedPaths, type XsNode } from '../src/xenstore/server/tree.js';

type Step =
  | { k: 'put'; db: number; path: string; value: string | undefined; owner: number }
  | { k: 'perms'; db: number; path: string; domid: number }
  | { k: 'rm'; db: number; path: string }
  | { k: 'clone'; db: number };

const NAMES = ['a', 'b', 'c', 'state', 'ring-ref'];
const path = fc.array(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 4 }).map((s) => `/${s.join('/')}`);
const db = fc.nat(3);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('put' as const), db, path, value: fc.option(fc.string({ maxLength: 3 }), { nil: undefined }), owner: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('perms' as const), db, path, domid: fc.nat(3) }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('rm' as const), db, path }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('clone' as const), db }) },
);

/** A plain picture of a tree: everything a reader can see, children in Map order. */
function dump(n: XsNode): unknown {
  return {
    value: Buffer.from(n.value).toString('latin1'),
    perms: n.perms.map((p) => `${p.perm}${p.domid}`).join(','),
    gen: n.gen,
    children: [...n.children].map(([name, c]) => [name, dump(c)]),
  };
}

/** Run `steps` on a family of Dbs (index 0 the original, clones appended, at most 4 live). */
function run(steps: Step[], pathCopyOnly: boolean): { live: unknown[]; snaps: { at: unknown; now: unknown }[]; owned: unknown[] } {
  const dbs: Db[] = [Db.create({ pathCopyOnly })];
  const snaps: { root: XsNode; at: unknown }[] = [];
  const enc = new TextEncoder();
  for (const s of steps) {
    const d = dbs[s.db % dbs.length]!;
    if (s.k === 'put') d.put(s.path, () => s.owner, s.value === undefined ? {} : { value: enc.encode(s.value) });
    else if (s.k === 'perms') { if (d.get(s.path)) d.put(s.path, () => 0, { perms: [{ domid: s.domid, perm: 'r' } as XsPerm] }); }
    else if (s.k === 'rm') d.remove(s.path);
    else {
      const c = d.clone();
      snaps.push({ root: d.root, at: dump(d.root) });
      if (dbs.length < 4) dbs.push(c); else dbs[s.db % dbs.length] = c;
    }
  }
  return {
    live: dbs.map((d) => dump(d.root)),
    snaps: snaps.map((s) => ({ at: s.at, now: dump(s.root) })),
    owned: dbs.map((d) => [...d.owned].sort()),
  };
}

describe('xenstore store: in-place writes of private nodes', () => {
  it('give the same trees, generations and quota counts as path-copying every write, and never change a snapshot', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const fast = run(steps, false);
        const ref = run(steps, true);
        expect(fast.live).toEqual(ref.live);
        expect(fast.owned).toEqual(ref.owned);
        expect(fast.snaps.map((s) => s.now)).toEqual(ref.snaps.map((s) => s.at));
        for (const s of fast.snaps) expect(s.now).toEqual(s.at);
      }),
      { numRuns: 400, seed: 14 },
    );
  });

  it('get and nearestExisting find what a segment-by-segment walk finds', () => {
    const walk = (d: Db, abs: string) => {
      const segs = abs === '/' ? [] : abs.slice(1).split('/');
      let n = d.root;
      let at = 0;
      for (; at < segs.length; at++) {
        const c = n.children.get(segs[at]!);
        if (!c) break;
        n = c;
      }
      return { path: at === 0 ? '/' : `/${segs.slice(0, at).join('/')}`, node: n, missing: segs.length - at };
    };
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), fc.array(fc.oneof(path, fc.constant('/')), { minLength: 1, maxLength: 10 }), (steps, probes) => {
        const d = Db.create();
        const enc = new TextEncoder();
        for (const s of steps) {
          if (s.k === 'put') d.put(s.path, () => s.owner, { value: enc.encode(s.value ?? '') });
          else if (s.k === 'rm') d.remove(s.path);
        }
        for (const p of probes) {
          const ref = walk(d, p);
          expect(d.nearestExisting(p)).toEqual(ref);
          expect(d.get(p)).toBe(ref.missing === 0 ? ref.node : undefined);
        }
      }),
      { numRuns: 300, seed: 14 },
    );
  });

  it('a snapshot shares nothing the live store writes afterwards: changedPaths sees exactly the write', () => {
    const d = Db.create();
    const enc = new TextEncoder();
    d.put('/local/domain/5/backend/state', () => 5, { value: enc.encode('1') });
    d.put('/local/domain/5/backend/info', () => 5, { value: enc.encode('0') });
    const snap = d.clone();
    d.put('/local/domain/5/backend/state', () => 5, { value: enc.encode('4') });
    d.put('/local/domain/5/backend/state', () => 5, { value: enc.encode('5') });
    expect(changedPaths(snap.root, d.root)).toEqual(['/local/domain/5/backend/state']);
    expect(Buffer.from(snap.get('/local/domain/5/backend/state')!.value).toString()).toBe('1');
  });
});
